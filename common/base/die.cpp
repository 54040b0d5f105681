#include "base/die.hpp"

#include "base/trace.hpp"

#include <cstdlib>
#include <cstring>

namespace sl {

void die(std::string_view what, int err) {
    log("{}: {}", what, std::strerror(err));
    std::exit(1);
}

}  // namespace sl
