#include "tsdb/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <set>
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
#include "tsdb/coverage.h"
#include "tsdb/db_handle.h"
#include "tsdb/entry_table.h"
#include "tsdb/export_scan.h"
#include "tsdb/feed_reader.h"
#include "tsdb/format.h"
#include "tsdb/group_builder.h"
#include "tsdb/incremental_hash_map.h"
#include "tsdb/journal.h"
#include "tsdb/key_rollups.h"
#include "tsdb/queries.h"
#include "tsdb/query_plan.h"
#include "tsdb/read_view.h"
#include "tsdb/rocks_status.h"
#include "tsdb/scans.h"
#include "tsdb/setting_rows.h"
#include "tsdb/store_metrics.h"
#include "tsdb/store_testing.h"
#include "tsdb/write_health.h"
#include "tsdb/write_pipeline.h"

namespace stickmeter::tsdb {
namespace {

using format::MetricClass;
using format::NameKind;

class StoreImpl final : public Store {
 public:
  StoreImpl(StoreOptions options, bool read_only)
      : options_(std::move(options)),
        read_only_(read_only),
        journal_(applier_gather_, MetricsRegistry::Global(),
                 [this](const Status& why) { pipeline_.Fail(why); }),
        metrics_(MetricsRegistry::Global()),
        size_metrics_(metrics_),
        health_(metrics_) {
    builder_.SetCoverage(&coverage_);
  }

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

  // ---- SourceObserver (coverage) ----
  void SourceConnected(const std::string& source, uint64_t connection_id, int64_t t_ms) override {
    if (read_only_) return;
    coverage_.Connected(source, connection_id, t_ms);
    WakeWriter();
  }
  void SourceDisconnected(const std::string& source, uint64_t connection_id,
                          int64_t t_ms) override {
    if (read_only_) return;
    coverage_.Disconnected(source, connection_id, t_ms);
    WakeWriter();
  }
  // An empty batch: the writer's next group writes the coverage rows. Refused (queue full, a
  // failed store): they stay to write, with a later group.
  void WakeWriter() {
    (void)pipeline_.Submit(ingest::UpdateBatch{}, [](Status) {});
  }

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
  Result<Coverage> GetCoverage(const CoverageQuery& query) override {
    if (query.from_ms >= query.to_ms) return Status::InvalidArgument("to: must be after from");
    return coverage_.Query(query);
  }

  // ---- Store ----
  Status Backup(const std::string& dir) override;
  void SetExportChunkBytes(size_t bytes) { exports_.SetChunkBytes(bytes); }
  void SetScanSharing(const QueryEngine::ScanSharing& sharing, uint32_t threads) {
    queries_.SetScanSharing(sharing, threads);
  }
  void SetJournalMode(testing_internal::JournalMode mode) { builder_.SetJournalMode(mode); }
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

  const StoreOptions options_;
  // How long the applier lets the oldest journal row wait for more (Journal).
  const std::chrono::milliseconds applier_gather_{options_.apply_delay_ms};
  const bool read_only_;
  bool coverage_loaded_ = false;  // by the first Load; a reopen keeps what memory holds

  // Queries hold this shared; Close holds it exclusively while tearing the DB down.
  mutable SharedMutex db_mu_;
  std::unique_ptr<DbHandle> db_;  // null once closed

  Catalog catalog_;
  // When each source was connected (written by the writer's groups).
  CoverageBook coverage_;

  // Writer-thread state.
  EntryTable entries_{catalog_};
  GroupBuilder builder_{options_, catalog_, entries_, MetricsRegistry::Global()};
  Mutex settings_mu_;  // one settings write at a time (history order)
  uint64_t setting_changes_ GUARDED_BY(settings_mu_) = 0;  // orders same-ms changes
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
  Mutex close_mu_;
  bool closed_ GUARDED_BY(close_mu_) = false;

