#include "app/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/support/status_matchers.h"

namespace stickmeter::app {
namespace {

std::string Render(const ServeConfig& c) {
  std::string out = "data=" + c.data + " name=" + c.name + " peers=" + c.peers_listen.host + ":" +
                    std::to_string(c.peers_listen.port) + " http=" + c.http.host + ":" +
                    std::to_string(c.http.port) + " connect=";
  for (const auto& t : c.connect) {
    out += t.name + "@" + t.address.host + ":" + std::to_string(t.address.port) + ",";
  }
  out += " allow=";
  for (const auto& a : c.allow_peer) out += a + ",";
  return out;
}

TEST(ServeConfigTest, DefaultsFollowTheCliReference) {
  auto c = ParseServeArgs({});
  ASSERT_OK(c);
  EXPECT_EQ(
      "data=./stickmeter-data name=stickmeter peers=127.0.0.1:20001 http=127.0.0.1:8080 "
      "connect= allow=",
      Render(*c));
  EXPECT_TRUE(c->sync_writes);
  EXPECT_EQ(3600, c->resync_interval_s);
  EXPECT_EQ(5000, c->apply_delay_ms);
}

TEST(ServeConfigTest, FlagsInBothSpellings) {
  auto c = ParseServeArgs({"--data", "/tmp/x", "--name=meter", "--peers-listen", "[::1]:0",
                           "--connect", "lb1@127.0.0.1:10000", "--connect=lb2@localhost:10001",
                           "--allow-peer", "lb1", "--http", "0.0.0.0:9000", "--insecure-no-auth"});
  ASSERT_OK(c);
  EXPECT_EQ(
      "data=/tmp/x name=meter peers=::1:0 http=0.0.0.0:9000 "
      "connect=lb1@127.0.0.1:10000,lb2@localhost:10001, allow=lb1,",
      Render(*c));
  EXPECT_TRUE(c->insecure_no_auth);
  auto off = ParseServeArgs(
      {"--sync-writes", "false", "--insecure-no-auth", "--name", "x", "--apply-delay-ms=0"});
  ASSERT_OK(off);
  EXPECT_FALSE(off->sync_writes);
  EXPECT_EQ(0, off->apply_delay_ms);
  EXPECT_TRUE(off->insecure_no_auth);
}

TEST(ServeConfigTest, BadFlagsNameThemselves) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"--bogus"}, "unknown flag --bogus"},
      {{"--http", "localhost"}, "--http: expected HOST:PORT, got 'localhost'"},
      {{"--http", "127.0.0.1:70000"}, "--http: expected HOST:PORT with a port from 0 to 65535"},
      {{"--connect", "127.0.0.1:1"}, "--connect: expected PEER@HOST:PORT"},
      {{"--connect", "lb1@127.0.0.1:0"}, "--connect: port 0 cannot be dialed"},
      {{"--threads", "0"}, "--threads: expected an integer from 1 to 256, got '0'"},
      {{"--query-threads", "-1"}, "--query-threads: expected an integer from 0 to 64, got '-1'"},
      {{"--max-queries", "0"}, "--max-queries: expected an integer from 1 to 10000, got '0'"},
      {{"--query-timeout", "0"}, "--query-timeout: expected an integer from 1 to 86400, got '0'"},
      {{"--sync-writes=maybe"}, "--sync-writes: expected true or false"},
      {{"--apply-delay-ms", "-1"},
       "--apply-delay-ms: expected an integer from 0 to 600000, got '-1'"},
      {{"--data"}, "--data needs a value"},
      {{"--data", "x", "--config"}, "--config needs a value"},
      {{"--config="}, "--config needs a value"},
      {{"--name", ""}, "--name: must not be empty"},
      {{"--http-host", "evil host"}, "--http-host: expected a host name"},
      {{"--http-host", "a/b"}, "--http-host: expected a host name"},
      {{"--http-host", ""}, "--http-host: expected a host name"},
      {{"--http-cors-origin", "billing.example.com"},
       "--http-cors-origin: expected * or an origin"},
      {{"--http-cors-origin", "https://billing.example.com/"},
       "--http-cors-origin: expected * or an origin"},
      {{"--http-cors-origin", "https://"}, "--http-cors-origin: expected * or an origin"},
      {{"--http-max-conns-per-client", "-1"},
       "--http-max-conns-per-client: expected an integer from 0 to 1000000, got '-1'"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{"--billing-tz", "Mars/Olympus"},
       "--billing-tz: 'Mars/Olympus' is not an IANA time zone (like UTC or Europe/Berlin)"},
      {{"--billing-tz", "../etc/passwd"}, "--billing-tz: '../etc/passwd' is not an IANA"},
      {{"--billing-tz", ""}, "--billing-tz: '' is not an IANA"},
  };
  for (const auto& tc : cases) {
    auto c = ParseServeArgs(tc.args);
    ASSERT_FALSE(c.ok()) << tc.args[0];
    EXPECT_EQ(0u, c.status().message().find(tc.message)) << c.status().message();
  }
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("stickmeter-config-" + std::to_string(::getpid()) + ".json");
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  std::filesystem::path path_;
};

