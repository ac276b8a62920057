#include "server/api/runtime_service.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <thread>
#include <type_traits>
#include <cstdio>

#include "common/mutex.h"
#include "common/text.h"
#include "server/api/app_callback.h"
#include "server/services/subscriptions.h"

namespace wasmlet::server {
namespace {

using Write = abi::StateStore::Write;

grpc::StatusCode GrpcCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return grpc::StatusCode::OK;
    case StatusCode::kInvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kOutOfRange: return grpc::StatusCode::OUT_OF_RANGE;
    case StatusCode::kFailedPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case StatusCode::kResourceExhausted: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kDeadlineExceeded: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kUnimplemented: return grpc::StatusCode::UNIMPLEMENTED;
    case StatusCode::kAlreadyExists: return grpc::StatusCode::ALREADY_EXISTS;
    case StatusCode::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kTrap:
    case StatusCode::kExit:
    case StatusCode::kInternal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::UNKNOWN;
}

// The names of `components`, for messages: "a, b" or "none".
template <typename Map>
std::string Names(const Map& components) {
  std::string names;
  for (const auto& [name, component] : components) names += (names.empty() ? "" : ", ") + name;
  return names.empty() ? "none" : names;
}

// `name` is a component of `components` (of kind `kind`, named by the request's `field`):
// InvalidArgument naming what there is otherwise.
template <typename Map>
Status Known(const Map& components, const std::string& name, const char* kind, const char* field) {
  if (name.empty())
    return InvalidArgument(std::string(field) + " is empty: name a " + kind + " of the config (it has: " +
                           Names(components) + ")");
  if (components.count(name)) return Status::Ok();
  return InvalidArgument("no " + std::string(kind) + " named '" + Printable(name, 64) +
                         "' (the config has: " + Names(components) + ")");
}

Status Required(const std::string& value, const char* field) {
  if (value.empty()) return InvalidArgument(std::string(field) + " is empty");
  return Status::Ok();
}

// Dapr's and Layotto's "ttlInSeconds" metadata: seconds until the item expires; -1 or absent:
// never.
Result<std::chrono::seconds> TtlOf(const google::protobuf::Map<std::string, std::string>& metadata) {
  auto it = metadata.find("ttlInSeconds");
  if (it == metadata.end() || it->second.empty()) return std::chrono::seconds(0);
  const std::string& text = it->second;
  int64_t seconds = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || end != text.data() + text.size() || seconds < -1 || seconds > (int64_t{1} << 31))
    return InvalidArgument("metadata ttlInSeconds \"" + Printable(text, 32) +
                           "\" is not a number of seconds (-1 for none)");
  return std::chrono::seconds(seconds < 0 ? 0 : seconds);
}

// A save of `item`: its ETag when it gives one, first-write when its options ask for it.
Result<Write> SaveOf(const runtime_v1::StateItem& item) {
  WASMLET_RETURN_IF_ERROR(Required(item.key(), "key"));
  Write write;
  write.key = item.key();
  write.value = item.value();
  if (item.has_etag() && !item.etag().value().empty()) write.etag = item.etag().value();
  write.first_write = item.options().concurrency() == runtime_v1::StateOptions::CONCURRENCY_FIRST_WRITE;
  auto ttl = TtlOf(item.metadata());
  if (!ttl.ok()) return ttl.status();
  write.ttl = *ttl;
  return write;
}

Result<Write> DeleteOf(const std::string& key, const runtime_v1::Etag* etag) {
  WASMLET_RETURN_IF_ERROR(Required(key, "key"));
  Write write;
  write.remove = true;
  write.key = key;
  if (etag && !etag->value().empty()) write.etag = etag->value();
  return write;
}

// A state write whose ETag or first-write condition does not hold is gRPC's ABORTED, as Dapr
// and Layotto answer it.
grpc::Status ConditionAborts(grpc::Status answer) {
  if (answer.error_code() != grpc::StatusCode::FAILED_PRECONDITION) return answer;
  return grpc::Status(grpc::StatusCode::ABORTED, answer.error_message());
}

abi::HeaderList PairsOf(const google::protobuf::Map<std::string, std::string>& metadata) {
  abi::HeaderList pairs(metadata.begin(), metadata.end());
  std::sort(pairs.begin(), pairs.end());  // a map's order is not the message's: make it stable
  return pairs;
}

}  // namespace

RuntimeService::RuntimeService(const ServerConfig& config, abi::HostServices services,
                               std::shared_ptr<Invoker> invoker, std::shared_ptr<const AppComponents> apps)
    : config_(config), services_(std::move(services)), invoker_(std::move(invoker)), apps_(std::move(apps)) {}

template <typename Fn>
grpc::Status RuntimeService::Serve(grpc::ServerContext* context, const char* rpc, Fn&& fn) {
  if (!config_.api_token.empty()) {
    const std::string& token = config_.api_token;
    auto same = [&token](grpc::string_ref given) {
      return given.size() == token.size() && CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
    };
    bool allowed = false;
    for (const auto& [name, value] : context->client_metadata()) {
      if (name == "dapr-api-token") allowed |= same(value);
      if (name == "authorization" && value.starts_with("Bearer ")) allowed |= same(value.substr(7));
    }
    if (!allowed) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "this runtime API needs its token: send it as the metadata \"dapr-api-token\" "
                          "(or \"authorization: Bearer <token>\")");
    }
  }
  Status status;
  try {
    status = fn();
  } catch (const std::exception& e) {
    spdlog::error("runtime API {}: {}", rpc, e.what());
    status = Internal(std::string(rpc) + " failed: " + e.what());
  }
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(GrpcCode(status.code()), status.message());
}

