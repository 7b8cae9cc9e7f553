#include "tsdb/store.h"

#include <pthread.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"
#include "common/metrics.h"
#include "common/thread_annotations.h"
#include "common/time.h"
#include "tsdb/backup.h"
#include "tsdb/catalog.h"
#include "tsdb/config.h"
#include "tsdb/db_handle.h"
#include "tsdb/delta.h"
#include "tsdb/export_scan.h"
#include "tsdb/feed_reader.h"
#include "tsdb/format.h"
#include "tsdb/incremental_hash_map.h"
#include "tsdb/journal_rows.h"
#include "tsdb/queries.h"
#include "tsdb/query_plan.h"
#include "tsdb/read_view.h"
#include "tsdb/rocks_status.h"
#include "tsdb/scans.h"
#include "tsdb/store_testing.h"
#include "tsdb/write_health.h"

namespace stickmeter::tsdb {
namespace {

using format::MetricClass;
using format::NameKind;
using format::Reason;

struct EntryIdHash {
  size_t operator()(const format::EntryId& id) const {
    uint64_t a = (uint64_t{id.source} << 32) | id.table;
    return std::hash<uint64_t>()(a * 0x9E3779B97F4A7C15ull ^ (id.key + 0x7F4A7C159E3779B9ull));
  }
};

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

struct Pending {
  ingest::UpdateBatch batch;
  ingest::UpdateSink::DoneCallback done;
  size_t values = 0;  // counter and gauge values in the batch
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One WriteBatch of a group, built and waiting to be written (StoreImpl::CommitterLoop).
struct BuiltGroup {
  explicit BuiltGroup(size_t reserved_bytes) : wb(reserved_bytes) {}
  rocksdb::WriteBatch wb;
  Status status;                    // a failure building it: it is not written
  std::vector<JournalRow> journal;  // the journal rows in wb, for the applier once written
  std::vector<ingest::UpdateSink::DoneCallback> done;  // of the batches it holds
  std::chrono::steady_clock::time_point start;         // when building began: the commit latency
  CommittedGroup observed;                             // for the commit observer, once written
};

size_t CountValues(const ingest::UpdateBatch& b) {
  size_t n = 0;
  for (const auto& t : b.tables) {
    for (const auto& e : t.entries) n += e.values.size();
  }
  return n;
}

// The in-memory state of an entry of one source: the state of each of its counter series (one
// per metric, ascending metric id), plus where the open group keeps its changes (kClean when the
// group has not touched it).
struct LiveEntry {
  static constexpr uint32_t kClean = UINT32_MAX;
  std::vector<format::MetricState> metrics;
  uint32_t pending = kClean;  // index into StoreImpl::pending_
  uint32_t window = 0;        // the last repeat window (StoreImpl::window_) it was touched in
};

// What the metrics collector reads; outlives the store when the registry still holds it.
struct CollectorState {
  std::mutex mu;
  rocksdb::DB* db = nullptr;  // GUARDED_BY(mu), null once closed
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  std::vector<std::string> names;  // of cfs
};

class StoreImpl final : public Store {
 public:
  StoreImpl(StoreOptions options, bool read_only)
      : options_(std::move(options)),
        read_only_(read_only),
        metrics_(MetricsRegistry::Global()),
        updates_received_(metrics_.GetCounter("stickmeter_updates_received_total",
                                              "Counter and gauge values received for storage")),
        commit_latency_(metrics_.GetHistogram("stickmeter_commit_seconds",
                                              "Latency of one group commit (write + sync)")),
        commit_prepare_(CommitPhase("prepare")),
        commit_wait_(CommitPhase("wait")),
        commit_wal_(CommitPhase("wal")),
        commit_memtable_(CommitPhase("memtable")),
        queue_depth_(metrics_.GetGauge("stickmeter_store_queue_batches",
                                       "Update batches waiting for the store writer")),
        journal_backlog_(metrics_.GetGauge(
            "stickmeter_store_journal_backlog_bytes",
            "Committed state and rollup changes not yet written to their column families "
            "(queries read them from the journal meanwhile)")),
        journal_lag_(metrics_.GetGauge(
            "stickmeter_store_journal_lag_milliseconds",
            "Age of the oldest committed change the latest state and rollup write took: how long "
            "changes wait in the journal")),
        multi_source_keys_(metrics_.GetCounter(
            "stickmeter_multi_source_keys_total",
            "Keys of one table seen from more than one HAProxy node (normal with one peers "
            "section per node: the total is the sum over nodes)")),
        collector_(std::make_shared<CollectorState>()),
        health_(metrics_) {
    for (int r = 1; r < format::kReasonCount; ++r) {
      deltas_by_reason_[r] = &metrics_.GetCounter(
          "stickmeter_deltas_written_total", "Non-zero deltas committed, by counting rule",
          {{"reason", std::string(format::ReasonName(static_cast<Reason>(r)))}});
    }
  }

  ~StoreImpl() override { (void)Close(); }

