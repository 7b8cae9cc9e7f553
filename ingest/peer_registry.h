// What the peer service knows about its peers: status rows for /api/v1/peers, the live sessions
// (for Stop and resyncs) and, per source name, which connection currently owns that source.
//
// One source (a HAProxy process, by its peer name) must feed the sink from one connection at a
// time: the sink derives deltas from absolute values, so a stale connection submitting after a
// newer one would count old values again. When a connection of a source completes its hello it
// becomes the source's owner; older connections of that source are closed and can no longer
// submit (the ownership check and the Submit happen under the source's mutex).
//
// Thread-safe. Sessions are held by weak reference only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "ingest/peer_service.h"

namespace stickmeter::ingest {

class PeerSession;

class PeerRegistry {
 public:
  struct Source {
    std::mutex mutex;
    uint64_t owner = 0;  // connection id allowed to submit; GUARDED_BY(mutex)
  };

  // Every session from its start to its end, for Stop() and resync requests.
  void Track(uint64_t connection_id, std::weak_ptr<PeerSession> session);
  void Untrack(uint64_t connection_id);

  // An outgoing peer from the configuration: listed even before it ever connects.
  void DeclareOutgoing(const std::string& name, const std::string& address);

  // Names from the configuration (--allow-peer, --connect): their status rows and metric
  // series are never evicted, and only they have the per-peer gauges
  // stickmeter_peer_connected{peer} (1 while a session of the name is established) and
  // stickmeter_peer_last_update_seconds{peer} (Unix seconds of the last entry update received,
  // 0 = none since start), so a made-up name never adds a series.
  void DeclareKnown(const std::string& name);
  // Status rows of other incoming names that are not connected, and distinct metric series
  // (`peer` label) of such names, kept at most: with "any peer name", every made-up name would
  // otherwise stay forever. The oldest disconnected row goes first; names past the bound share
  // the series of MetricLabel() "_other".
  static constexpr size_t kMaxUnknownNames = 256;
  // The `peer` label of metric series for `name`.
  std::string MetricLabel(const std::string& name);
  // The `table` label of metric series for a table named `table` by a peer: distinct names are
  // kept up to kMaxTableLabels, later ones share "_other" (a peer names its tables itself).
  static constexpr size_t kMaxTableLabels = 256;
  std::string TableLabel(const std::string& table);

  struct Connection {
    // An incoming session was refused: the live session of that name is not silent.
    bool refused = false;
    // The sessions of the same name it replaces (the caller closes them).
    std::vector<std::shared_ptr<PeerSession>> replaced;
  };
  // A session of `direction` ("in"/"out") finished its hello as `name`. Makes it the source's
  // owner, unless it is incoming and an established incoming session of that name received
  // something within the last `replace_silent_ms` ms: then it is refused and nothing changes.
  Connection Connected(const std::string& direction, const std::string& name,
                       const std::string& address, uint64_t connection_id,
                       int64_t replace_silent_ms, std::shared_ptr<Source>* source);
  // Bytes arrived on an established session; `updates` entry updates among them.
  void Received(const std::string& direction, const std::string& name, int64_t now_ms,
                uint64_t updates);
  // An established session ended.
  void Disconnected(const std::string& direction, const std::string& name, uint64_t connection_id,
                    const std::string& reason);
  // An outgoing attempt failed before the hello succeeded.
  // Records a topology warning for the peer's status row (kept across reconnects).
  void Warn(const std::string& direction, const std::string& name, const std::string& warning);
  void ConnectFailed(const std::string& name, const std::string& reason);

  // Teaching: what the peer of this name acknowledged of each taught table, kept for its next
  // connection so that only what it did not acknowledge is sent again.
  struct TaughtAck {
    uint64_t seq = 0;      // the last sequence number acknowledged
    uint64_t version = 0;  // of this table definition
  };
  void SetTaughtAck(const std::string& name, size_t table, TaughtAck ack);
  // One per table (`tables` of them), zero where nothing was acknowledged.
  std::vector<TaughtAck> TaughtAcks(const std::string& name, size_t tables) const;

  std::vector<PeerStatus> Snapshot() const;
  std::vector<std::shared_ptr<PeerSession>> LiveSessions() const;
  // The service is stopping: from the moment this returns no session may submit a batch (a
  // session whose close is still queued finds itself no longer the owner), and no later hello
  // makes one an owner again.
  void RevokeAllSources();

 private:
  struct Row {
    PeerStatus status;
    uint64_t connection_id = 0;      // the connection the row currently describes
    int64_t last_activity_mono = 0;  // its connect or last bytes received
  };
  // Drops the oldest disconnected incoming row of an unknown name while there are too many.
  void EvictUnknownRows();  // REQUIRES(mutex_)
  // Sets stickmeter_peer_connected of `name`, when it is a known name, from its rows.
  void UpdateConnectedGauge(const std::string& name);  // REQUIRES(mutex_)
  using Key = std::pair<std::string, std::string>;     // direction, name

  mutable std::mutex mutex_;
  std::map<Key, Row> rows_;                                 // GUARDED_BY(mutex_)
  std::map<std::string, std::shared_ptr<Source>> sources_;  // GUARDED_BY(mutex_)
  struct Live {
    std::string name;  // empty until the hello succeeded
    std::weak_ptr<PeerSession> session;
  };
  std::map<uint64_t, Live> live_;                              // GUARDED_BY(mutex_)
  std::map<std::string, std::vector<TaughtAck>> taught_acks_;  // GUARDED_BY(mutex_)
  std::set<std::string> known_;                                // GUARDED_BY(mutex_)
  struct KnownGauges {
    Gauge* connected = nullptr;    // owned by the process's MetricsRegistry
    Gauge* last_update = nullptr;  // likewise
  };
  std::map<std::string, KnownGauges> known_gauges_;  // GUARDED_BY(mutex_)
  bool revoked_ = false;                             // GUARDED_BY(mutex_)
  std::set<std::string> labelled_;      // unknown names with their own series; GUARDED_BY(mutex_)
  std::set<std::string> table_labels_;  // tables with their own series; GUARDED_BY(mutex_)
};

}  // namespace stickmeter::ingest