grpc::Status RuntimeService::SayHello(grpc::ServerContext* context, const runtime_v1::SayHelloRequest* request,
                                      runtime_v1::SayHelloResponse* response) {
  return Serve(context, "SayHello", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.hellos, request->service_name(), "hello component", "service_name"));
    std::string hello = config_.hellos.at(request->service_name()).hello;
    if (!request->name().empty()) hello += ", " + request->name();
    response->set_hello(std::move(hello));
    if (request->has_data()) *response->mutable_data() = request->data();
    return Status::Ok();
  });
}

grpc::Status RuntimeService::InvokeService(grpc::ServerContext* context,
                                           const runtime_v1::InvokeServiceRequest* request,
                                           runtime_v1::InvokeResponse* response) {
  return Serve(context, "InvokeService", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Required(request->id(), "id"));
    const runtime_v1::CommonInvokeRequest& message = request->message();
    abi::HttpRequest call;
    // The verb (GET when none), the method as the path, the query string, the caller's
    // metadata as headers, and `id` naming the function: what Layotto's channel sends.
    const auto verb = message.http_extension().verb();
    call.method = verb == runtime_v1::HTTPExtension::NONE ? "GET" : runtime_v1::HTTPExtension::Verb_Name(verb);
    call.path = message.method();
    if (call.path.empty() || call.path.front() != '/') call.path.insert(0, "/");
    if (!message.http_extension().querystring().empty()) call.path += "?" + message.http_extension().querystring();
    call.authority = "localhost";
    for (const auto& [name, value] : context->client_metadata()) {
      const std::string_view key(name.data(), name.size());
      // Not the transport's headers, nor the token meant for this API.
      if (key.empty() || key.front() == ':' || key.starts_with("grpc-") || key == "te" || key == "content-type" ||
          key == "user-agent" || key == "dapr-api-token" || key == "authorization" || key == "id")
        continue;
      call.headers.emplace_back(std::string(key), std::string(value.data(), value.size()));
    }
    if (!message.content_type().empty()) call.headers.emplace_back("content-type", message.content_type());
    call.headers.emplace_back("id", request->id());
    call.body = message.data().value();
    auto answer = invoker_->Forward(request->id(), std::move(call));
    if (!answer.ok()) return answer.status();
    if (answer->status != 200) {
      std::string_view body = answer->body;
      while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
      return Unavailable("function '" + Printable(request->id(), 64) + "' answered " +
                         std::to_string(answer->status) + ": " + Printable(body, 1024));
    }
    for (const auto& [name, value] : answer->headers) {
      if (name.size() == 12 && strncasecmp(name.c_str(), "content-type", 12) == 0) response->set_content_type(value);
    }
    response->mutable_data()->set_value(std::move(answer->body));
    return Status::Ok();
  });
}

grpc::Status RuntimeService::GetState(grpc::ServerContext* context, const runtime_v1::GetStateRequest* request,
                                      runtime_v1::GetStateResponse* response) {
  return Serve(context, "GetState", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.stores, request->store_name(), "state store", "store_name"));
    WASMLET_RETURN_IF_ERROR(Required(request->key(), "key"));
    auto items = services_.state->GetItems(request->store_name(), {request->key()});
    if (!items.ok()) return items.status();
    if (auto& item = items->front()) {  // an absent key is an empty answer, as in Dapr
      response->set_data(std::move(item->value));
      response->set_etag(std::move(item->etag));
    }
    return Status::Ok();
  });
}

grpc::Status RuntimeService::GetBulkState(grpc::ServerContext* context,
                                          const runtime_v1::GetBulkStateRequest* request,
                                          runtime_v1::GetBulkStateResponse* response) {
  return Serve(context, "GetBulkState", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.stores, request->store_name(), "state store", "store_name"));
    std::vector<std::string> keys(request->keys().begin(), request->keys().end());
    for (const std::string& key : keys) WASMLET_RETURN_IF_ERROR(Required(key, "a key of keys"));
    auto items = services_.state->GetItems(request->store_name(), keys);
    if (!items.ok()) return items.status();
    for (size_t i = 0; i < keys.size(); ++i) {
      runtime_v1::BulkStateItem* out = response->add_items();
      out->set_key(keys[i]);
      if (auto& item = (*items)[i]) {
        out->set_data(std::move(item->value));
        out->set_etag(std::move(item->etag));
      }
    }
    return Status::Ok();
  });
}

Status RuntimeService::ApplyState(const std::string& store, const std::vector<Write>& writes) {
  if (writes.empty()) return Status::Ok();
  return services_.state->Apply(store, writes);
}

