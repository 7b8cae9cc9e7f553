// Starts the real `stickmeter` binary on free loopback ports and checks its life cycle: health,
// clean exit on SIGTERM/SIGINT, reopening its data directory, and one-line errors for bad flags,
// an unusable data directory and ports in use.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;

// Returns a loopback port that was free a moment ago; `keep` holds it bound when given.
uint16_t FreePort(int* keep = nullptr) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(0, ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (keep != nullptr) {
    ::listen(fd, 1);
    *keep = fd;
  } else {
    ::close(fd);
  }
  return ntohs(addr.sin_port);
}

// Sends one HTTP/1.1 GET and returns the whole response, or nullopt if nothing answers.
std::optional<std::string> HttpGet(uint16_t port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, n);
  ::close(fd);
  if (response.empty()) return std::nullopt;
  return response;
}

class Process {
 public:
  Process(const std::vector<std::string>& args, const fs::path& stderr_path) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(err, 2);
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(STICKMETER_BINARY));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(STICKMETER_BINARY, argv.data());
      ::_exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  void Signal(int sig) { ::kill(pid_, sig); }
  // Waits up to `timeout` for the process to exit; returns its exit code, or -1 if it did not exit
  // normally in time.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stickmeter-life-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  bool WaitHealthy(uint16_t port) {
    for (int i = 0; i < 200; ++i) {
      auto r = HttpGet(port, "/api/v1/health");
      if (r && r->find("200 OK") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Runs serve with `args` and expects a quick non-zero exit with exactly one line on stderr
  // containing `needle`.
  void ExpectStartupFailure(const std::vector<std::string>& args, int code,
                            const std::string& needle) {
    std::vector<std::string> full = {"serve"};
    full.insert(full.end(), args.begin(), args.end());
    Process p(full, dir_ / "err.log");
    EXPECT_EQ(code, p.Wait());
    std::string err = ReadFile(dir_ / "err.log");
    EXPECT_NE(std::string::npos, err.find(needle)) << err;
    EXPECT_EQ(1, std::count(err.begin(), err.end(), '\n')) << err;
  }

  fs::path dir_;
};

TEST_F(LifecycleTest, ServesHealthStopsOnSigtermAndReopensItsData) {
  const std::string data = (dir_ / "data").string();
  for (int sig : {SIGTERM, SIGINT}) {
    uint16_t http_port = FreePort();
    uint16_t peers_port = FreePort();
    Process p({"serve", "--data", data, "--http", "127.0.0.1:" + std::to_string(http_port),
               "--peers-listen", "127.0.0.1:" + std::to_string(peers_port)},
              dir_ / "serve.log");
    ASSERT_TRUE(WaitHealthy(http_port)) << ReadFile(dir_ / "serve.log");
    auto health = HttpGet(http_port, "/api/v1/health");
    ASSERT_TRUE(health.has_value());
    EXPECT_NE(std::string::npos, health->find("{\"status\":\"ok\"}")) << *health;
    p.Signal(sig);
    EXPECT_EQ(0, p.Wait()) << ReadFile(dir_ / "serve.log");
    EXPECT_FALSE(HttpGet(http_port, "/api/v1/health").has_value());
  }
  EXPECT_TRUE(fs::exists(fs::path(data)));
}

TEST_F(LifecycleTest, VersionPrintsAndExitsZero) {
  Process p({"version"}, dir_ / "err.log");
  EXPECT_EQ(0, p.Wait());
}

TEST_F(LifecycleTest, BadFlagIsAOneLineUsageError) {
  ExpectStartupFailure({"--data", (dir_ / "d").string(), "--no-such-flag"}, 2,
                       "unknown flag --no-such-flag");
  ExpectStartupFailure({"--http", "nonsense"}, 2, "--http: expected HOST:PORT");
  ExpectStartupFailure({"--connect", "nobody"}, 2, "--connect: expected PEER@HOST:PORT");
}

TEST_F(LifecycleTest, UnusableDataDirectoryIsRefused) {
  std::ofstream(dir_ / "a-file") << "not a directory";
  ExpectStartupFailure({"--data", (dir_ / "a-file" / "data").string(), "--http",
                        "127.0.0.1:" + std::to_string(FreePort()), "--peers-listen",
                        "127.0.0.1:" + std::to_string(FreePort())},
                       1, "data directory");
}

TEST_F(LifecycleTest, ForeignDataDirectoryIsRefused) {
  fs::create_directories(dir_ / "foreign");
  std::ofstream(dir_ / "foreign" / "notes.txt") << "someone else's files";
  ExpectStartupFailure(
      {"--data", (dir_ / "foreign").string(), "--http", "127.0.0.1:" + std::to_string(FreePort()),
       "--peers-listen", "127.0.0.1:" + std::to_string(FreePort())},
      1, "data directory");
}

TEST_F(LifecycleTest, HttpPortInUseIsRefused) {
  int holder = -1;
  uint16_t busy = FreePort(&holder);
  ExpectStartupFailure(
      {"--data", (dir_ / "d").string(), "--http", "127.0.0.1:" + std::to_string(busy),
       "--peers-listen", "127.0.0.1:" + std::to_string(FreePort())},
      1, std::to_string(busy));
  ::close(holder);
}

TEST_F(LifecycleTest, PeersPortInUseIsRefused) {
  int holder = -1;
  uint16_t busy = FreePort(&holder);
  ExpectStartupFailure(
      {"--data", (dir_ / "d").string(), "--http", "127.0.0.1:" + std::to_string(FreePort()),
       "--peers-listen", "127.0.0.1:" + std::to_string(busy)},
      1, std::to_string(busy));
  ::close(holder);
}

TEST_F(LifecycleTest, PublicAddressWithoutTokenIsRefused) {
  ExpectStartupFailure(
      {"--data", (dir_ / "d").string(), "--http", "0.0.0.0:" + std::to_string(FreePort()),
       "--peers-listen", "127.0.0.1:" + std::to_string(FreePort())},
      1, "token");
}

}  // namespace
