// Implementation of taught_lag.h.
#include "bench/loadgen/taught_lag.h"

#include <cstdint>

namespace stickmeter::loadgen {

TaughtLag::TaughtLag(uint32_t keys, int peers)
    : sums_(keys, 0),
      log_(keys),
      cursor_(static_cast<size_t>(peers), std::vector<uint32_t>(keys, 0)) {}

void TaughtLag::Pushed(uint32_t key, int64_t now_ns) {
  log_[key].push_back({++sums_[key], now_ns});
}

void TaughtLag::Taught(int peer, uint32_t key, uint64_t value, int64_t now_ns) {
  ++updates_;
  if (key >= log_.size() || peer < 0 || static_cast<size_t>(peer) >= cursor_.size()) return;
  const auto& log = log_[key];
  uint32_t& next = cursor_[static_cast<size_t>(peer)][key];
  while (next < log.size() && log[next].sum <= value) {
    samples_.push_back(now_ns - log[next].at_ns);
    ++next;
  }
}

uint64_t TaughtLag::Uncovered() const {
  uint64_t n = 0;
  for (const auto& peer : cursor_) {
    for (size_t k = 0; k < peer.size(); ++k) n += log_[k].size() - peer[k];
  }
  return n;
}

uint32_t KeyIndex(std::string_view name, std::string_view prefix) {
  if (!name.starts_with(prefix) || name.size() != prefix.size() + 7) return UINT32_MAX;
  uint32_t k = 0;
  for (char c : name.substr(prefix.size())) {
    if (c < '0' || c > '9') return UINT32_MAX;
    k = k * 10 + static_cast<uint32_t>(c - '0');
  }
  return k;
}

}  // namespace stickmeter::loadgen
