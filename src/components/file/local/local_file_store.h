// The "local" file store: files under one directory of this machine (metadata "root"; when
// absent, wasmlet-files/<component name> under the working directory, made at start).
//
// A name is a relative path of at most 1024 bytes whose parts are separated by '/': no empty
// part, no "." or "..", no NUL, not absolute, no part starting with ".wasmlet-upload-" (the
// store's own temporary files). Every part is opened below the root's descriptor without
// following symbolic links, so neither a name nor a link placed inside the root reaches a file
// outside it; a link met on the way is refused, naming it.
//
// A file being put is written to a temporary file beside its name and renamed over it once
// complete, so a reader sees the old file or the new one, never a part. Metadata
// "maxFileBytes" bounds a file's size (256 MiB by default).
#pragma once

#include <memory>
#include <string>

#include "components/file/file_store.h"

namespace wasmlet::components {

Result<std::unique_ptr<FileStoreComponent>> LocalFileStore(const StoreConfig& config);

}  // namespace wasmlet::components
