#include "tsdb/committer.h"

#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include <chrono>
#include <utility>

#include "common/thread_setup.h"
#include "tsdb/rocks_status.h"
#include "tsdb/store_testing.h"

namespace stickmeter::tsdb {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Histogram& CommitPhase(MetricsRegistry& metrics, const char* phase) {
  return metrics.GetHistogram("stickmeter_commit_phase_seconds",
                              "Time of one group commit spent in each phase", {{"phase", phase}});
}

Committer::Committer(const StoreOptions& options, Journal& journal, MetricsRegistry& metrics,
                     Hooks hooks)
    : sync_writes_(options.sync_writes),
      test_hooks_(options.test_hooks),
      journal_(journal),
      hooks_(std::move(hooks)),
      commit_latency_(metrics.GetHistogram("stickmeter_commit_seconds",
                                           "Latency of one group commit (write + sync)")),
      commit_wait_(CommitPhase(metrics, "wait")),
      commit_wal_(CommitPhase(metrics, "wal")),
      commit_memtable_(CommitPhase(metrics, "memtable")) {}

void Committer::Start() {
  thread_ = std::thread([this] {
    SetUpThisThread("sm-committer");
    // For the commit phase metrics; a few clock reads per commit.
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableTimeExceptForMutex);
    CommitterLoop();
  });
}

void Committer::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<BuiltGroup> Committer::TakeBuiltGroup(size_t reserved_bytes) {
  {
    MutexLock lock(&spare_mu_);
    if (spare_built_) return std::move(spare_built_);
  }
  return std::make_unique<BuiltGroup>(reserved_bytes);
}

void Committer::RecycleBuiltGroup(std::unique_ptr<BuiltGroup> built) {
  // A fresh multi-MiB batch buffer per group cost the writer a page fault per 4 KiB it wrote.
  built->wb.Clear();  // keeps its buffer
  built->status = Status::Ok();
  built->journal.clear();
  built->done.clear();
  built->observed = CommittedGroup{};
  MutexLock lock(&spare_mu_);
  if (!spare_built_) spare_built_ = std::move(built);
}

void Committer::HandOver(std::unique_ptr<BuiltGroup> built) {
  if (test_hooks_ != nullptr && test_hooks_->handing_over) test_hooks_->handing_over();
  {
    MutexLock lock(&mu_);
    // One group written while the next is built: a deeper queue would only add latency.
    while (in_flight_ != 0) space_cv_.Wait(&mu_);
    ++in_flight_;
    if (!built->journal.empty()) ++journalled_in_flight_;
    built_.push_back(std::move(built));
  }
  cv_.Signal();
}

void Committer::WaitIdle() {
  MutexLock lock(&mu_);
  while (in_flight_ != 0) space_cv_.Wait(&mu_);
}

void Committer::WaitJournalled() {
  MutexLock lock(&mu_);
  while (journalled_in_flight_ != 0) space_cv_.Wait(&mu_);
}

Status Committer::Write(BuiltGroup& g, Status status) {
  if (status.ok() && g.wb.Count() > 0) {
    rocksdb::WriteOptions wo;
    wo.sync = sync_writes_;
    rocksdb::PerfContext* perf = rocksdb::get_perf_context();
    perf->Reset();
    status = FromRocks(db_->db()->Write(wo, &g.wb), "store commit");
    commit_wait_.Observe(double(perf->write_thread_wait_nanos) / 1e9);
    commit_wal_.Observe(double(perf->write_wal_time) / 1e9);
    commit_memtable_.Observe(double(perf->write_memtable_time) / 1e9);
  }
  return status;
}

void Committer::CommitterLoop() {
  for (;;) {
    std::unique_ptr<BuiltGroup> g;
    {
      MutexLock lock(&mu_);
      while (!stop_ && built_.empty()) cv_.Wait(&mu_);
      if (built_.empty()) break;  // stopping and drained
      g = std::move(built_.front());
      built_.pop_front();
    }
    const bool journalled = !g->journal.empty();  // its rows are moved to the applier below
    Status status = g->status;
    bool failed_before = false;
    if (status.ok()) {
      // In-memory state was built on top of the failed group's: nothing after it is written.
      Status failed = hooks_.failed();
      failed_before = !failed.ok();
      if (failed_before) status = std::move(failed);
    }
    status = Write(*g, std::move(status));
    if (!status.ok()) {
      // In-memory state is now ahead of disk: nothing is accepted until the writer has loaded
      // it again from disk (WritePipeline::Recover).
      if (!failed_before) hooks_.fail(status);
    } else if (journalled) {
      journal_.Enqueue(g->journal);
    }
    commit_latency_.Observe(SecondsSince(g->start));
    if (status.ok() && observer_ != nullptr &&
        (!g->observed.deltas.empty() || !g->observed.batches.empty())) {
      observer_->OnCommitted(std::move(g->observed));
    }
    for (auto& done : g->done) {
      if (done) done(status);
    }
    hooks_.committed(g->done.size());
    RecycleBuiltGroup(std::move(g));
    {
      MutexLock lock(&mu_);
      --in_flight_;
      if (journalled) --journalled_in_flight_;
    }
    space_cv_.SignalAll();
  }
}

}  // namespace stickmeter::tsdb
