// Internals shared by the API's handlers (http/routes.cc, http/quota_handlers.cc,
// http/query_checks.cc, http/static_files.cc): the refusal a handler returns (ApiError) and the
// result types that carry it, strict query-string parsing, and JSON responses. Not part of the
// http library's interface.
//
// Errors are values: a handler returns ApiResult<Response>, a check returns ApiCheck, and the
// route table's dispatcher (Api::Handle, http/api.cc) is the one place that turns an ApiError
// into the JSON error reply of docs/api.md. API_TRY and API_ASSIGN_OR_RETURN pass an error up,
// from an ApiResult, an ApiCheck, or the store's Status or Result (mapped by FromStatus).
//
// Thread-safety: values only, no shared state; safe on any thread.
#pragma once

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/status.h"
#include "http/api.h"
#include "http/json_util.h"
#include "http/server.h"

namespace stickmeter::http::internal {

namespace bhttp = boost::beast::http;

inline constexpr std::string_view kJsonType = "application/json";

// A refusal: the HTTP status, the error code and the message (naming the parameter first) of
// `{"error":{"code":...,"message":...}}`.
struct ApiError {
  bhttp::status status;
  std::string code;
  std::string message;
};

inline ApiError BadRequest(std::string message) {
  return ApiError{bhttp::status::bad_request, "bad_request", std::move(message)};
}

// A store or service Status as the API answers it: InvalidArgument 400, NotFound 404,
// Unavailable 503, anything else 500 (with the store's words). `s` must not be OK.
ApiError FromStatus(const Status& s);

// Holds either a T or an ApiError.
template <typename T>
class [[nodiscard]] ApiResult {
 public:
  ApiResult(T value) : data_(std::move(value)) {}         // NOLINT: implicit by design
  ApiResult(ApiError error) : data_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(data_); }
  T& value() & { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  ApiError&& error() && { return std::get<ApiError>(std::move(data_)); }
  T* operator->() { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, ApiError> data_;
};

// A check's outcome: nothing when it passed, the refusal otherwise.
using ApiCheck = std::optional<ApiError>;

namespace detail {
template <typename T>
bool Failed(const ApiResult<T>& r) {
  return !r.ok();
}
template <typename T>
ApiError ErrorOf(ApiResult<T>&& r) {
  return std::move(r).error();
}
template <typename T>
bool Failed(const Result<T>& r) {
  return !r.ok();
}
template <typename T>
ApiError ErrorOf(Result<T>&& r) {
  return FromStatus(r.status());
}
inline bool Failed(const Status& s) { return !s.ok(); }
inline ApiError ErrorOf(Status&& s) { return FromStatus(s); }
inline bool Failed(const ApiCheck& c) { return c.has_value(); }
inline ApiError ErrorOf(ApiCheck&& c) { return std::move(*c); }
}  // namespace detail

#define API_CONCAT_INNER_(a, b) a##b
#define API_CONCAT_(a, b) API_CONCAT_INNER_(a, b)

// Returns the error of `expr` (an ApiCheck, ApiResult, Status or Result) from the enclosing
// function, which returns an ApiResult or an ApiCheck.
#define API_TRY(expr)                                                            \
  do {                                                                           \
    auto&& api_try_ = (expr);                                                    \
    if (::stickmeter::http::internal::detail::Failed(api_try_)) {                \
      return ::stickmeter::http::internal::detail::ErrorOf(std::move(api_try_)); \
    }                                                                            \
  } while (false)

// `lhs = value of expr`, or returns its error as API_TRY does. `lhs` may declare a variable.
// Several statements: inside an `if`, give it braces.
#define API_ASSIGN_OR_RETURN(lhs, expr) \
  API_ASSIGN_OR_RETURN_IMPL_(API_CONCAT_(api_result_, __LINE__), lhs, expr)
#define API_ASSIGN_OR_RETURN_IMPL_(result, lhs, expr)                        \
  auto result = (expr);                                                      \
  if (::stickmeter::http::internal::detail::Failed(result)) {                \
    return ::stickmeter::http::internal::detail::ErrorOf(std::move(result)); \
  }                                                                          \
  lhs = std::move(result).value()

// Decodes %XX and '+' of a query-string component; `what` names it in the error.
ApiResult<std::string> PercentDecode(std::string_view in, std::string_view what);

// The query string as a map; duplicates and parameters the route does not know are errors, so
// a typo such as `sorce=` can never silently widen a billing query.
class Params {
 public:
  static ApiResult<Params> Parse(std::string_view query,
                                 std::initializer_list<std::string_view> allowed);

  std::optional<std::string> Get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }

  // Present and not empty.
  ApiResult<std::string> Required(const std::string& name) const;
  // Absent, or not empty.
  ApiResult<std::optional<std::string>> NonEmpty(const std::string& name) const;
  ApiResult<int64_t> Time(const std::string& name) const;
  ApiResult<std::optional<int64_t>> OptionalTime(const std::string& name) const;
  // [from, to) with from < to.
  ApiResult<std::pair<int64_t, int64_t>> Range() const;
  // `limit`: `def` when absent, else an integer from 1 to `max`.
  ApiResult<size_t> Limit(size_t def, size_t max) const;
  // A non-negative integer parameter (e.g. offset); 0 when absent.
  ApiResult<size_t> Count(const std::string& name) const;

 private:
  Params() = default;
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

}  // namespace stickmeter::http::internal
