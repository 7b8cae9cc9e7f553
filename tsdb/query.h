// The read side of the store, as the HTTP API and the export CLI see it.
//
// tsdb implements QueryService; http depends only on this header (and tests http against a
// fake). All times are Unix ms, ranges half-open [from_ms, to_ms). Totals are exact unsigned
// integers. Every method is thread-safe and may be called concurrently with ingest. Failures:
// InvalidArgument for a bad query (the message names the parameter), NotFound for an unknown
// table or metric, IoError/Corruption from the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace stickmeter::tsdb {

// How a gauge's samples become a step's (or a range's) value; counters are always summed.
enum class GaugeAgg : uint8_t {
  kMax,   // the largest sample in the step
  kLast,  // the sum over sources of each one's last value at the step's end
};

struct UsageQuery {
  std::string table;
  std::string metric;  // a counter metric ("gpc0", "gpc.1", "bytes_out_cnt", ...), or a gauge
                       // with gauge_agg
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::optional<std::string> key;     // only this key
  std::optional<std::string> source;  // only this HAProxy node
  // A gauge's value over the range instead of a total: its largest sample, or the sum over
  // sources of each one's last value at `to` (negative values count as 0). Required for a gauge
  // (InvalidArgument "metric: ..." without it), refused for a counter ("agg: ...").
  std::optional<GaugeAgg> gauge_agg = std::nullopt;
};

struct UsageRow {
  std::string key;
  uint64_t total = 0;
};

struct SeriesQuery {
  std::string table;
  std::string metric;
  std::string key;  // empty: every key of the table (counters only)
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  int64_t step_ms = 0;  // 60000, 3600000, 86400000, or 0 for auto
  std::optional<std::string> source;
  std::optional<GaugeAgg> gauge_agg =
      std::nullopt;  // gauges only (InvalidArgument "agg: ..." for a counter)
};

struct SeriesPoint {
  int64_t t_ms = 0;  // start of the step
  // Counters: the sum of deltas in the step. Gauges: as SeriesQuery::gauge_agg says (as int64
  // bits).
  uint64_t v = 0;
};

struct Series {
  int64_t step_ms = 0;
  bool gauge = false;
  GaugeAgg agg = GaugeAgg::kMax;    // gauges only
  std::vector<SeriesPoint> points;  // ascending, steps with nothing stored are omitted
};

struct AuditQuery {
  std::string table;
  std::string key;
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  size_t limit = 1000;
  std::optional<std::string> metric;
  // Resume after this event (the `t_ms`/`seq` of the last event of the previous page).
  std::optional<std::pair<int64_t, uint64_t>> after;
};

struct AuditEvent {
  int64_t t_ms = 0;
  uint64_t seq = 0;  // orders events with the same t_ms
  std::string source;
  std::string metric;
  uint64_t value = 0;  // the absolute value received
  uint64_t delta = 0;  // what it added to the total
  std::string reason;  // restart | first | expired | increment | wrap | reset
};

struct TableSummary {
  std::string name;
  std::string key_type;
  uint32_t key_size = 0;
  uint64_t expire_ms = 0;
  std::vector<std::string> data_types;
  std::vector<std::string> counter_metrics;  // what usage/export accept ("gpc0", "gpc.0", ...)
  std::vector<std::string> gauge_metrics;
  std::vector<std::string> sources;
  // Keys seen from more than one source. Normal when every HAProxy node has its own peers
  // section (a customer's requests spread over nodes); a shared section is detected by ingest.
  uint64_t multi_source_keys = 0;
};

struct ExportQuery {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::optional<std::string> table;
  std::optional<std::string> metric;
  bool per_source = false;
};

struct ExportRow {
  std::string table;
  std::string key;
  std::string metric;
  std::string source;  // empty unless per_source
  uint64_t total = 0;
};

struct StoreStats {
  uint64_t live_series = 0;
  uint64_t tables = 0;
  uint64_t disk_bytes = 0;
  uint64_t deltas_written = 0;
  uint64_t updates_received = 0;
};

// Data completeness: for a range, from when stickmeter had data from each source (HAProxy node,
// by peer name) and when it did not (docs/api.md, "Coverage"). A source is covered while a
// session of it is established; "no usage" and "no data" differ by this, not by the totals.
struct CoverageQuery {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::optional<std::string> source;  // only this source (NotFound when it has no record)
  int64_t now_ms = 0;                 // the part of the range from now on is not covered yet
};

enum class CoverageStatus : uint8_t {
  kComplete,  // every known source connected over the whole range, all of it in the past
  kPartial,   // covered in part: a gap, a source not yet seen, or the range runs past now
  kNone,      // no source connected at any instant of the range
};
inline std::string_view CoverageStatusName(CoverageStatus s) {
  switch (s) {
    case CoverageStatus::kComplete:
      return "complete";
    case CoverageStatus::kPartial:
      return "partial";
    case CoverageStatus::kNone:
      break;
  }
  return "none";
}

