#include "billing/export.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "billing/time_parse.h"
#include "tests/billing/run_export.h"
#include "tests/http/fake_store.h"
#include "tests/http/sha256_hex.h"
#include "tests/support/status_matchers.h"

namespace stickmeter::billing {
namespace {

using http::Sha256Hex;
using http::testing::FakeEvent;
using http::testing::FakeStore;
using http::testing::QuotaTable;
using testing::Output;
using testing::RunExport;

int64_t T(std::string_view text) {
  auto r = ParseTime(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? *r : 0;
}

ExportRequest Month(std::string period, std::string tz = "UTC") {
  ExportRequest r;
  r.period = std::move(period);
  r.tz = std::move(tz);
  r.now_ms = T("2030-01-01T00:00:00Z");
  return r;
}

// Splits one CSV record per line, honouring RFC 4180 quotes.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(field);
      field.clear();
      rows.push_back(row);
      row.clear();
      ++i;
    } else {
      field += c;
    }
  }
  EXPECT_TRUE(field.empty() && row.empty()) << "CSV must end with CRLF";
  return rows;
}

TEST(ExportTest, CsvRowsSortedAndQuoted) {
  FakeStore store;
  store.AddTable(QuotaTable());
  int64_t t = T("2026-10-05T10:00:00Z");
  store.Add({"/quota", "acme", "lb1", "gpc0", t, 10, 10});
  store.Add({"/quota", "acme", "lb2", "gpc0", t + 1, 5, 5});
  store.Add({"/quota", "a,b \"c\"\nd", "lb1", "http_req_cnt", t, 7, 7});
  store.Add({"/quota", "acme", "lb1", "conn_cur", t, 3, 3});                        // gauge
  store.Add({"/quota", "acme", "lb1", "gpc0", T("2026-11-01T00:00:00Z"), 99, 99});  // after
  Output out = RunExport(store, Month("2026-10"));
  ASSERT_OK(out.status);
  EXPECT_EQ(
      "period_start,period_end,table,key,metric,total\r\n"
      "2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,/quota,\"a,b \"\"c\"\"\nd\",http_req_cnt,7\r\n"
      "2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,/quota,acme,gpc0,15\r\n",
      out.body);
  EXPECT_EQ(Sha256Hex(out.body), out.sha);

  ExportRequest split = Month("2026-10");
  split.per_source = true;
  split.metric = "gpc0";
  out = RunExport(store, split);
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(
      "period_start,period_end,table,key,metric,total,source\r\n"
      "2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,/quota,acme,gpc0,10,lb1\r\n"
      "2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,/quota,acme,gpc0,5,lb2\r\n",
      out.body);
}

TEST(ExportTest, JsonDocument) {
  FakeStore store;
  store.AddTable(QuotaTable());
  store.Add({"/quota", "acme", "lb1", "gpc0", T("2026-10-05T10:00:00Z"), 18446744073709551615u,
             18446744073709551615u});
  store.Add({"/quota", "\xff\xfe", "lb1", "gpc0", T("2026-10-05T10:00:00Z"), 1, 1});
  ExportRequest req = Month("2026-10", "Europe/Berlin");
  req.format = "json";
  req.now_ms = T("2026-10-20T00:00:00Z");
  Output out = RunExport(store, req);
  ASSERT_OK(out.status);
  auto doc = nlohmann::json::parse(out.body);
  EXPECT_EQ("2026-10", doc["period"]);
  EXPECT_EQ("Europe/Berlin", doc["tz"]);
  EXPECT_EQ("2026-10-01T00:00:00+02:00", doc["period_start"]);
  EXPECT_EQ("2026-11-01T00:00:00+01:00", doc["period_end"]);
  EXPECT_EQ(T("2026-09-30T22:00:00Z"), doc["from_ms"]);
  EXPECT_EQ(true, doc["partial"]);
  ASSERT_EQ(2u, doc["rows"].size());
  EXPECT_EQ("acme", doc["rows"][0]["key"]);
  EXPECT_EQ(18446744073709551615u, doc["rows"][0]["total"].get<uint64_t>());
  EXPECT_EQ("\xef\xbf\xbd\xef\xbf\xbd", doc["rows"][1]["key"]);  // invalid UTF-8 replaced
  EXPECT_EQ(Sha256Hex(out.body), out.sha);

  // An empty period is still a complete document.
  req.period = "2025-01";
  out = RunExport(store, req);
  ASSERT_TRUE(out.status.ok());
  doc = nlohmann::json::parse(out.body);
  EXPECT_TRUE(doc["rows"].empty());
  EXPECT_EQ(false, doc["partial"]);
}

