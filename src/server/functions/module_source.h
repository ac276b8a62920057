// Where a plugin's module bytes come from: a local file (vm_config.path) or an HTTP(S) URL
// (vm_config.url). Both are bounded: regular files only, a size cap known before reading, a
// deadline, and the wasm magic checked before the rest is read.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/config/config.h"

namespace wasmlet::server {

struct ModuleSourceLimits {
  uint64_t max_bytes = 64 << 20;
  std::chrono::milliseconds deadline{10000};  // a file's read, on `clock`; a download's, curl's own
  wasmlet::Clock* clock = &SystemClock();
};

// The bytes of the regular file `path`. Refuses (with a message that says what to do)
// directories, devices, FIFOs and sockets without blocking on them, a file over the cap, one
// that does not start with the wasm magic, and a read that takes longer than the deadline.
Result<std::vector<uint8_t>> ReadModuleFile(const std::string& path, const ModuleSourceLimits& limits);

// The body of an http:// or https:// URL (redirects followed, to http(s) only).
Result<std::vector<uint8_t>> DownloadModule(const std::string& url, const ModuleSourceLimits& limits);

// The module of a plugin item, from its path or its URL; errors name `where` (its JSON path).
Result<std::vector<uint8_t>> ReadModule(const PluginConfig& plugin, const std::string& where,
                                        const ModuleSourceLimits& limits);

// Lower-case hex MD5 of `bytes` (vm_config.md5).
Result<std::string> Md5Hex(const std::vector<uint8_t>& bytes);

}  // namespace wasmlet::server
