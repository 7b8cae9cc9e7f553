// Storage benchmarks: durable ingest, series and usage query latency, bytes on disk per audit
// event, memory per live series. Each builds its own store in a temporary directory.
//   tsdb_bench --benchmark_filter=... (see docs/performance.md, section Storage)
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "tsdb/config.h"
#include "tsdb/format.h"
#include "tsdb/merge_operators.h"
#include "tsdb/store.h"
#include "tsdb/store_testing.h"

namespace stickmeter::tsdb {
namespace {

constexpr int64_t kT0 = 1'790'812'800'000;  // 2026-10-01T00:00:00Z
constexpr int64_t kDay = 86'400'000;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tsdb-bench-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_ + "/db"; }

 private:
  std::string path_;
};

std::shared_ptr<const ingest::TableInfo> Table() {
  auto t = std::make_shared<ingest::TableInfo>();
  t->name = "/quota";
  t->key_type = "string";
  t->key_size = 33;
  t->data_types = {"gpc0", "http_req_cnt", "bytes_out_cnt"};
  return t;
}

// Submits, retrying while the queue is full.
void SubmitAll(Store& store, std::vector<ingest::UpdateBatch>& batches) {
  for (auto& b : batches) {
    while (!store.Submit(std::move(b), nullptr).ok()) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  batches.clear();
}

// `keys` keys x 3 counters, every key incremented once per round, 100 entries per batch.
std::vector<ingest::UpdateBatch> Rounds(int keys, int first_round, int rounds, int64_t t0,
                                        int64_t round_ms, bool gpc_only = false,
                                        int key_offset = 0) {
  static const auto table = Table();
  std::vector<ingest::UpdateBatch> out;
  for (int r = first_round; r < first_round + rounds; ++r) {
    for (int k0 = key_offset; k0 < key_offset + keys; k0 += 100) {
      ingest::UpdateBatch b;
      b.source = "lb1";
      b.connection_id = 1;
      ingest::TableUpdates tu;
      tu.table = table;
      for (int k = k0; k < std::min(key_offset + keys, k0 + 100); ++k) {
        ingest::EntryUpdate e;
        e.key = "customer-" + std::to_string(k);
        e.received_ms = t0 + int64_t{r} * round_ms + k % 1000;
        const uint64_t n = uint64_t(r + 1) * (1 + k % 13);
        e.values.push_back({"gpc0", ingest::MetricKind::kCounter32, n});
        if (!gpc_only) {
          e.values.push_back({"http_req_cnt", ingest::MetricKind::kCounter32, n * 3});
          e.values.push_back({"bytes_out_cnt", ingest::MetricKind::kCounter64, n * 1500});
        }
        tu.entries.push_back(std::move(e));
      }
      b.tables.push_back(std::move(tu));
      out.push_back(std::move(b));
    }
  }
  return out;
}

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double RssMiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

uint64_t CfBytes(const std::string& cf) {
  const std::string text = MetricsRegistry::Global().RenderPrometheus();
  const std::string needle = "stickmeter_store_live_sst_bytes{cf=\"" + cf + "\"} ";
  uint64_t v = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    v = std::stoull(text.substr(pos + needle.size()));  // the last registered store wins
  }
  return v;
}

