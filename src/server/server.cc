#include "server/server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/signal_set.hpp>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "server/services/invoker.h"

namespace wasmlet::server {
namespace {

namespace asio = boost::asio;

// How long each phase of the start took, for one debug line at the end: what to look at when
// a start is slow.
class StartPhases {
 public:
  void Mark(std::string phase) {
    const auto now = std::chrono::steady_clock::now();
    phases_.emplace_back(std::move(phase), std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }
  std::string Summary() const {
    std::string text;
    double total = 0;
    for (const auto& [phase, ms] : phases_) {
      text += (text.empty() ? "" : ", ") + phase + " " + std::to_string(static_cast<int>(ms + 0.5)) + " ms";
      total += ms;
    }
    return "started in " + std::to_string(static_cast<int>(total + 0.5)) + " ms (" + SinceExec() + "): " + text;
  }

 private:
  // The process's age, from the kernel's start time (in clock ticks): what the loader and static
  // initialisers took before main is in it too.
  static std::string SinceExec() {
    std::ifstream stat("/proc/self/stat");
    std::string line;
    std::getline(stat, line);
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos) return "age unknown";
    std::istringstream fields(line.substr(paren + 2));
    std::string field;
    for (int i = 3; i <= 22 && fields >> field; ++i) {
      if (i != 22) continue;
      timespec boot{};
      clock_gettime(CLOCK_BOOTTIME, &boot);
      const double started = std::stod(field) / static_cast<double>(sysconf(_SC_CLK_TCK));
      const double age = static_cast<double>(boot.tv_sec) + static_cast<double>(boot.tv_nsec) / 1e9 - started;
      return "process age " + std::to_string(static_cast<int>(age * 1000 + 0.5)) + " ms";
    }
    return "age unknown";
  }

  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, double>> phases_;
};

unsigned HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kNotFound: return 404;
    case StatusCode::kResourceExhausted: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

}  // namespace

Server::Server(ServerConfig config) : config_(std::move(config)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  StartPhases phases;
  auto configured = CreateHostServices(config_, metrics_);
  if (!configured.ok()) return configured.status();
  phases.Mark("components");
  abi::HostServices services = std::move(configured->services);
  auto engine = engine::CreateEngine(
      "v8", SystemClock(),
      engine::EngineOptions{.code_cache_dir = config_.CodeCacheDir(),
                            .code_cache_max_bytes = uint64_t{config_.code_cache_max_mb} << 20});
  if (!engine.ok()) return engine.status();
  engine_ = std::move(*engine);
  phases.Mark("engine");
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
  for (auto& loop : loops_) {
    serving.push_back(loop.get());
    ios.push_back(&loop->io());
  }
  functions_ = std::make_unique<FunctionRegistry>(config_, *engine_, services, metrics_, serving);
  // The loops make their isolates (milliseconds of CPU each) in parallel; meanwhile this thread
  // reads and compiles the config's modules, which needs no loop.
  functions_->PreloadModules();
  phases.Mark("modules");
  for (auto& loop : loops_) WASMLET_RETURN_IF_ERROR(loop->WaitReady());
  phases.Mark(std::to_string(loops) + " serving loops");
  // The actuator first: while the functions start, liveness answers UP and readiness DOWN.
  actuator_ = std::make_unique<Actuator>(config_, ios, ready_);
  WASMLET_RETURN_IF_ERROR(actuator_->Start());
  invoker->set_functions(functions_.get());
  const PubSubs pubsubs = configured->pubsubs;  // for the app too, beside the functions
  app_subscriptions_ = std::make_unique<AppSubscriptions>(config_, pubsubs);
  subscriptions_ = std::make_unique<Subscriptions>(std::move(configured->pubsubs), *functions_);
  WASMLET_RETURN_IF_ERROR(subscriptions_->Check(config_.plugins));
  WASMLET_RETURN_IF_ERROR(functions_->Start());
  WASMLET_RETURN_IF_ERROR(functions_->LoadAll());
  phases.Mark("functions (" + std::to_string(functions_->function_count()) + ", " +
              std::to_string(engine_->code_cache_stats().hits) + " from the code cache)");

  // The admin listener first: whoever sees the function port accept can use the admin API.
  admin_ = std::make_unique<AdminApi>(config_, *functions_, metrics_, ready_, log_ring_);
  if (!config_.admin_address.empty()) WASMLET_RETURN_IF_ERROR(admin_->Start());
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
  phases.Mark("admin and proxy listeners");
  const bool serve_functions =
      config_.serve_functions || (config_.proxy_listeners.empty() && config_.runtime_listeners.empty());
  if (!serve_functions && proxies_.empty() && config_.runtime_listeners.empty()) return proxy_errors.front();
  auto apps = CreateAppComponents(config_, pubsubs);
  if (!apps.ok()) return apps.status();
  runtime_api_ = std::make_unique<RuntimeApi>(config_, services, invoker, *apps);
  WASMLET_RETURN_IF_ERROR(runtime_api_->Start());
  phases.Mark("runtime API");
  dapr_http_ = std::make_unique<DaprHttpApi>(config_, services, invoker, *apps, ready_);
  WASMLET_RETURN_IF_ERROR(dapr_http_->Start(ios));
  subscriptions_->Start(config_.plugins);
  app_subscriptions_->Start();
  // The function listener last: whoever sees its port accept finds every other listener there
  // and the server ready.
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
  phases.Mark("the rest");
  spdlog::info("{} serving loop{} ({})", loops, loops == 1 ? "" : "s", why);
  spdlog::debug("{}", phases.Summary());
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

size_t Server::InFlight() const {
  size_t n = http_ ? http_->in_flight() : 0;
  if (dapr_http_) n += dapr_http_->in_flight();
  for (const auto& proxy : proxies_) n += proxy->in_flight();
  return n;
}

bool Server::Drained() const {
  if (http_ && !http_->stopped()) return false;
  if (dapr_http_ && !dapr_http_->stopped()) return false;
  for (const auto& proxy : proxies_) {
    if (!proxy->stopped()) return false;
  }
  return InFlight() == 0;
}

void Server::Stop() {
  ready_ = false;  // readiness answers DOWN from here on
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.drain_timeout_ms);
  if (http_) http_->Stop();
  if (dapr_http_) dapr_http_->Stop();
  for (auto& proxy : proxies_) proxy->Stop();
  if (admin_) admin_->StopListening();
  // The runtime API's calls may run functions: they finish (or are cancelled at the drain
  // timeout) while the functions still run, and the listeners above drain meanwhile.
  if (runtime_api_)
    runtime_api_->Shutdown(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(give_up - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero())));
  // Drained: no listener reads a new request, and every request read has its answer written.
  while (!Drained() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!Drained()) spdlog::warn("stopping with {} requests still running", InFlight());
  StopThreads();
}

