// The fleet layout of docs/clickhouse.md ("A fleet of stickmeters, one ClickHouse cluster")
// against real parts: a ZooKeeper (Debian's zookeeper package, standalone, on a loopback port
// with a temporary data directory), four clickhouse-servers as the cluster `billing` of two
// shards of two replicas, the doc's DDL run as the doc says (read from the doc, so the two
// cannot drift apart), and two stickmeters, each fed by its own HAProxy, shipping into the
// `Distributed` table through different servers. The cluster's totals, queried with FINAL as
// the doc says, equal each stickmeter's usage per key, also after one stickmeter was killed
// with SIGKILL while shipping and started again (what it ships again is not counted twice).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/sink/clickhouse_server.h"
#include "tests/support/haproxy.h"
#include "tests/support/process.h"

namespace stickmeter::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kJava[] = "/usr/bin/java";
constexpr char kZooKeeperJar[] = "/usr/share/java/zookeeper.jar";
constexpr int kShards = 2;
constexpr int kReplicas = 2;
constexpr char kTable[] = "metering.stickmeter_events";  // the doc's Distributed table
// Replication and the Distributed table's forwarding come on top of the sink's second.
constexpr auto kConverge = std::chrono::seconds(60);

std::string Loopback(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// The statements of the fleet section's SQL block, in order, as a user would paste them.
std::vector<std::string> FleetDdl() {
  const std::string doc = ReadFile(fs::path(STICKMETER_SOURCE_DIR) / "docs" / "clickhouse.md");
  const size_t section = doc.find("## A fleet of stickmeters");
  const size_t begin = doc.find("```sql\n", section);
  const size_t end = doc.find("```\n", begin + 7);
  if (section == std::string::npos || begin == std::string::npos || end == std::string::npos) {
    return {};
  }
  std::vector<std::string> statements;
  const std::string block = doc.substr(begin + 7, end - begin - 7);
  size_t from = 0;
  while (from < block.size()) {
    size_t semicolon = block.find(';', from);
    if (semicolon == std::string::npos) semicolon = block.size();
    std::string sql = block.substr(from, semicolon - from);
    sql.erase(0, sql.find_first_not_of(" \n"));
    if (!sql.empty()) statements.push_back(sql);
    from = semicolon + 1;
  }
  return statements;
}

// A standalone ZooKeeper server of its own.
class ZooKeeper {
 public:
  explicit ZooKeeper(fs::path dir) : dir_(std::move(dir)), port_(FreePort()) {
    fs::create_directories(dir_ / "data");
    // No admin server: it would take port 8080.
    WriteFile(dir_ / "zoo.cfg", "tickTime=500\ndataDir=" + (dir_ / "data").string() +
                                    "\nclientPort=" + std::to_string(port_) +
                                    "\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                                    "maxClientCnxns=0\n4lw.commands.whitelist=srvr\n");
  }
  uint16_t port() const { return port_; }

  void Start() {
    process_ = std::make_unique<Process>(
        kJava,
        std::vector<std::string>{"-Xmx256m", "-cp", kZooKeeperJar,
                                 "org.apache.zookeeper.server.ZooKeeperServerMain",
                                 (dir_ / "zoo.cfg").string()},
        dir_ / "zookeeper.log");
    // Serving, not only listening: ClickHouse 18.16 crashes (a null pointer in its DDL worker)
    // when its first ZooKeeper handshake fails.
    ASSERT_TRUE(
        Eventually([&] { return Ask("srvr").find("Mode: standalone") != std::string::npos; },
                   std::chrono::seconds(30)))
        << ReadFile(dir_ / "zookeeper.log");
  }

  // A four-letter command's answer ("" when it does not answer), bounded by a 5 s timeout.
  std::string Ask(const std::string& command) const {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "";
    const timeval timeout{.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string answer;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0 &&
        send(fd, command.data(), command.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(command.size())) {
      char buf[4096];
      for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) answer.append(buf, n);
    }
    close(fd);
    return answer;
  }

 private:
  fs::path dir_;
  uint16_t port_;
  std::unique_ptr<Process> process_;  // killed on destruction
};

// One stickmeter with its own HAProxy and a client sending requests to it.
class Site {
 public:
  Site(std::string name, fs::path dir)
      : name_(std::move(name)),
        dir_(std::move(dir)),
        peers_port_(FreePort()),
        http_port_(FreePort()),
        haproxy_http_(FreePort()),
        haproxy_peers_(FreePort()) {
    fs::create_directories(dir_);
    WriteFile(dir_ / "password", std::string(kClickHousePassword) + "\n");
  }
  ~Site() {
    StopTraffic();
    if (stickmeter_) stickmeter_->Signal(SIGKILL);
  }

  const std::string& name() const { return name_; }
  std::string Log() const { return name_ + ":\n" + ReadFile(dir_ / "sm.log"); }
  Totals Usage() const { return StickmeterUsage(http_port_); }

  void StartStickmeter(const std::string& sink_url) {
    stickmeter_ = std::make_unique<Process>(
        STICKMETER_BINARY,
        std::vector<std::string>{"serve", "--data", (dir_ / "data").string(), "--name", name_,
                                 "--peers-listen", Loopback(peers_port_), "--http",
                                 Loopback(http_port_), "--sink-clickhouse", sink_url,
                                 "--sink-clickhouse-password-file", (dir_ / "password").string()},
        dir_ / "sm.log");
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = HttpRequest(http_port_, "GET", "/api/v1/health");
          return r && r->status == 200;
        },
        std::chrono::seconds(20)))
        << Log();
  }
  void KillStickmeter() {
    stickmeter_->Signal(SIGKILL);
    stickmeter_->Wait();
  }

  void StartHaproxy() {
    const std::string lb = "lb-" + name_;
    haproxy_ = std::make_unique<HaproxyNode>(
        dir_ / "lb", lb,
        BillingNodeConfig(dir_ / "lb", lb, haproxy_peers_, name_, peers_port_, haproxy_http_));
    std::string error;
    ASSERT_TRUE(haproxy_->Start(haproxy_http_, &error)) << error;
  }

  // Requests for 12 keys (the same at every site) in a loop until StopTraffic.
  void StartTraffic() {
    stop_ = false;
    traffic_ = std::thread([this] {
      while (!stop_) {
        for (int k = 0; k < 12 && !stop_; ++k) {
          SendRequests(haproxy_http_, "customer" + std::to_string(k) + ".example", "/", 1 + k % 3);
        }
      }
    });
  }
  void StopTraffic() {
    stop_ = true;
    if (traffic_.joinable()) traffic_.join();
  }

 private:
  std::string name_;
  fs::path dir_;
  uint16_t peers_port_, http_port_, haproxy_http_, haproxy_peers_;
  std::unique_ptr<Process> stickmeter_;
  std::unique_ptr<HaproxyNode> haproxy_;
  std::thread traffic_;
  std::atomic<bool> stop_{false};
};

class ClickHouseFleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* binary : {kClickHouseServer, kJava, kZooKeeperJar}) {
      if (!fs::exists(binary)) {
        GTEST_SKIP() << binary << " is not installed (scripts/setup.sh --test)";
      }
    }
    zookeeper_ = std::make_unique<ZooKeeper>(dir_.path() / "zookeeper");
    // Node i is replica i % kReplicas of shard i / kReplicas; every node lists all of them.
    std::array<uint16_t, kShards * kReplicas> tcp_ports{};
    for (auto& port : tcp_ports) port = FreePort();
    std::string cluster = "  <remote_servers><billing>\n";
    for (int s = 0; s < kShards; ++s) {
      cluster += "    <shard><internal_replication>true</internal_replication>\n";
      for (int r = 0; r < kReplicas; ++r) {
        cluster += "      <replica><host>127.0.0.1</host><port>" +
                   std::to_string(tcp_ports[s * kReplicas + r]) +
                   "</port><user>default</user><password>" + kClickHousePassword +
                   "</password></replica>\n";
      }
      cluster += "    </shard>\n";
    }
    cluster += "  </billing></remote_servers>\n  <zookeeper><node><host>127.0.0.1</host><port>" +
               std::to_string(zookeeper_->port()) +
               "</port></node></zookeeper>\n"
               "  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>\n";
    for (size_t i = 0; i < tcp_ports.size(); ++i) {
      const std::string macros = "  <macros><shard>" + std::to_string(i / kReplicas + 1) +
                                 "</shard><replica>ch" + std::to_string(i + 1) +
                                 "</replica></macros>\n";
      nodes_.push_back(std::make_unique<ClickHouse>(
          dir_.path() / ("ch" + std::to_string(i + 1)),
          ClickHouseOptions{
              .tls_cert_dir = {}, .tcp_port = tcp_ports[i], .extra_config = cluster + macros}));
    }
    zookeeper_->Start();
    for (auto& node : nodes_) node->Start();
  }

  void TearDown() override {
    sites_.clear();
    for (auto& node : nodes_) node->Kill();
  }

  std::string Logs() {
    std::string logs;
    for (const auto& site : sites_) logs += site->Log();
    return logs;
  }

  // A one-number answer of `node`, 0 when it fails.
  uint64_t Count(ClickHouse& node, const std::string& sql) {
    const std::string n = node.Query(sql);
    return n.empty() ? 0 : std::stoull(n);
  }

  TempDir dir_{"stickmeter-clickhouse-fleet-test"};
  std::unique_ptr<ZooKeeper> zookeeper_;
  std::vector<std::unique_ptr<ClickHouse>> nodes_;
  std::vector<std::unique_ptr<Site>> sites_;
};

