// Knobs of the store's internals for tests only; nothing outside tests/ includes this.
#pragma once

#include <cstddef>

#include "tsdb/store.h"

namespace stickmeter::tsdb::testing_internal {

// Caps the memory of one export chunk (totals, key text and bookkeeping; default 32 MiB), so a
// test can make an export take many chunks. A chunk always holds at least one key. `store`
// must come from Store::Open or Store::OpenReadOnly; call it before querying.
void SetExportChunkBytes(Store& store, size_t bytes);

// Stops the store's applier for good: committed groups stay journal rows, as an unclean stop in
// the middle of writing them out would leave them. The store can then only be killed or closed
// (Close returns without writing them out; the next Open does). `store` must come from
// Store::Open.
void HoldJournal(Store& store);

// Groups whose journal would exceed `bytes` (default 32 MiB) write their state and rollups
// directly, after the applier has written out every older journal row; 0 makes every group do
// so. `store` must come from Store::Open.
void SetJournalGroupLimit(Store& store, size_t bytes);

}  // namespace stickmeter::tsdb::testing_internal
