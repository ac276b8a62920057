// Properties a guest can read with proxy_get_property (ABI §6.3), encoded as Envoy does:
// strings raw, integers as 8 bytes little-endian, maps in the pairs format.
#include <cstring>

#include "abi/plugin_vm.h"

namespace wasmlet::abi {
namespace {

std::string Int64(int64_t v) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &v, 8);
  return out;
}

}  // namespace

std::string PropertyKey(const std::vector<std::string_view>& path) {
  std::string key;
  for (auto segment : path) {
    if (!key.empty()) key.push_back('.');
    key.append(segment);
  }
  return key;
}

std::optional<std::string> PluginVm::Property(const std::vector<std::string_view>& path) {
  const std::string key = PropertyKey(path);
  if (auto it = set_properties_.find(key); it != set_properties_.end()) return it->second;

  if (key == "plugin_name") return spec_->name;
  if (key == "plugin_root_id") return spec_->root_id;
  if (key == "plugin_vm_id") return spec_->vm_id;

  const Stream* s = effective_stream();
  if (!s) return std::nullopt;
  if (key == "wasmlet.last_error") return s->last_host_error;
  const StreamData& d = *s->data;
  const HttpRequest& r = d.request;
  const auto& request_headers = d.maps[static_cast<int>(MapType::kHttpRequestHeaders)];
  // Proxy mode: where the router sent the request.
  if (key == "route_name" && !d.route_name.empty()) return d.route_name;
  if ((key == "cluster_name" || key == "xds.cluster_name") && !d.cluster_name.empty()) return d.cluster_name;
  if (key == "upstream.address" && !d.upstream_address.empty()) return d.upstream_address;
  if (key == "request.path") return r.path;
  if (key == "request.url_path") return r.path.substr(0, r.path.find('?'));
  if (key == "request.query") {
    auto q = r.path.find('?');
    return q == std::string::npos ? std::string() : r.path.substr(q + 1);
  }
  if (key == "request.host") return r.authority;
  if (key == "request.method") return r.method;
  if (key == "request.scheme") return r.scheme;
  if (key == "request.protocol") return r.protocol;
  if (key == "request.size") return Int64(static_cast<int64_t>(d.request_body_size));
  if (key == "request.headers") {
    HeaderMap regular;
    for (const auto& [name, value] : request_headers.pairs()) {
      if (!name.starts_with(':')) regular.Add(name, value);
    }
    return regular.Serialize();
  }
  if (path.size() == 3 && path[0] == "request" && path[1] == "headers") {
    auto value = request_headers.Get(path[2]);
    if (!value) return std::nullopt;
    return std::string(*value);
  }
  if (key == "source.address" && !r.source_address.empty()) return r.source_address;
  if (key == "source.port" && r.source_port) return Int64(r.source_port);
  if (key == "destination.address" && !r.destination_address.empty()) return r.destination_address;
  if (key == "destination.port" && r.destination_port) return Int64(r.destination_port);
  if (d.response_status != 0) {
    const auto& response_headers = d.maps[static_cast<int>(MapType::kHttpResponseHeaders)];
    if (key == "response.code") return Int64(d.response_status);
    if (key == "response.size") return Int64(static_cast<int64_t>(d.response_body.size()));
    if (key == "response.headers") {
      HeaderMap regular;
      for (const auto& [name, value] : response_headers.pairs()) {
        if (!name.starts_with(':')) regular.Add(name, value);
      }
      return regular.Serialize();
    }
  }
  return std::nullopt;
}

}  // namespace wasmlet::abi
