// RuntimeService's streams: SubscribeConfiguration and SubscribeTopicEvents, with the reader
// thread each stream runs for what its client sends.
#include <spdlog/spdlog.h>

#include <charconv>
#include <map>
#include <thread>
#include <type_traits>

#include "common/mutex.h"
#include "common/text.h"
#include "server/api/app_callback.h"
#include "server/api/call_checks.h"
#include "server/api/runtime_service.h"
#include "server/services/subscriptions.h"

namespace wasmlet::server {

namespace {

// The requests a client sends on a stream, read on a thread of their own so that the call's
// thread can write meanwhile. Its owner must make the last Read return (the client ends its
// side, or the call is cancelled) before it is destroyed.
template <typename Request, typename Stream>
class IncomingRequests {
 public:
  explicit IncomingRequests(Stream* stream)
      : thread_([this, stream] {
          Request request;
          while (stream->Read(&request)) {
            MutexLock lock(mutex_);
            queue_.push_back(std::move(request));
            request = Request();
            changed_.NotifyAll();
          }
          MutexLock lock(mutex_);
          ended_ = true;
          changed_.NotifyAll();
        }) {}
  ~IncomingRequests() { thread_.join(); }

  // The requests that came, waiting for one until `deadline` when none has.
  std::vector<Request> Wait(std::chrono::steady_clock::time_point deadline) {
    MutexLock lock(mutex_);
    while (queue_.empty() && !ended_) {
      if (!changed_.WaitUntil(mutex_, deadline)) break;
    }
    std::vector<Request> taken = std::move(queue_);
    queue_.clear();
    return taken;
  }
  bool ended() {
    MutexLock lock(mutex_);
    return ended_;
  }

