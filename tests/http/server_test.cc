// The real server on 127.0.0.1 (port 0) against the in-memory FakeStore.
#include "http/server.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "billing/export.h"
#include "billing/time_parse.h"
#include "http/api.h"
#include "tests/http/fake_store.h"
#include "tests/http/http_client.h"
#include "tests/http/sha256_hex.h"
#include "tests/http/test_server.h"
#include "web/assets.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::FakeStore;
using testing::Get;
using testing::QuotaTable;
using testing::SendRaw;
using testing::TestServer;

int64_t T(std::string_view text) { return *billing::ParseTime(text); }

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.AddTable(QuotaTable());
    // acme: 10 + 5 in October (two sources), 100 in November; beta: 7 in October.
    store_.Add({"/quota", "acme", "lb1", "gpc0", T("2026-10-05T10:00:00Z"), 10, 10, "first"});
    store_.Add({"/quota", "acme", "lb2", "gpc0", T("2026-10-05T10:30:00Z"), 5, 5, "first"});
    store_.Add({"/quota", "acme", "lb1", "gpc0", T("2026-11-02T00:00:00Z"), 110, 100});
    store_.Add({"/quota", "beta", "lb1", "gpc0", T("2026-10-06T00:00:00Z"), 7, 7, "first"});
    store_.Add({"/quota", "acme", "lb1", "conn_cur", T("2026-10-05T10:00:00Z"), 3, 3, "gauge"});
  }

  json GetJson(uint16_t port, const std::string& target, unsigned want = 200) {
    auto r = Get(port, target);
    EXPECT_EQ(want, r.status) << target << " " << r.error << " " << r.body;
    EXPECT_EQ("application/json", r.Header("content-type")) << target;
    auto doc = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << r.body;
    return doc;
  }

  // Checks a 4xx/5xx body: the error shape and that the message starts with `param`.
  void ExpectError(uint16_t port, const std::string& target, unsigned status,
                   const std::string& param) {
    auto r = Get(port, target);
    EXPECT_EQ(status, r.status) << target << " " << r.body;
    auto doc = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(doc.contains("error")) << target << " " << r.body;
    EXPECT_TRUE(doc["error"]["code"].is_string());
    std::string msg = doc["error"]["message"];
    EXPECT_EQ(param, msg.substr(0, param.size())) << target << " -> " << msg;
  }

  FakeStore store_;
};

// A store whose writes fail (a full disk): health answers 503 with the reason until it recovers.
TEST_F(ServerTest, HealthIsFailingWhileStoreWritesFail) {
  struct FailingWrites : FakeStore {
    Status WriteStatus() override {
      return Status::IoError("store commit: No space left on device");
    }
  } store;
  TestServer server(store, {}, {});
  uint16_t port = server.port();
  ASSERT_NE(0, port);
  json health = GetJson(port, "/api/v1/health", 503);
  EXPECT_EQ("failing", health["status"]);
  EXPECT_EQ("unavailable", health["error"]["code"]);
  EXPECT_NE(std::string::npos,
            health["error"]["message"].get<std::string>().find("No space left on device"))
      << health.dump();
  // Byte for byte what monitors match: no more than the status and the error.
  EXPECT_EQ(
      "{\"error\":{\"code\":\"unavailable\",\"message\":\"store writes fail, updates are not "
      "acknowledged: I/O error: store commit: No space left on device\"},\"status\":\"failing\"}\n",
      Get(port, "/api/v1/health").body);
}

TEST_F(ServerTest, HealthTablesKeysPeers) {
  ServerHooks hooks;
  hooks.peers = [] {
    PeerInfo p;
    p.name = "lb1";
    p.direction = "inbound";
    p.address = "127.0.0.1:4242";
    p.connected = true;
    p.since_ms = T("2026-10-01T00:00:00Z");
    p.updates = 42;
    return std::vector<PeerInfo>{p};
  };
  TestServer server(store_, {}, hooks);
  uint16_t port = server.port();
  ASSERT_NE(0, port);
  EXPECT_EQ("{\"status\":\"ok\"}\n", Get(port, "/api/v1/health").body);
  EXPECT_EQ(json({{"billing_tz", "UTC"}}), GetJson(port, "/api/v1/info"));

  json tables = GetJson(port, "/api/v1/tables");
  ASSERT_EQ(1u, tables["tables"].size());
  EXPECT_EQ("/quota", tables["tables"][0]["name"]);
  EXPECT_EQ(json({"gpc0", "http_req_cnt"}), tables["tables"][0]["counter_metrics"]);
  EXPECT_EQ(json({"lb1", "lb2"}), tables["tables"][0]["sources"]);

  json keys = GetJson(port, "/api/v1/keys?table=%2Fquota");
  EXPECT_EQ(json({"acme", "beta"}), keys["keys"]);
  EXPECT_EQ(false, keys["truncated"]);
  keys = GetJson(port, "/api/v1/keys?table=/quota&limit=1");
  EXPECT_EQ(json({"acme"}), keys["keys"]);
  EXPECT_EQ(true, keys["truncated"]);
  keys = GetJson(port, "/api/v1/keys?table=/quota&prefix=b");
  EXPECT_EQ(json({"beta"}), keys["keys"]);

  json peers = GetJson(port, "/api/v1/peers");
  ASSERT_EQ(1u, peers["peers"].size());
  EXPECT_EQ("lb1", peers["peers"][0]["name"]);
  EXPECT_EQ(true, peers["peers"][0]["connected"]);
  EXPECT_EQ(42, peers["peers"][0]["updates"]);
  EXPECT_EQ("2026-10-01T00:00:00.000Z", peers["peers"][0]["since"]);
  EXPECT_TRUE(peers["peers"][0]["last_message"].is_null());
  EXPECT_EQ("", peers["peers"][0]["warning"]);
}

