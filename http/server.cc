#include "http/server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "http/api.h"
#include "http/guards.h"
#include "http/server_impl.h"

namespace stickmeter::http {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::string_view kComponent = "http";

// Room in the read buffer beyond a request's head and body, for chunk-size lines, the trailer
// and the start of a pipelined request.
constexpr size_t kReadBufferSlack = 4 * 1024;

// The most a connection's read buffer may hold. The parser bounds the head and the body's
// data, but not a chunked body's chunk-size line (its extensions) nor its trailer: without this
// bound, a client sending such a line without end would grow the buffer until the deadline.
size_t ReadBufferLimit(const ServerOptions& options) {
  return options.max_header_bytes + options.max_body_bytes + kReadBufferSlack;
}

}  // namespace

// One HTTP connection. Lives as long as an operation on it is pending (each handler holds a
// shared_ptr); every handler runs on the socket's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  // `client`: the address ReserveClient() counted this connection under.
  Session(tcp::socket&& socket, std::shared_ptr<Server::Impl> server, net::ip::address client)
      : stream_(std::move(socket)),
        server_(std::move(server)),
        client_(client),
        query_timer_(stream_.get_executor()) {
    buffer_.max_size(ReadBufferLimit(server_->options));
  }

  ~Session() {
    CancelExport();
    server_->ReleaseClient(client_);
    server_->open_connections.fetch_sub(1);
    server_->connections_active.Add(-1);
  }

  void Run(std::list<std::weak_ptr<Session>>::iterator self_entry) {
    self_entry_ = self_entry;
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
  }

  // Called on any thread by Server::Stop().
  void Shutdown() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      // Only a connection waiting for a request that has not started is closed now; others
      // close after their response.
      if (self->waiting_ && self->buffer_.size() == 0) {
        beast::error_code ec;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        self->stream_.socket().close(ec);
      }
    });
  }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    int64_t timeout =
        requests_ == 0 ? server_->options.read_timeout_ms : server_->options.idle_timeout_ms;
    stream_.expires_after(std::chrono::milliseconds(timeout));
    waiting_ = true;
    if (closing_ && buffer_.size() == 0) return Close();
    // The head first: its framing is checked before any body byte is read as part of it.
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    // The request has begun: Stop() lets it finish instead of closing the connection.
    waiting_ = false;
    if (ec) return OnRead(ec, 0);
    if (auto problem = FramingProblem(parser_->get())) {
      // Where this request ends is unclear, so nothing after it on this connection is trusted.
      return RefuseMalformed(bhttp::status::bad_request, "bad_request", *problem);
    }
    if (parser_->is_done()) return OnRead(ec, 0);
    // The body, under the deadline set in DoRead().
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  // Answers once, then closes: after a malformed request the stream is out of sync.
  void RefuseMalformed(bhttp::status status, std::string_view code, std::string_view message) {
    auto res = std::make_shared<Response>(Api::Error(11, status, code, message));
    res->keep_alive(false);
    res->prepare_payload();
    server_->CountRequest("other", res->result_int());
    Write(std::move(res), true);
  }

  void OnRead(beast::error_code ec, size_t) {
    waiting_ = false;
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof || ec == net::error::bad_descriptor) {
      return Close();
    }
    if (ec) {
      // A malformed or oversized request: answer once, then close (the stream is out of sync).
      bhttp::status status = bhttp::status::bad_request;
      std::string code = "bad_request", message = "request: malformed HTTP (" + ec.message() + ")";
      if (ec == bhttp::error::header_limit) {
        status = bhttp::status::request_header_fields_too_large;
        code = "header_too_large";
        message =
            "headers: larger than " + std::to_string(server_->options.max_header_bytes) + " bytes";
      } else if (ec == bhttp::error::body_limit) {
        status = bhttp::status::payload_too_large;
        code = "body_too_large";
        message = "body: larger than " + std::to_string(server_->options.max_body_bytes) + " bytes";
      } else if (ec == bhttp::error::buffer_overflow) {
        // The head fits its own limit first, so this is a chunk-size line or trailer that
        // filled the read buffer.
        status = bhttp::status::payload_too_large;
        code = "body_too_large";
        message = "body: a chunk-size line or trailer longer than " +
                  std::to_string(ReadBufferLimit(server_->options)) + " bytes";
      }
      return RefuseMalformed(status, code, message);
    }
    ++requests_;
    Request& req = parser_->get();
    auto start = std::chrono::steady_clock::now();
    ApiReply reply;
    if (req.target().size() <= server_->options.max_target_bytes && server_->api.IsQuery(req)) {
      return StartQuery(start);
    }
    if (req.target().size() > server_->options.max_target_bytes) {
      reply.response = Api::Error(req.version(), bhttp::status::uri_too_long, "uri_too_long",
                                  "query: the request target is longer than " +
                                      std::to_string(server_->options.max_target_bytes) + " bytes");
      reply.response.keep_alive(req.keep_alive());
      reply.response.prepare_payload();
      reply.route = "other";
    } else {
      reply = server_->api.Handle(req);
    }
    Respond(std::move(reply), start, req.version(), closing_ || !req.keep_alive());
  }

  void Respond(ApiReply reply, std::chrono::steady_clock::time_point start, unsigned version,
               bool close) {
    server_->request_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    server_->CountRequest(reply.route, reply.response.result_int());
    close = close || closing_;
    if (reply.export_job) return StartExport(std::move(reply), version, close);
    if (close) reply.response.keep_alive(false);
    Write(std::make_shared<Response>(std::move(reply.response)), !reply.response.keep_alive());
  }

  // --- Queries: run on the query pool, answered here -----------------------------------------
  //
  // While a query is out, the session has two operations pending on its strand: the deadline
  // timer and a 1-byte peek on the socket that notices the client closing the connection. The
  // first of {answer, deadline, hangup} wins; query_seq_ makes the others no-ops.

  void StartQuery(std::chrono::steady_clock::time_point start) {
    auto req = std::make_shared<Request>(parser_->release());
    const uint64_t seq = ++query_seq_;
    const Api* api = &server_->api;
    auto ticket = server_->queries.TrySubmit([self = shared_from_this(), req, api, seq] {
      auto reply = std::make_shared<ApiReply>(api->Handle(*req));
      net::post(self->stream_.get_executor(),
                [self, reply, seq] { self->OnQueryDone(seq, std::move(*reply)); });
    });
    if (!ticket) {
      server_->queries_rejected.Inc();
      ApiReply reply;
      std::string_view target = req->target();
      reply.route = std::string(target.substr(0, target.find('?')));
      reply.response = server_->api.Refuse(*req, bhttp::status::service_unavailable, "unavailable",
                                           "server: too many queries running (" +
                                               std::to_string(server_->options.max_queries) +
                                               "); retry shortly");
      reply.response.set(bhttp::field::retry_after, "1");
      return Respond(std::move(reply), start, req->version(), !req->keep_alive());
    }
    query_ = ticket;
    query_request_ = req;
    query_start_ = start;
    if (server_->options.query_timeout_ms > 0) {
      query_timer_.expires_after(std::chrono::milliseconds(server_->options.query_timeout_ms));
      query_timer_.async_wait([self = shared_from_this(), seq](beast::error_code ec) {
        if (!ec) self->OnQueryTimeout(seq);
      });
    }
    stream_.socket().async_receive(
        net::buffer(&peek_byte_, 1), tcp::socket::message_peek,
        [self = shared_from_this(), seq](beast::error_code ec, size_t n) {
          if (ec == net::error::operation_aborted) return;
          // More bytes (a pipelined request): the client is still there.
          if (!ec && n > 0) return;
          self->OnQueryHangup(seq);
        });
  }

  // Ends the wait for the query (on every outcome); returns its request.
  std::shared_ptr<Request> EndQuery() {
    query_.reset();
    beast::error_code ignored;
    query_timer_.cancel();
    stream_.socket().cancel(ignored);  // the peek
    return std::move(query_request_);
  }

  void OnQueryDone(uint64_t seq, ApiReply reply) {
    if (seq != query_seq_ || !query_) return;  // answered 504 already, or the client left
    std::shared_ptr<Request> req = EndQuery();
    Respond(std::move(reply), query_start_, req->version(), !req->keep_alive());
  }

  void OnQueryTimeout(uint64_t seq) {
    if (seq != query_seq_ || !query_) return;
    query_->Abandon();
    server_->queries_timed_out.Inc();
    std::shared_ptr<Request> req = EndQuery();
    ApiReply reply;
    std::string_view target = req->target();
    reply.route = std::string(target.substr(0, target.find('?')));
    reply.response = server_->api.Refuse(*req, bhttp::status::gateway_timeout, "timeout",
                                         "server: the query did not finish within " +
                                             FormatSeconds(server_->options.query_timeout_ms) +
                                             "; narrow it or retry later");
    Respond(std::move(reply), query_start_, req->version(), !req->keep_alive());
  }

  void OnQueryHangup(uint64_t seq) {
    if (seq != query_seq_ || !query_) return;
    // Dropped if it has not started; a running one finishes and its result is dropped.
    query_->Abandon();
    server_->queries_abandoned.Inc();
    EndQuery();
    Close();
  }

  static std::string FormatSeconds(int64_t ms) {
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
    return std::to_string(ms) + " ms";
  }

  void Write(std::shared_ptr<Response> res, bool close) {
    response_ = res;
    stream_.expires_after(std::chrono::milliseconds(server_->options.write_timeout_ms));
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), close](beast::error_code ec, size_t) {
                         self->response_.reset();
                         if (ec) return self->Close();
                         if (close || self->closing_) return self->Close();
                         self->DoRead();
                       });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  // Ends the connection with a reset rather than in order: an HTTP/1.0 client, whose body ends
  // where the connection does, then sees an error instead of a whole-looking body.
  void Abort() {
    beast::error_code ec;
    stream_.socket().set_option(net::socket_base::linger(true, 0), ec);
    stream_.socket().close(ec);
  }

  // --- Streaming an export ------------------------------------------------------------------

  void StartExport(ApiReply reply, unsigned version, bool close) {
    auto pipe = std::make_shared<ExportPipe>();
    pipe->notify = [self = shared_from_this()] {
      net::post(self->stream_.get_executor(), [self] { self->PumpExport(); });
    };
    if (!server_->StartExport(*reply.export_job, pipe, client_)) {
      pipe->notify = nullptr;
      auto res = std::make_shared<Response>(
          Api::Error(version, bhttp::status::service_unavailable, "unavailable",
                     "export: too many exports running (" +
                         std::to_string(server_->options.max_concurrent_exports) + " at once, " +
                         std::to_string(server_->options.max_exports_per_client) +
                         " per client address); retry shortly"));
      res->set(bhttp::field::retry_after, "5");
      res->keep_alive(!close);
      res->prepare_payload();
      return Write(std::move(res), close);
    }
    pipe_ = pipe;
    // While the worker computes, no operation of this session may be pending; keep the
    // io_context from running out of work (and its threads from returning) meanwhile.
    export_work_.emplace(net::make_work_guard(server_->io));
    export_close_ = close;
    // HTTP/1.0 has no chunked encoding: stream the raw body and end it by closing.
    export_raw_ = version < 11;
    auto header =
        std::make_shared<bhttp::response<bhttp::empty_body>>(reply.response.result(), version);
    for (const auto& field : reply.response) header->set(field.name_string(), field.value());
    if (export_raw_) {
      export_close_ = true;
      header->keep_alive(false);
    } else {
      header->chunked(true);
      header->set(bhttp::field::trailer, "X-Content-SHA256");
      header->keep_alive(!close);
    }
    auto sr = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*header);
    writing_ = true;
    stream_.expires_after(std::chrono::milliseconds(server_->options.write_timeout_ms));
    bhttp::async_write_header(
        stream_, *sr, [self = shared_from_this(), header, sr](beast::error_code ec, size_t) {
          self->writing_ = false;
          if (ec) {
            self->CancelExport();
            return self->Close();
          }
          self->PumpExport();
        });
  }

  void PumpExport() {
    if (writing_ || !pipe_) return;
    std::shared_ptr<ExportPipe> pipe = pipe_;
    bool done = false;
    Status status;
    std::string sha;
    {
      std::lock_guard<std::mutex> lock(pipe->mu);
      if (!pipe->chunks.empty()) {
        chunk_ = std::move(pipe->chunks.front());
        pipe->chunks.pop_front();
        pipe->cv.notify_all();
      } else if (pipe->done) {
        done = true;
        status = pipe->status;
        sha = pipe->sha256;
      } else {
        return;  // the worker will notify
      }
    }
    auto on_write = [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) {
        self->CancelExport();
        return self->Close();
      }
      self->PumpExport();
    };
    stream_.expires_after(std::chrono::milliseconds(server_->options.write_timeout_ms));
    if (!done) {
      writing_ = true;
      if (export_raw_) return net::async_write(stream_, net::buffer(chunk_), on_write);
      return net::async_write(stream_, bhttp::make_chunk(net::buffer(chunk_)), on_write);
    }
    // The worker finished: break the session <-> pipe cycle, then end the body.
    {
      std::lock_guard<std::mutex> lock(pipe->mu);
      pipe->notify = nullptr;
    }
    pipe_.reset();
    export_work_.reset();
    if (!status.ok()) {
      // Headers are out already: cut the body short so the client sees an incomplete transfer
      // rather than a truncated file that looks whole (a chunked body lacks its last chunk; an
      // unchunked one ends in a reset).
      LogWarn(kComponent, "export failed mid-stream: " + status.ToString());
      return Abort();
    }
    if (export_raw_) return Close();
    trailer_.clear();
    trailer_.set("X-Content-SHA256", sha);
    writing_ = true;
    net::async_write(stream_, bhttp::make_chunk_last(trailer_),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       if (ec || self->export_close_ || self->closing_) return self->Close();
                       self->DoRead();
                     });
  }

  void CancelExport() {
    if (!pipe_) return;
    {
      std::lock_guard<std::mutex> lock(pipe_->mu);
      pipe_->cancelled = true;
      pipe_->cv.notify_all();
    }
    pipe_.reset();
    export_work_.reset();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<Response> response_;
  std::shared_ptr<Server::Impl> server_;
  const net::ip::address client_;
  std::list<std::weak_ptr<Session>>::iterator self_entry_;
  uint64_t requests_ = 0;
  // Query state: the query out on the pool (null when none), for which request, since when.
  net::steady_timer query_timer_;
  std::shared_ptr<QueryPool::Ticket> query_;
  std::shared_ptr<Request> query_request_;
  std::chrono::steady_clock::time_point query_start_;
  uint64_t query_seq_ = 0;
  char peek_byte_ = 0;
  bool waiting_ = false;  // an async_read for a new request is pending
  bool closing_ = false;  // the server is stopping: close after the current response
  // Export state.
  std::shared_ptr<ExportPipe> pipe_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> export_work_;
  std::string chunk_;
  bhttp::fields trailer_;
  bool writing_ = false;
  bool export_raw_ = false;
  bool export_close_ = false;

 public:
  std::list<std::weak_ptr<Session>>::iterator self_entry() const { return self_entry_; }
};

