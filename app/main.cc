// stickmeter: parses the command line and hands over to one subcommand.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "app/commands.h"
#include "app/config.h"

namespace {

constexpr const char* kUsage = R"(stickmeter - exact usage data from HAProxy stick tables

Usage:
  stickmeter serve  [--config FILE] [--data DIR] [--name NAME]
                    [--peers-listen ADDR:PORT|off] [--connect PEER@HOST:PORT]...
                    [--allow-peer NAME]... [--http ADDR:PORT] [--token-file FILE]
                    [--insecure-no-auth] [TLS, storage and tuning flags: serve --help]
  stickmeter decode [--summary] [FILE|-]
  stickmeter export [--data DIR] (--period YYYY-MM [--tz AREA/CITY] | --from T --to T)
                    [--table T] [--metric M] [--format csv|json] [--per-source]
                    [--excel-safe] [--out FILE [--sha256]]
  stickmeter backup [--data DIR] TARGET_DIR
  stickmeter version

Run `stickmeter COMMAND --help` for a command's flags. Documentation: docs/ in the source tree.
)";

bool WantsHelp(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int UsageError(const stickmeter::Status& status) {
  std::fprintf(stderr, "stickmeter: %s (see stickmeter --help)\n", status.message().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace stickmeter::app;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);

  if (command == "version" || command == "--version") {
    std::printf("stickmeter %s\n", STICKMETER_VERSION);
    return 0;
  }
  if (WantsHelp(args)) {
    const char* help = CommandHelp(command);
    if (help == nullptr)
      return UsageError(stickmeter::Status::InvalidArgument("unknown command '" + command + "'"));
    std::fputs(help, stdout);
    return 0;
  }
  if (command == "serve") {
    auto config = ParseServeArgs(args);
    if (!config.ok()) return UsageError(config.status());
    return RunServe(*config);
  }
  if (command == "decode") {
    auto config = ParseDecodeArgs(args);
    if (!config.ok()) return UsageError(config.status());
    return RunDecodeCommand(*config);
  }
  if (command == "export") {
    auto config = ParseExportArgs(args);
    if (!config.ok()) return UsageError(config.status());
    return RunExport(*config);
  }
  if (command == "backup") {
    auto config = ParseBackupArgs(args);
    if (!config.ok()) return UsageError(config.status());
    return RunBackup(*config);
  }
  return UsageError(stickmeter::Status::InvalidArgument("unknown command '" + command + "'"));
}
