#include "tsdb/scans.h"

#include "tsdb/config.h"

namespace stickmeter::tsdb {

void SeekAhead(rocksdb::Iterator* it, const rocksdb::Slice& target) {
  for (int i = 0; i < config::kMaxSkipRows && it->Valid(); ++i) {
    if (it->key().compare(target) >= 0) return;
    it->Next();
  }
  it->Seek(target);
}

uint32_t KeyStripe::NextFrom(uint32_t key) const {
  if (Contains(key)) return key;
  const uint64_t at = key / block;
  // The next block of this stripe after block `at`.
  const uint64_t next = at - at % count + index + (at % count < index ? 0 : count);
  const uint64_t first = next * block;
  return first > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(first);
}

Status SumRange(ReadView& r, uint32_t table, uint32_t metric, uint32_t key, int64_t from,
                int64_t to, std::optional<uint32_t> source,
                const std::function<void(uint64_t)>& add) {
  std::vector<Segment> segments;
  Decompose(std::max<int64_t>(from, 0), to, &segments);
  const std::string prefix = format::EntryRollupPrefix(table, key);
  for (const auto& seg : segments) {
    if (seg.unit_ms == 0) {
      const Status s = ScanAudit(r, table, key, seg.lo, seg.hi, [&](const format::RawEvent& ev) {
        if (ev.e.metric == metric && (!source || ev.e.source == *source)) add(ev.e.delta);
        return Status::Ok();
      });
      if (!s.ok()) return s;
      continue;
    }
    Status s = ScanSeriesRollup(r, RollupCf(seg.unit_ms), prefix, metric,
                                static_cast<uint32_t>(seg.lo / seg.unit_ms),
                                static_cast<uint32_t>(seg.hi / seg.unit_ms), source,
                                [&](uint32_t /*bucket*/, uint64_t v) { add(v); });
    if (!s.ok()) return s;
  }
  return r.Check();
}

Status ScanRollup(ReadView& r, uint32_t table, uint32_t metric, Cf cf,
                  const std::vector<RollupWindow>& windows, std::optional<uint32_t> source,
                  const KeyStripe& stripe) {
  if (windows.empty()) return Status::Ok();
  const uint32_t first_key = stripe.NextFrom(0);
  if (first_key == UINT32_MAX) return Status::Ok();
  const uint32_t span = RowSpan(cf);
  rocksdb::Iterator* it = r.It(cf);
  const std::string prefix = format::EntryRollupPrefix(table);
  auto seek = [&](uint32_t key, uint32_t bucket) {
    std::string k = prefix;
    format::PutU32BE(k, key);
    format::PutU32BE(k, bucket / span);
    it->Seek(k);
  };
  // To the first row at or after (key, bucket): a few steps first, as the target is often a
  // few rows on (the next key, or a key's next window), and a step costs a fraction of a seek.
  auto advance = [&](uint32_t key, uint32_t bucket) {
    const uint32_t row = bucket / span;
    for (int step = 0; step < 8; ++step) {
      it->Next();
      if (!it->Valid() || !it->key().starts_with(prefix) ||
          it->key().size() != format::kEntryRollupKeySize) {
        return;  // the loop below ends or reports the record
      }
      const auto at = format::DecodeEntryRollupKey(it->key().data());
      if (at.key > key || (at.key == key && at.bucket >= row)) return;
    }
    seek(key, bucket);
  };
  seek(first_key, windows[0].lo);
  uint32_t key = UINT32_MAX;
  bool beyond = false;  // a key id past the totals, with other threads writing to them
  size_t w = 0;         // the first window of `key` not behind the current row
  while (it->Valid() && it->key().starts_with(prefix)) {
    if (it->key().size() != format::kEntryRollupKeySize) {
      return Status::Corruption("bad rollup record");
    }
    const auto parts = format::DecodeEntryRollupKey(it->key().data());
    if (!stripe.Contains(parts.key)) {
      const uint32_t next = stripe.NextFrom(parts.key);
      if (next == UINT32_MAX) break;
      seek(next, windows[0].lo);
      continue;
    }
    if (parts.key != key) {
      key = parts.key;
      w = 0;
    }
    const uint64_t row_first = uint64_t{parts.bucket} * span;
    while (w < windows.size() && windows[w].hi <= row_first) ++w;
    if (w == windows.size()) {
      if (parts.key == UINT32_MAX) break;
      advance(parts.key + 1, windows[0].lo);
      continue;
    }
    if (row_first + span <= windows[w].lo) {
      advance(parts.key, windows[w].lo);  // a later row of the same key: always moves on
      continue;
    }
    if (!source || parts.source == *source) {
      if (!ForEachCellOf(metric, span, parts.bucket, it->value().ToStringView(),
                         [&](uint32_t b, uint64_t v) {
                           for (size_t i = w; i < windows.size() && windows[i].lo <= b; ++i) {
                             if (b >= windows[i].hi) continue;
                             if (windows[i].per_bucket) {
                               (*windows[i].per_bucket)[b - windows[i].lo] += v;
                               return;
                             }
                             std::vector<uint64_t>& totals = *windows[i].totals;
                             if (parts.key >= totals.size()) {
                               if (stripe.count > 1) {
                                 beyond = true;
                                 return;
                               }
                               totals.resize(parts.key + 1);
                             }
                             totals[parts.key] += v;
                             return;
                           }
                         })) {
        return Status::Corruption("bad rollup record");
      }
      if (beyond) return Status::Corruption("rollup row of a key id the catalog does not hold");
    }
    it->Next();
  }
  return r.Check();
}

Status ForEachKey(ReadView& r, uint32_t table, std::string_view prefix,
                  const std::function<bool(std::string_view, uint32_t)>& fn) {
  const std::string start = format::NameKey(format::NameKind::kKey, format::KeyName(table, prefix));
  const size_t skip = 2 + 4;  // tag, kind, table id
  rocksdb::Iterator* it = r.It(kMeta);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    if (it->value().size() != 4) return Status::Corruption("bad key record");
    if (!fn(std::string_view(it->key().data() + skip, it->key().size() - skip),
            format::GetU32BE(it->value().data()))) {
      break;
    }
  }
  return r.Check();
}

}  // namespace stickmeter::tsdb
