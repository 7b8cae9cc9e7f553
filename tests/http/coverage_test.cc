// Data completeness through the API, against the real store: GET /api/v1/coverage for a period
// before the first data, one with a gap and one fully covered, its 400s and 404 naming the
// parameter, and the export's X-Stickmeter-Coverage header and JSON `coverage` object, while the
// CSV bytes stay exactly those of the format.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "billing/time_parse.h"
#include "common/time.h"
#include "http/server.h"
#include "tests/http/http_client.h"
#include "tests/http/store_fixture.h"
#include "tsdb/store.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::Get;

constexpr int64_t kMin = 60'000;

class CoverageApiTest : public testing::RealStoreTest {
 protected:
  void SetUp() override {
    OpenStore("http-coverage-test");
    // lb1 connected two hours ago, away from 90 to 60 minutes ago, connected since; 5 requests
    // of acme 30 minutes ago.
    now_ = NowUnixMs() / kMin * kMin;
    store_->SourceConnected("lb1", 1, At(-120));
    store_->SourceDisconnected("lb1", 1, At(-90));
    store_->SourceConnected("lb1", 2, At(-60));
    auto info = std::make_shared<ingest::TableInfo>();
    info->name = "/quota";
    info->key_type = "string";
    info->key_size = 65;
    info->data_types = {"http_req_cnt"};
    CommitEntry("lb1", 2, info, "acme", At(-30),
                {{"http_req_cnt", ingest::MetricKind::kCounter32, 5}});
    Serve();
  }
  int64_t At(int minutes) const { return now_ + minutes * kMin; }
  std::string Range(int from_min, int to_min) const {
    return "from=" + std::to_string(At(from_min)) + "&to=" + std::to_string(At(to_min));
  }
  json Coverage(const std::string& query) {
    auto r = Get(server_->port(), "/api/v1/coverage?" + query);
    EXPECT_EQ(200u, r.status) << query << " " << r.body;
    return json::parse(r.body);
  }
  void ExpectError(const std::string& target, unsigned status, const std::string& message) {
    auto r = Get(server_->port(), target);
    EXPECT_EQ(status, r.status) << target << " " << r.body;
    EXPECT_EQ(message,
              json::parse(r.body)["error"]["message"].get<std::string>().substr(0, message.size()))
        << r.body;
  }
  int64_t now_ = 0;
};

TEST_F(CoverageApiTest, BeforeTheFirstDataWithAGapAndComplete) {
  json before = Coverage(Range(-24 * 60, -23 * 60));
  EXPECT_EQ("none", before["status"]);
  EXPECT_EQ(At(-120), before["first_seen_ms"]);
  EXPECT_EQ(0, before["covered_ms"]);

  json gap = Coverage(Range(-180, -10));
  EXPECT_EQ("partial", gap["status"]);
  EXPECT_EQ(nullptr, gap["future_from_ms"]);
  EXPECT_EQ(80 * kMin, gap["covered_ms"]);
  ASSERT_EQ(1u, gap["sources"].size());
  const json& lb1 = gap["sources"][0];
  EXPECT_EQ("lb1", lb1["source"]);
  EXPECT_EQ("partial", lb1["status"]);
  EXPECT_EQ(true, lb1["connected"]);
  EXPECT_EQ(1, lb1["gap_count"]);
  EXPECT_EQ(30 * kMin, lb1["gap_ms"]);
  EXPECT_EQ((json{{{"from_ms", At(-90)}, {"to_ms", At(-60)}}}), lb1["gaps"]);
  EXPECT_EQ(json::array(), lb1["resyncs"]);

  json complete = Coverage(Range(-50, -40) + "&source=lb1");
  EXPECT_EQ("complete", complete["status"]);
  EXPECT_EQ(10 * kMin, complete["covered_ms"]);
  EXPECT_EQ(json::array(), complete["sources"][0]["gaps"]);

  // A range that runs past now is not complete: the rest has not happened yet.
  json running = Coverage(Range(-50, 60));
  EXPECT_EQ("partial", running["status"]);
  EXPECT_LE(At(0), running["future_from_ms"].get<int64_t>());
}

TEST_F(CoverageApiTest, BadParametersAreNamed) {
  ExpectError("/api/v1/coverage?to=" + std::to_string(At(0)), 400, "from: missing");
  ExpectError("/api/v1/coverage?from=" + std::to_string(At(0)), 400, "to: missing");
  ExpectError("/api/v1/coverage?from=yesterday&to=" + std::to_string(At(0)), 400, "from: ");
  ExpectError("/api/v1/coverage?" + Range(0, -10), 400, "from: must be before to");
  ExpectError("/api/v1/coverage?" + Range(-10, 0) + "&source=", 400, "source: empty");
  ExpectError("/api/v1/coverage?" + Range(-10, 0) + "&node=lb1", 400, "node: ");
  ExpectError("/api/v1/coverage?" + Range(-10, 0) + "&source=lb9", 404,
              "source: unknown source \"lb9\"");
}

TEST_F(CoverageApiTest, ExportSaysCoverageAndKeepsTheCsvBytes) {
  auto csv = Get(server_->port(), "/api/v1/export?" + Range(-50, -10));
  ASSERT_EQ(200u, csv.status) << csv.body;
  EXPECT_EQ("complete", csv.Header("x-stickmeter-coverage"));
  const std::string start = billing::FormatRfc3339InZone(At(-50), nullptr),
                    end = billing::FormatRfc3339InZone(At(-10), nullptr);
  EXPECT_EQ("period_start,period_end,table,key,metric,total\r\n" + start + "," + end +
                ",/quota,acme,http_req_cnt,5\r\n",
            csv.body);

  // Before the first data: zero rows, and the header tells it from zero usage.
  auto empty = Get(server_->port(), "/api/v1/export?" + Range(-24 * 60, -23 * 60));
  ASSERT_EQ(200u, empty.status) << empty.body;
  EXPECT_EQ("none", empty.Header("x-stickmeter-coverage"));
  EXPECT_EQ("period_start,period_end,table,key,metric,total\r\n", empty.body);

  auto js = Get(server_->port(), "/api/v1/export?format=json&" + Range(-180, -10));
  ASSERT_EQ(200u, js.status) << js.body;
  EXPECT_EQ("partial", js.Header("x-stickmeter-coverage"));
  json body = json::parse(js.body);
  EXPECT_EQ(false, body["partial"]);  // the period is over; its data is incomplete
  EXPECT_EQ("partial", body["coverage"]["status"]);
  EXPECT_EQ(1, body["coverage"]["sources"][0]["gap_count"]);
  EXPECT_EQ(5, body["rows"][0]["total"]);
}

}  // namespace
}  // namespace stickmeter::http
