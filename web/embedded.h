// The table of embedded static files, generated at build time by embed_assets.cmake. Internal to
// the web library: users go through FindAsset() in web/assets.h.
//
// Thread-safety: constant data with static storage duration; safe to read from any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include "web/assets.h"

namespace stickmeter::web::internal {

struct EmbeddedFile {
  std::string_view path;  // "/app.js": the file's path under web/static/, with a leading slash
  Asset asset;
};

// Sorted by path (byte order). kEmbeddedFileCount may be 0, in which case the array holds one
// empty placeholder entry that must not be used.
extern const EmbeddedFile kEmbeddedFiles[];
extern const std::size_t kEmbeddedFileCount;

}  // namespace stickmeter::web::internal
