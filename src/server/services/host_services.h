// The host services that functions and filters call (abi::HostServices), made from the config's
// components: state stores, locks, sequencers, secrets, configuration stores and pub/subs. Each
// call finds the component a guest names (NotFound lists the ones there are), runs as a blocking
// call of its loop when it may wait on the network, and counts its errors in the metrics.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "abi/services.h"
#include "abi/shared_state.h"
#include "common/status.h"
#include "components/pubsub/pubsub.h"
#include "components/state/state_store.h"
#include "server/config/config.h"
#include "server/runtime/metrics.h"

namespace wasmlet::server {

using StateStores = std::map<std::string, std::shared_ptr<components::StateStoreComponent>>;
using PubSubs = std::map<std::string, std::shared_ptr<components::PubSubComponent>>;

// Creates every state store of the config (for the server and for `wasmlet state`).
Result<StateStores> CreateStores(const ServerConfig& config);

struct ConfiguredServices {
  // Everything but the invoker and the outbound calls, which the server adds (they need the
  // function registry and the serving loops).
  abi::HostServices services;
  // The same pub/subs as services.publisher's, for the subscriptions of plugin items.
  PubSubs pubsubs;
};

// Creates the components of the config and the host services over them; the first component
// that cannot be created stops it, with its error.
Result<ConfiguredServices> CreateHostServices(const ServerConfig& config, Metrics& metrics);

}  // namespace wasmlet::server
