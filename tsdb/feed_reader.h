// FeedReader: the event feed's reads and writes of RocksDB (tsdb/event_feed.h): the backfill
// scan of the audit family, the outbox rows and the persisted position.
//
// Thread-safety: Read, Ack and Position from one thread at a time; Stats from any. The caller
// keeps the DbHandle open meanwhile (StoreImpl holds its db lock shared).
// Ownership: borrows the DbHandle and the Names; owns nothing.
// Failure: RocksDB errors as IoError; a malformed row as Corruption.
#pragma once

#include <rocksdb/write_batch.h>

#include <cstdint>

#include "common/status.h"
#include "tsdb/catalog.h"
#include "tsdb/db_handle.h"
#include "tsdb/event_feed.h"

namespace stickmeter::tsdb {

class FeedReader {
 public:
  FeedReader(DbHandle* db, const Names* names) : db_(db), names_(names) {}

  // At an open for writing, before the writer starts, with every journal row written out.
  // Feed on: keeps the persisted position, or starts one (a backfill of the events below
  // `next_seq`) if there is none. Returns whether a position is persisted (feed off: a stale one
  // from an earlier run, which the first commit of events without the outbox deletes with
  // AddStop, so that turning the feed on again backfills everything; receivers deduplicate).
  static Result<bool> OpenFeed(DbHandle* db, bool feed_on, uint64_t next_seq);
  // Adds the deletion of the position and the outbox to `wb`.
  static void AddStop(DbHandle* db, rocksdb::WriteBatch& wb);

  Result<std::string> StoreId();
  Result<FeedPosition> Position();
  Result<FeedBatch> Read(const FeedPosition& from, const FeedLimits& limits);
  Status Ack(const FeedPosition& pos);
  Result<FeedStats> Stats();

 private:
  Status ReadBackfill(const FeedPosition& from, const FeedLimits& limits, FeedBatch* out);
  Status ReadOutbox(const FeedPosition& from, const FeedLimits& limits, FeedBatch* out);

  DbHandle* db_;
  const Names* names_;
};

}  // namespace stickmeter::tsdb
