// stickmeter: parses the command line and wires the components together.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "version") == 0) {
    std::printf("stickmeter %s\n", STICKMETER_VERSION);
    return 0;
  }
  std::fprintf(stderr, "stickmeter: usage: stickmeter serve|decode|export|backup|version\n");
  return 2;
}
