// The peer service against a real HAProxy on loopback (Debian's 2.6, or the one named by
// STICKMETER_HAPROXY, e.g. 3.0): HAProxy connecting to us and us connecting to it, every key type,
// ACK resume points, TLS both ways, heartbeats, bad clients that must not disturb a real
// session, and 3.0's glitch counters.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "common/metrics.h"
#include "ingest/peer_service.h"
#include "tests/peers/peer_test_util.h"
#include "tests/support/haproxy.h"
#include "tests/support/process.h"
#include "tests/support/status_matchers.h"

namespace stickmeter::peers_test {
namespace {

using namespace std::chrono_literals;
using ingest::PeerService;
using ingest::PeerServiceOptions;
using testing::FreePort;
using testing::HaproxyNode;
using testing::HaproxyPreamble;
using testing::HttpRequest;
using testing::TempDir;

// HAProxy pushes within milliseconds; reconnects take ~5 s (its reconnect delay).
constexpr auto kArrival = 10s;
constexpr auto kReconnect = 15s;

PeerServiceOptions Options(const std::string& name, uint16_t port) {
  PeerServiceOptions o;
  o.local_name = name;
  o.listen_port = port;
  o.resync_interval_ms = 0;
  o.resync_at_month_end = false;
  o.backoff_min_ms = 100;
  o.backoff_max_ms = 1000;
  return o;
}

// A service on its own loop and sink.
struct Stickmeter {
  explicit Stickmeter(const PeerServiceOptions& options) {
    service = std::make_unique<PeerService>(threads.io(), options, sink);
    Status s = service->Start();
    EXPECT_OK(s);
  }
  std::optional<ingest::PeerStatus> Row(const std::string& direction,
                                        const std::string& name) const {
    for (const auto& p : service->Snapshot()) {
      if (p.direction == direction && p.name == name) return p;
    }
    return std::nullopt;
  }
  bool Connected(const std::string& direction, const std::string& name) const {
    auto row = Row(direction, name);
    return row && row->connected;
  }

  IoThreads threads;
  FakeSink sink;
  std::unique_ptr<PeerService> service;
};

int Get(uint16_t port, const std::string& host, const std::string& path,
        std::vector<std::string> headers = {}) {
  auto r = HttpRequest(port, "GET", path, headers, host);
  return r ? r->status : 0;
}

void Repeat(int n, const std::function<void()>& f) {
  for (int i = 0; i < n; ++i) f();
}

class PeerHaproxyTest : public ::testing::Test {
 protected:
  PeerHaproxyTest() : dir_("stickmeter-peers-haproxy") {}

  // Starts HAProxy `lb1` with `body` after the standard preamble; waits for `wait_port`.
  void StartHaproxy(const std::string& body, uint16_t wait_port) {
    haproxy_ = std::make_unique<HaproxyNode>(dir_.path(), "lb1",
                                             HaproxyPreamble(dir_.path(), "lb1") + body);
    std::string error;
    ASSERT_TRUE(haproxy_->Start(wait_port, &error)) << error;
  }

