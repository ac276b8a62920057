// The "http" output binding, as Dapr's: each invoke is one HTTP request to the component's
// metadata "url", extended by the request's metadata "path". Operations: get, head, post
// (and its alias create), put, patch, delete, options, trace. The request's other metadata
// are sent as headers (a name that is not an HTTP token, or a value with a line break, is
// refused). The answer's data is the response's body; its metadata, "statusCode", "status"
// and the response's headers. An answer outside 2xx is an error (metadata "errorIfNot2XX":
// "false" returns it instead), as are no answer within "timeoutMs" (10000) and a body over
// "maxResponseBytes" (4 MiB).
#pragma once

#include <memory>

#include "components/binding/binding.h"

namespace wasmlet::components {

Result<std::unique_ptr<BindingComponent>> HttpBinding(const StoreConfig& config);

}  // namespace wasmlet::components
