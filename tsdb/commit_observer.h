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
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/sink.h"

namespace stickmeter::tsdb {

struct CommittedDelta {
  std::shared_ptr<const ingest::TableInfo> table;
  std::string key;
  std::string source;       // the HAProxy node
  std::string_view metric;  // ingest's static storage
  uint64_t delta = 0;
  int64_t t_ms = 0;  // when the update was received (the time the audit trail shows)
};

struct CommittedGroup {
  std::vector<CommittedDelta> deltas;
  // Every batch that touched an observed table or restarted its source, in commit order.
  std::vector<ingest::UpdateBatch> batches;
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
