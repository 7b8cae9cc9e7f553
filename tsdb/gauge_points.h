// The points of a gauge series: the samples of one key's gauge in the "gauge" column family
// (one cell per minute and source holding the minute's last and largest sample), read into the
// steps of a Series as their maximum or as their last value; and the value over a range of every
// key of a table (the usage of a gauge).
//
// Thread-safety: reentrant; reads through the caller's ReadView only.
// Ownership: borrows the view; writes into `out` (whose step_ms is set).
// Failure: Corruption for a cell of the wrong size, else the view's status.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/status.h"
#include "tsdb/query.h"
#include "tsdb/read_view.h"

namespace stickmeter::tsdb {

// At most this many cells before `from` are read to find each source's value at `from` (the
// `last` view carries a source's value forward until it sends another).
inline constexpr int kGaugeLookbackCells = 4096;

struct GaugeRead {
  uint32_t table = 0, metric = 0, key = 0;
  std::optional<uint32_t> source;
  int64_t from_ms = 0, to_ms = 0;
  // `last` only: steps starting after this time (now) get no carried value.
  int64_t carry_until_ms = 0;
  GaugeAgg agg = GaugeAgg::kMax;
};

// kMax: per step, the largest sample of any source; steps without a sample are omitted.
// kLast: per step, the sum over sources of each source's last sample at or before the step's
// end (a source counts from its first sample at or before the step, looking back at most
// kGaugeLookbackCells cells before `from`); every step from the first with a value up to the last
// that starts at or before `carry_until_ms` has a point.
Status ReadGaugePoints(ReadView& r, const GaugeRead& q, Series& out);

// Each key's value over [from, to) (`q.key` unused): kMax, its largest sample in the range;
// kLast, the sum over sources of each one's last value at or before `to` (looking back at most
// kGaugeLookbackCells cells), negative values counted as 0. Into `by_id` (indexed by key id,
// nullopt for a key without a sample), every key or `only_key`: one seek or two per key.
Status ReadGaugeOfEveryKey(ReadView& r, const GaugeRead& q, std::optional<uint32_t> only_key,
                           std::vector<std::optional<int64_t>>& by_id);

}  // namespace stickmeter::tsdb