grpc::Status RuntimeService::SaveState(grpc::ServerContext* context, const runtime_v1::SaveStateRequest* request,
                                       google::protobuf::Empty*) {
  grpc::Status answer = Serve(context, "SaveState", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.stores, request->store_name(), "state store", "store_name"));
    std::vector<Write> writes;
    for (const runtime_v1::StateItem& item : request->states()) {
      auto write = SaveOf(item);
      if (!write.ok()) return write.status();
      writes.push_back(std::move(*write));
    }
    return ApplyState(request->store_name(), writes);
  });
  return ConditionAborts(std::move(answer));
}

grpc::Status RuntimeService::DeleteState(grpc::ServerContext* context, const runtime_v1::DeleteStateRequest* request,
                                         google::protobuf::Empty*) {
  grpc::Status answer = Serve(context, "DeleteState", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.stores, request->store_name(), "state store", "store_name"));
    auto write = DeleteOf(request->key(), request->has_etag() ? &request->etag() : nullptr);
    if (!write.ok()) return write.status();
    return ApplyState(request->store_name(), {*write});
  });
  return ConditionAborts(std::move(answer));
}

grpc::Status RuntimeService::DeleteBulkState(grpc::ServerContext* context,
                                             const runtime_v1::DeleteBulkStateRequest* request,
                                             google::protobuf::Empty*) {
  grpc::Status answer = Serve(context, "DeleteBulkState", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.stores, request->store_name(), "state store", "store_name"));
    std::vector<Write> writes;
    for (const runtime_v1::StateItem& item : request->states()) {
      auto write = DeleteOf(item.key(), item.has_etag() ? &item.etag() : nullptr);
      if (!write.ok()) return write.status();
      writes.push_back(std::move(*write));
    }
    return ApplyState(request->store_name(), writes);
  });
  return ConditionAborts(std::move(answer));
}

grpc::Status RuntimeService::ExecuteStateTransaction(grpc::ServerContext* context,
                                                     const runtime_v1::ExecuteStateTransactionRequest* request,
                                                     google::protobuf::Empty*) {
  grpc::Status answer = Serve(context, "ExecuteStateTransaction", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.stores, request->storename(), "state store", "storeName"));
    std::vector<Write> writes;
    for (int i = 0; i < request->operations_size(); ++i) {
      const runtime_v1::TransactionalStateOperation& op = request->operations(i);
      Result<Write> write = InvalidArgument("operations[" + std::to_string(i) + "].operationType \"" +
                                            Printable(op.operationtype(), 32) + "\" is neither \"upsert\" nor \"delete\"");
      if (op.operationtype() == "upsert") write = SaveOf(op.request());
      if (op.operationtype() == "delete")
        write = DeleteOf(op.request().key(), op.request().has_etag() ? &op.request().etag() : nullptr);
      if (!write.ok()) return write.status();
      writes.push_back(std::move(*write));
    }
    return ApplyState(request->storename(), writes);
  });
  return ConditionAborts(std::move(answer));
}

grpc::Status RuntimeService::TryLock(grpc::ServerContext* context, const runtime_v1::TryLockRequest* request,
                                     runtime_v1::TryLockResponse* response) {
  return Serve(context, "TryLock", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.locks, request->store_name(), "lock store", "store_name"));
    WASMLET_RETURN_IF_ERROR(Required(request->resource_id(), "resource_id"));
    WASMLET_RETURN_IF_ERROR(Required(request->lock_owner(), "lock_owner"));
    if (request->expire() <= 0)
      return InvalidArgument("expire is " + std::to_string(request->expire()) +
                             ": give the lock's lease in seconds (more than 0)");
    auto taken = services_.locks->TryLock(request->store_name(), request->resource_id(), request->lock_owner(),
                                          std::chrono::seconds(request->expire()));
    if (!taken.ok()) return taken.status();
    response->set_success(*taken);
    return Status::Ok();
  });
}

grpc::Status RuntimeService::Unlock(grpc::ServerContext* context, const runtime_v1::UnlockRequest* request,
                                    runtime_v1::UnlockResponse* response) {
  return Serve(context, "Unlock", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.locks, request->store_name(), "lock store", "store_name"));
    WASMLET_RETURN_IF_ERROR(Required(request->resource_id(), "resource_id"));
    WASMLET_RETURN_IF_ERROR(Required(request->lock_owner(), "lock_owner"));
    auto unlocked = services_.locks->Unlock(request->store_name(), request->resource_id(), request->lock_owner());
    if (!unlocked.ok()) return unlocked.status();
    switch (*unlocked) {
      case abi::Locks::Unlocked::kSuccess: response->set_status(runtime_v1::UnlockResponse::SUCCESS); break;
      case abi::Locks::Unlocked::kLockDoesNotExist:
        response->set_status(runtime_v1::UnlockResponse::LOCK_UNEXIST);
        break;
      case abi::Locks::Unlocked::kLockBelongsToOthers:
        response->set_status(runtime_v1::UnlockResponse::LOCK_BELONG_TO_OTHERS);
        break;
    }
    return Status::Ok();
  });
}