TEST_F(ServerTest, UsageSeriesAudit) {
  TestServer server(store_, {});
  uint16_t port = server.port();
  json usage = GetJson(port,
                       "/api/v1/usage?table=/quota&metric=gpc0&from=2026-10-01T00:00:00%2B02:00"
                       "&to=2026-11-01T00:00:00Z");
  EXPECT_EQ(json::parse(R"([{"key":"acme","total":15},{"key":"beta","total":7}])"), usage["rows"]);
  usage = GetJson(port, "/api/v1/usage?table=/quota&metric=gpc0&from=" +
                            std::to_string(T("2026-10-01T00:00:00Z")) +
                            "&to=2026-12-01T00:00:00Z&key=acme&source=lb1");
  EXPECT_EQ(json::parse(R"([{"key":"acme","total":110}])"), usage["rows"]);

  json series = GetJson(port,
                        "/api/v1/series?table=/quota&metric=gpc0&key=acme"
                        "&from=2026-10-05T00:00:00Z&to=2026-10-06T00:00:00Z&step=1h");
  EXPECT_EQ(3600000, series["step_ms"]);
  EXPECT_EQ(json::parse("[{\"t\":" + std::to_string(T("2026-10-05T10:00:00Z")) + ",\"v\":15}]"),
            series["points"]);

  // Audit pages: following `next` visits every event once, in order.
  std::string base = "/api/v1/audit?table=/quota&key=acme&from=0&to=2026-12-01T00:00:00Z&limit=2";
  json page = GetJson(port, base);
  ASSERT_EQ(2u, page["events"].size());
  EXPECT_EQ("first", page["events"][0]["reason"]);
  EXPECT_EQ(10, page["events"][0]["delta"]);
  ASSERT_TRUE(page["next"].is_string());
  std::vector<uint64_t> deltas;
  for (auto& e : page["events"]) deltas.push_back(e["delta"]);
  while (page["next"].is_string()) {
    page = GetJson(port, base + "&after=" + page["next"].get<std::string>());
    for (auto& e : page["events"]) deltas.push_back(e["delta"]);
  }
  EXPECT_EQ((std::vector<uint64_t>{10, 3, 5, 100}), deltas);
  page = GetJson(port,
                 "/api/v1/audit?table=/quota&key=acme&from=0&to=2026-12-01T00:00:00Z&metric=gpc0");
  EXPECT_EQ(3u, page["events"].size());
  EXPECT_TRUE(page["next"].is_null());
}

// order=total ranks keys by total (ties by key); limit and offset page through the ranking.
TEST_F(ServerTest, UsageTopCustomersPages) {
  for (std::string key : {"c", "d", "e"}) {
    store_.Add({"/quota", key, "lb1", "gpc0", T("2026-10-07T00:00:00Z"), 7, 7});
  }
  TestServer server(store_, {});
  uint16_t port = server.port();
  const std::string base =
      "/api/v1/usage?table=/quota&metric=gpc0&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z";
  json all = GetJson(port, base + "&order=total");
  EXPECT_EQ(json::parse(R"([{"key":"acme","total":15},{"key":"beta","total":7},
                            {"key":"c","total":7},{"key":"d","total":7},{"key":"e","total":7}])"),
            all["rows"]);
  EXPECT_EQ(5, all["total_rows"]);
  EXPECT_TRUE(all["next_offset"].is_null());
  json page = GetJson(port, base + "&order=total&limit=2");
  EXPECT_EQ(json::parse(R"([{"key":"acme","total":15},{"key":"beta","total":7}])"), page["rows"]);
  EXPECT_EQ(2, page["next_offset"]);
  page = GetJson(port, base + "&order=total&limit=2&offset=4");
  EXPECT_EQ(json::parse(R"([{"key":"e","total":7}])"), page["rows"]);
  EXPECT_TRUE(page["next_offset"].is_null());
  page = GetJson(port, base + "&limit=1&offset=1");  // by key
  EXPECT_EQ(json::parse(R"([{"key":"beta","total":7}])"), page["rows"]);
  page = GetJson(port, base + "&order=total&offset=9");
  EXPECT_EQ(json::array(), page["rows"]);
  EXPECT_EQ(5, page["total_rows"]);
  ExpectError(port, base + "&order=size", 400, "order:");
  ExpectError(port, base + "&limit=0", 400, "limit:");
  ExpectError(port, base + "&limit=100001", 400, "limit:");
  ExpectError(port, base + "&limit=x", 400, "limit:");
  ExpectError(port, base + "&offset=-1", 400, "offset:");
  ExpectError(port, base + "&offset=", 400, "offset:");
}

