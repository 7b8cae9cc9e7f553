// Status rows, live sessions and source ownership of the peer service (see peer_registry.h).
#include "ingest/peer_registry.h"

#include "common/metrics.h"
#include "common/time.h"

namespace stickmeter::ingest {

void PeerRegistry::Track(uint64_t connection_id, std::weak_ptr<PeerSession> session) {
  std::lock_guard<std::mutex> lock(mutex_);
  live_[connection_id] = Live{"", std::move(session)};
}

void PeerRegistry::Untrack(uint64_t connection_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  live_.erase(connection_id);
}

void PeerRegistry::DeclareOutgoing(const std::string& name, const std::string& address) {
  std::lock_guard<std::mutex> lock(mutex_);
  Row& row = rows_[{"out", name}];
  row.status.name = name;
  row.status.direction = "out";
  row.status.address = address;
}

void PeerRegistry::DeclareKnown(const std::string& name) {
  auto& metrics = MetricsRegistry::Global();
  KnownGauges gauges{
      &metrics.GetGauge("stickmeter_peer_connected",
                        "1 while a session of this configured peer is established, else 0",
                        {{"peer", name}}),
      &metrics.GetGauge("stickmeter_peer_last_update_seconds",
                        "Unix seconds of the last entry update received from this configured "
                        "peer, 0 = none since start",
                        {{"peer", name}})};
  std::lock_guard<std::mutex> lock(mutex_);
  known_.insert(name);
  known_gauges_[name] = gauges;
}

void PeerRegistry::UpdateConnectedGauge(const std::string& name) {
  auto gauges = known_gauges_.find(name);
  if (gauges == known_gauges_.end()) return;
  bool connected = false;
  for (const char* direction : {"in", "out"}) {
    auto row = rows_.find({direction, name});
    connected |= row != rows_.end() && row->second.status.connected;
  }
  gauges->second.connected->Set(connected ? 1 : 0);
}

std::string PeerRegistry::MetricLabel(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (known_.count(name) || labelled_.count(name)) return name;
  if (labelled_.size() >= kMaxUnknownNames) return "_other";
  labelled_.insert(name);
  return name;
}

std::string PeerRegistry::TableLabel(const std::string& table) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (table_labels_.count(table)) return table;
  if (table_labels_.size() >= kMaxTableLabels) return "_other";
  table_labels_.insert(table);
  return table;
}

void PeerRegistry::EvictUnknownRows() {
  size_t unknown = 0;
  auto oldest = rows_.end();
  for (auto it = rows_.begin(); it != rows_.end(); ++it) {
    if (it->first.first != "in" || known_.count(it->first.second)) continue;
    ++unknown;
    if (it->second.status.connected) continue;
    if (oldest == rows_.end() || it->second.status.since_ms < oldest->second.status.since_ms) {
      oldest = it;
    }
  }
  if (unknown < kMaxUnknownNames || oldest == rows_.end()) return;
  const std::string name = oldest->first.second;
  rows_.erase(oldest);
  if (rows_.find({"out", name}) == rows_.end()) {
    taught_acks_.erase(name);
    sources_.erase(name);
  }
}

PeerRegistry::Connection PeerRegistry::Connected(const std::string& direction,
                                                 const std::string& name,
                                                 const std::string& address, uint64_t connection_id,
                                                 int64_t replace_silent_ms,
                                                 std::shared_ptr<Source>* source) {
  Connection result;
  std::shared_ptr<Source> src;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const int64_t now_mono = MonotonicMs();
    auto existing = rows_.find({direction, name});
    if (direction == "in" && existing != rows_.end() && existing->second.status.connected &&
        existing->second.connection_id != connection_id &&
        now_mono - existing->second.last_activity_mono < replace_silent_ms) {
      result.refused = true;
      return result;
    }
    if (existing == rows_.end() && direction == "in" && !known_.count(name)) EvictUnknownRows();
    Row& row = rows_[{direction, name}];
    row.connection_id = connection_id;
    row.last_activity_mono = now_mono;
    row.status.name = name;
    row.status.direction = direction;
    row.status.address = address;
    row.status.connected = true;
    row.status.since_ms = NowUnixMs();
    row.status.last_error.clear();
    UpdateConnectedGauge(name);
    for (auto& [id, live] : live_) {
      if (id == connection_id) {
        live.name = name;
      } else if (live.name == name) {
        if (auto s = live.session.lock()) result.replaced.push_back(std::move(s));
      }
    }
    auto& slot = sources_[name];
    if (!slot) slot = std::make_shared<Source>();
    src = slot;
    // From now on only this connection may submit batches of this source. Set under mutex_ so
    // that RevokeAllSources() cannot slip between the check and the store.
    std::lock_guard<std::mutex> source_lock(src->mutex);
    src->owner = revoked_ ? 0 : connection_id;
  }
  *source = std::move(src);
  return result;
}

void PeerRegistry::Received(const std::string& direction, const std::string& name, int64_t now_ms,
                            uint64_t updates) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = rows_.find({direction, name});
  if (it == rows_.end()) return;
  it->second.last_activity_mono = MonotonicMs();
  it->second.status.last_message_ms = now_ms;
  it->second.status.updates += updates;
  if (updates == 0) return;
  auto gauges = known_gauges_.find(name);
  if (gauges != known_gauges_.end()) gauges->second.last_update->Set(now_ms / 1000);
}

void PeerRegistry::Disconnected(const std::string& direction, const std::string& name,
                                uint64_t connection_id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = rows_.find({direction, name});
  // A newer connection of the same peer may already own the row.
  if (it == rows_.end() || it->second.connection_id != connection_id) return;
  it->second.status.connected = false;
  it->second.status.since_ms = NowUnixMs();
  it->second.status.last_error = reason;
  UpdateConnectedGauge(name);
}

void PeerRegistry::Warn(const std::string& direction, const std::string& name,
                        const std::string& warning) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = rows_.find({direction, name});
  if (it != rows_.end()) it->second.status.warning = warning;
}

void PeerRegistry::ConnectFailed(const std::string& name, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = rows_.find({"out", name});
  if (it == rows_.end() || it->second.status.connected) return;
  it->second.status.last_error = reason;
}

std::vector<PeerStatus> PeerRegistry::Snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PeerStatus> out;
  out.reserve(rows_.size());
  for (const auto& [key, row] : rows_) out.push_back(row.status);
  return out;
}

std::vector<std::shared_ptr<PeerSession>> PeerRegistry::LiveSessions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<PeerSession>> out;
  for (const auto& [id, live] : live_) {
    if (auto s = live.session.lock()) out.push_back(std::move(s));
  }
  return out;
}

void PeerRegistry::RevokeAllSources() {
  std::lock_guard<std::mutex> lock(mutex_);
  revoked_ = true;
  for (auto& [name, source] : sources_) {
    std::lock_guard<std::mutex> source_lock(source->mutex);
    source->owner = 0;
  }
}

void PeerRegistry::SetTaughtAck(const std::string& name, size_t table, TaughtAck ack) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& acks = taught_acks_[name];
  if (acks.size() <= table) acks.resize(table + 1);
  acks[table] = ack;
}

std::vector<PeerRegistry::TaughtAck> PeerRegistry::TaughtAcks(const std::string& name,
                                                              size_t tables) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<TaughtAck> out(tables);
  auto it = taught_acks_.find(name);
  if (it == taught_acks_.end()) return out;
  for (size_t i = 0; i < tables && i < it->second.size(); ++i) out[i] = it->second[i];
  return out;
}

}  // namespace stickmeter::ingest
