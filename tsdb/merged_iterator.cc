#include "tsdb/merged_iterator.h"

#include <algorithm>

namespace stickmeter::tsdb {

void MergedIterator::Choose() {
  const bool extra_left = pos_ < extra_->size();
  on_base_ = base_->Valid() &&
             (!extra_left || base_->key().compare(rocksdb::Slice((*extra_)[pos_].first)) <= 0);
}

void MergedIterator::SeekToFirst() {
  base_->SeekToFirst();
  pos_ = 0;
  Choose();
}

void MergedIterator::Seek(const rocksdb::Slice& target) {
  base_->Seek(target);
  pos_ = static_cast<size_t>(std::lower_bound(extra_->begin(), extra_->end(), target,
                                              [](const auto& row, const rocksdb::Slice& t) {
                                                return rocksdb::Slice(row.first).compare(t) < 0;
                                              }) -
                             extra_->begin());
  Choose();
}

void MergedIterator::Next() {
  if (on_base_) {
    base_->Next();
  } else {
    ++pos_;
  }
  Choose();
}

void MergedIterator::Unsupported() {
  status_ = rocksdb::Status::NotSupported("reading backwards through unwritten rows");
  on_base_ = false;
  pos_ = extra_->size();
}

}  // namespace stickmeter::tsdb
