// Proxy mode end to end: the wasmlet binary with a proxy listener, its proxywasm filters built
// from source (tests/guests/proxy_filter.cc with the SDK, http_call_continue.c on the raw ABI),
// and real HTTP upstreams on loopback started by the test (one that echoes what it got, one that
// resets, one that never answers, one that holds its answers until told).
#include <gtest/gtest.h>

#include "e2e/harness.h"
#include "e2e/test_upstream.h"

namespace wasmlet::testing {
namespace {

const std::string kGuests = WASMLET_TEST_GUESTS;
using namespace std::chrono_literals;

// A filter from tests/guests/GUEST.wasm with `configuration` as its plugin configuration.
json RawFilter(const std::string& guest, const std::string& configuration) {
  return {{"type", "proxywasm"},
          {"config",
           {{"instance_num", 1},
            {"vm_config", {{"engine", "wasmtime"}, {"path", kGuests + "/" + guest + ".wasm"}}},
            {"root_context_id", 1},
            {"configuration", configuration}}}};
}

json Filter(const std::string& configuration) { return RawFilter("proxy_filter", configuration); }


// One proxy listener on `port` with `filters`, routing /timeout to `slow` (with a 1 s timeout),
// /health to a direct answer and everything else to `backend`.
json ProxyConfig(uint16_t port, const json& filters, const json& clusters) {
  json routes = {
      {{"match", {{"prefix", "/health"}}}, {"direct_response", {{"status", 200}, {"body", "healthy\n"}}}},
      {{"match", {{"prefix", "/timeout"}}}, {"route", {{"cluster_name", "slow"}, {"timeout", "1s"}}}},
      {{"match", {{"prefix", "/refused"}}}, {"route", {{"cluster_name", "nobody"}}}},
      {{"match", {{"prefix", "/"}}}, {"route", {{"cluster_name", "backend"}}}}};
  json router = {{"router_config_name", "main"},
                 {"virtual_hosts", {{{"name", "all"}, {"domains", {"*"}}, {"routers", routes}}}}};
  json listener = {
      {"name", "proxy"},
      {"address", "127.0.0.1:" + std::to_string(port)},
      {"filter_chains", {{{"filters", {{{"type", "proxy"}, {"config", {{"router_config_name", "main"}}}}}}}}},
      {"stream_filters", filters}};
  return {{"servers", {{{"routers", {router}}, {"listeners", {listener}}}}},
          {"cluster_manager", {{"clusters", clusters}}},
          {"wasmlet", {{"workers", 2}, {"admin_address", "127.0.0.1:" + std::to_string(FreePort())}}}};
}

class ProxyTest : public ::testing::Test {
 protected:
  // Starts wasmlet with `filters` in front of the echo upstream.
  void Serve(json filters) {
    // {Filter(...)} with one element is that element itself to nlohmann::json.
    if (filters.is_object()) filters = json::array({filters});
    json clusters = {Cluster("backend", backend_.address()), Cluster("slow", silent_.address()),
                     Cluster("nobody", "127.0.0.1:" + std::to_string(FreePort()), "300ms"),
                     Cluster("auth", backend_.address())};
    port_ = FreePort();
    server_ = std::make_unique<Wasmlet>(dir_, ProxyConfig(port_, filters, clusters), port_);
  }
  Response Send(const std::string& method, const std::string& target, const std::string& body = "",
                std::map<std::string, std::string> headers = {}) {
    return Get(port_, target, headers, body, method);
  }
  // The first line of the server's log that holds `text`; empty when there is none yet.
  std::string LogLine(const std::string& text) {
    const std::string log = server_->process().Log();
    const size_t at = log.find(text);
    if (at == std::string::npos) return "";
    const size_t start = log.rfind('\n', at) + 1;  // npos + 1 is 0: the log's first line
    return log.substr(start, log.find('\n', at) - start);
  }

