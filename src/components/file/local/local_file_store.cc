#include "components/file/local/local_file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <set>

#include "common/text.h"

namespace wasmlet::components {
namespace {

constexpr size_t kMaxNameBytes = 1024;
constexpr std::string_view kUploadPrefix = ".wasmlet-upload-";
constexpr uint64_t kDefaultMaxFileBytes = uint64_t{256} << 20;

// A descriptor closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = other.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

std::string Quoted(std::string_view name) { return "'" + Printable(name, 256) + "'"; }

// The parts of `name`, or InvalidArgument saying what is wrong with it. `allow_empty`: the
// store's top ("" for ListFile).
Result<std::vector<std::string>> PartsOf(const std::string& name, bool allow_empty) {
  if (name.empty()) {
    if (allow_empty) return std::vector<std::string>();
    return InvalidArgument("the file name is empty");
  }
  if (name.size() > kMaxNameBytes)
    return InvalidArgument("the file name is " + std::to_string(name.size()) + " bytes long, over the limit of " +
                           std::to_string(kMaxNameBytes));
  if (name.find('\0') != std::string::npos) return InvalidArgument("the file name " + Quoted(name) + " holds a NUL byte");
  if (name.front() == '/')
    return InvalidArgument("the file name " + Quoted(name) + " is absolute: name a path relative to the store");
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string part = name.substr(start, end - start);
    if (part.empty() && end == name.size() && allow_empty && !parts.empty()) break;  // "dir/" lists dir
    if (part.empty()) return InvalidArgument("the file name " + Quoted(name) + " has an empty part (\"//\")");
    if (part == "." || part == "..")
      return InvalidArgument("the file name " + Quoted(name) + " has a \"" + part +
                             "\" part: name a path inside the store, without . or ..");
    if (std::string_view(part).starts_with(kUploadPrefix))
      return InvalidArgument("the file name " + Quoted(name) + " has a part starting with \"" +
                             std::string(kUploadPrefix) + "\", which the store keeps for its uploads");
    parts.push_back(std::move(part));
    start = end + 1;
  }
  return parts;
}

std::string Errno(int error) { return std::strerror(error); }

class LocalStore final : public FileStoreComponent {
 public:
  LocalStore(std::string name, std::string root, Fd root_fd, uint64_t max_file_bytes)
      : name_(std::move(name)), root_(std::move(root)), root_fd_(std::move(root_fd)), max_file_bytes_(max_file_bytes) {}

  Result<std::unique_ptr<FileWriter>> Put(const std::string& name) override;
  Status Get(const std::string& name, size_t chunk, const std::function<bool(std::string_view)>& sink) override;
  Result<FileListing> List(const std::string& directory, size_t page_size, const std::string& marker) override;
  Status Delete(const std::string& name) override;
  Result<FileInfo> Stat(const std::string& name) override;

 private:
  class Writer;

  // The directory that holds the last of `parts` (all of them when `whole`), opened below the
  // root without following links; made on the way when `make`.
  Result<Fd> OpenDirectory(const std::string& name, const std::vector<std::string>& parts, size_t count, bool make);
  // A failure of a system call on `name`, as a Status naming the file and the store.
  Status Failed(int error, const std::string& doing, const std::string& name) const;
  // The link `part` of `name` is refused.
  Status IsLink(const std::string& name, const std::string& part) const;

