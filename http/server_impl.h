// Internals of the HTTP server shared by http/server.cc (sessions, accepting),
// http/server_export.cc (export workers) and http/server_limits.cc (per-client connection
// counts, canned refusals). Not part of the http library's interface.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "http/api.h"
#include "http/query_pool.h"
#include "http/server.h"

namespace stickmeter::http {

// At most this many export chunks (of kExportChunkBytes) wait for a slow reader.
inline constexpr size_t kExportQueueChunks = 4;

// An export runs on its own thread and hands chunks to the session through this queue; the
// worker blocks while the queue is full, so memory stays bounded by the reader's speed.
struct ExportPipe {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> chunks;  // GUARDED_BY(mu)
  bool done = false;               // GUARDED_BY(mu)
  bool cancelled = false;          // GUARDED_BY(mu)
  Status status;                   // GUARDED_BY(mu)
  std::string sha256;              // GUARDED_BY(mu)
  std::function<void()> notify;    // wakes the session (posts to its strand)
};

class Session;

// The complete bytes of a `503 Service Unavailable` with `message` in the API's JSON error
// shape, `Retry-After: 1`, `Connection: close` and the security headers: what a connection
// refused at accept time is sent, with a Content-Length that matches its body.
std::string ConnectionRefusal(std::string_view message);

// One client, one key: a v4 client reaching a v6 socket shows up as ::ffff:a.b.c.d.
boost::asio::ip::address ClientKey(const boost::asio::ip::address& client);

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(boost::asio::io_context& io_context, ServerOptions opts, tsdb::QueryService& store_ref,
       ServerHooks hooks_in)
      : io(io_context),
        options(std::move(opts)),
        store(store_ref),
        hooks(std::move(hooks_in)),
        api(options, store, hooks),
        queries(
            options.query_threads, options.max_queries, options.query_nice,
            &MetricsRegistry::Global().GetGauge("stickmeter_http_queries_in_flight",
                                                "Queries queued or running on the query threads")),
        acceptor(boost::asio::make_strand(io_context)),
        connections_active(MetricsRegistry::Global().GetGauge("stickmeter_http_connections",
                                                              "Open HTTP connections")),
        connections_rejected(MetricsRegistry::Global().GetCounter(
            "stickmeter_http_connections_rejected_total",
            "HTTP connections closed at once because max_connections were open")),
        client_connections_rejected(MetricsRegistry::Global().GetCounter(
            "stickmeter_http_client_connections_rejected_total",
            "HTTP connections closed at once because their client address had "
            "max_connections_per_client open")),
        request_seconds(MetricsRegistry::Global().GetHistogram(
            "stickmeter_http_request_duration_seconds", "Time to build an HTTP response")),
        queries_rejected(MetricsRegistry::Global().GetCounter(
            "stickmeter_http_queries_rejected_total",
            "Queries answered 503 because max_queries were queued or running")),
        queries_timed_out(MetricsRegistry::Global().GetCounter(
            "stickmeter_http_queries_timed_out_total",
            "Queries answered 504 because they were not done within query_timeout")),
        queries_abandoned(MetricsRegistry::Global().GetCounter(
            "stickmeter_http_queries_abandoned_total",
            "Queries whose client closed the connection before the answer")),
        busy_refusal(ConnectionRefusal("server: too many open connections")),
        client_refusal(
            ConnectionRefusal("server: too many open connections from your address (at most " +
                              std::to_string(options.max_connections_per_client) + ")")) {}

  void DoAccept();
  void OnAccept(boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);
  void CountRequest(const std::string& route, unsigned code) {
    // The registry lookup takes its mutex and builds label vectors; each I/O thread remembers
    // the counters it has used (the registry keeps them alive for the life of the process).
    thread_local std::map<std::pair<std::string, unsigned>, Counter*> cache;
    auto key = std::make_pair(route, code);
    auto it = cache.find(key);
    if (it == cache.end()) {
      Counter* counter = &MetricsRegistry::Global().GetCounter(
          "stickmeter_http_requests_total", "HTTP requests answered, by route and code",
          {{"code", std::to_string(code)}, {"route", route}});
      it = cache.emplace(std::move(key), counter).first;
    }
    it->second->Inc();
  }
  // Counts a new connection from `client`; false (and nothing counted) when that address has
  // max_connections_per_client open already. Any thread.
  bool ReserveClient(const boost::asio::ip::address& client);
  // Uncounts a connection ReserveClient() counted. Any thread.
  void ReleaseClient(const boost::asio::ip::address& client);
  // Writes `canned` (ConnectionRefusal) without blocking, as far as the socket buffer takes it,
  // and closes the socket.
  static void RefuseConnection(boost::asio::ip::tcp::socket& socket, std::string_view canned);
  // Starts a worker for `job` of `client`; false when max_concurrent_exports are running, or
  // max_exports_per_client of that client's.
  bool StartExport(const billing::ResolvedExport& job, std::shared_ptr<ExportPipe> pipe,
                   const boost::asio::ip::address& client);
  void ReapExports(bool all);

  boost::asio::io_context& io;
  const ServerOptions options;
  tsdb::QueryService& store;
  const ServerHooks hooks;
  const Api api;
  QueryPool queries;
  boost::asio::ip::tcp::acceptor acceptor;
  std::atomic<uint16_t> bound_port{0};
  std::atomic<bool> stopping{false};
  std::atomic<size_t> open_connections{0};
  Gauge& connections_active;
  Counter& connections_rejected;
  Counter& client_connections_rejected;
  Histogram& request_seconds;
  Counter& queries_rejected;
  Counter& queries_timed_out;
  Counter& queries_abandoned;
  // What a connection refused at accept time is sent (ConnectionRefusal).
  const std::string busy_refusal;
  const std::string client_refusal;

  // Open connections per client address (IPv4-mapped IPv6 counted as IPv4); an address leaves
  // the map with its last connection.
  std::mutex clients_mu;
  std::map<boost::asio::ip::address, size_t> clients;  // GUARDED_BY(clients_mu)

  std::mutex sessions_mu;
  std::list<std::weak_ptr<Session>> sessions;  // GUARDED_BY(sessions_mu)

  struct ExportWorker {
    std::thread thread;
    std::shared_ptr<ExportPipe> pipe;
    std::shared_ptr<std::atomic<bool>> finished;
    boost::asio::ip::address client;  // ClientKey of the requesting address
  };
  std::mutex exports_mu;
  std::list<ExportWorker> exports;  // GUARDED_BY(exports_mu)
};

}  // namespace stickmeter::http
