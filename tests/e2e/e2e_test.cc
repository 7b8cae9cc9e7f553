// End-to-end exactness: real HAProxy processes, real HTTP traffic, a real stickmeter; the totals
// stickmeter reports must equal the requests sent, exactly, through reloads, restarts and
// crashes of either side and hostile clients on the peers port.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/haproxy.h"
#include "tests/support/process.h"
#include "tests/support/small_disk.h"
#include "tests/support/tcp_proxy.h"

namespace stickmeter::testing {
namespace {

namespace fs = std::filesystem;
using Totals = std::map<std::string, uint64_t>;  // key -> total

constexpr auto kConvergeTimeout = std::chrono::seconds(60);

std::string Loopback(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One HAProxy node of the cluster: its peers section names itself and stickmeter.
struct NodePorts {
  uint16_t http = 0;
  uint16_t peers = 0;
};

std::string NodeConfig(const fs::path& dir, const std::string& name, const NodePorts& ports,
                       uint16_t stickmeter_peers_port, const std::string& expire) {
  return HaproxyPreamble(dir, name) +
         "peers billing\n    bind 127.0.0.1:" + std::to_string(ports.peers) + "\n    server " +
         name + "\n    server stickmeter 127.0.0.1:" + std::to_string(stickmeter_peers_port) +
         "\n    table quota type string len 64 size 100k expire " + expire +
         " store gpc0,http_req_cnt,bytes_out_cnt\n\n"
         "frontend fe\n    bind 127.0.0.1:" +
         std::to_string(ports.http) +
         "\n    http-request track-sc0 req.hdr(host) table billing/quota\n"
         "    http-request sc-inc-gpc0(0) if { path_beg /billable }\n"
         "    http-request return status 200 content-type text/plain string \"ok\\n\"\n";
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stickmeter_peers_port_ = FreePort();
    stickmeter_http_port_ = FreePort();
  }

  void StartStickmeter() {
    stickmeter_ = std::make_unique<Process>(
        STICKMETER_BINARY,
        std::vector<std::string>{"serve", "--data", data_dir_, "--name", "stickmeter",
                                 "--peers-listen", Loopback(stickmeter_peers_port_), "--http",
                                 Loopback(stickmeter_http_port_), "--resync-interval",
                                 std::to_string(resync_interval_s_)},
        dir_.path() / "stickmeter.log");
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = HttpRequest(stickmeter_http_port_, "GET", "/api/v1/health");
          return r && r->status == 200;
        },
        std::chrono::seconds(20)))
        << StickmeterLog();
  }

  std::string StickmeterLog() { return ReadFile(dir_.path() / "stickmeter.log"); }

  // `via_port`: where the node finds stickmeter (a TcpProxy in front of it), 0 = directly.
  HaproxyNode& AddNode(const std::string& name, const std::string& expire = "1h",
                       uint16_t via_port = 0) {
    NodePorts ports{FreePort(), FreePort()};
    node_ports_.push_back(ports);
    nodes_.push_back(std::make_unique<HaproxyNode>(
        dir_.path() / name, name,
        NodeConfig(dir_.path() / name, name, ports,
                   via_port != 0 ? via_port : stickmeter_peers_port_, expire)));
    std::string error;
    EXPECT_TRUE(nodes_.back()->Start(ports.http, &error)) << error;
    return *nodes_.back();
  }

  // Sends `count` requests for `key` to node `i` and records them as expected.
  void Send(size_t i, const std::string& key, int count, bool billable) {
    int ok = SendRequests(node_ports_[i].http, key, billable ? "/billable" : "/free", count);
    ASSERT_EQ(count, ok) << "HAProxy " << nodes_[i]->name() << " refused requests";
    std::string source = nodes_[i]->name();
    sent_req_[source][key] += count;
    if (billable) sent_gpc0_[source][key] += count;
  }

  Totals Usage(const std::string& metric, const std::string& source = "") {
    std::string target = "/api/v1/usage?table=/quota&metric=" + metric +
                         "&from=0&to=4102444800000" + (source.empty() ? "" : "&source=" + source);
    auto r = HttpRequest(stickmeter_http_port_, "GET", target);
    Totals totals;
    if (!r || r->status != 200) return totals;
    auto doc = nlohmann::json::parse(r->body, nullptr, false);
    if (doc.is_discarded()) return totals;
    for (const auto& row : doc["rows"]) {
      totals[row["key"].get<std::string>()] = row["total"].get<uint64_t>();
    }
    return totals;
  }

  static Totals Sum(const std::map<std::string, Totals>& per_source) {
    Totals all;
    for (const auto& [source, totals] : per_source) {
      for (const auto& [key, n] : totals) all[key] += n;
    }
    return all;
  }

  // Waits until stickmeter's totals equal what was sent, overall and per source, for both
  // http_req_cnt and gpc0; on timeout reports the first differences.
  void ExpectExactTotals() {
    Totals want_req = Sum(sent_req_);
    Totals want_gpc0 = Sum(sent_gpc0_);
    bool converged =
        Eventually([&] { return Usage("http_req_cnt") == want_req && Usage("gpc0") == want_gpc0; },
                   kConvergeTimeout);
    if (!converged) {
      Totals got = Usage("http_req_cnt");
      int shown = 0;
      for (const auto& [key, n] : want_req) {
        if (got[key] != n && shown++ < 10) {
          ADD_FAILURE() << "http_req_cnt for " << key << ": sent " << n << ", stickmeter says "
                        << got[key];
        }
      }
      FAIL() << "totals did not converge; got " << got.size() << " keys, want " << want_req.size()
             << "\n"
             << StickmeterLog().substr(0, 4000);
    }
    for (const auto& [source, want] : sent_req_) {
      EXPECT_EQ(want, Usage("http_req_cnt", source)) << "per-source totals of " << source;
    }
  }

  TempDir dir_{"stickmeter-e2e"};
  std::string data_dir_ = (dir_.path() / "data").string();
  uint16_t stickmeter_peers_port_ = 0;
  uint16_t stickmeter_http_port_ = 0;
  int resync_interval_s_ = 3600;
  std::unique_ptr<Process> stickmeter_;
  std::vector<std::unique_ptr<HaproxyNode>> nodes_;
  std::vector<NodePorts> node_ports_;
  std::map<std::string, Totals> sent_req_;   // source -> key -> requests
  std::map<std::string, Totals> sent_gpc0_;  // source -> key -> billable requests
};

