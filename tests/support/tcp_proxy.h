// Test support: a loopback TCP forwarder whose connections the test can cut at will, to play a
// network failure between two real processes without killing either.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace stickmeter::testing {

class TcpProxy {
 public:
  // Listens on a free loopback port and forwards every connection to 127.0.0.1:target_port.
  explicit TcpProxy(uint16_t target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const { return port_; }
  // Resets every open connection (both sides see the connection drop); new ones are accepted.
  void CutAll();
  // How many connections were accepted so far.
  int accepted() const { return accepted_.load(); }

 private:
  void AcceptLoop();
  void Pump(int from, int to);

  uint16_t target_port_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<int> open_fds_;       // GUARDED_BY(mutex_)
  std::vector<std::thread> pumps_;  // GUARDED_BY(mutex_)
};

}  // namespace stickmeter::testing
