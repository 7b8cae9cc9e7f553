// Test support for the ClickHouse sink's tests: a clickhouse-server of its own (Debian's
// package) on loopback ports with a temporary configuration and data directory, the billing
// query of docs/clickhouse.md against it, and stickmeter's side of the comparison
// (GET /api/v1/usage).
//
// Every call is bounded in time (a server that does not answer within 30 s fails the test).
// Not thread-safe. The server is killed (SIGKILL) when the object goes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "tests/support/process.h"

namespace stickmeter::testing {

inline constexpr char kClickHouseServer[] = "/usr/sbin/clickhouse-server";
// The password of the `default` user in every test server (and in the sink's password file).
inline constexpr char kClickHousePassword[] = "s3cret-for-tests";

// Per key: a total of http_req_cnt of /quota.
using Totals = std::map<std::string, uint64_t>;

struct ClickHouseOptions {
  // Also serve https on https_port() with server.pem/server.key from there.
  std::filesystem::path tls_cert_dir;
  // The native protocol's port; 0: a free one. A cluster's members name each other's in
  // remote_servers, so the caller picks them first.
  uint16_t tcp_port = 0;
  // XML inserted into the server's <yandex> element (remote_servers, macros, zookeeper, ...).
  std::string extra_config;
};

class ClickHouse {
 public:
  explicit ClickHouse(std::filesystem::path dir, ClickHouseOptions options = {});

  uint16_t port() const { return http_port_; }
  uint16_t https_port() const { return https_port_; }
  uint16_t tcp_port() const { return tcp_port_; }
  // http://127.0.0.1:PORT/?database=DB[&table=T], for --sink-clickhouse.
  std::string SinkUrl(const std::string& database, const std::string& table = "") const;

  // Starts it and waits (bounded) until it answers queries.
  void Start();
  void Kill();

  // A read-only query (GET): the answer's body, or "" on any failure.
  std::string Query(const std::string& sql);
  // Any statement (POST, e.g. DDL): "" on success, else the status and ClickHouse's answer.
  std::string Execute(const std::string& sql);

  // The billing query of docs/clickhouse.md over [from, to) in Unix ms, deduplicated by event
  // id (FINAL), with `and_where` (e.g. "event_id LIKE 'sm-a:%'") added when not empty; nullopt
  // when the query fails (the table may not exist yet).
  std::optional<Totals> Billing(const std::string& table = "default.stickmeter_events",
                                const std::string& and_where = "", int64_t from = 0,
                                int64_t to = 4102444800000);

 private:
  std::filesystem::path dir_;
  uint16_t http_port_;
  uint16_t https_port_;
  uint16_t tcp_port_;
  std::unique_ptr<Process> process_;
};

// stickmeter's GET /api/v1/usage of http_req_cnt of /quota over [from, to): empty when it does
// not answer.
Totals StickmeterUsage(uint16_t http_port, int64_t from = 0, int64_t to = 4102444800000);

uint64_t Sum(const Totals& totals);

}  // namespace stickmeter::testing
