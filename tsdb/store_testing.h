// Knobs of the store's internals for tests only; nothing outside tests/ includes this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "tsdb/store.h"

namespace stickmeter::tsdb::testing_internal {

// Caps the memory of one export chunk (totals, key text and bookkeeping; default 32 MiB), so a
// test can make an export take many chunks. A chunk always holds at least one key. `store`
// must come from Store::Open or Store::OpenReadOnly; call it before querying.
void SetExportChunkBytes(Store& store, size_t bytes);

// How usage over every key is shared out between threads: up to `threads` (the query's own
// included; StoreOptions::scan_threads), each reading interleaved blocks of `block_keys` key ids,
// once the store holds at least `min_keys` key ids. Lets a test share out a few keys between
// several threads. `store` must come from Store::Open or Store::OpenReadOnly; call it before
// querying.
void SetScanSharing(Store& store, uint32_t threads, uint32_t block_keys, uint32_t min_keys);

// Stops the store's applier for good: committed groups stay journal rows, as an unclean stop in
// the middle of writing them out would leave them. The store can then only be killed or closed
// (Close returns without writing them out; the next Open does). `store` must come from
// Store::Open.
void HoldJournal(Store& store);

// Lets the applier write `batches` more WriteBatches, then stops it as HoldJournal does, in the
// middle of a pass if that is where it is: some partitions of the pass's journal rows are then
// written out (and marked so) while the rows are still there, as a crash there would leave them.
// `store` must come from Store::Open.
void StopApplierAfter(Store& store, int batches);

// Whether a group commits its state and rollups as journal rows (written out by the applier) or
// writes them directly, after the applier has written out every older journal row. kAuto, the
// default, journals while series recur from group to group. `store` must come from Store::Open.
enum class JournalMode { kAuto, kAlways, kNever };
void SetJournalMode(Store& store, JournalMode mode);

// Named points of the store's threads where a test may act (StoreOptions::test_hooks). Each runs
// on the store's thread at that point, with no store lock held, and must not call the store.
// Failures themselves come from the file system (StoreOptions::env over
// tests/support/faulty_file_system.h), as a failing disk's would.
struct StoreTestHooks {
  // The writer has built a group and is about to hand it to the committer (which may still be
  // writing the one before).
  std::function<void()> handing_over;
};

}  // namespace stickmeter::tsdb::testing_internal
