#include "server/api/dapr_http.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <strings.h>

#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

#include "common/text.h"

namespace wasmlet::server {
namespace {

using json = nlohmann::json;
using Write = abi::StateStore::Write;

// Dapr's error answer: {"errorCode": "ERR_...", "message": "..."}.
abi::HttpResponse Error(unsigned status, const char* code, const std::string& message) {
  abi::HttpResponse response;
  response.status = status;
  response.headers = {{"content-type", "application/json"}};
  response.body = ToJson({{"errorCode", code}, {"message", message}});
  return response;
}

abi::HttpResponse Json(unsigned status, const json& body) {
  abi::HttpResponse response;
  response.status = status;
  response.headers = {{"content-type", "application/json"}};
  response.body = ToJson(body);
  return response;
}

abi::HttpResponse NoContent() {
  abi::HttpResponse response;
  response.status = 204;
  return response;
}

const std::string* Header(const abi::HttpRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0) return &value;
  }
  return nullptr;
}

// The path's segments, each percent-decoded, and the query's (name, value) pairs.
struct Target {
  std::vector<std::string> segments;
  std::vector<std::pair<std::string, std::string>> query;
  std::string raw_query;
};

Target ParseTarget(std::string_view path) {
  Target target;
  if (auto mark = path.find('?'); mark != std::string_view::npos) {
    target.raw_query = std::string(path.substr(mark + 1));
    path = path.substr(0, mark);
    std::string_view rest = target.raw_query;
    while (!rest.empty()) {
      const size_t amp = rest.find('&');
      std::string_view pair = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      if (pair.empty()) continue;
      const size_t eq = pair.find('=');
      target.query.emplace_back(PercentDecode(pair.substr(0, eq)),
                                eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1)));
    }
  }
  while (!path.empty()) {
    while (!path.empty() && path.front() == '/') path.remove_prefix(1);
    const size_t slash = path.find('/');
    std::string_view segment = path.substr(0, slash);
    if (!segment.empty()) target.segments.push_back(PercentDecode(segment));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return target;
}

// The names of `components`, for messages.
template <typename Map>
std::string Names(const Map& components) {
  std::string names;
  for (const auto& [name, component] : components) names += (names.empty() ? "" : ", ") + name;
  return names.empty() ? "none" : names;
}

// A request body as JSON; nullopt (and `error` set) when it is not JSON.
std::optional<json> ParseBody(const abi::HttpRequest& request, abi::HttpResponse* error) {
  try {
    return json::parse(request.body);
  } catch (const json::exception& e) {
    *error = Error(400, "ERR_MALFORMED_REQUEST", std::string("the body is not JSON: ") + e.what());
    return std::nullopt;
  }
}

// The string field `name` of `object`, or "" when the object lacks it or it is not a string
// (json::value would throw on a number there).
std::string StringField(const json& object, const char* name) {
  if (!object.is_object()) return "";
  const auto found = object.find(name);
  return found != object.end() && found->is_string() ? found->get<std::string>() : "";
}

// A state value as Dapr keeps it: the JSON text of the value (a string keeps its quotes), so
// that an SDK that saved an object reads the same object back.
std::string StoredValue(const json& value) { return ToJson(value); }

// "ttlInSeconds" of an item's metadata (a string or a number): seconds, or -1 / absent: never.
Result<std::chrono::seconds> TtlOf(const json& metadata) {
  if (!metadata.is_object() || !metadata.contains("ttlInSeconds")) return std::chrono::seconds(0);
  const json& ttl = metadata["ttlInSeconds"];
  const std::string text = ttl.is_string() ? ttl.get<std::string>() : ttl.dump();
  int64_t seconds = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || end != text.data() + text.size() || seconds < -1 || seconds > (int64_t{1} << 31))
    return InvalidArgument("metadata.ttlInSeconds \"" + Printable(text, 32) + "\" is not a number of seconds");
  return std::chrono::seconds(seconds < 0 ? 0 : seconds);
}

// One item of a save or a transaction's request: {"key", "value", "etag", "metadata", "options"}.
Result<Write> WriteOf(const json& item, bool remove, const std::string& at) {
  if (!item.is_object()) return InvalidArgument(at + " is not an object");
  Write write;
  write.remove = remove;
  if (!item.contains("key") || !item["key"].is_string() || item["key"].get_ref<const std::string&>().empty())
    return InvalidArgument(at + ".key is missing or empty");
  write.key = item["key"].get<std::string>();
  if (!remove) write.value = StoredValue(item.contains("value") ? item["value"] : json());
  if (item.contains("etag") && item["etag"].is_string() && !item["etag"].get_ref<const std::string&>().empty())
    write.etag = item["etag"].get<std::string>();
  if (item.contains("options") && item["options"].is_object()) {
    const json& options = item["options"];
    write.first_write = StringField(options, "concurrency") == "first-write";
  }
  auto ttl = TtlOf(item.contains("metadata") ? item["metadata"] : json());
  if (!ttl.ok()) return ttl.status();
  write.ttl = *ttl;
  return write;
}

