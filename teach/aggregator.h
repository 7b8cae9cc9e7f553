// One --aggregate pair: per key, the sum over every HAProxy node of each counter, each rate and
// conn_cur of a source table, taught as `<source>.aggregate`.
//
// A node's contribution is its latest values for the key; it ends when the node's entry
// expires (the source table's expire after its last update) or its process restarts (it asked
// for a full resync). Counters saturate at their type's maximum; rates are summed as HAProxy
// reads them and decay as HAProxy's own would (teach/rate_sum.h). Keys changed since the last
// Flush, and keys whose summed rates change slope, are taught at the next Flush.
//
// Thread-safety: none; the teacher calls it from its own thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ingest/codec.h"
#include "ingest/sink.h"
#include "ingest/taught_tables.h"
#include "teach/key_index.h"
#include "teach/rate_sum.h"

namespace stickmeter::teach {

class Aggregator {
 public:
  Aggregator(std::string source_table, std::string taught_table);

  const std::string& source_table() const { return source_; }
  const std::string& taught_table() const { return taught_; }

  // The layout of the source table that the next updates have, as a node declared it at
  // `now_ms` (call once per table update of a batch; a TableInfo seen last time costs a pointer
  // compare). Returns the taught table's definition when it is new or changed (to pass to
  // TaughtTables::Define). Nodes may declare the table differently (a rolling change of their
  // configuration): updates of any layout add up, by metric name, in the current one, and
  // another is adopted (the aggregate starting over) only once no node has declared the
  // current one for kLayoutSwitchMs.
  static constexpr int64_t kLayoutSwitchMs = 10'000;
  std::optional<ingest::TableDefinition> Layout(
      const std::shared_ptr<const ingest::TableInfo>& table, int64_t now_ms);
  // A small number standing for node `source` (numbered as first seen; never reused): resolve
  // it once per batch, then apply the batch's entries by it.
  uint32_t SourceId(std::string_view source);
  // One committed entry update of node `source` for the source table, of the last Layout;
  // `key_id` is the store's id of its key (0: unknown).
  void Apply(uint32_t source, const ingest::EntryUpdate& update, uint32_t key_id = 0);
  void Apply(std::string_view source, const ingest::EntryUpdate& update, uint32_t key_id = 0) {
    Apply(SourceId(source), update, key_id);
  }
  // The node's process restarted: its contributions end.
  void RestartSource(std::string_view source);
  // Ends the contributions whose entries expired by `now_ms`. A key left with none is forgotten,
  // and so is its entry in `out` (taught with the same expire, it has ended on the nodes too):
  // refreshes would otherwise send it again, and the taught table keep every key ever seen.
  void Expire(int64_t now_ms, ingest::TaughtTables& out);
  // Teaches every key changed since the last call, and every key whose rates changed slope by
  // `now_ms`. Returns the number of keys taught.
  size_t Flush(int64_t now_ms, ingest::TaughtTables& out);
  size_t keys() const { return keys_.size(); }

 private:
  // One taught value: a counter, conn_cur or a frequency counter (an array element each).
  struct Slot {
    ingest::DataType type;
    uint32_t index = 0;
    std::string_view metric;  // ingest's static name of the element
    bool freq = false;
    uint64_t max = 0;  // saturation of counters
    uint32_t period_ms = 0;
  };
  struct Contribution {
    int64_t updated_ms = 0;
    std::vector<uint64_t> values;   // per slot (counters, conn_cur)
    std::vector<FreqSample> rates;  // per slot (frequency counters)
  };
  struct KeyState {
    std::string wire_key;
    // Per node (by SourceId); a handful, so a vector searched in order beats a map.
    std::vector<std::pair<uint32_t, Contribution>> sources;
    bool dirty = false;
    int64_t origin_ms = 0;  // earliest change not taught yet
    int64_t next_change_ms = kNever;
    uint32_t id = 0;  // the store's key id, when known (its slot in by_id_)
    ingest::TaughtTables::EntryRef taught;
  };

  struct Built {
    ingest::TableDefinition def;
    std::vector<Slot> slots;
  };
  // The taught definition and slots for a layout of the source table; nullopt for a key type
  // it cannot teach.
  std::optional<Built> Build(const ingest::TableInfo& table) const;
  // The slot of a metric, or slots_.size(). Slots are few: a scan beats hashing the name.
  size_t SlotOf(std::string_view metric) const;
  // Stages the key's taught values (staged_).
  void Teach(const std::string& key, KeyState& k, int64_t now_ms);

  const std::string source_, taught_;
  std::shared_ptr<const ingest::TableInfo> layout_of_;  // a TableInfo of def_'s layout, last
  int64_t layout_seen_ms_ = 0;                          // when a node last declared it
  std::shared_ptr<const ingest::TableInfo> other_of_;   // of another layout, last
  std::optional<Built> other_;                          // built from other_of_
  std::optional<ingest::TableDefinition> def_;
  std::vector<Slot> slots_;
  std::vector<std::string> source_names_;  // by SourceId
  std::unordered_map<std::string, KeyState> keys_;
  KeyIdIndex<std::pair<const std::string, KeyState>> by_id_;  // into keys_
  std::vector<ingest::TaughtTables::Change> staged_;          // by Teach, for Flush's SetMany
  // Keys changed since the last Flush (KeyState::dirty set), as their nodes in keys_: nodes
  // of an unordered_map stay put, and a dirty key is never erased before it is taught.
  std::vector<std::pair<const std::string*, KeyState*>> dirty_;
  // Keys to teach again when their summed rates change slope: (time, key), lazily checked.
  std::priority_queue<std::pair<int64_t, std::string>, std::vector<std::pair<int64_t, std::string>>,
                      std::greater<>>
      schedule_;
};

}  // namespace stickmeter::teach
