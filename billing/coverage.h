// Data completeness of a billing period, as the exports and the API write it: the JSON object
// of a tsdb::Coverage (GET /api/v1/coverage, the `coverage` member of a JSON export) and the
// one-line summary `stickmeter export` warns with (docs/api.md "Coverage", docs/exports.md).
//
// Pure functions but for ExportCoverage, which asks the store; thread-safe. Failure: a store
// that keeps no coverage record leaves an export without one (nullopt), never failed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tsdb/query.h"

namespace stickmeter::billing {

// Appends `c` as a JSON object.
void AppendCoverageJson(std::string& out, const tsdb::Coverage& c);

// One line for a person: "" when complete, else what is missing, e.g. "partly covered: lb2 was
// disconnected 3 times, 42 min in total" or "no data: stickmeter was not receiving from any
// node before 2026-11-03T14:00:00Z".
std::string CoverageSummary(const tsdb::Coverage& c);

// The coverage of [from_ms, to_ms) as of `now_ms`, or nullopt when the store keeps none.
std::optional<tsdb::Coverage> ExportCoverage(tsdb::QueryService& store, int64_t from_ms,
                                             int64_t to_ms, int64_t now_ms);

}  // namespace stickmeter::billing