void Server::Impl::DoAccept() {
  acceptor.async_accept(net::make_strand(io),
                        beast::bind_front_handler(&Impl::OnAccept, shared_from_this()));
}

void Server::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (stopping.load()) return;
  if (ec) {
    if (ec == net::error::operation_aborted) return;
    // EMFILE and friends: keep accepting once descriptors free up.
    LogWarn(kComponent, "accept: " + ec.message());
    auto timer = std::make_shared<net::steady_timer>(acceptor.get_executor());
    timer->expires_after(std::chrono::milliseconds(50));
    timer->async_wait([self = shared_from_this(), timer](beast::error_code) {
      if (!self->stopping.load()) self->DoAccept();
    });
    return;
  }
  if (open_connections.load() >= options.max_connections) {
    // Over the limit: a best-effort 503 that fits in the socket buffer, then close.
    connections_rejected.Inc();
    RefuseConnection(socket, busy_refusal);
    CountRequest("other", 503);
    return DoAccept();
  }
  beast::error_code peer_ec;
  const net::ip::address client = socket.remote_endpoint(peer_ec).address();
  if (peer_ec) {
    // Gone already (reset before we got to it): nothing to answer.
    beast::error_code ignored;
    socket.close(ignored);
    return DoAccept();
  }
  if (!ReserveClient(client)) {
    // One address holds its share: refused like the global limit, so a client opening many
    // connections (or holding them open with slow requests) leaves room for everyone else.
    client_connections_rejected.Inc();
    RefuseConnection(socket, client_refusal);
    CountRequest("other", 503);
    return DoAccept();
  }
  open_connections.fetch_add(1);
  connections_active.Add(1);
  auto session = std::make_shared<Session>(std::move(socket), shared_from_this(), client);
  std::list<std::weak_ptr<Session>>::iterator entry;
  {
    std::lock_guard<std::mutex> lock(sessions_mu);
    // Drop entries of sessions that are gone, so the list stays as long as the open ones.
    for (auto it = sessions.begin(); it != sessions.end();) {
      it = it->expired() ? sessions.erase(it) : std::next(it);
    }
    entry = sessions.insert(sessions.end(), session);
  }
  session->Run(entry);
  DoAccept();
}

