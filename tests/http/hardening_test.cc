// The real server on loopback against what a hostile client or web page sends: times outside
// the supported span, foreign Host headers (DNS rebinding), ambiguous body framing, many or
// slow connections from one address; and the headers and lengths of every kind of answer.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "billing/time_parse.h"
#include "http/guards.h"
#include "http/server.h"
#include "tests/http/fake_store.h"
#include "tests/http/http_client.h"
#include "tests/http/test_server.h"
#include "web/assets.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::FakeStore;
using testing::Get;
using testing::QuotaTable;
using testing::RawResult;
using testing::SendRaw;
using testing::TestServer;
namespace net = testing::net;
using tcp = testing::tcp;
using namespace std::chrono_literals;

// One response as it came over the wire: the body is exactly Content-Length bytes.
struct WireReply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string rest;  // whatever followed the body
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Parses the first response of `data`; nullopt (with a test failure) when it has no
// Content-Length or fewer body bytes than it announces.
std::optional<WireReply> ParseFirst(const std::string& data) {
  size_t head_end = data.find("\r\n\r\n");
  if (data.size() < 12 || head_end == std::string::npos) {
    ADD_FAILURE() << "no complete response head in: " << data;
    return std::nullopt;
  }
  WireReply reply;
  reply.status = static_cast<unsigned>(std::stoi(data.substr(9, 3)));
  size_t pos = data.find("\r\n") + 2;
  while (pos < head_end) {
    size_t eol = data.find("\r\n", pos);
    std::string line = data.substr(pos, eol - pos);
    size_t colon = line.find(':');
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    reply.headers[testing::Lower(line.substr(0, colon))] = value;
    pos = eol + 2;
  }
  if (reply.Header("content-length").empty()) {
    ADD_FAILURE() << "no Content-Length in: " << data.substr(0, head_end);
    return std::nullopt;
  }
  size_t length = std::stoul(reply.Header("content-length"));
  if (data.size() - (head_end + 4) < length) {
    ADD_FAILURE() << "Content-Length " << length << " but only " << data.size() - head_end - 4
                  << " bytes follow: " << data;
    return std::nullopt;
  }
  reply.body = data.substr(head_end + 4, length);
  reply.rest = data.substr(head_end + 4 + length);
  return reply;
}

// Reads what the server sends into `data` until it closes the connection (then sets `closed`),
// for as long as the socket's io_context runs. `buf` and the callback must outlive that run.
void ReadUntilClosed(tcp::socket& socket, std::string& buf, std::string& data, bool& closed,
                     std::function<void()>& read_more) {
  read_more = [&] {
    socket.async_read_some(net::buffer(buf), [&](boost::system::error_code ec, size_t n) {
      data.append(buf.data(), n);
      if (ec) {
        closed = true;
        return;
      }
      read_more();
    });
  };
  read_more();
}

// Like SendRaw, from the local address `source` (any 127.x.y.z is loopback on Linux).
RawResult SendRawFrom(const std::string& source, uint16_t port, const std::string& bytes,
                      std::chrono::milliseconds deadline = 5s) {
  net::io_context io;
  tcp::socket socket(io);
  RawResult out;
  boost::system::error_code ec;
  socket.open(tcp::v4(), ec);
  if (!ec) socket.bind(tcp::endpoint(net::ip::make_address(source), 0), ec);
  if (!ec) socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    ADD_FAILURE() << "connect from " << source << ": " << ec.message();
    return out;
  }
  if (!bytes.empty()) net::write(socket, net::buffer(bytes), ec);
  std::string buf(65536, '\0');
  std::function<void()> read_more;
  ReadUntilClosed(socket, buf, out.data, out.closed, read_more);
  io.run_for(deadline);
  return out;
}

// What a client that never ends its request line got: how much of it the server took, and
// what it answered.
struct EndlessResult {
  size_t written = 0;  // bytes the socket accepted, `head` included
  bool closed = false;
  std::string data;
};

