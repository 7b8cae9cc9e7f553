// Implementation of taught_tables.h.
#include "ingest/taught_tables.h"

#include <algorithm>
#include <unordered_set>

#include "common/time.h"

namespace stickmeter::ingest {

TaughtTables::TaughtTables(std::vector<std::string> names)
    : names_(std::move(names)), tables_(names_.size()) {}

std::optional<size_t> TaughtTables::IndexOf(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return i;
  }
  return std::nullopt;
}

bool TaughtTables::IsTaught(std::string_view name) const { return IndexOf(name).has_value(); }

bool TaughtTables::Define(const TableDefinition& def) {
  const auto index = IndexOf(def.name);
  if (!index) return false;
  {
    std::lock_guard lock(mu_);
    Table& t = tables_[*index];
    const bool same_layout =
        t.def && t.def->key_type == def.key_type && t.def->key_size == def.key_size &&
        t.def->data_bitfield == def.data_bitfield && t.def->nbelem == def.nbelem &&
        t.def->period_ms == def.period_ms && t.def->expire_ms == def.expire_ms;
    if (same_layout) return true;
    // Entries are kept only while their keys are still keys of the new definition: same type,
    // and the same size (a string may only grow). A key of another type or size would be sent
    // as the key of the new layout, and its values read from the wrong bytes.
    const bool same_keys = t.def && t.def->key_type == def.key_type &&
                           (def.key_type == KeyType::kString ? def.key_size >= t.def->key_size
                                                             : def.key_size == t.def->key_size);
    const bool same_values =
        same_keys && t.def->data_bitfield == def.data_bitfield && t.def->nbelem == def.nbelem;
    t.def = def;
    t.def->table_id = WireId(*index);
    ++t.version;
    if (!same_values) {
      t.entries.clear();
      t.log.clear();
    } else {
      // Every entry goes out again after the new DEFINE.
      for (auto& [key, e] : t.entries) SetLocked(t, key, e);
    }
  }
  Publish();
  return true;
}

void TaughtTables::SetLocked(Table& t, const std::string& key, Entry& e) {
  e.seq = ++seq_;
  t.log.push_back(LogRecord{e.seq, &key, &e});
  if (t.log.size() >= 2 * t.entries.size() + 64) {
    std::erase_if(t.log, [](const LogRecord& r) { return r.entry->seq != r.seq; });
  }
}

std::vector<TaughtTables::LogRecord>::const_iterator TaughtTables::FirstAfter(const Table& t,
                                                                              uint64_t after) {
  auto it = std::partition_point(t.log.begin(), t.log.end(),
                                 [after](const LogRecord& r) { return r.seq <= after; });
  while (it != t.log.end() && it->entry->seq != it->seq) ++it;
  return it;
}

void TaughtTables::Set(std::string_view table, std::string_view key, std::vector<DataValue> values,
                       std::optional<uint32_t> expire_ms, int64_t origin_ms, int64_t now_ms) {
  std::vector<Change> one;
  one.push_back(Change{key, std::move(values), expire_ms, origin_ms});
  SetMany(table, one, now_ms);
}

void TaughtTables::SetMany(std::string_view table, std::vector<Change>& changes, int64_t now_ms) {
  if (const auto index = IndexOf(table)) {
    std::lock_guard lock(mu_);
    // A table not defined yet ignores them, as Set.
    if (tables_[*index].def) ApplyLocked(*index, changes, now_ms);
  }
  changes.clear();
}

void TaughtTables::ApplyLocked(size_t index, std::vector<Change>& changes, int64_t now_ms) {
  Table& t = tables_[index];
  using Node = std::pair<const std::string, Entry>;
  for (Change& c : changes) {
    Node* node = nullptr;
    if (c.ref != nullptr && c.ref->table == index && c.ref->version == t.version) {
      node = static_cast<Node*>(c.ref->node);
    } else {
      auto it = t.entries.find(c.key);
      if (it == t.entries.end()) it = t.entries.try_emplace(std::string(c.key)).first;
      node = &*it;
      if (c.ref != nullptr) {
        c.ref->node = node;
        c.ref->table = index;
        c.ref->version = t.version;
      }
    }
    Entry& e = node->second;
    // Swapped, not moved: the entry's old values leave with `changes`, freed after the lock.
    std::swap(e.values, c.values);
    e.expire_ms = c.expire_ms;
    e.has_freq = std::any_of(e.values.begin(), e.values.end(),
                             [](const DataValue& v) { return v.form == DataValue::Form::kFreq; });
    e.origin_ms = c.origin_ms;
    e.set_ms = now_ms;
    SetLocked(t, node->first, e);
  }
}

