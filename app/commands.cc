// `stickmeter decode`, `export` and `backup`.
#include "app/commands.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <system_error>

#include "app/billing_zone.h"
#include "billing/coverage.h"
#include "billing/export.h"
#include "billing/time_parse.h"
#include "common/time.h"
#include "ingest/decode_json.h"
#include "tsdb/store.h"

namespace stickmeter::app {
namespace {

int Fail(const std::string& reason) {
  std::fprintf(stderr, "stickmeter: %s\n", reason.c_str());
  return 1;
}

Result<std::unique_ptr<tsdb::Store>> OpenForReading(const std::string& data) {
  std::error_code ec;
  if (!std::filesystem::exists(data, ec)) {
    return Status::NotFound("data directory " + data +
                            (ec ? ": " + ec.message() : std::string(" does not exist")));
  }
  tsdb::StoreOptions options;
  options.path = data;
  auto store = tsdb::Store::OpenReadOnly(options);
  if (!store.ok()) return store.status().WithContext("data directory " + data);
  return store;
}

// The export engine names its parameters as the HTTP API spells them ("period: ..."); on the
// command line the same reason names the flag ("--period: ...").
std::string AsFlagError(const std::string& message) {
  for (const char* name : {"period", "tz", "from", "to", "table", "metric", "format", "layout"}) {
    const std::string prefix = std::string(name) + ":";
    if (message.rfind(prefix, 0) == 0) return "--" + message;
  }
  if (message.rfind("excel_safe:", 0) == 0) return "--excel-safe:" + message.substr(11);
  if (message.rfind("bytes_unit:", 0) == 0) return "--bytes-unit:" + message.substr(11);
  return message;
}

}  // namespace

int RunDecodeCommand(const DecodeConfig& config) {
  std::ios::sync_with_stdio(false);
  if (config.input == "-") return ingest::RunDecode(std::cin, std::cout, config.summary);
  std::ifstream in(config.input, std::ios::binary);
  if (!in) return Fail("cannot read '" + config.input + "'");
  return ingest::RunDecode(in, std::cout, config.summary);
}

int RunExport(const ExportConfig& config) {
  billing::ExportRequest request;
  request.period = config.period;
  // Without --tz the zone comes from the store (below); UTC meanwhile checks the period's form.
  request.tz = config.tz.value_or("UTC");
  if (config.from) {
    auto from = billing::ParseTime(*config.from);
    if (!from.ok()) return Fail("--from: " + from.status().message());
    request.from_ms = *from;
  }
  if (config.to) {
    auto to = billing::ParseTime(*config.to);
    if (!to.ok()) return Fail("--to: " + to.status().message());
    request.to_ms = *to;
  }
  request.table = config.table;
  request.metric = config.metric;
  request.format = config.format;
  request.per_source = config.per_source;
  request.excel_safe = config.excel_safe;
  request.layout = config.layout;
  request.bytes_unit = config.bytes_unit;
  request.now_ms = NowUnixMs();
  // A bad period or time is reported as such, whether or not the data directory is usable.
  if (auto resolved = billing::ResolveExport(request); !resolved.ok()) {
    return Fail(AsFlagError(resolved.status().message()));
  }
  if (!config.key_names.empty()) {
    if (config.layout != "invoice") return Fail("--key-names: applies to --layout invoice only");
    auto names = billing::KeyNames::Load(config.key_names);
    if (!names.ok()) return Fail("--key-names: " + names.status().message());
    request.names = *names;
  }
  auto store = OpenForReading(config.data);
  if (!store.ok()) return Fail(store.status().message());
  if (!config.tz) {
    // The zone `serve --billing-tz` recorded: the same "November" as the API and the UI.
    auto zone = StoredBillingZone(**store);
    if (!zone.ok()) return Fail("data directory " + config.data + ": " + zone.status().message());
    request.tz = *zone;
  }

  std::ofstream file;
  std::ostream* out = &std::cout;
  const std::string partial_path = config.out + ".partial";
  if (!config.out.empty()) {
    file.open(partial_path, std::ios::binary | std::ios::trunc);
    if (!file) return Fail("--out: cannot write '" + config.out + "'");
    out = &file;
  }
  std::string sha256;
  Status s = billing::WriteExport(
      **store, request, [out](std::string_view chunk) { out->write(chunk.data(), chunk.size()); },
      &sha256);
  if (!s.ok()) {
    std::error_code ignored;
    if (!config.out.empty()) std::filesystem::remove(partial_path, ignored);
    return Fail(AsFlagError(s.message()));
  }
  out->flush();
  if (!*out) return Fail("writing the export failed");
  if (!config.out.empty()) {
    file.close();
    // Rename last, so a reader never sees half an export under the final name.
    std::error_code ec;
    std::filesystem::rename(partial_path, config.out, ec);
    if (ec) {
      std::error_code ignored;
      std::filesystem::remove(partial_path, ignored);
      return Fail("--out: cannot write '" + config.out + "': " + ec.message());
    }
    if (config.write_sha256) {
      std::ofstream digest(config.out + ".sha256");
      digest << sha256 << "  " << std::filesystem::path(config.out).filename().string() << "\n";
      if (!digest) return Fail("cannot write '" + config.out + ".sha256'");
    }
  }
  // A period the store has no complete data for: one line on stderr, so that zero rows are
  // not read as zero usage. The output's bytes stay those of the request.
  if (auto resolved = billing::ResolveExport(request); resolved.ok()) {
    if (auto c =
            billing::ExportCoverage(**store, resolved->from_ms, resolved->to_ms, request.now_ms)) {
      const std::string why = billing::CoverageSummary(*c);
      if (!why.empty()) std::fprintf(stderr, "stickmeter: warning: %s\n", why.c_str());
    }
  }
  return 0;
}

int RunBackup(const BackupConfig& config) {
  auto store = OpenForReading(config.data);
  if (!store.ok()) return Fail(store.status().message());
  std::error_code ec;
  if (std::filesystem::exists(config.target, ec) || ec) {
    return Fail("backup target " + config.target +
                (ec ? ": " + ec.message() : std::string(" already exists")));
  }
  if (Status s = (*store)->Backup(config.target); !s.ok()) return Fail("backup: " + s.message());
  std::printf("backup written to %s\n", config.target.c_str());
  return 0;
}

}  // namespace stickmeter::app
