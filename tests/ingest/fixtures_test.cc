// Every real HAProxy capture in tests/fixtures/haproxy-<version>/<case>/ decodes to exactly its
// decoded*.jsonl, however it is cut.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ingest/decode_json.h"
#include "tests/ingest/test_util.h"

namespace stickmeter::ingest {
namespace {

namespace fs = std::filesystem;
using testing::FeedCut;
using testing::FeedWhole;
using testing::ReadFileBytes;

struct Capture {
  std::string stream;   // path of stream*.bin
  std::string decoded;  // path of the matching decoded*.jsonl
};

// The captures of one HAProxy version ("2.6"), or of all of them.
std::vector<Capture> AllCaptures(const std::string& version = "") {
  std::vector<Capture> out;
  for (const auto& version_dir : fs::directory_iterator(STICKMETER_FIXTURES_DIR)) {
    const std::string name = version_dir.path().filename().string();
    if (!version_dir.is_directory() || name.rfind("haproxy-", 0) != 0) continue;
    if (!version.empty() && name != "haproxy-" + version) continue;
    for (const auto& dir : fs::directory_iterator(version_dir.path())) {
      if (!dir.is_directory()) continue;
      for (const auto& f : fs::directory_iterator(dir.path())) {
        const std::string file = f.path().filename().string();
        if (file.rfind("stream", 0) != 0 || f.path().extension() != ".bin") continue;
        // stream.bin -> decoded.jsonl, stream.2.bin -> decoded.2.jsonl
        std::string decoded = "decoded" + file.substr(6, file.size() - 6 - 4) + ".jsonl";
        out.push_back({f.path().string(), (dir.path() / decoded).string()});
      }
    }
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.stream < b.stream; });
  return out;
}

std::vector<nlohmann::json> ParseLines(const std::string& text, bool drop_recv_ms) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line);
    if (drop_recv_ms) j.erase("recv_ms");
    out.push_back(std::move(j));
  }
  return out;
}

TEST(FixturesTest, FindsEveryCapture) {
  // Guards against a silently empty loop. 2.6: 4 cases, f has 3 connections: 6 streams.
  EXPECT_GE(AllCaptures("2.6").size(), 6u);
  EXPECT_GE(AllCaptures("3.0").size(), 1u);
}

TEST(FixturesTest, DecodeMatchesDecodedJsonl) {
  for (const Capture& c : AllCaptures()) {
    SCOPED_TRACE(c.stream);
    ASSERT_TRUE(fs::exists(c.decoded));
    std::ifstream in(c.stream, std::ios::binary);
    std::ostringstream out;
    ASSERT_EQ(0, RunDecode(in, out, /*summary=*/false)) << out.str();
    std::ifstream expected_in(c.decoded);
    std::stringstream expected_text;
    expected_text << expected_in.rdbuf();
    const auto expected = ParseLines(expected_text.str(), /*drop_recv_ms=*/true);
    const auto actual = ParseLines(out.str(), false);
    ASSERT_EQ(expected.size(), actual.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(expected[i], actual[i]) << "message " << i << "\nexpected " << expected[i].dump()
                                        << "\nactual   " << actual[i].dump();
    }
  }
}

TEST(FixturesTest, EveryCaptureDecodesCompletely) {
  for (const Capture& c : AllCaptures()) {
    SCOPED_TRACE(c.stream);
    const auto bytes = ReadFileBytes(c.stream);
    const auto whole = FeedWhole(bytes);
    EXPECT_TRUE(whole.ok) << whole.error;
    EXPECT_EQ(0u, whole.leftover);
  }
}

TEST(FixturesTest, SplitAtEveryBytePositionGivesTheSameMessages) {
  for (const Capture& c : AllCaptures()) {
    SCOPED_TRACE(c.stream);
    const auto bytes = ReadFileBytes(c.stream);
    const auto whole = FeedWhole(bytes);
    ASSERT_TRUE(whole.ok);
    for (size_t cut = 1; cut < bytes.size(); ++cut) {
      const auto split = FeedCut(bytes, {cut});
      ASSERT_TRUE(split.ok) << "cut at " << cut << ": " << split.error;
      ASSERT_EQ(whole.lines, split.lines) << "cut at " << cut;
      ASSERT_EQ(0u, split.leftover) << "cut at " << cut;
    }
  }
}

TEST(FixturesTest, OneByteAtATimeGivesTheSameMessages) {
  for (const Capture& c : AllCaptures()) {
    SCOPED_TRACE(c.stream);
    const auto bytes = ReadFileBytes(c.stream);
    const auto whole = FeedWhole(bytes);
    std::vector<size_t> cuts;
    for (size_t i = 1; i < bytes.size(); ++i) cuts.push_back(i);
    const auto bytewise = FeedCut(bytes, cuts);
    ASSERT_TRUE(bytewise.ok) << bytewise.error;
    EXPECT_EQ(whole.lines, bytewise.lines);
    EXPECT_EQ(0u, bytewise.leftover);
  }
}

