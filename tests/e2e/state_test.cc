// wasmlet's state calls from a function, end to end: the real binary, real HTTP over loopback,
// tests/guests/state_function.cc, on a real redis-server and on the embedded store.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "e2e/harness.h"

namespace wasmlet::testing {
namespace {

const std::string kGuests = WASMLET_TEST_GUESTS;
const std::string kExamples = WASMLET_EXAMPLES;

class StateTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    json metadata;
    if (GetParam() == "redis") {
      redis_ = std::make_unique<Redis>(dir_);
      metadata = {{"redisHost", "127.0.0.1:" + std::to_string(redis_->port())}};
    } else {
      metadata = {{"path", dir_.File("state.db")}};
    }
    json stores = {{"orders", {{"type", GetParam()}, {"metadata", metadata}}}};
    json plugins = {{"state", Plugin("state", kGuests + "/state_function.wasm", 4)}};
    json config = LayottoConfig(port_, plugins, stores);
    // Layotto's lock and sequencer sections sit beside "state" in grpc_config.
    for (json& listener : config["servers"][0]["listeners"]) {
      if (listener["name"] != "grpc") continue;
      json& grpc = listener["filter_chains"][0]["filters"][0]["config"]["grpc_config"];
      grpc["lock"] = {{"locks", {{"type", GetParam()}, {"metadata", metadata}}}};
      grpc["sequencer"] = {{"ids", {{"type", GetParam()}, {"metadata", metadata}}}};
      grpc["config_store"] = {{"settings", {{"type", GetParam()}, {"metadata", metadata}}}};
    }
    config_path_ = dir_.File("config.json");
    std::ofstream(config_path_) << config.dump();
    server_ = std::make_unique<Wasmlet>(dir_, config, port_);
  }

  Response Call(std::map<std::string, std::string> headers) {
    headers["id"] = "id_state";
    return Get(port_, "/", headers);
  }
  // The item's ETag, read through the function.
  std::string ETag(const std::string& key) {
    const std::string body = Call({{"op", "get"}, {"key", key}}).body;
    const size_t at = body.find("etag=");
    return at == std::string::npos ? "" : body.substr(at + 5, body.size() - at - 6);
  }

  TempDir dir_;
  std::string config_path_;  // the config, for the CLI
  const uint16_t port_ = FreePort();
  std::unique_ptr<Redis> redis_;
  std::unique_ptr<Wasmlet> server_;
};

TEST_P(StateTest, SaveGetAndDeleteWithETags) {
  EXPECT_EQ(Call({{"op", "get"}, {"key", "order-1"}}).body, "absent\n");
  auto saved = Call({{"op", "save"}, {"key", "order-1"}, {"value", "pending"}});
  ASSERT_EQ(saved.status, 200) << saved.body;
  const std::string etag = ETag("order-1");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(Call({{"op", "get"}, {"key", "order-1"}}).body, "value=pending etag=" + etag + "\n");
  // With the ETag it read, a save goes through; with that ETag again, it is stale: 409.
  ASSERT_EQ(Call({{"op", "save"}, {"key", "order-1"}, {"value", "paid"}, {"etag", etag}}).status, 200);
  auto stale = Call({{"op", "save"}, {"key", "order-1"}, {"value", "lost"}, {"etag", etag}});
  EXPECT_EQ(stale.status, 409);
  EXPECT_NE(stale.body.find("status 8: proxy_save_state('orders', 'order-1')"), std::string::npos)
      << stale.body;
  EXPECT_NE(stale.body.find("ETag '" + etag + "'"), std::string::npos) << stale.body;
  EXPECT_EQ(Call({{"op", "delete"}, {"key", "order-1"}, {"etag", etag}}).status, 409);
  // First-write: a second creator loses.
  EXPECT_EQ(Call({{"op", "save"}, {"key", "seat"}, {"value", "alice"}, {"first-write", "1"}}).status, 200);
  EXPECT_EQ(Call({{"op", "save"}, {"key", "seat"}, {"value", "bob"}, {"first-write", "1"}}).status, 409);
  EXPECT_EQ(Call({{"op", "get"}, {"key", "seat"}}).body.substr(0, 12), "value=alice ");
  ASSERT_EQ(Call({{"op", "delete"}, {"key", "order-1"}, {"etag", ETag("order-1")}}).status, 200);
  EXPECT_EQ(Call({{"op", "get"}, {"key", "order-1"}}).body, "absent\n");
}

