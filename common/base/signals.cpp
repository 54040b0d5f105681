#include "base/signals.hpp"

#include "base/die.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <initializer_list>

namespace sl {
namespace {

// The flags. volatile sig_atomic_t is what C guarantees between a handler and
// the one thread it interrupted; 04 has threads that read a flag while
// another thread sets it (request_stop() on --max-requests), which makes a
// volatile int a data race (ThreadSanitizer reports it). A lock-free
// std::atomic is both: safe in a handler (C++17 [support.signal]) and
// between threads.
using Flag = std::atomic<int>;
static_assert(Flag::is_always_lock_free, "a signal handler may only touch lock-free atomics");
Flag g_stop{0};
Flag g_child_exited{0};
Flag g_report{0};
Flag g_reload{0};
Flag g_more{0};
Flag g_fewer{0};
Flag g_quit{0};
int g_stop_pipe[2] = {-1, -1};
// The signals only a supervising master acts on.
constexpr int kMasterSignals[] = {SIGUSR1, SIGHUP, SIGTTIN, SIGTTOU, SIGQUIT};
int g_event_pipe[2] = {-1, -1};

void poke(int fd) {
    if (fd < 0) return;
    char byte = 1;
    // Non-blocking: a full pipe already says "wake up", so EAGAIN is fine.
    [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
}

void on_master_signal(int sig) {
    int saved = errno;  // write(2) may change errno under the interrupted code
    if (sig == SIGCHLD) g_child_exited = 1;
    if (sig == SIGUSR1) g_report = 1;
    if (sig == SIGHUP) g_reload = 1;
    if (sig == SIGTTIN) g_more = 1;
    if (sig == SIGTTOU) g_fewer = 1;
    if (sig == SIGQUIT) g_quit = 1;
    poke(g_event_pipe[1]);
    errno = saved;
}

void on_stop_signal(int) {
    request_stop();
}

void make_pipe(int fds[2]) {
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe2");
}

void close_pipe(int fds[2]) {
    for (int i = 0; i < 2; ++i) {
        if (fds[i] >= 0) ::close(fds[i]);
        fds[i] = -1;
    }
}

void set_handler(int sig, void (*handler)(int)) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: let blocking calls return EINTR
    // A handler that silently failed to install would leave SIGTERM killing
    // the process outright, or SIGCHLD never reaping: refuse to run instead.
    if (::sigaction(sig, &sa, nullptr) < 0) die(fmt::format("sigaction SIG{}", sigabbrev_np(sig)));
}

bool take(Flag& flag) {
    return flag.exchange(0) != 0;  // clear, then act: a signal meanwhile sets it again
}

}  // namespace

void request_stop() {
    int saved = errno;
    g_stop = 1;
    poke(g_stop_pipe[1]);
    poke(g_event_pipe[1]);
    errno = saved;
}

void install_stop_handlers() {
    make_pipe(g_stop_pipe);
    set_handler(SIGINT, on_stop_signal);
    set_handler(SIGTERM, on_stop_signal);
    set_handler(SIGPIPE, SIG_IGN);
}

void install_master_handlers() {
    make_pipe(g_event_pipe);
    set_handler(SIGCHLD, on_master_signal);
    for (int sig : kMasterSignals) set_handler(sig, on_master_signal);
}

pid_t fork_child() {
    sigset_t all, old;
    sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, &old);  // cannot fail with a valid `how`
    pid_t pid = ::fork();
    int saved = errno;
    if (pid == 0) {
        // The child, with every signal still blocked: nothing of the parent's
        // can run here until this is done.
        set_handler(SIGCHLD, SIG_DFL);
        for (int sig : kMasterSignals) set_handler(sig, SIG_IGN);
        close_pipe(g_event_pipe);
        close_pipe(g_stop_pipe);
        g_child_exited = 0;
        for (Flag* flag : {&g_report, &g_reload, &g_more, &g_fewer, &g_quit}) *flag = 0;
        make_pipe(g_stop_pipe);
        if (g_stop) poke(g_stop_pipe[1]);  // a stop that reached the parent before fork() still holds
    }
    ::sigprocmask(SIG_SETMASK, &old, nullptr);  // a signal that waited is delivered now, to the right handler
    errno = saved;
    return pid;
}

bool stop_requested() {
    return g_stop != 0;
}

int stop_fd() {
    return g_stop_pipe[0];
}

int event_fd() {
    return g_event_pipe[0];
}

bool take_child_exited() {
    return take(g_child_exited);
}

bool take_report_request() {
    return take(g_report);
}

bool take_reload() {
    return take(g_reload);
}

bool take_more_workers() {
    return take(g_more);
}

bool take_fewer_workers() {
    return take(g_fewer);
}

bool take_quit() {
    return take(g_quit);
}

void drain_events() {
    char buf[64];
    while (g_event_pipe[0] >= 0 && ::read(g_event_pipe[0], buf, sizeof buf) > 0) {
    }
}

void wait_for_event(int timeout_ms) {
    pollfd p{g_event_pipe[0], POLLIN, 0};
    // EINTR needs no retry here: the caller looks at the flags and waits again.
    if (::poll(&p, 1, timeout_ms) > 0) drain_events();
}

}  // namespace sl
