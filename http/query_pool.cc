#include "http/query_pool.h"

#include "common/log.h"
#include "common/thread_setup.h"

namespace stickmeter::http {

QueryPool::QueryPool(size_t threads, size_t max_queries, int nice, Gauge* in_flight_gauge)
    : max_queries_(max_queries == 0 ? 1 : max_queries), gauge_(in_flight_gauge) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this, nice] { Loop(nice); });
}

QueryPool::~QueryPool() { Shutdown(); }

std::shared_ptr<QueryPool::Ticket> QueryPool::TrySubmit(std::function<void()> run) {
  auto ticket = std::make_shared<Ticket>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || in_flight_ >= max_queries_) return nullptr;
    ++in_flight_;
    queue_.push_back(Job{ticket, std::move(run)});
  }
  if (gauge_ != nullptr) gauge_->Add(1);
  cv_.notify_one();
  return ticket;
}

size_t QueryPool::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

void QueryPool::Shutdown() {
  std::deque<Job> dropped;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
    in_flight_ -= dropped.size();
    threads.swap(threads_);
  }
  if (gauge_ != nullptr) gauge_->Add(-static_cast<int64_t>(dropped.size()));
  cv_.notify_all();
  for (auto& t : threads) t.join();
  // `dropped` (and whatever its closures hold) goes here, outside the lock.
}

void QueryPool::Loop(int nice) {
  // Queries are what may wait when the cores are busy; peers' ACKs and heartbeats may not.
  if (!SetUpThisThread("sm-query", nice)) {
    LogWarn("http", "query threads: cannot lower the priority (setpriority failed)");
  }
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    auto expected = Ticket::State::kQueued;
    if (job.ticket->state_.compare_exchange_strong(expected, Ticket::State::kRunning)) {
      job.run();
      job.ticket->state_.store(Ticket::State::kDone);
    } else {
      dropped_.fetch_add(1);  // abandoned while queued: its client is gone or timed out
    }
    // Release what the closure holds (the session) before the slot, outside the lock.
    job = Job{};
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_;
    }
    if (gauge_ != nullptr) gauge_->Add(-1);
  }
}

}  // namespace stickmeter::http
