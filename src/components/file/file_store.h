// File stores (Layotto's file API, for applications: GetFile, PutFile, ListFile, DelFile,
// GetFileMeta). A file is named by a relative path, "a/b.txt", inside the store. Each type
// lives in its own folder and is created by its config "type" name (CreateFileStore); a type
// wasmlet does not have is kUnimplemented, naming it. Every call is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "components/state/state_store.h"

namespace wasmlet::components {

struct FileInfo {
  std::string name;  // relative to the listed directory (ListFile) or the store (Stat)
  uint64_t size = 0;
  std::chrono::system_clock::time_point modified;
  bool directory = false;
  uint32_t mode = 0;  // permission bits
};

struct FileListing {
  std::vector<FileInfo> files;  // in name order
  std::string marker;           // the last name of this page: pass it to get the next
  bool truncated = false;       // more names follow the marker
};

// A file being written. Nothing of it is seen under its name until Commit succeeds; a writer
// destroyed before that leaves nothing behind.
class FileWriter {
 public:
  virtual ~FileWriter() = default;
  virtual Status Append(std::string_view data) = 0;
  virtual Status Commit() = 0;
};

class FileStoreComponent {
 public:
  virtual ~FileStoreComponent() = default;
  // Starts writing `name` (replacing the file once committed; directories on the way are made).
  virtual Result<std::unique_ptr<FileWriter>> Put(const std::string& name) = 0;
  // Reads `name` in pieces of at most `chunk` bytes, handing each to `sink`; `sink` returning
  // false stops the read (the call still succeeds). NotFound when there is no such file.
  virtual Status Get(const std::string& name, size_t chunk, const std::function<bool(std::string_view)>& sink) = 0;
  // The entries of `directory` ("" for the store's top) after `marker`, at most `page_size`.
  virtual Result<FileListing> List(const std::string& directory, size_t page_size, const std::string& marker) = 0;
  // Removes the file `name` (not a directory). NotFound when there is none.
  virtual Status Delete(const std::string& name) = 0;
  virtual Result<FileInfo> Stat(const std::string& name) = 0;
};

// "local", with metadata "root" (the directory the files live in) and "maxFileBytes".
Result<std::unique_ptr<FileStoreComponent>> CreateFileStore(const StoreConfig& config);

}  // namespace wasmlet::components
