#include "tsdb/format.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

namespace stickmeter::tsdb::format {

std::string_view ReasonName(Reason r) {
  switch (r) {
    case Reason::kRestart:
      return "restart";
    case Reason::kFirst:
      return "first";
    case Reason::kExpired:
      return "expired";
    case Reason::kIncrement:
      return "increment";
    case Reason::kWrap:
      return "wrap";
    case Reason::kReset:
      return "reset";
  }
  return "unknown";
}

void PutU32BE(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out.append(b, 4);
}

void PutU64BE(std::string& out, uint64_t v) {
  PutU32BE(out, static_cast<uint32_t>(v >> 32));
  PutU32BE(out, static_cast<uint32_t>(v));
}

void PutFixed32LE(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 4);
}

void PutFixed64LE(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 8);
}

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

uint32_t GetU32BE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

uint64_t GetU64BE(const char* p) { return (uint64_t{GetU32BE(p)} << 32) | GetU32BE(p + 4); }

uint32_t GetFixed32LE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}

uint64_t GetFixed64LE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}

bool GetVarint32(std::string_view* in, uint32_t* v) {
  uint64_t x = 0;
  if (!GetVarint(in, &x) || x > UINT32_MAX) return false;
  *v = static_cast<uint32_t>(x);
  return true;
}

std::string FormatKey() { return std::string(1, kTagFormat); }
std::string SeqKey() { return std::string(1, kTagSeq); }

std::string NamePrefix(NameKind kind) {
  std::string k(1, kTagName);
  k.push_back(static_cast<char>(kind));
  return k;
}

std::string NameKey(NameKind kind, std::string_view name) {
  std::string k = NamePrefix(kind);
  k.append(name);
  return k;
}

std::string KeyName(uint32_t table_id, std::string_view key) {
  std::string k;
  k.reserve(4 + key.size());
  PutU32BE(k, table_id);
  k.append(key);
  return k;
}

std::string TableKey(uint32_t table_id) {
  std::string k(1, kTagTable);
  PutU32BE(k, table_id);
  return k;
}

std::string MetricKey(uint32_t table_id, uint32_t metric_id) {
  std::string k(1, kTagMetric);
  PutU32BE(k, table_id);
  PutU32BE(k, metric_id);
  return k;
}

std::string TableSourceKey(uint32_t table_id, uint32_t source_id) {
  std::string k(1, kTagTableSource);
  PutU32BE(k, table_id);
  PutU32BE(k, source_id);
  return k;
}

std::string EpochKey(uint32_t source_id) {
  std::string k(1, kTagEpoch);
  PutU32BE(k, source_id);
  return k;
}

namespace {
void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}
bool GetString(std::string_view* in, std::string* s) {
  uint64_t n = 0;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  s->assign(in->substr(0, n));
  in->remove_prefix(n);
  return true;
}
}  // namespace

std::string EncodeTable(const TableValue& t) {
  std::string out;
  PutString(out, t.key_type);
  PutVarint(out, t.key_size);
  PutVarint(out, t.expire_ms);
  PutVarint(out, t.data_types.size());
  for (const auto& d : t.data_types) PutString(out, d);
  return out;
}

std::optional<TableValue> DecodeTable(std::string_view in) {
  TableValue t;
  uint64_t key_size = 0, n = 0;
  if (!GetString(&in, &t.key_type) || !GetVarint(&in, &key_size) || !GetVarint(&in, &t.expire_ms) ||
      !GetVarint(&in, &n) || n > in.size()) {
    return std::nullopt;
  }
  t.key_size = static_cast<uint32_t>(key_size);
  t.data_types.resize(n);
  for (auto& d : t.data_types) {
    if (!GetString(&in, &d)) return std::nullopt;
  }
  if (!in.empty()) return std::nullopt;
  return t;
}

std::string JournalKey(uint64_t id) {
  std::string k(1, kTagJournal);
  PutU64BE(k, id);
  return k;
}

std::optional<uint64_t> DecodeJournalKey(std::string_view key) {
  if (key.size() != 9 || key[0] != kTagJournal) return std::nullopt;
  return GetU64BE(key.data() + 1);
}

std::string OutboxKey(uint64_t first_seq) {
  std::string k(1, kTagOutbox);
  PutU64BE(k, first_seq);
  return k;
}

std::optional<uint64_t> DecodeOutboxKey(std::string_view key) {
  if (key.size() != 9 || key[0] != kTagOutbox) return std::nullopt;
  return GetU64BE(key.data() + 1);
}

std::string FeedStateKey() { return std::string(1, kTagFeedState); }

std::string StoreIdKey() { return std::string(1, kTagStoreId); }

std::string EncodeFeedState(const FeedState& s) {
  std::string out;
  PutU64BE(out, s.shipped_through);
  PutU64BE(out, s.backfill_below);
  out.push_back(s.backfill_done ? 1 : 0);
  out.append(s.backfill_after);
  return out;
}

