#include "net/net.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sl {
namespace {

union SockAddr {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
    sockaddr_storage storage;
};

bool parse_address(const std::string& host, int port, SockAddr& addr, socklen_t& len) {
    std::memset(&addr, 0, sizeof addr);
    if (::inet_pton(AF_INET, host.c_str(), &addr.v4.sin_addr) == 1) {
        addr.v4.sin_family = AF_INET;
        addr.v4.sin_port = htons(static_cast<uint16_t>(port));
        len = sizeof addr.v4;
        return true;
    }
    if (::inet_pton(AF_INET6, host.c_str(), &addr.v6.sin6_addr) == 1) {
        addr.v6.sin6_family = AF_INET6;
        addr.v6.sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof addr.v6;
        return true;
    }
    return false;
}

std::string format_address(const SockAddr& addr) {
    char text[INET6_ADDRSTRLEN] = "?";
    if (addr.any.sa_family == AF_INET) {
        ::inet_ntop(AF_INET, &addr.v4.sin_addr, text, sizeof text);
        return fmt::format("{}:{}", text, ntohs(addr.v4.sin_port));
    }
    if (addr.any.sa_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &addr.v6.sin6_addr, text, sizeof text);
        return fmt::format("[{}]:{}", text, ntohs(addr.v6.sin6_port));
    }
    return "?";
}

[[noreturn]] void die_listening(const ListenOptions& o, const char* call) {
    die(fmt::format("{} {}:{}", call, o.host, o.port));
}

void set_flag(int fd, int level, int option, const ListenOptions& o, const char* what) {
    int on = 1;
    if (::setsockopt(fd, level, option, &on, sizeof on) < 0) die_listening(o, what);
}

// Out of descriptors: say so at most once a second.
void log_out_of_descriptors(int err) {
    static std::atomic<int64_t> last_logged_ms{-1000};  // atomic: 04's threads share it
    int64_t now = monotonic_ms();
    int64_t last = last_logged_ms.load();
    if (now - last >= 1000 && last_logged_ms.compare_exchange_strong(last, now)) {
        log("accept: {} (pausing accepts; queued clients wait in the backlog)", std::strerror(err));
    }
}

}  // namespace

ListenOptions listen_options(const CommonOptions& o) {
    ListenOptions l;
    l.host = o.host;
    l.port = o.port;
    l.backlog = o.backlog;
    return l;
}

Fd listen_or_die(const ListenOptions& o) {
    SockAddr addr;
    socklen_t len = 0;
    if (!parse_address(o.host, o.port, addr, len)) die(fmt::format("listen: '{}'", o.host), EINVAL);
    int type = SOCK_STREAM | SOCK_CLOEXEC | (o.nonblocking ? SOCK_NONBLOCK : 0);
    Fd fd(::socket(addr.any.sa_family, type, 0));
    if (!fd) die_listening(o, "socket");
    // SO_REUSEADDR: a restarted server may bind while old connections sit in TIME_WAIT.
    set_flag(fd.get(), SOL_SOCKET, SO_REUSEADDR, o, "setsockopt SO_REUSEADDR");
    if (o.reuseport) set_flag(fd.get(), SOL_SOCKET, SO_REUSEPORT, o, "setsockopt SO_REUSEPORT");
    // TCP_NODELAY: answers go out when written. With Nagle's algorithm, a
    // small answer written while an earlier one is still unacknowledged
    // waits for that ACK, and a client with nothing to send delays its ACK
    // (40 ms on Linux): a client that pipelines "PING, SLEEP 5" got its
    // SLEPT after 44 ms, not 5 (docs/tcp.md). Every answer here is written
    // whole, so Nagle has nothing to coalesce. Set on the listening socket,
    // it costs nothing per connection: an accepted socket starts as a copy
    // of its listener's (sk_clone_lock), this flag included.
    set_flag(fd.get(), IPPROTO_TCP, TCP_NODELAY, o, "setsockopt TCP_NODELAY");
    if (::bind(fd.get(), &addr.any, len) < 0) die_listening(o, "bind");
    // The backlog is a hint: Linux caps it at net.core.somaxconn.
    if (::listen(fd.get(), o.backlog) < 0) die_listening(o, "listen");
    return fd;
}

int local_port(int fd) {
    SockAddr addr;
    socklen_t len = sizeof addr;
    if (::getsockname(fd, &addr.any, &len) < 0) return -1;
    return addr.any.sa_family == AF_INET6 ? ntohs(addr.v6.sin6_port) : ntohs(addr.v4.sin_port);
}

