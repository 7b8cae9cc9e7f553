#include "tsdb/queries.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "common/time.h"
#include "tsdb/config.h"
#include "tsdb/counter_points.h"
#include "tsdb/every_key.h"
#include "tsdb/format.h"
#include "tsdb/gauge_points.h"
#include "tsdb/query_plan.h"
#include "tsdb/scans.h"

namespace stickmeter::tsdb {
using format::MetricClass;
using format::NameKind;

Status QueryEngine::Begin(const ReadGate::Hold& hold, const std::string& table,
                          uint32_t* id) const {
  if (!hold.status().ok()) return hold.status();
  auto resolved = catalog_.ResolveTable(table);
  if (!resolved.ok()) return resolved.status();
  *id = *resolved;
  return Status::Ok();
}

Result<std::vector<UsageRow>> QueryEngine::Usage(const UsageQuery& q) {
  std::vector<UsageRow> rows;
  auto s = ForEachUsage(q, [&](std::string_view key, uint64_t total) {
    rows.push_back(UsageRow{std::string(key), total});
    return true;
  });
  if (!s.ok()) return s;
  return rows;
}

Status QueryEngine::ForEachUsage(const UsageQuery& q, const QueryService::UsageVisitor& visit) {
  ReadGate::Hold hold(gate_);
  uint32_t table = 0;
  if (auto s = Begin(hold, q.table, &table); !s.ok()) return s;
  auto metric = catalog_.ResolveMetric(table, q.table, q.metric);
  if (!metric.ok()) return metric.status();
  const bool gauge = metric->second == MetricClass::kGauge;
  if (gauge && !q.gauge_agg) {
    return Status::InvalidArgument("metric: '" + q.metric +
                                   "' is a gauge, usage sums counters (ask a gauge's max or last)");
  }
  if (!gauge && q.gauge_agg) {
    return Status::InvalidArgument("agg: '" + q.metric +
                                   "' is a counter, whose usage is a sum; max and last are for "
                                   "gauges");
  }
  if (auto s = CheckRange(q.from_ms, q.to_ms); !s.ok()) return s;
  std::optional<uint32_t> source;
  if (q.source) {
    source = catalog_.names.Find(NameKind::kSource, *q.source);
    if (!source) return Status::Ok();
  }
  std::optional<uint32_t> only_key;
  if (q.key) {
    only_key = catalog_.names.Find(NameKind::kKey, format::KeyName(table, *q.key));
    if (!only_key) return Status::Ok();
  }
  if (gauge) {
    return GaugeOfEveryKey(hold,
                           GaugeRead{.table = table,
                                     .metric = metric->first,
                                     .source = source,
                                     .from_ms = q.from_ms,
                                     .to_ms = q.to_ms,
                                     .agg = *q.gauge_agg},
                           only_key, visit);
  }
  ReadView r = hold.View(/*snapshot=*/true, /*journal=*/true);
  // Nothing the view sees was received after latest_received_ms_ (read after the view): a
  // range ending later may end at the next whole minute instead, which the minute rollups
  // answer without reading each key's audit events ("this month so far" ends now). Not at the
  // next whole day, though it would be as exact: today's day and hour rows hold a merge operand
  // per pass of the applier until compacted, and reading them cost 2-3x the minutes'.
  int64_t to_ms = q.to_ms;
  if (to_ms > latest_received_ms_.load(std::memory_order_relaxed)) {
    to_ms = CeilTo(to_ms, format::kMinuteMs);
  }
  std::vector<Segment> segments;
  Decompose(q.from_ms, to_ms, &segments);
  // The minutes around each sub-minute edge: a key with nothing in them has nothing in the edge,
  // and its audit events need not be read.
  std::vector<Segment> edge_minutes;
  for (const auto& seg : segments) {
    if (seg.unit_ms != 0) continue;
    edge_minutes.push_back(Segment{format::kMinuteMs, FloorTo(seg.lo, format::kMinuteMs),
                                   CeilTo(seg.hi, format::kMinuteMs)});
  }
  std::vector<Segment> journal_segments = segments;
  journal_segments.insert(journal_segments.end(), edge_minutes.begin(), edge_minutes.end());
  // Every key of every source: the rollups by time first, where the store has them.
  const RollupKinds rollups = !only_key && !source ? RollupKinds::kByTime : RollupKinds::kByKey;
  if (auto s = r.AddJournal(table, only_key, journal_segments, rollups); !s.ok()) return s;
  if (only_key) {
    uint64_t total = 0;
    auto s = SumRange(r, table, metric->first, *only_key, q.from_ms, to_ms, source,
                      [&](uint64_t d) { total += d; });
    if (!s.ok()) return s;
    if (total > 0) visit(*q.key, total);
  } else {
    // Key ids read after the view began cover every id it holds.
    const size_t ids = catalog_.names.Count(NameKind::kKey) + 1;
    const ScanBudget::Hold threads = ScanThreads(ids);
    return UsageOfEveryKey(r, table, metric->first, source, segments, edge_minutes, ids,
                           threads.count(), scan_.block_keys, visit);
  }
  return Status::Ok();
}

Result<Series> QueryEngine::GetSeries(const SeriesQuery& q) {
  ReadGate::Hold hold(gate_);
  uint32_t table = 0;
  if (auto s = Begin(hold, q.table, &table); !s.ok()) return s;
  auto metric = catalog_.ResolveMetric(table, q.table, q.metric);
  if (!metric.ok()) return metric.status();
  if (auto s = CheckRange(q.from_ms, q.to_ms); !s.ok()) return s;
  Series out;
  out.gauge = metric->second == MetricClass::kGauge;
  if (q.gauge_agg && !out.gauge) {
    return Status::InvalidArgument("agg: '" + q.metric +
                                   "' is a counter, whose steps are sums; max and last are for "
                                   "gauges");
  }
  int64_t step = q.step_ms;
  if (step == 0) {
    const int64_t span = q.to_ms - q.from_ms;
    step = span / format::kMinuteMs <= config::kMaxSeriesPoints ? format::kMinuteMs
           : span / format::kHourMs <= config::kMaxSeriesPoints ? format::kHourMs
                                                                : format::kDayMs;
  }
  if (step != format::kMinuteMs && step != format::kHourMs && step != format::kDayMs) {
    return Status::InvalidArgument("step: must be 1m, 1h, 1d or auto");
  }
  out.step_ms = step;
  if (q.key.empty()) return TableSeries(hold, table, metric->first, q, std::move(out));
  auto key = catalog_.names.Find(NameKind::kKey, format::KeyName(table, q.key));
  std::optional<uint32_t> source;
  if (q.source) {
    source = catalog_.names.Find(NameKind::kSource, *q.source);
    if (!source) return out;
  }
  if (!key) return out;
  // Whole steps come from the rollup of that resolution, partial first/last steps from finer
  // data: only then does the query read more than one iterator and need a snapshot.
  const int64_t full_lo = CeilTo(q.from_ms, step), full_hi = FloorTo(q.to_ms, step);
  const bool partial = !out.gauge && (q.from_ms != full_lo || q.to_ms != full_hi);
  ReadView r = hold.View(/*snapshot=*/partial, /*journal=*/!out.gauge);
  const std::vector<Segment> segments = StepSegments(q.from_ms, q.to_ms, step);
  if (auto s = r.AddJournal(table, *key, segments); !s.ok()) return s;

  if (out.gauge) {
    GaugeRead read{.table = table,
                   .metric = metric->first,
                   .key = *key,
                   .source = source,
                   .from_ms = q.from_ms,
                   .to_ms = q.to_ms,
                   .carry_until_ms = std::max(NowUnixMs(), latest_received_ms_.load()),
                   .agg = q.gauge_agg.value_or(GaugeAgg::kMax)};
    out.agg = read.agg;
    if (auto s = ReadGaugePoints(r, read, out); !s.ok()) return s;
    return out;
  }
  if (auto s = ReadCounterPoints(r, table, metric->first, *key, source, q.from_ms, q.to_ms, out);
      !s.ok()) {
    return s;
  }
  return out;
}

Status QueryEngine::GaugeOfEveryKey(const ReadGate::Hold& hold, const GaugeRead& read,
                                    std::optional<uint32_t> only_key,
                                    const QueryService::UsageVisitor& visit) {
  ReadView r = hold.View(/*snapshot=*/true, /*journal=*/false);  // gauges are never journalled
  std::vector<std::optional<int64_t>> by_id;
  if (auto s = ReadGaugeOfEveryKey(r, read, only_key, by_id); !s.ok()) return s;
  return ForEachKey(r, read.table, "", [&](std::string_view key_text, uint32_t key_id) {
    if (key_id >= by_id.size() || !by_id[key_id]) return true;
    return visit(key_text, static_cast<uint64_t>(std::max<int64_t>(*by_id[key_id], 0)));
  });
}

Result<Series> QueryEngine::TableSeries(const ReadGate::Hold& hold, uint32_t table, uint32_t metric,
                                        const SeriesQuery& q, Series out) {
  if (out.gauge) {
    return Status::InvalidArgument("key: required for a gauge ('" + q.metric +
                                   "'), whose samples are never summed over keys");
  }
  std::optional<uint32_t> source;
  if (q.source) {
    source = catalog_.names.Find(NameKind::kSource, *q.source);
    if (!source) return out;
  }
  std::vector<Segment> segments = StepSegments(q.from_ms, q.to_ms, out.step_ms);
  // A raw segment is a ragged end inside one minute, but for a range with no whole minute,
  // which may cross one: split there, so that each lies in one step.
  std::vector<Segment> split;
  for (const auto& seg : segments) {
    const int64_t minute_end = FloorTo(seg.lo, format::kMinuteMs) + format::kMinuteMs;
    if (seg.unit_ms == 0 && seg.hi > minute_end) {
      split.push_back({0, seg.lo, minute_end});
      split.push_back({0, minute_end, seg.hi});
    } else {
      split.push_back(seg);
    }
  }
  segments.swap(split);
  ReadView r = hold.View(/*snapshot=*/true, /*journal=*/true);
  std::vector<Segment> journal_segments = segments;  // and the minutes around each raw edge
  for (const auto& seg : segments) {
    if (seg.unit_ms != 0) continue;
    journal_segments.push_back(Segment{format::kMinuteMs, FloorTo(seg.lo, format::kMinuteMs),
                                       CeilTo(seg.hi, format::kMinuteMs)});
  }
  const RollupKinds rollups = !source ? RollupKinds::kByTime : RollupKinds::kByKey;
  if (auto s = r.AddJournal(table, std::nullopt, journal_segments, rollups); !s.ok()) return s;
  // Key ids read after the view began cover every id it holds.
  const size_t ids = catalog_.names.Count(NameKind::kKey) + 1;
  const ScanBudget::Hold threads = ScanThreads(ids);
  if (auto s = ReadTableCounterPoints(r, table, metric, source, segments, ids, threads.count(),
                                      scan_.block_keys, out);
      !s.ok()) {
    return s;
  }
  if (auto s = r.Check(); !s.ok()) return s;
  return out;
}

Result<std::vector<AuditEvent>> QueryEngine::Audit(const AuditQuery& q) {
  ReadGate::Hold hold(gate_);
  uint32_t table = 0;
  if (auto s = Begin(hold, q.table, &table); !s.ok()) return s;
  if (q.key.empty()) return Status::InvalidArgument("key: required");
  if (auto s = CheckRange(q.from_ms, q.to_ms); !s.ok()) return s;
  if (q.limit == 0) return Status::InvalidArgument("limit: must be at least 1");
  std::optional<uint32_t> metric;
  if (q.metric) {
    auto m = catalog_.ResolveMetric(table, q.table, *q.metric);
    if (!m.ok()) return m.status();
    metric = m->first;
  }
  std::vector<AuditEvent> events;
  auto key = catalog_.names.Find(NameKind::kKey, format::KeyName(table, q.key));
  if (!key) return events;
  const size_t limit = std::min(q.limit, config::kMaxAuditLimit);
  if (limit == 0) return events;
  // Resume at the cursor's time and skip what the previous page returned.
  const bool resume = q.after && q.after->first >= q.from_ms;
  const int64_t from = resume ? q.after->first : q.from_ms;
  // A row holds the updates of up to kRawRowSpanMs from its first, so rows may overlap in time:
  // events are gathered until no later row (whose events are all at or after its key's time)
  // can hold one of the first `limit`, then put in (time, sequence) order.
  auto before = [](const format::RawEvent& a, const format::RawEvent& b) {
    return std::tie(a.t_ms, a.seq) < std::tie(b.t_ms, b.seq);
  };
  std::vector<format::RawEvent> found;
  std::optional<int64_t> last_t;  // once `limit` are found: the time of the last of them
  ReadView r = hold.View(/*snapshot=*/true, /*journal=*/true);
  if (auto s = r.AddJournal(table, *key, {Segment{0, from, q.to_ms}}); !s.ok()) return s;
  auto status = ScanAudit(
      r, table, *key, from, q.to_ms,
      [&](const format::RawEvent& ev) {
        if (metric && ev.e.metric != *metric) return Status::Ok();
        if (resume && std::make_pair(ev.t_ms, ev.seq) <= *q.after) return Status::Ok();
        if (last_t && ev.t_ms > *last_t) return Status::Ok();
        found.push_back(ev);
        if (found.size() == limit || found.size() == 2 * limit) {
          std::nth_element(found.begin(), found.begin() + static_cast<ptrdiff_t>(limit - 1),
                           found.end(), before);
          found.resize(limit);
          last_t = found.back().t_ms;
        }
        return Status::Ok();
      },
      &last_t);
  if (!status.ok()) return status;
  if (auto s = r.Check(); !s.ok()) return s;
  std::sort(found.begin(), found.end(), before);
  if (found.size() > limit) found.resize(limit);
  events.reserve(found.size());
  for (const auto& ev : found) {
    events.push_back(AuditEvent{ev.t_ms, ev.seq,
                                catalog_.names.Text(NameKind::kSource, ev.e.source),
                                catalog_.names.Text(NameKind::kMetric, ev.e.metric), ev.e.value,
                                ev.e.delta, std::string(format::ReasonName(ev.e.reason))});
  }
  return events;
}

Result<std::vector<TableSummary>> QueryEngine::Tables() {
  std::vector<TableSummary> out;
  catalog_.ForEachTable([&](uint32_t id, const TableMeta& meta) {
    TableSummary t;
    t.name = catalog_.names.Text(NameKind::kTable, id);
    t.key_type = meta.info.key_type;
    t.key_size = meta.info.key_size;
    t.expire_ms = meta.info.expire_ms;
    t.data_types = meta.info.data_types;
    t.multi_source_keys = meta.multi_source_keys;
    for (const auto& [m, cls] : meta.metrics) {
      (cls == MetricClass::kGauge ? t.gauge_metrics : t.counter_metrics)
          .push_back(catalog_.names.Text(NameKind::kMetric, m));
    }
    for (uint32_t s : meta.sources) t.sources.push_back(catalog_.names.Text(NameKind::kSource, s));
    std::sort(t.counter_metrics.begin(), t.counter_metrics.end());
    std::sort(t.gauge_metrics.begin(), t.gauge_metrics.end());
    std::sort(t.sources.begin(), t.sources.end());
    out.push_back(std::move(t));
  });
  std::sort(out.begin(), out.end(),
            [](const TableSummary& a, const TableSummary& b) { return a.name < b.name; });
  return out;
}

Result<std::vector<std::string>> QueryEngine::Keys(const std::string& table,
                                                   const std::string& prefix, size_t limit) {
  ReadGate::Hold hold(gate_);
  uint32_t id = 0;
  if (auto s = Begin(hold, table, &id); !s.ok()) return s;
  std::vector<std::string> keys;
  if (limit == 0) return keys;
  ReadView r = hold.View();
  auto s = ForEachKey(r, id, prefix, [&](std::string_view k, uint32_t) {
    keys.emplace_back(k);
    return keys.size() < limit;
  });
  if (!s.ok()) return s;
  return keys;
}

Result<std::vector<std::string>> QueryEngine::KeysAfter(const std::string& table,
                                                        const std::string& prefix,
                                                        const std::string& after, size_t limit) {
  ReadGate::Hold hold(gate_);
  uint32_t id = 0;
  if (auto s = Begin(hold, table, &id); !s.ok()) return s;
  std::vector<std::string> keys;
  if (limit == 0) return keys;
  // Key names sort bytewise after the table's id, so a page starts with one seek to the cursor
  // (or to the prefix, when the cursor sorts before it) instead of a walk over earlier keys.
  const std::string bound = format::NameKey(NameKind::kKey, format::KeyName(id, prefix));
  const std::string seek =
      after > prefix ? format::NameKey(NameKind::kKey, format::KeyName(id, after)) : bound;
  const size_t skip = 2 + 4;  // tag, kind, table id, as in ForEachKey
  ReadView r = hold.View();
  rocksdb::Iterator* it = r.It(kMeta);
  for (it->Seek(seek); it->Valid() && it->key().starts_with(bound); it->Next()) {
    std::string_view k(it->key().data() + skip, it->key().size() - skip);
    if (k <= after) continue;  // the cursor itself
    keys.emplace_back(k);
    if (keys.size() == limit) break;
  }
  if (auto s = r.Check(); !s.ok()) return s;
  return keys;
}

Result<StoreStats> QueryEngine::Stats(StoreStats counted) {
  ReadGate::Hold hold(gate_);
  if (!hold.status().ok()) return hold.status();
  counted.tables = catalog_.TableCount();
  uint64_t sst = 0;
  hold.db().db()->GetAggregatedIntProperty("rocksdb.live-sst-files-size", &sst);
  counted.disk_bytes = sst;
  return counted;
}

}  // namespace stickmeter::tsdb
