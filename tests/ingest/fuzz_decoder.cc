// libFuzzer target: any bytes fed to a Decoder must be decoded or rejected, never crash, read
// out of bounds or depend on how the stream was cut. Built with clang++ by tests/ingest's
// CMakeLists (the main build uses g++).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "ingest/codec.h"
#include "ingest/normalize.h"

namespace {

using stickmeter::ingest::DataValue;
using stickmeter::ingest::Decoder;
using stickmeter::ingest::EntryUpdateView;
using stickmeter::ingest::FeedResult;
using stickmeter::ingest::FormatKey;
using stickmeter::ingest::MessageHandler;
using stickmeter::ingest::TableDefinition;
using stickmeter::ingest::TableUpdates;

// Renders enough of each message to tell two decodings apart, and exercises normalize and the
// encoders on whatever the decoder accepted.
class Digest : public MessageHandler {
 public:
  std::string text;

  void OnControl(stickmeter::ingest::ControlType t) override { Add("c", static_cast<int>(t)); }
  void OnPeerError(stickmeter::ingest::ErrorType t) override { Add("e", static_cast<int>(t)); }
  void OnTableDefine(const TableDefinition& t) override {
    Add("d", t.table_id);
    text += t.name;
    Add("b", t.data_bitfield);
    // Whatever the decoder accepted must encode and decode to the same definition.
    std::string again;
    stickmeter::ingest::AppendTableDefine(again, t);
    Decoder d;
    MessageHandler ignore;
    FeedResult r = d.Feed({reinterpret_cast<const uint8_t*>(again.data()), again.size()}, ignore);
    const TableDefinition* back = d.Table(t.table_id);
    if (!r.status.ok() || back == nullptr || back->name != t.name ||
        back->data_bitfield != t.data_bitfield || back->nbelem != t.nbelem) {
      std::abort();
    }
  }
  void OnTableSwitch(uint64_t id) override { Add("s", id); }
  void OnAck(uint64_t id, uint32_t u) override {
    Add("a", id);
    Add("u", u);
  }
  void OnUnknown(uint8_t c, uint8_t t) override {
    Add("x", c);
    Add("y", t);
  }
  void OnEntryUpdate(const EntryUpdateView& u) override {
    Add("U", u.update_id);
    Add("E", u.expire_ms.value_or(0xffffffffffULL));
    text += FormatKey(u.table->key_type, u.key_bytes);
    for (const DataValue& v : u.values) {
      Add("v", v.u);
      Add("f", v.freq.curr_ctr);
      text += v.dict_value;
    }
    TableUpdates batch;
    stickmeter::ingest::AppendEntryUpdate(u, 0, batch);
    if (batch.entries.size() != 1) std::abort();
  }

 private:
  void Add(const char* tag, uint64_t v) {
    text += tag;
    text += std::to_string(v);
  }
};

struct Run {
  std::string digest;
  bool ok = true;
  uint64_t error_offset = 0;
};

Run Decode(std::span<const uint8_t> data, size_t cut) {
  Decoder decoder;
  Digest digest;
  std::vector<uint8_t> buffer;
  Run run;
  for (int part = 0; part < 2; ++part) {
    const auto piece = part == 0 ? data.first(cut) : data.subspan(cut);
    buffer.insert(buffer.end(), piece.begin(), piece.end());
    FeedResult r = decoder.Feed(buffer, digest);
    if (r.consumed > buffer.size()) std::abort();
    if (!r.status.ok()) {
      run.ok = false;
      run.error_offset = r.error_offset;
      break;
    }
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<ptrdiff_t>(r.consumed));
  }
  run.digest = std::move(digest.text);
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  const Run whole = Decode(bytes, size);
  // The same stream cut in two somewhere must decode identically.
  const size_t cut = size == 0 ? 0 : (data[0] * 131u + size) % (size + 1);
  const Run split = Decode(bytes, cut);
  if (whole.ok != split.ok || whole.digest != split.digest ||
      whole.error_offset != split.error_offset) {
    std::abort();
  }
  return 0;
}
