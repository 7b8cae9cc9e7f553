// WriteHealth: whether the store's writes succeed, for the health reply, the metrics and the
// log, and when the store tries again after they failed.
//
// A failed write (a full disk, a failed sync) puts the store in a failed state: it acknowledges
// nothing until it has reopened its data directory by itself (WritePipeline::Recover), because its
// in-memory counter state is then ahead of the disk. This class keeps that state for others to
// read: the reason (status()), the gauge stickmeter_store_failed (0/1, present from the start)
// and the counter stickmeter_store_write_errors_total; it logs the first failure of an episode,
// a reminder at most once a minute while it lasts, and its end.
//
// Thread-safety: every method may be called from any thread.
// Ownership: owned by StoreImpl; the metrics live in the registry.
// Failure: ProbeWritable returns why the data directory cannot take writes yet (IoError).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/metrics.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace rocksdb {
class Env;
}

namespace stickmeter::tsdb {

class WriteHealth {
 public:
  explicit WriteHealth(MetricsRegistry& metrics);

  // A write failed with `why` (not ok). The first failure of an episode becomes the reason.
  void Failed(const Status& why) EXCLUDES(mu_);
  // An attempt to recover failed with `why`: it becomes the reason.
  void RetryFailed(const Status& why) EXCLUDES(mu_);
  // Writes succeed again: the episode ends.
  void Recovered() EXCLUDES(mu_);
  // Ok, or why writes fail.
  Status status() const EXCLUDES(mu_);
  // How long to wait before the next attempt to recover: from 250 ms, doubling up to 4 s.
  std::chrono::milliseconds RetryDelay() const EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  Status reason_ GUARDED_BY(mu_);
  int64_t since_ms_ GUARDED_BY(mu_) = 0;         // when the episode began
  int64_t last_logged_ms_ GUARDED_BY(mu_) = 0;   // the last line about it
  uint64_t episode_errors_ GUARDED_BY(mu_) = 0;  // failed writes in it
  int attempts_ GUARDED_BY(mu_) = 0;             // failed attempts to recover in it
  Gauge& failed_;
  Counter& write_errors_;
};

// Whether `dir` can take the writes a reopen of the store needs: free space for the write-ahead
// logs' contents (flushed at open) and a margin, and a small synced write through `env` (the
// store's, StoreOptions::env; nullptr: RocksDB's default), where the store's own writes go.
Status ProbeWritable(const std::string& dir, rocksdb::Env* env = nullptr);

}  // namespace stickmeter::tsdb
