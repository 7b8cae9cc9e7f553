#include "app/config.h"

#include <charconv>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "billing/calendar.h"
#include "sink/clickhouse_url.h"

namespace stickmeter::app {
namespace {

// The largest --config file read.
constexpr size_t kMaxConfigFileBytes = 1 << 20;

// One flag: how it is spelled on the command line and in the config file, and how its value is
// applied. Boolean flags take no value on the command line ("--insecure-no-auth") but accept
// true/false in the file and as --flag=true|false.
template <typename Config>
struct FlagSpec {
  std::string name;  // without the leading dashes
  bool boolean = false;
  bool repeated = false;
  std::function<Status(Config&, const std::string&)> apply;
  std::function<void(Config&)> clear;  // for repeated flags: the command line replaces the file
};

Result<int64_t> ParseInteger(const std::string& flag, const std::string& text, int64_t min,
                             int64_t max) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < min || value > max) {
    return Status::InvalidArgument("--" + flag + ": expected an integer from " +
                                   std::to_string(min) + " to " + std::to_string(max) + ", got '" +
                                   text + "'");
  }
  return value;
}

Result<bool> ParseBool(const std::string& flag, const std::string& text) {
  if (text == "true" || text == "on" || text == "yes" || text == "1") return true;
  if (text == "false" || text == "off" || text == "no" || text == "0") return false;
  return Status::InvalidArgument("--" + flag + ": expected true or false, got '" + text + "'");
}

Status NonEmpty(const std::string& flag, const std::string& text) {
  if (text.empty()) return Status::InvalidArgument("--" + flag + ": must not be empty");
  return Status::Ok();
}

// A non-empty text value; `Field` is std::string or std::optional<std::string>.
template <typename Config, typename Field>
FlagSpec<Config> StringFlag(std::string name, Field Config::*field) {
  std::string flag = name;
  return {name, false, false,
          [flag, field](Config& c, const std::string& v) {
            Status s = NonEmpty(flag, v);
            if (s.ok()) c.*field = v;
            return s;
          },
          nullptr};
}

template <typename Config>
FlagSpec<Config> BoolFlag(std::string name, bool Config::*field) {
  std::string flag = name;
  return {name, true, false,
          [flag, field](Config& c, const std::string& v) -> Status {
            auto b = ParseBool(flag, v);
            if (!b.ok()) return b.status();
            c.*field = *b;
            return Status::Ok();
          },
          nullptr};
}

template <typename Config, typename Int>
FlagSpec<Config> IntFlag(std::string name, Int Config::*field, int64_t min, int64_t max) {
  std::string flag = name;
  return {name, false, false,
          [flag, field, min, max](Config& c, const std::string& v) -> Status {
            auto n = ParseInteger(flag, v, min, max);
            if (!n.ok()) return n.status();
            c.*field = static_cast<Int>(*n);
            return Status::Ok();
          },
          nullptr};
}

FlagSpec<ServeConfig> TlsFlag(std::string name, std::optional<TlsConfig> ServeConfig::*field,
                              std::string TlsConfig::*member) {
  std::string flag = name;
  return {name, false, false,
          [flag, field, member](ServeConfig& c, const std::string& v) -> Status {
            Status s = NonEmpty(flag, v);
            if (!s.ok()) return s;
            if (!(c.*field)) c.*field = TlsConfig{};
            (*(c.*field)).*member = v;
            return Status::Ok();
          },
          nullptr};
}

FlagSpec<ServeConfig> TlsVerifyFlag(std::string name,
                                    std::optional<TlsConfig> ServeConfig::*field) {
  std::string flag = name;
  return {name, true, false,
          [flag, field](ServeConfig& c, const std::string& v) -> Status {
            auto b = ParseBool(flag, v);
            if (!b.ok()) return b.status();
            // Not verifying is the default, and no reason to use TLS at all.
            if (!*b && !(c.*field)) return Status::Ok();
            if (!(c.*field)) c.*field = TlsConfig{};
            (c.*field)->verify = *b;
            return Status::Ok();
          },
          nullptr};
}

