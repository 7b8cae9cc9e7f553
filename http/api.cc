// Api: the route table's rules (Host, methods, CORS, authentication) and its one error path. The
// table and the read handlers are in routes.cc.
#include "http/api.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <boost/beast/http/field.hpp>
#include <exception>
#include <nlohmann/json.hpp>

#include "http/api_util.h"
#include "http/json_util.h"
#include "http/routes.h"

namespace stickmeter::http {
namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

using internal::ApiError;
using internal::ApiResult;
using internal::FindRoute;
using internal::kJsonType;
using internal::MethodAllowed;
using internal::Methods;
using internal::Route;

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void Digest(std::string_view data, unsigned char* out) {
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
}

// The request metrics' `route` label of a path: its route's label ("/api/v1/usage", "ui" for the
// UI's files, "other" for unknown API paths). Bounded, and known before the handler runs, so a
// refused request (a 400, 404, 421, ...) is counted under its endpoint too.
std::string RouteLabel(std::string_view path) {
  const Route* route = FindRoute(path);
  return std::string(route != nullptr ? route->label : "other");
}

}  // namespace

bool BearerMatches(std::string_view authorization, std::string_view token) {
  authorization = TrimSpaces(authorization);
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  std::string_view given = TrimSpaces(authorization.substr(kScheme.size()));
  // Comparing digests keeps the time independent of both the content and the length.
  unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
  Digest(given, a);
  Digest(token, b);
  return CRYPTO_memcmp(a, b, 32) == 0;
}

Api::Api(const ServerOptions& options, tsdb::QueryService& store, const ServerHooks& hooks)
    : options_(options),
      hosts_(options.address, options.allowed_hosts),
      store_(store),
      hooks_(hooks) {}

bool Api::HostAccepted(const Request& request) const {
  // A token already keeps other sites' pages out: they cannot know it.
  if (options_.token) return true;
  auto it = request.find(bhttp::field::host);
  return hosts_.Allows(it == request.end() ? std::nullopt
                                           : std::optional<std::string_view>(it->value()));
}

std::string_view Api::CorsOrigin(const Request& request) const {
  if (options_.cors_origins.empty()) return {};
  auto origin = request.find(bhttp::field::origin);
  const std::string_view sent =
      origin == request.end() ? std::string_view() : std::string_view(origin->value());
  for (const std::string& allowed : options_.cors_origins) {
    if (allowed == "*") return allowed;
    if (!sent.empty() && allowed == sent) return sent;
  }
  return {};
}

Response Api::Error(unsigned version, bhttp::status status, std::string_view code,
                    std::string_view message) {
  Response res{status, version};
  res.set(bhttp::field::content_type, kJsonType);
  res.set(bhttp::field::cache_control, "no-store");
  SetSecurityHeaders(res);
  json body = {{"error", {{"code", code}, {"message", message}}}};
  res.body() = DumpJson(body);
  res.body() += '\n';
  return res;
}

ApiReply Api::Handle(const Request& request) const {
  ApiReply reply;
  const std::string_view target = request.target();
  reply.route = RouteLabel(target.substr(0, target.find('?')));
  try {
    ApiResult<Response> result = Route(request, reply.export_job);
    if (result.ok()) {
      reply.response = std::move(result).value();
    } else {
      // The one place a refusal becomes the JSON error reply.
      const ApiError error = std::move(result).error();
      reply.export_job.reset();
      reply.response = Error(request.version(), error.status, error.code, error.message);
    }
  } catch (const std::exception& e) {
    // Not a refusal but a bug or an exhausted resource (bad_alloc): still a JSON 500, never a
    // dropped connection.
    reply.export_job.reset();
    reply.response = Error(request.version(), bhttp::status::internal_server_error, "internal",
                           std::string("internal error: ") + e.what());
  }
  Finish(request, reply);
  return reply;
}

bool Api::IsQuery(const Request& request) const {
  std::string_view target = request.target();
  const internal::Route* route = FindRoute(target.substr(0, target.find('?')));
  if (route == nullptr || !route->query || !MethodAllowed(request.method(), route->methods) ||
      !HostAccepted(request)) {
    return false;
  }
  // A request without the right token is refused at once, without taking a query's place.
  if (!options_.token) return true;
  auto it = request.find(bhttp::field::authorization);
  return it != request.end() && BearerMatches(it->value(), *options_.token);
}