 private:
  Mutex mutex_;
  CondVar changed_;
  std::vector<Request> queue_ GUARDED_BY(mutex_);
  bool ended_ GUARDED_BY(mutex_) = false;
  std::thread thread_;  // last: it starts once the rest is made
};

Status TooManyStreams(uint32_t limit) {
  return ResourceExhausted("this runtime API has " + std::to_string(limit) +
                           " streams open, its limit (wasmlet.api_max_streams); close one or raise it");
}

// Gives back a stream's place when the stream ends.
struct StreamPlace {
  std::atomic<uint32_t>& open;
  ~StreamPlace() { open.fetch_sub(1); }
};

// On every way out of a stream's call, the reader's last Read must return before the reader is
// joined: a client that has not closed its side is cancelled.
template <typename Incoming>
struct EndReads {
  grpc::ServerContext* context;
  Incoming& incoming;
  ~EndReads() {
    if (!incoming.ended()) context->TryCancel();
  }
};
template <typename Incoming>
EndReads(grpc::ServerContext*, Incoming&) -> EndReads<Incoming>;

// What one request of SubscribeConfiguration watches, and what it last sent for each key.
struct Watch {
  runtime_v1::SubscribeConfigurationRequest request;
  std::vector<std::string> keys;
  std::map<std::string, std::string> sent;  // key -> content, for the keys that exist
};

}  // namespace

bool RuntimeService::OpenStream() {
  if (streams_.fetch_add(1) < config_.api_max_streams) return true;
  streams_.fetch_sub(1);
  return false;
}

grpc::Status RuntimeService::SubscribeConfiguration(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<runtime_v1::SubscribeConfigurationResponse, runtime_v1::SubscribeConfigurationRequest>*
        stream) {
  using Stream = std::remove_pointer_t<decltype(stream)>;
  return Serve(context, "SubscribeConfiguration", [&]() -> Status {
    if (!OpenStream()) return TooManyStreams(config_.api_max_streams);
    StreamPlace place{streams_};
    // The first request is read and checked here, before the reader starts, so that a bad one
    // is answered with its error rather than a cancelled call.
    std::vector<Watch> watches;
    auto watch_of = [&](runtime_v1::SubscribeConfigurationRequest request) -> Status {
      WASMLET_RETURN_IF_ERROR(
          Known(config_.configuration_stores, request.store_name(), "configuration store", "store_name"));
      if (request.keys().empty())
        return InvalidArgument("keys is empty: name the keys to watch in configuration store '" +
                               Printable(request.store_name(), 64) + "'");
      Watch watch;
      watch.keys.assign(request.keys().begin(), request.keys().end());
      watch.request = std::move(request);
      watches.push_back(std::move(watch));
      return Status::Ok();
    };
    runtime_v1::SubscribeConfigurationRequest first;
    if (!stream->Read(&first)) return InvalidArgument("SubscribeConfiguration got no request: name a store and keys");
    WASMLET_RETURN_IF_ERROR(watch_of(std::move(first)));
    IncomingRequests<runtime_v1::SubscribeConfigurationRequest, Stream> incoming(stream);
    EndReads end_reads{context, incoming};  // before `incoming` is destroyed

    const auto interval = std::chrono::milliseconds(config_.api_watch_interval_ms);
    constexpr auto kTick = std::chrono::milliseconds(100);  // how soon a stop or a cancel is seen
    auto next_read = std::chrono::steady_clock::now();
    while (!context->IsCancelled() && !ending_.load()) {
      const auto now = std::chrono::steady_clock::now();
      bool added = false;
      for (auto& request : incoming.Wait(std::min(next_read, now + kTick))) {
        WASMLET_RETURN_IF_ERROR(watch_of(std::move(request)));
        added = true;
      }
      if (!added && std::chrono::steady_clock::now() < next_read) continue;
      next_read = std::chrono::steady_clock::now() + interval;
      for (Watch& watch : watches) {
        auto items = services_.configuration->Get(watch.request.store_name(), watch.keys);
        if (!items.ok()) {
          // A store that cannot be reached now may be back at the next read: the stream stays.
          spdlog::warn("SubscribeConfiguration on '{}': {}", Printable(watch.request.store_name(), 64),
                       items.status().message());
          continue;
        }
        std::map<std::string, std::string> now_items(items->begin(), items->end());
        runtime_v1::SubscribeConfigurationResponse changes;
        auto add = [&](const std::string& key, const std::string& content) {
          runtime_v1::ConfigurationItem* item = changes.add_items();
          item->set_key(key);
          item->set_content(content);
          item->set_group(watch.request.group());
          item->set_label(watch.request.label());
        };
        for (const std::string& key : watch.keys) {
          auto is = now_items.find(key);
          auto was = watch.sent.find(key);
          if (is != now_items.end() && (was == watch.sent.end() || was->second != is->second)) add(key, is->second);
          if (is == now_items.end() && was != watch.sent.end()) add(key, "");
        }
        watch.sent = std::move(now_items);
        if (changes.items_size() == 0) continue;
        changes.set_store_name(watch.request.store_name());
        changes.set_app_id(watch.request.app_id());
        if (!stream->Write(changes)) return Status::Ok();  // the client has gone
      }
    }
    if (ending_.load()) return Unavailable("the sidecar is stopping: subscribe again to another one");
    return Status::Ok();
  });
}


// ---- SubscribeTopicEvents

namespace {

constexpr size_t kMaxUnanswered = 16;
constexpr auto kEventTimeout = std::chrono::seconds(10);
constexpr auto kFetchWait = std::chrono::milliseconds(100);  // also how soon a stop is seen

}  // namespace

grpc::Status RuntimeService::SubscribeTopicEvents(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<runtime_v1::SubscribeTopicEventsResponse, runtime_v1::SubscribeTopicEventsRequest>*
        stream) {
  using Stream = std::remove_pointer_t<decltype(stream)>;
  return Serve(context, "SubscribeTopicEvents", [&]() -> Status {
    if (!OpenStream()) return TooManyStreams(config_.api_max_streams);
    StreamPlace place{streams_};
    runtime_v1::SubscribeTopicEventsRequest first;
    if (!stream->Read(&first)) return InvalidArgument("SubscribeTopicEvents got no message: the first must be initial_request");
    if (!first.has_initial_request())
      return InvalidArgument("the first message of SubscribeTopicEvents must be initial_request (pubsub_name, topic)");
    const runtime_v1::SubscribeTopicEventsRequestInitial& initial = first.initial_request();
    WASMLET_RETURN_IF_ERROR(Known(config_.pubsubs, initial.pubsub_name(), "pub/sub", "pubsub_name"));
    WASMLET_RETURN_IF_ERROR(Required(initial.topic(), "topic"));
    auto found = apps_->pubsubs.find(initial.pubsub_name());
    if (found == apps_->pubsubs.end()) return Internal("pub/sub '" + initial.pubsub_name() + "' was not made");
    components::PubSubComponent& pubsub = *found->second;
    const std::string pubsub_name = initial.pubsub_name();
    const std::string topic = initial.topic();
    const std::string group = config_.app.app_id.empty() ? "wasmlet-app" : config_.app.app_id;
    std::string dead_letter_topic = topic + "-deadletter";
    if (auto it = initial.metadata().find("deadLetterTopic"); it != initial.metadata().end() && !it->second.empty())
      dead_letter_topic = it->second;
    if (initial.has_dead_letter_topic() && !initial.dead_letter_topic().empty())
      dead_letter_topic = initial.dead_letter_topic();
    uint32_t max_deliveries = 5;
    auto backoff = std::chrono::milliseconds(500);
    for (const auto& [key, target] : {std::pair<const char*, int64_t>{"maxDeliveries", 0}, {"retryBackoffMs", 1}}) {
      auto it = initial.metadata().find(key);
      if (it == initial.metadata().end() || it->second.empty()) continue;
      int64_t value = 0;
      const std::string& text = it->second;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec != std::errc() || end != text.data() + text.size() || value <= 0 || value > (int64_t{1} << 31))
        return InvalidArgument(std::string("metadata ") + key + " \"" + Printable(text, 32) +
                               "\" is not a whole number above 0");
      if (target == 0) max_deliveries = static_cast<uint32_t>(value);
      if (target == 1) backoff = std::chrono::milliseconds(value);
    }
    runtime_v1::SubscribeTopicEventsResponse hello;
    hello.mutable_initial_response();
    if (!stream->Write(hello)) return Status::Ok();
    spdlog::info("an app subscribes to '{}' on pub/sub '{}' over a stream", Printable(topic, 128), pubsub_name);

    IncomingRequests<runtime_v1::SubscribeTopicEventsRequest, Stream> incoming(stream);
    EndReads end_reads{context, incoming};  // before `incoming` is destroyed
    struct Unanswered {
      components::PubSubMessage message;
      std::chrono::steady_clock::time_point due;
    };
    std::map<std::string, Unanswered> unanswered;  // by message id
    const std::string what_topic = "'" + Printable(topic, 128) + "' for the app's stream";
    // Whatever waits for an answer when the stream ends is handed out again at once.
    struct GiveBack {
      std::map<std::string, Unanswered>& unanswered;
      components::PubSubComponent& pubsub;
      const std::string& topic;
      const std::string& group;
      ~GiveBack() {
        for (const auto& [id, waiting] : unanswered) (void)pubsub.Retry(topic, group, id, std::chrono::milliseconds(0));
      }
    } give_back{unanswered, pubsub, topic, group};

    bool failing = false;
    while (!context->IsCancelled() && !ending_.load()) {
      // The answers that came.
      for (auto& request : incoming.Wait(std::chrono::steady_clock::now())) {
        if (!request.has_event_processed()) continue;  // a second initial_request changes nothing
        const auto& processed = request.event_processed();
        auto waiting = unanswered.find(processed.id());
        if (waiting == unanswered.end()) continue;  // answered twice, or after it was handed out again
        const std::string what = "message " + processed.id() + " of " + what_topic;
        Status settled;
        if (processed.status().status() == runtime_v1::TopicEventResponse::RETRY) {
          settled = pubsub.Retry(topic, group, processed.id(), RetryBackoff(backoff, waiting->second.message.deliveries));
        } else {
          if (processed.status().status() == runtime_v1::TopicEventResponse::DROP)
            spdlog::warn("{}: the app dropped it", what);
          settled = pubsub.Ack(topic, group, processed.id());
        }
        if (!settled.ok()) spdlog::warn("{}: {}", what, settled.message());
        unanswered.erase(waiting);
      }
      // Those the app did not answer in time go back.
      const auto now = std::chrono::steady_clock::now();
      for (auto it = unanswered.begin(); it != unanswered.end();) {
        if (it->second.due > now) {
          ++it;
          continue;
        }
        (void)pubsub.Retry(topic, group, it->first, RetryBackoff(backoff, it->second.message.deliveries));
        it = unanswered.erase(it);
      }
      // A client that has closed its side can answer nothing more: the stream ends, and what
      // waits for an answer is handed out again.
      if (incoming.ended()) return Status::Ok();
      if (unanswered.size() >= kMaxUnanswered) {
        incoming.Wait(std::chrono::steady_clock::now() + kFetchWait);
        continue;
      }
      auto batch = pubsub.Fetch(topic, group, kMaxUnanswered - unanswered.size(), kFetchWait);
      if (!batch.ok()) {
        if (!failing) spdlog::error("the app's stream on {}: {}; trying again", what_topic, batch.status().message());
        failing = true;
        incoming.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        continue;
      }
      failing = false;
      for (components::PubSubMessage& message : *batch) {
        const std::string what = "message " + message.id + " of " + what_topic;
        if (message.deliveries > max_deliveries) {
          DeadLetter(pubsub, topic, group, message, dead_letter_topic, max_deliveries, what);
          continue;
        }
        runtime_v1::SubscribeTopicEventsResponse event;
        FillTopicEvent(message, pubsub_name, topic, event.mutable_event_message());
        if (!stream->Write(event)) {
          (void)pubsub.Retry(topic, group, message.id, std::chrono::milliseconds(0));
          continue;  // the client has gone: the loop ends on the next look at the context
        }
        const std::string id = message.id;
        unanswered[id] = {std::move(message), std::chrono::steady_clock::now() + kEventTimeout};
      }
    }
    if (ending_.load()) return Unavailable("the sidecar is stopping: subscribe again to another one");
    return Status::Ok();
  });
}


}  // namespace wasmlet::server
