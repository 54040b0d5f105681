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
[[noreturn]] void die(std::string_view what, int err = errno);

/// The same message, then _exit(1): for a forked worker, or a process whose
/// other threads are running, where exit()'s static destructors and atexit
/// handlers (the master's, copied by fork) must not run.
[[noreturn]] void die_now(std::string_view what, int err = errno);

}  // namespace sl