// One billing zone for the server: UTC unless --billing-tz or the file's billing_tz names one.
TEST_F(ConfigFileTest, BillingZoneDefaultsToUtcAndComesFromFlagOrFile) {
  auto plain = ParseServeArgs({});
  ASSERT_OK(plain);
  EXPECT_EQ("UTC", plain->billing_tz);
  auto flag = ParseServeArgs({"--billing-tz", "America/New_York"});
  ASSERT_OK(flag);
  EXPECT_EQ("America/New_York", flag->billing_tz);

  Write(R"({"billing_tz": "Europe/Berlin"})");
  auto file = ParseServeArgs({"--config", path_.string()});
  ASSERT_OK(file);
  EXPECT_EQ("Europe/Berlin", file->billing_tz);
  auto both = ParseServeArgs({"--config", path_.string(), "--billing-tz=Asia/Tokyo"});
  ASSERT_OK(both);
  EXPECT_EQ("Asia/Tokyo", both->billing_tz);

  Write(R"({"billing_tz": "Europe/Nowhere"})");
  auto bad = ParseServeArgs({"--config", path_.string()});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(
      "--config: key 'billing_tz': --billing-tz: 'Europe/Nowhere' is not an IANA time zone (like "
      "UTC or Europe/Berlin)",
      bad.status().message());
}

TEST_F(ConfigFileTest, FileKeysApplyAndFlagsWin) {
  Write(R"({"data": "/srv/meter", "name": "m1", "connect": ["lb1@10.0.0.1:10000"],
            "http": "127.0.0.1:9999", "sync_writes": false, "resync_interval": 60})");
  auto c = ParseServeArgs(
      {"--config", path_.string(), "--http", "127.0.0.1:1234", "--connect", "lb9@127.0.0.1:5"});
  ASSERT_OK(c);
  EXPECT_EQ(
      "data=/srv/meter name=m1 peers=127.0.0.1:20001 http=127.0.0.1:1234 "
      "connect=lb9@127.0.0.1:5, allow=",
      Render(*c));
  EXPECT_FALSE(c->sync_writes);
  EXPECT_EQ(60, c->resync_interval_s);
}

