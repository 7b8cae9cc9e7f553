// The server against the real tsdb::Store in a temporary directory, fed through Submit() as
// ingest would feed it. The property under test: every total the API reports (export, usage,
// series) equals the sum of the audit events' deltas over the same half-open range, and equals
// the increments the test itself generated.
#include "tsdb/store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/executor_work_guard.hpp>
#include <filesystem>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "billing/export.h"
#include "billing/time_parse.h"
#include "http/server.h"
#include "tests/http/http_client.h"
#include "tests/support/status_matchers.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::Get;

int64_t T(std::string_view text) { return *billing::ParseTime(text); }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/http-store-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string UrlEncode(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// (key, metric) -> total
using Totals = std::map<std::pair<std::string, std::string>, uint64_t>;

struct Increment {
  int64_t t_ms;
  std::string key;
  std::string metric;
  uint64_t delta;
};

class StoreApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tsdb::StoreOptions options;
    options.path = dir_.path() + "/db";
    options.sync_writes = false;
    auto store = tsdb::Store::Open(options);
    ASSERT_OK(store);
    store_ = std::move(store).value();
    Feed();
    ServerOptions server_options;
    server_options.port = 0;
    server_ = std::make_unique<Server>(io_, server_options, *store_, ServerHooks{});
    ASSERT_TRUE(server_->Start().ok());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) server_->Stop();
    work_.reset();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    if (store_) {
      EXPECT_TRUE(store_->Close().ok());
    }
  }

  // Random absolute counter values from two HAProxy nodes, Sep 28 .. Dec 3 2026, with many
  // updates near month boundaries in every zone under test.
  void Feed() {
    auto table = std::make_shared<ingest::TableInfo>();
    table->name = "/quota";
    table->key_type = "string";
    table->key_size = 65;
    table->expire_ms = 0;
    table->data_types = {"gpc0", "http_req_cnt"};
    std::mt19937_64 rng(42);
    const int64_t begin = T("2026-09-28T00:00:00Z"), end = T("2026-12-03T00:00:00Z");
    const int64_t edges[] = {T("2026-09-30T18:15:00Z"), T("2026-09-30T22:00:00Z"),
                             T("2026-10-01T00:00:00Z"), T("2026-10-31T18:15:00Z"),
                             T("2026-10-31T23:00:00Z"), T("2026-11-01T00:00:00Z"),
                             T("2026-11-01T04:00:00Z"), T("2026-12-01T05:00:00Z")};
    std::vector<int64_t> times;
    std::uniform_int_distribution<int64_t> anywhere(begin, end);
    std::uniform_int_distribution<int64_t> near(-3'600'000, 3'600'000);
    for (int i = 0; i < 2400; ++i) {
      times.push_back(i % 2 ? anywhere(rng) : edges[rng() % std::size(edges)] + near(rng));
    }
    std::sort(times.begin(), times.end());
    static constexpr std::string_view kMetrics[] = {"gpc0", "http_req_cnt"};
    std::map<std::tuple<std::string, std::string, std::string>, uint64_t> absolute;
    std::vector<std::future<Status>> pending;
    for (int64_t t : times) {
      std::string source = rng() % 2 ? "lb1" : "lb2";
      std::string key = "cust-" + std::to_string(rng() % 12);
      if (rng() % 7 == 0) key = "a,\"quoted\" key";
      ingest::UpdateBatch batch;
      batch.source = source;
      batch.connection_id = source == "lb1" ? 1 : 2;
      ingest::TableUpdates tu;
      tu.table = table;
      ingest::EntryUpdate e;
      e.key = key;
      e.received_ms = t;
      for (std::string_view metric : kMetrics) {
        uint64_t inc = rng() % 1000;
        uint64_t& v = absolute[{source, key, std::string(metric)}];
        v += inc;
        e.values.push_back({metric, ingest::MetricKind::kCounter32, v});
        if (inc != 0) increments_.push_back({t, key, std::string(metric), inc});
      }
      tu.entries.push_back(std::move(e));
      batch.tables.push_back(std::move(tu));
      auto promise = std::make_shared<std::promise<Status>>();
      pending.push_back(promise->get_future());
      Status s = store_->Submit(std::move(batch), [promise](Status st) { promise->set_value(st); });
      ASSERT_OK(s);
    }
    store_->Flush();
    for (auto& f : pending) ASSERT_TRUE(f.get().ok());
  }

  Totals Expected(int64_t from, int64_t to) const {
    Totals totals;
    for (const auto& inc : increments_) {
      if (inc.t_ms >= from && inc.t_ms < to) totals[{inc.key, inc.metric}] += inc.delta;
    }
    return totals;
  }

  // Sum of the audit trail's deltas, following the `next` cursor.
  Totals FromAudit(int64_t from, int64_t to, const std::vector<std::string>& keys) {
    Totals totals;
    for (const auto& key : keys) {
      std::string base = "/api/v1/audit?table=/quota&key=" + UrlEncode(key) +
                         "&from=" + std::to_string(from) + "&to=" + std::to_string(to) +
                         "&limit=97";
      std::string target = base;
      for (;;) {
        auto r = Get(server_->port(), target);
        EXPECT_EQ(200u, r.status) << r.body;
        auto doc = json::parse(r.body);
        for (const auto& e : doc["events"]) {
          int64_t t = e["t"];
          EXPECT_TRUE(t >= from && t < to);
          if (e["delta"].get<uint64_t>() != 0) {
            totals[{key, e["metric"].get<std::string>()}] += e["delta"].get<uint64_t>();
          }
        }
        if (!doc["next"].is_string()) break;
        target = base + "&after=" + doc["next"].get<std::string>();
      }
    }
    return totals;
  }

  TempDir dir_;
  std::unique_ptr<tsdb::Store> store_;
  std::vector<Increment> increments_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      boost::asio::make_work_guard(io_)};
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(StoreApiTest, ExportEqualsSumOfAuditEventsInEveryZone) {
  auto keys_doc = json::parse(Get(server_->port(), "/api/v1/keys?table=/quota").body);
  std::vector<std::string> keys = keys_doc["keys"];
  ASSERT_EQ(13u, keys.size());
  struct Case {
    const char* period;
    const char* tz;
  };
  for (const Case& c : {Case{"2026-10", "UTC"}, Case{"2026-10", "Europe/Berlin"},
                        Case{"2026-11", "America/New_York"}, Case{"2026-10", "Asia/Kathmandu"}}) {
    SCOPED_TRACE(std::string(c.period) + " " + c.tz);
    auto range = billing::ResolveMonth(c.period, *billing::LocateZone(c.tz));
    ASSERT_TRUE(range.ok());
    auto r = Get(server_->port(),
                 std::string("/api/v1/export?format=json&period=") + c.period + "&tz=" + c.tz);
    ASSERT_EQ(200u, r.status) << r.body;
    auto doc = json::parse(r.body);
    Totals exported;
    for (const auto& row : doc["rows"]) {
      exported[{row["key"].get<std::string>(), row["metric"].get<std::string>()}] =
          row["total"].get<uint64_t>();
    }
    Totals expected = Expected(range->start_ms, range->end_ms);
    EXPECT_FALSE(expected.empty());
    EXPECT_EQ(expected, exported);
    EXPECT_EQ(expected, FromAudit(range->start_ms, range->end_ms, keys));

    // Usage and hourly series agree with the export for one metric.
    auto usage = json::parse(Get(server_->port(), "/api/v1/usage?table=/quota&metric=gpc0&from=" +
                                                      std::to_string(range->start_ms) +
                                                      "&to=" + std::to_string(range->end_ms))
                                 .body);
    for (const auto& row : usage["rows"]) {
      std::string key = row["key"];
      EXPECT_EQ((expected[{key, "gpc0"}]), row["total"].get<uint64_t>()) << key;
    }
    std::string key = keys.front();
    auto series = json::parse(
        Get(server_->port(), "/api/v1/series?table=/quota&metric=gpc0&key=" + UrlEncode(key) +
                                 "&step=1h&from=" + std::to_string(range->start_ms) +
                                 "&to=" + std::to_string(range->end_ms))
            .body);
    EXPECT_EQ(3600000, series["step_ms"]);
    uint64_t sum = 0;
    for (const auto& p : series["points"]) sum += p["v"].get<uint64_t>();
    // Hour buckets are aligned to UTC hours; Kathmandu's month starts at :15, so the edge
    // buckets hold events outside the month. Compare only where the month is hour-aligned.
    if (range->start_ms % 3'600'000 == 0 && range->end_ms % 3'600'000 == 0) {
      EXPECT_EQ((expected[{key, "gpc0"}]), sum);
    }

    // The CSV form is byte-identical across requests and matches its trailer checksum.
    std::string csv_target = std::string("/api/v1/export?period=") + c.period + "&tz=" + c.tz;
    auto a = Get(server_->port(), csv_target);
    auto b = Get(server_->port(), csv_target);
    ASSERT_EQ(200u, a.status);
    EXPECT_EQ(a.body, b.body);
    EXPECT_EQ(64u, a.Header("x-content-sha256").size());
    EXPECT_EQ(a.Header("x-content-sha256"), b.Header("x-content-sha256"));
    billing::ExportRequest req;
    req.period = c.period;
    req.tz = c.tz;
    std::string direct, sha;
    ASSERT_TRUE(billing::WriteExport(
                    *store_, req, [&](std::string_view s) { direct += s; }, &sha)
                    .ok());
    EXPECT_EQ(direct, a.body);
    EXPECT_EQ(sha, a.Header("x-content-sha256"));
  }
}

TEST_F(StoreApiTest, TablesAndErrorsFromTheRealStore) {
  auto tables = json::parse(Get(server_->port(), "/api/v1/tables").body);
  ASSERT_EQ(1u, tables["tables"].size());
  EXPECT_EQ("/quota", tables["tables"][0]["name"]);
  EXPECT_EQ(json({"lb1", "lb2"}), tables["tables"][0]["sources"]);
  auto r = Get(server_->port(), "/api/v1/usage?table=/nope&metric=gpc0&from=0&to=1");
  EXPECT_EQ(404u, r.status) << r.body;
  r = Get(server_->port(), "/api/v1/export?period=2026-10&table=/nope");
  EXPECT_EQ(404u, r.status) << r.body;
  r = Get(server_->port(), "/api/v1/export?period=2026-10&metric=nope");
  EXPECT_EQ(404u, r.status) << r.body;
}

}  // namespace
}  // namespace stickmeter::http