  Status OpenDb();
  Status Load();
  void StartApplier() {
    applier_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "sm-applier");
      // Background work: the writer and the network threads, whose delays are what peers and
      // queries wait on, go first when the cores are busy (Linux: nice is per thread).
      (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
      ApplierLoop();
    });
  }
  void StartWriter() {
    // Named so that `top -H` and profilers tell the stages apart.
    StartApplier();
    committer_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "sm-committer");
      // For the commit phase metrics; a few clock reads per commit.
      rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableTimeExceptForMutex);
      CommitterLoop();
    });
    writer_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "sm-writer");
      WriterLoop();
    });
  }

  // ---- UpdateSink ----
  Status Submit(ingest::UpdateBatch batch, DoneCallback done) override;
  Status WriteStatus() override { return health_.status(); }

  // ---- QueryService ----
  Result<std::vector<UsageRow>> Usage(const UsageQuery& query) override;
  Status ForEachUsage(const UsageQuery& query, const UsageVisitor& visit) override;
  Result<Series> GetSeries(const SeriesQuery& query) override;
  Result<std::vector<AuditEvent>> Audit(const AuditQuery& query) override;
  Result<std::vector<TableSummary>> Tables() override;
  Result<std::vector<std::string>> Keys(const std::string& table, const std::string& prefix,
                                        size_t limit) override;
  Result<std::vector<std::string>> KeysAfter(const std::string& table, const std::string& prefix,
                                             const std::string& after, size_t limit) override;
  Status Export(const ExportQuery& query,
                const std::function<bool(const ExportRow&)>& emit) override;
  Result<StoreStats> Stats() override;

  // ---- Store ----
  Status Backup(const std::string& dir) override;
  void SetExportChunkBytes(size_t bytes) { exports_.SetChunkBytes(bytes); }
  void SetJournalMode(testing_internal::JournalMode mode) { journal_mode_.store(mode); }
  void FailCommitsAfter(int64_t writes, std::function<void()> on_failing) {
    std::lock_guard lock(commit_mu_);
    on_failing_commit_ = std::move(on_failing);
    slow_failure_ = static_cast<bool>(on_failing_commit_);
    commits_before_failure_.store(writes);
  }
  // Tests (FailCommitsAfter): whether this commit is to fail. Committer thread.
  bool InjectedFailure() {
    const int64_t left = commits_before_failure_.load();
    if (left > 0) commits_before_failure_.fetch_sub(1);
    return left == 0;
  }
  void HoldJournal() {
    std::lock_guard lock(journal_mu_);
    journal_held_ = true;
  }
  void StopApplierAfter(int batches) { applier_batches_left_.store(batches); }
  // Read-only: the journal rows the store holds (Load), which this view does not see.
  size_t UnappliedJournalRows() const { return unapplied_journal_rows_; }
  Status Close() override;
  Status CompactAll() override;
  void Flush() override;
  void SetCommitObserver(CommitObserver* observer) override { observer_ = observer; }
  void Recycle(CommittedGroup group) override {
    group.deltas.clear();
    group.entry_keys.clear();
    MutexLock lock(&spare_mu_);
    if (spare_deltas_.capacity() < group.deltas.capacity()) spare_deltas_.swap(group.deltas);
    if (spare_keys_.capacity() < group.entry_keys.capacity()) spare_keys_.swap(group.entry_keys);
  }
  EventFeed* event_feed() override { return feed_ ? feed_.get() : nullptr; }
  // At open for writing: the event feed's position (tsdb/feed_reader.h).
  Status OpenFeed();
  Result<std::vector<std::pair<std::string, std::string>>> Settings(
      std::string_view prefix) override;
  Status WriteSetting(const std::string& name, std::optional<std::string> value,
                      int64_t t_ms) override;
  Result<std::vector<SettingChange>> SettingHistory(std::string_view prefix, size_t limit) override;

 private:
  void WriterLoop();
  // After a failed write (writer thread, failed_ set): once the data directory takes writes
  // again, reopens it (Reopen) and accepts updates again; else records why not (health_).
  void Recover();
  // Closes RocksDB and opens it again, loading the in-memory state from what is on disk, as a
  // restart would: the counter state the failed groups were built on is forgotten, so the
  // values peers send again are counted from what was stored. Writer thread, committer idle;
  // stops and restarts the applier, and holds db_mu_ exclusively (queries wait). On failure
  // the store stays closed to queries (Unavailable) until the next attempt.
  Status Reopen();
  // Empties what Load fills (Reopen).
  void ForgetLoadedState();
  // The second stage of a commit: takes every journal row the writer has committed, sums their
  // rollup cells, keeps the newest state of each series, and writes them out (WriteOutJournal;
  // not synced: the journal rows and marks stay as they were until the writes are durable).
  void ApplierLoop();
  // Writes `pieces` of `rows` (ascending ids) out to the audit, state and rollup families:
  // partition by partition, each in id order, at least config::kMinApplyBatchBytes of records per
  // WriteBatch. Each batch records its partitions as written out up to the last row's id; the
  // last one also deletes the rows. `on_batch(bytes of records)` runs after each write; if it
  // returns false, the rest is left as it is (tests: an applier stopped mid-pass).
  Status WriteOutJournal(const std::vector<JournalRow>& rows, std::vector<JournalPiece>& pieces,
                         const std::function<bool(size_t)>& on_batch);
  // Blocks the writer until every journal row built so far is written by the committer and
  // then by the applier: true then, false if it never will be (a failed write, or a test
  // holding the journal).
  bool WaitForJournalDrained();
  // With journal_mu_ held in `lock`: waits until the journal rows up to id `target` are written
  // out (true), or the applier failed or is held (false). The applier does not gather meanwhile.
  bool WaitForJournalApplied(std::unique_lock<std::mutex>& lock, uint64_t target);
  // Blocks the writer while the journal backlog is over config::kMaxJournalBacklogBytes, or older
  // than journal_age_bound_.
  Status WaitForJournalSpace();
  // Records an entry loaded at open (from "entries" or a journal row): key_sources_, counts.
  Status LoadEntry(const format::EntryId& id, std::string_view state);
  // Builds the group into as few WriteBatches as its size allows, each holding whole batches,
  // and hands each to the committer, which runs every done callback with the outcome of the
  // WriteBatch that held its batch.
  void CommitGroup(std::deque<Pending>& group);
  // Puts what ApplyBatch gathered (its audit rows, state rows and rollup cells, as journal rows
  // or directly) into `built`. A failure is kept in built.status.
  void BuildGroup(BuiltGroup& built, uint64_t seq_before);
  // Waits until the committer has room for one more group, then queues it.
  void HandOver(std::unique_ptr<BuiltGroup> built);
  // A group to build into: the one the committer last handed back (its batch buffer, of the
  // size groups take, already in memory), else a new one with `reserved_bytes` of room.
  std::unique_ptr<BuiltGroup> TakeBuiltGroup(size_t reserved_bytes);
  // The committer is done with `built`: emptied, it is kept for TakeBuiltGroup.
  void RecycleBuiltGroup(std::unique_ptr<BuiltGroup> built);
  // Writes the built groups in order, then hands their journal rows to the applier and runs
  // their done callbacks. Fail-stop: the first error is kept in failed_, and no group after it
  // is written.
  void CommitterLoop();
  // Rows the open group will write: an estimate of its WriteBatch's size.
  size_t GroupRows() const {
    return raw_.size() + 4 * pending_.size() + spilled_ + gauge_agg_.size();
  }
  // Moves the open rollup cells of a pending entry into its journal row (a group spanning a
  // bucket boundary, or a metric added to the entry) and zeroes them.
  void SpillCells(uint32_t pending_index, bool all, const uint32_t* buckets);
  // Appends the non-zero sums of resolution `r` of a pending entry (`width` metrics at `sums`,
  // as indexed in `metrics`) as one journal cell of `bucket` (the resolution's bucket of t).
  void AppendCell(std::string& row, const format::EntryId& id,
                  const std::vector<format::MetricState>& metrics, const uint64_t* sums,
                  size_t width, int r, uint32_t bucket);
  void ApplyBatch(const ingest::UpdateBatch& batch, rocksdb::WriteBatch& wb);
  Status CheckOpen() const {
    if (db_ != nullptr) return Status::Ok();
    if (Status w = health_.status(); !w.ok()) {
      return Status::Unavailable("store is reopening after a failed write: " + w.message());
    }
    return Status::Unavailable("store is closed");
  }

  const StoreOptions options_;
  // How long the applier lets the oldest journal row wait for more (ApplierLoop), and the age
  // of the oldest row waiting past which the writer waits for it (WaitForJournalSpace).
  const std::chrono::milliseconds applier_gather_{options_.apply_delay_ms};
  const std::chrono::milliseconds journal_age_bound_{
      std::max(2 * applier_gather_, config::kMinJournalAgeBound)};
  const std::chrono::milliseconds repeat_window_{
      std::max(applier_gather_, config::kMinRepeatWindow)};
  const bool read_only_;

  // Queries hold this shared; Close holds it exclusively while tearing the DB down.
  mutable std::shared_mutex db_mu_;
  std::unique_ptr<DbHandle> db_;  // null once closed

  Catalog catalog_;

  // Writer-thread state.
  // The maps that grow with the keys grow incrementally: rehashing every element at once held
  // up commits for tens of ms (see tsdb/incremental_hash_map.h).
  IncrementalHashMap<format::EntryId, LiveEntry, EntryIdHash> entries_;
  std::unordered_map<uint32_t, uint32_t> epochs_;  // source -> restart epoch
  IncrementalHashMap<uint64_t, uint32_t>
      key_sources_;  // table<<32|key -> first source | kSharedBit (seen from several)
  static constexpr uint32_t kSharedBit = 0x80000000u;
  uint64_t next_seq_ = 1;
  // An entry the open group changed: its state row is rewritten at commit, and the deltas of
  // each of its counters in the current minute, hour and day are summed in pending_sums_ (at
  // sums + metric index * 3 + resolution) rather than in a map per resolution, so a delta costs
  // no hashing. When a delta falls into another bucket than the open one (a group spanning a
  // minute boundary), the open cells go into the entry's journal row first (SpillCells).
  struct PendingEntry {
    std::pair<const format::EntryId, LiveEntry>* entry;
    bool has_cells;
    uint32_t bucket[3];
    uint32_t sums;        // offset in pending_sums_
    uint32_t sums_width;  // metrics the region has room for
  };
  std::vector<PendingEntry> pending_;
  std::vector<uint64_t> pending_sums_;
  // How often an entry recurs from group to group: over a window, the group touches (an entry
  // counts once per group) per distinct entry touched. Measured by the writer for the previous
  // window; decides whether groups go through the journal (BuildGroup).
  uint32_t window_ = 1;
  uint64_t window_touches_ = 0, window_entries_ = 0;
  std::chrono::steady_clock::time_point window_start_ = std::chrono::steady_clock::now();
  double repeats_per_window_ = config::kMinJournalRepeats;
  size_t new_entries_in_group_ = 0;  // entries the open group saw first
  // The open group's journal rows, one per key partition (reused buffers): cells spilled while
  // the group is gathered, then at commit each entry's state and open cells (BuildGroup).
  std::string journal_rows_[config::kJournalPartitions];
  size_t spilled_ = 0;  // cells in journal_rows_
  std::unordered_map<AggKey, std::pair<int64_t, int64_t>, AggKeyHash> gauge_agg_;
  // Audit rows of the group (one per entry update with a non-zero delta), encoded back to back
  // in raw_bytes_ and moved into the journal rows at commit (see BuildGroup).
  struct RawRow {
    uint32_t table, key;
    int64_t t_ms;
    uint64_t seq;
    uint32_t offset, size;
  };
  std::vector<RawRow> raw_;
  std::string raw_bytes_;
  std::string key_name_;          // reused buffer for interning key names
  std::mutex settings_mu_;        // one settings write at a time (history order)
  uint64_t setting_changes_ = 0;  // GUARDED_BY(settings_mu_): orders same-ms changes
  // Set before the first Submit, then read by the writer and committer threads only.
  CommitObserver* observer_ = nullptr;
  std::vector<CommittedDelta> observed_deltas_;  // writer: of the group being built
  std::vector<uint32_t> observed_keys_;          // writer: CommittedGroup::entry_keys, same
  // Emptied vectors of groups the observer is done with (Recycle), for the writer to reuse.
  Mutex spare_mu_;
  std::vector<CommittedDelta> spare_deltas_ GUARDED_BY(spare_mu_);
  std::vector<uint32_t> spare_keys_ GUARDED_BY(spare_mu_);
  std::unique_ptr<BuiltGroup> spare_built_ GUARDED_BY(spare_mu_);
  uint32_t observed_batch_ = 0;  // writer: the index ApplyBatch's batch will have among them
  // The latest receive time of anything handed to the writer (never behind the data a reader
  // can see): a range ending after it has nothing more in its last minute (Usage).
  std::atomic<int64_t> latest_received_ms_{NowUnixMs()};
  bool batch_observed_ = false;       // writer: ApplyBatch saw an observed table
  std::string state_buf_, sums_buf_;  // reused buffers
  // The event feed (options_.event_feed): the writer adds each group's audit records to the
  // outbox (BuildGroup); feed_stale_: off, but a position is kept, to drop at the next commit.
  class Feed;
  std::unique_ptr<EventFeed> feed_;
  bool feed_stale_ = false;
  std::string outbox_buf_;
  uint64_t next_journal_id_ = 1;

  // Groups built by the writer and not yet written, for the committer thread: the writer builds
  // the next group while the committer writes and syncs the previous one.
  std::mutex commit_mu_;
  std::condition_variable commit_cv_;              // the committer: a group to write, or stop
  std::condition_variable commit_space_cv_;        // the writer: a group was written
  std::deque<std::unique_ptr<BuiltGroup>> built_;  // GUARDED_BY(commit_mu_)
  size_t built_in_flight_ = 0;                     // GUARDED_BY(commit_mu_) queued or being written
  size_t journalled_in_flight_ = 0;  // GUARDED_BY(commit_mu_) of those, groups with journal rows
  bool commit_stop_ = false;         // GUARDED_BY(commit_mu_)
  std::thread committer_;

  // Journal rows committed and not yet applied, in id order, for the applier thread.
  std::mutex journal_mu_;
  std::condition_variable journal_cv_;          // the applier: rows to apply, or stop
  std::condition_variable journal_space_cv_;    // the writer: backlog under the limit
  std::condition_variable journal_applied_cv_;  // Flush
  std::vector<JournalRow> journal_;             // GUARDED_BY(journal_mu_)
  size_t journal_bytes_ = 0;                    // GUARDED_BY(journal_mu_)
  uint64_t journal_queued_ = 0;                 // GUARDED_BY(journal_mu_) the last id queued
  int journal_waiters_ = 0;  // GUARDED_BY(journal_mu_) threads waiting for it to be written out
  uint64_t journal_applied_ = 0;  // GUARDED_BY(journal_mu_) the last id applied
  bool journal_stop_ = false;     // GUARDED_BY(journal_mu_)
  bool journal_failed_ = false;   // GUARDED_BY(journal_mu_)
  bool journal_held_ = false;     // GUARDED_BY(journal_mu_) tests: the applier writes nothing
  // The rows of the pass the applier is writing out (after a failure, or while held: the rows
  // it could not write out). With journal_, every row queries read besides RocksDB (ReadView).
  std::vector<JournalRow> applying_;  // GUARDED_BY(journal_mu_)
  size_t unapplied_journal_rows_ = 0;
  // Tests force every group through the journal or past it.
  std::atomic<testing_internal::JournalMode> journal_mode_{testing_internal::JournalMode::kAuto};
  // Tests: group commits still written before every later one fails; negative: no failures.
  std::atomic<int64_t> commits_before_failure_{-1};
  // Tests: WriteBatches the applier still writes before it holds the journal; negative: no limit.
  std::atomic<int> applier_batches_left_{-1};
  std::function<void()> on_failing_commit_;  // GUARDED_BY(commit_mu_)
  bool slow_failure_ = false;                // GUARDED_BY(commit_mu_) the next failure waits
  bool writer_handing_over_ = false;         // GUARDED_BY(commit_mu_) for the failure injection
  std::thread applier_;

  // Queue.
  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::condition_variable flushed_cv_;
  std::deque<Pending> queue_;  // GUARDED_BY(q_mu_)
  bool closing_ = false;       // GUARDED_BY(q_mu_)
  Status failed_;              // GUARDED_BY(q_mu_)
  uint64_t submitted_ = 0;     // GUARDED_BY(q_mu_)
  uint64_t committed_ = 0;     // GUARDED_BY(q_mu_)
  std::thread writer_;
  std::mutex close_mu_;
  bool closed_ = false;  // GUARDED_BY(close_mu_)

  std::atomic<uint64_t> live_series_{0};
  std::atomic<uint64_t> stat_deltas_{0};
  std::atomic<uint64_t> stat_updates_{0};

  MetricsRegistry& metrics_;
  Counter& updates_received_;
  Histogram& commit_latency_;
  // Where a commit's time goes (docs/operations.md, Metrics): building its batch, waiting in
  // RocksDB's write queue behind other writers, the WAL write and sync, the memtable inserts.
  Histogram& CommitPhase(const char* phase) {
    return metrics_.GetHistogram("stickmeter_commit_phase_seconds",
                                 "Time of one group commit spent in each phase",
                                 {{"phase", phase}});
  }
  Histogram& commit_prepare_;
  Histogram& commit_wait_;
  Histogram& commit_wal_;
  Histogram& commit_memtable_;
  Gauge& queue_depth_;
  Gauge& journal_backlog_;
  Gauge& journal_lag_;
  Counter& multi_source_keys_;
  Counter* deltas_by_reason_[format::kReasonCount] = {};
  std::shared_ptr<CollectorState> collector_;
  bool collector_added_ = false;  // OpenDb registered it (once: Recover opens again)
  WriteHealth health_;
  // Queries reach the DB through this: the db lock shared, and the journal rows waiting.
  ReadGate read_gate_{db_mu_, db_, read_only_, [this] { return CheckOpen(); },
                      [this](std::vector<JournalRow>* rows) {
                        std::lock_guard lock(journal_mu_);
                        rows->reserve(applying_.size() + journal_.size());
                        rows->insert(rows->end(), applying_.begin(), applying_.end());
                        rows->insert(rows->end(), journal_.begin(), journal_.end());
                      }};
  QueryEngine queries_{read_gate_, catalog_, latest_received_ms_};
  ExportScanner exports_{read_gate_, catalog_};
};

