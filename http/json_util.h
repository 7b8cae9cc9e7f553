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
  // Keys are nearly always printable ASCII without quotes or backslashes, which the serializer
  // copies unchanged: append those directly instead of building and dumping a json value per
  // row (half of the formatting time of a large JSON export).
  bool plain = true;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += '"';
    out.append(text);
    out += '"';
    return;
  }
  out += DumpJson(nlohmann::json(std::string(text)));
}

}  // namespace stickmeter::http
