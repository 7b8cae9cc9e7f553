// The web UI's static files, embedded in the binary at build time.
//
// FindAsset() maps a request path ("/", "/app.js", ...) to an embedded file. The data lives in
// static storage for the life of the process; lookups are thread-safe.
#pragma once

#include <string_view>

namespace stickmeter::web {

struct Asset {
  std::string_view content_type;  // e.g. "text/html; charset=utf-8"
  std::string_view body;          // the file's bytes (gzip-compressed when `gzipped`)
  std::string_view etag;          // strong validator, quoted, derived from the content
  bool gzipped = false;
};

// Returns the asset for `path`, or nullptr. "/" is the UI's index page.
const Asset* FindAsset(std::string_view path);

}  // namespace stickmeter::web
