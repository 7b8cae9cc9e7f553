// The HAProxy peers protocol v2.1 codec: bytes in, messages out. No I/O, no allocation per
// message in steady state, no exceptions.
//
// Wire facts beyond HAProxy's doc/peers-v2.0.txt are listed in docs/protocol.md; the source of
// truth is HAProxy's src/peers.c.
//
// Decoding: a Decoder holds the per-connection state the protocol needs (table definitions by
// the sender's id, the 128-slot server_key dictionary, the last update id per table). Feed() is
// given the bytes received so far that it has not consumed yet; it decodes every complete
// message, reports each to a MessageHandler, and returns how many bytes it consumed. The caller
// keeps the unconsumed tail and calls Feed() again once more bytes arrived: a message split at
// any byte position decodes the same. Views passed to the handler are valid only during the
// callback. A Decoder is used by one thread at a time.
//
// Encoding: free functions append one complete message to a std::string.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace stickmeter::ingest {

// ---- Wire constants. Never renumber: these are HAProxy's. ----

enum class MessageClass : uint8_t {
  kControl = 0,
  kError = 1,
  kStickTable = 10,
  kReserved = 255,
};

enum class ControlType : uint8_t {
  kResyncRequest = 0,
  kResyncFinished = 1,
  kResyncPartial = 2,
  kResyncConfirm = 3,
  kHeartbeat = 4,
};

enum class ErrorType : uint8_t {
  kProtocol = 0,
  kSizeLimit = 1,
};

enum class StickTableType : uint8_t {
  kUpdate = 0x80,
  kIncUpdate = 0x81,
  kDefine = 0x82,
  kSwitch = 0x83,
  kAck = 0x84,
  kUpdateTimed = 0x85,
  kIncUpdateTimed = 0x86,
};

enum class KeyType : uint8_t {
  kSignedInt = 2,
  kIpv4 = 4,
  kIpv6 = 5,
  kString = 6,
  kBinary = 7,
};

enum class DataType : uint8_t {
  kServerId = 0,
  kGpt0 = 1,
  kGpc0 = 2,
  kGpc0Rate = 3,
  kConnCnt = 4,
  kConnRate = 5,
  kConnCur = 6,
  kSessCnt = 7,
  kSessRate = 8,
  kHttpReqCnt = 9,
  kHttpReqRate = 10,
  kHttpErrCnt = 11,
  kHttpErrRate = 12,
  kBytesInCnt = 13,
  kBytesInRate = 14,
  kBytesOutCnt = 15,
  kBytesOutRate = 16,
  kGpc1 = 17,
  kGpc1Rate = 18,
  kServerKey = 19,
  kHttpFailCnt = 20,
  kHttpFailRate = 21,
  kGpt = 22,
  kGpc = 23,
  kGpcRate = 24,
  kGlitchCnt = 25,
  kGlitchRate = 26,
};
inline constexpr int kDataTypeCount = 27;
inline constexpr uint32_t kMaxArrayElements = 100;  // HAProxy's STKTABLE_MAX_DT_ARRAY_SIZE

// HAProxy's name for a data type ("gpc0", "http_req_rate", "gpc", ...).
std::string_view DataTypeName(DataType type);
// "string", "ipv4", "ipv6", "integer", "binary".
std::string_view KeyTypeName(KeyType type);
// The name of one metric: the type name, or "gpc.3"/"gpt.0"/"gpc_rate.1" for an array element.
// Points to static storage.
std::string_view MetricName(DataType type, uint32_t index);

// ---- Varint (HAProxy's encode_varint/decode_varint, 64-bit, up to 10 bytes). ----

void AppendVarint(std::string& out, uint64_t value);
// Decodes one varint at the start of `in`. Returns the bytes used, 0 if `in` ends inside the
// varint, or -1 if it is longer than 10 bytes or overflows 64 bits.
int DecodeVarint(std::span<const uint8_t> in, uint64_t& value);

// ---- Decoded messages. ----

struct TableDefinition {
  uint64_t table_id = 0;  // the sender's id
  std::string name;
  KeyType key_type = KeyType::kString;
  uint64_t key_size = 0;  // on the wire (string: configured len + 1)
  uint64_t data_bitfield = 0;
  uint64_t expire_ms = 0;                            // 0 = never (or absent from an old DEFINE)
  std::array<uint64_t, kDataTypeCount> period_ms{};  // frequency counters (and gpc_rate)
  std::array<uint64_t, kDataTypeCount> nbelem{};     // arrays

  bool Stores(DataType t) const { return (data_bitfield >> static_cast<int>(t)) & 1; }
};

struct FreqCounter {
  uint64_t period_ms = 0;  // from the DEFINE
  uint64_t curr_tick = 0;  // raw wire field: ms elapsed since the current period started
  uint64_t curr_ctr = 0;
  uint64_t prev_ctr = 0;
};

