// Test helpers for the peer service: a recording UpdateSink, an io_context on background
// threads, a blocking raw peer client/server speaking the wire protocol, and a decoder that
// records what stickmeter sends.
//
// Everything is bounded in time (every blocking call takes a timeout) and loopback only.
// FakeSink is thread-safe; RawConn is used by one test thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ingest/codec.h"
#include "ingest/peer_service.h"
#include "ingest/sink.h"

namespace stickmeter::peers_test {

// A peer service for the tests: named "stickmeter", listening on a free loopback port, with no
// periodic or month-end resync. Tests add what they exercise.
inline ingest::PeerServiceOptions LoopbackServiceOptions() {
  ingest::PeerServiceOptions o;
  o.local_name = "stickmeter";
  o.listen_port = 0;
  o.resync_interval_ms = 0;
  o.resync_at_month_end = false;
  return o;
}

// Records batches and completes their done callbacks on its own thread, in submission order,
// after `delay` (as a store would after its commit).
class FakeSink : public ingest::UpdateSink {
 public:
  enum class Mode {
    kOk,           // done(OK) and the batch is recorded
    kFail,         // done(IoError), nothing recorded
    kUnavailable,  // Submit returns Unavailable
    kHold,         // callbacks wait until Release()
  };

  FakeSink();
  ~FakeSink() override;

  void set_mode(Mode mode);
  void set_delay(std::chrono::milliseconds delay);
  // Completes held callbacks (kHold) with OK, and switches to kOk.
  void Release();

  Status Submit(ingest::UpdateBatch batch, DoneCallback done) override;

  size_t submitted() const;
  std::vector<ingest::UpdateBatch> Batches() const;  // the durable ones
  // The last recorded value of (table, key, metric), from `source` when not empty, or nullopt.
  std::optional<uint64_t> Last(const std::string& table, const std::string& key,
                               const std::string& metric, const std::string& source = "") const;
  std::string LastServerKey(const std::string& table, const std::string& key) const;
  // Entry updates recorded for (table, key); any key when `key` is empty.
  size_t Count(const std::string& table, const std::string& key = "") const;
  // The key types announced per table: "string", "ipv4", ...
  std::string KeyType(const std::string& table) const;
  // Entry updates for (table, key) in every submitted batch, durable or not.
  size_t CountSubmitted(const std::string& table, const std::string& key) const;
  bool AnyRestart() const;

 private:
  struct Item {
    ingest::UpdateBatch batch;
    DoneCallback done;
    std::chrono::steady_clock::time_point due;
  };
  void Run();

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  Mode mode_ = Mode::kOk;
  std::chrono::milliseconds delay_{0};
  std::deque<Item> queue_;
  std::vector<Item> held_;
  std::vector<ingest::UpdateBatch> batches_;
  std::vector<std::pair<std::string, std::string>> submitted_keys_;  // table, key
  size_t submitted_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

// An io_context run by two threads until destruction (or Join()).
class IoThreads {
 public:
  IoThreads();
  ~IoThreads();
  boost::asio::io_context& io() { return io_; }
  // Waits for the loop to run out of work by itself; false after `timeout` (then it is stopped).
  bool Join(std::chrono::milliseconds timeout);

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int finished_ = 0;
};

// What stickmeter sent, decoded.
struct Received {
  std::vector<ingest::ControlType> controls;
  std::vector<std::pair<uint64_t, uint32_t>> acks;  // table id, update id
  std::vector<ingest::ErrorType> errors;
  size_t heartbeats() const;
  bool Has(ingest::ControlType type) const;
};

// A blocking TCP connection (client or accepted), with timeouts.
class RawConn {
 public:
  RawConn() = default;
  explicit RawConn(int fd) : fd_(fd) {}
  ~RawConn();
  RawConn(RawConn&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  RawConn& operator=(RawConn&&) = delete;

  // With `receive_buffer_bytes`, the socket's receive buffer is that small (SO_RCVBUF, before
  // the connect, which sets the window the other side may fill).
  bool Connect(uint16_t port, int receive_buffer_bytes = 0);
  bool ok() const { return fd_ >= 0; }
  bool Send(const std::string& bytes);
  // Reads until a '\n' (returned without it); nullopt on timeout or close.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  // Reads and decodes messages for `timeout` or until `until` holds.
  void ReadMessages(std::chrono::milliseconds timeout,
                    const std::function<bool(const Received&)>& until = nullptr);
  // True when the other side closed (or reset) within `timeout`; pending bytes are decoded.
  bool WaitClosed(std::chrono::milliseconds timeout);
  // Performs the hello as HAProxy `sender` calling us `us`; returns the status line.
  std::string Hello(const std::string& us, const std::string& sender);
  void Close();

  Received received;

 private:
  void Decode();
  int fd_ = -1;
  std::string raw_;  // bytes read, not yet decoded
  ingest::Decoder decoder_;
};

// A listening socket on 127.0.0.1 (free port) for tests that play HAProxy's peers bind.
class RawListener {
 public:
  RawListener();
  ~RawListener();
  uint16_t port() const { return port_; }
  // Accepts one connection; an empty RawConn on timeout.
  RawConn Accept(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A string table "/t" (id 1) storing gpc0 and http_req_cnt, and messages for it.
ingest::TableDefinition TestTable();
std::string DefineMessage();
std::string UpdateMessage(uint32_t update_id, const std::string& key, uint64_t gpc0,
                          uint64_t http_req_cnt);
std::string ControlMessage(ingest::ControlType type);

// Writes a CA and certificates signed by it into `dir` with `openssl`: ca.pem, server.pem,
// client.pem (certificate + key), and other.pem (self-signed, not from the CA). CN of the server
// certificate: "stickmeter-test". Returns false if openssl failed.
bool MakeTestCertificates(const std::string& dir);

// Polls `condition` every 20 ms until true or `timeout`.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace stickmeter::peers_test
