// inject.cpp: a fault-injection library for the tests, loaded with LD_PRELOAD.
//
// Some failures cannot be caused from outside: setsockopt() or sigaction()
// failing is not something a test can provoke through the kernel. This
// library stands in front of libc's function (the dynamic linker resolves a
// symbol to the first library that defines it; dlsym(RTLD_NEXT) finds the
// real one behind it) and makes the named calls fail. It is how the tests
// check that every return value that matters is looked at.
//
// SERVERLAB_FAULTS is a comma-separated list of CALL[:WHAT][@N]:
//   setsockopt:SO_RCVTIMEO   setsockopt(..., SO_RCVTIMEO, ...) fails with ENOMEM
//   setsockopt:SO_SNDTIMEO   the same for SO_SNDTIMEO
//   sigaction:SIGTERM        installing a handler for SIGTERM fails with EINVAL
//   epoll_ctl                every epoll_ctl() fails with ENOMEM
//   pthread_mutex_consistent  fails with EINVAL (a robust mutex that cannot be recovered)
//   accept4                  accept4() fails with ECONNABORTED (as if the client had
//                            reset in the backlog), leaving the queue as it is
//   fork:slow-parent         fork() works, but returns in the parent only after 1.5 s
//                            (a scheduler that runs the child first and keeps the
//                            parent waiting: what a loaded machine may do)
//   send:EAGAIN              send() fails with EAGAIN: the socket's buffer is full
//   sendmsg:EAGAIN           the same for sendmsg() (pass-fd's master passing a connection)
//   accept4:slow             accept4() waits 300 ms before the real call (a worker
//                            whose SIGTERM lands between its stop check and accept)
//   epoll_wait:slow          epoll_wait() returns its events 1 s late (a worker woken
//                            for a connection that is told to stop before it accepts)
// With @N only the N-th matching call fails (counted per process), then none.
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// Does the fault `call:what` apply to this call? Counts matching calls for @N.
bool should_fail(const char* call, const char* what) {
    static std::atomic<int> counts[16];
    const char* spec = std::getenv("SERVERLAB_FAULTS");
    if (spec == nullptr) return false;
    std::string name = std::string(call) + (what ? std::string(":") + what : "");
    std::string list = spec;
    size_t index = 0;
    for (size_t start = 0; start <= list.size(); ++index) {
        size_t end = list.find(',', start);
        std::string item = list.substr(start, end == std::string::npos ? std::string::npos : end - start);
        start = end == std::string::npos ? list.size() + 1 : end + 1;
        size_t at = item.find('@');
        if (item.substr(0, at) != name) continue;
        if (at == std::string::npos) return true;
        int nth = std::atoi(item.c_str() + at + 1);
        return ++counts[index % 16] == nth;
    }
    return false;
}

template <class F>
F real(const char* symbol) {
    return reinterpret_cast<F>(::dlsym(RTLD_NEXT, symbol));
}

const char* option_name(int level, int option) {
    if (level != SOL_SOCKET) return "";
    if (option == SO_RCVTIMEO) return "SO_RCVTIMEO";
    if (option == SO_SNDTIMEO) return "SO_SNDTIMEO";
    return "";
}

}  // namespace

extern "C" {

int setsockopt(int fd, int level, int option, const void* value, socklen_t length) {
    if (should_fail("setsockopt", option_name(level, option))) {
        errno = ENOMEM;
        return -1;
    }
    return real<int (*)(int, int, int, const void*, socklen_t)>("setsockopt")(fd, level, option, value, length);
}

int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
    if (act != nullptr && should_fail("sigaction", sigabbrev_np(sig) ? (std::string("SIG") + sigabbrev_np(sig)).c_str() : "")) {
        errno = EINVAL;
        return -1;
    }
    return real<int (*)(int, const struct sigaction*, struct sigaction*)>("sigaction")(sig, act, old);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) {
    if (should_fail("epoll_ctl", nullptr)) {
        errno = ENOMEM;
        return -1;
    }
    return real<int (*)(int, int, int, struct epoll_event*)>("epoll_ctl")(epfd, op, fd, event);
}

int pthread_mutex_consistent(pthread_mutex_t* mutex) {
    if (should_fail("pthread_mutex_consistent", nullptr)) return EINVAL;
    return real<int (*)(pthread_mutex_t*)>("pthread_mutex_consistent")(mutex);
}

ssize_t send(int fd, const void* buf, size_t length, int flags) {
    if (should_fail("send", "EAGAIN")) {
        errno = EAGAIN;
        return -1;
    }
    return real<ssize_t (*)(int, const void*, size_t, int)>("send")(fd, buf, length, flags);
}

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
    if (should_fail("sendmsg", "EAGAIN")) {
        errno = EAGAIN;
        return -1;
    }
    return real<ssize_t (*)(int, const struct msghdr*, int)>("sendmsg")(fd, msg, flags);
}

int accept4(int fd, struct sockaddr* addr, socklen_t* length, int flags) {
    if (should_fail("accept4", nullptr)) {
        errno = ECONNABORTED;
        return -1;
    }
    if (should_fail("accept4", "slow")) {
        // The signal handler may run during this sleep; its EINTR is not
        // passed on, as a signal landing just before the call would not be.
        timespec pause{0, 300'000'000};
        while (::nanosleep(&pause, &pause) < 0 && errno == EINTR) {
        }
    }
    return real<int (*)(int, struct sockaddr*, socklen_t*, int)>("accept4")(fd, addr, length, flags);
}

int epoll_wait(int epfd, struct epoll_event* events, int max, int timeout) {
    int n = real<int (*)(int, struct epoll_event*, int, int)>("epoll_wait")(epfd, events, max, timeout);
    if (n > 0 && should_fail("epoll_wait", "slow")) {
        int saved = errno;
        timespec pause{1, 0};
        while (::nanosleep(&pause, &pause) < 0 && errno == EINTR) {
        }
        errno = saved;
    }
    return n;
}

pid_t fork() {
    pid_t pid = real<pid_t (*)()>("fork")();
    if (pid > 0 && should_fail("fork", "slow-parent")) {
        timespec pause{1, 500'000'000};
        while (::nanosleep(&pause, &pause) < 0 && errno == EINTR) {
        }
    }
    return pid;
}

}  // extern "C"