// A component's failure, as Dapr answers it: a condition that does not hold is 409, bad input
// 400, the rest 500, each with `code`.
abi::HttpResponse Failed(const Status& status, const char* code) {
  switch (status.code()) {
    case StatusCode::kFailedPrecondition: return Error(409, code, status.message());
    case StatusCode::kInvalidArgument: return Error(400, "ERR_MALFORMED_REQUEST", status.message());
    default: return Error(500, code, status.message());
  }
}

// A stored value in a JSON answer: itself when it is JSON (what the SDKs saved), else a string.
json AsJson(const std::string& value) {
  json parsed = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_discarded()) return parsed;
  return IsValidUtf8(value) ? json(value) : json(Printable(value, value.size()));
}

}  // namespace

DaprHttpApi::DaprHttpApi(const ServerConfig& config, abi::HostServices services, std::shared_ptr<Invoker> invoker,
                         std::shared_ptr<const AppComponents> apps, const std::atomic<bool>& ready)
    : config_(config),
      services_(std::move(services)),
      invoker_(std::move(invoker)),
      apps_(std::move(apps)),
      ready_(ready) {}

DaprHttpApi::~DaprHttpApi() {
  http_.reset();
  workers_.reset();  // runs what is queued; each answer goes to a connection that may be gone
}

Status DaprHttpApi::Start(std::vector<boost::asio::io_context*> loops) {
  if (config_.dapr_http_address.empty()) return Status::Ok();
  WASMLET_RETURN_IF_ERROR(CheckExposure({.what = "Dapr HTTP API",
                                         .address = config_.dapr_http_address,
                                         .address_setting = "wasmlet.dapr_http_address",
                                         .has_token = !config_.api_token.empty(),
                                         .token_setting = "api_token",
                                         .token_env = "WASMLET_API_TOKEN",
                                         .allow_insecure = config_.api_allow_insecure,
                                         .insecure_setting = "wasmlet.api_allow_insecure",
                                         .risk = "can read and change this sidecar's state, locks and "
                                                 "messages and read its secrets"}));
  workers_ = std::make_unique<WorkerPool>("dapr-http", config_.api_max_concurrent_calls,
                                          4 * static_cast<size_t>(config_.api_max_concurrent_calls));
  http_ = std::make_unique<HttpServer>(
      std::move(loops),
      HttpServer::Options{.max_request_body = config_.api_max_message_bytes,
                          .max_connections = config_.max_connections,
                          .idle_timeout = std::chrono::milliseconds(config_.idle_timeout_ms)},
      [this](abi::HttpRequest request, Respond respond) {
        auto shared = std::make_shared<std::pair<abi::HttpRequest, Respond>>(std::move(request), std::move(respond));
        const bool queued = workers_->Submit([this, shared] { shared->second(Handle(shared->first)); });
        if (!queued)
          shared->second(Error(503, "ERR_TOO_MANY_REQUESTS",
                               "every worker of the Dapr HTTP API is busy and its queue is full; try again"));
      });
  Status listening = http_->Listen(config_.dapr_http_address);
  if (!listening.ok())
    return Status(listening.code(), "config wasmlet.dapr_http_address: cannot listen on " +
                                        config_.dapr_http_address + ": " + listening.message());
  spdlog::info("serving Dapr's HTTP API (v1.0) on port {}", http_->port());
  return Status::Ok();
}

void DaprHttpApi::Stop() {
  if (http_) http_->Stop();
}