// Sustained durable ingest with the audit trail: 10,000 keys x 3 counters, fsync per group
// commit. Reports updates (counter values) per second, end to end including the final commit.
void BM_SustainedIngest(benchmark::State& state) {
  TempDir dir;
  StoreOptions o;
  o.path = dir.path();
  o.sync_writes = true;
  auto store = std::move(Store::Open(o)).value();
  constexpr int kKeys = 10'000;
  constexpr int kRounds = 40;  // 1.2 M updates
  int round = 0;
  uint64_t updates = 0;
  double cpu = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto batches = Rounds(kKeys, round, kRounds, kT0, 1000);
    round += kRounds;
    state.ResumeTiming();
    const double cpu0 = ProcessCpuSeconds();
    SubmitAll(*store, batches);
    store->Flush();
    cpu += ProcessCpuSeconds() - cpu0;
    updates += uint64_t{kKeys} * 3 * kRounds;
  }
  state.counters["updates_per_s"] =
      benchmark::Counter(static_cast<double>(updates), benchmark::Counter::kIsRate);
  // All threads of the process (writer, submitter, RocksDB flush and compaction): what one
  // core sustains when the machine is not shared.
  state.counters["updates_per_cpu_s"] = static_cast<double>(updates) / cpu;
  (void)store->Close();
}
BENCHMARK(BM_SustainedIngest)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// One key, 31 days at one update per minute, queried with step 1h.
void BM_SeriesOneKey31DaysStep1h(benchmark::State& state) {
  TempDir dir;
  StoreOptions o;
  o.path = dir.path();
  o.sync_writes = false;
  auto store = std::move(Store::Open(o)).value();
  constexpr int kMinutes = 31 * 1440;
  for (int m0 = 0; m0 < kMinutes; m0 += 1440) {
    auto batches = Rounds(1, m0, 1440, kT0, 60'000);
    SubmitAll(*store, batches);
  }
  store->Flush();
  (void)store->CompactAll();
  std::vector<double> lat;
  const SeriesQuery q{"/quota",        "gpc0",    "customer-0", kT0,
                      kT0 + 31 * kDay, 3'600'000, std::nullopt};
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto s = store->GetSeries(q);
    lat.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
    if (!s.ok() || s->points.size() != 31 * 24) state.SkipWithError("wrong series");
  }
  std::sort(lat.begin(), lat.end());
  state.counters["p50_us"] = lat[lat.size() / 2];
  state.counters["p99_us"] = lat[lat.size() * 99 / 100];
}
BENCHMARK(BM_SeriesOneKey31DaysStep1h)->Unit(benchmark::kMicrosecond)->Iterations(2000);