std::optional<FeedState> DecodeFeedState(std::string_view in) {
  if (in.size() != 17 && in.size() != 17 + kRawKeySize) return std::nullopt;
  if (in[16] != 0 && in[16] != 1) return std::nullopt;
  FeedState s;
  s.shipped_through = GetU64BE(in.data());
  s.backfill_below = GetU64BE(in.data() + 8);
  s.backfill_done = in[16] == 1;
  s.backfill_after.assign(in.substr(17));
  return s;
}

void AppendEntryKey(std::string& out, const EntryId& id) {
  PutU32BE(out, id.source);
  PutU32BE(out, id.table);
  PutU32BE(out, id.key);
}

EntryId DecodeEntryKey(const char* p) {
  return EntryId{GetU32BE(p), GetU32BE(p + 4), GetU32BE(p + 8)};
}

void AppendEntryState(std::string& out, const MetricState* states, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    PutVarint(out, states[i].metric);
    PutVarint(out, states[i].v.last);
    PutVarint(out, static_cast<uint64_t>(states[i].v.last_ms));
    PutVarint(out, states[i].v.connection_id);
    PutVarint(out, states[i].v.epoch);
  }
}

bool DecodeEntryState(std::string_view in, std::vector<MetricState>* out) {
  out->clear();
  if (in.empty()) return false;
  while (!in.empty()) {
    MetricState m;
    uint64_t last_ms = 0;
    if (!GetVarint32(&in, &m.metric) || !GetVarint(&in, &m.v.last) || !GetVarint(&in, &last_ms) ||
        !GetVarint(&in, &m.v.connection_id) || !GetVarint32(&in, &m.v.epoch)) {
      return false;
    }
    if (!out->empty() && m.metric <= out->back().metric) return false;
    m.v.last_ms = static_cast<int64_t>(last_ms);
    out->push_back(m);
  }
  return true;
}

void AppendSum(std::string& out, uint32_t slot, uint64_t sum) {
  PutVarint(out, slot);
  PutVarint(out, sum);
}

bool SumsReader::Next(uint32_t* slot, uint64_t* sum) {
  if (in_.empty() || !ok_) return false;
  if (!GetVarint32(&in_, slot) || !GetVarint(&in_, sum) || int64_t{*slot} <= last_) {
    ok_ = false;
    return false;
  }
  last_ = *slot;
  return true;
}

bool AddSums(std::string_view a, std::string_view b, std::string* out) {
  out->clear();
  if (a.empty() || b.empty()) return false;
  SumsReader ra(a), rb(b);
  uint32_t sa = 0, sb = 0;
  uint64_t va = 0, vb = 0;
  bool ha = ra.Next(&sa, &va), hb = rb.Next(&sb, &vb);
  while (ha || hb) {
    if (hb && (!ha || sb < sa)) {
      AppendSum(*out, sb, vb);
      hb = rb.Next(&sb, &vb);
    } else if (ha && (!hb || sa < sb)) {
      AppendSum(*out, sa, va);
      ha = ra.Next(&sa, &va);
    } else {
      AppendSum(*out, sa, va + vb);
      ha = ra.Next(&sa, &va);
      hb = rb.Next(&sb, &vb);
    }
  }
  return ra.ok() && rb.ok();
}

void AppendEntryRollupKey(std::string& out, uint32_t table_id, uint32_t key_id, uint32_t bucket,
                          uint32_t source_id) {
  PutU32BE(out, table_id);
  PutU32BE(out, key_id);
  PutU32BE(out, bucket);
  PutU32BE(out, source_id);
}

void AppendKeySumsKey(std::string& out, uint32_t table_id, uint32_t metric_id, uint32_t bucket,
                      uint32_t block) {
  PutU32BE(out, table_id);
  PutU32BE(out, metric_id);
  PutU32BE(out, bucket);
  PutU32BE(out, block);
}

KeySumsKeyParts DecodeKeySumsKey(const char* p) {
  return KeySumsKeyParts{GetU32BE(p), GetU32BE(p + 4), GetU32BE(p + 8), GetU32BE(p + 12)};
}

EntryRollupKeyParts DecodeEntryRollupKey(const char* p) {
  return EntryRollupKeyParts{GetU32BE(p), GetU32BE(p + 4), GetU32BE(p + 8), GetU32BE(p + 12)};
}

std::string EntryRollupPrefix(uint32_t table_id) {
  std::string k;
  PutU32BE(k, table_id);
  return k;
}

std::string EntryRollupPrefix(uint32_t table_id, uint32_t key_id) {
  std::string k;
  PutU32BE(k, table_id);
  PutU32BE(k, key_id);
  return k;
}

void AppendRawKey(std::string& out, uint32_t table_id, uint32_t key_id, int64_t t_ms,
                  uint64_t seq) {
  PutU32BE(out, table_id);
  PutU32BE(out, key_id);
  PutU64BE(out, static_cast<uint64_t>(t_ms));
  PutU64BE(out, seq);
}

