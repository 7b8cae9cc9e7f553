#include "tsdb/journal_rows.h"

#include <algorithm>
#include <tuple>

#include "tsdb/config.h"
#include "tsdb/key_rollups.h"

namespace stickmeter::tsdb {

Status CollectJournalPieces(const std::vector<JournalRow>& rows,
                            const std::unordered_map<uint32_t, uint64_t>& applied,
                            std::vector<JournalPiece>* pieces) {
  std::vector<format::JournalChunk> chunks;
  for (const JournalRow& row : rows) {
    chunks.clear();
    if (!format::SplitJournalRow(*row.row, &chunks)) {
      return Status::Corruption("journal row " + std::to_string(row.id) + " is malformed");
    }
    for (const auto& c : chunks) {
      auto a = applied.find(c.partition);
      if (a != applied.end() && row.id <= a->second) continue;
      pieces->push_back(JournalPiece{c.partition, row.id, c.records});
    }
  }
  return Status::Ok();
}

Status AddStateAndRollups(const DbHandle& db, format::Journal& j, rocksdb::WriteBatch& wb,
                          RollupKinds rollups) {
  const bool by_key = rollups != RollupKinds::kByTime;
  const bool by_time = rollups != RollupKinds::kByKey;
  std::string k, sum, next, audit_row;
  // The updates of an entry from all the rows applied together become one audit row, or a few
  // (one spans less than kRawRowSpanMs and up to config::kMaxAuditRowBytes): one memtable insert,
  // and one key for each flush and compaction to carry, instead of one per entry update.
  std::stable_sort(j.audit.begin(), j.audit.end(), [](const auto& a, const auto& b) {
    return std::tie(a.table, a.key) < std::tie(b.table, b.key);
  });
  for (size_t i = 0; i < j.audit.size();) {
    const format::JournalAudit& first = j.audit[i];
    size_t n = i + 1, bytes = first.row.size();
    for (; n < j.audit.size() && bytes < config::kMaxAuditRowBytes; ++n) {
      const format::JournalAudit& a = j.audit[n];
      if (a.table != first.table || a.key != first.key || a.t_ms < first.t_ms ||
          a.t_ms - first.t_ms >= format::kRawRowSpanMs || a.seq <= j.audit[n - 1].seq) {
        break;
      }
      bytes += a.row.size();
    }
    k.clear();
    format::AppendRawKey(k, first.table, first.key, first.t_ms, first.seq);
    if (n == i + 1) {
      wb.Put(db.cf(kRaw), k, rocksdb::Slice(first.row.data(), first.row.size()));
    } else {
      audit_row.clear();
      format::StartUpdatesRow(audit_row);
      for (size_t u = i; u < n; ++u) {
        format::AppendUpdate(audit_row, first.t_ms, first.seq, j.audit[u].t_ms, j.audit[u].seq,
                             j.audit[u].row);
      }
      wb.Put(db.cf(kRaw), k, audit_row);
    }
    i = n;
  }
  // Rows go in key order: the memtable skiplist then inserts each next to the previous one
  // instead of searching from the top. Of an entry's states, the newest (last) one is written.
  std::stable_sort(j.entries.begin(), j.entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.id.source, a.id.table, a.id.key) <
           std::tie(b.id.source, b.id.table, b.id.key);
  });
  for (size_t i = 0; i < j.entries.size(); ++i) {
    if (i + 1 < j.entries.size() && j.entries[i + 1].id == j.entries[i].id) continue;
    k.clear();
    format::AppendEntryKey(k, j.entries[i].id);
    wb.Put(db.cf(kEntries), k,
           rocksdb::Slice(j.entries[i].state.data(), j.entries[i].state.size()));
  }
  // The cells of one rollup row from all the rows applied together become one merge operand.
  auto cell_order = [](const format::JournalCell& a, const format::JournalCell& b) {
    return std::tie(a.table, a.key, a.bucket, a.source) <
           std::tie(b.table, b.key, b.bucket, b.source);
  };
  for (int r = 0; r < format::kJournalResolutions; ++r) {
    auto& cells = j.cells[r];
    std::sort(cells.begin(), cells.end(), cell_order);
    for (size_t i = 0; by_key && i < cells.size();) {
      const format::JournalCell& c = cells[i];
      size_t n = 0;
      const auto operand = format::AddUpCells(
          cells, i, [&](const auto& a, const auto& b) { return !cell_order(a, b); }, &sum, &next,
          &n);
      if (!operand) return Status::Corruption("a journal row holds malformed rollup sums");
      k.clear();
      format::AppendEntryRollupKey(k, c.table, c.key, c.bucket, c.source);
      wb.Merge(db.cf(kMinute + r), k, rocksdb::Slice(operand->data(), operand->size()));
      i = n;
    }
    if (!by_time) continue;
    if (auto s = AddKeyRollups(db, r, cells, wb); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
