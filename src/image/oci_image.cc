#include "image/oci_image.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/sha.h>
#include <sys/utsname.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/text.h"

namespace wasmlet::image {

namespace {

using nlohmann::json;

json Descriptor(const std::string& media_type, const std::string& blob) {
  return {{"mediaType", media_type}, {"digest", "sha256:" + Sha256Hex(blob)}, {"size", blob.size()}};
}

}  // namespace

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return HexEncode(digest);
}

TarWriter::TarWriter() : archive_(archive_write_new()) {
  archive_write_set_format_ustar(archive_);
  archive_write_add_filter_none(archive_);
  archive_write_set_bytes_in_last_block(archive_, 1);  // no padding past the end-of-archive blocks
  archive_write_open(
      archive_, &bytes_, nullptr,
      [](struct archive*, void* out, const void* data, size_t size) -> la_ssize_t {
        static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
        return static_cast<la_ssize_t>(size);
      },
      nullptr);
}

TarWriter::~TarWriter() { archive_write_free(archive_); }

Status TarWriter::AddEntry(const std::string& path, std::string_view content, unsigned mode, bool directory) {
  std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(), archive_entry_free);
  archive_entry_set_pathname(entry.get(), path.c_str());
  archive_entry_set_filetype(entry.get(), directory ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm(entry.get(), mode);
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(content.size()));
  archive_entry_set_mtime(entry.get(), 0, 0);
  archive_entry_set_uid(entry.get(), 0);
  archive_entry_set_gid(entry.get(), 0);
  if (archive_write_header(archive_, entry.get()) != ARCHIVE_OK ||
      (!content.empty() && archive_write_data(archive_, content.data(), content.size()) !=
                               static_cast<la_ssize_t>(content.size()))) {
    return Internal("cannot add " + path + " to the archive: " + archive_error_string(archive_));
  }
  return Status::Ok();
}

Status TarWriter::AddFile(const std::string& path, std::string_view content, unsigned mode) {
  return AddEntry(path, content, mode, false);
}

Status TarWriter::AddDirectory(const std::string& path) { return AddEntry(path, {}, 0755, true); }

Result<std::string> TarWriter::Finish() {
  if (archive_write_close(archive_) != ARCHIVE_OK)
    return Internal(std::string("cannot finish the archive: ") + archive_error_string(archive_));
  return std::move(bytes_);
}

std::string NormalizeReference(const std::string& name) {
  const size_t slash = name.rfind('/');
  const size_t colon = name.rfind(':');
  const bool has_tag = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  const bool has_digest = name.find('@') != std::string::npos;
  return has_tag || has_digest ? name : name + ":latest";
}

std::string HostArchitecture() {
  utsname u{};
  uname(&u);
  const std::string machine = u.machine;
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64") return "arm64";
  if (machine == "i686" || machine == "i386") return "386";
  return machine;
}

Status WriteOciArchive(const PackOptions& options, std::ostream& out) {
  if (options.module_file.empty() || options.module_file.find('/') != std::string::npos ||
      options.module_file.size() > 90) {
    return InvalidArgument("the module's file name '" + options.module_file +
                           "' must be a plain file name of at most 90 characters");
  }
  if (options.name.empty()) return InvalidArgument("the image needs a name (-t NAME[:TAG])");
  const std::string reference = NormalizeReference(options.name);

  TarWriter layer_tar;
  WASMLET_RETURN_IF_ERROR(layer_tar.AddFile(
      options.module_file,
      std::string_view(reinterpret_cast<const char*>(options.module.data()), options.module.size()),
      options.mode));
  auto layer_bytes = layer_tar.Finish();
  if (!layer_bytes.ok()) return layer_bytes.status();
  const std::string layer = std::move(*layer_bytes);

  json env = json::array();
  for (const auto& e : options.env) {
    if (e.find('=') == std::string::npos)
      return InvalidArgument("environment entry '" + e + "' must be KEY=VALUE");
    env.push_back(e);
  }
  const json config = {
      {"architecture", options.architecture.empty() ? HostArchitecture() : options.architecture},
      {"os", "linux"},
      {"config", {{"Entrypoint", {"/" + options.module_file}}, {"Env", env}, {"WorkingDir", "/"}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {"sha256:" + Sha256Hex(layer)}}}},
  };
  const std::string config_blob = config.dump();
  const json manifest = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
      {"config", Descriptor("application/vnd.oci.image.config.v1+json", config_blob)},
      {"layers", {Descriptor("application/vnd.oci.image.layer.v1.tar", layer)}},
  };
  const std::string manifest_blob = manifest.dump();
  json manifest_descriptor = Descriptor("application/vnd.oci.image.manifest.v1+json", manifest_blob);
  const size_t colon = reference.rfind(':');
  manifest_descriptor["annotations"] = {{"io.containerd.image.name", reference},
                                        {"org.opencontainers.image.ref.name", reference.substr(colon + 1)}};
  const json index = {{"schemaVersion", 2},
                      {"mediaType", "application/vnd.oci.image.index.v1+json"},
                      {"manifests", {manifest_descriptor}}};

  TarWriter image;
  WASMLET_RETURN_IF_ERROR(image.AddFile("oci-layout", json{{"imageLayoutVersion", "1.0.0"}}.dump()));
  WASMLET_RETURN_IF_ERROR(image.AddDirectory("blobs/"));
  WASMLET_RETURN_IF_ERROR(image.AddDirectory("blobs/sha256/"));
  for (const std::string* blob :
       std::initializer_list<const std::string*>{&layer, &config_blob, &manifest_blob})
    WASMLET_RETURN_IF_ERROR(image.AddFile("blobs/sha256/" + Sha256Hex(*blob), *blob));
  WASMLET_RETURN_IF_ERROR(image.AddFile("index.json", index.dump()));
  auto archive = image.Finish();
  if (!archive.ok()) return archive.status();
  out.write(archive->data(), static_cast<std::streamsize>(archive->size()));
  if (!out) return Internal("writing the image archive failed");
  return Status::Ok();
}

}  // namespace wasmlet::image
