// Helpers shared by the codec tests: a handler that renders every message as one line of text
// (so failures read as a diff of messages) and a driver that feeds a stream in given chunks the
// way a session does (keeping the unconsumed tail).
#pragma once

#include <cstdint>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "ingest/codec.h"

namespace stickmeter::ingest::testing {

// Lowercase hex of every byte, for readable failures on binary strings.
inline std::string Hex(const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

inline std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class Recorder : public MessageHandler {
 public:
  std::vector<std::string> lines;

  void OnControl(ControlType t) override {
    lines.push_back("control " + std::to_string(static_cast<int>(t)));
  }
  void OnPeerError(ErrorType t) override {
    lines.push_back("error " + std::to_string(static_cast<int>(t)));
  }
  void OnTableDefine(const TableDefinition& t) override {
    std::string s = "define " + std::to_string(t.table_id) + " " + t.name +
                    " key=" + std::string(KeyTypeName(t.key_type)) + "/" +
                    std::to_string(t.key_size) + " bits=" + std::to_string(t.data_bitfield) +
                    " expire=" + std::to_string(t.expire_ms);
    for (int i = 0; i < kDataTypeCount; ++i) {
      if (t.period_ms[i] || t.nbelem[i]) {
        s += " " + std::string(DataTypeName(static_cast<DataType>(i))) + "(" +
             std::to_string(t.nbelem[i]) + "," + std::to_string(t.period_ms[i]) + ")";
      }
    }
    lines.push_back(s);
  }
  void OnTableSwitch(uint64_t id) override { lines.push_back("switch " + std::to_string(id)); }
  void OnAck(uint64_t id, uint32_t u) override {
    lines.push_back("ack " + std::to_string(id) + " " + std::to_string(u));
  }
  void OnUnknown(uint8_t c, uint8_t t) override {
    lines.push_back("unknown " + std::to_string(c) + " " + std::to_string(t));
  }
  void OnEntryUpdate(const EntryUpdateView& u) override {
    std::string s = "update " + std::to_string(static_cast<int>(u.message_type)) + " " +
                    u.table->name + " id=" + std::to_string(u.update_id) +
                    " exp=" + (u.expire_ms ? std::to_string(*u.expire_ms) : "none") +
                    " key=" + FormatKey(u.table->key_type, u.key_bytes);
    for (const DataValue& v : u.values) {
      s += " " + std::string(MetricName(v.type, v.index)) + "=";
      switch (v.form) {
        case DataValue::Form::kUnsigned:
          s += std::to_string(v.u);
          break;
        case DataValue::Form::kSigned:
          s += std::to_string(v.s);
          break;
        case DataValue::Form::kFreq:
          s += "{" + std::to_string(v.freq.period_ms) + "," + std::to_string(v.freq.curr_tick) +
               "," + std::to_string(v.freq.curr_ctr) + "," + std::to_string(v.freq.prev_ctr) + "}";
          break;
        case DataValue::Form::kDict:
          s += "[" + std::to_string(v.dict_id) + (v.dict_defined ? "+" : "") + "]" +
               std::string(v.dict_value);
          break;
      }
    }
    lines.push_back(s);
  }
};

struct Outcome {
  std::vector<std::string> lines;
  bool ok = true;
  uint64_t error_offset = 0;
  std::string error;
  size_t leftover = 0;  // bytes buffered but not consumed at the end
};

// Feeds `stream` cut at the given positions (ascending, inside the stream), like a session:
// the caller's buffer keeps what Feed() did not consume.
inline Outcome FeedCut(std::span<const uint8_t> stream, const std::vector<size_t>& cuts,
                       DecoderLimits limits = {}) {
  Decoder decoder(limits);
  Recorder rec;
  Outcome out;
  std::vector<uint8_t> buffer;
  size_t start = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : stream.size();
    buffer.insert(buffer.end(), stream.begin() + static_cast<ptrdiff_t>(start),
                  stream.begin() + static_cast<ptrdiff_t>(end));
    start = end;
    FeedResult r = decoder.Feed(buffer, rec);
    if (!r.status.ok()) {
      out.ok = false;
      out.error_offset = r.error_offset;
      out.error = r.status.message();
      break;
    }
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<ptrdiff_t>(r.consumed));
  }
  out.lines = std::move(rec.lines);
  out.leftover = buffer.size();
  return out;
}

inline Outcome FeedWhole(std::span<const uint8_t> stream, DecoderLimits limits = {}) {
  return FeedCut(stream, {}, limits);
}

}  // namespace stickmeter::ingest::testing