Server::Server(net::io_context& io, ServerOptions options, tsdb::QueryService& store,
               ServerHooks hooks)
    : impl_(std::make_shared<Impl>(io, std::move(options), store, std::move(hooks))) {}

Server::~Server() {
  Stop();
  // Queued queries are dropped; running ones are waited for (the store cannot cancel them).
  impl_->queries.Shutdown();
  impl_->ReapExports(true);
}

Status Server::Start() {
  const ServerOptions& o = impl_->options;
  std::string host = o.address == "localhost" ? "127.0.0.1" : o.address;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  net::ip::address address = net::ip::make_address(host, ec);
  if (ec) {
    return Status::InvalidArgument("\"" + o.address + "\" is not an IP address");
  }
  std::string where = (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) +
                      ":" + std::to_string(o.port);
  if (!address.is_loopback() && !o.token && !o.insecure_no_auth) {
    return Status::InvalidArgument("refusing to serve " + where +
                                   " (not loopback) without --token-file; add "
                                   "--insecure-no-auth to allow it");
  }
  if (o.token && o.token->empty()) return Status::InvalidArgument("the token is empty");
  tcp::endpoint endpoint(address, o.port);
  tcp::acceptor& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(o.listen_backlog, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor.close(ignored);
    return Status::IoError("cannot listen on " + where + ": " + ec.message());
  }
  impl_->bound_port = acceptor.local_endpoint(ec).port();
  LogInfo(kComponent,
          "listening on " +
              (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
              std::to_string(impl_->bound_port.load()));
  net::dispatch(acceptor.get_executor(), [impl = impl_] { impl->DoAccept(); });
  return Status::Ok();
}

void Server::Stop() {
  if (impl_->stopping.exchange(true)) return;
  net::post(impl_->acceptor.get_executor(), [impl = impl_] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(impl_->sessions_mu);
    for (auto& weak : impl_->sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->Shutdown();
}

uint16_t Server::port() const { return impl_->bound_port.load(); }

}  // namespace stickmeter::http
