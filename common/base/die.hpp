// die.hpp: the one way a serverlab program stops on a fatal error.
#pragma once

#include <cerrno>
#include <string_view>

namespace sl {

/// Prints `<role>: <what>: <strerror(err)>` on stderr, the call and the
/// errno as redis's anet.c and muduo's *OrDie calls do
/// (`master: bind 127.0.0.1:8080: Address already in use`), and exits with
/// status 1. For start-up failures, and for errors that can only be a bug.
/// Every `*_or_die` function ends here.
///
/// In the process that started the program it calls exit(). In a process
/// forked from it (a worker, 02's child), _exit(): exit() would run the
/// atexit handlers and static destructors the child inherited from its
/// parent, and flush stdio buffers the parent will flush too. So code that
/// runs in workers (a lock, a socket call) may simply call die().
[[noreturn]] void die(std::string_view what, int err = errno);

/// The same message, then _exit(1) in any process: for a process whose
/// other threads are running (04's workers, 05's --offload pool), where
/// exit()'s static destructors would pull the ground from under them.
[[noreturn]] void die_now(std::string_view what, int err = errno);

}  // namespace sl
