// GET /api/v1/export?layout=invoice and GET /api/v1/names against the real tsdb::Store: the
// invoice's cells equal /api/v1/usage's totals, its bytes equal the export engine's (which
// `stickmeter export` calls) for the same request, its refusals are 400s naming the parameter,
// and the names list pages as /api/v1/keys does.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "billing/export.h"
#include "billing/time_parse.h"
#include "tests/http/http_client.h"
#include "tests/http/store_fixture.h"

namespace stickmeter::http {
namespace {

using nlohmann::json;
using testing::Get;

int64_t T(std::string_view text) { return *billing::ParseTime(text); }

class InvoiceApiTest : public testing::RealStoreTest {
 protected:
  void SetUp() override {
    OpenStore("http-invoice-test");
    // acme from both nodes, beta from lb2, k00..k11 from lb1 (for paging the names).
    Submit("lb1", "acme", T("2026-10-05T10:00:00Z"), 10, 1'500'000'000);
    Submit("lb2", "acme", T("2026-10-05T11:00:00Z"), 5, 2'000'000'000);
    Submit("lb2", "beta", T("2026-10-06T00:00:00Z"), 4, 999'999'500);
    for (int i = 0; i < 12; ++i) {
      char key[8];
      std::snprintf(key, sizeof key, "k%02d", i);
      Submit("lb1", key, T("2026-10-07T00:00:00Z"), 1, 0);
    }
    std::string file = "table,key,name\n/web,acme,\"Acme, Inc.\"\n/web,beta,=Beta\n";
    for (int i = 0; i < 12; ++i) {
      char line[32];
      std::snprintf(line, sizeof line, "/web,k%02d,Customer %d\n", i, i);
      file += line;
    }
    names_ = *billing::KeyNames::Parse(file, "names.csv");
    ServerOptions options;
    options.key_names = names_;
    Serve(std::move(options));
  }

  void Submit(const std::string& source, const std::string& key, int64_t t, uint64_t requests,
              uint64_t bytes) {
    static const auto table = [] {
      auto info = std::make_shared<ingest::TableInfo>();
      info->name = "/web";
      info->key_type = "string";
      info->key_size = 65;
      info->data_types = {"http_req_cnt", "bytes_out_cnt", "conn_cur"};
      return info;
    }();
    CommitEntry(source, source == "lb1" ? 1 : 2, table, key, t,
                {{"http_req_cnt", ingest::MetricKind::kCounter32, requests},
                 {"bytes_out_cnt", ingest::MetricKind::kCounter64, bytes},
                 {"conn_cur", ingest::MetricKind::kGauge, 1}});
  }

  // The error's code and message, or the body when it is none.
  std::string Error(const std::string& target, unsigned want = 400) {
    auto r = Get(server_->port(), target);
    EXPECT_EQ(want, r.status) << target << " " << r.body;
    auto doc = json::parse(r.body, nullptr, false);
    if (doc.is_discarded() || !doc.contains("error")) return r.body;
    return doc["error"]["code"].get<std::string>() + " " +
           doc["error"]["message"].get<std::string>();
  }

  std::shared_ptr<const billing::KeyNames> names_;
};

const std::string kMonth = "/api/v1/export?period=2026-10&tz=UTC&table=/web&layout=invoice";

TEST_F(InvoiceApiTest, InvoiceEqualsUsageAndTheEngineByteForByte) {
  auto r = Get(server_->port(), kMonth + "&per_source=true&bytes_unit=GB");
  ASSERT_EQ(200u, r.status) << r.body;
  const std::string p = "2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,/web,";
  std::string expected =
      "period_start,period_end,table,key,name,bytes_out_cnt_GB,bytes_out_cnt_GB@lb1,"
      "bytes_out_cnt_GB@lb2,http_req_cnt,http_req_cnt@lb1,http_req_cnt@lb2\r\n" +
      p + "acme,\"Acme, Inc.\",3.500000,1.500000,2.000000,15,10,5\r\n" + p +
      "beta,=Beta,1.000000,0.000000,1.000000,4,0,4\r\n";
  for (int i = 0; i < 12; ++i) {
    char row[64];
    std::snprintf(row, sizeof row, "k%02d,Customer %d,0.000000,0.000000,0.000000,1,1,0\r\n", i, i);
    expected += p + row;
  }
  EXPECT_EQ(expected, r.body);
  EXPECT_EQ("attachment; filename=\"stickmeter-2026-10-web-invoice.csv\"",
            r.Header("content-disposition"));

  // The engine behind `stickmeter export`, on the same store and request: the same bytes.
  billing::ExportRequest req;
  req.period = "2026-10";
  req.table = "/web";
  req.layout = "invoice";
  req.per_source = true;
  req.bytes_unit = "GB";
  req.names = names_;
  req.now_ms = T("2030-01-01T00:00:00Z");
  std::string engine;
  ASSERT_OK(billing::WriteExport(
      *store_, req, [&](std::string_view chunk) { engine.append(chunk); }, nullptr));
  EXPECT_EQ(r.body, engine);

  // Every total is /api/v1/usage's.
  auto doc = json::parse(Get(server_->port(), kMonth + "&format=json").body);
  EXPECT_EQ(json::parse(R"(["bytes_out_cnt","http_req_cnt"])"), doc["columns"]);
  for (const char* metric : {"bytes_out_cnt", "http_req_cnt"}) {
    auto usage =
        json::parse(Get(server_->port(), std::string("/api/v1/usage?table=/web&metric=") + metric +
                                             "&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z")
                        .body);
    json from_invoice = json::array();
    for (const auto& row : doc["rows"]) {
      if (row["values"][metric].get<uint64_t>() == 0) continue;
      from_invoice.push_back({{"key", row["key"]}, {"total", row["values"][metric]}});
    }
    EXPECT_EQ(usage["rows"], from_invoice) << metric;
  }
  EXPECT_EQ("Acme, Inc.", doc["rows"][0]["name"]);
}

TEST_F(InvoiceApiTest, BadParametersAre400sNamingThem) {
  EXPECT_EQ("bad_request layout: \"pivot\" is not rows or invoice",
            Error("/api/v1/export?period=2026-10&layout=pivot"));
  EXPECT_EQ("bad_request table: missing; layout=invoice exports one table",
            Error("/api/v1/export?period=2026-10&layout=invoice"));
  EXPECT_EQ("bad_request bytes_unit: applies to layout=invoice only",
            Error("/api/v1/export?period=2026-10&bytes_unit=GB"));
  EXPECT_EQ("bad_request bytes_unit: \"PB\" is not B, kB, MB, GB, TB, KiB, MiB, GiB or TiB",
            Error(kMonth + "&bytes_unit=PB"));
  EXPECT_EQ("bad_request metric: \"conn_cur\" is a gauge; exports sum counters only",
            Error(kMonth + "&metric=http_req_cnt,conn_cur"));
  EXPECT_EQ("not_found metric: no counter named \"gpc0\" in table \"/web\"",
            Error(kMonth + "&metric=gpc0", 404));
  EXPECT_EQ("bad_request excel_safe: applies to CSV only, not to format=json",
            Error(kMonth + "&format=json&excel_safe=1"));
  // The rows layout is unchanged: no name column, one metric.
  auto rows = Get(server_->port(), "/api/v1/export?period=2026-10&tz=UTC&table=/web");
  ASSERT_EQ(200u, rows.status);
  EXPECT_EQ(0u, rows.body.find("period_start,period_end,table,key,metric,total\r\n"));
  EXPECT_EQ(std::string::npos, rows.body.find("Acme"));
}

TEST_F(InvoiceApiTest, NamesArePagedLikeKeys) {
  auto page = json::parse(Get(server_->port(), "/api/v1/names?table=/web&limit=5").body);
  EXPECT_EQ("/web", page["table"]);
  ASSERT_EQ(5u, page["names"].size());
  EXPECT_EQ(json::parse(R"({"key":"acme","name":"Acme, Inc."})"), page["names"][0]);
  EXPECT_EQ(true, page["truncated"]);
  EXPECT_EQ("k02", page["next"]);
  // Following `next` to the end gives every name once, in key order.
  std::vector<std::string> keys;
  std::string target = "/api/v1/names?table=/web&limit=5";
  for (int pages = 0; pages < 10; ++pages) {
    auto doc = json::parse(Get(server_->port(), target).body);
    for (const auto& n : doc["names"]) keys.push_back(n["key"]);
    if (doc["next"].is_null()) {
      EXPECT_EQ(false, doc["truncated"]);
      break;
    }
    target = "/api/v1/names?table=/web&limit=5&after=" + doc["next"].get<std::string>();
  }
  ASSERT_EQ(14u, keys.size());
  EXPECT_EQ("acme", keys.front());
  EXPECT_EQ("k11", keys.back());
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));

