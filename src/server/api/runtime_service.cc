#include "server/api/runtime_service.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "common/text.h"
#include "server/api/call_checks.h"

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

grpc::Status RuntimeService::Serve(grpc::ServerContext* context, const char* rpc, const std::function<Status()>& fn) {
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

}  // namespace wasmlet::server
