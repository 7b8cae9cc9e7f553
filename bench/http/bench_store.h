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
  uint64_t round = 0;
  for (int64_t t = start_ms; t < start_ms + span_ms; t += interval_ms, ++round) {
    ingest::UpdateBatch batch;
    batch.source = "lb1";
    batch.connection_id = 1;
    ingest::TableUpdates tu;
    tu.table = table;
    for (int k = 0; k < keys; ++k) {
      ingest::EntryUpdate e;
      e.key = "customer-" + std::to_string(k);
      e.received_ms = t + k % 1000;
      uint64_t v = (round + 1) * (k % 97 + 1);
      e.values = {{"gpc0", ingest::MetricKind::kCounter32, v},
                  {"http_req_cnt", ingest::MetricKind::kCounter32, v * 3},
                  {"bytes_out_cnt", ingest::MetricKind::kCounter64, v * 1000}};
      tu.entries.push_back(std::move(e));
      if (tu.entries.size() == 1000) {
        batch.tables.push_back(std::move(tu));
        if (Status s = submit(std::move(batch)); !s.ok()) return s;
        batch = ingest::UpdateBatch{};
        batch.source = "lb1";
        batch.connection_id = 1;
        tu = ingest::TableUpdates{};
        tu.table = table;
      }
    }
    if (!tu.entries.empty()) batch.tables.push_back(std::move(tu));
    if (!batch.tables.empty()) {
      if (Status s = submit(std::move(batch)); !s.ok()) return s;
    }
    if (pending.size() > 256) {
      store.Flush();
      for (auto& f : pending)
        if (Status s = f.get(); !s.ok()) return s;
      pending.clear();
    }
  }
  // The hot key: one update a minute.
  ingest::UpdateBatch batch;
  batch.source = "lb1";
  batch.connection_id = 1;
  ingest::TableUpdates tu;
  tu.table = table;
  uint64_t v = 0;
  for (int64_t t = start_ms; t < start_ms + span_ms; t += 60'000) {
    ingest::EntryUpdate e;
    e.key = "hot";
    e.received_ms = t;
    v += 7;
    e.values = {{"gpc0", ingest::MetricKind::kCounter32, v}};
    tu.entries.push_back(std::move(e));
    if (tu.entries.size() == 1000) {
      batch.tables.push_back(std::move(tu));
      if (Status s = submit(std::move(batch)); !s.ok()) return s;
      batch = ingest::UpdateBatch{};
      batch.source = "lb1";
      batch.connection_id = 1;
      tu = ingest::TableUpdates{};
      tu.table = table;
    }
  }
  if (!tu.entries.empty()) {
    batch.tables.push_back(std::move(tu));
    if (Status s = submit(std::move(batch)); !s.ok()) return s;
  }
  store.Flush();
  for (auto& f : pending)
    if (Status s = f.get(); !s.ok()) return s;
  return Status::Ok();
}

}  // namespace stickmeter::http::bench
