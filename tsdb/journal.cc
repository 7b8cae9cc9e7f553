#include "tsdb/journal.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "common/log.h"
#include "common/thread_setup.h"
#include "tsdb/rocks_status.h"

namespace stickmeter::tsdb {

Journal::Journal(std::chrono::milliseconds gather, MetricsRegistry& metrics,
                 std::function<void(const Status&)> on_failure)
    : gather_(gather),
      age_bound_(std::max(2 * gather, config::kMinJournalAgeBound)),
      on_failure_(std::move(on_failure)),
      backlog_(metrics.GetGauge(
          "stickmeter_store_journal_backlog_bytes",
          "Committed state and rollup changes not yet written to their column families "
          "(queries read them from the journal meanwhile)")),
      lag_(metrics.GetGauge(
          "stickmeter_store_journal_lag_milliseconds",
          "Age of the oldest committed change the latest state and rollup write took: how long "
          "changes wait in the journal")) {}

Result<uint64_t> Journal::Recover(
    DbHandle* db, bool read_only, std::vector<JournalRow> rows,
    const std::unordered_map<uint32_t, uint64_t>& applied, const std::string& corrupt,
    const std::function<Status(const format::EntryId&, std::string_view)>& load_entry) {
  db_ = db;
  // Row ids only grow, so that no new row is taken for one a partition's mark says is written
  // out.
  uint64_t last_id = 0;
  for (const auto& [partition, id] : applied) last_id = std::max(last_id, id);
  // Journal rows left by a crash hold the newest state of their entries: it is loaded, then
  // written out before anything newer. A reader keeps the rows it found (a read-write instance
  // still running, or a crash) and its queries read them, as a writer's do.
  if (!rows.empty()) {
    last_id = std::max(last_id, rows.back().id);
    if (read_only) {
      recovered_rows_ = rows.size();
    } else {
      std::vector<JournalPiece> pieces;
      if (auto c = CollectJournalPieces(rows, applied, &pieces); !c.ok()) {
        return Status::Corruption(corrupt + ": " + c.message());
      }
      format::Journal j;
      for (const JournalPiece& piece : pieces) {
        j.Clear();
        if (!format::AppendJournal(piece.records, &j)) {
          return Status::Corruption(corrupt + ": journal row " + std::to_string(piece.id) +
                                    " is malformed");
        }
        for (const auto& e : j.entries) {
          auto loaded = load_entry(e.id, e.state);
          if (!loaded.ok()) {
            return Status::Corruption(corrupt + ": journal row " + std::to_string(piece.id) + ": " +
                                      loaded.message());
          }
        }
      }
      LogInfo(
          "store",
          "writing " + std::to_string(rows.size()) +
              " journal rows to the state and rollups (left by an unclean stop or a failed write)");
      auto written = WriteOut(rows, pieces, [](size_t) { return true; });
      if (!written.ok()) return written;
      rows.clear();
    }
  }
  MutexLock lock(&mu_);
  rows_ = std::move(rows);
  queued_ = applied_ = last_id;
  return last_id;
}

void Journal::Start(DbHandle* db) {
  {
    MutexLock lock(&mu_);
    stop_ = false;
  }
  // Waiters of a reopen see the failure it forgot (Clear).
  applied_cv_.SignalAll();
  space_cv_.SignalAll();
  db_ = db;
  applier_ = std::thread([this] {
    // Background work: the writer and the network threads, whose delays are what peers and
    // queries wait on, go first when the cores are busy.
    SetUpThisThread("sm-applier", 10);
    ApplierLoop();
  });
}

void Journal::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (applier_.joinable()) applier_.join();
}

void Journal::Clear() {
  MutexLock lock(&mu_);
  rows_.clear();
  applying_.clear();
  bytes_ = 0;
  failed_ = false;
  // The rows are on disk, for the next Load: none waits here to be written out. A flush while
  // the reopen fails would otherwise wait for them until one succeeds.
  applied_ = queued_;
  backlog_.Set(0);
}

void Journal::Enqueue(std::vector<JournalRow>& rows) {
  const auto now = std::chrono::steady_clock::now();
  {
    MutexLock lock(&mu_);
    for (auto& row : rows) {
      row.committed = now;
      bytes_ += row.row->size();
      rows_.push_back(std::move(row));
    }
    queued_ = rows_.back().id;
    backlog_.Set(static_cast<int64_t>(bytes_));
  }
  cv_.Signal();
}

bool Journal::BehindLocked() const {
  if (failed_ || held_) return false;
  if (bytes_ > config::kMaxJournalBacklogBytes) return true;
  const auto now = std::chrono::steady_clock::now();
  const auto oldest = !applying_.empty() ? applying_.front().committed
                      : rows_.empty()    ? now
                                         : rows_.front().committed;
  return now - oldest > age_bound_;
}

bool Journal::WaitForSpace() {
  // At saturation the applier, which runs at a lower priority, would fall ever further behind:
  // past the age bound the writer gives it the cores instead.
  MutexLock lock(&mu_);
  // The age condition changes with the clock alone, so it is checked again every few ms.
  while (BehindLocked()) space_cv_.WaitFor(&mu_, std::chrono::milliseconds(5));
  return !failed_;
}

bool Journal::WaitUntilWrittenOut() {
  MutexLock lock(&mu_);
  return WaitForAppliedLocked(queued_);
}

bool Journal::WaitForAppliedLocked(uint64_t target) {
  ++waiters_;
  cv_.SignalAll();
  while (applied_ < target && !failed_ && !held_) applied_cv_.Wait(&mu_);
  --waiters_;
  return applied_ >= target && !failed_;
}