// The series body is written by hand; its bytes are what the JSON serializer would write, for
// many points and for totals of every length.
TEST_F(ServerTest, SeriesBodyIsTheSerializersBytes) {
  TestServer server(store_, {});
  json points = json::array();
  uint64_t v = 1;
  for (int h = 0; h < 60; ++h, v = v * 3 + 1) {
    const int64_t t = T("2026-10-10T00:00:00Z") + h * 3'600'000LL;
    store_.Add({"/quota", "many", "lb1", "gpc0", t, v, v});
    points.push_back({{"t", t}, {"v", v}});
  }
  auto r = Get(server.port(),
               "/api/v1/series?table=/quota&metric=gpc0&key=many"
               "&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&step=1h");
  ASSERT_EQ(200u, r.status) << r.body;
  EXPECT_EQ("{\"step_ms\":3600000,\"gauge\":false,\"points\":" + points.dump() + "}\n", r.body);
}

TEST_F(ServerTest, BadInputNamesTheParameter) {
  TestServer server(store_, {});
  uint16_t port = server.port();
  const std::string usage = "/api/v1/usage?table=/quota&metric=gpc0";
  ExpectError(port, usage + "&from=yesterday&to=1", 400, "from:");
  ExpectError(port, usage + "&from=1&to=2026-10-01T00:00:00", 400, "to:");
  ExpectError(port, usage + "&from=5&to=5", 400, "from:");
  ExpectError(port, usage + "&from=6&to=5", 400, "from:");
  ExpectError(port, usage + "&to=5", 400, "from:");
  ExpectError(port, usage + "&from=1&to=5&sorce=lb1", 400, "sorce:");
  ExpectError(port, usage + "&from=1&to=5&from=2", 400, "from:");
  ExpectError(port, usage + "&from=1&to=5&key=%zz", 400, "key:");
  ExpectError(port, "/api/v1/usage?table=/nope&metric=gpc0&from=1&to=5", 404, "table:");
  ExpectError(port, "/api/v1/usage?table=/quota&metric=gpc7&from=1&to=5", 404, "metric:");
  ExpectError(port, "/api/v1/usage?metric=gpc0&from=1&to=5", 400, "table:");
  const std::string series = "/api/v1/series?table=/quota&metric=gpc0&key=acme&from=0&to=";
  ExpectError(port, series + "86400000&step=5m", 400, "step:");
  ExpectError(port, series + "31536000000&step=1m", 400, "step:");
  ExpectError(port, "/api/v1/series?table=/quota&metric=gpc0&key=&from=0&to=1", 400, "key:");
  ExpectError(port, "/api/v1/keys?table=/quota&limit=0", 400, "limit:");
  ExpectError(port, "/api/v1/keys?table=/quota&limit=abc", 400, "limit:");
  ExpectError(port, "/api/v1/keys?table=/quota&limit=100001", 400, "limit:");
  ExpectError(port, "/api/v1/keys?table=/zzz", 404, "table:");
  ExpectError(port, "/api/v1/audit?table=/quota&key=acme&from=0&to=9&after=12", 400, "after:");
  ExpectError(port, "/api/v1/export?period=2026-13", 400, "period:");
  ExpectError(port, "/api/v1/export?period=2026-10&tz=Mars/Base", 400, "tz:");
  ExpectError(port, "/api/v1/export?period=2026-10&tz=../../etc/passwd", 400, "tz:");
  ExpectError(port, "/api/v1/export?period=2026-10&format=xml", 400, "format:");
  ExpectError(port, "/api/v1/export?format=csv", 400, "period:");
  ExpectError(port, "/api/v1/export?period=2026-10&table=/nope", 404, "table:");
  ExpectError(port, "/api/v1/export?period=2026-10&metric=conn_cur", 400, "metric:");
  ExpectError(port, "/api/v1/nothing", 404, "path:");
  ExpectError(port, "/api/v1/health?x=1", 400, "x:");

  auto r = Get(port, "/api/v1/usage", {}, testing::bhttp::verb::post);
  EXPECT_EQ(405u, r.status);
  EXPECT_EQ("GET, HEAD", r.Header("allow"));
  r = Get(port, "/api/v1/export?period=2026-10", {}, testing::bhttp::verb::head);
  EXPECT_EQ(405u, r.status);
  EXPECT_EQ("GET", r.Header("allow"));

  store_.FailWith(Status::IoError("disk on fire"));
  ExpectError(port, "/api/v1/tables", 500, "store:");
}

