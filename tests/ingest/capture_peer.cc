// capture_peer: records what HAProxy sends to a peer, to make the fixtures of tests/fixtures.
// Test tool only; run by tests/fixtures/capture.sh, never by the test suite.
//
//   capture_peer --listen PORT --name OUR_NAME --out STREAM_FILE [--seconds N]
//
// Listens on 127.0.0.1:PORT, accepts HAProxy's connection, answers its hello with `200`, then
// appends every byte received after the handshake to STREAM_FILE, as received, until HAProxy
// closes the connection or N seconds (default 30) have passed. Meanwhile it behaves like a
// quiet peer so that HAProxy keeps the connection: a heartbeat every second, an ACK for every
// update, and `resync_finished` when asked for a resync (it has nothing to teach). Single
// thread, blocking sockets with poll().
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "ingest/codec.h"

namespace {

using stickmeter::ingest::ControlType;
using Clock = std::chrono::steady_clock;

// Collects what the peer must answer while the stream is decoded.
class Replies : public stickmeter::ingest::MessageHandler {
 public:
  std::string out;
  void OnControl(ControlType type) override {
    if (type == ControlType::kResyncRequest) {
      stickmeter::ingest::AppendControl(out, ControlType::kResyncFinished);
    }
  }
  void OnEntryUpdate(const stickmeter::ingest::EntryUpdateView& u) override {
    stickmeter::ingest::AppendAck(out, u.table->table_id, u.update_id);
  }
};

bool SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

int Usage() {
  std::cerr << "usage: capture_peer --listen PORT --name OUR_NAME --out FILE [--seconds N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  int seconds = 30;
  std::string name, path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--listen") {
      port = std::atoi(argv[i + 1]);
    } else if (arg == "--name") {
      name = argv[i + 1];
    } else if (arg == "--out") {
      path = argv[i + 1];
    } else if (arg == "--seconds") {
      seconds = std::atoi(argv[i + 1]);
    } else {
      return Usage();
    }
  }
  if (port <= 0 || name.empty() || path.empty() || argc % 2 == 0) return Usage();

  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0) {
    std::cerr << "capture_peer: cannot listen on 127.0.0.1:" << port << ": " << std::strerror(errno)
              << "\n";
    return 1;
  }
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  auto left_ms = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
  };
  pollfd accept_poll{listener, POLLIN, 0};
  if (::poll(&accept_poll, 1, left_ms()) != 1) {
    std::cerr << "capture_peer: no connection within " << seconds << " s\n";
    return 1;
  }
  const int fd = ::accept(listener, nullptr, nullptr);
  ::close(listener);

  // The hello: three lines. Anything after the third newline is already the stream.
  std::string received;
  char buf[65536];
  size_t hello_end = std::string::npos;
  while (hello_end == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      std::cerr << "capture_peer: connection closed during the hello\n";
      return 1;
    }
    received.append(buf, static_cast<size_t>(n));
    size_t pos = 0;
    for (int line = 0; line < 3 && pos != std::string::npos; ++line) {
      pos = received.find('\n', pos);
      if (pos != std::string::npos) ++pos;
    }
    hello_end = pos;
  }
  std::cerr << "capture_peer: hello: " << received.substr(0, hello_end);
  if (received.find("\n" + name + "\n") == std::string::npos) {
    std::cerr << "capture_peer: the hello is not addressed to " << name << "\n";
    return 1;
  }
  if (!SendAll(fd, "200\n")) return 1;

  std::string stream = received.substr(hello_end);
  std::vector<uint8_t> pending(stream.begin(), stream.end());
  stickmeter::ingest::Decoder decoder;
  Replies replies;
  auto last_heartbeat = Clock::now();
  bool closed = false;
  while (!closed && left_ms() > 0) {
    if (!pending.empty()) {
      const auto r = decoder.Feed(pending, replies);
      if (!r.status.ok()) {
        std::cerr << "capture_peer: " << r.status.message() << "\n";
        break;  // keep what was received: the file shows what HAProxy sent
      }
      pending.erase(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(r.consumed));
    }
    if (Clock::now() - last_heartbeat >= std::chrono::seconds(1)) {
      stickmeter::ingest::AppendControl(replies.out, ControlType::kHeartbeat);
      last_heartbeat = Clock::now();
    }
    if (!replies.out.empty()) {
      if (!SendAll(fd, replies.out)) break;
      replies.out.clear();
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, std::min(100, left_ms())) == 1) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        closed = true;
      } else {
        stream.append(buf, static_cast<size_t>(n));
        pending.insert(pending.end(), buf, buf + n);
      }
    }
  }
  ::close(fd);
  std::ofstream out(path, std::ios::binary);
  out.write(stream.data(), static_cast<std::streamsize>(stream.size()));
  std::cerr << "capture_peer: " << stream.size() << " bytes to " << path
            << (closed ? " (closed by HAProxy)\n" : "\n");
  return out.flush() ? 0 : 1;
}