std::string CustomerKey(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "cust-%04d.example", i);
  return buf;
}

TEST_F(ClusterTest, ThreeNodesFiveHundredKeysTotalsEqualRequestsSent) {
  StartStickmeter();
  for (const char* name : {"lb1", "lb2", "lb3"}) AddNode(name);
  for (int k = 0; k < 520; ++k) {
    for (size_t n = 0; n < nodes_.size(); ++n) {
      int count = 1 + static_cast<int>((k + n) % 3);
      Send(n, CustomerKey(k), count, (k + n) % 2 == 0);
    }
  }
  ExpectExactTotals();

  // The CLI reads the store while serve runs, and bills the same bytes as the API.
  const std::string range = "from=0&to=4102444800000";
  auto api = HttpRequest(stickmeter_http_port_, "GET", "/api/v1/export?format=csv&" + range);
  ASSERT_TRUE(api && api->status == 200);
  const fs::path cli_csv = dir_.path() / "export.csv";
  Process cli(STICKMETER_BINARY,
              {"export", "--data", (dir_.path() / "data").string(), "--from", "0", "--to",
               "4102444800000", "--out", cli_csv.string(), "--sha256"},
              dir_.path() / "export.log");
  ASSERT_EQ(0, cli.Wait()) << ReadFile(dir_.path() / "export.log");
  EXPECT_EQ(api->body, ReadFile(cli_csv));
  // Every key has non-zero gpc0, http_req_cnt and bytes_out_cnt: a header and 3 x 520 rows.
  EXPECT_EQ(1 + 3 * 520, std::count(api->body.begin(), api->body.end(), '\n'));
  const std::string digest = ReadFile(fs::path(cli_csv.string() + ".sha256"));
  EXPECT_EQ(64u, digest.find("  export.csv\n")) << digest;

  // A backup taken while serving opens as a store and exports the same totals.
  const fs::path backup = dir_.path() / "backup";
  Process snapshot(STICKMETER_BINARY,
                   {"backup", "--data", (dir_.path() / "data").string(), backup.string()},
                   dir_.path() / "backup.log");
  ASSERT_EQ(0, snapshot.Wait()) << ReadFile(dir_.path() / "backup.log");
  const fs::path backup_csv = dir_.path() / "backup.csv";
  Process from_backup(STICKMETER_BINARY,
                      {"export", "--data", backup.string(), "--from", "0", "--to", "4102444800000",
                       "--out", backup_csv.string()},
                      dir_.path() / "export2.log");
  ASSERT_EQ(0, from_backup.Wait()) << ReadFile(dir_.path() / "export2.log");
  EXPECT_EQ(api->body, ReadFile(backup_csv));

  // An --out that cannot take the file (a directory is there) is one line, not an abort, and
  // leaves no .partial behind.
  const fs::path taken = dir_.path() / "taken";
  fs::create_directory(taken);
  Process refused(STICKMETER_BINARY,
                  {"export", "--data", backup.string(), "--from", "0", "--to", "4102444800000",
                   "--out", taken.string()},
                  dir_.path() / "export3.log");
  EXPECT_EQ(1, refused.Wait());
  const std::string said = ReadFile(dir_.path() / "export3.log");
  EXPECT_EQ(0u, said.find("stickmeter: --out: cannot write")) << said;
  EXPECT_EQ(1, std::count(said.begin(), said.end(), '\n')) << said;
  EXPECT_FALSE(fs::exists(taken.string() + ".partial"));
}

