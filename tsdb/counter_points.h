// The points of a counter series, per step of a Series: one key's (ReadCounterPoints) or the
// sum over every key of a table (ReadTableCounterPoints), from the rollup of the step's
// resolution and, for partial steps, finer rollups and the audit trail.
//
// Thread-safety: reentrant; reads through the caller's ReadView. A table's series shares its
// keys out between threads as usage of every key does (tsdb/every_key.h).
// Ownership: borrows the view; writes into `out` (whose step_ms is set).
// Failure: Corruption for a malformed row, else the view's status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/status.h"
#include "tsdb/query.h"
#include "tsdb/query_plan.h"
#include "tsdb/read_view.h"

namespace stickmeter::tsdb {

// What a series at `step` reads: its whole steps from the rollup of that resolution, the
// partial first and last steps decomposed into finer data.
std::vector<Segment> StepSegments(int64_t from_ms, int64_t to_ms, int64_t step);

// The points of a counter series in [from_ms, to_ms): whole steps (out.step_ms) from the
// rollup of that resolution, partial first and last steps summed from finer data.
Status ReadCounterPoints(ReadView& r, uint32_t table, uint32_t metric, uint32_t key,
                         std::optional<uint32_t> source, int64_t from_ms, int64_t to_ms,
                         Series& out);

// The points of the sum of every key's counter over `segments`: one pass per rollup family over
// the table, summed per bucket, then per step (out.step_ms); a sub-minute edge (inside one
// minute, so in one step) from the audit events of the keys with something in its minute, as usage
// reads it. `ids` covers every key id the view holds. Shared out as usage of every key is, each
// stripe summing its buckets apart. When the view reads the every-key rollups
// (ReadView::ReadsByTime), the rollup segments and the edges' minutes come from their rows of the
// range's buckets instead, and only the edges are shared out.
Status ReadTableCounterPoints(ReadView& r, uint32_t table, uint32_t metric,
                              std::optional<uint32_t> source, const std::vector<Segment>& segments,
                              size_t ids, uint32_t threads, uint32_t block_keys, Series& out);

}  // namespace stickmeter::tsdb