TEST_P(StateTest, BulkGetAndATtl) {
  ASSERT_EQ(Call({{"op", "save"}, {"key", "a"}, {"value", "1"}}).status, 200);
  ASSERT_EQ(Call({{"op", "save"}, {"key", "c"}, {"value", "3"}, {"ttl", "1"}}).status, 200);
  EXPECT_EQ(Call({{"op", "bulk"}, {"keys", "c,b,a"}}).body,
            "c=3@" + ETag("c") + "\nb absent\na=1@" + ETag("a") + "\n");
  // The store's own clock expires it (a real process, or Redis): look until it has.
  EXPECT_TRUE(Eventually([&] { return Call({{"op", "get"}, {"key", "c"}}).body == "absent\n"; }))
      << "the item with a 1 s TTL never expired";
}

// The middle operation's ETag is stale: nothing of the transaction is applied.
TEST_P(StateTest, ATransactionWithAFailingMiddleOperationChangesNothing) {
  ASSERT_EQ(Call({{"op", "save"}, {"key", "stock"}, {"value", "10"}}).status, 200);
  ASSERT_EQ(Call({{"op", "save"}, {"key", "order"}, {"value", "new"}}).status, 200);
  const std::string stock = ETag("stock");
  auto refused =
      Call({{"op", "tx"}, {"ops", "save:stock:9:" + stock + ";save:order:paid:999;save:receipt:r1"}});
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(refused.body.find("'order'"), std::string::npos) << refused.body;
  EXPECT_EQ(Call({{"op", "get"}, {"key", "stock"}}).body, "value=10 etag=" + stock + "\n");
  EXPECT_EQ(Call({{"op", "get"}, {"key", "receipt"}}).body, "absent\n");

  auto committed = Call({{"op", "tx"},
                         {"ops", "save:stock:9:" + stock + ";save:order:paid:" + ETag("order") +
                                     ";save:receipt:r1;delete:order"}});
  EXPECT_EQ(committed.status, 200) << committed.body;
  EXPECT_EQ(Call({{"op", "get"}, {"key", "stock"}}).body.substr(0, 8), "value=9 ");
  EXPECT_EQ(Call({{"op", "get"}, {"key", "receipt"}}).body.substr(0, 9), "value=r1 ");
  EXPECT_EQ(Call({{"op", "get"}, {"key", "order"}}).body, "absent\n");
}

// Four clients add one to one counter 50 times each, through four instances: ETag-guarded
// saves lose no increment.
TEST_P(StateTest, ACounterUpdatedByFourConcurrentClientsLosesNoIncrement) {
  constexpr int kClients = 4;
  constexpr int kEach = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        if (Call({{"op", "counter"}, {"key", "hits"}}).status != 200) ++failures;
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Call({{"op", "get"}, {"key", "hits"}}).body.substr(0, 10), "value=200 ");
}

TEST_P(StateTest, LocksAnswerAsLayottosLockApiDoes) {
  auto lock = [&](const std::string& op, const std::string& owner) {
    return Call({{"op", op}, {"store", "locks"}, {"key", "order-7"}, {"owner", owner}}).body;
  };
  EXPECT_EQ(lock("unlock", "alice"), "unlocked 1\n");  // no such lock
  EXPECT_EQ(lock("lock", "alice"), "taken\n");
  EXPECT_EQ(lock("lock", "bob"), "held\n");
  EXPECT_EQ(lock("unlock", "bob"), "unlocked 2\n");  // another owner's
  EXPECT_EQ(lock("unlock", "alice"), "unlocked 0\n");
  EXPECT_EQ(lock("lock", "bob"), "taken\n");
  auto no_expiry = Call({{"op", "lock"}, {"store", "locks"}, {"key", "x"}, {"owner", "a"}, {"expire", "0"}});
  EXPECT_EQ(no_expiry.status, 400) << no_expiry.body;
}

