// The decoding side of the peers protocol codec declared in codec.h, and its varints. The
// messages stickmeter sends are encoded in codec_encode.cc; keys as text and the names of types
// are in codec_text.cc.
//
// Grammar of what the decoder accepts (after the handshake), checked against HAProxy's
// src/peers.c (v2.6 and the 3.x data types):
//
//   message     := class:u8 type:u8 [ length:varint payload:byte{length} ]   (length iff type &
//   0x80) DEFINE      := table_id:varint name_len:varint name key_type:varint key_size:varint
//                  data_bitfield:varint [ expire_ms:varint params ]
//   params      := for each stored type, in bit order:
//                    freq counter: type:varint period_ms:varint
//                    array:        type:varint nbelem:varint [ period_ms:varint ] (gpc_rate)
//   SWITCH      := table_id:varint
//   ACK         := table_id:varint update_id:be32
//   UPDATE      := [ update_id:be32 ] [ expire_ms:be32 ] key values      (0x80/0x85 carry the id,
//                                                                        0x85/0x86 the expire)
//   key         := string: len:varint bytes{len} | integer, ipv4: be32 | ipv6, binary: key_size
//   values      := for each stored type, in bit order (arrays: nbelem values)
//                    unsigned/signed: varint; freq counter: curr_tick curr_ctr prev_ctr varints
//                    server_key: len:varint (0 = none) then in len bytes: id:varint [ vlen:varint
//                    value{vlen} ]
//
// Like HAProxy, bytes after the last field of a payload are ignored (a newer sender may append),
// and data types above glitch_rate are skipped: they come last in bit order.
#include "ingest/codec.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "ingest/data_types.h"

namespace stickmeter::ingest {
namespace {

using internal::kTypes;
using internal::StdType;
using internal::TypeInfo;

constexpr uint64_t kKnownTypesMask = (uint64_t{1} << kDataTypeCount) - 1;
// Larger keys are not something HAProxy can configure usefully; rejecting them keeps sizes sane.
constexpr uint64_t kMaxKeySize = 1 << 20;

constexpr uint8_t kLengthBit = 0x80;  // HAProxy's PEER_MSG_STKT_BIT_MASK

bool IsKnownKeyType(uint64_t t) { return t == 2 || t == 4 || t == 5 || t == 6 || t == 7; }

// Bounds-checked reading of one payload. Every read returns false when the payload is too short
// or the varint is invalid; the caller turns that into a Corruption status naming the field.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}

