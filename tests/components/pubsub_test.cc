// Pub/sub of every type (in-memory, embedded SQLite, a real redis-server): each group gets every
// message once and in order; on the durable stores a retried message comes back after its
// back-off, and one never acknowledged comes back after processingTimeoutMs, across a restart.
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
    if (config_.type == "embedded") config_.metadata["path"] = dir_.File("state.db");
    if (config_.type == "redis") {
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
  std::vector<PubSubMessage> Fetch(PubSubComponent& pubsub, const std::string& group,
                                   milliseconds wait = milliseconds(300)) {
    auto got = pubsub.Fetch("orders", group, 16, wait);
    EXPECT_TRUE(got.ok()) << got.status().message();
    return got.ok() ? *got : std::vector<PubSubMessage>{};
  }
  bool durable() const { return GetParam() != "in-memory"; }

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
    EXPECT_TRUE(Fetch(*pubsub_, group, milliseconds(50)).empty()) << "acknowledged: never again";
  }
  EXPECT_TRUE(pubsub_->Fetch("other-topic", "billing", 16, milliseconds(10))->empty());
}

TEST_P(PubSubTest, AWaitingSubscriberIsWokenByAPublication) {
  std::thread publisher([&] {
    std::this_thread::sleep_for(milliseconds(100));
    ASSERT_TRUE(pubsub_->Publish("orders", "late", {}).ok());
  });
  const auto start = std::chrono::steady_clock::now();
  std::vector<PubSubMessage> got;
  while (got.empty() && std::chrono::steady_clock::now() - start < std::chrono::seconds(3))
    got = Fetch(*pubsub_, "billing", milliseconds(400));
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
    EXPECT_TRUE(Fetch(*pubsub_, "billing", milliseconds(400)).empty()) << "in-memory is at most once";
    return;
  }
  EXPECT_TRUE(Fetch(*pubsub_, "billing", milliseconds(20)).empty()) << "not before its back-off";
  std::this_thread::sleep_for(milliseconds(250));
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
    std::this_thread::sleep_for(milliseconds(450));
    EXPECT_TRUE(Fetch(*reopened, "billing", milliseconds(50)).empty());
    return;
  }
  ASSERT_TRUE(reopened->Publish("orders", "three", {}).ok());
  auto fresh = Fetch(*reopened, "billing");
  ASSERT_EQ(fresh.size(), 1u) << "the pending one waits for processingTimeoutMs";
  EXPECT_EQ(fresh[0].data, "three");
  ASSERT_TRUE(reopened->Ack("orders", "billing", fresh[0].id).ok());
  std::this_thread::sleep_for(milliseconds(450));
  auto back = Fetch(*reopened, "billing");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].data, "two");
  EXPECT_EQ(back[0].deliveries, 2u);
  ASSERT_TRUE(reopened->Ack("orders", "billing", back[0].id).ok());
  std::this_thread::sleep_for(milliseconds(450));
  EXPECT_TRUE(Fetch(*reopened, "billing", milliseconds(50)).empty()) << "acknowledged ones never come back";
}

INSTANTIATE_TEST_SUITE_P(Stores, PubSubTest, ::testing::Values("in-memory", "embedded", "redis"),
                         [](const auto& info) {
                           return info.param == "in-memory" ? std::string("memory") : info.param;
                         });

}  // namespace
}  // namespace wasmlet::components
