#include "server/admin/dashboard.h"

#include <openssl/crypto.h>

#include <charconv>
#include <ctime>

#include "common/text.h"

namespace wasmlet::server {
namespace {

constexpr const char* kCookie = "wasmlet_admin";

std::string Header(const abi::HttpRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (abi::ToLower(key) == name) return value;
  }
  return "";
}

// Compares in time that depends on the lengths only, not on where the first difference is:
// OpenSSL's CRYPTO_memcmp, which the compiler cannot turn into an early-exit loop.
bool SameSecret(std::string_view given, std::string_view secret) {
  if (given.size() != secret.size()) return false;
  return CRYPTO_memcmp(given.data(), secret.data(), given.size()) == 0;
}

// The value of cookie `name` in a Cookie header ("a=1; b=2"), percent-decoded.
std::string CookieValue(const std::string& header, std::string_view name) {
  size_t at = 0;
  while (at < header.size()) {
    size_t end = header.find(';', at);
    if (end == std::string::npos) end = header.size();
    std::string_view pair(header.data() + at, end - at);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      return PercentDecode(pair.substr(name.size() + 1));
    }
    at = end + 1;
  }
  return "";
}

// A field of an application/x-www-form-urlencoded body or a query string.
std::string FormField(std::string_view form, std::string_view name) {
  size_t at = 0;
  while (at <= form.size()) {
    size_t end = form.find('&', at);
    if (end == std::string_view::npos) end = form.size();
    std::string_view pair = form.substr(at, end - at);
    if (pair.size() >= name.size() + 1 && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      std::string value(pair.substr(name.size() + 1));
      for (char& c : value) c = c == '+' ? ' ' : c;
      return PercentDecode(value);
    }
    at = end + 1;
  }
  return "";
}

std::string HtmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

const EmbeddedFile* FileNamed(std::string_view name) {
  for (const auto& file : DashboardFiles()) {
    if (file.name == name) return &file;
  }
  return nullptr;
}

// What every page of the dashboard is sent with: no caching of a stale build, its own files
// only (no inline script, nothing fetched from elsewhere), and never inside another site's frame.
void AddPageHeaders(abi::HttpResponse& r, std::string content_type) {
  r.headers = {
      {"content-type", std::move(content_type)},
      {"cache-control", "no-cache"},
      {"content-security-policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
      {"x-content-type-options", "nosniff"},
      {"referrer-policy", "same-origin"}};
}

}  // namespace

const EmbeddedFile* FindDashboardFile(const std::string& path) {
  if (path == "/" || path == "/index.html") return FileNamed("index.html");
  if (path == "/dashboard.js") return FileNamed("dashboard.js");
  if (path == "/dashboard.css") return FileNamed("dashboard.css");
  return nullptr;
}

abi::HttpResponse DashboardFileResponse(const EmbeddedFile& file) {
  abi::HttpResponse r;
  const std::string_view name = file.name;
  AddPageHeaders(r, name.ends_with(".js")    ? "text/javascript; charset=utf-8"
                    : name.ends_with(".css") ? "text/css; charset=utf-8"
                                             : "text/html; charset=utf-8");
  r.body = std::string(file.bytes);
  return r;
}

bool AdminAuthorized(const abi::HttpRequest& request, const std::string& token) {
  if (token.empty()) return true;
  const std::string auth = Header(request, "authorization");
  if (auth.starts_with("Bearer ") && SameSecret(std::string_view(auth).substr(7), token)) return true;
  const std::string cookie = CookieValue(Header(request, "cookie"), kCookie);
  return !cookie.empty() && SameSecret(cookie, token);
}

bool CrossOriginChange(const abi::HttpRequest& request) {
  if (request.method == "GET" || request.method == "HEAD") return false;
  const std::string origin = Header(request, "origin");
  if (origin.empty()) return false;  // not from a browser page (curl, the CLI)
  return abi::ToLower(origin) != "http://" + abi::ToLower(request.authority);
}

abi::HttpResponse LoginPage(unsigned status, const std::string& message) {
  abi::HttpResponse r;
  r.status = status;
  AddPageHeaders(r, "text/html; charset=utf-8");
  r.body = std::string(FileNamed("login.html")->bytes);
  const std::string placeholder = "{{message}}";
  if (size_t at = r.body.find(placeholder); at != std::string::npos) {
    r.body.replace(at, placeholder.size(), HtmlEscape(message));
  }
  return r;
}

abi::HttpResponse Login(const abi::HttpRequest& request, const std::string& token) {
  if (token.empty()) {
    abi::HttpResponse r;
    r.status = 303;
    r.headers = {{"location", "/"}};
    return r;
  }
  const std::string given = FormField(request.body, "token");
  if (!SameSecret(given, token)) {
    return LoginPage(401,
                     given.empty() ? "Enter the admin token." : "That is not the configured admin token.");
  }
  abi::HttpResponse r;
  r.status = 303;
  // HttpOnly: page scripts never see it; SameSite=Strict: other sites' pages never send it.
  r.headers = {{"location", "/"},
               {"set-cookie",
                std::string(kCookie) + "=" + PercentEncode(token) + "; Path=/; HttpOnly; SameSite=Strict"},
               {"cache-control", "no-store"}};
  return r;
}

nlohmann::json StatsJson(const std::map<std::string, Metrics::Traffic>& traffic) {
  nlohmann::json functions = nlohmann::json::object();
  for (const auto& [id, t] : traffic) {
    nlohmann::json by_status = nlohmann::json::object();
    for (const auto& [status, count] : t.by_status) by_status[std::to_string(status)] = count;
    functions[id] = {
        {"requests_by_status", by_status},
        {"latency",
         {{"counts", t.latency_counts}, {"count", t.latency_count}, {"sum_seconds", t.latency_sum_seconds}}},
        {"events", t.events}};
  }
  return {{"time", IsoTime(std::chrono::system_clock::now())},
          {"latency_buckets_seconds", Metrics::LatencyBuckets()},
          {"functions", functions}};
}

nlohmann::json LogsJson(LogRing* ring, const std::string& query) {
  uint64_t after = 0;
  const std::string after_text = FormField(query, "after");
  std::from_chars(after_text.data(), after_text.data() + after_text.size(), after);  // bad or none: 0
  const bool problems = FormField(query, "level") == "warning";
  nlohmann::json lines = nlohmann::json::array();
  uint64_t next = after;
  if (ring) {
    for (const auto& line : ring->After(after, problems)) {
      lines.push_back({{"seq", line.seq},
                       {"time", IsoTime(line.time)},
                       {"level", line.level},
                       {"message", line.message}});
      next = line.seq;
    }
  }
  return {{"lines", lines}, {"next", next}};
}

}  // namespace wasmlet::server