std::vector<FlagSpec<ServeConfig>> ServeFlags() {
  using C = ServeConfig;
  std::vector<FlagSpec<C>> flags = {
      StringFlag<C>("data", &C::data),
      StringFlag<C>("name", &C::name),
      {"peers-listen", false, false,
       [](C& c, const std::string& v) -> Status {
         if (v == "off") {
           c.peers_listen_enabled = false;
           return Status::Ok();
         }
         auto hp = ParseHostPort(v);
         if (!hp.ok()) return hp.status().WithContext("--peers-listen");
         c.peers_listen = *hp;
         c.peers_listen_enabled = true;
         return Status::Ok();
       },
       nullptr},
      {"connect", false, true,
       [](C& c, const std::string& v) -> Status {
         auto target = ParseConnectTarget(v);
         if (!target.ok()) return target.status().WithContext("--connect");
         c.connect.push_back(*target);
         return Status::Ok();
       },
       [](C& c) { c.connect.clear(); }},
      {"allow-peer", false, true,
       [](C& c, const std::string& v) -> Status {
         Status s = NonEmpty("allow-peer", v);
         if (s.ok()) c.allow_peer.push_back(v);
         return s;
       },
       [](C& c) { c.allow_peer.clear(); }},
      {"aggregate", false, true,
       [](C& c, const std::string& v) -> Status {
         Status s = NonEmpty("aggregate", v);
         if (s.ok()) c.aggregate.push_back(v);
         return s;
       },
       [](C& c) { c.aggregate.clear(); }},
      {"quota", false, true,
       [](C& c, const std::string& v) -> Status {
         Status s = NonEmpty("quota", v);
         if (s.ok()) c.quota.push_back(v);
         return s;
       },
       [](C& c) { c.quota.clear(); }},
      {"http", false, false,
       [](C& c, const std::string& v) -> Status {
         auto hp = ParseHostPort(v);
         if (!hp.ok()) return hp.status().WithContext("--http");
         c.http = *hp;
         return Status::Ok();
       },
       nullptr},
      {"http-host", false, true,
       [](C& c, const std::string& v) -> Status {
         // A DNS name or an IP literal ([v6] for IPv6), optionally with a port.
         if (v.empty() || v.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789-._:[]") != std::string::npos) {
           return Status::InvalidArgument(
               "--http-host: expected a host name like "
               "stats.example.com, got '" +
               v + "'");
         }
         c.http_host.push_back(v);
         return Status::Ok();
       },
       [](C& c) { c.http_host.clear(); }},
      {"http-cors-origin", false, true,
       [](C& c, const std::string& v) -> Status {
         // "*", or scheme://host[:port] as a browser sends it in Origin: no path, no slash.
         const bool web = v.starts_with("http://") || v.starts_with("https://");
         const std::string_view rest =
             web ? std::string_view(v).substr(v.find("//") + 2) : std::string_view();
         if (v != "*" && (!web || rest.empty() ||
                          rest.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
                                                 "wxyz0123456789-._:[]") != std::string::npos)) {
           return Status::InvalidArgument(
               "--http-cors-origin: expected * or an origin like https://billing.example.com "
               "(no path), got '" +
               v + "'");
         }
         c.http_cors_origin.push_back(v);
         return Status::Ok();
       },
       [](C& c) { c.http_cors_origin.clear(); }},
      IntFlag<C>("http-max-conns-per-client", &C::http_max_conns_per_client, 0, 1000000),
      StringFlag<C>("token-file", &C::token_file),
      BoolFlag<C>("insecure-no-auth", &C::insecure_no_auth),
      TlsFlag("peers-tls-cert", &C::peers_tls, &TlsConfig::cert),
      TlsFlag("peers-tls-key", &C::peers_tls, &TlsConfig::key),
      TlsFlag("peers-tls-ca", &C::peers_tls, &TlsConfig::ca),
      TlsVerifyFlag("peers-tls-verify", &C::peers_tls),
      {"peers-tls-verify-name", true, false,
       [](C& c, const std::string& v) -> Status {
         auto b = ParseBool("peers-tls-verify-name", v);
         if (!b.ok()) return b.status();
         if (!*b && !c.peers_tls) return Status::Ok();
         if (!c.peers_tls) c.peers_tls = TlsConfig{};
         c.peers_tls->verify_name = *b;
         if (*b) c.peers_tls->verify = true;  // the name is checked on a verified certificate
         return Status::Ok();
       },
       nullptr},
      TlsFlag("connect-tls-cert", &C::connect_tls, &TlsConfig::cert),
      TlsFlag("connect-tls-key", &C::connect_tls, &TlsConfig::key),
      TlsFlag("connect-tls-ca", &C::connect_tls, &TlsConfig::ca),
      TlsVerifyFlag("connect-tls-verify", &C::connect_tls),
      TlsFlag("connect-tls-server-name", &C::connect_tls, &TlsConfig::server_name),
      BoolFlag<C>("sync-writes", &C::sync_writes),
      IntFlag<C>("apply-delay-ms", &C::apply_delay_ms, 0, 600000),
      IntFlag<C>("resync-interval", &C::resync_interval_s, 0, 366LL * 86400),
      IntFlag<C>("teach-refresh", &C::teach_refresh_s, 1, 86400),
      IntFlag<C>("raw-retention-days", &C::raw_retention_days, 0, 100000),
      IntFlag<C>("minute-retention-days", &C::minute_retention_days, 0, 100000),
      IntFlag<C>("hour-retention-days", &C::hour_retention_days, 0, 100000),
      IntFlag<C>("day-retention-days", &C::day_retention_days, 0, 100000),
      IntFlag<C>("threads", &C::threads, 1, 256),
      IntFlag<C>("query-threads", &C::query_threads, 0, 64),
      IntFlag<C>("max-queries", &C::max_queries, 1, 10000),
      IntFlag<C>("query-timeout", &C::query_timeout_s, 1, 86400),
      {"sink-clickhouse", false, false,
       [](C& c, const std::string& v) -> Status {
         auto target = sink::ParseClickHouseUrl(v);
         if (!target.ok()) return target.status().WithContext("--sink-clickhouse");
         c.sink_clickhouse = v;
         return Status::Ok();
       },
       nullptr},
      StringFlag<C>("sink-clickhouse-password-file", &C::sink_clickhouse_password_file),
      StringFlag<C>("sink-clickhouse-ca", &C::sink_clickhouse_ca),
      StringFlag<C>("key-names", &C::key_names),
      {"billing-tz", false, false,
       [](C& c, const std::string& v) -> Status {
         // Checked here, so a misspelt zone stops `serve` at once instead of failing every
         // export that names no zone.
         if (auto zone = billing::LocateZone(v); !zone.ok()) {
           return Status::InvalidArgument("--billing-tz: '" + v +
                                          "' is not an IANA time zone (like UTC or Europe/Berlin)");
         }
         c.billing_tz = v;
         return Status::Ok();
       },
       nullptr},
      {"log-level", false, false,
       [](C& c, const std::string& v) -> Status {
         if (v != "debug" && v != "info" && v != "warn" && v != "error") {
           return Status::InvalidArgument(
               "--log-level: expected debug, info, warn or error, got '" + v + "'");
         }
         c.log_level = v;
         return Status::Ok();
       },
       nullptr},
  };
  return flags;
}