Status StoreImpl::OpenDb() {
  auto db = DbHandle::Open(options_, read_only_);
  if (!db.ok()) return db.status();
  db_ = std::move(*db);
  {
    std::lock_guard lock(collector_->mu);
    collector_->db = db_->db();
    collector_->cfs = db_->cfs();
    collector_->names.assign(std::begin(kCfNames), std::end(kCfNames));
  }
  if (std::exchange(collector_added_, true)) return Status::Ok();
  std::weak_ptr<CollectorState> weak = collector_;
  metrics_.AddCollector([weak](std::string& out) {
    auto state = weak.lock();
    if (!state) return;
    std::lock_guard lock(state->mu);
    if (state->db == nullptr) return;
    out += "# HELP stickmeter_store_live_sst_bytes Size of the live SST files per column family\n";
    out += "# TYPE stickmeter_store_live_sst_bytes gauge\n";
    for (size_t i = 0; i < state->cfs.size(); ++i) {
      uint64_t v = 0;
      state->db->GetIntProperty(state->cfs[i], "rocksdb.live-sst-files-size", &v);
      out += "stickmeter_store_live_sst_bytes{cf=\"" + std::string(state->names[i]) + "\"} " +
             std::to_string(v) + "\n";
    }
    uint64_t mem = 0;
    state->db->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &mem);
    out += "# HELP stickmeter_store_memtable_bytes Size of the RocksDB memtables\n";
    out += "# TYPE stickmeter_store_memtable_bytes gauge\n";
    out += "stickmeter_store_memtable_bytes " + std::to_string(mem) + "\n";
  });
  return Status::Ok();
}

Status StoreImpl::Load() {
  const std::string corrupt = "store " + options_.path + " is corrupted";
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // a one-off full read: keep the block cache for queries
  std::string v;
  auto s = db_->db()->Get(ro, db_->cf(kMeta), format::FormatKey(), &v);
  if (s.IsNotFound()) {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro, db_->cf(kMeta)));
    it->SeekToFirst();
    if (it->Valid() || read_only_) {
      return Status::InvalidArgument(options_.path +
                                     " is a RocksDB database but not a stickmeter store");
    }
    std::string version;
    format::PutU32BE(version, format::kFormatVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->db()->Put(wo, db_->cf(kMeta), format::FormatKey(), version),
                     "writing the format version");
  }
  if (!s.ok()) return FromRocks(s, corrupt).WithContext("");
  if (v.size() != 4) return Status::Corruption(corrupt + ": bad format version record");
  const uint32_t version = format::GetU32BE(v.data());
  if (version != format::kFormatVersion) return VersionRefused(options_.path, version);

  std::unordered_map<uint32_t, uint64_t> applied;  // partition -> written out up to this row id
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro, db_->cf(kMeta)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const auto k = it->key();
    const auto val = it->value();
    const char tag = k[0];
    if (tag == format::kTagName) {
      if (k.size() < 2 || val.size() != 4) return Status::Corruption(corrupt + ": bad name record");
      const auto kind = static_cast<NameKind>(k[1]);
      if (kind < NameKind::kSource || kind > NameKind::kKey ||
          !catalog_.names.Insert(kind, std::string(k.data() + 2, k.size() - 2),
                                 format::GetU32BE(val.data()))) {
        return Status::Corruption(corrupt + ": bad name record");
      }
    } else if (tag == format::kTagTable) {
      auto t = format::DecodeTable(std::string_view(val.data(), val.size()));
      if (k.size() != 5 || !t) return Status::Corruption(corrupt + ": bad table record");
      catalog_.LoadTable(format::GetU32BE(k.data() + 1), std::move(*t));
    } else if (tag == format::kTagMetric) {
      if (k.size() != 9 || val.size() != 1) return Status::Corruption(corrupt + ": bad metric");
      catalog_.LoadMetric(format::GetU32BE(k.data() + 1), format::GetU32BE(k.data() + 5),
                          static_cast<MetricClass>(val[0]));
    } else if (tag == format::kTagTableSource) {
      if (k.size() != 9) return Status::Corruption(corrupt + ": bad source record");
      catalog_.LoadSource(format::GetU32BE(k.data() + 1), format::GetU32BE(k.data() + 5));
    } else if (tag == format::kTagEpoch) {
      if (k.size() != 5 || val.size() != 12) return Status::Corruption(corrupt + ": bad epoch");
      epochs_[format::GetU32BE(k.data() + 1)] = format::GetFixed32LE(val.data());
    } else if (tag == format::kTagSeq) {
      if (val.size() != 8) return Status::Corruption(corrupt + ": bad sequence record");
      next_seq_ = format::GetU64BE(val.data());
    } else if (tag == format::kTagJournal) {
      const auto id = format::DecodeJournalKey(std::string_view(k.data(), k.size()));
      if (!id) return Status::Corruption(corrupt + ": bad journal record");
      journal_.push_back(JournalRow{*id, std::make_shared<const std::string>(val.ToString()),
                                    std::chrono::steady_clock::now()});
    } else if (tag == format::kTagOutbox) {
      // The event feed's outbox, a long backlog after a ClickHouse outage: nothing to load. To
      // its last row; the loop's Next() passes it.
      it->SeekForPrev(format::OutboxKey(UINT64_MAX));
    } else if (tag == format::kTagApplied) {
      const auto partition = format::DecodeAppliedKey(std::string_view(k.data(), k.size()));
      if (!partition || val.size() != 8) return Status::Corruption(corrupt + ": bad journal mark");
      applied[*partition] = format::GetU64BE(val.data());
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), corrupt);

  it.reset(db_->db()->NewIterator(ro, db_->cf(kEntries)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != format::kEntryKeySize) {
      return Status::Corruption(corrupt + ": bad entry record");
    }
    auto loaded = LoadEntry(format::DecodeEntryKey(it->key().data()),
                            std::string_view(it->value().data(), it->value().size()));
    if (!loaded.ok()) return Status::Corruption(corrupt + ": " + loaded.message());
  }
  if (!it->status().ok()) return FromRocks(it->status(), corrupt);
  // Row ids only grow, so that no new row is taken for one a partition's mark says is written
  // out.
  uint64_t last_id = 0;
  for (const auto& [partition, id] : applied) last_id = std::max(last_id, id);
  // Journal rows left by a crash hold the newest state of their entries: it is loaded, then
  // written out before anything newer. A reader keeps the rows it found (a read-write instance
  // still running, or a crash) and its queries read them, as a writer's do.
  if (!journal_.empty()) {
    last_id = std::max(last_id, journal_.back().id);
    if (read_only_) {
      unapplied_journal_rows_ = journal_.size();
    } else {
      std::vector<JournalPiece> pieces;
      if (auto c = CollectJournalPieces(journal_, applied, &pieces); !c.ok()) {
        return Status::Corruption(corrupt + ": " + c.message());
      }
      format::Journal j;
      for (const JournalPiece& piece : pieces) {
        j.Clear();
        if (!format::AppendJournal(piece.records, &j)) {
          return Status::Corruption(corrupt + ": journal row " + std::to_string(piece.id) +
                                    " is malformed");
        }
        for (const auto& e : j.entries) {
          auto loaded = LoadEntry(e.id, e.state);
          if (!loaded.ok()) {
            return Status::Corruption(corrupt + ": journal row " + std::to_string(piece.id) + ": " +
                                      loaded.message());
          }
        }
      }
      LogInfo(
          "store",
          "writing " + std::to_string(journal_.size()) +
              " journal rows to the state and rollups (left by an unclean stop or a failed write)");
      auto written = WriteOutJournal(journal_, pieces, [](size_t) { return true; });
      if (!written.ok()) return written;
      journal_.clear();
    }
  }
  next_journal_id_ = last_id + 1;
  journal_queued_ = journal_applied_ = last_id;
  uint64_t series = 0;
  entries_.ForEach(
      [&](const format::EntryId&, const LiveEntry& live) { series += live.metrics.size(); });
  live_series_ = series;
  return Status::Ok();
}

