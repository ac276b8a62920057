#include "shim/events.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include "forward.pb.h"
#include "shim/ttrpc.h"

namespace wasmlet::shim {

namespace {
constexpr int kCallTimeoutMs = 5000;
constexpr int kAttempts = 3;
}  // namespace

EventForwarder::EventForwarder(std::string ttrpc_address, std::string ns)
    : address_(std::move(ttrpc_address)), namespace_(std::move(ns)), thread_([this] { Run(); }) {}

EventForwarder::~EventForwarder() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void EventForwarder::Publish(const std::string& topic, const google::protobuf::Message& event) {
  containerd::services::events::ttrpc::v1::ForwardRequest request;
  auto* envelope = request.mutable_envelope();
  *envelope->mutable_timestamp() = google::protobuf::util::TimeUtil::GetCurrentTime();
  envelope->set_namespace_(namespace_);
  envelope->set_topic(topic);
  // containerd resolves the type URL by the message's full name, as Go's typeurl writes it.
  envelope->mutable_event()->set_type_url(event.GetTypeName());
  envelope->mutable_event()->set_value(event.SerializeAsString());
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(request.SerializeAsString());
  }
  changed_.notify_all();
}

void EventForwarder::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [this] { return queue_.empty() && !sending_; });
}

void EventForwarder::Run() {
  std::unique_ptr<TtrpcClient> client;
  const Metadata metadata = {{"containerd-namespace-ttrpc", namespace_}};
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    std::string request = std::move(queue_.front());
    queue_.pop_front();
    sending_ = true;
    lock.unlock();
    Status status = Status::Ok();
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      if (!client) {
        auto connected = TtrpcClient::Connect(address_, kCallTimeoutMs);
        if (!connected.ok()) {
          status = connected.status();
          continue;
        }
        client = std::move(*connected);
      }
      auto answer = client->Call("containerd.services.events.ttrpc.v1.Events", "Forward", request, metadata,
                                 kCallTimeoutMs);
      status = answer.status();
      if (status.ok()) break;
      client.reset();  // a broken connection: dial again
    }
    if (!status.ok())
      spdlog::warn("could not publish an event to containerd at {}: {}", address_, status.message());
    lock.lock();
    sending_ = false;
    changed_.notify_all();
  }
}

}  // namespace wasmlet::shim
