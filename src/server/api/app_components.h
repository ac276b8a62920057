// The components only applications use (no function ABI reaches them): file stores
// (grpc_config.file) and output bindings (grpc_config.bindings). Both APIs for applications,
// the runtime API and Dapr's HTTP API, share one set, made when the server starts.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "components/binding/binding.h"
#include "components/file/file_store.h"
#include "components/pubsub/pubsub.h"
#include "server/config/config.h"

namespace wasmlet::server {

// The components of one kind. One whose type wasmlet does not implement is kept by name with
// its reason, so that its calls answer Unimplemented naming the type, and the rest of a config
// written for Layotto (an OSS file store, say) still runs.
template <typename Component>
class AppComponentSet {
 public:
  // The component `name`: InvalidArgument when the config has none of that name (listing
  // those it has), Unimplemented when its type is not implemented.
  Result<Component*> Find(const std::string& name, const char* kind, const char* field) const;

  std::map<std::string, std::shared_ptr<Component>> ready;
  std::map<std::string, Status> unimplemented;
};

struct AppComponents {
  AppComponentSet<components::FileStoreComponent> files;
  AppComponentSet<components::BindingComponent> bindings;
  // The pub/subs the functions use too, for SubscribeTopicEvents.
  std::map<std::string, std::shared_ptr<components::PubSubComponent>> pubsubs;
};

// Makes the file stores and bindings of the config; the first that cannot be made (a bad
// root, a missing URL) stops it, with its error. `pubsubs` are the config's, made already.
Result<std::shared_ptr<const AppComponents>> CreateAppComponents(
    const ServerConfig& config, std::map<std::string, std::shared_ptr<components::PubSubComponent>> pubsubs);

}  // namespace wasmlet::server
