// The parts the two export layouts share (billing/export.cc: rows; billing/invoice.cc: the
// invoice layout, one row per key). Not part of the billing library's interface.
//
// Thread-safety: as billing/export.h; a ChunkedSink belongs to one export on one thread.
// Ownership: ChunkedSink borrows the writer for its lifetime.
#pragma once

#include <openssl/evp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "billing/export.h"

namespace stickmeter::billing::internal {

// Hashes and buffers output, handing full chunks to the writer.
class ChunkedSink {
 public:
  explicit ChunkedSink(const std::function<bool(std::string_view)>& write)
      : write_(write), md_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    EVP_DigestInit_ex(md_.get(), EVP_sha256(), nullptr);
    buffer_.reserve(kExportChunkBytes + 1024);
  }

  std::string& buffer() { return buffer_; }

  // Flushes when the buffer is full (or always with `force`). False when the reader gave up.
  bool Flush(bool force) {
    if (buffer_.empty() || (!force && buffer_.size() < kExportChunkBytes)) return true;
    EVP_DigestUpdate(md_.get(), buffer_.data(), buffer_.size());
    bool go_on = write_(buffer_);
    buffer_.clear();
    return go_on;
  }

  std::string HexDigest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(md_.get(), digest, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
      hex += kHex[digest[i] >> 4];
      hex += kHex[digest[i] & 15];
    }
    return hex;
  }

 private:
  const std::function<bool(std::string_view)>& write_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md_;
  std::string buffer_;
};

// The JSON output's opening fields, which both layouts share: `{"period":...` through `to_ms`.
void AppendJsonPeriod(std::string& out, const ResolvedExport& r);
// Its `per_source`, `partial` and (when known) `coverage` fields, before the layout's rows.
void AppendJsonFlags(std::string& out, const ResolvedExport& r);
// `text` as a JSON string, or null.
void AppendJsonOrNull(std::string& out, const std::optional<std::string>& text);

// ResolveExport's part for `layout`, `bytes_unit`, `names` and, with the invoice layout, the
// `table` and `metric` list: InvalidArgument naming the parameter.
Status ResolveLayout(const ExportRequest& request, ResolvedExport& r);
// CheckExportFilters for the invoice layout: the table exists, every listed metric is one of
// its counters.
Status CheckInvoiceFilters(tsdb::QueryService& store, const ResolvedExport& r);
// StreamExport for the invoice layout.
Status StreamInvoice(tsdb::QueryService& store, const ResolvedExport& r,
                     const std::function<bool(std::string_view)>& write, std::string* sha256_hex);

}  // namespace stickmeter::billing::internal