TEST_F(ClickHouseFleetTest, TwoStickmetersBillOnceThroughTheDistributedTable) {
  const std::vector<std::string> ddl = FleetDdl();
  ASSERT_EQ(3u, ddl.size()) << "the SQL block of the fleet section of docs/clickhouse.md";
  // ON CLUSTER waits for every server's DDL worker, which starts once it has its ZooKeeper
  // session: wait for those first, then allow a retry (the statements may be run again).
  for (auto& node : nodes_) {
    ASSERT_TRUE(Eventually(
        [&] {
          return !node->Query("SELECT count() FROM system.zookeeper WHERE path = '/'").empty();
        },
        std::chrono::seconds(30)));
  }
  for (const auto& sql : ddl) {
    std::string error;
    EXPECT_TRUE(Eventually([&] { return (error = nodes_[0]->Execute(sql)).empty(); },
                           std::chrono::seconds(60)))
        << sql << "\n"
        << error;
  }
  for (auto& node : nodes_) {
    ASSERT_TRUE(
        Eventually([&] { return node->Query("EXISTS TABLE " + std::string(kTable)) == "1\n"; },
                   std::chrono::seconds(20)));
  }

  // Each stickmeter inserts through a server of another shard.
  sites_.push_back(std::make_unique<Site>("sm-a", dir_.path() / "sm-a"));
  sites_.push_back(std::make_unique<Site>("sm-b", dir_.path() / "sm-b"));
  Site& a = *sites_[0];
  Site& b = *sites_[1];
  a.StartStickmeter(nodes_[0]->SinkUrl("metering", "stickmeter_events"));
  b.StartStickmeter(nodes_[kReplicas]->SinkUrl("metering", "stickmeter_events"));
  for (auto& site : sites_) {
    site->StartHaproxy();
    site->StartTraffic();
  }
  ClickHouse& reader = *nodes_[1];
  const std::string a_rows =
      "SELECT count() FROM " + std::string(kTable) + " WHERE event_id LIKE 'sm-a:%'";
  ASSERT_TRUE(Eventually([&] { return Count(reader, a_rows) > 20; }, kConverge)) << Logs();

  // A crash while shipping: what sm-a had sent but not recorded goes out again, same ids.
  a.KillStickmeter();
  a.StartStickmeter(nodes_[0]->SinkUrl("metering", "stickmeter_events"));
  const uint64_t before = Sum(a.Usage());
  ASSERT_TRUE(Eventually([&] { return Sum(a.Usage()) > before + 100; }, kConverge)) << Logs();
  for (auto& site : sites_) site->StopTraffic();

  // Billing one stickmeter from the cluster, as the doc says: its usage per key. (Usage is read
  // again each time: HAProxy's last updates may still be arriving.)
  for (auto& site : sites_) {
    Totals usage, billed;
    EXPECT_TRUE(Eventually(
        [&] {
          usage = site->Usage();
          billed =
              reader.Billing(kTable, "event_id LIKE '" + site->name() + ":%'").value_or(Totals{});
          return !usage.empty() && billed == usage;
        },
        kConverge))
        << site->name() << "'s usage and the cluster differ\n"
        << Logs();
    for (const auto& [key, n] : usage) EXPECT_EQ(n, billed[key]) << site->name() << " " << key;
    EXPECT_EQ(12u, usage.size()) << site->name();
  }
  // The whole fleet: the sum of both per key, whichever server is asked.
  auto fleet_usage = [&] {
    Totals sum;
    for (auto& site : sites_) {
      for (const auto& [key, n] : site->Usage()) sum[key] += n;
    }
    return sum;
  };
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Totals usage, billed;
    EXPECT_TRUE(Eventually(
        [&] {
          usage = fleet_usage();
          billed = nodes_[i]->Billing(kTable).value_or(Totals{});
          return billed == usage;
        },
        kConverge))
        << "asking ch" << i + 1;
    EXPECT_EQ(usage, billed) << "asking ch" << i + 1;
  }
  // One row per event once deduplicated, and every shard holds its part of them, on each of its
  // replicas.
  EXPECT_EQ(Count(reader, "SELECT count() FROM " + std::string(kTable) + " FINAL"),
            Count(reader, "SELECT uniqExact(event_id) FROM " + std::string(kTable)));
  for (int s = 0; s < kShards; ++s) {
    const std::string local = "SELECT count() FROM metering.stickmeter_events_local FINAL";
    ClickHouse& first = *nodes_[s * kReplicas];
    EXPECT_GT(Count(first, local), 0u) << "shard " << s + 1;
    for (int r = 1; r < kReplicas; ++r) {
      EXPECT_TRUE(Eventually(
          [&] { return Count(*nodes_[s * kReplicas + r], local) == Count(first, local); },
          kConverge))
          << "shard " << s + 1 << " replica " << r + 1;
    }
  }
}

}  // namespace
}  // namespace stickmeter::testing
