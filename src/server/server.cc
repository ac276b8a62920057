#include "server/server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/signal_set.hpp>
#include <future>
#include <nlohmann/json.hpp>

#include "common/http_client.h"
#include "common/text.h"
#include "components/configuration/configuration_store.h"
#include "components/lock/lock_store.h"
#include "components/pubsub/pubsub.h"
#include "components/secret/secret_store.h"
#include "components/sequencer/sequencer.h"
#include "server/dashboard.h"

namespace wasmlet::server {
namespace {

namespace asio = boost::asio;

// The component of the config called `name`; NotFound naming the ones there are otherwise.
template <typename Component>
Result<typename std::map<std::string, std::shared_ptr<Component>>::const_iterator> FindNamed(
    const std::map<std::string, std::shared_ptr<Component>>& components, std::string_view name,
    const char* kind, Metrics& metrics) {
  auto it = components.find(std::string(name));
  if (it != components.end()) return it;
  metrics.CountStateStoreError(Metrics::kUnknownId);  // a guest's store names are not labels
  std::string names;
  for (const auto& [n, c] : components) names += (names.empty() ? "" : ", ") + n;
  return NotFound("no " + std::string(kind) + " named '" + Printable(name, 64) +
                  "' (the config has: " + (names.empty() ? "none" : names) + ")");
}

// The state API of functions (proxy_get_state and wasmlet's state calls): the stores of the
// config, by name.
class ConfiguredStores : public abi::StateStore {
 public:
  ConfiguredStores(std::map<std::string, std::shared_ptr<components::StateStoreComponent>> stores,
                   Metrics& metrics)
      : stores_(std::move(stores)), metrics_(metrics) {}
  Result<std::string> GetState(std::string_view store, std::string_view key) override {
    auto found = Find(store);
    if (!found.ok()) return found.status();
    Result<std::string> value = [&] {
      BlockingCall blocked;  // a network round trip: the function counts as slow if it adds up
      return (*found)->second->Get(key);
    }();
    if (!value.ok()) metrics_.CountStateStoreError((*found)->first);
    return value;
  }

  Result<std::vector<std::optional<Item>>> GetItems(std::string_view store,
                                                    const std::vector<std::string>& keys) override {
    auto found = Find(store);
    if (!found.ok()) return found.status();
    auto items = [&] {
      BlockingCall blocked;
      return (*found)->second->BulkGet(keys);
    }();
    if (!items.ok()) {
      metrics_.CountStateStoreError((*found)->first);
      return items.status();
    }
    std::vector<std::optional<Item>> out;
    out.reserve(items->size());
    for (auto& item : *items) {
      if (item) {
        out.push_back(Item{std::move(item->value), std::move(item->etag)});
      } else {
        out.emplace_back();
      }
    }
    return out;
  }

  Status Apply(std::string_view store, const std::vector<Write>& writes) override {
    auto found = Find(store);
    if (!found.ok()) return found.status();
    std::vector<components::StateOperation> operations;
    operations.reserve(writes.size());
    for (const Write& write : writes) {
      components::StateOperation op;
      op.kind =
          write.remove ? components::StateOperation::Kind::kDelete : components::StateOperation::Kind::kSave;
      op.key = write.key;
      op.value = write.value;
      op.etag = write.etag;
      op.concurrency =
          write.first_write ? components::Concurrency::kFirstWrite : components::Concurrency::kLastWrite;
      op.ttl = write.ttl;
      operations.push_back(std::move(op));
    }
    Status status = [&] {
      BlockingCall blocked;
      return (*found)->second->Apply(operations);
    }();
    // A refused condition is the store working as asked, not a failure of it.
    if (!status.ok() && status.code() != StatusCode::kFailedPrecondition)
      metrics_.CountStateStoreError((*found)->first);
    return status;
  }

 private:
  using Stores = std::map<std::string, std::shared_ptr<components::StateStoreComponent>>;
  Result<Stores::const_iterator> Find(std::string_view store) {
    return FindNamed(stores_, store, "state store", metrics_);
  }

