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
  // whose keys no longer fit): every key is taught again, its wire form parsed anew.
  for (auto& key : keys_) {
    key.second.wire_key.clear();
    if (!key.second.was_taught) continue;
    key.second.was_taught = false;
    MarkDirty(key, 0);
  }
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
  // The base holds what was received up to and including `now_ms`: a delta of that very
  // millisecond may have been committed, and passed the book, before this tracker existed.
  trackers_.push_back(
      Tracker{q.metric, q.period, q.tz, zone, PeriodAt(q.period, zone, now_ms), now_ms + 1, false});
  return trackers_.size() - 1;
}

QuotaBook::KeyMap::value_type& QuotaBook::KeyOf(std::string_view key) {
  auto it = keys_.find(key);
  if (it == keys_.end()) it = keys_.try_emplace(std::string(key)).first;
  return *it;
}

QuotaBook::KeyMap::value_type& QuotaBook::KeyOf(std::string_view key, uint32_t key_id) {
  if (KeyMap::value_type* known = by_id_.Find(key_id)) return *known;
  KeyMap::value_type& found = KeyOf(key);
  by_id_.Set(key_id, &found);
  found.second.id = key_id;
  return found;
}

void QuotaBook::MarkDirty(KeyMap::value_type& key, int64_t origin_ms) {
  KeyBook& book = key.second;
  if (book.dirty) return;
  book.dirty = true;
  book.origin_ms = origin_ms;
  dirty_.emplace_back(&key.first, &book);
}

std::optional<QuotaBook::BaseRequest> QuotaBook::Put(const Quota& quota,
                                                     const date::time_zone* zone, int64_t now_ms) {
  bool fresh = false;
  const size_t tracker = TrackerFor(quota, zone, now_ms, &fresh);
  Entry entry{quota, tracker};
  if (quota.key) {
    own_[*quota.key][quota.metric] = entry;
    MarkKey(*quota.key);
  } else {
    defaults_[quota.metric] = entry;
    MarkAll();
  }
  if (!fresh) return std::nullopt;
  const Tracker& t = trackers_[tracker];
  return BaseRequest{tracker, t.metric, t.range.start_ms, t.cut_ms,
                     PeriodAt(t.period, t.zone, t.range.start_ms - 1).start_ms};
}

bool QuotaBook::Delete(const std::string& metric, const std::optional<std::string>& key) {
  if (key) {
    auto it = own_.find(*key);
    if (it == own_.end() || it->second.erase(metric) == 0) return false;
    if (it->second.empty()) own_.erase(it);
    MarkKey(*key);
    return true;
  }
  if (defaults_.erase(metric) == 0) return false;
  MarkAll();
  return true;
}

void QuotaBook::SetBase(size_t tracker, const std::vector<std::pair<std::string, uint64_t>>& rows,
                        std::optional<int64_t> period_from_ms) {
  const bool rolled = period_from_ms && *period_from_ms != trackers_[tracker].range.start_ms;
  for (const auto& [key, read] : rows) {
    const uint64_t total = rolled ? 0 : read;
    auto& entry = KeyOf(key);
    KeyBook& book = entry.second;
    if (book.used.size() <= tracker) book.used.resize(tracker + 1);
    book.used[tracker] += total;
    // A key given at 0 (one of the period before) is taught too: its flag there is lifted.
    if (total == 0) MarkDirty(entry, 0);
  }
  trackers_[tracker].ready = true;
  MarkTracker(tracker);
}

void QuotaBook::Apply(std::string_view key, std::string_view metric, uint64_t delta, int64_t t_ms,
                      uint32_t key_id) {
  KeyMap::value_type* it = nullptr;  // looked up once, and only if some tracker counts it
  for (size_t i = 0; i < trackers_.size(); ++i) {
    Tracker& t = trackers_[i];
    if (t.metric != metric) continue;
    if (t_ms >= t.range.end_ms) {
      // The first delta of a later period: what was used belongs to the one that ended. (The
      // key of `it`, if found already, was just marked dirty: it is not forgotten.)
      ForgetIdleKeys();
      t.range = PeriodAt(t.period, t.zone, t_ms);
      t.cut_ms = std::min(t.cut_ms, t.range.start_ms);
      MarkTracker(i);
      ClearTracker(i);
    }
    if (t_ms < t.range.start_ms || t_ms < t.cut_ms) continue;
    if (it == nullptr) it = &KeyOf(key, key_id);
    KeyBook& book = it->second;
    if (book.used.size() <= i) book.used.resize(i + 1);
    uint64_t& used = book.used[i];
    used = delta > std::numeric_limits<uint64_t>::max() - used
               ? std::numeric_limits<uint64_t>::max()
               : used + delta;
    MarkDirty(*it, t_ms);
  }
}

void QuotaBook::Roll(int64_t now_ms) {
  bool idle_checked = false;
  for (size_t i = 0; i < trackers_.size(); ++i) {
    Tracker& t = trackers_[i];
    if (now_ms < t.range.end_ms) continue;
    if (!idle_checked) ForgetIdleKeys();
    idle_checked = true;
    MarkTracker(i);
    ClearTracker(i);
    t.range = PeriodAt(t.period, t.zone, now_ms);
    t.cut_ms = std::min(t.cut_ms, t.range.start_ms);
  }
}