TEST_F(ConfigFileTest, QueryLimits) {
  auto defaults = ParseServeArgs({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(0, defaults->query_threads);  // one fewer than the cores
  EXPECT_EQ(4, defaults->max_queries);
  EXPECT_EQ(30, defaults->query_timeout_s);
  Write(R"({"query_threads": 3, "max_queries": 8, "query_timeout": 10})");
  auto c = ParseServeArgs({"--config", path_.string(), "--query-timeout", "5"});
  ASSERT_OK(c);
  EXPECT_EQ(3, c->query_threads);
  EXPECT_EQ(8, c->max_queries);
  EXPECT_EQ(5, c->query_timeout_s);
}

// The ClickHouse sink: its URL is checked when parsed (flag or file key), its files are kept.
TEST_F(ConfigFileTest, ClickHouseSink) {
  auto defaults = ParseServeArgs({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ("", defaults->sink_clickhouse);
  Write(R"({"sink_clickhouse": "http://ch:8123/?database=m", "sink_clickhouse_password_file":
            "/etc/stickmeter/ch", "sink_clickhouse_ca": "/etc/ssl/ca.pem"})");
  auto c = ParseServeArgs({"--config", path_.string()});
  ASSERT_OK(c);
  EXPECT_EQ("http://ch:8123/?database=m", c->sink_clickhouse);
  EXPECT_EQ("/etc/stickmeter/ch", c->sink_clickhouse_password_file);
  EXPECT_EQ("/etc/ssl/ca.pem", c->sink_clickhouse_ca);
  auto flag = ParseServeArgs({"--sink-clickhouse", "https://u@ch/?table=t"});
  ASSERT_OK(flag);
  EXPECT_EQ("https://u@ch/?table=t", flag->sink_clickhouse);
  auto bad = ParseServeArgs({"--sink-clickhouse", "ch:8123"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(0u, bad.status().message().rfind("--sink-clickhouse: ", 0)) << bad.status().message();
  Write(R"({"sink_clickhouse": "http://u:pw@ch"})");
  EXPECT_FALSE(ParseServeArgs({"--config", path_.string()}).ok());
}

// The Host names and the per-client connection limit: flags and file keys, the command line
// replacing the file's list as for every repeatable flag.
TEST_F(ConfigFileTest, HttpHostsAndPerClientLimit) {
  auto defaults = ParseServeArgs({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->http_host.empty());
  EXPECT_EQ(32, defaults->http_max_conns_per_client);
  Write(R"({"http_host": ["stats.example.com", "[2001:db8::1]:8080"],
            "http_max_conns_per_client": 0})");
  auto file = ParseServeArgs({"--config", path_.string()});
  ASSERT_OK(file);
  EXPECT_EQ((std::vector<std::string>{"stats.example.com", "[2001:db8::1]:8080"}), file->http_host);
  EXPECT_EQ(0, file->http_max_conns_per_client);
  auto flags = ParseServeArgs({"--config", path_.string(), "--http-host", "a.example",
                               "--http-host=b.example", "--http-max-conns-per-client", "8"});
  ASSERT_OK(flags);
  EXPECT_EQ((std::vector<std::string>{"a.example", "b.example"}), flags->http_host);
  EXPECT_EQ(8, flags->http_max_conns_per_client);
  EXPECT_TRUE(defaults->http_cors_origin.empty());
  auto cors = ParseServeArgs({"--http-cors-origin", "https://billing.example.com",
                              "--http-cors-origin=http://[::1]:3000", "--http-cors-origin", "*"});
  ASSERT_OK(cors);
  EXPECT_EQ((std::vector<std::string>{"https://billing.example.com", "http://[::1]:3000", "*"}),
            cors->http_cors_origin);
  Write(R"({"http_host": "single.example"})");
  auto single = ParseServeArgs({"--config", path_.string()});
  ASSERT_OK(single);
  EXPECT_EQ(std::vector<std::string>{"single.example"}, single->http_host);
}

TEST_F(ConfigFileTest, PeersTlsVerifyNameImpliesVerify) {
  auto flags = ParseServeArgs({"--peers-tls-cert", "s.pem", "--peers-tls-verify-name"});
  ASSERT_OK(flags);
  ASSERT_TRUE(flags->peers_tls.has_value());
  EXPECT_TRUE(flags->peers_tls->verify);
  EXPECT_TRUE(flags->peers_tls->verify_name);
  Write(R"({"peers_tls_cert": "s.pem", "peers_tls_verify_name": true})");
  auto file = ParseServeArgs({"--config", path_.string()});
  ASSERT_OK(file);
  EXPECT_TRUE(file->peers_tls->verify_name);
  EXPECT_TRUE(file->peers_tls->verify);
  auto plain = ParseServeArgs({"--peers-tls-cert", "s.pem", "--peers-tls-verify"});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->peers_tls->verify_name);
}

// Not verifying is the default: saying so turns no TLS on (it once made every --connect dial
// TLS without a certificate).
TEST_F(ConfigFileTest, TlsVerifyFalseAloneLeavesTlsOff) {
  auto flags = ParseServeArgs(
      {"--connect-tls-verify=false", "--peers-tls-verify=false", "--peers-tls-verify-name=false"});
  ASSERT_OK(flags);
  EXPECT_FALSE(flags->connect_tls.has_value());
  EXPECT_FALSE(flags->peers_tls.has_value());
  Write(R"({"connect_tls_verify": false, "peers_tls_verify": false})");
  auto file = ParseServeArgs({"--config", path_.string()});
  ASSERT_OK(file);
  EXPECT_FALSE(file->connect_tls.has_value());
  EXPECT_FALSE(file->peers_tls.has_value());
  auto on = ParseServeArgs({"--connect-tls-ca", "ca.pem", "--connect-tls-verify=false"});
  ASSERT_OK(on);
  ASSERT_TRUE(on->connect_tls.has_value());
  EXPECT_FALSE(on->connect_tls->verify);
}

TEST_F(ConfigFileTest, BadFilesGiveOneLineReasons) {
  Write(R"({"dta": "/x"})");
  auto unknown = ParseServeArgs({"--config", path_.string()});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(std::string::npos, unknown.status().message().find("unknown key 'dta'"));

  Write("{not json");
  auto garbage = ParseServeArgs({"--config", path_.string()});
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(std::string::npos, garbage.status().message().find("is not a JSON object"));

  Write(R"({"threads": "many"})");
  auto wrong = ParseServeArgs({"--config", path_.string()});
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(std::string::npos, wrong.status().message().find("key 'threads'"));

  Write(R"({"data": true})");  // a text key: true is not a directory name
  auto boolean = ParseServeArgs({"--config", path_.string()});
  ASSERT_FALSE(boolean.ok());
  EXPECT_NE(std::string::npos, boolean.status().message().find("key 'data'"));

  Write("{\"name\": \"" + std::string(2 << 20, 'x') + "\"}");
  auto huge = ParseServeArgs({"--config", path_.string()});
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(std::string::npos, huge.status().message().find("larger than 1 MiB"));

  auto missing = ParseServeArgs({"--config", "/nonexistent/stickmeter.json"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string::npos, missing.status().message().find("cannot read"));
}

TEST(ExportConfigTest, PeriodOrRange) {
  auto month = ParseExportArgs({"--data", "d", "--period", "2026-10", "--tz", "Europe/Berlin"});
  ASSERT_OK(month);
  EXPECT_EQ("2026-10", *month->period);
  ASSERT_TRUE(month->tz.has_value());
  EXPECT_EQ("Europe/Berlin", *month->tz);
  // No --tz: the billing zone the store holds decides (app/billing_zone.h), not a default here.
  EXPECT_FALSE(ParseExportArgs({"--period", "2026-10"})->tz.has_value());

  auto range = ParseExportArgs({"--from", "0", "--to", "1000", "--format", "json"});
  ASSERT_TRUE(range.ok());
  EXPECT_EQ("json", range->format);

  EXPECT_FALSE(ParseExportArgs({}).ok());
  EXPECT_FALSE(ParseExportArgs({"--period", "2026-10", "--from", "0"}).ok());
  EXPECT_FALSE(ParseExportArgs({"--from", "0"}).ok());
  EXPECT_FALSE(ParseExportArgs({"--period", "2026-10", "--format", "xml"}).ok());
  EXPECT_FALSE(ParseExportArgs({"--period", "2026-10", "--sha256"}).ok());

  auto excel = ParseExportArgs({"--period", "2026-10", "--excel-safe"});
  ASSERT_OK(excel);
  EXPECT_TRUE(excel->excel_safe);
  EXPECT_FALSE(month->excel_safe);
  auto json = ParseExportArgs({"--period", "2026-10", "--excel-safe", "--format", "json"});
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(0u, json.status().message().find("--excel-safe:")) << json.status().message();
}

TEST(ExportConfigTest, InvoiceFlags) {
  auto invoice = ParseExportArgs({"--period", "2026-10", "--table", "/web", "--layout", "invoice",
                                  "--bytes-unit", "GiB", "--key-names", "names.csv"});
  ASSERT_OK(invoice);
  EXPECT_EQ("invoice", invoice->layout);
  EXPECT_EQ("GiB", invoice->bytes_unit.value_or(""));
  EXPECT_EQ("names.csv", invoice->key_names);
  auto rows = ParseExportArgs({"--period", "2026-10"});
  ASSERT_OK(rows);
  EXPECT_EQ("rows", rows->layout);
  EXPECT_FALSE(rows->bytes_unit.has_value());
  auto bad = ParseExportArgs({"--period", "2026-10", "--layout", "pivot"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ("--layout: expected rows or invoice, got 'pivot'", bad.status().message());
}

TEST(ServeConfigTest, KeyNamesFlagAndConfigKey) {
  auto flag = ParseServeArgs({"--key-names", "/etc/stickmeter/names.csv"});
  ASSERT_OK(flag);
  EXPECT_EQ("/etc/stickmeter/names.csv", flag->key_names);
  EXPECT_EQ("", ParseServeArgs({})->key_names);
  EXPECT_FALSE(ParseServeArgs({"--key-names", ""}).ok());
}

TEST(DecodeConfigTest, FileOrStdin) {
  auto plain = ParseDecodeArgs({});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ("-", plain->input);
  auto summary = ParseDecodeArgs({"--summary", "stream.bin"});
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->summary);
  EXPECT_EQ("stream.bin", summary->input);
  EXPECT_FALSE(ParseDecodeArgs({"a", "b"}).ok());
  EXPECT_FALSE(ParseDecodeArgs({"--sumary"}).ok());
}

}  // namespace
}  // namespace stickmeter::app
