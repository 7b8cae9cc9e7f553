// Test support: the SHA-256 of a body as lowercase hex, computed independently of the server's
// own digest code, to check the X-Content-SHA256 of exports.
#pragma once

#include <openssl/evp.h>

#include <cstdio>
#include <string>
#include <string_view>

namespace stickmeter::http {

inline std::string Sha256Hex(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", d[i]);
    hex += buf;
  }
  return hex;
}

}  // namespace stickmeter::http