// Property: for random events over three months, the export of a month in a zone equals the
// sum of the events inside that month's boundaries (given here as UTC instants).
TEST(ExportTest, RandomizedTotalsEqualSumOfEventsAcrossZones) {
  struct Case {
    const char* period;
    const char* tz;
    const char* start;
    const char* end;
    const char* printed_start;
  };
  const Case cases[] = {
      {"2026-10", "UTC", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", "2026-10-01T00:00:00Z"},
      {"2026-10", "Europe/Berlin", "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z",
       "2026-10-01T00:00:00+02:00"},
      {"2026-03", "Europe/Berlin", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z",
       "2026-03-01T00:00:00+01:00"},
      {"2026-11", "America/New_York", "2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z",
       "2026-11-01T00:00:00-04:00"},
      {"2026-10", "Asia/Kathmandu", "2026-09-30T18:15:00Z", "2026-10-31T18:15:00Z",
       "2026-10-01T00:00:00+05:45"},
  };
  std::mt19937_64 rng(20261001);
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.period) + " " + c.tz);
    FakeStore store;
    store.AddTable(QuotaTable());
    int64_t start = T(c.start), end = T(c.end);
    std::map<std::tuple<std::string, std::string>, uint64_t> expected;
    // Events spread from two days before to two days after the month, clustered at the edges.
    std::uniform_int_distribution<int64_t> anywhere(start - 2 * 86'400'000, end + 2 * 86'400'000);
    std::uniform_int_distribution<int64_t> edge(-5000, 5000);
    std::uniform_int_distribution<uint64_t> delta(1, 1'000'000);
    for (int i = 0; i < 3000; ++i) {
      int64_t t = (i % 3 == 0) ? anywhere(rng) : (i % 3 == 1 ? start : end) + edge(rng);
      std::string key = "k" + std::to_string(rng() % 50);
      std::string metric = rng() % 2 ? "gpc0" : "http_req_cnt";
      uint64_t d = delta(rng);
      store.Add({"/quota", key, rng() % 2 ? "lb1" : "lb2", metric, t, 0, d});
      if (t >= start && t < end) expected[{key, metric}] += d;
    }
    Output out = RunExport(store, Month(c.period, c.tz));
    ASSERT_OK(out.status);
    auto rows = ParseCsv(out.body);
    ASSERT_FALSE(rows.empty());
    std::map<std::tuple<std::string, std::string>, uint64_t> got;
    std::vector<std::tuple<std::string, std::string>> order;
    for (size_t i = 1; i < rows.size(); ++i) {
      ASSERT_EQ(6u, rows[i].size());
      EXPECT_EQ(c.printed_start, rows[i][0]);
      EXPECT_EQ("/quota", rows[i][2]);
      got[{rows[i][3], rows[i][4]}] = std::stoull(rows[i][5]);
      order.emplace_back(rows[i][3], rows[i][4]);
    }
    EXPECT_EQ(expected, got);
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
    // Same request, same bytes.
    Output again = RunExport(store, Month(c.period, c.tz));
    EXPECT_EQ(out.body, again.body);
    EXPECT_EQ(out.sha, again.sha);
    EXPECT_EQ(Sha256Hex(out.body), out.sha);
  }
}