Status StoreImpl::LoadEntry(const format::EntryId& id, std::string_view state) {
  auto [it, fresh] = entries_.TryEmplace(id);
  if (!format::DecodeEntryState(state, &it->second.metrics)) {
    return Status::Corruption("bad entry state");
  }
  if (!fresh) return Status::Ok();
  const uint64_t tk = (uint64_t{id.table} << 32) | id.key;
  auto [ks, inserted] = key_sources_.TryEmplace(tk, id.source);
  if (!inserted && (ks->second & ~kSharedBit) != id.source && !(ks->second & kSharedBit)) {
    ks->second |= kSharedBit;
    catalog_.CountMultiSourceKey(id.table);
  }
  return Status::Ok();
}

Status StoreImpl::Submit(ingest::UpdateBatch batch, DoneCallback done) {
  if (read_only_) return Status::Unavailable("store is open read-only");
  std::lock_guard lock(q_mu_);
  if (closing_) return Status::Unavailable("store is closing");
  if (!failed_.ok()) return failed_;
  if (queue_.size() >= options_.max_queued_batches) {
    return Status::Unavailable("store queue is full (" + std::to_string(queue_.size()) +
                               " batches)");
  }
  const size_t values = CountValues(batch);
  queue_.push_back(Pending{std::move(batch), std::move(done), values});
  ++submitted_;
  queue_depth_.Set(static_cast<int64_t>(queue_.size()));
  q_cv_.notify_one();
  return Status::Ok();
}

void StoreImpl::Flush() {
  {
    std::unique_lock lock(q_mu_);
    const uint64_t target = submitted_;
    flushed_cv_.wait(lock, [&] { return committed_ >= target; });
  }
  std::unique_lock lock(journal_mu_);
  WaitForJournalApplied(lock, journal_queued_);
}

bool StoreImpl::WaitForJournalApplied(std::unique_lock<std::mutex>& lock, uint64_t target) {
  ++journal_waiters_;
  journal_cv_.notify_all();
  journal_applied_cv_.wait(
      lock, [&] { return journal_applied_ >= target || journal_failed_ || journal_held_; });
  --journal_waiters_;
  return journal_applied_ >= target && !journal_failed_;
}

void StoreImpl::WriterLoop() {
  for (;;) {
    std::deque<Pending> group;
    {
      std::unique_lock lock(q_mu_);
      auto ready = [&] { return closing_ || !queue_.empty(); };
      q_cv_.wait(lock, [&] { return ready() || !failed_.ok(); });
      // Failed: an attempt to recover after a while, unless updates (to refuse) or Close come.
      if (!ready() && !q_cv_.wait_for(lock, health_.RetryDelay(), ready)) {
        lock.unlock();
        Recover();
        continue;
      }
      if (queue_.empty()) break;  // closing and drained
      size_t values = 0;
      while (!queue_.empty() && (group.empty() || values < config::kMaxGroupValues)) {
        values += queue_.front().values;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queue_depth_.Set(static_cast<int64_t>(queue_.size()));
    }
    CommitGroup(group);
  }
}

void StoreImpl::Recover() {
  // The committer first fails what it holds; the writer builds nothing meanwhile.
  {
    std::unique_lock lock(commit_mu_);
    commit_space_cv_.wait(lock, [&] { return built_in_flight_ == 0; });
  }
  Status s = commits_before_failure_.load() == 0
                 ? Status::IoError("store: injected write failure (the disk still fails)")
                 : ProbeWritable(options_.path, options_.env);
  if (s.ok()) s = Reopen();
  if (!s.ok()) return health_.RetryFailed(s);
  {
    std::lock_guard lock(q_mu_);
    failed_ = Status::Ok();
  }
  health_.Recovered();
}

Status StoreImpl::Reopen() {
  // The journal rows the applier holds are on disk: Load finds them again.
  {
    std::lock_guard lock(journal_mu_);
    journal_stop_ = true;
  }
  journal_cv_.notify_all();
  if (applier_.joinable()) applier_.join();
  Status s;
  {
    std::unique_lock db_lock(db_mu_);
    auto close_db = [&] {
      {
        std::lock_guard lock(collector_->mu);
        collector_->db = nullptr;
        collector_->cfs.clear();
      }
      if (db_ != nullptr) (void)db_->Close();  // fails after a failed write; nothing to keep
      db_.reset();
    };
    close_db();
    ForgetLoadedState();
    s = OpenDb();
    if (s.ok()) s = Load();
    if (s.ok()) s = OpenFeed();
    if (!s.ok()) close_db();
  }
  {
    std::lock_guard lock(journal_mu_);
    journal_stop_ = false;
  }
  journal_applied_cv_.notify_all();
  journal_space_cv_.notify_all();
  StartApplier();
  return s;
}

void StoreImpl::ForgetLoadedState() {
  catalog_.Clear();
  entries_.Clear();
  key_sources_.Clear();
  epochs_.clear();
  next_seq_ = 1;
  // Emptied by every BuildGroup already; cleared in case a build stopped half-way.
  pending_.clear();
  pending_sums_.clear();
  raw_.clear();
  raw_bytes_.clear();
  gauge_agg_.clear();
  spilled_ = 0;
  new_entries_in_group_ = 0;
  for (auto& row : journal_rows_) row.clear();
  outbox_buf_.clear();
  feed_stale_ = false;
  std::lock_guard lock(journal_mu_);
  journal_.clear();
  applying_.clear();
  journal_bytes_ = 0;
  journal_failed_ = false;
  journal_backlog_.Set(0);
}

void StoreImpl::CommitGroup(std::deque<Pending>& group) {
  size_t next = 0;  // the first batch of the group not built yet
  while (next < group.size()) {
    const auto start = std::chrono::steady_clock::now();
    Status status;
    {
      std::lock_guard lock(q_mu_);
      status = failed_;
    }
    if (status.ok()) status = WaitForJournalSpace();
    size_t end = next;
    std::unique_ptr<BuiltGroup> built;
    if (status.ok()) {
      size_t values = 0;
      for (size_t i = next; i < group.size(); ++i) values += group[i].values;
      // Roughly what a value costs in the batch (its share of an audit row, state row and rollup
      // operands), so the batch buffer grows once instead of by repeated doubling.
      built = TakeBuiltGroup(std::min(values * 48, config::kMaxGroupRows * 64));
      const uint64_t seq_before = next_seq_;
      do {
        observed_batch_ = static_cast<uint32_t>(built->observed.batches.size());
        const size_t keys_before = observed_keys_.size();
        ApplyBatch(group[end].batch, built->wb);
        if (batch_observed_) {
          built->observed.batches.push_back(std::move(group[end].batch));
        } else {
          observed_keys_.resize(keys_before);
        }
        ++end;
      } while (end < group.size() && GroupRows() < config::kMaxGroupRows);
      // The next group is likely as large: start it with the vectors of one the observer
      // handed back, else with as much room as this one took.
      built->observed.deltas.swap(observed_deltas_);
      built->observed.entry_keys.swap(observed_keys_);
      {
        MutexLock lock(&spare_mu_);
        observed_deltas_.swap(spare_deltas_);
        observed_keys_.swap(spare_keys_);
      }
      observed_deltas_.reserve(built->observed.deltas.size());
      observed_keys_.reserve(built->observed.entry_keys.size());
      BuildGroup(*built, seq_before);
    } else {
      built = std::make_unique<BuiltGroup>(0);
      built->status = status;
      end = group.size();
    }
    built->start = start;
    commit_prepare_.Observe(SecondsSince(start));
    for (; next < end; ++next) built->done.push_back(std::move(group[next].done));
    HandOver(std::move(built));
  }
}

std::unique_ptr<BuiltGroup> StoreImpl::TakeBuiltGroup(size_t reserved_bytes) {
  {
    MutexLock lock(&spare_mu_);
    if (spare_built_) return std::move(spare_built_);
  }
  return std::make_unique<BuiltGroup>(reserved_bytes);
}

void StoreImpl::RecycleBuiltGroup(std::unique_ptr<BuiltGroup> built) {
  // A fresh multi-MiB batch buffer per group cost the writer a page fault per 4 KiB it wrote.
  built->wb.Clear();  // keeps its buffer
  built->status = Status::Ok();
  built->journal.clear();
  built->done.clear();
  built->observed = CommittedGroup{};
  MutexLock lock(&spare_mu_);
  if (!spare_built_) spare_built_ = std::move(built);
}

void StoreImpl::HandOver(std::unique_ptr<BuiltGroup> built) {
  {
    std::unique_lock lock(commit_mu_);
    writer_handing_over_ = true;
    commit_cv_.notify_all();
    // One group written while the next is built: a deeper queue would only add latency.
    commit_space_cv_.wait(lock, [&] { return built_in_flight_ == 0; });
    writer_handing_over_ = false;
    ++built_in_flight_;
    if (!built->journal.empty()) ++journalled_in_flight_;
    built_.push_back(std::move(built));
  }
  commit_cv_.notify_one();
}

void StoreImpl::CommitterLoop() {
  for (;;) {
    std::unique_ptr<BuiltGroup> g;
    {
      std::unique_lock lock(commit_mu_);
      commit_cv_.wait(lock, [&] { return commit_stop_ || !built_.empty(); });
      if (built_.empty()) break;  // stopping and drained
      g = std::move(built_.front());
      built_.pop_front();
    }
    const bool journalled = !g->journal.empty();  // its rows are moved to the applier below
    Status status = g->status;
    bool failed_before = false;
    if (status.ok()) {
      std::lock_guard lock(q_mu_);
      // In-memory state was built on top of the failed group's: nothing after it is written.
      failed_before = !failed_.ok();
      if (failed_before) status = failed_;
    }
    if (status.ok() && g->wb.Count() > 0 && InjectedFailure()) {
      status = Status::IoError("store commit: injected write failure");
      // The first failing write is slow: it fails once the writer has built the next group on
      // its state.
      std::unique_lock lock(commit_mu_);
      if (std::exchange(slow_failure_, false)) {
        if (on_failing_commit_) on_failing_commit_();
        commit_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return writer_handing_over_; });
      }
    }
    if (status.ok() && g->wb.Count() > 0) {
      rocksdb::WriteOptions wo;
      wo.sync = options_.sync_writes;
      rocksdb::PerfContext* perf = rocksdb::get_perf_context();
      perf->Reset();
      status = FromRocks(db_->db()->Write(wo, &g->wb), "store commit");
      commit_wait_.Observe(double(perf->write_thread_wait_nanos) / 1e9);
      commit_wal_.Observe(double(perf->write_wal_time) / 1e9);
      commit_memtable_.Observe(double(perf->write_memtable_time) / 1e9);
    }
    if (!status.ok()) {
      if (!failed_before) {
        // In-memory state is now ahead of disk: nothing is accepted until the writer has loaded
        // it again from disk (Recover).
        health_.Failed(status);
        {
          std::lock_guard lock(q_mu_);
          if (failed_.ok()) failed_ = status;
        }
        q_cv_.notify_all();  // the writer begins its attempts to recover
      }
    } else if (journalled) {
      const auto now = std::chrono::steady_clock::now();
      {
        std::lock_guard lock(journal_mu_);
        for (auto& row : g->journal) {
          row.committed = now;
          journal_bytes_ += row.row->size();
          journal_.push_back(std::move(row));
        }
        journal_queued_ = journal_.back().id;
        journal_backlog_.Set(static_cast<int64_t>(journal_bytes_));
      }
      journal_cv_.notify_one();
    }
    commit_latency_.Observe(SecondsSince(g->start));
    if (status.ok() && observer_ != nullptr &&
        (!g->observed.deltas.empty() || !g->observed.batches.empty())) {
      observer_->OnCommitted(std::move(g->observed));
    }
    for (auto& done : g->done) {
      if (done) done(status);
    }
    {
      std::lock_guard lock(q_mu_);
      committed_ += g->done.size();
    }
    flushed_cv_.notify_all();
    RecycleBuiltGroup(std::move(g));
    {
      std::lock_guard lock(commit_mu_);
      --built_in_flight_;
      if (journalled) --journalled_in_flight_;
    }
    commit_space_cv_.notify_all();
  }
}

