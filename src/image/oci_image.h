// Packing a function into an OCI image: one layer holding the .wasm at the root of the
// filesystem, an image config whose entrypoint names it, a manifest, and an index that names
// the image, all in the OCI image layout, as one tar archive that `ctr image import` reads.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct archive;

namespace wasmlet::image {

struct PackOptions {
  std::vector<uint8_t> module;   // the .wasm bytes
  std::string module_file;       // its name inside the image, e.g. "function1.wasm"
  unsigned mode = 0644;          // its permissions there
  std::string name;              // the image reference, e.g. "example.com/function1:v1"
  std::vector<std::string> env;  // KEY=VALUE entries of the image config (WASMLET_INSTANCE_NUM=2)
  std::string architecture;      // OCI name; empty: this machine's
};

// Writes the archive to `out`. The bytes depend only on the options (no timestamps).
Status WriteOciArchive(const PackOptions& options, std::ostream& out);

// "name" -> "name:latest"; a reference with a tag or digest is kept as it is.
std::string NormalizeReference(const std::string& name);

// The OCI architecture name of this machine (amd64, arm64, ...).
std::string HostArchitecture();

// sha256 of `data`, in lower-case hex.
std::string Sha256Hex(const std::string& data);

// A ustar archive built in memory (libarchive), for the layer and for the image archive. Owners
// and times are fixed, so the same input packs to the same bytes (and the same digests).
class TarWriter {
 public:
  TarWriter();
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  Status AddFile(const std::string& path, std::string_view content, unsigned mode = 0644);
  Status AddDirectory(const std::string& path);
  // Ends the archive and returns its bytes; the writer is done after it.
  Result<std::string> Finish();

 private:
  Status AddEntry(const std::string& path, std::string_view content, unsigned mode, bool directory);

  struct archive* archive_;
  std::string bytes_;
};

}  // namespace wasmlet::image
