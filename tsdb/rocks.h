// RocksDB plumbing for the store: merge operators, the retention compaction filter and the
// column family options. Internal to tsdb.
//
// The merge operators and the filter are stateless apart from their construction parameters,
// so RocksDB may call them from any of its threads.
#pragma once

#include <rocksdb/compaction_filter.h>
#include <rocksdb/iterator.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace stickmeter::tsdb {

// Adds fixed 8-byte little-endian uint64 operands (the rollups of format v4 and older). A value or
// operand of any other size is corruption and fails the read or compaction: a billing total is
// never silently zero.
class U64AddOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger* logger) const override;
  const char* Name() const override { return "stickmeter.u64add"; }
};

// Rollup rows of format v5 (format Sums): adds slot by slot. A malformed or empty value or
// operand is corruption, as for U64AddOperator.
class SumsAddOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger* logger) const override;
  const char* Name() const override { return "stickmeter.sums"; }
};

// Hour rows of format v3 and v4 (format::HourRow): adds the sums of the hours present in either. A
// malformed value or operand is corruption, as for U64AddOperator.
class HourRowAddOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger* logger) const override;
  const char* Name() const override { return "stickmeter.hourrow"; }
};

// Gauge minute samples: 16 bytes (i64 last, i64 max). Later operand's `last` wins, max is kept.
class GaugeMergeOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger* logger) const override;
  const char* Name() const override { return "stickmeter.gauge"; }
};

// Drops rows whose time (read from the key) is older than now - retention.
class RetentionFilter : public rocksdb::CompactionFilter {
 public:
  // The time is a u64 ms at `offset` (audit rows, which reach format::kRawRowSpanMs past it)
  // when `unit_ms` is 0, else a u32 bucket at `offset` in units of `unit_ms`.
  RetentionFilter(std::string name, size_t offset, int64_t unit_ms, int64_t retention_ms,
                  std::function<int64_t()> clock);
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
};

// Reads a column family's rows together with rows not written to it yet: every row of `base`
// and of `extra` (sorted by key, bytewise, the column families' order), in key order. A key in
// both comes twice, the base's row first, so readers add up rows of one key as they add up a
// key's rows of several sources. Forward only: SeekToLast, SeekForPrev and Prev leave it invalid
// with a NotSupported status. `extra` must outlive the iterator.
class MergedIterator final : public rocksdb::Iterator {
 public:
  using Rows = std::vector<std::pair<std::string, std::string>>;
  MergedIterator(std::unique_ptr<rocksdb::Iterator> base, const Rows* extra)
      : base_(std::move(base)), extra_(extra) {}
  bool Valid() const override { return on_base_ || pos_ < extra_->size(); }
  void SeekToFirst() override;
  void SeekToLast() override { Unsupported(); }
  void Seek(const rocksdb::Slice& target) override;
  void SeekForPrev(const rocksdb::Slice& /*target*/) override { Unsupported(); }
  void Next() override;
  void Prev() override { Unsupported(); }
  rocksdb::Slice key() const override {
    return on_base_ ? base_->key() : rocksdb::Slice((*extra_)[pos_].first);
  }
  rocksdb::Slice value() const override {
    return on_base_ ? base_->value() : rocksdb::Slice((*extra_)[pos_].second);
  }
  rocksdb::Status status() const override { return status_.ok() ? base_->status() : status_; }

 private:
  void Choose();
  void Unsupported();
  std::unique_ptr<rocksdb::Iterator> base_;
  const Rows* extra_;
  size_t pos_ = 0;        // the next row of extra_
  bool on_base_ = false;  // the current row is base_'s
  rocksdb::Status status_;
};

// Converts a RocksDB status, prefixing `context`.
Status FromRocks(const rocksdb::Status& s, const std::string& context);

}  // namespace stickmeter::tsdb
