#include "components/binding/binding.h"

#include "common/text.h"
#include "components/binding/http/http_binding.h"

namespace wasmlet::components {

Result<std::unique_ptr<BindingComponent>> CreateBinding(const StoreConfig& config) {
  if (config.type == "http" || config.type == "bindings.http") return HttpBinding(config);
  return Unimplemented("binding '" + config.name + "' has type \"" + Printable(config.type, 64) +
                       "\", which wasmlet does not implement (it has \"http\")");
}

}  // namespace wasmlet::components
