#include "sink/clickhouse_url.h"

#include <algorithm>
#include <charconv>
#include <string>
#include <system_error>

#include "common/log.h"

namespace stickmeter::sink {
namespace {

bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

// A character a URL's user part may hold as it is (RFC 3986 userinfo: unreserved and
// sub-delims; ':' would start a password); any other is percent-encoded.
bool IsUserChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos;
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

Status Bad(const std::string& why) {
  return Status::InvalidArgument(why +
                                 " (expected http[s]://[USER@]HOST[:PORT]/?database=DB&table=T)");
}

// The user part of the URL, percent-decoded. The name is sent base64-encoded in the
// Authorization header and never put into SQL, so ClickHouse's own rules apply (names such as
// svc-stickmeter or first.last), with two exceptions: a ':' would be read as the start of the
// password, and control characters are refused as they are never meant.
Result<std::string> ParseUser(std::string_view raw) {
  std::string user;
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '%') {
      unsigned byte = 0;
      const char* end = raw.data() + std::min(raw.size(), i + 3);
      const auto [at, ec] = std::from_chars(raw.data() + i + 1, end, byte, 16);
      if (ec != std::errc() || at != raw.data() + i + 3) {
        return Bad("bad %-escape in the user name '" + EscapeForLog(raw) + "'");
      }
      user += static_cast<char>(byte);
      i += 2;
    } else if (IsUserChar(c)) {
      user += c;
    } else {
      return Bad("bad user name '" + EscapeForLog(raw) +
                 "' (percent-encode characters other than letters, digits and -._~!$&'()*+,;=)");
    }
  }
  if (user.empty()) return Bad("empty user name before @");
  if (user.size() > 128) return Bad("user name longer than 128 bytes");
  if (user.find(':') != std::string::npos) {
    return Bad("a ':' in the user name '" + EscapeForLog(user) +
               "' cannot be sent (HTTP Basic authentication ends the name there)");
  }
  for (unsigned char c : user) {
    if (c < 0x20 || c == 0x7f) {
      return Bad("a control character in the user name '" + EscapeForLog(user) + "'");
    }
  }
  return user;
}

}  // namespace

Result<ClickHouseTarget> ParseClickHouseUrl(std::string_view url) {
  ClickHouseTarget t;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    t.tls = true;
    rest = url.substr(8);
  } else {
    // Appended, not `"'" + std::string(url) + ...`: GCC 12 warns falsely (-Wrestrict) at -O3.
    return Bad(std::string("'").append(url).append("' is not an http:// or https:// URL"));
  }
  const size_t end_authority = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end_authority);
  std::string_view tail = end_authority == std::string_view::npos ? "" : rest.substr(end_authority);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view user = authority.substr(0, at);
    if (user.find(':') != std::string_view::npos) {
      return Bad("a password in the URL is not accepted; use --sink-clickhouse-password-file");
    }
    auto decoded = ParseUser(user);
    if (!decoded.ok()) return decoded.status();
    t.user = std::move(*decoded);
    authority = authority.substr(at + 1);
  }
  std::string_view port_text;
  if (authority.starts_with("[")) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Bad("unclosed [ in the host");
    t.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Bad("unexpected text after the host");
      port_text = after.substr(1);
      if (port_text.empty()) return Bad("empty port");
    }
    for (char c : t.host) {
      if (!(IsHostChar(c) || c == ':')) return Bad("bad IPv6 address '" + t.host + "'");
    }
  } else {
    const size_t colon = authority.find(':');
    t.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Bad("empty port");
    }
    for (char c : t.host) {
      if (!IsHostChar(c)) return Bad("bad host name '" + t.host + "'");
    }
  }
  if (t.host.empty()) return Bad("no host in '" + std::string(url) + "'");
  t.port = t.tls ? 8443 : 8123;
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return Bad("bad port '" + std::string(port_text) + "'");
    }
    t.port = static_cast<uint16_t>(port);
  }
  if (tail.starts_with("#")) return Bad("a fragment (#) is not expected");
  if (tail.starts_with("/")) {
    const size_t q = tail.find('?');
    std::string_view path = tail.substr(0, q);
    if (path != "/") return Bad("the path must be / (got '" + std::string(path) + "')");
    tail = q == std::string_view::npos ? "" : tail.substr(q);
  }
  if (tail.starts_with("?")) {
    std::string_view query = tail.substr(1);
    bool seen_database = false, seen_table = false;
    while (!query.empty()) {
      const size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
      if (pair.empty()) continue;
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos) return Bad("'" + std::string(pair) + "' has no value");
      std::string_view name = pair.substr(0, eq), value = pair.substr(eq + 1);
      if (name != "database" && name != "table") {
        return Bad("unknown parameter '" + std::string(name) + "' (known: database, table)");
      }
      // As the HTTP API does: of two values, neither is more likely the one meant.
      bool& seen = name == "database" ? seen_database : seen_table;
      if (seen) return Bad("'" + std::string(name) + "' is given more than once");
      seen = true;
      if (!IsIdentifier(value)) {
        return Bad("bad " + std::string(name) + " name '" + std::string(value) +
                   "' (letters, digits and _)");
      }
      (name == "database" ? t.database : t.table) = std::string(value);
    }
  } else if (!tail.empty()) {
    return Bad("unexpected '" + std::string(tail) + "'");
  }
  return t;
}

