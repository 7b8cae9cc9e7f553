// Billing-period exports: the engine behind `GET /api/v1/export` and `stickmeter export`.
//
// A request names a period (a calendar month in an IANA zone, or an explicit half-open [from, to)
// range), optional table and metric filters and a format. ResolveExport() validates it and turns
// it into a Unix ms range plus the exact timestamps printed in the output; WriteExport() streams
// the totals from QueryService::Export as CSV or JSON through a caller-supplied writer in chunks of
// about kExportChunkBytes, hashing the bytes with SHA-256 as they go. Memory stays flat in the
// number of rows. The same request over the same stored data yields the same bytes: nothing
// depends on the clock except `partial` (the period ends after `now_ms`), which appears only in
// JSON output and the HTTP header X-Stickmeter-Partial. The formats are specified in
// docs/exports.md.
//
// Thread-safety: the functions are reentrant; the QueryService must be thread-safe (its contract
// says it is). The writer is called on the calling thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "billing/key_names.h"
#include "billing/units.h"
#include "common/status.h"
#include "tsdb/query.h"

namespace date {
class time_zone;
}

namespace stickmeter::billing {

// Default: 64 KiB. Chunk size handed to the writer (the last chunk may be shorter).
inline constexpr size_t kExportChunkBytes = 64 * 1024;

struct ExportRequest {
  std::optional<std::string> period;  // "YYYY-MM"; exclusive with from_ms/to_ms
  std::string tz = "UTC";             // IANA zone for the month and the printed timestamps
  std::optional<int64_t> from_ms, to_ms;
  std::optional<std::string> table, metric;
  std::string format = "csv";  // "csv" | "json"
  bool per_source = false;     // one row per HAProxy node instead of their sum
  // CSV only: prefix text cells that a spreadsheet would take for a formula (see
  // AppendExcelSafeCsvField). Default false: the bytes are exactly the stored names and keys.
  bool excel_safe = false;
  int64_t now_ms = 0;  // only decides `partial`
  // "rows" (default: one row per key and metric) or "invoice" (one row per key, one column per
  // metric; needs `table`, and `metric` may list several, comma-separated). docs/exports.md.
  std::string layout = "rows";
  // Invoice only: the unit of the byte counters' columns (billing/units.h); unset = B.
  std::optional<std::string> bytes_unit;
  // Invoice only: display names; when set the invoice has a `name` column. Null: none.
  std::shared_ptr<const KeyNames> names;
};

struct ResolvedExport {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  const date::time_zone* zone = nullptr;  // nullptr = UTC
  std::string tz;                         // the zone's name as requested
  std::optional<std::string> period;
  std::string period_start;  // RFC 3339 in the zone, e.g. 2026-10-01T00:00:00+02:00
  std::string period_end;
  bool partial = false;  // to_ms > now_ms: the totals can still grow
  // Data completeness of the range (billing/coverage.h), set by WriteExport and the HTTP
  // export; JSON output only (a `coverage` member), never the CSV bytes.
  std::optional<tsdb::Coverage> coverage;
  std::optional<std::string> table, metric;
  bool json = false;
  bool per_source = false;
  bool excel_safe = false;
  // The invoice layout: its metrics in column order (empty = every counter of the table, by
  // name), the byte counters' unit and the names (null: no name column).
  bool invoice = false;
  std::vector<std::string> metrics;
  ByteUnit bytes_unit;
  std::shared_ptr<const KeyNames> names;

  // The MIME type of the body ("text/csv; charset=utf-8" or "application/json").
  std::string_view content_type() const;
  // A download file name such as "stickmeter-2026-10-quota.csv" (…-quota-invoice.csv).
  std::string file_name() const;
};

// Validates the request without touching the store. InvalidArgument naming the parameter
// ("period: ...", "tz: ...", "from: ...", "format: ...", "excel_safe: ...", "layout: ...",
// "table: ...", "metric: ...", "bytes_unit: ...") on bad input,
// including a period or range not inside [kMinTimeMs, kMaxTimeMs] (billing/time_parse.h).
Result<ResolvedExport> ResolveExport(const ExportRequest& request);

// Checks the table and metric filters against the store's tables: NotFound ("table: ...",
// "metric: ...") for an unknown one, InvalidArgument for a gauge metric, or the store's error.
Status CheckExportFilters(tsdb::QueryService& store, const ResolvedExport& resolved);

// Streams the export. `write` returns false to abandon the export (then Unavailable is returned
// and nothing more is written). On success `*sha256_hex` (if not null) is the lowercase hex
// SHA-256 of every byte written. On a store error part of the output may have been written
// already; the caller must then discard it (the HTTP server cuts the chunked body short).
Status StreamExport(tsdb::QueryService& store, const ResolvedExport& resolved,
                    const std::function<bool(std::string_view chunk)>& write,
                    std::string* sha256_hex);

// ResolveExport + CheckExportFilters + StreamExport: what the CLI calls. Output is
// byte-identical to the HTTP endpoint's body for the same request.
Status WriteExport(tsdb::QueryService& store, const ExportRequest& request,
                   const std::function<void(std::string_view chunk)>& write,
                   std::string* sha256_hex);

// RFC 4180 field quoting: quotes the field when it holds a comma, quote, CR or LF.
void AppendCsvField(std::string& out, std::string_view field);

// AppendCsvField for a text cell of an Excel-safe export: a field starting with '=', '+', '-',
// '@', TAB or CR gets a leading single quote, so a spreadsheet shows it as text instead of
// evaluating it as a formula (CSV injection). Other fields are written as AppendCsvField does.
void AppendExcelSafeCsvField(std::string& out, std::string_view field);

}  // namespace stickmeter::billing
