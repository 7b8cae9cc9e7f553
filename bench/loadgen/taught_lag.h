// The teach lag as the synthetic peers see it (stickmeter-loadgen --taught-table).
//
// With `stickmeter serve --aggregate /loadgen`, every push of a key raises the key's sum over
// the peers by one; stickmeter teaches that sum back to every peer. For each push and each peer,
// the lag is the time from the push to the first taught update the peer receives whose value
// covers it (coalescing may cover several pushes with one update).
//
// Not thread-safe: the load generator runs on one thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

namespace stickmeter::loadgen {

class TaughtLag {
 public:
  TaughtLag(uint32_t keys, int peers);
  // One push of `key` (its sum over peers grew by one) handed to the kernel at `now_ns`.
  void Pushed(uint32_t key, int64_t now_ns);
  // Peer `peer` received the taught sum `value` of `key` at `now_ns`.
  void Taught(int peer, uint32_t key, uint64_t value, int64_t now_ns);

  // One sample per (push, peer) covered so far, in ns, unsorted.
  const std::vector<int64_t>& samples() const { return samples_; }
  uint64_t updates() const { return updates_; }
  // Pushes some peer has not been taught yet.
  uint64_t Uncovered() const;

 private:
  struct Push {
    uint64_t sum;
    int64_t at_ns;
  };
  std::vector<uint64_t> sums_;
  std::vector<std::vector<Push>> log_;         // per key, in push order
  std::vector<std::vector<uint32_t>> cursor_;  // per peer, per key: pushes already covered
  std::vector<int64_t> samples_;
  uint64_t updates_ = 0;
};

// The key index of a generated key name (prefix + 7 digits), or UINT32_MAX.
uint32_t KeyIndex(std::string_view name, std::string_view prefix);

}  // namespace stickmeter::loadgen