TEST_F(ClusterTest, SoftReloadInTheMiddleOfTrafficLosesNothing) {
  StartStickmeter();
  AddNode("lb1");
  for (int k = 0; k < 50; ++k) Send(0, CustomerKey(k), 3, k % 2 == 0);
  std::string error;
  ASSERT_TRUE(nodes_[0]->Reload(node_ports_[0].http, &error)) << error;
  for (int k = 0; k < 50; ++k) Send(0, CustomerKey(k), 2, true);
  ExpectExactTotals();
}

TEST_F(ClusterTest, HardRestartOfANodeKeepsCountsFromBeforeAndAfter) {
  StartStickmeter();
  AddNode("lb1");
  AddNode("lb2");
  for (int k = 0; k < 40; ++k) {
    Send(0, CustomerKey(k), 5, true);
    Send(1, CustomerKey(k), 1, false);
  }
  // HAProxy loses what it did not push before a hard kill: wait for the push first.
  ExpectExactTotals();
  nodes_[0]->Kill();
  std::string error;
  ASSERT_TRUE(nodes_[0]->Start(node_ports_[0].http, &error)) << error;
  for (int k = 0; k < 40; ++k) Send(0, CustomerKey(k), 2, true);
  ExpectExactTotals();
}

TEST_F(ClusterTest, StickmeterKilledMidTrafficNeitherLosesNorDoubleCounts) {
  StartStickmeter();
  AddNode("lb1");
  AddNode("lb2");
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < 60; ++k) {
      Send(0, CustomerKey(k), 1, k % 3 == 0);
      Send(1, CustomerKey(k + 30), 1, true);
      if (round == 1 && k == 30) {
        stickmeter_->Signal(SIGKILL);
        stickmeter_->Wait();
      }
    }
    if (round == 1) StartStickmeter();
  }
  ExpectExactTotals();
}

