#include "server/api/app_callback.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <strings.h>

#include <algorithm>
#include <charconv>

#include "appcallback.grpc.pb.h"
#include "common/text.h"
#include "server/services/subscriptions.h"

namespace wasmlet::server {
namespace {

namespace runtime_v1 = ::spec::proto::runtime::v1;

constexpr size_t kBatch = 16;
constexpr auto kWait = std::chrono::milliseconds(500);
constexpr auto kDeliveryTimeout = std::chrono::seconds(10);
constexpr auto kListTimeout = std::chrono::seconds(5);
// A delivery that did not reach the app comes back after this, not after the back-off: it was
// not the app's answer.
constexpr auto kUnreachedRetry = std::chrono::milliseconds(200);
// Message ids whose undelivered tries are remembered, per reader; past it the memory starts over.
constexpr size_t kMaxRemembered = 10000;

// A number of the subscription's metadata, or `fallback` (with a warning) when it is not one.
template <typename T>
T MetadataNumber(const google::protobuf::Map<std::string, std::string>& metadata, const char* key, T fallback,
                 const std::string& what) {
  auto it = metadata.find(key);
  if (it == metadata.end() || it->second.empty()) return fallback;
  T value{};
  const std::string& text = it->second;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value <= 0) {
    spdlog::warn("{}: metadata {} \"{}\" is not a whole number above 0; using {}", what, key, Printable(text, 32),
                 fallback);
    return fallback;
  }
  return value;
}

}  // namespace

void FillTopicEvent(const components::PubSubMessage& message, const std::string& pubsub, const std::string& topic,
                    runtime_v1::TopicEventRequest* event) {
  event->set_id(message.id);
  event->set_source("wasmlet");
  event->set_type("com.dapr.event.sent");
  event->set_spec_version("1.0");
  event->set_topic(topic);
  event->set_pubsub_name(pubsub);
  event->set_data(message.data);
  std::string content_type = "application/octet-stream";
  for (const auto& [name, value] : message.metadata) {
    if (strcasecmp(name.c_str(), "content-type") == 0) {
      content_type = value;
      continue;
    }
    (*event->mutable_metadata())[name] = value;
  }
  event->set_data_content_type(content_type);
}

class AppSubscriptions::Callback {
 public:
  explicit Callback(const std::string& target) {
    grpc::ChannelArguments args;
    // An app that comes back is seen within a second or two, not after gRPC's default of up
    // to two minutes between tries.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    stub = runtime_v1::AppCallback::NewStub(channel);
  }
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<runtime_v1::AppCallback::Stub> stub;
};

AppSubscriptions::AppSubscriptions(const ServerConfig& config, PubSubs pubsubs, wasmlet::Clock& clock)
    : config_(config),
      pubsubs_(std::move(pubsubs)),
      clock_(clock),
      group_(config.app.app_id.empty() ? "wasmlet-app" : config.app.app_id) {}

AppSubscriptions::~AppSubscriptions() { Stop(); }

void AppSubscriptions::Start() {
  if (config_.app.callback_port == 0) return;
  const std::string target = config_.app.callback_host + ":" + std::to_string(config_.app.callback_port);
  callback_ = std::make_shared<Callback>(target);
  spdlog::info("the app's callback (AppCallback) is at {}: its subscriptions are asked once it answers", target);
  MutexLock lock(mutex_);
  if (stopped_) return;
  watcher_ = std::jthread([this](std::stop_token stop) { Watch(stop); });
}

void AppSubscriptions::Stop() {
  std::jthread watcher;
  std::vector<std::pair<std::string, std::jthread>> readers;
  {
    MutexLock lock(mutex_);
    stopped_ = true;
    watcher = std::move(watcher_);
    readers.swap(readers_);
  }
  if (watcher.joinable()) {
    watcher.request_stop();
    watcher.join();
  }
  for (auto& [name, reader] : readers) reader.request_stop();
  readers.clear();  // joins, after every reader was asked: they stop together
}

std::vector<std::string> AppSubscriptions::Running() const {
  MutexLock lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, reader] : readers_) names.push_back(name);
  return names;
}

void AppSubscriptions::Watch(std::stop_token stop) {
  bool listed = false;
  bool warned = false;
  while (!stop.stop_requested()) {
    const grpc_connectivity_state state = callback_->channel->GetState(/*try_to_connect=*/true);
    const bool ready = state == GRPC_CHANNEL_READY;
    reachable_.store(ready);
    if (!ready) {
      if (listed) spdlog::warn("the app's callback cannot be reached: no message goes to it until it can");
      listed = false;
    }
    if (ready && !listed) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + kListTimeout);
      google::protobuf::Empty empty;
      runtime_v1::ListTopicSubscriptionsResponse answer;
      const grpc::Status asked = callback_->stub->ListTopicSubscriptions(&context, empty, &answer);
      if (asked.ok() || asked.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        std::vector<Subscription> wanted;
        for (const runtime_v1::TopicSubscription& given : answer.subscriptions()) {
          const std::string what = "the app's subscription to '" + Printable(given.topic(), 128) + "' on '" +
                                   Printable(given.pubsub_name(), 64) + "'";
          if (!pubsubs_.count(given.pubsub_name()) || given.topic().empty()) {
            std::string names;
            for (const auto& [name, pubsub] : pubsubs_) names += (names.empty() ? "" : ", ") + name;
            spdlog::error("{} is not served: {} (the config's pub/subs: {})", what,
                          given.topic().empty() ? "it names no topic" : "the config has no such pub/sub",
                          names.empty() ? "none" : names);
            continue;
          }
          Subscription s;
          s.pubsub = given.pubsub_name();
          s.topic = given.topic();
          auto dead = given.metadata().find("deadLetterTopic");
          s.dead_letter_topic =
              dead != given.metadata().end() && !dead->second.empty() ? dead->second : s.topic + "-deadletter";
          s.max_deliveries = MetadataNumber<uint32_t>(given.metadata(), "maxDeliveries", 5, what);
          s.retry_backoff = std::chrono::milliseconds(MetadataNumber<int64_t>(given.metadata(), "retryBackoffMs", 500, what));
          wanted.push_back(std::move(s));
        }
        spdlog::info("the app subscribes to {} topic{}", wanted.size(), wanted.size() == 1 ? "" : "s");
        Replace(std::move(wanted));
        listed = true;
        warned = false;
      } else if (!warned) {
        spdlog::warn("the app's ListTopicSubscriptions failed ({}: {}); asking again every second",
                     static_cast<int>(asked.error_code()), asked.error_message());
        warned = true;
      }
    }
    // Until the channel's state changes, or a second passes (then `stop` is looked at again, and a
    // failed list asked again).
    callback_->channel->WaitForStateChange(state, std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  reachable_.store(false);
}

