// The peer service: listener, outgoing connectors with backoff, reconciliation timer, TLS setup.
#include "ingest/peer_service.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <optional>
#include <random>

#include "common/log.h"
#include "common/time.h"
#include "ingest/peer_session.h"
#include "ingest/taught_tables.h"

namespace stickmeter::ingest {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;
using Tcp = asio::ip::tcp;

constexpr std::string_view kLog = "peers";
// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
constexpr int64_t kAcceptRetryMs = 100;
// The reconciliation timer re-reads the wall clock at least this often, so a clock step cannot
// postpone the month-boundary resync by more than this.
constexpr int64_t kMaxTimerSleepMs = 60000;
// How long after a UTC month boundary the month-end resync is asked for.
constexpr int64_t kMonthEndDelayMs = 1000;

std::chrono::milliseconds Ms(int64_t ms) { return std::chrono::milliseconds(ms); }

std::string HostPort(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string EndpointText(const Tcp::endpoint& ep) {
  return HostPort(ep.address().to_string(), ep.port());
}

Result<std::shared_ptr<ssl::context>> MakeTlsContext(const TlsOptions& o, bool server) {
  if (!o.enabled) return std::shared_ptr<ssl::context>();
  const std::string side = server ? "listener TLS" : "outgoing TLS";
  auto ctx =
      std::make_shared<ssl::context>(server ? ssl::context::tls_server : ssl::context::tls_client);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (o.cert_file.empty() && server) {
    return Status::InvalidArgument(side + ": a certificate file is required");
  }
  if (!o.cert_file.empty()) {
    if (ctx->use_certificate_chain_file(o.cert_file, ec); ec) {
      return Status::InvalidArgument(side + ": certificate " + o.cert_file + ": " + ec.message());
    }
    const std::string& key = o.key_file.empty() ? o.cert_file : o.key_file;
    if (ctx->use_private_key_file(key, ssl::context::pem, ec); ec) {
      return Status::InvalidArgument(side + ": key " + key + ": " + ec.message());
    }
  }
  if (!o.ca_file.empty()) {
    if (ctx->load_verify_file(o.ca_file, ec); ec) {
      return Status::InvalidArgument(side + ": CA file " + o.ca_file + ": " + ec.message());
    }
  }
  if (o.verify_peer) {
    if (o.ca_file.empty()) {
      if (ctx->set_default_verify_paths(ec); ec) {
        return Status::InvalidArgument(side + ": no CA file and no system CA store");
      }
    }
    ctx->set_verify_mode(
        server ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert : ssl::verify_peer, ec);
  } else {
    ctx->set_verify_mode(ssl::verify_none, ec);
  }
  return ctx;
}

}  // namespace

int64_t NextUtcMonthStartMs(int64_t unix_ms) {
  using namespace std::chrono;
  sys_days day = floor<days>(sys_time<milliseconds>(milliseconds(unix_ms)));
  year_month_day ymd(day);
  year_month next = year_month(ymd.year(), ymd.month()) + months(1);
  return duration_cast<milliseconds>(sys_days(next / 1).time_since_epoch()).count();
}

// Dials one outgoing peer and keeps it connected: one connection at a time, on its own strand,
// reconnecting with jittered exponential backoff.
class PeerConnector : public std::enable_shared_from_this<PeerConnector> {
 public:
  PeerConnector(asio::io_context& io, std::shared_ptr<PeerContext> context, PeerEndpoint endpoint)
      : context_(std::move(context)),
        endpoint_(std::move(endpoint)),
        address_(HostPort(endpoint_.host, endpoint_.port)),
        strand_(asio::make_strand(io)),
        resolver_(strand_),
        timer_(strand_),
        rng_(std::random_device{}()) {}

  void Start() {
    asio::post(strand_, [self = shared_from_this()] { self->Connect(); });
  }

  void Stop() {
    asio::post(strand_, [self = shared_from_this()] {
      self->timer_.cancel();
      self->resolver_.cancel();
      if (self->socket_) {
        error_code ignored;
        self->socket_->close(ignored);
      }
      if (auto session = self->session_.lock()) session->Close("service stopping");
    });
  }

 private:
  void Connect() {
    if (context_->stopped.load()) return;
    resolver_.async_resolve(
        endpoint_.host, std::to_string(endpoint_.port),
        [self = shared_from_this()](const error_code& ec, Tcp::resolver::results_type results) {
          if (self->context_->stopped.load()) return;
          if (ec)
            return self->Failed("cannot resolve " + self->endpoint_.host + ": " + ec.message());
          self->socket_.emplace(self->strand_);
          self->timer_.expires_after(Ms(self->context_->options.handshake_timeout_ms));
          self->timer_.async_wait([self](const error_code& tec) {
            if (!tec && self->socket_) {
              error_code ignored;
              self->socket_->close(ignored);
            }
          });
          asio::async_connect(
              *self->socket_, results,
              [self](const error_code& cec, const Tcp::endpoint&) { self->OnConnect(cec); });
        });
  }