// Sends `head`, then 'x' after 'x' (never a CRLF) in 64 KiB writes until `cap` bytes are out,
// the server closes the connection, or the deadline passes.
EndlessResult SendEndless(uint16_t port, const std::string& head, size_t cap,
                          std::chrono::milliseconds deadline = 5s) {
  net::io_context io;
  tcp::socket socket(io);
  EndlessResult out;
  boost::system::error_code ec;
  // A small send buffer, so what the kernels hold once the server stops reading stays far below
  // `cap` and `written` is close to what the server took.
  socket.open(tcp::v4(), ec);
  if (!ec) socket.set_option(net::socket_base::send_buffer_size(64 * 1024), ec);
  if (!ec) socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    ADD_FAILURE() << "connect: " << ec.message();
    return out;
  }
  const std::string filler(64 * 1024, 'x');
  std::function<void()> write_more = [&] {
    if (out.closed || out.written >= cap) return;
    auto bytes = out.written == 0 ? net::buffer(head) : net::buffer(filler);
    net::async_write(socket, bytes, [&](boost::system::error_code ec, size_t n) {
      out.written += n;
      if (ec) {
        out.closed = true;  // reset: the server closed without reading the rest
        return;
      }
      write_more();
    });
  };
  std::string buf(65536, '\0');
  std::function<void()> read_more;
  write_more();
  ReadUntilClosed(socket, buf, out.data, out.closed, read_more);
  io.run_for(deadline);
  return out;
}

std::string Request(const std::string& target, std::optional<std::string> host,
                    const std::string& extra = "") {
  std::string r = "GET " + target + " HTTP/1.1\r\n";
  if (host) r += "Host: " + *host + "\r\n";
  return r + extra + "Connection: close\r\n\r\n";
}

// The status of `target` asked for with `host` as the Host header (nullopt: none at all).
unsigned StatusWithHost(uint16_t port, const std::optional<std::string>& host,
                        const std::string& target = "/api/v1/health") {
  auto raw = SendRaw(port, Request(target, host), 5s);
  auto reply = ParseFirst(raw.data);
  return reply ? reply->status : 0;
}

class HardeningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.AddTable(QuotaTable());
    store_.Add(
        {"/quota", "acme", "lb1", "gpc0", *billing::ParseTime("2026-10-05T10:00:00Z"), 10, 10});
  }

  // Expects a 400 whose message starts with `param`.
  void ExpectBadParameter(uint16_t port, const std::string& target, const std::string& param) {
    auto r = Get(port, target);
    EXPECT_EQ(400u, r.status) << target << " " << r.body;
    auto doc = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(doc.contains("error")) << target << " " << r.body;
    std::string message = doc["error"]["message"];
    EXPECT_EQ(0u, message.find(param)) << target << " -> " << message;
  }

  FakeStore store_;
};

// A `to` past 9999-12-31 once wrapped the store's 32-bit minute numbers and counted a period
// twice; every time parameter now stops at the supported span, and the error names it.
TEST_F(HardeningTest, TimesOutsideTheSupportedSpanAreRefusedByName) {
  TestServer server(store_, {});
  uint16_t port = server.port();
  const std::string usage = "/api/v1/usage?table=/quota&metric=gpc0";
  ExpectBadParameter(port, usage + "&from=0&to=253402300800000", "to:");
  ExpectBadParameter(port, usage + "&from=0&to=9223372036854775807", "to:");
  ExpectBadParameter(port, usage + "&from=-1&to=5", "from:");
  ExpectBadParameter(port, usage + "&from=1969-12-31T23:00:00Z&to=5", "from:");
  ExpectBadParameter(port, usage + "&from=0&to=9999-12-31T23:59:59.999-01:00", "to:");
  const std::string series = "/api/v1/series?table=/quota&metric=gpc0&key=acme";
  ExpectBadParameter(port, series + "&from=0&to=300000000000000", "to:");
  const std::string audit = "/api/v1/audit?table=/quota&key=acme";
  ExpectBadParameter(port, audit + "&from=-5&to=5", "from:");
  ExpectBadParameter(port, audit + "&from=0&to=5&after=-60000:1", "after:");
  ExpectBadParameter(port, audit + "&from=0&to=5&after=253402300800000:1", "after:");
  ExpectBadParameter(port, "/api/v1/export?from=0&to=253402300800000", "to:");
  ExpectBadParameter(port, "/api/v1/export?from=-1&to=5", "from:");
  ExpectBadParameter(port, "/api/v1/export?period=9999-12", "period:");
  // The whole span itself is fine, and the totals are what was stored.
  auto r = Get(port, usage + "&from=0&to=253402300799999");
  ASSERT_EQ(200u, r.status) << r.body;
  EXPECT_EQ(json::parse(R"([{"key":"acme","total":10}])"), json::parse(r.body)["rows"]);
  auto message = json::parse(Get(port, usage + "&from=0&to=253402300800000").body);
  EXPECT_NE(std::string::npos,
            message["error"]["message"].get<std::string>().find("9999-12-31T23:59:59.999Z"))
      << message;
}