void AppSubscriptions::Replace(std::vector<Subscription> wanted) {
  std::vector<std::jthread> retired;
  {
    MutexLock lock(mutex_);
    if (stopped_) return;
    std::vector<std::pair<std::string, std::jthread>> kept;
    for (auto& [name, reader] : readers_) {
      const bool still = std::any_of(wanted.begin(), wanted.end(),
                                     [&name](const Subscription& s) { return s.pubsub + "/" + s.topic == name; });
      if (still) {
        kept.emplace_back(name, std::move(reader));
      } else {
        retired.push_back(std::move(reader));
      }
    }
    readers_ = std::move(kept);
    for (Subscription& s : wanted) {
      const std::string name = s.pubsub + "/" + s.topic;
      const bool running = std::any_of(readers_.begin(), readers_.end(), [&name](const auto& r) { return r.first == name; });
      if (running) continue;
      spdlog::info("the app subscribes to '{}' on pub/sub '{}' (dead letters to '{}', {} deliveries at most)", s.topic,
                   s.pubsub, s.dead_letter_topic, s.max_deliveries);
      auto pubsub = pubsubs_.at(s.pubsub);
      readers_.emplace_back(name, std::jthread([this, s, pubsub](std::stop_token stop) { Read(stop, s, pubsub); }));
    }
  }
  for (auto& reader : retired) reader.request_stop();
  retired.clear();  // joins, outside the lock
}

void AppSubscriptions::Read(std::stop_token stop, Subscription s, std::shared_ptr<components::PubSubComponent> pubsub) {
  std::map<std::string, uint32_t> unreached;  // message id -> deliveries that did not reach the app
  bool failing = false;
  while (!stop.stop_requested()) {
    if (!reachable_.load()) {
      Pause(clock_, stop, kUnreachedRetry);
      continue;
    }
    auto batch = pubsub->Fetch(s.topic, group_, kBatch, kWait);
    if (!batch.ok()) {
      if (!failing)
        spdlog::error("the app's subscription to '{}': {}; trying again every second", s.topic, batch.status().message());
      failing = true;
      Pause(clock_, stop, std::chrono::seconds(1));
      continue;
    }
    failing = false;
    for (const components::PubSubMessage& message : *batch) {
      if (stop.stop_requested()) break;  // the rest comes back after processingTimeoutMs
      const std::string what = "message " + message.id + " of '" + s.topic + "' for the app";
      auto settle = [&](const Status& status) {
        if (!status.ok()) spdlog::warn("{}: {}", what, status.message());
      };
      if (unreached.size() > kMaxRemembered) unreached.clear();
      const uint32_t missed = unreached.count(message.id) ? unreached[message.id] : 0;
      const uint32_t reached = message.deliveries > missed ? message.deliveries - missed : 1;
      if (reached > s.max_deliveries) {
        unreached.erase(message.id);
        DeadLetter(*pubsub, s.topic, group_, message, s.dead_letter_topic, s.max_deliveries, what);
        continue;
      }
      runtime_v1::TopicEventRequest event;
      FillTopicEvent(message, s.pubsub, s.topic, &event);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + kDeliveryTimeout);
      runtime_v1::TopicEventResponse answer;
      const grpc::Status delivered = callback_->stub->OnTopicEvent(&context, event, &answer);
      if (delivered.ok() && answer.status() != runtime_v1::TopicEventResponse::RETRY) {
        if (answer.status() == runtime_v1::TopicEventResponse::DROP)
          spdlog::warn("{}: the app dropped it", what);
        unreached.erase(message.id);
        settle(pubsub->Ack(s.topic, group_, message.id));
        continue;
      }
      if (delivered.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        spdlog::warn("{}: the app does not implement OnTopicEvent; the message is acknowledged", what);
        unreached.erase(message.id);
        settle(pubsub->Ack(s.topic, group_, message.id));
        continue;
      }
      if (delivered.error_code() == grpc::StatusCode::UNAVAILABLE) {
        // Not the app's answer: the app was not there. This try does not count.
        ++unreached[message.id];
        settle(pubsub->Retry(s.topic, group_, message.id, kUnreachedRetry));
        continue;
      }
      const std::string failure =
          delivered.ok() ? "the app answered RETRY" : "the app's OnTopicEvent failed: " + delivered.error_message();
      const auto backoff = RetryBackoff(s.retry_backoff, reached);
      spdlog::debug("{}: delivery {} failed ({}); again in {} ms", what, reached, Printable(failure, 256),
                    backoff.count());
      settle(pubsub->Retry(s.topic, group_, message.id, backoff));
    }
  }
}

}  // namespace wasmlet::server