  void OnConnect(const error_code& ec) {
    timer_.cancel();
    Tcp::socket socket = std::move(*socket_);
    socket_.reset();
    if (context_->stopped.load()) return;
    if (ec) {
      return Failed("cannot connect to " + address_ + ": " +
                    (ec == asio::error::operation_aborted ? "timed out" : ec.message()));
    }
    error_code ignored;
    socket.set_option(Tcp::no_delay(true), ignored);
    std::optional<PeerStream> stream;
    if (context_->connect_tls) {
      stream.emplace(std::move(socket), *context_->connect_tls);
      const std::string& sni = context_->options.connect_tls.server_name;
      if (!sni.empty()) {
        SSL_set_tlsext_host_name(stream->tls()->native_handle(), sni.c_str());
        if (context_->options.connect_tls.verify_peer) {
          stream->tls()->set_verify_callback(ssl::host_name_verification(sni), ignored);
        }
      }
    } else {
      stream.emplace(std::move(socket));
    }
    auto session = std::make_shared<PeerSession>(
        context_, std::move(*stream), PeerSession::Direction::kOut, address_, endpoint_.name,
        [self = shared_from_this()](bool established, const std::string& reason) {
          // Runs on the session's strand, which is ours.
          self->OnSessionClosed(established, reason);
        });
    session_ = session;
    session->Start();
  }

  void OnSessionClosed(bool established, const std::string& reason) {
    session_.reset();
    if (established) {
      failures_ = 0;
      last_failure_.clear();
    } else {
      context_->registry.ConnectFailed(endpoint_.name, reason);
    }
    ScheduleRetry();
  }

  void Failed(const std::string& reason) {
    context_->registry.ConnectFailed(endpoint_.name, reason);
    // One line per change of reason, not one per attempt.
    if (reason != last_failure_) LogWarn(kLog, "peer " + endpoint_.name + " (out): " + reason);
    last_failure_ = reason;
    ScheduleRetry();
  }

  void ScheduleRetry() {
    if (context_->stopped.load()) return;
    const auto& o = context_->options;
    int64_t delay = o.backoff_min_ms;
    for (uint32_t i = 0; i < failures_ && delay < o.backoff_max_ms; ++i) delay *= 2;
    delay = std::min(delay, o.backoff_max_ms);
    // Jitter down by up to half, so peers restarted together do not reconnect in lockstep.
    delay -= std::uniform_int_distribution<int64_t>(0, delay / 2)(rng_);
    ++failures_;
    timer_.expires_after(Ms(delay));
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec) self->Connect();
    });
  }

  std::shared_ptr<PeerContext> context_;
  const PeerEndpoint endpoint_;
  const std::string address_;
  asio::strand<asio::io_context::executor_type> strand_;
  Tcp::resolver resolver_;
  asio::steady_timer timer_;
  std::optional<Tcp::socket> socket_;  // while connecting
  std::weak_ptr<PeerSession> session_;
  uint32_t failures_ = 0;
  std::string last_failure_;
  std::mt19937_64 rng_;
};

