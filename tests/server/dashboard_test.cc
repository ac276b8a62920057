// The admin listener's web side, one class at a time: who may see the dashboard (token rules,
// the login cookie, cross-origin changes), the log ring it shows, and the traffic it charts.
// The page itself is tested in a browser (tests/dashboard/dashboard_test.py).
#include "server/admin/dashboard.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

namespace wasmlet::server {
namespace {

abi::HttpRequest Request(std::string method, std::string path, abi::HeaderList headers = {},
                         std::string body = "") {
  abi::HttpRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.authority = "127.0.0.1:34998";
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

std::string HeaderOf(const abi::HttpResponse& r, const std::string& name) {
  for (const auto& [key, value] : r.headers)
    if (key == name) return value;
  return "";
}

TEST(AdminWebTest, WithoutATokenEverythingIsOpen) { EXPECT_TRUE(AdminAuthorized(Request("GET", "/"), "")); }

TEST(AdminWebTest, TheTokenComesAsABearerHeaderOrTheLoginCookie) {
  const std::string token = "s3cret;token";
  EXPECT_FALSE(AdminAuthorized(Request("GET", "/"), token));
  EXPECT_TRUE(AdminAuthorized(Request("GET", "/", {{"Authorization", "Bearer s3cret;token"}}), token));
  EXPECT_FALSE(AdminAuthorized(Request("GET", "/", {{"Authorization", "Bearer s3cret"}}), token));
  // As long as the token, wrong in its last byte only.
  EXPECT_FALSE(AdminAuthorized(Request("GET", "/", {{"Authorization", "Bearer s3cret;tokeN"}}), token));
  EXPECT_FALSE(AdminAuthorized(Request("GET", "/", {{"Authorization", "s3cret;token"}}), token));

  // The cookie /login sets carries the token percent-encoded (';' would end a cookie).
  auto login = Login(Request("POST", "/login", {}, "token=s3cret%3Btoken"), token);
  ASSERT_EQ(login.status, 303u) << login.body;
  const std::string set_cookie = HeaderOf(login, "set-cookie");
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("SameSite=Strict"), std::string::npos) << set_cookie;
  EXPECT_EQ(HeaderOf(login, "location"), "/");
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  EXPECT_TRUE(AdminAuthorized(Request("GET", "/", {{"cookie", "theme=dark; " + cookie}}), token));
  EXPECT_FALSE(AdminAuthorized(Request("GET", "/", {{"cookie", "wasmlet_admin=s3cret"}}), token));
  EXPECT_FALSE(AdminAuthorized(Request("GET", "/", {{"cookie", "xwasmlet_admin=s3cret%3Btoken"}}), token));
}

TEST(AdminWebTest, AWrongOrMissingTokenAtLoginShowsTheLoginPageAgainWithTheReason) {
  auto wrong = Login(Request("POST", "/login", {}, "token=guess"), "right");
  EXPECT_EQ(wrong.status, 401u);
  EXPECT_TRUE(HeaderOf(wrong, "set-cookie").empty());
  EXPECT_NE(wrong.body.find("That is not the configured admin token."), std::string::npos);
  auto empty = Login(Request("POST", "/login", {}, ""), "right");
  EXPECT_NE(empty.body.find("Enter the admin token."), std::string::npos);
  // The message is HTML-escaped where the page shows it.
  auto page = LoginPage(401, "<b>&</b>");
  EXPECT_NE(page.body.find("&lt;b&gt;&amp;&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(page.body.find("{{message}}"), std::string::npos);
}

TEST(AdminWebTest, OnlyChangesFromAnotherOriginAreRefused) {
  EXPECT_FALSE(CrossOriginChange(Request("POST", "/wasm/install")));  // curl, the CLI
  EXPECT_FALSE(CrossOriginChange(Request("POST", "/wasm/install", {{"Origin", "http://127.0.0.1:34998"}})));
  EXPECT_TRUE(CrossOriginChange(Request("POST", "/wasm/install", {{"Origin", "http://127.0.0.1:2045"}})));
  EXPECT_TRUE(CrossOriginChange(Request("POST", "/wasm/uninstall", {{"origin", "http://evil.example"}})));
  EXPECT_FALSE(CrossOriginChange(Request("GET", "/wasm/list", {{"Origin", "http://evil.example"}})));
}

TEST(AdminWebTest, TheDashboardServesItsFilesWithAStrictContentPolicy) {
  for (const char* path : {"/", "/dashboard.js", "/dashboard.css"}) {
    const EmbeddedFile* file = FindDashboardFile(path);
    ASSERT_NE(file, nullptr) << path;
    EXPECT_FALSE(file->bytes.empty()) << path;
    auto r = DashboardFileResponse(*file);
    EXPECT_NE(HeaderOf(r, "content-security-policy").find("script-src 'self'"), std::string::npos);
  }
  EXPECT_EQ(HeaderOf(DashboardFileResponse(*FindDashboardFile("/dashboard.js")), "content-type"),
            "text/javascript; charset=utf-8");
  EXPECT_EQ(FindDashboardFile("/login.html"), nullptr);  // served only as the answer to a missing token
  EXPECT_EQ(FindDashboardFile("/../etc/passwd"), nullptr);
}

TEST(LogRingTest, KeepsTheLastLinesAndTheLastWarningsApart) {
  auto ring = std::make_shared<LogRing>(/*lines=*/3, /*problems=*/2);
  spdlog::logger logger("ring", ring);
  logger.set_level(spdlog::level::trace);
  logger.error("first error");
  for (int i = 0; i < 5; ++i) logger.info("line {}", i);
  logger.warn("a warning");

  auto lines = ring->After(0, false);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].message, "line 3");
  EXPECT_EQ(lines[2].message, "a warning");
  EXPECT_EQ(lines[2].level, "warning");
  // The error is gone from the busy ring, and kept in the ring of problems.
  auto problems = ring->After(0, true);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].message, "first error");
  EXPECT_EQ(problems[0].seq, 1u);
  // A client asks for what came after the last line it has.
  EXPECT_EQ(ring->After(lines[1].seq, false).size(), 1u);
  EXPECT_TRUE(ring->After(lines[2].seq, false).empty());

