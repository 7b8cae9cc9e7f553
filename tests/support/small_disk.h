// A small tmpfs mounted for one test, to fill and free: what a full disk does to the store.
//
// Mounting needs root (CI runs as root); without it mounted() is false and error() says why,
// for the test to GTEST_SKIP with. Not thread-safe; unmounts (lazily) on destruction.
#pragma once

#include <string>

namespace stickmeter::testing {

class SmallDisk {
 public:
  explicit SmallDisk(int mib);
  ~SmallDisk();
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }
  // Takes every free byte with a file of its own (again after the disk was freed or gave back
  // space). False if the file cannot be created.
  bool Fill();
  // Removes that file.
  bool Free();

 private:
  std::string path_;
  std::string error_;
  bool mounted_ = false;
};

}  // namespace stickmeter::testing
