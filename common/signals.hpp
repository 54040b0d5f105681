// signals.hpp: stop requests (SIGINT, SIGTERM) as a flag plus a self-pipe.
#pragma once

namespace sl {

/// Installs the SIGINT/SIGTERM handlers and ignores SIGPIPE. Call once, at
/// start-up, before any thread is created.
///
/// The handler does only async-signal-safe work (signal-safety(7)): it saves
/// errno, sets a volatile sig_atomic_t and write(2)s one byte into a
/// non-blocking pipe. Everything that waits (the poll before accept, the poll
/// in the connection loop) also watches stop_fd(), so a stop wakes it even if
/// the signal landed between "check the flag" and "block in poll": the
/// self-pipe trick, which closes that race without pselect().
///
/// The handlers are installed without SA_RESTART, so a blocking call that the
/// signal interrupts returns EINTR; the wrappers in net.hpp retry it and look
/// at stop_requested().
///
/// SIGPIPE is ignored as a second line of defence: sockets are written with
/// MSG_NOSIGNAL, but stdout/stderr may be a pipe whose reader went away.
void install_stop_handlers();

/// True once SIGINT or SIGTERM arrived (or request_stop() was called).
bool stop_requested();

/// Read end of the self-pipe: readable from the first stop request on, and it
/// stays readable (nobody drains it), so every poller sees it.
int stop_fd();

/// What the handler does, callable from ordinary code too (async-signal-safe).
void request_stop();

}  // namespace sl