grpc::Status RuntimeService::LockKeepAlive(grpc::ServerContext* context,
                                           const runtime_v1::LockKeepAliveRequest* request,
                                           runtime_v1::LockKeepAliveResponse* response) {
  return Serve(context, "LockKeepAlive", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.locks, request->store_name(), "lock store", "store_name"));
    WASMLET_RETURN_IF_ERROR(Required(request->resource_id(), "resource_id"));
    WASMLET_RETURN_IF_ERROR(Required(request->lock_owner(), "lock_owner"));
    if (request->expire() <= 0)
      return InvalidArgument("expire is " + std::to_string(request->expire()) +
                             ": give the renewed lease in seconds (more than 0)");
    auto renewed = services_.locks->KeepAlive(request->store_name(), request->resource_id(), request->lock_owner(),
                                              std::chrono::seconds(request->expire()));
    if (!renewed.ok()) return renewed.status();
    switch (*renewed) {
      case abi::Locks::Unlocked::kSuccess: response->set_status(runtime_v1::LockKeepAliveResponse::SUCCESS); break;
      case abi::Locks::Unlocked::kLockDoesNotExist:
        response->set_status(runtime_v1::LockKeepAliveResponse::LOCK_UNEXIST);
        break;
      case abi::Locks::Unlocked::kLockBelongsToOthers:
        response->set_status(runtime_v1::LockKeepAliveResponse::LOCK_BELONG_TO_OTHERS);
        break;
    }
    return Status::Ok();
  });
}

grpc::Status RuntimeService::GetNextId(grpc::ServerContext* context, const runtime_v1::GetNextIdRequest* request,
                                       runtime_v1::GetNextIdResponse* response) {
  return Serve(context, "GetNextId", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.sequencers, request->store_name(), "sequencer", "store_name"));
    WASMLET_RETURN_IF_ERROR(Required(request->key(), "key"));
    // WEAK and STRONG get the same answer: every sequencer here gives ids that strictly increase.
    auto id = services_.sequencers->NextId(request->store_name(), request->key());
    if (!id.ok()) return id.status();
    if (*id > static_cast<uint64_t>(INT64_MAX))
      return OutOfRange("sequence '" + Printable(request->key(), 64) + "' has passed the largest int64");
    response->set_next_id(static_cast<int64_t>(*id));
    return Status::Ok();
  });
}

grpc::Status RuntimeService::GetSecret(grpc::ServerContext* context, const runtime_v1::GetSecretRequest* request,
                                       runtime_v1::GetSecretResponse* response) {
  return Serve(context, "GetSecret", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.secret_stores, request->store_name(), "secret store", "store_name"));
    WASMLET_RETURN_IF_ERROR(Required(request->key(), "key"));
    auto secret = services_.secrets->Get(request->store_name(), request->key());
    if (!secret.ok()) return secret.status();
    for (auto& [name, value] : *secret) (*response->mutable_data())[name] = std::move(value);
    return Status::Ok();
  });
}

grpc::Status RuntimeService::GetBulkSecret(grpc::ServerContext* context,
                                           const runtime_v1::GetBulkSecretRequest* request,
                                           runtime_v1::GetBulkSecretResponse* response) {
  return Serve(context, "GetBulkSecret", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.secret_stores, request->store_name(), "secret store", "store_name"));
    auto secrets = services_.secrets->GetAll(request->store_name());
    if (!secrets.ok()) return secrets.status();
    for (auto& [key, pairs] : *secrets) {
      auto& out = *(*response->mutable_data())[key].mutable_secrets();
      for (auto& [name, value] : pairs) out[name] = std::move(value);
    }
    return Status::Ok();
  });
}

grpc::Status RuntimeService::GetConfiguration(grpc::ServerContext* context,
                                              const runtime_v1::GetConfigurationRequest* request,
                                              runtime_v1::GetConfigurationResponse* response) {
  return Serve(context, "GetConfiguration", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(
        Known(config_.configuration_stores, request->store_name(), "configuration store", "store_name"));
    std::vector<std::string> keys(request->keys().begin(), request->keys().end());
    auto items = services_.configuration->Get(request->store_name(), keys);
    if (!items.ok()) return items.status();
    for (auto& [key, content] : *items) {
      runtime_v1::ConfigurationItem* item = response->add_items();
      item->set_key(key);
      item->set_content(std::move(content));
      item->set_group(request->group());
      item->set_label(request->label());
    }
    return Status::Ok();
  });
}

namespace {

// The requests a client sends on a stream, read on a thread of their own so that the call's
// thread can write meanwhile. Its owner must make the last Read return (the client ends its
// side, or the call is cancelled) before it is destroyed.
template <typename Request, typename Stream>
class IncomingRequests {
 public:
  explicit IncomingRequests(Stream* stream)
      : thread_([this, stream] {
          Request request;
          while (stream->Read(&request)) {
            MutexLock lock(mutex_);
            queue_.push_back(std::move(request));
            request = Request();
            changed_.NotifyAll();
          }
          MutexLock lock(mutex_);
          ended_ = true;
          changed_.NotifyAll();
        }) {}
  ~IncomingRequests() { thread_.join(); }

  // The requests that came, waiting for one until `deadline` when none has.
  std::vector<Request> Wait(std::chrono::steady_clock::time_point deadline) {
    MutexLock lock(mutex_);
    while (queue_.empty() && !ended_) {
      if (!changed_.WaitUntil(mutex_, deadline)) break;
    }
    std::vector<Request> taken = std::move(queue_);
    queue_.clear();
    return taken;
  }
  bool ended() {
    MutexLock lock(mutex_);
    return ended_;
  }

