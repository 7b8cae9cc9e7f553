// The last refused incoming peers (see refused_peers.h).
#include "ingest/refused_peers.h"

#include <algorithm>

#include "common/log.h"
#include "ingest/peer_admission.h"

namespace stickmeter::ingest {

namespace {

// `text` cut to `max_bytes` raw bytes and escaped as in the logs; "..." marks a cut.
std::string Printable(std::string_view text, size_t max_bytes) {
  const bool cut = text.size() > max_bytes;
  std::string out = EscapeForLog(text.substr(0, max_bytes));
  if (cut) out += "...";
  return out;
}

}  // namespace

void RefusedPeers::Record(std::string_view name, std::string_view ip, std::string_view reason,
                          int64_t now_ms) {
  std::string shown_name = Printable(name, kMaxPeerNameBytes);
  std::string shown_ip = Printable(ip, 64);
  // The reason may quote the name: escaped first, then cut, so the bound is on what is shown.
  std::string shown_reason = EscapeForLog(reason);
  if (shown_reason.size() > kMaxRefusalReasonBytes) {
    shown_reason.resize(kMaxRefusalReasonBytes);
    shown_reason += "...";
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
    return e.peer.name == shown_name && e.peer.address == shown_ip;
  });
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxRefusedPeers) {
      it = std::min_element(entries_.begin(), entries_.end(),
                            [](const Entry& a, const Entry& b) { return a.order < b.order; });
      *it = Entry{};
    } else {
      it = entries_.emplace(entries_.end());
    }
    it->peer.name = std::move(shown_name);
    it->peer.address = std::move(shown_ip);
  }
  ++it->peer.count;
  it->peer.last_ms = now_ms;
  it->peer.reason = std::move(shown_reason);
  it->order = ++refusals_;
}

std::vector<RefusedPeer> RefusedPeers::Snapshot() const {
  std::vector<Entry> entries;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    entries = entries_;
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.order > b.order; });
  std::vector<RefusedPeer> out;
  out.reserve(entries.size());
  for (auto& e : entries) out.push_back(std::move(e.peer));
  return out;
}

}  // namespace stickmeter::ingest
