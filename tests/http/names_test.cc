// The server against the real tsdb::Store: names the store has never seen are told apart from
// names without data in a range. A misspelt key or source is a 404 naming it (not an empty 200
// that reads as zero usage), a gauge given to the audit trail is a 400 saying so, gauges have a
// series of maxima, and /api/v1/keys pages through a table with its `next` cursor.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include "billing/time_parse.h"
#include "http/server.h"
#include "tests/http/http_client.h"
#include "tests/http/store_fixture.h"
#include "tests/support/status_matchers.h"
#include "tsdb/store.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::Get;

int64_t T(std::string_view text) { return *billing::ParseTime(text); }

class NamesTest : public testing::RealStoreTest {
 protected:
  void SetUp() override {
    OpenStore("http-names-test");
    // acme: 3, 10, 10 requests from lb1 (10 counted) with 2, 5, 1 connections open; beta from
    // lb2; k00..k24 for paging.
    Submit("lb1", "acme", T("2026-10-05T10:00:00Z"), 3, 2);
    Submit("lb1", "acme", T("2026-10-05T10:20:00Z"), 10, 5);
    Submit("lb1", "acme", T("2026-10-05T11:10:00Z"), 10, 1);
    Submit("lb2", "beta", T("2026-10-06T00:00:00Z"), 4, 1);
    for (int i = 0; i < 25; ++i) {
      char key[8];
      std::snprintf(key, sizeof key, "k%02d", i);
      Submit("lb2", key, T("2026-10-07T00:00:00Z"), 1, 0);
    }
    Serve();
  }

  // One update of `key` from `source`: the absolute request counter and the open connections.
  void Submit(const std::string& source, const std::string& key, int64_t t, uint64_t requests,
              uint64_t connections) {
    static const auto table = [] {
      auto info = std::make_shared<ingest::TableInfo>();
      info->name = "/quota";
      info->key_type = "string";
      info->key_size = 65;
      info->data_types = {"http_req_cnt", "conn_cur"};
      return info;
    }();
    CommitEntry(source, source == "lb1" ? 1 : 2, table, key, t,
                {{"http_req_cnt", ingest::MetricKind::kCounter32, requests},
                 {"conn_cur", ingest::MetricKind::kGauge, connections}});
  }

  json GetJson(const std::string& target, unsigned want = 200) {
    auto r = Get(server_->port(), target);
    EXPECT_EQ(want, r.status) << target << " " << r.body;
    auto doc = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << r.body;
    return doc;
  }

  // The error's message starts with `param` and contains every one of `words`.
  void ExpectError(const std::string& target, unsigned status, const std::string& param,
                   std::initializer_list<std::string_view> words) {
    json doc = GetJson(target, status);
    ASSERT_TRUE(doc.contains("error")) << doc.dump();
    EXPECT_EQ(status == 404 ? "not_found" : "bad_request", doc["error"]["code"]);
    std::string msg = doc["error"]["message"];
    EXPECT_EQ(0u, msg.find(param)) << target << " -> " << msg;
    for (auto w : words) EXPECT_NE(std::string::npos, msg.find(w)) << w << " in " << msg;
  }
};

const std::string kRange = "&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z";

TEST_F(NamesTest, UnknownKeyIsNotFoundForUsageSeriesAndAudit) {
  const std::string usage = "/api/v1/usage?table=/quota&metric=http_req_cnt" + kRange;
  const std::string series = "/api/v1/series?table=/quota&metric=http_req_cnt" + kRange;
  const std::string audit = "/api/v1/audit?table=/quota" + kRange;
  ExpectError(usage + "&key=acmee", 404, "key:", {"unknown key", "\"acmee\""});
  ExpectError(series + "&key=acmee", 404, "key:", {"unknown key", "\"acmee\""});
  ExpectError(audit + "&key=acmee", 404, "key:", {"unknown key", "\"acmee\""});
  // A prefix of a known key is not that key.
  ExpectError(usage + "&key=acm", 404, "key:", {"\"acm\""});
  // The known key is answered, with data in its range and without data out of it.
  EXPECT_EQ(json::parse(R"([{"key":"acme","total":10}])"), GetJson(usage + "&key=acme")["rows"]);
  // first (3) and increment (7); the unchanged third value adds no event.
  EXPECT_EQ(2u, GetJson(audit + "&key=acme&metric=http_req_cnt")["events"].size());
  const std::string december = "&from=2026-12-01T00:00:00Z&to=2027-01-01T00:00:00Z";
  EXPECT_EQ(json::array(),
            GetJson("/api/v1/usage?table=/quota&metric=http_req_cnt&key=acme" + december)["rows"]);
  EXPECT_EQ(json::array(), GetJson("/api/v1/series?table=/quota&metric=http_req_cnt&key=acme" +
                                   december)["points"]);
  EXPECT_EQ(json::array(), GetJson("/api/v1/audit?table=/quota&key=acme" + december)["events"]);
  // An unknown table is still named as the table.
  ExpectError("/api/v1/audit?table=/nope&key=acme" + kRange, 404, "table:", {});
}

