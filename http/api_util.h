// Internals shared by the API's handlers (http/api.cc, http/quota_handlers.cc): the error
// thrown by a handler and turned into a 4xx/5xx by Api::Handle(), strict query-string parsing,
// and JSON responses. Not part of the http library's interface.
#pragma once

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "billing/time_parse.h"
#include "common/status.h"
#include "http/api.h"
#include "http/json_util.h"
#include "http/server.h"

namespace stickmeter::http::internal {

namespace bhttp = boost::beast::http;

inline constexpr std::string_view kJsonType = "application/json";

// Thrown by the handlers and caught in Api::Handle(): a parameter error becomes a 4xx.
struct ApiError {
  bhttp::status status;
  std::string code;
  std::string message;
};

[[noreturn]] inline void BadRequest(std::string message) {
  throw ApiError{bhttp::status::bad_request, "bad_request", std::move(message)};
}

[[noreturn]] inline void Fail(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
      throw ApiError{bhttp::status::bad_request, "bad_request", s.message()};
    case Status::Code::kNotFound:
      throw ApiError{bhttp::status::not_found, "not_found", s.message()};
    case Status::Code::kUnavailable:
      throw ApiError{bhttp::status::service_unavailable, "unavailable", s.message()};
    default:
      throw ApiError{bhttp::status::internal_server_error, "internal", "store: " + s.ToString()};
  }
}

template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) Fail(r.status());
  return std::move(r).value();
}
inline void Must(const Status& s) {
  if (!s.ok()) Fail(s);
}
// Decodes %XX and '+' of a query-string component; `what` names it in the error.
std::string PercentDecode(std::string_view in, std::string_view what);

// The query string as a map; duplicates and parameters the route does not know are errors, so
// a typo such as `sorce=` can never silently widen a billing query.
class Params {
 public:
  Params(std::string_view query, std::initializer_list<std::string_view> allowed) {
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (pair.empty()) continue;
      size_t eq = pair.find('=');
      std::string name = PercentDecode(pair.substr(0, eq), "query");
      std::string value =
          eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1), name);
      bool known = false;
      for (auto a : allowed) known |= a == name;
      if (!known) BadRequest(name.substr(0, 64) + ": unknown parameter");
      if (!values_.emplace(name, std::move(value)).second) {
        BadRequest(name + ": given more than once");
      }
    }
  }

  std::optional<std::string> Get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }

  std::string Required(const std::string& name) const {
    auto v = Get(name);
    if (!v) BadRequest(name + ": missing");
    if (v->empty()) BadRequest(name + ": empty");
    return *v;
  }

  std::optional<std::string> NonEmpty(const std::string& name) const {
    auto v = Get(name);
    if (v && v->empty()) BadRequest(name + ": empty");
    return v;
  }

  int64_t Time(const std::string& name) const {
    auto t = billing::ParseTime(Required(name));
    if (!t.ok()) BadRequest(name + ": " + t.status().message());
    return *t;
  }

  std::optional<int64_t> OptionalTime(const std::string& name) const {
    if (!Get(name)) return std::nullopt;
    return Time(name);
  }

  // [from, to) with from < to.
  std::pair<int64_t, int64_t> Range() const {
    int64_t from = Time("from");
    int64_t to = Time("to");
    if (from >= to) BadRequest("from: must be before to (the range is [from, to))");
    return {from, to};
  }

  size_t Limit(size_t def, size_t max) const {
    auto v = Get("limit");
    if (!v) return def;
    size_t n = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || n == 0 || n > max) {
      BadRequest("limit: \"" + v->substr(0, 32) + "\" is not an integer from 1 to " +
                 std::to_string(max));
    }
    return n;
  }

  // A non-negative integer parameter (e.g. offset); 0 when absent.
  size_t Count(const std::string& name) const {
    auto v = Get(name);
    if (!v) return 0;
    size_t n = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (v->empty() || ec != std::errc() || ptr != v->data() + v->size()) {
      BadRequest(name + ": \"" + v->substr(0, 32) + "\" is not a non-negative integer");
    }
    return n;
  }

 private:
  std::map<std::string, std::string> values_;
};

// A 200 whose body is `json_text`, already JSON (ending with a newline).
inline Response JsonTextResponse(unsigned version, std::string json_text) {
  Response res{bhttp::status::ok, version};
  res.set(bhttp::field::content_type, kJsonType);
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = std::move(json_text);
  return res;
}

inline Response JsonResponse(unsigned version, const nlohmann::json& body) {
  std::string text = DumpJson(body);
  text += '\n';
  return JsonTextResponse(version, std::move(text));
}

// The /api/v1/quotas routes (http/quota_handlers.cc): `path` is the route, `quotas` null when
// quotas are not enabled. Throws ApiError for a bad request.
Response HandleQuotas(const Request& request, std::string_view path, std::string_view query,
                      teach::QuotaService* quotas, const std::string& billing_tz);

}  // namespace stickmeter::http::internal
