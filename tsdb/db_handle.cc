#include "tsdb/db_handle.h"

#include <rocksdb/cache.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
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

bool Contains(const std::vector<std::string>& have, const char* name) {
  return std::find(have.begin(), have.end(), name) != have.end();
}

// Whether `have` are column families of this format, with those every store has (an open for
// writing creates the others).
bool HasOurFamilies(const std::vector<std::string>& have) {
  for (const auto& name : have) {
    if (std::find(std::begin(kCfNames), std::end(kCfNames), name) == std::end(kCfNames)) {
      return false;
    }
  }
  return Contains(have, format::kMetaCf) && Contains(have, format::kEntriesCf) &&
         Contains(have, format::kRawCf) && Contains(have, format::kGaugeCf);
}

// Discards what RocksDB logs while OtherVersion peeks into a database that is not ours: that
// open must leave no LOG file behind, nor rotate the store's own.
class NoLog final : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

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

const char* const kCfNames[kCfCount] = {format::kMetaCf,   format::kEntriesCf,   format::kRawCf,
                                        format::kMinuteCf, format::kHourCf,      format::kDayCf,
                                        format::kGaugeCf,  format::kKeyMinuteCf, format::kKeyHourCf,
                                        format::kKeyDayCf};

Cf RollupCf(int64_t unit_ms) {
  return unit_ms == format::kMinuteMs ? kMinute : unit_ms == format::kHourMs ? kHour : kDay;
}

uint32_t RowSpan(Cf cf) { return cf == kHour ? format::kHoursPerRow : 1; }

std::shared_ptr<rocksdb::MergeOperator> MergeOperatorFor(Cf cf) {
  if (cf >= kMinute && cf <= kDay) return std::make_shared<SumsAddOperator>();
  if (cf >= kKeyMinute && cf <= kKeyDay) return std::make_shared<KeySumsMergeOperator>();
  if (cf == kGauge) return std::make_shared<GaugeMergeOperator>();
  return nullptr;
}

Status VersionRefused(const std::string& path, uint32_t found) {
  return Status::InvalidArgument("store " + path + " has format version " + std::to_string(found) +
                                 "; this build reads format version " +
                                 std::to_string(format::kFormatVersion) + " and upgrades " +
                                 std::to_string(format::kFirstUpgradableVersion) + " to it");
}

Result<std::unique_ptr<DbHandle>> DbHandle::Open(const StoreOptions& options, bool read_only) {
  std::unique_ptr<DbHandle> handle(new DbHandle(options, read_only));
  if (auto s = handle->OpenDb(); !s.ok()) return s;
  return handle;
}

