// The text side of the peers protocol codec declared in codec.h: keys as text (parsing and
// formatting each key type, as the API and the CLI show them), names of key and data types, and
// the handshake's hello and status lines. The binary messages are decoded
// in codec.cc and encoded in codec_encode.cc.
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>

#include "ingest/codec.h"
#include "ingest/data_types.h"

namespace stickmeter::ingest {

using internal::kTypes;

// ---- Keys. ----

Result<std::string> ParseKey(KeyType type, uint64_t key_size, std::string_view text) {
  switch (type) {
    case KeyType::kString:
      return std::string(text.substr(0, key_size > 0 ? key_size - 1 : text.size()));
    case KeyType::kSignedInt: {
      uint64_t v = 0;
      if (text.empty() || text.size() > 10) break;
      for (char c : text) {
        if (c < '0' || c > '9')
          return Status::InvalidArgument("not an integer key: '" + std::string(text) + "'");
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      if (v > UINT32_MAX) break;
      // Integer keys travel big-endian, as HAProxy's are.
      const uint32_t be = htonl(static_cast<uint32_t>(v));
      return std::string(reinterpret_cast<const char*>(&be), sizeof be);
    }
    case KeyType::kIpv4:
    case KeyType::kIpv6: {
      const std::string z(text);
      unsigned char buf[16];
      const int family = type == KeyType::kIpv4 ? AF_INET : AF_INET6;
      if (inet_pton(family, z.c_str(), buf) != 1) {
        return Status::InvalidArgument(std::string("not an ") +
                                       (type == KeyType::kIpv4 ? "IPv4" : "IPv6") + " address: '" +
                                       z + "'");
      }
      return std::string(reinterpret_cast<const char*>(buf), type == KeyType::kIpv4 ? 4 : 16);
    }
    case KeyType::kBinary: {
      if (text.size() % 2 != 0 || text.size() / 2 > key_size) break;
      std::string out;
      for (size_t i = 0; i < text.size(); i += 2) {
        auto nibble = [](char c) -> int {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return -1;
        };
        const int hi = nibble(text[i]), lo = nibble(text[i + 1]);
        if (hi < 0 || lo < 0)
          return Status::InvalidArgument("not a hex key: '" + std::string(text) + "'");
        out.push_back(static_cast<char>(hi * 16 + lo));
      }
      out.resize(key_size, '\0');
      return out;
    }
  }
  return Status::InvalidArgument("not a " + std::string(KeyTypeName(type)) + " key: '" +
                                 std::string(text) + "'");
}

std::optional<KeyType> KeyTypeByName(std::string_view name) {
  for (KeyType t :
       {KeyType::kSignedInt, KeyType::kIpv4, KeyType::kIpv6, KeyType::kString, KeyType::kBinary}) {
    if (KeyTypeName(t) == name) return t;
  }
  return std::nullopt;
}

std::optional<DataType> DataTypeByName(std::string_view name) {
  for (int t = 0; t < kDataTypeCount; ++t) {
    if (DataTypeName(static_cast<DataType>(t)) == name) return static_cast<DataType>(t);
  }
  return std::nullopt;
}

std::string FormatKey(KeyType type, std::span<const uint8_t> key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  switch (type) {
    case KeyType::kString:
      out.assign(reinterpret_cast<const char*>(key.data()), key.size());
      return out;
    case KeyType::kSignedInt:
      if (key.size() == 4) {
        const uint32_t v =
            (uint32_t{key[0]} << 24) | (uint32_t{key[1]} << 16) | (uint32_t{key[2]} << 8) | key[3];
        return std::to_string(v);
      }
      break;
    case KeyType::kIpv4:
      if (key.size() == 4) {
        out = std::to_string(key[0]) + "." + std::to_string(key[1]) + "." + std::to_string(key[2]) +
              "." + std::to_string(key[3]);
        return out;
      }
      break;
    case KeyType::kIpv6:
      if (key.size() == 16) {
        std::array<uint16_t, 8> w{};
        for (size_t i = 0; i < 8; ++i)
          w[i] = static_cast<uint16_t>((key[2 * i] << 8) | key[2 * i + 1]);
        // IPv4-mapped (::ffff:a.b.c.d) keeps its dotted tail (RFC 5952 section 5).
        if (w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0xffff) {
          return "::ffff:" + FormatKey(KeyType::kIpv4, key.subspan(12, 4));
        }
        // The longest run of two or more zero groups becomes "::" (the first one on a tie).
        int best_start = -1, best_len = 0;
        for (int i = 0; i < 8;) {
          if (w[static_cast<size_t>(i)] != 0) {
            ++i;
            continue;
          }
          int j = i;
          while (j < 8 && w[static_cast<size_t>(j)] == 0) ++j;
          if (j - i > best_len) {
            best_start = i;
            best_len = j - i;
          }
          i = j;
        }
        if (best_len < 2) best_start = -1;
        for (int i = 0; i < 8; ++i) {
          if (i == best_start) {
            out += "::";
            i += best_len - 1;
            continue;
          }
          if (!out.empty() && out.back() != ':') out.push_back(':');
          char buf[5];
          int n = 0;
          const uint16_t g = w[static_cast<size_t>(i)];
          bool started = false;
          for (int shift = 12; shift >= 0; shift -= 4) {
            const int nibble = (g >> shift) & 0xf;
            if (nibble == 0 && !started && shift != 0) continue;
            started = true;
            buf[n++] = kHex[nibble];
          }
          out.append(buf, static_cast<size_t>(n));
        }
        return out;
      }
      break;
    case KeyType::kBinary:
      break;
  }
  // Binary, or a key whose size does not fit its type: lowercase hex of every byte.
  out.reserve(key.size() * 2);
  for (uint8_t b : key) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

// ---- Handshake. ----

std::string FormatHello(std::string_view remote_name, std::string_view local_name, int64_t pid) {
  std::string out;
  out += kProtocolName;
  out += ' ';
  out += kProtocolVersion;
  out += '\n';
  out += remote_name;
  out += '\n';
  out += local_name;
  out += ' ';
  out += std::to_string(pid);
  out += " 1\n";
  return out;
}

namespace {

std::string_view StripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// HAProxy's read_uint: one or more digits. Returns false when there is none.
bool ReadUint(std::string_view& s, uint64_t& v) {
  size_t i = 0;
  v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');
    ++i;
  }
  if (i == 0) return false;
  s.remove_prefix(i);
  return true;
}

}  // namespace

Result<Hello> ParseHello(std::string_view line1, std::string_view line2, std::string_view line3,
                         HandshakeStatus* rejection) {
  auto reject = [&](HandshakeStatus code, std::string why) -> Result<Hello> {
    if (rejection) *rejection = code;
    return Status::InvalidArgument("peer hello rejected (" +
                                   std::to_string(static_cast<int>(code)) + "): " + why);
  };
  line1 = StripCr(line1);
  line2 = StripCr(line2);
  line3 = StripCr(line3);
  // Line 1: "HAProxyS <major>.<minor>", major 2, minor at most ours (peer_getline_version).
  if (line1.size() <= kProtocolName.size() ||
      line1.substr(0, kProtocolName.size()) != kProtocolName ||
      line1[kProtocolName.size()] != ' ') {
    return reject(HandshakeStatus::kProtocolError, "line 1 does not start with \"HAProxyS \"");
  }
  std::string_view version = line1.substr(kProtocolName.size() + 1);
  std::string_view rest = version;
  uint64_t major = 0, minor = 0;
  if (!ReadUint(rest, major) || rest.empty() || rest.front() != '.') {
    return reject(HandshakeStatus::kBadVersion, "bad version \"" + std::string(version) + "\"");
  }
  rest.remove_prefix(1);
  if (!ReadUint(rest, minor) || !rest.empty() || major != 2 || minor > 1) {
    return reject(HandshakeStatus::kBadVersion,
                  "unsupported version \"" + std::string(version) + "\"");
  }
  // Line 3: "<name> <pid> <relative pid>"; HAProxy only needs the space after the name.
  const size_t space = line3.find(' ');
  if (space == std::string_view::npos) {
    return reject(HandshakeStatus::kProtocolError, "line 3 has no space after the peer name");
  }
  Hello hello;
  hello.version = std::string(version);
  hello.remote_name = std::string(line2);
  hello.sender_name = std::string(line3.substr(0, space));
  std::string_view after = line3.substr(space + 1);
  hello.sender_pid = std::string(after.substr(0, after.find(' ')));
  return hello;
}

// ---- Names. ----

std::string_view DataTypeName(DataType type) {
  auto i = static_cast<size_t>(type);
  return i < kTypes.size() ? kTypes[i].name : std::string_view("unknown");
}

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kSignedInt:
      return "integer";
    case KeyType::kIpv4:
      return "ipv4";
    case KeyType::kIpv6:
      return "ipv6";
    case KeyType::kString:
      return "string";
    case KeyType::kBinary:
      return "binary";
  }
  return "unknown";
}

std::string_view MetricName(DataType type, uint32_t index) {
  struct ArrayNames {
    std::array<std::array<std::string, kMaxArrayElements>, kDataTypeCount> names;
    ArrayNames() {
      for (size_t t = 0; t < kTypes.size(); ++t) {
        if (!kTypes[t].is_array) continue;
        for (uint32_t i = 0; i < kMaxArrayElements; ++i) {
          names[t][i] = std::string(kTypes[t].name) + "." + std::to_string(i);
        }
      }
    }
  };
  static const ArrayNames kArrayNames;  // built once, thread-safe (magic static)
  auto t = static_cast<size_t>(type);
  if (t >= kTypes.size()) return "unknown";
  if (!kTypes[t].is_array) return kTypes[t].name;
  if (index >= kMaxArrayElements) return "unknown";
  return kArrayNames.names[t][index];
}

}  // namespace stickmeter::ingest