  TempDir dir_;
  std::unique_ptr<HaproxyNode> haproxy_;
};

// A peers section with lb1 (HAProxy itself) and stickmeter, one gpc0 table keyed by Host, and a
// frontend counting every request.
std::string GpcQuotaConfig(uint16_t bind, uint16_t us, uint16_t fe) {
  const std::string P = "127.0.0.1:";
  return "peers mesh\n    bind " + P + std::to_string(bind) +
         "\n    server lb1\n    server stickmeter " + P + std::to_string(us) +
         "\n    table quota type string len 32 size 1k expire 1h store gpc0\n\n"
         "frontend fe\n    bind " +
         P + std::to_string(fe) +
         "\n    http-request track-sc0 req.hdr(host) table mesh/quota\n"
         "    http-request sc-inc-gpc0(0)\n"
         "    http-request return status 200 content-type text/plain string \"ok\\n\"\n";
}

// HAProxy 3.0's glitch_cnt and glitch_rate (data types 25 and 26) reach the sink: malformed
// HTTP/2 requests (an upper-case header name) each count one glitch on the tracked connection.
TEST_F(PeerHaproxyTest, GlitchCountersOfHaproxy30) {
  if (testing::HaproxyVersion() < std::pair{3, 0}) {
    GTEST_SKIP() << "glitch counters need HAProxy 3.0 (STICKMETER_HAPROXY)";
  }
  const uint16_t us = FreePort(), bind = FreePort(), fe = FreePort();
  Stickmeter sm(Options("stickmeter", us));
  const std::string P = "127.0.0.1:";
  StartHaproxy("peers mesh\n    bind " + P + std::to_string(bind) +
                   "\n    server lb1\n    server stickmeter " + P + std::to_string(us) +
                   "\n    table glitches type string len 32 size 1k expire 1h"
                   " store glitch_cnt,glitch_rate(10s),http_req_cnt\n\n"
                   "frontend h2\n    bind " +
                   P + std::to_string(fe) +
                   " proto h2\n"
                   "    tcp-request session track-sc0 str(h2-client) table mesh/glitches\n"
                   "    http-request return status 200 content-type text/plain string \"ok\\n\"\n",
               fe);
  ASSERT_TRUE(WaitFor([&] { return sm.Connected("in", "lb1"); }, kArrival));

  // Preface, empty SETTINGS, then HEADERS (END_STREAM|END_HEADERS) on stream 1: GET http /
  // :authority a, and "Foo: x", which HTTP/2 forbids.
  static constexpr char kMalformed[] =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
      "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
      "\x00\x00\x0c\x01\x05\x00\x00\x00\x01\x82\x86\x84\x41\x01"
      "a\x00\x03"
      "Foo\x01x";
  for (int i = 0; i < 2; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(fe);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(0, ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    ASSERT_EQ(static_cast<ssize_t>(sizeof kMalformed - 1),
              ::send(fd, kMalformed, sizeof kMalformed - 1, MSG_NOSIGNAL));
    char buf[512];
    (void)::recv(fd, buf, sizeof buf, 0);  // HAProxy's SETTINGS/RST_STREAM: it has read it all
    ::close(fd);
  }
  // How many glitches a connection counts depends on how it ends (HAProxy may count the
  // abrupt close too), so the sink must end up with what HAProxy itself shows: at least 2.
  auto haproxy_glitches = [&]() -> uint64_t {
    const std::string shown = haproxy_->AdminCommand("show table mesh/glitches");
    const size_t at = shown.find(" glitch_cnt=");
    return at == std::string::npos ? 0 : std::stoull(shown.substr(at + 12));
  };
  FakeSink& s = sm.sink;
  ASSERT_TRUE(WaitFor(
      [&] {
        const uint64_t shown = haproxy_glitches();
        return shown >= 2 && s.Last("/glitches", "h2-client", "glitch_cnt") == shown;
      },
      kArrival))
      << haproxy_->AdminCommand("show table mesh/glitches");
  EXPECT_TRUE(s.Last("/glitches", "h2-client", "glitch_rate"));
}

TEST_F(PeerHaproxyTest, HaproxyConnectsToUsWithEveryKeyType) {
  const uint16_t us = FreePort(), bind = FreePort(), fe = FreePort(), origin = FreePort();
  Stickmeter sm(Options("stickmeter", us));
  const std::string P = "127.0.0.1:";
  StartHaproxy(
      "peers mesh\n"
      "    bind " +
          P + std::to_string(bind) +
          "\n"
          "    server lb1\n"
          "    server stickmeter " +
          P + std::to_string(us) +
          "\n"
          "    table quota type string len 32 size 1k expire 1h store "
          "gpc0,gpc1,http_req_cnt,bytes_out_cnt,http_req_rate(10s)\n"
          "    table clients type ip size 1k expire 1h store conn_cnt,http_req_cnt,conn_rate(10s)\n"
          "    table v6 type ipv6 size 1k expire 1h store http_req_cnt\n"
          "    table ints type integer size 1k expire 1h store gpc(2),http_req_cnt\n"
          "    table bins type binary len 8 size 1k expire 1h store http_req_cnt\n\n"
          "frontend fe\n"
          "    bind " +
          P + std::to_string(fe) +
          "\n"
          "    tcp-request connection track-sc1 src table mesh/clients\n"
          "    http-request track-sc0 req.hdr(host) table mesh/quota\n"
          "    http-request sc-inc-gpc0(0) if { path_beg /billable }\n"
          "    http-request sc-inc-gpc1(0) if { path_beg /special }\n"
          "    http-request track-sc2 req.hdr_ip(x-v6) table mesh/v6 if { req.hdr(x-v6) -m found "
          "}\n"
          "    http-request track-sc2 req.hdr_val(x-int) table mesh/ints if { req.hdr(x-int) -m "
          "found }\n"
          "    http-request sc-inc-gpc(1,2) if { req.hdr(x-int) -m found }\n"
          "    http-request track-sc2 req.hdr(x-bin) table mesh/bins if { req.hdr(x-bin) -m found "
          "}\n"
          "    http-request return status 200 content-type text/plain string \"ok\\n\" "
          "unless { path_beg /sticky }\n"
          "    use_backend be\n\n"
          "backend be\n"
          "    balance roundrobin\n"
          "    stick-table type string len 32 size 1k expire 1h peers mesh store "
          "server_key,http_req_cnt\n"
          "    stick on req.hdr(x-user)\n"
          "    http-request track-sc2 req.hdr(x-user)\n"
          "    server s1 " +
          P + std::to_string(origin) +
          "\n"
          "    server s2 " +
          P + std::to_string(origin) +
          "\n\n"
          "frontend origin\n"
          "    bind " +
          P + std::to_string(origin) +
          "\n"
          "    http-request return status 200 content-type text/plain string \"origin\\n\"\n",
      bind);
  ASSERT_TRUE(WaitFor([&] { return sm.Connected("in", "lb1"); }, kArrival));

  Repeat(3, [&] { EXPECT_EQ(200, Get(fe, "acme", "/billable")); });
  Repeat(2, [&] { EXPECT_EQ(200, Get(fe, "acme", "/free")); });
  Repeat(2, [&] { EXPECT_EQ(200, Get(fe, "bob", "/special")); });
  Repeat(2, [&] { EXPECT_EQ(200, Get(fe, "v6", "/", {"X-V6: 2001:db8::1"})); });
  Repeat(3, [&] { EXPECT_EQ(200, Get(fe, "int", "/", {"X-Int: 42"})); });
  EXPECT_EQ(200, Get(fe, "bin", "/", {"X-Bin: ab"}));
  Repeat(2, [&] { EXPECT_EQ(200, Get(fe, "user", "/sticky", {"X-User: u1"})); });
  const uint64_t total_requests = 3 + 2 + 2 + 2 + 3 + 1 + 2;

  FakeSink& s = sm.sink;
  auto settled = [&] {
    return s.Last("/quota", "acme", "http_req_cnt") == 5u &&
           s.Last("/quota", "bob", "http_req_cnt") == 2u &&
           s.Last("/clients", "127.0.0.1", "conn_cnt") == total_requests &&
           s.Last("/v6", "2001:db8::1", "http_req_cnt") == 2u &&
           s.Last("/ints", "42", "http_req_cnt") == 3u &&
           s.Last("/bins", "6162000000000000", "http_req_cnt") == 1u &&
           s.Last("be", "u1", "http_req_cnt") == 2u;
  };
  ASSERT_TRUE(WaitFor(settled, kArrival)) << haproxy_->AdminCommand("show table mesh/quota");
  // HAProxy's own view, through its admin socket, is what arrived.
  const std::string shown = haproxy_->AdminCommand("show table mesh/quota");
  EXPECT_NE(std::string::npos, shown.find("key=acme ")) << shown;
  EXPECT_NE(std::string::npos, shown.find(" http_req_cnt=5 ")) << shown;

  EXPECT_EQ(3u, s.Last("/quota", "acme", "gpc0"));
  EXPECT_EQ(0u, s.Last("/quota", "acme", "gpc1"));
  EXPECT_EQ(2u, s.Last("/quota", "bob", "gpc1"));
  EXPECT_EQ(5u * 74, s.Last("/quota", "acme", "bytes_out_cnt"));  // HTX bytes per answer
  auto rate = s.Last("/quota", "acme", "http_req_rate");
  ASSERT_TRUE(rate);
  EXPECT_GE(*rate, 1u);
  EXPECT_LE(*rate, 5u);
  EXPECT_EQ(total_requests, s.Last("/clients", "127.0.0.1", "http_req_cnt"));
  EXPECT_TRUE(s.Last("/clients", "127.0.0.1", "conn_rate"));
  EXPECT_EQ(3u, s.Last("/ints", "42", "gpc.1"));
  EXPECT_EQ(0u, s.Last("/ints", "42", "gpc.0"));
  std::string server = s.LastServerKey("be", "u1");
  EXPECT_TRUE(server == "s1" || server == "s2") << server;
  EXPECT_EQ("string", s.KeyType("/quota"));
  EXPECT_EQ("ipv4", s.KeyType("/clients"));
  EXPECT_EQ("ipv6", s.KeyType("/v6"));
  EXPECT_EQ("integer", s.KeyType("/ints"));
  EXPECT_EQ("binary", s.KeyType("/bins"));
  for (const auto& b : s.Batches()) EXPECT_EQ("lb1", b.source);

  auto row = sm.Row("in", "lb1");
  ASSERT_TRUE(row);
  EXPECT_GE(row->updates, 7u);
  EXPECT_GT(row->last_message_ms, 0);
}

// HAProxy resumes after the last update we acknowledged, and re-sends what we did not.
TEST_F(PeerHaproxyTest, ReconnectResumesAfterTheLastAck) {
  const uint16_t us = FreePort(), bind = FreePort(), fe = FreePort();
  const std::string P = "127.0.0.1:";
  StartHaproxy(GpcQuotaConfig(bind, us, fe), bind);
  const std::vector<std::string> acked = {"k1", "k2", "k3", "k4", "k5"};
  {
    Stickmeter first(Options("stickmeter", us));
    ASSERT_TRUE(WaitFor([&] { return first.Connected("in", "lb1"); }, kReconnect));
    for (const auto& k : acked) EXPECT_EQ(200, Get(fe, k, "/"));
    ASSERT_TRUE(WaitFor([&] { return first.sink.Last("/quota", "k5", "gpc0") == 1u; }, kArrival));
    std::this_thread::sleep_for(300ms);  // let the ACKs reach HAProxy
  }
  {
    // Nothing acknowledged on this connection: the sink never completes.
    Stickmeter second(Options("stickmeter", us));
    second.sink.set_mode(FakeSink::Mode::kHold);
    ASSERT_TRUE(WaitFor([&] { return second.Connected("in", "lb1"); }, kReconnect));
    EXPECT_EQ(200, Get(fe, "k6", "/"));
    ASSERT_TRUE(WaitFor([&] { return second.sink.submitted() >= 1; }, kArrival));
    std::this_thread::sleep_for(300ms);
    // Only k6 came: k1..k5 were acknowledged before.
    EXPECT_GE(second.sink.CountSubmitted("/quota", "k6"), 1u);
    for (const auto& k : acked) EXPECT_EQ(0u, second.sink.CountSubmitted("/quota", k)) << k;
  }
  Stickmeter third(Options("stickmeter", us));
  ASSERT_TRUE(WaitFor([&] { return third.Connected("in", "lb1"); }, kReconnect));
  // k6 comes again without a new request: it was never acknowledged.
  ASSERT_TRUE(WaitFor([&] { return third.sink.Last("/quota", "k6", "gpc0") == 1u; }, kArrival));
  std::this_thread::sleep_for(300ms);
  for (const auto& k : acked) EXPECT_EQ(0u, third.sink.Count("/quota", k)) << k;
}

// We dial HAProxy's peers bind, ask for a resync, get the entries it already holds (timed
// updates), confirm, then receive new updates as they happen.
TEST_F(PeerHaproxyTest, WeConnectToHaproxyAndResync) {
  const uint16_t bind = FreePort(), fe = FreePort(), nobody = FreePort();
  const std::string P = "127.0.0.1:";
  StartHaproxy(
      "peers mesh\n"
      "    bind " +
          P + std::to_string(bind) +
          "\n"
          "    server lb1\n"
          "    server sm " +
          P + std::to_string(nobody) +
          "\n"
          "    table quota type string len 32 size 1k expire 1h store gpc0,http_req_cnt\n\n"
          "frontend fe\n"
          "    bind " +
          P + std::to_string(fe) +
          "\n"
          "    http-request track-sc0 req.hdr(host) table mesh/quota\n"
          "    http-request sc-inc-gpc0(0)\n"
          "    http-request return status 200 content-type text/plain string \"ok\\n\"\n",
      bind);
  Repeat(3, [&] { EXPECT_EQ(200, Get(fe, "before", "/")); });

  Counter& resyncs =
      MetricsRegistry::Global().GetCounter("stickmeter_peer_resyncs_requested_total", "");
  const uint64_t resyncs_before = resyncs.Value();
  auto options = Options("sm", 0);
  options.listen = false;
  options.connect.push_back({"lb1", "127.0.0.1", bind});
  Stickmeter sm(options);
  ASSERT_TRUE(WaitFor([&] { return sm.sink.Last("/quota", "before", "gpc0") == 3u; }, kReconnect));
  EXPECT_GE(resyncs.Value(), resyncs_before + 1);
  Repeat(2, [&] { EXPECT_EQ(200, Get(fe, "after", "/")); });
  ASSERT_TRUE(WaitFor([&] { return sm.sink.Last("/quota", "after", "gpc0") == 2u; }, kArrival));
  EXPECT_EQ(3u, sm.sink.Last("/quota", "before", "http_req_cnt"));
  auto row = sm.Row("out", "lb1");
  ASSERT_TRUE(row);
  EXPECT_TRUE(row->connected);
  EXPECT_EQ(P + std::to_string(bind), row->address);
}

// A soft reload hands the counts over and asks us nothing; a full restart asks us for a resync,
// which marks the source restarted (docs/counting.md, rule 1) before its first new value.
TEST_F(PeerHaproxyTest, ReloadKeepsCountsAndRestartIsFlagged) {
  const uint16_t us = FreePort(), bind = FreePort(), fe = FreePort();
  const std::string P = "127.0.0.1:";
  Stickmeter sm(Options("stickmeter", us));
  StartHaproxy(GpcQuotaConfig(bind, us, fe), bind);
  auto restarts = [&] {
    size_t n = 0;
    for (const auto& b : sm.sink.Batches()) n += b.source_restarted;
    return n;
  };
  Repeat(3, [&] { EXPECT_EQ(200, Get(fe, "acme", "/")); });
  ASSERT_TRUE(WaitFor([&] { return sm.sink.Last("/quota", "acme", "gpc0") == 3u; }, kArrival));
  const size_t restarts_at_start = restarts();  // a fresh process asks once (or not at all
  EXPECT_LE(restarts_at_start, 1u);             // when the request raced our first read)

  std::string error;
  ASSERT_TRUE(haproxy_->Reload(bind, &error)) << error;
  ASSERT_TRUE(WaitFor([&] { return sm.Connected("in", "lb1"); }, kReconnect));
  EXPECT_EQ(200, Get(fe, "acme", "/"));
  ASSERT_TRUE(WaitFor([&] { return sm.sink.Last("/quota", "acme", "gpc0") == 4u; }, kArrival))
      << "the reloaded process continues from the handed-over count";
  EXPECT_EQ(restarts_at_start, restarts());

  haproxy_->Kill();
  ASSERT_TRUE(haproxy_->Start(bind, &error)) << error;
  ASSERT_TRUE(WaitFor([&] { return restarts() == restarts_at_start + 1; }, kReconnect));
  EXPECT_EQ(200, Get(fe, "acme", "/"));
  ASSERT_TRUE(WaitFor([&] { return sm.sink.Last("/quota", "acme", "gpc0") == 1u; }, kArrival));
  // The flag comes with or before the restarted process's first value (it applies before the
  // entries of its batch).
  auto batches = sm.sink.Batches();
  size_t flag = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (batches[i].source_restarted) flag = i;
  }
  ASSERT_GT(flag, 0u);
  bool new_value_after_flag = false;
  for (size_t i = flag; i < batches.size(); ++i) {
    for (const auto& t : batches[i].tables) {
      for (const auto& e : t.entries) {
        for (const auto& v : e.values) new_value_after_flag |= v.metric == "gpc0" && v.value == 1;
      }
    }
  }
  EXPECT_TRUE(new_value_after_flag);
}

// Several HAProxy nodes feed one service at once, each as its own source.
TEST_F(PeerHaproxyTest, SeveralNodesAtOnce) {
  const uint16_t us = FreePort();
  Stickmeter sm(Options("stickmeter", us));
  const std::string P = "127.0.0.1:";
  std::vector<std::unique_ptr<HaproxyNode>> nodes;
  std::vector<uint16_t> frontends;
  for (const std::string name : {"lb1", "lb2", "lb3"}) {
    const uint16_t bind = FreePort(), fe = FreePort();
    auto dir = dir_.path() / name;
    nodes.push_back(std::make_unique<HaproxyNode>(
        dir, name,
        HaproxyPreamble(dir, name) +
            "peers mesh\n"
            "    bind " +
            P + std::to_string(bind) +
            "\n"
            "    server " +
            name +
            "\n"
            "    server stickmeter " +
            P + std::to_string(us) +
            "\n"
            "    table quota type string len 32 size 1k expire 1h store gpc0\n\n"
            "frontend fe\n"
            "    bind " +
            P + std::to_string(fe) +
            "\n"
            "    http-request track-sc0 req.hdr(host) table mesh/quota\n"
            "    http-request sc-inc-gpc0(0)\n"
            "    http-request return status 200 content-type text/plain string \"ok\\n\"\n"));
    std::string error;
    ASSERT_TRUE(nodes.back()->Start(bind, &error)) << error;
    frontends.push_back(fe);
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return sm.Connected("in", "lb1") && sm.Connected("in", "lb2") && sm.Connected("in", "lb3");
      },
      kArrival));
  for (size_t i = 0; i < frontends.size(); ++i) {
    Repeat(static_cast<int>(i) + 1, [&] { EXPECT_EQ(200, Get(frontends[i], "shared", "/")); });
  }
  EXPECT_TRUE(WaitFor(
      [&] {
        return sm.sink.Last("/quota", "shared", "gpc0", "lb1") == 1u &&
               sm.sink.Last("/quota", "shared", "gpc0", "lb2") == 2u &&
               sm.sink.Last("/quota", "shared", "gpc0", "lb3") == 3u;
      },
      kArrival));
  EXPECT_EQ(3u, sm.service->Snapshot().size());
}

