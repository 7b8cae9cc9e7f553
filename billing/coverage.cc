#include "billing/coverage.h"

#include "common/json_writer.h"
#include "common/time.h"

namespace stickmeter::billing {
namespace {

void AppendMsOrNull(std::string& out, int64_t ms) {
  if (ms == 0) {
    out += "null";
  } else {
    out += std::to_string(ms);
  }
}

// "42 min", "3 h 5 min", "2 d 4 h": the size of a gap for a person.
std::string Duration(int64_t ms) {
  const int64_t minutes = (ms + 59'999) / 60'000;
  // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, wrongly) about `" " + string`.
  std::string out;
  auto part = [&out](int64_t n, const char* unit) {
    if (!out.empty()) out += ' ';
    out += std::to_string(n);
    out += unit;
  };
  if (minutes < 60) {
    part(minutes, " min");
  } else if (minutes < 48 * 60) {
    part(minutes / 60, " h");
    if (minutes % 60 != 0) part(minutes % 60, " min");
  } else {
    part(minutes / 1440, " d");
    if (minutes % 1440 / 60 != 0) part(minutes % 1440 / 60, " h");
  }
  return out;
}

}  // namespace

void AppendCoverageJson(std::string& out, const tsdb::Coverage& c) {
  out += "{\"status\":\"";
  out += tsdb::CoverageStatusName(c.status);
  out += "\",\"from_ms\":" + std::to_string(c.from_ms) + ",\"to_ms\":" + std::to_string(c.to_ms);
  out += ",\"first_seen_ms\":";
  AppendMsOrNull(out, c.first_seen_ms);
  out += ",\"future_from_ms\":";
  AppendMsOrNull(out, c.future_from_ms);
  out += ",\"covered_ms\":" + std::to_string(c.covered_ms) + ",\"sources\":[";
  bool first_source = true;
  for (const auto& s : c.sources) {
    out += first_source ? "{\"source\":" : ",{\"source\":";
    first_source = false;
    AppendJsonString(out, s.source);
    out += ",\"status\":\"";
    out += tsdb::CoverageStatusName(s.status);
    out += "\",\"first_seen_ms\":" + std::to_string(s.first_seen_ms);
    out += s.connected ? ",\"connected\":true" : ",\"connected\":false";
    out += ",\"gap_count\":" + std::to_string(s.gap_count) +
           ",\"gap_ms\":" + std::to_string(s.gap_ms) + ",\"gaps\":[";
    for (size_t i = 0; i < s.gaps.size(); ++i) {
      out += i == 0 ? "{\"from_ms\":" : ",{\"from_ms\":";
      out += std::to_string(s.gaps[i].from_ms) + ",\"to_ms\":" + std::to_string(s.gaps[i].to_ms);
      out += '}';
    }
    out += "],\"resync_count\":" + std::to_string(s.resync_count) + ",\"resyncs\":[";
    for (size_t i = 0; i < s.resyncs.size(); ++i) {
      if (i > 0) out += ',';
      out += std::to_string(s.resyncs[i]);
    }
    out += "]}";
  }
  out += "]}";
}

std::string CoverageSummary(const tsdb::Coverage& c) {
  if (c.status == tsdb::CoverageStatus::kComplete) return "";
  if (c.status == tsdb::CoverageStatus::kNone) {
    if (c.first_seen_ms == 0) return "no data: stickmeter has not received from any node yet";
    if (c.first_seen_ms >= c.to_ms) {
      return "no data: stickmeter was not receiving from any node before " +
             FormatRfc3339Utc(c.first_seen_ms);
    }
    if (c.future_from_ms != 0 && c.future_from_ms <= c.from_ms) {
      return "no data yet: the period has not started";
    }
    return "no data: stickmeter was not connected to any node during the period";
  }
  std::string out = "partly covered:";
  std::string sep = " ";
  if (c.first_seen_ms > c.from_ms) {
    out += sep + "no node before " + FormatRfc3339Utc(c.first_seen_ms);
    sep = "; ";
  }
  for (const auto& s : c.sources) {
    if (s.gap_count == 0) continue;
    out += sep + s.source + " was disconnected " +
           (s.gap_count == 1 ? std::string("once") : std::to_string(s.gap_count) + " times") +
           ", " + Duration(s.gap_ms) + " in total";
    sep = "; ";
  }
  if (c.future_from_ms != 0) out += sep + "the period runs until " + FormatRfc3339Utc(c.to_ms);
  return out;
}

std::optional<tsdb::Coverage> ExportCoverage(tsdb::QueryService& store, int64_t from_ms,
                                             int64_t to_ms, int64_t now_ms) {
  tsdb::CoverageQuery q;
  q.from_ms = from_ms;
  q.to_ms = to_ms;
  q.now_ms = now_ms;
  auto c = store.GetCoverage(q);
  if (!c.ok()) return std::nullopt;
  return std::move(*c);
}

}  // namespace stickmeter::billing
