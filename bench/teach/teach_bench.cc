// Teaching's CPU cost per update, on one thread, without a store or sockets.
//
// BM_TeachWindow/<keys>/<updates per window>: the work the teacher does for updates of a table
// taught with `--aggregate` and `--quota` (a default quota of gpc0 over every key), as at full
// speed: each update is applied to the aggregator and its three counters' deltas to the quota
// book; after each window both flush into the taught tables, and three peers' cursors collect
// (encode) what changed, as three sessions would. Items are updates.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "billing/calendar.h"
#include "ingest/taught_tables.h"
#include "teach/aggregator.h"
#include "teach/quota_book.h"

namespace stickmeter::teach {
namespace {

constexpr int64_t kStartMs = 1'781'481'600'000;  // 2026-06-15T00:00Z
constexpr int kPeers = 3;

std::shared_ptr<const ingest::TableInfo> LoadgenTable() {
  auto t = std::make_shared<ingest::TableInfo>();
  t->name = "/loadgen";
  t->key_type = "string";
  t->key_size = 32;
  t->expire_ms = 600'000;
  t->data_types = {"gpc0", "http_req_cnt", "bytes_out_cnt"};
  t->periods_ms = {0, 0, 0};
  t->array_sizes = {0, 0, 0};
  return t;
}

void BM_TeachWindow(benchmark::State& state) {
  const auto keys = static_cast<size_t>(state.range(0));
  const auto window = static_cast<size_t>(state.range(1));
  ingest::TaughtTables taught({"/loadgen.aggregate", "/loadgen.quota"});
  Aggregator aggregator("/loadgen", "/loadgen.aggregate");
  QuotaBook book("/loadgen", "/loadgen.quota");
  const auto table = LoadgenTable();
  if (auto def = aggregator.Layout(table, kStartMs)) taught.Define(*def);
  if (auto def = book.SetLayout(table->key_type, table->key_size, table->expire_ms)) {
    taught.Define(*def);
  }
  const auto* utc = *billing::LocateZone("UTC");
  Quota quota{"/loadgen", std::nullopt, "gpc0", 1'000'000'000'000, Period::kMonth, "UTC"};
  if (auto base = book.Put(quota, utc, kStartMs)) book.SetBase(base->tracker, {});

  std::vector<ingest::EntryUpdate> updates(keys);
  for (size_t k = 0; k < keys; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "tenant-%07zu", k);
    updates[k].key = name;
    updates[k].values = {{"gpc0", ingest::MetricKind::kCounter32, 0},
                         {"http_req_cnt", ingest::MetricKind::kCounter32, 0},
                         {"bytes_out_cnt", ingest::MetricKind::kCounter64, 0}};
  }
  std::vector<ingest::TaughtTables::Cursor> cursors(kPeers * taught.table_count());
  std::vector<uint64_t> selected(kPeers, 0);
  std::string out;
  size_t next = 0;
  int64_t now = kStartMs;
  // One window, or a pass over every key first (untimed): the steady state is measured, not
  // the first sight of each key.
  auto run_window = [&](size_t count) {
    for (size_t i = 0; i < count; ++i) {
      const size_t k = next++ % keys;
      ingest::EntryUpdate& u = updates[k];
      u.received_ms = now;
      for (auto& v : u.values) ++v.value;
      const auto key_id = static_cast<uint32_t>(k + 1);
      aggregator.Apply("lb1", u, key_id);
      for (const auto& v : u.values) book.Apply(u.key, v.metric, 1, now, key_id);
    }
    now += 20;
    aggregator.Flush(now, taught);
    book.Flush(now, taught);
    for (int p = 0; p < kPeers; ++p) {
      for (size_t t = 0; t < taught.table_count(); ++t) {
        auto& cursor = cursors[static_cast<size_t>(p) * taught.table_count() + t];
        while (taught.Collect(t, cursor, 512, out, &selected[static_cast<size_t>(p)]).messages) {
          out.clear();
        }
      }
    }
  };
  run_window(keys);
  for (auto _ : state) run_window(window);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * window));
}
// 10k keys as in the end-to-end teaching benchmark; a window of 24k updates is 20 ms at 1.2 M
// updates/s, 2k is 20 ms at 100k/s.
BENCHMARK(BM_TeachWindow)->Args({10'000, 24'000})->Args({10'000, 2'000})->Args({100'000, 24'000});

}  // namespace
}  // namespace stickmeter::teach

BENCHMARK_MAIN();