  Stores stores_;
  Metrics& metrics_;
};

// The components of one kind in the config, by name: finds the one a guest names (NotFound
// listing the others), and runs a call on it as a blocking call of its loop, counting its
// errors in the metrics.
template <typename Component>
class NamedComponents {
 public:
  using Map = std::map<std::string, std::shared_ptr<Component>>;
  NamedComponents(Map components, const char* kind, Metrics& metrics)
      : components_(std::move(components)), kind_(kind), metrics_(metrics) {}

  auto Find(std::string_view name) { return FindNamed(components_, name, kind_, metrics_); }

  template <typename Fn>
  auto Call(std::string_view name, Fn fn) -> decltype(fn(std::declval<Component&>())) {
    auto found = Find(name);
    if (!found.ok()) return found.status();
    BlockingCall blocked;
    auto result = fn(*(*found)->second);
    if (!result.ok()) metrics_.CountStateStoreError((*found)->first);
    return result;
  }

 private:
  Map components_;
  const char* kind_;
  Metrics& metrics_;
};

// Layotto's lock API for wasmlet's lock calls: the lock stores of the config, by name.
class ConfiguredLocks : public abi::Locks {
 public:
  ConfiguredLocks(NamedComponents<components::LockStoreComponent>::Map stores, Metrics& metrics)
      : stores_(std::move(stores), "lock store", metrics) {}
  Result<bool> TryLock(std::string_view store, std::string_view resource, std::string_view owner,
                       std::chrono::seconds expire) override {
    return stores_.Call(store, [&](auto& lock) { return lock.TryLock(resource, owner, expire); });
  }
  Result<Unlocked> Unlock(std::string_view store, std::string_view resource,
                          std::string_view owner) override {
    auto result = stores_.Call(store, [&](auto& lock) { return lock.Unlock(resource, owner); });
    if (!result.ok()) return result.status();
    return static_cast<Unlocked>(*result);
  }

 private:
  NamedComponents<components::LockStoreComponent> stores_;
};

// Layotto's sequencer API for proxy_get_next_id: the sequencers of the config, by name.
class ConfiguredSequencers : public abi::Sequencers {
 public:
  ConfiguredSequencers(NamedComponents<components::SequencerComponent>::Map stores, Metrics& metrics)
      : stores_(std::move(stores), "sequencer", metrics) {}
  Result<uint64_t> NextId(std::string_view store, std::string_view key) override {
    return stores_.Call(store, [&](auto& sequencer) { return sequencer.NextId(key); });
  }

 private:
  NamedComponents<components::SequencerComponent> stores_;
};

// Layotto's secret API for proxy_get_secret and proxy_get_bulk_secret: the secret stores of the
// config, by name. They are local (a file or the environment, read at start): nothing blocks.
class ConfiguredSecrets : public abi::Secrets {
 public:
  ConfiguredSecrets(NamedComponents<components::SecretStoreComponent>::Map stores, Metrics& metrics)
      : stores_(std::move(stores), "secret store", metrics) {}
  Result<abi::HeaderList> Get(std::string_view store, std::string_view name) override {
    auto found = stores_.Find(store);
    if (!found.ok()) return found.status();
    auto data = (*found)->second->Get(name);
    if (!data.ok()) return data.status();
    if (!*data)
      return NotFound("secret store '" + (*found)->first + "' has no secret '" + Printable(name, 64) + "'");
    return std::move(**data);
  }
  Result<std::vector<std::pair<std::string, abi::HeaderList>>> GetAll(std::string_view store) override {
    auto found = stores_.Find(store);
    if (!found.ok()) return found.status();
    return (*found)->second->GetAll();
  }

 private:
  NamedComponents<components::SecretStoreComponent> stores_;
};

// Layotto's configuration API for proxy_get_configuration_items: the configuration stores of the
// config, by name.
class ConfiguredConfiguration : public abi::Configuration {
 public:
  ConfiguredConfiguration(NamedComponents<components::ConfigurationStoreComponent>::Map stores,
                          Metrics& metrics)
      : stores_(std::move(stores), "configuration store", metrics) {}
  Result<abi::HeaderList> Get(std::string_view store, const std::vector<std::string>& keys) override {
    return stores_.Call(store, [&](auto& configuration) { return configuration.Get(keys); });
  }