// The data directory's disk fills up under traffic: stickmeter neither aborts nor acknowledges
// what it cannot store, health and /metrics say so, and once space is freed it resumes by itself;
// HAProxy sends again what was not acknowledged, and the totals are exact.
TEST_F(ClusterTest, FullDiskStopsAcknowledgingAndTotalsAreExactOnceFreed) {
  // Smaller than the 35 MiB RocksDB preallocates for a write-ahead log: with no preallocation,
  // the log's next page fails as soon as the disk is full.
  SmallDisk disk(24);
  if (!disk.mounted()) GTEST_SKIP() << disk.error();
  data_dir_ = disk.Sub("data");
  StartStickmeter();
  AddNode("lb1");
  for (int k = 0; k < 40; ++k) Send(0, CustomerKey(k), 1, true);
  ExpectExactTotals();

  auto status_of = [&](const std::string& target) {
    auto r = HttpRequest(stickmeter_http_port_, "GET", target);
    return r ? r->status : 0u;
  };
  bool failing = false;
  for (int round = 0; round < 200 && !failing; ++round) {
    // Again each round: RocksDB gives space back as it deletes files it no longer needs.
    ASSERT_TRUE(disk.Fill());
    for (int k = 0; k < 40; ++k) Send(0, CustomerKey(round * 40 + k), 1, k % 2 == 0);
    failing = Eventually([&] { return status_of("/api/v1/health") == 503; },
                         std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(failing) << "the full disk took every write\n" << StickmeterLog();
  ASSERT_TRUE(disk.Fill());
  auto metrics = HttpRequest(stickmeter_http_port_, "GET", "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(std::string::npos, metrics->body.find("\nstickmeter_store_failed 1\n"));
  // Traffic goes on while the disk is full; the node keeps what is not acknowledged.
  for (int k = 0; k < 40; ++k) Send(0, CustomerKey(k), 2, true);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // attempts to recover meanwhile fail
  EXPECT_EQ(503u, status_of("/api/v1/health"));
  EXPECT_TRUE(stickmeter_->Running());

  ASSERT_TRUE(disk.Free());
  EXPECT_TRUE(
      Eventually([&] { return status_of("/api/v1/health") == 200; }, std::chrono::seconds(30)))
      << StickmeterLog();
  for (int k = 0; k < 40; ++k) Send(0, CustomerKey(k), 1, k % 3 == 0);
  ExpectExactTotals();
  metrics = HttpRequest(stickmeter_http_port_, "GET", "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(std::string::npos, metrics->body.find("\nstickmeter_store_failed 0\n"));
  // Resumed in the same process: one line for the failure, one for its end.
  const std::string log = StickmeterLog();
  EXPECT_NE(std::string::npos, log.find("No space left on device")) << log;
  EXPECT_NE(std::string::npos, log.find("writes succeed again")) << log;
  stickmeter_->Signal(SIGTERM);
  EXPECT_EQ(0, stickmeter_->Wait()) << StickmeterLog();
}

TEST_F(ClusterTest, ExpiredEntriesComingBackAreCountedInFull) {
  StartStickmeter();
  AddNode("lb1", "2s");
  Send(0, "short-lived", 5, true);
  ExpectExactTotals();
  // Past expire (2 s) + stickmeter's safety margin (1 s): HAProxy dropped the entry, and the next
  // request starts a new one at 0, which climbs above the old value.
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));
  Send(0, "short-lived", 7, true);
  ExpectExactTotals();
  auto audit = HttpRequest(stickmeter_http_port_, "GET",
                           "/api/v1/audit?table=/quota&key=short-lived&from=0&to=4102444800000");
  ASSERT_TRUE(audit && audit->status == 200);
  EXPECT_NE(std::string::npos, audit->body.find("\"expired\"")) << audit->body;
}

// Opens a connection to the peers port and sends `bytes`; returns once the server closed it or
// after 3 s.
void SendRaw(uint16_t port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    char buf[256];
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
  }
  ::close(fd);
}

TEST_F(ClusterTest, HostileClientsOnThePeersPortDoNotDisturbARealStream) {
  StartStickmeter();
  AddNode("lb1");
  const std::string hello = "HAProxyS 2.1\nstickmeter\nintruder 1 1\n";
  std::atomic<bool> stop{false};
  std::thread hostile([&] {
    const std::vector<std::string> attacks = {
        "GET / HTTP/1.1\r\n\r\n",                                // not a peer at all
        hello + std::string("\x0a\x80\xff\xff\xff\xff\x0f", 7),  // 4 GiB length prefix
        hello + std::string("\x0a\x82\x20\x01", 4),              // truncated DEFINE
        hello + std::string("\xff\x00", 2),                      // reserved class
        hello + std::string(200000, '\x0a'),                     // flood of garbage
        "HAProxyS 9.9\nstickmeter\nx 1 1\n",                     // bad version
    };
    for (int i = 0; !stop && i < 60; ++i)
      SendRaw(stickmeter_peers_port_, attacks[i % attacks.size()]);
  });
  for (int k = 0; k < 200; ++k) Send(0, CustomerKey(k), 2, k % 2 == 1);
  stop = true;
  hostile.join();
  ExpectExactTotals();
  auto metrics = HttpRequest(stickmeter_http_port_, "GET", "/metrics");
  ASSERT_TRUE(metrics && metrics->status == 200);
  EXPECT_NE(std::string::npos, metrics->body.find("stickmeter_peer_protocol_errors_total"));
}

TEST_F(ClusterTest, CutConnectionsAreReestablishedWithoutLossOrDoubleCount) {
  const int64_t start_ms = UnixMs();
  StartStickmeter();
  TcpProxy network(stickmeter_peers_port_);
  AddNode("lb1", "1h", network.port());
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < 40; ++k) Send(0, CustomerKey(k), 1 + round, k % 2 == 0);
    // Mid-stream, the path between HAProxy and stickmeter breaks; both ends see a reset and
    // HAProxy reconnects, then pushes what it has not seen acknowledged.
    network.CutAll();
    for (int k = 40; k < 60; ++k) Send(0, CustomerKey(k), 2, true);
  }
  ExpectExactTotals();
  EXPECT_GE(network.accepted(), 2) << "HAProxy never reconnected";
  // Each cut is a gap in lb1's coverage (docs/api.md, Coverage): the counts of the gap came with
  // HAProxy's push after the reconnect. Before lb1 first connected nobody was receiving.
  auto r = HttpRequest(stickmeter_http_port_, "GET",
                       "/api/v1/coverage?source=lb1&from=" + std::to_string(start_ms) +
                           "&to=" + std::to_string(UnixMs()));
  ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
  auto coverage = nlohmann::json::parse(r->body);
  EXPECT_EQ("partial", coverage["status"]) << r->body;
  const auto& lb1 = coverage["sources"][0];
  EXPECT_LE(start_ms, lb1["first_seen_ms"].get<int64_t>()) << r->body;
  EXPECT_GE(lb1["gap_count"].get<int>(), 1) << r->body;
  EXPECT_TRUE(lb1["connected"].get<bool>()) << r->body;
}