std::string FileKey(const std::string& flag) {
  std::string key = flag;
  for (char& ch : key) {
    if (ch == '-') ch = '_';
  }
  return key;
}

template <typename Config>
const FlagSpec<Config>* FindFlag(const std::vector<FlagSpec<Config>>& flags,
                                 const std::string& name) {
  for (const auto& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Applies a JSON config file: every key must name a flag (dashes written as underscores).
template <typename Config>
Status ApplyConfigFile(const std::vector<FlagSpec<Config>>& flags, const std::string& path,
                       Config& config) {
  if (path.empty()) return Status::InvalidArgument("--config needs a value");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("--config: cannot read '" + path + "'");
  // A configuration is a few KiB; whatever is larger (or endless, like a pipe) is not one.
  std::string text(kMaxConfigFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigFileBytes) {
    return Status::InvalidArgument("--config: '" + path + "' is larger than " +
                                   std::to_string(kMaxConfigFileBytes >> 20) + " MiB");
  }
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::InvalidArgument("--config: '" + path + "' is not a JSON object");
  }
  for (const auto& [key, value] : doc.items()) {
    const FlagSpec<Config>* spec = nullptr;
    for (const auto& f : flags) {
      if (FileKey(f.name) == key) spec = &f;
    }
    if (spec == nullptr) {
      return Status::InvalidArgument("--config: unknown key '" + key + "' in '" + path + "'");
    }
    std::vector<nlohmann::json> items;
    if (value.is_array() && spec->repeated) {
      items.assign(value.begin(), value.end());
    } else {
      items.push_back(value);
    }
    for (const auto& item : items) {
      std::string text;
      if (item.is_string()) {
        text = item.get<std::string>();
      } else if (item.is_boolean() && spec->boolean) {
        text = item.get<bool>() ? "true" : "false";
      } else if (item.is_number_integer()) {
        text = item.dump();
      } else {
        return Status::InvalidArgument("--config: key '" + key + "' has a value of the wrong type");
      }
      Status s = spec->apply(config, text);
      if (!s.ok()) return Status::InvalidArgument("--config: key '" + key + "': " + s.message());
    }
  }
  return Status::Ok();
}

// Parses `--flag value`, `--flag=value` and bare boolean flags. Positional arguments go to
// `positional` when it is given, and are an error otherwise. `--config` is skipped when
// `accepts_config` (the caller has read the file already).
template <typename Config>
Status ApplyArgs(const std::vector<FlagSpec<Config>>& flags, const std::vector<std::string>& args,
                 Config& config, std::vector<std::string>* positional,
                 bool accepts_config = false) {
  std::set<std::string> cleared;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 3 || arg.rfind("--", 0) != 0) {
      if (positional != nullptr && (arg == "-" || arg.rfind("-", 0) != 0)) {
        positional->push_back(arg);
        continue;
      }
      return Status::InvalidArgument("unexpected argument '" + arg + "'");
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "config" && accepts_config) {
      if (!value && ++i < args.size()) value = args[i];
      if (!value || value->empty()) return Status::InvalidArgument("--config needs a value");
      continue;  // read before the other flags
    }
    const FlagSpec<Config>* spec = FindFlag(flags, name);
    if (spec == nullptr) return Status::InvalidArgument("unknown flag --" + name);
    if (!value) {
      if (spec->boolean) {
        // `--flag false` reads naturally; a following word that is not a boolean is left alone.
        bool next_is_bool = i + 1 < args.size() && ParseBool(name, args[i + 1]).ok();
        value = next_is_bool ? args[++i] : "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Status::InvalidArgument("--" + name + " needs a value");
      }
    }
    if (spec->repeated && !cleared.count(name)) {
      spec->clear(config);
      cleared.insert(name);
    }
    Status s = spec->apply(config, *value);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

std::optional<std::string> FindConfigPath(const std::vector<std::string>& args) {
  std::optional<std::string> path;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) path = args[i + 1];
    if (args[i].rfind("--config=", 0) == 0) path = args[i].substr(9);
  }
  return path;
}

}  // namespace

