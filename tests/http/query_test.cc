// Queries run on the query pool, apart from the I/O threads: admission control (503), the
// deadline (504), dropping a query whose client left, and I/O staying prompt while queries
// block. The real server on 127.0.0.1 against a FakeStore whose usage calls can be held.
#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "billing/time_parse.h"
#include "http/server.h"
#include "tests/http/fake_store.h"
#include "tests/http/gated_store.h"
#include "tests/http/http_client.h"
#include "tests/http/test_server.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::GatedStore;
using testing::Get;
using testing::QuotaTable;
using testing::SendRaw;
using testing::TestServer;
using namespace std::chrono_literals;

constexpr std::string_view kUsage =
    "/api/v1/usage?table=/quota&metric=gpc0&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z";

std::string UsageFor(const std::string& key) { return std::string(kUsage) + "&key=" + key; }

// The value of an unlabelled metric in /metrics, or -1.
double Metric(uint16_t port, const std::string& name) {
  auto r = Get(port, "/metrics");
  size_t pos = 0;
  while ((pos = r.body.find(name + " ", pos)) != std::string::npos) {
    if (pos == 0 || r.body[pos - 1] == '\n') return std::stod(r.body.substr(pos + name.size()));
    pos += name.size();
  }
  return -1;
}

// Waits until the server holds `n` queries (queued or running).
bool WaitInFlight(uint16_t port, double n, std::chrono::milliseconds timeout = 5s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (Metric(port, "stickmeter_http_queries_in_flight") == n) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

class QueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_.AddTable(QuotaTable());
    store_.Add(
        {"/quota", "acme", "lb1", "gpc0", *billing::ParseTime("2026-10-05T10:00:00Z"), 10, 10});
    store_.Add(
        {"/quota", "beta", "lb1", "gpc0", *billing::ParseTime("2026-10-06T10:00:00Z"), 7, 7});
  }
  void TearDown() override { store_.Open(); }

  GatedStore store_;
};

