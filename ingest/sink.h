// The seam between ingest and storage.
//
// ingest decodes peer messages into UpdateBatch values (wire details gone: keys as text, values
// as named counters and gauges) and hands them to an UpdateSink. tsdb implements the sink; tests
// use a recording fake. This header depends on nothing but the standard library and Status, so
// tsdb can implement it without knowing the protocol.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace stickmeter::ingest {

// How a value is counted (docs/counting.md).
enum class MetricKind : uint8_t {
  kCounter32 = 0,  // unsigned, wraps at 2^32 in HAProxy (gpc0, http_req_cnt, ...)
  kCounter64 = 1,  // unsigned 64-bit (bytes_in_cnt, bytes_out_cnt)
  kGauge = 2,      // a sample, never summed (conn_cur, gpt0, rates, server_id); value is int64
};

struct MetricValue {
  // HAProxy's data-type name, or `gpc.N`/`gpt.N`/`gpc_rate.N` for array elements. Points to
  // static storage owned by ingest: valid for the life of the process.
  std::string_view metric;
  MetricKind kind = MetricKind::kCounter32;
  // Counters: the absolute value. Gauges: the value as int64 stored in these 64 bits (a rate is
  // HAProxy's own reading of its frequency counter over its period).
  uint64_t value = 0;
};

// A table as its source announced it.
struct TableInfo {
  std::string name;                     // "/quota" or a backend name, as sent
  std::string key_type;                 // "string" | "ipv4" | "ipv6" | "integer" | "binary"
  uint32_t key_size = 0;                // on the wire (string: len + 1)
  uint64_t expire_ms = 0;               // 0 = never expires
  std::vector<std::string> data_types;  // HAProxy names, in bit order ("gpc0", "gpc", ...)
  // Parallel to data_types: a frequency counter's period in ms (gpc_rate's too), else 0; an
  // array's element count, else 0.
  std::vector<uint64_t> periods_ms;
  std::vector<uint32_t> array_sizes;
};

// A frequency counter as its source encoded it, for consumers that add up the counters of
// several sources (in `EntryUpdate::values` it is already read as a rate).
struct RawRate {
  std::string_view metric;  // as MetricValue::metric
  uint32_t period_ms = 0;
  uint32_t elapsed_ms = 0;  // how far into its current period the counter was when sent
  uint64_t curr = 0;
  uint64_t prev = 0;
};

struct EntryUpdate {
  std::string key;      // text form (docs/cli.md)
  int64_t received_ms;  // Unix ms when the TCP read that completed the message returned
  std::vector<MetricValue> values;
  std::string server_key;  // the server name when the table stores server_key, else empty
  // The frequency counters as sent, only for the tables of PeerServiceOptions::raw_rate_tables.
  std::vector<RawRate> rates;
};

struct TableUpdates {
  std::shared_ptr<const TableInfo> table;  // shared by every batch of the same DEFINE
  std::vector<EntryUpdate> entries;        // in arrival order
};

// Everything one peer connection delivered since its previous batch, in arrival order.
struct UpdateBatch {
  std::string source;          // the HAProxy local peer name (hello line 3, or our --connect name)
  uint64_t connection_id = 0;  // unique per connection, never reused, even across restarts
  // True when the peer asked us for a full resync before the entries of this batch: its process
  // holds no counts (docs/counting.md, rule 1). Applies before `tables`.
  bool source_restarted = false;
  int64_t restart_ms = 0;  // when that request arrived
  std::vector<TableUpdates> tables;
};

class UpdateSink {
 public:
  virtual ~UpdateSink() = default;

  // Called exactly once per Submit, from any thread, after the batch is durably committed
  // (status OK) or has definitely failed (the caller must then drop the connection without
  // acknowledging, so the peer sends the values again).
  using DoneCallback = std::function<void(Status)>;

  // Thread-safe and non-blocking: queues the batch. Batches of one connection are committed in
  // submission order and their callbacks run in that order. Returns Unavailable (without
  // calling `done`) when the sink is shutting down or its queue is full.
  virtual Status Submit(UpdateBatch batch, DoneCallback done) = 0;
};

// Told when a source's session is established (its hello done, it owns the source) and when
// that session ends, so that storage can record when it had data from each source (data
// completeness, docs/api.md "Coverage"). Called from the peer service's threads, in the order
// the events happened for one connection; a newer connection of a source may report its start
// before the older one its end. Must not block: no disk write on the caller's thread.
class SourceObserver {
 public:
  virtual ~SourceObserver() = default;
  virtual void SourceConnected(const std::string& source, uint64_t connection_id, int64_t t_ms) = 0;
  virtual void SourceDisconnected(const std::string& source, uint64_t connection_id,
                                  int64_t t_ms) = 0;
};

}  // namespace stickmeter::ingest