 private:
  Mutex mutex_;
  CondVar changed_;
  std::vector<Request> queue_ GUARDED_BY(mutex_);
  bool ended_ GUARDED_BY(mutex_) = false;
  std::thread thread_;  // last: it starts once the rest is made
};

Status TooManyStreams(uint32_t limit) {
  return ResourceExhausted("this runtime API has " + std::to_string(limit) +
                           " streams open, its limit (wasmlet.api_max_streams); close one or raise it");
}

// Gives back a stream's place when the stream ends.
struct StreamPlace {
  std::atomic<uint32_t>& open;
  ~StreamPlace() { open.fetch_sub(1); }
};

// On every way out of a stream's call, the reader's last Read must return before the reader is
// joined: a client that has not closed its side is cancelled.
template <typename Incoming>
struct EndReads {
  grpc::ServerContext* context;
  Incoming& incoming;
  ~EndReads() {
    if (!incoming.ended()) context->TryCancel();
  }
};
template <typename Incoming>
EndReads(grpc::ServerContext*, Incoming&) -> EndReads<Incoming>;

// What one request of SubscribeConfiguration watches, and what it last sent for each key.
struct Watch {
  runtime_v1::SubscribeConfigurationRequest request;
  std::vector<std::string> keys;
  std::map<std::string, std::string> sent;  // key -> content, for the keys that exist
};

}  // namespace

bool RuntimeService::OpenStream() {
  if (streams_.fetch_add(1) < config_.api_max_streams) return true;
  streams_.fetch_sub(1);
  return false;
}

grpc::Status RuntimeService::SubscribeConfiguration(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<runtime_v1::SubscribeConfigurationResponse, runtime_v1::SubscribeConfigurationRequest>*
        stream) {
  using Stream = std::remove_pointer_t<decltype(stream)>;
  return Serve(context, "SubscribeConfiguration", [&]() -> Status {
    if (!OpenStream()) return TooManyStreams(config_.api_max_streams);
    StreamPlace place{streams_};
    // The first request is read and checked here, before the reader starts, so that a bad one
    // is answered with its error rather than a cancelled call.
    std::vector<Watch> watches;
    auto watch_of = [&](runtime_v1::SubscribeConfigurationRequest request) -> Status {
      WASMLET_RETURN_IF_ERROR(
          Known(config_.configuration_stores, request.store_name(), "configuration store", "store_name"));
      if (request.keys().empty())
        return InvalidArgument("keys is empty: name the keys to watch in configuration store '" +
                               Printable(request.store_name(), 64) + "'");
      Watch watch;
      watch.keys.assign(request.keys().begin(), request.keys().end());
      watch.request = std::move(request);
      watches.push_back(std::move(watch));
      return Status::Ok();
    };
    runtime_v1::SubscribeConfigurationRequest first;
    if (!stream->Read(&first)) return InvalidArgument("SubscribeConfiguration got no request: name a store and keys");
    WASMLET_RETURN_IF_ERROR(watch_of(std::move(first)));
    IncomingRequests<runtime_v1::SubscribeConfigurationRequest, Stream> incoming(stream);
    EndReads end_reads{context, incoming};  // before `incoming` is destroyed

    const auto interval = std::chrono::milliseconds(config_.api_watch_interval_ms);
    constexpr auto kTick = std::chrono::milliseconds(100);  // how soon a stop or a cancel is seen
    auto next_read = std::chrono::steady_clock::now();
    while (!context->IsCancelled() && !ending_.load()) {
      const auto now = std::chrono::steady_clock::now();
      bool added = false;
      for (auto& request : incoming.Wait(std::min(next_read, now + kTick))) {
        WASMLET_RETURN_IF_ERROR(watch_of(std::move(request)));
        added = true;
      }
      if (!added && std::chrono::steady_clock::now() < next_read) continue;
      next_read = std::chrono::steady_clock::now() + interval;
      for (Watch& watch : watches) {
        auto items = services_.configuration->Get(watch.request.store_name(), watch.keys);
        if (!items.ok()) {
          // A store that cannot be reached now may be back at the next read: the stream stays.
          spdlog::warn("SubscribeConfiguration on '{}': {}", Printable(watch.request.store_name(), 64),
                       items.status().message());
          continue;
        }
        std::map<std::string, std::string> now_items(items->begin(), items->end());
        runtime_v1::SubscribeConfigurationResponse changes;
        auto add = [&](const std::string& key, const std::string& content) {
          runtime_v1::ConfigurationItem* item = changes.add_items();
          item->set_key(key);
          item->set_content(content);
          item->set_group(watch.request.group());
          item->set_label(watch.request.label());
        };
        for (const std::string& key : watch.keys) {
          auto is = now_items.find(key);
          auto was = watch.sent.find(key);
          if (is != now_items.end() && (was == watch.sent.end() || was->second != is->second)) add(key, is->second);
          if (is == now_items.end() && was != watch.sent.end()) add(key, "");
        }
        watch.sent = std::move(now_items);
        if (changes.items_size() == 0) continue;
        changes.set_store_name(watch.request.store_name());
        changes.set_app_id(watch.request.app_id());
        if (!stream->Write(changes)) return Status::Ok();  // the client has gone
      }
    }
    if (ending_.load()) return Unavailable("the sidecar is stopping: subscribe again to another one");
    return Status::Ok();
  });
}