TEST(ExportTest, StreamsInBoundedChunks) {
  FakeStore store;
  store.AddTable(QuotaTable());
  for (int i = 0; i < 20000; ++i) {
    store.Add({"/quota", "customer-" + std::to_string(i), "lb1", "gpc0", T("2026-10-02T00:00:00Z"),
               1, 1});
  }
  Output out = RunExport(store, Month("2026-10"));
  ASSERT_TRUE(out.status.ok());
  EXPECT_GT(out.chunks, 10u);
  EXPECT_LT(out.max_chunk, kExportChunkBytes + 1024);
  EXPECT_EQ(20001u, ParseCsv(out.body).size());

  // A reader that gives up stops the export.
  auto resolved = ResolveExport(Month("2026-10"));
  ASSERT_TRUE(resolved.ok());
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

TEST(ExportTest, ExplicitRangeAndPartial) {
  FakeStore store;
  store.AddTable(QuotaTable());
  store.Add({"/quota", "acme", "lb1", "gpc0", T("2026-10-05T00:00:00Z"), 4, 4});
  store.Add({"/quota", "acme", "lb1", "gpc0", T("2026-10-06T00:00:00Z"), 6, 2});
  ExportRequest req;
  req.from_ms = T("2026-10-05T00:00:00Z");
  req.to_ms = T("2026-10-06T00:00:00Z");  // half-open: the second event is out
  req.tz = "Asia/Kathmandu";
  req.format = "json";
  req.now_ms = T("2026-10-05T12:00:00Z");
  Output out = RunExport(store, req);
  ASSERT_TRUE(out.status.ok());
  auto doc = nlohmann::json::parse(out.body);
  EXPECT_TRUE(doc["period"].is_null());
  EXPECT_EQ("2026-10-05T05:45:00+05:45", doc["period_start"]);
  EXPECT_EQ(true, doc["partial"]);
  ASSERT_EQ(1u, doc["rows"].size());
  EXPECT_EQ(4u, doc["rows"][0]["total"]);
  auto resolved = ResolveExport(req);
  ASSERT_TRUE(resolved.ok());
  EXPECT_TRUE(resolved->partial);
  req.now_ms = T("2026-10-06T00:00:00Z");
  EXPECT_FALSE(ResolveExport(req)->partial);
}

TEST(ExportTest, BadRequestsNameTheParameter) {
  FakeStore store;
  store.AddTable(QuotaTable());
  auto expect_error = [&](ExportRequest req, Status::Code code, std::string prefix) {
    Output out = RunExport(store, req);
    EXPECT_EQ(code, out.status.code()) << out.status.ToString();
    EXPECT_EQ(prefix, out.status.message().substr(0, prefix.size())) << out.status.ToString();
    EXPECT_TRUE(out.body.empty());
  };
  expect_error(Month("2026-13"), Status::Code::kInvalidArgument, "period:");
  expect_error(Month("2026-10", "Mars/Base"), Status::Code::kInvalidArgument, "tz:");
  ExportRequest r = Month("2026-10");
  r.format = "xml";
  expect_error(r, Status::Code::kInvalidArgument, "format:");
  r = Month("2026-10");
  r.from_ms = 1;
  expect_error(r, Status::Code::kInvalidArgument, "period:");
  r = ExportRequest{};
  r.from_ms = 10;
  r.to_ms = 10;
  expect_error(r, Status::Code::kInvalidArgument, "from:");
  r.to_ms.reset();
  expect_error(r, Status::Code::kInvalidArgument, "to:");
  r = Month("2026-10");
  r.table = "/nope";
  expect_error(r, Status::Code::kNotFound, "table:");
  r = Month("2026-10");
  r.metric = "conn_cur";
  expect_error(r, Status::Code::kInvalidArgument, "metric:");
  r.metric = "gpc9";
  expect_error(r, Status::Code::kNotFound, "metric:");
  store.FailWith(Status::IoError("disk on fire"));
  Output out = RunExport(store, Month("2026-10"));
  EXPECT_EQ(Status::Code::kIoError, out.status.code());
}

// Excel-safe CSV: text cells a spreadsheet would evaluate as a formula start with a quote; the
// timestamps and totals are untouched, and the default stays the stored bytes exactly.
TEST(ExportTest, ExcelSafeCsvQuotesFormulaCells) {
  FakeStore store;
  tsdb::TableSummary formula = QuotaTable();
  formula.name = "=HYPERLINK(1)";
  store.AddTable(QuotaTable());
  store.AddTable(formula);
  int64_t t = T("2026-10-05T10:00:00Z");
  for (std::string key : {"=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "plain", "a=b", "'q"}) {
    store.Add({"/quota", key, "-lb1", "gpc0", t, 3, 3});
  }
  store.Add({"=HYPERLINK(1)", "k", "lb1", "gpc0", t, 4, 4});

  ExportRequest exact = Month("2026-10");
  exact.per_source = true;
  Output plain = RunExport(store, exact);
  ASSERT_OK(plain.status);
  ExportRequest safe = exact;
  safe.excel_safe = true;
  Output quoted = RunExport(store, safe);
  ASSERT_OK(quoted.status);
  EXPECT_EQ(Sha256Hex(quoted.body), quoted.sha);

  const std::string p = "2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,";
  EXPECT_EQ("period_start,period_end,table,key,metric,total,source\r\n" + p +
                "/quota,\tx,gpc0,3,-lb1\r\n" + p + "/quota,\"\rx\",gpc0,3,-lb1\r\n" + p +
                "/quota,'q,gpc0,3,-lb1\r\n" + p + "/quota,+1,gpc0,3,-lb1\r\n" + p +
                "/quota,-1,gpc0,3,-lb1\r\n" + p + "/quota,=1+2,gpc0,3,-lb1\r\n" + p +
                "/quota,@SUM(A1),gpc0,3,-lb1\r\n" + p + "/quota,a=b,gpc0,3,-lb1\r\n" + p +
                "/quota,plain,gpc0,3,-lb1\r\n" + p + "=HYPERLINK(1),k,gpc0,4,lb1\r\n",
            plain.body);
  EXPECT_EQ("period_start,period_end,table,key,metric,total,source\r\n" + p +
                "/quota,'\tx,gpc0,3,'-lb1\r\n" + p + "/quota,\"'\rx\",gpc0,3,'-lb1\r\n" + p +
                "/quota,'q,gpc0,3,'-lb1\r\n" + p + "/quota,'+1,gpc0,3,'-lb1\r\n" + p +
                "/quota,'-1,gpc0,3,'-lb1\r\n" + p + "/quota,'=1+2,gpc0,3,'-lb1\r\n" + p +
                "/quota,'@SUM(A1),gpc0,3,'-lb1\r\n" + p + "/quota,a=b,gpc0,3,'-lb1\r\n" + p +
                "/quota,plain,gpc0,3,'-lb1\r\n" + p + "'=HYPERLINK(1),k,gpc0,4,lb1\r\n",
            quoted.body);
  // Parsed back, each quoted cell is the stored text behind one quote.
  auto rows = ParseCsv(quoted.body);
  ASSERT_EQ(11u, rows.size());
  EXPECT_EQ("'\rx", rows[2][3]);

  // JSON has no formulas: the option is refused there rather than silently ignored.
  safe.format = "json";
  Output json = RunExport(store, safe);
  EXPECT_TRUE(json.status.IsInvalidArgument());
  EXPECT_EQ(0u, json.status.message().find("excel_safe:")) << json.status.ToString();
}

// Periods and ranges outside 1970-01-01 .. 9999-12-31 are refused before the store is read,
// whoever fills in the request.
TEST(ExportTest, TimesOutsideTheSupportedSpanAreRefused) {
  FakeStore store;
  store.AddTable(QuotaTable());
  ExportRequest r;
  r.from_ms = 0;
  r.to_ms = kMaxTimeMs + 1;
  Output out = RunExport(store, r);
  EXPECT_TRUE(out.status.IsInvalidArgument());
  EXPECT_EQ(0u, out.status.message().find("to:")) << out.status.ToString();
  EXPECT_TRUE(out.body.empty());
  r.from_ms = -1;
  r.to_ms = 10;
  out = RunExport(store, r);
  EXPECT_EQ(0u, out.status.message().find("from:")) << out.status.ToString();
  // December 9999 ends at the first instant of year 10000; January 1970 in Berlin starts in
  // 1969.
  out = RunExport(store, Month("9999-12"));
  EXPECT_EQ(0u, out.status.message().find("period:")) << out.status.ToString();
  out = RunExport(store, Month("1970-01", "Europe/Berlin"));
  EXPECT_EQ(0u, out.status.message().find("period:")) << out.status.ToString();
  EXPECT_TRUE(RunExport(store, Month("9999-11")).status.ok());
  EXPECT_TRUE(RunExport(store, Month("1970-01")).status.ok());
}

TEST(ExportTest, FileNames) {
  ExportRequest r = Month("2026-10");
  r.table = "/quota";
  EXPECT_EQ("stickmeter-2026-10-quota.csv", ResolveExport(r)->file_name());
  r.format = "json";
  r.table = "be\"; rm";
  EXPECT_EQ("stickmeter-2026-10-berm.json", ResolveExport(r)->file_name());
}

}  // namespace
}  // namespace stickmeter::billing
