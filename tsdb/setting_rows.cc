#include "tsdb/setting_rows.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <deque>
#include <memory>

#include "tsdb/format.h"
#include "tsdb/rocks_status.h"

namespace stickmeter::tsdb {

Result<std::vector<std::pair<std::string, std::string>>> ReadSettings(const DbHandle& db,
                                                                      std::string_view prefix) {
  // Built in place: GCC 12 at -O3 warns (wrongly, -Wrestrict) on a concatenation of temporaries.
  std::string start(1, format::kTagSetting);
  start.append(prefix);
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(rocksdb::ReadOptions(), db.cf(kMeta)));
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    out.emplace_back(it->key().ToString().substr(1), it->value().ToString());
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read settings");
  return out;
}

Status WriteSettingRows(DbHandle& db, const SettingWrite& w) {
  std::string key(1, format::kTagSetting);
  key.append(w.name);
  std::string old;
  if (!w.value) {
    rocksdb::Status got = db.db()->Get(rocksdb::ReadOptions(), db.cf(kMeta), key, &old);
    if (got.IsNotFound()) return Status::NotFound("no such setting");
    if (!got.ok()) return FromRocks(got, "read setting");
  }
  std::string history_key(1, format::kTagSettingHistory);
  format::PutU64BE(history_key, static_cast<uint64_t>(w.t_ms));
  format::PutU64BE(history_key, w.order);
  std::string change;
  format::PutU32BE(change, static_cast<uint32_t>(w.name.size()));
  change += w.name;
  change += w.value ? '\0' : '\1';
  change += w.value ? *w.value : old;
  rocksdb::WriteBatch wb;
  if (w.value) {
    wb.Put(db.cf(kMeta), key, *w.value);
  } else {
    wb.Delete(db.cf(kMeta), key);
  }
  wb.Put(db.cf(kMeta), history_key, change);
  rocksdb::WriteOptions wo;
  wo.sync = w.sync;
  return FromRocks(db.db()->Write(wo, &wb), "write setting");
}

Result<std::vector<SettingChange>> ReadSettingHistory(const DbHandle& db, std::string_view prefix,
                                                      size_t limit) {
  const std::string start(1, format::kTagSettingHistory);
  std::deque<SettingChange> out;
  std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(rocksdb::ReadOptions(), db.cf(kMeta)));
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    const rocksdb::Slice k = it->key(), v = it->value();
    if (k.size() != 17 || v.size() < 5) return Status::Corruption("bad setting history record");
    const uint32_t n = format::GetU32BE(v.data());
    if (v.size() < 5 + size_t{n}) return Status::Corruption("bad setting history record");
    std::string name(v.data() + 4, n);
    if (!std::string_view(name).starts_with(prefix)) continue;
    SettingChange c;
    c.t_ms = static_cast<int64_t>(format::GetU64BE(k.data() + 1));
    c.name = std::move(name);
    c.deleted = v[4 + n] != 0;
    c.value.assign(v.data() + 5 + n, v.size() - 5 - n);
    out.push_back(std::move(c));
    if (out.size() > limit) out.pop_front();
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read setting history");
  return std::vector<SettingChange>(out.begin(), out.end());
}

}  // namespace stickmeter::tsdb
