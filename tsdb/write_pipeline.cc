#include "tsdb/write_pipeline.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "common/thread_setup.h"
#include "tsdb/config.h"

namespace stickmeter::tsdb {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

size_t CountValues(const ingest::UpdateBatch& b) {
  size_t n = 0;
  for (const auto& t : b.tables) {
    for (const auto& e : t.entries) n += e.values.size();
  }
  return n;
}

}  // namespace

WritePipeline::WritePipeline(const StoreOptions& options, GroupBuilder& builder, Journal& journal,
                             WriteHealth& health, MetricsRegistry& metrics,
                             std::function<Status()> reopen)
    : options_path_(options.path),
      env_(options.env),
      max_queued_batches_(options.max_queued_batches),
      builder_(builder),
      journal_(journal),
      health_(health),
      reopen_(std::move(reopen)),
      queue_depth_(metrics.GetGauge("stickmeter_store_queue_batches",
                                    "Update batches waiting for the store writer")),
      commit_prepare_(CommitPhase(metrics, "prepare")),
      committer_(
          options, journal, metrics,
          Committer::Hooks{[this] { return failed(); }, [this](const Status& why) { Fail(why); },
                           [this](size_t batches) {
                             {
                               MutexLock lock(&mu_);
                               committed_ += batches;
                             }
                             flushed_cv_.SignalAll();
                           }}) {}

void WritePipeline::Start() {
  committer_.Start();
  writer_ = std::thread([this] {
    SetUpThisThread("sm-writer");
    WriterLoop();
  });
}

void WritePipeline::Stop() {
  {
    MutexLock lock(&mu_);
    closing_ = true;
  }
  cv_.SignalAll();
  if (writer_.joinable()) writer_.join();
  committer_.Stop();
  flushed_cv_.SignalAll();
}

Status WritePipeline::Submit(ingest::UpdateBatch batch, ingest::UpdateSink::DoneCallback done) {
  MutexLock lock(&mu_);
  if (closing_) return Status::Unavailable("store is closing");
  if (!failed_.ok()) return failed_;
  if (queue_.size() >= max_queued_batches_) {
    return Status::Unavailable("store queue is full (" + std::to_string(queue_.size()) +
                               " batches)");
  }
  const size_t values = CountValues(batch);
  queue_.push_back(Pending{std::move(batch), std::move(done), values});
  ++submitted_;
  queue_depth_.Set(static_cast<int64_t>(queue_.size()));
  cv_.Signal();
  return Status::Ok();
}

void WritePipeline::WaitCommitted() {
  MutexLock lock(&mu_);
  const uint64_t target = submitted_;
  while (committed_ < target) flushed_cv_.Wait(&mu_);
}

void WritePipeline::Fail(const Status& why) {
  health_.Failed(why);
  {
    MutexLock lock(&mu_);
    if (failed_.ok()) failed_ = why;
  }
  cv_.SignalAll();  // the writer begins its attempts to recover
}

Status WritePipeline::failed() {
  MutexLock lock(&mu_);
  return failed_;
}

bool WritePipeline::TakeGroup(std::deque<Pending>& group, bool* recover) {
  MutexLock lock(&mu_);
  while (!closing_ && queue_.empty() && failed_.ok()) cv_.Wait(&mu_);
  // Failed: an attempt to recover after a while, unless updates (to refuse) or Stop come.
  if (!closing_ && queue_.empty()) {
    const auto deadline = std::chrono::steady_clock::now() + health_.RetryDelay();
    while (!closing_ && queue_.empty() && cv_.WaitUntil(&mu_, deadline)) {
    }
    if (!closing_ && queue_.empty()) {
      *recover = true;
      return true;
    }
  }
  if (queue_.empty()) return false;  // closing and drained
  size_t values = 0;
  while (!queue_.empty() && (group.empty() || values < config::kMaxGroupValues)) {
    values += queue_.front().values;
    group.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  queue_depth_.Set(static_cast<int64_t>(queue_.size()));
  return true;
}

void WritePipeline::WriterLoop() {
  for (;;) {
    std::deque<Pending> group;
    bool recover = false;
    if (!TakeGroup(group, &recover)) break;
    if (recover) {
      Recover();
      continue;
    }
    CommitGroup(group);
  }
}

void WritePipeline::Recover() {
  // The committer first fails what it holds; the writer builds nothing meanwhile.
  committer_.WaitIdle();
  Status s = ProbeWritable(options_path_, env_);
  if (s.ok()) s = reopen_();
  if (!s.ok()) return health_.RetryFailed(s);
  {
    MutexLock lock(&mu_);
    failed_ = Status::Ok();
  }
  health_.Recovered();
}

void WritePipeline::CommitGroup(std::deque<Pending>& group) {
  size_t next = 0;  // the first batch of the group not built yet
  while (next < group.size()) {
    const auto start = std::chrono::steady_clock::now();
    Status status = failed();
    if (status.ok()) status = WaitForJournalSpace();
    size_t end = next;
    std::unique_ptr<BuiltGroup> built;
    if (status.ok()) {
      size_t values = 0;
      for (size_t i = next; i < group.size(); ++i) values += group[i].values;
      // Roughly what a value costs in the batch (its share of an audit row, state row and rollup
      // operands), so the batch buffer grows once instead of by repeated doubling.
      built = committer_.TakeBuiltGroup(std::min(values * 48, config::kMaxGroupRows * 64));
      const uint64_t seq_before = builder_.next_seq();
      do {
        builder_.Add(group[end].batch, *built);
        ++end;
      } while (end < group.size() && builder_.GroupRows() < config::kMaxGroupRows);
      builder_.TakeObserved(*built);
      // The state written directly must not be overtaken by an older journal row's: the
      // applier first writes out every one. If it cannot, the group is journalled after all.
      bool direct = builder_.WantsDirect();
      if (direct) direct = WaitForJournalDrained();
      builder_.Build(*built, seq_before, direct);
    } else {
      built = std::make_unique<BuiltGroup>(0);
      built->status = status;
      end = group.size();
    }
    built->start = start;
    commit_prepare_.Observe(SecondsSince(start));
    for (; next < end; ++next) built->done.push_back(std::move(group[next].done));
    committer_.HandOver(std::move(built));
  }
}

Status WritePipeline::WaitForJournalSpace() {
  if (journal_.WaitForSpace()) return Status::Ok();
  return failed();
}

bool WritePipeline::WaitForJournalDrained() {
  committer_.WaitJournalled();
  return journal_.WaitUntilWrittenOut();
}

}  // namespace stickmeter::tsdb
