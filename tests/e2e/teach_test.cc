// Teaching HAProxy back, end to end: real HAProxy nodes, a real stickmeter, real HTTP traffic.
// A quota set through the API is enforced by every node, survives restarts of either side and
// is lifted by a DELETE; a cluster-wide rate limit refuses traffic no node alone would refuse.
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/haproxy.h"
#include "tests/support/process.h"

namespace stickmeter::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string Loopback(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// Each node's peers section names itself and stickmeter. `q` is billed and limited by the
// flags stickmeter teaches into `q.quota` (deny before track: refused requests are not billed);
// `rl.aggregate` holds the cluster-wide rate of `rl`.
std::string NodeConfig(const fs::path& dir, const std::string& name, uint16_t http_port,
                       uint16_t peers_port, uint16_t stickmeter_port) {
  return HaproxyPreamble(dir, name) +
         "peers billing\n    bind 127.0.0.1:" + std::to_string(peers_port) + "\n    server " +
         name + "\n    server stickmeter 127.0.0.1:" + std::to_string(stickmeter_port) +
         "\n    table q type string len 64 size 10k expire 1h store http_req_cnt"
         "\n    table q.quota type string len 64 size 10k expire 10m store gpt0,gpc0"
         "\n    table rl type string len 64 size 10k expire 1m store http_req_rate(10s)"
         "\n    table rl.aggregate type string len 64 size 10k expire 1m store "
         "http_req_rate(10s)\n\n"
         "frontend fe\n    bind 127.0.0.1:" +
         std::to_string(http_port) +
         "\n    http-request deny deny_status 429 if { req.hdr(host),table_gpt0(billing/q.quota) "
         "eq 1 }"
         "\n    http-request track-sc0 req.hdr(host) table billing/q"
         "\n    http-request track-sc1 req.hdr(x-client) table billing/rl if { req.hdr(x-client) "
         "-m found }"
         "\n    http-request deny deny_status 429 if { req.hdr(x-client),"
         "table_http_req_rate(billing/rl.aggregate) gt 25 }"
         "\n    http-request return status 200 content-type text/plain string \"ok\\n\"\n";
}

class TeachTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peers_port_ = FreePort();
    http_port_ = FreePort();
    token_file_ = dir_.path() / "token";
    WriteFile(token_file_, "teach-test-token-0123456789\n");
  }

  void StartStickmeter(std::vector<std::string> teach_flags) {
    std::vector<std::string> args{"serve",
                                  "--data",
                                  (dir_.path() / "data").string(),
                                  "--peers-listen",
                                  Loopback(peers_port_),
                                  "--http",
                                  Loopback(http_port_),
                                  "--token-file",
                                  token_file_.string()};
    args.insert(args.end(), teach_flags.begin(), teach_flags.end());
    stickmeter_ =
        std::make_unique<Process>(STICKMETER_BINARY, args, dir_.path() / "stickmeter.log");
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = HttpRequest(http_port_, "GET", "/api/v1/health");
          return r && r->status == 200;
        },
        20s))
        << Log();
  }
  void StopStickmeter() {
    stickmeter_->Signal(SIGTERM);
    EXPECT_EQ(0, stickmeter_->Wait()) << Log();
    stickmeter_.reset();
  }

  std::string Log() { return ReadFile(dir_.path() / "stickmeter.log"); }

  void AddNodes(int n) {
    for (int i = 1; i <= n; ++i) {
      const std::string name = "lb" + std::to_string(i);
      http_ports_.push_back(FreePort());
      const uint16_t peers = FreePort();
      nodes_.push_back(std::make_unique<HaproxyNode>(
          dir_.path() / name, name,
          NodeConfig(dir_.path() / name, name, http_ports_.back(), peers, peers_port_)));
      std::string error;
      ASSERT_TRUE(nodes_.back()->Start(http_ports_.back(), &error)) << error;
    }
    // Every node's session is up (the first pushes and teaches need it).
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = Api("GET", "/api/v1/peers");
          if (!r || r->status != 200) return false;
          auto doc = nlohmann::json::parse(r->body, nullptr, false);
          int connected = 0;
          for (const auto& p : doc["peers"]) connected += p.value("connected", false) ? 1 : 0;
          return connected == n;
        },
        30s))
        << Log();
  }

  std::optional<HttpResponse> Api(const std::string& method, const std::string& target,
                                  const std::string& body = "") {
    return HttpRequest(http_port_, method, target,
                       {"Authorization: Bearer teach-test-token-0123456789"}, "127.0.0.1", body);
  }

  // One request to node `i` for customer `host`; its HTTP status (0 when nothing answered).
  int Request(size_t i, const std::string& host, const std::string& client = "") {
    std::vector<std::string> headers;
    if (!client.empty()) headers.push_back("X-Client: " + client);
    auto r = HttpRequest(http_ports_[i], "GET", "/", headers, host);
    return r ? r->status : 0;
  }

  // The value of `field` of `key` in node i's table `table` ("gpt0", "http_req_rate(10000)"),
  // or -1 when the node has no such entry.
  long long TableValue(size_t i, const std::string& table, const std::string& key,
                       const std::string& field) {
    const std::string out = nodes_[i]->AdminCommand("show table billing/" + table);
    std::smatch m;
    const std::regex line("key=" + key + " [^\\n]*" +
                          std::regex_replace(field, std::regex(R"([()])"), R"(\$&)") + "=([0-9]+)");
    if (!std::regex_search(out, m, line)) return -1;
    return std::stoll(m[1]);
  }

  uint64_t Billed(const std::string& key) {
    auto r =
        Api("GET", "/api/v1/usage?table=/q&metric=http_req_cnt&from=0&to=4102444800000&key=" + key);
    if (!r || r->status != 200) return UINT64_MAX;
    auto doc = nlohmann::json::parse(r->body, nullptr, false);
    for (const auto& row : doc["rows"]) {
      if (row["key"] == key) return row["total"].get<uint64_t>();
    }
    return 0;
  }

  TempDir dir_{"stickmeter-teach"};
  uint16_t peers_port_ = 0, http_port_ = 0;
  fs::path token_file_;
  std::unique_ptr<Process> stickmeter_;
  std::vector<std::unique_ptr<HaproxyNode>> nodes_;
  std::vector<uint16_t> http_ports_;
};