void StoreImpl::BuildGroup(BuiltGroup& built, uint64_t seq_before) {
  rocksdb::WriteBatch& wb = built.wb;
  std::string k;
  k.reserve(64);
  // The audit rows, state rows and rollup cells go into journal rows (one per key partition): a
  // few memtable inserts on the path to the acknowledgement instead of one per entry update,
  // entry and resolution. The applier writes them to their column families afterwards
  // (ApplierLoop), an entry's audit rows of all the groups it writes at once as one row.
  // Groups that gain nothing from that write their state and rollups directly: one whose journal
  // would not fit its memtable (its rows would reach the disk before the applier deletes them),
  // every group while entries rarely recur from group to group (the applier saves by summing an
  // entry over the groups it writes at once; without repeats the journal only adds its own
  // cost, e.g. with 100k+ keys below saturation), and a group whose entries are mostly new (a
  // fresh store's first burst: they will not recur within the applier's pass either).
  const auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= repeat_window_) {
    repeats_per_window_ = window_entries_ == 0 ? config::kMinJournalRepeats
                                               : double(window_touches_) / window_entries_;
    window_touches_ = window_entries_ = 0;
    ++window_;
    window_start_ = now;
  }
  const size_t journal_bytes =
      pending_.size() * (config::kJournalEntryBytes + 3 * config::kJournalCellBytes) +
      spilled_ * config::kJournalCellBytes + raw_bytes_.size() +
      raw_.size() * config::kJournalAuditBytes;
  bool direct = journal_bytes > config::kMaxJournalGroupBytes ||
                repeats_per_window_ < config::kMinJournalRepeats ||
                2 * new_entries_in_group_ > pending_.size();
  new_entries_in_group_ = 0;
  switch (journal_mode_.load(std::memory_order_relaxed)) {
    case testing_internal::JournalMode::kAlways:
      direct = false;
      break;
    case testing_internal::JournalMode::kNever:
      direct = true;
      break;
    case testing_internal::JournalMode::kAuto:
      break;
  }
  // The state written directly must not be overtaken by an older journal row's: the applier
  // first writes out every one. If it cannot, the group is journalled after all.
  if (direct) direct = WaitForJournalDrained();
  for (const auto& row : raw_) {
    format::AppendJournalAudit(journal_rows_[JournalPartition(row.table, row.key)], row.table,
                               row.key, row.t_ms, row.seq,
                               std::string_view(raw_bytes_).substr(row.offset, row.size));
    if (feed_) {
      format::AppendJournalAudit(outbox_buf_, row.table, row.key, row.t_ms, row.seq,
                                 std::string_view(raw_bytes_).substr(row.offset, row.size));
    }
  }
  // The event feed's outbox row, in the commit's own WriteBatch (tsdb/event_feed.h).
  if (!outbox_buf_.empty()) {
    wb.Put(db_->cf(kMeta), format::OutboxKey(seq_before), outbox_buf_);
    outbox_buf_.clear();
  } else if (feed_stale_ && next_seq_ != seq_before) {
    FeedReader::AddStop(db_.get(), wb);
    feed_stale_ = false;
  }
  raw_.clear();
  raw_bytes_.clear();
  for (const auto& p : pending_) {
    const format::EntryId& id = p.entry->first;
    LiveEntry& live = p.entry->second;
    std::string& row = journal_rows_[JournalPartition(id.table, id.key)];
    state_buf_.clear();
    format::AppendEntryState(state_buf_, live.metrics.data(), live.metrics.size());
    format::AppendJournalEntry(row, id, state_buf_);
    live.pending = LiveEntry::kClean;
    if (!p.has_cells) continue;
    for (int r = 0; r < format::kJournalResolutions; ++r) {
      AppendCell(row, id, live.metrics, pending_sums_.data() + p.sums, p.sums_width, r,
                 p.bucket[r]);
    }
  }
  pending_.clear();
  pending_sums_.clear();
  spilled_ = 0;
  Status status;
  if (direct) {
    format::Journal j;
    for (const auto& row : journal_rows_) {
      if (!row.empty() && !format::AppendJournal(row, &j)) {
        status = Status::Corruption("a journal row the writer built is malformed");
      }
    }
    if (status.ok()) status = AddStateAndRollups(*db_, j, wb);
  } else {
    // At most what a chunk adds to its records: a tag, its partition and its length.
    constexpr size_t kChunkHeaderBytes = 16;
    size_t left = 0, largest = 0;  // bytes of the chunks not in a row yet, and of the largest
    for (const auto& records : journal_rows_) {
      if (records.empty()) continue;
      left += records.size() + kChunkHeaderBytes;
      largest = std::max(largest, records.size() + kChunkHeaderBytes);
    }
    std::string row;
    // Each row is sized once for what it will hold (at most kJournalRowBytes and one more
    // chunk) instead of growing by doubling: every step copied the row into fresh memory.
    auto start_row = [&] { row.reserve(std::min(left, config::kJournalRowBytes + largest)); };
    auto finish_row = [&] {
      if (row.empty()) return;
      wb.Put(db_->cf(kMeta), format::JournalKey(next_journal_id_), row);
      built.journal.push_back(
          JournalRow{next_journal_id_++, std::make_shared<const std::string>(std::move(row)), {}});
      row = std::string();
    };
    start_row();
    for (uint32_t i = 0; i < config::kJournalPartitions; ++i) {
      if (journal_rows_[i].empty()) continue;
      if (row.size() >= config::kJournalRowBytes) {
        finish_row();
        start_row();
      }
      format::AppendJournalChunk(row, i, journal_rows_[i]);
      left -= journal_rows_[i].size() + kChunkHeaderBytes;
    }
    finish_row();
  }
  for (auto& row : journal_rows_) {
    row.clear();
    // A burst leaves big buffers behind; they go back to the system rather than stay resident.
    if (row.capacity() > (64u << 10)) row.shrink_to_fit();
  }
  auto by_key = [](const auto& a, const auto& b) {
    return std::tie(a.first.table, a.first.metric, a.first.key, a.first.bucket, a.first.source) <
           std::tie(b.first.table, b.first.metric, b.first.key, b.first.bucket, b.first.source);
  };
  std::vector<std::pair<AggKey, std::pair<int64_t, int64_t>>> gauges(gauge_agg_.begin(),
                                                                     gauge_agg_.end());
  gauge_agg_.clear();
  std::sort(gauges.begin(), gauges.end(), by_key);
  for (const auto& [cell, v] : gauges) {
    k.clear();
    format::AppendRollupKey(k, cell.table, cell.metric, cell.key, cell.bucket, cell.source);
    wb.Merge(db_->cf(kGauge), k, format::EncodeGauge(v.first, v.second));
  }
  if (next_seq_ != seq_before) {
    std::string seq;
    format::PutU64BE(seq, next_seq_);
    wb.Put(db_->cf(kMeta), format::SeqKey(), seq);
  }
  built.status = status;
}