void QuotaBook::ForgetIdleKeys() {
  const Standing lifted;
  for (auto it = keys_.begin(); it != keys_.end();) {
    KeyBook& book = it->second;
    const bool idle =
        !book.dirty && book.was_taught && book.taught == lifted &&
        std::all_of(book.used.begin(), book.used.end(), [](uint64_t u) { return u == 0; }) &&
        !own_.count(it->first);
    if (!idle) {
      ++it;
      continue;
    }
    if (book.id != 0) by_id_.Set(book.id, nullptr);
    if (!book.wire_key.empty()) forgotten_.push_back(std::move(book.wire_key));
    it = keys_.erase(it);
  }
}

void QuotaBook::MarkTracker(size_t tracker) {
  for (auto& key : keys_) {
    if (UsedIn(key.second, tracker) != 0) MarkDirty(key, 0);
  }
  for (const auto& [key, quotas] : own_) MarkKey(key);
}

void QuotaBook::ClearTracker(size_t tracker) {
  for (auto& [key, book] : keys_) {
    if (tracker < book.used.size()) book.used[tracker] = 0;
  }
}

void QuotaBook::MarkAll() {
  for (auto& key : keys_) {
    if (key.second.was_taught) MarkDirty(key, 0);
  }
  for (size_t i = 0; i < trackers_.size(); ++i) MarkTracker(i);
}

template <typename Fn>
void QuotaBook::ForEachGoverning(const std::string& key, Fn&& fn) const {
  auto own = own_.empty() ? own_.end() : own_.find(key);
  for (const auto& [metric, entry] : defaults_) {
    if (own == own_.end() || !own->second.count(metric)) fn(entry);
  }
  if (own != own_.end()) {
    for (const auto& [metric, entry] : own->second) fn(entry);
  }
}

uint64_t QuotaBook::Used(const Entry& e, const std::string& key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? 0 : UsedIn(it->second, e.tracker);
}

QuotaBook::Standing QuotaBook::StandingOf(const std::string& key, const KeyBook& book) const {
  Standing s;
  double worst = -1;
  ForEachGoverning(key, [&](const Entry& e) {
    if (!trackers_[e.tracker].ready) return;
    const uint64_t used = UsedIn(book, e.tracker);
    s.over |= used >= e.quota.limit;
    const double ratio = e.quota.limit == 0 ? std::numeric_limits<double>::infinity()
                                            : double(used) / double(e.quota.limit);
    if (ratio > worst) {
      worst = ratio;
      s.shown = std::min<uint64_t>(used, std::numeric_limits<uint32_t>::max());
    }
  });
  return s;
}

size_t QuotaBook::Flush(int64_t now_ms, ingest::TaughtTables& out) {
  Roll(now_ms);
  out.Erase(taught_, forgotten_);
  forgotten_.clear();
  if (!def_) return 0;
  size_t taught = 0;
  for (auto [key, book] : dirty_) {
    book->dirty = false;
    const Standing s = StandingOf(*key, *book);
    if (book->was_taught && book->taught == s) continue;
    if (book->was_taught) over_keys_ -= book->taught.over ? 1 : 0;
    over_keys_ += s.over ? 1 : 0;
    book->taught = s;
    book->was_taught = true;
    if (book->wire_key.empty()) {
      auto wire = ingest::ParseKey(def_->key_type, def_->key_size, *key);
      if (!wire.ok()) continue;
      book->wire_key = std::move(*wire);
    }
    std::vector<DataValue> values(2);
    values[0].type = DataType::kGpt0;
    values[0].u = s.over ? 1 : 0;
    values[1].type = DataType::kGpc0;
    values[1].u = s.shown;
    staged_.push_back(ingest::TaughtTables::Change{book->wire_key, std::move(values), std::nullopt,
                                                   book->origin_ms, &book->taught_entry});
    ++taught;
  }
  dirty_.clear();
  out.SetMany(taught_, staged_, now_ms);
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
  for (const auto& [key, book] : keys_) {
    if (UsedIn(book, e.tracker) < e.quota.limit) continue;
    auto own = own_.find(key);
    if (own != own_.end() && own->second.count(e.quota.metric)) continue;
    ++st.over_keys;
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
  std::vector<KeyQuotaStatus> out;
  auto list = [&](const std::string& key, const KeyBook* book) {
    ForEachGoverning(key, [&](const Entry& e) {
      const uint64_t used = book == nullptr ? 0 : UsedIn(*book, e.tracker);
      out.push_back(KeyQuotaStatus{source_, key, e.quota.metric, e.quota.limit, used,
                                   used >= e.quota.limit, !e.quota.key.has_value()});
    });
  };
  // Keys with their own quota, and (when there are defaults) every key with usage.
  for (const auto& [key, quotas] : own_) {
    auto it = keys_.find(key);
    list(key, it == keys_.end() ? nullptr : &it->second);
  }
  if (!defaults_.empty()) {
    for (const auto& [key, book] : keys_) {
      if (own_.count(key)) continue;
      const bool used =
          std::any_of(book.used.begin(), book.used.end(), [](uint64_t u) { return u != 0; });
      if (used) list(key, &book);
    }
  }
  return out;
}

}  // namespace stickmeter::teach
