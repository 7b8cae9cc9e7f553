// A synthetic HAProxy peers stream for decoder benchmarks and tests: what HAProxy sends after the
// handshake for one string-keyed table (`quota`, storing gpc0, http_req_cnt and bytes_out_cnt)
// whose entries change one at a time, written with the project's own encoder (ingest/codec.h).
//
// The stream is one DEFINE followed by `updates` entry updates. Update ids mostly advance by one
// and are then sent as INCUPDATE (0x81), as HAProxy does when consecutive ids go out in one
// batch; now and then the id jumps and the update is a full UPDATE (0x80) carrying its id. Each
// update touches one customer key (`customer-00001` ...) and raises its three counters, so the
// values only grow, like real absolute counters.
//
// Deterministic: the same options give the same bytes on every platform (its own random number
// generator, no <random> distributions), and the first K updates of an N-update stream are those
// of a K-update stream. Besides the bytes it returns what a correct decoder must find (counts,
// sums, sample updates and the last values per key), so a test can check a decode exactly.
// Pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stickmeter::bench {

struct GenStreamOptions {
  uint64_t updates = 1'000'000;
  uint32_t customers = 10'000;
  uint64_t seed = 20240601;
  uint32_t jump_percent = 5;  // share of updates whose id jumps (sent as full UPDATE)
  uint64_t table_id = 1;
  uint64_t expire_ms = 3'600'000;
};

// The values one update carries.
struct GenUpdate {
  uint64_t index = 0;  // position among the updates
  bool incremental = false;
  uint32_t update_id = 0;
  std::string key;
  uint64_t gpc0 = 0;
  uint64_t http_req_cnt = 0;
  uint64_t bytes_out_cnt = 0;
};

// What decoding the stream must give.
struct GenStreamExpect {
  std::string table = "quota";
  uint64_t stream_bytes = 0;
  uint64_t define_bytes = 0;  // the DEFINE, first in the stream
  uint64_t updates = 0;
  uint64_t full_updates = 0;         // 0x80
  uint64_t incremental_updates = 0;  // 0x81
  uint64_t sum_update_id = 0;
  uint64_t sum_gpc0 = 0;
  uint64_t sum_http_req_cnt = 0;
  uint64_t sum_bytes_out_cnt = 0;
  std::vector<GenUpdate> samples;         // the first, the last and every 1/16th in between
  std::map<std::string, GenUpdate> last;  // the last update of every key touched
};

// Appends the stream to `out` and returns what it holds.
GenStreamExpect GeneratePeersStream(const GenStreamOptions& options, std::string& out);

// `expect` as one JSON object (sums, counts and samples; not `last`), for the command line tool.
std::string ExpectToJson(const GenStreamExpect& expect);

}  // namespace stickmeter::bench
