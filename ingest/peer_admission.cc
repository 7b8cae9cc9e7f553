// Admission limits and log hygiene for peer connections (see peer_admission.h).
#include "ingest/peer_admission.h"

#include "common/time.h"

namespace stickmeter::ingest {

bool ValidPeerName(std::string_view name) {
  if (name.empty() || name.size() > kMaxPeerNameBytes) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string PeerAdmission::Admit(const std::string& ip) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (open_ >= limits_.max_connections) {
    return std::to_string(limits_.max_connections) + " connections already open";
  }
  if (handshaking_ >= limits_.max_handshaking) {
    return std::to_string(limits_.max_handshaking) + " connections already in their handshake";
  }
  uint32_t& from_ip = per_address_[ip];
  if (from_ip >= limits_.max_per_address) {
    return std::to_string(limits_.max_per_address) + " connections already open from " + ip;
  }
  ++from_ip;
  ++open_;
  ++handshaking_;
  return "";
}

void PeerAdmission::Established() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (handshaking_ > 0) --handshaking_;
}

void PeerAdmission::Closed(const std::string& ip, bool handshaking) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (open_ > 0) --open_;
  if (handshaking && handshaking_ > 0) --handshaking_;
  auto it = per_address_.find(ip);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

uint32_t PeerAdmission::open() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return open_;
}

bool LogLimiter::Allow(const std::string& key, uint64_t* suppressed) {
  const int64_t now = MonotonicMs();
  std::lock_guard<std::mutex> lock(mutex_);
  Window& w = windows_[key];
  if (now - w.start_ms >= 1000) {
    w.start_ms = now;
    w.lines = 0;
  }
  if (w.lines >= per_second_) {
    ++w.suppressed;
    return false;
  }
  ++w.lines;
  *suppressed = w.suppressed;
  w.suppressed = 0;
  return true;
}

}  // namespace stickmeter::ingest
