// The subcommands of `stickmeter`. Each returns the process exit code: 0 on success, 1 when the
// work failed (a one-line reason was printed to stderr), 2 for a usage error.
#pragma once

#include "app/config.h"

namespace stickmeter::app {

// Runs until SIGINT or SIGTERM, then stops accepting, drains, closes the store and returns 0.
int RunServe(const ServeConfig& config);
int RunDecodeCommand(const DecodeConfig& config);
int RunExport(const ExportConfig& config);
int RunBackup(const BackupConfig& config);

// The full --help text of a subcommand, or nullptr for an unknown one.
const char* CommandHelp(const std::string& command);

}  // namespace stickmeter::app
