// MergedIterator: a column family's rows merged with rows not written to it yet (the journal
// overlay of a query's reads).
//
// Not thread-safe: one query thread uses an iterator, as with any rocksdb::Iterator.
#pragma once

#include <rocksdb/iterator.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace stickmeter::tsdb {

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

}  // namespace stickmeter::tsdb
