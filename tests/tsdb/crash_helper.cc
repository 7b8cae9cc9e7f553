// tsdb_crash_helper DIR PACE_US [MODE]: ingests the crash stream into the store at DIR through
// Submit, printing "acked N" once batch N is committed, then "done". PACE_US sleeps between
// submits so the stream lasts long enough to be killed in the middle. Without MODE the store
// picks how to commit (the stream's keys never recur, so it writes state and rollups directly).
// MODE "hold": every group is journalled and stays so (testing_internal::HoldJournal), as if
// killed before the journal was written out; "mixed": every 20 batches, groups switch between
// journalling their state and rollups and writing them directly.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "tests/tsdb/crash_stream.h"
#include "tsdb/store.h"
#include "tsdb/store_testing.h"

using namespace stickmeter;
using namespace stickmeter::tsdb;

int main(int argc, char** argv) {
  const std::string mode = argc == 4 ? argv[3] : "";
  if (argc < 3 || argc > 4 || !(mode.empty() || mode == "hold" || mode == "mixed")) {
    std::fprintf(stderr, "usage: tsdb_crash_helper DIR PACE_US [hold|mixed]\n");
    return 2;
  }
  StoreOptions o;
  o.path = argv[1];
  o.sync_writes = true;
  auto store = Store::Open(o);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  if (mode == "hold") {
    testing_internal::SetJournalMode(**store, testing_internal::JournalMode::kAlways);
    testing_internal::HoldJournal(**store);
  }
  const int pace_us = std::atoi(argv[2]);
  const auto table = crash::StreamTable();
  // Unique per run, as a new peer connection would be.
  const uint64_t conn = (uint64_t(::getpid()) << 20) ^
                        uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int b = 0; b < crash::kBatches; ++b) {
    if (mode == "mixed" && b % 20 == 0) {
      testing_internal::SetJournalMode(**store, b % 40 == 0
                                                    ? testing_internal::JournalMode::kNever
                                                    : testing_internal::JournalMode::kAlways);
    }
    for (;;) {
      Status s = (*store)->Submit(crash::MakeBatch(b, conn, table), [b](Status st) {
        if (!st.ok()) {
          std::fprintf(stderr, "batch %d failed: %s\n", b, st.ToString().c_str());
          std::_Exit(1);
        }
        std::printf("acked %d\n", b);
        std::fflush(stdout);
      });
      if (s.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (pace_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pace_us));
  }
  (*store)->Flush();
  Status s = (*store)->Close();
  std::printf("done\n");
  std::fflush(stdout);
  return s.ok() ? 0 : 1;
}
