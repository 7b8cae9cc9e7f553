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

// Lets `writes` more group commits be written, then fails every later one as a failing disk
// would (an I/O error naming the injection), without writing it, and the store's attempts to
// recover fail too, until FailCommitsAfter(store, -1) ends the failure. With `on_failing`, the
// first failing write is slow: it calls `on_failing` (on the committer thread, as it begins)
// and fails only once the writer has built the next group on top of its state (or after 5 s).
// `store` must come from Store::Open.
void FailCommitsAfter(Store& store, int64_t writes, std::function<void()> on_failing = {});

}  // namespace stickmeter::tsdb::testing_internal
