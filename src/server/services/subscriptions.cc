#include "server/services/subscriptions.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "abi/header_map.h"
#include "common/text.h"

namespace wasmlet::server {
namespace {

constexpr size_t kBatch = 16;
constexpr auto kWait = std::chrono::milliseconds(500);
constexpr auto kMaxBackoff = std::chrono::seconds(30);

}  // namespace

std::chrono::milliseconds RetryBackoff(std::chrono::milliseconds first, uint32_t deliveries) {
  const uint32_t doublings = std::min<uint32_t>(deliveries == 0 ? 0 : deliveries - 1, 16);
  return std::min<std::chrono::milliseconds>(kMaxBackoff, first * (int64_t{1} << doublings));
}

void DeadLetter(components::PubSubComponent& pubsub, const std::string& topic, const std::string& group,
                const components::PubSubMessage& message, const std::string& dead_letter_topic,
                uint32_t max_deliveries, const std::string& what) {
  components::PubSubMetadata metadata = message.metadata;
  metadata.emplace_back("wasmlet-dead-letter-reason", "not handled in " + std::to_string(max_deliveries) + " deliveries");
  metadata.emplace_back("wasmlet-original-topic", topic);
  metadata.emplace_back("wasmlet-original-id", message.id);
  auto moved = pubsub.Publish(dead_letter_topic, message.data, metadata);
  Status settled;
  if (!moved.ok()) {
    spdlog::error("{}: cannot move it to the dead letter topic '{}': {}", what, dead_letter_topic,
                  moved.status().message());
    settled = pubsub.Retry(topic, group, message.id, kMaxBackoff);
  } else {
    spdlog::warn("{}: not handled in {} deliveries; moved to '{}' as {}", what, max_deliveries, dead_letter_topic,
                 *moved);
    settled = pubsub.Ack(topic, group, message.id);
  }
  if (!settled.ok()) spdlog::warn("{}: {}", what, settled.message());
}

Status Subscriptions::Check(const std::vector<PluginConfig>& plugins) const {
  for (const PluginConfig& plugin : plugins) {
    for (const SubscriptionConfig& s : plugin.subscriptions) {
      if (pubsubs_.count(s.pubsub)) continue;
      std::string names;
      for (const auto& [name, ignored] : pubsubs_) names += (names.empty() ? "" : ", ") + name;
      return InvalidArgument("config " + s.json_path + ".pubsubname: no pub/sub named \"" + s.pubsub +
                             "\" under grpc_config.pub_subs (there are: " + (names.empty() ? "none" : names) +
                             ")");
    }
  }
  return Status::Ok();
}

void Subscriptions::Start(const std::vector<PluginConfig>& plugins) {
  MutexLock lock(mutex_);
  if (stopped_) return;
  for (const PluginConfig& plugin : plugins) Add(plugin);
}

void Subscriptions::Add(const PluginConfig& plugin) {
  for (const SubscriptionConfig& s : plugin.subscriptions) {
    auto pubsub = pubsubs_.at(s.pubsub);  // Check ran first
    spdlog::info("function '{}' subscribes to '{}' on pub/sub '{}' (route {}, dead letters to '{}')",
                 plugin.name, s.topic, s.pubsub, s.route, s.dead_letter_topic);
    auto read = [this, name = plugin.name, s, pubsub](std::stop_token stop) { Run(stop, name, s, pubsub); };
    readers_.emplace(plugin.name, std::jthread(std::move(read)));
  }
}

void Subscriptions::Installed(const PluginConfig& plugin) {
  // A config item that did not load may be installed under its name: its readers are replaced.
  StopReaders(plugin.name);
  MutexLock lock(mutex_);
  if (!stopped_) Add(plugin);
}

void Subscriptions::Uninstalled(const std::string& name) {
  if (StopReaders(name) > 0) spdlog::info("function '{}' no longer subscribes: it was uninstalled", name);
}

size_t Subscriptions::StopReaders(const std::string& name) {
  std::vector<std::jthread> readers;
  {
    MutexLock lock(mutex_);
    auto [begin, end] = readers_.equal_range(name);
    for (auto it = begin; it != end; ++it) readers.push_back(std::move(it->second));
    readers_.erase(begin, end);
  }
  for (auto& reader : readers) reader.request_stop();
  const size_t stopped = readers.size();
  readers.clear();  // joins, outside the lock: a reader may be in the middle of a delivery
  return stopped;
}

void Subscriptions::Stop() {
  std::multimap<std::string, std::jthread> readers;
  {
    MutexLock lock(mutex_);
    stopped_ = true;
    readers.swap(readers_);
  }
  for (auto& [name, reader] : readers) reader.request_stop();
  readers.clear();  // joins, after every reader was asked: they stop together
}

void Subscriptions::Run(std::stop_token stop, std::string plugin, SubscriptionConfig subscription,
                        std::shared_ptr<components::PubSubComponent> pubsub) {
  bool failing = false;
  while (!stop.stop_requested()) {
    auto batch = pubsub->Fetch(subscription.topic, plugin, kBatch, kWait);
    if (!batch.ok()) {
      // Logged once per outage, not once per attempt.
      if (!failing) {
        spdlog::error("subscription of '{}' to '{}': {}; trying again every second", plugin,
                      subscription.topic, batch.status().message());
      }
      failing = true;
      Pause(clock_, stop, std::chrono::seconds(1));
      continue;
    }
    if (failing) spdlog::info("subscription of '{}' to '{}' reads again", plugin, subscription.topic);
    failing = false;
    for (const auto& message : *batch) {
      if (stop.stop_requested()) break;  // the rest comes back after processingTimeoutMs
      Deliver(plugin, subscription, *pubsub, message);
    }
  }
}

void Subscriptions::Deliver(const std::string& plugin, const SubscriptionConfig& subscription,
                            components::PubSubComponent& pubsub, const components::PubSubMessage& message) {
  const std::string what = "message " + message.id + " of '" + subscription.topic + "' for '" + plugin + "'";
  auto settle = [&](const Status& status) {
    if (!status.ok()) spdlog::warn("{}: {}", what, status.message());
  };
  if (message.deliveries > subscription.max_deliveries) {
    return DeadLetter(pubsub, subscription.topic, plugin, message, subscription.dead_letter_topic,
                      subscription.max_deliveries, what);
  }

  std::string failure;
  if (auto route = functions_.RouteIdOf(plugin); !route) {
    failure = "the function is not running";
  } else {
    abi::HttpRequest request;
    request.method = "POST";
    request.path = subscription.route;
    request.authority = "localhost";
    request.headers = {{"id", *route},
                       {"ce-specversion", "1.0"},
                       {"ce-id", message.id},
                       {"ce-source", "wasmlet"},
                       {"ce-type", "com.dapr.event.sent"},
                       {"ce-pubsubname", subscription.pubsub},
                       {"ce-topic", subscription.topic},
                       {"wasmlet-deliveries", std::to_string(message.deliveries)}};
    bool typed = false;
    for (const auto& [name, value] : message.metadata) {
      if (!IsHttpToken(name) || !IsHeaderValueSafe(value)) continue;
      typed = typed || abi::ToLower(name) == "content-type";
      request.headers.emplace_back(name, value);
    }
    if (!typed) request.headers.emplace_back("content-type", "application/octet-stream");
    request.body = message.data;
    auto response = functions_.InvokeInProcess(*route, std::move(request));
    if (response.ok() && response->status >= 200 && response->status < 300)
      return settle(pubsub.Ack(subscription.topic, plugin, message.id));
    failure = response.ok() ? "the function answered " + std::to_string(response->status)
                            : response.status().message();
  }
  const auto backoff = RetryBackoff(subscription.retry_backoff, message.deliveries);
  spdlog::debug("{}: delivery {} failed ({}); again in {} ms", what, message.deliveries,
                Printable(failure, 256), backoff.count());
  settle(pubsub.Retry(subscription.topic, plugin, message.id, backoff));
}

}  // namespace wasmlet::server
