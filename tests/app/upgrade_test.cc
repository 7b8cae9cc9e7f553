// Upgrading the store format: the first `stickmeter serve` on a store of format version 1 (as a
// build before the every-key rollups left it) upgrades it before it listens, says so in its log,
// and answers usage of every key and of one key as the store held it; the store then records
// version 2.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/process.h"
#include "tests/tsdb/store_test_util.h"
#include "tests/tsdb/test_util.h"

namespace stickmeter::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(UpgradeTest, ServeUpgradesAFormat1StoreAndKeepsItsUsage) {
  TempDir dir("stickmeter-upgrade");
  const std::string data = (dir.path() / "data").string();
  // 40 keys from two sources over two days, then the store made format 1.
  std::map<std::string, uint64_t> want;
  {
    auto store = tsdb::testing::OpenOrDie(tsdb::testing::Opts(data));
    auto table = tsdb::testing::Table("/q");
    for (int k = 0; k < 40; ++k) {
      const std::string key = "customer-" + std::to_string(k);
      for (const char* source : {"lb1", "lb2"}) {
        const uint64_t v = 10 + static_cast<uint64_t>(k);
        ASSERT_TRUE(
            tsdb::testing::SubmitSync(
                *store, tsdb::testing::Batch(source, 1, table, key,
                                             tsdb::testing::kT0 + k * 3'600'000, {{"gpc0", v}}))
                .ok());
        want[key] += v;
      }
    }
  }
  tsdb::testing::MakeFormat1Store(data);
  ASSERT_EQ(1u, tsdb::testing::StoredFormatVersion(data));

  const uint16_t http_port = FreePort();
  const fs::path log = dir.path() / "serve.log";
  Process p(STICKMETER_BINARY,
            {"serve", "--data", data, "--http", "127.0.0.1:" + std::to_string(http_port),
             "--peers-listen", "127.0.0.1:" + std::to_string(FreePort())},
            log);
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = HttpRequest(http_port, "GET", "/api/v1/health");
        return r && r->status == 200;
      },
      std::chrono::seconds(30)))
      << ReadFile(log);
  const std::string range = "&from=" + std::to_string(tsdb::testing::kT0) +
                            "&to=" + std::to_string(tsdb::testing::kT0 + 3 * tsdb::testing::kDay);
  auto every = HttpRequest(http_port, "GET", "/api/v1/usage?table=/q&metric=gpc0" + range);
  ASSERT_TRUE(every.has_value());
  ASSERT_EQ(200, every->status) << every->body;
  std::map<std::string, uint64_t> got;
  const json reply = json::parse(every->body);
  for (const auto& row : reply.at("rows")) {
    got[row.at("key").get<std::string>()] = row.at("total").get<uint64_t>();
  }
  EXPECT_EQ(want, got) << every->body;
  auto one =
      HttpRequest(http_port, "GET", "/api/v1/usage?table=/q&metric=gpc0&key=customer-7" + range);
  ASSERT_TRUE(one.has_value());
  ASSERT_EQ(200, one->status) << one->body;
  EXPECT_EQ(want["customer-7"],
            json::parse(one->body).at("rows").at(0).at("total").get<uint64_t>());
  p.Signal(SIGTERM);
  EXPECT_EQ(0, p.Wait()) << ReadFile(log);
  const std::string text = ReadFile(log);
  EXPECT_NE(std::string::npos, text.find("upgrading the store to format version 2")) << text;
  EXPECT_NE(std::string::npos, text.find("store upgraded to format version 2")) << text;
  EXPECT_EQ(2u, tsdb::testing::StoredFormatVersion(data));
}

}  // namespace
}  // namespace stickmeter::testing
