// A gauge's series read as the maximum or as the last value per step: over two HAProxy nodes,
// with a node's value from before the range carried in, and nothing carried past now.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/time.h"
#include "tests/support/status_matchers.h"
#include "tests/tsdb/test_util.h"
#include "tsdb/store.h"

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

}  // namespace
}  // namespace stickmeter::tsdb::testing
