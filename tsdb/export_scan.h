// ExportScanner: QueryService::Export, the usage of every key of every table (or of one table
// or metric) over a range, streamed row by row in (table, key, metric, source) order, in bounded
// memory whatever the number of keys.
//
// Thread-safety: Export from any thread, concurrently with queries and the writer; each export
// reads one consistent view (ReadView) and holds the DB open (ReadGate) until it returns.
// SetChunkBytes from any thread (tests), before the exports it is to affect.
// Ownership: owned by StoreImpl; borrows the gate and the catalog, which outlive it. The rows
// it emits are valid only during the emit call.
// Failure: InvalidArgument for a bad range, NotFound for an unknown table or metric,
// Unavailable while the store is closed or reopening, IoError or Corruption from the store.
// Rows emitted before a failure stay emitted.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>

#include "common/status.h"
#include "tsdb/catalog.h"
#include "tsdb/config.h"
#include "tsdb/query.h"
#include "tsdb/read_view.h"

namespace stickmeter::tsdb {

class ExportScanner {
 public:
  ExportScanner(const ReadGate& gate, const Catalog& catalog) : gate_(gate), catalog_(catalog) {}

  // Calls `emit` for each (table, key, metric[, source]) with a non-zero total in the range,
  // until it returns false (then Ok).
  Status Export(const ExportQuery& q, const std::function<bool(const ExportRow&)>& emit);

  // Tests (tsdb/store_testing.h): caps the memory of one chunk of keys.
  void SetChunkBytes(size_t bytes) { chunk_bytes_.store(bytes); }

 private:
  const ReadGate& gate_;
  const Catalog& catalog_;
  // See config::kDefaultExportChunkBytes; tests lower it to exercise chunking.
  std::atomic<size_t> chunk_bytes_{config::kDefaultExportChunkBytes};
};

}  // namespace stickmeter::tsdb
