#include "tsdb/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"
#include "common/metrics.h"
#include "common/thread_annotations.h"
#include "common/time.h"
#include "tsdb/catalog.h"
#include "tsdb/config.h"
#include "tsdb/db_handle.h"
#include "tsdb/entry_table.h"
#include "tsdb/feed_reader.h"
#include "tsdb/format.h"
#include "tsdb/group_builder.h"
#include "tsdb/incremental_hash_map.h"
#include "tsdb/journal.h"
#include "tsdb/merged_iterator.h"
#include "tsdb/query_plan.h"
#include "tsdb/rocks_status.h"
#include "tsdb/store_testing.h"
#include "tsdb/write_health.h"
#include "tsdb/write_pipeline.h"

namespace stickmeter::tsdb {
namespace {

namespace fs = std::filesystem;
using format::MetricClass;
using format::NameKind;

// Source slots of an export row: one slot for all sources, or one per source in name order
// with per_source.
struct ExportSlots {
  size_t count = 1;
  std::vector<uint32_t> slot_of;   // by source id; kNone for an unknown id
  std::vector<std::string> names;  // by slot, empty without per_source
  static constexpr uint32_t kNone = UINT32_MAX;
  bool Find(uint32_t source, size_t* slot) const {
    if (names.empty()) {
      *slot = 0;
      return true;
    }
    if (source >= slot_of.size() || slot_of[source] == kNone) return false;
    *slot = slot_of[source];
    return true;
  }
};

// The keys of one export chunk in text order and their totals. Cells are indexed by position *
// stride + metric index * slots + slot, so emitting walks them in output order.
struct ExportChunk {
  std::string text;                                  // the key texts back to back
  std::vector<uint32_t> text_end;                    // where key i's text ends in `text`
  std::vector<std::pair<uint32_t, uint32_t>> by_id;  // (key id, position), ascending id
  std::vector<uint64_t> totals;
};

// Moves `it`, which rests on the first row at or after some earlier target <= `target` (or is
// not valid), to the first row at or after `target`: a few Next() first, as the target is often
// a few rows on and a step on a cached block costs a fraction of a Seek.
void SeekAhead(rocksdb::Iterator* it, const rocksdb::Slice& target) {
  for (int i = 0; i < config::kMaxSkipRows && it->Valid(); ++i) {
    if (it->key().compare(target) >= 0) return;
    it->Next();
  }
  it->Seek(target);
}
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
        journal_(applier_gather_, MetricsRegistry::Global(),
                 [this](const Status& why) { pipeline_.Fail(why); }),
        metrics_(MetricsRegistry::Global()),
        collector_(std::make_shared<CollectorState>()),
        health_(metrics_) {}

  ~StoreImpl() override { (void)Close(); }