TEST_F(QueryTest, SaturatedPoolAnswers503WithRetryAfter) {
  ServerOptions options;
  options.query_threads = 1;
  options.max_queries = 2;
  TestServer server(store_, options);
  uint16_t port = server.port();
  store_.Close();
  auto a = std::async(std::launch::async, [&] { return Get(port, UsageFor("acme")); });
  auto b = std::async(std::launch::async, [&] { return Get(port, UsageFor("beta")); });
  ASSERT_TRUE(WaitInFlight(port, 2));  // one running, one queued

  auto r = Get(port, UsageFor("acme"));
  EXPECT_EQ(503u, r.status) << r.error;
  EXPECT_EQ("1", r.Header("retry-after"));
  EXPECT_EQ("application/json", r.Header("content-type"));
  EXPECT_EQ(std::to_string(r.body.size()), r.Header("content-length"));
  auto doc = json::parse(r.body, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.body;
  EXPECT_EQ("unavailable", doc["error"]["code"]);
  // Health, metrics and the peers list are not queries: still answered.
  EXPECT_EQ(200u, Get(port, "/api/v1/health").status);
  EXPECT_EQ(200u, Get(port, "/api/v1/peers").status);

  store_.Open();
  EXPECT_EQ(200u, a.get().status);
  EXPECT_EQ(200u, b.get().status);
  EXPECT_TRUE(WaitInFlight(port, 0));
  EXPECT_EQ(200u, Get(port, UsageFor("acme")).status);
}

TEST_F(QueryTest, TooManyConnectionsAnswerHasTheRightLength) {
  ServerOptions options;
  options.max_connections = 1;
  TestServer server(store_, options);
  uint16_t port = server.port();
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket held(io);
  held.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  // The held connection counts once accepted; retry until the refusal shows.
  testing::RawResult raw;
  for (int i = 0; i < 100 && raw.data.find(" 503 ") == std::string::npos; ++i) {
    raw = SendRaw(port, "", 1s);
  }
  ASSERT_NE(std::string::npos, raw.data.find(" 503 ")) << raw.data;
  size_t head_end = raw.data.find("\r\n\r\n");
  ASSERT_NE(std::string::npos, head_end);
  std::string body = raw.data.substr(head_end + 4);
  EXPECT_NE(std::string::npos,
            raw.data.find("Content-Length: " + std::to_string(body.size()) + "\r\n"))
      << raw.data;
  EXPECT_FALSE(json::parse(body, nullptr, false).is_discarded()) << body;
}

TEST_F(QueryTest, PastTheDeadlineAnswers504) {
  ServerOptions options;
  options.query_timeout_ms = 300;
  TestServer server(store_, options);
  uint16_t port = server.port();
  store_.Close();
  auto start = std::chrono::steady_clock::now();
  auto r = Get(port, UsageFor("acme"));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(504u, r.status) << r.error;
  auto doc = json::parse(r.body, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.body;
  EXPECT_EQ("timeout", doc["error"]["code"]);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
  // The running query keeps its place until it ends; then the pool is free again.
  store_.Open();
  EXPECT_TRUE(WaitInFlight(port, 0));
  EXPECT_EQ(200u, Get(port, UsageFor("acme")).status);
}

TEST_F(QueryTest, QueryOfAClientThatLeftWhileQueuedNeverRuns) {
  ServerOptions options;
  options.query_threads = 1;
  TestServer server(store_, options);
  uint16_t port = server.port();
  store_.Close();
  auto a = std::async(std::launch::async, [&] { return Get(port, UsageFor("acme")); });
  ASSERT_TRUE(store_.WaitStarted(1));
  double abandoned = 0;
  // A second client asks, then hangs up while its query waits behind the first.
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    std::string req = "GET " + UsageFor("beta") + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    boost::asio::write(socket, boost::asio::buffer(req));
    ASSERT_TRUE(WaitInFlight(port, 2));
    abandoned = Metric(port, "stickmeter_http_queries_abandoned_total");
  }
  // Wait until the server has seen the hangup, then let the first query finish.
  auto end = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < end &&
         Metric(port, "stickmeter_http_queries_abandoned_total") < abandoned + 1) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(abandoned + 1, Metric(port, "stickmeter_http_queries_abandoned_total"));
  store_.Open();
  EXPECT_EQ(200u, a.get().status);
  EXPECT_TRUE(WaitInFlight(port, 0));
  EXPECT_EQ(std::vector<std::string>{"acme"}, store_.started());
}

TEST_F(QueryTest, IoStaysPromptWhileQueriesBlock) {
  ServerOptions options;  // 2 query threads, 4 queries; the io_context has 2 threads
  TestServer server(store_, options);
  uint16_t port = server.port();
  store_.Close();
  std::vector<std::future<testing::ClientResponse>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::async(std::launch::async, [&] { return Get(port, UsageFor("acme")); }));
  }
  ASSERT_TRUE(WaitInFlight(port, 4));
  // For 3 s, while every query slot is held: health answers and a timer on the same
  // io_context (a stand-in for a peer's heartbeat) fire on time.
  auto release = std::chrono::steady_clock::now() + 3s;
  std::chrono::nanoseconds worst_health{0}, worst_timer{0};
  while (std::chrono::steady_clock::now() < release) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(200u, Get(port, "/api/v1/health").status);
    worst_health = std::max(worst_health, std::chrono::steady_clock::now() - t0);

    std::promise<std::chrono::steady_clock::time_point> fired;
    boost::asio::steady_timer timer(server.io(), 20ms);
    auto due = std::chrono::steady_clock::now() + 20ms;
    timer.async_wait(
        [&](boost::system::error_code) { fired.set_value(std::chrono::steady_clock::now()); });
    auto f = fired.get_future();
    ASSERT_EQ(std::future_status::ready, f.wait_for(2s));
    worst_timer = std::max(worst_timer, f.get() - due);
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(2u, store_.started().size());  // two running, two queued
  store_.Open();
  for (auto& f : held) EXPECT_EQ(200u, f.get().status);
  EXPECT_LT(worst_health, 500ms);
  EXPECT_LT(worst_timer, 500ms);
}

}  // namespace
}  // namespace stickmeter::http
