// Pub/sub to the application, as Layotto and Dapr deliver it: the app serves the gRPC service
// spec.proto.runtime.v1.AppCallback on grpc_config.app's grpc_callback_host:grpc_callback_port.
//
// A watcher thread keeps a channel to it. Each time the channel becomes ready (at start, and
// after the app comes back) it asks ListTopicSubscriptions and runs a reader per subscription:
// the reader fetches the topic's messages as the consumer group named after the app id and
// hands each to OnTopicEvent as a CloudEvent. SUCCESS acknowledges it, as do DROP (logged) and
// an app that does not implement OnTopicEvent; RETRY, an error or no answer within 10 s retries
// it after the back-off functions' subscriptions use (the subscription's metadata
// retryBackoffMs, doubling to 30 s), and a message the app has answered maxDeliveries times
// without taking it goes to deadLetterTopic (TOPIC-deadletter), as for functions.
//
// At least once on the stores that keep messages (Redis Streams, the embedded store): while the
// app cannot be reached the readers fetch nothing, and a delivery that did not reach the app does
// not count toward maxDeliveries, so an app that is down loses no message and sends none to the
// dead letter topic.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "components/pubsub/pubsub.h"
#include "server/config/config.h"

namespace spec::proto::runtime::v1 {
class TopicEventRequest;
}

namespace wasmlet::server {

// `message` of `topic` on `pubsub` as the CloudEvent the app receives (OnTopicEvent, and
// SubscribeTopicEvents' event_message): its id, type com.dapr.event.sent, spec version 1.0,
// source "wasmlet", the content type it was published with (application/octet-stream when none),
// the data, and the rest of its metadata.
void FillTopicEvent(const components::PubSubMessage& message, const std::string& pubsub, const std::string& topic,
                    spec::proto::runtime::v1::TopicEventRequest* event);

class AppSubscriptions {
 public:
  using PubSubs = std::map<std::string, std::shared_ptr<components::PubSubComponent>>;

  AppSubscriptions(const ServerConfig& config, PubSubs pubsubs, wasmlet::Clock& clock = SystemClock());
  ~AppSubscriptions();
  AppSubscriptions(const AppSubscriptions&) = delete;
  AppSubscriptions& operator=(const AppSubscriptions&) = delete;

  // Starts the watcher when the config names a callback port (nothing otherwise).
  void Start() EXCLUDES(mutex_);
  // Stops the watcher and the readers after the message each is handling; what they have not
  // acknowledged is handed out again later (after the pub/sub's processingTimeoutMs).
  void Stop() EXCLUDES(mutex_);

  // The subscriptions running now, as "pubsub/topic" (for tests and the log).
  std::vector<std::string> Running() const EXCLUDES(mutex_);

  struct Subscription {
    std::string pubsub;
    std::string topic;
    std::string dead_letter_topic;
    uint32_t max_deliveries = 5;
    std::chrono::milliseconds retry_backoff{500};
  };

 private:
  class Callback;  // the channel and stub to the app

  void Watch(std::stop_token stop);
  // Replaces the readers with one per subscription of `wanted`.
  void Replace(std::vector<Subscription> wanted) EXCLUDES(mutex_);
  void Read(std::stop_token stop, Subscription subscription, std::shared_ptr<components::PubSubComponent> pubsub);

  const ServerConfig& config_;
  const PubSubs pubsubs_;
  wasmlet::Clock& clock_;
  const std::string group_;  // the consumer group: the app id
  std::shared_ptr<Callback> callback_;
  std::atomic<bool> reachable_{false};  // the channel to the app is ready
  mutable Mutex mutex_;
  bool stopped_ GUARDED_BY(mutex_) = false;
  std::jthread watcher_ GUARDED_BY(mutex_);
  std::vector<std::pair<std::string, std::jthread>> readers_ GUARDED_BY(mutex_);  // "pubsub/topic"
};

}  // namespace wasmlet::server
