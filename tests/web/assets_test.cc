// Checks the embedded UI against the files in web/static/: every file is found under its path,
// decodes to exactly its bytes, carries the right content type and a strong ETag.
#include "web/assets.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace stickmeter::web {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Inflates a gzip member; returns "<inflate error N>" on failure so the comparison shows it.
std::string Gunzip(std::string_view data) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return "<inflateInit failed>";
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return "<inflate error " + std::to_string(rc) + ">";
  return out;
}

std::string Decoded(const Asset& asset) {
  return asset.gzipped ? Gunzip(asset.body) : std::string(asset.body);
}

std::vector<fs::path> StaticFiles() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(STICKMETER_WEB_STATIC_DIR)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  return files;
}

TEST(WebAssetsTest, EveryStaticFileIsEmbeddedWithItsExactBytes) {
  auto files = StaticFiles();
  ASSERT_FALSE(files.empty());
  for (const auto& file : files) {
    std::string path = "/" + fs::relative(file, STICKMETER_WEB_STATIC_DIR).generic_string();
    const Asset* asset = FindAsset(path);
    ASSERT_NE(asset, nullptr) << path;
    EXPECT_EQ(Decoded(*asset), ReadFile(file)) << path;
    if (asset->gzipped) {
      // Only compressed when that pays off.
      EXPECT_LT(asset->body.size(), ReadFile(file).size()) << path;
    }
  }
}

TEST(WebAssetsTest, RootIsTheIndexPage) {
  const Asset* root = FindAsset("/");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root, FindAsset("/index.html"));
  EXPECT_EQ(root->content_type, "text/html; charset=utf-8");
  EXPECT_NE(Decoded(*root).find("<script type=\"module\" src=\"app.js\">"), std::string::npos);
  EXPECT_EQ(FindAsset("/?x=1"), root);
  EXPECT_EQ(FindAsset(""), root);
}

TEST(WebAssetsTest, ContentTypesFollowTheExtension) {
  EXPECT_EQ(FindAsset("/app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindAsset("/app.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(FindAsset("/favicon.svg")->content_type, "image/svg+xml");
}

TEST(WebAssetsTest, UnknownPathsAreNotFound) {
  EXPECT_EQ(FindAsset("/nope.js"), nullptr);
  EXPECT_EQ(FindAsset("/../web/static/app.js"), nullptr);
  EXPECT_EQ(FindAsset("app.js"), nullptr);  // request targets always start with '/'
  EXPECT_EQ(FindAsset("/api/v1/health"), nullptr);
  EXPECT_EQ(FindAsset("/APP.JS"), nullptr);
}

TEST(WebAssetsTest, EtagsAreQuotedStrongAndDistinct) {
  std::set<std::string> etags;
  for (const auto& file : StaticFiles()) {
    std::string path = "/" + fs::relative(file, STICKMETER_WEB_STATIC_DIR).generic_string();
    const Asset* asset = FindAsset(path);
    ASSERT_NE(asset, nullptr) << path;
    std::string etag(asset->etag);
    ASSERT_GE(etag.size(), 18u) << path;
    EXPECT_EQ(etag.front(), '"') << path;
    EXPECT_EQ(etag.back(), '"') << path;
    EXPECT_NE(etag.substr(0, 2), "W/") << path;
    EXPECT_TRUE(etags.insert(etag).second) << "duplicate ETag " << etag << " for " << path;
  }
}

// The whole UI is meant to stay light: everything a first visit downloads, as sent.
TEST(WebAssetsTest, WholeUiStaysUnderItsSizeBudget) {
  size_t total = 0;
  for (const auto& file : StaticFiles()) {
    total += FindAsset("/" + fs::relative(file, STICKMETER_WEB_STATIC_DIR).generic_string())
                 ->body.size();
  }
  EXPECT_LT(total, 150u * 1024u);
}

}  // namespace
}  // namespace stickmeter::web