 private:
  NamedComponents<components::ConfigurationStoreComponent> stores_;
};

// Layotto's pub/sub API for proxy_publish_event: the pub/subs of the config, by name.
class ConfiguredPublisher : public abi::Publisher {
 public:
  ConfiguredPublisher(NamedComponents<components::PubSubComponent>::Map pubsubs, Metrics& metrics)
      : pubsubs_(std::move(pubsubs), "pub/sub", metrics) {}
  Result<std::string> Publish(std::string_view pubsub, std::string_view topic, std::string_view data,
                              const abi::HeaderList& metadata) override {
    return pubsubs_.Call(pubsub, [&](auto& p) { return p.Publish(topic, data, metadata); });
  }

 private:
  NamedComponents<components::PubSubComponent> pubsubs_;
};

// One component of each name of `configs`, made by `create`; the first failure stops.
template <typename Component, typename Create>
Result<std::map<std::string, std::shared_ptr<Component>>> CreateNamed(
    const std::map<std::string, components::StoreConfig>& configs, Create create) {
  std::map<std::string, std::shared_ptr<Component>> made;
  for (const auto& [name, config] : configs) {
    auto component = create(config);
    if (!component.ok()) return component.status();
    made[name] = std::move(*component);
  }
  return made;
}

// A request as Layotto builds it for proxy_invoke_service (ABI §7.4).
abi::HttpRequest InvokeRequest(const abi::FunctionInvoker::Call& call) {
  abi::HttpRequest request;
  request.method = "GET";
  request.path = call.method.empty() ? "/" : std::string(call.method);
  if (request.path.front() != '/') request.path.insert(0, "/");
  request.authority = "localhost";
  request.headers = {{"id", std::string(call.target_id)}};
  request.body = std::string(call.param);
  return request;
}

Result<std::string> BodyOf200(const std::string& target, Result<abi::HttpResponse> response) {
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    std::string_view body = response->body;
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
    return Internal("function '" + Printable(target, 64) + "' answered " + std::to_string(response->status) +
                    ": " + Printable(body, 1024));
  }
  return std::move(response->body);
}

// proxy_invoke_service: another function of this process, or a remote wasmlet/Layotto.
class Invoker : public abi::FunctionInvoker {
 public:
  Invoker(std::string remote, std::chrono::milliseconds timeout)
      : remote_(std::move(remote)), timeout_(timeout) {}
  void set_functions(FunctionRegistry* functions) { functions_ = functions; }

  Result<std::string> Invoke(const Call& call) override {
    const std::string target(call.target_id);
    if (remote_.empty()) {
      if (call.target_id == call.caller_id) {
        return FailedPrecondition("function '" + target +
                                  "' called itself; that would wait for its own instance");
      }
      return BodyOf200(target, functions_->InvokeInProcess(target, InvokeRequest(call)));
    }
    return BodyOf200(target, Remote(InvokeRequest(call)));
  }

 private:
  Result<abi::HttpResponse> Remote(const abi::HttpRequest& request) {
    HttpClientRequest out;
    out.url = HttpBaseUrl(remote_) + request.path;
    out.body = request.body;
    out.timeout = timeout_;
    out.headers = request.headers;
    out.headers.emplace_back("Host", request.authority);
    auto answer = [&] {
      BlockingCall blocked;
      return HttpFetch(out);
    }();
    if (!answer.ok())
      return Status(answer.status().code(), "calling " + remote_ + ": " + answer.status().message());
    abi::HttpResponse response;
    response.status = static_cast<uint32_t>(answer->status);
    response.body = std::move(answer->body);
    return response;
  }

