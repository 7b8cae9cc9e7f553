// One peers-protocol connection: handshake, message loop, batching and acknowledgements.
#include "ingest/peer_session.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>
#include <string_view>

#include "common/log.h"
#include "common/time.h"
#include "ingest/normalize.h"

namespace stickmeter::ingest {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

constexpr std::string_view kLog = "peers";
// The three hello lines: a peer name is at most a few dozen bytes in practice; anything longer is
// not a HAProxy peer.
constexpr size_t kMaxHelloBytes = 1024;
// "200\n" and friends.
constexpr size_t kMaxStatusLineBytes = 16;
// First size of the read buffer; it grows only while one message does not fit.
constexpr size_t kInitialBufferBytes = 16384;
// Our own output is a few bytes per read pass; a peer that makes it pile up does not read.
constexpr size_t kMaxPendingWriteBytes = 1 << 20;
// Class + type bytes and up to 10 varint length bytes ahead of a payload.
constexpr size_t kMessageHeaderBytes = 12;
// How long a closing connection waits for the peer to read our last message (an error, a
// refusal): one that does not read would otherwise keep its socket and admission slot forever.
constexpr int64_t kLastMessageTimeoutMs = 5'000;

std::chrono::milliseconds Ms(int64_t ms) { return std::chrono::milliseconds(ms); }

std::string StripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return std::string(line);
}

}  // namespace

// Forwards decoder callbacks to the session (on its strand, during Feed).
class PeerSession::Handler : public MessageHandler {
 public:
  explicit Handler(PeerSession& session) : session_(session) {}
  void OnControl(ControlType type) override { session_.OnControl(type); }
  void OnPeerError(ErrorType type) override {
    peer_error = type == ErrorType::kSizeLimit ? "size limit" : "protocol";
  }
  void OnTableDefine(const TableDefinition& table) override { session_.OnDefine(table); }
  void OnEntryUpdate(const EntryUpdateView& update) override { session_.OnUpdate(update); }
  void OnAck(uint64_t table_id, uint32_t update_id) override {
    session_.OnAck(table_id, update_id);
  }

  std::string peer_error;  // set when the peer sent an error message

 private:
  PeerSession& session_;
};

PeerSession::PeerSession(std::shared_ptr<PeerContext> context, PeerStream stream,
                         Direction direction, std::string address, std::string peer_name,
                         ClosedCallback on_closed)
    : context_(std::move(context)),
      stream_(std::move(stream)),
      direction_(direction),
      address_(std::move(address)),
      peer_name_(std::move(peer_name)),
      on_closed_(std::move(on_closed)),
      connection_id_(NextConnectionId()),
      deadline_(stream_.get_executor()),
      ticker_(stream_.get_executor()),
      decoder_(DecoderLimits{context_->options.max_message_size}) {
  max_buffer_ = static_cast<size_t>(context_->options.max_message_size) + kMessageHeaderBytes;
}

PeerSession::~PeerSession() {
  ReleaseAdmission();
  ReleaseHeld();
  // The open batch dies with the session (in-flight bytes were returned by OnBatchDone).
  AddBatchBytes(-static_cast<int64_t>(batch_bytes_));
}

void PeerSession::ReleaseAdmission() {
  if (!admitted_ip_ || !context_->admission) return;
  context_->admission->Closed(*admitted_ip_, !established_);
  admitted_ip_.reset();
}

void PeerSession::Start() {
  context_->registry.Track(connection_id_, weak_from_this());
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->phase_ == Phase::kClosed) return;
    if (self->context_->stopped.load()) return self->DoClose("service stopping", "");
    self->deadline_.expires_after(Ms(self->context_->options.handshake_timeout_ms));
    self->deadline_.async_wait([self](const error_code& ec) {
      if (!ec && self->phase_ != Phase::kRunning) {
        self->ProtocolError("handshake_timeout", "no complete handshake in time");
      }
    });
    if (!self->stream_.is_tls()) return self->StartHello();
    self->phase_ = Phase::kTls;
    auto type = self->direction_ == Direction::kIn ? asio::ssl::stream_base::server
                                                   : asio::ssl::stream_base::client;
    self->stream_.tls()->async_handshake(type, [self](const error_code& ec) {
      if (self->phase_ == Phase::kClosed) return;
      if (ec) return self->ProtocolError("tls", "TLS handshake failed: " + ec.message());
      self->StartHello();
    });
  });
}