constexpr int kLimit = 30;

// Sums are taught too (--aggregate): every node's stream carries two taught tables.
TEST_F(TeachTest, QuotaIsEnforcedOnEveryNodeAndSurvivesRestarts) {
  StartStickmeter({"--quota", "/q", "--aggregate", "/rl"});
  AddNodes(3);
  auto put = Api(
      "PUT", "/api/v1/quotas",
      R"({"table":"/q","key":"acme","metric":"http_req_cnt","limit":30,"period":"month","tz":"UTC"})");
  ASSERT_TRUE(put && put->status == 200) << (put ? put->body : "no answer") << Log();

  // Round robin over the nodes, paced like real traffic: every node refuses once the cluster's
  // usage reached the limit, give or take what arrives during one propagation interval.
  int accepted = 0;
  for (int i = 0; i < 90; ++i) {
    // Each request of another client of `rl`: sums are taught between the quota flags.
    const int status = Request(static_cast<size_t>(i % 3), "acme", "c" + std::to_string(i));
    ASSERT_TRUE(status == 200 || status == 429) << status;
    accepted += status == 200 ? 1 : 0;
    std::this_thread::sleep_for(25ms);
  }
  // One propagation interval (HAProxy's push, the durable commit, the teach window, the taught
  // update) is well under 200 ms: 8 paced requests.
  EXPECT_GE(accepted, kLimit);
  EXPECT_LE(accepted, kLimit + 8) << "refusals started too late";
  // Other customers are never refused.
  for (int i = 0; i < 30; ++i) EXPECT_EQ(200, Request(static_cast<size_t>(i % 3), "other"));
  // Billed usage is what was accepted: refused requests were denied before being tracked.
  EXPECT_TRUE(Eventually([&] { return Billed("acme") == static_cast<uint64_t>(accepted); }, 10s))
      << "billed " << Billed("acme") << ", accepted " << accepted;
  for (size_t n = 0; n < 3; ++n) EXPECT_EQ(1, TableValue(n, "q.quota", "acme", "gpt0"));

  // A node restarted hard (empty tables, asks for a resync) refuses at once, before any request.
  nodes_[1]->Kill();
  std::string error;
  ASSERT_TRUE(nodes_[1]->Start(http_ports_[1], &error)) << error;
  EXPECT_TRUE(Eventually([&] { return TableValue(1, "q.quota", "acme", "gpt0") == 1; }, 10s))
      << nodes_[1]->AdminCommand("show table billing/q.quota");
  EXPECT_EQ(429, Request(1, "acme"));

  // DELETE lifts the refusal on every node.
  auto del = Api("DELETE", "/api/v1/quotas?table=/q&metric=http_req_cnt&key=acme");
  ASSERT_TRUE(del && del->status == 204) << (del ? del->body : "no answer");
  for (size_t n = 0; n < 3; ++n) {
    EXPECT_TRUE(Eventually([&] { return TableValue(n, "q.quota", "acme", "gpt0") == 0; }, 5s));
    EXPECT_EQ(200, Request(n, "acme"));
  }

  // stickmeter restarted keeps its quotas and teaches them again, to a fresh node too.
  put = Api("PUT", "/api/v1/quotas",
            R"({"table":"/q","key":"acme","metric":"http_req_cnt","limit":10})");
  ASSERT_TRUE(put && put->status == 200) << (put ? put->body : "no answer");
  for (size_t n = 0; n < 3; ++n) {
    EXPECT_TRUE(Eventually([&] { return TableValue(n, "q.quota", "acme", "gpt0") == 1; }, 5s));
  }
  StopStickmeter();
  StartStickmeter({"--quota", "/q", "--aggregate", "/rl"});
  auto list = Api("GET", "/api/v1/quotas?table=/q");
  ASSERT_TRUE(list && list->status == 200);
  auto doc = nlohmann::json::parse(list->body);
  ASSERT_EQ(1u, doc["quotas"].size()) << list->body;
  EXPECT_EQ(10, doc["quotas"][0]["limit"]);
  EXPECT_TRUE(doc["quotas"][0]["over"].get<bool>()) << list->body;
  nodes_[2]->Kill();
  ASSERT_TRUE(nodes_[2]->Start(http_ports_[2], &error)) << error;
  EXPECT_TRUE(Eventually([&] { return TableValue(2, "q.quota", "acme", "gpt0") == 1; }, 20s))
      << Log();
  EXPECT_EQ(429, Request(2, "acme"));
}

