// Implementation of json_writer.h.
#include "common/json_writer.h"

namespace stickmeter {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Bytes copied as they are: printable ASCII but '"' and '\\', and DEL.
constexpr bool Plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

// The UTF-8 sequence starting at p[0] (a byte >= 0x80), of the `n` bytes left. Returns its
// length when it is well-formed (no overlong form, no surrogate, nothing above U+10FFFF);
// otherwise 0, with `*consumed` set to the lead byte plus the continuation bytes that were
// still valid: the maximal invalid subpart that one U+FFFD replaces (Unicode's "substitution of
// maximal subparts", which nlohmann_json's replace mode follows too).
size_t Utf8Length(const unsigned char* p, size_t n, size_t* consumed) {
  const unsigned char c = p[0];
  size_t need = 0;                     // continuation bytes
  unsigned char lo = 0x80, hi = 0xbf;  // range of the first continuation byte
  if (c >= 0xc2 && c <= 0xdf) {
    need = 1;
  } else if (c == 0xe0) {
    need = 2, lo = 0xa0;  // below is overlong
  } else if (c == 0xed) {
    need = 2, hi = 0x9f;  // above are surrogates
  } else if (c >= 0xe1 && c <= 0xef) {
    need = 2;
  } else if (c == 0xf0) {
    need = 3, lo = 0x90;  // below is overlong
  } else if (c == 0xf4) {
    need = 3, hi = 0x8f;  // above is past U+10FFFF
  } else if (c >= 0xf1 && c <= 0xf3) {
    need = 3;
  } else {
    *consumed = 1;  // a continuation byte, C0, C1 or F5..FF cannot start a sequence
    return 0;
  }
  size_t k = 1;
  for (; k <= need && k < n; ++k) {
    const unsigned char b = p[k];
    if (b < lo || b > hi) break;
    lo = 0x80, hi = 0xbf;
  }
  if (k > need) return need + 1;
  *consumed = k;
  return 0;
}

}  // namespace

size_t JsonStringBoundBytes(std::string_view text) {
  size_t bytes = 2;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    bytes += c < 0x20 ? 6 : c == '"' || c == '\\' ? 2 : c >= 0x80 ? 3 : 1;
  }
  return bytes;
}

void AppendJsonString(std::string& out, std::string_view text, InvalidUtf8 invalid) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  out.reserve(out.size() + n + 2);
  out.push_back('"');
  size_t run = 0;  // start of the bytes to copy as they are
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (Plain(c)) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t consumed = 0;
      if (const size_t len = Utf8Length(p + i, n - i, &consumed); len != 0) {
        i += len;
        continue;
      }
      out.append(text.data() + run, i - run);
      if (invalid == InvalidUtf8::kReplace) {
        out.append("\xef\xbf\xbd", 3);
        i += consumed;
      } else {
        // The lead byte only: the bytes after it are looked at again, and a valid sequence
        // among them is kept.
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out.append(esc, 6);
        ++i;
      }
      run = i;
      continue;
    }
    out.append(text.data() + run, i - run);
    switch (c) {
      case '"':
        out.append("\\\"", 2);
        break;
      case '\\':
        out.append("\\\\", 2);
        break;
      case '\b':
        out.append("\\b", 2);
        break;
      case '\t':
        out.append("\\t", 2);
        break;
      case '\n':
        out.append("\\n", 2);
        break;
      case '\f':
        out.append("\\f", 2);
        break;
      case '\r':
        out.append("\\r", 2);
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out.append(esc, 6);
      }
    }
    run = ++i;
  }
  out.append(text.data() + run, n - run);
  out.push_back('"');
}

}  // namespace stickmeter
