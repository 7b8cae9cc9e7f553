// The merge operators of the rollup and gauge column families.
//
// Each adds a merge operand (IN: `value`) to the existing value (IN: `existing`, null when the
// key has none) into `new_value` (OUT), as RocksDB's AssociativeMergeOperator asks. Stateless:
// RocksDB may call them from any of its threads. A malformed value or operand returns false,
// which fails the read or compaction with Corruption: for billing, corrupt data is an error,
// never a zero.
#pragma once

#include <rocksdb/merge_operator.h>

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

// Gauge minute samples: 16 bytes (i64 last, i64 max). Later operand's `last` wins, max is kept.
// A value or operand of any other size is corruption, as for SumsAddOperator.
class GaugeMergeOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger* logger) const override;
  const char* Name() const override { return "stickmeter.gauge"; }
};

}  // namespace stickmeter::tsdb
