#include "tsdb/rocks.h"

#include <algorithm>

#include "tsdb/format.h"

namespace stickmeter::tsdb {

bool U64AddOperator::Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing,
                           const rocksdb::Slice& value, std::string* new_value,
                           rocksdb::Logger* /*logger*/) const {
  if (value.size() != 8) return false;
  uint64_t sum = format::GetFixed64LE(value.data());
  if (existing != nullptr) {
    if (existing->size() != 8) return false;
    sum += format::GetFixed64LE(existing->data());
  }
  new_value->clear();
  format::PutFixed64LE(*new_value, sum);
  return true;
}

bool SumsAddOperator::Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing,
                            const rocksdb::Slice& value, std::string* new_value,
                            rocksdb::Logger* /*logger*/) const {
  const std::string_view operand(value.data(), value.size());
  if (existing == nullptr) {
    // Validated like a merge, so that a malformed first operand fails here too.
    format::SumsReader r(operand);
    uint32_t slot = 0;
    uint64_t sum = 0;
    while (r.Next(&slot, &sum)) {
    }
    if (!r.ok() || operand.empty()) return false;
    new_value->assign(operand);
    return true;
  }
  std::string out;
  if (!format::AddSums(std::string_view(existing->data(), existing->size()), operand, &out)) {
    return false;
  }
  *new_value = std::move(out);
  return true;
}

bool HourRowAddOperator::Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing,
                               const rocksdb::Slice& value, std::string* new_value,
                               rocksdb::Logger* /*logger*/) const {
  format::HourRow row;
  if (!format::AddHourRow(std::string_view(value.data(), value.size()), &row)) return false;
  if (existing != nullptr &&
      !format::AddHourRow(std::string_view(existing->data(), existing->size()), &row)) {
    return false;
  }
  new_value->clear();
  format::EncodeHourRow(row, *new_value);
  return true;
}

bool GaugeMergeOperator::Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing,
                               const rocksdb::Slice& value, std::string* new_value,
                               rocksdb::Logger* /*logger*/) const {
  if (value.size() != format::kGaugeValueSize) return false;
  const auto last = static_cast<int64_t>(format::GetFixed64LE(value.data()));
  auto max = static_cast<int64_t>(format::GetFixed64LE(value.data() + 8));
  if (existing != nullptr) {
    if (existing->size() != format::kGaugeValueSize) return false;
    max = std::max(max, static_cast<int64_t>(format::GetFixed64LE(existing->data() + 8)));
  }
  *new_value = format::EncodeGauge(last, max);
  return true;
}

RetentionFilter::RetentionFilter(std::string name, size_t offset, int64_t unit_ms,
                                 int64_t retention_ms, std::function<int64_t()> clock)
    : name_(std::move(name)),
      offset_(offset),
      unit_ms_(unit_ms),
      retention_ms_(retention_ms),
      clock_(std::move(clock)) {}

bool RetentionFilter::Expired(const rocksdb::Slice& key) const {
  if (retention_ms_ <= 0) return false;
  int64_t t = 0;
  if (unit_ms_ == 0) {
    if (key.size() < offset_ + 8) return false;
    // An audit row holds updates from its key's time to kRawRowSpanMs after it: it is dropped
    // when the latest it can hold is past the horizon.
    t = static_cast<int64_t>(format::GetU64BE(key.data() + offset_)) + format::kRawRowSpanMs - 1;
  } else {
    if (key.size() < offset_ + 4) return false;
    // A bucket is dropped only when all of it is older than the horizon.
    t = (int64_t{format::GetU32BE(key.data() + offset_)} + 1) * unit_ms_;
  }
  return t <= clock_() - retention_ms_;
}

bool RetentionFilter::Filter(int /*level*/, const rocksdb::Slice& key,
                             const rocksdb::Slice& /*existing_value*/, std::string* /*new_value*/,
                             bool* /*value_changed*/) const {
  return Expired(key);
}

bool RetentionFilter::FilterMergeOperand(int /*level*/, const rocksdb::Slice& key,
                                         const rocksdb::Slice& /*operand*/) const {
  return Expired(key);
}

Status FromRocks(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::Ok();
  const std::string msg = context + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (s.IsBusy() || s.IsTryAgain()) return Status::Unavailable(msg);
  return Status::IoError(msg);
}

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
