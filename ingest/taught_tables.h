// What stickmeter teaches HAProxy: the tables it defines itself and the current value of each of
// their entries, shared by every peer session.
//
// A producer (the teacher) defines tables and sets entries; every change gets the next number of
// one process-wide sequence. Each peer session keeps, per table, the last sequence number it sent
// and the last one the peer acknowledged, and pulls what changed since with Collect(), already
// encoded as peers-protocol messages. Setting an entry again before a session pulled it replaces
// the value waiting: a session always sends the latest value, once. On the wire an update id is
// the low 32 bits of the sequence number (HAProxy's ids wrap too).
//
// Names: a taught table is never a source. Sessions drop what a peer sends for a taught name
// (IsTaught) so a taught value never comes back as usage.
//
// Thread-safety: every method may be called from any thread (one mutex). Listeners are called
// without the mutex held, on the producer's thread, and must only post work elsewhere.
// Ownership: owned by the application; outlives the peer service and the teacher.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ingest/codec.h"

namespace stickmeter::ingest {

class TaughtTables {
 public:
  // The names that will be taught, fixed at start (from --aggregate and --quota), so sessions
  // can tell them apart from the first message on.
  explicit TaughtTables(std::vector<std::string> names);

  // ---- Producer side. ----

  // (Re)defines the table `def.name` (which must be one of the names given at construction):
  // key type and size, data types and their parameters, expire. `def.table_id` is ignored.
  // Entries already set keep their values if the stored types and the key type did not change
  // and the key size did not (a string key's may grow), else are dropped. Returns false for a
  // name not taught.
  bool Define(const TableDefinition& def);
  // Sets the values of one entry: `key` as on the wire (string: without length), `values` one
  // per stored type (per element for arrays) in bit order, `expire_ms` the life HAProxy gives
  // the entry (nullopt: the table's own expire). `origin_ms` is when the change that caused it
  // was received (Unix ms), for the teach lag. `now_ms` is when the values were computed:
  // a frequency counter's elapsed time (FreqCounter::curr_tick) is as of then, and is advanced
  // by the time it waits until sent. Ignored for a table not defined yet. Sessions hear of it
  // at the next Publish().
  void Set(std::string_view table, std::string_view key, std::vector<DataValue> values,
           std::optional<uint32_t> expire_ms, int64_t origin_ms, int64_t now_ms);
  // Many Sets of one table under one acquisition of the lock: a flush sets thousands of entries,
  // and taking the lock for each made the producer queue behind every session's Collect.
  // Where a producer's key was set last time, so that setting it again skips looking its key up
  // (a flush sets thousands of keys under the lock the sessions collect under). Kept by the
  // producer, filled in by SetMany; stale after a Define of the table, then looked up again.
  class EntryRef {
   private:
    friend class TaughtTables;
    void* node = nullptr;
    size_t table = SIZE_MAX;
    uint64_t version = 0;
  };
  struct Change {
    std::string_view key;  // as for Set; must stay valid until SetMany returns
    std::vector<DataValue> values;
    std::optional<uint32_t> expire_ms;
    int64_t origin_ms = 0;
    EntryRef* ref = nullptr;  // optional; must stay valid until SetMany returns
  };
  // Applies and empties `changes` (keeping its capacity), all computed at `now_ms`. What an
  // entry held before leaves with `changes`, freed after the lock.
  void SetMany(std::string_view table, std::vector<Change>& changes, int64_t now_ms);
  // Tells the sessions that entries changed.
  void Publish();
  // Sets again every entry of every table (a refresh before the nodes' own expire ends them).
  void TouchAll(int64_t origin_ms);
  // Forgets entries of `table` (`keys` as for Set): no refresh sends them again and no peer
  // that has not had them gets them; what the nodes hold ends with its own expire. The
  // producer must drop its EntryRefs of those keys.
  void Erase(std::string_view table, const std::vector<std::string>& keys);

  // ---- Session side. ----

  bool IsTaught(std::string_view name) const;
  size_t table_count() const { return names_.size(); }
  // Our table id on the wire for table index i: i + 1.
  static uint64_t WireId(size_t index) { return index + 1; }

  // Calls `listener` after every batch of changes. Returns a handle for RemoveListener.
  uint64_t AddListener(std::function<void()> listener);
  void RemoveListener(uint64_t handle);

  // The newest sequence number handed out (0 = nothing yet).
  uint64_t last_seq() const;

