// GroupBuilder: turns update batches into one group commit. For every counter value it computes
// the delta (tsdb/delta.h) from the entry's state (tsdb/entry_table.h), appends the audit event,
// sums the delta into the entry's open minute, hour and day cells and aggregates gauges; then
// puts the group into a WriteBatch (BuiltGroup): the catalog records the batches added, the
// audit rows, entry states and rollup cells as journal rows (written out later by the applier,
// tsdb/journal.h) or directly, the gauge cells, the event feed's outbox row and the sequence
// record. It also decides which of the two ways a group goes (WantsDirect).
//
// Thread-safety: the writer thread (sm-writer) only, or the thread that opens or reopens the
// store before the writer runs; Recycle from the commit observer's thread; latest_received_ms,
// deltas and updates from any thread. Everything else it owns is the writer's alone, unlocked.
// Ownership: owned by StoreImpl; owns the open group's state (pending entries and sums, audit
// rows, journal row buffers, gauge cells, observed deltas), the event sequence and journal row
// numbering, and its metrics. Borrows the Catalog and the EntryTable (StoreImpl's), and the
// DbHandle from Attach for its column family handles.
// Failure: Build keeps a failure in BuiltGroup::status (a malformed journal row it built is
// Corruption); nothing else fails.
#pragma once

#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "common/time.h"
#include "ingest/sink.h"
#include "tsdb/catalog.h"
#include "tsdb/commit_observer.h"
#include "tsdb/config.h"
#include "tsdb/coverage.h"
#include "tsdb/db_handle.h"
#include "tsdb/entry_table.h"
#include "tsdb/format.h"
#include "tsdb/journal.h"
#include "tsdb/store.h"
#include "tsdb/store_testing.h"

namespace stickmeter::tsdb {

// One WriteBatch of a group, built and waiting to be written (the committer).
struct BuiltGroup {
  explicit BuiltGroup(size_t reserved_bytes) : wb(reserved_bytes) {}
  rocksdb::WriteBatch wb;
  Status status;                    // a failure building it: it is not written
  std::vector<JournalRow> journal;  // the journal rows in wb, for the applier once written
  std::vector<ingest::UpdateSink::DoneCallback> done;  // of the batches it holds
  std::chrono::steady_clock::time_point start;         // when building began: the commit latency
  CommittedGroup observed;                             // for the commit observer, once written
};

class GroupBuilder {
 public:
  GroupBuilder(const StoreOptions& options, Catalog& catalog, EntryTable& entries,
               MetricsRegistry& metrics);
  GroupBuilder(const GroupBuilder&) = delete;
  GroupBuilder& operator=(const GroupBuilder&) = delete;

  // ---- Open and reopen (writer not running) ----
  // The DB whose column family handles the groups are built with (null once closed).
  void Attach(DbHandle* db) { db_ = db; }
  // The sequence record of the meta family: the next audit event's sequence number.
  void LoadSeq(uint64_t next_seq) { next_seq_ = next_seq; }
  // The id of the next journal row (above every id in use: Journal::Recover).
  void SetNextJournalId(uint64_t id) { next_journal_id_ = id; }
  // Feed off with a position kept from an earlier run: the next commit of events drops it.
  void SetFeedStale(bool stale) { feed_stale_ = stale; }
  // Forgets the open group and the sequence, as before the load (a reopen).
  void Clear();
  // Set before the first batch (Store::SetCommitObserver).
  void SetObserver(CommitObserver* observer) { observer_ = observer; }
  // The coverage record (StoreImpl's): each group writes its changed rows, each batch tells it
  // its source's last update and restart. Set at construction of the store.
  void SetCoverage(CoverageBook* coverage) { coverage_ = coverage; }

  // ---- Writer ----
  uint64_t next_seq() const { return next_seq_; }
  // Adds `batch` to the open group built into `built` (whose WriteBatch takes the catalog and
  // epoch records at once); moves the batch into built.observed if the observer sees it.
  void Add(ingest::UpdateBatch& batch, BuiltGroup& built);
  // Rows the open group will write: an estimate of its WriteBatch's size.
  size_t GroupRows() const {
    return raw_.size() + 4 * pending_.size() + spilled_ + gauge_agg_.size();
  }
  // Once the group's batches are added: moves their observed deltas into `built` and starts the
  // next group's with the vectors the observer handed back (Recycle).
  void TakeObserved(BuiltGroup& built) EXCLUDES(spare_mu_);
  // Whether the open group should write its state and rollups directly rather than as journal
  // rows (see the .cc); the caller must then first have every older journal row written out,
  // and journals the group after all if it cannot. Call once per group, before Build.
  bool WantsDirect();
  // Puts the open group (its audit rows, state rows and rollup cells, as journal rows or
  // `direct`ly; the gauge cells, outbox and sequence records) into `built`, and empties it.
  // `seq_before`: next_seq() before the group's first batch.
  void Build(BuiltGroup& built, uint64_t seq_before, bool direct);

