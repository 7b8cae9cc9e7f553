// A small blocking HTTP client for the http tests: every call runs its own io_context with a
// deadline, so a broken server fails the test instead of hanging it. Loopback only.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <string>

namespace stickmeter::http::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

struct ClientResponse {
  bool ok = false;  // a complete response arrived
  std::string error;
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, trailers included
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

inline std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Sends `req` to 127.0.0.1:port and reads one response.
inline ClientResponse Send(uint16_t port, bhttp::request<bhttp::string_body> req,
                           std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  net::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  ClientResponse out;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1ull << 30);
  if (req.method() == bhttp::verb::head) parser.skip(true);  // a HEAD response has no body
  req.set(bhttp::field::host, "127.0.0.1");
  req.prepare_payload();
  stream.expires_after(deadline);
  stream.async_connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) {
        if (ec) {
          out.error = "connect: " + ec.message();
          return;
        }
        bhttp::async_write(stream, req, [&](beast::error_code ec, size_t) {
          if (ec) {
            out.error = "write: " + ec.message();
            return;
          }
          bhttp::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) {
            if (ec) {
              out.error = "read: " + ec.message();
              return;
            }
            out.ok = true;
          });
        });
      });
  io.run();
  if (out.ok || parser.is_header_done()) {
    const auto& res = parser.get();
    out.status = res.result_int();
    for (const auto& f : res) out.headers[Lower(std::string(f.name_string()))] = f.value();
    out.body = res.body();
  }
  return out;
}

inline ClientResponse Get(uint16_t port, const std::string& target,
                          std::map<std::string, std::string> headers = {},
                          bhttp::verb method = bhttp::verb::get) {
  bhttp::request<bhttp::string_body> req{method, target, 11};
  for (auto& [k, v] : headers) req.set(k, v);
  return Send(port, std::move(req));
}

// Writes raw bytes, then reads until the server closes or the deadline passes. Returns what
// the server sent; `closed` says whether it closed the connection before the deadline.
struct RawResult {
  std::string data;
  bool closed = false;
  bool reset = false;  // closed by a reset, not in order
  std::chrono::milliseconds elapsed{0};
};
inline RawResult SendRaw(uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  net::io_context io;
  tcp::socket socket(io);
  RawResult out;
  auto start = std::chrono::steady_clock::now();
  beast::error_code ec;
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return out;
  if (!bytes.empty()) net::write(socket, net::buffer(bytes), ec);
  std::string buf(65536, '\0');
  std::function<void()> read_more = [&] {
    socket.async_read_some(net::buffer(buf), [&](beast::error_code ec, size_t n) {
      out.data.append(buf.data(), n);
      if (ec) {
        out.closed = true;
        out.reset = ec == net::error::connection_reset;
        return;
      }
      read_more();
    });
  };
  read_more();
  io.run_for(deadline);
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return out;
}

}  // namespace stickmeter::http::testing