std::vector<JournalRow> Journal::Snapshot() const {
  std::vector<JournalRow> rows;
  MutexLock lock(&mu_);
  rows.reserve(applying_.size() + rows_.size());
  rows.insert(rows.end(), applying_.begin(), applying_.end());
  rows.insert(rows.end(), rows_.begin(), rows_.end());
  return rows;
}

void Journal::Hold() {
  MutexLock lock(&mu_);
  held_ = true;
}

bool Journal::TakeRows(std::vector<JournalRow>& rows) {
  MutexLock lock(&mu_);
  while (!stop_ && (rows_.empty() || held_)) cv_.Wait(&mu_);
  if (rows_.empty() || held_) return false;  // stopping and drained, or held
  // A pass writes an entry once however many groups touched it: below saturation, gathering a
  // few more groups first saves most of the pass's memtable inserts (it would otherwise run
  // after every group commit). Not when someone waits for the journal to be written.
  const auto deadline = rows_.front().committed + gather_;
  while (!ReadyLocked() && cv_.WaitUntil(&mu_, deadline)) {
  }
  if (held_) return false;
  rows.swap(rows_);
  rows_.clear();
  applying_ = rows;
  return true;
}

void Journal::ApplierLoop() {
  std::vector<JournalRow> rows;
  while (TakeRows(rows)) {
    // How long changes waited in the journal: the age of the pass's oldest row.
    lag_.Set(std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - rows.front().committed)
                 .count());
    // By partition, each in id order: a later state of a series overrides an earlier one.
    size_t pass_bytes = 0, written_bytes = 0;
    for (const JournalRow& row : rows) pass_bytes += row.row->size();
    std::vector<JournalPiece> pieces;
    Status status = CollectJournalPieces(rows, {}, &pieces);
    bool held = false;
    if (status.ok()) {
      status = WriteOut(rows, pieces, [&](size_t bytes) {
        written_bytes += bytes;
        {
          MutexLock lock(&mu_);
          bytes_ -= bytes;
          backlog_.Set(static_cast<int64_t>(bytes_));
        }
        space_cv_.SignalAll();
        if (batches_left_.load() < 0 || batches_left_.fetch_sub(1) > 1) return true;
        held = true;
        return false;
      });
    }
    EndPass(rows, status, held, pass_bytes, written_bytes);
    if (held) return;
    if (!status.ok()) {
      // The rows stay: reopening the store writes them out (Recover).
      on_failure_(status);
      return;
    }
  }
}

void Journal::EndPass(const std::vector<JournalRow>& rows, const Status& status, bool held,
                      size_t pass_bytes, size_t written_bytes) {
  {
    MutexLock lock(&mu_);
    if (!held && status.ok()) applying_.clear();
    bytes_ -= pass_bytes - written_bytes;  // the chunk headers
    backlog_.Set(static_cast<int64_t>(bytes_));
    if (rows_.empty()) lag_.Set(0);
    if (held) {
      held_ = true;
    } else if (status.ok()) {
      applied_ = rows.back().id;
    } else {
      failed_ = true;
    }
  }
  space_cv_.SignalAll();
  applied_cv_.SignalAll();
}

Status Journal::WriteOut(const std::vector<JournalRow>& rows, std::vector<JournalPiece>& pieces,
                         const std::function<bool(size_t)>& on_batch) {
  if (rows.empty()) return Status::Ok();
  std::stable_sort(pieces.begin(), pieces.end(), [](const JournalPiece& a, const JournalPiece& b) {
    return a.partition < b.partition;
  });
  std::string written_up_to;
  format::PutU64BE(written_up_to, rows.back().id);
  format::Journal j;
  size_t begin = 0;
  do {
    size_t end = begin, bytes = 0;
    while (end < pieces.size() &&
           (end == begin || pieces[end].partition == pieces[end - 1].partition ||
            bytes < config::kMinApplyBatchBytes)) {
      bytes += pieces[end].records.size();
      ++end;
    }
    j.Clear();
    rocksdb::WriteBatch wb;
    for (size_t i = begin; i < end; ++i) {
      if (!format::AppendJournal(pieces[i].records, &j)) {
        return Status::Corruption("journal row " + std::to_string(pieces[i].id) + " is malformed");
      }
      const uint32_t partition = pieces[i].partition;
      if (i + 1 == end || pieces[i + 1].partition != partition) {
        wb.Put(db_->cf(kMeta), format::AppliedKey(partition), written_up_to);
      }
    }
    if (auto s = AddStateAndRollups(*db_, j, wb); !s.ok()) return s;
    if (end == pieces.size()) {
      for (const JournalRow& row : rows) wb.Delete(db_->cf(kMeta), format::JournalKey(row.id));
    }
    // Not synced: until the WAL holds this batch the journal rows are still there and the
    // partitions not marked written out (the later synced commit makes both durable, in order),
    // so a crash loses nothing.
    rocksdb::WriteOptions wo;
    // A priority other than the writer's keeps RocksDB from joining this batch to a commit's
    // write group, where the commit would wait for (or do) this batch's memtable inserts.
    // Without a rate limiter configured the priority has no other effect.
    wo.rate_limiter_priority = rocksdb::Env::IO_USER;
    if (auto s = FromRocks(db_->db()->Write(wo, &wb), "writing state and rollups"); !s.ok())
      return s;
    begin = end;
    if (!on_batch(bytes)) break;
  } while (begin < pieces.size());
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
