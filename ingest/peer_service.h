// stickmeter as a full HAProxy peer: the network side of ingest.
//
// A PeerService accepts HAProxy peer connections on one address (HAProxy's `peers` section names
// us with `server <local_name> ADDR:PORT`) and dials out to HAProxy peers binds (`--connect`),
// optionally over TLS in both directions. Each connection is one session: it checks the hello,
// decodes the stick-table stream, hands every read pass to the UpdateSink as one UpdateBatch and
// acknowledges updates to HAProxy only once the sink reports them durable, so HAProxy re-sends
// whatever was not stored. Sessions answer resync requests, confirm resyncs, send heartbeats,
// drop silent peers and, for reconciliation, periodically ask every peer for a full resync.
//
// Threading: the service runs on the caller's io_context (any number of threads may run it).
// Every connection lives on its own strand; the acceptor, each connector and the reconciliation
// timer too. Start() is called once, before or while the io_context runs. Stop(), Snapshot()
// and RequestResyncAll() are thread-safe. The io_context, the sink and the service must outlive
// every done callback the sink still owes (the sink calls them before it is closed).
//
// Ownership: the service owns its sessions and timers; it only refers to the io_context and the
// sink. Destroying the service stops it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "ingest/sink.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace stickmeter::ingest {

// One outgoing peer: `--connect lb1@HOST:PORT`. `name` is that HAProxy's local peer name (its -L
// or `localpeer`), sent as hello line 2 and used as the source of its updates.
class TaughtTables;

struct PeerEndpoint {
  std::string name;
  std::string host;
  uint16_t port = 0;
};

// HAProxy peers use `ssl crt X ca-file Y verify required`.
struct TlsOptions {
  bool enabled = false;
  std::string cert_file;  // PEM chain: our certificate (required to listen with TLS)
  std::string key_file;   // PEM key; may equal cert_file; empty = in cert_file
  std::string ca_file;    // CA bundle used to verify the other side
  // Listening: require a client certificate signed by ca_file. Connecting: verify the server's
  // certificate against ca_file (and server_name when set).
  bool verify_peer = false;
  std::string server_name;  // connecting: SNI and the name the certificate must carry
  // Listening (with verify_peer): the client certificate must name the peer it says it is in
  // its hello, as a DNS subjectAltName or, without any, its common name. Without it any
  // certificate of the CA may hello under any name.
  bool verify_name = false;
};

struct PeerServiceOptions {
  // What HAProxy's peers section calls us: incoming hello line 2 must equal it; sent as line 3.
  // Default: "stickmeter".
  std::string local_name = "stickmeter";
  // Accept incoming peers. Default: true, on 127.0.0.1:20001 (port 0 = any free port).
  bool listen = true;
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 20001;
  std::vector<PeerEndpoint> connect;  // outgoing peers. Default: none
  // Names accepted on hello line 3. Default: empty = any name.
  std::vector<std::string> allowed_peers;
  TlsOptions listen_tls, connect_tls;
  // Reconciliation: ask every connected peer for a full resync this often; 0 = off.
  // Default: 3600000 (1 h).
  int64_t resync_interval_ms = 3600000;
  // Also ask right after each UTC month boundary, so a billing period closes on full state.
  // Default: true.
  bool resync_at_month_end = true;

