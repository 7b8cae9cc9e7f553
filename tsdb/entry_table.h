// EntryTable: the writer's in-memory state of every entry (one key of one table, from one
// source): the state of each of its counter series, from which the next value's delta is
// computed (tsdb/delta.h); which sources sent each key; and each source's restart epoch.
//
// Loaded at open from the entries family and the epoch records (the journal rows' newer states
// on top, tsdb/journal.h), then changed only by the writer as it builds groups
// (tsdb/group_builder.h), which writes the changes out in the group's WriteBatch.
//
// Thread-safety: the writer thread (sm-writer) only, or the thread that opens or reopens the
// store before the writer runs; live_series() from any thread.
// Ownership: owned by StoreImpl; owns the maps. Borrows the Catalog (counts keys several
// sources sent).
// Failure: loading a malformed entry state is Corruption; nothing else fails.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tsdb/catalog.h"
#include "tsdb/db_handle.h"
#include "tsdb/format.h"
#include "tsdb/incremental_hash_map.h"

namespace stickmeter::tsdb {

struct EntryIdHash {
  size_t operator()(const format::EntryId& id) const {
    uint64_t a = (uint64_t{id.source} << 32) | id.table;
    return std::hash<uint64_t>()(a * 0x9E3779B97F4A7C15ull ^ (id.key + 0x7F4A7C159E3779B9ull));
  }
};

// The in-memory state of an entry of one source: the state of each of its counter series (one
// per metric, ascending metric id), plus where the open group keeps its changes (kClean when the
// group has not touched it).
struct LiveEntry {
  static constexpr uint32_t kClean = UINT32_MAX;
  std::vector<format::MetricState> metrics;
  uint32_t pending = kClean;  // index into the group builder's pending entries
  uint32_t window = 0;        // the last repeat window (the group builder's) it was touched in
};

class EntryTable {
 public:
  using Entry = std::pair<const format::EntryId, LiveEntry>;

  explicit EntryTable(Catalog& catalog) : catalog_(catalog) {}
  EntryTable(const EntryTable&) = delete;
  EntryTable& operator=(const EntryTable&) = delete;

  // ---- Open (before the writer runs) ----
  // An epoch record of the meta family.
  void LoadEpoch(uint32_t source, uint32_t epoch) { epochs_[source] = epoch; }
  // Loads every entry of the entries family. `corrupt` begins the message of a Corruption.
  Status LoadEntries(const DbHandle& db, const std::string& corrupt);
  // An entry state loaded at open (from the entries family or a journal row, which is newer):
  // replaces the entry's state; a new entry counts its key's sources.
  Status LoadEntry(const format::EntryId& id, std::string_view state);
  // Once everything is loaded: counts the series for live_series().
  void CountSeries();
  // Forgets everything loaded (a reopen).
  void Clear();

  // ---- Writer (inline: once per entry update of every batch) ----
  // The entry of `id`, added with no series if it is new: (entry, whether new). The pointer
  // stays valid while entries are added (IncrementalHashMap).
  std::pair<Entry*, bool> Add(const format::EntryId& id) { return entries_.TryEmplace(id); }
  // Records that `source` sent `key` of `table` (call once per new entry): true if the key has
  // just become one that several sources sent.
  bool AddKeySource(uint32_t table, uint32_t key, uint32_t source) {
    const uint64_t tk = (uint64_t{table} << 32) | key;
    auto [ks, inserted] = key_sources_.TryEmplace(tk, source);
    if (inserted || (ks->second & ~kSharedBit) == source || (ks->second & kSharedBit)) {
      return false;
    }
    ks->second |= kSharedBit;
    return true;
  }
  // The restart epoch of `source` (0 until its first restart), for the writer to advance.
  uint32_t& Epoch(uint32_t source) { return epochs_[source]; }
  // A series was added to an entry.
  void CountNewSeries() { live_series_.fetch_add(1, std::memory_order_relaxed); }

  // ---- Any thread ----
  uint64_t live_series() const { return live_series_.load(std::memory_order_relaxed); }

 private:
  static constexpr uint32_t kSharedBit = 0x80000000u;

  Catalog& catalog_;
  // The maps that grow with the keys grow incrementally: rehashing every element at once held
  // up commits for tens of ms (see tsdb/incremental_hash_map.h).
  IncrementalHashMap<format::EntryId, LiveEntry, EntryIdHash> entries_;
  std::unordered_map<uint32_t, uint32_t> epochs_;  // source -> restart epoch
  IncrementalHashMap<uint64_t, uint32_t>
      key_sources_;  // table<<32|key -> first source | kSharedBit (seen from several)
  std::atomic<uint64_t> live_series_{0};
};

}  // namespace stickmeter::tsdb
