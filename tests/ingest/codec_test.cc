// Codec unit tests: varints, framing, malformed input, every message type, keys and the hello.
#include "ingest/codec.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "tests/ingest/test_util.h"

namespace stickmeter::ingest {
namespace {

using ::stickmeter::ingest::testing::Hex;

using testing::Bytes;
using testing::FeedWhole;
using testing::Recorder;

std::string Varint(uint64_t v) {
  std::string s;
  AppendVarint(s, v);
  return s;
}

// ---- Varint. ----

TEST(VarintTest, MatchesHaproxyEncoding) {
  EXPECT_EQ("00", Hex(Varint(0)));
  EXPECT_EQ("ef", Hex(Varint(239)));
  EXPECT_EQ("f000", Hex(Varint(240)));
  EXPECT_EQ("ff7f", Hex(Varint(2287)));
  EXPECT_EQ("f08000", Hex(Varint(2288)));
}

TEST(VarintTest, LengthsFollowHaproxyTable) {
  // HAProxy's varint_bytes(): boundaries where the encoding grows by one byte.
  const std::vector<std::pair<uint64_t, size_t>> cases = {
      {0, 1},
      {239, 1},
      {240, 2},
      {2287, 2},
      {2288, 3},
      {264431, 3},
      {264432, 4},
      {33818863, 4},
      {33818864, 5},
      {4328786159ULL, 5},
      {4328786160ULL, 6},
      {0x10204081020408efULL, 9},
      {0x10204081020408f0ULL, 10},
      {std::numeric_limits<uint64_t>::max(), 10}};
  for (auto [value, len] : cases) EXPECT_EQ(len, Varint(value).size()) << value;
}

TEST(VarintTest, RoundTripsIncludingTenByteValues) {
  std::vector<uint64_t> values = {0,
                                  1,
                                  239,
                                  240,
                                  2287,
                                  2288,
                                  0xffffffff,
                                  0x100000000,
                                  1ULL << 63,
                                  (1ULL << 63) - 1,
                                  std::numeric_limits<uint64_t>::max(),
                                  std::numeric_limits<uint64_t>::max() - 1};
  std::mt19937_64 rng(42);
  for (int i = 0; i < 10000; ++i) values.push_back(rng() >> (rng() % 64));
  for (uint64_t v : values) {
    const std::string enc = Varint(v);
    uint64_t back = 0;
    ASSERT_EQ(static_cast<int>(enc.size()), DecodeVarint(Bytes(enc), back)) << v;
    ASSERT_EQ(v, back);
    // Every strict prefix asks for more bytes.
    for (size_t len = 0; len < enc.size(); ++len) {
      ASSERT_EQ(0, DecodeVarint(Bytes(enc).first(len), back)) << v << " prefix " << len;
    }
  }
}

TEST(VarintTest, RejectsLongerThanTenBytes) {
  const std::string eleven(10, '\xff');
  uint64_t v = 0;
  EXPECT_EQ(-1, DecodeVarint(Bytes(eleven + '\x00'), v));
  EXPECT_EQ(-1, DecodeVarint(Bytes(eleven), v));  // a 10th byte with its stop bit clear is needed
}

TEST(VarintTest, RejectsValuesAbove64Bits) {
  std::string max = Varint(std::numeric_limits<uint64_t>::max());
  ASSERT_EQ(10u, max.size());
  uint64_t v = 0;
  std::string over = max;
  over.back() = static_cast<char>(over.back() + 1);  // one more unit in the top bits
  EXPECT_EQ(-1, DecodeVarint(Bytes(over), v));
  std::string wide = max;
  wide.back() = 0x10;  // does not fit in the 4 bits left
  EXPECT_EQ(-1, DecodeVarint(Bytes(wide), v));
}

TEST(VarintTest, AcceptsOverlongEncodingsLikeHaproxy) {
  // HAProxy's decoder accepts non-minimal encodings; so do we (240 + 0 << 4 + 0 << 11).
  uint64_t v = 0;
  EXPECT_EQ(3, DecodeVarint(Bytes(std::string("\xf0\x80\x00", 3)), v));
  EXPECT_EQ(240u + (128u << 4), v);
}

// ---- Helpers to build streams. ----

TableDefinition StringTable(uint64_t id, std::string name, uint64_t bits) {
  TableDefinition t;
  t.table_id = id;
  t.name = std::move(name);
  t.key_type = KeyType::kString;
  t.key_size = 33;
  t.data_bitfield = bits;
  t.expire_ms = 60000;
  return t;
}

uint64_t Bit(DataType t) { return uint64_t{1} << static_cast<int>(t); }

DataValue U(DataType t, uint64_t v, uint32_t index = 0) {
  DataValue d;
  d.type = t;
  d.index = index;
  d.form = DataValue::Form::kUnsigned;
  d.u = v;
  return d;
}

std::string Update(const TableDefinition& t, StickTableType type, uint32_t id, std::string_view key,
                   const std::vector<DataValue>& values,
                   std::optional<uint32_t> expire = std::nullopt) {
  std::string s;
  AppendEntryUpdate(s, t, type, id, expire,
                    {reinterpret_cast<const uint8_t*>(key.data()), key.size()}, values);
  return s;
}

std::string Define(const TableDefinition& t) {
  std::string s;
  AppendTableDefine(s, t);
  return s;
}

// Wraps a payload as a length-prefixed stick-table message of `type`.
std::string Framed(uint8_t type, const std::string& payload, uint8_t msg_class = 10) {
  std::string s;
  s.push_back(static_cast<char>(msg_class));
  s.push_back(static_cast<char>(type));
  AppendVarint(s, payload.size());
  return s + payload;
}

// ---- Framing and classes. ----

TEST(FramingTest, ControlAndErrorMessages) {
  std::string s;
  for (int t = 0; t <= 4; ++t) AppendControl(s, static_cast<ControlType>(t));
  AppendPeerError(s, ErrorType::kProtocol);
  AppendPeerError(s, ErrorType::kSizeLimit);
  EXPECT_EQ(
      "00000001000200030004"
      "01000101",
      Hex(s));
  auto out = FeedWhole(Bytes(s));
  ASSERT_TRUE(out.ok);
  EXPECT_EQ((std::vector<std::string>{"control 0", "control 1", "control 2", "control 3",
                                      "control 4", "error 0", "error 1"}),
            out.lines);
}

TEST(FramingTest, ReservedClassIsAnErrorAtItsOffset) {
  std::string s;
  AppendControl(s, ControlType::kHeartbeat);
  s += std::string("\xff\x00", 2);
  AppendControl(s, ControlType::kHeartbeat);
  Decoder d;
  Recorder rec;
  FeedResult r = d.Feed(Bytes(s), rec);
  EXPECT_FALSE(r.status.ok());
  EXPECT_TRUE(r.status.IsCorruption());
  EXPECT_EQ(2u, r.consumed);
  EXPECT_EQ(2u, r.error_offset);
  EXPECT_EQ(ErrorType::kProtocol, r.error_type);
  EXPECT_NE(std::string::npos, r.status.message().find("class 255")) << r.status.message();
  EXPECT_NE(std::string::npos, r.status.message().find("offset 2")) << r.status.message();
  EXPECT_EQ(std::vector<std::string>{"control 4"}, rec.lines);
}

TEST(FramingTest, UnknownClassesAndTypesAreSkipped) {
  std::string s;
  s += std::string("\x07\x03", 2);                   // unknown class, no length
  s += Framed(0x90, "abc", 7);                       // unknown class, with length
  s += std::string("\x00\x09", 2);                   // unknown control type
  s += Framed(0x85, std::string("\xff\xff", 2), 0);  // control type with bit 7: has length
  s += Framed(0x87, "xyz");                          // unknown stick-table type
  s += std::string("\x0a\x05", 2);                   // stick-table type without bit 7
  s += std::string("\x01\x07", 2);                   // unknown error type
  AppendControl(s, ControlType::kHeartbeat);
  auto out = FeedWhole(Bytes(s));
  ASSERT_TRUE(out.ok) << out.error;
  EXPECT_EQ(
      (std::vector<std::string>{"unknown 7 3", "unknown 7 144", "unknown 0 9", "unknown 0 133",
                                "unknown 10 135", "unknown 10 5", "unknown 1 7", "control 4"}),
      out.lines);
  EXPECT_EQ(0u, out.leftover);
}

TEST(FramingTest, HugeLengthIsRejectedBeforeAnyPayload) {
  // A 4 GiB length prefix with no payload behind it: an immediate size-limit error, not a
  // request for 4 GiB more bytes.
  std::string s = "\x0a\x80";
  AppendVarint(s, uint64_t{4} << 30);
  Decoder d;
  Recorder rec;
  FeedResult r = d.Feed(Bytes(s), rec);
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(ErrorType::kSizeLimit, r.error_type);
  EXPECT_EQ(0u, r.consumed);
  EXPECT_NE(std::string::npos, r.status.message().find("4294967296")) << r.status.message();
}

TEST(FramingTest, LengthAtTheLimitWaitsAndOneAboveFails) {
  DecoderLimits limits;
  limits.max_message_size = 100;
  std::string at = "\x0a\x87";
  AppendVarint(at, 100);
  auto waiting = FeedWhole(Bytes(at), limits);
  EXPECT_TRUE(waiting.ok);
  EXPECT_EQ(at.size(), waiting.leftover);
  auto complete = FeedWhole(Bytes(at + std::string(100, 'x')), limits);
  EXPECT_TRUE(complete.ok);
  EXPECT_EQ(std::vector<std::string>{"unknown 10 135"}, complete.lines);
  std::string above = "\x0a\x87";
  AppendVarint(above, 101);
  auto failed = FeedWhole(Bytes(above), limits);
  EXPECT_FALSE(failed.ok);
}

TEST(FramingTest, BadLengthVarintIsAnError) {
  std::string s = "\x0a\x80" + std::string(11, '\xff');
  auto out = FeedWhole(Bytes(s));
  EXPECT_FALSE(out.ok);
  EXPECT_NE(std::string::npos, out.error.find("length")) << out.error;
}

TEST(FramingTest, StreamOffsetCountsAcrossFeeds) {
  std::string s;
  AppendControl(s, ControlType::kHeartbeat);
  AppendControl(s, ControlType::kHeartbeat);
  Decoder d;
  Recorder rec;
  EXPECT_EQ(4u, d.Feed(Bytes(s), rec).consumed);
  EXPECT_EQ(4u, d.stream_offset());
  FeedResult r = d.Feed(Bytes(std::string("\x00\x04\xff", 3)), rec);
  EXPECT_EQ(2u, r.consumed);
  EXPECT_EQ(6u, r.error_offset);
}

// ---- DEFINE. ----

TEST(DefineTest, FullDefinitionRoundTrips) {
  TableDefinition t;
  t.table_id = 3;
  t.name = "/quota";
  t.key_type = KeyType::kString;
  t.key_size = 65;
  t.data_bitfield = Bit(DataType::kServerId) | Bit(DataType::kHttpReqRate) |
                    Bit(DataType::kServerKey) | Bit(DataType::kGpt) | Bit(DataType::kGpc) |
                    Bit(DataType::kGpcRate) | Bit(DataType::kGlitchCnt) |
                    Bit(DataType::kGlitchRate);
  t.expire_ms = 3600000;
  t.period_ms[static_cast<size_t>(DataType::kHttpReqRate)] = 10000;
  t.period_ms[static_cast<size_t>(DataType::kGpcRate)] = 60000;
  t.period_ms[static_cast<size_t>(DataType::kGlitchRate)] = 1000;
  t.nbelem[static_cast<size_t>(DataType::kGpt)] = 2;
  t.nbelem[static_cast<size_t>(DataType::kGpc)] = 3;
  t.nbelem[static_cast<size_t>(DataType::kGpcRate)] = 100;
  const std::string s = Define(t);
  Decoder d;
  Recorder rec;
  FeedResult r = d.Feed(Bytes(s), rec);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(s.size(), r.consumed);
  const TableDefinition* got = d.Table(3);
  ASSERT_NE(nullptr, got);
  EXPECT_EQ(t.name, got->name);
  EXPECT_EQ(t.key_type, got->key_type);
  EXPECT_EQ(t.key_size, got->key_size);
  EXPECT_EQ(t.data_bitfield, got->data_bitfield);
  EXPECT_EQ(t.expire_ms, got->expire_ms);
  EXPECT_EQ(t.period_ms, got->period_ms);
  EXPECT_EQ(t.nbelem, got->nbelem);
  EXPECT_EQ(nullptr, d.Table(4));
}

TEST(DefineTest, MatchesTheBytesOfARealCapture) {
  // a-string-gpc0, offset 4: /quota, string len 64, gpc0 http_req_cnt http_req_rate(10s)
  // bytes_out_cnt, expire 1h.
  TableDefinition t = StringTable(1, "/quota", 34308);
  t.key_size = 65;
  t.expire_ms = 3600000;
  t.period_ms[static_cast<size_t>(DataType::kHttpReqRate)] = 10000;
  const auto capture = testing::ReadFileBytes(std::string(STICKMETER_FIXTURES_DIR) +
                                              "/haproxy-2.6/a-string-gpc0/stream.bin");
  const std::string s = Define(t);
  ASSERT_GE(capture.size(), 4 + s.size());
  EXPECT_EQ(Hex(s), Hex(std::string(capture.begin() + 4, capture.begin() + 4 + s.size())));
}

std::string DefinePayload(uint64_t bits, bool with_tail, const std::string& params = "") {
  std::string p;
  AppendVarint(p, 1);
  AppendVarint(p, 2);
  p += "/t";
  AppendVarint(p, 6);
  AppendVarint(p, 33);
  AppendVarint(p, bits);
  if (with_tail) {
    AppendVarint(p, 5000);
    p += params;
  }
  return Framed(0x82, p);
}

TEST(DefineTest, WithoutTailIsAcceptedUnlessItHasArrays) {
  auto ok = FeedWhole(Bytes(DefinePayload(Bit(DataType::kGpc0) | Bit(DataType::kHttpReqRate),
                                          /*with_tail=*/false)));
  ASSERT_TRUE(ok.ok) << ok.error;
  EXPECT_EQ(std::vector<std::string>{"define 1 /t key=string/33 bits=1028 expire=0"}, ok.lines);
  auto bad = FeedWhole(Bytes(DefinePayload(Bit(DataType::kGpc), false)));
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(std::string::npos, bad.error.find("gpc")) << bad.error;
}

TEST(DefineTest, ParameterErrorsAreMalformed) {
  std::string wrong_prefix;
  AppendVarint(wrong_prefix, 9);  // http_req_rate's params prefixed by another type
  AppendVarint(wrong_prefix, 1000);
  EXPECT_FALSE(FeedWhole(Bytes(DefinePayload(Bit(DataType::kHttpReqRate), true, wrong_prefix))).ok);
  std::string missing;  // tail present but no params for the freq counter
  EXPECT_FALSE(FeedWhole(Bytes(DefinePayload(Bit(DataType::kHttpReqRate), true, missing))).ok);
  for (uint64_t nbelem : {uint64_t{0}, uint64_t{101}}) {
    std::string p;
    AppendVarint(p, 23);
    AppendVarint(p, nbelem);
    EXPECT_FALSE(FeedWhole(Bytes(DefinePayload(Bit(DataType::kGpc), true, p))).ok) << nbelem;
  }
}

TEST(DefineTest, BadKeyTypesAndSizesAreMalformed) {
  auto define = [](uint64_t key_type, uint64_t key_size) {
    std::string p;
    AppendVarint(p, 1);
    AppendVarint(p, 2);
    p += "/t";
    AppendVarint(p, key_type);
    AppendVarint(p, key_size);
    AppendVarint(p, 0);
    return FeedWhole(Bytes(Framed(0x82, p)));
  };
  EXPECT_TRUE(define(4, 4).ok);
  EXPECT_TRUE(define(5, 16).ok);
  EXPECT_TRUE(define(2, 4).ok);
  EXPECT_TRUE(define(7, 20).ok);
  EXPECT_FALSE(define(3, 4).ok);  // no such key type
  EXPECT_FALSE(define(4, 5).ok);
  EXPECT_FALSE(define(5, 4).ok);
  EXPECT_FALSE(define(6, 0).ok);
  EXPECT_FALSE(define(7, 0).ok);
  std::string empty_name;
  AppendVarint(empty_name, 1);
  AppendVarint(empty_name, 0);
  EXPECT_FALSE(FeedWhole(Bytes(Framed(0x82, empty_name))).ok);
  std::string long_name;
  AppendVarint(long_name, 1);
  AppendVarint(long_name, 50);
  long_name += "short";
  EXPECT_FALSE(FeedWhole(Bytes(Framed(0x82, long_name))).ok);
}

TEST(DefineTest, UnknownDataTypeBitsAreSkipped) {
  // A newer sender's type 27 comes after every known one: the known values still decode and
  // the unknown tail of the payload is ignored, as HAProxy does.
  const uint64_t bits = Bit(DataType::kGpc0) | (uint64_t{1} << 27);
  TableDefinition t = StringTable(1, "/n", bits);
  std::string s = Define(t);
  std::string p;
  AppendVarint(p, 1);  // key length
  p += "k";
  AppendVarint(p, 7);    // gpc0
  AppendVarint(p, 999);  // type 27, unknown
  s += Framed(0x81, p);
  auto out = FeedWhole(Bytes(s));
  ASSERT_TRUE(out.ok) << out.error;
  ASSERT_EQ(2u, out.lines.size());
  EXPECT_EQ("update 129 /n id=1 exp=none key=k gpc0=7", out.lines[1]);
}

// ---- Updates. ----

TEST(UpdateTest, UpdateBeforeAnyDefinitionIsMalformed) {
  TableDefinition t = StringTable(1, "/t", Bit(DataType::kGpc0));
  auto out = FeedWhole(Bytes(Update(t, StickTableType::kUpdate, 5, "k", {U(DataType::kGpc0, 1)})));
  EXPECT_FALSE(out.ok);
  EXPECT_NE(std::string::npos, out.error.find("no table")) << out.error;
}

TEST(UpdateTest, UpdateAfterSwitchToUnknownTableIsMalformed) {
  TableDefinition t = StringTable(1, "/t", Bit(DataType::kGpc0));
  std::string s = Define(t);
  AppendTableSwitch(s, 9);
  s += Update(t, StickTableType::kUpdate, 5, "k", {U(DataType::kGpc0, 1)});
  auto out = FeedWhole(Bytes(s));
  EXPECT_FALSE(out.ok);
  EXPECT_NE(std::string::npos, out.error.find("unknown table id 9")) << out.error;
  EXPECT_EQ((std::vector<std::string>{"define 1 /t key=string/33 bits=4 expire=60000", "switch 9"}),
            out.lines);
}

TEST(UpdateTest, IncrementalIdsArePerTable) {
  TableDefinition a = StringTable(1, "/a", Bit(DataType::kGpc0));
  TableDefinition b = StringTable(2, "/b", Bit(DataType::kGpc0));
  std::string s = Define(a) + Define(b);
  AppendTableSwitch(s, 1);
  s += Update(a, StickTableType::kUpdate, 100, "x", {U(DataType::kGpc0, 1)});
  s += Update(a, StickTableType::kIncUpdate, 0, "y", {U(DataType::kGpc0, 2)});
  AppendTableSwitch(s, 2);
  s += Update(b, StickTableType::kIncUpdate, 0, "z", {U(DataType::kGpc0, 3)});
  s += Define(a);  // a re-DEFINE (what HAProxy 2.6 sends instead of SWITCH) keeps the id
  s += Update(a, StickTableType::kIncUpdate, 0, "w", {U(DataType::kGpc0, 4)});
  auto out = FeedWhole(Bytes(s));
  ASSERT_TRUE(out.ok) << out.error;
  std::vector<std::string> updates;
  for (auto& l : out.lines) {
    if (l.rfind("update", 0) == 0) updates.push_back(l);
  }
  EXPECT_EQ((std::vector<std::string>{"update 128 /a id=100 exp=none key=x gpc0=1",
                                      "update 129 /a id=101 exp=none key=y gpc0=2",
                                      "update 129 /b id=1 exp=none key=z gpc0=3",
                                      "update 129 /a id=102 exp=none key=w gpc0=4"}),
            updates);
}

TEST(UpdateTest, UpdateIdWrapsAt32Bits) {
  TableDefinition t = StringTable(1, "/t", 0);
  std::string s = Define(t) + Update(t, StickTableType::kUpdate, 0xffffffff, "a", {}) +
                  Update(t, StickTableType::kIncUpdate, 0, "b", {});
  auto out = FeedWhole(Bytes(s));
  ASSERT_TRUE(out.ok);
  EXPECT_EQ("update 129 /t id=0 exp=none key=b", out.lines.back());
}

TEST(UpdateTest, TimedUpdatesCarryTheirExpire) {
  TableDefinition t = StringTable(1, "/t", Bit(DataType::kGpc0));
  std::string s = Define(t);
  s += Update(t, StickTableType::kUpdateTimed, 2147483664u, "learned", {U(DataType::kGpc0, 41)},
              3597999);
  s += Update(t, StickTableType::kIncUpdateTimed, 0, "next", {U(DataType::kGpc0, 1)}, 0);
  auto out = FeedWhole(Bytes(s));
  ASSERT_TRUE(out.ok) << out.error;
  EXPECT_EQ("update 133 /t id=2147483664 exp=3597999 key=learned gpc0=41", out.lines[1]);
  EXPECT_EQ("update 134 /t id=2147483665 exp=0 key=next gpc0=1", out.lines[2]);
}

TEST(UpdateTest, StringKeysAreTruncatedToTheTableLength) {
  TableDefinition t = StringTable(1, "/t", 0);
  t.key_size = 5;  // len 4
  auto out = FeedWhole(Bytes(Define(t) + Update(t, StickTableType::kUpdate, 1, "abcdefgh", {})));
  ASSERT_TRUE(out.ok);
  EXPECT_EQ("update 128 /t id=1 exp=none key=abcd", out.lines[1]);
}

TEST(UpdateTest, EveryKeyType) {
  struct Case {
    KeyType type;
    uint64_t size;
    std::string key;
    std::string text;
  };
  const std::vector<Case> cases = {
      {KeyType::kSignedInt, 4, std::string("\xff\xff\xff\xfe", 4), "4294967294"},
      {KeyType::kSignedInt, 4, std::string("\x00\x00\x00\x07", 4), "7"},
      {KeyType::kIpv4, 4, std::string("\x7f\x00\x00\x07", 4), "127.0.0.7"},
      {KeyType::kIpv6, 16,
       std::string("\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16),
       "2001:db8::1"},
      {KeyType::kIpv6, 16,
       std::string("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xc0\x00\x02\x01", 16),
       "::ffff:192.0.2.1"},
      {KeyType::kBinary, 6, std::string("\xde\xad\x00\xbe\xef\x00", 6), "dead00beef00"},
      {KeyType::kString, 65, "acme.example", "acme.example"},
  };
  for (const Case& c : cases) {
    TableDefinition t = StringTable(1, "/t", Bit(DataType::kGpc0));
    t.key_type = c.type;
    t.key_size = c.size;
    auto out = FeedWhole(
        Bytes(Define(t) + Update(t, StickTableType::kUpdate, 1, c.key, {U(DataType::kGpc0, 1)})));
    ASSERT_TRUE(out.ok) << out.error;
    EXPECT_EQ("update 128 /t id=1 exp=none key=" + c.text + " gpc0=1", out.lines[1]);
  }
}

TEST(UpdateTest, ServerIdIsSignExtended) {
  TableDefinition t = StringTable(1, "/t", Bit(DataType::kServerId));
  DataValue minus_one;
  minus_one.type = DataType::kServerId;
  minus_one.form = DataValue::Form::kSigned;
  minus_one.s = -1;
  const std::string u = Update(t, StickTableType::kUpdate, 1, "k", {minus_one});
  // class, type, length, id(4), key length, key, 10-byte varint
  EXPECT_EQ(3u + 4 + 1 + 1 + 10, u.size());
  std::string p = std::string("\x00\x00\x00\x02\x01k", 6) + Varint(0xffffffff);  // 32-bit form
  auto out = FeedWhole(Bytes(Define(t) + u + Framed(0x80, p)));
  ASSERT_TRUE(out.ok) << out.error;
  EXPECT_EQ("update 128 /t id=1 exp=none key=k server_id=-1", out.lines[1]);
  EXPECT_EQ("update 128 /t id=2 exp=none key=k server_id=-1", out.lines[2]);
}

DataValue Dict(uint64_t id, std::string_view value, bool defined) {
  DataValue d;
  d.type = DataType::kServerKey;
  d.form = DataValue::Form::kDict;
  d.dict_id = id;
  d.dict_value = value;
  d.dict_defined = defined;
  return d;
}

TEST(UpdateTest, ServerKeyDictionary) {
  TableDefinition t = StringTable(1, "/t", Bit(DataType::kServerKey));
  std::string s = Define(t);
  s += Update(t, StickTableType::kUpdate, 1, "a", {Dict(1, "srv1", true)});
  s += Update(t, StickTableType::kIncUpdate, 0, "b", {Dict(1, "", false)});
  s += Update(t, StickTableType::kIncUpdate, 0, "c", {Dict(128, "last", true)});
  s += Update(t, StickTableType::kIncUpdate, 0, "d", {Dict(1, "srv2", true)});
  s += Update(t, StickTableType::kIncUpdate, 0, "e", {Dict(1, "", false)});
  s += Update(t, StickTableType::kIncUpdate, 0, "f", {Dict(0, "", false)});  // no value
  auto out = FeedWhole(Bytes(s));
  ASSERT_TRUE(out.ok) << out.error;
  EXPECT_EQ((std::vector<std::string>{
                "define 1 /t key=string/33 bits=524288 expire=60000",
                "update 128 /t id=1 exp=none key=a server_key=[1+]srv1",
                "update 129 /t id=2 exp=none key=b server_key=[1]srv1",
                "update 129 /t id=3 exp=none key=c server_key=[128+]last",
                "update 129 /t id=4 exp=none key=d server_key=[1+]srv2",
                "update 129 /t id=5 exp=none key=e server_key=[1]srv2",
                "update 129 /t id=6 exp=none key=f server_key=[0]",
            }),
            out.lines);
}

TEST(UpdateTest, BadDictionaryEntriesAreMalformed) {
  TableDefinition t = StringTable(1, "/t", Bit(DataType::kServerKey));
  auto with_entry = [&](const std::string& entry) {
    std::string p = std::string("\x00\x00\x00\x01\x01k", 6);
    AppendVarint(p, entry.size());
    p += entry;
    return FeedWhole(Bytes(Define(t) + Framed(0x80, p)));
  };
  EXPECT_TRUE(with_entry(Varint(5) + Varint(3) + "abc").ok);
  EXPECT_FALSE(with_entry(Varint(0) + Varint(3) + "abc").ok);    // ids start at 1
  EXPECT_FALSE(with_entry(Varint(129) + Varint(3) + "abc").ok);  // 128 slots
  EXPECT_FALSE(with_entry(Varint(1000) + Varint(3) + "abc").ok);
  EXPECT_FALSE(with_entry(Varint(5)).ok);                         // never defined
  EXPECT_FALSE(with_entry(Varint(5) + Varint(9) + "abc").ok);     // value too long
  EXPECT_FALSE(with_entry(Varint(5) + Varint(3) + "abcdef").ok);  // bytes after the value
  auto beyond = with_entry("");                                   // L says 0: no value, fine
  EXPECT_TRUE(beyond.ok);
  std::string p = std::string("\x00\x00\x00\x01\x01k", 6) + Varint(10) + Varint(5);  // L too big
  EXPECT_FALSE(FeedWhole(Bytes(Define(t) + Framed(0x80, p))).ok);
}

TEST(UpdateTest, TruncatedPayloadsAreMalformedNotCrashes) {
  TableDefinition t = StringTable(
      1, "/t", Bit(DataType::kGpc0) | Bit(DataType::kHttpReqRate) | Bit(DataType::kBytesOutCnt));
  t.period_ms[static_cast<size_t>(DataType::kHttpReqRate)] = 10000;
  DataValue rate;
  rate.type = DataType::kHttpReqRate;
  rate.form = DataValue::Form::kFreq;
  rate.freq = {10000, 12, 300, 400};
  const std::string full =
      Update(t, StickTableType::kUpdateTimed, 7, "customer",
             {U(DataType::kGpc0, 5), rate, U(DataType::kBytesOutCnt, 1ULL << 40)}, 1000);
  // Re-frame every shorter payload: each must be reported malformed, never read past its end.
  const std::string payload = full.substr(3);
  ASSERT_EQ(static_cast<size_t>(static_cast<uint8_t>(full[2])), payload.size());
  ASSERT_TRUE(FeedWhole(Bytes(Define(t) + full)).ok);
  for (size_t len = 0; len < payload.size(); ++len) {
    auto out = FeedWhole(Bytes(Define(t) + Framed(0x85, payload.substr(0, len))));
    EXPECT_FALSE(out.ok) << len;
  }
}

TEST(UpdateTest, AckRoundTrips) {
  std::string s;
  AppendAck(s, 7, 100);
  EXPECT_EQ(
      "0a840507"
      "00000064",
      Hex(s));
  auto out = FeedWhole(Bytes(s));
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(std::vector<std::string>{"ack 7 100"}, out.lines);
  EXPECT_FALSE(FeedWhole(Bytes(Framed(0x84, "\x07\x00\x00"))).ok);
}

// Every data type, array and message type through the encoder and back.
TEST(RoundTripTest, EveryDataTypeAndMessageType) {
  TableDefinition t;
  t.table_id = 1;
  t.name = "/all";
  t.key_type = KeyType::kString;
  t.key_size = 65;
  t.data_bitfield = (uint64_t{1} << kDataTypeCount) - 1;
  t.expire_ms = 86400000;
  t.nbelem[static_cast<size_t>(DataType::kGpt)] = 2;
  t.nbelem[static_cast<size_t>(DataType::kGpc)] = 3;
  t.nbelem[static_cast<size_t>(DataType::kGpcRate)] = 2;
  for (int i = 0; i < kDataTypeCount; ++i) {
    const std::string_view n = DataTypeName(static_cast<DataType>(i));
    if (n.size() > 5 && n.substr(n.size() - 5) == "_rate") t.period_ms[i] = 1000 * (i + 1);
  }
  // Build the values the way the decoder reports them, with distinct contents.
  std::vector<DataValue> values;
  std::mt19937_64 rng(7);
  for (int i = 0; i < kDataTypeCount; ++i) {
    const auto type = static_cast<DataType>(i);
    const uint64_t n = t.nbelem[i] ? t.nbelem[i] : 1;
    for (uint32_t e = 0; e < n; ++e) {
      DataValue v;
      v.type = type;
      v.index = e;
      if (t.period_ms[i]) {
        v.form = DataValue::Form::kFreq;
        v.freq = {t.period_ms[i], rng() % 100000, rng() % 5000, rng() % 5000};
      } else if (type == DataType::kServerId) {
        v.form = DataValue::Form::kSigned;
        v.s = -42;
      } else if (type == DataType::kServerKey) {
        v = Dict(17, "backend/srv-a", true);
      } else {
        v.form = DataValue::Form::kUnsigned;
        v.u = (type == DataType::kBytesInCnt || type == DataType::kBytesOutCnt)
                  ? (uint64_t{1} << 50) + e
                  : 0xffffffffu - e;
      }
      values.push_back(v);
    }
  }
  std::string s = Define(t);
  s += Update(t, StickTableType::kUpdate, 10, "key-1", values);
  values[static_cast<size_t>(DataType::kServerKey)] = Dict(17, "", false);
  s += Update(t, StickTableType::kIncUpdate, 0, "key-2", values);
  s += Update(t, StickTableType::kUpdateTimed, 20, "key-3", values, 1234);
  s += Update(t, StickTableType::kIncUpdateTimed, 0, "key-4", values, 0);

  struct Checker : MessageHandler {
    std::vector<DataValue> expected;
    std::vector<std::string> keys;
    std::vector<uint32_t> ids;
    std::vector<std::optional<uint32_t>> expires;
    void OnEntryUpdate(const EntryUpdateView& u) override {
      keys.emplace_back(reinterpret_cast<const char*>(u.key_bytes.data()), u.key_bytes.size());
      ids.push_back(u.update_id);
      expires.push_back(u.expire_ms);
      ASSERT_EQ(expected.size(), u.values.size());
      for (size_t i = 0; i < expected.size(); ++i) {
        const DataValue& a = expected[i];
        const DataValue& b = u.values[i];
        SCOPED_TRACE(std::string(MetricName(a.type, a.index)));
        EXPECT_EQ(a.type, b.type);
        EXPECT_EQ(a.index, b.index);
        EXPECT_EQ(a.form, b.form);
        EXPECT_EQ(a.u, b.u);
        EXPECT_EQ(a.s, b.s);
        EXPECT_EQ(a.freq.period_ms, b.freq.period_ms);
        EXPECT_EQ(a.freq.curr_tick, b.freq.curr_tick);
        EXPECT_EQ(a.freq.curr_ctr, b.freq.curr_ctr);
        EXPECT_EQ(a.freq.prev_ctr, b.freq.prev_ctr);
        if (a.form == DataValue::Form::kDict) {
          EXPECT_EQ(17u, b.dict_id);
          EXPECT_EQ("backend/srv-a", b.dict_value);
        }
      }
    }
  } checker;
  checker.expected = values;
  checker.expected[static_cast<size_t>(DataType::kServerKey)] = Dict(17, "backend/srv-a", true);
  for (DataValue& v : checker.expected) {
    if (v.form == DataValue::Form::kUnsigned || v.form == DataValue::Form::kSigned) {
      if (v.form == DataValue::Form::kSigned) v.u = static_cast<uint64_t>(v.s);
    }
  }
  Decoder d;
  FeedResult r = d.Feed(Bytes(s), checker);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(s.size(), r.consumed);
  EXPECT_EQ((std::vector<std::string>{"key-1", "key-2", "key-3", "key-4"}), checker.keys);
  EXPECT_EQ((std::vector<uint32_t>{10, 11, 20, 21}), checker.ids);
  EXPECT_EQ((std::vector<std::optional<uint32_t>>{std::nullopt, std::nullopt, 1234, 0}),
            checker.expires);
}

TEST(NamesTest, DataTypeAndMetricNames) {
  EXPECT_EQ("server_id", DataTypeName(DataType::kServerId));
  EXPECT_EQ("bytes_out_cnt", DataTypeName(DataType::kBytesOutCnt));
  EXPECT_EQ("glitch_cnt", DataTypeName(DataType::kGlitchCnt));
  EXPECT_EQ("glitch_rate", DataTypeName(DataType::kGlitchRate));
  EXPECT_EQ("gpc_rate", DataTypeName(DataType::kGpcRate));
  EXPECT_EQ("gpc0", MetricName(DataType::kGpc0, 0));
  EXPECT_EQ("gpc.3", MetricName(DataType::kGpc, 3));
  EXPECT_EQ("gpt.0", MetricName(DataType::kGpt, 0));
  EXPECT_EQ("gpc_rate.99", MetricName(DataType::kGpcRate, 99));
  // Static storage: the same pointer every time.
  EXPECT_EQ(MetricName(DataType::kGpc, 3).data(), MetricName(DataType::kGpc, 3).data());
  EXPECT_EQ("integer", KeyTypeName(KeyType::kSignedInt));
  EXPECT_EQ("ipv6", KeyTypeName(KeyType::kIpv6));
}

// ---- Keys. ----

std::string Ipv6(std::initializer_list<uint16_t> groups) {
  std::string out;
  for (uint16_t g : groups) {
    out.push_back(static_cast<char>(g >> 8));
    out.push_back(static_cast<char>(g & 0xff));
  }
  return FormatKey(KeyType::kIpv6, Bytes(out));
}

TEST(FormatKeyTest, Ipv6FollowsRfc5952) {
  EXPECT_EQ("::", Ipv6({0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ("::1", Ipv6({0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ("1::", Ipv6({1, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ("2001:db8::1", Ipv6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1}));
  // Longest run wins; the first one on a tie; a single zero group is not compressed.
  EXPECT_EQ("2001:0:0:1::1", Ipv6({0x2001, 0, 0, 1, 0, 0, 0, 1}));
  EXPECT_EQ("2001:db8::1:0:0:1", Ipv6({0x2001, 0xdb8, 0, 0, 1, 0, 0, 1}));
  EXPECT_EQ("2001:db8:0:1:1:1:1:1", Ipv6({0x2001, 0xdb8, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:1",
            Ipv6({0x2001, 0xdb8, 0xaaaa, 0xbbbb, 0xcccc, 0xdddd, 0xeeee, 1}));
  EXPECT_EQ("fe80::a:b0", Ipv6({0xfe80, 0, 0, 0, 0, 0, 0xa, 0xb0}));
  EXPECT_EQ("::ffff:10.1.2.3", Ipv6({0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0203}));
  // Only IPv4-mapped addresses keep a dotted tail.
  EXPECT_EQ("::a01:203", Ipv6({0, 0, 0, 0, 0, 0, 0x0a01, 0x0203}));
}

TEST(FormatKeyTest, OtherKeyTypes) {
  EXPECT_EQ("0", FormatKey(KeyType::kSignedInt, Bytes(std::string(4, '\0'))));
  EXPECT_EQ("4294967295", FormatKey(KeyType::kSignedInt, Bytes(std::string(4, '\xff'))));
  EXPECT_EQ("255.0.10.1", FormatKey(KeyType::kIpv4, Bytes(std::string("\xff\x00\x0a\x01", 4))));
  EXPECT_EQ("00ff10", FormatKey(KeyType::kBinary, Bytes(std::string("\x00\xff\x10", 3))));
  EXPECT_EQ("a b\"c", FormatKey(KeyType::kString, Bytes("a b\"c")));
  EXPECT_EQ("", FormatKey(KeyType::kString, {}));
}

// ---- Hello. ----

TEST(HelloTest, FormatsLikeHaproxy) {
  EXPECT_EQ("HAProxyS 2.1\nlb1\nstickmeter 1234 1\n", FormatHello("lb1", "stickmeter", 1234));
}

TEST(HelloTest, ParsesValidHellos) {
  HandshakeStatus rejection = HandshakeStatus::kSucceeded;
  auto h = ParseHello("HAProxyS 2.1\r", "stickmeter", "lb1 4242 1", &rejection);
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ("2.1", h->version);
  EXPECT_EQ("stickmeter", h->remote_name);
  EXPECT_EQ("lb1", h->sender_name);
  EXPECT_EQ("4242", h->sender_pid);
  EXPECT_TRUE(ParseHello("HAProxyS 2.0", "x", "lb1 1 0", nullptr).ok());
  EXPECT_TRUE(ParseHello("HAProxyS 2.1", "x", "lb1 ", nullptr).ok());
}

TEST(HelloTest, RejectsWithHaproxyStatusCodes) {
  auto code = [](std::string_view l1, std::string_view l3) {
    HandshakeStatus rejection = HandshakeStatus::kSucceeded;
    auto h = ParseHello(l1, "x", l3, &rejection);
    EXPECT_FALSE(h.ok());
    return static_cast<int>(rejection);
  };
  EXPECT_EQ(501, code("HAProxyX 2.1", "lb1 1 1"));
  EXPECT_EQ(501, code("HAProxyS2.1", "lb1 1 1"));
  EXPECT_EQ(501, code("", "lb1 1 1"));
  EXPECT_EQ(502, code("HAProxyS 2.2", "lb1 1 1"));
  EXPECT_EQ(502, code("HAProxyS 3.0", "lb1 1 1"));
  EXPECT_EQ(502, code("HAProxyS 1.9", "lb1 1 1"));
  EXPECT_EQ(502, code("HAProxyS 2.", "lb1 1 1"));
  EXPECT_EQ(502, code("HAProxyS 2.1x", "lb1 1 1"));
  EXPECT_EQ(502, code("HAProxyS x.1", "lb1 1 1"));
  EXPECT_EQ(501, code("HAProxyS 2.1", "lb1"));
}

}  // namespace
}  // namespace stickmeter::ingest
