#include "server/api/runtime_api.h"

#include <absl/synchronization/mutex.h>
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/support/server_interceptor.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "common/address.h"
#include "server/api/runtime_service.h"

namespace wasmlet::server {
namespace {

// gRPC's synchronous server: a thread polls the sockets and, when it takes a call, runs it while
// another starts polling in its place. When no thread is left to poll in its place (the thread
// quota is spent), the call is answered RESOURCE_EXHAUSTED instead. So the quota is the calls
// plus this one poller: exactly api_max_concurrent_calls run, and the next is refused at once.
constexpr int kPoller = 1;

// The address as gRPC reads it: ":34904" (any address) becomes "0.0.0.0:34904".
Result<std::string> GrpcAddress(const RuntimeListenerConfig& listener) {
  auto split = SplitHostPort(listener.address);
  if (!split.ok())
    return Status(split.status().code(), "config " + listener.json_path + ".address: " + split.status().message());
  if (split->first.empty()) return "0.0.0.0:" + std::to_string(split->second);
  return listener.address;
}

// Two answers gRPC makes itself, with messages that do not say what happened or what to do, are
// rewritten on their way out:
// - a request gRPC could not read as its message comes as INTERNAL with no message at all. The
//   usual cause is a string field (a key, a store name) holding bytes that are not UTF-8, which
//   proto3 refuses: the client gets INVALID_ARGUMENT saying so instead. The calls' own INTERNAL
//   answers always carry a message, so they are left alone;
// - a call past the thread quota comes as RESOURCE_EXHAUSTED "Server Threadpool Exhausted": it
//   keeps its code and says which limit it met.
class ClearerStatus final : public grpc::experimental::Interceptor {
 public:
  // `method` lives as long as the server (gRPC's registered name).
  ClearerStatus(const char* method, uint32_t max_calls) : method_(method ? method : "the call"), max_calls_(max_calls) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::INTERNAL && status.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            std::string("the request to ") + method_ +
                " could not be read as its message: a string field (a key, a store name, ...) holds bytes that are "
                "not UTF-8, which proto3 strings must be, or the bytes are not that message; nothing was done"));
      } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                 status.error_message() == "Server Threadpool Exhausted") {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            std::string("the runtime API is running as many calls as it runs at once (") +
                std::to_string(max_calls_) + ", wasmlet.api_max_concurrent_calls), so " + method_ +
                " was not started: try again shortly, or raise the setting"));
      }
    }
    methods->Proceed();
  }

 private:
  const char* method_;
  uint32_t max_calls_;
};

class ClearerStatusFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ClearerStatusFactory(uint32_t max_calls) : max_calls_(max_calls) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new ClearerStatus(info->method(), max_calls_);
  }

 private:
  uint32_t max_calls_;
};

// protobuf's own complaints (the invalid UTF-8 above, once per bad request) go to the log at
// debug level rather than to stderr: a client must not be able to flood the log.
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("protobuf ({}:{}): {}", file, line, message);
    return;
  }
  spdlog::debug("protobuf ({}:{}): {}", file, line, message);
}

}  // namespace

RuntimeApi::RuntimeApi(const ServerConfig& config, abi::HostServices services, std::shared_ptr<Invoker> invoker,
                       std::shared_ptr<const AppComponents> apps)
    : config_(config),
      service_(std::make_unique<RuntimeService>(config, std::move(services), std::move(invoker), std::move(apps))) {}

RuntimeApi::~RuntimeApi() { Shutdown(std::chrono::milliseconds(0)); }

Status RuntimeApi::Start() {
  if (config_.runtime_listeners.empty()) return Status::Ok();
  grpc::ServerBuilder builder;
  std::vector<int> ports(config_.runtime_listeners.size(), 0);
  for (size_t i = 0; i < config_.runtime_listeners.size(); ++i) {
    const RuntimeListenerConfig& listener = config_.runtime_listeners[i];
    WASMLET_RETURN_IF_ERROR(CheckExposure({.what = "runtime API",
                                           .address = listener.address,
                                           .address_setting = listener.json_path + ".address",
                                           .has_token = !config_.api_token.empty(),
                                           .token_setting = "api_token",
                                           .token_env = "WASMLET_API_TOKEN",
                                           .allow_insecure = config_.api_allow_insecure,
                                           .insecure_setting = "wasmlet.api_allow_insecure",
                                           .risk = "can read and change this sidecar's state, locks and "
                                                   "messages and read its secrets"}));
    auto address = GrpcAddress(listener);
    if (!address.ok()) return address.status();
    builder.AddListeningPort(*address, grpc::InsecureServerCredentials(), &ports[i]);
  }
  builder.RegisterService(service_.get());
  static std::once_flag process_settings;
  std::call_once(process_settings, [] {
    google::protobuf::SetLogHandler(ProtobufLog);
    // Debian builds Abseil without NDEBUG, so every absl::Mutex in gRPC records its lock order
    // in a process-wide graph (4% of the API's CPU under load): a debugging aid, off here.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  });
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<ClearerStatusFactory>(config_.api_max_concurrent_calls));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  const int max_message = static_cast<int>(std::min<uint64_t>(config_.api_max_message_bytes, INT32_MAX));
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_message);
  // A thread that has run a call goes back to polling unless MAX_POLLERS already poll, and then
  // it ends. gRPC's default (2) made every call past the second start a thread and end it: at 64
  // calls at once two thirds of the API's CPU went to creating and tearing down threads. So
  // every thread the quota allows stays (idle ones wake once per gRPC's 10 s poll timeout).
  const int threads = static_cast<int>(std::min<uint32_t>(config_.api_max_concurrent_calls, INT32_MAX - kPoller)) + kPoller;
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, threads);
  grpc::ResourceQuota quota("wasmlet runtime API");
  quota.SetMaxThreads(threads);
  builder.SetResourceQuota(quota);
  server_ = builder.BuildAndStart();
  for (size_t i = 0; i < config_.runtime_listeners.size(); ++i) {
    const RuntimeListenerConfig& listener = config_.runtime_listeners[i];
    if (!server_ || ports[i] == 0) {
      if (server_) server_->Shutdown();
      server_.reset();
      return Unavailable("config " + listener.json_path + ": the runtime API cannot listen on " + listener.address +
                         " (is the port in use, or the address not this machine's?)");
    }
    listening_.push_back({listener.name, static_cast<uint16_t>(ports[i])});
    spdlog::info("serving the runtime API (gRPC, spec.proto.runtime.v1.Runtime) on {} port {}", listener.name,
                 ports[i]);
  }
  return Status::Ok();
}

uint16_t RuntimeApi::port(const std::string& name) const {
  for (const Listening& listening : listening_) {
    if (listening.name == name) return listening.port;
  }
  return 0;
}

void RuntimeApi::Shutdown(std::chrono::milliseconds deadline) {
  if (!server_) return;
  service_->EndStreams();
  server_->Shutdown(std::chrono::system_clock::now() + deadline);
  server_->Wait();
  server_.reset();
  listening_.clear();
}

}  // namespace wasmlet::server
