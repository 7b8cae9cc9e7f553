// The invoice layout of the export (layout=invoice): one row per key of one table, one column per
// counter metric (and per node), byte counters in a unit, display names, Excel-safe text cells,
// byte for byte, streamed in bounded chunks, and every refusal naming its parameter.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "billing/export.h"
#include "billing/time_parse.h"
#include "tests/billing/run_export.h"
#include "tests/http/fake_store.h"
#include "tests/http/sha256_hex.h"
#include "tests/support/status_matchers.h"

namespace stickmeter::billing {
namespace {

using http::Sha256Hex;
using http::testing::FakeStore;
using testing::Output;
using testing::RunExport;

int64_t T(std::string_view text) { return *ParseTime(text); }

// October 2026 of table /web, invoice layout.
ExportRequest Invoice() {
  ExportRequest r;
  r.period = "2026-10";
  r.table = "/web";
  r.layout = "invoice";
  r.now_ms = T("2030-01-01T00:00:00Z");
  return r;
}

// A table /web with counters gpc0, http_req_cnt and bytes_out_cnt, gauge conn_cur, nodes lb1
// and lb2, and a table /other.
void Fill(FakeStore& store) {
  tsdb::TableSummary web;
  web.name = "/web";
  web.key_type = "string";
  web.key_size = 65;
  web.counter_metrics = {"http_req_cnt", "gpc0", "bytes_out_cnt"};  // not sorted on purpose
  web.gauge_metrics = {"conn_cur"};
  web.sources = {"lb2", "lb1"};
  store.AddTable(web);
  tsdb::TableSummary other = web;
  other.name = "/other";
  store.AddTable(other);
  const int64_t t = T("2026-10-05T10:00:00Z");
  store.Add({"/web", "acme", "lb1", "gpc0", t, 10, 10});
  store.Add({"/web", "acme", "lb2", "gpc0", t, 5, 5});
  store.Add({"/web", "acme", "lb1", "http_req_cnt", t, 7, 7});
  store.Add({"/web", "acme", "lb1", "bytes_out_cnt", t, 1'000'000'499, 1'000'000'499});
  store.Add({"/web", "beta", "lb2", "bytes_out_cnt", t, 1'500'000'000, 1'500'000'000});
  store.Add({"/web", "a,b", "lb2", "http_req_cnt", t, 2, 2});
  store.Add({"/web", "gauge-only", "lb1", "conn_cur", t, 3, 3});
  store.Add({"/web", "acme", "lb1", "gpc0", T("2026-11-01T00:00:00Z"), 99, 99});  // after
  store.Add({"/other", "acme", "lb1", "gpc0", t, 1, 1});
}

const std::string P = "2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,/web,";

TEST(InvoiceTest, OneRowPerKeyOneColumnPerMetric) {
  FakeStore store;
  Fill(store);
  Output out = RunExport(store, Invoice());
  ASSERT_OK(out.status);
  // Metrics by name; keys sorted; a key with a gauge only has no row.
  EXPECT_EQ("period_start,period_end,table,key,bytes_out_cnt,gpc0,http_req_cnt\r\n" + P +
                "\"a,b\",0,0,2\r\n" + P + "acme,1000000499,15,7\r\n" + P +
                "beta,1500000000,0,0\r\n",
            out.body);
  EXPECT_EQ(Sha256Hex(out.body), out.sha);

  // A list of metrics gives the columns in its order; a key without usage in them has no row.
  ExportRequest listed = Invoice();
  listed.metric = "http_req_cnt,gpc0";
  out = RunExport(store, listed);
  ASSERT_OK(out.status);
  EXPECT_EQ("period_start,period_end,table,key,http_req_cnt,gpc0\r\n" + P + "\"a,b\",2,0\r\n" + P +
                "acme,7,15\r\n",
            out.body);
  listed.metric = "gpc0";
  out = RunExport(store, listed);
  ASSERT_OK(out.status);
  EXPECT_EQ("period_start,period_end,table,key,gpc0\r\n" + P + "acme,15\r\n", out.body);
}

TEST(InvoiceTest, EveryCellEqualsTheRowsLayout) {
  FakeStore store;
  Fill(store);
  for (bool per_source : {false, true}) {
    ExportRequest rows_req = Invoice();
    rows_req.layout = "rows";
    rows_req.format = "json";
    rows_req.per_source = per_source;
    Output rows = RunExport(store, rows_req);
    ASSERT_OK(rows.status);
    std::map<std::string, uint64_t> expected;  // "key column" -> total
    // Parsed into a local: a range-for over a part of a temporary reads freed memory.
    const nlohmann::json rows_doc = nlohmann::json::parse(rows.body);
    for (const auto& row : rows_doc["rows"]) {
      std::string column = row["metric"].get<std::string>();
      if (per_source) column += "@" + row["source"].get<std::string>();
      expected[row["key"].get<std::string>() + " " + column] = row["total"].get<uint64_t>();
    }
    ExportRequest inv = Invoice();
    inv.format = "json";
    inv.per_source = per_source;
    Output out = RunExport(store, inv);
    ASSERT_OK(out.status);
    std::map<std::string, uint64_t> cells, totals;
    const nlohmann::json out_doc = nlohmann::json::parse(out.body);
    for (const auto& row : out_doc["rows"]) {
      for (const auto& [column, value] : row["values"].items()) {
        const std::string key = row["key"].get<std::string>();
        if (value.get<uint64_t>() == 0) continue;
        if (!per_source || column.find('@') != std::string::npos) {
          cells[key + " " + column] = value.get<uint64_t>();
        } else {
          totals[key + " " + column] = value.get<uint64_t>();
        }
      }
    }
    EXPECT_EQ(expected, cells) << out.body;
    if (per_source) {
      // Each metric's total is the sum of its nodes' cells.
      std::map<std::string, uint64_t> sums;
      for (const auto& [cell, v] : cells) sums[cell.substr(0, cell.find('@'))] += v;
      EXPECT_EQ(sums, totals) << out.body;
    }
  }
}

TEST(InvoiceTest, PerNodeColumnsAndByteUnits) {
  FakeStore store;
  Fill(store);
  ExportRequest req = Invoice();
  req.per_source = true;
  req.bytes_unit = "GB";
  Output out = RunExport(store, req);
  ASSERT_OK(out.status);
  // 1000000499 B is 1.000000499 GB: 1.000000 rounded half up; nodes in name order.
  EXPECT_EQ(
      "period_start,period_end,table,key,bytes_out_cnt_GB,bytes_out_cnt_GB@lb1,"
      "bytes_out_cnt_GB@lb2,gpc0,gpc0@lb1,gpc0@lb2,http_req_cnt,http_req_cnt@lb1,"
      "http_req_cnt@lb2\r\n" +
          P + "\"a,b\",0.000000,0.000000,0.000000,0,0,0,2,0,2\r\n" + P +
          "acme,1.000000,1.000000,0.000000,15,10,5,7,7,0\r\n" + P +
          "beta,1.500000,0.000000,1.500000,0,0,0,0,0,0\r\n",
      out.body);

  req.per_source = false;
  req.bytes_unit = "KiB";
  req.metric = "bytes_out_cnt";
  out = RunExport(store, req);
  ASSERT_OK(out.status);
  // 1000000499 / 1024 = 976562.9873046875, rounded up; 1500000000 / 1024 = 1464843.75.
  EXPECT_EQ("period_start,period_end,table,key,bytes_out_cnt_KiB\r\n" + P +
                "acme,976562.987305\r\n" + P + "beta,1464843.750000\r\n",
            out.body);
}

TEST(InvoiceTest, DisplayNamesAndExcelSafeCells) {
  FakeStore store;
  Fill(store);
  store.Add({"/web", "=1+2", "lb1", "gpc0", T("2026-10-05T10:00:00Z"), 4, 4});
  auto names = KeyNames::Parse(
      "table,key,name\n/web,acme,\"Acme, Inc.\"\n/web,=1+2,@Formula Ltd\n/other,beta,Not here\n",
      "names.csv");
  ASSERT_OK(names);
  ExportRequest req = Invoice();
  req.metric = "gpc0,http_req_cnt";
  req.names = *names;
  Output out = RunExport(store, req);
  ASSERT_OK(out.status);
  EXPECT_EQ("period_start,period_end,table,key,name,gpc0,http_req_cnt\r\n" + P +
                "=1+2,@Formula Ltd,4,0\r\n" + P + "\"a,b\",,0,2\r\n" + P +
                "acme,\"Acme, Inc.\",15,7\r\n",
            out.body);
  req.excel_safe = true;
  out = RunExport(store, req);
  ASSERT_OK(out.status);
  EXPECT_EQ("period_start,period_end,table,key,name,gpc0,http_req_cnt\r\n" + P +
                "'=1+2,'@Formula Ltd,4,0\r\n" + P + "\"a,b\",,0,2\r\n" + P +
                "acme,\"Acme, Inc.\",15,7\r\n",
            out.body);

  // The rows layout is the same bytes with or without names.
  ExportRequest rows = Invoice();
  rows.layout = "rows";
  Output plain = RunExport(store, rows);
  rows.names = *names;
  EXPECT_EQ(plain.body, RunExport(store, rows).body);
  EXPECT_EQ(0u, plain.body.find("period_start,period_end,table,key,metric,total\r\n"));
}

TEST(InvoiceTest, JsonDocument) {
  FakeStore store;
  Fill(store);
  auto names = KeyNames::Parse("table,key,name\n/web,acme,Acme\n", "names.csv");
  ASSERT_OK(names);
  ExportRequest req = Invoice();
  req.format = "json";
  req.bytes_unit = "MB";
  req.metric = "bytes_out_cnt,gpc0";
  req.names = *names;
  Output out = RunExport(store, req);
  ASSERT_OK(out.status);
  // The period's coverage (billing/coverage.h, tested with the rows layout) comes before the
  // columns; the rest, byte for byte.
  const size_t coverage_at = out.body.find(",\"coverage\":{");
  const size_t columns_at = out.body.find(",\"columns\":[");
  ASSERT_NE(std::string::npos, coverage_at);
  ASSERT_LT(coverage_at, columns_at);
  EXPECT_EQ("partial", nlohmann::json::parse(out.body)["coverage"]["status"]);
  EXPECT_EQ(
      "{\"period\":\"2026-10\",\"tz\":\"UTC\",\"period_start\":\"2026-10-01T00:00:00Z\","
      "\"period_end\":\"2026-11-01T00:00:00Z\",\"from_ms\":1790812800000,\"to_ms\":"
      "1793491200000,\"table\":\"/"
      "web\",\"metric\":\"bytes_out_cnt,gpc0\",\"layout\":\"invoice\",\"bytes_unit\":\"MB\","
      "\"per_source\":false,\"partial\":false,\"columns\":[\"bytes_out_cnt_MB\",\"gpc0\"],"
      "\"rows\":[\n"
      "{\"key\":\"acme\",\"name\":\"Acme\",\"values\":{\"bytes_out_cnt_MB\":1000.000499,"
      "\"gpc0\":15}},\n"
      "{\"key\":\"beta\",\"name\":null,\"values\":{\"bytes_out_cnt_MB\":1500.000000,"
      "\"gpc0\":0}}\n"
      "]}\n",
      std::string(out.body).erase(coverage_at, columns_at - coverage_at));
  EXPECT_EQ(Sha256Hex(out.body), out.sha);
  auto doc = nlohmann::json::parse(out.body);
  EXPECT_EQ(2u, doc["rows"].size());

  // Nothing in the period: still a complete document, with its columns.
  req.period = "2025-01";
  doc = nlohmann::json::parse(RunExport(store, req).body);
  EXPECT_TRUE(doc["rows"].empty());
  EXPECT_EQ(2u, doc["columns"].size());
}

TEST(InvoiceTest, StreamsOneKeyAtATimeInBoundedChunks) {
  FakeStore store;
  Fill(store);
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "customer-" + std::to_string(i);
    store.Add({"/web", key, "lb1", "gpc0", T("2026-10-02T00:00:00Z"), 1, 1});
    store.Add({"/web", key, "lb2", "http_req_cnt", T("2026-10-02T00:00:00Z"), 2, 2});
  }
  Output out = RunExport(store, Invoice());
  ASSERT_OK(out.status);
  EXPECT_GT(out.chunks, 10u);
  EXPECT_LT(out.max_chunk, kExportChunkBytes + 1024);
  EXPECT_EQ(1 + 20000 + 3, std::count(out.body.begin(), out.body.end(), '\n'));
  EXPECT_NE(std::string::npos, out.body.find(P + "customer-19999,0,1,2\r\n"));