TEST(FixturesTest, EveryPrefixIsEitherCompleteOrWaitsForMore) {
  // A stream cut short anywhere is never an error: the decoder reports the complete messages
  // and leaves the partial one in the buffer.
  for (const Capture& c : AllCaptures()) {
    SCOPED_TRACE(c.stream);
    const auto bytes = ReadFileBytes(c.stream);
    const auto whole = FeedWhole(bytes);
    for (size_t len = 0; len < bytes.size(); ++len) {
      const auto prefix = FeedWhole(std::span<const uint8_t>(bytes.data(), len));
      ASSERT_TRUE(prefix.ok) << "prefix " << len << ": " << prefix.error;
      ASSERT_LE(prefix.lines.size(), whole.lines.size());
      for (size_t i = 0; i < prefix.lines.size(); ++i) ASSERT_EQ(whole.lines[i], prefix.lines[i]);
    }
  }
}

// HAProxy 3.0's data types 25 and 26 on the wire: a DEFINE announcing glitch_cnt and
// glitch_rate(10s), and updates whose glitch_cnt grew with the glitches provoked.
TEST(FixturesTest, Haproxy30GlitchCountersDecode) {
  const std::string dir = std::string(STICKMETER_FIXTURES_DIR) + "/haproxy-3.0/a-glitches";
  std::ifstream in(dir + "/stream.bin", std::ios::binary);
  std::ostringstream out;
  ASSERT_EQ(0, RunDecode(in, out, /*summary=*/false));
  bool defined = false;
  uint64_t max_glitches = 0;
  for (const auto& j : ParseLines(out.str(), false)) {
    if (j["type"] == "define" && j["table"] == "/glitches") {
      defined = true;
      EXPECT_EQ(nlohmann::json::parse(R"(["http_req_cnt","glitch_cnt","glitch_rate"])"),
                j["data_types"]);
      EXPECT_EQ((1u << 9) | (1u << 25) | (1u << 26), j["data_bitfield"].get<uint64_t>());
      EXPECT_EQ(10000, j["data_params"]["glitch_rate"]["period_ms"]);
    }
    if (j["type"] == "update" && j["table"] == "/glitches") {
      ASSERT_TRUE(defined);
      max_glitches = std::max(max_glitches, j["values"]["glitch_cnt"].get<uint64_t>());
      EXPECT_EQ(10000, j["values"]["glitch_rate"]["period_ms"]);
    }
  }
  EXPECT_TRUE(defined);
  EXPECT_EQ(3u, max_glitches);  // three malformed HTTP/2 requests
}

// The captures that saved HAProxy's own `show table` at the end (tests/fixtures/capture.sh): the
// last update of every entry must carry the values HAProxy shows. Unlike decoded.jsonl, which
// the capture wrote with our decoder, this compares with HAProxy's view.
TEST(FixturesTest, LastUpdatesMatchHaproxysShowTable) {
  int checked_cases = 0;
  for (const auto& version_dir : fs::directory_iterator(STICKMETER_FIXTURES_DIR)) {
    if (!version_dir.is_directory()) continue;
    for (const auto& dir : fs::directory_iterator(version_dir.path())) {
      const fs::path show_table = dir.path() / "show-table.txt";
      if (!fs::exists(show_table)) continue;
      SCOPED_TRACE(dir.path().string());
      ++checked_cases;
      // (table, key) -> values of the last update.
      std::map<std::pair<std::string, std::string>, nlohmann::json> last;
      std::ifstream in(dir.path() / "stream.bin", std::ios::binary);
      std::ostringstream out;
      ASSERT_EQ(0, RunDecode(in, out, /*summary=*/false));
      for (const auto& j : ParseLines(out.str(), false)) {
        if (j["type"] == "update") last[{j["table"], j["key"]}] = j["values"];
      }
      // "# table: tracker/glitches, type: string, ..." then one line per entry:
      // "0x55d0c1a2b3c4: key=acme use=0 exp=3599000 shard=0 gpc0=3 http_req_cnt=5 ..."
      std::ifstream table_in(show_table);
      std::string line, table;
      int entries = 0;
      while (std::getline(table_in, line)) {
        if (line.rfind("# table: ", 0) == 0) {
          const std::string name = line.substr(9, line.find(',') - 9);
          table = "/" + name.substr(name.rfind('/') + 1);  // peers-section tables go as /name
          continue;
        }
        const size_t key_at = line.find(": key=");
        if (key_at == std::string::npos) continue;
        std::istringstream fields(line.substr(key_at + 2));
        std::string field, key;
        std::map<std::string, uint64_t> shown;
        while (fields >> field) {
          const size_t eq = field.find('=');
          const std::string name = field.substr(0, eq), value = field.substr(eq + 1);
          if (name == "key") key = value;
          // Rates are shown as HAProxy's computed rate, not as the wire's counters; use, exp
          // and shard are local.
          if (name == "key" || name == "use" || name == "exp" || name == "shard" ||
              name.find('(') != std::string::npos) {
            continue;
          }
          shown[name] = std::stoull(value);
        }
        SCOPED_TRACE(table + " " + key);
        ++entries;
        const auto it = last.find({table, key});
        ASSERT_NE(last.end(), it) << "no update for this entry";
        for (const auto& [name, value] : shown) {
          EXPECT_EQ(value, (*it).second.at(name).get<uint64_t>()) << name;
        }
      }
      EXPECT_GT(entries, 0);
    }
  }
  EXPECT_GE(checked_cases, 1);
}

}  // namespace
}  // namespace stickmeter::ingest
