// The writer's per-key maps as they fill with first-seen keys: the longest single insertion is
// how long the writer stops (and acknowledgements wait) while a map grows.
//   tsdb_bench --benchmark_filter=KeyMapGrowth (see docs/performance.md, section Storage)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tsdb/incremental_hash_map.h"

namespace stickmeter::tsdb {
namespace {

// About the size of the store's in-memory entry state (a vector of series and a few fields).
struct EntryLike {
  std::vector<uint64_t> series;
  uint64_t fields[3] = {};
};

template <class Map, class Insert>
void KeyMapGrowth(benchmark::State& state, Insert insert) {
  const auto keys = static_cast<uint64_t>(state.range(0));
  double longest_us = 0, total_s = 0;
  for (auto _ : state) {
    Map map;
    const auto start = std::chrono::steady_clock::now();
    auto last = start;
    for (uint64_t k = 0; k < keys; ++k) {
      insert(map, k * 0x9E3779B97F4A7C15ull);
      const auto now = std::chrono::steady_clock::now();
      longest_us =
          std::max(longest_us, std::chrono::duration<double, std::micro>(now - last).count());
      last = now;
    }
    total_s += std::chrono::duration<double>(last - start).count();
    benchmark::DoNotOptimize(map);
  }
  state.counters["longest_insert_us"] = longest_us;
  state.counters["ns_per_insert"] =
      1e9 * total_s / static_cast<double>(keys * static_cast<uint64_t>(state.iterations()));
}

// 100k and 1M first-seen keys, three fresh maps each.
void KeyCounts(benchmark::internal::Benchmark* b) {
  b->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->Iterations(3);
}

void BM_KeyMapGrowthStdUnorderedMap(benchmark::State& state) {
  KeyMapGrowth<std::unordered_map<uint64_t, EntryLike>>(
      state, [](auto& map, uint64_t key) { map.try_emplace(key); });
}
BENCHMARK(BM_KeyMapGrowthStdUnorderedMap)->Apply(KeyCounts);

void BM_KeyMapGrowthIncremental(benchmark::State& state) {
  KeyMapGrowth<IncrementalHashMap<uint64_t, EntryLike>>(
      state, [](auto& map, uint64_t key) { map.TryEmplace(key); });
}
BENCHMARK(BM_KeyMapGrowthIncremental)->Apply(KeyCounts);

}  // namespace
}  // namespace stickmeter::tsdb
