// Backups and manual compaction of an open store (Store::Backup, Store::CompactAll).
//
// Thread-safety: any thread, concurrently with queries and the writer; the caller keeps the
// DbHandle open meanwhile (StoreImpl holds its db lock shared).
// Ownership: borrows the DbHandle; CopyTo owns the copy's RocksDB instance until it returns.
// Failure: InvalidArgument when `dir` exists already (CopyTo), IoError or Corruption from
// RocksDB, with the directory in the message. A failed backup may leave a partial `dir`.
#pragma once

#include <string>

#include "common/status.h"
#include "tsdb/db_handle.h"

namespace stickmeter::tsdb {

// A RocksDB checkpoint of a store open for writing into `dir` (hard links where it can). The
// caller first waits until what was submitted is committed and written out of the journal
// (Store::Flush), so that the copy holds it.
Status CheckpointTo(const DbHandle& db, const std::string& dir);

// Backup of a read-only view: a logical copy of every column family into a new store at `dir`,
// consistent with what the view sees (a checkpoint would mix the view's files with the writer's
// newer logs).
Status CopyTo(const DbHandle& db, const std::string& dir);

// Compacts every column family down to the bottommost level (dropping rows past their
// retention on the way).
Status CompactAll(const DbHandle& db);

}  // namespace stickmeter::tsdb
