// A file built into the binary (cmake/EmbedFiles.cmake writes the arrays).
#pragma once

#include <string_view>
#include <vector>

namespace wasmlet::server {

struct EmbeddedFile {
  std::string_view name;  // without its folder: "index.html"
  std::string_view bytes;
};

// The dashboard's files, from src/server/dashboard/.
const std::vector<EmbeddedFile>& DashboardFiles();

}  // namespace wasmlet::server