  TempDir dir_;
  TestUpstream backend_{"echo"};
  TestUpstream silent_{"silent"};
  uint16_t port_ = 0;
  std::unique_ptr<Wasmlet> server_;
};

TEST_F(ProxyTest, FiltersRunInOrderOnTheRequestAndInReverseOnTheResponse) {
  Serve({Filter("tag=a add_response_header=x-demo:1"), Filter("tag=b")});
  auto r = Send("POST", "/echo?q=1", "hello");
  ASSERT_EQ(r.status, 200) << r.body;
  // The upstream got the request as both filters left it, with its body.
  EXPECT_NE(r.body.find("POST /echo?q=1 HTTP/1.1\r\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("x-chain: a,b\r\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\r\n\r\nhello"), std::string::npos) << r.body;
  // The answer passed b, then a.
  EXPECT_EQ(r.headers["x-chain-response"], "b,a");
  EXPECT_EQ(r.headers["x-demo"], "1");
  EXPECT_EQ(r.headers["x-upstream"], "yes");
  EXPECT_EQ(r.headers["x-filter-a-seen-status"], "200");
  // The properties of proxy mode: route_name, cluster_name, upstream.address, response.code.
  EXPECT_EQ(r.headers["x-filter-a-route"], "main backend " + backend_.address() + " 200");
  EXPECT_EQ(backend_.requests(), 1);

  // The router's direct answer passes the filters too, without the upstream.
  auto health = Send("GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "healthy\n");
  EXPECT_EQ(health.headers["x-chain-response"], "b,a");
  EXPECT_EQ(health.headers["x-filter-a-route"], "main none none 200") << "a direct answer has no cluster";
  EXPECT_EQ(backend_.requests(), 1);
}

TEST_F(ProxyTest, ALocalAnswerAtEachPhaseIsWhatTheClientGetsAndOneOnTheRequestSkipsTheUpstream) {
  for (const std::string phase : {"request_headers", "request_body", "response_headers", "response_body"}) {
    SCOPED_TRACE(phase);
    const int before = backend_.requests();
    Serve({Filter("tag=a local_at=" + phase), Filter("tag=b")});
    auto r = Send("POST", "/", "some body");
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(r.body, "denied by a at " + phase + "\n");
    EXPECT_EQ(r.headers["x-denied-by"], "a");
    const bool request_phase = phase.starts_with("request");
    EXPECT_EQ(backend_.requests() - before, request_phase ? 0 : 1);
    server_.reset();
  }
}

TEST_F(ProxyTest, AFilterPausesForAnHttpCallAndResumesWithTheBufferedBody) {
  Serve({Filter("tag=a call=auth call_path=/auth buffer_body=1"), Filter("tag=b buffer_body=1")});
  auto r = Send("POST", "/api", "payload");
  ASSERT_EQ(r.status, 200) << r.body;
  // The call's answer (the echo of "GET /auth") reached the filter, which let the request go on
  // with a header; both filters saw the whole body.
  EXPECT_NE(r.body.find("x-auth-status: 200\r\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("x-auth-body: GET /auth HTTP/1.1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\r\n\r\npayload+a+b"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("x-chain: a,b\r\n"), std::string::npos) << r.body;
  EXPECT_EQ(backend_.requests(), 2);  // the call, then the request
}

TEST_F(ProxyTest, AnHttpCallsAnswerCanRefuseTheRequestAndAFailedCallIsSeenAsOne) {
  Serve({Filter("tag=a call=auth call_path=/deny")});
  auto denied = Send("GET", "/api");
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(denied.body, "auth answered 403\n");
  EXPECT_EQ(backend_.requests(), 1);  // only the call
  server_.reset();

  // A call that gets no answer within its timeout reaches the filter as a failed call.
  Serve({Filter("tag=a call=slow call_path=/anything call_timeout_ms=300")});
  auto failed = Send("GET", "/api");
  EXPECT_EQ(failed.status, 503);
  EXPECT_EQ(failed.body, "auth call failed\n");
  server_.reset();

  // A cluster that is not configured: proxy_http_call refuses it at once.
  Serve({Filter("tag=a call=no_such_cluster")});
  auto unknown = Send("GET", "/api");
  EXPECT_EQ(unknown.status, 500);
  EXPECT_EQ(unknown.body, "http_call failed: 2\n");  // BAD_ARGUMENT
}

TEST_F(ProxyTest, AnHttpCallToAUrlWithNoHeadersTakesItsRequestLineFromTheUrl) {
  // MOSN's own httpCall test module passes a URL and no headers at all.
  Serve({Filter("tag=a call_no_headers=http://" + backend_.address() + "/auth?from=url")});
  auto r = Send("GET", "/api");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("x-auth-body: GET /auth?from=url HTTP/1.1"), std::string::npos) << r.body;
}

TEST_F(ProxyTest, TheRootContextCallsOutFromOnTick) {
  Serve({Filter("tag=a tick_call=auth")});
  std::string seen;
  int status = 0;
  EXPECT_TRUE(Eventually([&] {
    auto r = Send("GET", "/");
    status = r.status;
    seen = r.headers["x-tick-result"];
    return status != 200 || !seen.empty();
  })) << "no tick's call came back";
  ASSERT_EQ(status, 200);
  EXPECT_NE(seen.find("GET /tick HTTP/1.1"), std::string::npos) << seen;
}

TEST_F(ProxyTest, AnHttpCallOutlivesTheStreamThatMadeItAndItsAnswerReachesTheRoot) {
  // What MOSN's own httpCall.wasm does: a call to a URL from the request headers callback, and
  // Continue. The upstream holds its answer until the stream is over.
  TestUpstream held("held");
  Serve(RawFilter("http_call_continue", "http://" + held.address() + "/haha?name=wasmwasm"));
  auto r = Send("GET", "/api");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("GET /api HTTP/1.1"), std::string::npos) << r.body;
  // The client has its answer, so the stream has ended (done, log and delete ran before it was
  // sent): its call must go on all the same.
  ASSERT_TRUE(Eventually([&] { return held.requests() == 1; })) << "the call never reached its upstream:\n"
                                                                << server_->process().Log();
  held.Release();
  // Its answer reaches the root with what the upstream sent: the echo of the call.
  std::string line;
  ASSERT_TRUE(Eventually([&] { return !(line = LogLine("http_call_continue: answer")).empty(); }))
      << "no answer reached the filter:\n"
      << server_->process().Log();
  EXPECT_NE(line.find("status=200 headers="), std::string::npos) << line;
  EXPECT_NE(line.find("body=GET /haha?name=wasmwasm HTTP/1.1 stream=gone"), std::string::npos) << line;
  EXPECT_EQ(held.requests(), 1);
}

TEST_F(ProxyTest, WhenAFilterFailsTheStreamsWaitingInItAreAnsweredAtOnce) {
  // One loop, so that both requests meet the same instance of the filter.
  json clusters = {Cluster("backend", backend_.address()), Cluster("slow", silent_.address()),
                   Cluster("nobody", "127.0.0.1:1")};
  json config =
      ProxyConfig(port_ = FreePort(),
                  json::array({Filter("tag=a call=slow call_timeout_ms=5000 trap_path=/trap")}), clusters);
  config["wasmlet"]["workers"] = 1;
  server_ = std::make_unique<Wasmlet>(dir_, config, port_);
  std::optional<Response> waiting;
  std::thread first([&] { waiting = Send("GET", "/wait"); });
  EXPECT_TRUE(Eventually([&] { return silent_.requests() > 0; }));
  EXPECT_EQ(silent_.requests(), 1) << "the first request's call did not start";
  auto trapped = Send("GET", "/trap");
  EXPECT_EQ(trapped.status, 500);
  EXPECT_NE(trapped.body.find("plugin 'proxy/0'"), std::string::npos) << trapped.body;
  first.join();
  // Answered by the filter's failure, as the answer says, not by its call's 5 s timeout.
  ASSERT_TRUE(waiting.has_value());
  EXPECT_EQ(waiting->status, 500);
  EXPECT_NE(waiting->body.find("failed while the stream waited in it"), std::string::npos) << waiting->body;
  // Its call was cancelled with it.
  EXPECT_TRUE(Eventually([&] { return silent_.abandoned() > 0; }));
  EXPECT_EQ(silent_.abandoned(), 1);
}

TEST_F(ProxyTest, UpstreamFailuresAreAnsweredWithTheirStatusNamingTheCluster) {
  Serve({Filter("tag=a")});
  auto refused = Send("GET", "/refused");
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("cluster 'nobody'"), std::string::npos) << refused.body;
  EXPECT_EQ(refused.headers["x-chain-response"], "a") << "the error answer passes the filters too";

  auto timeout = Send("GET", "/timeout");
  EXPECT_EQ(timeout.status, 504);
  EXPECT_NE(timeout.body.find("cluster 'slow'"), std::string::npos) << timeout.body;

  auto reset = Send("GET", "/reset");
  EXPECT_EQ(reset.status, 502);
  EXPECT_NE(reset.body.find("cluster 'backend'"), std::string::npos) << reset.body;

  // And the listener goes on serving.
  EXPECT_EQ(Send("GET", "/").status, 200);
}

TEST_F(ProxyTest, AFunctionWaitsForItsHttpCallAndAnswersWithWhatItGot) {
  // Function mode: the Layotto listener, a function that calls the cluster "backend".
  const uint16_t port = FreePort();
  json config = LayottoConfig(port, {{"call", Plugin("call", kGuests + "/outbound_function.wasm", 1)}});
  config["cluster_manager"] = {{"clusters", {Cluster("backend", backend_.address())}}};
  Wasmlet server(dir_, config, port);
  for (int i = 0; i < 3; ++i) {
    auto r = Get(port, "/", {{"id", "id_call"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("GET / HTTP/1.1\r\n"), std::string::npos) << r.body;
  }
  EXPECT_EQ(backend_.requests(), 3);
}

TEST_F(ProxyTest, AFunctionWaitingForItsCallDoesNotHoldItsInstance) {
  // One instance on one loop, and an upstream that holds its answers: the calls of eight
  // requests at once all reach it together. Were the instance held while its call waits, the
  // upstream would hold one call at a time, and never eight.
  TestUpstream held("held");
  const uint16_t port = FreePort();
  // inline_limit_ms 0: the function stays on its loop whatever the machine's load.
  json config = LayottoConfig(port, {{"call", Plugin("call", kGuests + "/outbound_function.wasm", 1)}},
                              json::object(), {{"workers", 1}, {"inline_limit_ms", 0}});
  config["cluster_manager"] = {{"clusters", {Cluster("backend", held.address())}}};
  Wasmlet server(dir_, config, port);
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      try {
        auto r = Get(port, "/", {{"id", "id_call"}});
        if (r.status == 200 && r.body.find("GET / HTTP/1.1") != std::string::npos) ++answered;
      } catch (const std::exception&) {  // the client's own timeout: counted as not answered
      }
    });
  }
  EXPECT_TRUE(Eventually([&] { return held.most_in_flight() == 8; }))
      << "the upstream held at most " << held.most_in_flight() << " of the calls at once";
  held.Release();
  for (auto& c : clients) c.join();
  EXPECT_EQ(answered.load(), 8);
  EXPECT_EQ(held.requests(), 8);
  // /wasm/list shows the one instance.
  auto list = Body(Admin(server, "GET", "/wasm/list"));
  EXPECT_EQ(list[0]["instances"], 1);
}

}  // namespace
}  // namespace wasmlet::testing