grpc::Status RuntimeService::SaveConfiguration(grpc::ServerContext* context,
                                               const runtime_v1::SaveConfigurationRequest* request,
                                               google::protobuf::Empty*) {
  return Serve(context, "SaveConfiguration", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(
        Known(config_.configuration_stores, request->store_name(), "configuration store", "store_name"));
    abi::HeaderList items;
    for (const runtime_v1::ConfigurationItem& item : request->items()) {
      WASMLET_RETURN_IF_ERROR(Required(item.key(), "an item's key"));
      items.emplace_back(item.key(), item.content());  // an empty content removes the item
    }
    return services_.configuration->Save(request->store_name(), items);
  });
}

grpc::Status RuntimeService::DeleteConfiguration(grpc::ServerContext* context,
                                                 const runtime_v1::DeleteConfigurationRequest* request,
                                                 google::protobuf::Empty*) {
  return Serve(context, "DeleteConfiguration", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(
        Known(config_.configuration_stores, request->store_name(), "configuration store", "store_name"));
    std::vector<std::string> keys(request->keys().begin(), request->keys().end());
    for (const std::string& key : keys) WASMLET_RETURN_IF_ERROR(Required(key, "a key of keys"));
    return services_.configuration->Delete(request->store_name(), keys);
  });
}

grpc::Status RuntimeService::PublishEvent(grpc::ServerContext* context,
                                          const runtime_v1::PublishEventRequest* request, google::protobuf::Empty*) {
  return Serve(context, "PublishEvent", [&]() -> Status {
    WASMLET_RETURN_IF_ERROR(Known(config_.pubsubs, request->pubsub_name(), "pub/sub", "pubsub_name"));
    WASMLET_RETURN_IF_ERROR(Required(request->topic(), "topic"));
    // The message is kept as it came, with its content type; each subscriber receives it as a
    // CloudEvent (docs/runtime-api.md).
    abi::HeaderList metadata = PairsOf(request->metadata());
    if (!request->data_content_type().empty()) metadata.emplace_back("content-type", request->data_content_type());
    auto id = services_.publisher->Publish(request->pubsub_name(), request->topic(), request->data(), metadata);
    return id.ok() ? Status::Ok() : id.status();
  });
}

// ---- files

namespace {

// The pieces GetFile sends: well under the default message limit, large enough that a big
// file is few messages.
constexpr size_t kFileChunkBytes = 64 << 10;
constexpr int kDefaultListPage = 100;
constexpr int kMaxListPage = 1000;

}  // namespace

grpc::Status RuntimeService::GetFile(grpc::ServerContext* context, const runtime_v1::GetFileRequest* request,
                                     grpc::ServerWriter<runtime_v1::GetFileResponse>* writer) {
  return Serve(context, "GetFile", [&]() -> Status {
    auto store = apps_->files.Find(request->store_name(), "file store", "store_name");
    if (!store.ok()) return store.status();
    bool gone = false;
    runtime_v1::GetFileResponse piece;
    Status read = (*store)->Get(request->name(), kFileChunkBytes, [&](std::string_view data) {
      piece.set_data(data.data(), data.size());
      gone = context->IsCancelled() || !writer->Write(piece);
      return !gone;
    });
    if (!read.ok()) return read;
    if (gone) return Status(StatusCode::kUnavailable, "the caller went away during GetFile");
    return Status::Ok();
  });
}

grpc::Status RuntimeService::PutFile(grpc::ServerContext* context,
                                     grpc::ServerReader<runtime_v1::PutFileRequest>* reader,
                                     google::protobuf::Empty* /*response*/) {
  return Serve(context, "PutFile", [&]() -> Status {
    runtime_v1::PutFileRequest piece;
    if (!reader->Read(&piece))
      return InvalidArgument("PutFile got no message: the first must name store_name and name");
    const std::string store_name = piece.store_name();
    const std::string name = piece.name();
    auto store = apps_->files.Find(store_name, "file store", "store_name");
    if (!store.ok()) return store.status();
    auto writer = (*store)->Put(name);
    if (!writer.ok()) return writer.status();
    do {
      if ((!piece.store_name().empty() && piece.store_name() != store_name) ||
          (!piece.name().empty() && piece.name() != name))
        return InvalidArgument("a later PutFile message names another file (" + Printable(piece.store_name(), 64) +
                               "/" + Printable(piece.name(), 128) + ") than the first (" +
                               Printable(store_name, 64) + "/" + Printable(name, 128) + "): nothing was written");
      WASMLET_RETURN_IF_ERROR((*writer)->Append(piece.data()));
    } while (reader->Read(&piece));
    if (context->IsCancelled())
      return Status(StatusCode::kUnavailable, "the caller went away during PutFile: nothing was written");
    return (*writer)->Commit();
  });
}

