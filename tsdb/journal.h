// Journal: the committed journal rows not yet written out to the audit, state and rollup
// families, and the applier thread (sm-applier) that writes them out.
//
// A group commit may hold its audit rows, entry states and rollup cells as journal rows in the
// meta family (tsdb/format.h, "journal"): a few memtable inserts on the path to the
// acknowledgement. Once the committer has written a group, it hands the group's rows over
// (Enqueue); the applier gathers rows for a while, sums each rollup cell over them, keeps the
// newest state of each entry, and writes them out partition by partition, each WriteBatch with
// the marks of the partitions it wrote (format::AppliedKey) and the last one deleting the rows.
// Until then queries read the rows from memory (Snapshot) and merge them in as the applier would
// write them (AddStateAndRollups). At open, rows left by an unclean stop or a failed write are
// loaded and written out before anything newer (Recover).
//
// Thread-safety: Enqueue from the committer; WaitForSpace from the writer; WaitUntilWrittenOut
// and Snapshot from any thread; Recover, Start, Stop and Clear from the thread that opens,
// reopens or closes the store, with no other method running (the applier is stopped between
// Stop and Start, and nobody enqueues). The applier thread runs between Start and Stop. Every
// member but the DB handle is guarded by mu_; the handle is set while the applier is stopped.
// Ownership: owned by StoreImpl; owns the rows (shared with the snapshots queries hold), its
// lock, its condition variables and the applier thread. Borrows the DbHandle from Start (or
// Recover) until Stop.
// Failure: a failed write-out stops the applier with the rows left in place (the next open
// writes them out) and reports once through the on_failure callback given at construction,
// which the store uses to fail writes until it has reopened; WaitForSpace and
// WaitUntilWrittenOut then return false. Malformed rows are Corruption.
#pragma once

#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "tsdb/config.h"
#include "tsdb/db_handle.h"
#include "tsdb/format.h"
#include "tsdb/journal_rows.h"

namespace stickmeter::tsdb {

class Journal {
 public:
  // `gather`: how long the applier lets the oldest row wait for more (see ApplierLoop).
  // `on_failure`: called once, on the applier thread, when a write-out fails.
  Journal(std::chrono::milliseconds gather, MetricsRegistry& metrics,
          std::function<void(const Status&)> on_failure);
  ~Journal() { Stop(); }
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // At open, before Start: takes the journal rows found in the meta family (`rows`, ascending
  // ids) and the partitions' marks (`applied`). For writing, calls `load_entry` with each entry
  // state the rows hold that is not written out yet (their newest state), then writes the rows
  // out; read-only, keeps them for Snapshot. Returns the largest row id in use (rows and marks),
  // which the next row must exceed. `corrupt` begins the message of a Corruption.
  Result<uint64_t> Recover(
      DbHandle* db, bool read_only, std::vector<JournalRow> rows,
      const std::unordered_map<uint32_t, uint64_t>& applied, const std::string& corrupt,
      const std::function<Status(const format::EntryId&, std::string_view)>& load_entry)
      EXCLUDES(mu_);
  // Read-only: how many rows Recover kept (those the view reads from the journal).
  size_t RecoveredRows() const { return recovered_rows_; }

  // Starts the applier, writing to `db` (null after a failed reopen: the journal is empty then,
  // and the applier only waits).
  void Start(DbHandle* db) EXCLUDES(mu_);
  // Stops the applier after its pass in progress; the rows it has not written out stay, in
  // memory and in the meta family.
  void Stop() EXCLUDES(mu_);
  // Forgets every row and the failure, as before Recover (a reopen; applier stopped).
  void Clear() EXCLUDES(mu_);

  // Committer: the rows of a group just written (ascending ids, after every earlier one),
  // stamped with now as their commit time. Leaves `rows` empty.
  void Enqueue(std::vector<JournalRow>& rows) EXCLUDES(mu_);
  // Writer: blocks while the backlog is over config::kMaxJournalBacklogBytes or its oldest row
  // older than the age bound. False if the applier failed (writes fail until a reopen).
  bool WaitForSpace() EXCLUDES(mu_);
  // Blocks until every row enqueued so far is written out: true then, false if it never will be
  // (the applier failed, or a test holds it). The applier does not gather meanwhile.
  bool WaitUntilWrittenOut() EXCLUDES(mu_);
  // The rows committed and not written out, in id order: those of the applier's pass in
  // progress, then those waiting.
  std::vector<JournalRow> Snapshot() const EXCLUDES(mu_);