struct PeerService::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, PeerServiceOptions options, UpdateSink& sink)
      : io(io_context),
        context(std::make_shared<PeerContext>()),
        strand(asio::make_strand(io_context)),
        accept_retry(strand),
        resync_timer(strand) {
    context->options = std::move(options);
    context->sink = &sink;
    const PeerServiceOptions& o = context->options;
    context->admission.emplace(
        PeerAdmission::Limits{o.max_connections, o.max_handshaking, o.max_connections_per_address});
  }

  void Accept() {
    if (context->stopped.load() || !acceptor) return;
    acceptor->async_accept(asio::make_strand(io),
                           [self = shared_from_this()](const error_code& ec, Tcp::socket socket) {
                             if (self->context->stopped.load()) return;
                             if (ec) {
                               LogWarn(kLog, "accept failed: " + ec.message());
                               self->accept_retry.expires_after(Ms(kAcceptRetryMs));
                               self->accept_retry.async_wait([self](const error_code& tec) {
                                 if (!tec) self->Accept();
                               });
                               return;
                             }
                             self->OnAccepted(std::move(socket));
                             self->Accept();
                           });
  }

  void OnAccepted(Tcp::socket socket) {
    error_code ec;
    Tcp::endpoint remote = socket.remote_endpoint(ec);
    std::string address = ec ? std::string("?") : EndpointText(remote);
    const std::string ip = ec ? std::string("?") : remote.address().to_string();
    if (std::string refused = context->admission->Admit(ip); !refused.empty()) {
      PeerMetrics::ProtocolErrors("connection_limit").Inc();
      uint64_t suppressed = 0;
      if (context->log_limiter.Allow("connection_limit", &suppressed)) {
        LogWarn(kLog,
                "connection from " + address + " refused: " + refused +
                    (suppressed ? " (" + std::to_string(suppressed) + " similar lines suppressed)"
                                : ""));
      }
      socket.close(ec);
      return;
    }
    socket.set_option(Tcp::no_delay(true), ec);
    std::optional<PeerStream> stream;
    if (context->listen_tls) {
      stream.emplace(std::move(socket), *context->listen_tls);
    } else {
      stream.emplace(std::move(socket));
    }
    auto session = std::make_shared<PeerSession>(context, std::move(*stream),
                                                 PeerSession::Direction::kIn, address, "", nullptr);
    session->SetAdmitted(ip);
    session->Start();
  }

  // Arms the reconciliation timer for the earlier of the next interval and the next month-end.
  void ScheduleResync() {
    if (context->stopped.load()) return;
    const auto& o = context->options;
    if (o.resync_interval_ms <= 0 && !o.resync_at_month_end) return;
    int64_t now_mono = MonotonicMs();
    int64_t now_unix = NowUnixMs();
    int64_t wait = kMaxTimerSleepMs;
    if (o.resync_interval_ms > 0) wait = std::min(wait, next_interval_mono - now_mono);
    if (o.resync_at_month_end) wait = std::min(wait, next_month_unix - now_unix);
    resync_timer.expires_after(Ms(std::max<int64_t>(wait, 0)));
    resync_timer.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec) self->OnResyncTimer();
    });
  }

  void OnResyncTimer() {
    if (context->stopped.load()) return;
    const auto& o = context->options;
    bool due = false;
    if (o.resync_interval_ms > 0 && MonotonicMs() >= next_interval_mono) due = true;
    if (o.resync_at_month_end && NowUnixMs() >= next_month_unix) {
      LogInfo(kLog, "month boundary passed: asking every peer for a full resync");
      due = true;
    }
    if (due) {
      RequestResyncAll();
      next_interval_mono = MonotonicMs() + o.resync_interval_ms;
      next_month_unix = NextUtcMonthStartMs(NowUnixMs()) + kMonthEndDelayMs;
    }
    ScheduleResync();
  }

  void RequestResyncAll() {
    for (auto& session : context->registry.LiveSessions()) session->RequestResync();
  }

  asio::io_context& io;
  std::shared_ptr<PeerContext> context;
  asio::strand<asio::io_context::executor_type> strand;  // acceptor and timers
  std::optional<Tcp::acceptor> acceptor;
  asio::steady_timer accept_retry;
  asio::steady_timer resync_timer;
  int64_t next_interval_mono = 0;
  int64_t next_month_unix = 0;
  std::vector<std::shared_ptr<PeerConnector>> connectors;
  std::atomic<uint16_t> port{0};
  bool started = false;
};

PeerService::PeerService(asio::io_context& io, PeerServiceOptions options, UpdateSink& sink)
    : impl_(std::make_shared<Impl>(io, std::move(options), sink)) {}

PeerService::~PeerService() { Stop(); }

