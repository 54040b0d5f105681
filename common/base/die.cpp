#include "base/die.hpp"

#include "base/trace.hpp"

#include <cstdlib>
#include <cstring>

#include <unistd.h>

namespace sl {

void die(std::string_view what, int err) {
    log("{}: {}", what, std::strerror(err));
    std::exit(1);
}

void die_now(std::string_view what, int err) {
    log("{}: {}", what, std::strerror(err));
    ::_exit(1);
}

}  // namespace sl
