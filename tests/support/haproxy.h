// Test support: a real HAProxy process from Debian's package, and HTTP traffic to it.
//
// Which HAProxy: the executable named by the environment variable STICKMETER_HAPROXY, else
// Debian 12's /usr/sbin/haproxy (2.6). scripts/test.sh runs the integration and end-to-end tests
// a second time with STICKMETER_HAPROXY pointing at HAProxy 3.0 (a wrapper script installed by
// scripts/setup.sh --test); it must take haproxy's arguments and exec haproxy in its own process
// (the pid is used for -sf and signals).
//
// HaproxyNode writes a configuration into its directory and runs `haproxy -f CFG -L NAME -db`
// in the foreground, so the test owns the process. Reload() does what an operator's soft reload
// does (`-sf OLD_PID`: the old process hands its stick tables to the new one and exits).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "tests/support/process.h"

namespace stickmeter::testing {

inline constexpr const char* kDefaultHaproxyBinary = "/usr/sbin/haproxy";
// $STICKMETER_HAPROXY if set and not empty, else kDefaultHaproxyBinary.
std::string HaproxyBinary();
// Its major and minor version from `haproxy -v` (e.g. {3, 0}); {0, 0} if it cannot be run.
std::pair<int, int> HaproxyVersion();

class HaproxyNode {
 public:
  // `config` is the complete configuration text; `name` is the local peer name (-L).
  HaproxyNode(std::filesystem::path dir, std::string name, std::string config);
  ~HaproxyNode();

  const std::string& name() const { return name_; }
  // Starts the process; false (with the log in `error`) if it exits or `wait_port` never opens.
  bool Start(uint16_t wait_port, std::string* error);
  // Soft reload: a new process with -sf; waits for the old one to exit.
  bool Reload(uint16_t wait_port, std::string* error);
  // SIGKILL, no hand-over: the next Start() begins with empty tables.
  void Kill();
  // Sends a command to the stats socket and returns the answer ("show table quota", ...).
  std::string AdminCommand(const std::string& command) const;
  std::string Log() const;
  pid_t pid() const { return process_ ? process_->pid() : -1; }

 private:
  std::filesystem::path dir_;
  std::string name_;
  std::filesystem::path config_path_;
  std::unique_ptr<Process> process_;
};

// The `global` + `defaults` sections every test config starts with (admin socket in `dir`).
std::string HaproxyPreamble(const std::filesystem::path& dir, const std::string& name);

// A whole config of a node `name` that tracks each request's Host in `billing/quota` (string
// keys, http_req_cnt) and answers 200 on `http_port`, with `stickmeter_name` at
// 127.0.0.1:stickmeter_port as its only other peer (own peers bind on `peers_port`).
std::string BillingNodeConfig(const std::filesystem::path& dir, const std::string& name,
                              uint16_t peers_port, const std::string& stickmeter_name,
                              uint16_t stickmeter_port, uint16_t http_port);

// Sends `count` GET requests for `path` with `Host: host` to 127.0.0.1:port, one connection
// each; returns how many got a 2xx answer.
int SendRequests(uint16_t port, const std::string& host, const std::string& path, int count);

}  // namespace stickmeter::testing
