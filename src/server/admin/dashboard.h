// The admin listener's web side: the dashboard's files (built into the binary), who may see
// them, and the JSON the page polls beside /wasm/list (/wasm/stats, /logs).
//
// Token rules are the admin API's. Without a configured token, everything is open (the listener
// is on loopback, or the operator opted out). With one, a request must carry it: as
// "Authorization: Bearer <token>" (the CLI, curl), or as the cookie a browser gets by posting
// the token to /login from the login page. Requests that change something and come from a page
// of another origin (a browser sends Origin) are refused, so a page elsewhere cannot drive the
// admin API through the operator's browser.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "abi/http.h"
#include "server/admin/embedded_file.h"
#include "server/functions/function_registry.h"
#include "server/runtime/log_ring.h"
#include "server/runtime/metrics.h"

namespace wasmlet::server {

// The file the dashboard serves at `path` ("/", "/dashboard.js", "/dashboard.css"), or null.
const EmbeddedFile* FindDashboardFile(const std::string& path);
abi::HttpResponse DashboardFileResponse(const EmbeddedFile& file);

// True when `token` is empty, or the request carries it (bearer header or login cookie).
bool AdminAuthorized(const abi::HttpRequest& request, const std::string& token);
// True for a request that changes something (not GET or HEAD) whose Origin header names
// another origin than the Host it was sent to.
bool CrossOriginChange(const abi::HttpRequest& request);
// GET / without the token: the login page. POST /login (form field "token"): the cookie and a
// redirect to the dashboard, or the login page again with what was wrong.
abi::HttpResponse LoginPage(unsigned status, const std::string& message);
abi::HttpResponse Login(const abi::HttpRequest& request, const std::string& token);

// GET /wasm/stats: by function id, the requests by status, the latency histogram and the events
// (traps, deadline kills, ...) since start; a client turns two of them into rates.
nlohmann::json StatsJson(const std::map<std::string, Metrics::Traffic>& traffic);
// GET /logs?after=SEQ[&level=warning]: the lines after SEQ, and the number to ask after next.
nlohmann::json LogsJson(LogRing* ring, const std::string& query);

}  // namespace wasmlet::server
