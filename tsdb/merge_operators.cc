#include "tsdb/merge_operators.h"

#include <algorithm>
#include <array>
#include <bit>

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

namespace {

// The sums of one block's slots, added from any number of values.
class SlotSums {
 public:
  // False if `value` is malformed, empty or has a slot past the block.
  bool Add(const rocksdb::Slice& value) {
    format::SumsReader r(std::string_view(value.data(), value.size()));
    uint32_t slot = 0;
    uint64_t sum = 0;
    bool any = false;
    while (r.Next(&slot, &sum)) {
      if (slot >= format::kKeysPerBlock) return false;
      any = true;
      present_[slot / 64] |= uint64_t{1} << (slot % 64);
      sums_[slot] += sum;
    }
    return r.ok() && any;
  }
  void EncodeTo(std::string* out) const {
    out->clear();
    for (uint32_t word = 0; word < kWords; ++word) {
      for (uint64_t bits = present_[word]; bits != 0; bits &= bits - 1) {
        const uint32_t slot = word * 64 + static_cast<uint32_t>(std::countr_zero(bits));
        format::AppendSum(*out, slot, sums_[slot]);
      }
    }
  }

 private:
  static constexpr uint32_t kWords = format::kKeysPerBlock / 64;
  std::array<uint64_t, kWords> present_{};
  std::array<uint64_t, format::kKeysPerBlock> sums_{};
};

}  // namespace

bool KeySumsMergeOperator::FullMergeV2(const MergeOperationInput& in,
                                       MergeOperationOutput* out) const {
  SlotSums sums;
  if (in.existing_value != nullptr && !sums.Add(*in.existing_value)) return false;
  for (const rocksdb::Slice& operand : in.operand_list) {
    if (!sums.Add(operand)) return false;
  }
  sums.EncodeTo(&out->new_value);
  return true;
}

bool KeySumsMergeOperator::PartialMergeMulti(const rocksdb::Slice& /*key*/,
                                             const std::deque<rocksdb::Slice>& operands,
                                             std::string* new_value,
                                             rocksdb::Logger* /*logger*/) const {
  SlotSums sums;
  for (const rocksdb::Slice& operand : operands) {
    if (!sums.Add(operand)) return false;
  }
  sums.EncodeTo(new_value);
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