  FunctionRegistry* functions_ = nullptr;
  std::string remote_;
  std::chrono::milliseconds timeout_;
};

// Runs `io` until it is stopped. An exception that escapes a handler is logged and the loop
// goes on: one admin call's failure must not end the thread that serves all the others.
void RunLoop(asio::io_context& io, const char* what) {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("{}: an exception escaped a handler and was caught: {}", what, Printable(e.what()));
    }
  }
}

unsigned HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kNotFound: return 404;
    case StatusCode::kResourceExhausted: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

}  // namespace

Result<std::map<std::string, std::shared_ptr<components::StateStoreComponent>>> CreateStores(
    const ServerConfig& config) {
  std::map<std::string, std::shared_ptr<components::StateStoreComponent>> stores;
  for (const auto& [name, store_config] : config.stores) {
    auto store = components::CreateStateStore(store_config);
    if (!store.ok()) return store.status();
    stores[name] = std::move(*store);
  }
  return stores;
}

Server::Server(ServerConfig config) : config_(std::move(config)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  auto stores = CreateStores(config_);
  if (!stores.ok()) return stores.status();
  stores_ = std::move(*stores);
  auto engine = engine::CreateEngine();
  if (!engine.ok()) return engine.status();
  engine_ = std::move(*engine);

  abi::HostServices services;
  services.shared = std::make_shared<abi::SharedState>(config_.guest_limits);
  services.state = std::make_shared<ConfiguredStores>(stores_, metrics_);
  auto locks = CreateNamed<components::LockStoreComponent>(config_.locks, components::CreateLockStore);
  if (!locks.ok()) return locks.status();
  services.locks = std::make_shared<ConfiguredLocks>(std::move(*locks), metrics_);
  auto sequencers =
      CreateNamed<components::SequencerComponent>(config_.sequencers, components::CreateSequencer);
  if (!sequencers.ok()) return sequencers.status();
  services.sequencers = std::make_shared<ConfiguredSequencers>(std::move(*sequencers), metrics_);
  auto secrets =
      CreateNamed<components::SecretStoreComponent>(config_.secret_stores, components::CreateSecretStore);
  if (!secrets.ok()) return secrets.status();
  services.secrets = std::make_shared<ConfiguredSecrets>(std::move(*secrets), metrics_);
  auto configuration = CreateNamed<components::ConfigurationStoreComponent>(
      config_.configuration_stores, components::CreateConfigurationStore);
  if (!configuration.ok()) return configuration.status();
  services.configuration = std::make_shared<ConfiguredConfiguration>(std::move(*configuration), metrics_);
  auto pubsubs = CreateNamed<components::PubSubComponent>(config_.pubsubs, components::CreatePubSub);
  if (!pubsubs.ok()) return pubsubs.status();
  services.publisher = std::make_shared<ConfiguredPublisher>(*pubsubs, metrics_);
  // The registry's instances need the invoker, and the invoker needs the registry.
  auto invoker =
      std::make_shared<Invoker>(config_.rpc_address, std::chrono::milliseconds(config_.invoke_timeout_ms));
  services.invoker = invoker;
  outbound_ = std::make_shared<OutboundCalls>(config_.clusters, config_.guest_limits.buffer_bytes);
  services.outbound = outbound_;
  services.grpc = outbound_;
  std::string why;
  const int loops = ServingLoops(config_, std::thread::hardware_concurrency(), &why);
  for (int i = 0; i < loops; ++i) {
    loops_.push_back(std::make_unique<EventLoop>(
        EventLoop::Options{.name = "loop " + std::to_string(i), .index = i, .engine = engine_.get()}));
  }
  std::vector<EventLoop*> serving;
  std::vector<asio::io_context*> ios;
  for (auto& loop : loops_) {  // they start in parallel
    WASMLET_RETURN_IF_ERROR(loop->WaitReady());
    serving.push_back(loop.get());
    ios.push_back(&loop->io());
  }
  functions_ = std::make_unique<FunctionRegistry>(config_, *engine_, services, metrics_, serving);
  invoker->set_functions(functions_.get());
  subscriptions_ = std::make_unique<Subscriptions>(std::move(*pubsubs), *functions_);
  WASMLET_RETURN_IF_ERROR(subscriptions_->Check(config_.plugins));
  WASMLET_RETURN_IF_ERROR(functions_->Start());
  WASMLET_RETURN_IF_ERROR(functions_->LoadAll());

  // The admin listener first: whoever sees the function port accept can use the admin API.
  admin_running_.emplace(admin_io_.get_executor());
  admin_threads_.emplace_back([this] { RunLoop(admin_io_, "the admin listener"); });
  if (!config_.admin_address.empty()) {
    WASMLET_RETURN_IF_ERROR(CheckAdminExposure());
    admin_ =
        std::make_unique<HttpServer>(std::vector<asio::io_context*>{&admin_io_},
                                     HttpServer::Options{.max_request_body = 1 << 20, .max_connections = 256},
                                     [this](abi::HttpRequest request, Respond respond) {
                                       HandleAdmin(std::move(request), std::move(respond));
                                     });
    Status listening = admin_->Listen(config_.admin_address);
    if (!listening.ok()) return Status(listening.code(), "admin listener: " + listening.message());
    admin_jobs_running_.emplace(admin_jobs_.get_executor());
    admin_threads_.emplace_back([this] { RunLoop(admin_jobs_, "the admin jobs"); });
    spdlog::info("admin API on port {}", admin_->port());
  }
  // Proxy listeners: one whose filters cannot start is not served (a filter may be what guards
  // its upstream); the others are.
  std::vector<Status> proxy_errors;
  for (const ProxyListenerConfig& listener : config_.proxy_listeners) {
    auto proxy =
        std::make_unique<ProxyListener>(config_, listener, *engine_, services, *outbound_, metrics_, serving);
    Status started = proxy->Start();
    if (!started.ok()) {
      spdlog::error("{} (this listener is not served)", started.message());
      proxy_errors.push_back(started);
      continue;
    }
    proxies_.push_back(std::move(proxy));
  }
  const bool serve_functions = config_.serve_functions || config_.proxy_listeners.empty();
  if (!serve_functions && proxies_.empty()) return proxy_errors.front();
  if (serve_functions) {
    http_ = std::make_unique<HttpServer>(
        ios,
        HttpServer::Options{.max_request_body = config_.max_request_body,
                            .max_connections = config_.max_connections,
                            .idle_timeout = std::chrono::milliseconds(config_.idle_timeout_ms)},
        [this](abi::HttpRequest request, Respond respond) {
          Handle(std::move(request), std::move(respond));
        });
    WASMLET_RETURN_IF_ERROR(http_->Listen(config_.function_address));
    spdlog::info("serving {} function{} on port {}", functions_->function_count(),
                 functions_->function_count() == 1 ? "" : "s", http_->port());
  }
  subscriptions_->Start(config_.plugins);
  spdlog::info("{} serving loop{} ({})", loops, loops == 1 ? "" : "s", why);
  ready_ = true;
  return Status::Ok();
}

