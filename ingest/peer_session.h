// One peers-protocol connection (either direction), and the state its sessions share.
//
// Internal to ingest: PeerService is the public entry point. A PeerSession owns its stream
// (TCP, optionally TLS), read buffer and Decoder, and runs every step on the stream's strand:
// TLS handshake, hello (answering or checking the status line), then the message loop. Each
// read pass becomes one UpdateBatch; the sink's done callback is posted back to the strand, and
// only then are that batch's updates acknowledged to the peer. Other threads reach a session
// through Close() and RequestResync(), which post to its strand.
//
// Ownership: sessions are shared_ptr-owned by their pending operations; the PeerRegistry keeps
// weak references for Stop(), resyncs and Snapshot(). Everything they share lives in a
// PeerContext owned jointly by the service and its sessions.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "ingest/codec.h"
#include "ingest/peer_admission.h"
#include "ingest/peer_registry.h"
#include "ingest/peer_service.h"
#include "ingest/refused_peers.h"
#include "ingest/sink.h"
#include "ingest/taught_tables.h"

namespace stickmeter::ingest {

// A TCP connection, optionally wrapped in TLS, behind one read/write interface.
class PeerStream {
 public:
  using Tcp = boost::asio::ip::tcp;
  using TlsStream = boost::asio::ssl::stream<Tcp::socket>;

  explicit PeerStream(Tcp::socket socket) : plain_(std::move(socket)) {}
  PeerStream(Tcp::socket socket, boost::asio::ssl::context& tls)
      : tls_(std::make_unique<TlsStream>(std::move(socket), tls)) {}

  bool is_tls() const { return tls_ != nullptr; }
  TlsStream* tls() { return tls_.get(); }
  Tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  auto get_executor() { return socket().get_executor(); }

  template <class Handler>
  void AsyncReadSome(boost::asio::mutable_buffer buffer, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffer, std::forward<Handler>(handler));
    } else {
      plain_->async_read_some(buffer, std::forward<Handler>(handler));
    }
  }
  // Writes all of `buffer`.
  template <class Handler>
  void AsyncWrite(boost::asio::const_buffer buffer, Handler&& handler) {
    if (tls_) {
      boost::asio::async_write(*tls_, buffer, std::forward<Handler>(handler));
    } else {
      boost::asio::async_write(*plain_, buffer, std::forward<Handler>(handler));
    }
  }

 private:
  std::optional<Tcp::socket> plain_;
  std::unique_ptr<TlsStream> tls_;
};

// Metrics of the peer service, registered once per process.
struct PeerMetrics {
  Gauge& connected;
  Gauge& held_entries;  // mirrors PeerContext::held_entries of every service in the process
  Gauge& batch_bytes;   // mirrors PeerContext::batch_bytes likewise
  Counter& resyncs_requested;
  Counter& bytes_received;
  static PeerMetrics& Get();
  static Counter& ProtocolErrors(const std::string& reason);
  static Counter& Connections(const std::string& direction, int status);
  static Counter& UpdatesReceived(const std::string& peer);
  // Teaching: updates of taught tables sent to / acknowledged by a peer, and the teach lag
  // (when the change that caused a taught update was received -> the update handed to the peer).
  static Counter& TaughtSent(const std::string& peer);
  static Counter& TaughtAcked(const std::string& peer);
  static Histogram& TeachLag();
  // Registers, at 0, the series an operator alerts on before their first event: the connected
  // gauge, stickmeter_peer_protocol_errors_total for every reason label, and the updates
  // counter of each peer named in advance (`known_names`: --allow-peer and --connect).
  static void ExportAtZero(const std::vector<std::string>& known_names);
};

// State shared by the service and all its sessions.
struct PeerContext {
  PeerServiceOptions options;
  UpdateSink* sink = nullptr;
  PeerRegistry registry;
  RefusedPeers refused;  // incoming hellos refused, for /api/v1/peers
  std::shared_ptr<boost::asio::ssl::context> listen_tls;   // null = plain TCP
  std::shared_ptr<boost::asio::ssl::context> connect_tls;  // null = plain TCP
  std::atomic<bool> stopped{false};
  // Incoming connections by state and source address; set once the options are.
  std::optional<PeerAdmission> admission;
  // Per-connection failure lines, by reason: at most kLogLinesPerSecond each.
  LogLimiter log_limiter{10};
  // Entry updates all sessions hold in open batches beyond their in-flight limit.
  std::atomic<uint64_t> held_entries{0};
  // Estimated bytes of every session's open batch and batches in flight at the sink.
  std::atomic<uint64_t> batch_bytes{0};
};

