// Wall-clock helpers. All stored and exchanged times are Unix milliseconds, UTC.
#pragma once

#include <cstdint>
#include <string>

namespace stickmeter {

// Milliseconds since the Unix epoch, from the system clock.
int64_t NowUnixMs();

// Milliseconds from a monotonic clock, for timeouts and latencies only.
int64_t MonotonicMs();

// `2026-11-23T16:09:55.123Z`.
std::string FormatRfc3339Utc(int64_t unix_ms);

}  // namespace stickmeter
