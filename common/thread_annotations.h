// Clang thread-safety annotations, and mutexes that carry them.
//
// The macros expand to Clang's capability attributes when the compiler has them and to nothing
// otherwise (GCC), so they document lock rules everywhere and are checked where Clang builds
// with -Wthread-safety (cmake -DSTICKMETER_THREAD_SAFETY=ON; see tsdb/README.md). Write
// them on the members and methods of internal classes:
//
//   mutable Mutex mu_;
//   uint64_t written_out_ GUARDED_BY(mu_) = 0;
//   void Enqueue(Row row) EXCLUDES(mu_);        // takes mu_ itself
//   void TrimLocked() REQUIRES(mu_);            // the caller holds mu_
//
// std::mutex and std::shared_mutex carry no annotations in libstdc++, so annotated code locks
// the wrappers below (Mutex, SharedMutex, MutexLock, ReaderLock, WriterLock, CondVar): thin
// and header-only, with the cost of the std types they wrap. Modelled on LevelDB's
// port/thread_annotations.h and Abseil's Mutex.
//
// Thread-safety: as the std types they wrap. A Mutex is not recursive.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#if defined(__clang__) && !defined(SWIG)
#define STICKMETER_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define STICKMETER_THREAD_ANNOTATION(x)
#endif

// A class that is a lock (Mutex), or a scoped holder of one (MutexLock).
#define CAPABILITY(x) STICKMETER_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY STICKMETER_THREAD_ANNOTATION(scoped_lockable)
// A member read or written only with the lock held (shared suffices to read).
#define GUARDED_BY(x) STICKMETER_THREAD_ANNOTATION(guarded_by(x))
// The pointee of a pointer member is guarded by the lock.
#define PT_GUARDED_BY(x) STICKMETER_THREAD_ANNOTATION(pt_guarded_by(x))
// Lock order: this lock is taken before / after the given ones.
#define ACQUIRED_BEFORE(...) STICKMETER_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) STICKMETER_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
// The caller holds the lock (exclusively / at least shared).
#define REQUIRES(...) STICKMETER_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) STICKMETER_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
// The function takes the lock and returns holding it / releases a lock the caller held.
#define ACQUIRE(...) STICKMETER_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) STICKMETER_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) STICKMETER_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) STICKMETER_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) STICKMETER_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) STICKMETER_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// The caller must not hold the lock: the function takes it.
#define EXCLUDES(...) STICKMETER_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// Tells the analysis the lock is held here (checked at run time by nothing: use sparingly).
#define ASSERT_CAPABILITY(x) STICKMETER_THREAD_ANNOTATION(assert_capability(x))
#define RETURN_CAPABILITY(x) STICKMETER_THREAD_ANNOTATION(lock_returned(x))
// For code the analysis cannot follow; say why next to each use.
#define NO_THREAD_SAFETY_ANALYSIS STICKMETER_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace stickmeter {

class CondVar;

// std::mutex with annotations.
class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // Tells the analysis the caller holds the lock; checks nothing.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// std::shared_mutex with annotations: readers share it, a writer holds it alone.
class CAPABILITY("shared_mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  void LockShared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds a Mutex for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Holds a SharedMutex shared for its scope.
class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex* mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_->LockShared(); }
  ~ReaderLock() RELEASE() { mu_->UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// Holds a SharedMutex exclusively for its scope.
class SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~WriterLock() RELEASE() { mu_->Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// A condition variable used with a Mutex the caller holds. Waits may wake spuriously: wait in a
// loop on the condition, as with std::condition_variable.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases *mu while blocked; holds it again on return.
  void Wait(Mutex* mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // As Wait, for at most `timeout`. False on timeout.
  template <typename Rep, typename Period>
  bool WaitFor(Mutex* mu, std::chrono::duration<Rep, Period> timeout) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool signalled = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  // As Wait, until `deadline`. False on timeout.
  template <typename Clock, typename Duration>
  bool WaitUntil(Mutex* mu, std::chrono::time_point<Clock, Duration> deadline) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool signalled = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace stickmeter