  MetricsRegistry& metrics_;
  StoreSizeMetrics size_metrics_;
  WriteHealth health_;
  // Queries reach the DB through this: the db lock shared, and the journal rows waiting.
  ReadGate read_gate_{db_mu_, db_, read_only_, [this] { return CheckOpen(); },
                      [this](std::vector<JournalRow>* rows) { *rows = journal_.Snapshot(); }};
  QueryEngine queries_{read_gate_, catalog_, builder_.latest_received(), options_.scan_threads};
  ExportScanner exports_{read_gate_, catalog_};
};

Status StoreImpl::OpenDb() {
  auto db = DbHandle::Open(options_, read_only_);
  if (!db.ok()) return db.status();
  db_ = std::move(*db);
  builder_.Attach(db_.get());
  pipeline_.Attach(db_.get());
  size_metrics_.Attach(*db_);
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
    db_->set_key_rollups_ready(true);
    return FromRocks(db_->db()->Put(wo, db_->cf(kMeta), format::FormatKey(), version),
                     "writing the format version");
  }
  if (!s.ok()) return FromRocks(s, corrupt).WithContext("");
  if (v.size() != 4) return Status::Corruption(corrupt + ": bad format version record");
  uint32_t version = format::GetU32BE(v.data());
  if (!format::ReadableVersion(version)) return VersionRefused(options_.path, version);
  // Before the journal is recovered: what it still holds gets its every-key rows as it is
  // written out, and the rest come from the rollup families as they are now.
  if (version < format::kKeyRollupsVersion && !read_only_) {
    if (auto upgraded = UpgradeToKeyRollups(*db_); !upgraded.ok()) return upgraded;
    version = format::kKeyRollupsVersion;
  }
  db_->set_key_rollups_ready(version >= format::kKeyRollupsVersion);

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
    } else if (tag == format::kTagCoverage || tag == format::kTagCoverageSeen) {
      if (!coverage_loaded_ && !coverage_.LoadRow(std::string_view(k.data(), k.size()),
                                                  std::string_view(val.data(), val.size()))) {
        return Status::Corruption(corrupt + ": bad coverage record");
      }
    } else if (tag == format::kTagApplied) {
      const auto partition = format::DecodeAppliedKey(std::string_view(k.data(), k.size()));
      if (!partition || val.size() != 8) return Status::Corruption(corrupt + ": bad journal mark");
      applied[*partition] = format::GetU64BE(val.data());
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), corrupt);
  // A reopen keeps the record in memory, ahead of the disk, and writes all of it again.
  if (coverage_loaded_) {
    coverage_.MarkAllDirty();
  } else {
    coverage_.FinishLoad(read_only_);
    coverage_loaded_ = true;
  }

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
    WriterLock db_lock(&db_mu_);
    auto close_db = [&] {
      size_metrics_.Detach();
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
Result<std::vector<std::pair<std::string, std::string>>> StoreImpl::Settings(
    std::string_view prefix) {
  ReaderLock db_lock(&db_mu_);  // Reopen replaces db_
  if (auto s = CheckOpen(); !s.ok()) return s;
  return ReadSettings(*db_, prefix);
}

Status StoreImpl::WriteSetting(const std::string& name, std::optional<std::string> value,
                               int64_t t_ms) {
  if (read_only_) return Status::Unavailable("store is open read-only");
  ReaderLock db_lock(&db_mu_);  // Reopen replaces db_
  if (auto s = CheckOpen(); !s.ok()) return s;
  MutexLock lock(&settings_mu_);
  return WriteSettingRows(*db_, SettingWrite{.name = name,
                                             .value = std::move(value),
                                             .t_ms = t_ms,
                                             .order = ++setting_changes_,
                                             .sync = options_.sync_writes});
}

Result<std::vector<SettingChange>> StoreImpl::SettingHistory(std::string_view prefix,
                                                             size_t limit) {
  ReaderLock db_lock(&db_mu_);  // Reopen replaces db_
  if (auto s = CheckOpen(); !s.ok()) return s;
  return ReadSettingHistory(*db_, prefix, limit);
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
    ReaderLock lock(&s_->db_mu_);
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
  MutexLock close_lock(&close_mu_);
  if (closed_) return Status::Ok();
  closed_ = true;
  if (!read_only_) {
    // A stop is a gap of every source connected: recorded with the last group.
    coverage_.CloseAll(options_.clock ? options_.clock() : NowUnixMs());
    WakeWriter();
  }
  pipeline_.Stop();
  journal_.Stop();
  WriterLock db_lock(&db_mu_);
  size_metrics_.Detach();
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
  counted.live_series = entries_.live_series();
  counted.deltas_written = builder_.deltas();
  counted.updates_received = builder_.updates();
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

void testing_internal::SetScanSharing(Store& store, uint32_t threads, uint32_t block_keys,
                                      uint32_t min_keys) {
  static_cast<StoreImpl&>(store).SetScanSharing(
      QueryEngine::ScanSharing{.min_keys = min_keys, .block_keys = block_keys}, threads);
}

void testing_internal::HoldJournal(Store& store) { static_cast<StoreImpl&>(store).HoldJournal(); }

void testing_internal::StopApplierAfter(Store& store, int batches) {
  static_cast<StoreImpl&>(store).StopApplierAfter(batches);
}

void testing_internal::SetJournalMode(Store& store, JournalMode mode) {
  static_cast<StoreImpl&>(store).SetJournalMode(mode);
}

}  // namespace stickmeter::tsdb
