// Implementation of aggregator.h.
#include "teach/aggregator.h"

#include <algorithm>
#include <limits>

#include "ingest/normalize.h"

namespace stickmeter::teach {

using ingest::DataType;
using ingest::DataValue;

Aggregator::Aggregator(std::string source_table, std::string taught_table)
    : source_(std::move(source_table)), taught_(std::move(taught_table)) {}

std::optional<Aggregator::Built> Aggregator::Build(const ingest::TableInfo& table) const {
  const auto key_type = ingest::KeyTypeByName(table.key_type);
  if (!key_type) return std::nullopt;
  ingest::TableDefinition def;
  def.name = taught_;
  def.key_type = *key_type;
  def.key_size = table.key_size;
  def.expire_ms = table.expire_ms;
  std::vector<Slot> slots;
  for (size_t i = 0; i < table.data_types.size(); ++i) {
    const auto type = ingest::DataTypeByName(table.data_types[i]);
    if (!type) continue;
    const bool freq = table.data_types[i].ends_with("_rate");
    const ingest::MetricKind kind = ingest::KindOf(*type);
    if (!freq && kind == ingest::MetricKind::kGauge && *type != DataType::kConnCur) continue;
    const auto t = static_cast<size_t>(*type);
    const uint32_t elements = i < table.array_sizes.size() ? table.array_sizes[i] : 0;
    const uint64_t period = i < table.periods_ms.size() ? table.periods_ms[i] : 0;
    def.data_bitfield |= uint64_t{1} << t;
    def.nbelem[t] = elements;
    def.period_ms[t] = period;
    const uint64_t max = kind == ingest::MetricKind::kCounter64
                             ? std::numeric_limits<uint64_t>::max()
                             : std::numeric_limits<uint32_t>::max();
    for (uint32_t e = 0; e < std::max<uint32_t>(elements, 1); ++e) {
      slots.push_back(Slot{*type, e, ingest::MetricName(*type, elements > 0 ? e : 0), freq, max,
                           static_cast<uint32_t>(period)});
    }
  }
  return Built{std::move(def), std::move(slots)};
}

namespace {

bool SameLayout(const ingest::TableDefinition& a, const ingest::TableDefinition& b) {
  return a.key_type == b.key_type && a.key_size == b.key_size && a.expire_ms == b.expire_ms &&
         a.data_bitfield == b.data_bitfield && a.nbelem == b.nbelem && a.period_ms == b.period_ms;
}

}  // namespace

std::optional<ingest::TableDefinition> Aggregator::Layout(
    const std::shared_ptr<const ingest::TableInfo>& table, int64_t now_ms) {
  if (!table) return std::nullopt;
  if (table == layout_of_) {
    layout_seen_ms_ = now_ms;
    return std::nullopt;
  }
  if (table != other_of_) {
    auto built = Build(*table);
    if (!built) return std::nullopt;
    if (def_ && SameLayout(built->def, *def_)) {
      layout_of_ = table;
      layout_seen_ms_ = now_ms;
      return std::nullopt;
    }
    other_of_ = table;
    other_ = std::move(built);
  }
  // Flipping to and fro as nodes declaring either layout push would start the aggregate over
  // each time, leaving only the latest node's share.
  if (def_ && now_ms - layout_seen_ms_ < kLayoutSwitchMs) return std::nullopt;
  def_ = std::move(other_->def);
  slots_ = std::move(other_->slots);
  other_.reset();
  other_of_.reset();
  layout_of_ = table;
  layout_seen_ms_ = now_ms;
  keys_.clear();  // values were laid out for the old definition
  by_id_.Clear();
  dirty_.clear();
  return def_;
}

size_t Aggregator::SlotOf(std::string_view metric) const {
  // Both names are usually ingest's own static ones: the same pointer, no bytes to compare.
  for (size_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s].metric.data() == metric.data() && slots_[s].metric.size() == metric.size()) {
      return s;
    }
  }
  size_t s = 0;
  while (s < slots_.size() && slots_[s].metric != metric) ++s;
  return s;
}

uint32_t Aggregator::SourceId(std::string_view source) {
  const auto it = std::find(source_names_.begin(), source_names_.end(), source);
  if (it != source_names_.end()) return static_cast<uint32_t>(it - source_names_.begin());
  source_names_.emplace_back(source);
  return static_cast<uint32_t>(source_names_.size() - 1);
}

