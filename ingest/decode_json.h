// The engine of `stickmeter decode [--summary] [FILE|-]` (docs/cli.md): a captured peers byte
// stream (what follows the handshake's `200\n`) in, one JSON object per message out.
//
// Each message becomes one line, with the same fields as the `decoded.jsonl` files of real
// captures minus `recv_ms`: `offset` (in the stream), `type` (control, error, define, switch,
// ack, update, unknown) and the type's fields. `--summary` prints instead one object with the
// number of messages of each type and of updates per table. Malformed input prints what came
// before it (or the summary), then `{"type":"error","offset":N,"reason":"..."}`, and returns 1.
//
// Streams in fixed-size chunks: memory stays constant whatever the input size. Pure functions
// of their arguments; safe to call from several threads on different streams.
#pragma once

#include <istream>
#include <ostream>
#include <string_view>

namespace stickmeter::ingest {

// Decodes `in` to `out`. Returns 0 when the whole stream decoded, 1 when it is malformed or
// ends inside a message (after printing the error line), 2 when reading `in` failed.
int RunDecode(std::istream& in, std::ostream& out, bool summary);

// Same for a file path, or standard input when `path` is "-" (read with stdio, which is faster
// than std::cin). Returns 2 with a one-line reason on `err` when the file cannot be opened.
int RunDecodeFile(std::string_view path, std::ostream& out, std::ostream& err, bool summary);

}  // namespace stickmeter::ingest