Status PeerService::Start() {
  Impl& impl = *impl_;
  if (impl.started) return Status::Internal("PeerService::Start called twice");
  impl.started = true;
  PeerContext& ctx = *impl.context;
  const PeerServiceOptions& o = ctx.options;
  if (o.local_name.empty()) return Status::InvalidArgument("the local peer name is empty");
  if (o.heartbeat_interval_ms <= 0 || o.idle_timeout_ms <= 0 || o.handshake_timeout_ms <= 0 ||
      o.backoff_min_ms <= 0 || o.backoff_max_ms < o.backoff_min_ms || o.max_inflight_batches == 0 ||
      o.max_message_size == 0) {
    return Status::InvalidArgument("peer service limits must be positive");
  }
  for (const auto& ep : o.connect) {
    if (ep.name.empty() || ep.host.empty() || ep.port == 0) {
      return Status::InvalidArgument("outgoing peer '" + ep.name + "@" + ep.host + ":" +
                                     std::to_string(ep.port) + "' is incomplete");
    }
  }
  if (o.max_handshaking == 0 || o.max_connections_per_address == 0) {
    return Status::InvalidArgument("peer service limits must be positive");
  }
  for (const auto& ep : o.connect) ctx.registry.DeclareKnown(ep.name);
  for (const auto& name : o.allowed_peers) ctx.registry.DeclareKnown(name);
  std::vector<std::string> known_names = o.allowed_peers;
  for (const auto& ep : o.connect) known_names.push_back(ep.name);
  PeerMetrics::ExportAtZero(known_names);
  // Every status we answer a hello with, so that the first refusal is an increase.
  if (o.listen) {
    for (HandshakeStatus status :
         {HandshakeStatus::kSucceeded, HandshakeStatus::kTryAgainLater,
          HandshakeStatus::kProtocolError, HandshakeStatus::kBadVersion,
          HandshakeStatus::kLocalPeerMismatch, HandshakeStatus::kUnknownPeer}) {
      PeerMetrics::Connections("in", static_cast<int>(status));
    }
  }
  if (!o.connect.empty()) PeerMetrics::Connections("out", 200);
  if (o.taught != nullptr && o.taught->table_count() > 0) {
    // The teaching metrics exist from the start, at 0, for every peer named in advance.
    PeerMetrics::TeachLag();
    for (const auto& ep : o.connect) {
      PeerMetrics::TaughtSent(ep.name);
      PeerMetrics::TaughtAcked(ep.name);
    }
    for (const auto& name : o.allowed_peers) {
      PeerMetrics::TaughtSent(name);
      PeerMetrics::TaughtAcked(name);
    }
  }
  if (o.listen) {
    auto tls = MakeTlsContext(o.listen_tls, /*server=*/true);
    if (!tls.ok()) return tls.status();
    ctx.listen_tls = *tls;
  }
  if (!o.connect.empty()) {
    auto tls = MakeTlsContext(o.connect_tls, /*server=*/false);
    if (!tls.ok()) return tls.status();
    ctx.connect_tls = *tls;
  }

  if (o.listen) {
    const std::string where = HostPort(o.listen_address, o.listen_port);
    error_code ec;
    auto address = asio::ip::make_address(o.listen_address, ec);
    if (ec)
      return Status::InvalidArgument("listen address '" + o.listen_address + "': " + ec.message());
    Tcp::endpoint endpoint(address, o.listen_port);
    impl.acceptor.emplace(impl.strand);
    if (impl.acceptor->open(endpoint.protocol(), ec); !ec) {
      impl.acceptor->set_option(Tcp::acceptor::reuse_address(true), ec);
      impl.acceptor->bind(endpoint, ec);
    }
    if (!ec) impl.acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      impl.acceptor.reset();
      return Status::IoError("cannot listen on " + where + ": " + ec.message());
    }
    impl.port = impl.acceptor->local_endpoint(ec).port();
    LogInfo(kLog, "listening for peers on " + HostPort(o.listen_address, impl.port) +
                      (ctx.listen_tls ? " (TLS)" : "") + " as '" + o.local_name + "'");
    if (!address.is_loopback() && !ctx.listen_tls && o.allowed_peers.empty()) {
      LogWarn(kLog, "peers listener on " + where +
                        " is reachable beyond this host without TLS and accepts any peer name: "
                        "anyone who can connect can feed counts; use --allow-peer and TLS "
                        "(docs/peers.md)");
    }
    asio::post(impl.strand, [self = impl_] { self->Accept(); });
  }

  for (const auto& ep : o.connect) {
    ctx.registry.DeclareOutgoing(ep.name, HostPort(ep.host, ep.port));
    auto connector = std::make_shared<PeerConnector>(impl.io, impl.context, ep);
    impl.connectors.push_back(connector);
    connector->Start();
  }

  impl.next_interval_mono = MonotonicMs() + o.resync_interval_ms;
  impl.next_month_unix = NextUtcMonthStartMs(NowUnixMs()) + kMonthEndDelayMs;
  asio::post(impl.strand, [self = impl_] { self->ScheduleResync(); });
  return Status::Ok();
}

void PeerService::Stop() {
  if (impl_->context->stopped.exchange(true)) return;
  asio::post(impl_->strand, [self = impl_] {
    error_code ignored;
    if (self->acceptor) self->acceptor->close(ignored);
    self->accept_retry.cancel();
    self->resync_timer.cancel();
  });
  for (auto& connector : impl_->connectors) connector->Stop();
  // No batch reaches the sink after Stop() returns, even from a session whose close is queued.
  impl_->context->registry.RevokeAllSources();
  for (auto& session : impl_->context->registry.LiveSessions()) {
    session->Close("service stopping");
  }
}

std::vector<PeerStatus> PeerService::Snapshot() const {
  return impl_->context->registry.Snapshot();
}

std::vector<RefusedPeer> PeerService::Refused() const { return impl_->context->refused.Snapshot(); }

void PeerService::RequestResyncAll() { impl_->RequestResyncAll(); }

uint16_t PeerService::listen_port() const { return impl_->port.load(); }

}  // namespace stickmeter::ingest
