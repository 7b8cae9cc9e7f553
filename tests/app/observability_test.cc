// What an operator watching the real `stickmeter serve` on loopback sees: every metric the
// docs name is in /metrics from the start (so the first event is an increase, not a new
// series), with the build's version and per-peer gauges for the configured peers only; HAProxy
// nodes refused at their hello (a wrong peer name, a name not allowed) are listed with their
// reason in /api/v1/peers, never counted as connected, and the list stays bounded.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace stickmeter::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Loopback(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// Sends a peers-protocol hello as HAProxy node `sender` calling us `us`; returns the status line
// stickmeter answers ("" when none came within 5 s).
std::string PeerHello(uint16_t port, const std::string& us, const std::string& sender) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string line;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string hello = "HAProxyS 2.1\n" + us + "\n" + sender + " 4242 1\n";
    if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(hello.size())) {
      pollfd p{fd, POLLIN, 0};
      char c;
      while (::poll(&p, 1, 5000) == 1 && ::recv(fd, &c, 1, 0) == 1 && c != '\n') line += c;
    }
  }
  ::close(fd);
  return line;
}

// Every `stickmeter_...` name in docs/*.md that is a metric (not a ClickHouse table name).
std::set<std::string> DocumentedMetrics() {
  std::set<std::string> names;
  const std::regex name_re("stickmeter_[a-z0-9_]+");
  for (const auto& entry : fs::directory_iterator(fs::path(STICKMETER_SOURCE_DIR) / "docs")) {
    if (entry.path().extension() != ".md") continue;
    const std::string text = ReadFile(entry.path());
    for (std::sregex_iterator it(text.begin(), text.end(), name_re), end; it != end; ++it) {
      names.insert(it->str());
    }
  }
  names.erase("stickmeter_events");  // the ClickHouse sink's default table (docs/clickhouse.md)
  names.erase("stickmeter_events_local");
  return names;
}

class ObservabilityTest : public ::testing::Test {
 protected:
  // Starts `serve` with --allow-peer lb1 and lb2, teaching /quota and shipping to a ClickHouse
  // that is not there, so that the metrics of every component are registered.
  void SetUp() override {
    http_port_ = FreePort();
    peers_port_ = FreePort();
    server_ = std::make_unique<Process>(
        STICKMETER_BINARY,
        std::vector<std::string>{"serve", "--data", (dir_.path() / "data").string(), "--http",
                                 Loopback(http_port_), "--peers-listen", Loopback(peers_port_),
                                 "--allow-peer", "lb1", "--allow-peer", "lb2", "--quota", "/quota",
                                 "--sink-clickhouse", "http://" + Loopback(FreePort()) + "/"},
        dir_.path() / "serve.log");
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = HttpRequest(http_port_, "GET", "/api/v1/health");
          return r && r->status == 200;
        },
        std::chrono::seconds(15)))
        << ReadFile(dir_.path() / "serve.log");
  }
  void TearDown() override {
    server_->Signal(SIGTERM);
    EXPECT_EQ(0, server_->Wait()) << ReadFile(dir_.path() / "serve.log");
  }

  std::string Metrics() {
    auto r = HttpRequest(http_port_, "GET", "/metrics");
    return r && r->status == 200 ? r->body : "";
  }
  json Peers() {
    auto r = HttpRequest(http_port_, "GET", "/api/v1/peers");
    return r && r->status == 200 ? json::parse(r->body) : json();
  }

  TempDir dir_{"stickmeter-observability"};
  uint16_t http_port_ = 0, peers_port_ = 0;
  std::unique_ptr<Process> server_;
};

TEST_F(ObservabilityTest, EveryDocumentedMetricExistsFromTheStart) {
  const std::string metrics = Metrics();
  ASSERT_FALSE(metrics.empty());
  std::vector<std::string> missing;
  for (const std::string& name : DocumentedMetrics()) {
    // Its labels are (peer, table): there is nothing to show before the first warning.
    if (name == "stickmeter_shared_key_warnings_total") continue;
    if (metrics.find("# TYPE " + name + " ") == std::string::npos) missing.push_back(name);
  }
  EXPECT_TRUE(missing.empty()) << "documented but not in /metrics at start: "
                               << json(missing).dump() << "\n"
                               << metrics;
  // The alerts of docs/operations.md start from 0.
  EXPECT_NE(std::string::npos,
            metrics.find("\nstickmeter_peer_protocol_errors_total{reason=\"malformed\"} 0\n"));
  EXPECT_NE(std::string::npos, metrics.find("\nstickmeter_peers_connected 0\n"));
  EXPECT_NE(
      std::string::npos,
      metrics.find("\nstickmeter_peer_connections_total{direction=\"in\",status=\"504\"} 0\n"))
      << metrics;
  EXPECT_NE(std::string::npos,
            metrics.find("\nstickmeter_build_info{version=\"" STICKMETER_VERSION "\"} 1\n"))
      << metrics;
  for (const std::string peer : {"lb1", "lb2"}) {
    EXPECT_NE(std::string::npos,
              metrics.find("\nstickmeter_peer_connected{peer=\"" + peer + "\"} 0\n"));
    EXPECT_NE(std::string::npos,
              metrics.find("\nstickmeter_peer_last_update_seconds{peer=\"" + peer + "\"} 0\n"));
  }
}

TEST_F(ObservabilityTest, RefusedPeersAreListedWithTheirReasonAndNotAsConnected) {
  EXPECT_EQ("504", PeerHello(peers_port_, "stickmeter", "lb3"));      // not in --allow-peer
  EXPECT_EQ("503", PeerHello(peers_port_, "stickmeterr", "lb1"));     // calls us by another name
  EXPECT_EQ("504", PeerHello(peers_port_, "stickmeter", "lb3\x1b"));  // not a peer name
  json peers;
  ASSERT_TRUE(Eventually(
      [&] {
        peers = Peers();
        return peers.is_object() && peers["refused"].size() == 3;
      },
      std::chrono::seconds(5)))
      << peers.dump();
  for (const auto& p : peers["peers"]) EXPECT_FALSE(p["connected"].get<bool>()) << p.dump();
  std::map<std::string, std::string> reasons;
  for (const auto& r : peers["refused"]) {
    EXPECT_EQ("127.0.0.1", r["address"]);
    EXPECT_EQ(1, r["count"]);
    EXPECT_TRUE(r["last"].is_string());
    reasons[r["name"]] = r["reason"];
  }
  EXPECT_EQ("hello refused with 504: peer name not in --allow-peer", reasons["lb3"]);
  EXPECT_EQ("hello refused with 503: it calls us 'stickmeterr', we are 'stickmeter'",
            reasons["lb1"]);
  EXPECT_EQ(1u, reasons.count("lb3\\x1b")) << peers.dump();  // escaped as in the log

  const std::string metrics = Metrics();
  EXPECT_NE(std::string::npos, metrics.find("\nstickmeter_peer_connected{peer=\"lb1\"} 0\n"));
  EXPECT_EQ(std::string::npos, metrics.find("peer=\"lb3")) << metrics;

  // Made-up names do not grow the list past its bound.
  for (int i = 0; i < 40; ++i) PeerHello(peers_port_, "stickmeter", "x" + std::to_string(i));
  ASSERT_TRUE(Eventually(
      [&] {
        peers = Peers();
        return peers.is_object() && peers["refused"].size() == 32 &&
               peers["refused"][0]["name"] == "x39";
      },
      std::chrono::seconds(5)))
      << peers.dump();
}

}  // namespace
}  // namespace stickmeter::testing
