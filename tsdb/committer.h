// Committer: the second stage of the write pipeline (tsdb/write_pipeline.h). The writer hands
// it each group it built (HandOver); its thread (sm-committer) writes and syncs the group's
// WriteBatch, hands the group's journal rows to the applier (tsdb/journal.h), tells the commit
// observer, and runs the done callbacks of the group's batches with the outcome. The writer
// builds the next group meanwhile; one group waits at most, as a deeper queue would only add
// latency.
//
// Fail-stop: the first failed write is reported through Hooks::fail, and no group after it is
// written (each fails with the same status, as Hooks::failed says) until the pipeline has
// recovered: the in-memory state the later groups were built on is ahead of the disk.
//
// Thread-safety: HandOver, TakeBuiltGroup, WaitIdle and WaitJournalled from the writer thread;
// Attach, SetObserver, Start and Stop while no group is in
// flight (open, reopen, close). The hooks run on the committer thread with no lock held.
// Ownership: owned by the WritePipeline; owns the groups handed over until they are written,
// one emptied group for the writer to reuse, its lock, condition variables and thread, and the
// commit metrics. Borrows the DbHandle from Attach, the Journal and the observer.
// Failure: a failed write is an IoError (or what RocksDB said) passed to the done callbacks and
// to Hooks::fail.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "tsdb/commit_observer.h"
#include "tsdb/db_handle.h"
#include "tsdb/group_builder.h"
#include "tsdb/journal.h"
#include "tsdb/store.h"

namespace stickmeter::tsdb {

// The histogram of one phase of a group commit (docs/operations.md, Metrics): building its
// batch, waiting in RocksDB's write queue behind other writers, the WAL write and sync, the
// memtable inserts.
Histogram& CommitPhase(MetricsRegistry& metrics, const char* phase);

class Committer {
 public:
  // The pipeline's fail-stop state, called once per group on the committer thread.
  struct Hooks {
    std::function<Status()> failed;           // ok, or why writes fail until a recovery
    std::function<void(const Status&)> fail;  // a write failed: writes fail from now on
    std::function<void(size_t)> committed;    // this many more batches are done
  };

  Committer(const StoreOptions& options, Journal& journal, MetricsRegistry& metrics, Hooks hooks);
  ~Committer() { Stop(); }
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // The DB groups are written to (null once closed; a group is written only while the
  // pipeline has not failed, so never then).
  void Attach(DbHandle* db) { db_ = db; }
  // Set before the first group (Store::SetCommitObserver).
  void SetObserver(CommitObserver* observer) { observer_ = observer; }
  void Start();
  // Writes the groups handed over, then stops the thread.
  void Stop() EXCLUDES(mu_);

  // Writer: a group to build into: the one last written (its batch buffer, of the size groups
  // take, already in memory), else a new one with `reserved_bytes` of room.
  std::unique_ptr<BuiltGroup> TakeBuiltGroup(size_t reserved_bytes) EXCLUDES(spare_mu_);
  // Writer: waits until no group is waiting, then queues `built`.
  void HandOver(std::unique_ptr<BuiltGroup> built) EXCLUDES(mu_);
  // Writer: waits until every group handed over is written (or failed).
  void WaitIdle() EXCLUDES(mu_);
  // Writer: waits until every group handed over that holds journal rows is written (or failed),
  // so that its rows are with the journal.
  void WaitJournalled() EXCLUDES(mu_);

 private:
  void CommitterLoop() EXCLUDES(mu_);
  // Writes `g` unless `status` is already a failure; returns the outcome.
  Status Write(BuiltGroup& g, Status status) EXCLUDES(mu_);
  // Done with `built`: emptied, it is kept for TakeBuiltGroup.
  void RecycleBuiltGroup(std::unique_ptr<BuiltGroup> built) EXCLUDES(spare_mu_);

  const bool sync_writes_;
  const testing_internal::StoreTestHooks* const test_hooks_;  // tests only; null otherwise
  Journal& journal_;
  const Hooks hooks_;
  DbHandle* db_ = nullptr;
  CommitObserver* observer_ = nullptr;

  Mutex mu_;
  CondVar cv_;        // the committer: a group to write, or stop
  CondVar space_cv_;  // the writer: a group was written
  std::deque<std::unique_ptr<BuiltGroup>> built_ GUARDED_BY(mu_);
  size_t in_flight_ GUARDED_BY(mu_) = 0;             // queued or being written
  size_t journalled_in_flight_ GUARDED_BY(mu_) = 0;  // of those, groups with journal rows
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;

  // The last group written, emptied, for the writer to build the next one into.
  Mutex spare_mu_;
  std::unique_ptr<BuiltGroup> spare_built_ GUARDED_BY(spare_mu_);

  Histogram& commit_latency_;
  Histogram& commit_wait_;
  Histogram& commit_wal_;
  Histogram& commit_memtable_;
};

}  // namespace stickmeter::tsdb