Status StoreImpl::WaitForJournalSpace() {
  // At saturation the applier, which runs at a lower priority, would fall ever further behind:
  // past the age bound the writer gives it the cores instead.
  std::unique_lock lock(journal_mu_);
  auto behind = [&] {
    if (journal_failed_ || journal_held_) return false;
    if (journal_bytes_ > config::kMaxJournalBacklogBytes) return true;
    const auto now = std::chrono::steady_clock::now();
    const auto oldest = !applying_.empty() ? applying_.front().committed
                        : journal_.empty() ? now
                                           : journal_.front().committed;
    return now - oldest > journal_age_bound_;
  };
  // The age condition changes with the clock alone, so it is checked again every few ms.
  while (behind()) journal_space_cv_.wait_for(lock, std::chrono::milliseconds(5));
  if (!journal_failed_) return Status::Ok();
  std::lock_guard q_lock(q_mu_);
  return failed_;
}

bool StoreImpl::WaitForJournalDrained() {
  {
    std::unique_lock lock(commit_mu_);
    commit_space_cv_.wait(lock, [&] { return journalled_in_flight_ == 0; });
  }
  std::unique_lock lock(journal_mu_);
  return WaitForJournalApplied(lock, journal_queued_);
}

void StoreImpl::ApplierLoop() {
  std::vector<JournalRow> rows;
  for (;;) {
    {
      std::unique_lock lock(journal_mu_);
      journal_cv_.wait(lock,
                       [&] { return journal_stop_ || (!journal_.empty() && !journal_held_); });
      if (journal_.empty() || journal_held_) break;  // stopping and drained, or held
      // A pass writes an entry once however many groups touched it: below saturation, gathering
      // a few more groups first saves most of the pass's memtable inserts (it would otherwise
      // run after every group commit). Not when someone waits for the journal to be written.
      journal_cv_.wait_until(lock, journal_.front().committed + applier_gather_, [&] {
        return journal_stop_ || journal_held_ || journal_waiters_ > 0 ||
               journal_bytes_ >= config::kApplierGatherBytes;
      });
      if (journal_held_) break;
      rows.swap(journal_);
      journal_.clear();
      applying_ = rows;
    }
    // How long changes waited in the journal: the age of the pass's oldest row.
    journal_lag_.Set(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - rows.front().committed)
                         .count());
    // By partition, each in id order: a later state of a series overrides an earlier one.
    size_t pass_bytes = 0, written_bytes = 0;
    for (const JournalRow& row : rows) pass_bytes += row.row->size();
    std::vector<JournalPiece> pieces;
    Status status = CollectJournalPieces(rows, {}, &pieces);
    bool held = false;
    if (status.ok()) {
      status = WriteOutJournal(rows, pieces, [&](size_t bytes) {
        written_bytes += bytes;
        {
          std::lock_guard lock(journal_mu_);
          journal_bytes_ -= bytes;
          journal_backlog_.Set(static_cast<int64_t>(journal_bytes_));
        }
        journal_space_cv_.notify_all();
        if (applier_batches_left_.load() < 0 || applier_batches_left_.fetch_sub(1) > 1) {
          return true;
        }
        held = true;
        return false;
      });
    }
    {
      std::lock_guard lock(journal_mu_);
      if (!held && status.ok()) applying_.clear();
      journal_bytes_ -= pass_bytes - written_bytes;  // the chunk headers
      journal_backlog_.Set(static_cast<int64_t>(journal_bytes_));
      if (journal_.empty()) journal_lag_.Set(0);
      if (held) {
        journal_held_ = true;
      } else if (status.ok()) {
        journal_applied_ = rows.back().id;
      } else {
        journal_failed_ = true;
      }
    }
    journal_space_cv_.notify_all();
    journal_applied_cv_.notify_all();
    if (held) return;
    if (!status.ok()) {
      // The journal rows stay: reopening the store applies them (Load, from Recover).
      health_.Failed(status);
      {
        std::lock_guard lock(q_mu_);
        if (failed_.ok()) failed_ = status;
      }
      q_cv_.notify_all();  // the writer begins its attempts to recover
      return;
    }
  }
}

Status StoreImpl::WriteOutJournal(const std::vector<JournalRow>& rows,
                                  std::vector<JournalPiece>& pieces,
                                  const std::function<bool(size_t)>& on_batch) {
  if (rows.empty()) return Status::Ok();
  std::stable_sort(pieces.begin(), pieces.end(), [](const JournalPiece& a, const JournalPiece& b) {
    return a.partition < b.partition;
  });
  std::string written_up_to;
  format::PutU64BE(written_up_to, rows.back().id);
  format::Journal j;
  size_t begin = 0;
  do {
    size_t end = begin, bytes = 0;
    while (end < pieces.size() &&
           (end == begin || pieces[end].partition == pieces[end - 1].partition ||
            bytes < config::kMinApplyBatchBytes)) {
      bytes += pieces[end].records.size();
      ++end;
    }
    j.Clear();
    rocksdb::WriteBatch wb;
    for (size_t i = begin; i < end; ++i) {
      if (!format::AppendJournal(pieces[i].records, &j)) {
        return Status::Corruption("journal row " + std::to_string(pieces[i].id) + " is malformed");
      }
      const uint32_t partition = pieces[i].partition;
      if (i + 1 == end || pieces[i + 1].partition != partition) {
        wb.Put(db_->cf(kMeta), format::AppliedKey(partition), written_up_to);
      }
    }
    if (auto s = AddStateAndRollups(*db_, j, wb); !s.ok()) return s;
    if (end == pieces.size()) {
      for (const JournalRow& row : rows) wb.Delete(db_->cf(kMeta), format::JournalKey(row.id));
    }
    // Not synced: until the WAL holds this batch the journal rows are still there and the
    // partitions not marked written out (the later synced commit makes both durable, in order),
    // so a crash loses nothing.
    rocksdb::WriteOptions wo;
    // A priority other than the writer's keeps RocksDB from joining this batch to a commit's
    // write group, where the commit would wait for (or do) this batch's memtable inserts.
    // Without a rate limiter configured the priority has no other effect.
    wo.rate_limiter_priority = rocksdb::Env::IO_USER;
    if (auto s = FromRocks(db_->db()->Write(wo, &wb), "writing state and rollups"); !s.ok())
      return s;
    begin = end;
    if (!on_batch(bytes)) break;
  } while (begin < pieces.size());
  return Status::Ok();
}

void StoreImpl::SpillCells(uint32_t pending_index, bool all, const uint32_t* buckets) {
  PendingEntry& p = pending_[pending_index];
  if (!p.has_cells) return;
  const format::EntryId& id = p.entry->first;
  std::string& row = journal_rows_[JournalPartition(id.table, id.key)];
  uint64_t* sums = pending_sums_.data() + p.sums;
  for (int r = 0; r < format::kJournalResolutions; ++r) {
    if (!all && p.bucket[r] == buckets[r]) continue;
    AppendCell(row, id, p.entry->second.metrics, sums, p.sums_width, r, p.bucket[r]);
    ++spilled_;
    for (uint32_t m = 0; m < p.sums_width; ++m) sums[m * 3 + r] = 0;
  }
}

void StoreImpl::AppendCell(std::string& row, const format::EntryId& id,
                           const std::vector<format::MetricState>& metrics, const uint64_t* sums,
                           size_t width, int r, uint32_t bucket) {
  sums_buf_.clear();
  for (size_t m = 0; m < width; ++m) {
    const uint64_t v = sums[m * 3 + r];
    if (v == 0) continue;
    const uint32_t metric = metrics[m].metric;
    format::AppendSum(sums_buf_,
                      r == 1 ? format::HourSlot(metric, bucket % format::kHoursPerRow) : metric, v);
  }
  if (sums_buf_.empty()) return;
  format::AppendJournalCell(row, r, id.table, id.key,
                            r == 1 ? bucket / format::kHoursPerRow : bucket, id.source, sums_buf_);
}