// One HAProxy, two peers sections: it dials our TLS listener, and we dial its TLS bind; both
// sides verify the other's certificate. A client certificate from another CA is refused.
TEST_F(PeerHaproxyTest, MutualTlsBothDirections) {
  ASSERT_TRUE(MakeTestCertificates(dir_.path().string()));
  auto F = [&](const std::string& name) { return (dir_.path() / name).string(); };
  const uint16_t us = FreePort(), bind_in = FreePort(), bind_out = FreePort(), fe = FreePort(),
                 nobody = FreePort();
  const std::string P = "127.0.0.1:";
  const std::string tls =
      " ssl crt " + F("server.pem") + " ca-file " + F("ca.pem") + " verify required";
  const std::string client_tls =
      " ssl crt " + F("client.pem") + " ca-file " + F("ca.pem") + " verify required";
  StartHaproxy(
      "peers tin\n"
      "    bind " +
          P + std::to_string(bind_in) + tls +
          "\n"
          "    server lb1\n"
          "    server stickmeter " +
          P + std::to_string(us) + client_tls +
          "\n"
          "    table qa type string len 32 size 1k expire 1h store gpc0\n\n"
          "peers tout\n"
          "    bind " +
          P + std::to_string(bind_out) + tls +
          "\n"
          "    server lb1\n"
          "    server sm2 " +
          P + std::to_string(nobody) + client_tls +
          "\n"
          "    table qb type string len 32 size 1k expire 1h store gpc0\n\n"
          "frontend fe\n"
          "    bind " +
          P + std::to_string(fe) +
          "\n"
          "    http-request track-sc0 req.hdr(host) table tin/qa\n"
          "    http-request track-sc1 req.hdr(host) table tout/qb\n"
          "    http-request sc-inc-gpc0(0)\n"
          "    http-request sc-inc-gpc0(1)\n"
          "    http-request return status 200 content-type text/plain string \"ok\\n\"\n",
      fe);

  auto listen = Options("stickmeter", us);
  listen.listen_tls = {true, F("server.pem"), "", F("ca.pem"), true, ""};
  Stickmeter in(listen);

  auto dial = Options("sm2", 0);
  dial.listen = false;
  dial.connect.push_back({"lb1", "127.0.0.1", bind_out});
  dial.connect_tls = {true, F("client.pem"), "", F("ca.pem"), true, "stickmeter-test"};
  Stickmeter out(dial);

  auto intruder_options = dial;
  intruder_options.connect_tls.cert_file = F("other.pem");
  Stickmeter intruder(intruder_options);

  ASSERT_TRUE(WaitFor([&] { return in.Connected("in", "lb1") && out.Connected("out", "lb1"); },
                      kReconnect));
  Repeat(2, [&] { EXPECT_EQ(200, Get(fe, "tls", "/")); });
  EXPECT_TRUE(WaitFor([&] { return in.sink.Last("/qa", "tls", "gpc0") == 2u; }, kArrival));
  EXPECT_TRUE(WaitFor([&] { return out.sink.Last("/qb", "tls", "gpc0") == 2u; }, kArrival));

  auto refused = intruder.Row("out", "lb1");
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->connected);
  EXPECT_FALSE(refused->last_error.empty());
  EXPECT_EQ(0u, intruder.sink.submitted());
}

