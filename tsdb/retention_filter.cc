#include "tsdb/retention_filter.h"

#include <cstring>

#include "tsdb/format.h"

namespace stickmeter::tsdb {

RetentionFilter::RetentionFilter(std::string name, size_t offset, int64_t unit_ms,
                                 int64_t retention_ms, std::function<int64_t()> clock,
                                 uint32_t group)
    : name_(std::move(name)),
      offset_(offset),
      unit_ms_(unit_ms),
      retention_ms_(retention_ms),
      clock_(std::move(clock)),
      group_(group == 0 ? 1 : group) {}

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
    // A bucket is dropped only when all of its group is older than the horizon.
    const int64_t group = format::GetU32BE(key.data() + offset_) / group_;
    t = (group + 1) * group_ * unit_ms_;
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

}  // namespace stickmeter::tsdb
