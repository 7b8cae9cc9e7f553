#include "tsdb/delta.h"

namespace stickmeter::tsdb {

using format::Reason;

DeltaResult ComputeDelta(const std::optional<format::SeriesValue>& prev, const DeltaInput& in) {
  DeltaResult r;
  r.next = format::SeriesValue{in.value, in.received_ms, in.connection_id, in.source_epoch};
  if (prev && prev->epoch < in.source_epoch) {
    // Rule 1: the source's process restarted since this series was last seen: it counts from 0.
    r.delta = in.value;
    r.reason = Reason::kRestart;
    return r;
  }
  if (!prev) {
    r.delta = in.value;
    r.reason = Reason::kFirst;
    return r;
  }
  const uint64_t last = prev->last;
  // A gap can only be measured on one connection: after a reconnect HAProxy replays a backlog
  // whose arrival times say nothing about when the entry was last touched.
  const int64_t gap = in.received_ms - prev->last_ms;
  const bool gap_exceeds_expiry =
      in.expire_ms != 0 && gap > static_cast<int64_t>(in.expire_ms) + in.expiry_margin_ms;
  if (gap_exceeds_expiry && prev->connection_id == in.connection_id) {
    r.delta = in.value;
    r.reason = Reason::kExpired;
    return r;
  }
  if (in.value >= last) {
    r.delta = in.value - last;
    r.reason = Reason::kIncrement;
    return r;
  }
  constexpr uint64_t k2Pow32 = uint64_t{1} << 32;
  if (in.counter32 && last >= k2Pow32 / 2 && last < k2Pow32 && !gap_exceeds_expiry) {
    r.delta = in.value + k2Pow32 - last;
    r.reason = Reason::kWrap;
    return r;
  }
  r.delta = in.value;
  r.reason = Reason::kReset;
  return r;
}

}  // namespace stickmeter::tsdb
