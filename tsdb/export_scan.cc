#include "tsdb/export_scan.h"

#include <rocksdb/iterator.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "tsdb/config.h"
#include "tsdb/format.h"
#include "tsdb/query_plan.h"
#include "tsdb/scans.h"

namespace stickmeter::tsdb {
namespace {

using format::MetricClass;
using format::NameKind;

// Source slots of an export row: one slot for all sources, or one per source in name order
// with per_source.
struct ExportSlots {
  size_t count = 1;
  std::vector<uint32_t> slot_of;   // by source id; kNone for an unknown id
  std::vector<std::string> names;  // by slot, empty without per_source
  static constexpr uint32_t kNone = UINT32_MAX;
  bool Find(uint32_t source, size_t* slot) const {
    if (names.empty()) {
      *slot = 0;
      return true;
    }
    if (source >= slot_of.size() || slot_of[source] == kNone) return false;
    *slot = slot_of[source];
    return true;
  }
};

// The keys of one export chunk in text order and their totals. Cells are indexed by position *
// stride + metric index * slots + slot, so emitting walks them in output order.
struct ExportChunk {
  std::string text;                                  // the key texts back to back
  std::vector<uint32_t> text_end;                    // where key i's text ends in `text`
  std::vector<std::pair<uint32_t, uint32_t>> by_id;  // (key id, position), ascending id
  std::vector<uint64_t> totals;
};

// A table to export: its name, id and counter metrics (name, id) sorted by name.
struct ExportTable {
  std::string name;
  uint32_t id;
  std::vector<std::pair<std::string, uint32_t>> metrics;
};

// Adds the cells of the rollup rows of `table` in `cf` whose bucket lies in one of `windows`
// (sorted, disjoint [lo, hi) buckets) for the keys of `chunk`, of the exported metrics
// (`metric_cell` by metric id, SIZE_MAX when not exported).
Status ScanRollupWindows(ReadView& r, Cf cf, uint32_t table,
                         const std::vector<std::pair<uint32_t, uint32_t>>& windows,
                         const std::vector<size_t>& metric_cell, const ExportSlots& slots,
                         size_t stride, ExportChunk& chunk) {
  const auto& ids = chunk.by_id;
  if (ids.empty() || windows.empty()) return Status::Ok();
  const uint32_t span = RowSpan(cf);
  rocksdb::Iterator* it = r.It(cf);
  const std::string prefix = format::EntryRollupPrefix(table);
  std::string target = prefix;
  target.resize(prefix.size() + 8);
  // Moves to the first row at or after (key, bucket), which is ahead of the current row.
  bool positioned = false;
  auto advance = [&](uint32_t key, uint32_t bucket) {
    bucket /= span;  // the row holding that bucket
    char* p = target.data() + prefix.size();
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(key >> (24 - 8 * i));
    for (int i = 0; i < 4; ++i) p[4 + i] = static_cast<char>(bucket >> (24 - 8 * i));
    const rocksdb::Slice t(target);
    if (positioned) {
      for (int i = 0; it->Valid() && it->key().compare(t) < 0; ++i) {
        if (i == config::kMaxSkipRows) return it->Seek(t);
        it->Next();
      }
      return;
    }
    positioned = true;
    it->Seek(t);
  };
  size_t idx = 0, w = 0;
  advance(ids[0].first, windows[0].first);
  while (it->Valid()) {
    const rocksdb::Slice row = it->key();  // once: a chain of virtual calls in RocksDB
    if (!row.starts_with(prefix)) break;
    if (row.size() != format::kEntryRollupKeySize) return Status::Corruption("bad rollup record");
    const auto parts = format::DecodeEntryRollupKey(row.data());
    if (parts.key != ids[idx].first) {
      // A key of another chunk (or with nothing stored): on to the next key of this chunk.
      idx =
          static_cast<size_t>(std::lower_bound(ids.begin() + static_cast<ptrdiff_t>(idx), ids.end(),
                                               std::make_pair(parts.key, uint32_t{0})) -
                              ids.begin());
      if (idx == ids.size()) break;
      w = 0;
      if (ids[idx].first != parts.key) {
        advance(ids[idx].first, windows[0].first);
        continue;
      }
    }
    // The row covers buckets [row_first, row_first + span).
    const uint64_t row_first = uint64_t{parts.bucket} * span;
    while (w < windows.size() && row_first >= windows[w].second) ++w;
    if (w == windows.size()) {
      if (++idx == ids.size()) break;
      w = 0;
      advance(ids[idx].first, windows[0].first);
      continue;
    }
    if (row_first + span <= windows[w].first) {
      advance(parts.key, windows[w].first);
      continue;
    }
    size_t slot = 0;
    if (!slots.Find(parts.source, &slot)) {
      return Status::Corruption("rollup row of an unknown source");
    }
    uint64_t* totals = chunk.totals.data() + size_t{ids[idx].second} * stride + slot;
    if (!ForEachCell(span, parts.bucket, it->value().ToStringView(),
                     [&](uint32_t m, uint32_t b, uint64_t v) {
                       if (m >= metric_cell.size() || metric_cell[m] == SIZE_MAX) return;
                       for (size_t i = w; i < windows.size() && windows[i].first <= b; ++i) {
                         if (b < windows[i].second) {
                           totals[metric_cell[m]] += v;
                           return;
                         }
                       }
                     })) {
      return Status::Corruption("bad rollup record");
    }
    it->Next();
  }
  return r.Check();
}

// Adds the raw events in the `ranges` ([lo, hi) ms) of the exported metrics (`metric_cell`
// by metric id, SIZE_MAX when not exported) for the keys of `chunk`.
Status ScanRawRanges(ReadView& r, uint32_t table,
                     const std::vector<std::pair<int64_t, int64_t>>& ranges,
                     const std::vector<size_t>& metric_cell, const ExportSlots& slots,
                     size_t stride, ExportChunk& chunk) {
  for (const auto& by_id : chunk.by_id) {
    // Not a structured binding: the lambda below captures the position, which Clang before 16
    // does not allow for a binding.
    const uint32_t key = by_id.first, pos = by_id.second;
    for (const auto& [lo, hi] : ranges) {
      const Status s = ScanAudit(r, table, key, lo, hi, [&](const format::RawEvent& ev) {
        const format::EventValue& e = ev.e;
        if (e.metric >= metric_cell.size() || metric_cell[e.metric] == SIZE_MAX) {
          return Status::Ok();
        }
        size_t slot = 0;
        if (!slots.Find(e.source, &slot)) {
          return Status::Corruption("audit event of an unknown source");
        }
        chunk.totals[size_t{pos} * stride + metric_cell[e.metric] + slot] += e.delta;
        return Status::Ok();
      });
      if (!s.ok()) return s;
    }
  }
  return r.Check();
}

// The tables `q` exports, sorted by name, each with its counter metrics sorted by name. NotFound
// for an unknown table, or a metric that is no table's counter.
Status ListTables(const Catalog& catalog, const ExportQuery& q, std::vector<ExportTable>* tables) {
  bool metric_known = !q.metric.has_value();
  catalog.ForEachTable([&](uint32_t id, const TableMeta& meta) {
    ExportTable t{catalog.names.Text(NameKind::kTable, id), id, {}};
    if (q.table && t.name != *q.table) return;
    for (const auto& [m, cls] : meta.metrics) {
      if (cls == MetricClass::kGauge) continue;
      std::string name = catalog.names.Text(NameKind::kMetric, m);
      if (q.metric && name != *q.metric) continue;
      metric_known = true;
      t.metrics.emplace_back(std::move(name), m);
    }
    std::sort(t.metrics.begin(), t.metrics.end());
    tables->push_back(std::move(t));
  });
  if (!metric_known) return Status::NotFound("metric: no counter metric '" + *q.metric + "'");
  std::sort(tables->begin(), tables->end(),
            [](const ExportTable& a, const ExportTable& b) { return a.name < b.name; });
  return Status::Ok();
}

// The source slots: one for all, or with `per_source` one per source the catalog names. Read
// after the view began, the names cover every source id it holds.
ExportSlots SlotsOf(const Catalog& catalog, bool per_source) {
  ExportSlots slots;
  if (per_source) {
    auto sources = catalog.names.All(NameKind::kSource);
    slots.count = std::max<size_t>(sources.size(), 1);
    for (auto& [name, id] : sources) {
      if (slots.slot_of.size() <= id) slots.slot_of.resize(id + 1, ExportSlots::kNone);
      slots.slot_of[id] = static_cast<uint32_t>(slots.names.size());
      slots.names.push_back(std::move(name));
    }
  }
  return slots;
}

// One export's reads after its plan: table by table, chunk by chunk, the rows in output order.
//
// Totals are computed a chunk of keys at a time: take the next keys in text order while their
// totals, text and bookkeeping fit the chunk budget, then one pass per metric and rollup
// resolution over the rows of those keys (in key id order, stepping over other keys' rows),
// then the raw edges per key, then the rows in output order. In one chunk (the common case)
// each pass reads the table+metric rows front to back instead of a Seek per key, metric and
// segment; with many chunks each pass seeks to the chunk's keys, and memory stays bounded
// whatever the number of keys.
class ExportPass {
 public:
  // The same segments for every key: bucket windows per rollup resolution, raw events at
  // sub-minute edges.
  ExportPass(ReadView& r, const ExportSlots& slots, const std::vector<Segment>& segments,
             size_t budget, const std::function<bool(const ExportRow&)>& emit)
      : r_(r), slots_(slots), budget_(budget), emit_(emit) {
    for (const auto& seg : segments) {
      if (seg.unit_ms == 0) {
        raw_.emplace_back(seg.lo, seg.hi);
      } else {
        windows_[RollupCf(seg.unit_ms) - kMinute].emplace_back(
            static_cast<uint32_t>(seg.lo / seg.unit_ms),
            static_cast<uint32_t>(seg.hi / seg.unit_ms));
      }
    }
  }

