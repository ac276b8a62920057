// The calls of the runtime API (Layotto's Runtime service), each over the host services that
// functions use too. Every call checks the API token, names the component it needs (an unknown
// one is InvalidArgument, naming the ones there are), and answers a component's failure with
// the gRPC code that matches it (docs/runtime-api.md lists them).
#pragma once

#include <string>

#include "abi/services.h"
#include "runtime.grpc.pb.h"
#include "server/config/config.h"
#include "server/services/invoker.h"

namespace wasmlet::server {

namespace runtime_v1 = ::spec::proto::runtime::v1;

class RuntimeService final : public runtime_v1::Runtime::Service {
 public:
  // `invoker` runs InvokeService's calls (where proxy_invoke_service goes).
  RuntimeService(const ServerConfig& config, abi::HostServices services, std::shared_ptr<Invoker> invoker);

  grpc::Status SayHello(grpc::ServerContext* context, const runtime_v1::SayHelloRequest* request,
                        runtime_v1::SayHelloResponse* response) override;

  // A request to the function `id`, as Layotto's channel to the wasm listener builds it.
  grpc::Status InvokeService(grpc::ServerContext* context, const runtime_v1::InvokeServiceRequest* request,
                             runtime_v1::InvokeResponse* response) override;

  grpc::Status GetState(grpc::ServerContext* context, const runtime_v1::GetStateRequest* request,
                        runtime_v1::GetStateResponse* response) override;
  grpc::Status GetBulkState(grpc::ServerContext* context, const runtime_v1::GetBulkStateRequest* request,
                            runtime_v1::GetBulkStateResponse* response) override;
  grpc::Status SaveState(grpc::ServerContext* context, const runtime_v1::SaveStateRequest* request,
                         google::protobuf::Empty* response) override;
  grpc::Status DeleteState(grpc::ServerContext* context, const runtime_v1::DeleteStateRequest* request,
                           google::protobuf::Empty* response) override;
  grpc::Status DeleteBulkState(grpc::ServerContext* context, const runtime_v1::DeleteBulkStateRequest* request,
                               google::protobuf::Empty* response) override;
  grpc::Status ExecuteStateTransaction(grpc::ServerContext* context,
                                       const runtime_v1::ExecuteStateTransactionRequest* request,
                                       google::protobuf::Empty* response) override;

  grpc::Status TryLock(grpc::ServerContext* context, const runtime_v1::TryLockRequest* request,
                       runtime_v1::TryLockResponse* response) override;
  grpc::Status Unlock(grpc::ServerContext* context, const runtime_v1::UnlockRequest* request,
                      runtime_v1::UnlockResponse* response) override;
  // Layotto answers nothing here; wasmlet renews the owner's lease.
  grpc::Status LockKeepAlive(grpc::ServerContext* context, const runtime_v1::LockKeepAliveRequest* request,
                             runtime_v1::LockKeepAliveResponse* response) override;

  grpc::Status GetNextId(grpc::ServerContext* context, const runtime_v1::GetNextIdRequest* request,
                         runtime_v1::GetNextIdResponse* response) override;

  grpc::Status GetSecret(grpc::ServerContext* context, const runtime_v1::GetSecretRequest* request,
                         runtime_v1::GetSecretResponse* response) override;
  grpc::Status GetBulkSecret(grpc::ServerContext* context, const runtime_v1::GetBulkSecretRequest* request,
                             runtime_v1::GetBulkSecretResponse* response) override;

  grpc::Status GetConfiguration(grpc::ServerContext* context, const runtime_v1::GetConfigurationRequest* request,
                                runtime_v1::GetConfigurationResponse* response) override;

  grpc::Status SaveConfiguration(grpc::ServerContext* context, const runtime_v1::SaveConfigurationRequest* request,
                                 google::protobuf::Empty* response) override;
  grpc::Status DeleteConfiguration(grpc::ServerContext* context,
                                   const runtime_v1::DeleteConfigurationRequest* request,
                                   google::protobuf::Empty* response) override;

  grpc::Status PublishEvent(grpc::ServerContext* context, const runtime_v1::PublishEventRequest* request,
                            google::protobuf::Empty* response) override;

 private:
  // Runs one call: the token first, then `fn` (which returns wasmlet's Status), its answer
  // turned into gRPC's; an exception out of `fn` is INTERNAL, never the process's end.
  template <typename Fn>
  grpc::Status Serve(grpc::ServerContext* context, const char* rpc, Fn&& fn);
  // The state writes of SaveState, DeleteState, DeleteBulkState and ExecuteStateTransaction.
  Status ApplyState(const std::string& store, const std::vector<abi::StateStore::Write>& writes);

  const ServerConfig& config_;
  abi::HostServices services_;
  std::shared_ptr<Invoker> invoker_;
};

}  // namespace wasmlet::server
