#include "web/assets.h"

#include <algorithm>

#include "web/embedded.h"

namespace stickmeter::web {

const Asset* FindAsset(std::string_view path) {
  // The UI routes with the URL fragment, so the only page is index.html; a query string never
  // selects a different file.
  if (auto query = path.find('?'); query != std::string_view::npos) path = path.substr(0, query);
  if (path.empty() || path == "/") path = "/index.html";
  const internal::EmbeddedFile* begin = internal::kEmbeddedFiles;
  const internal::EmbeddedFile* end = begin + internal::kEmbeddedFileCount;
  auto it = std::lower_bound(
      begin, end, path,
      [](const internal::EmbeddedFile& file, std::string_view p) { return file.path < p; });
  if (it == end || it->path != path) return nullptr;
  return &it->asset;
}

}  // namespace stickmeter::web