// One stored value of an update. For arrays, one DataValue per element.
struct DataValue {
  enum class Form : uint8_t { kUnsigned, kSigned, kFreq, kDict };
  DataType type = DataType::kGpc0;
  uint32_t index = 0;  // array element, 0 for scalars
  Form form = Form::kUnsigned;
  uint64_t u = 0;               // kUnsigned
  int64_t s = 0;                // kSigned (server_id)
  FreqCounter freq;             // kFreq
  std::string_view dict_value;  // kDict (server_key): the server name, empty if none
  uint64_t dict_id = 0;         // kDict: the dictionary slot used
  bool dict_defined = false;    // kDict: this message (re)defined the slot
};

struct EntryUpdateView {
  const TableDefinition* table = nullptr;
  StickTableType message_type = StickTableType::kUpdate;
  uint32_t update_id = 0;              // explicit, or previous + 1 for incremental updates
  std::optional<uint32_t> expire_ms;   // timed updates only ("expires in N ms")
  std::span<const uint8_t> key_bytes;  // the key as on the wire (string: without its length)
  std::span<const DataValue> values;   // in data-type bit order
};

// Receives decoded messages. Default implementations ignore the message.
class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  virtual void OnControl(ControlType /*type*/) {}
  virtual void OnPeerError(ErrorType /*type*/) {}
  virtual void OnTableDefine(const TableDefinition& /*table*/) {}
  virtual void OnTableSwitch(uint64_t /*table_id*/) {}
  virtual void OnEntryUpdate(const EntryUpdateView& /*update*/) {}
  virtual void OnAck(uint64_t /*table_id*/, uint32_t /*update_id*/) {}
  // A message of a class or type this codec does not know; HAProxy ignores those too.
  virtual void OnUnknown(uint8_t /*msg_class*/, uint8_t /*msg_type*/) {}
};

struct DecoderLimits {
  // Largest payload accepted; HAProxy's default tune.bufsize is 16384. Default: 65536.
  uint64_t max_message_size = 65536;
  // Distinct table ids one connection may DEFINE; one more is a protocol error. A HAProxy
  // peers section shares a handful of tables. Default: 1024.
  uint64_t max_tables = 1024;
  // Longest table name accepted in a DEFINE (HAProxy's are proxy names). Default: 256.
  uint64_t max_table_name = 256;
  // Longest server_key dictionary value accepted (a server name). Every update that refers to
  // the slot copies the value into its batch, so this bounds the amplification of a few wire
  // bytes into memory. Default: 1024.
  uint64_t max_dictionary_value = 1024;
  // Stored values (a scalar data type counts 1, an array its size) over every table defined on
  // one connection; a DEFINE past it is a protocol error. The decoder keeps ~100 bytes per value
  // and a DEFINE of ~40 bytes can declare 300 of them: this bounds what definitions hold.
  // HAProxy's tables store a few types each. Default: 16384.
  uint64_t max_defined_values = 16384;
};

struct FeedResult {
  size_t consumed = 0;  // bytes of complete messages decoded and reported
  // Non-OK when the bytes at offset `consumed` are not a valid message; the connection must be
  // closed. Messages before it were reported. The message names the problem and its offset in
  // the whole stream.
  Status status;
  // When `status` is non-OK: the offset of the bad message in the whole stream (every byte
  // consumed by earlier Feed() calls counts), and the error HAProxy would answer with
  // (kSizeLimit for a length above DecoderLimits::max_message_size, else kProtocol).
  uint64_t error_offset = 0;
  ErrorType error_type = ErrorType::kProtocol;
};

// HAProxy's server_key dictionary holds 128 entries per direction and connection.
inline constexpr uint64_t kDictionarySize = 128;

class Decoder {
 public:
  explicit Decoder(DecoderLimits limits = {});
  Decoder(Decoder&&) noexcept;
  Decoder& operator=(Decoder&&) noexcept;
  ~Decoder();

  // Decodes every complete message at the start of `bytes` (see the file comment). Never
  // allocates per update once every table has been seen; never throws. After a non-OK result
  // the decoder must not be fed again.
  FeedResult Feed(std::span<const uint8_t> bytes, MessageHandler& handler);

  // The definition announced under this sender id, or nullptr. The pointer stays valid for the
  // life of the decoder; its contents change when the sender redefines that id.
  const TableDefinition* Table(uint64_t table_id) const;

  // Bytes consumed by all Feed() calls so far: the stream offset of the next message. During a
  // handler callback, the offset of the message being reported.
  uint64_t stream_offset() const { return stream_offset_; }

