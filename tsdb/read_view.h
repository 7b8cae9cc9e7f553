// ReadView: one query's consistent read of the store's column families, with the journal rows
// committed but not yet written out merged in. ReadGate: the way queries reach the DB at all,
// holding it open for as long as they read.
//
// Thread-safety: a ReadView belongs to the one query thread that opened it, as its iterators
// do; a fork (ReadView::Fork) to the thread it is handed to, which reads the parent's snapshot
// and journal rows, neither changing once forked. A ReadGate is shared by every query thread: a
// Hold takes the store's DB lock shared, so Close and the reopen after a failed write (which
// take it exclusively) wait for the queries holding it, and a query never sees the DB change
// under it.
// Ownership: the gate borrows the lock, the DB pointer and the two callbacks from the store,
// which outlives it. A view borrows the DbHandle (kept open by its Hold) and owns its snapshot,
// iterators, its copy of the waiting journal rows (their bytes shared with the applier) and the
// family rows built from them; a fork owns only its iterators and borrows the rest from its
// parent.
// Failure: a Hold's status is Unavailable while the store is closed or reopening; the view's
// reads report RocksDB errors through Check (IoError), a malformed journal row as Corruption.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/perf_level.h>

#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "tsdb/db_handle.h"
#include "tsdb/journal_rows.h"
#include "tsdb/merged_iterator.h"
#include "tsdb/query_plan.h"
#include "tsdb/rocks_status.h"

namespace stickmeter::tsdb {

// Turns RocksDB's per-thread operation counters off on the calling thread for its life, and
// restores the level it found. Queries read none of them, and counting every iterator step in
// the shared library's thread-local context cost ~8% of a scan of the audit trail. Construct
// and destroy it on the same thread.
class QuietPerfCounters {
 public:
  QuietPerfCounters() : was_(rocksdb::GetPerfLevel()) {
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  }
  ~QuietPerfCounters() { rocksdb::SetPerfLevel(was_); }
  QuietPerfCounters(const QuietPerfCounters&) = delete;
  QuietPerfCounters& operator=(const QuietPerfCounters&) = delete;

 private:
  const rocksdb::PerfLevel was_;
};

// A consistent read of several column families. A query that reads through one iterator only
// may skip the snapshot (`snapshot` false): an iterator is a consistent view by itself, and
// taking and releasing a snapshot locks the DB mutex twice per query.
//
// With journal rows (`waiting`), the view also sees what is committed (so acknowledged) but
// still in journal rows the applier has not written out: AddJournal adds their audit rows and
// rollup cells to the iterators of those families, as the applier would write them. The rows
// are copied before the snapshot (which is then always taken), and a partition's chunks count
// only if the snapshot has no mark that they are written out: the applier writes a partition's
// records and its mark in one WriteBatch, and drops rows from its list only after writing them
// out, so every chunk counts exactly once, from the journal or from the families. (A row
// committed after the copy may be missed: it was acknowledged after the query began.)
class ReadView {
 public:
  // A read-only store (`read_only`) is as of its open: its journal rows, marks and families
  // agree without a snapshot.
  ReadView(const DbHandle& db, bool read_only, std::vector<JournalRow> waiting, bool snapshot);
  ~ReadView();
  // Not movable: the merged iterators point at journal_rows_.
  ReadView(const ReadView&) = delete;
  ReadView& operator=(const ReadView&) = delete;