Response Api::Refuse(const Request& request, bhttp::status status, std::string_view code,
                     std::string_view message) const {
  ApiReply reply;
  reply.response = Error(request.version(), status, code, message);
  Finish(request, reply);
  return std::move(reply.response);
}

void Api::Finish(const Request& request, ApiReply& reply) const {
  Response& res = reply.response;
  SetSecurityHeaders(res);
  if (res.result() == bhttp::status::unauthorized) {
    res.set(bhttp::field::www_authenticate, "Bearer realm=\"stickmeter\"");
  }
  if (const std::string_view origin = CorsOrigin(request); !origin.empty()) {
    res.set(bhttp::field::access_control_allow_origin, origin);
    res.set(bhttp::field::access_control_expose_headers,
            "X-Stickmeter-Partial, X-Stickmeter-Coverage, X-Content-SHA256, Content-Disposition");
  }
  // The answer depends on the Origin when only some are allowed: caches must keep them apart.
  const auto& origins = options_.cors_origins;
  if (!origins.empty() && std::find(origins.begin(), origins.end(), "*") == origins.end()) {
    auto vary = res.find(bhttp::field::vary);
    res.set(bhttp::field::vary,
            vary == res.end() ? std::string("Origin") : std::string(vary->value()) + ", Origin");
  }
  if (!reply.export_job) {
    res.keep_alive(request.keep_alive());
    res.prepare_payload();
    if (request.method() == bhttp::verb::head) res.body().clear();  // keeps Content-Length
  }
}

ApiResult<Response> Api::Route(const Request& request,
                               std::optional<billing::ResolvedExport>& export_job) const {
  const unsigned version = request.version();
  std::string_view target = request.target();
  size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  std::string_view query = qmark == std::string_view::npos ? "" : target.substr(qmark + 1);
  if (!HostAccepted(request)) {
    // Before anything else, so a page under another name learns nothing, not even which paths
    // exist.
    auto host = request.find(bhttp::field::host);
    std::string name(host == request.end() ? std::string_view()
                                           : std::string_view(host->value()).substr(0, 128));
    return ApiError{bhttp::status::misdirected_request, "wrong_host",
                    "host: \"" + name +
                        "\" does not name this server; list it with --http-host, or require a "
                        "token (--token-file)"};
  }
  if (path.empty() || path.front() != '/') {
    return internal::BadRequest("target: not an absolute path");
  }

  const internal::Route* route = FindRoute(path);
  if (route == nullptr || route->handler == nullptr) {
    return ApiError{bhttp::status::not_found, "not_found",
                    "path: no such endpoint \"" + std::string(path.substr(0, 128)) + "\""};
  }

  // Methods: GET everywhere, HEAD except for exports, PUT and DELETE for quotas, OPTIONS for
  // CORS preflights.
  const Methods methods = route->methods;
  const char* allow = methods == Methods::kExport      ? "GET"
                      : methods == Methods::kReadWrite ? "GET, HEAD, PUT, DELETE"
                                                       : "GET, HEAD";
  bhttp::verb method = request.method();
  if (method == bhttp::verb::options && !CorsOrigin(request).empty()) {
    Response res{bhttp::status::no_content, version};
    res.set(bhttp::field::access_control_allow_methods, allow);
    res.set(bhttp::field::access_control_allow_headers,
            methods == Methods::kReadWrite ? "Authorization, Content-Type" : "Authorization");
    res.set(bhttp::field::access_control_max_age, "600");
    res.set(bhttp::field::allow, allow);
    return res;
  }
  if (!MethodAllowed(method, methods)) {
    Response res = Error(
        version, bhttp::status::method_not_allowed, "method_not_allowed",
        "method: " + std::string(request.method_string()) + " is not allowed here; use " + allow);
    res.set(bhttp::field::allow, allow);
    return res;
  }

  // Authentication: every route but the open ones, health and the UI's files (which hold no
  // data and which a browser loads before it can send a token).
  if (options_.token && !route->open) {
    auto it = request.find(bhttp::field::authorization);
    bool good = it != request.end() && BearerMatches(it->value(), *options_.token);
    if (!good) {
      return ApiError{bhttp::status::unauthorized, "unauthorized",
                      it == request.end() ? "authorization: missing bearer token"
                                          : "authorization: wrong bearer token"};
    }
  }

  const internal::RouteContext ctx{request, path, query, options_, store_, hooks_, export_job};
  return route->handler(ctx);
}

}  // namespace stickmeter::http
