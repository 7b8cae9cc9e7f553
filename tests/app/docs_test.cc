// The documentation tells the truth: every HAProxy recipe in docs/haproxy.md is accepted by the
// real HAProxy (`haproxy -c`), and docs/cli.md shows exactly what `stickmeter CMD --help` prints.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/haproxy.h"
#include "tests/support/process.h"

namespace stickmeter::testing {
namespace {

namespace fs = std::filesystem;

// The bodies of the fenced code blocks of `language` in a Markdown text.
std::vector<std::string> CodeBlocks(const std::string& markdown, const std::string& language) {
  std::vector<std::string> blocks;
  const std::string open = "```" + language + "\n";
  size_t pos = 0;
  while ((pos = markdown.find(open, pos)) != std::string::npos) {
    size_t start = pos + open.size();
    size_t end = markdown.find("```", start);
    if (end == std::string::npos) break;
    blocks.push_back(markdown.substr(start, end - start));
    pos = end + 3;
  }
  return blocks;
}

void ReplaceAll(std::string& text, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size()) {
    text.replace(pos, from.size(), to);
  }
}

TEST(DocsTest, EveryHaproxyRecipeIsAcceptedByHaproxy) {
  TempDir dir("stickmeter-docs");
  // The TLS recipe names certificate files: make real ones.
  std::string certs = "cd " + dir.path().string() +
                      " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca "
                      "-keyout ca.key -out ca.pem >/dev/null 2>&1"
                      " && openssl req -newkey rsa:2048 -nodes -subj /CN=lb1 -keyout lb1.key "
                      "-out lb1.csr >/dev/null 2>&1"
                      " && openssl x509 -req -in lb1.csr -CA ca.pem -CAkey ca.key "
                      "-CAcreateserial -days 2 -out lb1.crt >/dev/null 2>&1"
                      " && cat lb1.crt lb1.key > lb1.pem";
  ASSERT_EQ(0, std::system(certs.c_str()));

  auto recipes =
      CodeBlocks(ReadFile(fs::path(STICKMETER_SOURCE_DIR) / "docs/haproxy.md"), "haproxy");
  ASSERT_GE(recipes.size(), 5u);
  for (size_t i = 0; i < recipes.size(); ++i) {
    std::string config = recipes[i];
    ReplaceAll(config, "/etc/haproxy/", dir.path().string() + "/");
    fs::path cfg = dir.path() / ("recipe" + std::to_string(i) + ".cfg");
    WriteFile(cfg, config);
    fs::path log = dir.path() / ("recipe" + std::to_string(i) + ".log");
    Process check(HaproxyBinary(), {"-c", "-f", cfg.string(), "-L", "lb1"}, log);
    EXPECT_EQ(0, check.Wait()) << "recipe " << i << " of docs/haproxy.md:\n"
                               << config << "\nhaproxy says:\n"
                               << ReadFile(log);
  }
}

TEST(DocsTest, CliReferenceMatchesHelpOutput) {
  std::string cli = ReadFile(fs::path(STICKMETER_SOURCE_DIR) / "docs/cli.md");
  auto blocks = CodeBlocks(cli, "text");
  TempDir dir("stickmeter-cli-doc");
  for (const std::string command : {"serve", "decode", "export", "backup"}) {
    fs::path out = dir.path() / (command + ".txt");
    Process help(STICKMETER_BINARY, {command, "--help"}, out);
    ASSERT_EQ(0, help.Wait());
    std::string text = ReadFile(out);
    bool documented = false;
    for (const auto& block : blocks) documented |= block == text;
    EXPECT_TRUE(documented) << "docs/cli.md lacks the exact `stickmeter " << command
                            << " --help` output:\n"
                            << text;
  }
}

}  // namespace
}  // namespace stickmeter::testing
