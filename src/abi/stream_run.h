// One HTTP stream run through a chain of plugin instances, phase by phase, as Envoy and MOSN run
// their filters: request headers, body and trailers through the filters in order; then the
// answer (the upstream's, or a filter's local one, which skips the upstream); then response
// headers, body and trailers through the filters in reverse order; then done, log and delete
// on every filter.
//
// A filter may pause the stream while it waits for an outbound call it made; the stream goes
// on when the filter resumes it (proxy_continue_stream) or answers it, from the callback of the
// call's answer. Bodies arrive whole (the listener and the upstream client read them whole), so
// a filter that pauses to buffer a body it has not seen the end of is simply given the rest: a
// pause counts as a wait only when the filter has an outbound call in flight. A pause with
// nothing in flight at the end of the message can never end: the stream is answered 500.
//
// A function (Layotto's FaaS mode) is the same with one filter and no upstream: its answer is
// 200 with what it wrote to the response body.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "abi/plugin_vm.h"

namespace wasmlet::abi {

class StreamRun : public std::enable_shared_from_this<StreamRun> {
 public:
  // Runs `work` later on the calling thread (the event loop the instances live on).
  using Post = std::function<void(std::function<void()>)>;
  using Done = std::function<void(Result<HttpResponse>)>;
  // Answers the request as the filters left it, when none answered it; `answer` may be called
  // later, on this thread.
  using Upstream = std::function<void(StreamData& data, std::function<void(HttpResponse)> answer)>;

  struct Filter {
    PluginVm* vm = nullptr;
    std::chrono::milliseconds budget{0};  // guest time its callbacks of this stream may use
  };

  // `post` empty: the stream cannot wait, and a filter that waits for an outbound call fails
  // it. `done` is called exactly once: before Start returns when nothing waited.
  static void Start(std::vector<Filter> filters, std::unique_ptr<StreamData> data, Upstream upstream,
                    Post post, Done done);

  // Not for callers: public for std::make_shared.
  StreamRun(std::vector<Filter> filters, std::unique_ptr<StreamData> data, Upstream upstream, Post post,
            Done done);

 private:
  enum class Stage {
    kOpen,
    kRequestHeaders,
    kRequestBody,
    kRequestTrailers,
    kUpstream,
    kResponseHeaders,
    kResponseBody,
    kResponseTrailers,
    kClose,
  };
  struct Slot {
    Filter filter;
    std::weak_ptr<PluginVm*> alive;
    uint32_t context = 0;
    std::chrono::milliseconds used{0};
  };

  // Runs stages until the stream must wait or has ended.
  void Step();
  // A filter's callback for the current stage; false when the stream must wait or has failed.
  bool RunFilter(Slot& slot);
  void Woken();
  void Answered(HttpResponse response);
  // The response phase begins with `response`.
  void BeginResponse(HttpResponse response, bool local);
  // An answer a filter gave (or the stream's 500): in the request phase the response phase
  // begins with it; in the response phase it replaces the response and the stream ends.
  void AnswerWith(HttpResponse response, bool local);
  static HttpResponse Stuck(std::string why);
  void Fail(Status status);
  void Finish();
  // Times of the clock of the filter's instance.
  engine::Deadline DeadlineFor(const Slot& slot, Clock& clock) const;
  void Charge(Slot& slot, Clock& clock, Clock::TimePoint since);
  PluginVm* Live(const Slot& slot) const;
  Slot& Current();
  std::string Name(const Slot& slot) const;

  std::vector<Slot> slots_;
  std::unique_ptr<StreamData> data_;
  Upstream upstream_;
  Post post_;
  Done done_;
  Stage stage_ = Stage::kOpen;
  size_t index_ = 0;  // the filter of the current stage (response stages count from the last)
  bool request_has_body_ = false;
  bool request_has_trailers_ = false;
  bool response_has_body_ = false;
  bool response_has_trailers_ = false;
  bool sent_locally_ = false;
  bool waiting_ = false;
  std::optional<HttpResponse> final_;  // a local answer given during the response phase
  Status error_;
  std::shared_ptr<StreamRun> keep_;  // itself, while it waits
};

// The response the stream's data holds after its response phase.
HttpResponse ResponseFromStream(StreamData& data);

}  // namespace wasmlet::abi
