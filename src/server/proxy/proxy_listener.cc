#include "server/proxy/proxy_listener.h"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>

#include "abi/stream_run.h"
#include "common/text.h"

namespace wasmlet::server {
namespace {

namespace asio = boost::asio;

// How long a filter that failed to start waits before the next request tries again.
constexpr std::chrono::seconds kRestartBackoff{1};

unsigned StatusForError(StatusCode code) {
  switch (code) {
    case StatusCode::kResourceExhausted: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

}  // namespace

// One filter's instance on one loop, with the timer that ticks it.
struct ProxyListener::Instance {
  std::unique_ptr<abi::PluginVm> vm;
  std::unique_ptr<asio::steady_timer> tick;
  Clock::TimePoint retry_at{};  // on the loop's engine clock
  std::string last_error;
};

ProxyListener::ProxyListener(const ServerConfig& config, const ProxyListenerConfig& listener,
                             engine::Engine& engine, abi::HostServices services, OutboundCalls& outbound,
                             Metrics& metrics, std::vector<EventLoop*> serving)
    : config_(config),
      listener_(listener),
      engine_(engine),
      services_(std::move(services)),
      outbound_(outbound),
      metrics_(metrics),
      serving_(std::move(serving)) {}

ProxyListener::~ProxyListener() = default;

Status ProxyListener::Start() {
  for (const RouterConfig& router : config_.routers) {
    if (router.name == listener_.router) router_ = &router;
  }
  if (!router_) return NotFound("listener " + listener_.json_path + ": no router named " + listener_.router);
  for (const PluginConfig& plugin : listener_.filters) {
    auto loaded = LoadPlugin(plugin, config_, engine_);
    if (!loaded.ok()) return loaded.status();
    filters_.push_back(Filter{plugin, std::move(*loaded)});
  }
  int loops = 0;
  for (EventLoop* loop : serving_) loops = std::max(loops, loop->index() + 1);
  loops_.resize(loops);
  for (LoopState& state : loops_) state.instances.resize(filters_.size());
  // Every loop starts its instances now: a filter that cannot start is found before traffic.
  Status started;
  for (EventLoop* loop : serving_) {
    loop->RunAndWait([&] {
      for (size_t i = 0; i < filters_.size() && started.ok(); ++i) {
        std::string error;
        if (!Get(*loop, i, &error)) {
          started = Status(StatusCode::kFailedPrecondition, "listener " + listener_.json_path + ": filter " +
                                                                filters_[i].config.json_path +
                                                                " does not start: " + error);
        }
      }
    });
    if (!started.ok()) {
      Shutdown();
      return started;
    }
  }
  std::vector<asio::io_context*> ios;
  for (EventLoop* loop : serving_) ios.push_back(&loop->io());
  http_ = std::make_unique<HttpServer>(
      ios,
      HttpServer::Options{.max_request_body = config_.max_request_body,
                          .max_connections = config_.max_connections,
                          .idle_timeout = std::chrono::milliseconds(config_.idle_timeout_ms)},
      [this](abi::HttpRequest request, Respond respond) { Handle(std::move(request), std::move(respond)); });
  Status listening = http_->Listen(listener_.address);
  if (!listening.ok()) {
    Shutdown();
    return Status(listening.code(), "listener " + listener_.json_path + ": " + listening.message());
  }
  spdlog::info("proxy listener '{}' on port {}: {} filter{} in front of router '{}'", listener_.name,
               http_->port(), filters_.size(), filters_.size() == 1 ? "" : "s", router_->name);
  return Status::Ok();
}

void ProxyListener::Stop() {
  if (http_) http_->Stop();
}

void ProxyListener::Shutdown() {
  for (EventLoop* loop : serving_) {
    loop->RunAndWait([&] {
      if (static_cast<size_t>(loop->index()) >= loops_.size()) return;
      for (auto& instance : loops_[loop->index()].instances) {
        if (!instance) continue;
        if (instance->tick) instance->tick->cancel();
        instance.reset();
      }
    });
  }
}

abi::PluginVm* ProxyListener::Get(EventLoop& loop, size_t filter, std::string* error) {
  auto& slot = loops_[loop.index()].instances[filter];
  if (!slot) slot = std::make_unique<Instance>();
  Instance& instance = *slot;
  if (instance.vm && !instance.vm->failed()) return instance.vm.get();
  const Filter& f = filters_[filter];
  if (instance.vm) {
    // It failed (its streams were answered 500): a fresh one takes the next request.
    spdlog::warn("proxy listener '{}': filter {} failed; starting a new instance", listener_.name,
                 f.config.name);
    if (instance.tick) instance.tick->cancel();
    instance.tick.reset();
    instance.vm.reset();
  }
  if (loop.store().clock().Now() < instance.retry_at) {
    *error = instance.last_error;
    return nullptr;
  }
  auto vm = abi::PluginVm::Create(loop.store(), f.loaded.module, f.loaded.spec, services_);
  if (!vm.ok()) {
    instance.retry_at = loop.store().clock().Now() + kRestartBackoff;
    instance.last_error = vm.status().message();
    *error = instance.last_error;
    spdlog::error("proxy listener '{}': {}", listener_.name, instance.last_error);
    return nullptr;
  }
  instance.vm = std::move(*vm);
  abi::PluginVm* raw = instance.vm.get();
  // Queue notifications from other threads run on this loop.
  raw->set_pending_work_notifier([&loop, alive = raw->liveness(), budget = f.loaded.cpu_limit] {
    loop.Post([alive, budget] {
      if (auto vm = alive.lock(); vm && !(*vm)->failed())
        (void)(*vm)->RunPendingWork((*vm)->clock().Now() + budget);
    });
  });
  ArmTick(loop, filter);
  return raw;
}

void ProxyListener::ArmTick(EventLoop& loop, size_t filter) {
  Instance& instance = *loops_[loop.index()].instances[filter];
  if (!instance.vm || instance.tick || instance.vm->tick_period_ms() == 0) return;
  instance.tick = std::make_unique<asio::steady_timer>(loop.io());
  instance.tick->expires_after(std::chrono::milliseconds(instance.vm->tick_period_ms()));
  instance.tick->async_wait(
      [this, &loop, filter, alive = instance.vm->liveness()](boost::system::error_code ec) {
        if (ec || alive.expired()) return;
        Instance& instance = *loops_[loop.index()].instances[filter];
        instance.tick.reset();
        abi::PluginVm& vm = *instance.vm;
        if (vm.failed()) return;
        Status ticked = vm.Tick(vm.clock().Now() + filters_[filter].loaded.cpu_limit);
        if (!ticked.ok()) spdlog::warn("proxy listener '{}': {}", listener_.name, ticked.message());
        ArmTick(loop, filter);
      });
}

void ProxyListener::Handle(abi::HttpRequest request, Respond respond) {
  EventLoop* loop = EventLoop::Current();
  std::vector<abi::StreamRun::Filter> chain;
  chain.reserve(filters_.size());
  for (size_t i = 0; i < filters_.size(); ++i) {
    std::string error;
    abi::PluginVm* vm = Get(*loop, i, &error);
    if (!vm) {
      respond(TextResponse(503, "filter '" + filters_[i].config.name + "' of listener '" + listener_.name +
                                    "' is not running: " + error));
      return;
    }
    chain.push_back({vm, filters_[i].loaded.cpu_limit});
  }
  auto data = std::make_unique<abi::StreamData>();
  abi::HeaderMap& headers = data->maps[static_cast<int>(abi::MapType::kHttpRequestHeaders)];
  headers.Reserve(4 + request.headers.size());
  headers.Add(":method", request.method);
  headers.Add(":path", request.path);
  headers.Add(":authority", request.authority);
  headers.Add(":scheme", request.scheme);
  for (const auto& [name, value] : request.headers) headers.Add(abi::ToLower(name), value);
  data->maps[static_cast<int>(abi::MapType::kHttpRequestTrailers)] = abi::HeaderMap(request.trailers);
  data->request_body_size = request.body.size();
  data->request_body = std::move(request.body);
  request.headers.clear();
  request.trailers.clear();
  data->request = std::move(request);
  const auto start = std::chrono::steady_clock::now();  // a measurement: the latency histogram
  abi::StreamRun::Start(
      std::move(chain), std::move(data),
      [this](abi::StreamData& stream, std::function<void(abi::HttpResponse)> answer) {
        Route(stream, std::move(answer));
      },
      [loop](std::function<void()> work) { loop->Post(std::move(work)); },
      [this, start, respond = std::move(respond)](Result<abi::HttpResponse> result) {
        const std::string label = "listener:" + listener_.name;
        if (result.ok()) {
          metrics_.CountRequest(
              label, result->status,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
          return respond(std::move(*result));
        }
        const Status& error = result.status();
        spdlog::warn("proxy listener '{}': {}", listener_.name, error.message());
        const unsigned status = StatusForError(error.code());
        metrics_.CountRequest(
            label, status, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        respond(TextResponse(status, error.message()));
      });
}

void ProxyListener::Route(abi::StreamData& data, std::function<void(abi::HttpResponse)> answer) {
  // The request as the filters left it: they may have changed the method, path, authority and
  // any header, and the route is chosen after them.
  abi::HttpRequest out;
  const abi::HeaderMap& headers = data.maps[static_cast<int>(abi::MapType::kHttpRequestHeaders)];
  out.headers.reserve(headers.size());
  for (const auto& [name, value] : headers.pairs()) {
    if (name == ":method") {
      out.method = value;
    } else if (name == ":path") {
      out.path = value;
    } else if (name == ":authority") {
      out.authority = value;
    } else if (!name.starts_with(':')) {
      out.headers.emplace_back(name, value);
    }
  }
  const RouteRule* rule = router_->Match(out.authority, out.path, out.headers);
  if (!rule) {
    return answer(TextResponse(404, "no route of router '" + router_->name + "' matches host '" +
                                        Printable(out.authority, 128) + "', path '" +
                                        Printable(out.path.substr(0, out.path.find('?')), 256) + "'"));
  }
  data.route_name = router_->name;
  if (rule->direct) return answer(*rule->direct);
  data.cluster_name = rule->cluster;
  out.body = std::move(data.request_body);
  out.source_address = data.request.source_address;
  UpstreamClient* client = outbound_.ForThisLoop();
  client->Send(rule->cluster, std::move(out), rule->timeout,
               [stream = &data, answer = std::move(answer)](abi::HttpResponse response) {
                 // The stream outlives its upstream call: `answer` holds it.
                 if (!response.local) stream->upstream_address = response.details;
                 answer(std::move(response));
               });
}

}  // namespace wasmlet::server
