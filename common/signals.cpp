#include "signals.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace sl {
namespace {

volatile sig_atomic_t g_stop = 0;
int g_pipe[2] = {-1, -1};

void on_stop_signal(int) {
    request_stop();
}

}  // namespace

void request_stop() {
    int saved = errno;  // write(2) may change errno under the interrupted code
    g_stop = 1;
    if (g_pipe[1] >= 0) {
        char byte = 1;
        // Non-blocking: a full pipe already says "stop", so EAGAIN is fine.
        [[maybe_unused]] ssize_t n = ::write(g_pipe[1], &byte, 1);
    }
    errno = saved;
}

void install_stop_handlers() {
    if (::pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        std::perror("pipe2");
        std::exit(1);
    }
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: let blocking calls return EINTR
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);

    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGPIPE, &ignore, nullptr);
}

bool stop_requested() {
    return g_stop != 0;
}

int stop_fd() {
    return g_pipe[0];
}

}  // namespace sl