void Server::StopThreads() {
  // Order matters: the admin threads first (no install may start), then every instance is
  // destroyed on its own loop, then the loops stop, and only then go the objects their queued
  // handlers may still point to.
  if (subscriptions_) subscriptions_->Stop();  // no message is handed to a function any more
  if (app_subscriptions_) app_subscriptions_->Stop();  // nor to the app
  if (admin_) admin_->Stop();
  if (functions_) functions_->Shutdown();
  for (auto& proxy : proxies_) proxy->Shutdown();
  // Readiness answered DOWN while the requests drained; now the probes' listener goes too.
  if (actuator_) actuator_->Stop();
  for (auto& loop : loops_) loop->Stop();
  // The pool loops too (a function moved there makes outbound calls from them).
  if (functions_) functions_->StopLoops();
  // The loops are stopped: what their handlers pointed to can go.
  if (outbound_) outbound_->Shutdown();
  subscriptions_.reset();
  app_subscriptions_.reset();
  runtime_api_.reset();
  dapr_http_.reset();
  admin_.reset();
  functions_.reset();
  proxies_.clear();
  http_.reset();
  actuator_.reset();
  loops_.clear();
}

int Server::Run() {
  // The main thread waits for the signal; everything else runs on the loops and admin threads.
  // Made before Start: once the ports accept, a flood of clients may take every descriptor
  // left, and the signal's own (an eventfd and a pipe) must not be the ones missing. A signal
  // that comes while starting is handled once started.
  asio::io_context signal_io{1};
  asio::signal_set signals(signal_io, SIGINT, SIGTERM);
  Status status = Start();
  if (!status.ok()) {
    spdlog::error("{}", status.message());
    return 1;
  }
  int signal = 0;
  signals.async_wait([&signal](const boost::system::error_code& ec, int number) {
    if (!ec) signal = number;
  });
  signal_io.run();
  spdlog::info("signal {}: finishing in-flight requests, then stopping", signal);
  Stop();
  return 0;
}

}  // namespace wasmlet::server
