// The runtime API for applications: Layotto's gRPC service spec.proto.runtime.v1.Runtime on
// each listener whose grpc filter has "server_name": "runtime" (docs/runtime-api.md). It serves
// the same components the functions use, through the same host services, so an app and a
// function with the same app id and store see the same state.
//
// Calls run on gRPC's own threads (its synchronous server): a call whose component waits on
// the network (Redis, SQLite) holds one of them and no other call. At most
// wasmlet.api_max_concurrent_calls run at once; past that gRPC answers RESOURCE_EXHAUSTED.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "abi/services.h"
#include "common/status.h"
#include "server/api/app_components.h"
#include "server/config/config.h"
#include "server/services/invoker.h"

namespace grpc {
class Server;
}

namespace wasmlet::server {

class RuntimeService;

class RuntimeApi {
 public:
  // `invoker` runs InvokeService's calls; `apps` holds the file stores and bindings.
  RuntimeApi(const ServerConfig& config, abi::HostServices services, std::shared_ptr<Invoker> invoker,
             std::shared_ptr<const AppComponents> apps);
  ~RuntimeApi();
  RuntimeApi(const RuntimeApi&) = delete;
  RuntimeApi& operator=(const RuntimeApi&) = delete;

  // Listens on every runtime listener of the config. Fails naming the listener that cannot
  // bind, or one the exposure rule refuses (CheckExposure).
  Status Start();
  // The port the listener named `name` listens on (0: none).
  uint16_t port(const std::string& name) const;
  // Stops taking calls and waits for those running, up to `deadline`; then cancels the rest.
  void Shutdown(std::chrono::milliseconds deadline);

 private:
  struct Listening {
    std::string name;
    uint16_t port = 0;
  };
  const ServerConfig& config_;
  std::unique_ptr<RuntimeService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<Listening> listening_;
};

}  // namespace wasmlet::server
