#include "base/die.hpp"

#include "base/trace.hpp"

#include <cstdlib>
#include <cstring>

#include <unistd.h>

namespace sl {
namespace {

// The process that started the program: set before main() runs, and left
// as it was in every child fork() makes.
const pid_t g_main_process = ::getpid();

}  // namespace

void die(std::string_view what, int err) {
    log("{}: {}", what, std::strerror(err));
    if (::getpid() != g_main_process) ::_exit(1);  // a forked child: not the parent's atexit handlers
    std::exit(1);
}

void die_now(std::string_view what, int err) {
    log("{}: {}", what, std::strerror(err));
    ::_exit(1);
}

}  // namespace sl
