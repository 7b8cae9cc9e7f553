#include "bench/ingest/gen_stream.h"

#include <cstdio>
#include <optional>
#include <span>
#include <sstream>

#include "ingest/codec.h"

namespace stickmeter::bench {
namespace {

using ingest::DataType;
using ingest::DataValue;
using ingest::StickTableType;

// SplitMix64: tiny, fast and fully specified, so the stream is the same with any standard
// library (std::uniform_int_distribution is not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // In [lo, hi]. The modulo bias is irrelevant for test data.
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Next() % (hi - lo + 1); }

 private:
  uint64_t state_;
};

}  // namespace

GenStreamExpect GeneratePeersStream(const GenStreamOptions& options, std::string& out) {
  GenStreamExpect expect;
  const size_t start = out.size();

  ingest::TableDefinition table;
  table.table_id = options.table_id;
  table.name = expect.table;
  table.key_type = ingest::KeyType::kString;
  table.key_size = 64;
  table.data_bitfield = (1ULL << static_cast<int>(DataType::kGpc0)) |
                        (1ULL << static_cast<int>(DataType::kHttpReqCnt)) |
                        (1ULL << static_cast<int>(DataType::kBytesOutCnt));
  table.expire_ms = options.expire_ms;
  ingest::AppendTableDefine(out, table);
  expect.define_bytes = out.size() - start;

  // Each customer starts with counters it had before the stream (HAProxy sends absolute values).
  Rng rng(options.seed);
  const uint32_t customers = options.customers == 0 ? 1 : options.customers;
  std::vector<std::string> keys(customers);
  std::vector<uint64_t> gpc0(customers), req(customers), bytes(customers);
  for (uint32_t c = 0; c < customers; ++c) {
    char name[32];
    std::snprintf(name, sizeof(name), "customer-%05u", c + 1);
    keys[c] = name;
    gpc0[c] = rng.Between(0, 999);
    req[c] = gpc0[c] + rng.Between(0, 3999);
    bytes[c] = rng.Between(0, 1'999'999);
  }

  DataValue values[3];
  values[0].type = DataType::kGpc0;
  values[1].type = DataType::kHttpReqCnt;
  values[2].type = DataType::kBytesOutCnt;
  const uint64_t sample_every = options.updates / 16 == 0 ? 1 : options.updates / 16;
  uint32_t update_id = static_cast<uint32_t>(rng.Between(1, 999));
  std::optional<uint32_t> previous_id;
  for (uint64_t i = 0; i < options.updates; ++i) {
    const uint32_t c = static_cast<uint32_t>(rng.Next() % customers);
    gpc0[c] += 1;
    req[c] += rng.Between(1, 4);
    bytes[c] += rng.Between(500, 50'000);
    values[0].u = gpc0[c];
    values[1].u = req[c];
    values[2].u = bytes[c];
    const bool incremental = previous_id && update_id == *previous_id + 1;
    const auto* key = reinterpret_cast<const uint8_t*>(keys[c].data());
    ingest::AppendEntryUpdate(out, table,
                              incremental ? StickTableType::kIncUpdate : StickTableType::kUpdate,
                              update_id, std::nullopt, std::span(key, keys[c].size()), values);

    GenUpdate u{i, incremental, update_id, keys[c], gpc0[c], req[c], bytes[c]};
    ++expect.updates;
    ++(incremental ? expect.incremental_updates : expect.full_updates);
    expect.sum_update_id += update_id;
    expect.sum_gpc0 += u.gpc0;
    expect.sum_http_req_cnt += u.http_req_cnt;
    expect.sum_bytes_out_cnt += u.bytes_out_cnt;
    if (i % sample_every == 0 || i + 1 == options.updates) expect.samples.push_back(u);
    expect.last[u.key] = std::move(u);

    previous_id = update_id;
    // 32-bit like the wire's ids; at most 10 per update, they never come near a wrap.
    update_id +=
        rng.Between(0, 99) < options.jump_percent ? static_cast<uint32_t>(rng.Between(2, 10)) : 1;
  }
  expect.stream_bytes = out.size() - start;
  return expect;
}

std::string ExpectToJson(const GenStreamExpect& e) {
  std::ostringstream o;
  o << "{\"table\":\"" << e.table << "\",\"stream_bytes\":" << e.stream_bytes
    << ",\"define_bytes\":" << e.define_bytes << ",\"updates\":" << e.updates
    << ",\"full_updates\":" << e.full_updates
    << ",\"incremental_updates\":" << e.incremental_updates
    << ",\"sum_update_id\":" << e.sum_update_id << ",\"sum_gpc0\":" << e.sum_gpc0
    << ",\"sum_http_req_cnt\":" << e.sum_http_req_cnt
    << ",\"sum_bytes_out_cnt\":" << e.sum_bytes_out_cnt << ",\"samples\":[";
  for (size_t i = 0; i < e.samples.size(); ++i) {
    const GenUpdate& u = e.samples[i];
    o << (i ? "," : "") << "{\"index\":" << u.index << ",\"msg\":\""
      << (u.incremental ? "incupdate" : "update") << "\",\"update_id\":" << u.update_id
      << ",\"key\":\"" << u.key << "\",\"gpc0\":" << u.gpc0
      << ",\"http_req_cnt\":" << u.http_req_cnt << ",\"bytes_out_cnt\":" << u.bytes_out_cnt << "}";
  }
  o << "]}";
  return o.str();
}

}  // namespace stickmeter::bench
