// Export of one month for 100,000 keys x 3 counters from the real store (RocksDB in a temp
// dir): time per export and the peak RSS growth while exporting, which must stay flat.
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>

#include "bench/http/bench_store.h"
#include "billing/export.h"
#include "billing/time_parse.h"

namespace stickmeter::http {
namespace {

int64_t RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

struct Fixture {
  Fixture() {
    char tmpl[] = "/tmp/http-export-bench-XXXXXX";
    dir = ::mkdtemp(tmpl);
    tsdb::StoreOptions options;
    options.path = dir + "/db";
    options.sync_writes = false;
    store = std::move(tsdb::Store::Open(options)).value();
    // Two updates per key in October 2026 (first value, then an increment).
    Status s = bench::Populate(*store, 100'000, *billing::ParseTime("2026-10-10T00:00:00Z"),
                               2 * 86'400'000, 86'400'000);
    if (!s.ok()) std::abort();
    if (!store->CompactAll().ok()) std::abort();
  }
  ~Fixture() {
    (void)store->Close();
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir;
  std::unique_ptr<tsdb::Store> store;
};

std::unique_ptr<Fixture> fixture;

Fixture& GetFixture() {
  if (!fixture) fixture = std::make_unique<Fixture>();
  return *fixture;
}

void BM_ExportMonth100kKeys(benchmark::State& state) {
  Fixture& f = GetFixture();
  billing::ExportRequest req;
  req.period = "2026-10";
  req.tz = "Europe/Berlin";
  req.format = state.range(0) == 0 ? "csv" : "json";
  req.now_ms = 0;
  size_t bytes = 0, rows = 0;
  int64_t rss_before = RssKb(), rss_peak = rss_before;
  for (auto _ : state) {
    bytes = 0;
    rows = 0;
    std::string sha;
    Status s = billing::WriteExport(
        *f.store, req,
        [&](std::string_view chunk) {
          bytes += chunk.size();
          rows += std::count(chunk.begin(), chunk.end(), '\n');
          rss_peak = std::max(rss_peak, RssKb());
        },
        &sha);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.counters["rows"] = static_cast<double>(rows);
  state.counters["MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["rss_growth_MB"] = static_cast<double>(rss_peak - rss_before) / 1024.0;
}
BENCHMARK(BM_ExportMonth100kKeys)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(5);

// The store's part alone: QueryService::Export with a no-op consumer, to separate the cost of
// reading totals from the cost of formatting and hashing them.
void BM_StoreExportOnly(benchmark::State& state) {
  Fixture& f = GetFixture();
  auto range = billing::ResolveMonth("2026-10", *billing::LocateZone("Europe/Berlin"));
  tsdb::ExportQuery q;
  q.from_ms = range->start_ms;
  q.to_ms = range->end_ms;
  size_t rows = 0;
  for (auto _ : state) {
    rows = 0;
    Status s = f.store->Export(q, [&](const tsdb::ExportRow&) {
      ++rows;
      return true;
    });
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.counters["rows"] = static_cast<double>(rows);
}
BENCHMARK(BM_StoreExportOnly)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace stickmeter::http

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  stickmeter::http::fixture.reset();  // closes the store and removes its temp dir
  return 0;
}