  auto one = json::parse(Get(server_->port(), "/api/v1/names?table=/web&prefix=k1").body);
  EXPECT_EQ(2u, one["names"].size());
  EXPECT_EQ("Customer 11", one["names"][1]["name"]);
  // A table without names (the store's or not) has an empty list.
  auto none = json::parse(Get(server_->port(), "/api/v1/names?table=/other").body);
  EXPECT_EQ(json::array(), none["names"]);
  EXPECT_EQ(nullptr, none["next"]);

  EXPECT_EQ("bad_request table: missing", Error("/api/v1/names").substr(0, 26));
  EXPECT_EQ(0u, Error("/api/v1/names?table=/web&limit=0").find("bad_request limit:"));
  EXPECT_EQ(0u, Error("/api/v1/names?table=/web&key=acme").find("bad_request key:"));
}

TEST_F(InvoiceApiTest, WithoutANamesFileThereIsNoNameColumn) {
  Serve();
  auto names = json::parse(Get(server_->port(), "/api/v1/names?table=/web").body);
  EXPECT_EQ(json::array(), names["names"]);
  auto r = Get(server_->port(), kMonth + "&metric=http_req_cnt");
  ASSERT_EQ(200u, r.status);
  EXPECT_EQ(0u, r.body.find("period_start,period_end,table,key,http_req_cnt\r\n")) << r.body;
}

}  // namespace
}  // namespace stickmeter::http