std::string Describe(const ClickHouseTarget& t) {
  const bool v6 = t.host.find(':') != std::string::npos;
  return std::string(t.tls ? "https://" : "http://") + (v6 ? "[" + t.host + "]" : t.host) + ":" +
         std::to_string(t.port) + "/" + t.database + "." + t.table;
}

std::string CreateTableSql(const ClickHouseTarget& t) {
  return "CREATE TABLE IF NOT EXISTS " + t.database + "." + t.table +
         " (event_id String, ts_ms UInt64, source String, stick_table String, key String, "
         "metric String, value UInt64, delta UInt64, reason String) "
         "ENGINE = ReplacingMergeTree() "
         "PARTITION BY toYYYYMM(toDateTime(intDiv(ts_ms, 1000))) ORDER BY event_id";
}

std::string InsertSql(const ClickHouseTarget& t) {
  return "INSERT INTO " + t.database + "." + t.table +
         " (event_id, ts_ms, source, stick_table, key, metric, value, delta, reason) "
         "FORMAT RowBinary";
}

std::string EventId(std::string_view prefix, uint64_t seq) {
  return std::string(prefix) + ":" + std::to_string(seq);
}

namespace {

void AppendVarUInt(std::string& out, uint64_t x) {
  while (x >= 0x80) {
    out += static_cast<char>(0x80 | (x & 0x7f));
    x >>= 7;
  }
  out += static_cast<char>(x);
}

void AppendBinaryString(std::string& out, std::string_view text) {
  AppendVarUInt(out, text.size());
  out.append(text);
}

void AppendUInt64(std::string& out, uint64_t x) {
  char bytes[8];
  for (size_t i = 0; i < sizeof(bytes); ++i) bytes[i] = static_cast<char>(x >> (8 * i));
  out.append(bytes, sizeof(bytes));
}

}  // namespace

void AppendRow(std::string& out, std::string_view id_prefix, const tsdb::FeedEvent& e) {
  // The event id (EventId) written in place: one row per event, a million a second at peak.
  char seq[20];
  const auto [end, ec] = std::to_chars(seq, seq + sizeof(seq), e.seq);
  const size_t seq_len = static_cast<size_t>(end - seq);
  AppendVarUInt(out, id_prefix.size() + 1 + seq_len);
  out.append(id_prefix);
  out += ':';
  out.append(seq, seq_len);
  AppendUInt64(out, e.t_ms < 0 ? 0 : static_cast<uint64_t>(e.t_ms));
  AppendBinaryString(out, e.source);
  AppendBinaryString(out, e.table);
  AppendBinaryString(out, e.key);
  AppendBinaryString(out, e.metric);
  AppendUInt64(out, e.value);
  AppendUInt64(out, e.delta);
  AppendBinaryString(out, e.reason);
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace stickmeter::sink