  Status OpenDb();
  Status Load();
  void StartWriter() {
    journal_.Start(db_.get());
    pipeline_.Start();
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
  void SetExportChunkBytes(size_t bytes) { export_chunk_bytes_.store(bytes); }
  void SetJournalMode(testing_internal::JournalMode mode) { builder_.SetJournalMode(mode); }
  void FailCommitsAfter(int64_t writes, std::function<void()> on_failing) {
    pipeline_.FailCommitsAfter(writes, std::move(on_failing));
  }
  void HoldJournal() { journal_.Hold(); }
  void StopApplierAfter(int batches) { journal_.StopAfter(batches); }
  // Read-only: the journal rows the store holds (Load), which this view does not see.
  size_t UnappliedJournalRows() const { return journal_.RecoveredRows(); }
  Status Close() override;
  Status CompactAll() override;
  void Flush() override;
  void SetCommitObserver(CommitObserver* observer) override {
    builder_.SetObserver(observer);
    pipeline_.SetObserver(observer);
  }
  void Recycle(CommittedGroup group) override { builder_.Recycle(std::move(group)); }
  EventFeed* event_feed() override { return feed_ ? feed_.get() : nullptr; }
  // At open for writing: the event feed's position (tsdb/feed_reader.h).
  Status OpenFeed();
  Result<std::vector<std::pair<std::string, std::string>>> Settings(
      std::string_view prefix) override;
  Status WriteSetting(const std::string& name, std::optional<std::string> value,
                      int64_t t_ms) override;
  Result<std::vector<SettingChange>> SettingHistory(std::string_view prefix, size_t limit) override;

 private:
  // A consistent read of several column families. A query that reads through one iterator only
  // may skip the snapshot (`snapshot` false): an iterator is a consistent view by itself, and
  // taking and releasing a snapshot locks the DB mutex twice per query.
  //
  // With `journal`, the reader also sees what is committed (so acknowledged) but still in
  // journal rows the applier has not written out: AddJournal adds their audit rows and rollup
  // cells to the iterators of those families, as the applier would write them. The rows are
  // taken before the snapshot (which is then always taken), and a partition's chunks count
  // only if the snapshot has no mark that they are written out: the applier writes a
  // partition's records and its mark in one WriteBatch, and drops rows from its list only after
  // writing them out, so every chunk counts exactly once, from the journal or from the
  // families. (A row committed after the copy may be missed: it was acknowledged after the
  // query began.)
  class Reader {
   public:
    explicit Reader(StoreImpl* s, bool snapshot = true, bool journal = false) : s_(s) {
      // A read-only view is as of its open: its journal rows, marks and families agree without
      // a snapshot.
      if (journal) waiting_ = s_->journal_.Snapshot();
      if ((snapshot || !waiting_.empty()) && !s_->read_only_)
        snapshot_ = s_->db_->db()->GetSnapshot();
      ro_.snapshot = snapshot_;
    }
    ~Reader() {
      if (snapshot_ != nullptr) s_->db_->db()->ReleaseSnapshot(snapshot_);
    }
    // Adds the waiting journal records of `table` (every table if nullopt), of `key` if given,
    // that the query's `segments` read (audit events inside a raw segment, rollup cells of a
    // segment's resolution overlapping it): a query over every key then builds only what it
    // reads. Call before the first It of the audit and rollup families.
    Status AddJournal(std::optional<uint32_t> table, std::optional<uint32_t> key,
                      const std::vector<Segment>& segments);
    rocksdb::Iterator* It(Cf cf) {
      if (!its_[cf]) {
        its_[cf].reset(s_->db_->db()->NewIterator(ro_, s_->db_->cf(cf)));
        if (!journal_rows_[cf].empty()) {
          its_[cf] = std::make_unique<MergedIterator>(std::move(its_[cf]), &journal_rows_[cf]);
        }
      }
      return its_[cf].get();
    }
    Status Check() {
      for (auto& it : its_) {
        if (it && !it->status().ok()) return FromRocks(it->status(), "read");
      }
      return Status::Ok();
    }

   private:
    StoreImpl* s_;
    std::vector<JournalRow> waiting_;  // committed, not written out when the reader began
    const rocksdb::Snapshot* snapshot_ = nullptr;
    rocksdb::ReadOptions ro_;
    MergedIterator::Rows journal_rows_[kCfCount];  // by family, sorted by key
    std::unique_ptr<rocksdb::Iterator> its_[kCfCount];
  };

  // Closes RocksDB and opens it again, loading the in-memory state from what is on disk, as a
  // restart would: the counter state the failed groups were built on is forgotten, so the
  // values peers send again are counted from what was stored. Writer thread, committer idle;
  // stops and restarts the applier, and holds db_mu_ exclusively (queries wait). On failure
  // the store stays closed to queries (Unavailable) until the next attempt.
  Status Reopen();
  // Empties what Load fills (Reopen).
  void ForgetLoadedState();
  Status CheckOpen() const {
    if (db_ != nullptr) return Status::Ok();
    if (Status w = health_.status(); !w.ok()) {
      return Status::Unavailable("store is reopening after a failed write: " + w.message());
    }
    return Status::Unavailable("store is closed");
  }
  // Adds the deltas of one series (all sources, or `source` only) over [from, to) per source.
  Status SumRange(Reader& r, uint32_t table, uint32_t metric, uint32_t key, int64_t from,
                  int64_t to, std::optional<uint32_t> source,
                  const std::function<void(uint64_t)>& add);
  // Calls `visit(bucket, sum)` for the cells of `metric` in the rollup rows of one entry
  // (`prefix` = table, key) with buckets in [lo_bucket, hi_bucket), summed over all sources or
  // of `source` only, in bucket order. A template: a month of hours is ~750 cells, and a
  // std::function call per cell showed.
  template <typename Visit>
  Status ScanSeriesRollup(Reader& r, Cf cf, const std::string& prefix, uint32_t metric,
                          uint32_t lo_bucket, uint32_t hi_bucket, std::optional<uint32_t> source,
                          Visit&& visit);
  // Backup of a read-only view: a logical copy of every column family, consistent with what the
  // view sees (a checkpoint would mix the view's files with the writer's newer logs).
  Status CopyTo(const std::string& dir);
  // Buckets [lo, hi) of one rollup family, and where their sums go (indexed by key id).
  struct RollupWindow {
    uint32_t lo, hi;
    std::vector<uint64_t>* totals;
  };
  // One pass over the rollup rows of table+metric in `cf`, every key: each cell in one of
  // `windows` (sorted, disjoint) is added to that window's totals. One pass per family rather
  // than per segment: each pass costs a seek or more per key.
  Status ScanRollup(Reader& r, uint32_t table, uint32_t metric, Cf cf,
                    const std::vector<RollupWindow>& windows, std::optional<uint32_t> source);
  // Adds the cells of the rollup rows of `table` in `cf` whose bucket lies in one of `windows`
  // (sorted, disjoint [lo, hi) buckets) for the keys of `chunk`, of the exported metrics
  // (`metric_cell` by metric id, SIZE_MAX when not exported).
  Status ScanRollupWindows(Reader& r, Cf cf, uint32_t table,
                           const std::vector<std::pair<uint32_t, uint32_t>>& windows,
                           const std::vector<size_t>& metric_cell, const ExportSlots& slots,
                           size_t stride, ExportChunk& chunk);
  // Visits the audit events of (table, key) with lo <= t < hi, a row (ordered by its first
  // update's time and sequence number) after another; stops at the first error `visit` returns,
  // and before the first row keyed after *last_t once that is set. `ahead`: the previous scan of
  // this reader's audit iterator was of a smaller key of the same table, or of this key up to a
  // time no later than this scan's first row's, so the iterator rests at or before this scan's
  // first row, which a few steps may reach faster than a seek.
  template <typename Visit>
  Status ScanAudit(Reader& r, uint32_t table, uint32_t key, int64_t lo, int64_t hi, Visit&& visit,
                   const std::optional<int64_t>* last_t = nullptr, bool ahead = false);
  // Adds the raw events in the `ranges` ([lo, hi) ms) of the exported metrics (`metric_cell`
  // by metric id, SIZE_MAX when not exported) for the keys of `chunk`.
  Status ScanRawRanges(Reader& r, uint32_t table,
                       const std::vector<std::pair<int64_t, int64_t>>& ranges,
                       const std::vector<size_t>& metric_cell, const ExportSlots& slots,
                       size_t stride, ExportChunk& chunk);
  // Calls `fn(key_text, key_id)` for the keys of a table in text order, starting at `prefix`.
  Status ForEachKey(Reader& r, uint32_t table, std::string_view prefix,
                    const std::function<bool(std::string_view, uint32_t)>& fn);

  const StoreOptions options_;
  // How long the applier lets the oldest journal row wait for more (Journal).
  const std::chrono::milliseconds applier_gather_{options_.apply_delay_ms};
  const bool read_only_;
  // See config::kDefaultExportChunkBytes; tests lower it to exercise chunking
  // (tsdb/store_testing.h).
  std::atomic<size_t> export_chunk_bytes_{config::kDefaultExportChunkBytes};

  // Queries hold this shared; Close holds it exclusively while tearing the DB down.
  mutable std::shared_mutex db_mu_;
  std::unique_ptr<DbHandle> db_;  // null once closed

  Catalog catalog_;

  // Writer-thread state.
  EntryTable entries_{catalog_};
  GroupBuilder builder_{options_, catalog_, entries_, MetricsRegistry::Global()};
  std::mutex settings_mu_;        // one settings write at a time (history order)
  uint64_t setting_changes_ = 0;  // GUARDED_BY(settings_mu_): orders same-ms changes
  // The event feed (options_.event_feed): the writer adds each group's audit records to the
  // outbox (GroupBuilder).
  class Feed;
  std::unique_ptr<EventFeed> feed_;

  // Journal rows committed and not yet written out, and the applier thread.
  Journal journal_;
  // The queue, the writer and committer threads, the failed status and recovery.
  WritePipeline pipeline_{options_,
                          builder_,
                          journal_,
                          health_,
                          MetricsRegistry::Global(),
                          [this] { return Reopen(); }};
  std::mutex close_mu_;
  bool closed_ = false;  // GUARDED_BY(close_mu_)

  MetricsRegistry& metrics_;
  std::shared_ptr<CollectorState> collector_;
  bool collector_added_ = false;  // OpenDb registered it (once: Recover opens again)
  WriteHealth health_;
};

Status StoreImpl::OpenDb() {
  auto db = DbHandle::Open(options_, read_only_);
  if (!db.ok()) return db.status();
  db_ = std::move(*db);
  builder_.Attach(db_.get());
  pipeline_.Attach(db_.get());
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
  std::vector<JournalRow> journal;                 // the journal rows, ascending ids
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
      entries_.LoadEpoch(format::GetU32BE(k.data() + 1), format::GetFixed32LE(val.data()));
    } else if (tag == format::kTagSeq) {
      if (val.size() != 8) return Status::Corruption(corrupt + ": bad sequence record");
      builder_.LoadSeq(format::GetU64BE(val.data()));
    } else if (tag == format::kTagJournal) {
      const auto id = format::DecodeJournalKey(std::string_view(k.data(), k.size()));
      if (!id) return Status::Corruption(corrupt + ": bad journal record");
      journal.push_back(JournalRow{*id, std::make_shared<const std::string>(val.ToString()),
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

  if (auto loaded = entries_.LoadEntries(*db_, corrupt); !loaded.ok()) return loaded;
  auto last_id = journal_.Recover(db_.get(), read_only_, std::move(journal), applied, corrupt,
                                  [this](const format::EntryId& id, std::string_view state) {
                                    return entries_.LoadEntry(id, state);
                                  });
  if (!last_id.ok()) return last_id.status();
  builder_.SetNextJournalId(*last_id + 1);
  entries_.CountSeries();
  return Status::Ok();
}

Status StoreImpl::Submit(ingest::UpdateBatch batch, DoneCallback done) {
  if (read_only_) return Status::Unavailable("store is open read-only");
  return pipeline_.Submit(std::move(batch), std::move(done));
}

void StoreImpl::Flush() {
  pipeline_.WaitCommitted();
  journal_.WaitUntilWrittenOut();
}

Status StoreImpl::Reopen() {
  // The journal rows the applier holds are on disk: Load finds them again.
  journal_.Stop();
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
  journal_.Start(db_.get());
  return s;
}

void StoreImpl::ForgetLoadedState() {
  catalog_.Clear();
  entries_.Clear();
  builder_.Clear();
  journal_.Clear();
}

Status StoreImpl::Reader::AddJournal(std::optional<uint32_t> table, std::optional<uint32_t> key,
                                     const std::vector<Segment>& segments) {
  if (waiting_.empty()) return Status::Ok();
  // The partitions written out as of the snapshot, and up to which row.
  std::unordered_map<uint32_t, uint64_t> applied;
  {
    std::unique_ptr<rocksdb::Iterator> it(s_->db_->db()->NewIterator(ro_, s_->db_->cf(kMeta)));
    for (it->Seek(format::AppliedKey(0)); it->Valid(); it->Next()) {
      const auto partition =
          format::DecodeAppliedKey(std::string_view(it->key().data(), it->key().size()));
      if (!partition) break;
      if (it->value().size() != 8) return Status::Corruption("bad journal mark");
      applied[*partition] = format::GetU64BE(it->value().data());
    }
    if (!it->status().ok()) return FromRocks(it->status(), "read");
  }
  std::vector<JournalPiece> pieces;
  if (auto s = CollectJournalPieces(waiting_, applied, &pieces); !s.ok()) return s;
  const uint32_t only = table && key ? JournalPartition(*table, *key) : 0;
  // Only the records the query reads are kept: with every key, the journal may hold hundreds of
  // thousands of updates, and storing what is dropped afterwards cost most of the time.
  auto other = [&](uint32_t t, uint32_t k) { return (table && t != *table) || (key && k != *key); };
  auto read = [&](int64_t unit_ms, int64_t lo, int64_t hi) {
    for (const Segment& seg : segments) {
      if (seg.unit_ms == unit_ms && lo < seg.hi && seg.lo < hi) return true;
    }
    return false;
  };
  // A cell's bucket is as in its family's keys: hour rows are keyed by their day.
  static constexpr int64_t kRowMs[format::kJournalResolutions] = {
      format::kMinuteMs, format::kHoursPerRow * format::kHourMs, format::kDayMs};
  static constexpr int64_t kUnitMs[format::kJournalResolutions] = {format::kMinuteMs,
                                                                   format::kHourMs, format::kDayMs};
  format::JournalFilter keep;
  keep.entries = false;  // state rows: no query reads them
  keep.audit = [&](const format::JournalAudit& a) {
    return !other(a.table, a.key) && read(0, a.t_ms, a.t_ms + 1);
  };
  keep.cell = [&](int r, const format::JournalCell& c) {
    const int64_t start = int64_t{c.bucket} * kRowMs[r];
    return !other(c.table, c.key) && read(kUnitMs[r], start, start + kRowMs[r]);
  };
  format::Journal j;
  for (const JournalPiece& piece : pieces) {
    if (table && key && piece.partition != only) continue;
    if (!format::AppendJournal(piece.records, &j, keep)) {
      return Status::Corruption("journal row " + std::to_string(piece.id) + " is malformed");
    }
  }
  // The rows the applier would write, collected per family from a WriteBatch.
  rocksdb::WriteBatch wb;
  if (auto s = AddStateAndRollups(*s_->db_, j, wb); !s.ok()) return s;
  struct Collect : rocksdb::WriteBatch::Handler {
    explicit Collect(Reader* r) : r(r) {}
    rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
      return Add(cf, k, v);
    }
    rocksdb::Status MergeCF(uint32_t cf, const rocksdb::Slice& k,
                            const rocksdb::Slice& v) override {
      return Add(cf, k, v);
    }
    rocksdb::Status Add(uint32_t cf_id, const rocksdb::Slice& k, const rocksdb::Slice& v) {
      for (int cf = kRaw; cf <= kDay; ++cf) {
        if (r->s_->db_->cf(cf)->GetID() == cf_id) {
          r->journal_rows_[cf].emplace_back(k.ToString(), v.ToString());
          return rocksdb::Status::OK();
        }
      }
      return rocksdb::Status::Corruption("journal records for an unexpected column family");
    }
    Reader* r;
  } collect(this);
  if (auto s = FromRocks(wb.Iterate(&collect), "reading the journal"); !s.ok()) return s;
  for (int cf = kRaw; cf <= kDay; ++cf) {
    if (its_[cf]) return Status::Internal("the journal was added after reading began");
    std::sort(journal_rows_[cf].begin(), journal_rows_[cf].end());
  }
  return Status::Ok();
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
  Result<FeedBatch> Read(const FeedPosition& from, size_t max_events) override {
    return Run([&](FeedReader& r) { return r.Read(from, max_events); });
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
  auto kept = FeedReader::OpenFeed(db_.get(), options_.event_feed, builder_.next_seq());
  if (!kept.ok()) return kept.status();
  if (options_.event_feed) {
    if (!feed_) feed_ = std::make_unique<Feed>(this);  // kept by a reopen (Recover)
  } else {
    builder_.SetFeedStale(*kept);
  }
  return Status::Ok();
}

Status StoreImpl::Close() {
  std::lock_guard close_lock(close_mu_);
  if (closed_) return Status::Ok();
  closed_ = true;
  pipeline_.Stop();
  journal_.Stop();
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
  std::shared_lock lock(db_mu_);
  if (auto s = CheckOpen(); !s.ok()) return s;
  if (read_only_) return CopyTo(dir);
  Flush();
  rocksdb::Checkpoint* cp = nullptr;
  auto s = rocksdb::Checkpoint::Create(db_->db(), &cp);
  if (!s.ok()) return FromRocks(s, "backup");
  std::unique_ptr<rocksdb::Checkpoint> owned(cp);
  return FromRocks(owned->CreateCheckpoint(dir), "backup into " + dir);
}

Status StoreImpl::CopyTo(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) return Status::InvalidArgument("backup: " + dir + " already exists");
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  o.error_if_exists = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kCfCount; ++i) {
    rocksdb::ColumnFamilyOptions c;
    c.compression = rocksdb::kLZ4Compression;
    c.bottommost_compression = rocksdb::kZSTD;
    c.merge_operator = MergeOperatorFor(static_cast<Cf>(i));
    descriptors.emplace_back(kCfNames[i], c);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* out = nullptr;
  auto s = rocksdb::DB::Open(o, dir, descriptors, &handles, &out);
  if (!s.ok()) return FromRocks(s, "backup into " + dir);
  Status result;
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  for (int i = 0; i < kCfCount && result.ok(); ++i) {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro, db_->cf(i)));
    rocksdb::WriteBatch wb;
    for (it->SeekToFirst(); it->Valid() && result.ok(); it->Next()) {
      wb.Put(handles[i], it->key(), it->value());
      if (wb.Count() >= 4096) {
        result = FromRocks(out->Write(rocksdb::WriteOptions(), &wb), "backup write");
        wb.Clear();
      }
    }
    if (result.ok()) result = FromRocks(it->status(), "backup read");
    if (result.ok() && wb.Count() > 0) {
      result = FromRocks(out->Write(rocksdb::WriteOptions(), &wb), "backup write");
    }
  }
  if (result.ok()) result = FromRocks(out->Flush(rocksdb::FlushOptions(), handles), "backup flush");
  for (auto* h : handles) out->DestroyColumnFamilyHandle(h);
  auto closed = out->Close();
  delete out;
  if (result.ok()) result = FromRocks(closed, "backup close");
  return result;
}

Status StoreImpl::CompactAll() {
  std::shared_lock lock(db_mu_);
  if (auto s = CheckOpen(); !s.ok()) return s;
  if (read_only_) return Status::Unavailable("compaction needs the store open read-write");
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* cf : db_->cfs()) {
    if (auto s = FromRocks(db_->db()->CompactRange(co, cf, nullptr, nullptr), "compaction");
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- queries

Status StoreImpl::SumRange(Reader& r, uint32_t table, uint32_t metric, uint32_t key, int64_t from,
                           int64_t to, std::optional<uint32_t> source,
                           const std::function<void(uint64_t)>& add) {
  std::vector<Segment> segments;
  Decompose(std::max<int64_t>(from, 0), to, &segments);
  const std::string prefix = format::EntryRollupPrefix(table, key);
  for (const auto& seg : segments) {
    if (seg.unit_ms == 0) {
      const Status s = ScanAudit(r, table, key, seg.lo, seg.hi, [&](const format::RawEvent& ev) {
        if (ev.e.metric == metric && (!source || ev.e.source == *source)) add(ev.e.delta);
        return Status::Ok();
      });
      if (!s.ok()) return s;
      continue;
    }
    Status s = ScanSeriesRollup(r, RollupCf(seg.unit_ms), prefix, metric,
                                static_cast<uint32_t>(seg.lo / seg.unit_ms),
                                static_cast<uint32_t>(seg.hi / seg.unit_ms), source,
                                [&](uint32_t /*bucket*/, uint64_t v) { add(v); });
    if (!s.ok()) return s;
  }
  return r.Check();
}

template <typename Visit>
Status StoreImpl::ScanSeriesRollup(Reader& r, Cf cf, const std::string& prefix, uint32_t metric,
                                   uint32_t lo_bucket, uint32_t hi_bucket,
                                   std::optional<uint32_t> source, Visit&& visit) {
  const uint32_t span = RowSpan(cf);
  rocksdb::Iterator* it = r.It(cf);
  std::string start = prefix;
  format::PutU32BE(start, lo_bucket / span);
  // The rows of one bucket (one per source) are added up before its cells are visited, so
  // that buckets come in time order once each.
  format::HourRow row;
  uint32_t row_bucket = 0;
  auto visit_row = [&] {
    const uint32_t first = row_bucket * span;
    for (uint32_t m = row.mask; m != 0; m &= m - 1) {
      const uint32_t b = first + static_cast<uint32_t>(std::countr_zero(m));
      if (b >= lo_bucket && b < hi_bucket) visit(b, row.sums[b - first]);
    }
    row = format::HourRow{};
  };
  for (it->Seek(start); it->Valid(); it->Next()) {
    // key() and value() are each a chain of virtual calls down RocksDB's iterator stack: once
    // per row.
    const rocksdb::Slice key = it->key();
    if (!key.starts_with(prefix)) break;
    if (key.size() != format::kEntryRollupKeySize) return Status::Corruption("bad rollup record");
    const auto parts = format::DecodeEntryRollupKey(key.data());
    if (uint64_t{parts.bucket} * span >= hi_bucket) break;
    if (source && parts.source != *source) continue;
    if (row.mask != 0 && parts.bucket != row_bucket) visit_row();
    row_bucket = parts.bucket;
    const uint32_t first = parts.bucket * span;
    if (!ForEachCellOf(metric, span, parts.bucket, it->value().ToStringView(),
                       [&](uint32_t b, uint64_t v) { row.Add(b - first, v); })) {
      return Status::Corruption("bad rollup record");
    }
  }
  if (row.mask != 0) visit_row();
  return Status::Ok();
}

Status StoreImpl::ScanRollup(Reader& r, uint32_t table, uint32_t metric, Cf cf,
                             const std::vector<RollupWindow>& windows,
                             std::optional<uint32_t> source) {
  if (windows.empty()) return Status::Ok();
  const uint32_t span = RowSpan(cf);
  rocksdb::Iterator* it = r.It(cf);
  const std::string prefix = format::EntryRollupPrefix(table);
  auto seek = [&](uint32_t key, uint32_t bucket) {
    std::string k = prefix;
    format::PutU32BE(k, key);
    format::PutU32BE(k, bucket / span);
    it->Seek(k);
  };
  // To the first row at or after (key, bucket): a few steps first, as the target is often a
  // few rows on (the next key, or a key's next window), and a step costs a fraction of a seek.
  auto advance = [&](uint32_t key, uint32_t bucket) {
    const uint32_t row = bucket / span;
    for (int step = 0; step < 8; ++step) {
      it->Next();
      if (!it->Valid() || !it->key().starts_with(prefix) ||
          it->key().size() != format::kEntryRollupKeySize) {
        return;  // the loop below ends or reports the record
      }
      const auto at = format::DecodeEntryRollupKey(it->key().data());
      if (at.key > key || (at.key == key && at.bucket >= row)) return;
    }
    seek(key, bucket);
  };
  seek(0, windows[0].lo);
  uint32_t key = UINT32_MAX;
  size_t w = 0;  // the first window of `key` not behind the current row
  while (it->Valid() && it->key().starts_with(prefix)) {
    if (it->key().size() != format::kEntryRollupKeySize) {
      return Status::Corruption("bad rollup record");
    }
    const auto parts = format::DecodeEntryRollupKey(it->key().data());
    if (parts.key != key) {
      key = parts.key;
      w = 0;
    }
    const uint64_t row_first = uint64_t{parts.bucket} * span;
    while (w < windows.size() && windows[w].hi <= row_first) ++w;
    if (w == windows.size()) {
      if (parts.key == UINT32_MAX) break;
      advance(parts.key + 1, windows[0].lo);
      continue;
    }
    if (row_first + span <= windows[w].lo) {
      advance(parts.key, windows[w].lo);  // a later row of the same key: always moves on
      continue;
    }
    if (!source || parts.source == *source) {
      if (!ForEachCellOf(metric, span, parts.bucket, it->value().ToStringView(),
                         [&](uint32_t b, uint64_t v) {
                           for (size_t i = w; i < windows.size() && windows[i].lo <= b; ++i) {
                             if (b >= windows[i].hi) continue;
                             std::vector<uint64_t>& totals = *windows[i].totals;
                             if (parts.key >= totals.size()) totals.resize(parts.key + 1);
                             totals[parts.key] += v;
                             return;
                           }
                         })) {
        return Status::Corruption("bad rollup record");
      }
    }
    it->Next();
  }
  return r.Check();
}

Status StoreImpl::ScanRollupWindows(Reader& r, Cf cf, uint32_t table,
                                    const std::vector<std::pair<uint32_t, uint32_t>>& windows,
                                    const std::vector<size_t>& metric_cell,
                                    const ExportSlots& slots, size_t stride, ExportChunk& chunk) {
  const auto& ids = chunk.by_id;
  if (ids.empty() || windows.empty()) return Status::Ok();
  const uint32_t span = RowSpan(cf);
  rocksdb::Iterator* it = r.It(cf);
  const std::string prefix = format::EntryRollupPrefix(table);
  std::string target = prefix;
  target.resize(prefix.size() + 8);
  // Moves to the first row at or after (key, bucket), which is ahead of the current row.
  bool positioned = false;
  auto advance = [&](uint32_t key, uint32_t bucket) {
    bucket /= span;  // the row holding that bucket
    char* p = target.data() + prefix.size();
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(key >> (24 - 8 * i));
    for (int i = 0; i < 4; ++i) p[4 + i] = static_cast<char>(bucket >> (24 - 8 * i));
    const rocksdb::Slice t(target);
    if (positioned) {
      for (int i = 0; it->Valid() && it->key().compare(t) < 0; ++i) {
        if (i == config::kMaxSkipRows) return it->Seek(t);
        it->Next();
      }
      return;
    }
    positioned = true;
    it->Seek(t);
  };
  size_t idx = 0, w = 0;
  advance(ids[0].first, windows[0].first);
  while (it->Valid()) {
    const rocksdb::Slice row = it->key();  // once: a chain of virtual calls in RocksDB
    if (!row.starts_with(prefix)) break;
    if (row.size() != format::kEntryRollupKeySize) return Status::Corruption("bad rollup record");
    const auto parts = format::DecodeEntryRollupKey(row.data());
    if (parts.key != ids[idx].first) {
      // A key of another chunk (or with nothing stored): on to the next key of this chunk.
      idx =
          static_cast<size_t>(std::lower_bound(ids.begin() + static_cast<ptrdiff_t>(idx), ids.end(),
                                               std::make_pair(parts.key, uint32_t{0})) -
                              ids.begin());
      if (idx == ids.size()) break;
      w = 0;
      if (ids[idx].first != parts.key) {
        advance(ids[idx].first, windows[0].first);
        continue;
      }
    }
    // The row covers buckets [row_first, row_first + span).
    const uint64_t row_first = uint64_t{parts.bucket} * span;
    while (w < windows.size() && row_first >= windows[w].second) ++w;
    if (w == windows.size()) {
      if (++idx == ids.size()) break;
      w = 0;
      advance(ids[idx].first, windows[0].first);
      continue;
    }
    if (row_first + span <= windows[w].first) {
      advance(parts.key, windows[w].first);
      continue;
    }
    size_t slot = 0;
    if (!slots.Find(parts.source, &slot)) {
      return Status::Corruption("rollup row of an unknown source");
    }
    uint64_t* totals = chunk.totals.data() + size_t{ids[idx].second} * stride + slot;
    if (!ForEachCell(span, parts.bucket, it->value().ToStringView(),
                     [&](uint32_t m, uint32_t b, uint64_t v) {
                       if (m >= metric_cell.size() || metric_cell[m] == SIZE_MAX) return;
                       for (size_t i = w; i < windows.size() && windows[i].first <= b; ++i) {
                         if (b < windows[i].second) {
                           totals[metric_cell[m]] += v;
                           return;
                         }
                       }
                     })) {
      return Status::Corruption("bad rollup record");
    }
    it->Next();
  }
  return r.Check();
}

template <typename Visit>
Status StoreImpl::ScanAudit(Reader& r, uint32_t table, uint32_t key, int64_t lo, int64_t hi,
                            Visit&& visit, const std::optional<int64_t>* last_t, bool ahead) {
  rocksdb::Iterator* it = r.It(kRaw);
  // A row keyed up to kRawRowSpanMs before lo may hold updates from lo on.
  const std::string start =
      format::RawKey(table, key, std::max<int64_t>(lo - format::kRawRowSpanMs + 1, 0), 0);
  const rocksdb::Slice key_prefix(start.data(), 8);
  if (ahead) {
    // The iterator rests on the first row at or after an earlier target (or is not valid): a
    // row at or after this target is then the first such row.
    SeekAhead(it, start);
  } else {
    it->Seek(start);
  }
  for (; it->Valid() && it->key().starts_with(key_prefix); it->Next()) {
    if (it->key().size() != format::kRawKeySize) return Status::Corruption("bad audit key");
    const auto row_t = static_cast<int64_t>(format::GetU64BE(it->key().data() + 8));
    if (row_t >= hi || (last_t && *last_t && row_t > **last_t)) break;
    format::RawRowReader row(std::string_view(it->key().data(), it->key().size()),
                             std::string_view(it->value().data(), it->value().size()));
    format::RawEvent ev;
    while (row.Next(&ev)) {
      if (ev.t_ms < lo || ev.t_ms >= hi) continue;
      if (Status s = visit(ev); !s.ok()) return s;
    }
    if (!row.ok()) return Status::Corruption("bad audit event");
  }
  return Status::Ok();
}

Status StoreImpl::ScanRawRanges(Reader& r, uint32_t table,
                                const std::vector<std::pair<int64_t, int64_t>>& ranges,
                                const std::vector<size_t>& metric_cell, const ExportSlots& slots,
                                size_t stride, ExportChunk& chunk) {
  for (const auto& by_id : chunk.by_id) {
    // Not a structured binding: the lambda below captures the position, which Clang before 16
    // does not allow for a binding.
    const uint32_t key = by_id.first, pos = by_id.second;
    for (const auto& [lo, hi] : ranges) {
      const Status s = ScanAudit(r, table, key, lo, hi, [&](const format::RawEvent& ev) {
        const format::EventValue& e = ev.e;
        if (e.metric >= metric_cell.size() || metric_cell[e.metric] == SIZE_MAX) {
          return Status::Ok();
        }
        size_t slot = 0;
        if (!slots.Find(e.source, &slot)) {
          return Status::Corruption("audit event of an unknown source");
        }
        chunk.totals[size_t{pos} * stride + metric_cell[e.metric] + slot] += e.delta;
        return Status::Ok();
      });
      if (!s.ok()) return s;
    }
  }
  return r.Check();
}

Status StoreImpl::ForEachKey(Reader& r, uint32_t table, std::string_view prefix,
                             const std::function<bool(std::string_view, uint32_t)>& fn) {
  const std::string start = format::NameKey(NameKind::kKey, format::KeyName(table, prefix));
  const size_t skip = 2 + 4;  // tag, kind, table id
  rocksdb::Iterator* it = r.It(kMeta);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    if (it->value().size() != 4) return Status::Corruption("bad key record");
    if (!fn(std::string_view(it->key().data() + skip, it->key().size() - skip),
            format::GetU32BE(it->value().data()))) {
      break;
    }
  }
  return r.Check();
}

Result<std::vector<UsageRow>> StoreImpl::Usage(const UsageQuery& q) {
  std::vector<UsageRow> rows;
  auto s = ForEachUsage(q, [&](std::string_view key, uint64_t total) {
    rows.push_back(UsageRow{std::string(key), total});
    return true;
  });
  if (!s.ok()) return s;
  return rows;
}

Status StoreImpl::ForEachUsage(const UsageQuery& q, const UsageVisitor& visit) {
  std::shared_lock lock(db_mu_);
  if (auto s = CheckOpen(); !s.ok()) return s;
  auto table = catalog_.ResolveTable(q.table);
  if (!table.ok()) return table.status();
  auto metric = catalog_.ResolveMetric(*table, q.table, q.metric);
  if (!metric.ok()) return metric.status();
  if (metric->second == MetricClass::kGauge) {
    return Status::InvalidArgument("metric: '" + q.metric + "' is a gauge, usage sums counters");
  }
  if (auto s = CheckRange(q.from_ms, q.to_ms); !s.ok()) return s;
  std::optional<uint32_t> source;
  if (q.source) {
    source = catalog_.names.Find(NameKind::kSource, *q.source);
    if (!source) return Status::Ok();
  }
  std::optional<uint32_t> only_key;
  if (q.key) {
    only_key = catalog_.names.Find(NameKind::kKey, format::KeyName(*table, *q.key));
    if (!only_key) return Status::Ok();
  }
  Reader r(this, /*snapshot=*/true, /*journal=*/true);
  // Nothing the reader sees was received after latest_received_ms_ (read after the reader): a
  // range ending later may end at the next whole minute instead, which the minute rollups
  // answer without reading each key's audit events ("this month so far" ends now).
  int64_t to_ms = q.to_ms;
  if (to_ms > builder_.latest_received_ms()) {
    to_ms = CeilTo(to_ms, format::kMinuteMs);
  }
  std::vector<Segment> segments;
  Decompose(q.from_ms, to_ms, &segments);
  // The minutes around each sub-minute edge: a key with nothing in them has nothing in the edge,
  // and its audit events need not be read.
  std::vector<Segment> edge_minutes;
  for (const auto& seg : segments) {
    if (seg.unit_ms != 0) continue;
    edge_minutes.push_back(Segment{format::kMinuteMs, FloorTo(seg.lo, format::kMinuteMs),
                                   CeilTo(seg.hi, format::kMinuteMs)});
  }
  std::vector<Segment> journal_segments = segments;
  journal_segments.insert(journal_segments.end(), edge_minutes.begin(), edge_minutes.end());
  if (auto s = r.AddJournal(*table, only_key, journal_segments); !s.ok()) return s;
  if (only_key) {
    uint64_t total = 0;
    auto s = SumRange(r, *table, metric->first, *only_key, q.from_ms, to_ms, source,
                      [&](uint64_t d) { total += d; });
    if (!s.ok()) return s;
    if (total > 0) visit(*q.key, total);
  } else {
    // Every key: one pass per rollup segment over the table+metric prefix instead of a seek per
    // key, then the sub-minute edges per key from raw events.
    // Key ids are dense, so totals by id fit a vector (read after the snapshot: covers it).
    const size_t ids = catalog_.names.Count(NameKind::kKey) + 1;
    std::vector<uint64_t> totals(ids);
    // Per raw segment, by key id: what the key has in the segment's minutes.
    std::vector<std::vector<uint64_t>> edge_active(edge_minutes.size(), std::vector<uint64_t>(ids));
    std::map<int64_t, std::vector<RollupWindow>> by_unit;
    auto add_window = [&](const Segment& seg, std::vector<uint64_t>* out) {
      by_unit[seg.unit_ms].push_back(RollupWindow{static_cast<uint32_t>(seg.lo / seg.unit_ms),
                                                  static_cast<uint32_t>(seg.hi / seg.unit_ms),
                                                  out});
    };
    for (const auto& seg : segments) {
      if (seg.unit_ms != 0) add_window(seg, &totals);
    }
    for (size_t i = 0; i < edge_minutes.size(); ++i) add_window(edge_minutes[i], &edge_active[i]);
    for (auto& [unit, windows] : by_unit) {
      std::sort(windows.begin(), windows.end(),
                [](const RollupWindow& a, const RollupWindow& b) { return a.lo < b.lo; });
      if (auto s = ScanRollup(r, *table, metric->first, RollupCf(unit), windows, source); !s.ok()) {
        return s;
      }
    }
    // The sub-minute edges from raw events, of the keys with something in the edge's minutes
    // only: key by key in id order, each key's edges in time order, through one iterator that
    // moves forward, as the rows lie (a step on a cached block costs a fraction of a seek).
    std::vector<Segment> raw;
    for (const auto& seg : segments) {
      if (seg.unit_ms == 0) raw.push_back(seg);
    }
    bool scanned = false;  // the iterator rests after an earlier scan (of prev_key up to prev_hi)
    uint32_t prev_key = 0;
    int64_t prev_hi = 0;
    size_t active_ids = 0;
    for (const auto& active : edge_active) active_ids = std::max(active_ids, active.size());
    for (uint32_t id = 0; id < active_ids; ++id) {
      for (size_t e = 0; e < raw.size(); ++e) {
        if (id >= edge_active[e].size() || edge_active[e][id] == 0) continue;
        const Segment& seg = raw[e];
        // Ahead only when no row this scan needs lies behind the iterator: the previous scan was
        // of a smaller key, or of this key and ended where this one's first row may start.
        const bool ahead =
            scanned && (prev_key < id || seg.lo - format::kRawRowSpanMs + 1 >= prev_hi);
        auto s = ScanAudit(
            r, *table, id, seg.lo, seg.hi,
            [&](const format::RawEvent& ev) {
              if (ev.e.metric == metric->first && (!source || ev.e.source == *source)) {
                if (id >= totals.size()) totals.resize(size_t{id} + 1);
                totals[id] += ev.e.delta;
              }
              return Status::Ok();
            },
            nullptr, ahead);
        if (!s.ok()) return s;
        scanned = true;
        prev_key = id;
        prev_hi = seg.hi;
      }
    }
    if (auto s = r.Check(); !s.ok()) return s;
    auto s = ForEachKey(r, *table, "", [&](std::string_view key_text, uint32_t key_id) {
      if (key_id >= totals.size() || totals[key_id] == 0) return true;
      return visit(key_text, totals[key_id]);
    });
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Result<Series> StoreImpl::GetSeries(const SeriesQuery& q) {
  std::shared_lock lock(db_mu_);
  if (auto s = CheckOpen(); !s.ok()) return s;
  auto table = catalog_.ResolveTable(q.table);
  if (!table.ok()) return table.status();
  auto metric = catalog_.ResolveMetric(*table, q.table, q.metric);
  if (!metric.ok()) return metric.status();
  if (auto s = CheckRange(q.from_ms, q.to_ms); !s.ok()) return s;
  if (q.key.empty()) return Status::InvalidArgument("key: required");
  Series out;
  out.gauge = metric->second == MetricClass::kGauge;
  int64_t step = q.step_ms;
  if (step == 0) {
    const int64_t span = q.to_ms - q.from_ms;
    step = span / format::kMinuteMs <= config::kMaxSeriesPoints ? format::kMinuteMs
           : span / format::kHourMs <= config::kMaxSeriesPoints ? format::kHourMs
                                                                : format::kDayMs;
  }
  if (step != format::kMinuteMs && step != format::kHourMs && step != format::kDayMs) {
    return Status::InvalidArgument("step: must be 1m, 1h, 1d or auto");
  }
  out.step_ms = step;
  auto key = catalog_.names.Find(NameKind::kKey, format::KeyName(*table, q.key));
  std::optional<uint32_t> source;
  if (q.source) {
    source = catalog_.names.Find(NameKind::kSource, *q.source);
    if (!source) return out;
  }
  if (!key) return out;
  // Whole steps come from the rollup of that resolution, partial first/last steps from finer
  // data: only then does the query read more than one iterator and need a snapshot.
  const int64_t full_lo = CeilTo(q.from_ms, step), full_hi = FloorTo(q.to_ms, step);
  const bool partial = !out.gauge && (q.from_ms != full_lo || q.to_ms != full_hi);
  // Gauge samples are written with their group commit, never journalled.
  Reader r(this, /*snapshot=*/partial, /*journal=*/!out.gauge);
  std::vector<Segment> segments;  // what the steps below read
  if (full_lo < full_hi) {
    Decompose(q.from_ms, full_lo, &segments);
    segments.push_back({step, full_lo, full_hi});
    Decompose(full_hi, q.to_ms, &segments);
  } else {
    Decompose(q.from_ms, q.to_ms, &segments);
  }
  if (auto s = r.AddJournal(*table, *key, segments); !s.ok()) return s;

  if (out.gauge) {
    const std::string prefix = format::RollupPrefix(*table, metric->first, *key);
    rocksdb::Iterator* it = r.It(kGauge);
    std::string start = prefix;
    format::PutU32BE(start, static_cast<uint32_t>(q.from_ms / format::kMinuteMs));
    const int64_t end_minute = CeilTo(q.to_ms, format::kMinuteMs) / format::kMinuteMs;
    for (it->Seek(start); it->Valid(); it->Next()) {
      const rocksdb::Slice row = it->key();  // once per row, as in ScanSeriesRollup
      if (!row.starts_with(prefix)) break;
      const rocksdb::Slice value = it->value();
      if (row.size() != format::kRollupKeySize || value.size() != format::kGaugeValueSize) {
        return Status::Corruption("bad gauge record");
      }
      const auto parts = format::DecodeRollupKey(row.data());
      if (parts.bucket >= end_minute) break;
      if (source && parts.source != *source) continue;
      const int64_t t = FloorTo(int64_t{parts.bucket} * format::kMinuteMs, step);
      const auto max = static_cast<int64_t>(format::GetFixed64LE(value.data() + 8));
      if (!out.points.empty() && out.points.back().t_ms == t) {
        auto& v = out.points.back().v;
        v = static_cast<uint64_t>(std::max(static_cast<int64_t>(v), max));
      } else {
        out.points.push_back({t, static_cast<uint64_t>(max)});
      }
    }
    if (auto s = r.Check(); !s.ok()) return s;
    return out;
  }

  auto add_partial = [&](int64_t lo, int64_t hi) -> Status {
    uint64_t total = 0;
    auto s =
        SumRange(r, *table, metric->first, *key, lo, hi, source, [&](uint64_t d) { total += d; });
    if (s.ok() && total > 0) out.points.push_back({FloorTo(lo, step), total});
    return s;
  };
  if (full_lo >= full_hi) {
    if (full_lo > full_hi) {
      if (auto s = add_partial(q.from_ms, q.to_ms); !s.ok()) return s;
    } else {
      if (auto s = add_partial(q.from_ms, full_lo); !s.ok()) return s;
      if (auto s = add_partial(full_hi, q.to_ms); !s.ok()) return s;
    }
    return out;
  }
  if (q.from_ms < full_lo) {
    if (auto s = add_partial(q.from_ms, full_lo); !s.ok()) return s;
  }
  // One allocation for a month of hours; capped, as a sparse month of minutes would reserve
  // 44,640 points for a few.
  out.points.reserve(out.points.size() +
                     static_cast<size_t>(std::min<int64_t>((full_hi - full_lo) / step, 4096)) + 1);
  Status scanned =
      ScanSeriesRollup(r, RollupCf(step), format::EntryRollupPrefix(*table, *key), metric->first,
                       static_cast<uint32_t>(full_lo / step), static_cast<uint32_t>(full_hi / step),
                       source, [&](uint32_t bucket, uint64_t v) {
                         const int64_t t = int64_t{bucket} * step;
                         if (!out.points.empty() && out.points.back().t_ms == t) {
                           out.points.back().v += v;
                         } else if (v > 0) {
                           out.points.push_back({t, v});
                         }
                       });
  if (!scanned.ok()) return scanned;
  if (auto s = r.Check(); !s.ok()) return s;
  if (full_hi < q.to_ms) {
    if (auto s = add_partial(full_hi, q.to_ms); !s.ok()) return s;
  }
  return out;
}

Result<std::vector<AuditEvent>> StoreImpl::Audit(const AuditQuery& q) {
  std::shared_lock lock(db_mu_);
  if (auto s = CheckOpen(); !s.ok()) return s;
  auto table = catalog_.ResolveTable(q.table);
  if (!table.ok()) return table.status();
  if (q.key.empty()) return Status::InvalidArgument("key: required");
  if (auto s = CheckRange(q.from_ms, q.to_ms); !s.ok()) return s;
  if (q.limit == 0) return Status::InvalidArgument("limit: must be at least 1");
  std::optional<uint32_t> metric;
  if (q.metric) {
    auto m = catalog_.ResolveMetric(*table, q.table, *q.metric);
    if (!m.ok()) return m.status();
    metric = m->first;
  }
  std::vector<AuditEvent> events;
  auto key = catalog_.names.Find(NameKind::kKey, format::KeyName(*table, q.key));
  if (!key) return events;
  const size_t limit = std::min(q.limit, config::kMaxAuditLimit);
  if (limit == 0) return events;
  // Resume at the cursor's time and skip what the previous page returned.
  const bool resume = q.after && q.after->first >= q.from_ms;
  const int64_t from = resume ? q.after->first : q.from_ms;
  // A row holds the updates of up to kRawRowSpanMs from its first, so rows may overlap in time:
  // events are gathered until no later row (whose events are all at or after its key's time)
  // can hold one of the first `limit`, then put in (time, sequence) order.
  auto before = [](const format::RawEvent& a, const format::RawEvent& b) {
    return std::tie(a.t_ms, a.seq) < std::tie(b.t_ms, b.seq);
  };
  std::vector<format::RawEvent> found;
  std::optional<int64_t> last_t;  // once `limit` are found: the time of the last of them
  Reader r(this, /*snapshot=*/true, /*journal=*/true);
  if (auto s = r.AddJournal(*table, *key, {Segment{0, from, q.to_ms}}); !s.ok()) return s;
  auto status = ScanAudit(
      r, *table, *key, from, q.to_ms,
      [&](const format::RawEvent& ev) {
        if (metric && ev.e.metric != *metric) return Status::Ok();
        if (resume && std::make_pair(ev.t_ms, ev.seq) <= *q.after) return Status::Ok();
        if (last_t && ev.t_ms > *last_t) return Status::Ok();
        found.push_back(ev);
        if (found.size() == limit || found.size() == 2 * limit) {
          std::nth_element(found.begin(), found.begin() + static_cast<ptrdiff_t>(limit - 1),
                           found.end(), before);
          found.resize(limit);
          last_t = found.back().t_ms;
        }
        return Status::Ok();
      },
      &last_t);
  if (!status.ok()) return status;
  if (auto s = r.Check(); !s.ok()) return s;
  std::sort(found.begin(), found.end(), before);
  if (found.size() > limit) found.resize(limit);
  events.reserve(found.size());
  for (const auto& ev : found) {
    events.push_back(AuditEvent{ev.t_ms, ev.seq,
                                catalog_.names.Text(NameKind::kSource, ev.e.source),
                                catalog_.names.Text(NameKind::kMetric, ev.e.metric), ev.e.value,
                                ev.e.delta, std::string(format::ReasonName(ev.e.reason))});
  }
  return events;
}

Result<std::vector<TableSummary>> StoreImpl::Tables() {
  std::vector<TableSummary> out;
  catalog_.ForEachTable([&](uint32_t id, const TableMeta& meta) {
    TableSummary t;
    t.name = catalog_.names.Text(NameKind::kTable, id);
    t.key_type = meta.info.key_type;
    t.key_size = meta.info.key_size;
    t.expire_ms = meta.info.expire_ms;
    t.data_types = meta.info.data_types;
    t.multi_source_keys = meta.multi_source_keys;
    for (const auto& [m, cls] : meta.metrics) {
      (cls == MetricClass::kGauge ? t.gauge_metrics : t.counter_metrics)
          .push_back(catalog_.names.Text(NameKind::kMetric, m));
    }
    for (uint32_t s : meta.sources) t.sources.push_back(catalog_.names.Text(NameKind::kSource, s));
    std::sort(t.counter_metrics.begin(), t.counter_metrics.end());
    std::sort(t.gauge_metrics.begin(), t.gauge_metrics.end());
    std::sort(t.sources.begin(), t.sources.end());
    out.push_back(std::move(t));
  });
  std::sort(out.begin(), out.end(),
            [](const TableSummary& a, const TableSummary& b) { return a.name < b.name; });
  return out;
}

Result<std::vector<std::string>> StoreImpl::Keys(const std::string& table,
                                                 const std::string& prefix, size_t limit) {
  std::shared_lock lock(db_mu_);
  if (auto s = CheckOpen(); !s.ok()) return s;
  auto id = catalog_.ResolveTable(table);
  if (!id.ok()) return id.status();
  std::vector<std::string> keys;
  if (limit == 0) return keys;
  Reader r(this);
  auto s = ForEachKey(r, *id, prefix, [&](std::string_view k, uint32_t) {
    keys.emplace_back(k);
    return keys.size() < limit;
  });
  if (!s.ok()) return s;
  return keys;
}

Result<std::vector<std::string>> StoreImpl::KeysAfter(const std::string& table,
                                                      const std::string& prefix,
                                                      const std::string& after, size_t limit) {
  std::shared_lock lock(db_mu_);
  if (auto s = CheckOpen(); !s.ok()) return s;
  auto id = catalog_.ResolveTable(table);
  if (!id.ok()) return id.status();
  std::vector<std::string> keys;
  if (limit == 0) return keys;
  // Key names sort bytewise after the table's id, so a page starts with one seek to the cursor
  // (or to the prefix, when the cursor sorts before it) instead of a walk over earlier keys.
  const std::string bound = format::NameKey(NameKind::kKey, format::KeyName(*id, prefix));
  const std::string seek =
      after > prefix ? format::NameKey(NameKind::kKey, format::KeyName(*id, after)) : bound;
  const size_t skip = 2 + 4;  // tag, kind, table id, as in ForEachKey
  Reader r(this);
  rocksdb::Iterator* it = r.It(kMeta);
  for (it->Seek(seek); it->Valid() && it->key().starts_with(bound); it->Next()) {
    std::string_view k(it->key().data() + skip, it->key().size() - skip);
    if (k <= after) continue;  // the cursor itself
    keys.emplace_back(k);
    if (keys.size() == limit) break;
  }
  if (auto s = r.Check(); !s.ok()) return s;
  return keys;
}

Status StoreImpl::Export(const ExportQuery& q, const std::function<bool(const ExportRow&)>& emit) {
  std::shared_lock lock(db_mu_);
  if (auto s = CheckOpen(); !s.ok()) return s;
  if (auto s = CheckRange(q.from_ms, q.to_ms); !s.ok()) return s;
  // (name, id, counter metrics sorted by name) per table, sorted by name.
  struct T {
    std::string name;
    uint32_t id;
    std::vector<std::pair<std::string, uint32_t>> metrics;
  };
  std::vector<T> tables;
  std::optional<uint32_t> table_id;
  if (q.table) {
    auto id = catalog_.ResolveTable(*q.table);
    if (!id.ok()) return id.status();
    table_id = *id;
  }
  bool metric_known = !q.metric.has_value();
  catalog_.ForEachTable([&](uint32_t id, const TableMeta& meta) {
    T t{catalog_.names.Text(NameKind::kTable, id), id, {}};
    if (q.table && t.name != *q.table) return;
    for (const auto& [m, cls] : meta.metrics) {
      if (cls == MetricClass::kGauge) continue;
      std::string name = catalog_.names.Text(NameKind::kMetric, m);
      if (q.metric && name != *q.metric) continue;
      metric_known = true;
      t.metrics.emplace_back(std::move(name), m);
    }
    std::sort(t.metrics.begin(), t.metrics.end());
    tables.push_back(std::move(t));
  });
  if (!metric_known) return Status::NotFound("metric: no counter metric '" + *q.metric + "'");
  std::sort(tables.begin(), tables.end(), [](const T& a, const T& b) { return a.name < b.name; });
  // The same segments for every key: bucket windows per rollup resolution, raw events at
  // sub-minute edges.
  std::vector<Segment> segments;
  Decompose(q.from_ms, q.to_ms, &segments);
  Reader r(this, /*snapshot=*/true, /*journal=*/true);
  if (auto s = r.AddJournal(table_id, std::nullopt, segments); !s.ok()) return s;
  // Read after the snapshot was taken, the names cover every source id it holds.
  ExportSlots slots;
  if (q.per_source) {
    auto sources = catalog_.names.All(NameKind::kSource);
    slots.count = std::max<size_t>(sources.size(), 1);
    for (auto& [name, id] : sources) {
      if (slots.slot_of.size() <= id) slots.slot_of.resize(id + 1, ExportSlots::kNone);
      slots.slot_of[id] = static_cast<uint32_t>(slots.names.size());
      slots.names.push_back(std::move(name));
    }
  }
  std::vector<std::pair<uint32_t, uint32_t>> windows[3];
  std::vector<std::pair<int64_t, int64_t>> raw;
  for (const auto& seg : segments) {
    if (seg.unit_ms == 0) {
      raw.emplace_back(seg.lo, seg.hi);
    } else {
      windows[RollupCf(seg.unit_ms) - kMinute].emplace_back(
          static_cast<uint32_t>(seg.lo / seg.unit_ms), static_cast<uint32_t>(seg.hi / seg.unit_ms));
    }
  }

  // Totals are computed a chunk of keys at a time: take the next keys in text order while their
  // totals, text and bookkeeping fit export_chunk_bytes_, then one pass per metric and rollup
  // resolution over the rows of those keys (in key id order, stepping over other keys' rows),
  // then the raw edges per key, then the rows in output order. In one chunk (the common case)
  // each pass reads the table+metric rows front to back instead of a Seek per key, metric and
  // segment; with many chunks each pass seeks to the chunk's keys, and memory stays bounded
  // whatever the number of keys.
  const size_t budget = export_chunk_bytes_.load();
  const size_t name_skip = 2 + 4;  // tag, kind, table id
  ExportChunk chunk;
  ExportRow row;
  for (const auto& t : tables) {
    if (t.metrics.empty()) continue;
    const size_t stride = t.metrics.size() * slots.count;
    const size_t key_cost =
        stride * sizeof(uint64_t) + sizeof(uint32_t) + sizeof(std::pair<uint32_t, uint32_t>);
    std::vector<size_t> metric_cell;  // by metric id
    for (size_t m = 0; m < t.metrics.size(); ++m) {
      const uint32_t id = t.metrics[m].second;
      if (metric_cell.size() <= id) metric_cell.resize(id + 1, SIZE_MAX);
      metric_cell[id] = m * slots.count;
    }
    row.table = t.name;
    const std::string key_prefix = format::NameKey(NameKind::kKey, format::KeyName(t.id, ""));
    rocksdb::Iterator* keys = r.It(kMeta);
    keys->Seek(key_prefix);
    while (keys->Valid() && keys->key().starts_with(key_prefix)) {
      chunk.text.clear();
      chunk.text_end.clear();
      chunk.by_id.clear();
      size_t bytes = 0;
      for (; keys->Valid() && keys->key().starts_with(key_prefix); keys->Next()) {
        if (keys->value().size() != 4) return Status::Corruption("bad key record");
        const size_t len = keys->key().size() - name_skip;
        if (!chunk.by_id.empty() && bytes + key_cost + len > budget) break;
        bytes += key_cost + len;
        chunk.text.append(keys->key().data() + name_skip, len);
        chunk.by_id.emplace_back(format::GetU32BE(keys->value().data()),
                                 static_cast<uint32_t>(chunk.text_end.size()));
        chunk.text_end.push_back(static_cast<uint32_t>(chunk.text.size()));
      }
      if (auto s = r.Check(); !s.ok()) return s;
      std::sort(chunk.by_id.begin(), chunk.by_id.end());
      chunk.totals.assign(chunk.text_end.size() * stride, 0);
      for (int c = 0; c < 3; ++c) {
        if (windows[c].empty()) continue;
        auto s = ScanRollupWindows(r, static_cast<Cf>(kMinute + c), t.id, windows[c], metric_cell,
                                   slots, stride, chunk);
        if (!s.ok()) return s;
      }
      if (!raw.empty()) {
        if (auto s = ScanRawRanges(r, t.id, raw, metric_cell, slots, stride, chunk); !s.ok()) {
          return s;
        }
      }
      size_t text_begin = 0;
      for (size_t pos = 0; pos < chunk.text_end.size(); ++pos) {
        const uint64_t* cells = chunk.totals.data() + pos * stride;
        bool key_set = false;
        for (size_t cell = 0; cell < stride; ++cell) {
          if (cells[cell] == 0) continue;
          if (!key_set) {
            row.key.assign(chunk.text, text_begin, chunk.text_end[pos] - text_begin);
            key_set = true;
          }
          row.metric = t.metrics[cell / slots.count].first;
          if (slots.names.empty()) {
            row.source.clear();
          } else {
            row.source = slots.names[cell % slots.count];
          }
          row.total = cells[cell];
          if (!emit(row)) return Status::Ok();
        }
        text_begin = chunk.text_end[pos];
      }
    }
    if (auto s = r.Check(); !s.ok()) return s;
  }
  return Status::Ok();
}

Result<StoreStats> StoreImpl::Stats() {
  std::shared_lock lock(db_mu_);
  if (auto s = CheckOpen(); !s.ok()) return s;
  StoreStats st;
  st.live_series = entries_.live_series();
  st.tables = catalog_.TableCount();
  uint64_t sst = 0;
  db_->db()->GetAggregatedIntProperty("rocksdb.live-sst-files-size", &sst);
  st.disk_bytes = sst;
  st.deltas_written = builder_.deltas();
  st.updates_received = builder_.updates();
  return st;
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
