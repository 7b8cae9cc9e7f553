// Decoder benchmarks on the 1,000,000-update synthetic stream of bench/ingest/gen_stream.h.
//
// Counters: updates/s (items_per_second), bytes/s, and allocs_per_update, counted by the
// replaced global operator new below while the decoder runs in steady state (its table known).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

#include "bench/ingest/gen_stream.h"
#include "ingest/codec.h"
#include "ingest/decode_json.h"
#include "ingest/normalize.h"

// GCC sees malloc/free behind the replaced operators below and warns of a mismatch that does not
// exist: every operator new here allocates with malloc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void* operator new[](size_t size) { return operator new(size); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace stickmeter::ingest {
namespace {

const std::string kStreamPath = STICKMETER_BENCH_STREAM;

const std::vector<uint8_t>& Stream() {
  static const std::vector<uint8_t> bytes = [] {
    // Written to a file too: BM_DecodeCommand reads it as `stickmeter decode FILE` would.
    if (!std::filesystem::exists(kStreamPath)) {
      std::string stream;
      bench::GenStreamOptions options;
      options.updates = 1'000'000;
      bench::GeneratePeersStream(options, stream);
      std::ofstream out(kStreamPath, std::ios::binary);
      out.write(stream.data(), static_cast<std::streamsize>(stream.size()));
      if (!out.flush()) {
        std::fprintf(stderr, "cannot write %s\n", kStreamPath.c_str());
        std::exit(1);
      }
    }
    std::ifstream in(kStreamPath, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
  }();
  return bytes;
}

// Touches every value so nothing is optimized away, as a session's handler would.
class Consumer : public MessageHandler {
 public:
  uint64_t updates = 0;
  uint64_t checksum = 0;
  void OnEntryUpdate(const EntryUpdateView& u) override {
    ++updates;
    checksum += u.update_id + u.key_bytes.size();
    for (const DataValue& v : u.values) checksum += v.u;
  }
};

// The whole stream in one Feed().
void BM_DecodeWhole(benchmark::State& state) {
  const auto& bytes = Stream();
  uint64_t updates = 0;
  for (auto _ : state) {
    Decoder decoder;
    Consumer consumer;
    FeedResult r = decoder.Feed(bytes, consumer);
    if (!r.status.ok() || r.consumed != bytes.size()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(consumer.checksum);
    updates += consumer.updates;
  }
  state.SetItemsProcessed(static_cast<int64_t>(updates));
  state.SetBytesProcessed(static_cast<int64_t>(bytes.size() * state.iterations()));
}
BENCHMARK(BM_DecodeWhole)->Unit(benchmark::kMillisecond);

// As a session feeds it: 64 KiB reads, the unconsumed tail carried over. Allocations are
// counted over the whole run after the first message (the DEFINE) was decoded.
void BM_DecodeChunked(benchmark::State& state) {
  const auto& bytes = Stream();
  const size_t chunk = static_cast<size_t>(state.range(0));
  uint64_t updates = 0, allocs = 0;
  std::vector<uint8_t> buffer;
  buffer.reserve(chunk + 65536 + 16);
  for (auto _ : state) {
    Decoder decoder;
    Consumer consumer;
    size_t pos = 0;
    buffer.clear();
    uint64_t allocs_before = 0;
    bool counting = false;
    while (pos < bytes.size()) {
      const size_t n = std::min(chunk, bytes.size() - pos);
      buffer.insert(buffer.end(), bytes.begin() + static_cast<ptrdiff_t>(pos),
                    bytes.begin() + static_cast<ptrdiff_t>(pos + n));
      pos += n;
      FeedResult r = decoder.Feed(buffer, consumer);
      if (!r.status.ok()) state.SkipWithError("decode failed");
      buffer.erase(buffer.begin(), buffer.begin() + static_cast<ptrdiff_t>(r.consumed));
      if (!counting) {
        counting = true;  // the first chunk saw the DEFINE: steady state from here
        allocs_before = g_allocations.load();
      }
    }
    allocs += g_allocations.load() - allocs_before;
    benchmark::DoNotOptimize(consumer.checksum);
    updates += consumer.updates;
  }
  state.SetItemsProcessed(static_cast<int64_t>(updates));
  state.SetBytesProcessed(static_cast<int64_t>(bytes.size() * state.iterations()));
  state.counters["allocs_per_update"] =
      benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(updates));
}
BENCHMARK(BM_DecodeChunked)->Arg(64 << 10)->Unit(benchmark::kMillisecond);

// Decode plus normalize into the sink's types (keys become std::string: allocations expected).
void BM_DecodeAndNormalize(benchmark::State& state) {
  const auto& bytes = Stream();
  struct Normalizer : MessageHandler {
    TableUpdates batch;
    uint64_t updates = 0;
    void OnEntryUpdate(const EntryUpdateView& u) override {
      AppendEntryUpdate(u, 0, batch);
      if (batch.entries.size() == 4096) batch.entries.clear();
      ++updates;
    }
  };
  uint64_t updates = 0;
  for (auto _ : state) {
    Decoder decoder;
    Normalizer n;
    FeedResult r = decoder.Feed(bytes, n);
    if (!r.status.ok()) state.SkipWithError("decode failed");
    updates += n.updates;
  }
  state.SetItemsProcessed(static_cast<int64_t>(updates));
}
BENCHMARK(BM_DecodeAndNormalize)->Unit(benchmark::kMillisecond);

class NullBuffer : public std::streambuf {
 protected:
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
  int overflow(int c) override { return c; }
};

// `stickmeter decode --summary` and `stickmeter decode` (output discarded) on the file.
void BM_DecodeCommand(benchmark::State& state) {
  const bool summary = state.range(0) != 0;
  const uint64_t updates_per_run = [] {
    Decoder d;
    Consumer c;
    (void)d.Feed(Stream(), c);
    return c.updates;
  }();
  NullBuffer null_buffer;
  std::ostream null_out(&null_buffer);
  for (auto _ : state) {
    if (RunDecodeFile(kStreamPath, null_out, null_out, summary) != 0) {
      state.SkipWithError("decode failed");
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(updates_per_run * state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(Stream().size() * state.iterations()));
}
BENCHMARK(BM_DecodeCommand)->ArgName("summary")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);

// What app/commands.cc does for `stickmeter decode [--summary] FILE`: RunDecode on an ifstream.
void BM_DecodeCommandIfstream(benchmark::State& state) {
  const bool summary = state.range(0) != 0;
  NullBuffer null_buffer;
  std::ostream null_out(&null_buffer);
  for (auto _ : state) {
    std::ifstream in(kStreamPath, std::ios::binary);
    if (RunDecode(in, null_out, summary) != 0) state.SkipWithError("decode failed");
  }
  state.SetItemsProcessed(static_cast<int64_t>(1000000 * state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(Stream().size() * state.iterations()));
}
BENCHMARK(BM_DecodeCommandIfstream)
    ->ArgName("summary")
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace stickmeter::ingest

BENCHMARK_MAIN();