  // Adds the waiting journal records of `table` (every table if nullopt), of `key` if given,
  // that the query's `segments` read (audit events inside a raw segment, rollup cells of a
  // segment's resolution overlapping it): a query over every key then builds only what it
  // reads. Call before the first It of the audit and rollup families.
  // `rollups`: which kind of rollup rows the query reads, by key or by time (the every-key
  // rollups; kByKey whenever the store has none): the view builds only those, and
  // ReadsByTime() says which. Call it even if the view has no journal rows.
  Status AddJournal(std::optional<uint32_t> table, std::optional<uint32_t> key,
                    const std::vector<Segment>& segments,
                    RollupKinds rollups = RollupKinds::kByKey);
  // A view of the same snapshot and journal rows as this one, for another thread: an every-key
  // scan shared out between threads reads one consistent state. Call after AddJournal, if at
  // all; this view must outlive the fork, and the fork may not AddJournal.
  std::unique_ptr<ReadView> Fork() const;
  // Whether the query reads the every-key rollups: AddJournal was asked for them (and the store
  // has them). A fork answers as its parent.
  bool ReadsByTime() const { return (parent_ ? parent_ : this)->by_time_; }
  // The view's iterator of `cf`, made at the first call.
  rocksdb::Iterator* It(Cf cf) {
    if (!its_[cf]) {
      its_[cf].reset(db_.db()->NewIterator(ro_, db_.cf(cf)));
      const MergedIterator::Rows& journal = (parent_ ? parent_ : this)->journal_rows_[cf];
      if (!journal.empty()) {
        its_[cf] = std::make_unique<MergedIterator>(std::move(its_[cf]), &journal);
      }
    }
    return its_[cf].get();
  }
  // The first error of the iterators made so far.
  Status Check() {
    for (auto& it : its_) {
      if (it && !it->status().ok()) return FromRocks(it->status(), "read");
    }
    return Status::Ok();
  }

 private:
  // The partitions written out as of the snapshot, and up to which row (*applied).
  Status ReadAppliedMarks(std::unordered_map<uint32_t, uint64_t>* applied);

  struct ForkOf {
    const ReadView* parent;
  };
  explicit ReadView(ForkOf fork);

  // On the thread that made the view (not a fork's: a fork is made on its parent's thread and
  // read on another, which quiets its own counters).
  std::optional<QuietPerfCounters> quiet_;
  const DbHandle& db_;
  const ReadView* parent_ = nullptr;  // a fork's: whose snapshot and journal rows it reads
  std::vector<JournalRow> waiting_;   // committed, not written out when the view began
  const rocksdb::Snapshot* snapshot_ = nullptr;
  rocksdb::ReadOptions ro_;
  bool by_time_ = false;                         // AddJournal's kByTime, if the store has them
  MergedIterator::Rows journal_rows_[kCfCount];  // by family, sorted by key
  std::unique_ptr<rocksdb::Iterator> its_[kCfCount];
};

// Copies the journal rows committed and not yet written out, in id order, into *rows.
using JournalCopy = std::function<void(std::vector<JournalRow>* rows)>;

// How queries, the export and backups reach the store's DB: the only way, so that each of them
// holds the DB open while it reads.
class ReadGate {
 public:
  // `db` is null while the store is closed or reopening; `mu` guards it (shared to read it).
  // `why_closed` runs with `mu` held and says whether the DB is open (Ok) or why not.
  ReadGate(SharedMutex& mu, const std::unique_ptr<DbHandle>& db, bool read_only,
           std::function<Status()> why_closed, JournalCopy copy_journal)
      : mu_(mu),
        db_(db),
        read_only_(read_only),
        why_closed_(std::move(why_closed)),
        copy_journal_(std::move(copy_journal)) {}

  // One query's hold on the DB: the lock, shared, from construction to destruction.
  class Hold {
   public:
    // The lock spans the Hold's life, from its constructor to its destructor, which the
    // analysis of one function at a time cannot follow: these two are exempt from it.
    explicit Hold(const ReadGate& gate) NO_THREAD_SAFETY_ANALYSIS
        : gate_(gate),
          status_((gate.mu_.LockShared(), gate.why_closed_())) {}
    ~Hold() NO_THREAD_SAFETY_ANALYSIS { gate_.mu_.UnlockShared(); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    // Unavailable when the DB is closed; then neither db() nor View may be called.
    const Status& status() const { return status_; }
    const DbHandle& db() const { return *gate_.db_; }
    // A view of the DB, with the journal rows waiting when `journal`.
    ReadView View(bool snapshot = true, bool journal = false) const {
      std::vector<JournalRow> waiting;
      if (journal) gate_.copy_journal_(&waiting);
      return ReadView(db(), gate_.read_only_, std::move(waiting), snapshot);
    }

   private:
    const ReadGate& gate_;
    const Status status_;
  };

 private:
  SharedMutex& mu_;
  const std::unique_ptr<DbHandle>& db_;
  const bool read_only_;
  const std::function<Status()> why_closed_;
  const JournalCopy copy_journal_;
};

}  // namespace stickmeter::tsdb
