// The invoice layout of the export (docs/exports.md): one row per key of one table, one column per
// counter metric (and per HAProxy node with per_source), byte counters in a chosen unit, and the
// key's display name.
//
// The store's export scan is key-major (rows in (table, key, metric, source) order), so a key's
// cells are complete when the next key starts: the pivot holds one key's cells, never the table.
#include <algorithm>
#include <map>
#include <set>

#include "billing/export_internal.h"
#include "common/json_writer.h"

namespace stickmeter::billing::internal {
namespace {

// The table's summary, or NotFound naming `table`.
Result<tsdb::TableSummary> FindTable(tsdb::QueryService& store, const std::string& table) {
  auto tables = store.Tables();
  if (!tables.ok()) return tables.status();
  for (auto& t : *tables) {
    if (t.name == table) return std::move(t);
  }
  return Status::NotFound("table: no table named \"" + table + "\"");
}

// The invoice's value columns: per metric its total, then one cell per source.
struct Columns {
  std::vector<std::string> metrics;  // in column order
  std::vector<std::string> sources;  // by name; empty without per_source
  std::vector<std::string> names;    // the header text of each cell
  std::vector<bool> in_unit;         // by metric: a byte counter printed in the unit
  size_t stride = 1;                 // cells per metric
};

Columns ColumnsOf(const ResolvedExport& r, const tsdb::TableSummary& table) {
  Columns c;
  c.metrics = r.metrics;
  if (c.metrics.empty()) {
    c.metrics = table.counter_metrics;
    std::sort(c.metrics.begin(), c.metrics.end());
  }
  if (r.per_source) {
    c.sources = table.sources;
    std::sort(c.sources.begin(), c.sources.end());
  }
  c.stride = 1 + c.sources.size();
  for (const auto& m : c.metrics) {
    const bool in_unit = IsByteMetric(m) && r.bytes_unit.bytes != 1;
    c.in_unit.push_back(in_unit);
    const std::string base = in_unit ? m + "_" + r.bytes_unit.name : m;
    c.names.push_back(base);
    for (const auto& s : c.sources) c.names.push_back(base + "@" + s);
  }
  return c;
}

}  // namespace

Status ResolveLayout(const ExportRequest& request, ResolvedExport& r) {
  if (request.layout == "rows") {
    if (request.bytes_unit) {
      return Status::InvalidArgument("bytes_unit: applies to layout=invoice only");
    }
    return Status::Ok();
  }
  if (request.layout != "invoice") {
    return Status::InvalidArgument("layout: \"" + request.layout.substr(0, 32) +
                                   "\" is not rows or invoice");
  }
  r.invoice = true;
  if (!request.table) {
    return Status::InvalidArgument("table: missing; layout=invoice exports one table");
  }
  if (request.bytes_unit) {
    auto unit = ParseByteUnit(*request.bytes_unit);
    if (!unit.ok()) return unit.status();
    r.bytes_unit = *unit;
  }
  if (request.metric) {
    std::set<std::string_view> seen;
    std::string_view list = *request.metric;
    while (true) {
      const size_t comma = list.find(',');
      const std::string_view m = list.substr(0, comma);
      if (m.empty()) return Status::InvalidArgument("metric: an empty name in the list");
      if (!seen.insert(m).second) {
        return Status::InvalidArgument("metric: \"" + std::string(m.substr(0, 64)) +
                                       "\" is listed twice");
      }
      r.metrics.emplace_back(m);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  // The store filters by one metric at most; a list is filtered here (StreamInvoice).
  r.metric.reset();
  r.names = request.names;
  return Status::Ok();
}

Status CheckInvoiceFilters(tsdb::QueryService& store, const ResolvedExport& r) {
  auto table = FindTable(store, *r.table);
  if (!table.ok()) return table.status();
  for (const auto& m : r.metrics) {
    const auto& counters = table->counter_metrics;
    if (std::find(counters.begin(), counters.end(), m) != counters.end()) continue;
    const auto& gauges = table->gauge_metrics;
    if (std::find(gauges.begin(), gauges.end(), m) != gauges.end()) {
      return Status::InvalidArgument("metric: \"" + m + "\" is a gauge; exports sum counters only");
    }
    return Status::NotFound("metric: no counter named \"" + m + "\" in table \"" + *r.table + "\"");
  }
  return Status::Ok();
}

Status StreamInvoice(tsdb::QueryService& store, const ResolvedExport& r,
                     const std::function<bool(std::string_view)>& write, std::string* sha256_hex) {
  auto table = FindTable(store, *r.table);
  if (!table.ok()) return table.status().WithContext("export");
  const Columns cols = ColumnsOf(r, *table);
  std::map<std::string, size_t, std::less<>> metric_index, source_index;
  for (size_t i = 0; i < cols.metrics.size(); ++i) metric_index[cols.metrics[i]] = i;
  for (size_t i = 0; i < cols.sources.size(); ++i) source_index[cols.sources[i]] = i;
  const bool with_names = r.names != nullptr;

  ChunkedSink sink(write);
  std::string& out = sink.buffer();
  void (*const csv_text)(std::string&, std::string_view) =
      r.excel_safe ? AppendExcelSafeCsvField : AppendCsvField;
  std::string csv_prefix;  // "period_start,period_end,table," shared by every CSV row
  if (r.json) {
    AppendJsonPeriod(out, r);
    out += ",\"table\":";
    AppendJsonString(out, *r.table);
    // `metric` as in the rows layout: the filter as given (a list here), or null.
    out += ",\"metric\":";
    if (r.metrics.empty()) {
      out += "null";
    } else {
      std::string list;
      for (const auto& m : r.metrics) list += (list.empty() ? "" : ",") + m;
      AppendJsonString(out, list);
    }
    out += ",\"layout\":\"invoice\",\"bytes_unit\":";
    AppendJsonString(out, r.bytes_unit.name);
    AppendJsonFlags(out, r);
    out += ",\"columns\":[";
    for (size_t i = 0; i < cols.names.size(); ++i) {
      if (i > 0) out += ',';
      AppendJsonString(out, cols.names[i]);
    }
    out += "],\"rows\":[";
  } else {
    out +=
        with_names ? "period_start,period_end,table,key,name" : "period_start,period_end,table,key";
    for (const auto& name : cols.names) {
      out += ',';
      csv_text(out, name);
    }
    out += "\r\n";
    AppendCsvField(csv_prefix, r.period_start);
    csv_prefix += ',';
    AppendCsvField(csv_prefix, r.period_end);
    csv_prefix += ',';
    csv_text(csv_prefix, *r.table);
    csv_prefix += ',';
  }

  // The cells of the current key: by metric, its total then its sources. Totals add up the
  // sources' cells modulo 2^64, as the store's own totals do, so they equal the rows layout's.
  std::vector<uint64_t> cells(cols.metrics.size() * cols.stride, 0);
  std::string key;
  bool pending = false;  // `key` has a chosen metric's row not written yet
  bool first = true;
  auto write_row = [&] {
    const std::string* name = with_names ? r.names->Find(*r.table, key) : nullptr;
    if (r.json) {
      out += first ? "\n{\"key\":" : ",\n{\"key\":";
      AppendJsonString(out, key);
      if (with_names) {
        out += ",\"name\":";
        if (name != nullptr) {
          AppendJsonString(out, *name);
        } else {
          out += "null";
        }
      }
      out += ",\"values\":{";
    } else {
      out += csv_prefix;
      csv_text(out, key);
      if (with_names) {
        out += ',';
        if (name != nullptr) csv_text(out, *name);
      }
    }
    for (size_t m = 0, cell = 0; m < cols.metrics.size(); ++m) {
      for (size_t i = 0; i < cols.stride; ++i, ++cell) {
        if (r.json) {
          if (cell > 0) out += ',';
          AppendJsonString(out, cols.names[cell]);
          out += ':';
        } else {
          out += ',';
        }
        if (cols.in_unit[m]) {
          AppendInUnit(out, cells[cell], r.bytes_unit);
        } else {
          AppendDecimal(out, cells[cell]);
        }
      }
    }
    out += r.json ? "}}" : "\r\n";
    first = false;
    pending = false;
    return sink.Flush(false);
  };

  tsdb::ExportQuery query;
  query.from_ms = r.from_ms;
  query.to_ms = r.to_ms;
  query.table = r.table;
  if (cols.metrics.size() == 1) query.metric = cols.metrics.front();
  query.per_source = r.per_source;
  bool cancelled = false;
  Status status = store.Export(query, [&](const tsdb::ExportRow& row) {
    if (row.key != key) {
      if (pending && !write_row()) {
        cancelled = true;
        return false;
      }
      key = row.key;
      std::fill(cells.begin(), cells.end(), 0);
    }
    auto m = metric_index.find(row.metric);
    if (m == metric_index.end()) return true;
    pending = true;
    uint64_t* metric_cells = cells.data() + m->second * cols.stride;
    metric_cells[0] += row.total;
    if (r.per_source) {
      // A node first seen after the columns were chosen still counts in the total.
      if (auto s = source_index.find(row.source); s != source_index.end()) {
        metric_cells[1 + s->second] = row.total;
      }
    }
    return true;
  });
  if (!status.ok()) return status.WithContext("export");
  if (cancelled || (pending && !write_row())) {
    return Status::Unavailable("export: abandoned by the reader");
  }
  if (r.json) out += first ? "]}\n" : "\n]}\n";
  if (!sink.Flush(true)) return Status::Unavailable("export: abandoned by the reader");
  if (sha256_hex != nullptr) *sha256_hex = sink.HexDigest();
  return Status::Ok();
}

}  // namespace stickmeter::billing::internal