TEST_F(NamesTest, UnknownSourceIsNotFound) {
  const std::string usage = "/api/v1/usage?table=/quota&metric=http_req_cnt" + kRange;
  ExpectError(usage + "&source=lb9", 404, "source:", {"unknown source", "\"lb9\"", "lb1, lb2"});
  ExpectError("/api/v1/series?table=/quota&metric=http_req_cnt&key=acme&source=lb9" + kRange, 404,
              "source:", {"\"lb9\""});
  // A known source without data for this key answers empty.
  EXPECT_EQ(json::array(), GetJson(usage + "&key=acme&source=lb2")["rows"]);
  EXPECT_EQ(json::parse(R"([{"key":"beta","total":4}])"),
            GetJson(usage + "&key=beta&source=lb2")["rows"]);
}

TEST_F(NamesTest, GaugesHaveSeriesOfMaximaButNoAuditOrUsage) {
  ExpectError("/api/v1/audit?table=/quota&key=acme&metric=conn_cur" + kRange, 400,
              "metric:", {"\"conn_cur\" is a gauge", "counters"});
  ExpectError("/api/v1/usage?table=/quota&metric=conn_cur" + kRange, 400,
              "metric:", {"gauge", "max or last"});
  json series = GetJson("/api/v1/series?table=/quota&metric=conn_cur&key=acme&step=1h" + kRange);
  EXPECT_EQ(true, series["gauge"]);
  EXPECT_EQ(3600000, series["step_ms"]);
  EXPECT_EQ(
      json::parse("[{\"t\":" + std::to_string(T("2026-10-05T10:00:00Z")) +
                  ",\"v\":5},{\"t\":" + std::to_string(T("2026-10-05T11:00:00Z")) + ",\"v\":1}]"),
      series["points"]);
  EXPECT_EQ("max", series["agg"]);
  json tables = GetJson("/api/v1/tables");
  EXPECT_EQ(json({"conn_cur"}), tables["tables"][0]["gauge_metrics"]);
}

TEST_F(NamesTest, AGaugesLastValuePerStepIsCarriedForward) {
  const std::string hours = "/api/v1/series?table=/quota&key=acme&step=1h&from=" +
                            std::to_string(T("2026-10-05T10:00:00Z")) +
                            "&to=" + std::to_string(T("2026-10-05T13:00:00Z"));
  json series = GetJson(hours + "&metric=conn_cur&agg=last");
  EXPECT_EQ("last", series["agg"]);
  // 2 then 5 in the first hour (5 is its last), 1 in the second, still 1 in the third.
  EXPECT_EQ(
      json::parse("[{\"t\":" + std::to_string(T("2026-10-05T10:00:00Z")) +
                  ",\"v\":5},{\"t\":" + std::to_string(T("2026-10-05T11:00:00Z")) +
                  ",\"v\":1},{\"t\":" + std::to_string(T("2026-10-05T12:00:00Z")) + ",\"v\":1}]"),
      series["points"]);
  ExpectError(hours + "&metric=conn_cur&agg=avg", 400, "agg:", {"\"avg\"", "max or last"});
  ExpectError(hours + "&metric=http_req_cnt&agg=last", 400, "agg:", {"counter"});
}

