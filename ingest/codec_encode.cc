// The encoding side of the peers protocol codec declared in codec.h: the messages stickmeter
// sends (control and error codes, ACKs, table definitions and entry updates when it teaches
// HAProxy), framed as the decoder in codec.cc reads them.
#include <string>

#include "ingest/codec.h"
#include "ingest/data_types.h"

namespace stickmeter::ingest {
namespace {

using internal::kTypes;
using internal::StdType;
using internal::TypeInfo;

void AppendBe32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// Appends `class type length payload` where the payload is what `fill` appends.
template <typename Fill>
void AppendFramed(std::string& out, uint8_t msg_class, uint8_t msg_type, Fill&& fill) {
  out.push_back(static_cast<char>(msg_class));
  out.push_back(static_cast<char>(msg_type));
  const size_t payload_start = out.size();
  fill(out);
  std::string length;
  AppendVarint(length, out.size() - payload_start);
  out.insert(payload_start, length);
}

}  // namespace

void AppendControl(std::string& out, ControlType type) {
  out.push_back(static_cast<char>(MessageClass::kControl));
  out.push_back(static_cast<char>(type));
}

void AppendPeerError(std::string& out, ErrorType type) {
  out.push_back(static_cast<char>(MessageClass::kError));
  out.push_back(static_cast<char>(type));
}

void AppendAck(std::string& out, uint64_t table_id, uint32_t update_id) {
  AppendFramed(out, static_cast<uint8_t>(MessageClass::kStickTable),
               static_cast<uint8_t>(StickTableType::kAck), [&](std::string& o) {
                 AppendVarint(o, table_id);
                 AppendBe32(o, update_id);
               });
}

void AppendTableSwitch(std::string& out, uint64_t table_id) {
  AppendFramed(out, static_cast<uint8_t>(MessageClass::kStickTable),
               static_cast<uint8_t>(StickTableType::kSwitch),
               [&](std::string& o) { AppendVarint(o, table_id); });
}

void AppendTableDefine(std::string& out, const TableDefinition& table) {
  AppendFramed(out, static_cast<uint8_t>(MessageClass::kStickTable),
               static_cast<uint8_t>(StickTableType::kDefine), [&](std::string& o) {
                 AppendVarint(o, table.table_id);
                 AppendVarint(o, table.name.size());
                 o += table.name;
                 AppendVarint(o, static_cast<uint64_t>(table.key_type));
                 AppendVarint(o, table.key_size);
                 AppendVarint(o, table.data_bitfield);
                 AppendVarint(o, table.expire_ms);
                 for (int t = 0; t < kDataTypeCount; ++t) {
                   if (!table.Stores(static_cast<DataType>(t))) continue;
                   const TypeInfo& info = kTypes[static_cast<size_t>(t)];
                   if (!info.is_array && info.std_type != StdType::kFreq) continue;
                   AppendVarint(o, static_cast<uint64_t>(t));
                   if (info.is_array) AppendVarint(o, table.nbelem[static_cast<size_t>(t)]);
                   if (info.std_type == StdType::kFreq) {
                     AppendVarint(o, table.period_ms[static_cast<size_t>(t)]);
                   }
                 }
               });
}

void AppendEntryUpdate(std::string& out, const TableDefinition& table, StickTableType type,
                       uint32_t update_id, std::optional<uint32_t> expire_ms,
                       std::span<const uint8_t> key_bytes, std::span<const DataValue> values,
                       size_t* expire_offset) {
  const size_t start = out.size();
  size_t expire_at = 0, payload_end = 0;
  AppendFramed(
      out, static_cast<uint8_t>(MessageClass::kStickTable), static_cast<uint8_t>(type),
      [&](std::string& o) {
        if (type == StickTableType::kUpdate || type == StickTableType::kUpdateTimed) {
          AppendBe32(o, update_id);
        }
        if (type == StickTableType::kUpdateTimed || type == StickTableType::kIncUpdateTimed) {
          expire_at = o.size();
          AppendBe32(o, expire_ms.value_or(0));
        }
        if (table.key_type == KeyType::kString) AppendVarint(o, key_bytes.size());
        o.append(reinterpret_cast<const char*>(key_bytes.data()), key_bytes.size());
        for (const DataValue& v : values) {
          switch (v.form) {
            case DataValue::Form::kUnsigned:
              AppendVarint(o, v.u);
              break;
            case DataValue::Form::kSigned:
              AppendVarint(o, static_cast<uint64_t>(v.s));
              break;
            case DataValue::Form::kFreq:
              AppendVarint(o, v.freq.curr_tick);
              AppendVarint(o, v.freq.curr_ctr);
              AppendVarint(o, v.freq.prev_ctr);
              break;
            case DataValue::Form::kDict: {
              if (v.dict_id == 0) {
                AppendVarint(o, 0);
                break;
              }
              std::string entry;
              AppendVarint(entry, v.dict_id);
              if (v.dict_defined) {
                AppendVarint(entry, v.dict_value.size());
                entry += v.dict_value;
              }
              AppendVarint(o, entry.size());
              o += entry;
              break;
            }
          }
        }
        payload_end = o.size();
      });
  // The payload's length went in before it: the expire moved by the length's size.
  if (expire_offset != nullptr) *expire_offset = expire_at + (out.size() - payload_end) - start;
}

void SetEntryUpdateExpire(char* message, size_t expire_offset, uint32_t expire_ms) {
  for (int i = 0; i < 4; ++i) {
    message[expire_offset + static_cast<size_t>(i)] = static_cast<char>(expire_ms >> (24 - 8 * i));
  }
}

}  // namespace stickmeter::ingest
