#include "common/thread_setup.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace stickmeter {

bool SetUpThisThread(const char* name, int nice) {
  // pthread_setname_np refuses names over 15 characters rather than cutting them.
  const std::string cut(name, strnlen(name, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
  if (nice == 0) return true;
  return setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) == 0;
}

}  // namespace stickmeter