// Reads a field of /proc/PID/status in kB (VmRSS, ...).
long ProcStatusKb(pid_t pid, const std::string& field) {
  std::string status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find(field + ":");
  return at == std::string::npos ? -1 : std::atol(status.c_str() + at + field.size() + 1);
}

size_t OpenFds(pid_t pid) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e :
       fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++n;
  }
  return n;
}

TEST_F(ClusterTest, BoundedSoakKeepsMemoryAndDescriptorsFlat) {
  StartStickmeter();
  AddNode("lb1");
  AddNode("lb2");
  const pid_t pid = stickmeter_->pid();
  auto round = [&](int r) {
    for (int k = 0; k < 300; ++k) Send(r % 2, CustomerKey(k), 1, (k + r) % 3 == 0);
  };
  // Warm up: every key and table exists, RocksDB has flushed its first memtables.
  for (int r = 0; r < 4; ++r) round(r);
  ExpectExactTotals();
  const long rss_before = ProcStatusKb(pid, "VmRSS");
  const size_t fds_before = OpenFds(pid);
  // A fixed request budget (200 x 300 requests), with API reads in between like a dashboard.
  for (int r = 0; r < 200; ++r) {
    round(r);
    ASSERT_TRUE(HttpRequest(stickmeter_http_port_, "GET", "/api/v1/tables").has_value());
    ASSERT_TRUE(HttpRequest(stickmeter_http_port_, "GET", "/metrics").has_value());
  }
  ExpectExactTotals();
  const long rss_after = ProcStatusKb(pid, "VmRSS");
  const size_t fds_after = OpenFds(pid);
  EXPECT_LE(fds_after, fds_before + 4) << "descriptors grew from " << fds_before;
  // Memtables and caches settle well below this; a leak per request or update would not.
  EXPECT_LT(rss_after - rss_before, 64 * 1024)
      << "RSS grew from " << rss_before << " kB to " << rss_after << " kB";
}

TEST_F(ClusterTest, PeersSectionSharedByTwoNodesIsReportedAsATopologyWarning) {
  resync_interval_s_ = 2;  // the reconciling resync is what reveals learned entries
  StartStickmeter();
  NodePorts lb1{FreePort(), FreePort()};
  NodePorts lb2{FreePort(), FreePort()};
  // The mistake this detects: both nodes in one section, learning each other's entries.
  auto config = [&](const std::string& name, const NodePorts& own) {
    return HaproxyPreamble(dir_.path() / name, name) +
           "peers billing\n    peer lb1 127.0.0.1:" + std::to_string(lb1.peers) +
           "\n    peer lb2 127.0.0.1:" + std::to_string(lb2.peers) +
           "\n    peer stickmeter 127.0.0.1:" + std::to_string(stickmeter_peers_port_) +
           "\n    table quota type string len 64 size 10k expire 1h store gpc0,http_req_cnt\n\n"
           "frontend fe\n    bind 127.0.0.1:" +
           std::to_string(own.http) +
           "\n    http-request track-sc0 req.hdr(host) table billing/quota\n"
           "    http-request return status 200 content-type text/plain string \"ok\\n\"\n";
  };
  HaproxyNode node1(dir_.path() / "lb1", "lb1", config("lb1", lb1));
  HaproxyNode node2(dir_.path() / "lb2", "lb2", config("lb2", lb2));
  std::string error;
  ASSERT_TRUE(node1.Start(lb1.http, &error)) << error;
  ASSERT_TRUE(node2.Start(lb2.http, &error)) << error;
  ASSERT_EQ(5, SendRequests(lb2.http, "learned-by-lb1", "/", 5));
  ASSERT_EQ(3, SendRequests(lb1.http, "own-of-lb1", "/", 3));
  bool warned = Eventually(
      [&] {
        auto peers = HttpRequest(stickmeter_http_port_, "GET", "/api/v1/peers");
        return peers && peers->body.find("learned from other HAProxy nodes") != std::string::npos;
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(warned) << StickmeterLog();
  auto metrics = HttpRequest(stickmeter_http_port_, "GET", "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(std::string::npos, metrics->body.find("stickmeter_shared_key_warnings_total{"));
}

}  // namespace
}  // namespace stickmeter::testing