 private:
  struct TableState {
    TableDefinition def;
    uint32_t last_update_id = 0;  // for INCUPDATE: previous id + 1, per table
    // One DataValue per stored value (array elements count one each) with type, index, form
    // and period filled in at DEFINE: an update only overwrites the wire fields, in place.
    std::vector<DataValue> values;
  };

  Status DecodeMessage(uint8_t msg_class, uint8_t msg_type, std::span<const uint8_t> payload,
                       MessageHandler& handler);
  Status DecodeDefine(std::span<const uint8_t> payload, MessageHandler& handler);
  Status DecodeUpdate(StickTableType type, std::span<const uint8_t> payload,
                      MessageHandler& handler);
  TableState* FindTable(uint64_t table_id) const;

  DecoderLimits limits_;
  // By sender table id; unique_ptr for stable addresses. At most limits_.max_tables entries.
  std::unordered_map<uint64_t, std::unique_ptr<TableState>> tables_;
  uint64_t defined_values_ = 0;    // the values of every table in tables_
  TableState* current_ = nullptr;  // the table of the last DEFINE or SWITCH
  uint64_t current_id_ = 0;        // the id of the last DEFINE or SWITCH (for error messages)
  bool has_current_id_ = false;
  std::array<std::string, kDictionarySize> dictionary_;
  std::array<bool, kDictionarySize> dictionary_defined_{};
  uint64_t stream_offset_ = 0;
};

// Renders a key as text (docs/cli.md, `stickmeter decode`): string as is, ipv4 dotted, ipv6 RFC
// 5952, integer in decimal (32-bit unsigned), binary as lowercase hex of all its bytes.
std::string FormatKey(KeyType type, std::span<const uint8_t> key_bytes);

// The inverse of FormatKey: the key's bytes on the wire (string: without its length, cut to
// key_size - 1 bytes; binary: zero-padded to key_size). InvalidArgument when `text` is not a
// key of that type (not a dotted IPv4 address, an integer above 2^32 - 1, odd hex, ...).
Result<std::string> ParseKey(KeyType type, uint64_t key_size, std::string_view text);
// The type of a name as KeyTypeName spells it, nullopt if none.
std::optional<KeyType> KeyTypeByName(std::string_view name);
// The data type of a name as DataTypeName spells it ("gpc0", "gpc" for the array), nullopt if
// none.
std::optional<DataType> DataTypeByName(std::string_view name);

// ---- Encoding (for our own messages, tests and the load generator). ----

void AppendControl(std::string& out, ControlType type);
void AppendPeerError(std::string& out, ErrorType type);
void AppendAck(std::string& out, uint64_t table_id, uint32_t update_id);
// The full DEFINE, expire and per-type parameters included (what HAProxy 2.6 sends).
void AppendTableDefine(std::string& out, const TableDefinition& table);
// HAProxy 2.6 never sends SWITCH, but accepts it.
void AppendTableSwitch(std::string& out, uint64_t table_id);
// `values` must hold one DataValue per stored type (per element for arrays), in bit order.
// With `expire_offset`, a timed update also says where in what it appended (counting from the
// size of `out` before the call) its 4-byte big-endian expire is, so that a copy of the message
// can be given another expire (SetEntryUpdateExpire) without encoding it again.
void AppendEntryUpdate(std::string& out, const TableDefinition& table, StickTableType type,
                       uint32_t update_id, std::optional<uint32_t> expire_ms,
                       std::span<const uint8_t> key_bytes, std::span<const DataValue> values,
                       size_t* expire_offset = nullptr);
// Rewrites the expire of a timed update message copied at `message` (see AppendEntryUpdate).
void SetEntryUpdateExpire(char* message, size_t expire_offset, uint32_t expire_ms);

// ---- Handshake (text lines before any message). ----

inline constexpr std::string_view kProtocolName = "HAProxyS";
inline constexpr std::string_view kProtocolVersion = "2.1";

enum class HandshakeStatus : int {
  kSucceeded = 200,
  kTryAgainLater = 300,
  kProtocolError = 501,
  kBadVersion = 502,
  kLocalPeerMismatch = 503,  // line 2 is not our name
  kUnknownPeer = 504,        // line 3's name is not allowed
};

struct Hello {
  std::string version;      // "2.1"
  std::string remote_name;  // line 2: the name the sender thinks we have
  std::string sender_name;  // line 3, first word
  std::string sender_pid;   // line 3, second word
};

// "HAProxyS 2.1\n<remote_name>\n<local_name> <pid> 1\n".
std::string FormatHello(std::string_view remote_name, std::string_view local_name, int64_t pid);

// Parses the three hello lines (CRLF or LF, without the terminators). On failure returns the
// status code HAProxy would answer with (501 or 502) in `rejection`.
Result<Hello> ParseHello(std::string_view line1, std::string_view line2, std::string_view line3,
                         HandshakeStatus* rejection);

}  // namespace stickmeter::ingest
