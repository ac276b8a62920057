#include "components/file/file_store.h"

#include "common/text.h"
#include "components/file/local/local_file_store.h"

namespace wasmlet::components {

Result<std::unique_ptr<FileStoreComponent>> CreateFileStore(const StoreConfig& config) {
  if (config.type == "local") return LocalFileStore(config);
  return Unimplemented("file store '" + config.name + "' has type \"" + Printable(config.type, 64) +
                       "\", which wasmlet does not implement (it has \"local\")");
}

}  // namespace wasmlet::components
