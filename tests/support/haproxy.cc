#include "tests/support/haproxy.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace stickmeter::testing {
namespace fs = std::filesystem;

std::string HaproxyBinary() {
  const char* env = std::getenv("STICKMETER_HAPROXY");
  return env != nullptr && *env != '\0' ? env : kDefaultHaproxyBinary;
}

std::pair<int, int> HaproxyVersion() {
  // "HAProxy version 3.0.11-1+deb13u4 2026/10/15 - https://haproxy.org/"
  std::pair<int, int> version{0, 0};
  FILE* p = ::popen((HaproxyBinary() + " -v 2>/dev/null").c_str(), "r");
  if (p == nullptr) return version;
  char line[256] = {};
  if (std::fgets(line, sizeof line, p) != nullptr) {
    std::sscanf(line, "HAProxy version %d.%d", &version.first, &version.second);
  }
  ::pclose(p);
  return version;
}

HaproxyNode::HaproxyNode(fs::path dir, std::string name, std::string config)
    : dir_(std::move(dir)), name_(std::move(name)), config_path_(dir_ / (name_ + ".cfg")) {
  fs::create_directories(dir_);
  WriteFile(config_path_, config);
}

HaproxyNode::~HaproxyNode() { Kill(); }

std::string BillingNodeConfig(const std::filesystem::path& dir, const std::string& name,
                              uint16_t peers_port, const std::string& stickmeter_name,
                              uint16_t stickmeter_port, uint16_t http_port) {
  return HaproxyPreamble(dir, name) +
         "peers billing\n    bind 127.0.0.1:" + std::to_string(peers_port) + "\n    server " +
         name + "\n    server " + stickmeter_name +
         " 127.0.0.1:" + std::to_string(stickmeter_port) +
         "\n    table quota type string len 64 size 100k expire 1h store http_req_cnt\n\n"
         "frontend fe\n    bind 127.0.0.1:" +
         std::to_string(http_port) +
         "\n    http-request track-sc0 req.hdr(host) table billing/quota\n"
         "    http-request return status 200 content-type text/plain string \"ok\\n\"\n";
}

std::string HaproxyPreamble(const fs::path& dir, const std::string& name) {
  return "global\n"
         "    stats socket " +
         (dir / (name + ".sock")).string() +
         " mode 600 level admin\n"
         "    nbthread 2\n"
         "\n"
         "defaults\n"
         "    mode http\n"
         "    timeout connect 2s\n"
         "    timeout client 10s\n"
         "    timeout server 10s\n\n";
}

bool HaproxyNode::Start(uint16_t wait_port, std::string* error) {
  process_ = std::make_unique<Process>(
      HaproxyBinary(), std::vector<std::string>{"-f", config_path_.string(), "-L", name_, "-db"},
      dir_ / (name_ + ".log"));
  if (!WaitForPort(wait_port) || !process_->Running()) {
    if (error) *error = "haproxy " + name_ + " did not start: " + Log();
    return false;
  }
  return true;
}

bool HaproxyNode::Reload(uint16_t wait_port, std::string* error) {
  auto old = std::move(process_);
  process_ =
      std::make_unique<Process>(HaproxyBinary(),
                                std::vector<std::string>{"-f", config_path_.string(), "-L", name_,
                                                         "-db", "-sf", std::to_string(old->pid())},
                                dir_ / (name_ + ".log"));
  int old_exit = old->Wait(std::chrono::seconds(20));
  if (old_exit == -1 || !process_->Running() || !WaitForPort(wait_port)) {
    if (error) *error = "reload of " + name_ + " failed: " + Log();
    return false;
  }
  return true;
}

void HaproxyNode::Kill() {
  if (process_) {
    process_->Signal(SIGKILL);
    process_->Wait(std::chrono::seconds(10));
    process_.reset();
  }
}

std::string HaproxyNode::AdminCommand(const std::string& command) const {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = (dir_ / (name_ + ".sock")).string();
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return {};
  }
  std::string line = command + "\n";
  (void)::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, n);
  ::close(fd);
  return out;
}

std::string HaproxyNode::Log() const { return ReadFile(dir_ / (name_ + ".log")); }

int SendRequests(uint16_t port, const std::string& host, const std::string& path, int count) {
  int ok = 0;
  for (int i = 0; i < count; ++i) {
    auto r = HttpRequest(port, "GET", path, {}, host);
    if (r && r->status >= 200 && r->status < 300) ++ok;
  }
  return ok;
}

}  // namespace stickmeter::testing
