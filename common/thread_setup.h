// Naming a long-lived thread and lowering its priority, as every stage of stickmeter does first
// thing in its thread: a name shows in `top -H` and profilers; a positive nice value lets the
// threads whose delays peers wait on (the writer, the network threads) go first when the cores
// are busy (on Linux, nice applies to one thread).
//
// Thread-safety: acts on the calling thread only. Failure: the name is cut to 15 characters;
// SetUpThisThread returns false when the priority could not be changed (it is then unchanged).
#pragma once

namespace stickmeter {

// `name`: at most 15 characters are kept. `nice`: 0 leaves the priority as it is.
bool SetUpThisThread(const char* name, int nice = 0);

}  // namespace stickmeter
