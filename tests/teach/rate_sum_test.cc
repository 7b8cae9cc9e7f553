// SumRates: the one frequency counter a node reads as the sum of the sources' readings, decaying
// the same way until valid_until_ms. Checked against ReadingAt (HAProxy's reading formula,
// ingest's FreqCounterRate) over many random sets of sources, at every millisecond.
#include "teach/rate_sum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace stickmeter::teach {
namespace {

constexpr int64_t kT0 = 1'790'000'000'000;

// The taught counter as a node holds it once received at `t_ms`.
FreqSample Received(const TaughtFreq& taught, int64_t t_ms) {
  FreqSample s;
  s.period_ms = static_cast<uint32_t>(taught.counter.period_ms);
  s.received_ms = t_ms;
  s.elapsed_ms = static_cast<uint32_t>(taught.counter.curr_tick);
  s.curr = taught.counter.curr_ctr;
  s.prev = taught.counter.prev_ctr;
  return s;
}

uint64_t SumOfReadings(const std::vector<FreqSample>& sources, int64_t t_ms) {
  uint64_t sum = 0;
  for (const FreqSample& s : sources) sum += ReadingAt(s, t_ms);
  return sum;
}

// The first period boundary of a source after `t_ms` (its reading changes slope there).
int64_t NextBoundary(const FreqSample& s, int64_t t_ms) {
  const int64_t elapsed = int64_t{s.elapsed_ms} + (t_ms - s.received_ms);
  const int64_t p = s.period_ms;
  if (elapsed < p) return t_ms + (p - elapsed);
  if (elapsed < 2 * p) return t_ms + (2 * p - elapsed);
  return kNever;
}

std::string Describe(const std::vector<FreqSample>& sources, uint32_t period) {
  std::string s = "period=" + std::to_string(period) + " sources:";
  for (const auto& f : sources) {
    s += " {e=" + std::to_string(f.elapsed_ms) + " c=" + std::to_string(f.curr) +
         " p=" + std::to_string(f.prev) + " rx=" + std::to_string(f.received_ms - kT0) + "}";
  }
  return s;
}

TEST(ReadingAtTest, FollowsHaproxysFormula) {
  // Inside its period: prev * remain / period + curr.
  FreqSample s{10'000, kT0, 2'500, 100, 200};
  EXPECT_EQ(200u * 7'500 / 10'000 + 100, ReadingAt(s, kT0));
  EXPECT_EQ(200u * 5'000 / 10'000 + 100, ReadingAt(s, kT0 + 2'500));
  // In the next period, curr is the past one; then nothing.
  EXPECT_EQ(100u, ReadingAt(s, kT0 + 7'500));
  EXPECT_EQ(100u * 5'000 / 10'000, ReadingAt(s, kT0 + 12'500));
  EXPECT_EQ(0u, ReadingAt(s, kT0 + 17'500));
  EXPECT_EQ(0u, ReadingAt(s, kT0 + 100'000));
  // HAProxy's low-rate correction: one event in the past period reads as 1.
  FreqSample low{10'000, kT0, 0, 0, 1};
  EXPECT_EQ(1u, ReadingAt(low, kT0 + 9'000));
}

TEST(SumRatesTest, NoSourcesIsZero) {
  const TaughtFreq t = SumRates({}, 10'000, kT0);
  EXPECT_EQ(10'000u, t.counter.period_ms);
  EXPECT_EQ(0u, t.counter.curr_ctr);
  EXPECT_EQ(0u, t.counter.prev_ctr);
  EXPECT_EQ(kNever, t.valid_until_ms);
  EXPECT_EQ(0u, ReadingAt(Received(t, kT0), kT0));
  EXPECT_EQ(0u, ReadingAt(Received(t, kT0), kT0 + 25'000));
  // Sources that read 0 sum to 0 too.
  std::vector<FreqSample> idle = {{10'000, kT0, 500, 0, 0}, {10'000, kT0 - 30'000, 0, 7, 9}};
  const TaughtFreq z = SumRates(idle, 10'000, kT0);
  EXPECT_EQ(0u, ReadingAt(Received(z, kT0), kT0));
}

TEST(SumRatesTest, OneSourceIsReadAsItself) {
  std::vector<FreqSample> one = {{10'000, kT0, 4'000, 50, 300}};
  const TaughtFreq t = SumRates(one, 10'000, kT0);
  EXPECT_EQ(ReadingAt(one[0], kT0), ReadingAt(Received(t, kT0), kT0));
  EXPECT_EQ(kT0 + 6'000, t.valid_until_ms);
  for (int64_t t_ms = kT0; t_ms <= t.valid_until_ms; ++t_ms) {
    const uint64_t got = ReadingAt(Received(t, kT0), t_ms);
    const uint64_t want = ReadingAt(one[0], t_ms);
    ASSERT_LE(got > want ? got - want : want - got, 1u) << t_ms - kT0;
  }
}

// The property, over random sets of sources: exact at t0; within the number of sources after.
//
// Why not exact after t0: a node floors each reading, (prev * remain + curr * P) / P. The sum of
// n floored readings and the floored reading of one counter with the summed slope can differ by
// less than n (each floor drops less than 1), and HAProxy's low-rate correction (curr == 0 and
// past <= 1 reads as past, flat) holds at most 1 per source or for the taught counter.
TEST(SumRatesTest, TaughtCounterReadsAsTheSumUntilValidUntil) {
  std::mt19937_64 rng(20261204);
  int sets = 0, checked_ms = 0, exact_after = 0;
  for (int iter = 0; iter < 300; ++iter) {
    const uint32_t period = static_cast<uint32_t>(1'000 + rng() % 59'001);  // 1 s .. 60 s
    const size_t n = rng() % 9;                                             // 0 .. 8 sources
    std::vector<FreqSample> sources;
    for (size_t i = 0; i < n; ++i) {
      FreqSample s;
      s.period_ms = period;
      // Received a little before t0, anywhere into its first two periods by then.
      const int64_t age = static_cast<int64_t>(rng() % 2'000);
      const uint32_t elapsed_at_t0 = static_cast<uint32_t>(rng() % (2 * uint64_t{period}));
      s.received_ms = kT0 - std::min<int64_t>(age, elapsed_at_t0);
      s.elapsed_ms = static_cast<uint32_t>(elapsed_at_t0 - (kT0 - s.received_ms));
      // Counts up to 1e6; some small ones to reach the low-rate corner.
      const uint64_t scale = rng() % 4 == 0 ? 3 : 1'000'001;
      s.curr = rng() % scale;
      s.prev = rng() % scale;
      sources.push_back(s);
    }
    const TaughtFreq taught = SumRates(sources, period, kT0);
    const std::string what = Describe(sources, period);
    ASSERT_EQ(period, taught.counter.period_ms) << what;
    ASSERT_LT(taught.counter.curr_tick, period) << what;
    ASSERT_LE(taught.counter.curr_ctr, 0xffffffffu) << what;
    ASSERT_LE(taught.counter.prev_ctr, 0xffffffffu) << what;
    const FreqSample node = Received(taught, kT0);

    const uint64_t sum0 = SumOfReadings(sources, kT0);
    ASSERT_EQ(sum0, ReadingAt(node, kT0)) << what;
    if (sum0 == 0) {
      EXPECT_EQ(0u, ReadingAt(node, kT0 + 3 * int64_t{period})) << what;
      continue;
    }
    // No later than the first boundary of any source, and later than t0.
    int64_t first_boundary = kNever;
    for (const auto& s : sources) first_boundary = std::min(first_boundary, NextBoundary(s, kT0));
    ASSERT_LE(taught.valid_until_ms, first_boundary) << what;
    ASSERT_GT(taught.valid_until_ms, kT0) << what;
    ASSERT_LE(taught.valid_until_ms, kT0 + int64_t{period}) << what;

    const uint64_t tolerance = n;
    bool exact = true;
    for (int64_t t = kT0; t <= taught.valid_until_ms; ++t) {
      const uint64_t got = ReadingAt(node, t);
      const uint64_t want = SumOfReadings(sources, t);
      const uint64_t diff = got > want ? got - want : want - got;
      ASSERT_LE(diff, tolerance) << what << " at t0+" << (t - kT0) << ": taught reads " << got
                                 << ", the sources " << want;
      exact = exact && diff == 0;
      ++checked_ms;
    }
    exact_after += exact ? 1 : 0;
    ++sets;
  }
  // The random sets did reach the interesting cases.
  EXPECT_GT(sets, 150);
  EXPECT_GT(checked_ms, 100'000);
  EXPECT_GT(exact_after, 0);
}

TEST(SumRatesTest, SaturatesAtHaproxys32BitCounters) {
  std::vector<FreqSample> big;
  for (int i = 0; i < 8; ++i) big.push_back({10'000, kT0, 0, 1'000'000'000, 0});
  const TaughtFreq t = SumRates(big, 10'000, kT0);
  EXPECT_EQ(0xffffffffu, ReadingAt(Received(t, kT0), kT0));
  EXPECT_LE(t.counter.curr_ctr, 0xffffffffu);
  EXPECT_LE(t.counter.prev_ctr, 0xffffffffu);
}

}  // namespace
}  // namespace stickmeter::teach