void Server::Handle(abi::HttpRequest request, Respond respond) {
  std::string id;
  for (const auto& [name, value] : request.headers) {
    if (name.size() == 2 && (name[0] == 'i' || name[0] == 'I') && (name[1] == 'd' || name[1] == 'D')) {
      id = value;
      break;
    }
  }
  const auto start = std::chrono::steady_clock::now();
  auto answer = [this, id, start, respond = std::move(respond)](abi::HttpResponse response) {
    // Label only ids that name a function: every distinct header a client sends must not
    // become a series of its own.
    const bool unknown = response.status == 404 && !id.empty() && !functions_->HasRoute(id);
    metrics_.CountRequest(unknown ? Metrics::kUnknownId : id, response.status,
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    respond(std::move(response));
  };
  if (id.empty()) {
    if (request.path == "/__wasmlet/fixed") {
      // A fixed answer with no guest involved: the benchmarks' measure of the HTTP path alone.
      abi::HttpResponse fixed;
      fixed.body = "ok\n";
      answer(std::move(fixed));
      return;
    }
    answer(TextResponse(400, "missing header 'id': name the function to call, e.g. -H 'id: id_1'"));
    return;
  }
  functions_->Dispatch(id, std::move(request),
                       [answer = std::move(answer)](Result<abi::HttpResponse> result) {
                         if (result.ok()) {
                           answer(std::move(*result));
                           return;
                         }
                         const Status& error = result.status();
                         if (error.code() != StatusCode::kNotFound) spdlog::warn("{}", error.message());
                         answer(TextResponse(HttpStatusFor(error.code()), error.message()));
                       });
}

uint16_t Server::proxy_port(const std::string& name) const {
  for (const auto& proxy : proxies_) {
    if (proxy->name() == name) return proxy->port();
  }
  return 0;
}

void Server::Stop() {
  if (!http_ && proxies_.empty()) {
    StopThreads();
    return;
  }
  ready_ = false;
  if (http_) http_->Stop();
  for (auto& proxy : proxies_) proxy->Stop();
  if (admin_) admin_->Stop();
  auto in_flight = [this] {
    size_t n = http_ ? http_->in_flight() : 0;
    for (const auto& proxy : proxies_) n += proxy->in_flight();
    return n;
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.drain_timeout_ms);
  while (in_flight() > 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (in_flight() > 0) spdlog::warn("stopping with {} requests still running", in_flight());
  // Let the last responses reach the wire before the loops stop.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  StopThreads();
}

void Server::StopThreads() {
  // Order matters: the admin thread first (no install may start), then every instance is
  // destroyed on its own loop, then the loops stop, and only then go the objects their queued
  // handlers may still point to.
  if (subscriptions_) subscriptions_->Stop();  // no message is handed to a function any more
  admin_running_.reset();
  admin_jobs_running_.reset();
  admin_io_.stop();
  admin_jobs_.stop();
  for (auto& t : admin_threads_) t.join();
  admin_threads_.clear();
  if (functions_) functions_->Shutdown();
  for (auto& proxy : proxies_) proxy->Shutdown();
  for (auto& loop : loops_) loop->Stop();
  // The loops are stopped: what their handlers pointed to can go.
  if (outbound_) outbound_->Shutdown();
  subscriptions_.reset();
  functions_.reset();
  proxies_.clear();
  http_.reset();
  admin_.reset();
  loops_.clear();
}

namespace {

abi::HttpResponse Json(unsigned status, const nlohmann::json& body) {
  abi::HttpResponse r;
  r.status = status;
  r.headers = {{"content-type", "application/json"}};
  r.body = ToJson(body) + "\n";
  return r;
}

abi::HttpResponse JsonError(unsigned status, const std::string& message) {
  return Json(status, {{"error", message}});
}

unsigned AdminStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kInternal: return 500;
    default: return 400;  // the request named something that does not work: a bad install
  }
}

// {"name": ..., ...}: the route id an uninstall or update names. An uninstall may name one
// plugin item instead, {"plugin": NAME} (what the containerd shim installed).
Result<nlohmann::json> ParseAdminBody(const std::string& body, bool plugin_allowed) {
  try {
    nlohmann::json j = nlohmann::json::parse(body);
    if (!j.is_object()) return InvalidArgument("the body must be a JSON object");
    auto names = [&](const char* key) {
      return j.contains(key) && j.at(key).is_string() && !j.at(key).get<std::string>().empty();
    };
    if (plugin_allowed && names("plugin")) return j;
    j.erase("plugin");  // the route id form: a "plugin" key that does not apply is not read
    if (!names("name")) {
      return InvalidArgument(
          plugin_allowed ? "the body must name the function: {\"name\": \"id_1\"} (every plugin of that "
                           "id) or {\"plugin\": \"f1\"} (that one plugin item)"
                         : "the body must name the function: {\"name\": \"id_1\"}");
    }
    return j;
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999
    return InvalidArgument(std::string("the body is not valid JSON: ") + e.what());
  }
}

}  // namespace

