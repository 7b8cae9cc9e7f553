#include "tsdb/store_metrics.h"

#include <rocksdb/db.h>

#include <charconv>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/thread_annotations.h"

namespace stickmeter::tsdb {

struct StoreSizeMetrics::State {
  Mutex mu;
  rocksdb::DB* db GUARDED_BY(mu) = nullptr;  // null while detached
  std::vector<rocksdb::ColumnFamilyHandle*> cfs GUARDED_BY(mu);
};

namespace {

void AppendHeader(std::string& out, std::string_view name, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" gauge\n");
}

// A family's RocksDB `property` as a number, 0 if RocksDB has no such value. Some properties
// are numbers only as text ("rocksdb.num-files-at-level<N>"): GetIntProperty knows only those
// it keeps as integers, and fails on the others.
uint64_t ReadCount(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const char* property) {
  uint64_t v = 0;
  if (db->GetIntProperty(cf, property, &v)) return v;
  std::string text;
  if (!db->GetProperty(cf, property, &text)) return 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() ? v : 0;
}

// A gauge with a sample per column family, each read from the family's RocksDB `property`.
void AppendPerFamily(std::string& out, rocksdb::DB* db,
                     const std::vector<rocksdb::ColumnFamilyHandle*>& cfs, std::string_view name,
                     std::string_view help, const char* property) {
  AppendHeader(out, name, help);
  for (size_t i = 0; i < cfs.size(); ++i) {
    if (cfs[i] == nullptr) continue;  // not in a store of format version 1 open read-only
    const uint64_t v = ReadCount(db, cfs[i], property);
    out.append(name).append("{cf=\"").append(kCfNames[i]).append("\"} ");
    out.append(std::to_string(v)).append("\n");
  }
}

// A gauge of the whole store.
void AppendStoreWide(std::string& out, std::string_view name, std::string_view help, uint64_t v) {
  AppendHeader(out, name, help);
  out.append(name).append(" ").append(std::to_string(v)).append("\n");
}

}  // namespace

StoreSizeMetrics::StoreSizeMetrics(MetricsRegistry& metrics) : state_(std::make_shared<State>()) {
  std::weak_ptr<State> weak = state_;
  metrics.AddCollector([weak](std::string& out) {
    auto state = weak.lock();
    if (!state) return;
    MutexLock lock(&state->mu);
    if (state->db == nullptr) return;
    rocksdb::DB* db = state->db;
    AppendPerFamily(out, db, state->cfs, "stickmeter_store_live_sst_bytes",
                    "Size of the live SST files per column family", "rocksdb.live-sst-files-size");
    // RocksDB slows, then stops, writes when level 0 holds too many files or compactions fall
    // too far behind: both show here before they show in the commit latency.
    AppendPerFamily(out, db, state->cfs, "stickmeter_store_level0_files",
                    "SST files in level 0 per column family", "rocksdb.num-files-at-level0");
    // Kept per family, summed; the running compactions are the whole database's.
    uint64_t pending = 0, running = 0, memtables = 0;
    db->GetAggregatedIntProperty("rocksdb.estimate-pending-compaction-bytes", &pending);
    db->GetIntProperty("rocksdb.num-running-compactions", &running);
    db->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &memtables);
    AppendStoreWide(out, "stickmeter_store_pending_compaction_bytes",
                    "Bytes RocksDB estimates its compactions still have to rewrite", pending);
    AppendStoreWide(out, "stickmeter_store_running_compactions", "Compactions running now",
                    running);
    AppendStoreWide(out, "stickmeter_store_memtable_bytes", "Size of the RocksDB memtables",
                    memtables);
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