abi::HttpResponse DaprHttpApi::Handle(const abi::HttpRequest& request) {
  const Target target = ParseTarget(request.path);
  const std::vector<std::string>& s = target.segments;
  const std::string& method = request.method;
  auto is = [&](size_t n, std::initializer_list<const char*> prefix) {
    if (s.size() < n || s.size() < prefix.size()) return false;
    size_t i = 0;
    for (const char* part : prefix) {
      if (s[i++] != part) return false;
    }
    return true;
  };

  if (is(2, {"v1.0", "healthz"}) && s.size() <= 3) {
    if (ready_.load()) return NoContent();
    return Error(500, "ERR_HEALTH_NOT_READY", "wasmlet is starting or stopping");
  }
  if (!config_.api_token.empty()) {
    const std::string* token = Header(request, "dapr-api-token");
    const std::string& want = config_.api_token;
    if (!token || token->size() != want.size() || CRYPTO_memcmp(token->data(), want.data(), want.size()) != 0)
      return Error(401, "ERR_API_TOKEN", "this API needs its token: send it as the header dapr-api-token");
  }

  // ---- metadata
  if (is(2, {"v1.0", "metadata"}) && s.size() == 2 && method == "GET") {
    json components = json::array();
    const std::pair<const char*, const std::map<std::string, StoreConfig>*> kinds[] = {
        {"state", &config_.stores},       {"lock", &config_.locks},
        {"sequencer", &config_.sequencers}, {"secretstores", &config_.secret_stores},
        {"configuration", &config_.configuration_stores}, {"pubsub", &config_.pubsubs}};
    for (const auto& [kind, map] : kinds) {
      for (const auto& [name, component] : *map) {
        components.push_back(
            {{"name", name}, {"type", std::string(kind) + "." + component.type}, {"version", "v1"}});
      }
    }
    return Json(200, {{"id", config_.app.app_id.empty() ? "wasmlet" : config_.app.app_id},
                      {"runtimeVersion", std::string("wasmlet ") + WASMLET_VERSION},
                      {"enabledFeatures", json::array()},
                      {"actors", json::array()},
                      {"components", components},
                      {"subscriptions", json::array()},
                      {"httpEndpoints", json::array()},
                      {"extended", {{"runtime", "wasmlet"}}}});
  }

  // ---- state
  if (is(3, {"v1.0", "state"})) {
    const std::string& store = s[2];
    if (!config_.stores.count(store))
      return Error(400, "ERR_STATE_STORE_NOT_FOUND",
                   "state store " + Printable(store, 64) + " is not found (the config has: " + Names(config_.stores) + ")");
    abi::HttpResponse bad;
    if (s.size() == 3 && method == "POST") {
      auto body = ParseBody(request, &bad);
      if (!body) return bad;
      if (!body->is_array()) return Error(400, "ERR_MALFORMED_REQUEST", "the body must be a list of items");
      std::vector<Write> writes;
      for (size_t i = 0; i < body->size(); ++i) {
        auto write = WriteOf((*body)[i], false, "[" + std::to_string(i) + "]");
        if (!write.ok()) return Error(400, "ERR_MALFORMED_REQUEST", write.status().message());
        writes.push_back(std::move(*write));
      }
      Status saved = writes.empty() ? Status::Ok() : services_.state->Apply(store, writes);
      return saved.ok() ? NoContent() : Failed(saved, "ERR_STATE_SAVE");
    }
    if (s.size() == 4 && s[3] == "bulk" && method == "POST") {
      auto body = ParseBody(request, &bad);
      if (!body) return bad;
      if (!body->is_object() || !body->contains("keys") || !(*body)["keys"].is_array())
        return Error(400, "ERR_MALFORMED_REQUEST", "the body must be {\"keys\": [...]}");
      std::vector<std::string> keys;
      for (const json& key : (*body)["keys"]) {
        if (!key.is_string() || key.get_ref<const std::string&>().empty())
          return Error(400, "ERR_MALFORMED_REQUEST", "every key must be a non-empty string");
        keys.push_back(key.get<std::string>());
      }
      auto items = services_.state->GetItems(store, keys);
      if (!items.ok()) return Failed(items.status(), "ERR_STATE_BULK_GET");
      json out = json::array();
      for (size_t i = 0; i < keys.size(); ++i) {
        json item = {{"key", keys[i]}};
        if (const auto& found = (*items)[i]) {
          item["data"] = AsJson(found->value);
          item["etag"] = found->etag;
        }
        out.push_back(std::move(item));
      }
      return Json(200, out);
    }
    if (s.size() == 4 && s[3] == "transaction" && method == "POST") {
      auto body = ParseBody(request, &bad);
      if (!body) return bad;
      if (!body->is_object() || !body->contains("operations") || !(*body)["operations"].is_array())
        return Error(400, "ERR_MALFORMED_REQUEST", "the body must be {\"operations\": [...]}");
      std::vector<Write> writes;
      const json& operations = (*body)["operations"];
      for (size_t i = 0; i < operations.size(); ++i) {
        const std::string at = "operations[" + std::to_string(i) + "]";
        const json& op = operations[i];
        const std::string kind = StringField(op, "operation");
        if (kind != "upsert" && kind != "delete")
          return Error(400, "ERR_NOT_SUPPORTED_STATE_OPERATION",
                       at + ".operation \"" + Printable(kind, 32) + "\" is neither \"upsert\" nor \"delete\"");
        auto write = WriteOf(op.contains("request") ? op["request"] : json(), kind == "delete", at + ".request");
        if (!write.ok()) return Error(400, "ERR_MALFORMED_REQUEST", write.status().message());
        writes.push_back(std::move(*write));
      }
      Status applied = writes.empty() ? Status::Ok() : services_.state->Apply(store, writes);
      return applied.ok() ? NoContent() : Failed(applied, "ERR_STATE_TRANSACTION");
    }
    if (s.size() == 4 && method == "GET") {
      auto items = services_.state->GetItems(store, {s[3]});
      if (!items.ok()) return Failed(items.status(), "ERR_STATE_GET");
      const auto& item = items->front();
      if (!item) return NoContent();
      abi::HttpResponse found;
      found.headers = {{"content-type", "application/json"}, {"etag", item->etag}};
      found.body = item->value;
      return found;
    }
    if (s.size() == 4 && method == "DELETE") {
      Write remove;
      remove.remove = true;
      remove.key = s[3];
      if (const std::string* etag = Header(request, "if-match"); etag && !etag->empty()) remove.etag = *etag;
      Status removed = services_.state->Apply(store, {remove});
      return removed.ok() ? NoContent() : Failed(removed, "ERR_STATE_DELETE");
    }
  }

  // ---- publish
  if (is(4, {"v1.0", "publish"}) && method == "POST") {
    const std::string& pubsub = s[2];
    if (!config_.pubsubs.count(pubsub))
      return Error(404, "ERR_PUBSUB_NOT_FOUND",
                   "pubsub " + Printable(pubsub, 64) + " not found (the config has: " + Names(config_.pubsubs) + ")");
    std::string topic = s[3];
    for (size_t i = 4; i < s.size(); ++i) topic += "/" + s[i];  // a topic may hold slashes
    abi::HeaderList metadata;
    for (const auto& [name, value] : target.query) {
      if (name.starts_with("metadata.")) metadata.emplace_back(name.substr(9), value);
    }
    if (const std::string* type = Header(request, "content-type")) metadata.emplace_back("content-type", *type);
    auto id = services_.publisher->Publish(pubsub, topic, request.body, metadata);
    if (!id.ok()) return Error(500, "ERR_PUBSUB_PUBLISH_MESSAGE", id.status().message());
    return NoContent();
  }

  // ---- invoke: /v1.0/invoke/{app-id}/method/{method...}, to the function of that id
  if (is(4, {"v1.0", "invoke"}) && s[3] == "method") {
    const std::string& id = s[2];
    abi::HttpRequest call;
    call.method = method;
    std::string_view raw = request.path;
    raw = raw.substr(0, raw.find('?'));
    const size_t at = raw.find("/method/");
    call.path = at == std::string_view::npos ? "/" : std::string(raw.substr(at + 7));
    if (!target.raw_query.empty()) call.path += "?" + target.raw_query;
    call.authority = "localhost";
    for (const auto& [name, value] : request.headers) {
      if (strcasecmp(name.c_str(), "dapr-api-token") == 0 || strcasecmp(name.c_str(), "host") == 0 ||
          strcasecmp(name.c_str(), "id") == 0 || strcasecmp(name.c_str(), "dapr-app-id") == 0)
        continue;
      call.headers.emplace_back(name, value);
    }
    call.headers.emplace_back("id", id);
    call.body = request.body;
    auto answer = invoker_->Forward(id, std::move(call));
    if (!answer.ok()) {
      const unsigned status = answer.status().code() == StatusCode::kNotFound ? 404 : 500;
      return Error(status, "ERR_DIRECT_INVOKE", answer.status().message());
    }
    return std::move(*answer);
  }

  // ---- secrets
  if (is(4, {"v1.0", "secrets"}) && s.size() == 4 && method == "GET") {
    const std::string& store = s[2];
    if (!config_.secret_stores.count(store))
      return Error(400, "ERR_SECRET_STORE_NOT_FOUND",
                   "secret store " + Printable(store, 64) + " is not found (the config has: " +
                       Names(config_.secret_stores) + ")");
    if (s[3] == "bulk") {
      auto all = services_.secrets->GetAll(store);
      if (!all.ok()) return Error(500, "ERR_SECRET_GET", all.status().message());
      json out = json::object();
      for (const auto& [key, pairs] : *all) {
        json secret = json::object();
        for (const auto& [name, value] : pairs) secret[name] = value;
        out[key] = std::move(secret);
      }
      return Json(200, out);
    }
    auto secret = services_.secrets->Get(store, s[3]);
    if (!secret.ok()) {
      return Error(secret.status().code() == StatusCode::kNotFound ? 404 : 500, "ERR_SECRET_GET",
                   secret.status().message());
    }
    json out = json::object();
    for (const auto& [name, value] : *secret) out[name] = value;
    return Json(200, out);
  }

  // ---- locks (alpha)
  if ((is(3, {"v1.0-alpha1", "lock"}) || is(3, {"v1.0-alpha1", "unlock"})) && s.size() == 3 && method == "POST") {
    const bool lock = s[1] == "lock";
    const std::string& store = s[2];
    if (!config_.locks.count(store))
      return Error(400, "ERR_LOCK_STORE_NOT_FOUND",
                   "lock store " + Printable(store, 64) + " is not found (the config has: " + Names(config_.locks) + ")");
    abi::HttpResponse bad;
    auto body = ParseBody(request, &bad);
    if (!body) return bad;
    const std::string resource = StringField(*body, "resourceId");
    const std::string owner = StringField(*body, "lockOwner");
    if (resource.empty() || owner.empty())
      return Error(400, "ERR_MALFORMED_REQUEST", "resourceId and lockOwner must be non-empty strings");
    if (lock) {
      const json expiry = body->value("expiryInSeconds", json());
      if (!expiry.is_number_integer() || expiry.get<int64_t>() <= 0 || expiry.get<int64_t>() > INT32_MAX)
        return Error(400, "ERR_MALFORMED_REQUEST", "expiryInSeconds must be a whole number of seconds above 0");
      auto taken = services_.locks->TryLock(store, resource, owner, std::chrono::seconds(expiry.get<int64_t>()));
      if (!taken.ok()) return Error(500, "ERR_TRY_LOCK", taken.status().message());
      return Json(200, {{"success", *taken}});
    }
    auto unlocked = services_.locks->Unlock(store, resource, owner);
    if (!unlocked.ok()) return Error(500, "ERR_UNLOCK", unlocked.status().message());
    return Json(200, {{"status", static_cast<int>(*unlocked)}});
  }

  // ---- output bindings: {"data": any, "metadata": {string: string}, "operation": string}
  if (is(3, {"v1.0", "bindings"}) && s.size() == 3 && (method == "POST" || method == "PUT")) {
    auto binding = apps_->bindings.Find(s[2], "binding", "name");
    if (!binding.ok()) {
      if (binding.status().code() == StatusCode::kUnimplemented)
        return Error(501, "ERR_INVOKE_OUTPUT_BINDING", binding.status().message());
      return Error(400, "ERR_INVOKE_OUTPUT_BINDING", binding.status().message());
    }
    abi::HttpResponse bad;
    auto body = ParseBody(request, &bad);
    if (!body) return bad;
    if (!body->is_object()) return Error(400, "ERR_MALFORMED_REQUEST", "the body must be {\"operation\", \"data\", \"metadata\"}");
    components::BindingRequest call;
    call.operation = StringField(*body, "operation");
    if (auto data = body->find("data"); data != body->end() && !data->is_null())
      call.data = data->is_string() ? data->get<std::string>() : ToJson(*data);
    if (auto metadata = body->find("metadata"); metadata != body->end() && !metadata->is_null()) {
      if (!metadata->is_object()) return Error(400, "ERR_MALFORMED_REQUEST", "metadata must be an object of strings");
      for (const auto& [key, value] : metadata->items()) {
        if (!value.is_string())
          return Error(400, "ERR_MALFORMED_REQUEST", "metadata." + Printable(key, 64) + " must be a string");
        call.metadata[key] = value.get<std::string>();
      }
    }
    auto answer = (*binding)->Invoke(call);
    if (!answer.ok()) {
      if (answer.status().code() == StatusCode::kInvalidArgument)
        return Error(400, "ERR_INVOKE_OUTPUT_BINDING", answer.status().message());
      return Error(500, "ERR_INVOKE_OUTPUT_BINDING", answer.status().message());
    }
    abi::HttpResponse done;
    done.status = answer->data.empty() ? 204 : 200;
    for (const auto& [key, value] : answer->metadata) {
      if (key.size() <= 128 && IsHttpToken(key) && IsHeaderValueSafe(value))
        done.headers.emplace_back("metadata." + key, value);
    }
    done.body = std::move(answer->data);
    return done;
  }
  return Error(404, "ERR_NOT_FOUND",
               method + " " + Printable(request.path, 128) + " is not an endpoint of Dapr's HTTP API v1.0 that wasmlet serves");
}

}  // namespace wasmlet::server
