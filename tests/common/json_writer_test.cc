#include "common/json_writer.h"

#include <gtest/gtest.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace stickmeter {
namespace {

std::string Quote(std::string_view text, InvalidUtf8 invalid = InvalidUtf8::kReplace) {
  std::string out;
  AppendJsonString(out, text, invalid);
  return out;
}

// What the API's replies built as json values carry (http/json_util.h DumpJson): the escaper
// must write the same bytes, or one key would read differently in /usage and in /keys.
std::string Serializer(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Hex(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += std::string{kHex[c >> 4], kHex[c & 15], ' '};
  return out;
}

TEST(JsonWriterTest, PlainTextIsCopied) {
  EXPECT_EQ("\"\"", Quote(""));
  EXPECT_EQ("\"acme/10.0.0.1:80\"", Quote("acme/10.0.0.1:80"));
}

TEST(JsonWriterTest, AppendsToWhatIsThere) {
  std::string out = "{\"k\":";
  AppendJsonString(out, "v");
  EXPECT_EQ("{\"k\":\"v\"", out);
}

TEST(JsonWriterTest, QuotesAndBackslashes) { EXPECT_EQ(R"("a\"b\\c")", Quote("a\"b\\c")); }

TEST(JsonWriterTest, ControlCharactersUseTheShortFormsWhereJsonHasThem) {
  EXPECT_EQ(R"("\b\t\n\f\r")", Quote("\b\t\n\f\r"));
  EXPECT_EQ(R"("\u0000\u0001\u000b\u001f")", Quote(std::string("\0\x01\x0b\x1f", 4)));
  // DEL is not a control character for JSON.
  EXPECT_EQ("\"\x7f\"", Quote("\x7f"));
}

TEST(JsonWriterTest, LineAndParagraphSeparatorsPassThrough) {
  // Valid JSON as they are (RFC 8259); only JavaScript before ES2019 minded them in a literal.
  EXPECT_EQ(
      "\"a\xe2\x80\xa8"
      "b\xe2\x80\xa9\"",
      Quote("a\xe2\x80\xa8"
            "b\xe2\x80\xa9"));
}

TEST(JsonWriterTest, ValidUtf8PassesThrough) {
  const std::string text = "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
  EXPECT_EQ("\"" + text + "\"", Quote(text));
  EXPECT_EQ("\"" + text + "\"", Quote(text, InvalidUtf8::kEscapeBytes));
}

TEST(JsonWriterTest, InvalidUtf8IsReplacedOncePerMaximalSubpart) {
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ("\"" + r + r + "\"", Quote("\xff\xfe"));  // never a lead byte
  EXPECT_EQ("\"a" + r + "b\"", Quote("a\x80"
                                     "b"));                           // lone continuation
  EXPECT_EQ("\"" + r + r + "\"", Quote("\xc0\xaf"));                  // overlong '/'
  EXPECT_EQ("\"" + r + r + r + "\"", Quote("\xe0\x80\xaf"));          // overlong, 3 bytes
  EXPECT_EQ("\"" + r + r + r + "\"", Quote("\xed\xa0\x80"));          // a surrogate
  EXPECT_EQ("\"" + r + r + r + r + "\"", Quote("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_EQ("\"" + r + "\"", Quote("\xe2\x82"));                      // cut short at the end
  EXPECT_EQ("\"" + r + "A\"", Quote("\xe2\x82"
                                    "A"));                        // cut short before ASCII
  EXPECT_EQ("\"" + r + "\xc3\xa9\"", Quote("\xf0\x9f\xc3\xa9"));  // before another sequence
}

TEST(JsonWriterTest, InvalidUtf8CanBeEscapedByteByByte) {
  EXPECT_EQ(R"("\u00ff\u00fe")", Quote("\xff\xfe", InvalidUtf8::kEscapeBytes));
  EXPECT_EQ(R"("\u00e2\u0082A")", Quote("\xe2\x82"
                                        "A",
                                        InvalidUtf8::kEscapeBytes));
  EXPECT_EQ("\"\\u00f0\\u009f\xc3\xa9\"", Quote("\xf0\x9f\xc3\xa9", InvalidUtf8::kEscapeBytes));
  EXPECT_EQ(R"("\u00ed\u00a0\u0080")", Quote("\xed\xa0\x80", InvalidUtf8::kEscapeBytes));
  // Control characters as in the other mode.
  EXPECT_EQ(R"("\n\u0001")", Quote("\n\x01", InvalidUtf8::kEscapeBytes));
}

TEST(JsonWriterTest, EscapedBytesReadBackAsLatin1) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string text(rng() % 12, '\0');
    for (char& c : text) c = static_cast<char>(rng());
    const auto parsed = nlohmann::json::parse(Quote(text, InvalidUtf8::kEscapeBytes));
    ASSERT_TRUE(parsed.is_string()) << Hex(text);
  }
}

