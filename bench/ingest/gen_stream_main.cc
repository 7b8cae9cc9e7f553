// gen_stream: writes a synthetic peers stream (see gen_stream.h) to a file, for benchmarks and
// for trying `stickmeter decode` on a large input, and prints what it holds as JSON.
//   gen_stream [-n UPDATES] [--customers N] [--seed S] -o FILE
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "bench/ingest/gen_stream.h"

int main(int argc, char** argv) {
  stickmeter::bench::GenStreamOptions options;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (value == nullptr ||
        (arg != "-n" && arg != "--customers" && arg != "--seed" && arg != "-o")) {
      std::cerr << "usage: gen_stream [-n UPDATES] [--customers N] [--seed S] -o FILE\n";
      return 2;
    }
    ++i;
    if (arg == "-o") {
      path = value;
    } else {
      const unsigned long long n = std::strtoull(value, nullptr, 10);
      if (arg == "-n") options.updates = n;
      if (arg == "--customers") options.customers = static_cast<uint32_t>(n);
      if (arg == "--seed") options.seed = n;
    }
  }
  if (path.empty()) {
    std::cerr << "gen_stream: -o FILE is required\n";
    return 2;
  }
  std::string bytes;
  const auto expect = stickmeter::bench::GeneratePeersStream(options, bytes);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) {
    std::cerr << "gen_stream: cannot write " << path << "\n";
    return 1;
  }
  std::cout << stickmeter::bench::ExpectToJson(expect) << "\n";
  return 0;
}
