// The calls of the runtime API (Layotto's Runtime service), each over the host services that
// functions use too. Every call checks the API token, names the component it needs (an unknown
// one is InvalidArgument, naming the ones there are), and answers a component's failure with
// the gRPC code that matches it (docs/runtime-api.md lists them).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "abi/services.h"
#include "server/api/app_components.h"
#include "runtime.grpc.pb.h"
#include "server/config/config.h"
#include "server/services/invoker.h"

namespace wasmlet::server {

namespace runtime_v1 = ::spec::proto::runtime::v1;

class RuntimeService final : public runtime_v1::Runtime::Service {
 public:
  // `invoker` runs InvokeService's calls (where proxy_invoke_service goes); `apps` holds the
  // file stores and bindings.
  RuntimeService(const ServerConfig& config, abi::HostServices services, std::shared_ptr<Invoker> invoker,
                 std::shared_ptr<const AppComponents> apps);

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

  // A stream: each request the client sends names a store and keys to watch. The current items
  // of those keys come at once, then every change (a removed item with an empty content), read
  // again every api_watch_interval_ms. It lasts until the client cancels it or the server stops;
  // a client that has sent all its requests (half-closed) still gets the changes.
  grpc::Status SubscribeConfiguration(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<runtime_v1::SubscribeConfigurationResponse, runtime_v1::SubscribeConfigurationRequest>*
          stream) override;

  grpc::Status SaveConfiguration(grpc::ServerContext* context, const runtime_v1::SaveConfigurationRequest* request,
                                 google::protobuf::Empty* response) override;
  grpc::Status DeleteConfiguration(grpc::ServerContext* context,
                                   const runtime_v1::DeleteConfigurationRequest* request,
                                   google::protobuf::Empty* response) override;

  grpc::Status PublishEvent(grpc::ServerContext* context, const runtime_v1::PublishEventRequest* request,
                            google::protobuf::Empty* response) override;
  // A stream both ways: the first request subscribes (pub/sub, topic, dead letter topic), then
  // the server sends each message as an event_message and the client answers each with
  // event_processed (SUCCESS, RETRY or DROP). The consumer group is the app id, as for
  // AppCallback; retries, back-off and the dead letter topic are the same (app_callback.h). At
  // most 16 events wait for their answer at once; one unanswered for 10 s is handed out again.
  grpc::Status SubscribeTopicEvents(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<runtime_v1::SubscribeTopicEventsResponse, runtime_v1::SubscribeTopicEventsRequest>*
          stream) override;

  // Files: the name is a path inside the store (components/file/file_store.h). GetFile streams
  // the file in pieces; PutFile takes the pieces, the first naming the store and the file, and
  // the file appears whole once the stream ends.
  grpc::Status GetFile(grpc::ServerContext* context, const runtime_v1::GetFileRequest* request,
                       grpc::ServerWriter<runtime_v1::GetFileResponse>* writer) override;
  grpc::Status PutFile(grpc::ServerContext* context, grpc::ServerReader<runtime_v1::PutFileRequest>* reader,
                       google::protobuf::Empty* response) override;
  grpc::Status ListFile(grpc::ServerContext* context, const runtime_v1::ListFileRequest* request,
                        runtime_v1::ListFileResp* response) override;
  grpc::Status DelFile(grpc::ServerContext* context, const runtime_v1::DelFileRequest* request,
                       google::protobuf::Empty* response) override;
  grpc::Status GetFileMeta(grpc::ServerContext* context, const runtime_v1::GetFileMetaRequest* request,
                           runtime_v1::GetFileMetaResponse* response) override;

  grpc::Status InvokeBinding(grpc::ServerContext* context, const runtime_v1::InvokeBindingRequest* request,
                             runtime_v1::InvokeBindingResponse* response) override;

  // Ends the open streams within a tenth of a second (the server is stopping): gRPC's shutdown
  // then need not wait for them.
  void EndStreams() { ending_.store(true); }

 private:
  // Runs one call: the token first, then `fn` (which returns wasmlet's Status), its answer
  // turned into gRPC's; an exception out of `fn` is INTERNAL, never the process's end.
  grpc::Status Serve(grpc::ServerContext* context, const char* rpc, const std::function<Status()>& fn);
  // Takes a place among the api_max_streams open streams: false when there is none.
  bool OpenStream();
  // The state writes of SaveState, DeleteState, DeleteBulkState and ExecuteStateTransaction.
  Status ApplyState(const std::string& store, const std::vector<abi::StateStore::Write>& writes);

  const ServerConfig& config_;
  abi::HostServices services_;
  std::shared_ptr<Invoker> invoker_;
  std::shared_ptr<const AppComponents> apps_;
  std::atomic<bool> ending_{false};
  std::atomic<uint32_t> streams_{0};  // open now, at most api_max_streams
};

}  // namespace wasmlet::server
