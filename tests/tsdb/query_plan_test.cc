// Query planning without RocksDB: rounding, range decomposition, walking rollup cells.
#include "tsdb/query_plan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace stickmeter::tsdb {
namespace {

using format::kDayMs;
using format::kHourMs;
using format::kMinuteMs;

// "raw[lo,hi) 1m[lo,hi) ..." with times in ms.
std::string Render(const std::vector<Segment>& segments) {
  std::string out;
  for (const auto& s : segments) {
    if (!out.empty()) out += ' ';
    out += s.unit_ms == 0           ? "raw"
           : s.unit_ms == kMinuteMs ? "1m"
           : s.unit_ms == kHourMs   ? "1h"
                                    : "1d";
    out += "[" + std::to_string(s.lo) + "," + std::to_string(s.hi) + ")";
  }
  return out;
}

std::string Plan(int64_t from, int64_t to) {
  std::vector<Segment> segments;
  Decompose(from, to, &segments);
  return Render(segments);
}

TEST(QueryPlanTest, FloorAndCeilRoundTowardsMinusAndPlusInfinity) {
  EXPECT_EQ(60'000, FloorTo(60'000, kMinuteMs));
  EXPECT_EQ(60'000, FloorTo(119'999, kMinuteMs));
  EXPECT_EQ(-60'000, FloorTo(-1, kMinuteMs));
  EXPECT_EQ(0, FloorTo(0, kMinuteMs));
  EXPECT_EQ(120'000, CeilTo(60'001, kMinuteMs));
  EXPECT_EQ(60'000, CeilTo(60'000, kMinuteMs));
  EXPECT_EQ(0, CeilTo(-1, kMinuteMs));
}

TEST(QueryPlanTest, EmptyRangeHasNoSegments) {
  EXPECT_EQ("", Plan(5, 5));
  EXPECT_EQ("", Plan(6, 5));
}

TEST(QueryPlanTest, InsideOneMinuteReadsRawEvents) {
  EXPECT_EQ("raw[1000,59000)", Plan(1000, 59'000));
}

TEST(QueryPlanTest, WholeUnitsComeFromTheCoarsestRollup) {
  EXPECT_EQ("1m[0,60000)", Plan(0, kMinuteMs));
  EXPECT_EQ("1h[0,3600000)", Plan(0, kHourMs));
  EXPECT_EQ("1d[0,172800000)", Plan(0, 2 * kDayMs));
}

TEST(QueryPlanTest, RaggedEndsStepDownToFinerData) {
  const int64_t from = kDayMs - kHourMs - kMinuteMs - 500;
  const int64_t to = 2 * kDayMs + kHourMs + kMinuteMs + 250;
  EXPECT_EQ(
      "raw[82739500,82740000) 1m[82740000,82800000) 1h[82800000,86400000) "
      "1d[86400000,172800000) 1h[172800000,176400000) 1m[176400000,176460000) "
      "raw[176460000,176460250)",
      Plan(from, to));
}

TEST(QueryPlanTest, SegmentsCoverTheRangeExactlyAndInOrder) {
  for (int64_t from : {int64_t{0}, int64_t{1}, kMinuteMs - 1, kHourMs + 7, kDayMs - 3}) {
    for (int64_t len : {int64_t{1}, kMinuteMs, kHourMs + 1, 3 * kDayMs + 11}) {
      std::vector<Segment> segments;
      Decompose(from, from + len, &segments);
      ASSERT_FALSE(segments.empty());
      int64_t at = from;
      for (const auto& s : segments) {
        EXPECT_EQ(at, s.lo);
        EXPECT_LT(s.lo, s.hi);
        if (s.unit_ms != 0) {
          EXPECT_EQ(0, s.lo % s.unit_ms);
          EXPECT_EQ(0, s.hi % s.unit_ms);
        }
        at = s.hi;
      }
      EXPECT_EQ(from + len, at);
    }
  }
}

TEST(QueryPlanTest, CheckRange) {
  EXPECT_TRUE(CheckRange(0, 1).ok());
  EXPECT_FALSE(CheckRange(1, 1).ok());
  EXPECT_FALSE(CheckRange(-1, 1).ok());
}

TEST(QueryPlanTest, ForEachCellSplitsHourRowsByHourOfDay) {
  std::string value;
  format::AppendSum(value, format::HourSlot(0, 3), 5);
  format::AppendSum(value, format::HourSlot(2, 23), 7);
  std::string seen;
  EXPECT_TRUE(ForEachCell(
      format::kHoursPerRow, 10, value, [&](uint32_t metric, uint32_t bucket, uint64_t sum) {
        seen +=
            std::to_string(metric) + "@" + std::to_string(bucket) + "=" + std::to_string(sum) + " ";
      }));
  EXPECT_EQ("0@243=5 2@263=7 ", seen);

  seen.clear();
  EXPECT_TRUE(ForEachCellOf(2, format::kHoursPerRow, 10, value, [&](uint32_t bucket, uint64_t sum) {
    seen += std::to_string(bucket) + "=" + std::to_string(sum);
  }));
  EXPECT_EQ("263=7", seen);
}

TEST(QueryPlanTest, ForEachCellRejectsEmptyAndMalformedValues) {
  auto ignore = [](uint32_t, uint32_t, uint64_t) {};
  EXPECT_FALSE(ForEachCell(1, 0, "", ignore));
  EXPECT_FALSE(ForEachCell(1, 0, "\x80", ignore));
}

}  // namespace
}  // namespace stickmeter::tsdb
