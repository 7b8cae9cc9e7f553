// Implementation of the peers protocol codec declared in codec.h.
#include "ingest/codec.h"

namespace stickmeter::ingest {

std::string_view DataTypeName(DataType) { return "unknown"; }
std::string_view KeyTypeName(KeyType) { return "unknown"; }
std::string_view MetricName(DataType, uint32_t) { return "unknown"; }

void AppendVarint(std::string&, uint64_t) {}
int DecodeVarint(std::span<const uint8_t>, uint64_t&) { return -1; }

Decoder::Decoder(DecoderLimits limits) : limits_(limits) {}
FeedResult Decoder::Feed(std::span<const uint8_t>, MessageHandler&) {
  return {0, Status::Internal("decoder not implemented yet")};
}
const TableDefinition* Decoder::Table(uint64_t) const { return nullptr; }

std::string FormatKey(KeyType, std::span<const uint8_t>) { return {}; }

void AppendControl(std::string&, ControlType) {}
void AppendPeerError(std::string&, ErrorType) {}
void AppendAck(std::string&, uint64_t, uint32_t) {}
void AppendTableDefine(std::string&, const TableDefinition&) {}
void AppendEntryUpdate(std::string&, const TableDefinition&, StickTableType, uint32_t,
                       std::optional<uint32_t>, std::span<const uint8_t>,
                       std::span<const DataValue>) {}

std::string FormatHello(std::string_view, std::string_view, int64_t) { return {}; }
Result<Hello> ParseHello(std::string_view, std::string_view, std::string_view,
                         HandshakeStatus* rejection) {
  if (rejection) *rejection = HandshakeStatus::kProtocolError;
  return Status::Internal("not implemented yet");
}

}  // namespace stickmeter::ingest
