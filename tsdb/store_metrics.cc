#include "tsdb/store_metrics.h"

#include <rocksdb/db.h>

#include <iterator>
#include <string>
#include <vector>

#include "common/thread_annotations.h"

namespace stickmeter::tsdb {

struct StoreSizeMetrics::State {
  Mutex mu;
  rocksdb::DB* db GUARDED_BY(mu) = nullptr;  // null while detached
  std::vector<rocksdb::ColumnFamilyHandle*> cfs GUARDED_BY(mu);
};

StoreSizeMetrics::StoreSizeMetrics(MetricsRegistry& metrics) : state_(std::make_shared<State>()) {
  std::weak_ptr<State> weak = state_;
  metrics.AddCollector([weak](std::string& out) {
    auto state = weak.lock();
    if (!state) return;
    MutexLock lock(&state->mu);
    if (state->db == nullptr) return;
    out += "# HELP stickmeter_store_live_sst_bytes Size of the live SST files per column family\n";
    out += "# TYPE stickmeter_store_live_sst_bytes gauge\n";
    for (size_t i = 0; i < state->cfs.size(); ++i) {
      uint64_t v = 0;
      state->db->GetIntProperty(state->cfs[i], "rocksdb.live-sst-files-size", &v);
      out += "stickmeter_store_live_sst_bytes{cf=\"" + std::string(kCfNames[i]) + "\"} " +
             std::to_string(v) + "\n";
    }
    // RocksDB slows, then stops, writes when level 0 holds too many files or compactions fall
    // too far behind: both show here before they show in the commit latency.
    out += "# HELP stickmeter_store_level0_files SST files in level 0 per column family\n";
    out += "# TYPE stickmeter_store_level0_files gauge\n";
    for (size_t i = 0; i < state->cfs.size(); ++i) {
      uint64_t v = 0;
      state->db->GetIntProperty(state->cfs[i], "rocksdb.num-files-at-level0", &v);
      out += "stickmeter_store_level0_files{cf=\"" + std::string(kCfNames[i]) + "\"} " +
             std::to_string(v) + "\n";
    }
    uint64_t pending = 0, running = 0;
    state->db->GetAggregatedIntProperty("rocksdb.estimate-pending-compaction-bytes", &pending);
    state->db->GetIntProperty("rocksdb.num-running-compactions", &running);
    out +=
        "# HELP stickmeter_store_pending_compaction_bytes Bytes RocksDB estimates its "
        "compactions still have to rewrite\n";
    out += "# TYPE stickmeter_store_pending_compaction_bytes gauge\n";
    out += "stickmeter_store_pending_compaction_bytes " + std::to_string(pending) + "\n";
    out += "# HELP stickmeter_store_running_compactions Compactions running now\n";
    out += "# TYPE stickmeter_store_running_compactions gauge\n";
    out += "stickmeter_store_running_compactions " + std::to_string(running) + "\n";
    uint64_t mem = 0;
    state->db->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &mem);
    out += "# HELP stickmeter_store_memtable_bytes Size of the RocksDB memtables\n";
    out += "# TYPE stickmeter_store_memtable_bytes gauge\n";
    out += "stickmeter_store_memtable_bytes " + std::to_string(mem) + "\n";
  });
}

void StoreSizeMetrics::Attach(const DbHandle& db) {
  MutexLock lock(&state_->mu);
  state_->db = db.db();
  state_->cfs = db.cfs();
}

void StoreSizeMetrics::Detach() {
  MutexLock lock(&state_->mu);
  state_->db = nullptr;
  state_->cfs.clear();
}

}  // namespace stickmeter::tsdb
