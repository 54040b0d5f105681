#include "base/limits.hpp"

#include <sys/resource.h>

#include <climits>

namespace sl {

int raise_descriptor_limit() {
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return 1024;
    if (nofile.rlim_cur < nofile.rlim_max) {
        rlimit raised = nofile;
        raised.rlim_cur = nofile.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
    }
    return nofile.rlim_cur > INT_MAX ? INT_MAX : static_cast<int>(nofile.rlim_cur);
}

}  // namespace sl
