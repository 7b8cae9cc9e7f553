// Runs the export engine (billing::WriteExport) against a FakeStore and keeps what it wrote:
// the body, its SHA-256 and how it was chunked. Shared by the export and invoice tests.
// Single-threaded use per test.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

#include "billing/export.h"
#include "tests/http/fake_store.h"

namespace stickmeter::billing::testing {

struct Output {
  Status status;
  std::string body;
  std::string sha;
  size_t chunks = 0;
  size_t max_chunk = 0;
};

inline Output RunExport(http::testing::FakeStore& store, const ExportRequest& req) {
  Output out;
  out.status = WriteExport(
      store, req,
      [&](std::string_view chunk) {
        out.body += chunk;
        ++out.chunks;
        out.max_chunk = std::max(out.max_chunk, chunk.size());
      },
      &out.sha);
  return out;
}

}  // namespace stickmeter::billing::testing
