#include "tsdb/coverage.h"

#include <algorithm>
#include <vector>

#include "common/log.h"
#include "tsdb/format.h"

namespace stickmeter::tsdb {
namespace {

// CoverageRecord = u8 version (1) | varint first_seen | u8 open | [varint open_from] |
//                  varint n | n x (varint from | varint to - from) | varint m | m x varint t
constexpr uint8_t kRecordVersion = 1;

std::string EncodeRecord(int64_t first_seen, const std::optional<int64_t>& open_from,
                         const std::deque<std::pair<int64_t, int64_t>>& closed,
                         const std::deque<int64_t>& resyncs) {
  std::string v;
  v.push_back(static_cast<char>(kRecordVersion));
  format::PutVarint(v, static_cast<uint64_t>(first_seen));
  v.push_back(open_from ? 1 : 0);
  if (open_from) format::PutVarint(v, static_cast<uint64_t>(*open_from));
  format::PutVarint(v, closed.size());
  for (const auto& [from, to] : closed) {
    format::PutVarint(v, static_cast<uint64_t>(from));
    format::PutVarint(v, static_cast<uint64_t>(to - from));
  }
  format::PutVarint(v, resyncs.size());
  for (int64_t t : resyncs) format::PutVarint(v, static_cast<uint64_t>(t));
  return v;
}

// Adds the parts of [lo, hi) that no interval of `covered` (ascending, disjoint) covers to `gaps`.
void Complement(const std::vector<std::pair<int64_t, int64_t>>& covered, int64_t lo, int64_t hi,
                std::vector<CoverageGap>* gaps) {
  int64_t at = lo;
  for (const auto& [from, to] : covered) {
    if (to <= at) continue;
    if (from >= hi) break;
    if (from > at) gaps->push_back({at, from});
    at = std::max(at, to);
    if (at >= hi) return;
  }
  if (at < hi) gaps->push_back({at, hi});
}

}  // namespace

std::string CoverageRecordKey(std::string_view source) {
  std::string k(1, format::kTagCoverage);
  k.append(source);
  return k;
}

std::string CoverageSeenKey(std::string_view source) {
  std::string k(1, format::kTagCoverageSeen);
  k.append(source);
  return k;
}

bool CoverageBook::LoadRow(std::string_view key, std::string_view value) {
  if (key.empty()) return false;
  MutexLock lock(&mu_);
  Record& r = records_[std::string(key.substr(1))];
  if (key[0] == format::kTagCoverageSeen) {
    if (value.size() != 8) return false;
    r.last_seen = r.seen_written = static_cast<int64_t>(format::GetU64BE(value.data()));
    return true;
  }
  if (key[0] != format::kTagCoverage || value.empty() || value[0] != kRecordVersion) return false;
  std::string_view in = value.substr(1);
  uint64_t v = 0, n = 0;
  if (!format::GetVarint(&in, &v) || in.empty()) return false;
  r.first_seen = static_cast<int64_t>(v);
  const bool open = in[0] != 0;
  in.remove_prefix(1);
  if (open) {
    if (!format::GetVarint(&in, &v)) return false;
    r.open_from = static_cast<int64_t>(v);
  }
  if (!format::GetVarint(&in, &n) || n > kMaxSessions) return false;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t from = 0, len = 0;
    if (!format::GetVarint(&in, &from) || !format::GetVarint(&in, &len)) return false;
    r.closed.emplace_back(static_cast<int64_t>(from), static_cast<int64_t>(from + len));
  }
  if (!format::GetVarint(&in, &n) || n > kMaxResyncs) return false;
  for (uint64_t i = 0; i < n; ++i) {
    if (!format::GetVarint(&in, &v)) return false;
    r.resyncs.push_back(static_cast<int64_t>(v));
  }
  return in.empty();
}

void CoverageBook::FinishLoad(bool read_only) {
  MutexLock lock(&mu_);
  for (auto it = records_.begin(); it != records_.end();) {
    Record& r = it->second;
    if (r.first_seen == 0) {  // a seen row without its record: nothing to cover
      it = records_.erase(it);
      continue;
    }
    if (r.open_from && !read_only) Close(r, std::max(r.last_seen, *r.open_from));
    ++it;
  }
}

