// The threads that run the API's store and quota queries, apart from the I/O threads.
//
// The io_context that carries HTTP also carries the HAProxy peer sessions, whose ACKs and
// heartbeats must never wait behind a slow store scan. So the server hands every query to this
// pool and the I/O thread returns at once; the answer is posted back to the session's strand.
//
// Admission: at most `max_queries` queries are queued or running at once; TrySubmit() refuses
// more (the server answers 503). A query is a Ticket: the session may abandon it (its client
// went away, or its deadline passed); an abandoned query that has not started is dropped without
// running. One that is running cannot be interrupted (the store has no cancellation): it runs to
// the end, still holds its place in `max_queries`, and its result is dropped.
//
// Priority: each thread lowers its own scheduling priority to `nice` (Linux: nice is per
// thread), so when the cores are busy the I/O threads run first.
//
// Thread-safety: every method may be called from any thread. Shutdown() drops the queued work,
// then joins the threads (waiting for running queries); it must not be called from a pool thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/metrics.h"

namespace stickmeter::http {

class QueryPool {
 public:
  class Ticket {
   public:
    // Marks the query as no longer wanted. True when it had not started: it never will.
    bool Abandon() {
      State expected = State::kQueued;
      if (state_.compare_exchange_strong(expected, State::kAbandoned)) return true;
      if (expected == State::kRunning) {
        state_.compare_exchange_strong(expected, State::kAbandonedRunning);
      }
      return false;
    }

   private:
    friend class QueryPool;
    enum class State { kQueued, kRunning, kAbandoned, kAbandonedRunning, kDone };
    std::atomic<State> state_{State::kQueued};
  };

  // threads >= 1, max_queries >= 1. `nice` 0 keeps the process's priority. `in_flight_gauge`
  // (optional, borrowed) follows in_flight().
  QueryPool(size_t threads, size_t max_queries, int nice, Gauge* in_flight_gauge = nullptr);
  ~QueryPool();
  QueryPool(const QueryPool&) = delete;
  QueryPool& operator=(const QueryPool&) = delete;

  // Queues `run`; null when `max_queries` are already queued or running, or after Shutdown().
  std::shared_ptr<Ticket> TrySubmit(std::function<void()> run);

  // Queued plus running queries (including abandoned ones still running).
  size_t in_flight() const;
  // Queries dropped without running because they were abandoned while queued.
  uint64_t dropped() const { return dropped_.load(); }

  void Shutdown();

 private:
  struct Job {
    std::shared_ptr<Ticket> ticket;
    std::function<void()> run;
  };
  void Loop(int nice);

  const size_t max_queries_;
  Gauge* const gauge_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // GUARDED_BY(mu_)
  size_t in_flight_ = 0;   // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> dropped_{0};
  std::vector<std::thread> threads_;
};

}  // namespace stickmeter::http
