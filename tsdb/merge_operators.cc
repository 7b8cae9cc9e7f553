#include "tsdb/merge_operators.h"

#include <algorithm>

#include "tsdb/format.h"

namespace stickmeter::tsdb {

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

}  // namespace stickmeter::tsdb