TEST(JsonWriterTest, SameBytesAsTheSerializer) {
  std::vector<std::string> texts = {"", "acme", "a\"b", "tab\there", "\xc3\xa9", "\xe2\x80\xa8"};
  for (int c = 0; c < 256; ++c) {
    texts.push_back(std::string(1, static_cast<char>(c)));
    texts.push_back("k" + std::string(1, static_cast<char>(c)) + "z");
    for (int d : {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc3, 0xe2, 0xf0}) {
      texts.push_back(std::string{static_cast<char>(c), static_cast<char>(d)});
      texts.push_back(std::string{static_cast<char>(c), static_cast<char>(d), '\x80'});
      texts.push_back(std::string{static_cast<char>(c), static_cast<char>(d), '\x80', '\x80'});
    }
  }
  std::mt19937_64 rng(42);
  for (int i = 0; i < 20000; ++i) {
    std::string text(rng() % 16, '\0');
    // Mostly bytes around the UTF-8 boundaries, where the two could disagree.
    static constexpr unsigned char kBytes[] = {0x00, 0x09, 0x1f, 0x22, 0x41, 0x5c, 0x7f,
                                               0x80, 0x9f, 0xa0, 0xbf, 0xc1, 0xc2, 0xdf,
                                               0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
    for (char& c : text) c = static_cast<char>(kBytes[rng() % sizeof kBytes]);
    texts.push_back(std::move(text));
  }
  for (const auto& text : texts) {
    ASSERT_EQ(Serializer(text), Quote(text)) << Hex(text);
  }
}

// Reply budgets count keys by this bound: never below what is written, exact for ASCII.
TEST(JsonWriterTest, StringBoundIsNeverBelowTheBytesWritten) {
  EXPECT_EQ(Quote("acme").size(), JsonStringBoundBytes("acme"));
  EXPECT_EQ(Quote(std::string("a\x01\"\\\n", 5)).size(),
            JsonStringBoundBytes(std::string("a\x01\"\\\n", 5)) - 4);  // \n is 2, bound 6
  EXPECT_EQ(2u + 6 * 1000, JsonStringBoundBytes(std::string(1000, '\x02')));
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string text(rng() % 24, '\0');
    for (char& c : text) c = static_cast<char>(rng());
    ASSERT_LE(Quote(text).size(), JsonStringBoundBytes(text)) << Hex(text);
  }
}

// At every length and at the edges of WriteDecimal's 8-digit parts.
TEST(JsonWriterTest, DecimalsAreToCharsBytes) {
  std::vector<uint64_t> values = {0, 1, UINT64_MAX, uint64_t{INT64_MAX} + 1, 1790812800000};
  for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
    for (uint64_t v : {p - 1, p, p + 1, p * 9, p * 10 - 1}) values.push_back(v);
  }
  std::mt19937_64 rng(1);
  for (int i = 0; i < 10000; ++i) values.push_back(rng() >> (rng() % 64));
  for (uint64_t v : values) {
    char want[24];
    std::string out;
    AppendDecimal(out, v);
    ASSERT_EQ(std::string(want, std::to_chars(want, want + sizeof want, v).ptr), out);
    const auto s = static_cast<int64_t>(v);
    out.clear();
    AppendDecimal(out, s);
    ASSERT_EQ(std::string(want, std::to_chars(want, want + sizeof want, s).ptr), out);
  }
}

}  // namespace
}  // namespace stickmeter
