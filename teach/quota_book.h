// One --quota pair: the quotas of a source table, each key's usage in the current period of
// every quota, and the flags taught as `<source>.quota` (gpt0 = 1 while any quota governing the
// key is reached, gpc0 = the usage of the quota nearest to or furthest over its limit,
// saturated at 2^32 - 1).
//
// Usage comes from the store's committed deltas (exact: what is billed), counted per tracker =
// (metric, period, zone): a tracker's base is the usage read from the store up to its cut, and
// deltas received at or after the cut are added as they commit. A delta of a later period rolls
// the tracker over (every flag of it resets).
//
// Thread-safety: none; the teacher serializes every call.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ingest/codec.h"
#include "ingest/taught_tables.h"
#include "teach/key_index.h"
#include "teach/period.h"
#include "teach/quota.h"

namespace stickmeter::teach {

class QuotaBook {
 public:
  QuotaBook(std::string source_table, std::string taught_table);

  const std::string& source_table() const { return source_; }
  const std::string& taught_table() const { return taught_; }

  // The source table's key layout; returns the taught table's definition when it changed.
  std::optional<ingest::TableDefinition> SetLayout(const std::string& key_type, uint32_t key_size,
                                                   uint64_t expire_ms);
  bool has_layout() const { return def_.has_value(); }

  // A usage tracker waiting for its base: `metric` over [start, cut) of its current period.
  // `previous_from_ms` starts the period before: the keys with usage there were taught flags
  // that a stop of stickmeter across the boundary left standing on the nodes.
  struct BaseRequest {
    size_t tracker;
    std::string metric;
    int64_t from_ms, cut_ms;
    int64_t previous_from_ms;
  };
  // Adds or replaces a quota (already validated). Returns a tracker that needs its base, if the
  // quota's (metric, period, zone) is new.
  std::optional<BaseRequest> Put(const Quota& quota, const date::time_zone* zone, int64_t now_ms);
  bool Delete(const std::string& metric, const std::optional<std::string>& key);
  // The base usage of a tracker (rows of the store's usage query over [from, cut)); rows at 0
  // are keys to teach all the same (those with usage in the period before). With
  // `period_from_ms` (the request's from_ms), rows of a period the tracker has rolled past
  // since (a put just before a boundary) count as 0: that usage is not the new period's.
  void SetBase(size_t tracker, const std::vector<std::pair<std::string, uint64_t>>& rows,
               std::optional<int64_t> period_from_ms = std::nullopt);

  // A committed delta of the source table; `key_id` is the store's id of the key (0: unknown).
  void Apply(std::string_view key, std::string_view metric, uint64_t delta, int64_t t_ms,
             uint32_t key_id = 0);
  // Rolls trackers whose period ended by `now_ms` over. A key that had no usage in the period
  // that ended, nor a quota of its own, and was taught its flag lifted is forgotten then (and
  // its taught entry at the next Flush): the book and the taught table keep the keys of the
  // last two periods, not every key ever seen, and refreshes do not send idle keys for ever.
  void Roll(int64_t now_ms);
  // Teaches every key whose flag or usage changed. Returns the number of keys taught.
  size_t Flush(int64_t now_ms, ingest::TaughtTables& out);

  std::vector<QuotaStatus> List(const std::optional<std::string>& key) const;
  std::vector<KeyQuotaStatus> Keys() const;
  std::optional<QuotaStatus> Find(const std::string& metric,
                                  const std::optional<std::string>& key) const;
  uint64_t over_keys() const { return over_keys_; }

 private:
  struct Tracker {
    std::string metric;
    Period period;
    std::string tz;
    const date::time_zone* zone;
    PeriodRange range;
    int64_t cut_ms;  // deltas before it are in the base
    bool ready = false;
  };
  struct Standing {
    bool over = false;
    uint64_t shown = 0;  // gpc0
    bool operator==(const Standing&) const = default;
  };
  struct Entry {
    Quota quota;
    size_t tracker;
  };
  // Everything about one key, found with one lookup per delta.
  struct KeyBook {
    std::vector<uint64_t> used;  // per tracker (missing = 0)
    Standing taught;             // what it was last taught, when `was_taught`
    bool was_taught = false;
    bool dirty = false;     // in dirty_
    int64_t origin_ms = 0;  // its earliest change not taught yet
    std::string wire_key;   // once parsed (empty: not yet, or it does not parse)
    ingest::TaughtTables::EntryRef taught_entry;
    uint32_t id = 0;  // the store's id of the key, once known (in by_id_)
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using KeyMap = std::unordered_map<std::string, KeyBook, KeyHash, std::equal_to<>>;

  size_t TrackerFor(const Quota& q, const date::time_zone* zone, int64_t now_ms, bool* fresh);
  KeyMap::value_type& KeyOf(std::string_view key);
  KeyMap::value_type& KeyOf(std::string_view key, uint32_t key_id);
  void MarkDirty(KeyMap::value_type& key, int64_t origin_ms);
  void MarkKey(std::string_view key) { MarkDirty(KeyOf(key), 0); }
  // Calls fn(entry) for each quota governing `key`: its own of each metric, else the defaults.
  template <typename Fn>
  void ForEachGoverning(const std::string& key, Fn&& fn) const;
  Standing StandingOf(const std::string& key, const KeyBook& book) const;
  static uint64_t UsedIn(const KeyBook& book, size_t tracker) {
    return tracker < book.used.size() ? book.used[tracker] : 0;
  }
  uint64_t Used(const Entry& e, const std::string& key) const;
  QuotaStatus StatusOf(const Entry& e) const;
  void MarkAll();
  // Forgets the keys idle since the last roll (see Roll), their wire keys into forgotten_.
  void ForgetIdleKeys();
  void MarkTracker(size_t tracker);
  void ClearTracker(size_t tracker);

  const std::string source_, taught_;
  std::optional<ingest::TableDefinition> def_;
  std::map<std::string, Entry> defaults_;                    // metric -> quota
  std::map<std::string, std::map<std::string, Entry>> own_;  // key -> metric -> quota
  std::vector<Tracker> trackers_;
  // Nodes of an unordered_map stay put, and a key in dirty_ is never erased: dirty_ points
  // into it.
  KeyMap keys_;
  KeyIdIndex<KeyMap::value_type> by_id_;  // into keys_
  std::vector<std::pair<const std::string*, KeyBook*>> dirty_;
  std::vector<ingest::TaughtTables::Change> staged_;  // by Flush, for one SetMany
  std::vector<std::string> forgotten_;                // wire keys, for Flush's Erase
  uint64_t over_keys_ = 0;
};

}  // namespace stickmeter::teach
