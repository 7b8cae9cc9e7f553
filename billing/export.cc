#include "billing/export.h"

#include "billing/coverage.h"
#include "billing/export_internal.h"
#include "billing/time_parse.h"
#include "common/json_writer.h"

namespace stickmeter::billing {
namespace {

// Caches the quoted form of a repeated string (table and metric names repeat row after row).
class QuotedCache {
 public:
  template <typename Quote>
  const std::string& Get(const std::string& raw, Quote quote) {
    if (!valid_ || raw != raw_) {
      raw_ = raw;
      quoted_.clear();
      quote(quoted_, raw);
      valid_ = true;
    }
    return quoted_;
  }

 private:
  bool valid_ = false;
  std::string raw_, quoted_;
};

// A text cell of a JSON export (QuotedCache wants a function of two arguments).
void AppendJsonText(std::string& out, std::string_view text) { AppendJsonString(out, text); }

}  // namespace

std::string_view ResolvedExport::content_type() const {
  return json ? "application/json" : "text/csv; charset=utf-8";
}

std::string ResolvedExport::file_name() const {
  std::string name = "stickmeter-";
  if (period) {
    name += *period;
  } else {
    name += std::to_string(from_ms) + "-" + std::to_string(to_ms);
  }
  if (table) {
    name += '-';
    for (char c : *table) {
      bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
      if (safe) name += c;
    }
  }
  if (invoice) name += "-invoice";
  name += json ? ".json" : ".csv";
  return name;
}

void AppendCsvField(std::string& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(field);
    return;
  }
  out += '"';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

void AppendExcelSafeCsvField(std::string& out, std::string_view field) {
  if (field.empty() || std::string_view("=+-@\t\r").find(field.front()) == std::string_view::npos) {
    return AppendCsvField(out, field);
  }
  std::string prefixed = "'";
  prefixed.append(field);
  AppendCsvField(out, prefixed);
}

Result<ResolvedExport> ResolveExport(const ExportRequest& request) {
  ResolvedExport r;
  if (request.format == "json") {
    r.json = true;
  } else if (request.format != "csv") {
    return Status::InvalidArgument("format: \"" + request.format.substr(0, 32) +
                                   "\" is not csv or json");
  }
  if (request.excel_safe && r.json) {
    return Status::InvalidArgument("excel_safe: applies to CSV only, not to format=json");
  }
  r.excel_safe = request.excel_safe;
  auto zone = LocateZone(request.tz);
  if (!zone.ok()) return zone.status().WithContext("tz");
  r.zone = *zone;
  r.tz = request.tz;
  if (request.period) {
    if (request.from_ms || request.to_ms) {
      return Status::InvalidArgument("period: give either period or from and to, not both");
    }
    auto month = ResolveMonth(*request.period, r.zone);
    if (!month.ok()) return month.status().WithContext("period");
    r.from_ms = month->start_ms;
    r.to_ms = month->end_ms;
    r.period = request.period;
    // A month at either end of the supported span can start or end outside it in some zones.
    if (r.from_ms < kMinTimeMs || r.to_ms > kMaxTimeMs) {
      return Status::InvalidArgument("period: \"" + *request.period + "\" in " + request.tz +
                                     " is not inside the supported times, "
                                     "1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z");
    }
  } else {
    if (!request.from_ms) return Status::InvalidArgument("from: missing (or give period)");
    if (!request.to_ms) return Status::InvalidArgument("to: missing (or give period)");
    r.from_ms = *request.from_ms;
    r.to_ms = *request.to_ms;
    // Parsed times are in range already; this guards callers that fill in Unix ms themselves.
    if (Status s = CheckTimeInRange(r.from_ms, std::to_string(r.from_ms)); !s.ok()) {
      return s.WithContext("from");
    }
    if (Status s = CheckTimeInRange(r.to_ms, std::to_string(r.to_ms)); !s.ok()) {
      return s.WithContext("to");
    }
    if (r.from_ms >= r.to_ms) {
      return Status::InvalidArgument("from: must be before to (the range is [from, to))");
    }
  }
  if (request.table && request.table->empty()) return Status::InvalidArgument("table: empty");
  if (request.metric && request.metric->empty()) return Status::InvalidArgument("metric: empty");
  r.table = request.table;
  r.metric = request.metric;
  r.per_source = request.per_source;
  if (Status s = internal::ResolveLayout(request, r); !s.ok()) return s;
  r.period_start = FormatRfc3339InZone(r.from_ms, r.zone);
  r.period_end = FormatRfc3339InZone(r.to_ms, r.zone);
  r.partial = r.to_ms > request.now_ms;
  return r;
}

Status CheckExportFilters(tsdb::QueryService& store, const ResolvedExport& resolved) {
  if (resolved.invoice) return internal::CheckInvoiceFilters(store, resolved);
  if (!resolved.table && !resolved.metric) return Status::Ok();
  auto tables = store.Tables();
  if (!tables.ok()) return tables.status();
  bool table_found = false, counter = false, gauge = false;
  for (const auto& t : *tables) {
    if (resolved.table && t.name != *resolved.table) continue;
    table_found = true;
    if (resolved.metric) {
      for (const auto& m : t.counter_metrics) counter |= m == *resolved.metric;
      for (const auto& m : t.gauge_metrics) gauge |= m == *resolved.metric;
    }
  }
  if (resolved.table && !table_found) {
    return Status::NotFound("table: no table named \"" + *resolved.table + "\"");
  }
  if (resolved.metric && !counter) {
    if (gauge) {
      return Status::InvalidArgument("metric: \"" + *resolved.metric +
                                     "\" is a gauge; exports sum counters only");
    }
    return Status::NotFound("metric: no counter named \"" + *resolved.metric + "\"" +
                            (resolved.table ? " in table \"" + *resolved.table + "\"" : ""));
  }
  return Status::Ok();
}

Status StreamExport(tsdb::QueryService& store, const ResolvedExport& r,
                    const std::function<bool(std::string_view)>& write, std::string* sha256_hex) {
  if (r.invoice) return internal::StreamInvoice(store, r, write, sha256_hex);
  internal::ChunkedSink sink(write);
  std::string& out = sink.buffer();
  std::string csv_prefix;  // "period_start,period_end," shared by every CSV row
  if (r.json) {
    internal::AppendJsonPeriod(out, r);
    out += ",\"table\":";
    internal::AppendJsonOrNull(out, r.table);
    out += ",\"metric\":";
    internal::AppendJsonOrNull(out, r.metric);
    internal::AppendJsonFlags(out, r);
    out += ",\"rows\":[";
  } else {
    out += "period_start,period_end,table,key,metric,total";
    out += r.per_source ? ",source\r\n" : "\r\n";
    AppendCsvField(csv_prefix, r.period_start);
    csv_prefix += ',';
    AppendCsvField(csv_prefix, r.period_end);
    csv_prefix += ',';
  }

  tsdb::ExportQuery query;
  query.from_ms = r.from_ms;
  query.to_ms = r.to_ms;
  query.table = r.table;
  query.metric = r.metric;
  query.per_source = r.per_source;

  // Text cells (table, key, metric, source); the timestamps and totals never start with a
  // formula character, and prefixing a number would turn it into text.
  void (*const csv_text)(std::string&, std::string_view) =
      r.excel_safe ? AppendExcelSafeCsvField : AppendCsvField;
  QuotedCache table_cache, metric_cache, source_cache;
  bool first = true;
  bool cancelled = false;
  Status status = store.Export(query, [&](const tsdb::ExportRow& row) {
    if (r.json) {
      out += first ? "\n{\"table\":" : ",\n{\"table\":";
      out += table_cache.Get(row.table, AppendJsonText);
      out += ",\"key\":";
      AppendJsonString(out, row.key);
      out += ",\"metric\":";
      out += metric_cache.Get(row.metric, AppendJsonText);
      if (r.per_source) {
        out += ",\"source\":";
        out += source_cache.Get(row.source, AppendJsonText);
      }
      out += ",\"total\":";
      AppendDecimal(out, row.total);
      out += '}';
    } else {
      out += csv_prefix;
      out += table_cache.Get(row.table, csv_text);
      out += ',';
      csv_text(out, row.key);
      out += ',';
      out += metric_cache.Get(row.metric, csv_text);
      out += ',';
      AppendDecimal(out, row.total);
      if (r.per_source) {
        out += ',';
        out += source_cache.Get(row.source, csv_text);
      }
      out += "\r\n";
    }
    first = false;
    if (!sink.Flush(false)) {
      cancelled = true;
      return false;
    }
    return true;
  });
  if (!status.ok()) return status.WithContext("export");
  if (cancelled) return Status::Unavailable("export: abandoned by the reader");
  if (r.json) out += first ? "]}\n" : "\n]}\n";
  if (!sink.Flush(true)) return Status::Unavailable("export: abandoned by the reader");
  if (sha256_hex != nullptr) *sha256_hex = sink.HexDigest();
  return Status::Ok();
}

Status WriteExport(tsdb::QueryService& store, const ExportRequest& request,
                   const std::function<void(std::string_view chunk)>& write,
                   std::string* sha256_hex) {
  auto resolved = ResolveExport(request);
  if (!resolved.ok()) return resolved.status();
  Status s = CheckExportFilters(store, *resolved);
  if (!s.ok()) return s;
  if (resolved->json) {
    resolved->coverage = ExportCoverage(store, resolved->from_ms, resolved->to_ms, request.now_ms);
  }
  return StreamExport(
      store, *resolved,
      [&write](std::string_view chunk) {
        write(chunk);
        return true;
      },
      sha256_hex);
}

namespace internal {

void AppendJsonOrNull(std::string& out, const std::optional<std::string>& text) {
  if (text) {
    AppendJsonString(out, *text);
  } else {
    out += "null";
  }
}

void AppendJsonPeriod(std::string& out, const ResolvedExport& r) {
  out += "{\"period\":";
  AppendJsonOrNull(out, r.period);
  out += ",\"tz\":";
  AppendJsonString(out, r.tz);
  out += ",\"period_start\":";
  AppendJsonString(out, r.period_start);
  out += ",\"period_end\":";
  AppendJsonString(out, r.period_end);
  out += ",\"from_ms\":" + std::to_string(r.from_ms) + ",\"to_ms\":" + std::to_string(r.to_ms);
}

void AppendJsonFlags(std::string& out, const ResolvedExport& r) {
  out += ",\"per_source\":";
  out += r.per_source ? "true" : "false";
  out += ",\"partial\":";
  out += r.partial ? "true" : "false";
  if (r.coverage) {
    out += ",\"coverage\":";
    AppendCoverageJson(out, *r.coverage);
  }
}

}  // namespace internal
}  // namespace stickmeter::billing
