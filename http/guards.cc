#include "http/guards.h"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

namespace stickmeter::http {
namespace bhttp = boost::beast::http;

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<boost::asio::ip::address> AsIp(const std::string& name) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(name, ec);
  if (ec) return std::nullopt;
  return address;
}

}  // namespace

std::optional<std::string> CanonicalHost(std::string_view value) {
  value = Trim(value);
  std::string_view name, port;
  bool bracketed = false;
  if (!value.empty() && value.front() == '[') {
    size_t close = value.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    name = value.substr(1, close - 1);
    std::string_view rest = value.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
    bracketed = true;
  } else {
    size_t colon = value.find(':');
    name = value.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = value.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
  }
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  std::string out;
  for (char c : name) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!out.empty() && out.back() == '.') out.pop_back();
  // Only the characters of a DNS name or an IP literal: anything else is no host of ours.
  if (out.empty() ||
      out.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-._:") != std::string::npos) {
    return std::nullopt;
  }
  // The same address may be written several ways ("[0:0::1]", "::1"); compare one form.
  if (auto ip = AsIp(out)) {
    if (ip->is_v6() != bracketed) return std::nullopt;  // IPv6 needs brackets, IPv4 has none
    return ip->to_string();
  }
  if (bracketed || out.find(':') != std::string::npos) return std::nullopt;
  return out;
}

HostPolicy::HostPolicy(std::string_view address, const std::vector<std::string>& extra) {
  names_ = {"localhost", "127.0.0.1", "::1"};
  std::string listen(address);
  if (listen.size() > 2 && listen.front() == '[' && listen.back() == ']') {
    listen = listen.substr(1, listen.size() - 2);
  }
  if (auto ip = AsIp(listen)) {
    names_.insert(ip->to_string());
    any_ip_ = ip->is_unspecified();
  } else if (auto name = CanonicalHost(listen)) {
    names_.insert(*name);
  }
  for (const std::string& e : extra) {
    if (auto name = CanonicalHost(e)) names_.insert(*name);
  }
}

bool HostPolicy::Allows(std::optional<std::string_view> host) const {
  if (!host) return true;
  auto name = CanonicalHost(*host);
  if (!name) return false;
  if (names_.count(*name)) return true;
  return any_ip_ && AsIp(*name).has_value();
}

std::optional<std::string> FramingProblem(const bhttp::fields& header) {
  size_t codings = 0;
  std::string_view coding;
  for (const auto& f : header) {
    if (f.name() != bhttp::field::transfer_encoding) continue;
    ++codings;
    coding = f.value();
  }
  if (codings == 0) return std::nullopt;
  if (codings > 1) return "transfer-encoding: given more than once";
  if (!boost::beast::iequals(Trim(coding), "chunked")) {
    return "transfer-encoding: \"" + std::string(coding.substr(0, 64)) +
           "\" is not supported; only chunked";
  }
  if (header.find(bhttp::field::content_length) != header.end()) {
    return "transfer-encoding: not allowed together with Content-Length";
  }
  return std::nullopt;
}

void SetSecurityHeaders(bhttp::fields& header) {
  header.set("Content-Security-Policy", kContentSecurityPolicy);
  header.set(bhttp::field::x_frame_options, "DENY");
  header.set("Referrer-Policy", "no-referrer");
  header.set("X-Content-Type-Options", "nosniff");
}

}  // namespace stickmeter::http
