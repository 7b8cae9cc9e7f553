#include "tsdb/key_rollups.h"

#include <rocksdb/db.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <tuple>

#include "common/log.h"
#include "tsdb/rocks_status.h"

namespace stickmeter::tsdb {
namespace {

// One cell of an every-key row: a key's (slot's) sum of a metric in a bucket.
struct KeyCell {
  uint32_t metric, bucket, slot;
  uint64_t sum;
};

// The cells gathered in a write before they go out (an upgrade writes in pieces of this many).
constexpr size_t kUpgradeCellsPerWrite = 256 * 1024;

}  // namespace

Status AddKeyRollups(const DbHandle& db, int resolution,
                     const std::vector<format::JournalCell>& cells, rocksdb::WriteBatch& wb) {
  rocksdb::ColumnFamilyHandle* cf = db.cf(kKeyMinute + resolution);
  if (cf == nullptr) return Status::Ok();
  std::vector<KeyCell> run;
  std::string key, value, merged, next;
  // Key by key, in runs of one block of key ids: each run's cells sorted by metric and bucket
  // give its rows, a merge operand each.
  for (size_t i = 0; i < cells.size();) {
    const uint32_t table = cells[i].table;
    const uint32_t block = cells[i].key / format::kKeysPerBlock;
    run.clear();
    while (i < cells.size() && cells[i].table == table &&
           cells[i].key / format::kKeysPerBlock == block) {
      const format::JournalCell& c = cells[i];
      // The key's cells of this bucket from every source and group, added up first: a journal
      // of seconds holds a cell per group the key was in, and the run is sorted after.
      const auto cell_sums = format::AddUpCells(
          cells, i,
          [](const auto& a, const auto& b) {
            return a.table == b.table && a.key == b.key && a.bucket == b.bucket;
          },
          &merged, &next, &i);
      if (!cell_sums) return Status::Corruption("a rollup cell holds malformed sums");
      const uint32_t slot = c.key % format::kKeysPerBlock;
      format::SumsReader sums(*cell_sums);
      uint32_t s = 0;
      uint64_t v = 0;
      bool any = false;
      while (sums.Next(&s, &v)) {
        any = true;
        if (resolution == 1) {  // hour rows hold a day: slot = metric * 24 + hour of the day
          run.push_back(KeyCell{s / format::kHoursPerRow,
                                c.bucket * format::kHoursPerRow + s % format::kHoursPerRow, slot,
                                v});
        } else {
          run.push_back(KeyCell{s, c.bucket, slot, v});
        }
      }
      if (!sums.ok() || !any) return Status::Corruption("a rollup cell holds malformed sums");
    }
    std::sort(run.begin(), run.end(), [](const KeyCell& a, const KeyCell& b) {
      return std::tie(a.metric, a.bucket, a.slot) < std::tie(b.metric, b.bucket, b.slot);
    });
    for (size_t j = 0; j < run.size();) {
      const uint32_t metric = run[j].metric, bucket = run[j].bucket;
      value.clear();
      size_t n = j;
      while (n < run.size() && run[n].metric == metric && run[n].bucket == bucket) {
        const uint32_t slot = run[n].slot;
        uint64_t sum = 0;
        for (; n < run.size() && run[n].metric == metric && run[n].bucket == bucket &&
               run[n].slot == slot;
             ++n) {
          sum += run[n].sum;  // the key's cells of several sources
        }
        format::AppendSum(value, slot, sum);
      }
      key.clear();
      format::AppendKeySumsKey(key, table, metric, bucket, block);
      wb.Merge(cf, key, value);
      j = n;
    }
  }
  return Status::Ok();
}

Status UpgradeToKeyRollups(const DbHandle& db) {
  if (db.cf(kKeyDay) == nullptr) return Status::Internal("the every-key families are not open");
  rocksdb::WriteOptions synced;
  synced.sync = true;
  {
    // A former attempt's rows: its merge operands would count twice.
    const std::string end(format::kKeySumsKeySize + 1, '\xff');
    rocksdb::WriteBatch wb;
    for (int cf = kKeyMinute; cf <= kKeyDay; ++cf) {
      if (auto s = FromRocks(wb.DeleteRange(db.cf(cf), "", end), "upgrading the store"); !s.ok()) {
        return s;
      }
    }
    if (auto s = FromRocks(db.db()->Write(synced, &wb), "upgrading the store"); !s.ok()) {
      return s;
    }
  }
  LogInfo("store", "upgrading the store to format version 2: adding every-key rollups");
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // a one-off full read
  uint64_t rows_read = 0;
  for (int r = 0; r < format::kJournalResolutions; ++r) {
    std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(ro, db.cf(kMinute + r)));
    std::vector<format::JournalCell> cells;
    std::deque<std::string> values;  // what the cells point at
    auto write = [&]() -> Status {
      rocksdb::WriteBatch wb;
      if (auto s = AddKeyRollups(db, r, cells, wb); !s.ok()) return s;
      cells.clear();
      values.clear();
      return FromRocks(db.db()->Write(rocksdb::WriteOptions(), &wb), "upgrading the store");
    };
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != format::kEntryRollupKeySize) {
        return Status::Corruption(std::string("a row of ") + kCfNames[kMinute + r] +
                                  " has a malformed key");
      }
      const auto parts = format::DecodeEntryRollupKey(it->key().data());
      values.emplace_back(it->value().data(), it->value().size());
      cells.push_back(
          format::JournalCell{parts.table, parts.key, parts.bucket, parts.source, values.back()});
      if (cells.size() >= kUpgradeCellsPerWrite) {
        if (auto s = write(); !s.ok()) return s;
      }
      if (++rows_read % (16u << 20) == 0) {
        LogInfo("store", "upgrading the store: " + std::to_string(rows_read) + " rollup rows read");
      }
    }
    if (auto s = FromRocks(it->status(), "upgrading the store"); !s.ok()) return s;
    if (auto s = write(); !s.ok()) return s;
  }
  // The version in a synced write: it makes the rows before it durable too (one WAL).
  std::string version;
  format::PutU32BE(version, format::kKeyRollupsVersion);
  if (auto s = FromRocks(db.db()->Put(synced, db.cf(kMeta), format::FormatKey(), version),
                         "upgrading the store");
      !s.ok()) {
    return s;
  }
  LogInfo("store", "store upgraded to format version 2 (" + std::to_string(rows_read) +
                       " rollup rows read)");
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