void PeerSession::Close(std::string reason) {
  asio::post(stream_.get_executor(), [self = shared_from_this(), reason = std::move(reason)] {
    self->DoClose(reason, "");
  });
}

void PeerSession::RequestResync() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->phase_ != Phase::kRunning) return;
    std::string msg;
    AppendControl(msg, ControlType::kResyncRequest);
    self->Send(std::move(msg));
    PeerMetrics::Get().resyncs_requested.Inc();
  });
}

std::string PeerSession::Describe() const {
  std::string who = peer_name_.empty() ? std::string("?") : peer_name_;
  return "peer " + who + " (" + std::string(DirectionName(direction_)) + ", " + address_ + ")";
}

// ---- Hello. ----

void PeerSession::StartHello() {
  phase_ = Phase::kHello;
  buffer_.resize(kMaxHelloBytes);
  begin_ = end_ = 0;
  if (direction_ == Direction::kOut) {
    Send(FormatHello(peer_name_, context_->options.local_name, static_cast<int64_t>(getpid())));
  }
  ReadHello();
}

void PeerSession::ReadHello() {
  const size_t limit = direction_ == Direction::kIn ? kMaxHelloBytes : kMaxStatusLineBytes;
  if (end_ >= limit) {
    if (direction_ == Direction::kIn) return AnswerHello(501, "hello too long");
    return ProtocolError("handshake", "status line too long");
  }
  stream_.AsyncReadSome(asio::buffer(buffer_.data() + end_, limit - end_),
                        [self = shared_from_this()](const error_code& ec, size_t n) {
                          if (self->phase_ != Phase::kHello) return;
                          if (ec)
                            return self->DoClose(
                                "connection lost during the hello: " + ec.message(), "");
                          self->end_ += n;
                          self->OnHelloBytes();
                        });
}

void PeerSession::OnHelloBytes() {
  std::string_view text(reinterpret_cast<const char*>(buffer_.data()), end_);
  if (direction_ == Direction::kOut) {
    size_t eol = text.find('\n');
    if (eol == std::string_view::npos) return ReadHello();
    std::string line = StripCr(text.substr(0, eol));
    begin_ = eol + 1;
    int code = 0;
    for (char c : line) {
      if (c < '0' || c > '9' || code > 999) {
        code = -1;
        break;
      }
      code = code * 10 + (c - '0');
    }
    PeerMetrics::Connections("out", code < 0 ? 0 : code).Inc();
    if (code != 200) {
      return DoClose("refused the hello with status '" + line + "'", "");
    }
    return OnEstablished();
  }

  // Incoming: three lines.
  std::string_view lines[3];
  size_t pos = 0;
  for (auto& line : lines) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) return ReadHello();
    line = text.substr(pos, eol - pos);
    pos = eol + 1;
  }
  begin_ = pos;
  HandshakeStatus rejection = HandshakeStatus::kProtocolError;
  std::string l1 = StripCr(lines[0]), l2 = StripCr(lines[1]), l3 = StripCr(lines[2]);
  Result<Hello> hello = ParseHello(l1, l2, l3, &rejection);
  if (!hello.ok()) return AnswerHello(static_cast<int>(rejection), hello.status().message());
  claimed_name_ = hello->sender_name;
  // Not a name HAProxy could have: as HAProxy answers a name missing from its peers section.
  if (!ValidPeerName(hello->sender_name)) {
    return AnswerHello(504, "peer name '" + hello->sender_name + "' is not 1 to " +
                                std::to_string(kMaxPeerNameBytes) + " letters, digits or \".-_:\"");
  }
  peer_name_ = hello->sender_name;
  if (hello->remote_name != context_->options.local_name) {
    return AnswerHello(503, "it calls us '" + hello->remote_name + "', we are '" +
                                context_->options.local_name + "'");
  }
  const auto& allowed = context_->options.allowed_peers;
  if (!allowed.empty() &&
      std::find(allowed.begin(), allowed.end(), hello->sender_name) == allowed.end()) {
    return AnswerHello(504, "peer name not in --allow-peer");
  }
  if (context_->options.listen_tls.verify_name && !CertificateNames(hello->sender_name)) {
    return AnswerHello(504, "its TLS client certificate does not name '" + hello->sender_name +
                                "' (--peers-tls-verify-name)");
  }
  AnswerHello(200, "");
}