  // Emits the rows of table `t`; *more is set false once emit has returned false.
  Status Table(const ExportTable& t, bool* more) {
    if (t.metrics.empty()) return Status::Ok();
    const size_t stride = t.metrics.size() * slots_.count;
    std::vector<size_t> metric_cell;  // by metric id
    for (size_t m = 0; m < t.metrics.size(); ++m) {
      const uint32_t id = t.metrics[m].second;
      if (metric_cell.size() <= id) metric_cell.resize(id + 1, SIZE_MAX);
      metric_cell[id] = m * slots_.count;
    }
    row_.table = t.name;
    const std::string key_prefix = format::NameKey(NameKind::kKey, format::KeyName(t.id, ""));
    rocksdb::Iterator* keys = r_.It(kMeta);
    keys->Seek(key_prefix);
    while (keys->Valid() && keys->key().starts_with(key_prefix)) {
      if (auto s = NextChunk(keys, key_prefix, stride); !s.ok()) return s;
      if (auto s = SumChunk(t.id, metric_cell, stride); !s.ok()) return s;
      if (!EmitChunk(t, stride)) {
        *more = false;
        return Status::Ok();
      }
    }
    return r_.Check();
  }

 private:
  // Takes the next keys of the table from `keys` into chunk_, while they fit the budget (at
  // least one).
  Status NextChunk(rocksdb::Iterator* keys, const std::string& key_prefix, size_t stride) {
    const size_t name_skip = 2 + 4;  // tag, kind, table id
    const size_t key_cost =
        stride * sizeof(uint64_t) + sizeof(uint32_t) + sizeof(std::pair<uint32_t, uint32_t>);
    chunk_.text.clear();
    chunk_.text_end.clear();
    chunk_.by_id.clear();
    size_t bytes = 0;
    for (; keys->Valid() && keys->key().starts_with(key_prefix); keys->Next()) {
      if (keys->value().size() != 4) return Status::Corruption("bad key record");
      const size_t len = keys->key().size() - name_skip;
      if (!chunk_.by_id.empty() && bytes + key_cost + len > budget_) break;
      bytes += key_cost + len;
      chunk_.text.append(keys->key().data() + name_skip, len);
      chunk_.by_id.emplace_back(format::GetU32BE(keys->value().data()),
                                static_cast<uint32_t>(chunk_.text_end.size()));
      chunk_.text_end.push_back(static_cast<uint32_t>(chunk_.text.size()));
    }
    return r_.Check();
  }