// Sends 15 requests of one client to each of 3 nodes, interleaved; returns how many were
// refused. No node alone sees more than 15 in 10 s, under its limit of 25.
int RefusedOfClusterBurst(TeachTest* t, const std::function<int(size_t)>& request) {
  int refused = 0;
  for (int i = 0; i < 45; ++i) {
    const int status = request(static_cast<size_t>(i % 3));
    refused += status == 429 ? 1 : 0;
    std::this_thread::sleep_for(20ms);
  }
  (void)t;
  return refused;
}

TEST_F(TeachTest, ClusterWideRateLimitRefusesWhatNoNodeAloneWould) {
  StartStickmeter({"--aggregate", "/rl"});
  AddNodes(3);
  const int refused = RefusedOfClusterBurst(this, [&](size_t n) { return Request(n, "x", "c1"); });
  EXPECT_GT(refused, 0) << Log();
  EXPECT_LE(refused, 45 - 25);
  // Every node reads the cluster's rate: the sum of the nodes' own rates.
  for (size_t n = 0; n < 3; ++n) {
    long long own = 0;
    for (size_t m = 0; m < 3; ++m) own += TableValue(m, "rl", "c1", "http_req_rate(10000)");
    const long long sum = TableValue(n, "rl.aggregate", "c1", "http_req_rate(10000)");
    EXPECT_GT(sum, 25) << nodes_[n]->AdminCommand("show table billing/rl.aggregate");
    EXPECT_NEAR(own, sum, 3) << nodes_[n]->AdminCommand("show table billing/rl.aggregate");
  }
}

TEST_F(TeachTest, WithoutAggregateNothingIsRefused) {
  StartStickmeter({});
  AddNodes(3);
  EXPECT_EQ(0, RefusedOfClusterBurst(this, [&](size_t n) { return Request(n, "x", "c1"); }));
}

}  // namespace
}  // namespace stickmeter::testing
