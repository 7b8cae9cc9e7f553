// Helpers for the tsdb tests: temporary directories, batch builders and synchronous submits.
// Single-threaded use per test.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "ingest/sink.h"
#include "tsdb/store.h"
#include "tsdb/store_testing.h"

namespace stickmeter::tsdb::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tsdb-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::shared_ptr<const ingest::TableInfo> Table(const std::string& name,
                                                      uint64_t expire_ms = 0) {
  auto t = std::make_shared<ingest::TableInfo>();
  t->name = name;
  t->key_type = "string";
  t->key_size = 33;
  t->expire_ms = expire_ms;
  t->data_types = {"gpc0", "http_req_cnt", "bytes_out_cnt", "conn_cur"};
  return t;
}

struct V {
  std::string_view metric;
  uint64_t value;
  ingest::MetricKind kind = ingest::MetricKind::kCounter32;
};

// One batch from `source` on `conn` with one entry.
inline ingest::UpdateBatch Batch(const std::string& source, uint64_t conn,
                                 std::shared_ptr<const ingest::TableInfo> table,
                                 const std::string& key, int64_t t_ms, std::vector<V> values,
                                 bool restarted = false) {
  ingest::UpdateBatch b;
  b.source = source;
  b.connection_id = conn;
  b.source_restarted = restarted;
  b.restart_ms = t_ms;
  ingest::TableUpdates tu;
  tu.table = std::move(table);
  ingest::EntryUpdate e;
  e.key = key;
  e.received_ms = t_ms;
  for (const auto& v : values) e.values.push_back({v.metric, v.kind, v.value});
  tu.entries.push_back(std::move(e));
  b.tables.push_back(std::move(tu));
  return b;
}

// Submits and waits for the commit; returns the done status.
// Submits and waits for the acknowledgement only: the batch may still be in journal rows the
// applier has not written out.
inline Status SubmitAcked(Store& store, ingest::UpdateBatch b) {
  std::promise<Status> p;
  auto f = p.get_future();
  Status s = store.Submit(std::move(b), [&p](Status st) { p.set_value(st); });
  if (!s.ok()) return s;
  return f.get();
}

// Submits, waits for the acknowledgement, then for the applier to have written the batch out
// of the journal (Flush).
inline Status SubmitSync(Store& store, ingest::UpdateBatch b) {
  Status s = SubmitAcked(store, std::move(b));
  if (s.ok()) store.Flush();
  return s;
}

inline std::unique_ptr<Store> OpenOrDie(const StoreOptions& o) {
  auto r = Store::Open(o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

// How a store under test commits (through the journal or directly) and reads every key (on one
// thread, or shared out between three in stripes of two key ids, so that a few keys fill each).
struct StoreWay {
  testing_internal::JournalMode commit;
  uint32_t scan_threads;

  void ApplyTo(Store& store) const {
    testing_internal::SetJournalMode(store, commit);
    testing_internal::SetScanSharing(store, scan_threads, /*block_keys=*/2, /*min_keys=*/0);
  }
  static std::vector<StoreWay> All() {
    using testing_internal::JournalMode;
    return {{JournalMode::kAlways, 1},
            {JournalMode::kNever, 1},
            {JournalMode::kAlways, 3},
            {JournalMode::kNever, 3}};
  }
  static std::string Name(const ::testing::TestParamInfo<StoreWay>& info) {
    return std::string(info.param.commit == testing_internal::JournalMode::kAlways ? "Journalled"
                                                                                   : "Direct") +
           (info.param.scan_threads > 1 ? "SharedOut" : "OneThread");
  }
};

}  // namespace stickmeter::tsdb::testing
