#include "image/oci_image.h"

#include <openssl/sha.h>
#include <sys/utsname.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/text.h"

namespace wasmlet::image {

namespace {

using nlohmann::json;

constexpr size_t kBlock = 512;

// `width` - 1 octal digits, then NUL, as ustar expects.
void WriteOctal(char* field, size_t width, uint64_t value) {
  field[width - 1] = '\0';
  for (size_t i = width - 1; i-- > 0; value >>= 3) field[i] = static_cast<char>('0' + (value & 7));
}

void AppendHeader(std::string& tar, const std::string& path, uint64_t size, unsigned mode, char type) {
  char header[kBlock] = {};
  std::strncpy(header, path.c_str(), 100);
  WriteOctal(header + 100, 8, mode);
  WriteOctal(header + 108, 8, 0);  // uid
  WriteOctal(header + 116, 8, 0);  // gid
  WriteOctal(header + 124, 12, size);
  WriteOctal(header + 136, 12, 0);    // mtime: fixed, so the same input packs to the same bytes
  std::memset(header + 148, ' ', 8);  // checksum, counted as spaces
  header[156] = type;
  std::memcpy(header + 257, "ustar", 6);
  std::memcpy(header + 263, "00", 2);
  unsigned checksum = 0;
  for (unsigned char c : header) checksum += c;
  std::snprintf(header + 148, 8, "%06o", checksum);
  header[155] = ' ';
  tar.append(header, kBlock);
}

json Descriptor(const std::string& media_type, const std::string& blob) {
  return {{"mediaType", media_type}, {"digest", "sha256:" + Sha256Hex(blob)}, {"size", blob.size()}};
}

}  // namespace

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return HexEncode(digest);
}

void AppendTarFile(std::string& tar, const std::string& path, const std::string& content, unsigned mode) {
  AppendHeader(tar, path, content.size(), mode, '0');
  tar += content;
  tar.append((kBlock - content.size() % kBlock) % kBlock, '\0');
}

void AppendTarDirectory(std::string& tar, const std::string& path) { AppendHeader(tar, path, 0, 0755, '5'); }

void FinishTar(std::string& tar) { tar.append(2 * kBlock, '\0'); }

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

  std::string layer;
  AppendTarFile(layer, options.module_file,
                std::string(reinterpret_cast<const char*>(options.module.data()), options.module.size()),
                options.mode);
  FinishTar(layer);

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

  std::string archive;
  AppendTarFile(archive, "oci-layout", json{{"imageLayoutVersion", "1.0.0"}}.dump());
  AppendTarDirectory(archive, "blobs/");
  AppendTarDirectory(archive, "blobs/sha256/");
  for (const std::string* blob :
       std::initializer_list<const std::string*>{&layer, &config_blob, &manifest_blob})
    AppendTarFile(archive, "blobs/sha256/" + Sha256Hex(*blob), *blob);
  AppendTarFile(archive, "index.json", index.dump());
  FinishTar(archive);
  out.write(archive.data(), static_cast<std::streamsize>(archive.size()));
  if (!out) return Internal("writing the image archive failed");
  return Status::Ok();
}

}  // namespace wasmlet::image