Result<HostPort> ParseHostPort(const std::string& text) {
  HostPort hp;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument("expected [IPV6]:PORT, got '" + text + "'");
    }
    hp.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return Status::InvalidArgument("expected HOST:PORT, got '" + text + "'");
    }
    hp.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (hp.host.find(':') != std::string::npos) {
      return Status::InvalidArgument("write an IPv6 address as [ADDR]:PORT, got '" + text + "'");
    }
  }
  auto port = ParseInteger("port", port_text, 0, 65535);
  if (!port.ok() || hp.host.empty()) {
    return Status::InvalidArgument("expected HOST:PORT with a port from 0 to 65535, got '" + text +
                                   "'");
  }
  hp.port = static_cast<uint16_t>(*port);
  return hp;
}

Result<ConnectTarget> ParseConnectTarget(const std::string& text) {
  auto at = text.find('@');
  if (at == std::string::npos || at == 0) {
    return Status::InvalidArgument("expected PEER@HOST:PORT, got '" + text + "'");
  }
  auto address = ParseHostPort(text.substr(at + 1));
  if (!address.ok()) return address.status();
  if (address->port == 0) {
    return Status::InvalidArgument("port 0 cannot be dialed in '" + text + "'");
  }
  return ConnectTarget{text.substr(0, at), *address};
}

