// The HTTP/JSON API server (docs/api.md): an asynchronous Boost.Beast server on the caller's
// io_context.
//
// Design (after Beast's http_server_async example): a Listener accepts connections and hands
// each socket to a Session that owns it, its read buffer and its parser; each session runs on
// its own strand, so the io_context may run on any number of threads. Requests are answered by
// Api (http/api.h), which never sees the socket. Every read has a deadline and size limits;
// the number of open connections is bounded, in all and per client address (a connection over
// either limit is answered 503 and closed at once). A request's head is read first and its body
// framing checked (http/guards.h) before any body byte is read; without a token, a request whose
// Host does not name the server is answered 421 (DNS rebinding). Every response carries the
// security headers of http/guards.h. Queries run on a small query pool (http/query_pool.h) with
// admission control and a deadline, and their answers are posted back to the session's strand; a
// query whose client closes the connection before it starts is dropped. Exports stream from a
// worker thread through a bounded chunk queue, so a slow reader holds neither an I/O thread nor
// memory.
//
// Thread-safety: Start() must be called once, before the io_context runs handlers for it;
// Stop() and port() may be called from any thread. The Server, the QueryService and the hooks
// must outlive every handler: destroy the Server only after its io_context has stopped
// running (the destructor joins the query threads and the export workers).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "billing/key_names.h"
#include "common/status.h"
#include "teach/quota.h"
#include "tsdb/query.h"

namespace stickmeter::http {

// What `GET /api/v1/peers` reports about one HAProxy peer connection (filled by ingest).
struct PeerInfo {
  std::string name;
  std::string direction;  // "inbound" | "outbound"
  std::string address;    // "host:port"
  bool connected = false;
  int64_t since_ms = 0;         // connected (or disconnected) since, Unix ms; 0 = never
  int64_t last_message_ms = 0;  // 0 = none yet
  uint64_t updates = 0;
  std::string last_error;
  std::string warning;  // a topology problem seen on this peer's stream, "" = none
};

// An incoming peer connection refused at its hello, as /api/v1/peers lists it under "refused".
struct RefusedPeerInfo {
  std::string name;     // as the peer sent it, escaped; "" = none could be read
  std::string address;  // source IP
  std::string reason;
  uint64_t count = 0;
  int64_t last_ms = 0;  // Unix ms of the last refusal
};

struct ServerOptions {
  // Default: "127.0.0.1". An IP address (v4 or v6) or "localhost".
  std::string address = "127.0.0.1";
  // Default: 8080. 0 picks a free port (see port()).
  uint16_t port = 8080;
  // Default: none. When set, every call but /api/v1/health and the UI's static files needs
  // `Authorization: Bearer <token>`.
  std::optional<std::string> token;
  // Default: false. Allow a non-loopback address without a token.
  bool insecure_no_auth = false;
  // Default: none (no CORS headers, preflights refused 405). Origins ("https://billing.example",
  // scheme://host[:port], compared exactly) whose pages may call the API from a browser: a
  // request from one gets Access-Control-Allow-Origin naming it (and Vary: Origin), and its
  // preflight OPTIONS is answered 204. "*" allows every origin.
  std::vector<std::string> cors_origins;
  // Default: none. Without a token, only requests whose Host names this server are answered
  // (others get 421), so a web page cannot reach the API through DNS rebinding. Accepted
  // always: `address`, localhost, 127.0.0.1 and [::1] (any port); these names in addition.
  // With a token every Host is accepted. See http/guards.h.
  std::vector<std::string> allowed_hosts;
  // Default: "UTC". The billing time zone (an IANA name the caller has checked): the zone of an
  // export's period and of a quota's calendar when the request names none, and what
  // /api/v1/info reports, so the UI, the API and the CLI agree on what "November" means.
  std::string billing_tz = "UTC";
  // Default: none. Display names of keys (--key-names, billing/key_names.h): GET /api/v1/names
  // lists them and the invoice export has a `name` column. Immutable once the server runs.
  std::shared_ptr<const billing::KeyNames> key_names;

  // Default: 1024. Open connections beyond this are answered 503 and closed.
  size_t max_connections = 1024;
  // Default: 32. Open connections from one client IP address beyond this are answered 503
  // (Retry-After: 1) and closed, so one client cannot take every connection. 0 = no limit.
  size_t max_connections_per_client = 32;
  // Default: 16 KiB. Request line plus headers; more is answered 431.
  size_t max_header_bytes = 16 * 1024;
  // Default: 8 KiB. Request target (path and query string); more is answered 414.
  size_t max_target_bytes = 8 * 1024;
  // Default: 64 KiB. Request body (the API takes none); more is answered 413.
  size_t max_body_bytes = 64 * 1024;
  // Default: 10 s. Time to receive a whole request (head and body) on a new connection; a client
  // that sends its head slowly (slowloris) is closed then.
  int64_t read_timeout_ms = 10'000;
  // Default: 30 s. Time to receive the next whole request on a keep-alive connection.
  int64_t idle_timeout_ms = 30'000;
  // Default: 30 s. Time for each write to complete (a stalled reader is disconnected).
  int64_t write_timeout_ms = 30'000;
  // Default: 4. Concurrent exports; more are answered 503.
  size_t max_concurrent_exports = 4;
  // Default: 2. Concurrent exports of one client address (0: no limit), so that a few slow
  // readers from one address cannot hold every export slot; more are answered 503.
  size_t max_exports_per_client = 2;
  // Default: 1024. Accept queue length (listen backlog).
  int listen_backlog = 1024;

  // Queries (the handlers that read the store or the quota service, see Api::IsQuery) run on a
  // pool of their own (http/query_pool.h), so the I/O threads, which also carry the HAProxy
  // peers, never wait for the store.
  // Default: 2. Query threads.
  size_t query_threads = 2;
  // Default: 4. Queries queued or running at once; more are answered 503 with Retry-After: 1.
  size_t max_queries = 4;
  // Default: 30 s. A query not answered by then is answered 504 (code "timeout"); its work, if
  // it has started, runs to the end and its result is dropped.
  int64_t query_timeout_ms = 30'000;
  // Default: 19, below the store's applier (10): queries must never hold back the applier the
  // writer waits for. The query threads' nice value (Linux: per thread); 0 keeps the process's.
  int query_nice = 19;
};

struct ServerHooks {
  // Returns the peers to report; may be empty (then the list is empty). Called on I/O threads.
  std::function<std::vector<PeerInfo>()> peers;
  // Returns the peers recently refused at their hello; may be unset (then the list is empty).
  // Called on I/O threads.
  std::function<std::vector<RefusedPeerInfo>()> refused_peers;
  // The quotas behind /api/v1/quotas (borrowed; must outlive the server), or null when quotas
  // are not enabled: then the lists are empty and writes are refused (400 quotas_disabled).
  // Called on the query threads.
  teach::QuotaService* quotas = nullptr;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, tsdb::QueryService& store,
         ServerHooks hooks);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. InvalidArgument for a bad address or for a non-loopback
  // address without a token (unless insecure_no_auth); IoError naming the address when it
  // cannot be bound (e.g. the port is in use). Call once.
  Status Start();

  // Stops accepting, lets in-flight requests (and exports) finish, closes idle connections.
  // Returns at once; the io_context runs out of work when the last connection closes. Any
  // thread, idempotent.
  void Stop();

  // The bound port (useful with port 0), or 0 before Start() succeeded.
  uint16_t port() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace stickmeter::http
