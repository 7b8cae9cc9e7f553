// The ClickHouse sink against a real ClickHouse (Debian's clickhouse-server, started here on
// loopback ports with a temporary configuration and data directory) and a real HAProxy feeding
// a real stickmeter: the billing totals in ClickHouse equal stickmeter's usage for every key
// after a kill -9 of stickmeter while shipping, a ClickHouse restart while shipping, and
// enabling the sink on a store that already has events; ClickHouse unreachable at start only
// delays shipping; a malformed URL exits at start with one line.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/sink/clickhouse_server.h"
#include "tests/support/haproxy.h"
#include "tests/support/process.h"

namespace stickmeter::testing {
namespace {

namespace fs = std::filesystem;

constexpr auto kConverge = std::chrono::seconds(30);

std::string Loopback(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

class ClickHouseSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kClickHouseServer)) {
      GTEST_SKIP() << kClickHouseServer << " is not installed (scripts/setup.sh --test)";
    }
    peers_port_ = FreePort();
    http_port_ = FreePort();
    haproxy_http_ = FreePort();
    haproxy_peers_ = FreePort();
    clickhouse_ = std::make_unique<ClickHouse>(dir_.path() / "clickhouse");
    WriteFile(dir_.path() / "password", std::string(kClickHousePassword) + "\n");
  }

  void TearDown() override {
    StopTraffic();
    if (stickmeter_) stickmeter_->Signal(SIGKILL);
    if (clickhouse_) clickhouse_->Kill();
  }

  std::string SinkUrl() const {
    return "http://127.0.0.1:" + std::to_string(clickhouse_->port()) + "/?database=default";
  }

  void StartStickmeter(bool sink, const std::string& url = "",
                       const std::vector<std::string>& more = {}) {
    std::vector<std::string> args{"serve",
                                  "--data",
                                  (dir_.path() / "data").string(),
                                  "--name",
                                  "sm-test",
                                  "--peers-listen",
                                  Loopback(peers_port_),
                                  "--http",
                                  Loopback(http_port_)};
    if (sink) {
      args.insert(args.end(),
                  {"--sink-clickhouse", url.empty() ? SinkUrl() : url,
                   "--sink-clickhouse-password-file", (dir_.path() / "password").string()});
    }
    args.insert(args.end(), more.begin(), more.end());
    stickmeter_ = std::make_unique<Process>(STICKMETER_BINARY, args, dir_.path() / "sm.log");
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = HttpRequest(http_port_, "GET", "/api/v1/health");
          return r && r->status == 200;
        },
        std::chrono::seconds(20)))
        << StickmeterLog();
  }

  std::string StickmeterLog() { return ReadFile(dir_.path() / "sm.log"); }

  void StartHaproxy() {
    const fs::path dir = dir_.path() / "lb1";
    haproxy_ = std::make_unique<HaproxyNode>(
        dir, "lb1",
        BillingNodeConfig(dir, "lb1", haproxy_peers_, "sm-test", peers_port_, haproxy_http_));
    std::string error;
    ASSERT_TRUE(haproxy_->Start(haproxy_http_, &error)) << error;
  }

  // Sends requests for 12 keys in a loop until StopTraffic.
  void StartTraffic() {
    stop_traffic_ = false;
    traffic_ = std::thread([this] {
      for (int round = 0; !stop_traffic_; ++round) {
        for (int k = 0; k < 12 && !stop_traffic_; ++k) {
          SendRequests(haproxy_http_, "customer" + std::to_string(k) + ".example", "/", 1 + k % 3);
        }
      }
    });
  }
  void StopTraffic() {
    stop_traffic_ = true;
    if (traffic_.joinable()) traffic_.join();
  }
  void SendBurst(int rounds) {
    for (int round = 0; round < rounds; ++round) {
      for (int k = 0; k < 12; ++k) {
        SendRequests(haproxy_http_, "customer" + std::to_string(k) + ".example", "/", 2);
      }
    }
  }

  Totals Usage(int64_t from = 0, int64_t to = 4102444800000) {
    return StickmeterUsage(http_port_, from, to);
  }

  // Waits until ClickHouse's billing totals equal stickmeter's usage (and are not empty).
  void ExpectSameTotals() {
    Totals usage, billed;
    const bool same = Eventually(
        [&] {
          usage = Usage();
          billed = clickhouse_->Billing().value_or(Totals{});
          return !usage.empty() && usage == billed;
        },
        kConverge);
    EXPECT_TRUE(same) << "usage and ClickHouse differ\n" << StickmeterLog();
    for (const auto& [key, n] : usage) EXPECT_EQ(n, billed[key]) << key;
    EXPECT_EQ(usage.size(), billed.size());
    // Also over two ranges split halfway between the first and the last event.
    const std::string span = clickhouse_->Query(
        "SELECT min(ts_ms), max(ts_ms) FROM default.stickmeter_events FORMAT TabSeparated");
    std::istringstream in(span);
    int64_t lo = 0, hi = 0;
    ASSERT_TRUE(in >> lo >> hi) << span;
    const int64_t mid = lo + (hi - lo) / 2 + 1;
    auto nonzero = [](Totals t) {
      std::erase_if(t, [](const auto& kv) { return kv.second == 0; });
      return t;
    };
    for (auto [from, to] : {std::pair<int64_t, int64_t>{0, mid}, {mid, hi + 1}}) {
      EXPECT_EQ(
          nonzero(Usage(from, to)),
          nonzero(
              clickhouse_->Billing("default.stickmeter_events", "", from, to).value_or(Totals{})))
          << "[" << from << ", " << to << ")";
    }
  }

  uint64_t ClickHouseRows() {
    std::string n = clickhouse_->Query("SELECT count() FROM default.stickmeter_events");
    return n.empty() ? 0 : std::stoull(n);
  }

  TempDir dir_{"stickmeter-clickhouse-test"};
  uint16_t peers_port_ = 0, http_port_ = 0, haproxy_http_ = 0, haproxy_peers_ = 0;
  std::unique_ptr<ClickHouse> clickhouse_;
  std::unique_ptr<Process> stickmeter_;
  std::unique_ptr<HaproxyNode> haproxy_;
  std::thread traffic_;
  std::atomic<bool> stop_traffic_{false};
};

