#include "sink/http_client.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <utility>

namespace stickmeter::sink {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct HttpClient::Impl {
  explicit Impl(HttpClientOptions o)
      : options(std::move(o)), ssl_ctx(asio::ssl::context::tls_client) {}

  // Runs the io_context until the operation started by `start` calls its handler, or `cancel`s
  // it once the timeout passes or `abort` says so (its handler then still runs, with an error).
  template <typename Start, typename Cancel>
  error_code Run(Start&& start, Cancel&& cancel) {
    error_code result = asio::error::would_block;
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    bool cancelled = false;
    while (result == asio::error::would_block) {
      ioc.run_for(std::chrono::milliseconds(100));
      if (result != asio::error::would_block) break;
      if (ioc.stopped()) ioc.restart();
      if (!cancelled &&
          (std::chrono::steady_clock::now() >= deadline || (options.abort && options.abort()))) {
        cancel();
        cancelled = true;
      }
    }
    if (cancelled && result == asio::error::operation_aborted) result = asio::error::timed_out;
    return result;
  }
  template <typename Start>
  error_code Run(Start&& start) {
    return Run(std::forward<Start>(start), [this] {
      error_code ignored;
      Tcp().socket().close(ignored);
    });
  }

  beast::tcp_stream& Tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  Status Connect() {
    Reset();
    if (options.tls && !ssl_ready) {
      error_code ec;
      ssl_ctx.set_verify_mode(asio::ssl::verify_peer, ec);
      if (!options.ca_file.empty()) {
        ssl_ctx.load_verify_file(options.ca_file, ec);
      } else {
        ssl_ctx.set_default_verify_paths(ec);
      }
      if (ec) return Status::InvalidArgument("TLS CA bundle: " + ec.message());
      ssl_ready = true;
    }
    tcp::resolver resolver(ioc);
    tcp::resolver::results_type endpoints;
    error_code ec = Run(
        [&](auto handler) {
          resolver.async_resolve(
              options.host, std::to_string(options.port),
              [&endpoints, handler](error_code e, tcp::resolver::results_type r) {
                endpoints = std::move(r);
                handler(e);
              });
        },
        [&resolver] { resolver.cancel(); });
    if (ec) return Status::Unavailable("resolve " + options.host + ": " + ec.message());
    if (options.tls) {
      tls.emplace(ioc, ssl_ctx);
    } else {
      plain.emplace(ioc);
    }
    Tcp().expires_after(options.timeout);
    ec = Run([&](auto handler) { Tcp().async_connect(endpoints, handler); });
    if (ec) {
      Reset();
      return Status::Unavailable("connect to " + options.host + ":" + std::to_string(options.port) +
                                 ": " + ec.message());
    }
    if (options.tls) {
      if (!SSL_set_tlsext_host_name(tls->native_handle(), options.host.c_str())) {
        Reset();
        return Status::Unavailable("TLS: cannot set the server name");
      }
      tls->set_verify_callback(asio::ssl::host_name_verification(options.host));
      Tcp().expires_after(options.timeout);
      ec =
          Run([&](auto handler) { tls->async_handshake(asio::ssl::stream_base::client, handler); });
      if (ec) {
        Reset();
        return Status::Unavailable("TLS handshake with " + options.host + ": " + ec.message());
      }
    }
    return Status::Ok();
  }

  void Reset() {
    if (plain) {
      error_code ignored;
      plain->socket().shutdown(tcp::socket::shutdown_both, ignored);
      plain->close();
    }
    if (tls) beast::get_lowest_layer(*tls).close();
    plain.reset();
    tls.reset();
    buffer.clear();
  }

  template <typename Stream>
  Result<HttpReply> Exchange(Stream& stream, bhttp::request<bhttp::string_body>& req, bool* keep) {
    Tcp().expires_after(options.timeout);
    error_code ec = Run([&](auto handler) { bhttp::async_write(stream, req, handler); });
    if (ec) return Status::Unavailable("send to " + options.host + ": " + ec.message());
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options.max_reply_bytes);
    parser.header_limit(64u << 10);
    Tcp().expires_after(options.timeout);
    ec = Run([&](auto handler) { bhttp::async_read(stream, buffer, parser, handler); });
    if (ec) return Status::Unavailable("reply from " + options.host + ": " + ec.message());
    auto res = parser.release();
    *keep = res.keep_alive();
    return HttpReply{static_cast<int>(res.result_int()), std::move(res.body())};
  }

  Result<HttpReply> PostOnce(const std::string& target, const std::string& body, bool* reused) {
    *reused = plain.has_value() || tls.has_value();
    if (!*reused) {
      if (Status s = Connect(); !s.ok()) return s;
    }
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, target, 11};
    // RFC 9110: an IPv6 literal in brackets, and the port (a proxy in front of ClickHouse may
    // route by it).
    const bool ipv6 = options.host.find(':') != std::string::npos;
    req.set(bhttp::field::host,
            (ipv6 ? "[" + options.host + "]" : options.host) + ":" + std::to_string(options.port));
    req.set(bhttp::field::user_agent, "stickmeter");
    req.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    for (const auto& [name, value] : options.headers) req.set(name, value);
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    bool keep = false;
    auto reply = tls ? Exchange(*tls, req, &keep) : Exchange(*plain, req, &keep);
    if (!reply.ok() || !keep) Reset();
    return reply;
  }

  HttpClientOptions options;
  asio::io_context ioc;
  asio::ssl::context ssl_ctx;
  bool ssl_ready = false;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpClient::~HttpClient() { impl_->Reset(); }

Result<HttpReply> HttpClient::Post(const std::string& target, const std::string& body) {
  bool reused = false;
  auto reply = impl_->PostOnce(target, body, &reused);
  // A kept connection may have been closed by the server while idle: try a fresh one once.
  if (!reply.ok() && reused) reply = impl_->PostOnce(target, body, &reused);
  return reply;
}

void HttpClient::Close() { impl_->Reset(); }

}  // namespace stickmeter::sink
