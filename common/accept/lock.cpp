// The strategies that let only one worker into accept() at a time.
//
// Before Linux fixed the accept() herd, and on systems where select()/poll()
// on a listener still wakes everyone, servers serialized accept with a lock:
// idle workers sleep on the lock (which wakes one at a time), and only the
// holder waits in accept. UNP ch. 30 measures both locks below (serv03,
// serv04); Apache's prefork MPM calls it the accept mutex. The cost is a lock
// round trip per connection, counted here as lock_waits when the lock was busy.
#include "accept/accept.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"
#include "base/shm.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <cstdlib>
#include <cstring>

namespace sl {
namespace {

/// lock-fcntl: a write lock on a temporary file every worker inherited.
/// fcntl locks belong to the process, so the kernel releases the lock of a
/// worker that dies, however it dies. The file is unlinked at once: it
/// needs no name, only the open descriptor.
class FcntlLockAccept final : public AcceptStrategy {
public:
    explicit FcntlLockAccept(int listen_fd) : listen_fd_(listen_fd) {
        char path[] = "/tmp/serverlab-accept-lock-XXXXXX";
        lock_.reset(::mkostemp(path, O_CLOEXEC));
        if (!lock_) die("mkostemp", errno);
        ::unlink(path);
    }

    Fd accept(AcceptStats& stats) override {
        if (!lock(stats)) return Fd();  // interrupted by a stop
        Fd conn = count_wakeup(try_accept(listen_fd_), stats);
        // Let the next worker in before serving. Unlocking a lock we hold
        // cannot wait or be refused: a failure is a bug (EBADF), and going on
        // would leave every other worker stuck behind a lock nobody holds.
        if (set(F_UNLCK, F_SETLK) != 0) die("fcntl F_UNLCK");
        return conn;
    }

private:
    bool lock(AcceptStats& stats) {
        if (set(F_WRLCK, F_SETLK) == 0) return true;  // free: taken at once
        stats.lock_waits.fetch_add(1, std::memory_order_relaxed);
        while (set(F_WRLCK, F_SETLKW) < 0) {  // sleep until it is free
            if (errno != EINTR) die("fcntl F_SETLKW", errno);
            if (stop_requested()) return false;
        }
        return true;
    }

    int set(short type, int command) {
        struct flock fl {};
        fl.l_type = type;
        fl.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file
        return ::fcntl(lock_.get(), command, &fl);
    }

    int listen_fd_;
    Fd lock_;
};

/// lock-mutex: accept serialized by a robust process-shared mutex (above).
///
/// A waiter in pthread_mutex_lock() is not woken by a signal: POSIX says it
/// never returns EINTR, and glibc goes back to sleeping on the futex after
/// the handler. Meanwhile the holder may sit in accept() until a client
/// comes. So a worker asked to leave (a HUP, TTOU, a stop) while it waits
/// for the lock would stay until a connection arrives, or until its SIGKILL.
/// The wait is therefore cut into slices of kLockSliceMs, with a look at
/// the stop flag between two: a leaving waiter is gone within a slice. The
/// price is a few wakeups a second per waiting worker on an idle server,
/// next to the one wakeup per connection the lock exists to keep.
class MutexLockAccept final : public AcceptStrategy {
public:
    explicit MutexLockAccept(int listen_fd) : listen_fd_(listen_fd), mutex_(new_robust_mutex()) {}

    Fd accept(AcceptStats& stats) override {
        if (!lock(stats)) return Fd();  // a stop came while we waited
        Fd conn;
        if (!stop_requested()) conn = count_wakeup(try_accept(listen_fd_), stats);
        pthread_mutex_unlock(mutex_);
        return conn;
    }

private:
    static constexpr int64_t kLockSliceMs = 250;

    bool lock(AcceptStats& stats) {
        int rc = pthread_mutex_trylock(mutex_);
        if (rc == EBUSY) {
            stats.lock_waits.fetch_add(1, std::memory_order_relaxed);
            while ((rc = lock_within_a_slice()) == ETIMEDOUT)
                if (stop_requested()) return false;
        }
        if (recover_if_owner_died(mutex_, rc, "accept mutex") != 0) die("locking the accept mutex", rc);
        return true;
    }

    // pthread_mutex_clocklock (glibc 2.30) on the monotonic clock: a step of
    // the wall clock cannot stretch a slice. ThreadSanitizer's runtime (gcc
    // 12) intercepts pthread_mutex_timedlock but not clocklock: a lock taken
    // by clocklock is invisible to it, and our unlock is then reported as
    // the unlock of a free mutex. The sanitizer build (./lab tsan) therefore
    // waits with timedlock, on the wall clock, which it does see (except a
    // lock it returns with EOWNERDEAD, after a holder died: rare enough).
    // __SANITIZE_THREAD__ is gcc's name for -fsanitize=thread, the build here.
    int lock_within_a_slice() {
#if defined(__SANITIZE_THREAD__)
        const timespec until = clock_after_ms(CLOCK_REALTIME, kLockSliceMs);
        return pthread_mutex_timedlock(mutex_, &until);
#else
        const timespec until = clock_after_ms(CLOCK_MONOTONIC, kLockSliceMs);
        return pthread_mutex_clocklock(mutex_, CLOCK_MONOTONIC, &until);
#endif
    }

    int listen_fd_;
    pthread_mutex_t* mutex_;  // in shared memory, made before the first fork
};

}  // namespace

AcceptMutex::AcceptMutex() : mutex_(new_robust_mutex()) {}

bool AcceptMutex::try_lock() {
    auto* m = static_cast<pthread_mutex_t*>(mutex_);
    int rc = recover_if_owner_died(m, pthread_mutex_trylock(m), "accept mutex");
    if (rc == EBUSY) return false;
    if (rc != 0) die("pthread_mutex_trylock", rc);
    return true;
}

void AcceptMutex::unlock() {
    pthread_mutex_unlock(static_cast<pthread_mutex_t*>(mutex_));
}

std::unique_ptr<AcceptStrategy> make_lock_strategy(Accept strategy, int listen_fd) {
    if (strategy == Accept::lock_fcntl) return std::make_unique<FcntlLockAccept>(listen_fd);
    return std::make_unique<MutexLockAccept>(listen_fd);
}

}  // namespace sl