void Aggregator::Apply(uint32_t source, const ingest::EntryUpdate& update, uint32_t key_id) {
  if (!def_) return;
  auto* it = by_id_.Find(key_id);
  if (it == nullptr) {
    auto [found, fresh] = keys_.try_emplace(update.key);
    if (fresh) {
      auto wire = ingest::ParseKey(def_->key_type, def_->key_size, update.key);
      if (!wire.ok()) {
        keys_.erase(found);
        return;
      }
      found->second.wire_key = std::move(*wire);
    }
    it = &*found;
    if (key_id != 0 && it->second.id == 0) {
      it->second.id = key_id;
      by_id_.Set(key_id, it);
    }
  }
  KeyState& k = it->second;
  auto node = std::find_if(k.sources.begin(), k.sources.end(),
                           [&](const auto& s) { return s.first == source; });
  if (node == k.sources.end()) node = k.sources.emplace(k.sources.end(), source, Contribution{});
  Contribution& c = node->second;
  c.updated_ms = update.received_ms;
  c.values.resize(slots_.size());
  c.rates.resize(slots_.size());
  for (const auto& mv : update.values) {
    const size_t s = SlotOf(mv.metric);
    if (s < slots_.size() && !slots_[s].freq) c.values[s] = mv.value;
  }
  for (const auto& r : update.rates) {
    const size_t s = SlotOf(r.metric);
    if (s == slots_.size()) continue;
    c.rates[s] = FreqSample{r.period_ms, update.received_ms, r.elapsed_ms, r.curr, r.prev};
  }
  if (!k.dirty) {
    k.dirty = true;
    k.origin_ms = update.received_ms;
    dirty_.emplace_back(&it->first, &k);
  }
}

void Aggregator::RestartSource(std::string_view source_name) {
  const uint32_t source = SourceId(source_name);
  for (auto it = keys_.begin(); it != keys_.end();) {
    KeyState& k = it->second;
    const size_t erased =
        std::erase_if(k.sources, [&](const auto& s) { return s.first == source; });
    if (erased > 0 && !k.dirty) {
      k.dirty = true;
      k.origin_ms = 0;
      dirty_.emplace_back(&it->first, &k);
    }
    ++it;
  }
}

void Aggregator::Expire(int64_t now_ms, ingest::TaughtTables& out) {
  if (!def_ || def_->expire_ms == 0) return;
  const auto expire = static_cast<int64_t>(def_->expire_ms);
  std::vector<std::string> forgotten;
  for (auto it = keys_.begin(); it != keys_.end();) {
    KeyState& k = it->second;
    const size_t before = k.sources.size();
    std::erase_if(k.sources, [&](const auto& s) { return s.second.updated_ms + expire <= now_ms; });
    if (k.sources.empty() && !k.dirty) {
      // Every node's entry is gone: so is the taught one (it was taught with that expire). A
      // key still waiting to be taught stays until it is (its node is in dirty_).
      by_id_.Set(k.id, nullptr);
      forgotten.push_back(std::move(k.wire_key));
      it = keys_.erase(it);
      continue;
    }
    if (k.sources.size() != before && !k.dirty) {
      k.dirty = true;
      k.origin_ms = 0;
      dirty_.emplace_back(&it->first, &k);
    }
    ++it;
  }
  out.Erase(taught_, forgotten);
}

void Aggregator::Teach(const std::string& key, KeyState& k, int64_t now_ms) {
  std::vector<DataValue> values(slots_.size());
  std::vector<FreqSample> samples;
  k.next_change_ms = kNever;
  for (size_t s = 0; s < slots_.size(); ++s) {
    const Slot& slot = slots_[s];
    DataValue& v = values[s];
    v.type = slot.type;
    v.index = slot.index;
    if (slot.freq) {
      samples.clear();
      for (const auto& [source, c] : k.sources) {
        if (c.rates[s].period_ms != 0) samples.push_back(c.rates[s]);
      }
      const TaughtFreq sum = SumRates(samples, slot.period_ms, now_ms);
      v.form = DataValue::Form::kFreq;
      v.freq = sum.counter;
      k.next_change_ms = std::min(k.next_change_ms, sum.valid_until_ms);
      continue;
    }
    uint64_t total = 0;
    for (const auto& [source, c] : k.sources) {
      total = c.values[s] > slot.max - total ? slot.max : total + c.values[s];
    }
    v.form = DataValue::Form::kUnsigned;
    v.u = total;
  }
  std::optional<uint32_t> expire;
  if (def_->expire_ms > 0) {
    int64_t last = 0;
    for (const auto& [source, c] : k.sources) last = std::max(last, c.updated_ms);
    const int64_t left = last + static_cast<int64_t>(def_->expire_ms) - now_ms;
    expire =
        static_cast<uint32_t>(std::clamp<int64_t>(left, 1, std::numeric_limits<int32_t>::max()));
  }
  staged_.push_back(
      ingest::TaughtTables::Change{k.wire_key, std::move(values), expire, k.origin_ms, &k.taught});
  if (k.next_change_ms != kNever) schedule_.emplace(k.next_change_ms, key);
}

size_t Aggregator::Flush(int64_t now_ms, ingest::TaughtTables& out) {
  while (!schedule_.empty() && schedule_.top().first <= now_ms) {
    auto [when, key] = schedule_.top();
    schedule_.pop();
    auto it = keys_.find(key);
    if (it == keys_.end() || it->second.next_change_ms != when || it->second.dirty) continue;
    it->second.dirty = true;
    it->second.origin_ms = 0;
    dirty_.emplace_back(&it->first, &it->second);
  }
  size_t taught = 0;
  for (auto [key, k] : dirty_) {
    k->dirty = false;
    Teach(*key, *k, now_ms);
    ++taught;
  }
  dirty_.clear();
  out.SetMany(taught_, staged_, now_ms);
  return taught;
}

}  // namespace stickmeter::teach
