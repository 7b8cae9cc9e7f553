// One-line structured logging to stderr.
//
// Each call writes exactly one line, `<RFC 3339 UTC time> <LEVEL> <component>: <text>`, under a
// mutex, so lines from different threads never interleave. Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace stickmeter {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Lines below `level` are dropped. Default: kInfo.
void SetLogLevel(LogLevel level);
void Log(LogLevel level, std::string_view component, std::string_view text);

inline void LogInfo(std::string_view component, std::string_view text) {
  Log(LogLevel::kInfo, component, text);
}
inline void LogWarn(std::string_view component, std::string_view text) {
  Log(LogLevel::kWarn, component, text);
}
inline void LogError(std::string_view component, std::string_view text) {
  Log(LogLevel::kError, component, text);
}

// `text` with control bytes, backslashes and bytes >= 0x7f as \xNN: what an outsider sent, safe
// to put in one log line or a one-line error.
std::string EscapeForLog(std::string_view text);

}  // namespace stickmeter