  auto resolved = ResolveExport(Invoice());
  ASSERT_OK(resolved);
  size_t calls = 0;
  Status s = StreamExport(
      store, *resolved,
      [&](std::string_view) {
        ++calls;
        return false;
      },
      nullptr);
  EXPECT_EQ(Status::Code::kUnavailable, s.code());
  EXPECT_EQ(1u, calls);
}

TEST(InvoiceTest, BadRequestsNameTheParameter) {
  FakeStore store;
  Fill(store);
  auto expect_error = [&](ExportRequest req, Status::Code code, std::string message) {
    Output out = RunExport(store, req);
    EXPECT_EQ(code, out.status.code()) << out.status.ToString();
    EXPECT_EQ(message, out.status.message());
    EXPECT_TRUE(out.body.empty());
  };
  ExportRequest r = Invoice();
  r.layout = "pivot";
  expect_error(r, Status::Code::kInvalidArgument, "layout: \"pivot\" is not rows or invoice");
  r = Invoice();
  r.table.reset();
  expect_error(r, Status::Code::kInvalidArgument,
               "table: missing; layout=invoice exports one table");
  r = Invoice();
  r.table = "/nope";
  expect_error(r, Status::Code::kNotFound, "table: no table named \"/nope\"");
  r = Invoice();
  r.bytes_unit = "GBs";
  expect_error(r, Status::Code::kInvalidArgument,
               "bytes_unit: \"GBs\" is not B, kB, MB, GB, TB, KiB, MiB, GiB or TiB");
  r.layout = "rows";
  r.bytes_unit = "GB";
  expect_error(r, Status::Code::kInvalidArgument, "bytes_unit: applies to layout=invoice only");
  r = Invoice();
  r.metric = "gpc0,conn_cur";
  expect_error(r, Status::Code::kInvalidArgument,
               "metric: \"conn_cur\" is a gauge; exports sum counters only");
  r.metric = "gpc0,gpc9";
  expect_error(r, Status::Code::kNotFound, "metric: no counter named \"gpc9\" in table \"/web\"");
  r.metric = "gpc0,gpc0";
  expect_error(r, Status::Code::kInvalidArgument, "metric: \"gpc0\" is listed twice");
  r.metric = "gpc0,";
  expect_error(r, Status::Code::kInvalidArgument, "metric: an empty name in the list");
  // The rows layout takes one metric, as before.
  r = Invoice();
  r.layout = "rows";
  r.metric = "gpc0,http_req_cnt";
  EXPECT_EQ(Status::Code::kNotFound, RunExport(store, r).status.code());
  r = Invoice();
  r.format = "json";
  r.excel_safe = true;
  expect_error(r, Status::Code::kInvalidArgument,
               "excel_safe: applies to CSV only, not to format=json");
}

TEST(InvoiceTest, FileName) {
  EXPECT_EQ("stickmeter-2026-10-web-invoice.csv", ResolveExport(Invoice())->file_name());
}

}  // namespace
}  // namespace stickmeter::billing