// An empty key is a malformed request, the same on every endpoint that takes one: 400 naming
// `key`, never a 404 for the key "".
TEST_F(ServerTest, EmptyKeyIsABadParameter) {
  TestServer server(store_, {});
  uint16_t port = server.port();
  ExpectError(port, "/api/v1/usage?table=/quota&metric=gpc0&key=&from=0&to=1", 400, "key: empty");
  ExpectError(port, "/api/v1/series?table=/quota&metric=gpc0&key=&from=0&to=1", 400, "key: empty");
  ExpectError(port, "/api/v1/audit?table=/quota&key=&from=0&to=1", 400, "key: empty");
  ExpectError(port, "/api/v1/audit?table=/quota&from=0&to=1", 400, "key: missing");
  // Left out, usage and series cover every key.
  EXPECT_EQ(200u, Get(port, "/api/v1/usage?table=/quota&metric=gpc0&from=0&to=1").status);
  EXPECT_EQ(200u, Get(port, "/api/v1/series?table=/quota&metric=gpc0&from=0&to=1").status);
}

TEST_F(ServerTest, OversizedAndMalformedRequests) {
  ServerOptions options;
  options.max_target_bytes = 4096;
  options.max_header_bytes = 16384;
  options.max_body_bytes = 1024;
  TestServer server(store_, options);
  uint16_t port = server.port();
  auto r = Get(port, "/api/v1/keys?table=/quota&prefix=" + std::string(8000, 'a'));
  EXPECT_EQ(414u, r.status) << r.error;
  r = Get(port, "/api/v1/keys?table=/quota&prefix=" + std::string(20000, 'a'));
  EXPECT_EQ(431u, r.status) << r.error;
  r = Get(port, "/api/v1/health", {{"X-Big", std::string(20000, 'b')}});
  EXPECT_EQ(431u, r.status) << r.error;
  testing::bhttp::request<testing::bhttp::string_body> post{testing::bhttp::verb::post,
                                                            "/api/v1/health", 11};
  post.body() = std::string(4096, 'x');
  r = testing::Send(port, post);
  EXPECT_EQ(413u, r.status) << r.error;

  auto raw = SendRaw(port, "GARBAGE\r\n\r\n", std::chrono::seconds(5));
  EXPECT_TRUE(raw.closed);
  EXPECT_EQ("HTTP/1.1 400", raw.data.substr(0, 12)) << raw.data;
  raw =
      SendRaw(port, "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: zz\r\n\r\n",
              std::chrono::seconds(5));
  EXPECT_EQ("HTTP/1.1 400", raw.data.substr(0, 12)) << raw.data;
  // Keep-alive: two requests on one connection, answered in order.
  raw = SendRaw(port,
                "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                "GET /api/v1/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                std::chrono::seconds(5));
  EXPECT_TRUE(raw.closed);
  EXPECT_EQ(0u, raw.data.find("HTTP/1.1 200"));
  EXPECT_NE(std::string::npos, raw.data.find("HTTP/1.1 404"));
}