void CoverageBook::MarkAllDirty() {
  MutexLock lock(&mu_);
  for (auto& [name, r] : records_) {
    Touch(r);
    r.seen_dirty = true;
  }
}

CoverageBook::Record* CoverageBook::Find(std::string_view source) {
  auto it = records_.find(source);
  return it == records_.end() ? nullptr : &it->second;
}

void CoverageBook::Close(Record& r, int64_t t_ms) {
  r.closed.emplace_back(*r.open_from, std::max(t_ms, *r.open_from));
  r.open_from.reset();
  r.open_connection = 0;
  r.last_seen = std::max(r.last_seen, t_ms);
  r.seen_dirty = true;
  // The oldest sessions go first: their time then reads as not covered, never as covered.
  while (r.closed.size() > kMaxSessions) r.closed.pop_front();
  Touch(r);
}

void CoverageBook::Connected(const std::string& source, uint64_t connection_id, int64_t t_ms) {
  MutexLock lock(&mu_);
  Record* r = Find(source);
  if (r == nullptr) {
    if (records_.size() >= kMaxSources) {
      if (!full_logged_) {
        LogWarn("store", "coverage: " + std::to_string(kMaxSources) +
                             " sources recorded, not recording more (first not recorded: " +
                             source.substr(0, 64) + ")");
        full_logged_ = true;
      }
      return;
    }
    r = &records_[source];
    r->first_seen = t_ms;
  }
  r->open_connection = connection_id;
  if (!r->open_from) {
    // A reconnect within the same millisecond as the disconnect is no gap.
    if (!r->closed.empty() && r->closed.back().second >= t_ms) {
      r->open_from = r->closed.back().first;
      r->closed.pop_back();
    } else {
      r->open_from = t_ms;
    }
  }
  r->last_seen = std::max(r->last_seen, t_ms);
  r->seen_dirty = true;
  Touch(*r);
}

void CoverageBook::Disconnected(const std::string& source, uint64_t connection_id, int64_t t_ms) {
  MutexLock lock(&mu_);
  Record* r = Find(source);
  if (r == nullptr || !r->open_from || r->open_connection != connection_id) return;
  Close(*r, t_ms);
}

void CoverageBook::Resync(std::string_view source, int64_t t_ms) {
  MutexLock lock(&mu_);
  Record* r = Find(source);
  if (r == nullptr) return;
  r->resyncs.push_back(t_ms);
  while (r->resyncs.size() > kMaxResyncs) r->resyncs.pop_front();
  Touch(*r);
}

void CoverageBook::Alive(std::string_view source, int64_t t_ms) {
  MutexLock lock(&mu_);
  Record* r = Find(source);
  if (r == nullptr || !r->open_from || t_ms <= r->last_seen) return;
  r->last_seen = t_ms;
  if (t_ms - r->seen_written >= kSeenIntervalMs) {
    r->seen_dirty = true;
    dirty_.store(true, std::memory_order_relaxed);
  }
}

void CoverageBook::CloseAll(int64_t t_ms) {
  MutexLock lock(&mu_);
  for (auto& [name, r] : records_) {
    if (r.open_from) Close(r, t_ms);
  }
}

void CoverageBook::AddDirty(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* meta) {
  MutexLock lock(&mu_);
  dirty_.store(false, std::memory_order_relaxed);
  for (auto& [name, r] : records_) {
    if (r.dirty) {
      wb.Put(meta, CoverageRecordKey(name),
             EncodeRecord(r.first_seen, r.open_from, r.closed, r.resyncs));
      r.dirty = false;
    }
    if (r.seen_dirty) {
      std::string v;
      format::PutU64BE(v, static_cast<uint64_t>(r.last_seen));
      wb.Put(meta, CoverageSeenKey(name), v);
      r.seen_written = r.last_seen;
      r.seen_dirty = false;
    }
  }
}

