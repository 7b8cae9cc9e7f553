#include "tsdb/backup.h"

#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "tsdb/rocks_status.h"

namespace stickmeter::tsdb {

namespace fs = std::filesystem;

Status CheckpointTo(const DbHandle& db, const std::string& dir) {
  rocksdb::Checkpoint* cp = nullptr;
  auto s = rocksdb::Checkpoint::Create(db.db(), &cp);
  if (!s.ok()) return FromRocks(s, "backup");
  std::unique_ptr<rocksdb::Checkpoint> owned(cp);
  return FromRocks(owned->CreateCheckpoint(dir), "backup into " + dir);
}

Status CopyTo(const DbHandle& db, const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) return Status::InvalidArgument("backup: " + dir + " already exists");
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  o.error_if_exists = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kCfCount; ++i) {
    rocksdb::ColumnFamilyOptions c;
    c.compression = rocksdb::kLZ4Compression;
    c.bottommost_compression = rocksdb::kZSTD;
    c.merge_operator = MergeOperatorFor(static_cast<Cf>(i));
    descriptors.emplace_back(kCfNames[i], c);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* out = nullptr;
  auto s = rocksdb::DB::Open(o, dir, descriptors, &handles, &out);
  if (!s.ok()) return FromRocks(s, "backup into " + dir);
  Status result;
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  for (int i = 0; i < kCfCount && result.ok(); ++i) {
    // A store of format version 1 open read-only has no every-key families: the copy records
    // version 1 too, and is upgraded at its first open for writing.
    if (db.cf(i) == nullptr) continue;
    std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(ro, db.cf(i)));
    rocksdb::WriteBatch wb;
    for (it->SeekToFirst(); it->Valid() && result.ok(); it->Next()) {
      wb.Put(handles[i], it->key(), it->value());
      if (wb.Count() >= 4096) {
        result = FromRocks(out->Write(rocksdb::WriteOptions(), &wb), "backup write");
        wb.Clear();
      }
    }
    if (result.ok()) result = FromRocks(it->status(), "backup read");
    if (result.ok() && wb.Count() > 0) {
      result = FromRocks(out->Write(rocksdb::WriteOptions(), &wb), "backup write");
    }
  }
  if (result.ok()) result = FromRocks(out->Flush(rocksdb::FlushOptions(), handles), "backup flush");
  for (auto* h : handles) out->DestroyColumnFamilyHandle(h);
  auto closed = out->Close();
  delete out;
  if (result.ok()) result = FromRocks(closed, "backup close");
  return result;
}

Status CompactAll(const DbHandle& db) {
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* cf : db.cfs()) {
    if (cf == nullptr) continue;
    if (auto s = FromRocks(db.db()->CompactRange(co, cf, nullptr, nullptr), "compaction");
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