TEST_F(NamesTest, AGaugesUsageIsItsPeakOrItsLastValuePerKey) {
  const std::string usage = "/api/v1/usage?table=/quota&metric=conn_cur";
  json peak = GetJson(usage + "&agg=max&order=total" + kRange);
  EXPECT_EQ("max", peak["agg"]);
  ASSERT_EQ(27u, peak["rows"].size());  // every key with a sample, 0 included
  EXPECT_EQ(json::parse(R"({"key":"acme","total":5})"), peak["rows"][0]);
  EXPECT_EQ(json::parse(R"({"key":"beta","total":1})"), peak["rows"][1]);
  EXPECT_EQ(json::parse(R"({"key":"k00","total":0})"), peak["rows"][2]);
  // The last value at `to`: 1 at the month's end, 5 at 10:30 on the 5th.
  EXPECT_EQ(json::parse(R"([{"key":"acme","total":1}])"),
            GetJson(usage + "&agg=last&key=acme" + kRange)["rows"]);
  EXPECT_EQ(
      json::parse(R"([{"key":"acme","total":5}])"),
      GetJson(usage +
              "&agg=last&key=acme&from=2026-10-05T10:25:00Z&to=2026-10-05T10:30:00Z")["rows"]);
  // No sample of beta from lb1.
  EXPECT_EQ(json::array(), GetJson(usage + "&agg=max&key=beta&source=lb1" + kRange)["rows"]);
  ExpectError(usage + "&agg=sum" + kRange, 400, "agg:", {"max or last"});
  ExpectError("/api/v1/usage?table=/quota&metric=http_req_cnt&agg=max" + kRange, 400,
              "agg:", {"counter"});
}

TEST_F(NamesTest, ASeriesWithoutAKeyIsTheWholeTables) {
  json series = GetJson("/api/v1/series?table=/quota&metric=http_req_cnt&step=1d" + kRange);
  EXPECT_EQ(false, series["gauge"]);
  // acme 10 on the 5th, beta 4 on the 6th, k00..k24 1 each on the 7th.
  EXPECT_EQ(
      json::parse("[{\"t\":" + std::to_string(T("2026-10-05T00:00:00Z")) +
                  ",\"v\":10},{\"t\":" + std::to_string(T("2026-10-06T00:00:00Z")) +
                  ",\"v\":4},{\"t\":" + std::to_string(T("2026-10-07T00:00:00Z")) + ",\"v\":25}]"),
      series["points"]);
  ExpectError("/api/v1/series?table=/quota&metric=http_req_cnt&key=" + kRange, 400,
              "key:", {"leave it out"});
  ExpectError("/api/v1/series?table=/quota&metric=conn_cur" + kRange, 400, "key:", {"gauge"});
}

TEST_F(NamesTest, KeysPageWithTheNextCursor) {
  std::vector<std::string> all;
  std::string target = "/api/v1/keys?table=/quota&limit=10";
  int pages = 0;
  for (;;) {
    json page = GetJson(target);
    ++pages;
    ASSERT_LE(page["keys"].size(), 10u);
    for (const auto& k : page["keys"]) all.push_back(k);
    EXPECT_EQ(page["truncated"], page["next"].is_string());
    if (!page["next"].is_string()) break;
    EXPECT_EQ(page["keys"].back(), page["next"]);
    target = "/api/v1/keys?table=/quota&limit=10&after=" + page["next"].get<std::string>();
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(3, pages);
  ASSERT_EQ(27u, all.size());
  EXPECT_EQ("acme", all.front());
  EXPECT_EQ("beta", all[1]);
  EXPECT_EQ("k24", all.back());
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  // The default page holds them all; a prefix pages the same way; a cursor past the end is
  // an empty last page.
  json whole = GetJson("/api/v1/keys?table=/quota");
  EXPECT_EQ(27u, whole["keys"].size());
  EXPECT_TRUE(whole["next"].is_null());
  json k = GetJson("/api/v1/keys?table=/quota&prefix=k1&limit=4&after=k12");
  EXPECT_EQ(json({"k13", "k14", "k15", "k16"}), k["keys"]);
  EXPECT_EQ("k16", k["next"]);
  k = GetJson("/api/v1/keys?table=/quota&prefix=k1&after=k16");
  EXPECT_EQ(json({"k17", "k18", "k19"}), k["keys"]);
  EXPECT_TRUE(k["next"].is_null());
  k = GetJson("/api/v1/keys?table=/quota&prefix=k&after=a");
  EXPECT_EQ(25u, k["keys"].size());
  EXPECT_EQ(json::array(), GetJson("/api/v1/keys?table=/quota&after=zzz")["keys"]);
  ExpectError("/api/v1/keys?table=/quota&limit=100001", 400, "limit:", {"100000"});
  ExpectError("/api/v1/keys?table=/nope&after=a", 404, "table:", {});
}

}  // namespace
}  // namespace stickmeter::http