TEST_F(ServerTest, SlowClientIsClosedAfterItsTimeout) {
  ServerOptions options;
  options.read_timeout_ms = 300;
  options.idle_timeout_ms = 300;
  TestServer server(store_, options);
  // Half a request line, then silence: closed once the read timeout passes, well before 10 s.
  auto raw = SendRaw(server.port(), "GET /api/v1/hea", std::chrono::seconds(10));
  EXPECT_TRUE(raw.closed);
  EXPECT_GE(raw.elapsed.count(), 250);
  EXPECT_LT(raw.elapsed.count(), 5000);
  // An idle keep-alive connection too.
  raw = SendRaw(server.port(), "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                std::chrono::seconds(10));
  EXPECT_TRUE(raw.closed);
  EXPECT_EQ(0u, raw.data.find("HTTP/1.1 200"));
  EXPECT_LT(raw.elapsed.count(), 5000);
}

TEST_F(ServerTest, ManyIdleConnectionsAreRefusedGracefully) {
  ServerOptions options;
  options.max_connections = 64;
  options.max_connections_per_client = 0;  // every client here is 127.0.0.1
  TestServer server(store_, options);
  uint16_t port = server.port();
  namespace net = testing::net;
  net::io_context io;
  constexpr int kClients = 3000;
  std::vector<std::unique_ptr<testing::tcp::socket>> sockets;
  int connected = 0;
  for (int i = 0; i < kClients; ++i) {
    auto s = std::make_unique<testing::tcp::socket>(io);
    boost::system::error_code ec;
    s->connect(testing::tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) ++connected;
    sockets.push_back(std::move(s));
  }
  EXPECT_EQ(kClients, connected);
  // Every connection beyond the limit is answered 503 and closed; count them, polling until
  // the server has caught up with its accept queue (bounded: 20 s).
  std::vector<bool> refused_flags(sockets.size(), false);
  int refused = 0, open = 0;
  for (auto& s : sockets) s->non_blocking(true);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (refused < kClients - 64 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (size_t i = 0; i < sockets.size(); ++i) {
      if (refused_flags[i]) continue;
      char buf[512];
      boost::system::error_code ec;
      size_t n = sockets[i]->read_some(net::buffer(buf), ec);
      if (std::string_view(buf, n).starts_with("HTTP/1.1 503")) {
        refused_flags[i] = true;
        ++refused;
      }
    }
  }
  for (size_t i = 0; i < sockets.size(); ++i) {
    if (refused_flags[i]) continue;
    char buf[512];
    boost::system::error_code ec;
    sockets[i]->read_some(net::buffer(buf), ec);
    if (ec == net::error::would_block) ++open;
  }
  EXPECT_EQ(64, open);
  EXPECT_EQ(kClients - 64, refused);
  // While full, a new client is refused at once instead of waiting.
  auto r = Get(port, "/api/v1/health");
  EXPECT_EQ(503u, r.status);
  sockets.clear();
  // Once the idle ones are gone, the server answers again.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    served = Get(port, "/api/v1/health").status == 200;
  }
  EXPECT_TRUE(served);
}

TEST_F(ServerTest, AuthenticationAndCors) {
  ServerOptions options;
  options.token = "s3cret";
  options.cors_origins = {"*"};
  TestServer server(store_, options);
  uint16_t port = server.port();
  EXPECT_EQ(200u, Get(port, "/api/v1/health").status);
  auto r = Get(port, "/api/v1/tables");
  EXPECT_EQ(401u, r.status);
  EXPECT_EQ("Bearer realm=\"stickmeter\"", r.Header("www-authenticate"));
  EXPECT_EQ("*", r.Header("access-control-allow-origin"));
  EXPECT_EQ(401u, Get(port, "/api/v1/tables", {{"Authorization", "Bearer s3cre"}}).status);
  EXPECT_EQ(401u, Get(port, "/api/v1/tables", {{"Authorization", "Basic s3cret"}}).status);
  EXPECT_EQ(401u, Get(port, "/metrics").status);
  EXPECT_EQ(401u, Get(port, "/api/v1/export?period=2026-10").status);
  EXPECT_EQ(200u, Get(port, "/api/v1/tables", {{"Authorization", "Bearer s3cret"}}).status);
  EXPECT_EQ(200u, Get(port, "/metrics", {{"Authorization", "bearer s3cret"}}).status);
  r = Get(port, "/api/v1/usage", {{"Origin", "http://x"}}, testing::bhttp::verb::options);
  EXPECT_EQ(204u, r.status);
  EXPECT_EQ("GET, HEAD", r.Header("access-control-allow-methods"));
  EXPECT_NE(std::string::npos, r.Header("access-control-allow-headers").find("Authorization"));

  // Without cors, no CORS headers.
  TestServer plain(store_, {});
  r = Get(plain.port(), "/api/v1/health");
  EXPECT_EQ("", r.Header("access-control-allow-origin"));
  EXPECT_EQ(405u, Get(plain.port(), "/api/v1/health", {}, testing::bhttp::verb::options).status);
}

// Named origins: a page of one of them gets its own origin back (and caches are told the answer
// depends on it); a page of any other gets no CORS header and its preflight is refused.
TEST_F(ServerTest, CorsForNamedOriginsOnly) {
  ServerOptions options;
  options.token = "s3cret";
  options.cors_origins = {"https://billing.example.com", "http://localhost:3000"};
  TestServer server(store_, options);
  const uint16_t port = server.port();
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer s3cret"}};
  auto with = [&](const std::string& origin) {
    auto headers = auth;
    headers["Origin"] = origin;
    return headers;
  };
  auto r = Get(port, "/api/v1/tables", with("https://billing.example.com"));
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("https://billing.example.com", r.Header("access-control-allow-origin"));
  EXPECT_NE(std::string::npos, r.Header("vary").find("Origin"));
  r = Get(port, "/api/v1/tables", with("http://localhost:3000"));
  EXPECT_EQ("http://localhost:3000", r.Header("access-control-allow-origin"));
  r = Get(port, "/api/v1/tables", with("https://evil.example"));
  EXPECT_EQ(200u, r.status);
  EXPECT_EQ("", r.Header("access-control-allow-origin"));
  EXPECT_NE(std::string::npos, r.Header("vary").find("Origin"));
  r = Get(port, "/api/v1/tables", auth);  // no Origin: not a cross-origin call
  EXPECT_EQ("", r.Header("access-control-allow-origin"));
  r = Get(port, "/api/v1/usage", {{"Origin", "https://billing.example.com"}},
          testing::bhttp::verb::options);
  EXPECT_EQ(204u, r.status);
  EXPECT_EQ("https://billing.example.com", r.Header("access-control-allow-origin"));
  EXPECT_EQ(405u, Get(port, "/api/v1/usage", {{"Origin", "https://evil.example"}},
                      testing::bhttp::verb::options)
                      .status);
}