Result<Coverage> CoverageBook::Query(const CoverageQuery& q) const {
  Coverage out;
  out.from_ms = q.from_ms;
  out.to_ms = q.to_ms;
  const int64_t end = std::min(q.to_ms, std::max(q.from_ms, q.now_ms));  // the past part
  if (q.to_ms > q.now_ms) out.future_from_ms = std::max(q.from_ms, q.now_ms);
  // Under the lock only what the range needs is copied (the writer takes the lock per batch):
  // each source's sessions that reach into the range and its resyncs in it.
  struct Copy {
    SourceCoverage s;
    std::vector<std::pair<int64_t, int64_t>> sessions;
    std::vector<int64_t> resyncs;
  };
  std::vector<Copy> copies;
  {
    MutexLock lock(&mu_);
    if (q.source && records_.find(*q.source) == records_.end()) {
      std::string known;
      for (const auto& [name, r] : records_) {
        if (known.size() > 200) break;
        known += (known.empty() ? "" : ", ") + name;
      }
      return Status::NotFound("source: unknown source \"" + q.source->substr(0, 64) +
                              "\" (known: " + (known.empty() ? "none" : known) + ")");
    }
    for (const auto& [name, r] : records_) {
      if (q.source && name != *q.source) continue;
      Copy c;
      c.s.source = name;
      c.s.first_seen_ms = r.first_seen;
      c.s.connected = r.open_from.has_value();
      auto first =
          std::lower_bound(r.closed.begin(), r.closed.end(), q.from_ms,
                           [](const auto& session, int64_t t) { return session.second <= t; });
      for (auto it = first; it != r.closed.end() && it->first < end; ++it)
        c.sessions.push_back(*it);
      if (r.open_from) c.sessions.emplace_back(*r.open_from, std::max(*r.open_from, q.now_ms));
      for (auto it = std::lower_bound(r.resyncs.begin(), r.resyncs.end(), q.from_ms);
           it != r.resyncs.end() && *it < q.to_ms; ++it) {
        c.resyncs.push_back(*it);
      }
      copies.push_back(std::move(c));
    }
  }
  std::vector<CoverageGap> all_gaps;  // of every source, for the union
  bool any_connected = false;
  for (auto& [s, sessions, resyncs] : copies) {
    bool connected_in_range = false;
    for (const auto& [from, to] : sessions) {
      if (from < end && to > q.from_ms && from < to) connected_in_range = true;
    }
    std::vector<CoverageGap> gaps;
    Complement(sessions, std::max(q.from_ms, s.first_seen_ms), end, &gaps);
    s.gap_count = gaps.size();
    for (const auto& g : gaps) {
      s.gap_ms += g.to_ms - g.from_ms;
      all_gaps.push_back(g);
      if (s.gaps.size() < kMaxCoverageGapsReported) s.gaps.push_back(g);
    }
    s.resync_count = resyncs.size();
    if (resyncs.size() > kMaxCoverageGapsReported) resyncs.resize(kMaxCoverageGapsReported);
    s.resyncs = std::move(resyncs);
    if (!connected_in_range) {
      s.status = CoverageStatus::kNone;
    } else if (gaps.empty() && s.first_seen_ms <= q.from_ms && out.future_from_ms == 0) {
      s.status = CoverageStatus::kComplete;
    } else {
      s.status = CoverageStatus::kPartial;
    }
    any_connected |= connected_in_range;
    if (out.first_seen_ms == 0 || s.first_seen_ms < out.first_seen_ms) {
      out.first_seen_ms = s.first_seen_ms;
    }
    out.sources.push_back(std::move(s));
  }
  // Covered: from the first source seen on, while no source seen so far was disconnected.
  if (out.first_seen_ms != 0) {
    const int64_t start = std::max(q.from_ms, out.first_seen_ms);
    if (start < end) {
      std::sort(all_gaps.begin(), all_gaps.end(),
                [](const CoverageGap& a, const CoverageGap& b) { return a.from_ms < b.from_ms; });
      int64_t missing = 0, at = start;
      for (const auto& g : all_gaps) {
        const int64_t from = std::max(g.from_ms, at);
        if (g.to_ms > from) {
          missing += g.to_ms - from;
          at = g.to_ms;
        }
      }
      out.covered_ms = end - start - missing;
    }
  }
  if (!any_connected) {
    out.status = CoverageStatus::kNone;
  } else if (out.covered_ms == q.to_ms - q.from_ms) {
    out.status = CoverageStatus::kComplete;
  } else {
    out.status = CoverageStatus::kPartial;
  }
  return out;
}

}  // namespace stickmeter::tsdb