Result<ServeConfig> ParseServeArgs(const std::vector<std::string>& args) {
  auto flags = ServeFlags();
  ServeConfig config;
  if (auto path = FindConfigPath(args)) {
    Status s = ApplyConfigFile(flags, *path, config);
    if (!s.ok()) return s;
  }
  Status s = ApplyArgs(flags, args, config, nullptr, /*accepts_config=*/true);
  if (!s.ok()) return s;
  return config;
}

Result<ExportConfig> ParseExportArgs(const std::vector<std::string>& args) {
  using C = ExportConfig;
  std::vector<FlagSpec<C>> flags = {
      StringFlag<C>("data", &C::data),
      StringFlag<C>("period", &C::period),
      StringFlag<C>("tz", &C::tz),
      StringFlag<C>("from", &C::from),
      StringFlag<C>("to", &C::to),
      StringFlag<C>("table", &C::table),
      StringFlag<C>("metric", &C::metric),
      {"format", false, false,
       [](C& c, const std::string& v) -> Status {
         if (v != "csv" && v != "json") {
           return Status::InvalidArgument("--format: expected csv or json, got '" + v + "'");
         }
         c.format = v;
         return Status::Ok();
       },
       nullptr},
      StringFlag<C>("out", &C::out),
      BoolFlag<C>("per-source", &C::per_source),
      BoolFlag<C>("excel-safe", &C::excel_safe),
      BoolFlag<C>("sha256", &C::write_sha256),
      {"layout", false, false,
       [](C& c, const std::string& v) -> Status {
         if (v != "rows" && v != "invoice") {
           return Status::InvalidArgument("--layout: expected rows or invoice, got '" + v + "'");
         }
         c.layout = v;
         return Status::Ok();
       },
       nullptr},
      StringFlag<C>("bytes-unit", &C::bytes_unit),
      StringFlag<C>("key-names", &C::key_names),
  };
  ExportConfig config;
  Status s = ApplyArgs(flags, args, config, nullptr);
  if (!s.ok()) return s;
  if (config.period.has_value() == (config.from.has_value() || config.to.has_value())) {
    return Status::InvalidArgument("give either --period YYYY-MM or both --from and --to");
  }
  if (!config.period && (!config.from || !config.to)) {
    return Status::InvalidArgument("--from and --to go together");
  }
  if (config.excel_safe && config.format != "csv") {
    return Status::InvalidArgument("--excel-safe: applies to --format csv only");
  }
  if (config.write_sha256 && config.out.empty()) {
    return Status::InvalidArgument("--sha256 needs --out FILE");
  }
  return config;
}

Result<DecodeConfig> ParseDecodeArgs(const std::vector<std::string>& args) {
  using C = DecodeConfig;
  std::vector<FlagSpec<C>> flags = {BoolFlag<C>("summary", &C::summary)};
  DecodeConfig config;
  std::vector<std::string> positional;
  Status s = ApplyArgs(flags, args, config, &positional);
  if (!s.ok()) return s;
  if (positional.size() > 1)
    return Status::InvalidArgument("decode reads one FILE (or - for stdin)");
  if (!positional.empty()) config.input = positional.front();
  return config;
}

Result<BackupConfig> ParseBackupArgs(const std::vector<std::string>& args) {
  using C = BackupConfig;
  std::vector<FlagSpec<C>> flags = {StringFlag<C>("data", &C::data)};
  BackupConfig config;
  std::vector<std::string> positional;
  Status s = ApplyArgs(flags, args, config, &positional);
  if (!s.ok()) return s;
  if (positional.size() != 1) return Status::InvalidArgument("backup needs one target DIR");
  config.target = positional.front();
  return config;
}

}  // namespace stickmeter::app