  // Where one peer stands on one table. A new connection starts with `defined_version` 0 (the
  // peer forgot our DEFINE) and `sent` at what the previous connection had acknowledged, of the
  // definition `sent_version`: if the table was redefined since, everything goes again.
  struct Cursor {
    uint64_t sent = 0;             // last sequence number sent (or acknowledged, on resume)
    uint64_t sent_version = 0;     // the definition `sent` refers to
    uint64_t defined_version = 0;  // the definition sent on this connection (0 = none)
  };
  struct Collected {
    size_t messages = 0;  // entry updates appended
    // Per update appended: its sequence number and when its cause was received (Unix ms).
    std::vector<std::pair<uint64_t, int64_t>> sent;
  };
  // Appends to `out` the messages that bring a peer at `cursor` of table `index` up to date, at
  // most `max_messages` updates. Advances the cursor. Returns what was appended.
  // Updates apply to the table the stream selected last, so a DEFINE goes first when the peer
  // has not seen the current definition, or when `*selected` (the table id this connection's
  // stream has selected, kept by the caller across calls; 0 = none) is another table: HAProxy
  // too sends a DEFINE at every change of table. Without `selected` the caller must send one
  // table only on the stream.
  Collected Collect(size_t index, Cursor& cursor, size_t max_messages, std::string& out,
                    uint64_t* selected = nullptr) const;
  // True when table `index` has changes after `cursor.sent`, up to sequence number `upto`.
  bool Behind(size_t index, const Cursor& cursor, uint64_t upto = UINT64_MAX) const;
  // The full sequence number of a 32-bit update id a peer acknowledged, given the last number
  // sent to that peer on that table: the latest number up to `last_sent` with those low 32
  // bits. Nullopt when there is none, i.e. the peer acknowledged a number never sent on this
  // cursor (a hostile peer, or the ACK of an update sent before a resync request restarted the
  // cursor): taking it would move the cursor past everything there is to send.
  static std::optional<uint64_t> Unwrap(uint64_t last_sent, uint32_t acked_id) {
    const uint32_t behind = static_cast<uint32_t>(last_sent) - acked_id;
    if (behind > last_sent) return std::nullopt;
    return last_sent - behind;
  }

 private:
  struct Entry {
    std::vector<DataValue> values;
    std::optional<uint32_t> expire_ms;
    uint64_t seq = 0;
    int64_t origin_ms = 0;
    int64_t set_ms = 0;
    bool has_freq = false;  // a frequency counter's tick advances with the time it waits
    // The update message as last encoded by Collect (under mu_) for sequence number
    // `encoded_seq`, `encoded_waited` ms after the set: every peer is sent the same bytes, only
    // with its own expire written in, and encoding them once instead of once per peer was most
    // of what teaching cost the sessions. A frequency counter's tick is re-encoded.
    mutable std::string encoded;
    mutable uint64_t encoded_seq = 0;
    mutable int64_t encoded_waited = -1;
    mutable size_t expire_offset = 0;  // of a timed update, in `encoded`
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // One Set, in sequence order. A record whose entry was set again since is stale (the entry's
  // seq moved on) and is skipped; stale records are dropped once they outnumber the live ones.
  // A log rather than an ordered map: a Set appends, it does not allocate a node.
  struct LogRecord {
    uint64_t seq;
    const std::string* key;  // in `entries` (nodes of an unordered_map do not move)
    const Entry* entry;
  };
  struct Table {
    std::optional<TableDefinition> def;
    uint64_t version = 0;  // bumped by every Define
    std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>> entries;
    std::vector<LogRecord> log;  // ascending seq
  };
  std::optional<size_t> IndexOf(std::string_view name) const;
  void SetLocked(Table& t, const std::string& key, Entry& e);
  // Moves each change's values into its entry of `t` (defined) and gives it the next seq.
  void ApplyLocked(size_t index, std::vector<Change>& changes, int64_t now_ms);
  // The first live record of `t` with a sequence number above `after`, or t.log.end().
  static std::vector<LogRecord>::const_iterator FirstAfter(const Table& t, uint64_t after);

  const std::vector<std::string> names_;
  mutable std::mutex mu_;
  std::vector<Table> tables_;  // GUARDED_BY(mu_), parallel to names_
  uint64_t seq_ = 0;           // GUARDED_BY(mu_)
  std::mutex listeners_mu_;
  std::map<uint64_t, std::function<void()>> listeners_;  // GUARDED_BY(listeners_mu_)
  uint64_t next_listener_ = 1;                           // GUARDED_BY(listeners_mu_)
};

}  // namespace stickmeter::ingest
