#include "tsdb/db_handle.h"

#include <rocksdb/cache.h>
#include <rocksdb/listener.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>

#include "common/time.h"
#include "tsdb/config.h"
#include "tsdb/format.h"
#include "tsdb/merge_operators.h"
#include "tsdb/rocks_logger.h"
#include "tsdb/rocks_status.h"

namespace stickmeter::tsdb {
namespace {

namespace fs = std::filesystem;

const char* const kLegacyNames[kLegacyCount] = {format::kSeriesCfV4, format::kMinuteCfV4,
                                                format::kHourCfV4, format::kHourCfV2,
                                                format::kDayCfV4};

bool Contains(const std::vector<std::string>& have, const char* name) {
  return std::find(have.begin(), have.end(), name) != have.end();
}

// The column families every store has, whatever its version.
bool IsStore(const std::vector<std::string>& have) {
  return Contains(have, format::kMetaCf) && Contains(have, format::kRawCf) &&
         Contains(have, format::kGaugeCf) &&
         (Contains(have, format::kEntriesCf) || Contains(have, format::kSeriesCfV4));
}

// Whether a directory without CURRENT holds nothing but what a RocksDB create that failed
// half-way leaves (e.g. on a full disk): then it is still free for a new store.
bool OnlyAnUnfinishedCreate(const std::string& path) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const std::string name = e.path().filename().string();
    if (name == "LOCK" || name == "LOG" || name == "IDENTITY" || name.starts_with("LOG.old.") ||
        name.starts_with("MANIFEST-") || name.starts_with("OPTIONS-") || name.ends_with(".dbtmp")) {
      continue;
    }
    return false;
  }
  return !ec;
}

}  // namespace

const char* const kCfNames[kCfCount] = {format::kMetaCf,   format::kEntriesCf, format::kRawCf,
                                        format::kMinuteCf, format::kHourCf,    format::kDayCf,
                                        format::kGaugeCf};

Cf RollupCf(int64_t unit_ms) {
  return unit_ms == format::kMinuteMs ? kMinute : unit_ms == format::kHourMs ? kHour : kDay;
}

uint32_t RowSpan(Cf cf) { return cf == kHour ? format::kHoursPerRow : 1; }

std::shared_ptr<rocksdb::MergeOperator> MergeOperatorFor(Cf cf) {
  if (cf >= kMinute && cf <= kDay) return std::make_shared<SumsAddOperator>();
  if (cf == kGauge) return std::make_shared<GaugeMergeOperator>();
  return nullptr;
}

Result<std::unique_ptr<DbHandle>> DbHandle::Open(const StoreOptions& options, bool read_only,
                                                 bool* needs_upgrade) {
  std::unique_ptr<DbHandle> handle(new DbHandle(options, read_only));
  if (auto s = handle->OpenDb(needs_upgrade); !s.ok()) return s;
  return handle;
}

// Whether RocksDB reported a failed write (of the WAL, a flush or a compaction) since the open.
struct DbHandle::WriteFailed final : rocksdb::EventListener {
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status*) override {
    seen.store(true);
  }
  std::atomic<bool> seen{false};
};

DbHandle::DbHandle(const StoreOptions& options, bool read_only)
    : options_(options), read_only_(read_only), write_failed_(std::make_shared<WriteFailed>()) {}

DbHandle::~DbHandle() { (void)Close(); }

Status DbHandle::DropLegacy() {
  for (auto*& cf : legacy_cfs_) {
    if (cf == nullptr) continue;
    auto dropped = FromRocks(db_->DropColumnFamily(cf), "dropping the rows of an older format");
    if (!dropped.ok()) return dropped;
    db_->DestroyColumnFamilyHandle(cf);
    cf = nullptr;
  }
  return Status::Ok();
}

Status DbHandle::Close() {
  if (db_ == nullptr) return Status::Ok();
  for (auto* h : cfs_) db_->DestroyColumnFamilyHandle(h);
  cfs_.clear();
  for (auto*& h : legacy_cfs_) {
    if (h != nullptr) db_->DestroyColumnFamilyHandle(h);
    h = nullptr;
  }
  Status result;
  // A sync of a WAL whose write failed aborts the process (an assertion in RocksDB's file writer).
  if (!read_only_ && !write_failed_->seen.load()) {
    result = FromRocks(db_->SyncWAL(), "closing the store");
  }
  auto s = db_->Close();
  if (result.ok() && !s.ok() && !s.IsNotSupported()) result = FromRocks(s, "closing the store");
  db_.reset();
  return result;
}

