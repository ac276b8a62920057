// Subscriptions: every plugin item's "subscriptions" get a thread that reads its topic (as the
// consumer group named after the plugin) and POSTs each message to the function, in the
// binary mode of CloudEvents as Dapr delivers them. A 2xx answer acknowledges the message;
// anything else (an error status, a timeout, no function) retries it after a back-off that
// doubles, from the subscription's retryBackoffMs up to 30 s; a message delivered
// maxDeliveries times without success goes to the dead letter topic, with the reason.
//
// One message at a time per subscription, in order except for retries. The config's items
// subscribe at Start; an item installed through the admin API subscribes when it is installed
// (the registry tells this object, its PluginListener), and any item's readers stop when it is
// uninstalled.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "components/pubsub/pubsub.h"
#include "server/config/config.h"
#include "server/functions/function_registry.h"

namespace wasmlet::server {

// The wait before a message delivered `deliveries` times without success is handed out again:
// `first`, doubling with each delivery, at most 30 s.
std::chrono::milliseconds RetryBackoff(std::chrono::milliseconds first, uint32_t deliveries);

// Publishes `message` of `topic` to `dead_letter_topic`, with the reason and where it came from in
// its metadata, and acknowledges it for `group`; when it cannot be published, hands it out again
// after 30 s. `what` names the message in the log.
void DeadLetter(components::PubSubComponent& pubsub, const std::string& topic, const std::string& group,
                const components::PubSubMessage& message, const std::string& dead_letter_topic,
                uint32_t max_deliveries, const std::string& what);

class Subscriptions : public PluginListener {
 public:
  using PubSubs = std::map<std::string, std::shared_ptr<components::PubSubComponent>>;
  // `clock` times the pause after a failed read; the pub/subs time their own waits and retries.
  // Listens to `functions` for installs and uninstalls until destroyed.
  Subscriptions(PubSubs pubsubs, FunctionRegistry& functions, wasmlet::Clock& clock = SystemClock())
      : pubsubs_(std::move(pubsubs)), functions_(functions), clock_(clock) {
    functions_.set_listener(this);
  }
  ~Subscriptions() override {
    functions_.set_listener(nullptr);
    Stop();
  }

  // Every subscription of `plugins` names a pub/sub of the config: an error naming the first
  // that does not.
  Status Check(const std::vector<PluginConfig>& plugins) const;
  // Starts a reader per subscription.
  void Start(const std::vector<PluginConfig>& plugins) EXCLUDES(mutex_);
  // Stops the readers after the message each is handling; what they have not acknowledged is
  // handed out again later (after processingTimeoutMs). No reader starts afterwards.
  void Stop() EXCLUDES(mutex_);

  // An install naming a pub/sub the config lacks is refused (Check); an installed item's
  // readers start, an uninstalled item's stop as Stop stops them.
  Status CheckInstall(const PluginConfig& plugin) override { return Check({plugin}); }
  void Installed(const PluginConfig& plugin) override EXCLUDES(mutex_);
  void Uninstalled(const std::string& name) override EXCLUDES(mutex_);

 private:
  // A reader per subscription of `plugin`.
  void Add(const PluginConfig& plugin) REQUIRES(mutex_);
  // Stops the readers of the item `name` after the message each is handling; how many it had.
  size_t StopReaders(const std::string& name) EXCLUDES(mutex_);
  void Run(std::stop_token stop, std::string plugin, SubscriptionConfig subscription,
           std::shared_ptr<components::PubSubComponent> pubsub);
  // Hands `message` to the function; what to do with it next.
  void Deliver(const std::string& plugin, const SubscriptionConfig& subscription,
               components::PubSubComponent& pubsub, const components::PubSubMessage& message);

  PubSubs pubsubs_;
  FunctionRegistry& functions_;
  wasmlet::Clock& clock_;
  Mutex mutex_;
  bool stopped_ GUARDED_BY(mutex_) = false;
  std::multimap<std::string, std::jthread> readers_ GUARDED_BY(mutex_);  // by plugin name
};

}  // namespace wasmlet::server
