// Test support: child processes, free loopback ports, a minimal HTTP/1.1 client, and temp dirs.
//
// Used by tests that drive real binaries (stickmeter, HAProxy) on loopback. Not thread-safe
// unless stated; every helper is bounded in time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace stickmeter::testing {

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Returns a loopback TCP port that was free a moment ago, chosen at random below the kernel's
// ephemeral range (20000-32767): a port the kernel handed out for bind(0) is also what it hands
// to the next outgoing connection, and tests running side by side connect a lot, so such a
// port was often taken again before the server under test could listen on it. Never the same
// port twice on one machine while the process that got it runs (a lock file per port in the
// temporary directory), as a port handed out may not be bound yet.
uint16_t FreePort();

// A child process with stdout and stderr appended to `log_path`. Killed (SIGKILL) on destruction
// if still running.
class Process {
 public:
  Process(const std::string& binary, const std::vector<std::string>& args,
          const std::filesystem::path& log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for exit; returns the exit code, 128+signal if killed, or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool Running();

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
};

struct HttpResponse {
  int status = 0;
  std::string headers;  // raw header block
  std::string body;
};

// One request on a fresh connection ("Connection: close"), with a 10 s timeout, and a JSON body
// when `json_body` is not empty. Handles
// Content-Length and chunked bodies. Returns nullopt when nothing answers.
std::optional<HttpResponse> HttpRequest(uint16_t port, const std::string& method,
                                        const std::string& target,
                                        const std::vector<std::string>& extra_headers = {},
                                        const std::string& host = "127.0.0.1",
                                        const std::string& json_body = "");

// Waits until `port` accepts TCP connections; false after `timeout`.
bool WaitForPort(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(15));

std::string ReadFile(const std::filesystem::path& path);
void WriteFile(const std::filesystem::path& path, const std::string& text);

// Polls `condition` every 50 ms until it returns true or `timeout` passes.
template <typename F>
bool Eventually(F condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace stickmeter::testing
