// The server's billing time zone (`serve --billing-tz`), kept in the store beside the data.
//
// `serve` records its zone in the store at start; `stickmeter export` without --tz reads it
// from the data directory, so a CLI export of "November" covers the same instants as the API's
// and the UI's, which take the zone from the running server. A store no `serve` has recorded a
// zone in (or one written before this setting existed) reads as UTC, the default of both.
//
// Thread-safety: as the store's Settings and WriteSetting (any thread).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "tsdb/store.h"

namespace stickmeter::app {

// The setting's name in the store (tsdb::Store::Settings).
inline constexpr const char* kBillingZoneSetting = "server/billing_tz";

// Records `zone` unless the store holds it already (each change is in the settings history).
Status RememberBillingZone(tsdb::Store& store, const std::string& zone, int64_t now_ms);

// The zone recorded by the last `serve`, or "UTC" when none was.
Result<std::string> StoredBillingZone(tsdb::Store& store);

}  // namespace stickmeter::app