void StoreImpl::ApplyBatch(const ingest::UpdateBatch& batch, rocksdb::WriteBatch& wb) {
  auto intern = [&](NameKind kind, std::string_view name) {
    auto [id, fresh] = catalog_.names.Intern(kind, name);
    if (fresh) {
      std::string v;
      format::PutU32BE(v, id);
      wb.Put(db_->cf(kMeta), format::NameKey(kind, name), v);
    }
    return id;
  };
  const uint32_t source = intern(NameKind::kSource, batch.source);
  batch_observed_ = observer_ != nullptr && batch.source_restarted;
  uint32_t& epoch = epochs_[source];
  if (batch.source_restarted) {
    ++epoch;
    std::string v;
    format::PutFixed32LE(v, epoch);
    format::PutFixed64LE(v, static_cast<uint64_t>(batch.restart_ms));
    wb.Put(db_->cf(kMeta), format::EpochKey(source), v);
  }
  // The metrics of a table resolved once per batch rather than once per value: a batch holds
  // thousands of values of the same few metrics.
  struct MetricSlot {
    std::string_view name;
    ingest::MetricKind kind;
    uint32_t id;
    MetricClass cls;
  };
  std::vector<MetricSlot> slots;
  uint64_t received = 0, deltas = 0;
  uint64_t by_reason[format::kReasonCount] = {};
  for (const auto& tu : batch.tables) {
    if (!tu.table) continue;
    const ingest::TableInfo& info = *tu.table;
    const uint32_t table = intern(NameKind::kTable, info.name);
    TableMeta* meta = catalog_.Table(table);
    if (catalog_.SetInfo(meta, format::TableValue{info.key_type, info.key_size, info.expire_ms,
                                                  info.data_types})) {
      wb.Put(db_->cf(kMeta), format::TableKey(table), format::EncodeTable(meta->info));
    }
    if (catalog_.AddSource(meta, source)) {
      wb.Put(db_->cf(kMeta), format::TableSourceKey(table, source), "");
    }
    if (meta->observed < 0) meta->observed = observer_ != nullptr && observer_->Observes(info.name);
    const bool observed = meta->observed > 0;
    batch_observed_ |= observed;
    slots.clear();
    auto slot_of = [&](const ingest::MetricValue& mv) -> const MetricSlot& {
      for (const auto& s : slots) {
        if (s.kind == mv.kind && s.name == mv.metric) return s;
      }
      const uint32_t metric = intern(NameKind::kMetric, mv.metric);
      const MetricClass cls = mv.kind == ingest::MetricKind::kGauge       ? MetricClass::kGauge
                              : mv.kind == ingest::MetricKind::kCounter64 ? MetricClass::kCounter64
                                                                          : MetricClass::kCounter32;
      if (catalog_.SetMetric(meta, metric, cls)) {
        wb.Put(db_->cf(kMeta), format::MetricKey(table, metric),
               std::string(1, static_cast<char>(cls)));
      }
      return slots.emplace_back(MetricSlot{mv.metric, mv.kind, metric, cls});
    };
    for (const auto& entry : tu.entries) {
      key_name_.clear();
      format::PutU32BE(key_name_, table);
      key_name_.append(entry.key);
      const uint32_t key = intern(NameKind::kKey, key_name_);
      if (observer_ != nullptr) observed_keys_.push_back(key);
      const int64_t t = entry.received_ms;
      if (t > latest_received_ms_.load(std::memory_order_relaxed)) {
        latest_received_ms_.store(t, std::memory_order_relaxed);
      }
      const uint32_t buckets[3] = {
          static_cast<uint32_t>(FloorTo(t, format::kMinuteMs) / format::kMinuteMs),
          static_cast<uint32_t>(FloorTo(t, format::kHourMs) / format::kHourMs),
          static_cast<uint32_t>(FloorTo(t, format::kDayMs) / format::kDayMs)};
      // This entry update's audit row, started at its first non-zero delta.
      const size_t row_offset = raw_bytes_.size();
      const uint64_t row_seq = next_seq_;
      // The entry's state, looked up at its first counter value.
      std::pair<const format::EntryId, LiveEntry>* live_entry = nullptr;
      for (const auto& mv : entry.values) {
        ++received;
        const MetricSlot& slot = slot_of(mv);
        const uint32_t metric = slot.id;
        if (slot.cls == MetricClass::kGauge) {
          const auto g = static_cast<int64_t>(mv.value);
          auto [git, fresh] =
              gauge_agg_.try_emplace(AggKey{table, metric, key, buckets[0], source}, g, g);
          if (!fresh) {
            git->second.first = g;
            git->second.second = std::max(git->second.second, g);
          }
          continue;
        }
        if (live_entry == nullptr) {
          auto [eit, fresh] = entries_.TryEmplace(format::EntryId{source, table, key});
          live_entry = eit;
          if (fresh) {
            ++new_entries_in_group_;
            const uint64_t tk = (uint64_t{table} << 32) | key;
            auto [ks, inserted] = key_sources_.TryEmplace(tk, source);
            if (!inserted && (ks->second & ~kSharedBit) != source && !(ks->second & kSharedBit)) {
              ks->second |= kSharedBit;
              multi_source_keys_.Inc();
              catalog_.CountMultiSourceKey(meta);
            }
          }
        }
        LiveEntry& live = live_entry->second;
        auto& states = live.metrics;
        size_t m = 0;
        while (m < states.size() && states[m].metric < metric) ++m;
        std::optional<format::SeriesValue> prev;
        if (m < states.size() && states[m].metric == metric) {
          prev = states[m].v;
        } else {
          // A series first seen: the pending sums are laid out by metric index, so the open
          // cells go out before the index shifts, and the entry gets a wider region.
          if (live.pending != LiveEntry::kClean) {
            SpillCells(live.pending, /*all=*/true, buckets);
            PendingEntry& p = pending_[live.pending];
            p.has_cells = false;
            p.sums = static_cast<uint32_t>(pending_sums_.size());
            p.sums_width = static_cast<uint32_t>(states.size() + 1);
            pending_sums_.resize(pending_sums_.size() + 3 * p.sums_width, 0);
          }
          states.insert(states.begin() + static_cast<ptrdiff_t>(m),
                        format::MetricState{metric, {}});
          live_series_.fetch_add(1, std::memory_order_relaxed);
        }
        const DeltaResult d = ComputeDelta(
            prev, DeltaInput{mv.value, slot.cls == MetricClass::kCounter32, t, batch.connection_id,
                             epoch, info.expire_ms, options_.expiry_margin_ms});
        states[m].v = d.next;
        if (live.pending == LiveEntry::kClean) {
          live.pending = static_cast<uint32_t>(pending_.size());
          const auto width = static_cast<uint32_t>(states.size());
          pending_.push_back(PendingEntry{
              live_entry, false, {}, static_cast<uint32_t>(pending_sums_.size()), width});
          pending_sums_.resize(pending_sums_.size() + 3 * width, 0);
          ++window_touches_;
          if (live.window != window_) {
            live.window = window_;
            ++window_entries_;
          }
        }
        if (d.delta == 0) continue;
        if (next_seq_ == row_seq) format::StartEventRow(raw_bytes_, source);
        format::AppendRowEvent(raw_bytes_, metric, mv.value, d.delta, d.reason);
        ++next_seq_;
        {
          PendingEntry& p = pending_[live.pending];
          // A new hour or day is always a new minute too.
          if (p.has_cells && p.bucket[0] != buckets[0]) {
            SpillCells(live.pending, /*all=*/false, buckets);
          }
          p.bucket[0] = buckets[0];
          p.bucket[1] = buckets[1];
          p.bucket[2] = buckets[2];
          p.has_cells = true;
          pending_sums_[p.sums + m * 3 + 0] += d.delta;
          pending_sums_[p.sums + m * 3 + 1] += d.delta;
          pending_sums_[p.sums + m * 3 + 2] += d.delta;
        }
        ++by_reason[static_cast<int>(d.reason)];
        ++deltas;
        if (observed) {
          observed_deltas_.push_back(
              CommittedDelta{observed_batch_, static_cast<uint32_t>(&tu - batch.tables.data()),
                             static_cast<uint32_t>(&entry - tu.entries.data()),
                             static_cast<uint32_t>(&mv - entry.values.data()), key, d.delta});
        }
      }
      if (next_seq_ != row_seq) {
        raw_.push_back(RawRow{table, key, t, row_seq, static_cast<uint32_t>(row_offset),
                              static_cast<uint32_t>(raw_bytes_.size() - row_offset)});
      }
    }
  }
  for (int r = 1; r < format::kReasonCount; ++r) {
    if (by_reason[r] > 0) deltas_by_reason_[r]->Inc(by_reason[r]);
  }
  stat_deltas_.fetch_add(deltas, std::memory_order_relaxed);
  updates_received_.Inc(received);
  stat_updates_.fetch_add(received, std::memory_order_relaxed);
}

Result<std::vector<std::pair<std::string, std::string>>> StoreImpl::Settings(
    std::string_view prefix) {
  std::shared_lock db_lock(db_mu_);  // Reopen replaces db_
  if (auto s = CheckOpen(); !s.ok()) return s;
  const std::string start = std::string(1, format::kTagSetting) + std::string(prefix);
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(kMeta)));
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    out.emplace_back(it->key().ToString().substr(1), it->value().ToString());
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read settings");
  return out;
}

