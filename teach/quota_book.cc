// Implementation of quota_book.h.
#include "teach/quota_book.h"

#include <algorithm>
#include <limits>

namespace stickmeter::teach {

using ingest::DataType;
using ingest::DataValue;

QuotaBook::QuotaBook(std::string source_table, std::string taught_table)
    : source_(std::move(source_table)), taught_(std::move(taught_table)) {}

std::optional<ingest::TableDefinition> QuotaBook::SetLayout(const std::string& key_type,
                                                            uint32_t key_size, uint64_t expire_ms) {
  const auto type = ingest::KeyTypeByName(key_type);
  if (!type) return std::nullopt;
  if (def_ && def_->key_type == *type && def_->key_size == key_size &&
      def_->expire_ms == expire_ms) {
    return std::nullopt;
  }
  ingest::TableDefinition def;
  def.name = taught_;
  def.key_type = *type;
  def.key_size = key_size;
  def.expire_ms = expire_ms;
  def.data_bitfield = (uint64_t{1} << static_cast<int>(DataType::kGpt0)) |
                      (uint64_t{1} << static_cast<int>(DataType::kGpc0));
  def_ = def;
  // What was taught under the old definition may be gone with it (TaughtTables drops entries
  // whose keys no longer fit): every key is taught again.
  for (const auto& [key, standing] : last_taught_) dirty_.insert(key);
  last_taught_.clear();
  over_keys_ = 0;
  return def_;
}

size_t QuotaBook::TrackerFor(const Quota& q, const date::time_zone* zone, int64_t now_ms,
                             bool* fresh) {
  for (size_t i = 0; i < trackers_.size(); ++i) {
    const Tracker& t = trackers_[i];
    if (t.metric == q.metric && t.period == q.period && t.tz == q.tz) {
      *fresh = false;
      return i;
    }
  }
  *fresh = true;
  trackers_.push_back(
      Tracker{q.metric, q.period, q.tz, zone, PeriodAt(q.period, zone, now_ms), now_ms, false, {}});
  return trackers_.size() - 1;
}

std::optional<QuotaBook::BaseRequest> QuotaBook::Put(const Quota& quota,
                                                     const date::time_zone* zone, int64_t now_ms) {
  bool fresh = false;
  const size_t tracker = TrackerFor(quota, zone, now_ms, &fresh);
  Entry entry{quota, tracker};
  if (quota.key) {
    own_[*quota.key][quota.metric] = entry;
    dirty_.insert(*quota.key);
  } else {
    defaults_[quota.metric] = entry;
    MarkAll();
  }
  if (!fresh) return std::nullopt;
  const Tracker& t = trackers_[tracker];
  return BaseRequest{tracker, t.metric, t.range.start_ms, t.cut_ms};
}

bool QuotaBook::Delete(const std::string& metric, const std::optional<std::string>& key) {
  if (key) {
    auto it = own_.find(*key);
    if (it == own_.end() || it->second.erase(metric) == 0) return false;
    if (it->second.empty()) own_.erase(it);
    dirty_.insert(*key);
    return true;
  }
  if (defaults_.erase(metric) == 0) return false;
  MarkAll();
  return true;
}

void QuotaBook::SetBase(size_t tracker, const std::vector<std::pair<std::string, uint64_t>>& rows) {
  Tracker& t = trackers_[tracker];
  for (const auto& [key, total] : rows) t.used[key] += total;
  t.ready = true;
  MarkTracker(t);
}

void QuotaBook::Apply(const std::string& key, std::string_view metric, uint64_t delta,
                      int64_t t_ms) {
  for (Tracker& t : trackers_) {
    if (t.metric != metric) continue;
    if (t_ms >= t.range.end_ms) {
      // The first delta of a later period: what was used belongs to the one that ended.
      t.range = PeriodAt(t.period, t.zone, t_ms);
      t.cut_ms = std::min(t.cut_ms, t.range.start_ms);
      MarkTracker(t);
      t.used.clear();
    }
    if (t_ms < t.range.start_ms || t_ms < t.cut_ms) continue;
    uint64_t& used = t.used[key];
    used = delta > std::numeric_limits<uint64_t>::max() - used
               ? std::numeric_limits<uint64_t>::max()
               : used + delta;
    if (dirty_.insert(key).second) origin_[key] = t_ms;
  }
}

void QuotaBook::Roll(int64_t now_ms) {
  for (Tracker& t : trackers_) {
    if (now_ms < t.range.end_ms) continue;
    MarkTracker(t);
    t.used.clear();
    t.range = PeriodAt(t.period, t.zone, now_ms);
    t.cut_ms = std::min(t.cut_ms, t.range.start_ms);
  }
}

void QuotaBook::MarkTracker(const Tracker& t) {
  for (const auto& [key, used] : t.used) dirty_.insert(key);
  for (const auto& [key, quotas] : own_) dirty_.insert(key);
}

void QuotaBook::MarkAll() {
  for (const auto& [key, standing] : last_taught_) dirty_.insert(key);
  for (const Tracker& t : trackers_) MarkTracker(t);
}

std::vector<const QuotaBook::Entry*> QuotaBook::Governing(const std::string& key) const {
  std::vector<const Entry*> out;
  auto own = own_.find(key);
  for (const auto& [metric, entry] : defaults_) {
    if (own == own_.end() || !own->second.count(metric)) out.push_back(&entry);
  }
  if (own != own_.end()) {
    for (const auto& [metric, entry] : own->second) out.push_back(&entry);
  }
  return out;
}

uint64_t QuotaBook::Used(const Entry& e, const std::string& key) const {
  const Tracker& t = trackers_[e.tracker];
  auto it = t.used.find(key);
  return it == t.used.end() ? 0 : it->second;
}

QuotaBook::Standing QuotaBook::StandingOf(const std::string& key) const {
  Standing s;
  double worst = -1;
  for (const Entry* e : Governing(key)) {
    if (!trackers_[e->tracker].ready) continue;
    const uint64_t used = Used(*e, key);
    s.over |= used >= e->quota.limit;
    const double ratio = e->quota.limit == 0 ? std::numeric_limits<double>::infinity()
                                             : double(used) / double(e->quota.limit);
    if (ratio > worst) {
      worst = ratio;
      s.shown = std::min<uint64_t>(used, std::numeric_limits<uint32_t>::max());
    }
  }
  return s;
}

size_t QuotaBook::Flush(int64_t now_ms, ingest::TaughtTables& out) {
  Roll(now_ms);
  if (!def_) return 0;
  size_t taught = 0;
  for (const std::string& key : dirty_) {
    const Standing s = StandingOf(key);
    auto [it, fresh] = last_taught_.try_emplace(key, s);
    const auto origin = origin_.find(key);
    const int64_t origin_ms = origin == origin_.end() ? 0 : origin->second;
    if (!fresh && it->second == s) continue;
    if (!fresh) over_keys_ -= it->second.over ? 1 : 0;
    over_keys_ += s.over ? 1 : 0;
    it->second = s;
    auto wire = ingest::ParseKey(def_->key_type, def_->key_size, key);
    if (!wire.ok()) continue;
    std::vector<DataValue> values(2);
    values[0].type = DataType::kGpt0;
    values[0].u = s.over ? 1 : 0;
    values[1].type = DataType::kGpc0;
    values[1].u = s.shown;
    out.Set(taught_, std::move(*wire), std::move(values), std::nullopt, origin_ms, now_ms);
    ++taught;
  }
  dirty_.clear();
  origin_.clear();
  return taught;
}

QuotaStatus QuotaBook::StatusOf(const Entry& e) const {
  QuotaStatus st;
  st.quota = e.quota;
  const Tracker& t = trackers_[e.tracker];
  st.period_start_ms = t.range.start_ms;
  st.period_end_ms = t.range.end_ms;
  if (e.quota.key) {
    st.used = Used(e, *e.quota.key);
    st.over = st.used >= e.quota.limit;
    return st;
  }
  // A default: the keys it governs (those without their own quota of the metric).
  for (const auto& [key, used] : t.used) {
    auto own = own_.find(key);
    if (own != own_.end() && own->second.count(e.quota.metric)) continue;
    if (used >= e.quota.limit) ++st.over_keys;
  }
  st.over = st.over_keys > 0;
  return st;
}

std::vector<QuotaStatus> QuotaBook::List(const std::optional<std::string>& key) const {
  std::vector<QuotaStatus> out;
  for (const auto& [metric, entry] : defaults_) out.push_back(StatusOf(entry));
  for (const auto& [k, quotas] : own_) {
    if (key && k != *key) continue;
    for (const auto& [metric, entry] : quotas) out.push_back(StatusOf(entry));
  }
  return out;
}

std::optional<QuotaStatus> QuotaBook::Find(const std::string& metric,
                                           const std::optional<std::string>& key) const {
  if (!key) {
    auto it = defaults_.find(metric);
    if (it == defaults_.end()) return std::nullopt;
    return StatusOf(it->second);
  }
  auto k = own_.find(*key);
  if (k == own_.end()) return std::nullopt;
  auto it = k->second.find(metric);
  if (it == k->second.end()) return std::nullopt;
  return StatusOf(it->second);
}

std::vector<KeyQuotaStatus> QuotaBook::Keys() const {
  std::unordered_set<std::string> keys;
  for (const auto& [key, quotas] : own_) keys.insert(key);
  if (!defaults_.empty()) {
    for (const Tracker& t : trackers_) {
      for (const auto& [key, used] : t.used) keys.insert(key);
    }
  }
  std::vector<KeyQuotaStatus> out;
  for (const std::string& key : keys) {
    for (const Entry* e : Governing(key)) {
      const uint64_t used = Used(*e, key);
      out.push_back(KeyQuotaStatus{source_, key, e->quota.metric, e->quota.limit, used,
                                   used >= e->quota.limit, !e->quota.key.has_value()});
    }
  }
  return out;
}

}  // namespace stickmeter::teach
