// The data types of HAProxy's stick tables as the codec knows them (src/stick_table.c's
// stktable_data_types[]): name, how a value is stored, whether it is an array. Internal to the
// codec's files (codec.cc decodes by it, codec_encode.cc encodes, codec_text.cc names).
//
// Constants only: thread-safe, no ownership, no failure.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "ingest/codec.h"

namespace stickmeter::ingest::internal {

enum class StdType : uint8_t { kSint, kUint, kUll, kFreq, kDict };

struct TypeInfo {
  std::string_view name;
  StdType std_type;
  bool is_array;
};

// HAProxy's stktable_data_types[] (src/stick_table.c): name, storage type, array flag.
inline constexpr std::array<TypeInfo, kDataTypeCount> kTypes = {{
    {"server_id", StdType::kSint, false},
    {"gpt0", StdType::kUint, false},
    {"gpc0", StdType::kUint, false},
    {"gpc0_rate", StdType::kFreq, false},
    {"conn_cnt", StdType::kUint, false},
    {"conn_rate", StdType::kFreq, false},
    {"conn_cur", StdType::kUint, false},
    {"sess_cnt", StdType::kUint, false},
    {"sess_rate", StdType::kFreq, false},
    {"http_req_cnt", StdType::kUint, false},
    {"http_req_rate", StdType::kFreq, false},
    {"http_err_cnt", StdType::kUint, false},
    {"http_err_rate", StdType::kFreq, false},
    {"bytes_in_cnt", StdType::kUll, false},
    {"bytes_in_rate", StdType::kFreq, false},
    {"bytes_out_cnt", StdType::kUll, false},
    {"bytes_out_rate", StdType::kFreq, false},
    {"gpc1", StdType::kUint, false},
    {"gpc1_rate", StdType::kFreq, false},
    {"server_key", StdType::kDict, false},
    {"http_fail_cnt", StdType::kUint, false},
    {"http_fail_rate", StdType::kFreq, false},
    {"gpt", StdType::kUint, true},
    {"gpc", StdType::kUint, true},
    {"gpc_rate", StdType::kFreq, true},
    {"glitch_cnt", StdType::kUint, false},
    {"glitch_rate", StdType::kFreq, false},
}};

}  // namespace stickmeter::ingest::internal