Status StoreImpl::WriteSetting(const std::string& name, std::optional<std::string> value,
                               int64_t t_ms) {
  if (read_only_) return Status::Unavailable("store is open read-only");
  std::shared_lock db_lock(db_mu_);  // Reopen replaces db_
  if (auto s = CheckOpen(); !s.ok()) return s;
  std::lock_guard lock(settings_mu_);
  const std::string key = std::string(1, format::kTagSetting) + name;
  std::string old;
  if (!value) {
    rocksdb::Status got = db_->db()->Get(rocksdb::ReadOptions(), db_->cf(kMeta), key, &old);
    if (got.IsNotFound()) return Status::NotFound("no such setting");
    if (!got.ok()) return FromRocks(got, "read setting");
  }
  std::string history_key(1, format::kTagSettingHistory);
  format::PutU64BE(history_key, static_cast<uint64_t>(t_ms));
  format::PutU64BE(history_key, ++setting_changes_);
  std::string change;
  format::PutU32BE(change, static_cast<uint32_t>(name.size()));
  change += name;
  change += value ? '\0' : '\1';
  change += value ? *value : old;
  rocksdb::WriteBatch wb;
  if (value) {
    wb.Put(db_->cf(kMeta), key, *value);
  } else {
    wb.Delete(db_->cf(kMeta), key);
  }
  wb.Put(db_->cf(kMeta), history_key, change);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  return FromRocks(db_->db()->Write(wo, &wb), "write setting");
}

Result<std::vector<SettingChange>> StoreImpl::SettingHistory(std::string_view prefix,
                                                             size_t limit) {
  std::shared_lock db_lock(db_mu_);  // Reopen replaces db_
  if (auto s = CheckOpen(); !s.ok()) return s;
  const std::string start(1, format::kTagSettingHistory);
  std::deque<SettingChange> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(kMeta)));
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    const rocksdb::Slice k = it->key(), v = it->value();
    if (k.size() != 17 || v.size() < 5) return Status::Corruption("bad setting history record");
    const uint32_t n = format::GetU32BE(v.data());
    if (v.size() < 5 + size_t{n}) return Status::Corruption("bad setting history record");
    std::string name(v.data() + 4, n);
    if (!std::string_view(name).starts_with(prefix)) continue;
    SettingChange c;
    c.t_ms = static_cast<int64_t>(format::GetU64BE(k.data() + 1));
    c.name = std::move(name);
    c.deleted = v[4 + n] != 0;
    c.value.assign(v.data() + 5 + n, v.size() - 5 - n);
    out.push_back(std::move(c));
    if (out.size() > limit) out.pop_front();
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read setting history");
  return std::vector<SettingChange>(out.begin(), out.end());
}

// The event feed of a store: FeedReader under the store's db lock, so that Close waits for a
// read in progress and later calls fail with Unavailable.
class StoreImpl::Feed final : public EventFeed {
 public:
  explicit Feed(StoreImpl* s) : s_(s) {}
  Result<std::string> StoreId() override {
    return Run([](FeedReader& r) { return r.StoreId(); });
  }
  Result<FeedPosition> Position() override {
    return Run([](FeedReader& r) { return r.Position(); });
  }
  Result<FeedBatch> Read(const FeedPosition& from, const FeedLimits& limits) override {
    return Run([&](FeedReader& r) { return r.Read(from, limits); });
  }
  Status Ack(const FeedPosition& pos) override {
    auto done = Run([&](FeedReader& r) -> Result<bool> {
      if (Status st = r.Ack(pos); !st.ok()) return st;
      return true;
    });
    return done.status();
  }
  Result<FeedStats> Stats() override {
    return Run([](FeedReader& r) { return r.Stats(); });
  }

 private:
  template <typename Fn>
  auto Run(Fn&& fn) -> decltype(fn(std::declval<FeedReader&>())) {
    std::shared_lock lock(s_->db_mu_);
    if (Status st = s_->CheckOpen(); !st.ok()) return st;
    FeedReader reader(s_->db_.get(), &s_->catalog_.names);
    return fn(reader);
  }

  StoreImpl* s_;
};

Status StoreImpl::OpenFeed() {
  auto kept = FeedReader::OpenFeed(db_.get(), options_.event_feed, next_seq_);
  if (!kept.ok()) return kept.status();
  if (options_.event_feed) {
    if (!feed_) feed_ = std::make_unique<Feed>(this);  // kept by a reopen (Recover)
  } else {
    feed_stale_ = *kept;
  }
  return Status::Ok();
}

Status StoreImpl::Close() {
  std::lock_guard close_lock(close_mu_);
  if (closed_) return Status::Ok();
  closed_ = true;
  {
    std::lock_guard lock(q_mu_);
    closing_ = true;
  }
  q_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard lock(commit_mu_);
    commit_stop_ = true;
  }
  commit_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
  {
    std::lock_guard lock(journal_mu_);
    journal_stop_ = true;
  }
  journal_cv_.notify_all();
  if (applier_.joinable()) applier_.join();
  flushed_cv_.notify_all();
  std::unique_lock db_lock(db_mu_);
  {
    std::lock_guard lock(collector_->mu);
    collector_->db = nullptr;
    collector_->cfs.clear();
  }
  Status result;
  if (db_ != nullptr) {
    result = db_->Close();
    db_.reset();
  }
  return result;
}

Status StoreImpl::Backup(const std::string& dir) {
  ReadGate::Hold hold(read_gate_);
  if (!hold.status().ok()) return hold.status();
  if (read_only_) return CopyTo(hold.db(), dir);
  Flush();
  return CheckpointTo(hold.db(), dir);
}

Status StoreImpl::CompactAll() {
  ReadGate::Hold hold(read_gate_);
  if (!hold.status().ok()) return hold.status();
  if (read_only_) return Status::Unavailable("compaction needs the store open read-write");
  return tsdb::CompactAll(hold.db());
}

// ---------------------------------------------------------------- queries

Result<std::vector<UsageRow>> StoreImpl::Usage(const UsageQuery& q) { return queries_.Usage(q); }

Status StoreImpl::ForEachUsage(const UsageQuery& q, const UsageVisitor& visit) {
  return queries_.ForEachUsage(q, visit);
}

Result<Series> StoreImpl::GetSeries(const SeriesQuery& q) { return queries_.GetSeries(q); }

Result<std::vector<AuditEvent>> StoreImpl::Audit(const AuditQuery& q) { return queries_.Audit(q); }

Result<std::vector<TableSummary>> StoreImpl::Tables() { return queries_.Tables(); }

Result<std::vector<std::string>> StoreImpl::Keys(const std::string& table,
                                                 const std::string& prefix, size_t limit) {
  return queries_.Keys(table, prefix, limit);
}

Result<std::vector<std::string>> StoreImpl::KeysAfter(const std::string& table,
                                                      const std::string& prefix,
                                                      const std::string& after, size_t limit) {
  return queries_.KeysAfter(table, prefix, after, limit);
}

Status StoreImpl::Export(const ExportQuery& q, const std::function<bool(const ExportRow&)>& emit) {
  return exports_.Export(q, emit);
}

Result<StoreStats> StoreImpl::Stats() {
  StoreStats counted;
  counted.live_series = live_series_.load(std::memory_order_relaxed);
  counted.deltas_written = stat_deltas_.load(std::memory_order_relaxed);
  counted.updates_received = stat_updates_.load(std::memory_order_relaxed);
  return queries_.Stats(counted);
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  auto store = std::make_unique<StoreImpl>(options, /*read_only=*/false);
  if (auto s = store->OpenDb(); !s.ok()) return s;
  if (auto s = store->Load(); !s.ok()) {
    (void)store->Close();
    return s;
  }
  if (auto s = store->OpenFeed(); !s.ok()) {
    (void)store->Close();
    return s;
  }
  store->StartWriter();
  return std::unique_ptr<Store>(std::move(store));
}

Result<std::unique_ptr<Store>> Store::OpenReadOnly(const StoreOptions& options) {
  auto open = [&]() -> Result<std::unique_ptr<StoreImpl>> {
    auto store = std::make_unique<StoreImpl>(options, /*read_only=*/true);
    Status s = store->OpenDb();
    if (s.ok()) s = store->Load();
    if (!s.ok()) {
      (void)store->Close();
      return s;
    }
    return store;
  };
  auto store = open();
  if (!store.ok()) return store.status();
  if ((*store)->UnappliedJournalRows() == 0) return std::unique_ptr<Store>(std::move(*store));
  // Journal rows are either in flight in a running server, which writes them out within seconds,
  // or left by an unclean stop: then nobody holds the store, and opening it for writing once
  // writes them out (the view reads them either way).
  (void)(*store)->Close();
  auto writer = Store::Open(options);
  if (writer.ok()) {
    if (auto s = (*writer)->Close(); !s.ok()) return s;
  } else if (writer.status().code() != Status::Code::kUnavailable) {
    LogWarn("store", "a reader cannot write out the journal left by an unclean stop (" +
                         writer.status().ToString() + "); its queries read the journal instead");
  }
  store = open();
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(std::move(*store));
}

Store::~Store() = default;

void testing_internal::SetExportChunkBytes(Store& store, size_t bytes) {
  static_cast<StoreImpl&>(store).SetExportChunkBytes(bytes);
}

void testing_internal::HoldJournal(Store& store) { static_cast<StoreImpl&>(store).HoldJournal(); }

void testing_internal::StopApplierAfter(Store& store, int batches) {
  static_cast<StoreImpl&>(store).StopApplierAfter(batches);
}

void testing_internal::FailCommitsAfter(Store& store, int64_t writes,
                                        std::function<void()> on_failing) {
  static_cast<StoreImpl&>(store).FailCommitsAfter(writes, std::move(on_failing));
}

void testing_internal::SetJournalMode(Store& store, JournalMode mode) {
  static_cast<StoreImpl&>(store).SetJournalMode(mode);
}

}  // namespace stickmeter::tsdb