grpc::Status RuntimeService::ListFile(grpc::ServerContext* context, const runtime_v1::ListFileRequest* request,
                                      runtime_v1::ListFileResp* response) {
  return Serve(context, "ListFile", [&]() -> Status {
    auto store = apps_->files.Find(request->request().store_name(), "file store", "request.store_name");
    if (!store.ok()) return store.status();
    if (request->page_size() < 0 || request->page_size() > kMaxListPage)
      return InvalidArgument("page_size " + std::to_string(request->page_size()) + " is not within 0.." +
                             std::to_string(kMaxListPage) + " (0: " + std::to_string(kDefaultListPage) + ")");
    const size_t page = request->page_size() == 0 ? kDefaultListPage : static_cast<size_t>(request->page_size());
    auto listing = (*store)->List(request->request().name(), page, request->marker());
    if (!listing.ok()) return listing.status();
    for (const components::FileInfo& file : listing->files) {
      runtime_v1::FileInfo* info = response->add_files();
      info->set_file_name(file.name);
      info->set_size(static_cast<int64_t>(file.size));
      info->set_last_modified(IsoTime(file.modified));
      (*info->mutable_metadata())["type"] = file.directory ? "directory" : "file";
    }
    response->set_marker(listing->marker);
    response->set_is_truncated(listing->truncated);
    return Status::Ok();
  });
}

grpc::Status RuntimeService::DelFile(grpc::ServerContext* context, const runtime_v1::DelFileRequest* request,
                                     google::protobuf::Empty* /*response*/) {
  return Serve(context, "DelFile", [&]() -> Status {
    auto store = apps_->files.Find(request->request().store_name(), "file store", "request.store_name");
    if (!store.ok()) return store.status();
    return (*store)->Delete(request->request().name());
  });
}

grpc::Status RuntimeService::GetFileMeta(grpc::ServerContext* context, const runtime_v1::GetFileMetaRequest* request,
                                         runtime_v1::GetFileMetaResponse* response) {
  return Serve(context, "GetFileMeta", [&]() -> Status {
    auto store = apps_->files.Find(request->request().store_name(), "file store", "request.store_name");
    if (!store.ok()) return store.status();
    auto info = (*store)->Stat(request->request().name());
    if (!info.ok()) return info.status();
    response->set_size(static_cast<int64_t>(info->size));
    response->set_last_modified(IsoTime(info->modified));
    auto& metadata = *response->mutable_response()->mutable_metadata();
    metadata["type"].add_value(info->directory ? "directory" : "file");
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", info->mode);
    metadata["mode"].add_value(mode);
    return Status::Ok();
  });
}

// ---- bindings

grpc::Status RuntimeService::InvokeBinding(grpc::ServerContext* context,
                                           const runtime_v1::InvokeBindingRequest* request,
                                           runtime_v1::InvokeBindingResponse* response) {
  return Serve(context, "InvokeBinding", [&]() -> Status {
    auto binding = apps_->bindings.Find(request->name(), "binding", "name");
    if (!binding.ok()) return binding.status();
    components::BindingRequest call;
    call.operation = request->operation();
    call.data = request->data();
    for (const auto& [key, value] : request->metadata()) call.metadata[key] = value;
    auto answer = (*binding)->Invoke(call);
    if (!answer.ok()) return answer.status();
    response->set_data(std::move(answer->data));
    for (auto& [key, value] : answer->metadata) (*response->mutable_metadata())[key] = std::move(value);
    return Status::Ok();
  });
}

// ---- SubscribeTopicEvents

namespace {

constexpr size_t kMaxUnanswered = 16;
constexpr auto kEventTimeout = std::chrono::seconds(10);
constexpr auto kFetchWait = std::chrono::milliseconds(100);  // also how soon a stop is seen

}  // namespace

