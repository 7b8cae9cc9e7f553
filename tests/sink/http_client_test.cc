// The sink's HTTP client against a one-request server on loopback: what it sends in the request
// head (a proxy in front of ClickHouse routes by the Host header).
#include "sink/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

namespace stickmeter::sink {
namespace {

// Listens on `address` (IPv4 or IPv6 literal) at a free port; once started, answers one request
// with 200 and keeps its head.
class OneRequestServer {
 public:
  explicit OneRequestServer(const std::string& address) {
    const bool v6 = address.find(':') != std::string::npos;
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    sockaddr_storage storage{};
    socklen_t len = 0;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
      a->sin6_family = AF_INET6;
      if (::inet_pton(AF_INET6, address.c_str(), &a->sin6_addr) != 1) {
        Fail();
        return;
      }
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&storage);
      a->sin_family = AF_INET;
      if (::inet_pton(AF_INET, address.c_str(), &a->sin_addr) != 1) {
        Fail();
        return;
      }
      len = sizeof *a;
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&storage), len) != 0 || ::listen(fd_, 1) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
      Fail();
      return;
    }
    port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  }
  // Answers one request, on a thread of its own.
  void Start() {
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneRequestServer() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  // The request head, once the request was answered (after the client's Post returned).
  std::string head() {
    if (thread_.joinable()) thread_.join();
    return head_;
  }

 private:
  void Fail() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void Serve() {
    const int conn = ::accept(fd_, nullptr, nullptr);
    if (conn < 0) return;
    char buf[4096];
    while (head_.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::read(conn, buf, sizeof buf);
      if (n <= 0) break;
      head_.append(buf, static_cast<size_t>(n));
    }
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    (void)::write(conn, reply.data(), reply.size());
    ::close(conn);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::string head_;
};

std::string HostHeaderOf(const std::string& head) {
  const size_t at = head.find("\r\nHost: ");
  if (at == std::string::npos) return "";
  const size_t from = at + 8;
  return head.substr(from, head.find("\r\n", from) - from);
}

// POSTs to a one-request server on `address`; the Host header it received, or why none.
std::string HostSentTo(const std::string& address, uint16_t* port) {
  OneRequestServer server(address);
  if (!server.ok()) return "(no server on " + address + ")";
  *port = server.port();
  server.Start();
  HttpClientOptions o;
  o.host = address;
  o.port = server.port();
  o.timeout = std::chrono::milliseconds(5000);
  HttpClient client(o);
  auto reply = client.Post("/", "");
  if (!reply.ok()) return reply.status().ToString();
  if (reply->status != 200) return "status " + std::to_string(reply->status);
  return HostHeaderOf(server.head());
}

TEST(HttpClientTest, HostHeaderNamesTheHostAndPort) {
  uint16_t port = 0;
  const std::string host = HostSentTo("127.0.0.1", &port);
  EXPECT_EQ("127.0.0.1:" + std::to_string(port), host);
}

TEST(HttpClientTest, AnIpv6HostIsInBrackets) {
  if (!OneRequestServer("::1").ok()) GTEST_SKIP() << "no IPv6 loopback here";
  uint16_t port = 0;
  const std::string host = HostSentTo("::1", &port);
  EXPECT_EQ("[::1]:" + std::to_string(port), host);
}

}  // namespace
}  // namespace stickmeter::sink
