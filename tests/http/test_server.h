// A Server on 127.0.0.1 (port 0) running on its own io_context, for the http tests.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "http/server.h"

namespace stickmeter::http::testing {

// Runs a Server on its own io_context with two threads.
class TestServer {
 public:
  TestServer(tsdb::QueryService& store, ServerOptions options, ServerHooks hooks = {})
      : work_(boost::asio::make_work_guard(io_)) {
    options.port = 0;
    server_ = std::make_unique<Server>(io_, std::move(options), store, std::move(hooks));
    Status s = server_->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~TestServer() {
    server_->Stop();
    work_.reset();
    // Bounded: connections left by a test are closed by Stop() (idle) or their timeouts.
    for (auto& t : threads_) t.join();
  }
  uint16_t port() const { return server_->port(); }
  boost::asio::io_context& io() { return io_; }
  Server& server() { return *server_; }
  // Lets the io_context finish on its own once the server has no more work.
  void ReleaseWork() { work_.reset(); }
  // Joins the I/O threads; true when they finished within `timeout`.
  bool JoinWithin(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!io_.stopped() && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return io_.stopped();
  }

 private:
  boost::asio::io_context io_{2};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::unique_ptr<Server> server_;
  std::vector<std::thread> threads_;
};

}  // namespace stickmeter::http::testing