rocksdb::Options DbHandle::BaseOptions() const {
  rocksdb::Options o;
  o.create_if_missing = !read_only_;
  o.create_missing_column_families = !read_only_;
  o.paranoid_checks = true;
  o.max_background_jobs = 2;
  o.keep_log_file_num = 5;
  o.max_total_wal_size = 256u << 20;
  o.enable_pipelined_write = true;
  // Acknowledged writes are synced: a record damaged before the WAL's end is damage, not a
  // write cut short, and replaying only what precedes it (RocksDB's default) would drop
  // acknowledged updates without a word. Only an incomplete last record (a write the power
  // cut, never acknowledged) is tolerated.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  if (read_only_) {
    o.max_open_files = -1;  // required by secondary instances
  } else {
    // Not RocksDB's own LOG writer, which aborts once a write of it failed (tsdb/rocks_logger.h).
    o.info_log = OpenRocksLog(options_.path, o.keep_log_file_num - 1);
    o.listeners.push_back(write_failed_);
  }
  return o;
}

std::vector<rocksdb::ColumnFamilyDescriptor> DbHandle::Descriptors(
    const std::vector<LegacyCf>& legacy) {
  auto clock = options_.clock ? options_.clock : std::function<int64_t()>(NowUnixMs);
  rocksdb::BlockBasedTableOptions bbt;
  bbt.block_cache = cache_;
  bbt.block_size = 16 * 1024;
  bbt.format_version = 5;
  auto table_factory =
      std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(bbt));
  std::vector<rocksdb::ColumnFamilyDescriptor> out;
  for (int i = 0; i < kCfCount; ++i) {
    rocksdb::ColumnFamilyOptions c;
    c.table_factory = table_factory;
    c.compression = rocksdb::kLZ4Compression;
    c.bottommost_compression = rocksdb::kZSTD;
    // The audit rows, and the journal rows in meta (a few MiB per group, deleted soon after),
    // take the most memtable space.
    c.write_buffer_size = (i == kRaw || i == kMeta ? 32u : 8u) << 20;
    // Two (the default) let a full memtable wait for the previous one's flush: under sustained
    // ingest the commit then stalls for 0.1-1 s, which is the push-to-ACK tail.
    c.max_write_buffer_number = 4;
    // Each (table, key) appends its audit rows in time order: a per-(table, key) insert hint
    // turns the memtable insert (the writer's main cost) from a search from the top of the
    // skiplist into a step from that key's last row. Not for the rollups and entry state: a
    // new merge operand or state row goes before the previous one, the hint saves less, and
    // with 100k-1M keys the hints' memory (~250 bytes per prefix, in the memtable) cost more
    // than they saved (see docs/performance.md).
    if (i == kRaw) {
      c.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(8));
      // Every flush of the audit trail spans all keys, so each L0->L1 compaction rewrites most
      // of L1: waiting for 8 files instead of 4 halves that work, which was ~10% of the CPU at
      // full ingest (see docs/performance.md). Queries read the audit trail by key prefix only.
      c.level0_file_num_compaction_trigger = 8;
    }
    // The unit of the bucket in the key: hour rows are keyed by their day.
    const int64_t unit = i == kMinute || i == kGauge ? format::kMinuteMs
                         : i == kHour                ? format::kHourMs * format::kHoursPerRow
                         : i == kDay                 ? format::kDayMs
                                                     : 0;
    const int64_t retention = i == kRaw                     ? options_.raw_retention_ms
                              : i == kMinute || i == kGauge ? options_.minute_retention_ms
                              : i == kHour                  ? options_.hour_retention_ms
                              : i == kDay                   ? options_.day_retention_ms
                                                            : 0;
    c.merge_operator = MergeOperatorFor(static_cast<Cf>(i));
    if (i >= kRaw && retention > 0) {
      filters_.push_back(
          std::make_unique<RetentionFilter>(std::string("stickmeter.retention.") + kCfNames[i],
                                            i == kRaw     ? 8
                                            : i == kGauge ? format::kRollupBucketOffset
                                                          : format::kEntryRollupBucketOffset,
                                            unit, retention, clock));
      c.compaction_filter = filters_.back().get();
      c.periodic_compaction_seconds = config::kPeriodicCompactionSeconds;
    }
    out.emplace_back(kCfNames[i], c);
  }
  for (const LegacyCf l : legacy) {
    rocksdb::ColumnFamilyOptions c;
    c.table_factory = table_factory;
    if (l == kHourV4) {
      c.merge_operator = std::make_shared<HourRowAddOperator>();
    } else if (l != kSeriesV4) {
      c.merge_operator = std::make_shared<U64AddOperator>();
    }
    out.emplace_back(kLegacyNames[l], c);
  }
  return out;
}

