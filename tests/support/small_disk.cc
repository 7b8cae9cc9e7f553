#include "tests/support/small_disk.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace stickmeter::testing {

SmallDisk::SmallDisk(int mib) {
  char tmpl[] = "/tmp/stickmeter-disk-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    error_ = std::string("mkdtemp: ") + std::strerror(errno);
    return;
  }
  path_ = tmpl;
  const std::string size = "size=" + std::to_string(mib) + "m";
  if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, size.c_str()) == 0) {
    mounted_ = true;
  } else {
    error_ = "mount(2) of a tmpfs: " + std::string(std::strerror(errno)) + " (needs root)";
  }
}

SmallDisk::~SmallDisk() {
  if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  if (!path_.empty()) ::rmdir(path_.c_str());
}

bool SmallDisk::Fill() {
  const int fd = ::open(Sub("filler").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const std::string chunk(1 << 20, 'f');
  for (size_t n = chunk.size(); n > 0; n /= 2) {
    while (::write(fd, chunk.data(), n) == static_cast<ssize_t>(n)) {
    }
  }
  ::close(fd);
  return true;
}

bool SmallDisk::Free() { return ::unlink(Sub("filler").c_str()) == 0; }

}  // namespace stickmeter::testing
