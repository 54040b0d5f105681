// net.hpp: sockets with their error handling written once.
//
// EINTR is dealt with inside each wrapper, never at a call site: retried,
// except where a signal must be able to interrupt the wait (a stop), and
// there the wrapper says so (Wait::stop, ReadStatus::woken, an empty Fd)
// and the caller looks at the stop flag. Writes use MSG_NOSIGNAL, so a
// vanished peer gives EPIPE instead of killing the process with SIGPIPE;
// every descriptor is created close-on-exec.
#pragma once

#include "base/cli.hpp"
#include "base/fd.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace sl {

struct ListenOptions {
    std::string host = "127.0.0.1";  // an IPv4 or IPv6 literal
    int port = 8080;                 // 0: the kernel picks a free port
    int backlog = 511;
    bool reuseport = false;    // SO_REUSEPORT: several sockets may bind the same port (Linux 3.9)
    bool nonblocking = false;  // O_NONBLOCK on the listener (shared with every process that inherits it)
};

/// The listening socket the common options ask for.
ListenOptions listen_options(const CommonOptions& options);

/// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen, for start-up only:
/// on failure prints `<role>: bind 127.0.0.1:8080: Address already in use`
/// (the call and errno, through die()) and exits with status 1.
Fd listen_or_die(const ListenOptions& options);

/// The port a socket is bound to (useful after binding port 0).
int local_port(int fd);

/// `127.0.0.1:51234` for the peer of a connected socket, for traces.
std::string peer_name(int fd);

enum class Wait { ready, timeout, stop, event };

/// Waits until `fd` is readable, `timeout_ms` passes (-1: no limit), a stop is
/// requested, or (in a supervising process) a signal event arrives, which it
/// drains: the caller then looks at the flags (see signals.hpp). Retries EINTR.
Wait wait_readable(int fd, int timeout_ms);
/// The same, until `fd` is writable (a full socket buffer has room again).
Wait wait_writable(int fd, int timeout_ms);

/// Waits only for `fd` to become readable, for at most `timeout_ms`; a
/// signal or a stop does not end the wait (EINTR is retried). For a leaving
/// worker that must still collect what is already its own.
bool readable_within(int fd, int timeout_ms);

/// One accept4(2) that never waits, with its errors sorted the way muduo and
/// nginx sort them:
///  - EINTR: retried, unless a stop was requested (then: nothing);
///  - EAGAIN: empty, the queue has no connection;
///  - ECONNABORTED, EPROTO and the network errors accept(2) says to treat
///    like EAGAIN (the client gave up in the backlog): nothing;
///  - EMFILE, ENFILE, ENOBUFS, ENOMEM: out of descriptors or memory, logged
///    at most once a second. The connections stay queued in the kernel and
///    are served once descriptors are free again;
///  - anything else (EBADF, EINVAL, ENOTSOCK...) is a bug: logged, and the
///    process exits with status 1.
struct Accepted {
    // empty: EAGAIN, the queue is empty. nothing: no connection this time,
    // but more may be queued (an aborted one, a signal; after a stop, the
    // retry finds `empty` or a last queued connection): a loop that drains
    // the queue must try again, or edge-triggered it would wait for the
    // next arrival with connections still queued.
    enum Status { connection, nothing, empty, out_of_descriptors } status = nothing;
    Fd conn;  // CLOEXEC; blocking unless `flags` asked for SOCK_NONBLOCK
};
/// `flags`: SOCK_NONBLOCK for an event loop, which saves two fcntl() calls
/// per connection (accept4(2) sets it on the new socket).
Accepted accept_one(int listen_fd, int flags = 0);

/// accept_one() for a worker that waits in accept: out of descriptors, it
/// pauses 100 ms (waking early for a stop), so that it does not spin on a
/// backlog it cannot drain. Returns the connection, or an empty Fd in every
/// case where the caller should just loop (and check stop_requested()).
Fd try_accept(int listen_fd);

/// wait_readable(listen_fd) then try_accept: the accept of a process that is
/// the only one accepting (01, 02). Empty Fd: a stop or a signal event (look
/// at the flags), or nothing this time.
Fd accept_connection(int listen_fd);

/// One blocking read(2) on a socket with SO_RCVTIMEO (set_receive_wakeup):
/// data, end of stream, an error, or `woken`: a signal interrupted it (EINTR)
/// or the receive timeout passed (EAGAIN). The caller then looks at the clock
/// and the stop flag, and reads again.
enum class ReadStatus { data, eof, error, woken };
ReadStatus read_or_wake(int fd, char* buf, size_t len, size_t& got);

/// SO_RCVTIMEO: a blocked read returns (EAGAIN) after `ms` without data.
/// False if setsockopt failed (errno set): the caller must not rely on it.
bool set_receive_wakeup(int fd, int ms);

/// Writes all of `data`: loops over short writes and EINTR; MSG_NOSIGNAL.
/// False on any error (EPIPE, ECONNRESET, or EAGAIN after SO_SNDTIMEO).
bool write_all(int fd, std::string_view data);

/// SO_SNDTIMEO, so a client that stops reading cannot block a writer forever.
/// False if setsockopt failed (errno set).
bool set_send_timeout(int fd, int seconds);

/// Lingering close, for a server that ends a connection while its client
/// may still be sending (the body after a 413, requests pipelined after a
/// QUIT): close() with input unread, or with input still arriving, makes the
/// kernel answer with a reset (RST), and a reset can make the client's TCP
/// throw away our last answer before the client has read it (RFC 9112,
/// section 9.6). Instead: shut down our side, so the client reads every
/// answer and then the end of the stream, and read and drop what still comes
/// until the client closes its side too, or for at most kLingerSilenceMs
/// without a byte, kLingerTotalMs in all, kLingerMaxBytes dropped. Apache
/// waits 2 s of silence (SECONDS_TO_LINGER) and 30 s in all
/// (MAX_SECS_TO_LINGER, server/connection.c); nginx 5 s and 30 s
/// (lingering_timeout, lingering_time).
inline constexpr int64_t kLingerSilenceMs = 2000;
inline constexpr int64_t kLingerTotalMs = 5000;
inline constexpr size_t kLingerMaxBytes = size_t{64} << 20;

/// The blocking form: returns once the lingering is over. The caller closes `fd`.
void linger_before_close(int fd);

}  // namespace sl
