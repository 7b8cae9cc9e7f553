// Turns decoded peer messages into the sink's wire-free types (ingest/sink.h).
//
// A TableDefinition becomes a shared TableInfo; each EntryUpdateView becomes one EntryUpdate
// whose key is text (docs/cli.md) and whose values are named MetricValues of the kind
// docs/counting.md gives them: the counters as their absolute values, everything else as a gauge
// (a frequency counter as HAProxy's own reading of its rate over its period). server_key goes to
// EntryUpdate::server_key, not to the metrics.
//
// Pure functions: no shared state, safe from any thread. Metric names point to static storage.
#pragma once

#include <cstdint>
#include <memory>

#include "ingest/codec.h"
#include "ingest/sink.h"

namespace stickmeter::ingest {

// How docs/counting.md counts a data type: kCounter32 for gpc0 gpc1 gpc conn_cnt sess_cnt
// http_req_cnt http_err_cnt http_fail_cnt glitch_cnt, kCounter64 for bytes_in_cnt and
// bytes_out_cnt, kGauge for everything else.
MetricKind KindOf(DataType type);

// HAProxy's read_freq_ctr_period() (src/freq_ctr.c) at the moment the sender encoded the
// counter: events per period, with HAProxy's correction for low rates. A period of 0 reads as
// the current counter.
uint64_t FreqCounterRate(const FreqCounter& counter);

// The table as announced; one per DEFINE, to be shared by every batch that follows it.
std::shared_ptr<const TableInfo> MakeTableInfo(const TableDefinition& table);

// Appends `update` to `out.entries` as an EntryUpdate received at `received_ms` (Unix ms).
// `out.table` is not touched: the caller sets it from MakeTableInfo() of the same definition.
// With `raw_rates`, frequency counters are also kept as sent (EntryUpdate::rates).
void AppendEntryUpdate(const EntryUpdateView& update, int64_t received_ms, TableUpdates& out,
                       bool raw_rates = false);

}  // namespace stickmeter::ingest
