// The storage engine: exact counter deltas in a crash-safe RocksDB time series.
//
// A Store is both the sink ingest submits decoded updates to and the QueryService http reads
// from. Writes go through one writer thread fed by a bounded queue: Submit only enqueues; the
// writer takes every queued batch, turns absolute values into deltas (tsdb/delta.h), and builds
// a journal of the audit events, new entry state and rollup increments into ONE RocksDB
// WriteBatch; a committer thread writes it (fsynced when sync_writes) while the writer builds
// the next, then runs the done callbacks in order. Hence a crash loses at most unacknowledged
// batches, and replaying them yields the same absolute values: delta 0. A third thread, the
// applier, then writes the journal out to the audit, state and rollup column families (an
// entry's audit events of many groups as one row, their increments summed) and deletes it in
// the same WriteBatch; Open finishes what a crash left of it. The applier lets rows gather for
// apply_delay_ms unless Flush waits for them, and under overload the writer waits rather than
// let it fall further behind. Queries read those families together with the journal rows not
// yet written out, so they see a batch as soon as it is acknowledged.
//
// Thread-safety: every public method may be called from any thread. Queries run on the caller's
// thread against RocksDB and never block the writer. The delta state lives in memory (loaded at
// open) and is touched only by the writer thread.
//
// Ownership: Open returns the sole owner. A store directory is opened read-write by at most one
// process; OpenReadOnly gives a consistent view while that process runs. A write error (a full
// disk, a failed sync) puts the store in a failed state: no batch built after the failed one is
// written, every later Submit fails with that error, and WriteStatus() says why, until the store
// has recovered by itself: it probes the data directory with a backoff and, once it takes writes
// again, reopens RocksDB and reloads its state from disk, as a restart would (tsdb/write_health.h).
// Done callbacks run on the committer thread: they must not block for long and must not call
// Close or Flush.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "ingest/sink.h"
#include "tsdb/commit_observer.h"
#include "tsdb/event_feed.h"
#include "tsdb/query.h"

namespace rocksdb {
class Env;
}

namespace stickmeter::tsdb {
namespace testing_internal {
struct StoreTestHooks;
}

struct StoreOptions {
  // Data directory; created if missing.
  // Default: "" (required)
  std::string path;
  // fsync the write-ahead log on each group commit: durable across power loss, not just crashes.
  // Default: true
  bool sync_writes = true;
  // How long committed changes may wait as journal rows before the applier writes them to the
  // audit, state and rollup column families (sooner once 48 MiB wait). A pass writes each entry
  // once however many of its updates it holds, so a longer delay saves more where keys recur
  // slowly. Queries read waiting rows from the journal, so it does not delay what they see;
  // it bounds how much of it a query decodes (and an open after a crash writes out). The writer
  // waits while the oldest waiting row is older than twice this (at least 1 s) or 128 MiB wait.
  // 0: a pass after every group commit.
  // Default: 5000
  int64_t apply_delay_ms = 5000;
  // docs/counting.md, rule 3: an entry counts as expired when its gap exceeds expire + this margin.
  // Default: 1000
  int64_t expiry_margin_ms = 1000;
  // Retention per resolution, enforced by compaction; 0 keeps forever. Gauge samples follow the
  // minute retention.
  // Default: 90 days, 90 days, 3 years, 0
  int64_t raw_retention_ms = 90LL * 86'400'000;
  int64_t minute_retention_ms = 90LL * 86'400'000;
  int64_t hour_retention_ms = 3LL * 365 * 86'400'000;
  int64_t day_retention_ms = 0;
  // Submit returns Unavailable when this many batches wait for the writer.
  // Default: 4096
  size_t max_queued_batches = 4096;
  // RocksDB block cache for queries.
  // Default: 64 MiB
  size_t block_cache_bytes = 64u << 20;
  // At most this many threads read the queries over every key of a table at once, each query's
  // own included: a query shares its keys out between the ones no other such query uses (up to
  // config::kMaxScanThreads). `serve` passes --query-threads, which leaves a core to the peers.
  // Default: 1
  size_t scan_threads = 1;
  // Keep the event feed (tsdb/event_feed.h): each commit also writes its audit events to an
  // outbox that Store::event_feed() reads. Off: a feed position left by an earlier run is
  // dropped with the first commit of events, so that turning it on again backfills.
  // Default: false
  bool event_feed = false;
  // The clock retention compares key times against. Tests inject a fake one.
  // Default: NowUnixMs
  std::function<int64_t()> clock;
  // The environment RocksDB reads and writes files through. Tests pass one over a file system
  // whose writes fail on demand (tests/support/faulty_file_system.h), as a failing disk's would.
  // Not owned; it must outlive the store.
  // Default: nullptr (rocksdb::Env::Default())
  rocksdb::Env* env = nullptr;
  // Named points of the store's threads where a test acts (tsdb/store_testing.h). Not owned.
  // Default: nullptr (none)
  const testing_internal::StoreTestHooks* test_hooks = nullptr;
};

// A change of a setting (Store::WriteSetting), as its history keeps it.
struct SettingChange {
  int64_t t_ms = 0;
  std::string name;
  std::string value;  // the new value, or the value deleted
  bool deleted = false;
};

// As an ingest::SourceObserver it records when each source was connected (tsdb/coverage.h):
// the events change memory only and wake the writer, whose next group commit writes them.
class Store : public ingest::UpdateSink, public ingest::SourceObserver, public QueryService {
 public:
  // Opens (creating if missing) a store for reading and writing. Fails with a one-line reason
  // when the directory is not writable (IoError), holds something else than a stickmeter store
  // or a store of a format version this build neither reads nor upgrades, older or newer
  // (InvalidArgument, naming the versions; docs/storage.md), is corrupted (Corruption) or is in
  // use by another process (Unavailable). A store of an older version it knows is upgraded
  // first (tsdb/key_rollups.h).
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  // Opens an existing store read-only, as of now, even while another process has it open
  // read-write (a RocksDB secondary instance). Submit and CompactAll then fail with Unavailable.
  // Fails as Open does, for a store of another format version too. If the store holds a journal
  // left by an unclean stop and no process has it open, it is first opened read-write once to
  // write that journal out (so that nothing acknowledged is missing).
  static Result<std::unique_ptr<Store>> OpenReadOnly(const StoreOptions& options);

