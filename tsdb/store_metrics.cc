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
