// Tuning constants of the store, each with what it bounds and why it has this value.
//
// Not persisted: changing one needs no format change (the persisted layout is tsdb/format.h).
// The measurements behind the numbers are in docs/performance.md. Options a deployment may want
// to change are StoreOptions fields instead (tsdb/store.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace stickmeter::tsdb::config {

// ---- Queries ----

// Store::Audit returns at most this many events, whatever AuditQuery::limit asks: it bounds the
// memory of one answer (the HTTP API caps its own limit lower).
inline constexpr size_t kMaxAuditLimit = 100'000;
// With SeriesQuery::step_ms 0 (auto), GetSeries picks the finest resolution (minute, hour, day)
// that gives at most this many points: a chart wider than that shows nothing more.
inline constexpr int64_t kMaxSeriesPoints = 1500;

// An export computes totals for a chunk of keys at a time (ExportScanner); a chunk holds
// at most this many bytes of totals, key text and bookkeeping. 32 MiB fits 100,000 keys x 3
// metrics x 8 sources in one chunk; larger exports take several chunks and memory stays flat.
inline constexpr size_t kDefaultExportChunkBytes = 32u << 20;
// A scan steps over up to this many rows with Next() before it seeks instead. Rows of one key
// are contiguous and often only a few lie before the next wanted bucket, where a Next() on a
// cached block costs a small fraction of a Seek; a key with years of rows costs one Seek plus
// this many Next() calls.
inline constexpr int kMaxSkipRows = 16;
// Usage and the series of every key of a table with at least this many key ids are shared out
// between up to kMaxScanThreads threads (the query's own included, and together with the other
// every-key queries no more than StoreOptions::scan_threads), each reading interleaved blocks of
// kScanBlockKeys ids through its own iterators: RocksDB iteration, ~100 ns a row, is the cost,
// and each thread on a core of its own divides it.
inline constexpr uint32_t kMinKeysToShare = 50'000;
inline constexpr uint32_t kMaxScanThreads = 4;
inline constexpr uint32_t kScanBlockKeys = 4096;

// ---- Retention ----

// The retention filters drop expired rows only when a compaction reads them: a family that
// receives few writes may not compact for weeks. Asking RocksDB to compact every file at least
// daily makes expired data go away within a day of its retention.
inline constexpr int kPeriodicCompactionSeconds = 24 * 3600;

// ---- Writes: group commit and journal ----

// A group commit stops taking batches past this many values, which bounds the WriteBatch (about
// 25 MiB), the pre-aggregation state and the commit latency under saturation (~0.4 s at 1.3M
// values/s). Bigger groups write a busy series' state row and rollup cells fewer times: at 64 Ki
// values they were most of the rows written (see docs/performance.md, Storage).
inline constexpr size_t kMaxGroupValues = 1024 * 1024;
// A group is also cut, between two batches, once it would write this many rows: when most values
// are first seen (a state row and three rollup cells each), 512 Ki values would make a WriteBatch
// of ~100 MiB; this keeps it near 16 MiB.
inline constexpr size_t kMaxGroupRows = 512 * 1024;
// The writer waits before its next group while this many bytes of journal rows are committed but
// not yet in the state and rollup families: it bounds the memory they hold, what a query that
// spans every key decodes of them, and what an open after a crash writes out.
inline constexpr size_t kMaxJournalBacklogBytes = 128u << 20;
// A group journals its state and rollups only while they stay under this size (the meta column
// family's memtable; estimated from typical encoded sizes of a series and a cell).
inline constexpr size_t kMaxJournalGroupBytes = 32u << 20;
inline constexpr size_t kJournalEntryBytes = 60;
// Groups journal while, over the previous window (the applier's delay: what one pass sums, and
// at least kMinRepeatWindow), an entry was touched by at least this many groups on average.
inline constexpr double kMinJournalRepeats = 1.5;
inline constexpr std::chrono::milliseconds kMinRepeatWindow{1000};
inline constexpr size_t kJournalCellBytes = 16;
inline constexpr size_t kJournalAuditBytes = 16;  // beside its EventRow
// An audit row the applier writes holds entry updates up to about this size.
inline constexpr size_t kMaxAuditRowBytes = 64u << 10;
// A group's journal is split by (table, key) into this many partitions, and the applier writes
// the records of one partition (from however many groups) in one WriteBatch: a batch small
// enough that the writer's next commit does not wait long behind it, yet atomic with the mark
// that the partition is written out.
inline constexpr uint32_t kJournalPartitions = 1024;
// A group's partitions share journal rows up to about this size: below saturation a group holds
// a few dozen updates, and a row per partition made nearly one row per update, each a memtable
// insert on the commit and a deletion on the applier. The applier still writes partition by
// partition, recording each as written out (format::AppliedKey) in the same WriteBatch.
inline constexpr size_t kJournalRowBytes = 1u << 20;
// Below this many bytes of journal records, the applier adds the next partitions to the same
// WriteBatch: with many keys and few updates per pass, a batch per partition made each write's
// fixed cost (log write, write queue, thread switches) a fifth of the applier's CPU.
inline constexpr size_t kMinApplyBatchBytes = 64u << 10;
// The applier starts a pass once the oldest journal row is StoreOptions::apply_delay_ms old, or
// this many bytes wait (at 100k entry updates/s over 100k keys, ~4 s of them).
inline constexpr size_t kApplierGatherBytes = 48u << 20;
// The writer waits while the oldest journal row waiting is older than twice the delay, and at
// least this: at saturation the applier, at a lower priority, would otherwise fall ever further
// behind.
inline constexpr std::chrono::milliseconds kMinJournalAgeBound{1000};

// Keys are numbered as they are first seen, so runs of neighbouring key ids share a partition:
// a pass of the applier, partition by partition, then inserts each into the memtables next to
// the previous insert rather than searching for its place from the top of the skiplist.
inline constexpr uint32_t kJournalKeysPerRun = 16;
static_assert(kMaxGroupRows <= kMaxGroupValues);

}  // namespace stickmeter::tsdb::config
