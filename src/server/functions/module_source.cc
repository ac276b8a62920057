#include "server/functions/module_source.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/http_client.h"
#include "common/text.h"
#include "wasm/module_info.h"

namespace wasmlet::server {
namespace {

std::string MiB(uint64_t bytes) {
  return bytes % (1 << 20) == 0 ? std::to_string(bytes >> 20) + " MiB" : std::to_string(bytes) + " bytes";
}

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Result<std::vector<uint8_t>> ReadModuleFile(const std::string& path, const ModuleSourceLimits& limits) {
  const std::string shown = Printable(path);
  // O_NONBLOCK: opening a FIFO must not wait for a writer. The type is checked on the open
  // descriptor, so a file swapped in between cannot slip past.
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    return NotFound("cannot read " + shown + ": " + std::strerror(errno) +
                    " (paths are relative to the directory wasmlet runs in)");
  }
  struct stat info {};
  if (fstat(fd.get(), &info) != 0) return NotFound("cannot read " + shown + ": " + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) {
    return InvalidArgument(shown + " is " + FileKind(info.st_mode) +
                           ", not a .wasm file; point path at a module");
  }
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  if (size > limits.max_bytes) {
    return ResourceExhausted(shown + " is " + std::to_string(size) +
                             " bytes, over the module size limit of " + MiB(limits.max_bytes) +
                             " (wasmlet.max_module_bytes)");
  }
  if (size < sizeof wasm::kWasmMagic) {
    return InvalidArgument(shown + " is " + std::to_string(size) +
                           " bytes long: too short to be a wasm module (it has no \\0asm header)");
  }
  const auto deadline = limits.clock->Now() + limits.deadline;
  std::vector<uint8_t> bytes(size);
  uint64_t done = 0;
  while (done < size) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(size - done, 1 << 20));
    const ssize_t n = pread(fd.get(), bytes.data() + done, chunk, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return NotFound("cannot read " + shown + ": " + std::strerror(errno));
    if (n == 0) break;  // it shrank while being read: what was read is checked below
    if (done == 0 &&
        std::memcmp(bytes.data(), wasm::kWasmMagic, std::min<size_t>(n, sizeof wasm::kWasmMagic)) != 0) {
      return InvalidArgument(shown + " is not a WebAssembly module (it does not start with \\0asm)");
    }
    done += static_cast<uint64_t>(n);
    if (limits.clock->Now() > deadline) {
      return Status(StatusCode::kDeadlineExceeded, "reading " + shown + " took longer than " +
                                                       std::to_string(limits.deadline.count()) +
                                                       " ms; is it on a slow or stuck file system?");
    }
  }
  bytes.resize(done);
  if (done < sizeof wasm::kWasmMagic) return InvalidArgument(shown + " changed while it was read; try again");
  return bytes;
}

Result<std::vector<uint8_t>> DownloadModule(const std::string& url, const ModuleSourceLimits& limits) {
  const std::string shown = Printable(url);
  HttpClientRequest request;
  request.url = url;
  request.timeout = limits.deadline;
  request.max_response_bytes = limits.max_bytes;
  request.follow_redirects = true;
  auto answer = HttpFetch(request);
  if (!answer.ok()) {
    if (answer.status().code() == StatusCode::kResourceExhausted) {
      return ResourceExhausted("the module at " + shown + " is over the module size limit of " +
                               MiB(limits.max_bytes) + " (wasmlet.max_module_bytes)");
    }
    return Status(answer.status().code(), "cannot download " + answer.status().message());
  }
  if (answer->status != 200)
    return NotFound("cannot download " + shown + ": the server answered " + std::to_string(answer->status));
  const std::string& body = answer->body;
  if (body.size() < sizeof wasm::kWasmMagic ||
      std::memcmp(body.data(), wasm::kWasmMagic, sizeof wasm::kWasmMagic) != 0)
    return InvalidArgument(shown + " did not answer a WebAssembly module (no \\0asm header)");
  return std::vector<uint8_t>(body.begin(), body.end());
}

Result<std::vector<uint8_t>> ReadModule(const PluginConfig& plugin, const std::string& where,
                                        const ModuleSourceLimits& limits) {
  const bool from_url = plugin.vm.path.empty();
  auto bytes = from_url ? DownloadModule(plugin.vm.url, limits) : ReadModuleFile(plugin.vm.path, limits);
  if (!bytes.ok())
    return Status(bytes.status().code(),
                  where + (from_url ? ".url: " : ".path: ") + bytes.status().message());
  return bytes;
}

Result<std::string> Md5Hex(const std::vector<uint8_t>& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_md5(), nullptr) != 1) {
    return Internal("OpenSSL could not compute an MD5 digest");
  }
  return HexEncode({digest, size});
}

}  // namespace wasmlet::server
