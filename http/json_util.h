// Small JSON helpers shared by the API handlers and the export writer.
//
// Keys in HAProxy string tables are arbitrary bytes; JSON needs UTF-8. Every string that reaches
// a response goes through these helpers, which replace invalid UTF-8 with U+FFFD instead of
// throwing (nlohmann_json throws by default). Pure functions, thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace stickmeter::http {

// Serializes `value` compactly; never throws on invalid UTF-8.
inline std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Appends `text` as a quoted JSON string.
inline void AppendJsonString(std::string& out, std::string_view text) {
  out += DumpJson(nlohmann::json(std::string(text)));
}

}  // namespace stickmeter::http