bool PeerSession::CertificateNames(const std::string& name) {
  if (!stream_.is_tls()) return false;
  X509* cert = SSL_get1_peer_certificate(stream_.tls()->native_handle());
  if (cert == nullptr) return false;
  // A DNS subjectAltName equal to the name, or the common name when there is none.
  const bool names = X509_check_host(cert, name.data(), name.size(), 0, nullptr) == 1;
  X509_free(cert);
  return names;
}

void PeerSession::AnswerHello(int code, const std::string& reason) {
  if (code == 200) return OnEstablished();  // it sends the status line (or refuses with 300)
  PeerMetrics::Connections("in", code).Inc();
  context_->refused.Record(claimed_name_, admitted_ip_.value_or(address_),
                           "hello refused with " + std::to_string(code) + ": " + reason,
                           NowUnixMs());
  // The status line goes out before the close, so the peer can log why.
  CloseAfterSending(std::to_string(code) + "\n", "",
                    "hello refused with " + std::to_string(code) + ": " + reason);
}

void PeerSession::OnEstablished() {
  const std::string dir(DirectionName(direction_));
  auto connection =
      context_->registry.Connected(dir, peer_name_, address_, connection_id_,
                                   context_->options.replace_after_silence_ms, &source_);
  if (connection.refused) {
    // The established session of this name is alive: it stays (see docs/peers.md).
    return AnswerHello(300, "peer " + peer_name_ + " is already connected and not silent");
  }
  phase_ = Phase::kRunning;
  established_ = true;
  deadline_.cancel();
  if (admitted_ip_ && context_->admission) context_->admission->Established();
  for (auto& old : connection.replaced) {
    old->Close("replaced by a newer connection of the same peer");
  }
  // Only now that this connection owns its source: a peer that reconnects as soon as it reads
  // the status line must find this one registered, not replace it by accident.
  if (direction_ == Direction::kIn) {
    PeerMetrics::Connections("in", 200).Inc();
    Send("200\n");
  }
  PeerMetrics::Get().connected.Add(1);
  if (context_->options.sources != nullptr) {
    context_->options.sources->SourceConnected(peer_name_, connection_id_, NowUnixMs());
  }
  updates_counter_ = &PeerMetrics::UpdatesReceived(context_->registry.MetricLabel(peer_name_));
  LogInfo(kLog, Describe() + ": connected" + (stream_.is_tls() ? " (TLS)" : ""));
  last_receive_mono_ = MonotonicMs();

  if (direction_ == Direction::kOut) {
    // Without our own request HAProxy would push only what changes from now on; a full resync
    // brings every entry it holds (as timed updates), so nothing counted while we were away is
    // lost.
    std::string msg;
    AppendControl(msg, ControlType::kResyncRequest);
    Send(std::move(msg));
    PeerMetrics::Get().resyncs_requested.Inc();
  }
  Tick();
  StartTeaching();
  // Bytes already read past the hello belong to the message stream.
  size_t leftover = end_ - begin_;
  std::vector<uint8_t> rest(buffer_.begin() + begin_, buffer_.begin() + end_);
  buffer_.assign(std::max(kInitialBufferBytes, leftover), 0);
  std::copy(rest.begin(), rest.end(), buffer_.begin());
  begin_ = 0;
  end_ = leftover;
  if (leftover > 0) return OnRead(error_code(), 0);
  ReadMessages();
}

// ---- Message loop. ----

bool PeerSession::PrepareReadSpace() {
  if (begin_ == end_) begin_ = end_ = 0;
  if (end_ < buffer_.size()) return true;
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    return true;
  }
  // One message fills the whole buffer: grow, but never past the largest acceptable message.
  if (buffer_.size() >= max_buffer_) return false;
  buffer_.resize(std::min(max_buffer_, buffer_.size() * 2));
  return true;
}

void PeerSession::ReadMessages() {
  if (phase_ != Phase::kRunning || reading_) return;
  if (HoldingReads()) return;  // resumed by OnBatchDone
  if (!PrepareReadSpace()) {
    return ProtocolError(
        "too_large",
        "message larger than " + std::to_string(context_->options.max_message_size) + " bytes");
  }
  reading_ = true;
  stream_.AsyncReadSome(asio::buffer(buffer_.data() + end_, buffer_.size() - end_),
                        [self = shared_from_this()](const error_code& ec, size_t n) {
                          self->reading_ = false;
                          self->OnRead(ec, n);
                        });
}