  // Largest message payload accepted; larger ones close the connection. HAProxy's own limit is
  // tune.bufsize (16384). Default: 65536.
  uint64_t max_message_size = 65536;
  // Time allowed for TLS and the hello exchange. Default: 5000.
  int64_t handshake_timeout_ms = 5000;
  // A peer that sends nothing for this long is dropped (HAProxy sends a heartbeat every 3 s).
  // Default: 10000.
  int64_t idle_timeout_ms = 10000;
  // How often we send a heartbeat: HAProxy resets a peer silent for 5 s. Default: 1500.
  int64_t heartbeat_interval_ms = 1500;
  // Reconnect delay of outgoing peers: doubles from min to max after each failure, jittered
  // down by up to half. Default: 500 and 30000.
  int64_t backoff_min_ms = 500;
  int64_t backoff_max_ms = 30000;
  // Batches of one connection waiting for the sink; at the limit the session stops reading, so
  // HAProxy buffers instead of us. Default: 4.
  uint32_t max_inflight_batches = 4;
  // While max_inflight_batches wait, reads go on into one open batch up to this many entry
  // updates, submitted when the sink finishes one: bigger group commits under load. Bounded per
  // connection and, over all connections, by max_held_entries_total (~200 bytes per entry).
  // Default: 65536 and 262144.
  uint32_t max_held_entries = 65536;
  uint64_t max_held_entries_total = 262144;
  // The same bound in bytes (keys, server names, values; estimated), counting a connection's
  // open batch and its batches in flight at the sink: past it the session stops reading until
  // the sink finishes one. Entry counts alone do not bound memory: each update that refers to a
  // server_key dictionary slot costs a few bytes on the wire but carries the slot's whole
  // value. Default: 32 MiB per connection, 256 MiB over all connections.
  uint64_t max_held_bytes = uint64_t{32} << 20;
  uint64_t max_held_bytes_total = uint64_t{256} << 20;
  // Incoming connections open at once (during the handshake or after); more are closed at once.
  // Default: 256.
  uint32_t max_connections = 256;
  // Of those, connections that have not finished their TLS handshake and hello yet (each for at
  // most handshake_timeout_ms), and connections from one source address: a client that opens
  // connections and never completes them cannot take every slot. Default: 32 and 16.
  uint32_t max_handshaking = 32;
  uint32_t max_connections_per_address = 16;
  // A second incoming session with the name of an established one is refused with status 300
  // ("try again later", HAProxy retries in 5 s) while the established one received something
  // within this many ms; an established session silent for longer is replaced. 0: a newer
  // session always replaces the established one, as HAProxy does (a soft reload's new process
  // connects while the old one's session may still be alive). Default: 0.
  int64_t replace_after_silence_ms = 0;

  // Teaching: the tables stickmeter sends to every connected peer (DEFINEs and updates of its
  // own), or null to only listen. What a peer sends for a taught table is acknowledged and
  // dropped. Must outlive the service. Default: null.
  TaughtTables* taught = nullptr;
  // Tables whose frequency counters are handed to the sink as sent, too (EntryUpdate::rates).
  // Default: none.
  std::vector<std::string> raw_rate_tables;
  // Told when a session owns its source and when it ends (data completeness). Must outlive the
  // service. Default: null.
  SourceObserver* sources = nullptr;
};

// One row of /api/v1/peers.
struct PeerStatus {
  std::string name;       // the peer's name (hello line 3 for incoming, --connect name outgoing)
  std::string direction;  // "in" | "out"
  std::string address;    // "host:port" of the other side
  bool connected = false;
  int64_t since_ms = 0;         // Unix ms of the last connect (or disconnect, when not connected)
  int64_t last_message_ms = 0;  // Unix ms of the last bytes received, 0 = never
  uint64_t updates = 0;         // entry updates received since start
  std::string last_error;       // why the last connection ended or failed, "" = none
  // A topology problem seen on this peer's stream, "" = none. Set when a full resync carries
  // entries the node learned from other peers: its peers section is shared with other HAProxy
  // nodes, and totals summed over nodes are then not exact (docs/operations.md).
  std::string warning;
};

// An incoming connection refused at the hello, for /api/v1/peers (kept: the last 32 by name and
// source IP, see refused_peers.h).
struct RefusedPeer {
  std::string name;     // hello line 3 as sent, escaped and cut to 64 bytes; "" = none parsed
  std::string address;  // the source IP
  std::string reason;   // why it was refused (escaped)
  uint64_t count = 0;   // refusals of this name from this address since start
  int64_t last_ms = 0;  // Unix ms of the last one
};

class PeerService {
 public:
  PeerService(boost::asio::io_context& io, PeerServiceOptions options, UpdateSink& sink);
  ~PeerService();
  PeerService(const PeerService&) = delete;
  PeerService& operator=(const PeerService&) = delete;

  // Binds the listener (when options.listen) and starts the connectors and timers. Returns
  // InvalidArgument for unusable options or TLS files, IoError naming the address when it cannot
  // bind (e.g. port in use). Call once.
  Status Start();
  // Stops accepting, closes every session, cancels timers and reconnects. Safe from any thread,
  // idempotent. Batches already submitted still complete; their ACKs are not sent. Once it
  // returns no new batch is submitted to the sink.
  void Stop();
  // Every configured outgoing peer (connected or not) and every incoming peer seen since Start.
  // Thread-safe.
  std::vector<PeerStatus> Snapshot() const;
  // The last incoming connections refused at the hello, most recent first. Thread-safe.
  std::vector<RefusedPeer> Refused() const;
  // Asks every connected peer for a full resync now. Thread-safe.
  void RequestResyncAll();
  // The bound listening port (useful with port 0), 0 before Start or without a listener.
  uint16_t listen_port() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace stickmeter::ingest
