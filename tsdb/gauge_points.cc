#include "tsdb/gauge_points.h"

#include <algorithm>
#include <map>

#include "tsdb/format.h"
#include "tsdb/query_plan.h"

namespace stickmeter::tsdb {
namespace {

struct GaugeCell {
  format::RollupKeyParts parts;
  int64_t last = 0, max = 0;
};

Status DecodeCell(rocksdb::Iterator* it, GaugeCell* cell) {
  const rocksdb::Slice row = it->key();
  const rocksdb::Slice value = it->value();
  if (row.size() != format::kRollupKeySize || value.size() != format::kGaugeValueSize) {
    return Status::Corruption("bad gauge record");
  }
  cell->parts = format::DecodeRollupKey(row.data());
  cell->last = static_cast<int64_t>(format::GetFixed64LE(value.data()));
  cell->max = static_cast<int64_t>(format::GetFixed64LE(value.data() + 8));
  return Status::Ok();
}

// Each source's latest value before `from_minute`, from at most kGaugeLookbackCells cells.
Status LookBack(ReadView& r, const GaugeRead& q, const std::string& prefix, uint32_t from_minute,
                std::map<uint32_t, int64_t>& values) {
  if (from_minute == 0) return Status::Ok();
  rocksdb::Iterator* it = r.It(kGauge);
  std::string start = prefix;
  format::PutU32BE(start, from_minute);  // the first cell not before `from`
  it->SeekForPrev(start);
  int cells = 0;
  for (; it->Valid() && cells < kGaugeLookbackCells; it->Prev(), ++cells) {
    if (!it->key().starts_with(prefix)) break;
    GaugeCell cell;
    if (auto s = DecodeCell(it, &cell); !s.ok()) return s;
    if (cell.parts.bucket >= from_minute) continue;  // `start` itself, if it exists
    if (q.source && cell.parts.source != *q.source) continue;
    values.try_emplace(cell.parts.source, cell.last);  // going back: the first seen is latest
  }
  return r.Check();
}

int64_t SumOf(const std::map<uint32_t, int64_t>& values) {
  int64_t sum = 0;
  for (const auto& [source, v] : values) sum += v;
  return sum;
}

}  // namespace

Status ReadGaugePoints(ReadView& r, const GaugeRead& q, Series& out) {
  const std::string prefix = format::RollupPrefix(q.table, q.metric, q.key);
  const auto from_minute = static_cast<uint32_t>(q.from_ms / format::kMinuteMs);
  const int64_t end_minute = CeilTo(q.to_ms, format::kMinuteMs) / format::kMinuteMs;
  const bool last = q.agg == GaugeAgg::kLast;
  // `last`: every source's value so far; a step's point is their sum at the step's end.
  std::map<uint32_t, int64_t> values;
  if (last) {
    if (auto s = LookBack(r, q, prefix, from_minute, values); !s.ok()) return s;
  }
  const int64_t first_step = FloorTo(q.from_ms, out.step_ms);
  int64_t step = first_step;                // `last`: the step being filled
  auto emit_through = [&](int64_t until) {  // `last`: points of the steps before `until`
    for (; step < until; step += out.step_ms) {
      if (!values.empty()) out.points.push_back({step, static_cast<uint64_t>(SumOf(values))});
    }
  };

  rocksdb::Iterator* it = r.It(kGauge);
  std::string start = prefix;
  format::PutU32BE(start, from_minute);
  for (it->Seek(start); it->Valid(); it->Next()) {
    if (!it->key().starts_with(prefix)) break;
    GaugeCell cell;
    if (auto s = DecodeCell(it, &cell); !s.ok()) return s;
    if (cell.parts.bucket >= end_minute) break;
    if (q.source && cell.parts.source != *q.source) continue;
    const int64_t t = FloorTo(int64_t{cell.parts.bucket} * format::kMinuteMs, out.step_ms);
    if (last) {
      emit_through(t);
      values[cell.parts.source] = cell.last;  // cells of a minute come in source order
      continue;
    }
    if (!out.points.empty() && out.points.back().t_ms == t) {
      auto& v = out.points.back().v;
      v = static_cast<uint64_t>(std::max(static_cast<int64_t>(v), cell.max));
    } else {
      out.points.push_back({t, static_cast<uint64_t>(cell.max)});
    }
  }
  if (auto s = r.Check(); !s.ok()) return s;
  if (last) emit_through(std::min(q.to_ms, q.carry_until_ms + 1));
  return Status::Ok();
}

Status ReadGaugeOfEveryKey(ReadView& r, const GaugeRead& q, std::optional<uint32_t> only_key,
                           std::vector<std::optional<int64_t>>& by_id) {
  const std::string table_prefix = format::RollupPrefix(q.table, q.metric);
  const auto from_minute = static_cast<uint32_t>(q.from_ms / format::kMinuteMs);
  const auto end_minute =
      static_cast<uint32_t>(CeilTo(q.to_ms, format::kMinuteMs) / format::kMinuteMs);
  rocksdb::Iterator* it = r.It(kGauge);
  auto seek = [&](uint32_t key, uint32_t minute) {
    std::string k = table_prefix;
    format::PutU32BE(k, key);
    format::PutU32BE(k, minute);
    it->Seek(k);
  };
  seek(only_key.value_or(0), 0);
  while (it->Valid() && it->key().starts_with(table_prefix)) {
    GaugeCell cell;
    if (auto s = DecodeCell(it, &cell); !s.ok()) return s;
    const uint32_t key = cell.parts.key;
    if (only_key && key != *only_key) break;
    const std::string key_prefix = format::RollupPrefix(q.table, q.metric, key);
    std::optional<int64_t> value;
    if (q.agg == GaugeAgg::kMax) {
      for (seek(key, from_minute); it->Valid() && it->key().starts_with(key_prefix); it->Next()) {
        if (auto s = DecodeCell(it, &cell); !s.ok()) return s;
        if (cell.parts.bucket >= end_minute) break;
        if (q.source && cell.parts.source != *q.source) continue;
        value = std::max(value.value_or(cell.max), cell.max);
      }
    } else {
      std::map<uint32_t, int64_t> values;
      if (auto s = LookBack(r, q, key_prefix, end_minute, values); !s.ok()) return s;
      if (!values.empty()) {
        value = 0;
        for (const auto& [source, v] : values) *value += std::max<int64_t>(v, 0);
      }
    }
    if (value) {
      if (key >= by_id.size()) by_id.resize(size_t{key} + 1);
      by_id[key] = value;
    }
    if (key == UINT32_MAX || only_key) break;
    seek(key + 1, 0);
  }
  return r.Check();
}

}  // namespace stickmeter::tsdb
