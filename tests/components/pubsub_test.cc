// Pub/sub of every type (in-memory, embedded SQLite, a real redis-server): each group gets every
// message once and in order; on the durable stores a retried message comes back after its
// back-off, and one never acknowledged comes back after processingTimeoutMs, across a restart.
// The stores run on a ManualClock: back-offs and leases end when the test moves the time, and
// a waiting subscriber waits until the test wakes it. Redis keeps how long a message has been
// pending, and a subscriber's wait, on its server: there the test waits for the event itself.
#include <gtest/gtest.h>

#include <thread>

#include "components/pubsub/pubsub.h"
#include "e2e/harness.h"

namespace wasmlet::components {
namespace {

using std::chrono::milliseconds;

class PubSubTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    config_.name = "events";
    config_.type = GetParam();
    config_.json_path = "grpc_config.pub_subs.events";
    config_.metadata["processingTimeoutMs"] = "400";
    config_.clock = &clock_;
    if (config_.type == "embedded") config_.metadata["path"] = dir_.File("state.db");
    if (redis()) {
      redis_ = std::make_unique<testing::Redis>(dir_);
      config_.metadata["redisHost"] = "127.0.0.1:" + std::to_string(redis_->port());
    }
    pubsub_ = Open();
  }
  std::unique_ptr<PubSubComponent> Open() {
    auto pubsub = CreatePubSub(config_);
    EXPECT_TRUE(pubsub.ok()) << pubsub.status().message();
    return pubsub.ok() ? std::move(*pubsub) : nullptr;
  }
  // What is there now, unless `wait` is given (then on the test's clock, or Redis's).
  std::vector<PubSubMessage> Fetch(PubSubComponent& pubsub, const std::string& group,
                                   milliseconds wait = milliseconds(0)) {
    auto got = pubsub.Fetch("orders", group, 16, wait);
    EXPECT_TRUE(got.ok()) << got.status().message();
    return got.ok() ? *got : std::vector<PubSubMessage>{};
  }
  // What billing gets once processingTimeoutMs (400 ms) has passed for what was handed out
  // until now, and not before.
  std::vector<PubSubMessage> FetchAfterProcessingTimeout(PubSubComponent& pubsub) {
    if (!redis()) {
      clock_.Advance(milliseconds(399));
      EXPECT_TRUE(Fetch(pubsub, "billing").empty()) << "handed out again before processingTimeoutMs";
      clock_.Advance(milliseconds(1));
      return Fetch(pubsub, "billing");
    }
    // Redis's own clock: each Fetch waits on the server for up to 300 ms.
    std::vector<PubSubMessage> got;
    for (int i = 0; i < 50 && got.empty(); ++i) got = Fetch(pubsub, "billing", milliseconds(300));
    return got;
  }
  bool durable() const { return GetParam() != "in-memory"; }
  bool redis() const { return GetParam() == "redis"; }

  ManualClock clock_;
  testing::TempDir dir_;
  std::unique_ptr<testing::Redis> redis_;
  StoreConfig config_;
  std::unique_ptr<PubSubComponent> pubsub_;
};

TEST_P(PubSubTest, EachGroupGetsEveryMessageOnceInOrder) {
  for (int i = 1; i <= 5; ++i) {
    auto id = pubsub_->Publish("orders", "order-" + std::to_string(i), {{"x-order", std::to_string(i)}});
    ASSERT_TRUE(id.ok()) << id.status().message();
  }
  for (const char* group : {"billing", "shipping"}) {
    auto got = Fetch(*pubsub_, group);
    ASSERT_EQ(got.size(), 5u) << group;
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(got[i].data, "order-" + std::to_string(i + 1));
      EXPECT_EQ(got[i].metadata, (PubSubMetadata{{"x-order", std::to_string(i + 1)}}));
      EXPECT_EQ(got[i].deliveries, 1u);
      ASSERT_TRUE(pubsub_->Ack("orders", group, got[i].id).ok());
    }
    EXPECT_TRUE(Fetch(*pubsub_, group).empty()) << "acknowledged: never again";
  }
  EXPECT_TRUE(pubsub_->Fetch("other-topic", "billing", 16, milliseconds(0))->empty());
}

