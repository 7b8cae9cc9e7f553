// The merge operators of the rollup and gauge column families.
//
// Each adds a merge operand (IN: `value`) to the existing value (IN: `existing`, null when the
// key has none) into `new_value` (OUT), as RocksDB's AssociativeMergeOperator asks. Stateless:
// RocksDB may call them from any of its threads. A malformed value or operand returns false,
// which fails the read or compaction with Corruption: for billing, corrupt data is an error,
// never a zero.
#pragma once

#include <rocksdb/merge_operator.h>

#include <deque>
#include <string>

namespace stickmeter::tsdb {

// Rollup rows (format Sums): adds slot by slot. A malformed or empty value or operand is
// corruption and fails the read or compaction: a billing total is never silently zero.
class SumsAddOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger* logger) const override;
  const char* Name() const override { return "stickmeter.sums"; }
};

// Every-key rollup rows (format Sums whose slots are key ids within a block, all below
// format::kKeysPerBlock): adds per slot, all operands at once. A row gets an operand per group
// commit or applier pass of each block of keys, so a busy minute's row can hold hundreds before
// a flush or compaction merges them; added one by one (as SumsAddOperator does) a read would
// rewrite the growing row once per operand, here it adds every operand's cells into one array
// of the block's slots. Malformed values, empty ones and slots past the block are corruption.
class KeySumsMergeOperator : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override;
  bool PartialMergeMulti(const rocksdb::Slice& key, const std::deque<rocksdb::Slice>& operands,
                         std::string* new_value, rocksdb::Logger* logger) const override;
  const char* Name() const override { return "stickmeter.keysums"; }
};

// Gauge minute samples: 16 bytes (i64 last, i64 max). Later operand's `last` wins, max is kept.
// A value or operand of any other size is corruption, as for SumsAddOperator.
class GaugeMergeOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger* logger) const override;
  const char* Name() const override { return "stickmeter.gauge"; }
};

}  // namespace stickmeter::tsdb