std::optional<Status> DbHandle::OtherVersion(const std::string& path,
                                             const std::vector<std::string>& have) {
  if (!Contains(have, format::kMetaCf)) return std::nullopt;
  // Read-only and the meta family alone: RocksDB opens a subset of the families only so, and
  // that reads the record without knowing the other families' merge operators.
  rocksdb::Options o;
  o.info_log = std::make_shared<NoLog>();
  o.max_open_files = -1;
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  const std::vector<rocksdb::ColumnFamilyDescriptor> meta = {
      {format::kMetaCf, rocksdb::ColumnFamilyOptions()}};
  if (!rocksdb::DB::OpenForReadOnly(o, path, meta, &handles, &raw).ok()) return std::nullopt;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string v;
  const bool found = db->Get(rocksdb::ReadOptions(), handles[0], format::FormatKey(), &v).ok();
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  db.reset();
  if (!found || v.size() != 4) return std::nullopt;
  const uint32_t version = format::GetU32BE(v.data());
  if (format::ReadableVersion(version)) return std::nullopt;
  return VersionRefused(path, version);
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

Status DbHandle::Close() {
  if (db_ == nullptr) return Status::Ok();
  for (auto* h : cfs_) {
    if (h != nullptr) db_->DestroyColumnFamilyHandle(h);
  }
  cfs_.clear();
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
  if (options_.env != nullptr) o.env = options_.env;
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

std::vector<rocksdb::ColumnFamilyDescriptor> DbHandle::Descriptors() {
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
    // The unit of the bucket in the key: hour rows are keyed by their day. Every-key hour rows
    // are keyed by their hour, and kept as long as the day of hours they repeat (group 24).
    const bool minutes = i == kMinute || i == kGauge || i == kKeyMinute;
    const bool hours = i == kHour || i == kKeyHour;
    const bool days = i == kDay || i == kKeyDay;
    const int64_t unit = minutes      ? format::kMinuteMs
                         : i == kHour ? format::kHourMs * format::kHoursPerRow
                         : hours      ? format::kHourMs
                         : days       ? format::kDayMs
                                      : 0;
    const int64_t retention = i == kRaw ? options_.raw_retention_ms
                              : minutes ? options_.minute_retention_ms
                              : hours   ? options_.hour_retention_ms
                              : days    ? options_.day_retention_ms
                                        : 0;
    c.merge_operator = MergeOperatorFor(static_cast<Cf>(i));
    if (i >= kRaw && retention > 0) {
      const size_t offset = i == kRaw         ? 8
                            : i == kGauge     ? format::kRollupBucketOffset
                            : i >= kKeyMinute ? format::kKeySumsBucketOffset
                                              : format::kEntryRollupBucketOffset;
      filters_.push_back(std::make_unique<RetentionFilter>(
          std::string("stickmeter.retention.") + kCfNames[i], offset, unit, retention, clock,
          i == kKeyHour ? format::kHoursPerRow : 1));
      c.compaction_filter = filters_.back().get();
      c.periodic_compaction_seconds = config::kPeriodicCompactionSeconds;
    }
    out.emplace_back(kCfNames[i], c);
  }
  return out;
}

Status DbHandle::OpenDb() {
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
  if (!has_current) {
    if (read_only_) {
      return Status::NotFound(path + " holds no stickmeter store");
    }
    if (fs::exists(path, ec) && !OnlyAnUnfinishedCreate(path)) {
      return Status::InvalidArgument(path + " is not a stickmeter store (it holds other files)");
    }
  }
  std::vector<std::string> have;
  if (has_current) {
    auto s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &have);
    if (!s.ok()) {
      // CURRENT exists but does not lead to a readable manifest.
      return Status::Corruption("store " + path + " is corrupted: " + s.ToString());
    }
    if (!HasOurFamilies(have)) {
      // A store of another format has other families; say which version it is rather than
      // failing on them.
      if (auto refused = OtherVersion(path, have)) return *refused;
      return Status::InvalidArgument(path + " is a RocksDB database but not a stickmeter store");
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
    // The families the store has: a store of format version 1 lacks the every-key ones.
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    std::vector<int> opened;  // the Cf of each descriptor
    auto all = Descriptors();
    for (int i = 0; i < kCfCount; ++i) {
      if (!Contains(have, kCfNames[i])) continue;
      descriptors.push_back(all[i]);
      opened.push_back(i);
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    s = rocksdb::DB::OpenAsSecondary(o, path, secondary_dir, descriptors, &handles, &db);
    db_.reset(db);
    if (s.ok()) {
      cfs_.assign(kCfCount, nullptr);
      for (size_t i = 0; i < handles.size(); ++i) cfs_[opened[i]] = handles[i];
    }
    if (s.ok()) s = db_->TryCatchUpWithPrimary();
    // The instance only keeps its info log open there: remove the directory now so that a
    // killed reader leaves nothing behind.
    std::error_code rm_ec;
    fs::remove_all(secondary_dir, rm_ec);
  } else {
    rocksdb::DB* db = nullptr;
    s = rocksdb::DB::Open(o, path, Descriptors(), &cfs_, &db);
    db_.reset(db);
  }
  if (!s.ok()) {
    const std::string why = s.ToString();
    if (db_ != nullptr) {
      for (auto* h : cfs_) {
        if (h != nullptr) db_->DestroyColumnFamilyHandle(h);
      }
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
