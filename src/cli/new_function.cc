#include "cli/new_function.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "common/text.h"

namespace wasmlet::cli {
namespace {

namespace fs = std::filesystem;

// Every occurrence of @NAME@ and @SDK@ in `text`.
std::string Fill(std::string_view text, const std::string& name, const std::string& sdk) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, 6) == "@NAME@") {
      out += name;
      i += 6;
    } else if (text.substr(i, 5) == "@SDK@") {
      out += sdk;
      i += 5;
    } else {
      out += text[i++];
    }
  }
  return out;
}

constexpr std::string_view kCMakeLists = R"(cmake_minimum_required(VERSION 3.20)
# The wasmlet guest SDK's toolchain: clang-19 to a wasm32-wasi module, @NAME@.wasm. Another SDK
# folder can be given with -DCMAKE_TOOLCHAIN_FILE=<sdk>/cmake/wasm32-wasi.cmake.
if(NOT CMAKE_TOOLCHAIN_FILE)
  set(CMAKE_TOOLCHAIN_FILE "@SDK@/cmake/wasm32-wasi.cmake")
endif()
# Release by default: optimised and stripped, what a deployment needs.
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()
)";

constexpr std::string_view kCppProject = R"(project(@NAME@ CXX)
set(CMAKE_CXX_STANDARD 20)
add_executable(@NAME@ @NAME@.cc ${WASMLET_SDK_SOURCES})
)";

constexpr std::string_view kCProject = R"(project(@NAME@ C)
add_executable(@NAME@ @NAME@.c)
)";

constexpr std::string_view kCppSource =
    R"(// @NAME@: a wasmlet function. A request with the header `id: @NAME@` reaches it; it answers
// "hello, NAME" for the query parameter `name` (or "hello, world").
#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

class Handler : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestHeaders(uint32_t, bool) override {
    const std::string path = GetHeader(MapType::kRequestHeaders, ":path").value_or("/");
    const size_t query = path.find('?');
    std::string name = query == std::string::npos ? "" : QueryParam(path.substr(query + 1), "name");
    if (name.empty()) name = "world";
    SendLocalResponse(200, "hello, " + name + "\n", {{"content-type", "text/plain"}});
    return Action::kPause;  // answered: nothing more to do for this request
  }
};

WASMLET_REGISTER_PLUGIN(RootContext, Handler)
WASMLET_FUNCTION_ID("@NAME@")
)";

constexpr std::string_view kCSource =
    R"(// @NAME@: a wasmlet function in C, on the raw Proxy-Wasm ABI (wasmlet/abi.h). A request with
// the header `id: @NAME@` reaches it; it answers "hello, world".
#include <stdlib.h>

#include "wasmlet/abi.h"

static const char kId[] = "@NAME@";
static const char kAnswer[] = "hello, world\n";

// The ABI version this module speaks, and the allocator the host fills buffers through.
WASMLET_EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}
WASMLET_EXPORT(proxy_on_memory_allocate) void* proxy_on_memory_allocate(size_t size) { return malloc(size); }

// Layotto's function id: the `id` header value that routes requests here.
WASMLET_EXPORT(proxy_get_id) void proxy_get_id(void) {
  proxy_set_buffer_bytes(PROXY_BUFFER_CALL_DATA, 0, (size_t)-1, kId, sizeof kId - 1);
}

WASMLET_EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t context_id, uint32_t root_id) {}
WASMLET_EXPORT(proxy_on_vm_start) uint32_t proxy_on_vm_start(uint32_t root_id, uint32_t size) { return 1; }
WASMLET_EXPORT(proxy_on_configure) uint32_t proxy_on_configure(uint32_t root_id, uint32_t size) { return 1; }

WASMLET_EXPORT(proxy_on_request_headers)
uint32_t proxy_on_request_headers(uint32_t context_id, uint32_t headers, uint32_t end_of_stream) {
  proxy_send_local_response(200, "", 0, kAnswer, sizeof kAnswer - 1, NULL, 0, -1);
  return 1;  // pause: the answer is sent
}
)";

