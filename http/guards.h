// Checks every HTTP request passes before it is routed, and the headers every response carries.
//
// - HostPolicy: without a bearer token, the API answers only requests whose Host header names
//   this server. A web page the user visits can make the browser send requests to
//   127.0.0.1:8080 under its own domain name once that name resolves to 127.0.0.1 (DNS
//   rebinding); the browser then sends the attacker's name as Host, which this check refuses,
//   so such a page cannot read usage data. Requests without a Host (HTTP/1.0 tools) come from no
//   browser and are accepted.
// - FramingProblem: a request body is framed by Content-Length or by exactly
//   `Transfer-Encoding: chunked`. Any other coding, or both headers at once, lets a proxy in
//   front and this server disagree on where the request ends (request smuggling): refused.
// - SetSecurityHeaders: the headers that keep the UI from being framed, sniffed or leaking its
//   address, and restrict it to its own scripts and styles.
//
// Thread-safety: the functions are pure; a HostPolicy is immutable once built and may be used
// from any number of threads. Failures are reported as values (no exceptions).
#pragma once

#include <boost/beast/http/fields.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace stickmeter::http {

// The Content-Security-Policy of every response: the UI loads only its own files.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'";

class HostPolicy {
 public:
  // `address`: the address the server listens on (an IP literal, "[v6]" or "localhost");
  // `extra`: more accepted names (NAME or NAME:PORT; the port is ignored).
  HostPolicy(std::string_view address, const std::vector<std::string>& extra);

  // True when `host` (the Host header's value, nullopt when absent) may be answered. Accepted:
  // the listen address, localhost, 127.0.0.1, ::1 and the extra names, with any port; names
  // compare case-insensitively, IP literals by value. When the server listens on every address
  // (0.0.0.0 or ::), any IP literal is accepted: a browser that sends an IP literal as Host has
  // connected to that IP itself, which DNS rebinding cannot make it do.
  bool Allows(std::optional<std::string_view> host) const;

 private:
  std::set<std::string> names_;  // canonical forms (see CanonicalHost)
  bool any_ip_ = false;
};

// The name in a Host header value ("Example.COM:8080" -> "example.com", "[::1]:80" -> "::1"),
// lower-case, without a trailing dot, IP literals in their canonical text; nullopt when the
// value is not a host with an optional numeric port.
std::optional<std::string> CanonicalHost(std::string_view value);

// A reason (starting "transfer-encoding:") when the request's framing headers are refused;
// nullopt when they are fine.
std::optional<std::string> FramingProblem(const boost::beast::http::fields& header);

// Sets Content-Security-Policy, X-Frame-Options, Referrer-Policy and X-Content-Type-Options.
void SetSecurityHeaders(boost::beast::http::fields& header);

}  // namespace stickmeter::http