// Four clients take 50 ids each through four instances: every id is new, and each client's
// ids increase.
TEST_P(StateTest, SequencerIdsIncreaseAcrossFourConcurrentClients) {
  constexpr int kClients = 4;
  constexpr int kEach = 50;
  std::vector<std::vector<long>> seen(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        auto r = Call({{"op", "next-id"}, {"store", "ids"}, {"key", "orders"}});
        if (r.status == 200) seen[c].push_back(std::stol(r.body));
      }
    });
  }
  for (auto& client : clients) client.join();
  std::set<long> all;
  for (const auto& ids : seen) {
    ASSERT_EQ(ids.size(), static_cast<size_t>(kEach));
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kClients * kEach));
  EXPECT_EQ(*all.rbegin(), kClients * kEach);
}

TEST_P(StateTest, AStoreTheConfigDoesNotHaveIsNotFoundAndBadCallsAreRefused) {
  auto unknown = Call({{"op", "save"}, {"store", "payments"}, {"key", "k"}, {"value", "v"}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("no state store named 'payments' (the config has: orders)"), std::string::npos)
      << unknown.body;
  auto empty_key = Call({{"op", "save"}, {"key", ""}, {"value", "v"}});
  EXPECT_EQ(empty_key.status, 400) << empty_key.body;
  auto bad_op = Call({{"op", "tx"}, {"ops", "save:k:v;delete:"}});
  EXPECT_EQ(bad_op.status, 400) << bad_op.body;
  EXPECT_NE(bad_op.body.find("operation 2"), std::string::npos) << bad_op.body;
}

INSTANTIATE_TEST_SUITE_P(Stores, StateTest, ::testing::Values("redis", "embedded"),
                         [](const auto& info) { return info.param; });

// A plugin item's allowed_stores bounds what its function reaches: another store of the config
// is NOT_FOUND, as if it were not there, and the log says which function asked for what.
TEST(StateAccessTest, AFunctionReachesOnlyTheStoresItsPluginItemNames) {
  TempDir dir;
  const uint16_t port = FreePort();
  json stores = {{"orders", {{"type", "embedded"}, {"metadata", {{"path", dir.File("state.db")}}}}},
                 {"payments", {{"type", "in-memory"}}}};
  json item = Plugin("state", kGuests + "/state_function.wasm", 1);
  item["allowed_stores"] = json::array({"orders"});
  Wasmlet server(dir, LayottoConfig(port, {{"state", item}}, stores), port);
  auto call = [&](const std::string& store, const std::string& op) {
    return Get(port, "/",
               {{"id", "id_state"},
                {"op", op},
                {"store", store},
                {"key", "k"},
                {"value", "v"},
                {"keys", "k"},
                {"ops", "save:k:v"}});
  };
  EXPECT_EQ(call("orders", "save").status, 200);
  for (const char* op : {"save", "get", "delete", "bulk", "tx"}) {
    auto refused = call("payments", op);
    EXPECT_EQ(refused.status, 404) << op << ": " << refused.body;
    EXPECT_NE(
        refused.body.find("function 'state' may not use the store 'payments' (its allowed_stores: orders)"),
        std::string::npos)
        << op << ": " << refused.body;
  }
  EXPECT_NE(server.process().Log().find("may not use the store 'payments'"), std::string::npos);
}

// `wasmlet lock` and `wasmlet sequencer` work on the same stores as the running server: a lock
// taken from the shell holds the function off, and ids continue where the shell left them.
TEST_P(StateTest, TheCliTakesLocksAndIdsThatFunctionsSee) {
  auto [taken_code, taken] = RunWasmlet("lock try locks order-9 ops --expire 30 -c " + config_path_);
  EXPECT_EQ(taken_code, 0) << taken;
  EXPECT_EQ(taken, "taken\n");
  auto [held_code, held] = RunWasmlet("lock try locks order-9 someone -c " + config_path_);
  EXPECT_EQ(held_code, 1) << held;
  EXPECT_EQ(held, "held\n");
  auto lock = [&](const std::string& op, const std::string& owner) {
    return Call({{"op", op}, {"store", "locks"}, {"key", "order-9"}, {"owner", owner}}).body;
  };
  EXPECT_EQ(lock("lock", "alice"), "held\n");
  auto [other_code, other] = RunWasmlet("lock unlock locks order-9 alice -c " + config_path_);
  EXPECT_EQ(other_code, 1);
  EXPECT_EQ(other, "held by another owner\n");
  auto [released_code, released] = RunWasmlet("lock unlock locks order-9 ops -c " + config_path_);
  EXPECT_EQ(released_code, 0) << released;
  EXPECT_EQ(released, "unlocked\n");
  EXPECT_EQ(lock("lock", "alice"), "taken\n");

  auto [id_code, id] = RunWasmlet("sequencer next ids invoice -c " + config_path_);
  ASSERT_EQ(id_code, 0) << id;
  EXPECT_EQ(id, "1\n");
  EXPECT_EQ(Call({{"op", "next-id"}, {"store", "ids"}, {"key", "invoice"}}).body, "2\n");
  EXPECT_EQ(RunWasmlet("sequencer next ids invoice -c " + config_path_).second, "3\n");
  auto [missing_code, missing] = RunWasmlet("sequencer next nope invoice -c " + config_path_);
  EXPECT_NE(missing_code, 0);
  EXPECT_NE(missing.find("has no sequencer named 'nope' (it has: ids)"), std::string::npos) << missing;
}

// Configuration set from the shell (and, on Redis, as Dapr writes it) is read by a function;
// keys without an item are left out.
TEST_P(StateTest, AFunctionReadsConfigurationSetFromTheShell) {
  auto [set_code, set] = RunWasmlet("configuration set settings greeting hello -c " + config_path_);
  ASSERT_EQ(set_code, 0) << set;
  ASSERT_EQ(RunWasmlet("configuration set settings limit 10 -c " + config_path_).first, 0);
  EXPECT_EQ(RunWasmlet("configuration get settings greeting -c " + config_path_).second, "hello\n");
  auto config = [&](const std::string& keys) {
    return Call({{"op", "config"}, {"store", "settings"}, {"keys", keys}});
  };
  EXPECT_EQ(config("limit,missing,greeting").body, "limit=10\ngreeting=hello\n");
  ASSERT_EQ(RunWasmlet("configuration set settings greeting hi -c " + config_path_).first, 0);
  EXPECT_EQ(config("greeting").body, "greeting=hi\n") << "read again, not cached";
  if (redis_) {
    redis_->Cli("SET timeout 30||7");  // Dapr's Redis configuration layout: content||version
    EXPECT_EQ(config("timeout").body, "timeout=30\n");
  }
  auto none = config("");
  EXPECT_EQ(none.status, 400) << none.body;
  auto unknown = Call({{"op", "config"}, {"store", "nope"}, {"keys", "a"}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("no configuration store named 'nope' (the config has: settings)"),
            std::string::npos)
      << unknown.body;
}

// The runtime examples (examples/runtime/) under concurrent load: the counter loses no
// increment, the lock-guarded reservation never sells more than the stock, each sale with its
// own order number, and every order published reaches the shipping function's count.
TEST(RuntimeExamplesTest, TheCounterAndTheLockGuardedReservationStayExactUnderConcurrency) {
  TempDir dir;
  const uint16_t port = FreePort();
  json db = {{"path", dir.File("runtime.db")}};
  json shipping = Plugin("shipping", kExamples + "/shipping.wasm", 2);
  shipping["subscriptions"] =
      json::array({{{"pubsubname", "events"}, {"topic", "orders"}, {"route", "/orders"}}});
  json plugins = {{"counter", Plugin("counter", kExamples + "/counter.wasm", 4)},
                  {"reserve", Plugin("reserve", kExamples + "/reserve.wasm", 4)},
                  {"order", Plugin("order", kExamples + "/order.wasm", 2)},
                  {"next_id", Plugin("next_id", kExamples + "/next_id.wasm", 2)},
                  {"shipping", shipping}};
  json config = LayottoConfig(port, plugins, {{"runtime", {{"type", "embedded"}, {"metadata", db}}}});
  for (json& listener : config["servers"][0]["listeners"]) {
    if (listener["name"] != "grpc") continue;
    json& grpc = listener["filter_chains"][0]["filters"][0]["config"]["grpc_config"];
    grpc["lock"] = {{"locks", {{"type", "embedded"}, {"metadata", db}}}};
    grpc["sequencer"] = {{"ids", {{"type", "embedded"}, {"metadata", db}}}};
    grpc["pub_subs"] = {{"events", {{"type", "embedded"}, {"metadata", db}}}};
  }
  SeedState(dir, config, "runtime", "book1", "30");
  Wasmlet server(dir, config, port);
  EXPECT_EQ(Get(port, "/", {{"id", "counter"}}).status, 400) << "no ?key=";
  EXPECT_EQ(Get(port, "/", {{"id", "reserve"}}).status, 400) << "no ?item=";

  constexpr int kClients = 4;
  std::vector<std::thread> clients;
  std::atomic<int> counted{0}, sold{0}, sold_out{0}, other{0};
  std::mutex mutex;
  std::set<std::string> orders;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (Get(port, "/?key=visits", {{"id", "counter"}}).status == 200) ++counted;
        if (i < 5) {
          EXPECT_EQ(Get(port, "/?item=book2", {{"id", "order"}}).body, "ordered book2\n");
        }
      }
      for (int i = 0; i < 10; ++i) {
        for (int attempt = 0; attempt < 200; ++attempt) {
          auto r = Get(port, "/?item=book1", {{"id", "reserve"}});
          if (r.status == 409) continue;  // the lock is held: try again
          if (r.status == 200) {
            ++sold;
            std::lock_guard lock(mutex);
            orders.insert(r.body.substr(0, r.body.find(',')));
          } else if (r.status == 410) {
            ++sold_out;
          } else {
            ++other;
          }
          break;
        }
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(counted.load(), 100);
  EXPECT_EQ(Get(port, "/?key=visits", {{"id", "counter"}}).body, "visits = 101\n");
  EXPECT_EQ(sold.load(), 30) << "40 tries for a stock of 30";
  EXPECT_EQ(sold_out.load(), 10);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(orders.size(), 30u) << "every sale has its own order number";
  EXPECT_EQ(RunWasmlet("state get runtime book1 -c " + dir.File("seed-book1.json")).second, "0\n");
  EXPECT_EQ(Get(port, "/?key=invoice", {{"id", "next_id"}}).body, "invoice-1\n");
  EXPECT_EQ(Get(port, "/?key=invoice", {{"id", "next_id"}}).body, "invoice-2\n");
  // The reservations took their order numbers from the same sequencer: the next is past them all.
  const std::string next_order = Get(port, "/?key=order", {{"id", "next_id"}}).body;
  long highest_sold = 0;
  for (const std::string& order : orders)
    highest_sold = std::max(highest_sold, std::strtol(order.c_str() + order.rfind('-') + 1, nullptr, 10));
  EXPECT_GT(std::strtol(next_order.c_str() + 6, nullptr, 10), highest_sold) << next_order;
  // 20 orders published; the shipping function, subscribed to their topic, counts each.
  std::string shipped;
  Eventually([&] {
    shipped = Get(port, "/?item=book2", {{"id", "shipping"}}).body;
    return shipped == "book2: 20 shipped\n";
  });
  EXPECT_EQ(shipped, "book2: 20 shipped\n");
}

// Subscriptions, end to end: 1,000 messages published by a function reach the subscriber,
// which fails every 10th once and every 97th always, while wasmlet is killed (SIGKILL) in the
// middle and started again. Every message is handled, those failing always end in the dead
// letter topic, and nothing comes twice but what a reader had in hand at the kill.
class SubscriptionTest : public ::testing::TestWithParam<std::string> {
 protected:
  json Config(uint16_t port) {
    json metadata = {{"processingTimeoutMs", "1000"}};
    if (GetParam() == "redis") {
      metadata["redisHost"] = "127.0.0.1:" + std::to_string(redis_->port());
    } else {
      metadata["path"] = dir_.File("state.db");
    }
    json store = {{"type", GetParam()}, {"metadata", metadata}};
    json item = Plugin("subscriber", kGuests + "/subscriber.wasm", 2);
    item["subscriptions"] =
        json::array({{{"pubsubname", "events"},
                      {"topic", "orders"},
                      {"route", "/orders"},
                      {"maxDeliveries", 3},
                      {"retryBackoffMs", 20}},
                     {{"pubsubname", "events"}, {"topic", "orders-deadletter"}, {"route", "/dead"}}});
    json config = LayottoConfig(port, {{"subscriber", item}}, {{"orders", store}});
    for (json& listener : config["servers"][0]["listeners"]) {
      if (listener["name"] != "grpc") continue;
      listener["filter_chains"][0]["filters"][0]["config"]["grpc_config"]["pub_subs"] = {{"events", store}};
    }
    return config;
  }
  // The subscriber's report, once `done` holds of it or after 60 s or so.
  std::string WaitFor(uint16_t port, const std::function<bool(const std::string&)>& done) {
    std::string report;
    for (int i = 0; i < 6000; ++i) {
      report = Get(port, "/?report=1000", {{"id", "id_subscriber"}}).body;
      if (done(report)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return report;
  }
  static long Field(const std::string& report, const std::string& name) {
    const size_t at = report.find(name + "=");
    return at == std::string::npos ? -1 : std::strtol(report.c_str() + at + name.size() + 1, nullptr, 10);
  }

  void SetUp() override {
    if (GetParam() == "redis") redis_ = std::make_unique<Redis>(dir_);
  }
  TempDir dir_;
  std::unique_ptr<Redis> redis_;
};

TEST_P(SubscriptionTest, AThousandMessagesSurviveFailuresAndACrashWithDeadLetters) {
  const uint16_t first_port = FreePort();
  auto first = std::make_unique<Wasmlet>(dir_, Config(first_port), first_port);
  ASSERT_EQ(Get(first_port, "/?publish=1-1000", {{"id", "id_subscriber"}}).body, "published\n");
  const std::string before =
      WaitFor(first_port, [](const std::string& r) { return Field(r, "handled") >= 100; });
  first->process().Kill();  // a crash, in the middle of the stream
  std::cerr << "killed at: " << before;
  EXPECT_LT(Field(before, "handled"), 900) << "the crash came too late to be in the middle";
  first.reset();

  const uint16_t port = FreePort();
  Wasmlet second(dir_, Config(port), port);
  const std::string report =
      WaitFor(port, [](const std::string& r) { return Field(r, "missing") == 0 && Field(r, "dead") >= 10; });
  EXPECT_EQ(Field(report, "missing"), 0) << report;
  EXPECT_EQ(Field(report, "dead"), 10) << report << " (97, 194, ... 970 fail always)";
  // At least once: only a message a reader was handling at the kill may come twice.
  EXPECT_LE(Field(report, "duplicates"), 2) << report;
  EXPECT_GE(Field(report, "handled"), 1000 - 10) << report;
  EXPECT_NE(second.process().Log().find("moved to 'orders-deadletter'"), std::string::npos);
  std::cerr << "at the end: " << report;
}

TEST_P(SubscriptionTest, ASubscriptionToAPubSubTheConfigLacksStopsTheStartNamingIt) {
  const uint16_t port = FreePort();
  json config = Config(port);
  config["servers"][0]["listeners"][1]["stream_filters"][0]["config"]["subscriber"]["subscriptions"][1]
        ["pubsubname"] = "nope";
  Wasmlet server(dir_, config, port, /*expect_start=*/false);
  EXPECT_NE(server.process().WaitExit(), 0);
  EXPECT_NE(server.process().Log().find("subscriptions[1].pubsubname: no pub/sub named \"nope\" under "
                                        "grpc_config.pub_subs (there are: events)"),
            std::string::npos)
      << server.process().Log();
}

INSTANTIATE_TEST_SUITE_P(Stores, SubscriptionTest, ::testing::Values("redis", "embedded"),
                         [](const auto& info) { return info.param; });

// The subscriptions of an item installed through the admin API deliver as the config's do (the
// install used to parse them and drop them), stop when it is uninstalled and start again when
// it is installed again; one naming a pub/sub the config lacks is refused with a 400 naming it.
TEST(InstalledSubscriptionTest, AnInstalledItemSubscribesAndAnUninstallStopsIt) {
  TempDir dir;
  const uint16_t port = FreePort();
  json db = {{"path", dir.File("runtime.db")}};
  json config = LayottoConfig(port, {{"order", Plugin("order", kExamples + "/order.wasm", 1)}},
                              {{"runtime", {{"type", "embedded"}, {"metadata", db}}}});
  for (json& listener : config["servers"][0]["listeners"]) {
    if (listener["name"] != "grpc") continue;
    listener["filter_chains"][0]["filters"][0]["config"]["grpc_config"]["pub_subs"] = {
        {"events", {{"type", "embedded"}, {"metadata", db}}}};
  }
  Wasmlet server(dir, config, port);
  auto order = [&] { EXPECT_EQ(Get(port, "/?item=book1", {{"id", "order"}}).body, "ordered book1\n"); };
  // The shipping function's count once it is `want`, or as it is after 30 s.
  auto shipped_when = [&](const std::string& want) {
    std::string shipped;
    Eventually([&] {
      shipped = Get(port, "/?item=book1", {{"id", "shipping"}}).body;
      return shipped == want;
    });
    return shipped;
  };

  json shipping = Plugin("shipping", kExamples + "/shipping.wasm", 1);
  shipping["subscriptions"] =
      json::array({{{"pubsubname", "nope"}, {"topic", "orders"}, {"route", "/orders"}}});
  auto refused = Admin(server, "POST", "/wasm/install", shipping.dump());
  EXPECT_EQ(refused.status, 400) << refused.body;
  const std::string error = Body(refused).value("error", std::string());
  EXPECT_NE(error.find("body.subscriptions[0].pubsubname: no pub/sub named \"nope\" under "
                       "grpc_config.pub_subs (there are: events)"),
            std::string::npos)
      << refused.body;
  EXPECT_EQ(Get(port, "/?item=book1", {{"id", "shipping"}}).status, 404) << "a refused install runs nothing";

  shipping["subscriptions"][0]["pubsubname"] = "events";
  auto installed = Admin(server, "POST", "/wasm/install", shipping.dump());
  ASSERT_EQ(installed.status, 200) << installed.body;
  for (int i = 0; i < 3; ++i) order();
  EXPECT_EQ(shipped_when("book1: 3 shipped\n"), "book1: 3 shipped\n") << server.process().Log();

  ASSERT_EQ(Admin(server, "POST", "/wasm/uninstall", json({{"plugin", "shipping"}}).dump()).status, 200);
  EXPECT_NE(server.process().Log().find("function 'shipping' no longer subscribes"), std::string::npos)
      << server.process().Log();
  for (int i = 0; i < 2; ++i) order();  // wait for the shipping group, which remembers where it was
  ASSERT_EQ(Admin(server, "POST", "/wasm/install", shipping.dump()).status, 200);
  EXPECT_EQ(shipped_when("book1: 5 shipped\n"), "book1: 5 shipped\n") << server.process().Log();
}

// Secrets from a file and from the environment, read by a function; a store or a secret that
// does not exist is NOT_FOUND, and allowed_stores bounds secret stores too.
TEST(SecretTest, AFunctionReadsSecretsFromAFileAndFromItsEnvironment) {
  TempDir dir;
  const uint16_t port = FreePort();
  const std::string file = dir.File("secrets.json");
  std::ofstream(file) << R"({"db": {"password": "p@ss"}, "api-key": "k1"})";
  ::setenv("WASMLET_E2E_SECRET_TOKEN", "t0k", 1);  // the child process inherits it
  json item = Plugin("state", kGuests + "/state_function.wasm", 1);
  item["allowed_stores"] = "files, env";
  json config = LayottoConfig(port, {{"state", item}}, json::object());
  for (json& listener : config["servers"][0]["listeners"]) {
    if (listener["name"] != "grpc") continue;
    listener["filter_chains"][0]["filters"][0]["config"]["grpc_config"]["secret_store"] = {
        {"files", {{"type", "local.file"}, {"metadata", {{"secretsFile", file}}}}},
        {"env", {{"type", "local.env"}, {"metadata", {{"prefix", "WASMLET_E2E_SECRET_"}}}}},
        {"hidden", {{"type", "local.file"}, {"metadata", {{"secretsFile", file}}}}}};
  }
  Wasmlet server(dir, config, port);
  auto call = [&](const std::string& store, const std::string& op, const std::string& key = "") {
    return Get(port, "/", {{"id", "id_state"}, {"op", op}, {"store", store}, {"key", key}});
  };
  EXPECT_EQ(call("files", "secret", "db:password").body, "db:password=p@ss\n");
  EXPECT_EQ(call("files", "secrets").body, "api-key: api-key=k1\ndb:password: db:password=p@ss\n");
  EXPECT_EQ(call("env", "secret", "TOKEN").body, "TOKEN=t0k\n");
  EXPECT_EQ(call("env", "secrets").body, "TOKEN: TOKEN=t0k\n");
  auto missing = call("files", "secret", "nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("secret store 'files' has no secret 'nope'"), std::string::npos)
      << missing.body;
  auto no_store = call("vault", "secret", "db:password");
  EXPECT_EQ(no_store.status, 404);
  auto hidden = call("hidden", "secrets");
  EXPECT_EQ(hidden.status, 404);
  EXPECT_NE(hidden.body.find("may not use the store 'hidden'"), std::string::npos) << hidden.body;
}

// Redis goes away: the function's calls answer BROKEN_CONNECTION within the store's timeout,
// and it answers 503 naming the store, instead of hanging; once Redis is back, it works again.
TEST(StateDownTest, ARedisThatIsDownGivesAClearErrorAndRecovers) {
  TempDir dir;
  Redis redis(dir);
  const uint16_t port = FreePort();
  json stores = {
      {"orders",
       {{"type", "redis"},
        {"metadata", {{"redisHost", "127.0.0.1:" + std::to_string(redis.port())}, {"timeoutMs", "500"}}}}}};
  json plugins = {{"state", Plugin("state", kGuests + "/state_function.wasm", 1)}};
  Wasmlet server(dir, LayottoConfig(port, plugins, stores), port);
  auto call = [&](const std::string& op) {
    return Get(port, "/", {{"id", "id_state"}, {"op", op}, {"key", "k"}, {"value", "v"}});
  };
  ASSERT_EQ(call("save").status, 200);
  redis.Kill();
  auto down = call("save");
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_NE(
      down.body.find("status 11: proxy_save_state('orders', 'k'): state store 'orders' (redis at 127.0.0.1:" +
                     std::to_string(redis.port())),
      std::string::npos)
      << down.body;
  // Redis's end is seen at once, not by timeoutMs: hiredis would say EAGAIN ("Resource
  // temporarily unavailable") for that. The next call cannot connect, and says why.
  EXPECT_EQ(down.body.find("Resource temporarily unavailable"), std::string::npos) << down.body;
  auto get = call("get");
  EXPECT_EQ(get.status, 503);
  EXPECT_NE(get.body.find("cannot connect: Connection refused"), std::string::npos) << get.body;
  redis.Start();
  EXPECT_EQ(call("save").status, 200);
  EXPECT_EQ(call("get").body.substr(0, 8), "value=v ");
}

}  // namespace
}  // namespace wasmlet::testing
