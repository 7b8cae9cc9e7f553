// Command-line and config-file parsing for `stickmeter`.
//
// Only app/ parses flags. Every `serve` flag has a key of the same name (dashes as underscores)
// in the JSON config file given by --config; flags win over the file. Parsing never exits the
// process: errors come back as InvalidArgument with a one-line reason naming the flag or key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace stickmeter::app {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

struct ConnectTarget {
  std::string name;  // the HAProxy peer's name (its -L / localpeer)
  HostPort address;
};

struct TlsConfig {
  std::string cert;  // PEM certificate chain (may contain the key)
  std::string key;   // PEM key; empty = in `cert`
  std::string ca;    // CA bundle to verify the other side
  bool verify = false;
  bool verify_name = false;  // --peers-tls-verify-name
  std::string server_name;   // --connect only: the name HAProxy's certificate must carry
};

struct ServeConfig {
  std::string data = "./stickmeter-data";
  std::string name = "stickmeter";
  HostPort peers_listen{"127.0.0.1", 20001};
  bool peers_listen_enabled = true;  // "--peers-listen off" disables the acceptor
  std::vector<ConnectTarget> connect;
  std::vector<std::string> allow_peer;
  std::vector<std::string> aggregate;  // "SRC[=DST]": teach cluster-wide sums of SRC
  std::vector<std::string> quota;      // "SRC[=DST]": teach quota flags of SRC
  int64_t teach_refresh_s = 60;        // re-teach every taught entry this often
  HostPort http{"127.0.0.1", 8080};
  std::vector<std::string> http_host;         // more names the Host header may carry
  std::vector<std::string> http_cors_origin;  // origins whose pages may call the API
  int64_t http_max_conns_per_client = 32;     // 0 = no limit
  std::string token_file;
  bool insecure_no_auth = false;
  std::optional<TlsConfig> peers_tls;    // TLS on --peers-listen
  std::optional<TlsConfig> connect_tls;  // TLS on --connect
  bool sync_writes = true;
  int64_t apply_delay_ms = 5000;     // 0 = write the journal out after every group commit
  int64_t resync_interval_s = 3600;  // 0 = off
  int64_t raw_retention_days = 90;
  int64_t minute_retention_days = 90;
  int64_t hour_retention_days = 3 * 366;
  int64_t day_retention_days = 0;  // 0 = forever
  int threads = 2;
  int64_t query_threads = 0;     // threads of the HTTP query pool; 0 = one fewer than the cores
  int64_t max_queries = 4;       // queued + running HTTP queries; more get 503
  int64_t query_timeout_s = 30;  // an HTTP query not answered by then gets 504
  std::string log_level = "info";
  // The IANA zone billing periods are in when a request names none (API, UI, quotas); checked
  // when parsed. Kept in the store too, so `stickmeter export` without --tz uses it.
  std::string billing_tz = "UTC";
  // --key-names: display names of keys (billing/key_names.h), read at start; empty = none.
  std::string key_names;
  // The ClickHouse sink (docs/clickhouse.md): its URL (checked when parsed), empty = off; a
  // file whose first line is the password; a CA bundle for https.
  std::string sink_clickhouse;
  std::string sink_clickhouse_password_file;
  std::string sink_clickhouse_ca;
};

// Parses `serve`'s arguments (those after the word `serve`), reading --config first if given.
Result<ServeConfig> ParseServeArgs(const std::vector<std::string>& args);

// "host:port", "[v6]:port". Port 0 is allowed (any free port).
Result<HostPort> ParseHostPort(const std::string& text);
// "lb1@host:port".
Result<ConnectTarget> ParseConnectTarget(const std::string& text);

struct ExportConfig {
  std::string data = "./stickmeter-data";
  std::optional<std::string> period;  // YYYY-MM
  // --tz; without it the billing zone `serve` keeps in the store (--billing-tz), else UTC.
  std::optional<std::string> tz;
  std::optional<std::string> from, to;
  std::optional<std::string> table, metric;
  std::string format = "csv";
  std::string out;  // empty = stdout
  bool per_source = false;
  bool excel_safe = false;      // CSV: quote text cells a spreadsheet would run as formulas
  bool write_sha256 = false;    // also write <out>.sha256
  std::string layout = "rows";  // rows | invoice
  std::optional<std::string> bytes_unit;  // invoice: B, kB, ..., TiB
  std::string key_names;                  // invoice: display names file; empty = none
};
Result<ExportConfig> ParseExportArgs(const std::vector<std::string>& args);

struct DecodeConfig {
  bool summary = false;
  std::string input = "-";
};
Result<DecodeConfig> ParseDecodeArgs(const std::vector<std::string>& args);

struct BackupConfig {
  std::string data = "./stickmeter-data";
  std::string target;
};
Result<BackupConfig> ParseBackupArgs(const std::vector<std::string>& args);

}  // namespace stickmeter::app
