#include "tsdb/query_plan.h"

namespace stickmeter::tsdb {
namespace {

constexpr int64_t kUnits[] = {format::kMinuteMs, format::kHourMs, format::kDayMs};

// Decompose at `level`: 0 minutes, 1 hours, 2 days, 3 past days (only days remain).
void DecomposeAt(int64_t from, int64_t to, size_t level, std::vector<Segment>* out) {
  if (from >= to) return;
  if (level == 3) {
    out->push_back({format::kDayMs, from, to});
    return;
  }
  const int64_t unit = kUnits[level];
  const int64_t lo = CeilTo(from, unit), hi = FloorTo(to, unit);
  const int64_t finer = level == 0 ? 0 : kUnits[level - 1];
  if (lo >= hi) {
    out->push_back({finer, from, to});
    return;
  }
  if (from < lo) out->push_back({finer, from, lo});
  DecomposeAt(lo, hi, level + 1, out);
  if (hi < to) out->push_back({finer, hi, to});
}

}  // namespace

int64_t FloorTo(int64_t t, int64_t unit) {
  const int64_t q = t / unit;
  return (q * unit > t ? q - 1 : q) * unit;
}

int64_t CeilTo(int64_t t, int64_t unit) {
  const int64_t f = FloorTo(t, unit);
  return f == t ? f : f + unit;
}

void Decompose(int64_t from, int64_t to, std::vector<Segment>* out) {
  DecomposeAt(from, to, 0, out);
}

Status CheckRange(int64_t from, int64_t to) {
  if (from >= to) return Status::InvalidArgument("from: must be before to");
  if (from < 0) return Status::InvalidArgument("from: must not be before 1970");
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
