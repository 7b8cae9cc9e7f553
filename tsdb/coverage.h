// CoverageBook: data completeness. Per source (a HAProxy node, by its peer name), when the store
// first saw it, the sessions during which it was connected ([from, to), the last one open while
// connected) and the full resyncs it asked for, so that a period with no usage can be told from a
// period without data (docs/api.md, "Coverage"; docs/storage.md for the rows).
//
// Persisted in the meta column family (tsdb/format.h): "V" source -> CoverageRecord, rewritten
// at each connect, disconnect and resync (rare events), and "W" source -> u64 BE Unix ms, the
// last time an update of the source was seen, rewritten at most once per kSeenIntervalMs. Both
// go into the WriteBatch of the writer's next group commit (AddDirty): atomic with it, and no
// write of their own on the caller's thread. An open session found at load was left by an
// unclean stop: it is closed at its last seen time (to within kSeenIntervalMs).
//
// Bounds: kMaxSessions closed sessions and kMaxResyncs resync marks per source (the oldest go,
// and their time then reads as not covered), kMaxSources sources (later ones are not recorded).
// A record is at most ~40 KiB.
//
// Thread-safety: every method locks mu_ (a leaf lock, held for in-memory work only); Connected
// and Disconnected come from the peer service's threads, Alive, Resync and AddDirty from the
// writer, Query from query threads, loading from the thread that opens the store.
// Ownership: owned by StoreImpl; holds the records in memory. Failure: a malformed row fails the
// load (Corruption, by the caller); nothing else fails.
#pragma once

#include <rocksdb/write_batch.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "tsdb/query.h"

namespace stickmeter::tsdb {

class CoverageBook {
 public:
  static constexpr size_t kMaxSessions = 2048;
  static constexpr size_t kMaxResyncs = 1024;
  static constexpr size_t kMaxSources = 1024;
  static constexpr int64_t kSeenIntervalMs = 60'000;

  // ---- Open (before the writer runs) ----
  // A "V" or "W" row of the meta family; false if malformed.
  bool LoadRow(std::string_view key, std::string_view value) EXCLUDES(mu_);
  // After the rows, for writing: sessions left open by an unclean stop end at their last seen
  // time, and are written with the next group. A read-only view keeps them open (the server
  // that holds the store is receiving from those sources).
  void FinishLoad(bool read_only) EXCLUDES(mu_);
  // A reopen after a failed write: the memory is ahead of the disk; all is written again.
  void MarkAllDirty() EXCLUDES(mu_);

  // ---- Events ----
  // A session of `source` (connection `connection_id`) is established at `t_ms`. Replacing a
  // connected one keeps the session open.
  void Connected(const std::string& source, uint64_t connection_id, int64_t t_ms) EXCLUDES(mu_);
  // That session ended; ignored unless it is the source's current connection.
  void Disconnected(const std::string& source, uint64_t connection_id, int64_t t_ms) EXCLUDES(mu_);
  // The source asked for a full resync at `t_ms` (its process restarted).
  void Resync(std::string_view source, int64_t t_ms) EXCLUDES(mu_);
  // An update of `source` received at `t_ms`, while connected: its last seen time.
  void Alive(std::string_view source, int64_t t_ms) EXCLUDES(mu_);
  // The store closes: every open session ends at `t_ms`.
  void CloseAll(int64_t t_ms) EXCLUDES(mu_);

  // ---- Writer ----
  bool dirty() const { return dirty_.load(std::memory_order_relaxed); }
  // Puts the changed rows into `wb`.
  void AddDirty(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* meta) EXCLUDES(mu_);

  // ---- Queries ----
  // REQUIRES: from_ms < to_ms. NotFound ("source: ...") for a source without a record.
  Result<Coverage> Query(const CoverageQuery& q) const EXCLUDES(mu_);

 private:
  struct Record {
    int64_t first_seen = 0;
    std::deque<std::pair<int64_t, int64_t>> closed;  // [from, to), ascending
    std::optional<int64_t> open_from;                // the open session's start
    uint64_t open_connection = 0;
    int64_t last_seen = 0;
    int64_t seen_written = 0;
    std::deque<int64_t> resyncs;  // ascending
    bool dirty = false, seen_dirty = false;
  };
  Record* Find(std::string_view source) REQUIRES(mu_);
  void Close(Record& r, int64_t t_ms) REQUIRES(mu_);
  void Touch(Record& r) REQUIRES(mu_) {
    r.dirty = true;
    dirty_.store(true, std::memory_order_relaxed);
  }

  mutable Mutex mu_;
  std::map<std::string, Record, std::less<>> records_ GUARDED_BY(mu_);
  bool full_logged_ GUARDED_BY(mu_) = false;  // kMaxSources reached, said once
  std::atomic<bool> dirty_{false};
};

// The encodings of the two rows (tsdb/format.h's grammar), exposed for the format tests.
std::string CoverageRecordKey(std::string_view source);
std::string CoverageSeenKey(std::string_view source);

}  // namespace stickmeter::tsdb
