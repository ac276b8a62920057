// Locks, sequencers and configuration stores of every type (in-memory, embedded SQLite, a real
// redis-server): only the holder unlocks, a lock expires, ids strictly increase per key under
// four threads at once, configuration items read back in the order asked.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>
#include <vector>

#include "components/configuration/configuration_store.h"
#include "components/lock/lock_store.h"
#include "components/sequencer/sequencer.h"
#include "e2e/harness.h"

namespace wasmlet::components {
namespace {

class LockSequencerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    StoreConfig config;
    config.name = "demo";
    config.type = GetParam();
    config.json_path = "grpc_config.lock.demo";
    config.clock = &clock_;
    if (config.type == "embedded") config.metadata["path"] = dir_.File("state.db");
    if (config.type == "redis") {
      redis_ = std::make_unique<testing::Redis>(dir_);
      config.metadata["redisHost"] = "127.0.0.1:" + std::to_string(redis_->port());
    }
    auto lock = CreateLockStore(config);
    ASSERT_TRUE(lock.ok()) << lock.status().message();
    lock_ = std::move(*lock);
    auto sequencer = CreateSequencer(config);
    ASSERT_TRUE(sequencer.ok()) << sequencer.status().message();
    sequencer_ = std::move(*sequencer);
    auto configuration = CreateConfigurationStore(config);
    ASSERT_TRUE(configuration.ok()) << configuration.status().message();
    configuration_ = std::move(*configuration);
  }

  bool Take(const std::string& resource, const std::string& owner, int seconds = 10) {
    auto taken = lock_->TryLock(resource, owner, std::chrono::seconds(seconds));
    EXPECT_TRUE(taken.ok()) << taken.status().message();
    return taken.ok() && *taken;
  }
  UnlockResult Release(const std::string& resource, const std::string& owner) {
    auto result = lock_->Unlock(resource, owner);
    EXPECT_TRUE(result.ok()) << result.status().message();
    return result.ok() ? *result : UnlockResult::kSuccess;
  }

  ManualClock clock_;  // the memory and embedded locks' expiries; Redis expires them on its own clock
  testing::TempDir dir_;
  std::unique_ptr<testing::Redis> redis_;
  std::unique_ptr<LockStoreComponent> lock_;
  std::unique_ptr<SequencerComponent> sequencer_;
  std::unique_ptr<ConfigurationStoreComponent> configuration_;
};

TEST_P(LockSequencerTest, OnlyTheHolderUnlocksAndALockIsNotReentrant) {
  EXPECT_EQ(Release("order-7", "alice"), UnlockResult::kLockDoesNotExist);
  EXPECT_TRUE(Take("order-7", "alice"));
  EXPECT_FALSE(Take("order-7", "bob"));
  EXPECT_FALSE(Take("order-7", "alice"));  // not re-entrant
  EXPECT_EQ(Release("order-7", "bob"), UnlockResult::kLockBelongsToOthers);
  EXPECT_FALSE(Take("order-7", "bob"));  // still alice's
  EXPECT_EQ(Release("order-7", "alice"), UnlockResult::kSuccess);
  EXPECT_TRUE(Take("order-7", "bob"));
  EXPECT_TRUE(Take("order-8", "alice"));  // another resource is another lock
}

TEST_P(LockSequencerTest, OnlyTheHolderRenewsALeaseAndARenewedLockOutlivesItsFirstLease) {
  auto extend = [&](const std::string& resource, const std::string& owner, int seconds) {
    auto result = lock_->Extend(resource, owner, std::chrono::seconds(seconds));
    EXPECT_TRUE(result.ok()) << result.status().message();
    return result.ok() ? *result : UnlockResult::kSuccess;
  };
  EXPECT_EQ(extend("job", "worker-1", 60), UnlockResult::kLockDoesNotExist);
  ASSERT_TRUE(Take("job", "worker-1", 2));
  EXPECT_EQ(extend("job", "worker-2", 60), UnlockResult::kLockBelongsToOthers);
  EXPECT_EQ(extend("job", "worker-1", 60), UnlockResult::kSuccess);
  if (GetParam() == "redis") {
    // Redis keeps the lease: the key's time to live is the renewed one.
    const int ttl = std::stoi(redis_->Cli("TTL job"));
    EXPECT_GT(ttl, 2);
    EXPECT_LE(ttl, 60);
  } else {
    clock_.Advance(std::chrono::seconds(30));  // past the first lease, inside the renewed one
    EXPECT_FALSE(Take("job", "worker-2")) << "the renewed lease ended with the first";
    clock_.Advance(std::chrono::seconds(30));
    EXPECT_TRUE(Take("job", "worker-2")) << "the renewed lease did not end";
  }
  EXPECT_EQ(Release("job", "worker-1"), GetParam() == "redis" ? UnlockResult::kSuccess
                                                               : UnlockResult::kLockBelongsToOthers);
}

TEST_P(LockSequencerTest, ALockExpiresAndSomeoneElseCanTakeIt) {
  ASSERT_TRUE(Take("job", "worker-1", 1));
  bool taken = false;
  if (GetParam() != "redis") {
    clock_.Advance(std::chrono::milliseconds(999));
    EXPECT_FALSE(Take("job", "worker-2", 10)) << "taken before the lock expired";
    clock_.Advance(std::chrono::milliseconds(1));
    taken = Take("job", "worker-2", 10);
  }
  // Redis expires the key on its own clock: poll for it.
  for (int i = 0; GetParam() == "redis" && i < 40 && !taken; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    taken = Take("job", "worker-2", 10);
  }
  EXPECT_TRUE(taken) << "the 1 s lock did not expire";
  EXPECT_EQ(Release("job", "worker-1"), UnlockResult::kLockBelongsToOthers);
}

TEST_P(LockSequencerTest, IdsStrictlyIncreasePerKeyAcrossFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kEach = 100;
  std::vector<std::vector<uint64_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto id = sequencer_->NextId("orders");
        if (id.ok()) seen[t].push_back(*id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<uint64_t> all;
  for (const auto& ids : seen) {
    ASSERT_EQ(ids.size(), static_cast<size_t>(kEach));
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()) &&
                std::adjacent_find(ids.begin(), ids.end()) == ids.end())
        << "one caller saw ids that did not increase";
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));  // no id given twice
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kThreads * kEach));
  auto other = sequencer_->NextId("invoices");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, 1u);  // each key counts on its own
}

TEST_P(LockSequencerTest, ConfigurationItemsReadBackInTheOrderAskedWithoutTheMissingOnes) {
  ASSERT_TRUE(configuration_->Set("timeout", "30").ok());
  ASSERT_TRUE(configuration_->Set("greeting", std::string("hi\0there", 8)).ok());
  auto items = configuration_->Get({"greeting", "absent", "timeout"});
  ASSERT_TRUE(items.ok()) << items.status().message();
  EXPECT_EQ(*items, (ConfigurationItems{{"greeting", std::string("hi\0there", 8)}, {"timeout", "30"}}));
  ASSERT_TRUE(configuration_->Set("timeout", "60").ok());
  EXPECT_EQ(*configuration_->Get({"timeout"}), (ConfigurationItems{{"timeout", "60"}}));
  EXPECT_TRUE(configuration_->Get({"absent"})->empty());
}

INSTANTIATE_TEST_SUITE_P(Stores, LockSequencerTest, ::testing::Values("in-memory", "embedded", "redis"),
                         [](const auto& info) {
                           return info.param == "in-memory" ? std::string("memory") : info.param;
                         });

}  // namespace
}  // namespace wasmlet::components