TEST_P(PubSubTest, AWaitingSubscriberIsWokenByAPublication) {
  std::thread publisher([&] {
    // Published once the subscriber waits: on the test's clock, or blocked in Redis.
    if (redis()) {
      auto blocked = [&] {
        return redis_->Cli("INFO clients").find("blocked_clients:1") != std::string::npos;
      };
      for (int i = 0; i < 5000 && !blocked(); ++i) std::this_thread::yield();
    } else {
      EXPECT_TRUE(clock_.AwaitWaiter());
    }
    ASSERT_TRUE(pubsub_->Publish("orders", "late", {}).ok());
  });
  // The test's clock does not move: only the publication ends the wait.
  std::vector<PubSubMessage> got = Fetch(*pubsub_, "billing", milliseconds(400));
  for (int i = 0; redis() && i < 20 && got.empty(); ++i) got = Fetch(*pubsub_, "billing", milliseconds(400));
  publisher.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "late");
}

TEST_P(PubSubTest, ARetriedMessageComesBackAfterItsBackoffCountingItsDeliveries) {
  ASSERT_TRUE(pubsub_->Publish("orders", "flaky", {}).ok());
  auto first = Fetch(*pubsub_, "billing");
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(pubsub_->Retry("orders", "billing", first[0].id, milliseconds(200)).ok());
  if (!durable()) {
    clock_.Advance(milliseconds(400));
    EXPECT_TRUE(Fetch(*pubsub_, "billing").empty()) << "in-memory is at most once";
    return;
  }
  clock_.Advance(milliseconds(199));
  EXPECT_TRUE(Fetch(*pubsub_, "billing").empty()) << "not before its back-off";
  clock_.Advance(milliseconds(1));
  auto again = Fetch(*pubsub_, "billing");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, first[0].id);
  EXPECT_EQ(again[0].data, "flaky");
  EXPECT_EQ(again[0].deliveries, 2u);
  ASSERT_TRUE(pubsub_->Ack("orders", "billing", again[0].id).ok());
}

TEST_P(PubSubTest, AMessageNeverAcknowledgedComesBackAfterARestart) {
  ASSERT_TRUE(pubsub_->Publish("orders", "one", {}).ok());
  ASSERT_TRUE(pubsub_->Publish("orders", "two", {}).ok());
  auto handed = Fetch(*pubsub_, "billing");
  ASSERT_EQ(handed.size(), 2u);
  ASSERT_TRUE(pubsub_->Ack("orders", "billing", handed[0].id).ok());
  // "two" was handed out, and the process died before acknowledging it.
  pubsub_.reset();
  auto reopened = Open();
  ASSERT_TRUE(reopened);
  if (!durable()) {  // in-memory, at most once: a restart loses it, as documented
    clock_.Advance(milliseconds(450));
    EXPECT_TRUE(Fetch(*reopened, "billing").empty());
    return;
  }
  ASSERT_TRUE(reopened->Publish("orders", "three", {}).ok());
  auto fresh = Fetch(*reopened, "billing");
  ASSERT_EQ(fresh.size(), 1u) << "the pending one waits for processingTimeoutMs";
  EXPECT_EQ(fresh[0].data, "three");
  ASSERT_TRUE(reopened->Ack("orders", "billing", fresh[0].id).ok());
  auto back = FetchAfterProcessingTimeout(*reopened);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].data, "two");
  EXPECT_EQ(back[0].deliveries, 2u);
  ASSERT_TRUE(reopened->Ack("orders", "billing", back[0].id).ok());

  // Acknowledged ones never come back: a message handed out after them and left unacknowledged
  // comes back alone.
  ASSERT_TRUE(reopened->Publish("orders", "four", {}).ok());
  ASSERT_EQ(Fetch(*reopened, "billing").size(), 1u);
  auto later = FetchAfterProcessingTimeout(*reopened);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].data, "four");
}

INSTANTIATE_TEST_SUITE_P(Stores, PubSubTest, ::testing::Values("in-memory", "embedded", "redis"),
                         [](const auto& info) {
                           return info.param == "in-memory" ? std::string("memory") : info.param;
                         });

}  // namespace
}  // namespace wasmlet::components
