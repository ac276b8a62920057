#include "common/http_client.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <string_view>

#include "common/text.h"

namespace wasmlet {
namespace {

struct Collected {
  std::string body;
  uint64_t max_bytes = 0;
  bool over_limit = false;
};

size_t Collect(char* data, size_t size, size_t count, void* out) {
  auto* collected = static_cast<Collected*>(out);
  const size_t n = size * count;
  if (collected->body.size() + n > collected->max_bytes) {
    collected->over_limit = true;
    return 0;  // makes curl stop
  }
  collected->body.append(data, n);
  return n;
}

// One header line of an answer; a status line starts the headers over (an interim answer's or a
// redirect's are not the final answer's).
size_t CollectHeader(char* data, size_t size, size_t count, void* out) {
  auto* headers = static_cast<std::vector<std::pair<std::string, std::string>>*>(out);
  const size_t n = size * count;
  std::string_view line(data, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    headers->clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0 || headers->size() >= 256) return n;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  headers->emplace_back(std::string(line.substr(0, colon)), std::string(value));
  return n;
}

}  // namespace

Result<HttpClientResponse> HttpFetch(const HttpClientRequest& request) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  const std::string shown = Printable(request.url);
  if (request.url.rfind("http://", 0) != 0 && request.url.rfind("https://", 0) != 0)
    return InvalidArgument(shown + " is not an http:// or https:// URL");
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Internal("libcurl could not start");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(nullptr, curl_slist_free_all);
  for (const auto& [name, value] : request.headers) {
    const std::string line = name + ": " + value;
    curl_slist* appended = curl_slist_append(headers.get(), line.c_str());
    if (!appended) return Internal("libcurl could not add a header");
    headers.release();
    headers.reset(appended);
  }
  Collected collected;
  collected.max_bytes = request.max_response_bytes;
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(request.max_response_bytes));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &collected);
  std::vector<std::pair<std::string, std::string>> response_headers;
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response_headers);
  if (request.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: safe in threads
  const CURLcode code = curl_easy_perform(c);
  const std::string what = request.method + " " + shown;
  if (collected.over_limit || code == CURLE_FILESIZE_EXCEEDED) {
    return ResourceExhausted("the answer to " + what + " is over the limit of " +
                             std::to_string(request.max_response_bytes) + " bytes");
  }
  if (code == CURLE_OPERATION_TIMEDOUT) {
    return Status(StatusCode::kDeadlineExceeded,
                  what + " got no answer within " + std::to_string(request.timeout.count()) + " ms");
  }
  if (code != CURLE_OK) return Unavailable(what + ": " + (error[0] ? error : curl_easy_strerror(code)));
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  return HttpClientResponse{static_cast<int>(status), std::move(collected.body), std::move(response_headers)};
}

}  // namespace wasmlet
