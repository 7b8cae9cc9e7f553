// The web UI's files (web/, embedded at build time by the web component), served for every path
// outside /api/ by the route table (http/routes.h): ETag and If-None-Match, the gzipped bytes to
// clients that accept gzip and the decompressed ones to the others, Cache-Control no-cache so a
// new build is picked up at once. Query strings (cache busters) are ignored, never parsed.
//
// Thread-safety: reads only the embedded, immutable files; safe on any thread (it runs on the
// I/O threads). Failure: 404 for a path with no file (or a binary built without the UI), 500 if
// an embedded file is not valid gzip.
#pragma once

#include "http/api_util.h"
#include "http/routes.h"

namespace stickmeter::http::internal {

ApiResult<Response> ServeStaticFile(const RouteContext& ctx);

}  // namespace stickmeter::http::internal
