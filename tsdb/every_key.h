// Reads over every key of a table, shared out between threads: the usage of every key, the
// sub-minute edges that it and a table's series read from the audit trail, and the way both
// share their keys out (stripes of key ids, KeyStripe in tsdb/scans.h).
//
// Thread-safety: a ScanBudget is shared by every query thread (atomic). Each function reads
// through the views it is given. ForEachStripe starts a
// thread per stripe but the first, each with a fork of the caller's view (tsdb/read_view.h), and
// joins them all before it returns; the threads write to vectors the caller owns, each at the key
// ids of its own stripe.
// Ownership: borrows the views and the caller's vectors; keeps no state.
// Failure: the first failure of any stripe (Corruption for a malformed row, or for a key id
// beyond the vectors while shared out; IoError from RocksDB). A thread that cannot be started is
// no failure: the calling thread reads its stripe.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "common/status.h"
#include "tsdb/query.h"
#include "tsdb/query_plan.h"
#include "tsdb/read_view.h"
#include "tsdb/scans.h"

namespace stickmeter::tsdb {

// The threads that read every-key queries at once, bounded: each query counts its own thread
// and takes more only while fewer than the limit are busy, so that queries together never use
// more threads than the limit (StoreOptions::scan_threads), however many run.
class ScanBudget {
 public:
  explicit ScanBudget(uint32_t limit) : limit_(std::max<uint32_t>(limit, 1)) {}
  // Before any query (tests).
  void SetLimit(uint32_t limit) { limit_ = std::max<uint32_t>(limit, 1); }

  // One query's threads: its own, counted whatever the budget, and up to `wanted` - 1 more while
  // it lasts; given back at destruction.
  class Hold {
   public:
    Hold(ScanBudget& budget, uint32_t wanted);
    ~Hold() { budget_.busy_.fetch_sub(count_); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    uint32_t count() const { return count_; }

   private:
    ScanBudget& budget_;
    uint32_t count_ = 1;
  };

 private:
  uint32_t limit_;
  std::atomic<uint32_t> busy_{0};
};

// Adds the sub-minute edges (the raw `segments`) of `metric` to `totals`, of the keys with
// something in the edge's minutes (`edge_active`, per raw segment by key id) only. Reads
// `edge_active` at the ids of `stripe` only: other stripes may be writing theirs meanwhile.
Status AddRawEdges(ReadView& r, uint32_t table, uint32_t metric, std::optional<uint32_t> source,
                   const std::vector<Segment>& segments,
                   std::span<const std::vector<uint64_t>> edge_active,
                   std::vector<uint64_t>& totals, const KeyStripe& stripe = {});

// Runs `scan` over every key, in `threads` stripes of interleaved blocks of `block_keys` ids:
// the first on this thread through `r`, each other on a thread of its own (named, at this
// thread's priority, which it inherits) through a fork of `r`, or here after the first when no
// thread can be had. With one thread, one stripe of every key. Returns the first failure.
Status ForEachStripe(ReadView& r, uint32_t threads, uint32_t block_keys,
                     const std::function<Status(ReadView&, const KeyStripe&)>& scan);

// Visits the usage of every key of `table` with a non-zero total: from the every-key rollups of
// the segments' buckets when the view reads them (ReadView::ReadsByTime; never with `source`),
// else in one pass per rollup family over the table+metric prefix instead of a seek per key;
// then the sub-minute edges per key from raw events. Key ids are dense (`ids` covers every id the
// view holds), so totals by id fit a vector. With `threads` > 1 the keys are shared out in stripes
// (ForEachStripe), which write to the same vectors, at different ids.
Status UsageOfEveryKey(ReadView& r, uint32_t table, uint32_t metric, std::optional<uint32_t> source,
                       const std::vector<Segment>& segments,
                       const std::vector<Segment>& edge_minutes, size_t ids, uint32_t threads,
                       uint32_t block_keys, const QueryService::UsageVisitor& visit);

}  // namespace stickmeter::tsdb