// Usage totals of 100,000 keys over one month (each key updated every day).
void BM_Usage100kKeysOneMonth(benchmark::State& state) {
  TempDir dir;
  StoreOptions o;
  o.path = dir.path();
  o.sync_writes = false;
  auto store = std::move(Store::Open(o)).value();
  constexpr int kKeys = 100'000;
  for (int d = 0; d < 31; ++d) {
    for (int k = 0; k < kKeys; k += 10'000) {
      auto batches = Rounds(10'000, d, 1, kT0 + 3'600'000, kDay, /*gpc_only=*/true, k);
      SubmitAll(*store, batches);
    }
  }
  store->Flush();
  (void)store->CompactAll();
  const UsageQuery q{"/quota", "gpc0", kT0, kT0 + 31 * kDay, std::nullopt, std::nullopt};
  for (auto _ : state) {
    auto rows = store->Usage(q);
    if (!rows.ok() || rows->size() != size_t{kKeys}) state.SkipWithError("wrong usage");
  }
}
BENCHMARK(BM_Usage100kKeysOneMonth)->Unit(benchmark::kMillisecond)->Iterations(5);

// Usage of every key, in two shapes of data (one store per key count and shape, kept for every
// mode):
// - shape 0, "daily": each key updated once a day for 8 days, so that every key has a row per day
//   in the audit trail and in each rollup: the most rows an every-key query walks past;
// - shape 1, "burst": each key updated once a minute for 5 minutes on day 10 (as after a load
//   test or a short busy spell): a row or two per key in each family.
// Modes: 0 whole days; 1 both edges inside minutes in which every key has an update (each key's
// audit events are read at both edges: the worst case); 2 both edges inside minutes without
// updates, the end after the latest update (a "so far" range: rollups only).
// Threads: 1, or 2 (the keys shared out between the query's thread and one more, as on a 2-core
// machine by default). Timed in real time: the query's thread waits for the other.
void BM_UsageEveryKey(benchmark::State& state) {
  const int keys = static_cast<int>(state.range(0));
  const int shape = static_cast<int>(state.range(1));
  const int mode = static_cast<int>(state.range(2));
  const auto threads = static_cast<uint32_t>(state.range(3));
  constexpr int kDays = 8;
  constexpr int64_t kBurst = kT0 + 10 * kDay + 3 * 3'600'000;  // day 10, 03:00
  static std::map<std::pair<int, int>, std::pair<std::unique_ptr<TempDir>, std::unique_ptr<Store>>>
      stores;
  auto& [dir, store] = stores[{keys, shape}];
  if (!store) {
    dir = std::make_unique<TempDir>();
    StoreOptions o;
    o.path = dir->path();
    o.sync_writes = false;
    store = std::move(Store::Open(o)).value();
    for (int k = 0; k < keys; k += 10'000) {
      const int n = std::min(10'000, keys - k);
      for (int d = 0; d < (shape == 0 ? kDays : 1); ++d) {
        auto batches = shape == 0 ? Rounds(n, d, 1, kT0 + 3'600'000, kDay, /*gpc_only=*/true, k)
                                  : Rounds(n, 0, 5, kBurst, 60'000, /*gpc_only=*/true, k);
        SubmitAll(*store, batches);
      }
    }
    store->Flush();
    (void)store->CompactAll();
  }
  // Each update lies in the first second of its minute (+0..999 ms).
  const int64_t first = shape == 0 ? kT0 + 3'600'000 : kBurst;
  const int64_t last = shape == 0 ? kT0 + (kDays - 1) * kDay + 3'600'000 : kBurst + 4 * 60'000;
  UsageQuery q{"/quota", "gpc0", kT0, kT0 + 31 * kDay, std::nullopt, std::nullopt};
  if (mode == 1) {
    q.from_ms = first + 500;
    q.to_ms = last + 700;
  } else if (mode == 2) {
    q.from_ms = kT0 + 17'000;
    q.to_ms = last + 120'000 + 17'000;
  }
  testing_internal::SetScanSharing(*store, threads, config::kScanBlockKeys,
                                   config::kMinKeysToShare);
  for (auto _ : state) {
    auto rows = store->Usage(q);
    if (!rows.ok() || rows->size() != size_t(keys)) state.SkipWithError("wrong usage");
  }
  if (mode == 2 && threads == 2) {  // its last use: closed before the process's static objects go
    store.reset();
    dir.reset();
  }
}
BENCHMARK(BM_UsageEveryKey)
    ->ArgsProduct({{10'000, 200'000, 1'000'000}, {0, 1}, {0, 1, 2}, {1, 2}})
    ->ArgNames({"keys", "shape", "mode", "threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// Makes the closed store at `path` one of format version 1, as a build before the every-key
// rollups left it: without their column families, version 1 recorded.
void MakeFormat1(const std::string& path) {
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok()) std::abort();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) {
    rocksdb::ColumnFamilyOptions c;
    if (n == format::kGaugeCf) {
      c.merge_operator = std::make_shared<GaugeMergeOperator>();
    } else if (n == format::kKeyMinuteCf || n == format::kKeyHourCf || n == format::kKeyDayCf) {
      c.merge_operator = std::make_shared<KeySumsMergeOperator>();
    } else if (n != format::kMetaCf && n != format::kEntriesCf && n != format::kRawCf) {
      c.merge_operator = std::make_shared<SumsAddOperator>();
    }
    cfs.emplace_back(n, c);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(rocksdb::Options(), path, cfs, &handles, &db).ok()) std::abort();
  std::string version;
  format::PutU32BE(version, 1);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == format::kKeyMinuteCf || names[i] == format::kKeyHourCf ||
        names[i] == format::kKeyDayCf) {
      if (!db->DropColumnFamily(handles[i]).ok()) std::abort();
    } else if (names[i] == format::kMetaCf) {
      if (!db->Put(rocksdb::WriteOptions(), handles[i], format::FormatKey(), version).ok()) {
        std::abort();
      }
    }
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
}

// The upgrade from format 1 (building the every-key rollups from the rollups by key) that the
// first open for writing makes: keys x 8 days, one update a day of 3 counters, compacted, so
// keys x 24 rollup rows. Timed: Store::Open of the format 1 store.
void BM_UpgradeFromFormat1(benchmark::State& state) {
  const int keys = static_cast<int>(state.range(0));
  TempDir dir;
  StoreOptions o;
  o.path = dir.path();
  o.sync_writes = false;
  {
    auto store = std::move(Store::Open(o)).value();
    for (int k = 0; k < keys; k += 10'000) {
      for (int d = 0; d < 8; ++d) {
        auto batches =
            Rounds(std::min(10'000, keys - k), d, 1, kT0 + 3'600'000, kDay, /*gpc_only=*/false, k);
        SubmitAll(*store, batches);
      }
    }
    store->Flush();
    (void)store->CompactAll();
  }
  for (auto _ : state) {
    state.PauseTiming();
    MakeFormat1(o.path);
    state.ResumeTiming();
    auto store = Store::Open(o);
    if (!store.ok()) state.SkipWithError("open failed");
    state.PauseTiming();
    store = Status::Internal("closed");
    state.ResumeTiming();
  }
  state.counters["rollup_rows_per_s"] =
      benchmark::Counter(static_cast<double>(keys) * 24 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_UpgradeFromFormat1)
    ->Arg(200'000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2)
    ->UseRealTime();

// Bytes on disk per audit event after a full compaction: ~1.2 M events.
void BM_BytesPerAuditEvent(benchmark::State& state) {
  for (auto _ : state) {
    TempDir dir;
    StoreOptions o;
    o.path = dir.path();
    o.sync_writes = false;
    auto store = std::move(Store::Open(o)).value();
    for (int r = 0; r < 40; r += 10) {
      auto batches = Rounds(10'000, r, 10, kT0, 15'000);
      SubmitAll(*store, batches);
    }
    store->Flush();
    (void)store->CompactAll();
    const auto stats = store->Stats();
    const double events = static_cast<double>(stats->deltas_written);
    state.counters["audit_bytes_per_event"] = static_cast<double>(CfBytes("raw")) / events;
    state.counters["all_bytes_per_event"] = static_cast<double>(stats->disk_bytes) / events;
    state.counters["events"] = events;
    (void)store->Close();
  }
}
BENCHMARK(BM_BytesPerAuditEvent)->Unit(benchmark::kMillisecond)->Iterations(1);

// Resident memory with 1,000,000 live counter series (333,334 keys x 3 counters).
void BM_RssWithOneMillionSeries(benchmark::State& state) {
  for (auto _ : state) {
    TempDir dir;
    const double before = RssMiB();
    StoreOptions o;
    o.path = dir.path();
    o.sync_writes = false;
    auto store = std::move(Store::Open(o)).value();
    for (int k = 0; k < 333'334; k += 10'000) {
      auto batches = Rounds(std::min(10'000, 333'334 - k), 0, 1, kT0, 1000, false, k);
      SubmitAll(*store, batches);
    }
    store->Flush();
    state.counters["rss_mib"] = RssMiB();
    state.counters["rss_growth_mib"] = RssMiB() - before;
    state.counters["live_series"] = static_cast<double>(store->Stats()->live_series);
    (void)store->Close();
    // Reopen: state loaded from disk.
    store = std::move(Store::Open(o)).value();
    state.counters["rss_after_reopen_mib"] = RssMiB();
  }
}
BENCHMARK(BM_RssWithOneMillionSeries)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace stickmeter::tsdb

BENCHMARK_MAIN();