  const std::string name_;
  const std::string root_;
  const Fd root_fd_;
  const uint64_t max_file_bytes_;
  std::atomic<uint64_t> uploads_{0};
};

Status LocalStore::Failed(int error, const std::string& doing, const std::string& name) const {
  const std::string what = doing + " " + Quoted(name) + " in file store '" + name_ + "': " + Errno(error);
  switch (error) {
    case ENOENT: return NotFound("no file " + Quoted(name) + " in file store '" + name_ + "'");
    case ENOTDIR: return InvalidArgument(what + " (a part of the name is a file, not a directory)");
    case EISDIR: return InvalidArgument(what + " (it is a directory)");
    case ENAMETOOLONG: return InvalidArgument(what);
    case EACCES:
    case EPERM: return FailedPrecondition(what + " (the store's root " + root_ + " does not allow it)");
    case ENOSPC:
    case EDQUOT: return ResourceExhausted(what);
    default: return Internal(what);
  }
}

Status LocalStore::IsLink(const std::string& name, const std::string& part) const {
  return InvalidArgument("the file name " + Quoted(name) + " goes through " + Quoted(part) +
                         ", a symbolic link: the local file store does not follow links");
}

Result<Fd> LocalStore::OpenDirectory(const std::string& name, const std::vector<std::string>& parts, size_t count,
                                     bool make) {
  Fd dir(::fcntl(root_fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (dir.get() < 0) return Failed(errno, "opening the root for", name);
  for (size_t i = 0; i < count; ++i) {
    const std::string& part = parts[i];
    int next = ::openat(dir.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && make) {
      if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST) return Failed(errno, "making a directory for", name);
      next = ::openat(dir.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      const int error = errno;
      struct stat seen {};
      if ((error == ENOTDIR || error == ELOOP) && ::fstatat(dir.get(), part.c_str(), &seen, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(seen.st_mode))
        return IsLink(name, part);
      return Failed(error, "opening", name);
    }
    dir = Fd(next);
  }
  return dir;
}

// A put: a temporary file beside the name, renamed over it by Commit.
class LocalStore::Writer final : public FileWriter {
 public:
  Writer(LocalStore& store, std::string name, Fd dir, std::string leaf, std::string temp, Fd file)
      : store_(store), name_(std::move(name)), dir_(std::move(dir)), leaf_(std::move(leaf)), temp_(std::move(temp)),
        file_(std::move(file)) {}
  ~Writer() override {
    if (!committed_) ::unlinkat(dir_.get(), temp_.c_str(), 0);
  }

  Status Append(std::string_view data) override {
    if (committed_) return FailedPrecondition("the file " + Quoted(name_) + " is already written");
    if (written_ + data.size() > store_.max_file_bytes_)
      return ResourceExhausted("the file " + Quoted(name_) + " is over the " + std::to_string(store_.max_file_bytes_) +
                               " bytes file store '" + store_.name_ + "' takes (metadata maxFileBytes)");
    while (!data.empty()) {
      const ssize_t n = ::write(file_.get(), data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return store_.Failed(errno, "writing", name_);
      data.remove_prefix(static_cast<size_t>(n));
      written_ += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  Status Commit() override {
    if (committed_) return Status::Ok();
    if (::fsync(file_.get()) != 0) return store_.Failed(errno, "writing", name_);
    struct stat seen {};
    if (::fstatat(dir_.get(), leaf_.c_str(), &seen, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(seen.st_mode))
      return InvalidArgument("the file name " + Quoted(name_) + " is a directory of file store '" + store_.name_ + "'");
    if (::renameat(dir_.get(), temp_.c_str(), dir_.get(), leaf_.c_str()) != 0)
      return store_.Failed(errno, "writing", name_);
    committed_ = true;
    return Status::Ok();
  }

 private:
  LocalStore& store_;
  const std::string name_;
  const Fd dir_;
  const std::string leaf_;
  const std::string temp_;
  const Fd file_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

Result<std::unique_ptr<FileWriter>> LocalStore::Put(const std::string& name) {
  auto parts = PartsOf(name, /*allow_empty=*/false);
  if (!parts.ok()) return parts.status();
  auto dir = OpenDirectory(name, *parts, parts->size() - 1, /*make=*/true);
  if (!dir.ok()) return dir.status();
  const std::string temp = std::string(kUploadPrefix) + std::to_string(::getpid()) + "-" +
                           std::to_string(uploads_.fetch_add(1, std::memory_order_relaxed));
  Fd file(::openat(dir->get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (file.get() < 0) return Failed(errno, "creating", name);
  return std::unique_ptr<FileWriter>(
      std::make_unique<Writer>(*this, name, std::move(*dir), parts->back(), temp, std::move(file)));
}

Status LocalStore::Get(const std::string& name, size_t chunk, const std::function<bool(std::string_view)>& sink) {
  auto parts = PartsOf(name, /*allow_empty=*/false);
  if (!parts.ok()) return parts.status();
  auto dir = OpenDirectory(name, *parts, parts->size() - 1, /*make=*/false);
  if (!dir.ok()) return dir.status();
  Fd file(::openat(dir->get(), parts->back().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (file.get() < 0) {
    if (errno == ELOOP) return IsLink(name, parts->back());
    return Failed(errno, "reading", name);
  }
  struct stat seen {};
  if (::fstat(file.get(), &seen) != 0) return Failed(errno, "reading", name);
  if (S_ISDIR(seen.st_mode)) return Failed(EISDIR, "reading", name);
  if (!S_ISREG(seen.st_mode)) return InvalidArgument("the file name " + Quoted(name) + " is not a regular file");
  std::string buffer(std::max<size_t>(chunk, 1), '\0');
  for (;;) {
    const ssize_t n = ::read(file.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Failed(errno, "reading", name);
    if (n == 0) return Status::Ok();
    if (!sink(std::string_view(buffer.data(), static_cast<size_t>(n)))) return Status::Ok();
  }
}

FileInfo InfoOf(std::string name, const struct stat& seen) {
  FileInfo info;
  info.name = std::move(name);
  info.size = static_cast<uint64_t>(seen.st_size);
  info.modified = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(seen.st_mtim.tv_sec) + std::chrono::nanoseconds(seen.st_mtim.tv_nsec)));
  info.directory = S_ISDIR(seen.st_mode);
  info.mode = seen.st_mode & 07777;
  return info;
}

Result<FileListing> LocalStore::List(const std::string& directory, size_t page_size, const std::string& marker) {
  auto parts = PartsOf(directory, /*allow_empty=*/true);
  if (!parts.ok()) return parts.status();
  auto dir = OpenDirectory(directory, *parts, parts->size(), /*make=*/false);
  if (!dir.ok()) return dir.status();
  Fd readable(::openat(dir->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (readable.get() < 0) return Failed(errno, "listing", directory);
  DIR* stream = ::fdopendir(readable.get());
  if (!stream) return Failed(errno, "listing", directory);
  readable.release();  // the stream owns it now
  // The first page_size + 1 names after the marker, in order, whatever the directory's size.
  std::set<std::string> names;
  errno = 0;
  while (struct dirent* entry = ::readdir(stream)) {
    std::string_view entry_name(entry->d_name);
    if (entry_name == "." || entry_name == ".." || entry_name.starts_with(kUploadPrefix)) continue;
    if (!marker.empty() && entry_name <= marker) continue;
    if (names.size() > page_size && entry_name >= *names.rbegin()) continue;
    names.emplace(entry_name);
    if (names.size() > page_size + 1) names.erase(std::prev(names.end()));
  }
  const int error = errno;
  ::closedir(stream);
  if (error != 0) return Failed(error, "listing", directory);
  FileListing listing;
  listing.truncated = names.size() > page_size;
  size_t taken = 0;
  for (const std::string& entry : names) {
    if (taken++ == page_size) break;
    listing.marker = entry;  // the page ends after it, whether or not it is listed
    struct stat seen {};
    if (::fstatat(dir->get(), entry.c_str(), &seen, AT_SYMLINK_NOFOLLOW) != 0) continue;  // removed meanwhile
    if (S_ISLNK(seen.st_mode)) continue;  // not served, so not listed
    listing.files.push_back(InfoOf(entry, seen));
  }
  if (!listing.truncated) listing.marker.clear();
  return listing;
}

Status LocalStore::Delete(const std::string& name) {
  auto parts = PartsOf(name, /*allow_empty=*/false);
  if (!parts.ok()) return parts.status();
  auto dir = OpenDirectory(name, *parts, parts->size() - 1, /*make=*/false);
  if (!dir.ok()) return dir.status();
  if (::unlinkat(dir->get(), parts->back().c_str(), 0) != 0) return Failed(errno, "deleting", name);
  return Status::Ok();
}

Result<FileInfo> LocalStore::Stat(const std::string& name) {
  auto parts = PartsOf(name, /*allow_empty=*/false);
  if (!parts.ok()) return parts.status();
  auto dir = OpenDirectory(name, *parts, parts->size() - 1, /*make=*/false);
  if (!dir.ok()) return dir.status();
  struct stat seen {};
  if (::fstatat(dir->get(), parts->back().c_str(), &seen, AT_SYMLINK_NOFOLLOW) != 0) return Failed(errno, "reading", name);
  if (S_ISLNK(seen.st_mode)) return IsLink(name, parts->back());
  return InfoOf(name, seen);
}

}  // namespace

Result<std::unique_ptr<FileStoreComponent>> LocalFileStore(const StoreConfig& config) {
  const std::string where = "config " + config.json_path + ".metadata";
  auto meta = [&config](const char* key) {
    auto it = config.metadata.find(key);
    return it == config.metadata.end() ? std::string() : it->second;
  };
  std::string root = meta("root");
  if (root.empty()) root = "wasmlet-files/" + config.name;
  uint64_t max_file_bytes = kDefaultMaxFileBytes;
  if (const std::string text = meta("maxFileBytes"); !text.empty()) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), max_file_bytes);
    if (ec != std::errc() || end != text.data() + text.size() || max_file_bytes == 0)
      return InvalidArgument(where + ".maxFileBytes: \"" + Printable(text, 32) + "\" is not a number of bytes above 0");
  }
  std::error_code ignored;
  std::filesystem::create_directories(root, ignored);
  Fd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root_fd.get() < 0)
    return FailedPrecondition(where + ".root: cannot open the directory '" + Printable(root, 256) + "': " + Errno(errno) +
                              " (is it there, a directory, and readable by this process?)");
  return std::unique_ptr<FileStoreComponent>(
      std::make_unique<LocalStore>(config.name, root, std::move(root_fd), max_file_bytes));
}

}  // namespace wasmlet::components
