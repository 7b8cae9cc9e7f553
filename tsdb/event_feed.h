// The event feed: every committed audit event, once, for a component that ships them elsewhere
// (sink/: ClickHouse), with a position kept in the store only once the receiver confirmed.
//
// With StoreOptions::event_feed the store writes each group commit's audit events, in sequence
// order, to an outbox (meta rows "O", tsdb/format.h) in the SAME WriteBatch as the commit: an
// acknowledged event is in the outbox. The first open with the feed on (or the first after an
// open without it) also starts a backfill: the audit events already stored (raw column family,
// as retention left them) with a sequence number below the first outbox event. Read() returns
// backfill events first, then outbox events in sequence order, each with its sequence number
// (stable: the same event always has the same one) and names as text; Ack(position) records
// what was shipped and deletes the outbox rows wholly before it, in one write. A crash after
// shipping and before Ack ships those events again: receivers deduplicate by sequence number.
// Outbox rows are never dropped by retention: a receiver that is down only delays shipping.
//
// Thread-safety: one reader thread calls Read and Ack; Stats may be called from any thread.
// None of them blocks the writer or the committer (RocksDB reads and one small write).
// Ownership: the feed belongs to the store (Store::event_feed()); it fails with Unavailable
// once the store is closed.
// Failure: Read/Ack return IoError or Corruption from RocksDB; nothing is lost on failure: the
// caller retries from the last acknowledged position.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace stickmeter::tsdb {

// One audit event, as the audit API shows it.
struct FeedEvent {
  uint64_t seq = 0;  // the store's sequence number: unique and stable within one store
  int64_t t_ms = 0;  // when the update was received
  std::string source, table, key, metric;
  uint64_t value = 0;  // the absolute value received
  uint64_t delta = 0;
  std::string reason;  // format::ReasonName
};

// Where the feed stands. Opaque to readers: pass back what Read returned.
struct FeedPosition {
  uint64_t shipped_through = 0;  // outbox events with seq <= this are done
  uint64_t outbox_from = 0;      // outbox rows keyed below this are wholly done
  uint64_t backfill_below = 0;
  bool backfill_done = true;
  std::string backfill_after;  // last raw key done; empty: from the start
};

// How much one Read may return: about `events` events, or their text (source, table, key, metric
// and reason, plus kFeedEventOverhead each) about `bytes`, whichever comes first. A key may be
// up to 1 MiB, so a count alone bounds nothing. At least one event is returned when there is one;
// a backfill audit row, which cannot be split, may add the rest of its events.
inline constexpr size_t kFeedEventOverhead = 48;
struct FeedLimits {
  size_t events = 50'000;
  size_t bytes = size_t{16} << 20;
};

struct FeedBatch {
  std::vector<FeedEvent> events;  // empty: nothing new
  FeedPosition next;              // the position after these events
  bool backfill = false;          // these are backfill events
};

struct FeedStats {
  uint64_t committed_seq = 0;    // the last committed event's sequence number (0: none)
  uint64_t shipped_through = 0;  // of the outbox; backfill events are not counted here
  bool backfill_done = true;
};

class EventFeed {
 public:
  virtual ~EventFeed() = default;
  // The store's id: 16 hex digits, random, made when the feed was first turned on and never
  // changed (a new store, even one with the same server name, has another). With a sequence
  // number it names an event uniquely.
  virtual Result<std::string> StoreId() = 0;
  // The position last acknowledged (persisted).
  virtual Result<FeedPosition> Position() = 0;
  // The events after `from`, as many as `limits` allow.
  virtual Result<FeedBatch> Read(const FeedPosition& from, const FeedLimits& limits) = 0;
  // Records `pos` (returned by Read) as shipped, durably (synced), and deletes the outbox rows
  // wholly before it; with pos.outbox_from 0 it deletes none (a reader may delete less often:
  // each deletion is a range tombstone reads of the meta family step over until compacted).
  virtual Status Ack(const FeedPosition& pos) = 0;
  virtual Result<FeedStats> Stats() = 0;
};

}  // namespace stickmeter::tsdb