void Server::HandleAdmin(abi::HttpRequest request, Respond respond) {
  const std::string path = request.path.substr(0, request.path.find('?'));
  const std::string& method = request.method;
  if (path == "/health/liveness") {
    respond(Json(200, {{"status", "alive"}}));
    return;
  }
  if (path == "/health/readiness") {
    // A node daemon configured with no functions is ready as soon as it runs: it waits for installs.
    const bool ready = ready_ && functions_ && (functions_->function_count() > 0 || config_.plugins.empty());
    respond(Json(ready ? 200 : 503, {{"status", ready ? "ready" : "not ready"}}));
    return;
  }
  if (CrossOriginChange(request)) {
    respond(JsonError(403, "the admin API refuses changes sent from a page of another origin"));
    return;
  }
  if (path == "/login" && method == "POST") {
    respond(Login(request, config_.admin_token));
    return;
  }
  const EmbeddedFile* page = method == "GET" ? FindDashboardFile(path) : nullptr;
  if (page && page->name != "index.html") {  // the script and style hold no data (the login page uses them)
    respond(DashboardFileResponse(*page));
    return;
  }
  if (!AdminAuthorized(request, config_.admin_token)) {
    if (page) {
      respond(LoginPage(
          401, "This wasmlet's admin API needs its token (wasmlet.admin_token or WASMLET_ADMIN_TOKEN)."));
    } else {
      respond(JsonError(
          401, "the admin API needs the header 'Authorization: Bearer <token>' with the configured token"));
    }
    return;
  }
  if (page) {
    respond(DashboardFileResponse(*page));
    return;
  }
  if (path == "/metrics" && method == "GET") {
    abi::HttpResponse r;
    r.headers = {{"content-type", "text/plain; version=0.0.4"}};
    r.body = metrics_.Prometheus(functions_->Gauges());
    respond(std::move(r));
    return;
  }
  if (path == "/wasm/list" && method == "GET") {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& f : functions_->List()) {
      list.push_back({{"id", f.id},
                      {"name", f.name},
                      {"file", f.file},
                      {"md5", f.md5},
                      {"placement", f.placement},
                      {"instances", f.instances},
                      {"busy", f.busy},
                      {"retiring", f.retiring},
                      {"memory_bytes", f.memory_bytes},
                      {"memory_limit_bytes", f.memory_limit_bytes},
                      {"requests", f.requests},
                      {"errors", f.errors},
                      {"host",
                       {{"shared_data_bytes", f.host.shared_data_bytes},
                        {"queue_entries", f.host.queue_entries},
                        {"queue_bytes", f.host.queue_bytes},
                        {"metrics", f.host.metrics},
                        {"refusals", f.host.refusals}}}});
    }
    respond(Json(200, list));
    return;
  }
  if (path == "/wasm/stats" && method == "GET") {
    respond(Json(200, StatsJson(metrics_.TrafficById())));
    return;
  }
  if (path == "/logs" && method == "GET") {
    const size_t query = request.path.find('?');
    respond(Json(
        200, LogsJson(log_ring_.get(), query == std::string::npos ? "" : request.path.substr(query + 1))));
    return;
  }
  if (method == "POST" && (path == "/wasm/install" || path == "/wasm/uninstall" || path == "/wasm/update")) {
    // Installs read, compile and start modules: that runs on its own thread, so that the admin
    // listener keeps answering health checks, /wasm/list and /metrics meanwhile.
    boost::asio::post(admin_jobs_, [this, path, body = std::move(request.body), respond]() mutable {
      try {
        ChangeFunctions(path, body, respond);
      } catch (const std::exception& e) {
        spdlog::error("admin: internal error in {}: {}", path, Printable(e.what()));
        respond(JsonError(500, "internal error in " + path + " (logged by the server)"));
      }
    });
    return;
  }
  respond(JsonError(404, "no admin endpoint " + Printable(method, 32) + " " + Printable(path, 128) +
                             " (there are POST /wasm/install, /wasm/uninstall, /wasm/update; GET /wasm/list, "
                             "/wasm/stats, /logs, /metrics, /health/liveness, /health/readiness, and the "
                             "dashboard at /)"));
}