void PeerSession::OnRead(const error_code& ec, size_t n) {
  if (phase_ != Phase::kRunning) return;
  if (ec) {
    return DoClose(ec == asio::error::eof ? "closed by the peer" : "read failed: " + ec.message(),
                   "");
  }
  end_ += n;
  last_receive_mono_ = MonotonicMs();
  receive_unix_ms_ = NowUnixMs();
  PeerMetrics::Get().bytes_received.Inc(n);

  Handler handler(*this);
  const uint64_t decoded_before = entries_decoded_;
  FeedResult fed =
      decoder_.Feed(std::span<const uint8_t>(buffer_.data() + begin_, end_ - begin_), handler);
  begin_ += fed.consumed;
  const auto entries = static_cast<size_t>(entries_decoded_ - decoded_before);
  // While the sink holds max_inflight_batches of ours, what we read joins the open batch, which
  // goes when one of them is done: under load the store then commits fewer, larger batches, and
  // a busy series costs one state row and one rollup operand per commit, not one per read.
  if (inflight_ < context_->options.max_inflight_batches) {
    FlushBatch();
  } else if (phase_ == Phase::kRunning) {
    held_ += entries;
    context_->held_entries.fetch_add(entries, std::memory_order_relaxed);
    PeerMetrics::Get().held_entries.Add(static_cast<int64_t>(entries));
  }
  context_->registry.Received(std::string(DirectionName(direction_)), peer_name_, receive_unix_ms_,
                              entries);
  if (!dropped_acks_.empty() && phase_ == Phase::kRunning) {
    // Taught tables coming back (a full resync carries what the node learned from us): never
    // stored, but acknowledged so the node does not send them again.
    std::string acks;
    for (const auto& [table_id, update_id] : dropped_acks_) AppendAck(acks, table_id, update_id);
    dropped_acks_.clear();
    Send(std::move(acks));
  }
  if (phase_ != Phase::kRunning) return;  // the sink refused the batch
  if (!handler.peer_error.empty()) {
    return ProtocolError("peer_error", "the peer reported a " + handler.peer_error + " error");
  }
  if (!fed.status.ok()) {
    // Tell the peer why, as HAProxy does, then close.
    std::string msg;
    AppendPeerError(msg, fed.error_type);
    PeerMetrics::ProtocolErrors(fed.error_type == ErrorType::kSizeLimit ? "too_large" : "malformed")
        .Inc();
    return CloseAfterSending(std::move(msg), "protocol error", fed.status.message());
  }
  ReadMessages();
}

void PeerSession::OnControl(ControlType type) {
  std::string msg;
  switch (type) {
    case ControlType::kResyncRequest:
      // The peer's process holds no counts (a fresh start): everything of this source counts
      // from 0 again. Updates already decoded in this pass happened before, so they go first,
      // in a batch of their own. HAProxy asks once, as its new process connects, before it
      // pushes anything; a peer that alternates updates and requests while the sink holds
      // max_inflight_batches of ours would make a batch of every pair past that bound.
      if (batch_entries_ > 0) {
        if (inflight_ >= context_->options.max_inflight_batches) {
          return ProtocolError("resync_flood",
                               "a resync request after updates, with all the batches this "
                               "connection may have in the store still there");
        }
        FlushBatch();
      }
      // Requests in a row make one restart: the open batch carries it.
      pending_restart_ = true;
      pending_restart_ms_ = receive_unix_ms_;
      if (!teach_cursors_.empty()) {
        // A fresh process: it is taught every entry of every taught table (from the start of
        // each), and only then told the resync is finished, so it enforces taught values before
        // it serves its first request.
        for (auto& cursor : teach_cursors_) cursor.sent = 0;
        for (auto& unacked : teach_unacked_) unacked.clear();
        resync_answer_pending_ = true;
        resync_target_seq_ = context_->options.taught->last_seq();
        PumpTeach();
        return;
      }
      // Nothing to teach: an empty resync is complete at once.
      AppendControl(msg, ControlType::kResyncFinished);
      break;
    case ControlType::kResyncFinished:
    case ControlType::kResyncPartial:
      // Until confirmed HAProxy stops pushing and its session times out.
      AppendControl(msg, ControlType::kResyncConfirm);
      break;
    default:
      return;
  }
  Send(std::move(msg));
}

void PeerSession::OnDefine(const TableDefinition& table) {
  // The id may now name another table: classified afresh (taught, raw rates).
  taught_ids_.erase(table.table_id);
  tables_[table.table_id] = MakeTableInfo(table);
  IsTaughtTable(table);
}

// ---- Writes, timers, closing. ----

