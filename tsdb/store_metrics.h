// StoreSizeMetrics: the store's size and compaction state in /metrics, read from RocksDB when the
// metrics are scraped: the live SST bytes and level-0 files of each column family
// (stickmeter_store_live_sst_bytes{cf}, stickmeter_store_level0_files{cf}), the bytes compactions
// still have to rewrite and the compactions running (stickmeter_store_pending_compaction_bytes,
// stickmeter_store_running_compactions), and the memtables' bytes
// (stickmeter_store_memtable_bytes). Nothing is written while the store runs.
//
// Thread-safety: Attach and Detach from the thread that opens and closes the DB; the scrape runs
// on the thread serving /metrics, against the DB attached then (none while detached).
// Ownership: borrows the DbHandle from Attach to Detach. The scrape's state is shared with the
// registry, which may keep the collector after the store is gone: it then reports nothing.
// Failure: none; a property RocksDB cannot give is reported as 0.
#pragma once

#include <memory>

#include "common/metrics.h"
#include "tsdb/db_handle.h"

namespace stickmeter::tsdb {

class StoreSizeMetrics {
 public:
  // Registers the collector with `metrics` (once per store).
  explicit StoreSizeMetrics(MetricsRegistry& metrics);
  // The DB to read from now on (after an open or reopen).
  void Attach(const DbHandle& db);
  // Before the DB closes: nothing is read until the next Attach.
  void Detach();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace stickmeter::tsdb
