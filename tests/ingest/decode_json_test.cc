// `stickmeter decode` engine: summary counts, errors, JSON escaping, a generated stream.
#include "ingest/decode_json.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/ingest/gen_stream.h"
#include "ingest/codec.h"

namespace stickmeter::ingest {
namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> Lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

int Decode(const std::string& bytes, std::string& out, bool summary = false) {
  std::istringstream in(bytes);
  std::ostringstream os;
  const int rc = RunDecode(in, os, summary);
  out = os.str();
  return rc;
}

TEST(DecodeJsonTest, SummaryCountsAFixture) {
  const std::string dir = std::string(STICKMETER_FIXTURES_DIR) + "/haproxy-2.6/b-ipv4-conn";
  std::ifstream bin(dir + "/stream.bin", std::ios::binary);
  std::ostringstream out;
  ASSERT_EQ(0, RunDecode(bin, out, /*summary=*/true));
  const auto lines = Lines(out.str());
  ASSERT_EQ(1u, lines.size());
  // Expected counts straight from decoded.jsonl.
  std::ifstream expected(dir + "/decoded.jsonl");
  std::string line;
  uint64_t messages = 0, updates = 0, defines = 0, controls = 0;
  std::map<std::string, uint64_t> per_table;
  while (std::getline(expected, line)) {
    auto j = nlohmann::json::parse(line);
    ++messages;
    if (j["type"] == "update") {
      ++updates;
      ++per_table[j["table"].get<std::string>()];
    }
    defines += j["type"] == "define";
    controls += j["type"] == "control";
  }
  const auto& s = lines[0];
  EXPECT_EQ(messages, s["messages"]);
  EXPECT_EQ(updates, s["updates"]);
  EXPECT_EQ(defines, s["types"]["define"]);
  EXPECT_EQ(controls, s["types"]["control"]);
  EXPECT_EQ(nlohmann::json(per_table), s["tables"]);
}

TEST(DecodeJsonTest, MalformedInputPrintsWhatCameBeforeThenTheError) {
  std::string s;
  AppendControl(s, ControlType::kHeartbeat);
  s += std::string("\xff\x00", 2);
  std::string out;
  EXPECT_EQ(1, Decode(s, out));
  const auto lines = Lines(out);
  ASSERT_EQ(2u, lines.size());
  EXPECT_EQ(
      nlohmann::json::parse(R"({"offset":0,"type":"control","control":"heartbeat","code":4})"),
      lines[0]);
  EXPECT_EQ("error", lines[1]["type"]);
  EXPECT_EQ(2, lines[1]["offset"]);
  EXPECT_NE(std::string::npos, lines[1]["reason"].get<std::string>().find("255"));
  // With --summary: the summary of what decoded, then the error.
  EXPECT_EQ(1, Decode(s, out, true));
  const auto summary = Lines(out);
  ASSERT_EQ(2u, summary.size());
  EXPECT_EQ(1, summary[0]["messages"]);
  EXPECT_EQ("error", summary[1]["type"]);
}

TEST(DecodeJsonTest, StreamEndingInsideAMessageIsAnError) {
  std::string s;
  AppendControl(s, ControlType::kHeartbeat);
  AppendAck(s, 1, 2);
  s.pop_back();
  std::string out;
  EXPECT_EQ(1, Decode(s, out));
  const auto lines = Lines(out);
  ASSERT_EQ(2u, lines.size());
  EXPECT_EQ("error", lines[1]["type"]);
  EXPECT_EQ(2, lines[1]["offset"]);
}

TEST(DecodeJsonTest, EmptyStreamIsFine) {
  std::string out;
  EXPECT_EQ(0, Decode("", out));
  EXPECT_EQ("", out);
  EXPECT_EQ(0, Decode("", out, true));
  EXPECT_EQ(0, Lines(out)[0]["messages"]);
}

TEST(DecodeJsonTest, KeysWithAnyBytesStayValidJson) {
  TableDefinition t;
  t.table_id = 1;
  t.name = "/t\"\\";
  t.key_type = KeyType::kString;
  t.key_size = 65;
  t.data_bitfield = 1u << 2;
  std::string s;
  AppendTableDefine(s, t);
  const std::string key = std::string("a\"b\\c\n\x01\xff\xc3\xa9\xe2\x82", 12);
  DataValue v;
  v.type = DataType::kGpc0;
  v.u = 1;
  AppendEntryUpdate(s, t, StickTableType::kUpdate, 1, std::nullopt,
                    {reinterpret_cast<const uint8_t*>(key.data()), key.size()}, {&v, 1});
  std::string out;
  ASSERT_EQ(0, Decode(s, out));
  const auto lines = Lines(out);
  ASSERT_EQ(2u, lines.size());
  EXPECT_EQ("/t\"\\", lines[0]["table"]);
  // Valid UTF-8 (é) passes through; invalid bytes come out as \u00XX.
  EXPECT_EQ("a\"b\\c\n\x01\xc3\xbf\xc3\xa9\xc3\xa2\xc2\x82", lines[1]["key"].get<std::string>());
  EXPECT_NE(std::string::npos, out.find("\\u00ff"));
}

TEST(DecodeJsonTest, ServerKeyAndDictInfo) {
  TableDefinition t;
  t.table_id = 1;
  t.name = "be";
  t.key_type = KeyType::kIpv4;
  t.key_size = 4;
  t.data_bitfield = (1u << 0) | (1u << 19);
  std::string s;
  AppendTableDefine(s, t);
  DataValue v[2];
  v[0].type = DataType::kServerId;
  v[0].form = DataValue::Form::kSigned;
  v[0].s = -1;
  v[1].type = DataType::kServerKey;
  v[1].form = DataValue::Form::kDict;
  v[1].dict_id = 4;
  v[1].dict_value = "srv";
  v[1].dict_defined = true;
  const uint8_t key[4] = {1, 2, 3, 4};
  AppendEntryUpdate(s, t, StickTableType::kUpdate, 1, std::nullopt, key, v);
  v[1].dict_defined = false;
  AppendEntryUpdate(s, t, StickTableType::kIncUpdate, 0, std::nullopt, key, v);
  std::string out;
  ASSERT_EQ(0, Decode(s, out));
  const auto lines = Lines(out);
  ASSERT_EQ(3u, lines.size());
  EXPECT_EQ(nlohmann::json::parse(R"({"offset":14,"type":"update","msg":"update","table_id":1,
      "table":"be","update_id":1,"key":"1.2.3.4","expire_ms":null,
      "values":{"server_id":-1,"server_key":"srv"},
      "dict":{"server_key":{"id":4,"defined":true}}})"),
            lines[1]);
  EXPECT_EQ(false, lines[2]["dict"]["server_key"]["defined"]);
  EXPECT_EQ("srv", lines[2]["values"]["server_key"]);
  EXPECT_EQ(2, lines[2]["update_id"]);
}

