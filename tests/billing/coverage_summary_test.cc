// The one-line coverage summary `stickmeter export` warns with: gaps said as a person would say
// their length, nothing said of a complete period.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "billing/coverage.h"

namespace stickmeter::billing {
namespace {

constexpr int64_t kMin = 60'000;

tsdb::Coverage WithGap(int64_t gap_ms, uint64_t gaps = 1) {
  tsdb::Coverage c;
  c.status = tsdb::CoverageStatus::kPartial;
  c.from_ms = 1'790'812'800'000;  // 2026-10-01T00:00:00Z
  c.to_ms = c.from_ms + 31 * 1440 * kMin;
  c.first_seen_ms = c.from_ms;
  tsdb::SourceCoverage s;
  s.source = "lb2";
  s.first_seen_ms = c.from_ms;
  s.status = tsdb::CoverageStatus::kPartial;
  s.gap_count = gaps;
  s.gap_ms = gap_ms;
  c.sources.push_back(s);
  return c;
}

TEST(CoverageSummaryTest, GapsAreSaidInMinutesHoursAndDays) {
  for (auto [gap_ms, gaps, said] : std::vector<std::tuple<int64_t, uint64_t, std::string>>{
           {42 * kMin, 1, "lb2 was disconnected once, 42 min in total"},
           {1, 1, "lb2 was disconnected once, 1 min in total"},
           {120 * kMin, 3, "lb2 was disconnected 3 times, 2 h in total"},
           {185 * kMin, 2, "lb2 was disconnected 2 times, 3 h 5 min in total"},
           {(2 * 1440 + 4 * 60 + 7) * kMin, 9, "lb2 was disconnected 9 times, 2 d 4 h in total"},
           {3 * 1440 * kMin, 1, "lb2 was disconnected once, 3 d in total"},
       }) {
    const std::string summary = CoverageSummary(WithGap(gap_ms, gaps));
    EXPECT_NE(std::string::npos, summary.find(said)) << summary;
  }
}

}  // namespace
}  // namespace stickmeter::billing
