// `stickmeter serve`: wires the store, the peer service and the HTTP server together.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "app/billing_zone.h"
#include "app/commands.h"
#include "billing/key_names.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "http/server.h"
#include "ingest/peer_service.h"
#include "ingest/taught_tables.h"
#include "sink/clickhouse_sink.h"
#include "sink/clickhouse_url.h"
#include "teach/teacher.h"
#include "tsdb/store.h"

namespace stickmeter::app {
namespace {

constexpr int64_t kDayMs = 86400000;
// How long in-flight work may take to finish after SIGTERM before the loop is stopped anyway.
constexpr auto kShutdownGrace = std::chrono::seconds(5);

int Fail(const std::string& reason) {
  std::fprintf(stderr, "stickmeter: %s\n", reason.c_str());
  return 1;
}

Result<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("--token-file: cannot read '" + path + "'");
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) {
    token.pop_back();
  }
  if (token.size() < 16) {
    return Status::InvalidArgument("--token-file: the token in '" + path +
                                   "' must be at least 16 characters");
  }
  // A client's Authorization header loses leading blanks and cannot carry control bytes: such
  // a token could never be matched.
  const bool unsendable =
      token.front() == ' ' || std::any_of(token.begin(), token.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      });
  if (unsendable) {
    return Status::InvalidArgument("--token-file: the token in '" + path +
                                   "' starts with a blank or holds a tab or control character, "
                                   "which no client could send");
  }
  return token;
}

ingest::TlsOptions ToTls(const std::optional<TlsConfig>& tls) {
  ingest::TlsOptions out;
  if (!tls) return out;
  out.enabled = true;
  out.cert_file = tls->cert;
  out.key_file = tls->key.empty() ? tls->cert : tls->key;
  out.ca_file = tls->ca;
  out.verify_peer = tls->verify;
  out.verify_name = tls->verify_name;
  out.server_name = tls->server_name;
  return out;
}

// --query-threads: 0 is one fewer than the cores, at least 1. Queries at the lowest priority on
// every core still held a peer's ACK back by a quarter of a second on a 2-core box; with a core
// left over they did not (docs/performance.md, Queries and the peers).
size_t QueryThreads(int64_t configured) {
  if (configured > 0) return static_cast<size_t>(configured);
  const unsigned cores = std::thread::hardware_concurrency();
  return cores > 2 ? cores - 1 : 1;
}

// The ClickHouse sink's target, with the password from its file (first line).
Result<sink::ClickHouseTarget> SinkTarget(const ServeConfig& config) {
  auto target = sink::ParseClickHouseUrl(config.sink_clickhouse);
  if (!target.ok()) return target.status().WithContext("--sink-clickhouse");
  if (!config.sink_clickhouse_password_file.empty()) {
    std::ifstream in(config.sink_clickhouse_password_file);
    if (!in) {
      return Status::InvalidArgument("--sink-clickhouse-password-file: cannot read '" +
                                     config.sink_clickhouse_password_file + "'");
    }
    std::getline(in, target->password);
    while (!target->password.empty() && target->password.back() == '\r') {
      target->password.pop_back();
    }
  }
  return target;
}

