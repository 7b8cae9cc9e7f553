// The scans the queries are made of: a series' deltas over a range, the rollup cells of one
// entry or of every key of a table, an entry's audit events, a table's keys. Each reads through
// a ReadView, the query's consistent view of the families and the journal rows not written out.
//
// Thread-safety: the query thread that owns the view; the functions keep no state.
// Ownership: they borrow the view (and its iterators, which they leave anywhere) and write only
// to what their callers pass.
// Failure: Corruption for a malformed row (audit, rollup or key record), IoError from RocksDB
// (through ReadView::Check), or the first error a visitor returns.
#pragma once

#include <rocksdb/iterator.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tsdb/db_handle.h"
#include "tsdb/format.h"
#include "tsdb/query_plan.h"
#include "tsdb/read_view.h"

namespace stickmeter::tsdb {

// Moves `it`, which rests on the first row at or after some earlier target <= `target` (or is
// not valid), to the first row at or after `target`: a few Next() first, as the target is often
// a few rows on and a step on a cached block costs a fraction of a Seek.
void SeekAhead(rocksdb::Iterator* it, const rocksdb::Slice& target);

// Adds the deltas of one series (all sources, or `source` only) over [from, to) per source.
Status SumRange(ReadView& r, uint32_t table, uint32_t metric, uint32_t key, int64_t from,
                int64_t to, std::optional<uint32_t> source,
                const std::function<void(uint64_t)>& add);

// Buckets [lo, hi) of one rollup family, and where their sums go: per key (`totals`, indexed by
// key id), or, with `per_bucket` set, per bucket over every key (indexed by bucket - lo, sized
// hi - lo by the caller).
struct RollupWindow {
  uint32_t lo, hi;
  std::vector<uint64_t>* totals;
  std::vector<uint64_t>* per_bucket = nullptr;
};
// The key ids one thread of an every-key scan reads: blocks of `block` consecutive ids, every
// `count`-th block from block `index` on. Blocks rather than one range each: a table's ids need
// not be spread evenly (ids are numbered across tables as keys are first seen), and interleaved
// blocks share them out evenly whatever their spread, for a seek per block. The default is every
// key.
struct KeyStripe {
  uint32_t index = 0;
  uint32_t count = 1;
  uint32_t block = 4096;
  bool Contains(uint32_t key) const { return count == 1 || (key / block) % count == index; }
  // The first id at or after `key` in the stripe; UINT32_MAX when there is none.
  uint32_t NextFrom(uint32_t key) const;
};

// One pass over the rollup rows of table+metric in `cf`, every key of `stripe`: each cell in one
// of `windows` (sorted, disjoint) is added to that window's totals (or per-bucket sums). One pass
// per family rather than per segment: each pass costs a seek or more per key. With more than one
// stripe, the totals must be sized for every key id the view holds (threads scanning other
// stripes write to the same vectors, at other ids): a larger id is Corruption.
Status ScanRollup(ReadView& r, uint32_t table, uint32_t metric, Cf cf,
                  const std::vector<RollupWindow>& windows, std::optional<uint32_t> source,
                  const KeyStripe& stripe = {});

// Calls `fn(key_text, key_id)` for the keys of a table in text order, starting at `prefix`,
// until it returns false.
Status ForEachKey(ReadView& r, uint32_t table, std::string_view prefix,
                  const std::function<bool(std::string_view, uint32_t)>& fn);

// Calls `visit(bucket, sum)` for the cells of `metric` in the rollup rows of one entry
// (`prefix` = table, key) with buckets in [lo_bucket, hi_bucket), summed over all sources or
// of `source` only, in bucket order. A template: a month of hours is ~750 cells, and a
// std::function call per cell showed.
template <typename Visit>
Status ScanSeriesRollup(ReadView& r, Cf cf, const std::string& prefix, uint32_t metric,
                        uint32_t lo_bucket, uint32_t hi_bucket, std::optional<uint32_t> source,
                        Visit&& visit) {
  const uint32_t span = RowSpan(cf);
  rocksdb::Iterator* it = r.It(cf);
  std::string start = prefix;
  format::PutU32BE(start, lo_bucket / span);
  // The rows of one bucket (one per source) are added up before its cells are visited, so
  // that buckets come in time order once each.
  format::HourRow row;
  uint32_t row_bucket = 0;
  auto visit_row = [&] {
    const uint32_t first = row_bucket * span;
    for (uint32_t m = row.mask; m != 0; m &= m - 1) {
      const uint32_t b = first + static_cast<uint32_t>(std::countr_zero(m));
      if (b >= lo_bucket && b < hi_bucket) visit(b, row.sums[b - first]);
    }
    row = format::HourRow{};
  };
  for (it->Seek(start); it->Valid(); it->Next()) {
    // key() and value() are each a chain of virtual calls down RocksDB's iterator stack: once
    // per row.
    const rocksdb::Slice key = it->key();
    if (!key.starts_with(prefix)) break;
    if (key.size() != format::kEntryRollupKeySize) return Status::Corruption("bad rollup record");
    const auto parts = format::DecodeEntryRollupKey(key.data());
    if (uint64_t{parts.bucket} * span >= hi_bucket) break;
    if (source && parts.source != *source) continue;
    if (row.mask != 0 && parts.bucket != row_bucket) visit_row();
    row_bucket = parts.bucket;
    const uint32_t first = parts.bucket * span;
    if (!ForEachCellOf(metric, span, parts.bucket, it->value().ToStringView(),
                       [&](uint32_t b, uint64_t v) { row.Add(b - first, v); })) {
      return Status::Corruption("bad rollup record");
    }
  }
  if (row.mask != 0) visit_row();
  return Status::Ok();
}

// Calls `visit(key_id, bucket, sum)` for the every-key rollup cells of `metric` of `table` in
// buckets [lo_bucket, hi_bucket) of `cf` (kKeyMinute, kKeyHour or kKeyDay; buckets in its
// unit): bucket by bucket, key ids ascending within a row. A key's cells of one bucket may come
// twice (a row and a journal row not yet written out): the visitor adds them up. A template, as
// it runs per key and bucket.
template <typename Visit>
Status ScanKeyRollups(ReadView& r, Cf cf, uint32_t table, uint32_t metric, uint32_t lo_bucket,
                      uint32_t hi_bucket, Visit&& visit) {
  if (lo_bucket >= hi_bucket) return Status::Ok();
  rocksdb::Iterator* it = r.It(cf);
  std::string start;
  format::AppendKeySumsKey(start, table, metric, lo_bucket, 0);
  const rocksdb::Slice prefix(start.data(), format::kKeySumsBucketOffset);
  for (it->Seek(start); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (!key.starts_with(prefix)) break;
    if (key.size() != format::kKeySumsKeySize) return Status::Corruption("bad every-key rollup");
    const auto parts = format::DecodeKeySumsKey(key.data());
    if (parts.bucket >= hi_bucket) break;
    const uint64_t first = uint64_t{parts.block} * format::kKeysPerBlock;
    format::SumsReader sums(it->value().ToStringView());
    uint32_t slot = 0;
    uint64_t sum = 0;
    bool any = false;
    while (sums.Next(&slot, &sum)) {
      if (slot >= format::kKeysPerBlock) return Status::Corruption("bad every-key rollup");
      any = true;
      visit(static_cast<uint32_t>(first + slot), parts.bucket, sum);
    }
    if (!sums.ok() || !any) return Status::Corruption("bad every-key rollup");
  }
  return r.Check();
}

// Visits the audit events of (table, key) with lo <= t < hi, a row (ordered by its first
// update's time and sequence number) after another; stops at the first error `visit` returns,
// and before the first row keyed after *last_t once that is set. `ahead`: the previous scan of
// this view's audit iterator was of a smaller key of the same table, or of this key up to a
// time no later than this scan's first row's, so the iterator rests at or before this scan's
// first row, which a few steps may reach faster than a seek. A template, as the visit runs per
// event.
template <typename Visit>
Status ScanAudit(ReadView& r, uint32_t table, uint32_t key, int64_t lo, int64_t hi, Visit&& visit,
                 const std::optional<int64_t>* last_t = nullptr, bool ahead = false) {
  rocksdb::Iterator* it = r.It(kRaw);
  // A row keyed up to kRawRowSpanMs before lo may hold updates from lo on.
  format::RawKeyBytes start_bytes;
  format::EncodeRawKey(start_bytes, table, key,
                       std::max<int64_t>(lo - format::kRawRowSpanMs + 1, 0), 0);
  const rocksdb::Slice start(start_bytes.data(), start_bytes.size());
  const rocksdb::Slice key_prefix(start.data(), 8);
  if (ahead) {
    // The iterator rests on the first row at or after an earlier target (or is not valid): a
    // row at or after this target is then the first such row.
    SeekAhead(it, start);
  } else {
    it->Seek(start);
  }
  for (; it->Valid(); it->Next()) {
    // key() is a chain of virtual calls down RocksDB's iterator stack: once per row.
    const rocksdb::Slice row_key = it->key();
    if (!row_key.starts_with(key_prefix)) break;
    if (row_key.size() != format::kRawKeySize) return Status::Corruption("bad audit key");
    const auto row_t = static_cast<int64_t>(format::GetU64BE(row_key.data() + 8));
    if (row_t >= hi || (last_t && *last_t && row_t > **last_t)) break;
    const rocksdb::Slice value = it->value();
    // A row of one update keyed before lo holds nothing from lo on: not decoded.
    if (row_t < lo && format::HoldsOneUpdate(value.ToStringView())) continue;
    format::RawRowReader row(std::string_view(row_key.data(), row_key.size()),
                             std::string_view(value.data(), value.size()));
    format::RawEvent ev;
    while (row.NextIn(lo, hi, &ev)) {
      if (Status s = visit(ev); !s.ok()) return s;
    }
    if (!row.ok()) return Status::Corruption("bad audit event");
  }
  return Status::Ok();
}

}  // namespace stickmeter::tsdb