grpc::Status RuntimeService::SubscribeTopicEvents(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<runtime_v1::SubscribeTopicEventsResponse, runtime_v1::SubscribeTopicEventsRequest>*
        stream) {
  using Stream = std::remove_pointer_t<decltype(stream)>;
  return Serve(context, "SubscribeTopicEvents", [&]() -> Status {
    if (!OpenStream()) return TooManyStreams(config_.api_max_streams);
    StreamPlace place{streams_};
    runtime_v1::SubscribeTopicEventsRequest first;
    if (!stream->Read(&first)) return InvalidArgument("SubscribeTopicEvents got no message: the first must be initial_request");
    if (!first.has_initial_request())
      return InvalidArgument("the first message of SubscribeTopicEvents must be initial_request (pubsub_name, topic)");
    const runtime_v1::SubscribeTopicEventsRequestInitial& initial = first.initial_request();
    WASMLET_RETURN_IF_ERROR(Known(config_.pubsubs, initial.pubsub_name(), "pub/sub", "pubsub_name"));
    WASMLET_RETURN_IF_ERROR(Required(initial.topic(), "topic"));
    auto found = apps_->pubsubs.find(initial.pubsub_name());
    if (found == apps_->pubsubs.end()) return Internal("pub/sub '" + initial.pubsub_name() + "' was not made");
    components::PubSubComponent& pubsub = *found->second;
    const std::string pubsub_name = initial.pubsub_name();
    const std::string topic = initial.topic();
    const std::string group = config_.app.app_id.empty() ? "wasmlet-app" : config_.app.app_id;
    std::string dead_letter_topic = topic + "-deadletter";
    if (auto it = initial.metadata().find("deadLetterTopic"); it != initial.metadata().end() && !it->second.empty())
      dead_letter_topic = it->second;
    if (initial.has_dead_letter_topic() && !initial.dead_letter_topic().empty())
      dead_letter_topic = initial.dead_letter_topic();
    uint32_t max_deliveries = 5;
    auto backoff = std::chrono::milliseconds(500);
    for (const auto& [key, target] : {std::pair<const char*, int64_t>{"maxDeliveries", 0}, {"retryBackoffMs", 1}}) {
      auto it = initial.metadata().find(key);
      if (it == initial.metadata().end() || it->second.empty()) continue;
      int64_t value = 0;
      const std::string& text = it->second;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec != std::errc() || end != text.data() + text.size() || value <= 0 || value > (int64_t{1} << 31))
        return InvalidArgument(std::string("metadata ") + key + " \"" + Printable(text, 32) +
                               "\" is not a whole number above 0");
      if (target == 0) max_deliveries = static_cast<uint32_t>(value);
      if (target == 1) backoff = std::chrono::milliseconds(value);
    }
    runtime_v1::SubscribeTopicEventsResponse hello;
    hello.mutable_initial_response();
    if (!stream->Write(hello)) return Status::Ok();
    spdlog::info("an app subscribes to '{}' on pub/sub '{}' over a stream", Printable(topic, 128), pubsub_name);

    IncomingRequests<runtime_v1::SubscribeTopicEventsRequest, Stream> incoming(stream);
    EndReads end_reads{context, incoming};  // before `incoming` is destroyed
    struct Unanswered {
      components::PubSubMessage message;
      std::chrono::steady_clock::time_point due;
    };
    std::map<std::string, Unanswered> unanswered;  // by message id
    const std::string what_topic = "'" + Printable(topic, 128) + "' for the app's stream";
    // Whatever waits for an answer when the stream ends is handed out again at once.
    struct GiveBack {
      std::map<std::string, Unanswered>& unanswered;
      components::PubSubComponent& pubsub;
      const std::string& topic;
      const std::string& group;
      ~GiveBack() {
        for (const auto& [id, waiting] : unanswered) (void)pubsub.Retry(topic, group, id, std::chrono::milliseconds(0));
      }
    } give_back{unanswered, pubsub, topic, group};

    bool failing = false;
    while (!context->IsCancelled() && !ending_.load()) {
      // The answers that came.
      for (auto& request : incoming.Wait(std::chrono::steady_clock::now())) {
        if (!request.has_event_processed()) continue;  // a second initial_request changes nothing
        const auto& processed = request.event_processed();
        auto waiting = unanswered.find(processed.id());
        if (waiting == unanswered.end()) continue;  // answered twice, or after it was handed out again
        const std::string what = "message " + processed.id() + " of " + what_topic;
        Status settled;
        if (processed.status().status() == runtime_v1::TopicEventResponse::RETRY) {
          settled = pubsub.Retry(topic, group, processed.id(), RetryBackoff(backoff, waiting->second.message.deliveries));
        } else {
          if (processed.status().status() == runtime_v1::TopicEventResponse::DROP)
            spdlog::warn("{}: the app dropped it", what);
          settled = pubsub.Ack(topic, group, processed.id());
        }
        if (!settled.ok()) spdlog::warn("{}: {}", what, settled.message());
        unanswered.erase(waiting);
      }
      // Those the app did not answer in time go back.
      const auto now = std::chrono::steady_clock::now();
      for (auto it = unanswered.begin(); it != unanswered.end();) {
        if (it->second.due > now) {
          ++it;
          continue;
        }
        (void)pubsub.Retry(topic, group, it->first, RetryBackoff(backoff, it->second.message.deliveries));
        it = unanswered.erase(it);
      }
      // A client that has closed its side can answer nothing more: the stream ends, and what
      // waits for an answer is handed out again.
      if (incoming.ended()) return Status::Ok();
      if (unanswered.size() >= kMaxUnanswered) {
        incoming.Wait(std::chrono::steady_clock::now() + kFetchWait);
        continue;
      }
      auto batch = pubsub.Fetch(topic, group, kMaxUnanswered - unanswered.size(), kFetchWait);
      if (!batch.ok()) {
        if (!failing) spdlog::error("the app's stream on {}: {}; trying again", what_topic, batch.status().message());
        failing = true;
        incoming.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        continue;
      }
      failing = false;
      for (components::PubSubMessage& message : *batch) {
        const std::string what = "message " + message.id + " of " + what_topic;
        if (message.deliveries > max_deliveries) {
          DeadLetter(pubsub, topic, group, message, dead_letter_topic, max_deliveries, what);
          continue;
        }
        runtime_v1::SubscribeTopicEventsResponse event;
        FillTopicEvent(message, pubsub_name, topic, event.mutable_event_message());
        if (!stream->Write(event)) {
          (void)pubsub.Retry(topic, group, message.id, std::chrono::milliseconds(0));
          continue;  // the client has gone: the loop ends on the next look at the context
        }
        const std::string id = message.id;
        unanswered[id] = {std::move(message), std::chrono::steady_clock::now() + kEventTimeout};
      }
    }
    if (ending_.load()) return Unavailable("the sidecar is stopping: subscribe again to another one");
    return Status::Ok();
  });
}

}  // namespace wasmlet::server