constexpr std::string_view kReadme = R"(# @NAME@

A wasmlet function, from `wasmlet new`.

Build (clang-19, lld-19 and wasi-libc; `wasmlet`'s set-up installs them):

    cmake -S . -B build && cmake --build build

`build/@NAME@.wasm` is the module. Serve it from a running wasmlet, then call it:

    wasmlet install build/@NAME@.wasm --id @NAME@
    curl -H 'id: @NAME@' 'localhost:2045/?name=you'

or list it in a config's `Layotto` stream filter:
`"@NAME@": {"name": "@NAME@", "vm_config": {"engine": "v8", "path": "build/@NAME@.wasm"}}`.
The SDK's calls (state, locks, pub/sub, HTTP calls, ...) are in `@SDK@/include/wasmlet/`.
)";

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64 || !std::islower(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
           c == '_' || c == '-';
  });
}

bool HasToolchain(const fs::path& sdk) {
  std::error_code ec;
  return fs::is_regular_file(sdk / "cmake" / "wasm32-wasi.cmake", ec);
}

}  // namespace

Result<std::string> FindSdk(const std::string& flag) {
  std::error_code ec;
  if (!flag.empty()) {
    const fs::path sdk = fs::absolute(flag, ec);
    if (ec || !HasToolchain(sdk))
      return NotFound("--sdk " + flag +
                      ": no cmake/wasm32-wasi.cmake there (give the folder that holds the SDK)");
    return sdk.lexically_normal().string();
  }
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "wasmlet" / "sdk";
    if (HasToolchain(installed)) return installed.lexically_normal().string();
  }
#ifdef WASMLET_SOURCE_SDK
  if (HasToolchain(WASMLET_SOURCE_SDK)) return std::string(WASMLET_SOURCE_SDK);
#endif
  return NotFound(
      "cannot find the wasmlet SDK (a folder with cmake/wasm32-wasi.cmake) beside this binary; give it with "
      "--sdk DIR");
}

Status NewFunction(const std::string& name, const std::string& lang, const std::string& sdk_dir,
                   std::ostream& out) {
  if (!ValidName(name)) {
    return InvalidArgument("'" + Printable(name, 64) +
                           "' cannot name a function: use 1-64 lower-case letters, digits, '_' or '-', "
                           "starting with a letter (it is also the function's id and its CMake target)");
  }
  if (lang != "cpp" && lang != "c")
    return InvalidArgument("--lang must be cpp or c, not '" + Printable(lang, 16) + "'");
  std::error_code ec;
  const fs::path dir = fs::absolute(name, ec);
  if (ec || fs::exists(dir, ec))
    return AlreadyExists(name + " exists already: choose another name, or remove it");
  if (!fs::create_directory(dir, ec)) return Internal("cannot create " + dir.string() + ": " + ec.message());
  const bool cpp = lang == "cpp";
  const std::string source = name + (cpp ? ".cc" : ".c");
  const std::pair<std::string, std::string> files[] = {
      {"CMakeLists.txt",
       Fill(std::string(kCMakeLists) + std::string(cpp ? kCppProject : kCProject), name, sdk_dir)},
      {source, Fill(cpp ? kCppSource : kCSource, name, sdk_dir)},
      {"README.md", Fill(kReadme, name, sdk_dir)}};
  for (const auto& [file, text] : files) {
    std::ofstream stream(dir / file);
    stream << text;
    if (!stream.flush()) return Internal("cannot write " + (dir / file).string());
  }
  out << "wrote " << name << "/CMakeLists.txt, " << name << "/" << source << " and " << name << "/README.md\n"
      << "build it: cmake -S " << name << " -B " << name << "/build && cmake --build " << name << "/build\n";
  return Status::Ok();
}

}  // namespace wasmlet::cli
