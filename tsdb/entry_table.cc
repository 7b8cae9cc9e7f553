#include "tsdb/entry_table.h"

#include <rocksdb/db.h>

#include <memory>

#include "tsdb/rocks_status.h"

namespace stickmeter::tsdb {

Status EntryTable::LoadEntries(const DbHandle& db, const std::string& corrupt) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // a one-off full read: keep the block cache for queries
  std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(ro, db.cf(kEntries)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != format::kEntryKeySize) {
      return Status::Corruption(corrupt + ": bad entry record");
    }
    auto loaded = LoadEntry(format::DecodeEntryKey(it->key().data()),
                            std::string_view(it->value().data(), it->value().size()));
    if (!loaded.ok()) return Status::Corruption(corrupt + ": " + loaded.message());
  }
  if (!it->status().ok()) return FromRocks(it->status(), corrupt);
  return Status::Ok();
}

Status EntryTable::LoadEntry(const format::EntryId& id, std::string_view state) {
  auto [it, fresh] = entries_.TryEmplace(id);
  if (!format::DecodeEntryState(state, &it->second.metrics)) {
    return Status::Corruption("bad entry state");
  }
  if (!fresh) return Status::Ok();
  if (AddKeySource(id.table, id.key, id.source)) catalog_.CountMultiSourceKey(id.table);
  return Status::Ok();
}

void EntryTable::CountSeries() {
  uint64_t series = 0;
  entries_.ForEach(
      [&](const format::EntryId&, const LiveEntry& live) { series += live.metrics.size(); });
  live_series_ = series;
}

void EntryTable::Clear() {
  entries_.Clear();
  key_sources_.Clear();
  epochs_.clear();
}

}  // namespace stickmeter::tsdb