// Unix ms of the first instant of the UTC month after the one containing `unix_ms`.
int64_t NextUtcMonthStartMs(int64_t unix_ms);

// A connection id unique across the process and its restarts: start time (ms) << 20 + counter.
uint64_t NextConnectionId();

class PeerSession : public std::enable_shared_from_this<PeerSession> {
 public:
  enum class Direction { kIn, kOut };
  static std::string_view DirectionName(Direction d) { return d == Direction::kIn ? "in" : "out"; }
  // Called once on the session's strand when it ends: whether the hello succeeded, and why.
  using ClosedCallback = std::function<void(bool established, const std::string& reason)>;

  // `peer_name`: for outgoing sessions the endpoint's name (sent as hello line 2); ignored for
  // incoming ones, which learn it from the hello.
  PeerSession(std::shared_ptr<PeerContext> context, PeerStream stream, Direction direction,
              std::string address, std::string peer_name, ClosedCallback on_closed);
  ~PeerSession();

  // Begins the TLS handshake / hello. Call once.
  void Start();
  // Closes the connection (no ACK for batches still in flight). Thread-safe, idempotent.
  void Close(std::string reason);
  // Sends resync_request now if the session is established. Thread-safe.
  void RequestResync();

  uint64_t connection_id() const { return connection_id_; }
  // An incoming session counted in PeerContext::admission under this source address; released
  // when it closes. Call before Start().
  void SetAdmitted(std::string ip) { admitted_ip_ = std::move(ip); }

 private:
  class Handler;
  friend class Handler;
  // kDraining: a last message (refusal, error) is being written, then the connection closes.
  enum class Phase { kTls, kHello, kRunning, kDraining, kClosed };
  struct TableAck {
    uint64_t table_id;
    uint32_t update_id;
  };

  void StartHello();
  void ReadHello();
  void OnHelloBytes();
  void AnswerHello(int code, const std::string& reason);
  // Whether this TLS connection's client certificate names `name` (false without TLS).
  bool CertificateNames(const std::string& name);
  void OnEstablished();
  void ReadMessages();
  // True while the sink holds max_inflight_batches of ours and the open batch is full (or all
  // sessions together hold their limit): the peer's data then waits in its socket (and HAProxy
  // buffers) instead of in our memory.
  bool HoldingReads() const {
    const PeerServiceOptions& o = context_->options;
    if (inflight_ > 0 &&
        (batch_bytes_ + inflight_bytes_ >= o.max_held_bytes ||
         context_->batch_bytes.load(std::memory_order_relaxed) >= o.max_held_bytes_total)) {
      return true;
    }
    return inflight_ >= o.max_inflight_batches &&
           (batch_entries_ >= o.max_held_entries ||
            context_->held_entries.load(std::memory_order_relaxed) >= o.max_held_entries_total);
  }
  // Returns what this session counts in PeerContext::held_entries.
  void ReleaseHeld();
  // Changes PeerContext::batch_bytes and its gauge.
  void AddBatchBytes(int64_t delta);
  void OnRead(const boost::system::error_code& ec, size_t n);
  bool PrepareReadSpace();
  void FlushBatch();
  void OnBatchDone(const Status& status, const std::vector<TableAck>& acks, uint64_t bytes);
  void Send(std::string bytes);
  void CloseAfterSending(std::string bytes, std::string label, std::string reason);
  void DoWrite();
  void Tick();
  // `error_label` non-empty marks a protocol error in the log line.
  void DoClose(std::string reason, const std::string& error_label);
  void ProtocolError(const std::string& reason_label, const std::string& detail);
  std::string Describe() const;
  void ReleaseAdmission();

  // Decoder callbacks (on the strand).
  void OnControl(ControlType type);
  void OnDefine(const TableDefinition& table);
  void OnUpdate(const EntryUpdateView& update);
  void OnAck(uint64_t table_id, uint32_t update_id);