Status DbHandle::OpenDb(bool* needs_upgrade) {
  const std::string& path = options_.path;
  if (path.empty()) return Status::InvalidArgument("data directory: no path given");
  std::error_code ec;
  if (!read_only_) {
    fs::create_directories(path, ec);
    if (ec) return Status::IoError("cannot create data directory " + path + ": " + ec.message());
    if (::access(path.c_str(), W_OK | X_OK) != 0) {
      return Status::IoError("data directory " + path + " is not writable");
    }
  }
  const bool has_current = fs::exists(fs::path(path) / "CURRENT", ec);
  std::vector<LegacyCf> legacy;
  if (!has_current) {
    if (read_only_) {
      return Status::NotFound(path + " holds no stickmeter store");
    }
    if (fs::exists(path, ec) && !OnlyAnUnfinishedCreate(path)) {
      return Status::InvalidArgument(path + " is not a stickmeter store (it holds other files)");
    }
  } else {
    std::vector<std::string> have;
    auto s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &have);
    if (!s.ok()) {
      // CURRENT exists but does not lead to a readable manifest.
      return Status::Corruption("store " + path + " is corrupted: " + s.ToString());
    }
    if (!IsStore(have)) {
      return Status::InvalidArgument(path + " is a RocksDB database but not a stickmeter store");
    }
    // The families of format v4 and older exist until an open for writing has rewritten them
    // (Load); a reader cannot, and leaves the upgrade to Store::OpenReadOnly.
    for (int l = 0; l < kLegacyCount; ++l) {
      if (Contains(have, kLegacyNames[l])) legacy.push_back(static_cast<LegacyCf>(l));
    }
    if (read_only_ && !Contains(have, format::kEntriesCf)) {
      *needs_upgrade = true;
      return Status::InvalidArgument("store " + path +
                                     " has an older format; open it for writing once to upgrade");
    }
  }

  cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);
  rocksdb::Options o = BaseOptions();
  rocksdb::Status s;
  if (read_only_) {
    char tmpl[] = "/tmp/stickmeter-secondary-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return Status::IoError("cannot create a temporary directory");
    const std::string secondary_dir = tmpl;
    rocksdb::DB* db = nullptr;
    s = rocksdb::DB::OpenAsSecondary(o, path, secondary_dir, Descriptors({}), &cfs_, &db);
    db_.reset(db);
    if (s.ok()) s = db_->TryCatchUpWithPrimary();
    // The instance only keeps its info log open there: remove the directory now so that a
    // killed reader leaves nothing behind.
    std::error_code rm_ec;
    fs::remove_all(secondary_dir, rm_ec);
  } else {
    rocksdb::DB* db = nullptr;
    s = rocksdb::DB::Open(o, path, Descriptors(legacy), &cfs_, &db);
    db_.reset(db);
    if (s.ok()) {
      for (size_t i = 0; i < legacy.size(); ++i) legacy_cfs_[legacy[i]] = cfs_[kCfCount + i];
      cfs_.resize(kCfCount);
    }
  }
  if (!s.ok()) {
    const std::string why = s.ToString();
    if (db_ != nullptr) {
      for (auto* h : cfs_) db_->DestroyColumnFamilyHandle(h);
      cfs_.clear();
      db_.reset();
    }
    if (s.IsIOError() && why.find("lock") != std::string::npos) {
      return Status::Unavailable("store " + path + " is in use by another process (" + path +
                                 "/LOCK is held)");
    }
    if (s.IsCorruption()) return Status::Corruption("store " + path + " is corrupted: " + why);
    if (s.IsNoSpace() || why.find("No space left on device") != std::string::npos) {
      return Status::IoError("no space left on the disk of " + path + " (" + why + ")");
    }
    return Status::IoError("cannot open store " + path + ": " + why);
  }
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