void Server::ChangeFunctions(const std::string& path, const std::string& body_text, const Respond& respond) {
  // A refused change is worth a warning: the dashboard's panel of problems shows it, and an
  // operator reading the log sees why an install did not happen.
  auto refuse = [&path, &respond](unsigned status, const std::string& message) {
    spdlog::warn("admin: {} refused ({}): {}", path, status, Printable(message, 1024));
    respond(JsonError(status, message));
  };
  if (path == "/wasm/install") {
    auto plugin = ParsePluginItem(body_text, "body");
    if (!plugin.ok()) return refuse(400, plugin.status().message());
    auto id = functions_->Install(*plugin);
    if (!id.ok()) return refuse(AdminStatusFor(id.status()), id.status().message());
    spdlog::info("admin: installed '{}' as id '{}'", Printable(plugin->name), Printable(*id));
    return respond(Json(200, {{"id", *id}}));
  }
  const bool uninstall = path == "/wasm/uninstall";
  auto body = ParseAdminBody(body_text, /*plugin_allowed=*/uninstall);
  if (!body.ok()) return refuse(400, body.status().message());
  Status status;
  nlohmann::json answer;
  if (auto plugin = body->find("plugin"); plugin != body->end()) {
    // One plugin item; Layotto's {"name": ID} below removes every plugin serving route id ID.
    answer = {{"plugin", *plugin}};
    status = functions_->UninstallPlugin(plugin->get<std::string>());
  } else {
    const std::string id = (*body)["name"].get<std::string>();
    answer = {{"id", id}};
    if (uninstall) {
      status = functions_->Uninstall(id);
    } else {
      auto n = body->find("instance_num");
      if (n == body->end() || !n->is_number_integer() || n->get<int64_t>() < 0 || n->get<int64_t>() > 4096) {
        return refuse(400,
                      "the body must give the new instance count, 0 (one per core) to 4096: "
                      "{\"name\": ..., \"instance_num\": 2}");
      }
      status = functions_->Update(id, n->get<int>());
    }
  }
  if (status.code() == StatusCode::kNotFound) return refuse(404, status.message());
  if (!status.ok()) return refuse(AdminStatusFor(status), status.message());
  spdlog::info("admin: {} {}", uninstall ? "uninstalled" : "updated", ToJson(answer));
  return respond(Json(200, answer));
}

