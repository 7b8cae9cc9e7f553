// The every-key rollups (column families "k1m", "k1h", "k1d"): the counter rollup cells again,
// keyed by time first and summed over sources, so that a query over every key of a table reads
// the rows of its windows only (tsdb/every_key.h), not every row of every key.
//
// They are derived, never written on their own: AddKeyRollups turns rollup cells into their
// merge operands wherever rollup cells are written (AddStateAndRollups, and so the applier and a
// read view's journal overlay), and UpgradeToKeyRollups builds them from the rollup families of
// a store of format version 1, once, at its first open for writing.
//
// Thread-safety: AddKeyRollups is pure but for the handles (any thread, the DbHandle kept open);
// UpgradeToKeyRollups runs alone, during the open, before any other use of the store.
// Ownership: both borrow the handle and write through its DB.
// Failure: Corruption for malformed rollup sums; IoError from RocksDB. An upgrade cut short
// (a crash, a full disk) leaves the store at version 1, and the next open starts it over.
#pragma once

#include <rocksdb/write_batch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "tsdb/db_handle.h"
#include "tsdb/format.h"

namespace stickmeter::tsdb {

// Adds to `wb` one merge operand per every-key row the rollup `cells` of `resolution` (0 minute,
// 1 hour, 2 day; buckets as in the rollup family's keys) add to. REQUIRES: `cells` sorted by
// table then key (as AddStateAndRollups sorts them). Nothing when the store has no every-key
// families (a read-only open of a version 1 store).
Status AddKeyRollups(const DbHandle& db, int resolution,
                     const std::vector<format::JournalCell>& cells, rocksdb::WriteBatch& wb);

// Builds the every-key families of a store of format version 1 from its rollup families (what
// the journal still holds is added as it is written out), then records format version 2 in the
// same synced write as the last rows. What the families held before is deleted first: a former
// attempt's rows. Logs its progress (a store of millions of keys takes minutes).
Status UpgradeToKeyRollups(const DbHandle& db);

}  // namespace stickmeter::tsdb
