// Fills a tsdb::Store with synthetic stick-table traffic for the http benchmarks: `keys` keys of
// table /bench, counters gpc0, http_req_cnt and bytes_out_cnt, one update per key every
// `interval_ms` over [start_ms, start_ms + span_ms), plus one key ("hot") updated every minute,
// for series queries. Single-threaded; the store must be open and empty.
#pragma once

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "ingest/sink.h"
#include "tsdb/store.h"

namespace stickmeter::http::bench {

inline Status Populate(tsdb::Store& store, int keys, int64_t start_ms, int64_t span_ms,
                       int64_t interval_ms) {
  auto table = std::make_shared<ingest::TableInfo>();
  table->name = "/bench";
  table->key_type = "string";
  table->key_size = 33;
  table->data_types = {"gpc0", "http_req_cnt", "bytes_out_cnt"};
  std::vector<std::future<Status>> pending;
  auto submit = [&](ingest::UpdateBatch batch) -> Status {
    for (;;) {
      auto promise = std::make_shared<std::promise<Status>>();
      auto future = promise->get_future();
      Status s = store.Submit(std::move(batch), [promise](Status st) { promise->set_value(st); });
      if (s.ok()) {
        pending.push_back(std::move(future));
        return Status::Ok();
      }
      return s;
    }
  };
  // Entries go out in batches of up to 1,000, as a peer session hands them over.
  ingest::TableUpdates tu;
  tu.table = table;
  auto submit_entries = [&]() -> Status {
    if (tu.entries.empty()) return Status::Ok();
    ingest::UpdateBatch batch;
    batch.source = "lb1";
    batch.connection_id = 1;
    batch.tables.push_back(std::move(tu));
    tu = ingest::TableUpdates{};
    tu.table = table;
    return submit(std::move(batch));
  };
  auto add = [&](ingest::EntryUpdate e) -> Status {
    tu.entries.push_back(std::move(e));
    return tu.entries.size() == 1000 ? submit_entries() : Status::Ok();
  };
  uint64_t round = 0;
  for (int64_t t = start_ms; t < start_ms + span_ms; t += interval_ms, ++round) {
    for (int k = 0; k < keys; ++k) {
      ingest::EntryUpdate e;
      e.key = "customer-" + std::to_string(k);
      e.received_ms = t + k % 1000;
      uint64_t v = (round + 1) * (k % 97 + 1);
      e.values = {{"gpc0", ingest::MetricKind::kCounter32, v},
                  {"http_req_cnt", ingest::MetricKind::kCounter32, v * 3},
                  {"bytes_out_cnt", ingest::MetricKind::kCounter64, v * 1000}};
      if (Status s = add(std::move(e)); !s.ok()) return s;
    }
    if (Status s = submit_entries(); !s.ok()) return s;
    if (pending.size() > 256) {
      store.Flush();
      for (auto& f : pending)
        if (Status s = f.get(); !s.ok()) return s;
      pending.clear();
    }
  }
  // The hot key: one update a minute.
  uint64_t v = 0;
  for (int64_t t = start_ms; t < start_ms + span_ms; t += 60'000) {
    ingest::EntryUpdate e;
    e.key = "hot";
    e.received_ms = t;
    v += 7;
    e.values = {{"gpc0", ingest::MetricKind::kCounter32, v}};
    if (Status s = add(std::move(e)); !s.ok()) return s;
  }
  if (Status s = submit_entries(); !s.ok()) return s;
  store.Flush();
  for (auto& f : pending)
    if (Status s = f.get(); !s.ok()) return s;
  return Status::Ok();
}

}  // namespace stickmeter::http::bench
