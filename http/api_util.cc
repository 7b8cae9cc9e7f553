// The API's error mapping and query-string decoding, and the gzip functions of the UI's files
// (http/api.h).
#include "http/api_util.h"

#include <boost/beast/zlib/inflate_stream.hpp>
#include <charconv>

#include "billing/time_parse.h"

namespace stickmeter::http::internal {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

ApiError FromStatus(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
      return ApiError{bhttp::status::bad_request, "bad_request", s.message()};
    case Status::Code::kNotFound:
      return ApiError{bhttp::status::not_found, "not_found", s.message()};
    case Status::Code::kUnavailable:
      return ApiError{bhttp::status::service_unavailable, "unavailable", s.message()};
    default:
      return ApiError{bhttp::status::internal_server_error, "internal", "store: " + s.ToString()};
  }
}

ApiResult<std::string> PercentDecode(std::string_view in, std::string_view what) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      int hi = i + 2 < in.size() ? HexValue(in[i + 1]) : -1;
      int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) return BadRequest(std::string(what) + ": bad percent-encoding");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

ApiResult<Params> Params::Parse(std::string_view query,
                                std::initializer_list<std::string_view> allowed) {
  Params params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    API_ASSIGN_OR_RETURN(std::string name, PercentDecode(pair.substr(0, eq), "query"));
    std::string value;
    if (eq != std::string_view::npos) {
      API_ASSIGN_OR_RETURN(value, PercentDecode(pair.substr(eq + 1), name));
    }
    bool known = false;
    for (auto a : allowed) known |= a == name;
    if (!known) return BadRequest(name.substr(0, 64) + ": unknown parameter");
    if (!params.values_.emplace(name, std::move(value)).second) {
      return BadRequest(name + ": given more than once");
    }
  }
  return params;
}

ApiResult<std::string> Params::Required(const std::string& name) const {
  auto v = Get(name);
  if (!v) return BadRequest(name + ": missing");
  if (v->empty()) return BadRequest(name + ": empty");
  return std::move(*v);
}

ApiResult<std::optional<std::string>> Params::NonEmpty(const std::string& name) const {
  auto v = Get(name);
  if (v && v->empty()) return BadRequest(name + ": empty");
  return v;
}

ApiResult<int64_t> Params::Time(const std::string& name) const {
  API_ASSIGN_OR_RETURN(const std::string text, Required(name));
  auto t = billing::ParseTime(text);
  if (!t.ok()) return BadRequest(name + ": " + t.status().message());
  return *t;
}

ApiResult<std::optional<int64_t>> Params::OptionalTime(const std::string& name) const {
  if (!Get(name)) return std::optional<int64_t>();
  API_ASSIGN_OR_RETURN(const int64_t t, Time(name));
  return std::optional<int64_t>(t);
}

ApiResult<std::pair<int64_t, int64_t>> Params::Range() const {
  API_ASSIGN_OR_RETURN(const int64_t from, Time("from"));
  API_ASSIGN_OR_RETURN(const int64_t to, Time("to"));
  if (from >= to) return BadRequest("from: must be before to (the range is [from, to))");
  return std::make_pair(from, to);
}

ApiResult<size_t> Params::Limit(size_t def, size_t max) const {
  auto v = Get("limit");
  if (!v) return def;
  size_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || n == 0 || n > max) {
    return BadRequest("limit: \"" + v->substr(0, 32) + "\" is not an integer from 1 to " +
                      std::to_string(max));
  }
  return n;
}

ApiResult<size_t> Params::Count(const std::string& name) const {
  auto v = Get(name);
  if (!v) return size_t{0};
  size_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || ptr != v->data() + v->size()) {
    return BadRequest(name + ": \"" + v->substr(0, 32) + "\" is not a non-negative integer");
  }
  return n;
}

}  // namespace stickmeter::http::internal

namespace stickmeter::http {
namespace {

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool AcceptsGzip(std::string_view header) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = TrimSpaces(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    std::string_view name = TrimSpaces(item.substr(0, item.find(';')));
    bool gzip = name.size() == 4 && (name == "gzip" || name == "GZIP" || name == "Gzip");
    if (!gzip && name != "*") continue;
    size_t q = item.find("q=");
    if (q != std::string_view::npos) {
      std::string_view qv = TrimSpaces(item.substr(q + 2));
      if (qv == "0" || qv == "0." || qv == "0.0" || qv == "0.00" || qv == "0.000") return false;
    }
    return true;
  }
  return false;
}

std::optional<std::string> Gunzip(std::string_view data) {
  // RFC 1952 member header, then raw deflate data.
  if (data.size() < 18 || static_cast<unsigned char>(data[0]) != 0x1f ||
      static_cast<unsigned char>(data[1]) != 0x8b || data[2] != 8) {
    return std::nullopt;
  }
  unsigned flags = static_cast<unsigned char>(data[3]);
  size_t pos = 10;
  if (flags & 4) {
    if (pos + 2 > data.size()) return std::nullopt;
    pos += 2 + (static_cast<unsigned char>(data[pos]) |
                (static_cast<unsigned char>(data[pos + 1]) << 8));
  }
  for (unsigned bit : {8u, 16u}) {
    if (flags & bit) {
      while (pos < data.size() && data[pos] != '\0') ++pos;
      ++pos;
    }
  }
  if (flags & 2) pos += 2;
  if (pos >= data.size()) return std::nullopt;
  boost::beast::zlib::inflate_stream inflater;
  boost::beast::zlib::z_params zs;
  zs.next_in = data.data() + pos;
  zs.avail_in = data.size() - pos;
  std::string out;
  char buf[16384];
  for (;;) {
    zs.next_out = buf;
    zs.avail_out = sizeof buf;
    boost::system::error_code ec;
    inflater.write(zs, boost::beast::zlib::Flush::sync, ec);
    out.append(buf, sizeof buf - zs.avail_out);
    if (ec == boost::beast::zlib::error::end_of_stream) return out;
    if (ec && ec != boost::beast::zlib::error::need_buffers) return std::nullopt;
    if (zs.avail_in == 0 && zs.avail_out != 0) return std::nullopt;  // truncated
  }
}

}  // namespace stickmeter::http
