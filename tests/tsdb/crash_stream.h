// The deterministic stream shared by the crash helper and the crash test: kBatches batches of
// kEntries distinct keys each, every key carrying the absolute values of three counters. A key
// appears once, so replaying the stream from the start re-sends the same absolute values, as a
// full resync from HAProxy would.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ingest/sink.h"

namespace stickmeter::tsdb::crash {

inline constexpr int kBatches = 400;
inline constexpr int kEntries = 100;
inline constexpr int64_t kT0 = 1'790'000'000'000;

inline std::string KeyName(int batch, int entry) {
  std::string key(1, 'k');
  key += std::to_string(batch * kEntries + entry);
  return key;
}
inline uint64_t Gpc0(int i) { return 1 + (uint64_t(i) * 7919) % 1000; }
inline uint64_t Req(int i) { return 4'000'000'000u + uint64_t(i) % 97; }
inline uint64_t Bytes(int i) { return (uint64_t{1} << 40) + uint64_t(i) * 1'000'003; }

inline ingest::UpdateBatch MakeBatch(int b, uint64_t connection_id,
                                     const std::shared_ptr<const ingest::TableInfo>& table) {
  ingest::UpdateBatch batch;
  batch.source = "lb1";
  batch.connection_id = connection_id;
  ingest::TableUpdates tu;
  tu.table = table;
  for (int e = 0; e < kEntries; ++e) {
    const int i = b * kEntries + e;
    ingest::EntryUpdate u;
    u.key = KeyName(b, e);
    u.received_ms = kT0 + int64_t{b} * 10;
    u.values = {{"gpc0", ingest::MetricKind::kCounter32, Gpc0(i)},
                {"http_req_cnt", ingest::MetricKind::kCounter32, Req(i)},
                {"bytes_out_cnt", ingest::MetricKind::kCounter64, Bytes(i)}};
    tu.entries.push_back(std::move(u));
  }
  batch.tables.push_back(std::move(tu));
  return batch;
}

inline std::shared_ptr<const ingest::TableInfo> StreamTable() {
  auto t = std::make_shared<ingest::TableInfo>();
  t->name = "/quota";
  t->key_type = "string";
  t->key_size = 33;
  t->expire_ms = 0;
  t->data_types = {"gpc0", "http_req_cnt", "bytes_out_cnt"};
  return t;
}

}  // namespace stickmeter::tsdb::crash
