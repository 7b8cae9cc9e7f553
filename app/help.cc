#include <string>

#include "app/commands.h"

namespace stickmeter::app {

const char* CommandHelp(const std::string& command) {
  if (command == "serve") {
    return R"(stickmeter serve: receive HAProxy stick-table updates, store exact deltas, serve the API and UI

  --config FILE              JSON file with any of the keys below (dashes as underscores,
                             e.g. {"peers_listen": "0.0.0.0:20001", "connect": ["lb1@10.0.0.1:10000"]});
                             flags win over the file
  --data DIR                 data directory (RocksDB); created if missing. Default: ./stickmeter-data
  --name NAME                our peer name, as HAProxy's peers section calls us. Default: stickmeter
  --peers-listen ADDR:PORT   accept HAProxy peer connections here, or `off`. Default: 127.0.0.1:20001
  --connect PEER@HOST:PORT   also dial out to HAProxy peer PEER (its -L name); repeatable
  --allow-peer NAME          accept incoming peers with this name only; repeatable. Default: any
  --aggregate SRC[=DST]      teach every peer the sum over all nodes of SRC's counters, rates and
                             conn_cur, per key, as table DST. Default DST: SRC.aggregate; repeatable
  --quota SRC[=DST]          teach every peer per key of SRC: gpt0 = 1 while a quota (PUT
                             /api/v1/quotas) is reached, gpc0 = the usage. Default DST:
                             SRC.quota; repeatable
  --teach-refresh SECONDS    send every taught entry again this often, so nodes keep it before
                             their table's expire. Default: 60
  --http ADDR:PORT           HTTP API and UI. Default: 127.0.0.1:8080
  --http-host NAME           without --token-file, answer only requests whose Host header names
                             this server: the --http address, localhost, 127.0.0.1, [::1], or
                             NAME (the name you reach stickmeter by); repeatable. Others get 421
  --http-cors-origin ORIGIN  let pages of ORIGIN (https://billing.example.com) call the API from
                             a browser: CORS headers and preflights for it; * for any origin;
                             repeatable. Default: none
  --http-max-conns-per-client N
                             open HTTP connections from one client address; more are answered
                             503 with Retry-After: 1. 0 = no limit. Default: 32
  --token-file FILE          require `Authorization: Bearer <token>` on every call but
                             /api/v1/health; token = the file's first line without trailing
                             spaces, tabs or CR, at least 16 characters
  --insecure-no-auth         allow a non-loopback --http address without --token-file
  --billing-tz AREA/CITY     IANA time zone of billing periods when a request names none: API
                             exports and quotas, the UI's months and times, and `stickmeter
                             export` on this data directory (kept in the store). Default: UTC
  --key-names FILE           display names of keys: a CSV file with the header table,key,name
                             (at most 64 MiB), read at start; shown by the invoice export's name
                             column, GET /api/v1/names and the UI. Default: none
  --peers-tls-cert FILE      serve TLS on --peers-listen with this PEM certificate (and key)
  --peers-tls-key FILE       PEM key, if not in the certificate file
  --peers-tls-ca FILE        CA bundle to verify client certificates
  --peers-tls-verify         require and verify a client certificate from every peer
  --peers-tls-verify-name    also require that the client certificate names the peer of the
                             hello (a DNS subjectAltName, or the common name without one);
                             implies --peers-tls-verify
  --connect-tls-cert FILE    use TLS for --connect, presenting this client certificate
  --connect-tls-key FILE     PEM key, if not in the certificate file
  --connect-tls-ca FILE      CA bundle to verify HAProxy's certificate
  --connect-tls-verify       verify HAProxy's certificate (needs --connect-tls-ca)
  --connect-tls-server-name NAME
                             also require this name in HAProxy's certificate (and send it as SNI)
  --sync-writes true|false   fsync every group commit. Default: true
  --apply-delay-ms N         let acknowledged changes wait up to N ms in the journal before
                             writing them to the audit trail and rollups, summing each key's
                             updates meanwhile; queries read the journal, so they see every
                             change at once. 0 = after every commit. Default: 5000
  --resync-interval SECONDS  ask every peer for a full resync this often to reconcile, and right
                             after each month boundary (UTC); 0 = never. Default: 3600
  --raw-retention-days N     keep audit events N days (0 = forever). Default: 90
  --minute-retention-days N  keep 1-minute rollups N days. Default: 90
  --hour-retention-days N    keep 1-hour rollups N days. Default: 1098
  --day-retention-days N     keep 1-day rollups N days. Default: 0 (forever)
  --threads N                I/O threads (peers and HTTP). Default: 2
  --query-threads N          threads that run the API's store queries, at a lower priority
                             than the I/O threads, so queries never hold up the peers; a query
                             over every key of a large table shares its keys out between those
                             no other such query uses. Default: 0 = one fewer than the cores, at
                             least 1 (leaves a core to the peers)
  --max-queries N            API queries queued or running at once; more are answered 503 with
                             Retry-After: 1. Default: 4
  --query-timeout SECONDS    answer 504 to an API query not done by then (the query itself
                             runs to its end). Default: 30
  --sink-clickhouse URL      also insert every audit event into ClickHouse, exactly once, about
                             a second behind: http[s]://[USER@]HOST[:PORT]/?database=DB&table=T
                             (table default stickmeter_events, created if missing). A ClickHouse
                             outage only delays it; see docs/clickhouse.md. Default: off
  --sink-clickhouse-password-file FILE
                             the ClickHouse user's password: the file's first line
  --sink-clickhouse-ca FILE  CA bundle to verify an https ClickHouse. Default: the system's
  --log-level LEVEL          debug, info, warn or error. Default: info

SIGINT/SIGTERM stop accepting, flush, close the store and exit 0. A bad flag, an unusable data
directory or a port that cannot be bound exits non-zero with a one-line reason.
)";
  }
  if (command == "decode") {
    return R"(stickmeter decode [--summary] [FILE|-]

Decodes a captured HAProxy peers byte stream (the bytes a peer receives after `200\n`) and prints
one JSON object per message, one per line. Reads standard input when FILE is - or absent.
  --summary   print one JSON object with the number of messages of each type and of updates per
              table instead
Malformed input: prints {"type":"error","offset":N,"reason":"..."} for the first bad message and
exits 1.
)";
  }
  if (command == "export") {
    return R"(stickmeter export: billing-period totals per key and metric, from a data directory

  --data DIR          the data directory; works while `serve` runs. Default: ./stickmeter-data
  --period YYYY-MM    a calendar month in --tz
  --tz AREA/CITY      IANA time zone of the period and of the timestamps. Default: the
                      zone of `serve --billing-tz` on this data directory, else UTC
  --from T --to T     an explicit half-open range instead of --period (RFC 3339 or Unix ms,
                      from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z)
  --table T           only this table
  --metric M          only this counter metric (all counters by default); with --layout
                      invoice a comma-separated list, in column order
  --format csv|json   Default: csv
  --layout rows|invoice
                      rows: one row per key and metric. invoice: one row per key of --table
                      (required), one column per metric. Default: rows
  --per-source        one row per HAProxy node as well (adds a `source` column); with
                      --layout invoice, a column per node after each metric's total
  --bytes-unit U      invoice: bytes_in_cnt and bytes_out_cnt in B, kB, MB, GB, TB, KiB, MiB,
                      GiB or TiB, with 6 decimals rounded half up. Default: B
  --key-names FILE    invoice: add a name column from this CSV file (table,key,name), as
                      `serve --key-names`
  --excel-safe        CSV for spreadsheets: a table, key, metric or source name starting with
                      =, +, -, @, TAB or CR gets a leading ' so it is not run as a formula.
                      Without it the CSV holds the names exactly as stored
  --out FILE          write here instead of standard output
  --sha256            also write FILE.sha256 (sha256sum format)
The same request always produces the same bytes, identical to GET /api/v1/export. When
stickmeter was not receiving from every HAProxy node over the whole period, one line on stderr
says so (`stickmeter: warning: no data: ...` or `partly covered: ...`); the output is the same.
)";
  }
  if (command == "backup") {
    return R"(stickmeter backup [--data DIR] TARGET_DIR

Writes a consistent copy of the store (a RocksDB checkpoint) into TARGET_DIR, which must not
exist. Works while `serve` runs. Start from a backup with `stickmeter serve --data TARGET_DIR`.
)";
  }
  if (command == "version") return "stickmeter version: print the version\n";
  return nullptr;
}

}  // namespace stickmeter::app
