// The ClickHouse sink's target and what it sends: the --sink-clickhouse URL, the table's DDL,
// the INSERT statement and the rows (RowBinary: length-prefixed strings, so any key bytes arrive
// as sent, and little for ClickHouse to parse).
//
// Pure functions; thread-safe. ParseClickHouseUrl fails with InvalidArgument and a one-line
// reason naming what is wrong (the caller adds the flag name).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "tsdb/event_feed.h"

namespace stickmeter::sink {

inline constexpr char kDefaultTable[] = "stickmeter_events";

struct ClickHouseTarget {
  bool tls = false;  // https
  std::string host;  // a name or an IP literal (without brackets)
  uint16_t port = 0;
  std::string database = "default";
  std::string table = kDefaultTable;
  std::string user;      // from the URL's user@ part; empty: ClickHouse's "default"
  std::string password;  // from the password file, never from the URL
};

// http[s]://[USER@]HOST[:PORT][/][?database=DB&table=T]. The port defaults to 8123 (http) and
// 8443 (https); database and table names are [A-Za-z_][A-Za-z0-9_]*, each given at most once.
// The user name is percent-decoded and may hold any character but ':' and control characters.
// A password in the URL is refused (it would show in `ps` and in logs): use the password file.
Result<ClickHouseTarget> ParseClickHouseUrl(std::string_view url);

// "http://host:port/database.table", for logs (no credentials).
std::string Describe(const ClickHouseTarget& t);

// CREATE TABLE IF NOT EXISTS for the target (docs/clickhouse.md has the same text).
std::string CreateTableSql(const ClickHouseTarget& t);
// "INSERT INTO db.table (columns) FORMAT RowBinary".
std::string InsertSql(const ClickHouseTarget& t);
// The event's id: "<prefix>:<store sequence number>"; the sink's prefix is
// "<server name>:<store id>" (tsdb::EventFeed::StoreId).
std::string EventId(std::string_view prefix, uint64_t seq);
// Appends one RowBinary row of the event, its columns in InsertSql's order: a String is its
// length (unsigned LEB128) and bytes, a UInt64 8 bytes little-endian.
void AppendRow(std::string& out, std::string_view id_prefix, const tsdb::FeedEvent& e);
// `text` as a URL query component (percent-encoded but unreserved characters).
std::string UrlEncode(std::string_view text);

}  // namespace stickmeter::sink