  // ---- Tests (tsdb/store_testing.h) ----
  void SetJournalMode(testing_internal::JournalMode mode) { journal_mode_.store(mode); }

  // ---- The commit observer's thread ----
  // The observer is done with `group`: its emptied vectors are kept for TakeObserved.
  void Recycle(CommittedGroup group) EXCLUDES(spare_mu_);

  // ---- Any thread ----
  // The latest receive time of anything added (never behind the data a reader can see): a range
  // ending after it has nothing more in its last minute (Usage).
  int64_t latest_received_ms() const { return latest_received_ms_.load(std::memory_order_relaxed); }
  // The same, for a reader that loads it itself (QueryEngine).
  const std::atomic<int64_t>& latest_received() const { return latest_received_ms_; }
  uint64_t deltas() const { return stat_deltas_.load(std::memory_order_relaxed); }
  uint64_t updates() const { return stat_updates_.load(std::memory_order_relaxed); }

 private:
  // A gauge cell: one minute of a gauge series of one source.
  struct AggKey {
    uint32_t table, metric, key, bucket, source;
    bool operator==(const AggKey&) const = default;
  };
  struct AggKeyHash {
    size_t operator()(const AggKey& k) const {
      uint64_t h = k.table;
      for (uint32_t v : {k.metric, k.key, k.bucket, k.source}) h = h * 0x100000001B3ull ^ v;
      return std::hash<uint64_t>()(h);
    }
  };
  // A metric of the table being added, resolved once per table of a batch rather than once per
  // value: a batch holds thousands of values of the same few metrics.
  struct MetricSlot {
    std::string_view name;
    ingest::MetricKind kind;
    uint32_t id;
    format::MetricClass cls;
  };
  // An entry the open group changed: its state row is rewritten at commit, and the deltas of
  // each of its counters in the current minute, hour and day are summed in pending_sums_ (at
  // sums + metric index * 3 + resolution) rather than in a map per resolution, so a delta costs
  // no hashing. When a delta falls into another bucket than the open one (a group spanning a
  // minute boundary), the open cells go into the entry's journal row first (SpillCells).
  struct PendingEntry {
    EntryTable::Entry* entry;
    bool has_cells;
    uint32_t bucket[3];
    uint32_t sums;        // offset in pending_sums_
    uint32_t sums_width;  // metrics the region has room for
  };
  // Audit rows of the group (one per entry update with a non-zero delta), encoded back to back
  // in raw_bytes_ and moved into the journal rows at commit (see Build).
  struct RawRow {
    uint32_t table, key;
    int64_t t_ms;
    uint64_t seq;
    uint32_t offset, size;
  };

