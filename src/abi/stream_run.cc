#include "abi/stream_run.h"

#include <charconv>

namespace wasmlet::abi {
namespace {

constexpr int kRequestHeaders = static_cast<int>(MapType::kHttpRequestHeaders);
constexpr int kRequestTrailers = static_cast<int>(MapType::kHttpRequestTrailers);
constexpr int kResponseHeaders = static_cast<int>(MapType::kHttpResponseHeaders);
constexpr int kResponseTrailers = static_cast<int>(MapType::kHttpResponseTrailers);

}  // namespace

HttpResponse ResponseFromStream(StreamData& data) {
  HttpResponse response;
  response.status = data.response_status;
  for (const auto& [name, value] : data.maps[kResponseHeaders].pairs()) {
    if (name == ":status") {
      // A filter may change the status through the pseudo-header; a value that is not one is ignored.
      uint32_t status = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), status);
      if (error == std::errc() && end == value.data() + value.size() && status >= 100 && status <= 999)
        response.status = status;
    } else {
      response.headers.emplace_back(name, value);
    }
  }
  response.body = std::move(data.response_body);
  response.trailers = data.maps[kResponseTrailers].pairs();
  return response;
}

StreamRun::StreamRun(std::vector<Filter> filters, std::unique_ptr<StreamData> data, Upstream upstream,
                     Post post, Done done)
    : data_(std::move(data)), upstream_(std::move(upstream)), post_(std::move(post)), done_(std::move(done)) {
  slots_.reserve(filters.size());
  for (const Filter& f : filters) slots_.push_back(Slot{f, f.vm->liveness()});
  request_has_body_ = !data_->request_body.empty();
  request_has_trailers_ = !data_->maps[kRequestTrailers].empty();
}

void StreamRun::Start(std::vector<Filter> filters, std::unique_ptr<StreamData> data, Upstream upstream,
                      Post post, Done done) {
  auto run = std::make_shared<StreamRun>(std::move(filters), std::move(data), std::move(upstream),
                                         std::move(post), std::move(done));
  run->Step();
}

PluginVm* StreamRun::Live(const Slot& slot) const { return slot.alive.expired() ? nullptr : slot.filter.vm; }

std::string StreamRun::Name(const Slot& slot) const {
  PluginVm* vm = Live(slot);
  return vm ? "plugin '" + vm->spec().name + "'" : "a plugin";
}

StreamRun::Slot& StreamRun::Current() {
  const bool response = stage_ >= Stage::kResponseHeaders;
  return slots_[response ? slots_.size() - 1 - index_ : index_];
}

engine::Deadline StreamRun::DeadlineFor(const Slot& slot, Clock& clock) const {
  const auto left = slot.filter.budget - slot.used;
  return clock.Now() + std::max(left, std::chrono::milliseconds(1));
}

void StreamRun::Charge(Slot& slot, Clock& clock, Clock::TimePoint since) {
  slot.used += std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now() - since);
}

void StreamRun::Step() {
  for (;;) {
    if (stage_ == Stage::kUpstream) {
      stage_ = Stage::kResponseHeaders;  // where the answer picks up
      keep_ = shared_from_this();
      upstream_(*data_,
                [self = shared_from_this()](HttpResponse response) { self->Answered(std::move(response)); });
      return;
    }
    if (stage_ == Stage::kClose) return Finish();
    // Stages that do not apply to this message are skipped.
    const bool skip = (stage_ == Stage::kRequestBody && !request_has_body_) ||
                      (stage_ == Stage::kRequestTrailers && !request_has_trailers_) ||
                      (stage_ == Stage::kResponseBody && !response_has_body_) ||
                      (stage_ == Stage::kResponseTrailers && !response_has_trailers_);
    if (skip || index_ >= slots_.size()) {
      stage_ = static_cast<Stage>(static_cast<int>(stage_) + 1);
      index_ = 0;
      continue;
    }
    if (!RunFilter(Current())) return;
    ++index_;
  }
}