void EncodeRawKey(RawKeyBytes& out, uint32_t table_id, uint32_t key_id, int64_t t_ms,
                  uint64_t seq) {
  static_assert(std::tuple_size_v<RawKeyBytes> == kRawKeySize);
  const uint64_t parts[2] = {uint64_t{table_id} << 32 | key_id, static_cast<uint64_t>(t_ms)};
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>(parts[0] >> (56 - 8 * i));
    out[8 + i] = static_cast<char>(parts[1] >> (56 - 8 * i));
    out[16 + i] = static_cast<char>(seq >> (56 - 8 * i));
  }
}

std::string RawKey(uint32_t table_id, uint32_t key_id, int64_t t_ms, uint64_t seq) {
  std::string k;
  k.reserve(kRawKeySize);
  AppendRawKey(k, table_id, key_id, t_ms, seq);
  return k;
}

void StartEventRow(std::string& out, uint32_t source_id) {
  out.push_back('\0');
  PutVarint(out, source_id);
}

void AppendRowEvent(std::string& out, uint32_t metric_id, uint64_t value, uint64_t delta,
                    Reason reason) {
  PutVarint(out, metric_id);
  PutVarint(out, value);
  PutVarint(out, delta);
  out.push_back(static_cast<char>(reason));
}

EventRowReader::EventRowReader(std::string_view row) : in_(row) {
  if (in_.empty() || in_[0] != '\0') {
    ok_ = false;
  } else {
    in_.remove_prefix(1);
    uint64_t source = 0;
    if (!GetVarint(&in_, &source) || source == 0 || source > UINT32_MAX || in_.empty()) {
      ok_ = false;
    }
    source_ = static_cast<uint32_t>(source);
  }
}

void StartUpdatesRow(std::string& out) { out.append(2, '\0'); }

void AppendUpdate(std::string& out, int64_t key_t_ms, uint64_t key_seq, int64_t t_ms, uint64_t seq,
                  std::string_view event_row) {
  PutVarint(out, static_cast<uint64_t>(t_ms - key_t_ms));
  PutVarint(out, seq - key_seq);
  PutVarint(out, event_row.size());
  out.append(event_row);
}

RawRowReader::RawRowReader(std::string_view key, std::string_view row)
    : key_t_ms_(static_cast<int64_t>(GetU64BE(key.data() + 8))),
      key_seq_(GetU64BE(key.data() + 16)),
      t_ms_(key_t_ms_),
      seq_(key_seq_) {
  if (!HoldsOneUpdate(row)) {
    multi_ = true;
    updates_ = row.substr(2);
    ok_ = NextUpdate();
  } else {
    update_.emplace(row);
    ok_ = update_->ok();
  }
}

bool RawRowReader::NextUpdate() {
  uint64_t dt = 0, dseq = 0, len = 0;
  if (!GetVarint(&updates_, &dt) || dt >= static_cast<uint64_t>(kRawRowSpanMs) ||
      !GetVarint(&updates_, &dseq) || !GetVarint(&updates_, &len) || len == 0 ||
      len > updates_.size()) {
    return false;
  }
  const uint64_t seq = key_seq_ + dseq;
  // Ascending: the first update's seq is the key's, each next one past the previous events.
  if (update_ ? seq < seq_ : dseq != 0) return false;
  t_ms_ = key_t_ms_ + static_cast<int64_t>(dt);
  seq_ = seq;
  update_.emplace(updates_.substr(0, len));
  updates_.remove_prefix(len);
  return update_->ok();
}

bool RawRowReader::Next(RawEvent* e) {
  return NextIn(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), e);
}

void AppendRollupKey(std::string& out, uint32_t table_id, uint32_t metric_id, uint32_t key_id,
                     uint32_t bucket, uint32_t source_id) {
  PutU32BE(out, table_id);
  PutU32BE(out, metric_id);
  PutU32BE(out, key_id);
  PutU32BE(out, bucket);
  PutU32BE(out, source_id);
}

std::string RollupKey(uint32_t table_id, uint32_t metric_id, uint32_t key_id, uint32_t bucket,
                      uint32_t source_id) {
  std::string k;
  k.reserve(kRollupKeySize);
  AppendRollupKey(k, table_id, metric_id, key_id, bucket, source_id);
  return k;
}

std::string RollupPrefix(uint32_t table_id, uint32_t metric_id, uint32_t key_id) {
  std::string k;
  PutU32BE(k, table_id);
  PutU32BE(k, metric_id);
  PutU32BE(k, key_id);
  return k;
}

std::string RollupPrefix(uint32_t table_id, uint32_t metric_id) {
  std::string k;
  PutU32BE(k, table_id);
  PutU32BE(k, metric_id);
  return k;
}

RollupKeyParts DecodeRollupKey(const char* p) {
  return RollupKeyParts{GetU32BE(p), GetU32BE(p + 4), GetU32BE(p + 8), GetU32BE(p + 12),
                        GetU32BE(p + 16)};
}

std::string EncodeGauge(int64_t last, int64_t max) {
  std::string out;
  PutFixed64LE(out, static_cast<uint64_t>(last));
  PutFixed64LE(out, static_cast<uint64_t>(max));
  return out;
}

}  // namespace stickmeter::tsdb::format
