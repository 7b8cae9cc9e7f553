// Implementation of rate_sum.h.
#include "teach/rate_sum.h"

#include <algorithm>

#include "ingest/normalize.h"

namespace stickmeter::teach {
namespace {

struct Phase {
  uint64_t reading = 0;
  uint64_t decay = 0;  // how much the reading loses over one whole period at this slope
  int64_t next_change_ms = kNever;
};

Phase PhaseAt(const FreqSample& s, int64_t t_ms) {
  Phase p;
  const int64_t period = s.period_ms;
  const int64_t elapsed = int64_t{s.elapsed_ms} + std::max<int64_t>(0, t_ms - s.received_ms);
  if (period == 0) {
    p.reading = s.curr;
    return p;
  }
  if (elapsed >= 2 * period) return p;
  ingest::FreqCounter c{s.period_ms, static_cast<uint64_t>(static_cast<uint32_t>(elapsed)), s.curr,
                        s.prev};
  p.reading = ingest::FreqCounterRate(c);
  if (elapsed < period) {
    p.decay = s.prev;
    p.next_change_ms = t_ms + (period - elapsed);
  } else {
    p.decay = s.curr;
    p.next_change_ms = t_ms + (2 * period - elapsed);
  }
  return p;
}

}  // namespace

uint64_t ReadingAt(const FreqSample& s, int64_t t_ms) { return PhaseAt(s, t_ms).reading; }

TaughtFreq SumRates(std::span<const FreqSample> samples, uint32_t period_ms, int64_t t_ms) {
  TaughtFreq out;
  out.counter.period_ms = period_ms;
  unsigned __int128 sum = 0, decay = 0;
  for (const FreqSample& s : samples) {
    const Phase p = PhaseAt(s, t_ms);
    sum += p.reading;
    decay += p.decay;
    out.valid_until_ms = std::min(out.valid_until_ms, p.next_change_ms);
  }
  constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();  // HAProxy's counters are 32-bit
  const uint64_t S = static_cast<uint64_t>(std::min<unsigned __int128>(sum, kMax));
  const uint64_t D = static_cast<uint64_t>(std::min<unsigned __int128>(decay, kMax));
  const uint64_t P = period_ms;
  if (S == 0 || P == 0) {
    out.counter.curr_ctr = S;
    out.valid_until_ms = S == 0 ? kNever : out.valid_until_ms;
    return out;
  }
  // Reading at elapsed e: (prev * (P - e) + curr * P) / P; its slope is prev / P. So prev = D,
  // and e is chosen so that prev * (P - e) <= S * P, leaving curr >= 0 to make up the rest.
  uint64_t e = 0, prev = D, curr = 0;
  if (D <= S) {
    curr = S - D;
  } else {
    const uint64_t span = static_cast<uint64_t>(static_cast<unsigned __int128>(S) * P / D);
    if (span == 0) {
      // Decaying faster than one period allows: read S now, the slope is lost.
      e = P - 1;
      prev = S * P;
    } else {
      e = P - span;
      const unsigned __int128 rest =
          static_cast<unsigned __int128>(S) * P - static_cast<unsigned __int128>(D) * span;
      curr = static_cast<uint64_t>((rest + P - 1) / P);
    }
  }
  out.counter.curr_tick = e;
  out.counter.curr_ctr = curr;
  out.counter.prev_ctr = prev;
  out.valid_until_ms = std::min(out.valid_until_ms, t_ms + static_cast<int64_t>(P - e));
  return out;
}

}  // namespace stickmeter::teach