void PeerSession::CloseAfterSending(std::string bytes, std::string label, std::string reason) {
  if (phase_ == Phase::kClosed || phase_ == Phase::kDraining) return;
  Send(std::move(bytes));
  phase_ = Phase::kDraining;
  drain_label_ = std::move(label);
  drain_reason_ = std::move(reason);
  if (!write_in_flight_) return DoClose(drain_reason_, drain_label_);
  // Replaces the handshake deadline, if still armed: the connection closes either way.
  deadline_.expires_after(Ms(kLastMessageTimeoutMs));
  deadline_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->phase_ != Phase::kDraining) return;
    self->DoClose(self->drain_reason_ + " (and the peer did not read our last message in " +
                      std::to_string(kLastMessageTimeoutMs) + " ms)",
                  self->drain_label_);
  });
}

void PeerSession::Send(std::string bytes) {
  if (phase_ == Phase::kClosed || phase_ == Phase::kDraining) return;
  if (pending_.size() > kMaxPendingWriteBytes) {
    return ProtocolError("slow_reader", "the peer does not read what we send");
  }
  pending_ += bytes;
  DoWrite();
}

void PeerSession::DoWrite() {
  if (write_in_flight_ || pending_.empty()) return;
  writing_.swap(pending_);
  pending_.clear();
  write_in_flight_ = true;
  stream_.AsyncWrite(asio::buffer(writing_),
                     [self = shared_from_this()](const error_code& ec, size_t) {
                       self->write_in_flight_ = false;
                       self->writing_.clear();
                       if (self->phase_ == Phase::kDraining && (ec || self->pending_.empty())) {
                         return self->DoClose(self->drain_reason_, self->drain_label_);
                       }
                       if (ec) return self->DoClose("write failed: " + ec.message(), "");
                       self->DoWrite();
                       // Room again for taught updates held back by kTeachOutputBytes.
                       if (self->pending_.empty()) self->PumpTeach();
                     });
}

void PeerSession::Tick() {
  if (phase_ != Phase::kRunning) return;
  const auto& options = context_->options;
  // While we hold back reads for the sink, the peer's heartbeats wait unread in the socket:
  // silence then says nothing about the peer.
  if (HoldingReads()) last_receive_mono_ = MonotonicMs();
  if (MonotonicMs() - last_receive_mono_ > options.idle_timeout_ms) {
    return ProtocolError("idle_timeout",
                         "nothing received for " + std::to_string(options.idle_timeout_ms) + " ms");
  }
  std::string msg;
  AppendControl(msg, ControlType::kHeartbeat);
  Send(std::move(msg));
  ticker_.expires_after(Ms(options.heartbeat_interval_ms));
  ticker_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (!ec) self->Tick();
  });
}

void PeerSession::ProtocolError(const std::string& reason_label, const std::string& detail) {
  PeerMetrics::ProtocolErrors(reason_label).Inc();
  DoClose(detail, "protocol error");
}

void PeerSession::DoClose(std::string reason, const std::string& error_label) {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  ReleaseHeld();
  StopTeaching();
  deadline_.cancel();
  ticker_.cancel();
  context_->registry.Untrack(connection_id_);
  ReleaseAdmission();
  const std::string what = error_label.empty() ? "" : " (" + error_label + ")";
  // What the peer sent may appear in `reason`: escaped. A client failing in a loop gets at most
  // a few lines per second per kind of failure.
  uint64_t suppressed = 0;
  const bool log =
      context_->log_limiter.Allow((established_ ? "disconnected" : "failed") + what, &suppressed);
  const std::string summary =
      suppressed == 0 ? "" : " (" + std::to_string(suppressed) + " similar lines suppressed)";
  if (established_) {
    PeerMetrics::Get().connected.Add(-1);
    context_->registry.Disconnected(std::string(DirectionName(direction_)), peer_name_,
                                    connection_id_, reason);
    if (context_->options.sources != nullptr) {
      context_->options.sources->SourceDisconnected(peer_name_, connection_id_, NowUnixMs());
    }
    if (log) {
      LogInfo(kLog, EscapeForLog(Describe() + ": disconnected" + what + ": " + reason) + summary);
    }
  } else if (log) {
    LogWarn(kLog,
            EscapeForLog(Describe() + ": connection failed" + what + ": " + reason) + summary);
  }
  // Only now, so whoever sees the socket close also sees the status row updated.
  error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
  pending_.clear();
  if (on_closed_) std::exchange(on_closed_, nullptr)(established_, reason);
}

}  // namespace stickmeter::ingest
