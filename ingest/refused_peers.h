// The last incoming peer connections refused at the hello (a wrong name for us, a name not in
// --allow-peer, a malformed hello, ...), for /api/v1/peers and the UI: without them a HAProxy
// node whose peers section is wrong shows nowhere but in the log.
//
// Bounded: at most kMaxRefusedPeers entries, one per (name, source IP); a refusal of a pair
// already listed updates it (count, time, reason), a new pair past the bound evicts the pair
// whose last refusal is the oldest. Names and reasons come from the other side, so they are stored
// escaped (common/log.h EscapeForLog) and truncated: a hostile client can neither grow the set
// nor put raw bytes into the API's answers.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/peer_service.h"

namespace stickmeter::ingest {

inline constexpr size_t kMaxRefusedPeers = 32;
// Longest reason kept, in bytes after escaping.
inline constexpr size_t kMaxRefusalReasonBytes = 256;

class RefusedPeers {
 public:
  // A hello from `name` (as sent, possibly empty or hostile) at `ip` was refused at `now_ms`
  // (Unix ms) for `reason`.
  void Record(std::string_view name, std::string_view ip, std::string_view reason, int64_t now_ms);
  // The refusals kept, most recent first.
  std::vector<RefusedPeer> Snapshot() const;

 private:
  struct Entry {
    RefusedPeer peer;
    uint64_t order = 0;  // of its last refusal: times may repeat within a millisecond
  };
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;  // GUARDED_BY(mutex_); at most kMaxRefusedPeers
  uint64_t refusals_ = 0;       // GUARDED_BY(mutex_)
};

}  // namespace stickmeter::ingest
