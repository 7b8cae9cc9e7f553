#include "tests/sink/clickhouse_server.h"

#include <signal.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sink/clickhouse_url.h"

namespace stickmeter::testing {

namespace fs = std::filesystem;
using sink::UrlEncode;

ClickHouse::ClickHouse(fs::path dir, ClickHouseOptions options)
    : dir_(std::move(dir)),
      http_port_(FreePort()),
      https_port_(FreePort()),
      tcp_port_(options.tcp_port != 0 ? options.tcp_port : FreePort()) {
  fs::create_directories(dir_ / "data");
  std::string https;
  if (!options.tls_cert_dir.empty()) {
    https = "  <https_port>" + std::to_string(https_port_) +
            "</https_port>\n  <openSSL><server><certificateFile>" +
            (options.tls_cert_dir / "server.pem").string() + "</certificateFile><privateKeyFile>" +
            (options.tls_cert_dir / "server.key").string() +
            "</privateKeyFile><verificationMode>none</verificationMode>"
            "<loadDefaultCAFile>false</loadDefaultCAFile></server></openSSL>\n";
  }
  WriteFile(dir_ / "config.xml",
            "<?xml version=\"1.0\"?>\n<yandex>\n"
            "  <logger><level>warning</level><console>1</console></logger>\n"
            "  <listen_host>127.0.0.1</listen_host>\n"
            "  <http_port>" +
                std::to_string(http_port_) + "</http_port>\n  <tcp_port>" +
                std::to_string(tcp_port_) +
                "</tcp_port>\n"
                // Replicas fetch parts from each other over this port.
                "  <interserver_http_host>127.0.0.1</interserver_http_host>\n"
                "  <interserver_http_port>" +
                std::to_string(FreePort()) + "</interserver_http_port>\n  <path>" +
                (dir_ / "data").string() + "/</path>\n  <tmp_path>" + (dir_ / "tmp").string() +
                "/</tmp_path>\n  <user_files_path>" + (dir_ / "user_files").string() +
                "/</user_files_path>\n  <format_schema_path>" + (dir_ / "format_schemas").string() +
                "/</format_schema_path>\n"
                "  <users_config>" +
                (dir_ / "users.xml").string() + "</users_config>\n" + https +
                "  <default_profile>default</default_profile>\n"
                "  <default_database>default</default_database>\n"
                "  <mark_cache_size>5368709</mark_cache_size>\n" +
                options.extra_config + "</yandex>\n");
  WriteFile(dir_ / "users.xml",
            "<?xml version=\"1.0\"?>\n<yandex>\n  <profiles><default></default></profiles>\n"
            "  <users><default><password>" +
                std::string(kClickHousePassword) +
                "</password><networks><ip>127.0.0.1</ip></networks>"
                "<profile>default</profile><quota>default</quota></default></users>\n"
                "  <quotas><default></default></quotas>\n</yandex>\n");
}

std::string ClickHouse::SinkUrl(const std::string& database, const std::string& table) const {
  return "http://127.0.0.1:" + std::to_string(http_port_) + "/?database=" + database +
         (table.empty() ? "" : "&table=" + table);
}

void ClickHouse::Start() {
  process_ = std::make_unique<Process>(
      kClickHouseServer,
      std::vector<std::string>{"--config-file=" + (dir_ / "config.xml").string()},
      dir_ / "clickhouse.log");
  ASSERT_TRUE(Eventually([&] { return Query("SELECT 1") == "1\n"; }, std::chrono::seconds(30)))
      << ReadFile(dir_ / "clickhouse.log");
}

void ClickHouse::Kill() {
  if (process_) {
    process_->Signal(SIGKILL);
    process_->Wait();
    process_.reset();
  }
}

std::string ClickHouse::Query(const std::string& sql) {
  auto r = HttpRequest(
      http_port_, "GET",
      "/?user=default&password=" + std::string(kClickHousePassword) + "&query=" + UrlEncode(sql));
  if (!r || r->status != 200) return "";
  return r->body;
}

std::string ClickHouse::Execute(const std::string& sql) {
  // GET is read-only in ClickHouse; a POST without a body needs its Content-Length.
  auto r = HttpRequest(
      http_port_, "POST",
      "/?user=default&password=" + std::string(kClickHousePassword) + "&query=" + UrlEncode(sql),
      {"Content-Length: 0"});
  if (!r) return "no answer";
  if (r->status != 200) return std::to_string(r->status) + ": " + r->body;
  return "";
}

std::optional<Totals> ClickHouse::Billing(const std::string& table, const std::string& and_where,
                                          int64_t from, int64_t to) {
  auto r = HttpRequest(
      http_port_, "GET",
      "/?user=default&password=" + std::string(kClickHousePassword) + "&query=" +
          UrlEncode(
              "SELECT key, sum(delta) FROM " + table +
              " FINAL WHERE stick_table = '/quota' AND metric = 'http_req_cnt' AND ts_ms >= " +
              std::to_string(from) + " AND ts_ms < " + std::to_string(to) +
              (and_where.empty() ? "" : " AND " + and_where) +
              " GROUP BY key FORMAT TabSeparated"));
  if (!r || r->status != 200) return std::nullopt;
  Totals totals;
  std::istringstream in(r->body);
  std::string key;
  uint64_t sum = 0;
  while (std::getline(in, key, '\t') && in >> sum) {
    totals[key] = sum;
    in.ignore(1);
  }
  return totals;
}

Totals StickmeterUsage(uint16_t http_port, int64_t from, int64_t to) {
  auto r =
      HttpRequest(http_port, "GET",
                  "/api/v1/usage?table=/quota&metric=http_req_cnt&from=" + std::to_string(from) +
                      "&to=" + std::to_string(to));
  Totals totals;
  if (!r || r->status != 200) return totals;
  auto doc = nlohmann::json::parse(r->body, nullptr, false);
  if (doc.is_discarded()) return totals;
  for (const auto& row : doc["rows"]) {
    totals[row["key"].get<std::string>()] = row["total"].get<uint64_t>();
  }
  return totals;
}

uint64_t Sum(const Totals& totals) {
  uint64_t n = 0;
  for (const auto& [key, v] : totals) n += v;
  return n;
}

}  // namespace stickmeter::testing
