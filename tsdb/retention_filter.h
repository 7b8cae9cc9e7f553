// The retention compaction filter: drops rows of the audit, rollup and gauge column families
// once they are older than the family's retention (StoreOptions::*_retention_ms).
//
// Stateless apart from its construction parameters: RocksDB may call it from any of its
// compaction threads. Owned by DbHandle, which outlives the DB that points at it.
#pragma once

#include <rocksdb/compaction_filter.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace stickmeter::tsdb {

// Drops rows whose time (read from the key) is older than now - retention.
class RetentionFilter : public rocksdb::CompactionFilter {
 public:
  // The time is a u64 ms at `offset` (audit rows, which reach format::kRawRowSpanMs past it)
  // when `unit_ms` is 0, else a u32 bucket at `offset` in units of `unit_ms`, kept until every
  // bucket of its `group` (buckets / group) is older than the horizon.
  RetentionFilter(std::string name, size_t offset, int64_t unit_ms, int64_t retention_ms,
                  std::function<int64_t()> clock, uint32_t group = 1);
  bool Filter(int level, const rocksdb::Slice& key, const rocksdb::Slice& existing_value,
              std::string* new_value, bool* value_changed) const override;
  bool FilterMergeOperand(int level, const rocksdb::Slice& key,
                          const rocksdb::Slice& operand) const override;
  const char* Name() const override { return name_.c_str(); }

 private:
  bool Expired(const rocksdb::Slice& key) const;
  std::string name_;
  size_t offset_;
  int64_t unit_ms_;
  int64_t retention_ms_;
  std::function<int64_t()> clock_;
  uint32_t group_;
};

}  // namespace stickmeter::tsdb
