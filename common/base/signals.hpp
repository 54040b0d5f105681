// signals.hpp: signals as flags plus self-pipes. No handler does more than
// set a lock-free std::atomic flag and write(2) one byte (signal-safety(7)).
#pragma once

#include <sys/types.h>

namespace sl {

/// Installs the SIGINT/SIGTERM handlers and ignores SIGPIPE. Call once, at
/// start-up, before any thread is created. A failing sigaction() is fatal.
///
/// A stop sets a flag and writes a byte into the *stop pipe*. Every poll-style
/// wait (the poll before accept, the poll/epoll accept strategies) also
/// watches stop_fd(), so a stop wakes it even if the signal landed between
/// "check the flag" and "block in poll": the self-pipe trick, which closes
/// that race without pselect(). Nobody drains the stop pipe, so it stays
/// readable and every waiter (every thread, later) sees it.
///
/// Handlers are installed without SA_RESTART: a blocking call that a signal
/// interrupts returns EINTR; the wrappers in net/ and the waits that matter
/// look at stop_requested() before they retry.
///
/// SIGPIPE is ignored as a second line of defence: sockets are written with
/// MSG_NOSIGNAL, but stdout/stderr may be a pipe whose reader went away.
void install_stop_handlers();

/// For a process that supervises children (02's parent, the prefork master):
/// SIGCHLD, SIGUSR1, SIGHUP, SIGTTIN, SIGTTOU and SIGQUIT set their flags
/// and write a byte into the *event pipe*, which the one supervising loop
/// drains (wait_for_event). A stop writes there too, so the supervisor wakes.
void install_master_handlers();

/// fork(2) with every signal blocked around it, as nginx's master does (it
/// keeps signals blocked and its workers unblock them once set up). Until the
/// child has its own pipes, a handler running in it would write into the
/// *parent's* pipes: a SIGTERM to a child in that window would wake the
/// parent's loop with "stop" while the parent's own flag is clear, forever
/// (02 spun at 100% CPU). So, with signals blocked, the child puts the
/// master's handlers back to their defaults (SIGUSR1, SIGHUP, SIGTTIN,
/// SIGTTOU and SIGQUIT are ignored, so a signal to the whole process group
/// means something only to the master), closes the inherited pipes, makes a
/// fresh stop pipe, and only then unblocks: a signal sent meanwhile waits,
/// pending, and reaches the child's own handler.
///
/// Returns what fork() returns: the child's pid in the parent (-1 with errno
/// on failure), 0 in the child. Call it only from a single-threaded process.
pid_t fork_child();

/// True once SIGINT or SIGTERM arrived (or request_stop() was called).
bool stop_requested();

/// Read end of the stop pipe: readable from the first stop request on.
int stop_fd();

/// Read end of the event pipe, or -1 where install_master_handlers() was not called.
int event_fd();

/// What the stop handler does, callable from ordinary code (async-signal-safe).
void request_stop();

/// Flag tests that clear the flag, nginx style: `if (take_child_exited()) reap();`.
/// Clearing before acting means a signal that arrives meanwhile is not lost:
/// it sets the flag again and the next round sees it.
bool take_child_exited();
bool take_report_request();  // SIGUSR1
bool take_reload();          // SIGHUP
bool take_more_workers();    // SIGTTIN
bool take_fewer_workers();   // SIGTTOU
bool take_quit();            // SIGQUIT

/// Drains the event pipe (non-blocking). Called after poll() reported it readable.
void drain_events();

/// Sleeps until a signal event (or a stop) arrives or `timeout_ms` passes
/// (-1: no limit), then drains the event pipe. The supervising loop's only wait.
void wait_for_event(int timeout_ms);

}  // namespace sl
