// Secrets from a JSON file (Dapr's and Layotto's "local.file"). Metadata:
//   secretsFile      the file (required): a JSON object.
//   nestedSeparator  joins the keys of nested objects (default ":"): {"db": {"password": "x"}}
//                    is the secret "db:password".
//   multiValued      "true": each top-level key is one secret whose data are its nested values
//                    (flattened the same way); default "false": every leaf is a secret of its
//                    own, its data one pair {name: value}.
// Numbers and booleans are secrets as their JSON text. The file is read once, when the store
// is created; a file that cannot be read or parsed stops the start with a message naming it.
#pragma once

#include "components/secret/secret_store.h"

namespace wasmlet::components {

Result<std::unique_ptr<SecretStoreComponent>> LocalFileSecrets(const StoreConfig& config);

}  // namespace wasmlet::components
