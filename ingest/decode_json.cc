// Implementation of decode_json.h.
#include "ingest/decode_json.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/json_writer.h"
#include "ingest/codec.h"

namespace stickmeter::ingest {
namespace {

constexpr size_t kReadChunk = 1 << 20;
constexpr size_t kFlushAt = 1 << 16;

// Appends `s` as a JSON string (common/json_writer.h). Keys are arbitrary bytes: the ones that
// are not valid UTF-8 come out as \u00XX, so the output is always valid JSON and the original
// bytes stay recognisable.
void AppendString(std::string& out, std::string_view s) {
  AppendJsonString(out, s, InvalidUtf8::kEscapeBytes);
}

void AppendUint(std::string& out, uint64_t v) { AppendDecimal(out, v); }

void AppendInt(std::string& out, int64_t v) { AppendDecimal(out, v); }

std::string_view ControlName(ControlType t) {
  switch (t) {
    case ControlType::kResyncRequest:
      return "resync_request";
    case ControlType::kResyncFinished:
      return "resync_finished";
    case ControlType::kResyncPartial:
      return "resync_partial";
    case ControlType::kResyncConfirm:
      return "resync_confirm";
    case ControlType::kHeartbeat:
      return "heartbeat";
  }
  return "unknown";
}

std::string_view UpdateName(StickTableType t) {
  switch (t) {
    case StickTableType::kIncUpdate:
      return "incupdate";
    case StickTableType::kUpdateTimed:
      return "update_timed";
    case StickTableType::kIncUpdateTimed:
      return "incupdate_timed";
    default:
      return "update";
  }
}

bool IsArray(DataType t) {
  return t == DataType::kGpt || t == DataType::kGpc || t == DataType::kGpcRate;
}

// Prints every message as one JSON line.
class LinePrinter : public MessageHandler {
 public:
  LinePrinter(const Decoder& decoder, std::ostream& out) : decoder_(decoder), out_(out) {}

