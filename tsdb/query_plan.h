// Query planning: how a time range is split between raw events and rollups, and how a rollup
// row's cells are walked.
//
// Pure functions of their arguments, without RocksDB: callable from any thread, unit-tested in
// tests/tsdb/query_plan_test.cc. The queries (Usage, GetSeries, Export) plan with Decompose,
// then read each segment from the family it names.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tsdb/format.h"

namespace stickmeter::tsdb {

// The largest multiple of `unit` <= t (rounds towards minus infinity). REQUIRES: unit > 0.
int64_t FloorTo(int64_t t, int64_t unit);
// The smallest multiple of `unit` >= t. REQUIRES: unit > 0.
int64_t CeilTo(int64_t t, int64_t unit);

// A part of a query range and where to read it: raw events (unit 0) or a rollup.
struct Segment {
  int64_t unit_ms;  // 0 = raw events, else format::kMinuteMs, kHourMs or kDayMs
  int64_t lo, hi;   // [lo, hi), ms
  bool operator==(const Segment&) const = default;
};

// Appends to `*out` the parts of [from, to), in time order, each read from the coarsest data
// covering it exactly: whole days from the day rollup, whole hours around them from the hour
// rollup, whole minutes from the minute rollup, the ragged ends from raw events. Nothing when
// from >= to.
void Decompose(int64_t from, int64_t to, std::vector<Segment>* out);

// InvalidArgument unless 0 <= from < to: the range check every query makes first.
Status CheckRange(int64_t from, int64_t to);

// Calls visit(metric, bucket, sum) for each cell of a rollup row (format Sums) whose key names
// `row_bucket`: one per counter (span 1), or per counter and hour of the day (span 24). False if
// the value is malformed or empty. A template: a month of hours is ~750 cells, and a
// std::function call per cell showed in profiles.
template <typename Visit>
bool ForEachCell(uint32_t span, uint32_t row_bucket, std::string_view value, Visit&& visit) {
  format::SumsReader sums(value);
  uint32_t slot = 0;
  uint64_t sum = 0;
  bool any = false;
  while (sums.Next(&slot, &sum)) {
    any = true;
    if (span == 1) {
      visit(slot, row_bucket, sum);
    } else {
      visit(slot / span, row_bucket * span + slot % span, sum);
    }
  }
  return sums.ok() && any;
}

// The same for one metric only: visit(bucket, sum).
template <typename Visit>
bool ForEachCellOf(uint32_t metric, uint32_t span, uint32_t row_bucket, std::string_view value,
                   Visit&& visit) {
  return ForEachCell(span, row_bucket, value, [&](uint32_t m, uint32_t bucket, uint64_t sum) {
    if (m == metric) visit(bucket, sum);
  });
}

}  // namespace stickmeter::tsdb
