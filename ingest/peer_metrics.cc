// Metrics of the peer service and connection ids (see peer_session.h).
#include <atomic>

#include "common/time.h"
#include "ingest/peer_session.h"

namespace stickmeter::ingest {

PeerMetrics& PeerMetrics::Get() {
  static PeerMetrics* metrics = [] {
    auto& r = MetricsRegistry::Global();
    return new PeerMetrics{
        r.GetGauge("stickmeter_peers_connected", "Peer sessions past the hello"),
        r.GetGauge("stickmeter_peer_held_entries",
                   "Entry updates read while the store is busy, waiting in open batches"),
        r.GetGauge("stickmeter_peer_batch_bytes",
                   "Estimated bytes of peer batches open or waiting for the store"),
        r.GetCounter("stickmeter_peer_resyncs_requested_total",
                     "Full resyncs stickmeter asked its peers for"),
        r.GetCounter("stickmeter_peer_bytes_received_total",
                     "Bytes received on peer sessions after the hello"),
    };
  }();
  return *metrics;
}

// Every reason label ProtocolErrors() is called with (peer_service.cc, peer_session.cc).
constexpr const char* kProtocolErrorReasons[] = {
    "connection_limit", "handshake", "handshake_timeout", "idle_timeout", "malformed", "peer_error",
    "slow_reader",      "tls",       "too_large"};

void PeerMetrics::ExportAtZero(const std::vector<std::string>& known_names) {
  Get();
  for (const char* reason : kProtocolErrorReasons) ProtocolErrors(reason);
  for (const auto& name : known_names) UpdatesReceived(name);
}

Counter& PeerMetrics::ProtocolErrors(const std::string& reason) {
  return MetricsRegistry::Global().GetCounter(
      "stickmeter_peer_protocol_errors_total",
      "Peer connections closed for a protocol violation, by reason", {{"reason", reason}});
}

Counter& PeerMetrics::Connections(const std::string& direction, int status) {
  return MetricsRegistry::Global().GetCounter(
      "stickmeter_peer_connections_total",
      "Peer hellos by direction and status code (200 = accepted)",
      {{"direction", direction}, {"status", std::to_string(status)}});
}

Counter& PeerMetrics::UpdatesReceived(const std::string& peer) {
  return MetricsRegistry::Global().GetCounter("stickmeter_peer_updates_received_total",
                                              "Entry updates received, by peer", {{"peer", peer}});
}

Counter& PeerMetrics::TaughtSent(const std::string& peer) {
  return MetricsRegistry::Global().GetCounter("stickmeter_taught_updates_sent_total",
                                              "Updates of taught tables sent, by peer",
                                              {{"peer", peer}});
}

Counter& PeerMetrics::TaughtAcked(const std::string& peer) {
  return MetricsRegistry::Global().GetCounter(
      "stickmeter_taught_updates_acked_total",
      "Updates of taught tables the peer acknowledged, by peer", {{"peer", peer}});
}

Histogram& PeerMetrics::TeachLag() {
  static Histogram& lag = MetricsRegistry::Global().GetHistogram(
      "stickmeter_teach_lag_seconds",
      "From receiving the update that changed a taught value to handing the taught update to a "
      "peer");
  return lag;
}

uint64_t NextConnectionId() {
  // Unique across restarts as long as a restart takes longer than (counter >> 20) ms.
  static const uint64_t base = static_cast<uint64_t>(NowUnixMs()) << 20;
  static std::atomic<uint64_t> counter{0};
  return base + counter.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace stickmeter::ingest