TEST_F(ClickHouseSinkTest, KillNineWhileShippingLosesAndDuplicatesNothing) {
  clickhouse_->Start();
  StartStickmeter(true);
  StartHaproxy();
  StartTraffic();
  ASSERT_TRUE(Eventually([&] { return ClickHouseRows() > 20; }, kConverge)) << StickmeterLog();
  stickmeter_->Signal(SIGKILL);
  stickmeter_->Wait();
  StartStickmeter(true);
  // HAProxy reconnects and resends its table (delta 0 for what was counted); traffic goes on.
  const uint64_t before = Sum(Usage());
  ASSERT_TRUE(Eventually([&] { return Sum(Usage()) > before + 100; }, kConverge))
      << StickmeterLog();
  StopTraffic();
  ExpectSameTotals();
  // The table holds one row per event once merged (FINAL); duplicates are allowed before.
  EXPECT_EQ(clickhouse_->Query("SELECT count() FROM default.stickmeter_events FINAL"),
            clickhouse_->Query("SELECT uniqExact(event_id) FROM default.stickmeter_events"));
}

TEST_F(ClickHouseSinkTest, AClickHouseRestartOnlyDelaysShipping) {
  clickhouse_->Start();
  StartStickmeter(true);
  StartHaproxy();
  StartTraffic();
  ASSERT_TRUE(Eventually([&] { return ClickHouseRows() > 20; }, kConverge)) << StickmeterLog();
  clickhouse_->Kill();
  // Ingest and queries go on; the backlog shows on /metrics and the failure in the log.
  SendBurst(3);
  EXPECT_TRUE(Eventually(
      [&] {
        auto r = HttpRequest(http_port_, "GET", "/metrics");
        return r && r->body.find("stickmeter_sink_clickhouse_up 0") != std::string::npos;
      },
      std::chrono::seconds(15)));
  auto metrics = HttpRequest(http_port_, "GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(std::string::npos, metrics->body.find("stickmeter_sink_clickhouse_backlog_events"));
  EXPECT_TRUE(Eventually([&] { return StickmeterLog().find("retrying") != std::string::npos; },
                         std::chrono::seconds(10)));
  clickhouse_->Start();
  StopTraffic();
  ExpectSameTotals();
  EXPECT_TRUE(stickmeter_->Running());
}

TEST_F(ClickHouseSinkTest, EnablingTheSinkBackfillsWhatTheStoreHas) {
  StartStickmeter(false);
  StartHaproxy();
  SendBurst(4);
  ASSERT_TRUE(Eventually([&] { return Usage().size() == 12; }, kConverge));
  stickmeter_->Signal(SIGTERM);
  ASSERT_EQ(0, stickmeter_->Wait());
  clickhouse_->Start();
  StartStickmeter(true);
  SendBurst(1);
  ExpectSameTotals();
  EXPECT_TRUE(Eventually(
      [&] { return StickmeterLog().find("backfill to ClickHouse done") != std::string::npos; },
      std::chrono::seconds(5)));
}

TEST_F(ClickHouseSinkTest, UnreachableAtStartIsRetriedThenShipped) {
  // Nothing listens on the ClickHouse port yet.
  StartStickmeter(true);
  StartHaproxy();
  SendBurst(2);
  ASSERT_TRUE(Eventually([&] { return Usage().size() == 12; }, kConverge));
  EXPECT_TRUE(Eventually([&] { return StickmeterLog().find("retrying") != std::string::npos; },
                         std::chrono::seconds(10)))
      << StickmeterLog();
  EXPECT_TRUE(stickmeter_->Running());
  clickhouse_->Start();
  ExpectSameTotals();
}

ClickHouseOptions TlsOptions(const fs::path& certs) {
  ClickHouseOptions options;
  options.tls_cert_dir = certs;
  return options;
}

// A CA and a server certificate for 127.0.0.1 under `dir`, made with the openssl tool.
bool MakeCertificates(const fs::path& dir) {
  fs::create_directories(dir);
  WriteFile(dir / "ext.cnf", "subjectAltName=IP:127.0.0.1\n");
  const std::vector<std::vector<std::string>> steps = {
      {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", (dir / "ca.key").string(),
       "-out", (dir / "ca.pem").string(), "-days", "2", "-subj", "/CN=stickmeter test CA"},
      {"req", "-newkey", "rsa:2048", "-nodes", "-keyout", (dir / "server.key").string(), "-out",
       (dir / "server.csr").string(), "-subj", "/CN=127.0.0.1"},
      {"x509", "-req", "-in", (dir / "server.csr").string(), "-CA", (dir / "ca.pem").string(),
       "-CAkey", (dir / "ca.key").string(), "-CAcreateserial", "-out",
       (dir / "server.pem").string(), "-days", "2", "-extfile", (dir / "ext.cnf").string()}};
  for (const auto& args : steps) {
    Process openssl("/usr/bin/openssl", args, dir / "openssl.log");
    if (openssl.Wait() != 0) return false;
  }
  return true;
}

TEST_F(ClickHouseSinkTest, HttpsVerifiesTheServerAgainstTheGivenCa) {
  const fs::path certs = dir_.path() / "certs";
  ASSERT_TRUE(MakeCertificates(certs)) << ReadFile(certs / "openssl.log");
  clickhouse_ = std::make_unique<ClickHouse>(dir_.path() / "clickhouse-tls", TlsOptions(certs));
  clickhouse_->Start();
  StartStickmeter(true, "https://127.0.0.1:" + std::to_string(clickhouse_->https_port()) + "/",
                  {"--sink-clickhouse-ca", (certs / "ca.pem").string()});
  StartHaproxy();
  SendBurst(2);
  ExpectSameTotals();
}

TEST_F(ClickHouseSinkTest, HttpsRefusesAServerItCannotVerify) {
  const fs::path certs = dir_.path() / "certs";
  ASSERT_TRUE(MakeCertificates(certs)) << ReadFile(certs / "openssl.log");
  clickhouse_ = std::make_unique<ClickHouse>(dir_.path() / "clickhouse-tls", TlsOptions(certs));
  clickhouse_->Start();
  // The system's CAs did not sign the test CA: nothing is shipped, the failure is logged.
  StartStickmeter(true, "https://127.0.0.1:" + std::to_string(clickhouse_->https_port()) + "/");
  StartHaproxy();
  SendBurst(1);
  EXPECT_TRUE(Eventually(
      [&] { return StickmeterLog().find("certificate verify failed") != std::string::npos; },
      std::chrono::seconds(10)))
      << StickmeterLog();
  // The table is created over the same connection: it does not exist.
  EXPECT_EQ("0\n", clickhouse_->Query("EXISTS TABLE default.stickmeter_events"));
  EXPECT_TRUE(stickmeter_->Running());
}

TEST_F(ClickHouseSinkTest, AMalformedUrlExitsAtStartWithOneLine) {
  Process p(
      STICKMETER_BINARY,
      {"serve", "--data", (dir_.path() / "data").string(), "--peers-listen", Loopback(peers_port_),
       "--http", Loopback(http_port_), "--sink-clickhouse", "ftp://127.0.0.1:8123/"},
      dir_.path() / "bad.log");
  EXPECT_NE(0, p.Wait());
  const std::string log = ReadFile(dir_.path() / "bad.log");
  EXPECT_EQ(1, std::count(log.begin(), log.end(), '\n')) << log;
  EXPECT_NE(std::string::npos, log.find("--sink-clickhouse")) << log;
}

}  // namespace
}  // namespace stickmeter::testing