TEST(HostPolicyTest, CanonicalNames) {
  EXPECT_EQ("example.com", CanonicalHost("Example.COM:8080"));
  EXPECT_EQ("example.com", CanonicalHost(" example.com. "));
  EXPECT_EQ("::1", CanonicalHost("[::1]:80"));
  EXPECT_EQ("::1", CanonicalHost("[0:0:0:0:0:0:0:1]"));
  EXPECT_EQ("127.0.0.1", CanonicalHost("127.0.0.1:1"));
  for (const char* bad : {"", ":80", "a:", "a:b", "[::1", "[::1]x", "::1", "[example.com]", "a b",
                          "a/b", "a:123456", "a@b"}) {
    EXPECT_EQ(std::nullopt, CanonicalHost(bad)) << bad;
  }
}

// Without a token only the server's own names are answered, so a page that rebinds its DNS
// name to 127.0.0.1 cannot read anything; with a token every name is fine.
TEST_F(HardeningTest, HostMustNameThisServerWithoutAToken) {
  ServerOptions options;
  options.allowed_hosts = {"Stats.Example.com"};
  TestServer server(store_, options);
  uint16_t port = server.port();
  const std::string p = std::to_string(port);
  for (std::optional<std::string> good :
       {std::optional<std::string>("127.0.0.1"), std::optional<std::string>("127.0.0.1:" + p),
        std::optional<std::string>("localhost"), std::optional<std::string>("LocalHost:" + p),
        std::optional<std::string>("localhost."), std::optional<std::string>("[::1]"),
        std::optional<std::string>("[::1]:" + p), std::optional<std::string>("stats.example.com"),
        std::optional<std::string>("STATS.example.com:443"), std::optional<std::string>()}) {
    EXPECT_EQ(200u, StatusWithHost(port, good)) << good.value_or("(no Host)");
  }
  for (const std::string& bad : std::vector<std::string>{
           "evil.example", "evil.example:" + p, "127.0.0.1.evil.example", "localhost.evil.example",
           "127.0.0.2", "[::2]", "", "stats.example.co", "x.stats.example.com"}) {
    EXPECT_EQ(421u, StatusWithHost(port, bad)) << bad;
  }
  // Every path, the UI's and the queries' too, and the reason says what to do.
  EXPECT_EQ(421u, StatusWithHost(port, "evil.example", "/api/v1/tables"));
  EXPECT_EQ(421u, StatusWithHost(port, "evil.example", "/api/v1/export?period=2026-10"));
  EXPECT_EQ(421u, StatusWithHost(port, "evil.example", "/"));
  auto reply = ParseFirst(SendRaw(port, Request("/api/v1/usage", "rebind.evil.example")).data);
  ASSERT_TRUE(reply);
  auto doc = json::parse(reply->body);
  EXPECT_EQ("wrong_host", doc["error"]["code"]);
  std::string message = doc["error"]["message"];
  EXPECT_EQ(0u, message.find("host: \"rebind.evil.example\" does not name this server")) << message;
  EXPECT_NE(std::string::npos, message.find("--http-host")) << message;

  // With a token, the token is the guard: any Host, and still 401 without it.
  ServerOptions guarded;
  guarded.token = "s3cret";
  TestServer with_token(store_, guarded);
  EXPECT_EQ(200u, StatusWithHost(with_token.port(), "evil.example"));
  auto raw = SendRaw(with_token.port(),
                     Request("/api/v1/tables", "evil.example", "Authorization: Bearer s3cret\r\n"));
  reply = ParseFirst(raw.data);
  ASSERT_TRUE(reply);
  EXPECT_EQ(200u, reply->status) << raw.data;
  EXPECT_EQ(401u, StatusWithHost(with_token.port(), "evil.example", "/api/v1/tables"));

  // Listening on every address, any IP literal names the server (a browser sends one only when
  // it connected to that IP itself); names still need --http-host.
  ServerOptions wildcard;
  wildcard.address = "0.0.0.0";
  wildcard.insecure_no_auth = true;
  TestServer open(store_, wildcard);
  EXPECT_EQ(200u, StatusWithHost(open.port(), "192.0.2.7:8080"));
  EXPECT_EQ(200u, StatusWithHost(open.port(), "[2001:db8::1]"));
  EXPECT_EQ(421u, StatusWithHost(open.port(), "evil.example"));
}