bool StreamRun::RunFilter(Slot& slot) {
  PluginVm* vm = Live(slot);
  if (!vm || vm->failed()) {
    Fail(FailedPrecondition(Name(slot) + " failed while the stream was in it"));
    return false;
  }
  Clock& clock = vm->clock();
  const auto start = clock.Now();
  if (stage_ == Stage::kOpen) {
    auto id = vm->OpenStream(
        data_.get(),
        [weak = weak_from_this(), post = post_] {
          if (!post) return;
          post([weak] {
            if (auto self = weak.lock()) self->Woken();
          });
        },
        DeadlineFor(slot, clock));
    Charge(slot, clock, start);
    if (!id.ok()) {
      Fail(Status(id.status().code(), Name(slot) + ": " + id.status().message()));
      return false;
    }
    slot.context = *id;
    return true;
  }
  StreamPhase phase = StreamPhase::kRequestHeaders;
  bool eos = false;
  switch (stage_) {
    case Stage::kRequestHeaders: eos = !request_has_body_ && !request_has_trailers_; break;
    case Stage::kRequestBody:
      phase = StreamPhase::kRequestBody;
      eos = !request_has_trailers_;
      break;
    case Stage::kRequestTrailers:
      phase = StreamPhase::kRequestTrailers;
      eos = true;
      break;
    case Stage::kResponseHeaders:
      phase = StreamPhase::kResponseHeaders;
      eos = !response_has_body_ && !response_has_trailers_;
      break;
    case Stage::kResponseBody:
      phase = StreamPhase::kResponseBody;
      eos = !response_has_trailers_;
      break;
    default:
      phase = StreamPhase::kResponseTrailers;
      eos = true;
      break;
  }
  auto action = vm->RunStreamPhase(slot.context, phase, eos, DeadlineFor(slot, clock));
  Charge(slot, clock, start);
  if (!action.ok()) {
    Fail(Status(action.status().code(), Name(slot) + ": " + action.status().message()));
    return false;
  }
  switch (*action) {
    case StreamAction::kContinue: return true;
    case StreamAction::kLocal:
      AnswerWith(std::move(*vm->TakeLocalResponse(slot.context)), /*local=*/true);
      return false;
    case StreamAction::kStop: break;
  }
  if (vm->calls_in_flight(slot.context) > 0) {
    if (!post_) {
      Fail(
          FailedPrecondition(Name(slot) +
                             " paused the stream to wait for an outbound call, which this caller cannot wait "
                             "for (a function called through proxy_invoke_service must answer at once)"));
      return false;
    }
    waiting_ = true;
    keep_ = shared_from_this();
    return false;
  }
  if (!eos) return true;  // it buffers what is to come: the rest of the message is already here
  const bool response = stage_ >= Stage::kResponseHeaders;
  AnswerWith(Stuck(Name(slot) + " paused the " + (response ? "response" : "request") +
                   " and nothing can resume it (no outbound call of it is in flight)\n"),
             /*local=*/false);
  return false;
}

HttpResponse StreamRun::Stuck(std::string why) {
  HttpResponse stuck;
  stuck.status = 500;
  stuck.headers = {{"content-type", "text/plain"}};
  stuck.body = std::move(why);
  return stuck;
}

void StreamRun::AnswerWith(HttpResponse response, bool local) {
  if (stage_ < Stage::kResponseHeaders) return BeginResponse(std::move(response), local);
  // During the response phase it replaces the response; the other filters do not see it.
  final_ = std::move(response);
  stage_ = Stage::kClose;
  index_ = 0;
  Step();
}

void StreamRun::Woken() {
  if (!waiting_) return;  // not waiting in a filter (a late or repeated wake)
  Slot& slot = Current();
  PluginVm* vm = Live(slot);
  if (!vm || vm->failed()) {
    waiting_ = false;
    auto self = std::move(keep_);
    return Fail(FailedPrecondition(Name(slot) + " failed while the stream waited in it"));
  }
  const StreamAction state = vm->StreamState(slot.context);
  if (state == StreamAction::kStop && vm->calls_in_flight(slot.context) > 0) return;  // still waiting
  waiting_ = false;
  auto self = std::move(keep_);
  if (state == StreamAction::kLocal) return AnswerWith(std::move(*vm->TakeLocalResponse(slot.context)), true);
  if (state == StreamAction::kStop) {
    // Its calls are answered and it did not go on: nothing is left that could resume it.
    return AnswerWith(
        Stuck(Name(slot) +
              " paused the stream and did not resume it after its outbound calls were answered\n"),
        /*local=*/false);
  }
  ++index_;
  Step();
}

void StreamRun::Answered(HttpResponse response) {
  auto self = std::move(keep_);
  const bool local = response.local;
  BeginResponse(std::move(response), local);
}

void StreamRun::BeginResponse(HttpResponse response, bool local) {
  sent_locally_ = local;
  data_->response_status = response.status;
  HeaderMap& headers = data_->maps[kResponseHeaders];
  headers = HeaderMap(response.headers);
  headers.Replace(":status", std::to_string(response.status));
  data_->maps[kResponseTrailers] = HeaderMap(response.trailers);
  data_->response_body = std::move(response.body);
  response_has_body_ = !data_->response_body.empty();
  response_has_trailers_ = !data_->maps[kResponseTrailers].empty();
  stage_ = Stage::kResponseHeaders;
  index_ = 0;
  Step();
}

void StreamRun::Fail(Status status) {
  error_ = std::move(status);
  stage_ = Stage::kClose;
  Finish();
}

void StreamRun::Finish() {
  // done -> log -> delete on every filter whose stream was opened, unless the guest failed.
  Status closed;
  for (Slot& slot : slots_) {
    PluginVm* vm = Live(slot);
    if (!vm || slot.context == 0) continue;
    Status status = vm->CloseStream(slot.context, DeadlineFor(slot, vm->clock()));
    if (closed.ok()) closed = status;
  }
  Done done = std::move(done_);
  if (!done) return;
  if (!error_.ok()) return done(error_);
  if (!closed.ok()) return done(closed);
  if (final_) {
    final_->local = true;
    return done(std::move(*final_));
  }
  HttpResponse response = ResponseFromStream(*data_);
  response.local = sent_locally_;
  done(std::move(response));
}

}  // namespace wasmlet::abi