TEST_F(ServerTest, StartRefusesUnsafeOrBusyAddresses) {
  boost::asio::io_context io;
  ServerOptions options;
  options.address = "0.0.0.0";
  options.port = 0;
  Server open_server(io, options, store_, {});
  Status s = open_server.Start();
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("0.0.0.0")) << s.ToString();

  options.address = "not-an-ip";
  Server bad(io, options, store_, {});
  EXPECT_TRUE(bad.Start().IsInvalidArgument());

  TestServer running(store_, {});
  options.address = "127.0.0.1";
  options.port = running.port();
  Server busy(io, options, store_, {});
  s = busy.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.message().find("127.0.0.1:" + std::to_string(running.port())))
      << s.ToString();

  options.address = "::1";
  options.port = 0;
  Server v6(io, options, store_, {});
  s = v6.Start();
  if (s.ok()) {
    EXPECT_NE(0, v6.port());
  }
}

TEST_F(ServerTest, ExportStreamsWithChecksumTrailer) {
  for (int i = 0; i < 5000; ++i) {
    store_.Add({"/quota", "cust,\"" + std::to_string(i), "lb1", "http_req_cnt",
                T("2026-10-07T00:00:00Z") + i, 1, uint64_t(i + 1)});
  }
  TestServer server(store_, {});
  uint16_t port = server.port();
  auto r = Get(port, "/api/v1/export?period=2026-10&tz=Europe/Berlin");
  ASSERT_EQ(200u, r.status) << r.error;
  EXPECT_EQ("text/csv; charset=utf-8", r.Header("content-type"));
  EXPECT_EQ("chunked", r.Header("transfer-encoding"));
  EXPECT_EQ("false", r.Header("x-stickmeter-partial"));
  EXPECT_NE(std::string::npos, r.Header("content-disposition").find("stickmeter-2026-10.csv"));
  EXPECT_EQ(Sha256Hex(r.body), r.Header("x-content-sha256"));
  // Byte-identical to the engine the CLI uses.
  billing::ExportRequest req;
  req.period = "2026-10";
  req.tz = "Europe/Berlin";
  req.now_ms = 0;
  std::string direct, direct_sha;
  ASSERT_TRUE(billing::WriteExport(
                  store_, req, [&](std::string_view c) { direct += c; }, &direct_sha)
                  .ok());
  EXPECT_EQ(direct, r.body);
  EXPECT_EQ(direct_sha, r.Header("x-content-sha256"));
  // Header, 5000 quoted keys, acme and beta.
  size_t records = 0;
  for (size_t at = r.body.find("\r\n"); at != std::string::npos; at = r.body.find("\r\n", at + 2)) {
    ++records;
  }
  EXPECT_EQ(5003u, records);
  // Same request, same bytes.
  auto again = Get(port, "/api/v1/export?period=2026-10&tz=Europe/Berlin");
  EXPECT_EQ(r.body, again.body);

  // JSON, a partial period, per source.
  r = Get(port,
          "/api/v1/export?from=2026-10-01T00:00:00Z&to=2099-01-01T00:00:00Z&format=json"
          "&table=/quota&metric=gpc0&per_source=true");
  ASSERT_EQ(200u, r.status) << r.body;
  EXPECT_EQ("application/json", r.Header("content-type"));
  EXPECT_EQ("true", r.Header("x-stickmeter-partial"));
  auto doc = json::parse(r.body);
  EXPECT_EQ(true, doc["partial"]);
  EXPECT_EQ(json::parse(R"([
    {"table":"/quota","key":"acme","metric":"gpc0","source":"lb1","total":110},
    {"table":"/quota","key":"acme","metric":"gpc0","source":"lb2","total":5},
    {"table":"/quota","key":"beta","metric":"gpc0","source":"lb1","total":7}])"),
            doc["rows"]);

  // HTTP/1.0 has no chunks: the body ends with the connection.
  auto raw = SendRaw(port, "GET /api/v1/export?period=2026-10&metric=gpc0 HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(raw.closed);
  EXPECT_NE(std::string::npos,
            raw.data.find("\r\n\r\nperiod_start,period_end,table,key,metric,total\r\n"));
  EXPECT_EQ(std::string::npos, raw.data.find("chunked"));
}

