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
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  changed_.NotifyAll();
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
    MutexLock lock(mutex_);
    queue_.push_back(request.SerializeAsString());
  }
  changed_.NotifyAll();
}

void EventForwarder::Flush(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(mutex_);
  while ((!queue_.empty() || sending_) && changed_.WaitUntil(mutex_, deadline)) {
  }
}

void EventForwarder::Run() {
  std::unique_ptr<TtrpcClient> client;
  const Metadata metadata = {{"containerd-namespace-ttrpc", namespace_}};
  MutexLock lock(mutex_);
  for (;;) {
    while (!stopping_ && queue_.empty()) changed_.Wait(mutex_);
    if (queue_.empty()) return;  // stopping, nothing left
    std::string request = std::move(queue_.front());
    queue_.pop_front();
    sending_ = true;
    lock.Unlock();
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
    lock.Lock();
    sending_ = false;
    changed_.NotifyAll();
  }
}

}  // namespace wasmlet::shim
