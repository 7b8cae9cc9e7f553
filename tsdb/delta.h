// The delta engine: the rules 1-6 of docs/counting.md as one pure function.
//
// Given the stored state of a counter series (or none) and a newly received absolute value,
// returns the delta to record, why, and the state to store. No I/O, no shared state: thread-safe.
// The caller commits the returned state and the delta in one atomic write.
#pragma once

#include <cstdint>
#include <optional>

#include "tsdb/format.h"

namespace stickmeter::tsdb {

struct DeltaInput {
  uint64_t value = 0;            // the absolute value received
  bool counter32 = true;         // wraps at 2^32 in HAProxy
  int64_t received_ms = 0;       // when it arrived
  uint64_t connection_id = 0;    // the peer connection it came on
  uint32_t source_epoch = 0;     // the source's current restart epoch
  uint64_t expire_ms = 0;        // the table's expire; 0 = entries never expire
  int64_t expiry_margin_ms = 0;  // StoreOptions::expiry_margin_ms
};

struct DeltaResult {
  uint64_t delta = 0;  // 0: nothing to record (only the state changes)
  format::Reason reason = format::Reason::kIncrement;
  format::SeriesValue next;  // the state to store
};

// Applies the rules in order: restart, first, expired, increment, wrap, reset.
DeltaResult ComputeDelta(const std::optional<format::SeriesValue>& prev, const DeltaInput& in);

}  // namespace stickmeter::tsdb
