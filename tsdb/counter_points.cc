#include "tsdb/counter_points.h"

#include <algorithm>
#include <map>
#include <span>
#include <utility>

#include "tsdb/every_key.h"
#include "tsdb/format.h"
#include "tsdb/scans.h"

namespace stickmeter::tsdb {

std::vector<Segment> StepSegments(int64_t from_ms, int64_t to_ms, int64_t step) {
  const int64_t full_lo = CeilTo(from_ms, step), full_hi = FloorTo(to_ms, step);
  std::vector<Segment> segments;
  if (full_lo < full_hi) {
    Decompose(from_ms, full_lo, &segments);
    segments.push_back({step, full_lo, full_hi});
    Decompose(full_hi, to_ms, &segments);
  } else {
    Decompose(from_ms, to_ms, &segments);
  }
  return segments;
}

Status ReadCounterPoints(ReadView& r, uint32_t table, uint32_t metric, uint32_t key,
                         std::optional<uint32_t> source, int64_t from_ms, int64_t to_ms,
                         Series& out) {
  const int64_t step = out.step_ms;
  const int64_t full_lo = CeilTo(from_ms, step), full_hi = FloorTo(to_ms, step);
  auto add_partial = [&](int64_t lo, int64_t hi) -> Status {
    uint64_t total = 0;
    auto s = SumRange(r, table, metric, key, lo, hi, source, [&](uint64_t d) { total += d; });
    if (s.ok() && total > 0) out.points.push_back({FloorTo(lo, step), total});
    return s;
  };
  if (full_lo >= full_hi) {
    if (full_lo > full_hi) {
      if (auto s = add_partial(from_ms, to_ms); !s.ok()) return s;
    } else {
      if (auto s = add_partial(from_ms, full_lo); !s.ok()) return s;
      if (auto s = add_partial(full_hi, to_ms); !s.ok()) return s;
    }
    return Status::Ok();
  }
  if (from_ms < full_lo) {
    if (auto s = add_partial(from_ms, full_lo); !s.ok()) return s;
  }
  // One allocation for a month of hours; capped, as a sparse month of minutes would reserve
  // 44,640 points for a few.
  out.points.reserve(out.points.size() +
                     static_cast<size_t>(std::min<int64_t>((full_hi - full_lo) / step, 4096)) + 1);
  Status scanned =
      ScanSeriesRollup(r, RollupCf(step), format::EntryRollupPrefix(table, key), metric,
                       static_cast<uint32_t>(full_lo / step), static_cast<uint32_t>(full_hi / step),
                       source, [&](uint32_t bucket, uint64_t v) {
                         const int64_t t = int64_t{bucket} * step;
                         if (!out.points.empty() && out.points.back().t_ms == t) {
                           out.points.back().v += v;
                         } else if (v > 0) {
                           out.points.push_back({t, v});
                         }
                       });
  if (!scanned.ok()) return scanned;
  if (auto s = r.Check(); !s.ok()) return s;
  if (full_hi < to_ms) {
    if (auto s = add_partial(full_hi, to_ms); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ReadTableCounterPoints(ReadView& r, uint32_t table, uint32_t metric,
                              std::optional<uint32_t> source, const std::vector<Segment>& segments,
                              size_t ids, uint32_t threads, uint32_t block_keys, Series& out) {
  const uint32_t stripes = std::max(threads, 1u);
  // Per stripe, per rollup segment, per bucket.
  std::vector<std::vector<std::vector<uint64_t>>> sums(
      stripes, std::vector<std::vector<uint64_t>>(segments.size()));
  // Per raw segment, per key: what the key has in the segment's minutes, and in the segment.
  std::vector<std::vector<uint64_t>> edge_active(segments.size());
  std::vector<std::vector<uint64_t>> edge_totals(segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& seg = segments[i];
    if (seg.unit_ms == 0) {
      edge_active[i].resize(ids);
      edge_totals[i].resize(ids);
    } else {
      for (auto& stripe_sums : sums) {
        stripe_sums[i].resize(static_cast<size_t>((seg.hi - seg.lo) / seg.unit_ms));
      }
    }
  }
  // Of every source, the rollups by time first give the rollup segments' sums and the edges'
  // minutes in a few rows each; the threads then read the sub-minute edges only.
  const bool by_time = r.ReadsByTime();
  for (size_t i = 0; by_time && i < segments.size(); ++i) {
    const Segment& seg = segments[i];
    const int64_t unit = seg.unit_ms == 0 ? format::kMinuteMs : seg.unit_ms;
    const auto lo = static_cast<uint32_t>(FloorTo(seg.lo, unit) / unit);
    const auto hi = static_cast<uint32_t>(CeilTo(seg.hi, unit) / unit);
    auto s = ScanKeyRollups(r, KeyRollupCf(RollupCf(unit)), table, metric, lo, hi,
                            [&](uint32_t key, uint32_t bucket, uint64_t v) {
                              if (seg.unit_ms != 0) {
                                sums[0][i][bucket - lo] += v;
                                return;
                              }
                              if (key >= edge_active[i].size()) {
                                // Added since the caller counted the ids.
                                edge_active[i].resize(size_t{key} + 1);
                                edge_totals[i].resize(size_t{key} + 1);
                              }
                              edge_active[i][key] += v;
                            });
    if (!s.ok()) return s;
  }
  // Else one pass per rollup family over every key of the stripe.
  auto scan_rollups = [&](ReadView& view, const KeyStripe& stripe) -> Status {
    std::map<int64_t, std::vector<RollupWindow>> by_unit;
    for (size_t i = 0; i < segments.size(); ++i) {
      const Segment& seg = segments[i];
      if (seg.unit_ms == 0) {
        by_unit[format::kMinuteMs].push_back(RollupWindow{
            static_cast<uint32_t>(FloorTo(seg.lo, format::kMinuteMs) / format::kMinuteMs),
            static_cast<uint32_t>(CeilTo(seg.hi, format::kMinuteMs) / format::kMinuteMs),
            &edge_active[i]});
      } else {
        by_unit[seg.unit_ms].push_back(RollupWindow{static_cast<uint32_t>(seg.lo / seg.unit_ms),
                                                    static_cast<uint32_t>(seg.hi / seg.unit_ms),
                                                    nullptr, &sums[stripe.index][i]});
      }
    }
    for (auto& [unit, windows] : by_unit) {
      std::sort(windows.begin(), windows.end(),
                [](const RollupWindow& a, const RollupWindow& b) { return a.lo < b.lo; });
      if (auto s = ScanRollup(view, table, metric, RollupCf(unit), windows, source, stripe);
          !s.ok()) {
        return s;
      }
    }
    return Status::Ok();
  };
  auto scan = [&](ReadView& view, const KeyStripe& stripe) -> Status {
    if (!by_time) {
      if (auto s = scan_rollups(view, stripe); !s.ok()) return s;
    }
    for (size_t i = 0; i < segments.size(); ++i) {
      if (segments[i].unit_ms != 0) continue;
      // The segment's own edge_active, not a copy: other stripes write theirs into it.
      if (auto s = AddRawEdges(view, table, metric, source, {segments[i]},
                               std::span(&edge_active[i], 1), edge_totals[i], stripe);
          !s.ok()) {
        return s;
      }
    }
    return view.Check();
  };
  if (auto s = ForEachStripe(r, threads, block_keys, scan); !s.ok()) return s;
  auto add = [&](int64_t at, uint64_t v) {  // segments come in time order, so steps do too
    if (v == 0) return;
    const int64_t t = FloorTo(at, out.step_ms);
    if (!out.points.empty() && out.points.back().t_ms == t) {
      out.points.back().v += v;
    } else {
      out.points.push_back({t, v});
    }
  };
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& seg = segments[i];
    if (seg.unit_ms == 0) {
      uint64_t sum = 0;
      for (uint64_t v : edge_totals[i]) sum += v;
      add(seg.lo, sum);
      continue;
    }
    for (size_t b = 0; b < sums[0][i].size(); ++b) {
      uint64_t v = 0;
      for (const auto& stripe_sums : sums) v += stripe_sums[i][b];
      add(seg.lo + static_cast<int64_t>(b) * seg.unit_ms, v);
    }
  }
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