  // The totals of the chunk's keys: the rollup windows, then the raw edges.
  Status SumChunk(uint32_t table, const std::vector<size_t>& metric_cell, size_t stride) {
    std::sort(chunk_.by_id.begin(), chunk_.by_id.end());
    chunk_.totals.assign(chunk_.text_end.size() * stride, 0);
    for (int c = 0; c < 3; ++c) {
      if (windows_[c].empty()) continue;
      auto s = ScanRollupWindows(r_, static_cast<Cf>(kMinute + c), table, windows_[c], metric_cell,
                                 slots_, stride, chunk_);
      if (!s.ok()) return s;
    }
    if (raw_.empty()) return Status::Ok();
    return ScanRawRanges(r_, table, raw_, metric_cell, slots_, stride, chunk_);
  }

  // Emits the chunk's non-zero totals in output order; false once emit returned false.
  bool EmitChunk(const ExportTable& t, size_t stride) {
    size_t text_begin = 0;
    for (size_t pos = 0; pos < chunk_.text_end.size(); ++pos) {
      const uint64_t* cells = chunk_.totals.data() + pos * stride;
      bool key_set = false;
      for (size_t cell = 0; cell < stride; ++cell) {
        if (cells[cell] == 0) continue;
        if (!key_set) {
          row_.key.assign(chunk_.text, text_begin, chunk_.text_end[pos] - text_begin);
          key_set = true;
        }
        row_.metric = t.metrics[cell / slots_.count].first;
        if (slots_.names.empty()) {
          row_.source.clear();
        } else {
          row_.source = slots_.names[cell % slots_.count];
        }
        row_.total = cells[cell];
        if (!emit_(row_)) return false;
      }
      text_begin = chunk_.text_end[pos];
    }
    return true;
  }

