// HttpClient: a minimal HTTP/1.1 client (plain or TLS) for the ClickHouse sink: POST a body,
// read a bounded reply, keep the connection for the next request.
//
// Every step (resolve, connect, handshake, write, read) is bounded by `timeout`, and `abort`
// cuts a request short within 100 ms; a reply body
// larger than `max_reply_bytes` fails the request. TLS verifies the server's certificate against
// the system's CA store (or `ca_file`) and its name.
//
// Thread-safety: none; one thread uses an instance (it runs its own io_context on the caller's
// thread, so nothing runs in between calls).
// Ownership: owns its connection; closes it on destruction.
// Failure: Unavailable for a failure to connect or a transport error (worth retrying), with a
// one-line reason; the status line and body of an error reply come back as an HttpReply.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace stickmeter::sink {

struct HttpClientOptions {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string ca_file;  // TLS: CA bundle; empty: the system's
  std::chrono::milliseconds timeout{10'000};
  size_t max_reply_bytes = 1u << 20;
  // Extra request headers ("Name: value").
  std::vector<std::pair<std::string, std::string>> headers;
  // Polled every 100 ms while a request waits: true aborts it (the owner is stopping).
  std::function<bool()> abort;
};

struct HttpReply {
  int status = 0;
  std::string body;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs `body` to `target` (path and query). A kept connection the server has meanwhile closed
  // is replaced once, transparently.
  Result<HttpReply> Post(const std::string& target, const std::string& body);
  // Drops the connection (the next Post connects again).
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stickmeter::sink