  void ApplyBatch(const ingest::UpdateBatch& batch, rocksdb::WriteBatch& wb);
  // The id of `name`, interned; a new one's name record goes into `wb`.
  uint32_t Intern(format::NameKind kind, std::string_view name, rocksdb::WriteBatch& wb);
  // The table of `info` from `source`, with its definition and source recorded (in `wb` when
  // new); whether the observer sees it in `*observed`.
  TableMeta* AddTable(const ingest::TableInfo& info, uint32_t table, uint32_t source,
                      rocksdb::WriteBatch& wb, bool* observed);
  // The slot of `mv`'s metric among slots_ (the table's), added (and recorded in `wb`) if new.
  const MetricSlot& SlotOf(const ingest::MetricValue& mv, TableMeta* meta, uint32_t table,
                           rocksdb::WriteBatch& wb);
  // The entry of (source, table, key), added if new (counted for the repeat measure and the
  // key's sources).
  EntryTable::Entry* FindEntry(uint32_t source, uint32_t table, uint32_t key, TableMeta* meta);
  // The open group changes `entry` for the first time: it gets a pending entry and sums.
  void AddPending(EntryTable::Entry* entry);
  // A pending entry gets room for `width` series: its open cells go out first, as the sums are
  // laid out by metric index, and it gets a wider region.
  void WidenPending(uint32_t pending_index, size_t width, const uint32_t* buckets);
  // Moves the open rollup cells of a pending entry into its journal row (a group spanning a
  // bucket boundary, or a metric added to the entry) and zeroes them.
  void SpillCells(uint32_t pending_index, bool all, const uint32_t* buckets);
  // Appends the non-zero sums of resolution `r` of a pending entry (`width` metrics at `sums`,
  // as indexed in `metrics`) as one journal cell of `bucket` (the resolution's bucket of t).
  void AppendCell(std::string& row, const format::EntryId& id,
                  const std::vector<format::MetricState>& metrics, const uint64_t* sums,
                  size_t width, int r, uint32_t bucket);
  // Build's steps: the audit rows into the journal row buffers (and the outbox); each pending
  // entry's state and open cells into them; the buffers into `built` as journal rows, or
  // directly into its WriteBatch; the gauge cells.
  void MoveAuditRows(rocksdb::WriteBatch& wb, uint64_t seq_before);
  void MovePendingEntries();
  Status AddDirect(rocksdb::WriteBatch& wb);
  void AddJournalRows(BuiltGroup& built);
  void AddGauges(rocksdb::WriteBatch& wb);

  const int64_t expiry_margin_ms_;
  const bool feed_on_;  // StoreOptions::event_feed
  // The window over which WantsDirect measures how often entries recur.
  const std::chrono::milliseconds repeat_window_;
  Catalog& catalog_;
  EntryTable& entries_;
  DbHandle* db_ = nullptr;
  CommitObserver* observer_ = nullptr;
  CoverageBook* coverage_ = nullptr;

  uint64_t next_seq_ = 1;
  uint64_t next_journal_id_ = 1;
  std::vector<PendingEntry> pending_;
  std::vector<uint64_t> pending_sums_;
  // How often an entry recurs from group to group: over a window, the group touches (an entry
  // counts once per group) per distinct entry touched. Measured by the writer for the previous
  // window; decides whether groups go through the journal (WantsDirect).
  uint32_t window_ = 1;
  uint64_t window_touches_ = 0, window_entries_ = 0;
  std::chrono::steady_clock::time_point window_start_ = std::chrono::steady_clock::now();
  double repeats_per_window_ = config::kMinJournalRepeats;
  size_t new_entries_in_group_ = 0;  // entries the open group saw first
  // The open group's journal rows, one per key partition (reused buffers): cells spilled while
  // the group is gathered, then at commit each entry's state and open cells (Build).
  std::string journal_rows_[config::kJournalPartitions];
  size_t spilled_ = 0;  // cells in journal_rows_
  std::unordered_map<AggKey, std::pair<int64_t, int64_t>, AggKeyHash> gauge_agg_;
  std::vector<RawRow> raw_;
  std::string raw_bytes_;
  std::vector<MetricSlot> slots_;                // of the table being added
  std::string key_name_;                         // reused buffer for interning key names
  std::string state_buf_, sums_buf_;             // reused buffers
  std::vector<CommittedDelta> observed_deltas_;  // of the group being built
  std::vector<uint32_t> observed_keys_;          // CommittedGroup::entry_keys, same
  uint32_t observed_batch_ = 0;  // the index ApplyBatch's batch will have among them
  bool batch_observed_ = false;  // ApplyBatch saw an observed table
  // The event feed's outbox row of the group (tsdb/event_feed.h); feed_stale_: off, but a
  // position is kept, to drop at the next commit.
  std::string outbox_buf_;
  bool feed_stale_ = false;
  // Tests force every group through the journal or past it.
  std::atomic<testing_internal::JournalMode> journal_mode_{testing_internal::JournalMode::kAuto};

  // Emptied vectors of groups the observer is done with (Recycle), for the writer to reuse.
  Mutex spare_mu_;
  std::vector<CommittedDelta> spare_deltas_ GUARDED_BY(spare_mu_);
  std::vector<uint32_t> spare_keys_ GUARDED_BY(spare_mu_);

  std::atomic<int64_t> latest_received_ms_{NowUnixMs()};
  std::atomic<uint64_t> stat_deltas_{0};
  std::atomic<uint64_t> stat_updates_{0};
  Counter& updates_received_;
  Counter& multi_source_keys_;
  Counter* deltas_by_reason_[format::kReasonCount] = {};
};

}  // namespace stickmeter::tsdb