  // Tests (tsdb/store_testing.h): the applier writes nothing more, or stops after `batches`
  // more WriteBatches.
  void Hold() EXCLUDES(mu_);
  void StopAfter(int batches) { batches_left_.store(batches); }

 private:
  // The applier thread: takes every row enqueued, sums their rollup cells, keeps the newest
  // state of each series, and writes them out (WriteOut; not synced: the rows and marks stay as
  // they were until the writes are durable).
  void ApplierLoop() EXCLUDES(mu_);
  // Waits for rows to write out and takes them into `rows` (and applying_); false to stop.
  bool TakeRows(std::vector<JournalRow>& rows) EXCLUDES(mu_);
  // After a pass over `rows`: records how it ended. Its `pass_bytes` of rows of which
  // `written_bytes` of records leave the backlog.
  void EndPass(const std::vector<JournalRow>& rows, const Status& status, bool held,
               size_t pass_bytes, size_t written_bytes) EXCLUDES(mu_);
  // Writes `pieces` of `rows` (ascending ids) out to the audit, state and rollup families:
  // partition by partition, each in id order, at least config::kMinApplyBatchBytes of records
  // per WriteBatch. Each batch records its partitions as written out up to the last row's id;
  // the last one also deletes the rows. `on_batch(bytes of records)` runs after each write; if
  // it returns false, the rest is left as it is (tests: an applier stopped mid-pass).
  Status WriteOut(const std::vector<JournalRow>& rows, std::vector<JournalPiece>& pieces,
                  const std::function<bool(size_t)>& on_batch);
  bool WaitForAppliedLocked(uint64_t target) REQUIRES(mu_);
  bool BehindLocked() const REQUIRES(mu_);
  bool ReadyLocked() const REQUIRES(mu_) {
    return stop_ || held_ || waiters_ > 0 || bytes_ >= config::kApplierGatherBytes;
  }

  const std::chrono::milliseconds gather_;
  // The age of the oldest row waiting past which the writer waits for it (WaitForSpace).
  const std::chrono::milliseconds age_bound_;
  const std::function<void(const Status&)> on_failure_;
  Gauge& backlog_;
  Gauge& lag_;
  DbHandle* db_ = nullptr;  // set while the applier is stopped
  size_t recovered_rows_ = 0;

  mutable Mutex mu_;
  CondVar cv_;                                    // the applier: rows to write out, or stop
  CondVar space_cv_;                              // the writer: backlog under the limit
  CondVar applied_cv_;                            // WaitUntilWrittenOut
  std::vector<JournalRow> rows_ GUARDED_BY(mu_);  // committed, waiting for a pass, by id
  // The rows of the pass the applier is writing out (after a failure, or while held: the rows it
  // could not write out). With rows_, every row queries read besides RocksDB (Snapshot).
  std::vector<JournalRow> applying_ GUARDED_BY(mu_);
  size_t bytes_ GUARDED_BY(mu_) = 0;      // of rows_ and applying_ not written out yet
  uint64_t queued_ GUARDED_BY(mu_) = 0;   // the last id enqueued
  int waiters_ GUARDED_BY(mu_) = 0;       // threads waiting for the rows to be written out
  uint64_t applied_ GUARDED_BY(mu_) = 0;  // the last id written out
  bool stop_ GUARDED_BY(mu_) = false;
  bool failed_ GUARDED_BY(mu_) = false;
  bool held_ GUARDED_BY(mu_) = false;  // tests: the applier writes nothing
  // Tests: WriteBatches the applier still writes before it holds the journal; negative: no limit.
  std::atomic<int> batches_left_{-1};
  std::thread applier_;
};

}  // namespace stickmeter::tsdb
