#include "tsdb/every_key.h"

#include <algorithm>
#include <map>
#include <system_error>
#include <thread>
#include <utility>

#include "common/thread_setup.h"
#include "tsdb/format.h"

namespace stickmeter::tsdb {

ScanBudget::Hold::Hold(ScanBudget& budget, uint32_t wanted) : budget_(budget) {
  uint32_t busy = budget_.busy_.fetch_add(1) + 1;  // this query's own thread
  while (count_ < wanted && busy < budget_.limit_) {
    if (budget_.busy_.compare_exchange_weak(busy, busy + 1)) {
      ++count_;
      ++busy;
    }
  }
}

Status AddRawEdges(ReadView& r, uint32_t table, uint32_t metric, std::optional<uint32_t> source,
                   const std::vector<Segment>& segments,
                   std::span<const std::vector<uint64_t>> edge_active,
                   std::vector<uint64_t>& totals, const KeyStripe& stripe) {
  // The sub-minute edges from raw events, of the keys with something in the edge's minutes
  // only: key by key in id order, each key's edges in time order, through one iterator that
  // moves forward, as the rows lie (a step on a cached block costs a fraction of a seek).
  std::vector<Segment> raw;
  for (const auto& seg : segments) {
    if (seg.unit_ms == 0) raw.push_back(seg);
  }
  bool scanned = false;  // the iterator rests after an earlier scan (of prev_key up to prev_hi)
  uint32_t prev_key = 0;
  int64_t prev_hi = 0;
  size_t active_ids = 0;
  for (const auto& active : edge_active) active_ids = std::max(active_ids, active.size());
  for (uint32_t id = stripe.NextFrom(0); id < active_ids; ++id) {
    if (!stripe.Contains(id)) {
      id = stripe.NextFrom(id);
      if (id >= active_ids) break;
    }
    for (size_t e = 0; e < raw.size(); ++e) {
      if (id >= edge_active[e].size() || edge_active[e][id] == 0) continue;
      const Segment& seg = raw[e];
      // Ahead only when no row this scan needs lies behind the iterator: the previous scan was
      // of a smaller key, or of this key and ended where this one's first row may start.
      const bool ahead =
          scanned && (prev_key < id || seg.lo - format::kRawRowSpanMs + 1 >= prev_hi);
      auto s = ScanAudit(
          r, table, id, seg.lo, seg.hi,
          [&](const format::RawEvent& ev) {
            if (ev.e.metric == metric && (!source || ev.e.source == *source)) {
              if (id >= totals.size()) {
                if (stripe.count > 1) {
                  return Status::Corruption("audit row of a key id the catalog does not hold");
                }
                totals.resize(size_t{id} + 1);
              }
              totals[id] += ev.e.delta;
            }
            return Status::Ok();
          },
          nullptr, ahead);
      if (!s.ok()) return s;
      scanned = true;
      prev_key = id;
      prev_hi = seg.hi;
    }
  }
  return Status::Ok();
}

Status ForEachStripe(ReadView& r, uint32_t threads, uint32_t block_keys,
                     const std::function<Status(ReadView&, const KeyStripe&)>& scan) {
  if (threads <= 1) return scan(r, KeyStripe{});
  std::vector<Status> done(threads, Status::Ok());
  std::vector<std::thread> helpers;
  std::vector<uint32_t> here = {0};  // the stripes this thread reads
  for (uint32_t i = 1; i < threads; ++i) {
    try {
      helpers.emplace_back([&, i, view = r.Fork()] {
        SetUpThisThread("sm-query-scan");
        const QuietPerfCounters quiet;
        done[i] = scan(*view, KeyStripe{i, threads, block_keys});
      });
    } catch (const std::system_error&) {
      here.push_back(i);
    }
  }
  for (uint32_t i : here) done[i] = scan(r, KeyStripe{i, threads, block_keys});
  for (auto& helper : helpers) helper.join();
  for (const Status& s : done) {
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

namespace {

// Every key's totals (and what each has in the edges' minutes) from the every-key rollups: the
// rows of the range's buckets only, by time first, so that what the keys have outside the range
// is never read. The sub-minute edges are shared out between threads as with the rollups by key.
Status TotalsByTime(ReadView& r, uint32_t table, uint32_t metric,
                    const std::vector<Segment>& segments, const std::vector<Segment>& edge_minutes,
                    uint32_t threads, uint32_t block_keys, std::vector<uint64_t>& totals,
                    std::vector<std::vector<uint64_t>>& edge_active) {
  auto add = [&](const Segment& seg, std::vector<uint64_t>& out) {
    return ScanKeyRollups(r, KeyRollupCf(RollupCf(seg.unit_ms)), table, metric,
                          static_cast<uint32_t>(seg.lo / seg.unit_ms),
                          static_cast<uint32_t>(seg.hi / seg.unit_ms),
                          [&](uint32_t key, uint32_t /*bucket*/, uint64_t sum) {
                            if (key >= out.size()) out.resize(size_t{key} + 1);
                            out[key] += sum;
                          });
  };
  for (const auto& seg : segments) {
    if (seg.unit_ms == 0) continue;
    if (auto s = add(seg, totals); !s.ok()) return s;
  }
  for (size_t i = 0; i < edge_minutes.size(); ++i) {
    if (auto s = add(edge_minutes[i], edge_active[i]); !s.ok()) return s;
    // Keys added since the caller counted the ids: the edges' threads may add to them.
    if (edge_active[i].size() > totals.size()) totals.resize(edge_active[i].size());
  }
  if (edge_minutes.empty()) return Status::Ok();
  return ForEachStripe(r, threads, block_keys, [&](ReadView& view, const KeyStripe& stripe) {
    if (auto s =
            AddRawEdges(view, table, metric, std::nullopt, segments, edge_active, totals, stripe);
        !s.ok()) {
      return s;
    }
    return view.Check();
  });
}

// The same from the rollups by key (a query of one source, or a store of format version 1 open
// read-only): one pass per family over every key, with all of the range's windows of that
// family at once, shared out between threads by key.
Status TotalsByKey(ReadView& r, uint32_t table, uint32_t metric, std::optional<uint32_t> source,
                   const std::vector<Segment>& segments, const std::vector<Segment>& edge_minutes,
                   uint32_t threads, uint32_t block_keys, std::vector<uint64_t>& totals,
                   std::vector<std::vector<uint64_t>>& edge_active) {
  std::map<int64_t, std::vector<RollupWindow>> by_unit;
  auto add_window = [&](const Segment& seg, std::vector<uint64_t>* out) {
    by_unit[seg.unit_ms].push_back(RollupWindow{static_cast<uint32_t>(seg.lo / seg.unit_ms),
                                                static_cast<uint32_t>(seg.hi / seg.unit_ms), out});
  };
  for (const auto& seg : segments) {
    if (seg.unit_ms != 0) add_window(seg, &totals);
  }
  for (size_t i = 0; i < edge_minutes.size(); ++i) add_window(edge_minutes[i], &edge_active[i]);
  for (auto& [unit, windows] : by_unit) {
    std::sort(windows.begin(), windows.end(),
              [](const RollupWindow& a, const RollupWindow& b) { return a.lo < b.lo; });
  }
  return ForEachStripe(r, threads, block_keys, [&](ReadView& view, const KeyStripe& stripe) {
    for (const auto& [unit, windows] : by_unit) {
      if (auto s = ScanRollup(view, table, metric, RollupCf(unit), windows, source, stripe);
          !s.ok()) {
        return s;
      }
    }
    if (auto s = AddRawEdges(view, table, metric, source, segments, edge_active, totals, stripe);
        !s.ok()) {
      return s;
    }
    return view.Check();
  });
}

}  // namespace

Status UsageOfEveryKey(ReadView& r, uint32_t table, uint32_t metric, std::optional<uint32_t> source,
                       const std::vector<Segment>& segments,
                       const std::vector<Segment>& edge_minutes, size_t ids, uint32_t threads,
                       uint32_t block_keys, const QueryService::UsageVisitor& visit) {
  std::vector<uint64_t> totals(ids);
  // Per raw segment, by key id: what the key has in the segment's minutes.
  std::vector<std::vector<uint64_t>> edge_active(edge_minutes.size(), std::vector<uint64_t>(ids));
  if (source && r.ReadsByTime()) {
    return Status::Internal("the every-key rollups hold no source apart");
  }
  const Status read = r.ReadsByTime()
                          ? TotalsByTime(r, table, metric, segments, edge_minutes, threads,
                                         block_keys, totals, edge_active)
                          : TotalsByKey(r, table, metric, source, segments, edge_minutes, threads,
                                        block_keys, totals, edge_active);
  if (!read.ok()) return read;
  return ForEachKey(r, table, "", [&](std::string_view key_text, uint32_t key_id) {
    if (key_id >= totals.size() || totals[key_id] == 0) return true;
    return visit(key_text, totals[key_id]);
  });
}

}  // namespace stickmeter::tsdb