LogLevel ToLogLevel(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::vector<http::PeerInfo> ToPeerInfo(const std::vector<ingest::PeerStatus>& peers) {
  std::vector<http::PeerInfo> out;
  out.reserve(peers.size());
  for (const auto& p : peers) {
    // The API spells the direction out ("inbound": HAProxy connected to us).
    std::string direction = p.direction == "in"    ? "inbound"
                            : p.direction == "out" ? "outbound"
                                                   : p.direction;
    out.push_back(http::PeerInfo{p.name, direction, p.address, p.connected, p.since_ms,
                                 p.last_message_ms, p.updates, p.last_error, p.warning});
  }
  return out;
}

// A start that fails before serving leaves no store behind where there was none: a data
// directory that was missing or empty when the start began is emptied again (and removed if it
// was missing), so that a mistyped flag or a busy port does not leave a new, empty store that
// the next start (or an export) would take for real data. Call Opened() once this process has
// opened the store there, Keep() once serving. A start whose open failed removes nothing: the
// store may be another process's (two starts on an empty directory at once; the second finds
// RocksDB's lock taken).
class FirstStartGuard {
 public:
  explicit FirstStartGuard(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::error_code ec;
    existed_ = std::filesystem::exists(dir_, ec);
    fresh_ = !existed_ || std::filesystem::is_empty(dir_, ec);
  }
  ~FirstStartGuard() {
    if (!fresh_ || !opened_ || kept_) return;
    std::error_code ec;
    if (!existed_) {
      std::filesystem::remove_all(dir_, ec);
      return;
    }
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
  FirstStartGuard(const FirstStartGuard&) = delete;
  FirstStartGuard& operator=(const FirstStartGuard&) = delete;
  void Opened() { opened_ = true; }
  void Keep() { kept_ = true; }

 private:
  std::filesystem::path dir_;
  bool existed_ = false;
  bool fresh_ = false;
  bool opened_ = false;
  bool kept_ = false;
};

}  // namespace

int RunServe(const ServeConfig& config) {
  SetLogLevel(ToLogLevel(config.log_level));

  http::ServerOptions http_options;
  http_options.address = config.http.host;
  http_options.port = config.http.port;
  http_options.insecure_no_auth = config.insecure_no_auth;
  http_options.allowed_hosts = config.http_host;
  http_options.cors_origins = config.http_cors_origin;
  http_options.billing_tz = config.billing_tz;
  http_options.max_connections_per_client = static_cast<size_t>(config.http_max_conns_per_client);
  http_options.query_threads = QueryThreads(config.query_threads);
  http_options.max_queries = static_cast<size_t>(config.max_queries);
  http_options.query_timeout_ms = config.query_timeout_s * 1000;
  if (!config.token_file.empty()) {
    auto token = ReadToken(config.token_file);
    if (!token.ok()) return Fail(token.status().message());
    http_options.token = *token;
  }
  if (!config.key_names.empty()) {
    auto names = billing::KeyNames::Load(config.key_names);
    if (!names.ok()) return Fail("--key-names: " + names.status().message());
    http_options.key_names = *names;
  }
  if (config.connect_tls && config.connect_tls->verify && config.connect_tls->ca.empty()) {
    return Fail("--connect-tls-verify needs --connect-tls-ca");
  }
  if (config.peers_tls && config.peers_tls->cert.empty()) {
    return Fail("--peers-tls-cert is required for TLS on --peers-listen");
  }

  teach::TeacherOptions teach_options;
  teach_options.refresh_ms = config.teach_refresh_s * 1000;
  for (const auto& [flag, list, suffix] :
       {std::tuple{"--aggregate", &config.aggregate, ".aggregate"},
        std::tuple{"--quota", &config.quota, ".quota"}}) {
    for (const auto& text : *list) {
      auto pair = teach::ParseTeachPair(text, suffix);
      if (!pair.ok()) return Fail(std::string(flag) + ": " + pair.status().message());
      (std::string_view(flag) == "--quota" ? teach_options.quota : teach_options.aggregate)
          .push_back(*pair);
    }
  }
  if (Status s = teach::CheckTeachPairs(teach_options); !s.ok()) {
    return Fail("--aggregate/--quota: " + s.message());
  }

  std::optional<sink::ClickHouseTarget> sink_target;
  if (!config.sink_clickhouse.empty()) {
    auto target = SinkTarget(config);
    if (!target.ok()) return Fail(target.status().message());
    sink_target = std::move(*target);
  } else if (!config.sink_clickhouse_password_file.empty() || !config.sink_clickhouse_ca.empty()) {
    return Fail("--sink-clickhouse-password-file and --sink-clickhouse-ca need --sink-clickhouse");
  }

  tsdb::StoreOptions store_options;
  store_options.path = config.data;
  store_options.sync_writes = config.sync_writes;
  store_options.apply_delay_ms = config.apply_delay_ms;
  store_options.raw_retention_ms = config.raw_retention_days * kDayMs;
  store_options.minute_retention_ms = config.minute_retention_days * kDayMs;
  store_options.hour_retention_ms = config.hour_retention_days * kDayMs;
  store_options.day_retention_ms = config.day_retention_days * kDayMs;
  store_options.event_feed = sink_target.has_value();
  // An every-key query shares its keys out between the query threads no other one uses.
  store_options.scan_threads = http_options.query_threads;
  // Declared before the store: it empties a fresh directory only after the store has closed.
  FirstStartGuard first_start(config.data);
  auto store = tsdb::Store::Open(store_options);
  if (!store.ok()) return Fail("data directory " + config.data + ": " + store.status().message());
  first_start.Opened();
  if (Status s = RememberBillingZone(**store, config.billing_tz, NowUnixMs()); !s.ok()) {
    return Fail("data directory " + config.data + ": recording --billing-tz: " + s.message());
  }

  // Teaching: the teacher observes what the store commits and fills the taught tables, which
  // every peer session sends from.
  ingest::TaughtTables taught(teach::TaughtNames(teach_options));
  teach::Teacher teacher(teach_options, **store, taught);
  (*store)->SetCommitObserver(&teacher);
  // The store reports its last commits to the teacher as it closes: on every way out, it is
  // closed before the teacher goes.
  struct CloseStoreFirst {
    tsdb::Store& store;
    ~CloseStoreFirst() { (void)store.Close(); }
  } close_store_first{**store};
  if (Status s = teacher.Start(); !s.ok()) return Fail("teaching: " + s.message());

  // The ClickHouse sink reads what the store committed on a thread of its own; declared after
  // close_store_first, it stops before the store closes.
  std::unique_ptr<sink::ClickHouseSink> clickhouse;
  if (sink_target) {
    sink::ClickHouseSinkOptions sink_options;
    sink_options.target = std::move(*sink_target);
    sink_options.ca_file = config.sink_clickhouse_ca;
    sink_options.server_name = config.name;
    clickhouse =
        std::make_unique<sink::ClickHouseSink>(std::move(sink_options), *(*store)->event_feed());
  }

  ingest::PeerServiceOptions peer_options;
  peer_options.local_name = config.name;
  peer_options.listen = config.peers_listen_enabled;
  peer_options.listen_address = config.peers_listen.host;
  peer_options.listen_port = config.peers_listen.port;
  for (const auto& target : config.connect) {
    peer_options.connect.push_back({target.name, target.address.host, target.address.port});
  }
  peer_options.allowed_peers = config.allow_peer;
  peer_options.listen_tls = ToTls(config.peers_tls);
  peer_options.connect_tls = ToTls(config.connect_tls);
  peer_options.resync_interval_ms = config.resync_interval_s * 1000;
  peer_options.taught = &taught;
  // The store records when each source was connected (data completeness).
  peer_options.sources = store->get();
  for (const auto& [source, dest] : teach_options.aggregate) {
    peer_options.raw_rate_tables.push_back(source);
  }

  boost::asio::io_context io(config.threads);
  ingest::PeerService peers(io, peer_options, **store);
  http::ServerHooks hooks;
  hooks.peers = [&peers] { return ToPeerInfo(peers.Snapshot()); };
  hooks.refused_peers = [&peers] {
    std::vector<http::RefusedPeerInfo> out;
    for (auto& r : peers.Refused()) {
      out.push_back(
          {std::move(r.name), std::move(r.address), std::move(r.reason), r.count, r.last_ms});
    }
    return out;
  };
  if (!teach_options.quota.empty()) hooks.quotas = &teacher;
  http::Server server(io, http_options, **store, hooks);

  // A failed start prints exactly one line: the components' own "listening" lines are held back
  // until both ports are bound.
  SetLogLevel(LogLevel::kWarn);
  if (Status s = server.Start(); !s.ok()) return Fail("--http: " + s.message());
  if (Status s = peers.Start(); !s.ok()) {
    server.Stop();
    return Fail("--peers-listen: " + s.message());
  }
  SetLogLevel(ToLogLevel(config.log_level));
  first_start.Keep();
  if (clickhouse) clickhouse->Start();
  MetricsRegistry::Global()
      .GetGauge("stickmeter_build_info", "Always 1; `version` is this binary's version",
                {{"version", STICKMETER_VERSION}})
      .Set(1);
  LogInfo("serve", "stickmeter " STICKMETER_VERSION " as peer '" + config.name + "', data in " +
                       config.data + ", HTTP on " + config.http.host + ":" +
                       std::to_string(server.port()) +
                       (config.peers_listen_enabled ? ", peers on " + config.peers_listen.host +
                                                          ":" + std::to_string(peers.listen_port())
                                                    : std::string(", not listening for peers")));

  // After a signal the loop ends by itself once in-flight work is done; a watchdog stops it
  // after kShutdownGrace if a client keeps it busy.
  std::mutex shutdown_mutex;
  std::condition_variable shutdown_cv;
  bool loop_finished = false;
  std::thread watchdog;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    LogInfo("serve", std::string("received ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
                         ", shutting down");
    peers.Stop();
    server.Stop();
    watchdog = std::thread([&] {
      std::unique_lock<std::mutex> lock(shutdown_mutex);
      if (!shutdown_cv.wait_for(lock, kShutdownGrace, [&] { return loop_finished; })) io.stop();
    });
  });

  std::vector<std::thread> threads;
  for (int i = 1; i < config.threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  {
    std::lock_guard<std::mutex> lock(shutdown_mutex);
    loop_finished = true;
  }
  shutdown_cv.notify_all();
  if (watchdog.joinable()) watchdog.join();

  // The store's last commits still reach the teacher; it stops after the store. The sink stops
  // first: what it has not shipped waits in the store for the next start.
  if (clickhouse) clickhouse->Stop();
  Status closed = (*store)->Close();
  teacher.Stop();
  if (!closed.ok()) return Fail("closing the store: " + closed.message());
  LogInfo("serve", "stopped cleanly");
  return 0;
}

}  // namespace stickmeter::app