  auto json = LogsJson(ring.get(), "after=" + std::to_string(lines[1].seq));
  ASSERT_EQ(json["lines"].size(), 1u);
  EXPECT_EQ(json["lines"][0]["message"], "a warning");
  EXPECT_EQ(json["next"], lines[2].seq);
  EXPECT_EQ(LogsJson(ring.get(), "level=warning")["lines"].size(), 2u);
  EXPECT_EQ(LogsJson(ring.get(), "after=junk")["lines"].size(), 3u);  // a bad number reads as 0
  EXPECT_EQ(LogsJson(nullptr, "")["lines"].size(), 0u);
}

TEST(LogRingTest, CutsLongLines) {
  auto ring = std::make_shared<LogRing>();
  spdlog::logger logger("ring", ring);
  logger.info(std::string(1 << 20, 'x'));
  auto lines = ring->After(0, false);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].message.size(), LogRing::kMaxLineBytes + 3);
  EXPECT_TRUE(lines[0].message.ends_with("..."));
}

TEST(MetricsTrafficTest, CountsStatusesLatencyAndEventsById) {
  Metrics metrics;
  metrics.CountRequest("a", 200, 0.0004);
  metrics.CountRequest("a", 200, 0.003);
  metrics.CountRequest("a", 503, 20);
  metrics.CountEvent("traps", "a");
  metrics.CountEvent("reloads", "b");
  auto traffic = metrics.TrafficById();
  ASSERT_EQ(traffic.count("a"), 1u);
  EXPECT_EQ(traffic["a"].by_status[200], 2u);
  EXPECT_EQ(traffic["a"].by_status[503], 1u);
  EXPECT_EQ(traffic["a"].latency_count, 3u);
  const auto bounds = Metrics::LatencyBuckets();
  ASSERT_EQ(traffic["a"].latency_counts.size(), bounds.size());
  EXPECT_EQ(traffic["a"].latency_counts.front(), 1u);  // <= 0.5 ms
  EXPECT_EQ(traffic["a"].latency_counts.back(), 2u);   // <= 10 s: the 20 s request is past the last bound
  EXPECT_EQ(traffic["a"].events["traps"], 1u);
  EXPECT_EQ(traffic["b"].events["reloads"], 1u);  // events of a function with no requests yet

  auto json = StatsJson(traffic);
  EXPECT_EQ(json["functions"]["a"]["requests_by_status"]["503"], 1);
  EXPECT_EQ(json["functions"]["a"]["latency"]["count"], 3);
  EXPECT_EQ(json["latency_buckets_seconds"].size(), bounds.size());
}

}  // namespace
}  // namespace wasmlet::server
