// The ClickHouse sink's URL, DDL and rows: what is accepted, what is refused with a reason, and
// that any key bytes survive in the RowBinary rows.
#include "sink/clickhouse_url.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/status_matchers.h"

namespace stickmeter::sink {
namespace {

TEST(ClickHouseUrlTest, DefaultsAndParameters) {
  auto t = ParseClickHouseUrl("http://ch.example.com");
  ASSERT_OK(t);
  EXPECT_FALSE(t->tls);
  EXPECT_EQ("ch.example.com", t->host);
  EXPECT_EQ(8123, t->port);
  EXPECT_EQ("default", t->database);
  EXPECT_EQ("stickmeter_events", t->table);
  EXPECT_EQ("", t->user);

  t = ParseClickHouseUrl("https://billing@10.0.0.5:9443/?database=metering&table=events_v1");
  ASSERT_OK(t);
  EXPECT_TRUE(t->tls);
  EXPECT_EQ("10.0.0.5", t->host);
  EXPECT_EQ(9443, t->port);
  EXPECT_EQ("metering", t->database);
  EXPECT_EQ("events_v1", t->table);
  EXPECT_EQ("billing", t->user);
  EXPECT_EQ("https://10.0.0.5:9443/metering.events_v1", Describe(*t));

  t = ParseClickHouseUrl("https://[::1]/?table=t");
  ASSERT_OK(t);
  EXPECT_EQ("::1", t->host);
  EXPECT_EQ(8443, t->port);
}

TEST(ClickHouseUrlTest, RefusesWhatItCannotUse) {
  for (const char* bad :
       {"", "ch:8123", "ftp://ch", "http://", "http://ch:0", "http://ch:99999", "http://ch:x",
        "http://ch:", "http://user:secret@ch", "http://ch/db", "http://ch/?table=a-b",
        "http://ch/?table=1t", "http://ch/?database=", "http://ch/?format=JSON", "http://ch/?table",
        "http://c h", "http://ch#x", "http://[::1"}) {
    auto t = ParseClickHouseUrl(bad);
    EXPECT_FALSE(t.ok()) << bad;
    if (!t.ok()) {
      EXPECT_EQ(Status::Code::kInvalidArgument, t.status().code());
      EXPECT_EQ(std::string::npos, t.status().message().find('\n'));
    }
  }
}

// ClickHouse user names are not identifiers: the name only travels in the Authorization header,
// so anything Basic authentication can carry is accepted, percent-decoded.
TEST(ClickHouseUrlTest, UserNamesAsClickHouseAllowsThem) {
  for (auto [url, user] : std::initializer_list<std::pair<const char*, const char*>>{
           {"http://svc-stickmeter@ch", "svc-stickmeter"},
           {"http://first.last@ch", "first.last"},
           {"http://a~b_c-1@ch:9000/?table=t", "a~b_c-1"},
           {"http://9lives@ch", "9lives"},
           {"http://billing%40corp@ch", "billing@corp"},
           {"http://caf%C3%A9@ch", "caf\xc3\xa9"},
           {"http://a%20b@ch", "a b"}}) {
    auto t = ParseClickHouseUrl(url);
    ASSERT_OK(t);
    EXPECT_EQ(user, t->user) << url;
    EXPECT_EQ("ch", t->host) << url;
  }
  for (const char* bad :
       {"http://@ch", "http://a%3Ab@ch", "http://a%0Ab@ch", "http://a%7fb@ch", "http://a%zzb@ch",
        "http://a%4@ch", "http://a b@ch", "http://a@b@ch", "http://a\nb@ch", "http://a\"b@ch"}) {
    auto t = ParseClickHouseUrl(bad);
    EXPECT_FALSE(t.ok()) << bad;
    if (!t.ok()) {
      EXPECT_EQ(Status::Code::kInvalidArgument, t.status().code());
      EXPECT_NE(std::string::npos, t.status().message().find("user name")) << t.status().message();
      EXPECT_EQ(std::string::npos, t.status().message().find('\n')) << t.status().message();
    }
  }
}

// As in the HTTP API, a parameter given twice is refused rather than the last one taken.
TEST(ClickHouseUrlTest, RepeatedParametersAreRefused) {
  for (auto [url, name] : std::initializer_list<std::pair<const char*, std::string>>{
           {"http://ch/?table=a&table=b", "'table'"},
           {"http://ch/?table=a&table=a", "'table'"},
           {"http://ch/?database=a&table=t&database=b", "'database'"}}) {
    auto t = ParseClickHouseUrl(url);
    ASSERT_FALSE(t.ok()) << url;
    EXPECT_EQ(Status::Code::kInvalidArgument, t.status().code());
    EXPECT_EQ(0u, t.status().message().find(name + " is given more than once"))
        << t.status().message();
    EXPECT_EQ(std::string::npos, t.status().message().find('\n'));
  }
  ASSERT_OK(ParseClickHouseUrl("http://ch/?database=a&table=b"));
}

// RowBinary: every String is its length (LEB128) and its bytes, every UInt64 8 bytes
// little-endian, in the INSERT's column order.
std::string U64(uint64_t x) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>(x >> (8 * i));
  return out;
}

TEST(ClickHouseUrlTest, RowsCarryEveryKeyByte) {
  tsdb::FeedEvent e;
  e.seq = 42;
  e.t_ms = 1'700'000'000'123;
  e.source = "lb1";
  e.table = "/quota";
  e.key = std::string("a\tb\\c\nd\re\0f", 11);
  e.metric = "http_req_cnt";
  e.value = 10;
  e.delta = 3;
  e.reason = "increment";
  std::string row;
  AppendRow(row, "sm-eu:0123456789abcdef", e);
  EXPECT_EQ(std::string("\x19sm-eu:0123456789abcdef:42") + U64(1'700'000'000'123) + "\x03lb1" +
                "\x06/quota" + "\x0b" + e.key + "\x0chttp_req_cnt" + U64(10) + U64(3) +
                "\x09increment",
            row);
}

TEST(ClickHouseUrlTest, LongStringsHaveAMultiByteLength) {
  tsdb::FeedEvent e;
  e.seq = 18'446'744'073'709'551'615u;  // the largest sequence number: 20 digits
  e.t_ms = -5;                          // before 1970 cannot happen; sent as 0
  e.key = std::string(300, 'k');
  std::string row;
  AppendRow(row, "p", e);
  EXPECT_EQ(std::string("\x16p:18446744073709551615") + U64(0) + std::string(1, '\0') +
                std::string(1, '\0') + "\xac\x02" + e.key + std::string(1, '\0') + U64(0) + U64(0) +
                std::string(1, '\0'),
            row);
}

TEST(ClickHouseUrlTest, Sql) {
  auto t = ParseClickHouseUrl("http://ch/?database=m&table=ev");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(
      "CREATE TABLE IF NOT EXISTS m.ev (event_id String, ts_ms UInt64, source String, "
      "stick_table String, key String, metric String, value UInt64, delta UInt64, reason String) "
      "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(toDateTime(intDiv(ts_ms, 1000))) "
      "ORDER BY event_id",
      CreateTableSql(*t));
  EXPECT_EQ(
      "INSERT INTO m.ev (event_id, ts_ms, source, stick_table, key, metric, value, delta, reason) "
      "FORMAT RowBinary",
      InsertSql(*t));
  EXPECT_EQ("INSERT%20INTO%20m.ev", UrlEncode("INSERT INTO m.ev"));
}

}  // namespace
}  // namespace stickmeter::sink