void TaughtTables::TouchAll(int64_t origin_ms) {
  {
    std::lock_guard lock(mu_);
    for (Table& t : tables_) {
      for (auto& [key, e] : t.entries) {
        e.origin_ms = origin_ms;
        SetLocked(t, key, e);
      }
    }
  }
  Publish();
}

void TaughtTables::Erase(std::string_view table, const std::vector<std::string>& keys) {
  const auto index = IndexOf(table);
  if (!index || keys.empty()) return;
  std::lock_guard lock(mu_);
  Table& t = tables_[*index];
  std::vector<decltype(t.entries)::iterator> found;
  std::unordered_set<const Entry*> gone;
  for (const std::string& key : keys) {
    auto it = t.entries.find(key);
    if (it == t.entries.end() || !gone.insert(&it->second).second) continue;
    found.push_back(it);
  }
  if (found.empty()) return;
  // The log's records point into the entries: theirs go first.
  std::erase_if(t.log, [&](const LogRecord& r) { return gone.count(r.entry) > 0; });
  for (auto it : found) t.entries.erase(it);
}

uint64_t TaughtTables::AddListener(std::function<void()> listener) {
  std::lock_guard lock(listeners_mu_);
  const uint64_t handle = next_listener_++;
  listeners_.emplace(handle, std::move(listener));
  return handle;
}

void TaughtTables::RemoveListener(uint64_t handle) {
  std::lock_guard lock(listeners_mu_);
  listeners_.erase(handle);
}

void TaughtTables::Publish() {
  std::lock_guard lock(listeners_mu_);
  for (auto& [handle, listener] : listeners_) listener();
}

uint64_t TaughtTables::last_seq() const {
  std::lock_guard lock(mu_);
  return seq_;
}

bool TaughtTables::Behind(size_t index, const Cursor& cursor, uint64_t upto) const {
  std::lock_guard lock(mu_);
  const Table& t = tables_[index];
  if (!t.def || t.log.empty()) return false;
  const uint64_t after = cursor.sent_version != t.version ? 0 : cursor.sent;
  auto it = FirstAfter(t, after);
  return it != t.log.end() && it->seq <= upto;
}

TaughtTables::Collected TaughtTables::Collect(size_t index, Cursor& cursor, size_t max_messages,
                                              std::string& out, uint64_t* selected) const {
  Collected c;
  const int64_t now = NowUnixMs();
  std::vector<DataValue> aged;
  std::lock_guard lock(mu_);
  const Table& t = tables_[index];
  if (!t.def) return c;
  if (t.log.empty()) return c;
  if (cursor.sent_version != t.version) {
    // What the peer has is of an older layout: every entry goes again.
    cursor.sent_version = t.version;
    cursor.sent = 0;
  }
  auto it = FirstAfter(t, cursor.sent);
  if (it == t.log.end()) return c;
  if (cursor.defined_version != t.version || (selected != nullptr && *selected != WireId(index))) {
    AppendTableDefine(out, *t.def);
    cursor.defined_version = t.version;
    if (selected != nullptr) *selected = WireId(index);
  }
  for (; it != t.log.end() && c.messages < max_messages; ++it) {
    if (it->entry->seq != it->seq) continue;  // set again since: its later record sends it
    const Entry& e = *it->entry;
    // Time passed since the values were computed: counters and expiries advance with it.
    const int64_t waited = std::max<int64_t>(0, now - e.set_ms);
    std::optional<uint32_t> expire = e.expire_ms;
    if (expire) expire = static_cast<uint32_t>(std::max<int64_t>(1, int64_t{*expire} - waited));
    if (e.encoded_seq != it->seq || (e.has_freq && e.encoded_waited != waited)) {
      const std::string& key = *it->key;
      const auto* bytes = reinterpret_cast<const uint8_t*>(key.data());
      aged.assign(e.values.begin(), e.values.end());
      for (DataValue& v : aged) {
        if (v.form == DataValue::Form::kFreq) v.freq.curr_tick += static_cast<uint64_t>(waited);
      }
      e.encoded.clear();
      AppendEntryUpdate(e.encoded, *t.def,
                        expire ? StickTableType::kUpdateTimed : StickTableType::kUpdate,
                        static_cast<uint32_t>(it->seq), expire,
                        std::span<const uint8_t>(bytes, key.size()), aged, &e.expire_offset);
      e.encoded_seq = it->seq;
      e.encoded_waited = waited;
    }
    const size_t at = out.size();
    out += e.encoded;
    if (expire && e.encoded_waited != waited) {
      SetEntryUpdateExpire(out.data() + at, e.expire_offset, *expire);
    }
    cursor.sent = it->seq;
    ++c.messages;
    c.sent.emplace_back(it->seq, e.origin_ms);
  }
  return c;
}

}  // namespace stickmeter::ingest
