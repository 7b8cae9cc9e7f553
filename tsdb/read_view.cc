#include "tsdb/read_view.h"

#include <algorithm>
#include <string>
#include <utility>

namespace stickmeter::tsdb {

ReadView::ReadView(const DbHandle& db, bool read_only, std::vector<JournalRow> waiting,
                   bool snapshot)
    : db_(db), waiting_(std::move(waiting)) {
  quiet_.emplace();
  if ((snapshot || !waiting_.empty()) && !read_only) snapshot_ = db_.db()->GetSnapshot();
  ro_.snapshot = snapshot_;
}

ReadView::ReadView(ForkOf fork)
    : db_(fork.parent->db_), parent_(fork.parent), snapshot_(fork.parent->snapshot_) {
  ro_.snapshot = snapshot_;
}

ReadView::~ReadView() {
  if (snapshot_ != nullptr && parent_ == nullptr) db_.db()->ReleaseSnapshot(snapshot_);
}

std::unique_ptr<ReadView> ReadView::Fork() const {
  return std::unique_ptr<ReadView>(new ReadView(ForkOf{this}));
}

Status ReadView::ReadAppliedMarks(std::unordered_map<uint32_t, uint64_t>* applied) {
  std::unique_ptr<rocksdb::Iterator> it(db_.db()->NewIterator(ro_, db_.cf(kMeta)));
  for (it->Seek(format::AppliedKey(0)); it->Valid(); it->Next()) {
    const auto partition =
        format::DecodeAppliedKey(std::string_view(it->key().data(), it->key().size()));
    if (!partition) break;
    if (it->value().size() != 8) return Status::Corruption("bad journal mark");
    (*applied)[*partition] = format::GetU64BE(it->value().data());
  }
  return FromRocks(it->status(), "read");
}

Status ReadView::AddJournal(std::optional<uint32_t> table, std::optional<uint32_t> key,
                            const std::vector<Segment>& segments, RollupKinds rollups) {
  if (parent_ != nullptr) return Status::Internal("a fork reads its parent's journal rows");
  if (rollups == RollupKinds::kBoth) return Status::Internal("a query reads one kind of rollup");
  if (rollups == RollupKinds::kByTime && !db_.key_rollups_ready()) rollups = RollupKinds::kByKey;
  by_time_ = rollups == RollupKinds::kByTime;
  if (waiting_.empty()) return Status::Ok();
  std::unordered_map<uint32_t, uint64_t> applied;
  if (auto s = ReadAppliedMarks(&applied); !s.ok()) return s;
  std::vector<JournalPiece> pieces;
  if (auto s = CollectJournalPieces(waiting_, applied, &pieces); !s.ok()) return s;
  const uint32_t only = table && key ? JournalPartition(*table, *key) : 0;
  // Only the records the query reads are kept: with every key, the journal may hold hundreds of
  // thousands of updates, and storing what is dropped afterwards cost most of the time.
  auto other = [&](uint32_t t, uint32_t k) { return (table && t != *table) || (key && k != *key); };
  auto read = [&](int64_t unit_ms, int64_t lo, int64_t hi) {
    for (const Segment& seg : segments) {
      if (seg.unit_ms == unit_ms && lo < seg.hi && seg.lo < hi) return true;
    }
    return false;
  };
  // A cell's bucket is as in its family's keys: hour rows are keyed by their day.
  static constexpr int64_t kRowMs[format::kJournalResolutions] = {
      format::kMinuteMs, format::kHoursPerRow * format::kHourMs, format::kDayMs};
  static constexpr int64_t kUnitMs[format::kJournalResolutions] = {format::kMinuteMs,
                                                                   format::kHourMs, format::kDayMs};
  format::JournalFilter keep;
  keep.entries = false;  // state rows: no query reads them
  keep.audit = [&](const format::JournalAudit& a) {
    return !other(a.table, a.key) && read(0, a.t_ms, a.t_ms + 1);
  };
  keep.cell = [&](int r, const format::JournalCell& c) {
    const int64_t start = int64_t{c.bucket} * kRowMs[r];
    return !other(c.table, c.key) && read(kUnitMs[r], start, start + kRowMs[r]);
  };
  format::Journal j;
  for (const JournalPiece& piece : pieces) {
    if (table && key && piece.partition != only) continue;
    if (!format::AppendJournal(piece.records, &j, keep)) {
      return Status::Corruption("journal row " + std::to_string(piece.id) + " is malformed");
    }
  }
  // The rows the applier would write, collected per family from a WriteBatch.
  rocksdb::WriteBatch wb;
  if (auto s = AddStateAndRollups(db_, j, wb, rollups); !s.ok()) return s;
  struct Collect : rocksdb::WriteBatch::Handler {
    explicit Collect(ReadView* r) : r(r) {}
    rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
      return Add(cf, k, v);
    }
    rocksdb::Status MergeCF(uint32_t cf, const rocksdb::Slice& k,
                            const rocksdb::Slice& v) override {
      return Add(cf, k, v);
    }
    rocksdb::Status Add(uint32_t cf_id, const rocksdb::Slice& k, const rocksdb::Slice& v) {
      for (int cf = kRaw; cf < kCfCount; ++cf) {
        if (r->db_.cf(cf) != nullptr && r->db_.cf(cf)->GetID() == cf_id) {
          r->journal_rows_[cf].emplace_back(k.ToString(), v.ToString());
          return rocksdb::Status::OK();
        }
      }
      return rocksdb::Status::Corruption("journal records for an unexpected column family");
    }
    ReadView* r;
  } collect(this);
  if (auto s = FromRocks(wb.Iterate(&collect), "reading the journal"); !s.ok()) return s;
  for (int cf = kRaw; cf < kCfCount; ++cf) {
    if (its_[cf]) return Status::Internal("the journal was added after reading began");
    std::sort(journal_rows_[cf].begin(), journal_rows_[cf].end());
  }
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
