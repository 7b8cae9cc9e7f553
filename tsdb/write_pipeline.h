// WritePipeline: the store's write path from Submit to the acknowledgement. Submitted batches
// wait in a bounded queue; the writer thread (sm-writer) takes them in groups, builds each group
// commit (tsdb/group_builder.h) and hands it to the committer (tsdb/committer.h), which writes
// and syncs it and runs the batches' done callbacks. Between the two it keeps the journal's
// bounds: the writer waits while the applier is too far behind (tsdb/journal.h).
//
// Fail-stop with recovery: after a failed write (the committer's or the applier's, reported
// through Fail) every Submit and every group is refused with that status, since the in-memory
// state is ahead of the disk. The writer then tries, with a growing delay, to recover: once the
// data directory takes writes (ProbeWritable), it has the store reopened (the `reopen` callback:
// the store closes RocksDB and loads its state again) and accepts updates again.
//
// Thread-safety: Submit, WaitCommitted, Fail and failed from any thread; Start, Stop, Attach,
// SetObserver from the thread that opens or closes the store. The writer thread runs between
// Start and Stop; the reopen callback runs on it, with the committer idle.
// Ownership: owned by StoreImpl; owns the queue, its lock and condition variables, the failed
// status, the writer thread and the Committer. Borrows the GroupBuilder, the Journal and the
// WriteHealth.
// Failure: Submit returns Unavailable (closing, queue full) or the failed status; done callbacks
// get the outcome of the WriteBatch that held their batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "ingest/sink.h"
#include "tsdb/committer.h"
#include "tsdb/db_handle.h"
#include "tsdb/group_builder.h"
#include "tsdb/journal.h"
#include "tsdb/store.h"
#include "tsdb/write_health.h"

namespace stickmeter::tsdb {

class WritePipeline {
 public:
  WritePipeline(const StoreOptions& options, GroupBuilder& builder, Journal& journal,
                WriteHealth& health, MetricsRegistry& metrics, std::function<Status()> reopen);
  ~WritePipeline() { Stop(); }
  WritePipeline(const WritePipeline&) = delete;
  WritePipeline& operator=(const WritePipeline&) = delete;

  // The DB the committer writes to (at every open; null once closed).
  void Attach(DbHandle* db) { committer_.Attach(db); }
  // Set before the first Submit (Store::SetCommitObserver).
  void SetObserver(CommitObserver* observer) { committer_.SetObserver(observer); }
  // Starts the committer and the writer.
  void Start();
  // Refuses further batches, builds and writes every batch queued, then stops both threads.
  void Stop() EXCLUDES(mu_);

  Status Submit(ingest::UpdateBatch batch, ingest::UpdateSink::DoneCallback done) EXCLUDES(mu_);
  // Blocks until every batch submitted so far is done.
  void WaitCommitted() EXCLUDES(mu_);
  // A write failed (committer or applier): writes fail with `why` until the writer recovers.
  void Fail(const Status& why) EXCLUDES(mu_);
  // Ok, or why writes fail.
  Status failed() EXCLUDES(mu_);

 private:
  // A submitted batch.
  struct Pending {
    ingest::UpdateBatch batch;
    ingest::UpdateSink::DoneCallback done;
    size_t values = 0;  // counter and gauge values in the batch
  };

  void WriterLoop() EXCLUDES(mu_);
  // Waits for batches and takes the next group into `group`; false to stop. After a failure,
  // with none coming, sets `*recover` instead.
  bool TakeGroup(std::deque<Pending>& group, bool* recover) EXCLUDES(mu_);
  // After a failed write (failed_ set): once the data directory takes writes again, has the
  // store reopened and accepts updates again; else records why not (WriteHealth).
  void Recover() EXCLUDES(mu_);
  // Builds the group into as few WriteBatches as its size allows, each holding whole batches,
  // and hands each to the committer, which runs every done callback with the outcome of the
  // WriteBatch that held its batch.
  void CommitGroup(std::deque<Pending>& group) EXCLUDES(mu_);
  // Blocks while the journal backlog is over its bounds; the failed status if the applier
  // failed.
  Status WaitForJournalSpace() EXCLUDES(mu_);
  // Blocks until every journal row built so far is written by the committer and then by the
  // applier: true then, false if it never will be (a failed write, or a test holding the
  // journal).
  bool WaitForJournalDrained();

  const std::string options_path_;  // the data directory (Recover probes it)
  rocksdb::Env* const env_;         // what the store writes through (the probe too)
  const size_t max_queued_batches_;
  GroupBuilder& builder_;
  Journal& journal_;
  WriteHealth& health_;
  const std::function<Status()> reopen_;

  Mutex mu_;
  CondVar cv_;          // the writer: batches, closing, or a failure
  CondVar flushed_cv_;  // WaitCommitted
  std::deque<Pending> queue_ GUARDED_BY(mu_);
  bool closing_ GUARDED_BY(mu_) = false;
  Status failed_ GUARDED_BY(mu_);
  uint64_t submitted_ GUARDED_BY(mu_) = 0;
  uint64_t committed_ GUARDED_BY(mu_) = 0;
  std::thread writer_;

  Gauge& queue_depth_;
  Histogram& commit_prepare_;
  // Declared last: its thread calls back into the members above until it stops.
  Committer committer_;
};

}  // namespace stickmeter::tsdb
