// Series beyond one counter key: a gauge's series read as the maximum or as the last value per
// step (over two HAProxy nodes, with a node's value from before the range carried in, and
// nothing carried past now), and a table's series, the sum of every key's, which must equal the
// keys' own series added up.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/time.h"
#include "tests/support/status_matchers.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/store.h"
#include "tsdb/store_testing.h"

namespace stickmeter::tsdb::testing {
namespace {

constexpr int64_t kHour = 3'600'000;

class GaugeSeriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.path = dir_.Sub("db");
    options.sync_writes = false;
    store_ = OpenOrDie(options);
    ASSERT_NE(nullptr, store_);
    // A day and more ago, on the hour, so that every step below lies in the past.
    base_ = (NowUnixMs() - 26 * kHour) / kHour * kHour;
    Sample("lb2", base_ - 3 * kHour, 10);  // before the range: carried in by `last`
    Sample("lb1", base_, 5);
    Sample("lb1", base_ + 30'000, 7);  // the minute's last and largest
    Sample("lb2", base_ + kHour + 5'000, 4);
    Sample("lb1", base_ + 2 * kHour + 10'000, 2);
    ASSERT_OK(SubmitSync(*store_, Batch("lb1", 1, table_, "k", base_, {{"gpc0", 8}})));
  }

  void Sample(const std::string& source, int64_t t, int64_t v) {
    ASSERT_OK(SubmitSync(
        *store_, Batch(source, source == "lb1" ? 1 : 2, table_, "k", t,
                       {{"conn_cur", static_cast<uint64_t>(v), ingest::MetricKind::kGauge}})));
  }

  // "t=v ..." with t in hours after base_.
  std::string Points(std::optional<GaugeAgg> agg, std::optional<std::string> source = {},
                     int64_t to_hours = 4) {
    SeriesQuery q{"/g", "conn_cur", "k", base_, base_ + to_hours * kHour, kHour, source};
    q.gauge_agg = agg;
    auto s = store_->GetSeries(q);
    EXPECT_OK(s.status());
    if (!s.ok()) return "error";
    EXPECT_TRUE(s->gauge);
    std::string out;
    for (const auto& p : s->points) {
      out += std::to_string((p.t_ms - base_) / kHour) + "=" +
             std::to_string(static_cast<int64_t>(p.v)) + " ";
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::shared_ptr<const ingest::TableInfo> table_ = Table("/g");
  int64_t base_ = 0;
};

TEST_F(GaugeSeriesTest, MaxIsTheLargestSampleOfAnyNodeInTheStep) {
  EXPECT_EQ("0=7 1=4 2=2 ", Points(std::nullopt));
  EXPECT_EQ("0=7 1=4 2=2 ", Points(GaugeAgg::kMax));
  EXPECT_EQ("1=4 ", Points(GaugeAgg::kMax, "lb2"));
}

TEST_F(GaugeSeriesTest, LastSumsEachNodesValueAtTheStepsEndCarriedForward) {
  // lb1: 7, 7, 2, 2; lb2: 10 (from before the range), 4, 4, 4.
  EXPECT_EQ("0=17 1=11 2=6 3=6 ", Points(GaugeAgg::kLast));
  EXPECT_EQ("0=10 1=4 2=4 3=4 ", Points(GaugeAgg::kLast, "lb2"));
  EXPECT_EQ("0=7 1=7 2=2 3=2 ", Points(GaugeAgg::kLast, "lb1"));
}

TEST_F(GaugeSeriesTest, LastCarriesNothingPastNow) {
  const std::string points = Points(GaugeAgg::kLast, std::nullopt, 30);
  // Steps 0..25 start more than an hour before now; step 26 may or may not have begun; steps
  // 27..29 lie in the future.
  EXPECT_EQ(0u, points.find("0=17 1=11 2=6 3=6 4=6 "));
  EXPECT_NE(std::string::npos, points.find(" 25=6 "));
  EXPECT_EQ(std::string::npos, points.find(" 27="));
}

TEST_F(GaugeSeriesTest, ACounterHasNoMaxOrLast) {
  SeriesQuery q{"/g", "gpc0", "k", base_, base_ + kHour, kHour, std::nullopt};
  q.gauge_agg = GaugeAgg::kLast;
  auto s = store_->GetSeries(q);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(0u, s.status().message().find("agg: ")) << s.status().ToString();
}

class TableSeriesTest : public ::testing::TestWithParam<StoreWay> {};

TEST_P(TableSeriesTest, EqualsEveryKeysSeriesAddedUp) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.Sub("db");
  options.sync_writes = false;
  auto store = OpenOrDie(options);
  ASSERT_NE(nullptr, store);
  GetParam().ApplyTo(*store);
  auto table = Table("/t");
  std::mt19937_64 rng(7);
  const int64_t now = NowUnixMs();
  const int64_t start = (now - 3 * 86'400'000) / kHour * kHour;
  std::map<std::pair<std::string, std::string>, uint64_t> abs;  // (source, key) -> value
  std::vector<std::string> keys;
  for (int i = 0; i < 12; ++i) keys.push_back("k" + std::to_string(i));
  for (int i = 0; i < 600; ++i) {
    const std::string source = rng() % 3 == 0 ? "lb2" : "lb1";
    const std::string& key = keys[rng() % keys.size()];
    const int64_t t = start + static_cast<int64_t>(rng() % (now - start));
    uint64_t& v = abs[{source, key}];
    v += 1 + rng() % 40;
    // The last updates are only acknowledged: they may still wait in the journal.
    auto b = Batch(source, source == "lb1" ? 1 : 2, table, key, t, {{"http_req_cnt", v}});
    ASSERT_OK(i < 560 ? SubmitSync(*store, std::move(b)) : SubmitAcked(*store, std::move(b)));
  }
  constexpr int64_t kMinute = 60'000;
  std::vector<std::pair<int64_t, int64_t>> ranges = {
      {start, start + 3 * 86'400'000},                  // whole hours and days
      {start + 17 * kMinute, now / kMinute * kMinute},  // ragged hours at both ends
      {start + 86'400'000 - 5 * kMinute, start + 86'400'000 + 7 * kMinute},
      {now / kMinute * kMinute - 30 * kMinute, now / kMinute * kMinute + 2 * kMinute},
      {start + 1'234, now - 4'321},  // sub-minute edges
      {start + 86'400'000 - 61'001, start + 86'400'000 + 59'999},
  };
  for (int i = 0; i < 20; ++i) {  // and random ones, some within a minute
    const int64_t a = start + static_cast<int64_t>(rng() % (now - start));
    ranges.emplace_back(a, a + 1 + static_cast<int64_t>(rng() % (i % 2 ? 50'000 : 20'000'000)));
  }
  int compared = 0;  // comparisons with something in the range
  for (const auto& [from, to] : ranges) {
    for (int64_t step : {kMinute, kHour, int64_t{86'400'000}}) {
      if ((to - from) / step > 100'000) continue;
      for (std::optional<std::string> source :
           {std::optional<std::string>{}, std::optional<std::string>{"lb2"}}) {
        const std::string where = std::to_string(from - start) + ".." + std::to_string(to - start) +
                                  " step " + std::to_string(step) + " " + source.value_or("all");
        std::map<int64_t, uint64_t> want;
        for (const auto& key : keys) {
          auto s = store->GetSeries(SeriesQuery{"/t", "http_req_cnt", key, from, to, step, source});
          ASSERT_OK(s.status());
          for (const auto& p : s->points) want[p.t_ms] += p.v;
        }
        auto whole =
            store->GetSeries(SeriesQuery{"/t", "http_req_cnt", "", from, to, step, source});
        ASSERT_OK(whole.status());
        std::map<int64_t, uint64_t> got;
        for (const auto& p : whole->points) got[p.t_ms] += p.v;
        if (!want.empty()) ++compared;
        EXPECT_EQ(want, got) << where;
        EXPECT_EQ(got.size(), whole->points.size()) << where << ": one point per step";
      }
    }
  }
  // The short ranges may hold nothing; the first two (days long) always hold updates.
  EXPECT_GE(compared, 10);
}

TEST_P(TableSeriesTest, NeedsACounterAndReadsSubMinuteEdges) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.Sub("db");
  options.sync_writes = false;
  auto store = OpenOrDie(options);
  ASSERT_NE(nullptr, store);
  GetParam().ApplyTo(*store);
  auto table = Table("/t");
  const int64_t t = NowUnixMs() / kHour * kHour - kHour;
  ASSERT_OK(SubmitSync(*store,
                       Batch("lb1", 1, table, "k", t,
                             {{"http_req_cnt", 5}, {"conn_cur", 2, ingest::MetricKind::kGauge}})));
  auto gauge =
      store->GetSeries(SeriesQuery{"/t", "conn_cur", "", t, t + kHour, kHour, std::nullopt});
  ASSERT_FALSE(gauge.ok());
  EXPECT_EQ(0u, gauge.status().message().find("key: ")) << gauge.status().ToString();
  auto after = store->GetSeries(
      SeriesQuery{"/t", "http_req_cnt", "", t + 1, t + kHour, kHour, std::nullopt});
  ASSERT_OK(after.status());
  EXPECT_TRUE(after->points.empty());
  auto at =
      store->GetSeries(SeriesQuery{"/t", "http_req_cnt", "", t - 1, t + 1, kHour, std::nullopt});
  ASSERT_OK(at.status());
  ASSERT_EQ(1u, at->points.size());
  EXPECT_EQ(t, at->points[0].t_ms);  // the update at t, in the step [t, t + 1h)
  EXPECT_EQ(5u, at->points[0].v);
  auto whole =
      store->GetSeries(SeriesQuery{"/t", "http_req_cnt", "", t, t + kHour, kHour, std::nullopt});
  ASSERT_OK(whole.status());
  ASSERT_EQ(1u, whole->points.size());
  EXPECT_EQ(5u, whole->points[0].v);
}

INSTANTIATE_TEST_SUITE_P(Way, TableSeriesTest, ::testing::ValuesIn(StoreWay::All()),
                         StoreWay::Name);

}  // namespace
}  // namespace stickmeter::tsdb::testing
