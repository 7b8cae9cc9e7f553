// Serializing the API's nlohmann::json replies.
//
// Keys in HAProxy string tables are arbitrary bytes; JSON needs UTF-8. A reply built as a json
// value is dumped here, replacing invalid UTF-8 with U+FFFD instead of throwing (nlohmann_json
// throws by default); replies and exports written by hand use common/json_writer.h, whose
// bytes are the same (tests/common/json_writer_test.cc compares them). Pure functions,
// thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace stickmeter::http {

// Serializes `value` compactly; never throws on invalid UTF-8.
inline std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace stickmeter::http