// Every answer carries the security headers: data, errors, the UI, streamed exports, refusals.
TEST_F(HardeningTest, EveryResponseCarriesTheSecurityHeaders) {
  TestServer server(store_, {});
  uint16_t port = server.port();
  auto check = [](const std::map<std::string, std::string>& headers, const std::string& what) {
    auto get = [&](const std::string& name) {
      auto it = headers.find(name);
      return it == headers.end() ? std::string() : it->second;
    };
    EXPECT_EQ(std::string(kContentSecurityPolicy), get("content-security-policy")) << what;
    EXPECT_EQ("DENY", get("x-frame-options")) << what;
    EXPECT_EQ("no-referrer", get("referrer-policy")) << what;
    EXPECT_EQ("nosniff", get("x-content-type-options")) << what;
  };
  EXPECT_EQ(
      "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
      "frame-ancestors 'none'",
      std::string(kContentSecurityPolicy));
  for (std::string target : {"/api/v1/health", "/api/v1/tables", "/api/v1/nothing",
                             "/api/v1/usage?x=1", "/metrics", "/api/v1/export?period=2026-10"}) {
    auto r = Get(port, target);
    EXPECT_NE(0u, r.status) << target;
    check(r.headers, target);
  }
  if (web::FindAsset("/") != nullptr) {
    for (std::string target : {"/", "/app.js", "/app.css", "/no-such-file.js"}) {
      check(Get(port, target).headers, target);
    }
  }
  auto misdirected = ParseFirst(SendRaw(port, Request("/", "evil.example")).data);
  ASSERT_TRUE(misdirected);
  check(misdirected->headers, "421");
  auto malformed = ParseFirst(SendRaw(port, "GARBAGE\r\n\r\n").data);
  ASSERT_TRUE(malformed);
  check(malformed->headers, "400 malformed");
  // The refusal at accept time: hold the one connection this address may have.
  ServerOptions one;
  one.max_connections_per_client = 1;
  TestServer strict(store_, one);
  net::io_context io;
  tcp::socket held(io);
  held.connect({net::ip::make_address("127.0.0.1"), strict.port()});
  RawResult raw;
  for (int i = 0; i < 50 && raw.data.find(" 503 ") == std::string::npos; ++i) {
    raw = SendRaw(strict.port(), "", 300ms);
  }
  auto refused = ParseFirst(raw.data);
  ASSERT_TRUE(refused);
  check(refused->headers, "503 at accept");
}

