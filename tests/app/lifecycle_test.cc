// Starts the real `stickmeter` binary on free loopback ports and checks its life cycle: health,
// clean exit on SIGTERM/SIGINT, reopening its data directory, and one-line errors for bad flags,
// an unusable data directory, a full disk and ports in use, and the token file's rules.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/small_disk.h"

namespace stickmeter::testing {
namespace {

namespace fs = std::filesystem;

// Binds and listens on a loopback port so that stickmeter finds it in use.
class PortHolder {
 public:
  PortHolder() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(0, ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    EXPECT_EQ(0, ::listen(fd_, 1));
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~PortHolder() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

std::string Loopback(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

class LifecycleTest : public ::testing::Test {
 protected:
  bool WaitHealthy(uint16_t port) {
    return Eventually(
        [port] {
          auto r = HttpRequest(port, "GET", "/api/v1/health");
          return r && r->status == 200;
        },
        std::chrono::seconds(15));
  }

  // Runs `serve args` and expects exit `code` with exactly one line on stderr containing `needle`.
  void ExpectStartupFailure(const std::vector<std::string>& args, int code,
                            const std::string& needle) {
    std::vector<std::string> full = {"serve"};
    full.insert(full.end(), args.begin(), args.end());
    fs::path log = dir_.path() / "err.log";
    fs::remove(log);
    Process p(STICKMETER_BINARY, full, log);
    EXPECT_EQ(code, p.Wait());
    std::string err = ReadFile(log);
    EXPECT_NE(std::string::npos, err.find(needle)) << err;
    EXPECT_EQ(1, std::count(err.begin(), err.end(), '\n')) << err;
  }

  TempDir dir_{"stickmeter-life"};
};

TEST_F(LifecycleTest, ServesHealthStopsOnSignalsAndReopensItsData) {
  const std::string data = (dir_.path() / "data").string();
  for (int sig : {SIGTERM, SIGINT}) {
    uint16_t http_port = FreePort();
    Process p(STICKMETER_BINARY,
              {"serve", "--data", data, "--http", Loopback(http_port), "--peers-listen",
               Loopback(FreePort())},
              dir_.path() / "serve.log");
    ASSERT_TRUE(WaitHealthy(http_port)) << ReadFile(dir_.path() / "serve.log");
    auto health = HttpRequest(http_port, "GET", "/api/v1/health");
    ASSERT_TRUE(health.has_value());
    EXPECT_EQ("{\"status\":\"ok\"}\n", health->body);
    p.Signal(sig);
    EXPECT_EQ(0, p.Wait()) << ReadFile(dir_.path() / "serve.log");
    EXPECT_FALSE(HttpRequest(http_port, "GET", "/api/v1/health").has_value());
  }
  EXPECT_TRUE(fs::is_directory(data));
}

// `stickmeter export` refuses times outside 1970-01-01 .. 9999-12-31 with one line naming the
// flag, before it looks at the data directory (a huge --to once wrapped the store's minutes).
TEST_F(LifecycleTest, ExportRefusesTimesOutsideTheSupportedSpan) {
  struct Case {
    std::vector<std::string> args;
    std::string reason;
  };
  const std::string data = (dir_.path() / "no-data").string();
  for (const Case& c : std::vector<Case>{
           {{"--from", "0", "--to", "253402300800000"}, "--to: \"253402300800000\" is outside"},
           {{"--from", "-1", "--to", "5"}, "--from: \"-1\" is outside"},
           {{"--from", "1969-12-31T23:00:00Z", "--to", "5"}, "--from: \"1969-12-31T23:00:00Z\""},
           {{"--from", "0", "--to", "10000-01-01T00:00:00Z"}, "--to: "},
           {{"--period", "9999-12"}, "--period: \"9999-12\""},
           {{"--period", "2026-10", "--excel-safe", "--format", "json"}, "--excel-safe: "}}) {
    std::vector<std::string> args = {"export", "--data", data};
    args.insert(args.end(), c.args.begin(), c.args.end());
    fs::path log = dir_.path() / "export.log";
    fs::remove(log);
    Process p(STICKMETER_BINARY, args, log);
    EXPECT_NE(0, p.Wait()) << c.reason;
    std::string err = ReadFile(log);
    EXPECT_NE(std::string::npos, err.find(c.reason)) << err;
    EXPECT_EQ(1, std::count(err.begin(), err.end(), '\n')) << err;
    EXPECT_EQ(std::string::npos, err.find("data directory")) << err;
  }
}

// One billing zone for the server: `serve --billing-tz` reports it in /api/v1/info (health
// stays {"status":"ok"}) and keeps it in the store, where `stickmeter export` without --tz finds
// it; --tz still wins. The export warns that the period has no data (no node ever connected). A
// zone that does not exist stops `serve` with one line.
TEST_F(LifecycleTest, BillingZoneReachesInfoAndTheCliExport) {
  const std::string data = (dir_.path() / "data").string();
  uint16_t http_port = FreePort();
  {
    Process p(STICKMETER_BINARY,
              {"serve", "--data", data, "--http", Loopback(http_port), "--peers-listen", "off",
               "--billing-tz", "Europe/Berlin"},
              dir_.path() / "serve.log");
    ASSERT_TRUE(WaitHealthy(http_port)) << ReadFile(dir_.path() / "serve.log");
    auto info = HttpRequest(http_port, "GET", "/api/v1/info");
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ("{\"billing_tz\":\"Europe/Berlin\"}\n", info->body);
    auto health = HttpRequest(http_port, "GET", "/api/v1/health");
    ASSERT_TRUE(health.has_value());
    EXPECT_EQ("{\"status\":\"ok\"}\n", health->body);
    p.Signal(SIGTERM);
    ASSERT_EQ(0, p.Wait()) << ReadFile(dir_.path() / "serve.log");
  }
  struct Case {
    std::vector<std::string> tz_args;
    std::string period_start;
  };
  for (const Case& c : {Case{{}, "\"period_start\":\"2026-10-01T00:00:00+02:00\""},
                        Case{{"--tz", "UTC"}, "\"period_start\":\"2026-10-01T00:00:00Z\""}}) {
    std::vector<std::string> args = {"export",  "--data",   data,  "--period",
                                     "2026-10", "--format", "json"};
    args.insert(args.end(), c.tz_args.begin(), c.tz_args.end());
    fs::path out = dir_.path() / ("export-" + std::to_string(c.tz_args.size()) + ".json");
    Process p(STICKMETER_BINARY, args, out);
    ASSERT_EQ(0, p.Wait()) << ReadFile(out);
    EXPECT_NE(std::string::npos, ReadFile(out).find(c.period_start)) << ReadFile(out);
    // No HAProxy node ever connected: zero rows are no data, not no usage (stderr, one line).
    EXPECT_NE(std::string::npos,
              ReadFile(out).find("\nstickmeter: warning: no data: stickmeter has not received "
                                 "from any node yet\n"))
        << ReadFile(out);
  }
  ExpectStartupFailure({"--data", data, "--billing-tz", "Europe/Atlantis"}, 2,
                       "--billing-tz: 'Europe/Atlantis' is not an IANA time zone");
}

TEST_F(LifecycleTest, VersionPrintsAndExitsZero) {
  Process p(STICKMETER_BINARY, {"version"}, dir_.path() / "out.log");
  EXPECT_EQ(0, p.Wait());
  EXPECT_EQ(0u, ReadFile(dir_.path() / "out.log").find("stickmeter "));
}

TEST_F(LifecycleTest, BadFlagIsAOneLineUsageError) {
  ExpectStartupFailure({"--data", (dir_.path() / "d").string(), "--no-such-flag"}, 2,
                       "unknown flag --no-such-flag");
  ExpectStartupFailure({"--http", "nonsense"}, 2, "--http: expected HOST:PORT");
  ExpectStartupFailure({"--connect", "nobody"}, 2, "--connect: expected PEER@HOST:PORT");
  ExpectStartupFailure({"--config", (dir_.path() / "missing.json").string()}, 2,
                       "--config: cannot read");
}

// A bad display-names file stops `serve` and `export` at start with one line naming the file and
// the line of the bad record.
TEST_F(LifecycleTest, BadKeyNamesFileIsAOneLineError) {
  const fs::path names = dir_.path() / "names.csv";
  WriteFile(names, "table,key,name\n/web,acme,Acme\n/web,beta\n");
  ExpectStartupFailure(
      {"--data", (dir_.path() / "data").string(), "--http", Loopback(FreePort()), "--peers-listen",
       "off", "--key-names", names.string()},
      1, "--key-names: " + names.string() + ":3: expected 3 fields (table,key,name), got 2");
  fs::path log = dir_.path() / "export.log";
  Process p(STICKMETER_BINARY,
            {"export", "--data", (dir_.path() / "data").string(), "--period", "2026-10", "--table",
             "/web", "--layout", "invoice", "--key-names", names.string()},
            log);
  EXPECT_EQ(1, p.Wait());
  std::string err = ReadFile(log);
  EXPECT_NE(std::string::npos, err.find(names.string() + ":3: expected 3 fields")) << err;
  EXPECT_EQ(1, std::count(err.begin(), err.end(), '\n')) << err;
}

TEST_F(LifecycleTest, UnusableDataDirectoryIsRefused) {
  WriteFile(dir_.path() / "a-file", "not a directory");
  ExpectStartupFailure({"--data", (dir_.path() / "a-file" / "data").string(), "--http",
                        Loopback(FreePort()), "--peers-listen", Loopback(FreePort())},
                       1, "data directory");
}

TEST_F(LifecycleTest, ForeignDataDirectoryIsRefused) {
  fs::create_directories(dir_.path() / "foreign");
  WriteFile(dir_.path() / "foreign" / "notes.txt", "someone else's files");
  ExpectStartupFailure({"--data", (dir_.path() / "foreign").string(), "--http",
                        Loopback(FreePort()), "--peers-listen", Loopback(FreePort())},
                       1, "data directory");
}

// A data directory on a full disk, new or holding a store: one line saying so, no abort.
TEST_F(LifecycleTest, FullDiskIsRefusedWithOneLine) {
  SmallDisk disk(16);
  if (!disk.mounted()) GTEST_SKIP() << disk.error();
  const std::string data = disk.Sub("data");
  uint16_t http_port = FreePort();
  {
    Process p(STICKMETER_BINARY,
              {"serve", "--data", data, "--http", Loopback(http_port), "--peers-listen",
               Loopback(FreePort())},
              dir_.path() / "serve.log");
    ASSERT_TRUE(WaitHealthy(http_port)) << ReadFile(dir_.path() / "serve.log");
    p.Signal(SIGTERM);
    ASSERT_EQ(0, p.Wait()) << ReadFile(dir_.path() / "serve.log");
  }
  ASSERT_TRUE(disk.Fill());
  for (const std::string& dir : {data, disk.Sub("fresh")}) {
    ExpectStartupFailure(
        {"--data", dir, "--http", Loopback(FreePort()), "--peers-listen", Loopback(FreePort())}, 1,
        "no space left on the disk of " + dir);
  }
  // Once there is space again, both start: what the failed first start left is no obstacle.
  ASSERT_TRUE(disk.Free());
  for (const std::string& dir : {data, disk.Sub("fresh")}) {
    Process p(STICKMETER_BINARY,
              {"serve", "--data", dir, "--http", Loopback(http_port), "--peers-listen",
               Loopback(FreePort())},
              dir_.path() / "serve.log");
    ASSERT_TRUE(WaitHealthy(http_port)) << ReadFile(dir_.path() / "serve.log");
    p.Signal(SIGTERM);
    EXPECT_EQ(0, p.Wait()) << ReadFile(dir_.path() / "serve.log");
  }
}

// A port in use stops the start with one line, and a first start leaves no store behind: the
// directory it would have created is gone, an empty one it was given is empty again, and a
// store that was there stays.
TEST_F(LifecycleTest, HttpPortInUseIsRefused) {
  PortHolder busy;
  const fs::path missing = dir_.path() / "d";
  ExpectStartupFailure({"--data", missing.string(), "--http", Loopback(busy.port()),
                        "--peers-listen", Loopback(FreePort())},
                       1, std::to_string(busy.port()));
  EXPECT_FALSE(fs::exists(missing));
  const fs::path empty = dir_.path() / "empty";
  fs::create_directories(empty);
  ExpectStartupFailure({"--data", empty.string(), "--http", Loopback(busy.port()), "--peers-listen",
                        Loopback(FreePort())},
                       1, std::to_string(busy.port()));
  EXPECT_TRUE(fs::is_directory(empty));
  EXPECT_TRUE(fs::is_empty(empty));
}

TEST_F(LifecycleTest, PeersPortInUseIsRefused) {
  PortHolder busy;
  const fs::path data = dir_.path() / "d";
  ExpectStartupFailure({"--data", data.string(), "--http", Loopback(FreePort()), "--peers-listen",
                        Loopback(busy.port())},
                       1, std::to_string(busy.port()));
  EXPECT_FALSE(fs::exists(data));
  // A store that served once stays when a later start fails.
  const uint16_t http_port = FreePort();
  {
    Process p(STICKMETER_BINARY,
              {"serve", "--data", data.string(), "--http", Loopback(http_port), "--peers-listen",
               Loopback(FreePort())},
              dir_.path() / "serve.log");
    ASSERT_TRUE(WaitHealthy(http_port)) << ReadFile(dir_.path() / "serve.log");
    p.Signal(SIGTERM);
    ASSERT_EQ(0, p.Wait()) << ReadFile(dir_.path() / "serve.log");
  }
  ExpectStartupFailure({"--data", data.string(), "--http", Loopback(FreePort()), "--peers-listen",
                        Loopback(busy.port())},
                       1, std::to_string(busy.port()));
  EXPECT_TRUE(fs::exists(data / "CURRENT"));
}

TEST_F(LifecycleTest, PublicAddressWithoutTokenIsRefused) {
  ExpectStartupFailure(
      {"--data", (dir_.path() / "d").string(), "--http", "0.0.0.0:" + std::to_string(FreePort()),
       "--peers-listen", Loopback(FreePort())},
      1, "token");
}

// The token is the file's first line without trailing blanks (a CRLF file works), later lines
// are ignored, and a token under 16 characters stops `serve` with one line saying so.
TEST_F(LifecycleTest, TokenFileUsesItsFirstLineOfAtLeast16Characters) {
  // Each of these tokens stops `serve` with one line saying why.
  const std::pair<std::string, std::string> refused[] = {
      {"fifteen-chars-x\n", "must be at least 16 characters"},
      {" 0123456789abcdef\n", "starts with a blank"},
  };
  for (const auto& [text, why] : refused) {
    const fs::path bad_token = dir_.path() / "bad-token";
    WriteFile(bad_token, text);
    ExpectStartupFailure(
        {"--data", (dir_.path() / "d").string(), "--http", Loopback(FreePort()), "--peers-listen",
         Loopback(FreePort()), "--token-file", bad_token.string()},
        1, why);
  }

  const fs::path token = dir_.path() / "token";
  WriteFile(token, "0123456789abcdef \t\r\nsecond line, not part of the token\n");
  const uint16_t http_port = FreePort();
  Process p(STICKMETER_BINARY,
            {"serve", "--data", (dir_.path() / "d").string(), "--http", Loopback(http_port),
             "--peers-listen", Loopback(FreePort()), "--token-file", token.string()},
            dir_.path() / "serve.log");
  ASSERT_TRUE(WaitHealthy(http_port)) << ReadFile(dir_.path() / "serve.log");
  auto status = [&](const std::vector<std::string>& headers,
                    const std::string& path = "/api/v1/peers") {
    auto r = HttpRequest(http_port, "GET", path, headers);
    return r ? r->status : 0;
  };
  EXPECT_EQ(200, status({"Authorization: Bearer 0123456789abcdef"}));
  EXPECT_EQ(401, status({}));
  EXPECT_EQ(401, status({"Authorization: Bearer 0123456789abcde"}));
  EXPECT_EQ(401, status({"Authorization: Bearer second line, not part of the token"}));
  // The server's facts (the billing zone) too; health alone needs no token.
  EXPECT_EQ(200, status({"Authorization: Bearer 0123456789abcdef"}, "/api/v1/info"));
  EXPECT_EQ(401, status({}, "/api/v1/info"));
  EXPECT_EQ(200, status({}, "/api/v1/health"));
  p.Signal(SIGTERM);
  EXPECT_EQ(0, p.Wait());
}

}  // namespace
}  // namespace stickmeter::testing