Status Server::CheckAdminExposure() const {
  auto split = SplitHostPort(config_.admin_address);
  if (!split.ok())
    return Status(split.status().code(), "config wasmlet.admin_address: " + split.status().message());
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(split->first, ec);
  const bool loopback = split->first == "localhost" || (!ec && address.is_loopback());
  if (loopback || !config_.admin_token.empty()) return Status::Ok();
  if (!config_.admin_allow_insecure) {
    return FailedPrecondition(
        "config wasmlet.admin_address: " + config_.admin_address +
        " is reachable from other machines and no admin_token is set, so anyone "
        "could install code; set wasmlet.admin_token (or WASMLET_ADMIN_TOKEN), bind "
        "it to 127.0.0.1, or set wasmlet.admin_allow_insecure: true to accept the risk");
  }
  spdlog::warn(
      "the admin API on {} has no token and is reachable from other machines: anyone who can "
      "reach it can install and run code (wasmlet.admin_allow_insecure is set)",
      config_.admin_address);
  return Status::Ok();
}

int Server::Run() {
  Status status = Start();
  if (!status.ok()) {
    spdlog::error("{}", status.message());
    return 1;
  }
  std::promise<int> signalled;
  asio::signal_set signals(admin_io_, SIGINT, SIGTERM);
  signals.async_wait([&signalled](const boost::system::error_code& ec, int signal) {
    if (!ec) signalled.set_value(signal);
  });
  const int signal = signalled.get_future().get();
  spdlog::info("signal {}: finishing in-flight requests, then stopping", signal);
  Stop();
  return 0;
}

}  // namespace wasmlet::server