  ~Store() override;

  // Writes a consistent copy into `dir`, which must not exist; the copy opens as a store. Read-
  // write: a RocksDB checkpoint (hard links where possible) after the queue is drained. Read-only:
  // a logical copy of what the view sees.
  virtual Status Backup(const std::string& dir) = 0;
  // Stops accepting, commits what is queued, runs its callbacks and closes RocksDB. Idempotent.
  virtual Status Close() = 0;
  // Compacts every column family now so retention applies without waiting (tests, maintenance).
  virtual Status CompactAll() = 0;
  // Blocks until everything submitted before the call is committed and visible to queries
  // (tests, benchmarks).
  virtual void Flush() = 0;
  // Settings: small named values kept beside the data (quotas), each change also appended to
  // a history in the same atomic, synced write. Read-only stores fail writes with Unavailable.
  // Names and values are opaque bytes to the store.
  virtual Result<std::vector<std::pair<std::string, std::string>>> Settings(
      std::string_view prefix) = 0;
  // `value` nullopt deletes the setting (NotFound if it does not exist).
  virtual Status WriteSetting(const std::string& name, std::optional<std::string> value,
                              int64_t t_ms) = 0;
  // Changes of the settings starting with `prefix`, oldest first, the last `limit` of them.
  virtual Result<std::vector<SettingChange>> SettingHistory(std::string_view prefix,
                                                            size_t limit) = 0;
  // Reports every later commit to `observer` (tsdb/commit_observer.h), which must outlive
  // Close(). Call once, before the first Submit.
  virtual void SetCommitObserver(CommitObserver* observer) = 0;
  // Hands a group the observer is done with back to the store, whose writer reuses its delta
  // and key vectors for the next groups: at full speed they are tens of MiB per group, and
  // fresh ones cost the writer a page fault per 4 KiB. Optional; any thread.
  virtual void Recycle(CommittedGroup group) = 0;
  // The event feed when StoreOptions::event_feed is on (read-write stores only), else null.
  // Owned by the store; valid until the store is destroyed (it fails once closed).
  virtual EventFeed* event_feed() { return nullptr; }

 protected:
  Store() = default;
};

}  // namespace stickmeter::tsdb