  // Teaching (PeerServiceOptions::taught), on the strand.
  void StartTeaching();
  void StopTeaching();
  // Sends what changed in the taught tables, while our unsent output stays small; answers a
  // pending resync request once everything up to it is out.
  void PumpTeach();
  void ScheduleTeach();
  bool IsTaughtTable(const TableDefinition& table);
  // Reports (once per table) a full resync carrying entries the node learned from other peers.
  void CheckLearnedEntry(const EntryUpdateView& update);

  std::shared_ptr<PeerContext> context_;
  PeerStream stream_;
  const Direction direction_;
  const std::string address_;
  std::string peer_name_;
  // Incoming: hello line 3 as sent, before it was checked; recorded if the hello is refused.
  std::string claimed_name_;
  ClosedCallback on_closed_;
  const uint64_t connection_id_;
  boost::asio::steady_timer deadline_;  // handshake deadline, then the last message's
  boost::asio::steady_timer ticker_;    // heartbeats and idle checks

  Phase phase_ = Phase::kTls;
  bool established_ = false;
  std::optional<std::string> admitted_ip_;  // counted in context_->admission until closed
  std::shared_ptr<PeerRegistry::Source> source_;

  // Read side. Bytes [begin_, end_) of buffer_ are received but not yet consumed.
  std::vector<uint8_t> buffer_;
  size_t begin_ = 0, end_ = 0;
  size_t max_buffer_ = 0;
  bool reading_ = false;
  Decoder decoder_;
  int64_t last_receive_mono_ = 0;
  int64_t receive_unix_ms_ = 0;  // when the current read pass returned
  Counter* updates_counter_ = nullptr;

  // The batch being filled: by the current read pass, or, while max_inflight_batches wait for
  // the sink, by every read until the sink takes one (then it goes as one bigger batch).
  UpdateBatch batch_;
  std::map<uint64_t, uint32_t> batch_acks_;  // sender table id -> last update id in the batch
  size_t batch_entries_ = 0;
  size_t last_batch_entries_ = 0;  // in the first table of the last batch: the next one's room
  // Estimated bytes of the open batch and of the batches in flight, also counted in
  // context_->batch_bytes.
  uint64_t batch_bytes_ = 0;
  uint64_t inflight_bytes_ = 0;
  uint64_t entries_decoded_ = 0;  // over the connection's life
  uint64_t held_ = 0;             // of batch_entries_, those counted in context_->held_entries
  bool pending_restart_ = false;
  int64_t pending_restart_ms_ = 0;
  std::map<uint64_t, std::shared_ptr<const TableInfo>> tables_;  // by sender table id
  // Per sender table id: an update id of the node's own entries, to tell learned entries apart
  // (HAProxy files those 2^31 away in its update sequence) and whether that was reported.
  std::map<uint64_t, uint32_t> own_update_id_;
  std::map<uint64_t, bool> learned_reported_;
  uint32_t inflight_ = 0;

  // Teaching: per taught table, where this peer stands and what it has not acknowledged yet.
  std::vector<TaughtTables::Cursor> teach_cursors_;
  std::vector<std::deque<uint64_t>> teach_unacked_;
  uint64_t teach_selected_table_ = 0;  // the taught table our stream selected last (0 = none)
  uint64_t teach_listener_ = 0;
  std::atomic<bool> teach_posted_{false};      // a PumpTeach is queued on the strand
  bool resync_answer_pending_ = false;         // the peer asked for a resync: teach, then answer
  uint64_t resync_target_seq_ = 0;             // everything up to here goes before the answer
  std::map<uint64_t, bool> taught_ids_;        // sender table id -> a taught table of ours
  std::map<uint64_t, uint32_t> dropped_acks_;  // taught tables' updates to acknowledge
  std::map<uint64_t, bool> raw_rate_ids_;      // sender table id -> keep raw rates
  Counter* taught_sent_ = nullptr;
  Counter* taught_acked_ = nullptr;

  // Write side: one write in flight; later messages collect in pending_.
  std::string writing_, pending_;
  bool write_in_flight_ = false;
  std::string drain_label_, drain_reason_;  // why we close once the last write is out
};

}  // namespace stickmeter::ingest
