// Who may hold a peer connection, and for how long: limits that keep hostile or broken clients
// from locking a real HAProxy out, and helpers that keep what they send out of our logs raw.
//
// Internal to ingest (PeerService and PeerSession). Thread-safe unless noted.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace stickmeter::ingest {

// Longest peer name accepted on hello line 3. HAProxy peer names are short identifiers (host
// names, "lb1"); 64 bytes leaves room for FQDNs of usual length.
inline constexpr size_t kMaxPeerNameBytes = 64;

// A name HAProxy itself could configure: 1 to kMaxPeerNameBytes bytes of letters, digits and
// ".-_:" (HAProxy's invalid_char() rule for peer names).
bool ValidPeerName(std::string_view name);

// Counts incoming connections by state and source address (IP, without port).
class PeerAdmission {
 public:
  struct Limits {
    uint32_t max_connections = 256;  // all incoming connections
    uint32_t max_handshaking = 32;   // of them, those before the end of the hello
    uint32_t max_per_address = 16;   // of them, those from one source address
  };
  explicit PeerAdmission(Limits limits) : limits_(limits) {}

  // Admits a new connection from `ip` (counted as handshaking) or returns why not.
  std::string Admit(const std::string& ip);
  // The connection finished its hello.
  void Established();
  // The connection ended; `handshaking` when it never finished its hello.
  void Closed(const std::string& ip, bool handshaking);

  uint32_t open() const;

 private:
  const Limits limits_;
  mutable std::mutex mutex_;
  uint32_t open_ = 0;                            // GUARDED_BY(mutex_)
  uint32_t handshaking_ = 0;                     // GUARDED_BY(mutex_)
  std::map<std::string, uint32_t> per_address_;  // GUARDED_BY(mutex_)
};

// At most `per_second` lines per key (a reason label) each second; what is dropped is counted
// and reported with the next line that goes out.
class LogLimiter {
 public:
  explicit LogLimiter(uint32_t per_second) : per_second_(per_second) {}
  // True if a line for `key` may be written now; `suppressed` receives how many lines of that
  // key were dropped since the last one written.
  bool Allow(const std::string& key, uint64_t* suppressed);

 private:
  struct Window {
    int64_t start_ms = 0;
    uint32_t lines = 0;
    uint64_t suppressed = 0;
  };
  const uint32_t per_second_;
  std::mutex mutex_;
  std::map<std::string, Window> windows_;  // GUARDED_BY(mutex_); keys are a fixed set of labels
};

}  // namespace stickmeter::ingest
