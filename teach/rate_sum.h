// Adding up HAProxy frequency counters (the *_rate data types) of several nodes.
//
// HAProxy reads a frequency counter as (past * remain + curr * period) / period, where remain is
// what is left of the current period (src/freq_ctr.c); a counter that gets no more events
// decays linearly to 0 over the rest of its period and the whole next one, with a change of
// slope at each period boundary. A node taught a counter (src/peers.c) sets its tick to "now
// minus the elapsed time sent". SumRates builds the one counter that a node reads as the sum of
// the sources' readings now, and that decays at the same slope until the first boundary of any
// of them (valid_until_ms): taught again then, the sum stays exact as the sources decay.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <span>

#include "ingest/codec.h"

namespace stickmeter::teach {

// One source's counter as received.
struct FreqSample {
  uint32_t period_ms = 0;
  int64_t received_ms = 0;  // Unix ms
  uint32_t elapsed_ms = 0;  // into its current period at received_ms
  uint64_t curr = 0;
  uint64_t prev = 0;
};

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// What HAProxy reads from `s` at `t_ms` (>= received_ms).
uint64_t ReadingAt(const FreqSample& s, int64_t t_ms);

struct TaughtFreq {
  ingest::FreqCounter counter;  // curr_tick = elapsed ms into the period, as on the wire
  int64_t valid_until_ms = kNever;
};
// The counter of period `period_ms` to teach at `t_ms` for the sum of `samples` (all of that
// period).
TaughtFreq SumRates(std::span<const FreqSample> samples, uint32_t period_ms, int64_t t_ms);

}  // namespace stickmeter::teach