  ReadView& r_;
  const ExportSlots& slots_;
  const size_t budget_;
  const std::function<bool(const ExportRow&)>& emit_;
  std::vector<std::pair<uint32_t, uint32_t>> windows_[3];  // by rollup family
  std::vector<std::pair<int64_t, int64_t>> raw_;
  ExportChunk chunk_;
  ExportRow row_;
};

}  // namespace

Status ExportScanner::Export(const ExportQuery& q,
                             const std::function<bool(const ExportRow&)>& emit) {
  ReadGate::Hold hold(gate_);
  if (!hold.status().ok()) return hold.status();
  if (auto s = CheckRange(q.from_ms, q.to_ms); !s.ok()) return s;
  std::optional<uint32_t> table_id;
  if (q.table) {
    auto id = catalog_.ResolveTable(*q.table);
    if (!id.ok()) return id.status();
    table_id = *id;
  }
  std::vector<ExportTable> tables;
  if (auto s = ListTables(catalog_, q, &tables); !s.ok()) return s;
  std::vector<Segment> segments;
  Decompose(q.from_ms, q.to_ms, &segments);
  ReadView r = hold.View(/*snapshot=*/true, /*journal=*/true);
  if (auto s = r.AddJournal(table_id, std::nullopt, segments); !s.ok()) return s;
  const ExportSlots slots = SlotsOf(catalog_, q.per_source);
  ExportPass pass(r, slots, segments, chunk_bytes_.load(), emit);
  bool more = true;
  for (const auto& t : tables) {
    if (auto s = pass.Table(t, &more); !s.ok() || !more) return s;
  }
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
