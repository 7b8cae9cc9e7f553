// A FakeStore whose usage queries can be held at a gate, for tests of the query pool.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "tests/http/fake_store.h"

namespace stickmeter::http::testing {

using namespace std::chrono_literals;

// A FakeStore whose Usage() calls wait at a gate while it is closed, and which records the key
// of every call that ran.
class GatedStore : public FakeStore {
 public:
  void Close() {
    std::lock_guard<std::mutex> lock(gate_mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(gate_mu_);
      open_ = true;
    }
    gate_cv_.notify_all();
  }
  // Waits until `n` calls have started; false after `timeout`.
  bool WaitStarted(size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(gate_mu_);
    return gate_cv_.wait_for(lock, timeout, [&] { return started_.size() >= n; });
  }
  std::vector<std::string> started() {
    std::lock_guard<std::mutex> lock(gate_mu_);
    return started_;
  }

  Result<std::vector<tsdb::UsageRow>> Usage(const tsdb::UsageQuery& q) override {
    {
      std::unique_lock<std::mutex> lock(gate_mu_);
      started_.push_back(q.key.value_or(""));
      gate_cv_.notify_all();
      // Bounded, so a broken test cannot hang.
      gate_cv_.wait_for(lock, 20s, [&] { return open_; });
    }
    return FakeStore::Usage(q);
  }

 private:
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool open_ = true;
  std::vector<std::string> started_;
};

}  // namespace stickmeter::http::testing