  bool Varint(uint64_t& v) {
    // Most values on the wire are below 240: one byte.
    if (pos_ < data_.size() && data_[pos_] < 240) {
      v = data_[pos_++];
      return true;
    }
    int n = DecodeVarint(data_.subspan(pos_), v);
    if (n <= 0) return false;
    pos_ += static_cast<size_t>(n);
    return true;
  }
  bool Be32(uint32_t& v) {
    if (remaining() < 4) return false;
    const uint8_t* p = data_.data() + pos_;
    v = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    pos_ += 4;
    return true;
  }
  bool Bytes(uint64_t n, std::span<const uint8_t>& out) {
    if (n > remaining()) return false;
    out = data_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }
  size_t remaining() const { return data_.size() - pos_; }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

std::string ValueName(const DataValue& v) { return std::string(MetricName(v.type, v.index)); }

Status Malformed(std::string_view what, std::string_view detail) {
  std::string m(what);
  m += ": ";
  m += detail;
  return Status::Corruption(std::move(m));
}

std::string_view StickTableTypeName(uint8_t type) {
  switch (type) {
    case 0x80:
      return "UPDATE";
    case 0x81:
      return "INCUPDATE";
    case 0x85:
      return "UPDATE_TIMED";
    case 0x86:
      return "INCUPDATE_TIMED";
    default:
      return "update";
  }
}

}  // namespace

// ---- Varint. ----

void AppendVarint(std::string& out, uint64_t value) {
  if (value < 240) {
    out.push_back(static_cast<char>(value));
    return;
  }
  out.push_back(static_cast<char>((value & 0xff) | 240));
  value = (value - 240) >> 4;
  while (value >= 128) {
    out.push_back(static_cast<char>((value & 0xff) | 128));
    value = (value - 128) >> 7;
  }
  out.push_back(static_cast<char>(value));
}

int DecodeVarint(std::span<const uint8_t> in, uint64_t& value) {
  if (in.empty()) return 0;
  uint64_t v = in[0];
  if (v < 240) {
    value = v;
    return 1;
  }
  // HAProxy adds each further byte, stop bit included, shifted by 4, 11, 18, ... A 10-byte
  // varint ends with a byte shifted by 60: only its low 4 bits fit in 64 bits.
  int shift = 4;
  for (size_t i = 1; i < 10; ++i) {
    if (i >= in.size()) return 0;
    const uint64_t b = in[i];
    if (shift == 60 && b > 0x0f) return -1;  // the last byte must fit
    const uint64_t add = b << shift;
    if (v + add < v) return -1;  // overflows 64 bits
    v += add;
    if (b < 128) {
      value = v;
      return static_cast<int>(i + 1);
    }
    shift += 7;
  }
  return -1;  // longer than 10 bytes
}

// ---- Decoder. ----

Decoder::Decoder(DecoderLimits limits) : limits_(limits) {}
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;
Decoder::~Decoder() = default;

const TableDefinition* Decoder::Table(uint64_t table_id) const {
  const TableState* t = FindTable(table_id);
  return t ? &t->def : nullptr;
}

Decoder::TableState* Decoder::FindTable(uint64_t table_id) const {
  auto it = tables_.find(table_id);
  return it == tables_.end() ? nullptr : it->second.get();
}

FeedResult Decoder::Feed(std::span<const uint8_t> bytes, MessageHandler& handler) {
  FeedResult result;
  size_t pos = 0;
  auto fail = [&](Status status, ErrorType type) {
    result.consumed = pos;
    result.error_offset = stream_offset_;
    result.error_type = type;
    result.status = Status::Corruption(status.message() + " (at stream offset " +
                                       std::to_string(stream_offset_) + ")");
    return result;
  };
  while (pos < bytes.size()) {
    const uint8_t msg_class = bytes[pos];
    if (msg_class == static_cast<uint8_t>(MessageClass::kReserved)) {
      return fail(Status::Corruption("reserved message class 255"), ErrorType::kProtocol);
    }
    if (bytes.size() - pos < 2) break;
    const uint8_t msg_type = bytes[pos + 1];
    size_t header = 2;
    std::span<const uint8_t> payload;
    if (msg_type & kLengthBit) {
      uint64_t length = 0;
      const int n = DecodeVarint(bytes.subspan(pos + 2), length);
      if (n == 0) break;
      if (n < 0) {
        return fail(
            Status::Corruption("invalid length varint (longer than 10 bytes or above 2^64)"),
            ErrorType::kProtocol);
      }
      if (length > limits_.max_message_size) {
        return fail(
            Status::Corruption("message length " + std::to_string(length) +
                               " exceeds the limit of " + std::to_string(limits_.max_message_size)),
            ErrorType::kSizeLimit);
      }
      header += static_cast<size_t>(n);
      if (bytes.size() - pos - header < length) break;
      payload = bytes.subspan(pos + header, static_cast<size_t>(length));
    }
    Status s = DecodeMessage(msg_class, msg_type, payload, handler);
    if (!s.ok()) return fail(std::move(s), ErrorType::kProtocol);
    const size_t total = header + payload.size();
    pos += total;
    stream_offset_ += total;
  }
  result.consumed = pos;
  return result;
}

Status Decoder::DecodeMessage(uint8_t msg_class, uint8_t msg_type, std::span<const uint8_t> payload,
                              MessageHandler& handler) {
  switch (msg_class) {
    case static_cast<uint8_t>(MessageClass::kControl):
      if (msg_type <= static_cast<uint8_t>(ControlType::kHeartbeat)) {
        handler.OnControl(static_cast<ControlType>(msg_type));
        return Status::Ok();
      }
      break;
    case static_cast<uint8_t>(MessageClass::kError):
      if (msg_type <= static_cast<uint8_t>(ErrorType::kSizeLimit)) {
        handler.OnPeerError(static_cast<ErrorType>(msg_type));
        return Status::Ok();
      }
      break;
    case static_cast<uint8_t>(MessageClass::kStickTable):
      switch (static_cast<StickTableType>(msg_type)) {
        case StickTableType::kDefine:
          return DecodeDefine(payload, handler);
        case StickTableType::kSwitch: {
          Reader r(payload);
          uint64_t id = 0;
          if (!r.Varint(id)) return Malformed("SWITCH", "truncated or invalid table id");
          current_ = FindTable(id);
          current_id_ = id;
          has_current_id_ = true;
          handler.OnTableSwitch(id);
          return Status::Ok();
        }
        case StickTableType::kAck: {
          Reader r(payload);
          uint64_t id = 0;
          uint32_t update_id = 0;
          if (!r.Varint(id)) return Malformed("ACK", "truncated or invalid table id");
          if (!r.Be32(update_id)) return Malformed("ACK", "truncated update id");
          handler.OnAck(id, update_id);
          return Status::Ok();
        }
        case StickTableType::kUpdate:
        case StickTableType::kIncUpdate:
        case StickTableType::kUpdateTimed:
        case StickTableType::kIncUpdateTimed:
          return DecodeUpdate(static_cast<StickTableType>(msg_type), payload, handler);
      }
      break;
    default:
      break;
  }
  // HAProxy ignores what it does not know; the framing already skipped any payload.
  handler.OnUnknown(msg_class, msg_type);
  return Status::Ok();
}

Status Decoder::DecodeDefine(std::span<const uint8_t> payload, MessageHandler& handler) {
  Reader r(payload);
  uint64_t id = 0, name_len = 0, key_type = 0, key_size = 0, bitfield = 0;
  std::span<const uint8_t> name;
  if (!r.Varint(id)) return Malformed("DEFINE", "truncated or invalid table id");
  if (!r.Varint(name_len)) return Malformed("DEFINE", "truncated or invalid name length");
  if (name_len == 0) return Malformed("DEFINE", "empty table name");
  if (name_len > limits_.max_table_name) {
    return Malformed("DEFINE", "table name of " + std::to_string(name_len) +
                                   " bytes is longer than " +
                                   std::to_string(limits_.max_table_name));
  }
  if (!r.Bytes(name_len, name)) return Malformed("DEFINE", "table name runs past the message");
  if (!r.Varint(key_type)) return Malformed("DEFINE", "truncated or invalid key type");
  if (!r.Varint(key_size)) return Malformed("DEFINE", "truncated or invalid key size");
  if (!r.Varint(bitfield)) return Malformed("DEFINE", "truncated or invalid data bitfield");
  if (!IsKnownKeyType(key_type)) {
    return Malformed("DEFINE", "unknown key type " + std::to_string(key_type));
  }
  const auto kt = static_cast<KeyType>(key_type);
  const bool fixed_ok = (kt == KeyType::kIpv4 || kt == KeyType::kSignedInt) ? key_size == 4
                        : kt == KeyType::kIpv6                              ? key_size == 16
                                               : key_size >= 1 && key_size <= kMaxKeySize;
  if (!fixed_ok) {
    return Malformed("DEFINE", "key size " + std::to_string(key_size) +
                                   " is invalid for key type " + std::string(KeyTypeName(kt)));
  }

  TableDefinition def;
  def.table_id = id;
  def.name.assign(reinterpret_cast<const char*>(name.data()), name.size());
  def.key_type = kt;
  def.key_size = key_size;
  def.data_bitfield = bitfield;
  const uint64_t known = bitfield & kKnownTypesMask;
  if (!r.at_end()) {
    if (!r.Varint(def.expire_ms)) return Malformed("DEFINE", "invalid expire");
    for (int t = 0; t < kDataTypeCount; ++t) {
      if (!((known >> t) & 1)) continue;
      const TypeInfo& info = kTypes[static_cast<size_t>(t)];
      if (!info.is_array && info.std_type != StdType::kFreq) continue;
      const std::string name_str(info.name);
      uint64_t prefix = 0;
      if (!r.Varint(prefix)) return Malformed("DEFINE", "missing parameters of " + name_str);
      if (prefix != static_cast<uint64_t>(t)) {
        return Malformed("DEFINE", "parameters of " + name_str + " are prefixed by type " +
                                       std::to_string(prefix));
      }
      if (info.is_array) {
        uint64_t nbelem = 0;
        if (!r.Varint(nbelem)) return Malformed("DEFINE", "missing array size of " + name_str);
        if (nbelem == 0 || nbelem > kMaxArrayElements) {
          return Malformed("DEFINE", "array size " + std::to_string(nbelem) + " of " + name_str +
                                         " is outside 1.." + std::to_string(kMaxArrayElements));
        }
        def.nbelem[static_cast<size_t>(t)] = nbelem;
      }
      if (info.std_type == StdType::kFreq) {
        if (!r.Varint(def.period_ms[static_cast<size_t>(t)])) {
          return Malformed("DEFINE", "missing period of " + name_str);
        }
      }
    }
  } else {
    for (int t = 0; t < kDataTypeCount; ++t) {
      if (((known >> t) & 1) && kTypes[static_cast<size_t>(t)].is_array) {
        return Malformed("DEFINE", "no array size for " +
                                       std::string(kTypes[static_cast<size_t>(t)].name) +
                                       " (definition without parameters)");
      }
    }
  }

  uint64_t values = 0;
  for (int t = 0; t < kDataTypeCount; ++t) {
    if ((known >> t) & 1) {
      values += kTypes[static_cast<size_t>(t)].is_array ? def.nbelem[static_cast<size_t>(t)] : 1;
    }
  }
  TableState* state = FindTable(id);
  const uint64_t replaced = state == nullptr ? 0 : state->values.size();
  if (defined_values_ - replaced + values > limits_.max_defined_values) {
    return Malformed("DEFINE", "more than " + std::to_string(limits_.max_defined_values) +
                                   " stored values in the tables defined on one connection");
  }
  if (state == nullptr) {
    if (tables_.size() >= limits_.max_tables) {
      return Malformed("DEFINE", "more than " + std::to_string(limits_.max_tables) +
                                     " tables defined on one connection");
    }
    auto& slot = tables_[id];
    slot = std::make_unique<TableState>();
    state = slot.get();
  }
  // A redefinition keeps last_update_id: HAProxy re-sends DEFINE at every table change and
  // its INCUPDATEs continue from the previous id.
  state->def = std::move(def);
  state->values.clear();
  defined_values_ = defined_values_ - replaced + values;
  for (int t = 0; t < kDataTypeCount; ++t) {
    if (!((known >> t) & 1)) continue;
    const TypeInfo& info = kTypes[static_cast<size_t>(t)];
    const uint64_t count = info.is_array ? state->def.nbelem[static_cast<size_t>(t)] : 1;
    for (uint32_t i = 0; i < count; ++i) {
      DataValue& v = state->values.emplace_back();
      v.type = static_cast<DataType>(t);
      v.index = i;
      switch (info.std_type) {
        case StdType::kUint:
        case StdType::kUll:
          v.form = DataValue::Form::kUnsigned;
          break;
        case StdType::kSint:
          v.form = DataValue::Form::kSigned;
          break;
        case StdType::kFreq:
          v.form = DataValue::Form::kFreq;
          v.freq.period_ms = state->def.period_ms[static_cast<size_t>(t)];
          break;
        case StdType::kDict:
          v.form = DataValue::Form::kDict;
          break;
      }
    }
  }
  current_ = state;
  current_id_ = id;
  has_current_id_ = true;
  handler.OnTableDefine(state->def);
  return Status::Ok();
}

Status Decoder::DecodeUpdate(StickTableType type, std::span<const uint8_t> payload,
                             MessageHandler& handler) {
  const std::string_view what = StickTableTypeName(static_cast<uint8_t>(type));
  if (current_ == nullptr) {
    if (!has_current_id_) return Malformed(what, "no table was defined before it");
    return Malformed(what, "for unknown table id " + std::to_string(current_id_));
  }
  TableState& table = *current_;
  const TableDefinition& def = table.def;
  Reader r(payload);

  EntryUpdateView view;
  view.table = &def;
  view.message_type = type;
  const bool has_id = type == StickTableType::kUpdate || type == StickTableType::kUpdateTimed;
  const bool timed =
      type == StickTableType::kUpdateTimed || type == StickTableType::kIncUpdateTimed;
  uint32_t update_id = 0;
  if (has_id) {
    if (!r.Be32(update_id)) return Malformed(what, "truncated update id");
  } else {
    update_id = table.last_update_id + 1;
  }
  if (timed) {
    uint32_t expire = 0;
    if (!r.Be32(expire)) return Malformed(what, "truncated expire");
    view.expire_ms = expire;
  }

  switch (def.key_type) {
    case KeyType::kString: {
      uint64_t len = 0;
      if (!r.Varint(len)) return Malformed(what, "truncated or invalid key length");
      std::span<const uint8_t> key;
      if (!r.Bytes(len, key)) return Malformed(what, "key runs past the message");
      // HAProxy stores at most key_size - 1 bytes of a string key.
      view.key_bytes = key.first(std::min<size_t>(key.size(), def.key_size - 1));
      break;
    }
    case KeyType::kSignedInt:
    case KeyType::kIpv4:
    case KeyType::kIpv6:
    case KeyType::kBinary:
      if (!r.Bytes(def.key_size, view.key_bytes)) return Malformed(what, "truncated key");
      break;
  }

  for (DataValue& v : table.values) {
    switch (v.form) {
      case DataValue::Form::kUnsigned:
        if (!r.Varint(v.u)) return Malformed(what, "truncated value of " + ValueName(v));
        break;
      case DataValue::Form::kSigned:
        if (!r.Varint(v.u)) return Malformed(what, "truncated value of " + ValueName(v));
        // HAProxy sends an int sign-extended to 64 bits and stores the low 32 bits back into
        // an int; doing the same accepts both encodings of a negative value.
        v.s = static_cast<int32_t>(static_cast<uint32_t>(v.u));
        break;
      case DataValue::Form::kFreq:
        if (!r.Varint(v.freq.curr_tick) || !r.Varint(v.freq.curr_ctr) ||
            !r.Varint(v.freq.prev_ctr)) {
          return Malformed(what, "truncated frequency counter " + ValueName(v));
        }
        break;
      case DataValue::Form::kDict: {
        v.dict_value = {};
        v.dict_id = 0;
        v.dict_defined = false;
        uint64_t len = 0;
        if (!r.Varint(len)) return Malformed(what, "truncated server_key length");
        if (len == 0) break;  // no value
        std::span<const uint8_t> entry;
        if (!r.Bytes(len, entry)) return Malformed(what, "server_key runs past the message");
        Reader d(entry);
        uint64_t id = 0;
        if (!d.Varint(id)) return Malformed(what, "truncated server_key dictionary id");
        if (id == 0 || id > kDictionarySize) {
          return Malformed(what, "server_key dictionary id " + std::to_string(id) +
                                     " is outside 1.." + std::to_string(kDictionarySize));
        }
        const size_t slot = static_cast<size_t>(id - 1);
        v.dict_id = id;
        if (d.at_end()) {
          if (!dictionary_defined_[slot]) {
            return Malformed(what,
                             "server_key refers to undefined dictionary id " + std::to_string(id));
          }
        } else {
          uint64_t value_len = 0;
          std::span<const uint8_t> value;
          if (!d.Varint(value_len) || !d.Bytes(value_len, value)) {
            return Malformed(what, "truncated server_key dictionary value");
          }
          if (!d.at_end()) return Malformed(what, "bytes after the server_key value");
          if (value_len > limits_.max_dictionary_value) {
            return Malformed(what, "server_key value of " + std::to_string(value_len) +
                                       " bytes is longer than " +
                                       std::to_string(limits_.max_dictionary_value));
          }
          dictionary_[slot].assign(reinterpret_cast<const char*>(value.data()), value.size());
          dictionary_defined_[slot] = true;
          v.dict_defined = true;
        }
        v.dict_value = dictionary_[slot];
        break;
      }
    }
  }

  table.last_update_id = update_id;
  view.update_id = update_id;
  view.values = std::span<const DataValue>(table.values.data(), table.values.size());
  handler.OnEntryUpdate(view);
  return Status::Ok();
}

}  // namespace stickmeter::ingest
