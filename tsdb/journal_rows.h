// Journal rows: the committed state and rollup changes a group commit keeps in the meta family
// until the applier writes them out (docs/storage.md), in the in-memory form the writer hands
// on, the applier writes out and a read view reads meanwhile.
//
// Thread-safety: JournalRow is immutable once built; its bytes are shared between the applier
// and the read views that copied the list of rows waiting. The functions are pure but for the
// column family handles they look up: any thread, with the DbHandle kept open by the caller.
// Ownership: a row's bytes are owned by the shared_ptr; pieces point into them.
// Failure: Corruption for a malformed row or malformed rollup sums.
#pragma once

#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "tsdb/config.h"
#include "tsdb/db_handle.h"
#include "tsdb/format.h"

namespace stickmeter::tsdb {

struct JournalRow {
  uint64_t id;
  // Chunks of partitions (format::SplitJournalRow). Shared: a query reads the rows not yet
  // written out (ReadView) while the applier writes them.
  std::shared_ptr<const std::string> row;
  std::chrono::steady_clock::time_point committed;
};

// The records of one partition in one journal row, to be written out.
struct JournalPiece {
  uint32_t partition;
  uint64_t id;  // of its row
  std::string_view records;
};

// The partition of an entry's records: keys in runs of config::kJournalKeysPerRun, so the
// records of neighbouring keys land in one partition and are written out together. Inline: the
// writer calls it for every audit row and changed entry of a group.
inline uint32_t JournalPartition(uint32_t table, uint32_t key) {
  return (table * 0x9E3779B1u + key / config::kJournalKeysPerRun) % config::kJournalPartitions;
}

// Appends the chunks of `rows` to `*pieces`, in row order, but those of partitions that
// `applied` (partition -> row id, format::AppliedKey) says are written out already.
Status CollectJournalPieces(const std::vector<JournalRow>& rows,
                            const std::unordered_map<uint32_t, uint64_t>& applied,
                            std::vector<JournalPiece>* pieces);

// Adds the newest state of each entry in `j` and one merge operand per rollup row (the sum of
// its increments in `j`) to `wb`, in key order, for the families of `db`, and the every-key
// rollups' operands of those cells (tsdb/key_rollups.h). Sorts `j`. Corruption if a cell's sums
// are malformed.
// `rollups`: which of the two kinds of rollup rows to add (a query's view of the journal needs
// only those it reads; the applier writes both).
enum class RollupKinds { kByKey = 1, kByTime = 2, kBoth = 3 };
Status AddStateAndRollups(const DbHandle& db, format::Journal& j, rocksdb::WriteBatch& wb,
                          RollupKinds rollups = RollupKinds::kBoth);

}  // namespace stickmeter::tsdb
