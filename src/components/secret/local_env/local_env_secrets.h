// Secrets from wasmlet's environment (Dapr's and Layotto's "local.env"): the secret NAME is the
// variable NAME, its data one pair {NAME: value}. Metadata `prefix` (wasmlet's choice,
// recommended): only variables whose names start with it are secrets, named without it, so
// that a function cannot read the rest of the environment. The environment is read once, when
// the store is created.
#pragma once

#include "components/secret/secret_store.h"

namespace wasmlet::components {

Result<std::unique_ptr<SecretStoreComponent>> LocalEnvSecrets(const StoreConfig& config);

}  // namespace wasmlet::components