std::string peer_name(int fd) {
    SockAddr addr;
    socklen_t len = sizeof addr;
    if (::getpeername(fd, &addr.any, &len) < 0) return "?";
    return format_address(addr);
}

namespace {

Wait wait_for(int fd, short events, int timeout_ms) {
    // poll(2) skips entries whose fd is negative, so missing pipes cost nothing.
    pollfd fds[3] = {{fd, events, 0}, {stop_fd(), POLLIN, 0}, {event_fd(), POLLIN, 0}};
    int64_t deadline = timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;
    for (;;) {
        int left = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - monotonic_ms()));
        int n = ::poll(fds, 3, left);
        if (n < 0 && errno == EINTR) continue;  // a signal; the stop pipe says if it was a stop
        if (n < 0) {
            log("poll: {}", std::strerror(errno));
            return Wait::stop;
        }
        if (n == 0) return Wait::timeout;
        if (fds[1].revents != 0) return Wait::stop;
        if (fds[2].revents != 0) {
            drain_events();
            return Wait::event;
        }
        return Wait::ready;  // ready, or POLLHUP/POLLERR: the next read or write reports it
    }
}

}  // namespace

Wait wait_readable(int fd, int timeout_ms) {
    return wait_for(fd, POLLIN, timeout_ms);
}

Wait wait_writable(int fd, int timeout_ms) {
    return wait_for(fd, POLLOUT, timeout_ms);
}

bool readable_within(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    int64_t deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        int left = static_cast<int>(std::max<int64_t>(0, deadline - monotonic_ms()));
        int n = ::poll(&p, 1, left);
        if (n < 0 && errno == EINTR) continue;
        return n > 0;
    }
}

Accepted accept_one(int listen_fd, int flags) {
    for (;;) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | flags);
        if (fd >= 0) return {Accepted::connection, Fd(fd)};
        int err = errno;
        switch (err) {
        case EINTR:
            if (stop_requested()) return {};
            continue;
        case EAGAIN:
            return {Accepted::empty, Fd()};
        case ECONNABORTED:  // the client reset the connection while it waited in the backlog
        case EPROTO:
        case ENETDOWN:      // accept(2): "treat them like EAGAIN by retrying"
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            return {};
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            log_out_of_descriptors(err);
            return {Accepted::out_of_descriptors, Fd()};
        default:
            die("accept (a bug: exiting)", err);
        }
    }
}

Fd try_accept(int listen_fd) {
    Accepted a = accept_one(listen_fd);
    if (a.status == Accepted::out_of_descriptors) {
        // Without the pause a blocking accept would return EMFILE at once,
        // forever: a busy loop that burns a core and helps nobody.
        readable_within(stop_fd(), 100);
    }
    return std::move(a.conn);
}

Fd accept_connection(int listen_fd) {
    if (wait_readable(listen_fd, -1) != Wait::ready) return Fd();
    return try_accept(listen_fd);
}

ReadStatus read_or_wake(int fd, char* buf, size_t len, size_t& got) {
    ssize_t n = ::read(fd, buf, len);
    if (n > 0) {
        got = static_cast<size_t>(n);
        return ReadStatus::data;
    }
    if (n == 0) return ReadStatus::eof;
    return (errno == EINTR || errno == EAGAIN) ? ReadStatus::woken : ReadStatus::error;
}

bool set_receive_wakeup(int fd, int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    return ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0;
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<size_t>(n));  // a short write: send the rest
    }
    return true;
}

bool set_send_timeout(int fd, int seconds) {
    timeval tv{seconds, 0};
    return ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0;
}

void linger_before_close(int fd) {
    if (::shutdown(fd, SHUT_WR) < 0) return;  // ENOTCONN: the client is gone already
    char buf[16384];
    size_t dropped = 0;
    const int64_t end = monotonic_ms() + kLingerTotalMs;
    for (;;) {
        int64_t left = std::min<int64_t>(kLingerSilenceMs, end - monotonic_ms());
        if (left <= 0 || !readable_within(fd, static_cast<int>(left))) return;  // silence, or time is up
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return;  // the client closed its side too: nothing more can come
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) return;  // reset: the client is gone
        dropped += static_cast<size_t>(n);
        if (dropped > kLingerMaxBytes) return;
    }
}

}  // namespace sl
