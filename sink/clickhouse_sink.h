// ClickHouseSink: ships every audit event of the store's event feed (tsdb/event_feed.h) to a
// ClickHouse table over its HTTP interface, exactly once as the table sees it.
//
// One thread (`sm-clickhouse`, nice 10): reads up to max_rows events (or max_bytes of them) after
// the acknowledged position, INSERTs them (RowBinary) with stable ids ("<server name>:<store
// id>:<sequence number>"), and only once ClickHouse answered 200 acknowledges the position to the
// store. A crash between the two ships those rows again with the same ids; the table
// (ReplacingMergeTree ordered by event_id, queried with FINAL, created if missing at start and
// after a failed INSERT) keeps one. It polls the feed every poll interval, so an event is shipped
// within about poll + one INSERT of its commit. ClickHouse down or failing: the loop logs (the
// first failure, then every 30 s while it lasts) and retries with a backoff up to max_backoff; the
// backlog waits in the store. Nothing else waits for it: the store's writer never sees the sink,
// and the feed's reads are RocksDB reads.
//
// Metrics (/metrics): stickmeter_sink_clickhouse_backlog_events, _lag_milliseconds, _backfilling,
// _up, _rows_total, _errors_total, _insert_seconds (docs/clickhouse.md, "What to monitor").
//
// Thread-safety: Start and Stop from one thread. Ownership: borrows the feed, which must stay
// valid until Stop returns. Failure: never fatal; see above.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "sink/clickhouse_url.h"
#include "tsdb/event_feed.h"

namespace stickmeter::sink {

struct ClickHouseSinkOptions {
  ClickHouseTarget target;
  std::string ca_file;                           // https: CA bundle; empty: the system's
  std::string server_name;                       // --name: the prefix of every event id
  size_t max_rows = 50'000;                      // rows per INSERT
  size_t max_bytes = size_t{16} << 20;           // their text (keys up to 1 MiB each), about
  std::chrono::milliseconds poll{200};           // how often an idle sink reads the feed
  std::chrono::milliseconds timeout{10'000};     // each network step of one request
  std::chrono::milliseconds max_backoff{5'000};  // between retries while failing
  std::chrono::milliseconds log_every{30'000};   // repeated failures are logged this often
  std::chrono::milliseconds trim_every{30'000};  // shipped outbox rows are deleted this often
};

namespace internal {
// Whether `batch` (whose rows took `row_bytes`) filled a whole INSERT: then more waits right
// behind it, and the sink goes on at once rather than after a poll interval.
bool BatchIsFull(const tsdb::FeedBatch& batch, size_t row_bytes,
                 const ClickHouseSinkOptions& options);
// The commit time (Unix ms) of the event whose age the lag metric shows once ClickHouse confirmed
// `batch`: its last event's when the batch was full (0 would say caught up while seconds
// behind); 0 otherwise (caught up), and for a backfill batch (old by design: the backfilling
// metric says it instead).
int64_t LagFromAfterInsert(const tsdb::FeedBatch& batch, bool full);
}  // namespace internal

class ClickHouseSink {
 public:
  ClickHouseSink(ClickHouseSinkOptions options, tsdb::EventFeed& feed);
  ~ClickHouseSink();  // Stop()
  ClickHouseSink(const ClickHouseSink&) = delete;
  ClickHouseSink& operator=(const ClickHouseSink&) = delete;

  void Start();
  // Stops the thread; a request in flight is aborted (within about 100 ms).
  void Stop() EXCLUDES(mu_);

 private:
  void Loop();
  // Waits `d` or until Stop; false once stopping.
  bool Sleep(std::chrono::milliseconds d) EXCLUDES(mu_);
  void Failed(const std::string& what, const Status& s);
  void Succeeded();
  void UpdateStats(int64_t oldest_pending_ms);

  const ClickHouseSinkOptions options_;
  tsdb::EventFeed& feed_;
  std::thread thread_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::atomic<bool> stopping_{false};  // stop_ for the HTTP client, which polls it
  // Thread-only failure bookkeeping for logging.
  bool failing_ = false;
  uint64_t failures_ = 0;
  std::chrono::steady_clock::time_point last_log_{};

  Gauge& backlog_;
  Gauge& lag_;
  Gauge& backfilling_;
  Gauge& up_;
  Counter& rows_;
  Counter& errors_;
  Histogram& insert_seconds_;
};

}  // namespace stickmeter::sink