  void OnControl(ControlType type) override {
    Begin("control");
    buf_ += ",\"control\":";
    AppendString(buf_, ControlName(type));
    buf_ += ",\"code\":";
    AppendUint(buf_, static_cast<uint64_t>(type));
    End();
  }
  void OnPeerError(ErrorType type) override {
    Begin("error");
    buf_ += ",\"peer_error\":";
    buf_ += type == ErrorType::kProtocol ? "\"protocol\"" : "\"size_limit\"";
    buf_ += ",\"code\":";
    AppendUint(buf_, static_cast<uint64_t>(type));
    End();
  }
  void OnTableDefine(const TableDefinition& t) override {
    Begin("define");
    buf_ += ",\"table_id\":";
    AppendUint(buf_, t.table_id);
    buf_ += ",\"table\":";
    AppendString(buf_, t.name);
    buf_ += ",\"key_type\":";
    AppendString(buf_, KeyTypeName(t.key_type));
    buf_ += ",\"key_len\":";
    AppendUint(buf_, t.key_type == KeyType::kString ? t.key_size - 1 : t.key_size);
    buf_ += ",\"key_size\":";
    AppendUint(buf_, t.key_size);
    buf_ += ",\"data_types\":[";
    bool first = true;
    for (int i = 0; i < kDataTypeCount; ++i) {
      if (!t.Stores(static_cast<DataType>(i))) continue;
      if (!first) buf_ += ',';
      first = false;
      AppendString(buf_, DataTypeName(static_cast<DataType>(i)));
    }
    buf_ += "],\"data_bitfield\":";
    AppendUint(buf_, t.data_bitfield);
    buf_ += ",\"data_params\":{";
    first = true;
    for (int i = 0; i < kDataTypeCount; ++i) {
      const auto type = static_cast<DataType>(i);
      const auto idx = static_cast<size_t>(i);
      if (!t.Stores(type) || (t.nbelem[idx] == 0 && t.period_ms[idx] == 0)) continue;
      if (!first) buf_ += ',';
      first = false;
      AppendString(buf_, DataTypeName(type));
      buf_ += ":{";
      bool inner_first = true;
      if (IsArray(type)) {
        buf_ += "\"nbelem\":";
        AppendUint(buf_, t.nbelem[idx]);
        inner_first = false;
      }
      if (t.period_ms[idx] != 0) {
        if (!inner_first) buf_ += ',';
        buf_ += "\"period_ms\":";
        AppendUint(buf_, t.period_ms[idx]);
      }
      buf_ += '}';
    }
    buf_ += "},\"expire_ms\":";
    AppendUint(buf_, t.expire_ms);
    End();
  }
  void OnTableSwitch(uint64_t table_id) override {
    Begin("switch");
    buf_ += ",\"table_id\":";
    AppendUint(buf_, table_id);
    End();
  }
  void OnAck(uint64_t table_id, uint32_t update_id) override {
    Begin("ack");
    buf_ += ",\"table_id\":";
    AppendUint(buf_, table_id);
    buf_ += ",\"update_id\":";
    AppendUint(buf_, update_id);
    End();
  }
  void OnUnknown(uint8_t msg_class, uint8_t msg_type) override {
    Begin("unknown");
    buf_ += ",\"class\":";
    AppendUint(buf_, msg_class);
    buf_ += ",\"msg_type\":";
    AppendUint(buf_, msg_type);
    End();
  }
  void OnEntryUpdate(const EntryUpdateView& u) override {
    Begin("update");
    buf_ += ",\"msg\":";
    AppendString(buf_, UpdateName(u.message_type));
    buf_ += ",\"table_id\":";
    AppendUint(buf_, u.table->table_id);
    buf_ += ",\"table\":";
    AppendString(buf_, u.table->name);
    buf_ += ",\"update_id\":";
    AppendUint(buf_, u.update_id);
    buf_ += ",\"key\":";
    key_ = FormatKey(u.table->key_type, u.key_bytes);
    AppendString(buf_, key_);
    buf_ += ",\"expire_ms\":";
    if (u.expire_ms) {
      AppendUint(buf_, *u.expire_ms);
    } else {
      buf_ += "null";
    }
    buf_ += ",\"values\":{";
    const DataValue* dict = nullptr;
    bool first = true;
    for (const DataValue& v : u.values) {
      if (!first) buf_ += ',';
      first = false;
      AppendString(buf_, MetricName(v.type, v.index));
      buf_ += ':';
      switch (v.form) {
        case DataValue::Form::kUnsigned:
          AppendUint(buf_, v.u);
          break;
        case DataValue::Form::kSigned:
          AppendInt(buf_, v.s);
          break;
        case DataValue::Form::kFreq:
          buf_ += "{\"period_ms\":";
          AppendUint(buf_, v.freq.period_ms);
          buf_ += ",\"curr_tick\":";
          AppendUint(buf_, v.freq.curr_tick);
          buf_ += ",\"curr_ctr\":";
          AppendUint(buf_, v.freq.curr_ctr);
          buf_ += ",\"prev_ctr\":";
          AppendUint(buf_, v.freq.prev_ctr);
          buf_ += '}';
          break;
        case DataValue::Form::kDict:
          if (v.dict_id == 0) {
            buf_ += "null";
          } else {
            AppendString(buf_, v.dict_value);
            dict = &v;
          }
          break;
      }
    }
    buf_ += '}';
    if (dict != nullptr) {
      buf_ += ",\"dict\":{\"server_key\":{\"id\":";
      AppendUint(buf_, dict->dict_id);
      buf_ += ",\"defined\":";
      buf_ += dict->dict_defined ? "true" : "false";
      buf_ += "}}";
    }
    End();
  }

  void Error(uint64_t offset, std::string_view reason) {
    buf_ += "{\"type\":\"error\",\"offset\":";
    AppendUint(buf_, offset);
    buf_ += ",\"reason\":";
    AppendString(buf_, reason);
    buf_ += "}\n";
  }
  void Flush() {
    out_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    buf_.clear();
  }

 private:
  void Begin(std::string_view type) {
    buf_ += "{\"offset\":";
    AppendUint(buf_, decoder_.stream_offset());
    buf_ += ",\"type\":\"";
    buf_ += type;
    buf_ += '"';
  }
  void End() {
    buf_ += "}\n";
    if (buf_.size() >= kFlushAt) Flush();
  }

  const Decoder& decoder_;
  std::ostream& out_;
  std::string buf_;
  std::string key_;
};

// Counts messages by type and updates by table, printing one object at the end.
class SummaryCounter : public MessageHandler {
 public:
  void OnControl(ControlType) override { ++control_; }
  void OnPeerError(ErrorType) override { ++error_; }
  void OnTableDefine(const TableDefinition&) override { ++define_; }
  void OnTableSwitch(uint64_t) override { ++switch_; }
  void OnAck(uint64_t, uint32_t) override { ++ack_; }
  void OnUnknown(uint8_t, uint8_t) override { ++unknown_; }
  void OnEntryUpdate(const EntryUpdateView& u) override {
    ++updates_;
    // Definitions have stable addresses in the decoder: the last one seen is the usual hit.
    if (u.table != last_table_) {
      last_table_ = u.table;
      last_count_ = nullptr;
      for (auto& [table, count] : per_table_) {
        if (table == u.table) last_count_ = &count;
      }
      if (last_count_ == nullptr) last_count_ = &per_table_.emplace_back(u.table, 0).second;
    }
    ++*last_count_;
  }