// Each fixed answer's Content-Length is the length of its body: read exactly that many bytes
// and nothing is left over or missing.
TEST_F(HardeningTest, FixedRepliesHaveTheirExactLength) {
  ServerOptions options;
  options.max_concurrent_exports = 0;  // every export is refused 503
  TestServer server(store_, options);
  uint16_t port = server.port();
  auto exact = [](const RawResult& raw, unsigned status, const std::string& what) {
    auto reply = ParseFirst(raw.data);
    ASSERT_TRUE(reply) << what;
    EXPECT_EQ(status, reply->status) << what << ": " << raw.data;
    EXPECT_EQ("", reply->rest) << what;
    EXPECT_TRUE(raw.closed) << what;
    auto doc = json::parse(reply->body, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << what << ": " << reply->body;
    EXPECT_TRUE(doc["error"]["code"].is_string()) << what << ": " << reply->body;
  };
  exact(SendRaw(port, Request("/api/v1/export?period=2026-10", "127.0.0.1")), 503, "export 503");
  exact(SendRaw(port, Request("/api/v1/health", "evil.example")), 421, "421");
  exact(SendRaw(port, "GARBAGE\r\n\r\n"), 400, "400 malformed");
  exact(SendRaw(port, Request("/api/v1/health", "127.0.0.1",
                              "X-Big: " + std::string(20000, 'b') + "\r\n")),
        431, "431");
  ServerOptions one;
  one.max_connections_per_client = 1;
  TestServer strict(store_, one);
  net::io_context io;
  tcp::socket held(io);
  held.connect({net::ip::make_address("127.0.0.1"), strict.port()});
  RawResult raw;
  for (int i = 0; i < 50 && raw.data.find(" 503 ") == std::string::npos; ++i) {
    raw = SendRaw(strict.port(), "", 300ms);
  }
  exact(raw, 503, "per-client 503");
  auto reply = ParseFirst(raw.data);
  ASSERT_TRUE(reply);
  EXPECT_EQ("1", reply->Header("retry-after"));
  EXPECT_EQ("close", testing::Lower(reply->Header("connection")));
}

// Only `Transfer-Encoding: chunked` frames a body, and never together with Content-Length:
// anything else could end the request elsewhere for a proxy in front, so the request is refused
// and the connection closed before a smuggled second request is read.
TEST_F(HardeningTest, TransferEncodingIsStrict) {
  TestServer server(store_, {});
  uint16_t port = server.port();
  const std::string smuggled = "GET /api/v1/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  for (std::string framing :
       {"Transfer-Encoding: xchunked\r\n", "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: identity\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: identity\r\n"}) {
    SCOPED_TRACE(framing);
    auto raw = SendRaw(
        port,
        "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framing + "\r\n0\r\n\r\n" + smuggled,
        5s);
    auto reply = ParseFirst(raw.data);
    ASSERT_TRUE(reply);
    EXPECT_EQ(400u, reply->status) << raw.data;
    EXPECT_EQ("close", testing::Lower(reply->Header("connection")));
    EXPECT_EQ("", reply->rest) << "a second response: the smuggled request was read";
    EXPECT_TRUE(raw.closed);
    auto doc = json::parse(reply->body, nullptr, false);
    EXPECT_EQ("bad_request", doc["error"]["code"]) << reply->body;
  }
  auto raw = SendRaw(port,
                     "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: "
                     "xchunked\r\n\r\n",
                     5s);
  auto reply = ParseFirst(raw.data);
  ASSERT_TRUE(reply);
  EXPECT_EQ(0u, json::parse(reply->body)["error"]["message"].get<std::string>().find(
                    "transfer-encoding: \"xchunked\" is not supported"))
      << reply->body;
  // Exactly chunked, in any case, is a body like any other.
  for (std::string coding : {"chunked", "Chunked", "CHUNKED"}) {
    raw = SendRaw(port,
                  "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: " + coding +
                      "\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                  5s);
    reply = ParseFirst(raw.data);
    ASSERT_TRUE(reply);
    EXPECT_EQ(200u, reply->status) << coding << ": " << raw.data;
  }
}

// The parser leaves a chunk-size line (its extensions) and the trailer unbounded; the read
// buffer bounds them, so a request that never ends either line is refused once the buffer is
// full (84 KiB here) rather than read into memory until the deadline.
TEST_F(HardeningTest, EndlessChunkLinesAreRefused) {
  ServerOptions options;
  options.read_timeout_ms = 60'000;  // well past the test's own deadline
  TestServer server(store_, options);
  const std::string head =
      "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  constexpr size_t kCap = 4 * 1024 * 1024;
  for (std::string start : {"1;", "1;name=", "0\r\n", "0\r\nX-Trailer: "}) {
    SCOPED_TRACE(start);
    auto raw = SendEndless(server.port(), head + start, kCap);
    EXPECT_TRUE(raw.closed) << "still reading after " << raw.written << " bytes";
    EXPECT_LT(raw.written, kCap);
    // The answer may be lost to the reset the close causes; when it arrives, it is a 413.
    if (!raw.data.empty()) {
      auto reply = ParseFirst(raw.data);
      ASSERT_TRUE(reply);
      EXPECT_EQ(413u, reply->status) << raw.data;
      EXPECT_EQ("body_too_large", json::parse(reply->body)["error"]["code"]) << reply->body;
    }
  }
  // A chunked body of many chunks, longer on the wire than the buffer, with extensions and a
  // trailer, is still fine.
  std::string body;
  for (int i = 0; i < 6000; ++i) body += "a;ext=" + std::to_string(i) + "\r\n0123456789\r\n";
  auto raw = SendRaw(server.port(),
                     head.substr(0, head.size() - 2) + "Connection: close\r\n\r\n" + body +
                         "0\r\nX-Trailer: " + std::string(2000, 't') + "\r\n\r\n",
                     5s);
  auto reply = ParseFirst(raw.data);
  ASSERT_TRUE(reply);
  EXPECT_EQ(200u, reply->status) << raw.data;
}

// One address may hold max_connections_per_client connections; slow requests from it neither
// take every connection nor last longer than the read deadline, and other addresses are served.
TEST_F(HardeningTest, OneClientCannotTakeEveryConnection) {
  ServerOptions options;
  options.max_connections_per_client = 3;
  options.read_timeout_ms = 2000;
  TestServer server(store_, options);
  uint16_t port = server.port();
  // Three slowloris connections: half a request line, then silence.
  net::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> slow;
  for (int i = 0; i < 3; ++i) {
    auto s = std::make_unique<tcp::socket>(io);
    s->connect({net::ip::make_address("127.0.0.1"), port});
    net::write(*s, net::buffer(std::string("GET /api/v1/hea")));
    slow.push_back(std::move(s));
  }
  auto start = std::chrono::steady_clock::now();
  // A fourth from the same address is refused at once, with Retry-After.
  RawResult raw;
  for (int i = 0; i < 20 && raw.data.find(" 503 ") == std::string::npos; ++i) {
    raw = SendRaw(port, "", 200ms);
  }
  auto refused = ParseFirst(raw.data);
  ASSERT_TRUE(refused);
  EXPECT_EQ(503u, refused->status);
  EXPECT_EQ("1", refused->Header("retry-after"));
  EXPECT_TRUE(raw.closed);
  EXPECT_NE(
      std::string::npos,
      json::parse(refused->body)["error"]["message"].get<std::string>().find("from your address"))
      << refused->body;
  // Another address is served meanwhile.
  auto other = SendRawFrom("127.0.0.2", port, Request("/api/v1/health", "127.0.0.1"));
  auto served = ParseFirst(other.data);
  ASSERT_TRUE(served);
  EXPECT_EQ(200u, served->status);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms) << "the test ran too slowly";
  // The slow ones are closed when the read deadline passes, not later.
  for (auto& s : slow) {
    s->non_blocking(false);
    char byte;
    boost::system::error_code ec;
    s->read_some(net::buffer(&byte, 1), ec);  // bounded by the server's 2 s deadline
    EXPECT_TRUE(ec) << "the server answered half a request line";
  }
  auto held = std::chrono::steady_clock::now() - start;
  EXPECT_GE(held, 1500ms);
  EXPECT_LT(held, 8s);
  // Then the address may connect again.
  unsigned status = 0;
  for (int i = 0; i < 50 && status != 200; ++i) {
    auto r = ParseFirst(SendRaw(port, Request("/api/v1/health", "127.0.0.1")).data);
    status = r ? r->status : 0;
    if (status != 200) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(200u, status);
  auto metrics = Get(port, "/metrics");
  EXPECT_NE(std::string::npos,
            metrics.body.find("stickmeter_http_client_connections_rejected_total"))
      << metrics.body.substr(0, 500);
}

}  // namespace
}  // namespace stickmeter::http
