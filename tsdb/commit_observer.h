// The seam through which the store tells another component what it has durably committed.
//
// After each group commit the store hands an observer the non-zero deltas of the tables it
// observes, and the update batches that touched those tables (whole, raw values included), in
// commit order: exactly what is billed, once, and only once it is durable. The teacher uses it
// to keep quota usage and cluster-wide sums without reading the store on every update.
//
// Thread-safety: Observes() is called on the store's writer thread, OnCommitted() on its
// committer thread; neither may call back into the store.
// Ownership: the observer is borrowed and must outlive the store's Close().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ingest/sink.h"

namespace stickmeter::tsdb {

// One non-zero delta, pointing into the group's batches rather than copying them: at full
// speed a group carries millions of deltas, and copying each one's key and source on the
// writer thread cost more than computing it.
struct CommittedDelta {
  uint32_t batch = 0;  // CommittedGroup::batches[batch]
  uint32_t table = 0;  // its tables[table]
  uint32_t entry = 0;  // that table's entries[entry]
  uint32_t value = 0;  // that entry's values[value] (the metric and the absolute value)
  uint32_t key = 0;    // the entry's key id, as in CommittedGroup::entry_keys
  uint64_t delta = 0;
};

struct CommittedGroup {
  // Every batch that touched an observed table or restarted its source, in commit order.
  std::vector<ingest::UpdateBatch> batches;
  std::vector<CommittedDelta> deltas;
  // The store's id of each entry's key, for every entry of every table update that has a table
  // (TableUpdates::table set), in the order of `batches`: ids are unique per (table, key), never
  // reused, and small (numbered from 1 as keys are first seen), so an observer can index its own
  // per-key state by them instead of hashing the key's text for each update.
  std::vector<uint32_t> entry_keys;

  const ingest::UpdateBatch& batch_of(const CommittedDelta& d) const { return batches[d.batch]; }
  const ingest::TableUpdates& table_of(const CommittedDelta& d) const {
    return batches[d.batch].tables[d.table];
  }
  // Its key, and received_ms: the delta's time (the time the audit trail shows).
  const ingest::EntryUpdate& entry_of(const CommittedDelta& d) const {
    return table_of(d).entries[d.entry];
  }
  const ingest::MetricValue& value_of(const CommittedDelta& d) const {
    return entry_of(d).values[d.value];
  }
};

class CommitObserver {
 public:
  virtual ~CommitObserver() = default;
  // Whether the table of this name is observed. Asked once per table and store life: the answer
  // must not change.
  virtual bool Observes(const std::string& table) const = 0;
  // A group is durable; called before its batches are acknowledged to the peers. Must return
  // quickly: hand the work to another thread.
  virtual void OnCommitted(CommittedGroup group) = 0;
};

}  // namespace stickmeter::tsdb