struct CoverageGap {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
};

struct SourceCoverage {
  std::string source;
  int64_t first_seen_ms = 0;  // its first session's start
  bool connected = false;     // a session is open now
  CoverageStatus status = CoverageStatus::kNone;
  // Within [max(from, first_seen), min(to, now)): when it was not connected, ascending. A gap
  // cut by the range's edges is cut too. At most kMaxCoverageGapsReported; gap_count and gap_ms
  // count them all.
  std::vector<CoverageGap> gaps;
  uint64_t gap_count = 0;
  int64_t gap_ms = 0;
  // Full resyncs the node asked for (its process restarted and holds no counts) in the range,
  // ascending; at most kMaxCoverageGapsReported, resync_count counts them all.
  std::vector<int64_t> resyncs;
  uint64_t resync_count = 0;
};

struct Coverage {
  CoverageStatus status = CoverageStatus::kNone;
  int64_t from_ms = 0, to_ms = 0;
  // The earliest first_seen of any source (of the one asked for), 0 = none: before it nobody
  // was receiving (or the store kept no record yet).
  int64_t first_seen_ms = 0;
  // Where the range runs past now: the instant from which it is not covered yet; 0 = it does
  // not.
  int64_t future_from_ms = 0;
  // Milliseconds of the range during which every source seen so far was connected.
  int64_t covered_ms = 0;
  std::vector<SourceCoverage> sources;  // by name
};
inline constexpr size_t kMaxCoverageGapsReported = 100;

class QueryService {
 public:
  virtual ~QueryService() = default;

  // Totals per key over the range, sorted by key; keys with total 0 are omitted.
  virtual Result<std::vector<UsageRow>> Usage(const UsageQuery& query) = 0;
  // The same rows, each passed to `visit` (which returns false to stop; then OK is returned)
  // instead of collected: memory stays flat in the number of keys. The key's bytes are valid
  // during the call only. This fallback collects the rows first; the store overrides it.
  using UsageVisitor = std::function<bool(std::string_view key, uint64_t total)>;
  virtual Status ForEachUsage(const UsageQuery& query, const UsageVisitor& visit) {
    auto rows = Usage(query);
    if (!rows.ok()) return rows.status();
    for (const auto& row : *rows) {
      if (!visit(row.key, row.total)) break;
    }
    return Status::Ok();
  }
  // One key's series; with `key` empty, the sum of every key of the table (counters only:
  // InvalidArgument "key: ..." for a gauge).
  virtual Result<Series> GetSeries(const SeriesQuery& query) = 0;
  // Events in ascending (t_ms, seq) order, at most `limit`.
  virtual Result<std::vector<AuditEvent>> Audit(const AuditQuery& query) = 0;
  virtual Result<std::vector<TableSummary>> Tables() = 0;
  // Keys seen in a table, ascending, starting with `prefix`, at most `limit`.
  virtual Result<std::vector<std::string>> Keys(const std::string& table, const std::string& prefix,
                                                size_t limit) = 0;
  // The same list resumed after a cursor: keys starting with `prefix` that sort after `after`
  // (bytewise), ascending, at most `limit`, so a long list can be read page by page. This
  // fallback reads every key up to the cursor; the store overrides it with a seek.
  virtual Result<std::vector<std::string>> KeysAfter(const std::string& table,
                                                     const std::string& prefix,
                                                     const std::string& after, size_t limit) {
    auto all = Keys(table, prefix, SIZE_MAX);
    if (!all.ok()) return all.status();
    std::vector<std::string> out;
    for (auto& k : *all) {
      if (out.size() == limit) break;
      if (k > after) out.push_back(std::move(k));
    }
    return out;
  }
  // Streams non-zero totals sorted by (table, key, metric, source). `emit` returns false to stop
  // early (then Export returns OK). Memory stays flat in the number of keys.
  virtual Status Export(const ExportQuery& query,
                        const std::function<bool(const ExportRow&)>& emit) = 0;
  virtual Result<StoreStats> Stats() = 0;
  // Data completeness over [from, to) (see Coverage). InvalidArgument for from >= to, NotFound
  // ("source: ...") for a source without a record. This fallback, for stores that keep no
  // record (test fakes), says Unavailable.
  virtual Result<Coverage> GetCoverage(const CoverageQuery& query) {
    (void)query;
    return Status::Unavailable("coverage is not recorded by this store");
  }
  // Ok while updates are stored and acknowledged; else why not (a full disk, a failed sync),
  // until the store has recovered by itself. Cheap, never waits for the store.
  virtual Status WriteStatus() { return Status::Ok(); }
};

}  // namespace stickmeter::tsdb