TEST_F(ServerTest, MetricsCountRequests) {
  TestServer server(store_, {});
  uint16_t port = server.port();
  Get(port, "/api/v1/health");
  Get(port, "/api/v1/nothing");
  auto r = Get(port, "/metrics");
  ASSERT_EQ(200u, r.status);
  EXPECT_EQ(0u, r.Header("content-type").find("text/plain; version=0.0.4"));
  EXPECT_NE(std::string::npos,
            r.body.find("stickmeter_http_requests_total{code=\"200\",route=\"/api/v1/health\"}"))
      << r.body;
  EXPECT_NE(std::string::npos,
            r.body.find("stickmeter_http_requests_total{code=\"404\",route=\"other\"}"));
  EXPECT_NE(std::string::npos, r.body.find("stickmeter_http_connections"));
}

TEST_F(ServerTest, WebUiAssets) {
  TestServer server(store_, {});
  uint16_t port = server.port();
  const web::Asset* index = web::FindAsset("/");
  auto r = Get(port, "/");
  if (index == nullptr) {
    EXPECT_EQ(404u, r.status);
    return;
  }
  ASSERT_EQ(200u, r.status);
  EXPECT_EQ(index->content_type, r.Header("content-type"));
  // No Accept-Encoding: plain bytes, under their own validator when the stored file is gzipped.
  std::string plain_etag(index->etag);
  if (index->gzipped) plain_etag.insert(plain_etag.size() - 1, "-identity");
  EXPECT_EQ(plain_etag, r.Header("etag"));
  EXPECT_EQ("", r.Header("content-encoding"));
  EXPECT_NE(std::string::npos, r.body.find("<html")) << r.body.substr(0, 200);
  auto gz = Get(port, "/", {{"Accept-Encoding", "br, gzip"}});
  ASSERT_EQ(200u, gz.status);
  if (index->gzipped) {
    EXPECT_EQ("gzip", gz.Header("content-encoding"));
    EXPECT_EQ(index->body, gz.body);
    auto plain = Gunzip(gz.body);
    ASSERT_TRUE(plain.has_value());
    EXPECT_EQ(r.body, *plain);
  }
  auto not_modified =
      Get(port, "/", {{"If-None-Match", std::string(index->etag)}, {"Accept-Encoding", "gzip"}});
  EXPECT_EQ(304u, not_modified.status);
  EXPECT_TRUE(not_modified.body.empty());
  EXPECT_EQ(304u, Get(port, "/", {{"If-None-Match", plain_etag}}).status);
  if (index->gzipped) {
    // A cached gzip validator does not match the plain variant.
    EXPECT_EQ(200u, Get(port, "/", {{"If-None-Match", std::string(index->etag)}}).status);
  }
  EXPECT_EQ(404u, Get(port, "/no-such-file.js").status);
  // The UI's files are served without a token; the data behind them is not.
  ServerOptions options;
  options.token = "t";
  TestServer guarded(store_, options);
  EXPECT_EQ(200u, Get(guarded.port(), "/").status);
}