// Our heartbeats keep an idle HAProxy session up past its 5 s timeout (and its heartbeats keep
// us from dropping it), while bad clients on the same listener are closed one by one.
TEST_F(PeerHaproxyTest, IdleSessionSurvivesAndBadClientsDoNotDisturbIt) {
  const uint16_t us = FreePort(), bind = FreePort(), fe = FreePort();
  const std::string P = "127.0.0.1:";
  Stickmeter sm(Options("stickmeter", us));
  StartHaproxy(GpcQuotaConfig(bind, us, fe), bind);
  ASSERT_TRUE(WaitFor([&] { return sm.Connected("in", "lb1"); }, kArrival));
  const int64_t since = sm.Row("in", "lb1")->since_ms;
  EXPECT_EQ(200, Get(fe, "first", "/"));
  ASSERT_TRUE(WaitFor([&] { return sm.sink.Last("/quota", "first", "gpc0") == 1u; }, kArrival));

  {
    RawConn garbage;  // past the hello, then noise
    ASSERT_TRUE(garbage.Connect(us));
    ASSERT_EQ("200", garbage.Hello("stickmeter", "noise"));
    garbage.Send(std::string("\xff\xff\xff\xff garbage", 13));
    EXPECT_TRUE(garbage.WaitClosed(3s));
  }
  {
    RawConn huge;
    ASSERT_TRUE(huge.Connect(us));
    ASSERT_EQ("200", huge.Hello("stickmeter", "huge"));
    std::string msg("\x0a\x80", 2);
    ingest::AppendVarint(msg, 4ull << 30);
    huge.Send(msg);
    EXPECT_TRUE(huge.WaitClosed(3s));
  }
  {
    RawConn flood;  // a hello that never ends
    ASSERT_TRUE(flood.Connect(us));
    flood.Send(std::string(256 * 1024, 'x'));
    EXPECT_TRUE(flood.WaitClosed(3s));
  }

  std::this_thread::sleep_for(11s);  // > 2 x HAProxy's 5 s timeout, > our 10 s idle limit
  auto row = sm.Row("in", "lb1");
  ASSERT_TRUE(row);
  EXPECT_TRUE(row->connected);
  EXPECT_EQ(since, row->since_ms) << "the session was re-established: " << row->last_error;
  EXPECT_EQ(200, Get(fe, "second", "/"));
  EXPECT_TRUE(WaitFor([&] { return sm.sink.Last("/quota", "second", "gpc0") == 1u; }, 2s));
  EXPECT_EQ(since, sm.Row("in", "lb1")->since_ms);
}

}  // namespace
}  // namespace stickmeter::peers_test
