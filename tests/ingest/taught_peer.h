// A fake peer for tests of what stickmeter teaches: pulls messages from TaughtTables through a
// Cursor the way a session does, and decodes them with the real Decoder (one decoder per
// connection, so an update without the DEFINE it needs fails to decode).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ingest/codec.h"
#include "ingest/taught_tables.h"

namespace stickmeter::ingest::testing {

struct DecodedUpdate {
  StickTableType type = StickTableType::kUpdate;
  uint64_t table_id = 0;
  std::string table;
  uint32_t id = 0;
  std::optional<uint32_t> expire_ms;
  std::string key;        // FormatKey of the key
  std::string key_bytes;  // as on the wire
  std::vector<DataValue> values;

  // The value of one data type (scalars), or nullopt.
  std::optional<DataValue> Value(DataType t, uint32_t index = 0) const {
    for (const DataValue& v : values) {
      if (v.type == t && v.index == index) return v;
    }
    return std::nullopt;
  }
  uint64_t U(DataType t) const {
    auto v = Value(t);
    EXPECT_TRUE(v.has_value()) << "no " << DataTypeName(t) << " in update of " << key;
    return v ? v->u : ~uint64_t{0};
  }
};

struct Decoded {
  std::vector<TableDefinition> defines;
  std::vector<DecodedUpdate> updates;
  std::vector<std::pair<uint64_t, uint32_t>> acks;
  std::vector<ControlType> controls;
  bool ok = true;
  std::string error;

  // The last update of `key`, or nullptr.
  const DecodedUpdate* Last(const std::string& key) const {
    for (auto it = updates.rbegin(); it != updates.rend(); ++it) {
      if (it->key == key) return &*it;
    }
    return nullptr;
  }
};

class DecodingHandler : public MessageHandler {
 public:
  explicit DecodingHandler(Decoded& out) : out_(out) {}
  void OnControl(ControlType t) override { out_.controls.push_back(t); }
  void OnTableDefine(const TableDefinition& t) override { out_.defines.push_back(t); }
  void OnAck(uint64_t table_id, uint32_t update_id) override {
    out_.acks.emplace_back(table_id, update_id);
  }
  void OnEntryUpdate(const EntryUpdateView& u) override {
    DecodedUpdate d;
    d.type = u.message_type;
    d.table_id = u.table->table_id;
    d.table = u.table->name;
    d.id = u.update_id;
    d.expire_ms = u.expire_ms;
    d.key = FormatKey(u.table->key_type, u.key_bytes);
    d.key_bytes.assign(reinterpret_cast<const char*>(u.key_bytes.data()), u.key_bytes.size());
    d.values.assign(u.values.begin(), u.values.end());
    for (DataValue& v : d.values) v.dict_value = {};  // views end with the callback
    out_.updates.push_back(std::move(d));
  }

 private:
  Decoded& out_;
};

// Decodes a whole stream with a fresh decoder.
inline Decoded DecodeStream(std::span<const uint8_t> bytes) {
  Decoded out;
  Decoder decoder;
  DecodingHandler handler(out);
  FeedResult r = decoder.Feed(bytes, handler);
  if (!r.status.ok()) {
    out.ok = false;
    out.error = r.status.message();
  } else if (r.consumed != bytes.size()) {
    out.ok = false;
    out.error = "trailing bytes: " + std::to_string(bytes.size() - r.consumed);
  }
  return out;
}

// One connection of a peer to the taught tables.
class FakePeer {
 public:
  // Collects what table `index` has for this peer (at most `max` updates) and decodes it.
  Decoded Pull(const TaughtTables& tables, size_t index,
               size_t max = std::numeric_limits<size_t>::max(),
               TaughtTables::Collected* collected = nullptr) {
    std::string bytes;
    TaughtTables::Collected c = tables.Collect(index, cursor_for(index), max, bytes, &selected_);
    Decoded out;
    DecodingHandler handler(out);
    const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
    FeedResult r = decoder_.Feed(std::span<const uint8_t>(data, bytes.size()), handler);
    if (!r.status.ok()) {
      out.ok = false;
      out.error = r.status.message();
    } else if (r.consumed != bytes.size()) {
      out.ok = false;
      out.error = "incomplete message at the end";
    }
    EXPECT_EQ(c.messages, out.updates.size());
    if (collected != nullptr) *collected = std::move(c);
    return out;
  }
  TaughtTables::Cursor& cursor_for(size_t index) {
    if (cursors_.size() <= index) cursors_.resize(index + 1);
    return cursors_[index];
  }
  // A new connection: the peer forgets our DEFINEs; `sent` resumes at what was acknowledged.
  void Reconnect() {
    decoder_ = Decoder();
    selected_ = 0;
    for (auto& c : cursors_) c.defined_version = 0;
  }

 private:
  Decoder decoder_;
  std::vector<TaughtTables::Cursor> cursors_;
  uint64_t selected_ = 0;  // the table our stream selected last
};

inline DataValue Unsigned(DataType t, uint64_t u, uint32_t index = 0) {
  DataValue v;
  v.type = t;
  v.index = index;
  v.form = DataValue::Form::kUnsigned;
  v.u = u;
  return v;
}

inline DataValue Freq(DataType t, uint64_t period, uint64_t tick, uint64_t curr, uint64_t prev) {
  DataValue v;
  v.type = t;
  v.form = DataValue::Form::kFreq;
  v.freq = FreqCounter{period, tick, curr, prev};
  return v;
}

}  // namespace stickmeter::ingest::testing
