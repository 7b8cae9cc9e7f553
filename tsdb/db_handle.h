// DbHandle: the store's RocksDB instance and its column family handles, with the options and
// column family descriptors they are opened with (memtables, compression, merge operators,
// retention filters).
//
// Thread-safety: after Open, db() and cf() may be used from any thread (RocksDB is
// thread-safe); Close needs the caller to exclude every other use (StoreImpl holds its close
// lock exclusively, or runs it before other threads start).
// Ownership: owned by StoreImpl; owns the DB, the handles, the block cache and the retention
// filters RocksDB points at, and tears them down in that order.
// Failure: Open returns InvalidArgument/NotFound for a directory that is not a store or a store
// whose column families are not this format's (with the format version it records, when it has
// one: see VersionRefused), Unavailable when another process holds it, Corruption or IoError from
// RocksDB.
#pragma once

#include <rocksdb/db.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tsdb/retention_filter.h"
#include "tsdb/store.h"

namespace stickmeter::tsdb {

// Column family indexes, in the order they are opened.
enum Cf {
  kMeta = 0,
  kEntries,
  kRaw,
  kMinute,
  kHour,
  kDay,
  kGauge,
  kKeyMinute,  // the every-key rollups (format version 2): absent from a read-only open of a
  kKeyHour,    // store of version 1
  kKeyDay,
  kCfCount
};
extern const char* const kCfNames[kCfCount];

// The rollup column family of a resolution (kMinuteMs, kHourMs or kDayMs).
Cf RollupCf(int64_t unit_ms);
// The every-key rollup column family of a rollup family (kMinute, kHour or kDay).
inline Cf KeyRollupCf(Cf rollup) { return static_cast<Cf>(rollup - kMinute + kKeyMinute); }
// Buckets per row of a rollup column family: a day of hours, else 1.
uint32_t RowSpan(Cf cf);
// The merge operator of a column family; null for the families written with Put only.
std::shared_ptr<rocksdb::MergeOperator> MergeOperatorFor(Cf cf);
// The one-line InvalidArgument for a store at `path` whose format record says `found`, which is
// not a version this build reads or upgrades (format::ReadableVersion).
Status VersionRefused(const std::string& path, uint32_t found);

class DbHandle {
 public:
  // Opens the store at options.path: for writing (creating it if the directory is empty or
  // missing), or read-only as a RocksDB secondary instance. The format version itself is checked
  // by the caller (StoreImpl::Load), once the meta family is open.
  static Result<std::unique_ptr<DbHandle>> Open(const StoreOptions& options, bool read_only);
  ~DbHandle();  // Close() if not done.
  DbHandle(const DbHandle&) = delete;
  DbHandle& operator=(const DbHandle&) = delete;

  rocksdb::DB* db() const { return db_.get(); }
  // cf: a Cf. Null only for the every-key families of a read-only open of a version 1 store.
  rocksdb::ColumnFamilyHandle* cf(int cf) const { return cfs_[cf]; }
  // Whether queries may read the every-key families: they exist and hold every rollup cell
  // (the store's format version is 2). Set by the store once it has read or upgraded the
  // version, before any query; false until then.
  bool key_rollups_ready() const { return key_rollups_ready_; }
  void set_key_rollups_ready(bool ready) { key_rollups_ready_ = ready && cfs_[kKeyDay] != nullptr; }
  // Every family of Cf, in order (null where cf() is).
  const std::vector<rocksdb::ColumnFamilyHandle*>& cfs() const { return cfs_; }
  // Syncs the WAL (when writable, and no write failed since the open) and closes the DB.
  // Idempotent.
  Status Close();

 private:
  DbHandle(const StoreOptions& options, bool read_only);
  Status OpenDb();
  // For a RocksDB database at `path` whose column families are `have` (not this format's): the
  // refusal naming the format version it records, if it has a format record at all.
  static std::optional<Status> OtherVersion(const std::string& path,
                                            const std::vector<std::string>& have);
  rocksdb::Options BaseOptions() const;
  // The column families to open: every one of Cf, in that order.
  std::vector<rocksdb::ColumnFamilyDescriptor> Descriptors();

  struct WriteFailed;

  const StoreOptions& options_;  // outlives the handle (StoreImpl's)
  const bool read_only_;
  std::shared_ptr<WriteFailed> write_failed_;  // also in RocksDB's listeners
  std::shared_ptr<rocksdb::Cache> cache_;
  // RocksDB keeps raw pointers to these; declared before db_ so they outlive it.
  std::vector<std::unique_ptr<RetentionFilter>> filters_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  bool key_rollups_ready_ = false;
};

}  // namespace stickmeter::tsdb