TEST_F(ServerTest, StopFinishesInFlightAndClosesIdle) {
  for (int i = 0; i < 2000; ++i) {
    store_.Add({"/quota", "k" + std::to_string(i), "lb1", "gpc0", T("2026-10-07T00:00:00Z"), 1, 1});
  }
  // About one second of export, so Stop() lands in the middle of it.
  store_.SlowExport(std::chrono::microseconds(500));
  auto server = std::make_unique<TestServer>(store_, ServerOptions{});
  uint16_t port = server->port();
  // An idle keep-alive connection and an export in flight.
  std::thread idle([port] {
    auto raw = SendRaw(port, "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                       std::chrono::seconds(20));
    EXPECT_TRUE(raw.closed);
    EXPECT_LT(raw.elapsed.count(), 15000);
  });
  testing::ClientResponse exported;
  std::thread exporter([&] { exported = Get(port, "/api/v1/export?period=2026-10"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->server().Stop();
  server->ReleaseWork();
  exporter.join();
  idle.join();
  EXPECT_EQ(200u, exported.status) << exported.error;
  EXPECT_TRUE(exported.ok) << exported.error;
  EXPECT_EQ(Sha256Hex(exported.body), exported.Header("x-content-sha256"));
  EXPECT_NE(std::string::npos, exported.body.find("/quota,k999,gpc0,1"));
  EXPECT_TRUE(server->JoinWithin(std::chrono::seconds(10)));
  // New connections are refused after Stop().
  EXPECT_FALSE(Get(port, "/api/v1/health").ok);
  server.reset();
}

}  // namespace
}  // namespace stickmeter::http

namespace stickmeter::http {
namespace {

// An HTTP/1.0 client reads an export's body until the connection closes, with no final chunk
// or trailer to tell a whole body from a cut one: a store failing mid-stream resets the
// connection instead of closing it in order.
TEST_F(ServerTest, AnExportFailingMidStreamResetsAnHttp10Connection) {
  for (int i = 0; i < 20000; ++i) {
    store_.Add({"/quota", "k" + std::to_string(i), "lb1", "gpc0", T("2026-10-07T00:00:00Z"), 1, 1});
  }
  TestServer server(store_, ServerOptions{});
  const std::string request =
      "GET /api/v1/export?period=2026-10 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  auto whole = SendRaw(server.port(), request);
  ASSERT_TRUE(whole.closed);
  EXPECT_FALSE(whole.reset);
  EXPECT_NE(std::string::npos, whole.data.find("/quota,k9999,gpc0,1"));
  store_.FailExportAfter(15000, Status::IoError("disk gone"));
  auto cut = SendRaw(server.port(), request);
  ASSERT_TRUE(cut.closed);
  EXPECT_TRUE(cut.reset) << "a cut export ended like a whole one";
  EXPECT_EQ(0u, cut.data.rfind("HTTP/1.", 0));
  EXPECT_LT(cut.data.size(), whole.data.size());
}

TEST_F(ServerTest, AbandonedExportStopsAndFreesItsSlot) {
  for (int i = 0; i < 2000; ++i) {
    store_.Add({"/quota", "k" + std::to_string(i), "lb1", "gpc0", T("2026-10-07T00:00:00Z"), 1, 1});
  }
  store_.SlowExport(std::chrono::microseconds(2000));  // ~4 s if read to the end
  ServerOptions options;
  options.max_concurrent_exports = 1;
  TestServer server(store_, options);
  uint16_t port = server.port();
  // Read the start of an export, then hang up.
  auto raw = SendRaw(port, "GET /api/v1/export?period=2026-10 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                     std::chrono::milliseconds(300));
  EXPECT_EQ(0u, raw.data.find("HTTP/1.1 200"));
  // The abandoned export notices at its next write and gives its only slot back; speed the
  // store up so that happens promptly, then a new export gets the slot.
  store_.SlowExport(std::chrono::microseconds(0));
  auto start = std::chrono::steady_clock::now();
  testing::ClientResponse r;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = Get(port, "/api/v1/export?period=2026-10&metric=gpc0");
  } while (r.status == 503 && std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  EXPECT_EQ(200u, r.status) << r.body;
}

}  // namespace
}  // namespace stickmeter::http

namespace stickmeter::http {
namespace {

// An export request from `source` on a connection that is left open and never read: the export
// runs until the socket's buffers fill, holding its slot.
class StalledExport {
 public:
  StalledExport(uint16_t port, const std::string& source) : socket_(io_) {
    namespace net = boost::asio;
    socket_.open(net::ip::tcp::v4());
    socket_.bind(net::ip::tcp::endpoint(net::ip::make_address(source), 0));
    socket_.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    const std::string request =
        "GET /api/v1/export?period=2026-10 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    net::write(socket_, net::buffer(request));
  }
  // The first bytes the server sends, waiting up to 5 s for them.
  std::string FirstBytes() {
    std::string buf(256, '\0');
    size_t got = 0;
    socket_.async_read_some(boost::asio::buffer(buf),
                            [&](boost::system::error_code, size_t n) { got = n; });
    io_.run_for(std::chrono::seconds(5));
    return buf.substr(0, got);
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
};

TEST_F(ServerTest, SlowReadersFromOneAddressHoldAtMostTwoExports) {
  for (int i = 0; i < 2000; ++i) {
    store_.Add({"/quota", "k" + std::to_string(i), "lb1", "gpc0", T("2026-10-07T00:00:00Z"), 1, 1});
  }
  store_.SlowExport(std::chrono::microseconds(5000));  // ~10 s each: running throughout
  ServerOptions options;
  options.max_concurrent_exports = 4;
  TestServer server(store_, options);
  StalledExport first(server.port(), "127.0.0.1");
  StalledExport second(server.port(), "127.0.0.1");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // both started
  // A third export from the same address is refused, naming the limit ...
  auto refused = SendRaw(server.port(),
                         "GET /api/v1/export?period=2026-10 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Connection: close\r\n\r\n",
                         std::chrono::seconds(5));
  EXPECT_EQ(0u, refused.data.find("HTTP/1.1 503")) << refused.data.substr(0, 200);
  EXPECT_NE(std::string::npos, refused.data.find("2 per client address")) << refused.data;
  // ... while another address still gets one of the two slots left.
  StalledExport other(server.port(), "127.0.0.2");
  EXPECT_EQ(0u, other.FirstBytes().find("HTTP/1.1 200"));
  store_.SlowExport(std::chrono::microseconds(0));
}

}  // namespace
}  // namespace stickmeter::http
