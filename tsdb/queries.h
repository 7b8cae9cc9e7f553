// QueryEngine: the queries of QueryService (tsdb/query.h) but Export (tsdb/export_scan.h):
// usage totals, series, audit events, tables, keys and the store's figures. Each holds the DB
// open through the ReadGate, resolves the table, opens one ReadView and plans its scans
// (tsdb/scans.h) over the segments of tsdb/query_plan.h.
//
// Thread-safety: every method from any thread, concurrently with each other and with the
// writer; a query reads one consistent view (ReadView). Nothing is locked but the gate's lock,
// shared, and the catalog's leaf locks.
// Ownership: owned by StoreImpl; borrows the gate, the catalog and the writer's latest receive
// time, all of which outlive it, and keeps no state between queries.
// Failure: as QueryService says: InvalidArgument for a bad query (naming the parameter),
// NotFound for an unknown table or metric, Unavailable while the store is closed or reopening,
// IoError or Corruption from the store.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tsdb/catalog.h"
#include "tsdb/config.h"
#include "tsdb/every_key.h"
#include "tsdb/gauge_points.h"
#include "tsdb/query.h"
#include "tsdb/read_view.h"

namespace stickmeter::tsdb {

class QueryEngine {
 public:
  // `latest_received_ms`: the latest receive time of anything handed to the writer, never
  // behind the data a view can see (a range ending after it has nothing more in its last
  // minute).
  // `scan_threads`: StoreOptions::scan_threads.
  QueryEngine(const ReadGate& gate, const Catalog& catalog,
              const std::atomic<int64_t>& latest_received_ms, size_t scan_threads)
      : gate_(gate),
        catalog_(catalog),
        latest_received_ms_(latest_received_ms),
        scan_budget_(
            static_cast<uint32_t>(std::clamp<size_t>(scan_threads, 1, config::kMaxScanThreads))) {}

  // How usage over every key is shared out between threads (tsdb/config.h: kMinKeysToShare);
  // the threads come from the budget. Tests set others before querying
  // (testing_internal::SetScanSharing).
  struct ScanSharing {
    uint32_t min_keys = config::kMinKeysToShare;
    uint32_t block_keys = config::kScanBlockKeys;
  };
  void SetScanSharing(const ScanSharing& sharing, uint32_t threads) {
    scan_ = sharing;
    scan_budget_.SetLimit(threads);
  }

  Result<std::vector<UsageRow>> Usage(const UsageQuery& q);
  Status ForEachUsage(const UsageQuery& q, const QueryService::UsageVisitor& visit);
  Result<Series> GetSeries(const SeriesQuery& q);
  Result<std::vector<AuditEvent>> Audit(const AuditQuery& q);
  Result<std::vector<TableSummary>> Tables();
  Result<std::vector<std::string>> Keys(const std::string& table, const std::string& prefix,
                                        size_t limit);
  Result<std::vector<std::string>> KeysAfter(const std::string& table, const std::string& prefix,
                                             const std::string& after, size_t limit);
  // `counted`: the writer's figures (live series, deltas written, updates received); adds the
  // table count and the size on disk.
  Result<StoreStats> Stats(StoreStats counted);

 private:
  // What a query of one table does first: checks that `hold` has the DB open and resolves the
  // table's name to its id (*id).
  Status Begin(const ReadGate::Hold& hold, const std::string& table, uint32_t* id) const;
  // ForEachUsage of a gauge: each key's value over the range as `read` says.
  Status GaugeOfEveryKey(const ReadGate::Hold& hold, const GaugeRead& read,
                         std::optional<uint32_t> only_key, const QueryService::UsageVisitor& visit);
  // The threads an every-key query over `ids` key ids may read with, from the budget.
  ScanBudget::Hold ScanThreads(size_t ids) {
    return ScanBudget::Hold(scan_budget_, ids >= scan_.min_keys ? config::kMaxScanThreads : 1);
  }
  // GetSeries without a key: every key of the table summed (counters only).
  Result<Series> TableSeries(const ReadGate::Hold& hold, uint32_t table, uint32_t metric,
                             const SeriesQuery& q, Series out);

  const ReadGate& gate_;
  const Catalog& catalog_;
  const std::atomic<int64_t>& latest_received_ms_;
  ScanSharing scan_;
  ScanBudget scan_budget_;
};

}  // namespace stickmeter::tsdb