  void Print(std::string& out) const {
    const uint64_t messages = control_ + error_ + define_ + switch_ + ack_ + unknown_ + updates_;
    out += "{\"messages\":";
    AppendUint(out, messages);
    out += ",\"updates\":";
    AppendUint(out, updates_);
    out += ",\"types\":{\"control\":";
    AppendUint(out, control_);
    out += ",\"error\":";
    AppendUint(out, error_);
    out += ",\"define\":";
    AppendUint(out, define_);
    out += ",\"switch\":";
    AppendUint(out, switch_);
    out += ",\"ack\":";
    AppendUint(out, ack_);
    out += ",\"update\":";
    AppendUint(out, updates_);
    out += ",\"unknown\":";
    AppendUint(out, unknown_);
    out += "},\"tables\":{";
    // Keyed by name: the same table may come under several ids over a stream.
    std::map<std::string, uint64_t> by_name;
    for (const auto& [table, count] : per_table_) by_name[table->name] += count;
    bool first = true;
    for (const auto& [name, count] : by_name) {
      if (!first) out += ',';
      first = false;
      AppendString(out, name);
      out += ':';
      AppendUint(out, count);
    }
    out += "}}\n";
  }

 private:
  uint64_t control_ = 0, error_ = 0, define_ = 0, switch_ = 0, ack_ = 0, unknown_ = 0;
  uint64_t updates_ = 0;
  std::vector<std::pair<const TableDefinition*, uint64_t>> per_table_;
  const TableDefinition* last_table_ = nullptr;
  uint64_t* last_count_ = nullptr;
};

// Reads chunks with `read` (returns bytes read, 0 at the end, -1 on error) and decodes them.
int Run(const std::function<long(uint8_t*, size_t)>& read, std::ostream& out, bool summary) {
  // Large enough for the biggest message the decoder accepts plus a chunk.
  DecoderLimits limits;
  Decoder decoder(limits);
  LinePrinter printer(decoder, out);
  SummaryCounter counter;
  MessageHandler& handler = summary ? static_cast<MessageHandler&>(counter) : printer;
  std::vector<uint8_t> buffer(kReadChunk + limits.max_message_size + 16);
  size_t filled = 0;
  int rc = 0;
  std::string error_reason;
  uint64_t error_offset = 0;
  while (true) {
    const long n = read(buffer.data() + filled, buffer.size() - filled);
    if (n < 0) {
      rc = 2;
      error_offset = decoder.stream_offset();
      error_reason = "read error";
      break;
    }
    if (n == 0) {
      if (filled > 0) {
        rc = 1;
        error_offset = decoder.stream_offset();
        error_reason =
            "stream ends inside a message (" + std::to_string(filled) + " bytes of it received)";
      }
      break;
    }
    filled += static_cast<size_t>(n);
    FeedResult r = decoder.Feed(std::span<const uint8_t>(buffer.data(), filled), handler);
    if (!r.status.ok()) {
      rc = 1;
      error_offset = r.error_offset;
      error_reason = r.status.message();
      break;
    }
    // Keep the unconsumed tail (at most one incomplete message) at the front of the buffer.
    std::memmove(buffer.data(), buffer.data() + r.consumed, filled - r.consumed);
    filled -= r.consumed;
  }
  if (summary) {
    std::string line;
    counter.Print(line);
    out << line;
  }
  if (rc != 0) printer.Error(error_offset, error_reason);
  printer.Flush();
  out.flush();
  return rc;
}

}  // namespace

int RunDecode(std::istream& in, std::ostream& out, bool summary) {
  return Run(
      [&in](uint8_t* dst, size_t len) -> long {
        in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(len));
        const std::streamsize got = in.gcount();
        if (got == 0 && in.bad()) return -1;
        return static_cast<long>(got);
      },
      out, summary);
}

int RunDecodeFile(std::string_view path, std::ostream& out, std::ostream& err, bool summary) {
  std::FILE* f = nullptr;
  if (path == "-") {
    f = stdin;
  } else {
    f = std::fopen(std::string(path).c_str(), "rb");
    if (f == nullptr) {
      err << "stickmeter decode: cannot open " << path << ": " << std::strerror(errno) << "\n";
      return 2;
    }
  }
  const int rc = Run(
      [f](uint8_t* dst, size_t len) -> long {
        const size_t got = std::fread(dst, 1, len, f);
        if (got == 0 && std::ferror(f)) return -1;
        return static_cast<long>(got);
      },
      out, summary);
  if (f != stdin) std::fclose(f);
  return rc;
}

}  // namespace stickmeter::ingest
