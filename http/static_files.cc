// Implementation of static_files.h.
#include "http/static_files.h"

#include <string>

#if STICKMETER_HAVE_WEB
#include "web/assets.h"
#endif

namespace stickmeter::http::internal {

ApiResult<Response> ServeStaticFile(const RouteContext& ctx) {
#if STICKMETER_HAVE_WEB
  const Request& request = ctx.request;
  const web::Asset* asset = web::FindAsset(ctx.path);
  if (asset == nullptr) {
    return ApiError{bhttp::status::not_found, "not_found",
                    "path: no such file \"" + std::string(ctx.path.substr(0, 128)) + "\""};
  }
  auto ae = request.find(bhttp::field::accept_encoding);
  const bool send_gzip = asset->gzipped && ae != request.end() && AcceptsGzip(ae->value());
  // The decompressed variant of a gzipped file is other bytes, so it gets its own validator.
  std::string etag(asset->etag);
  if (asset->gzipped && !send_gzip && etag.size() >= 2) etag.insert(etag.size() - 1, "-identity");
  Response res{bhttp::status::ok, request.version()};
  res.set(bhttp::field::etag, etag);
  res.set(bhttp::field::cache_control, "no-cache");
  res.set(bhttp::field::vary, "Accept-Encoding");
  auto inm = request.find(bhttp::field::if_none_match);
  if (inm != request.end() && !etag.empty()) {
    std::string_view v = inm->value();
    if (v == "*" || v.find(etag) != std::string_view::npos) {
      res.result(bhttp::status::not_modified);
      return res;
    }
  }
  res.set(bhttp::field::content_type, asset->content_type);
  if (asset->gzipped) {
    if (send_gzip) {
      res.set(bhttp::field::content_encoding, "gzip");
      res.body() = std::string(asset->body);
    } else {
      auto plain = Gunzip(asset->body);
      if (!plain) {
        return ApiError{bhttp::status::internal_server_error, "internal",
                        "embedded asset is not valid gzip"};
      }
      res.body() = std::move(*plain);
    }
  } else {
    res.body() = std::string(asset->body);
  }
  return res;
#else
  (void)ctx;
  return ApiError{bhttp::status::not_found, "not_found",
                  "path: the web UI is not built into this binary"};
#endif
}

}  // namespace stickmeter::http::internal