TEST(DecodeJsonTest, GeneratedStreamDecodesToWhatTheGeneratorWrote) {
  // Through a file, as `stickmeter decode FILE` reads it.
  const fs::path dir = fs::temp_directory_path() / ("stickmeter-gen-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string bin = (dir / "s.bin").string();
  bench::GenStreamOptions options;
  options.updates = 20000;
  options.customers = 500;  // most keys updated many times: `last` checks the final values
  std::string bytes;
  const bench::GenStreamExpect expect = bench::GeneratePeersStream(options, bytes);
  {
    std::ofstream f(bin, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  ASSERT_EQ(bytes.size(), expect.stream_bytes);
  ASSERT_GT(expect.full_updates, 0u);
  ASSERT_GT(expect.incremental_updates, expect.full_updates);

  std::ostringstream out;
  std::ostringstream err;
  ASSERT_EQ(0, RunDecodeFile(bin, out, err, /*summary=*/false)) << err.str();
  uint64_t updates = 0, full = 0, incr = 0, sum_id = 0, sum_gpc0 = 0, sum_req = 0, sum_bytes = 0;
  std::vector<nlohmann::json> all;
  std::map<std::string, nlohmann::json> last;
  std::istringstream lines(out.str());
  std::string line;
  bool first = true;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    if (first) {
      EXPECT_EQ("define", j["type"]);
      EXPECT_EQ("quota", j["table"]);
      EXPECT_EQ(nlohmann::json::parse(R"(["gpc0","http_req_cnt","bytes_out_cnt"])"),
                j["data_types"]);
      first = false;
      continue;
    }
    ASSERT_EQ("update", j["type"]) << line;
    ++updates;
    full += j["msg"] == "update";
    incr += j["msg"] == "incupdate";
    sum_id += j["update_id"].get<uint64_t>();
    sum_gpc0 += j["values"]["gpc0"].get<uint64_t>();
    sum_req += j["values"]["http_req_cnt"].get<uint64_t>();
    sum_bytes += j["values"]["bytes_out_cnt"].get<uint64_t>();
    last[j["key"].get<std::string>()] = j;
    all.push_back(std::move(j));
  }
  EXPECT_EQ(expect.updates, updates);
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(expect.define_bytes, all[0]["offset"]);
  EXPECT_EQ(expect.full_updates, full);
  EXPECT_EQ(expect.incremental_updates, incr);
  EXPECT_EQ(expect.sum_update_id, sum_id);
  EXPECT_EQ(expect.sum_gpc0, sum_gpc0);
  EXPECT_EQ(expect.sum_http_req_cnt, sum_req);
  EXPECT_EQ(expect.sum_bytes_out_cnt, sum_bytes);
  ASSERT_GE(expect.samples.size(), 16u);
  for (const bench::GenUpdate& u : expect.samples) {
    SCOPED_TRACE(u.index);
    const auto& j = all.at(u.index);
    EXPECT_EQ(u.incremental ? "incupdate" : "update", j["msg"]);
    EXPECT_EQ(u.update_id, j["update_id"]);
    EXPECT_EQ(u.key, j["key"]);
    EXPECT_EQ(u.gpc0, j["values"]["gpc0"]);
    EXPECT_EQ(u.http_req_cnt, j["values"]["http_req_cnt"]);
    EXPECT_EQ(u.bytes_out_cnt, j["values"]["bytes_out_cnt"]);
  }
  ASSERT_EQ(expect.last.size(), last.size());
  for (const auto& [key, u] : expect.last) {
    SCOPED_TRACE(key);
    const auto& j = last.at(key);
    EXPECT_EQ(u.update_id, j["update_id"]);
    EXPECT_EQ(u.gpc0, j["values"]["gpc0"]);
    EXPECT_EQ(u.http_req_cnt, j["values"]["http_req_cnt"]);
    EXPECT_EQ(u.bytes_out_cnt, j["values"]["bytes_out_cnt"]);
  }

  std::ostringstream summary;
  ASSERT_EQ(0, RunDecodeFile(bin, summary, err, /*summary=*/true));
  const auto s = nlohmann::json::parse(summary.str());
  EXPECT_EQ(expect.updates, s["updates"]);
  EXPECT_EQ(expect.updates, s["tables"]["quota"]);
  EXPECT_EQ(expect.updates + 1, s["messages"].get<uint64_t>());
  fs::remove_all(dir);
}

TEST(DecodeJsonTest, GeneratedStreamIsDeterministicAndPrefixStable) {
  bench::GenStreamOptions options;
  options.updates = 3000;
  std::string a, b, prefix;
  bench::GeneratePeersStream(options, a);
  bench::GeneratePeersStream(options, b);
  EXPECT_EQ(a, b);
  options.updates = 1000;
  const auto expect = bench::GeneratePeersStream(options, prefix);
  EXPECT_EQ(a.substr(0, prefix.size()), prefix);
  EXPECT_EQ(1000u, expect.updates);
}

TEST(DecodeJsonTest, MissingFileIsReported) {
  std::ostringstream out, err;
  EXPECT_EQ(2, RunDecodeFile("/nonexistent/stream.bin", out, err, false));
  EXPECT_NE(std::string::npos, err.str().find("/nonexistent/stream.bin"));
}

}  // namespace
}  // namespace stickmeter::ingest
