// 08_io_uring, built without liburing (Debian's liburing-dev, 2.3 or later,
// was not found when the build was configured): it can only say so.
#include <cstdio>

int main() {
    std::fprintf(stderr, "uring: io_uring is not available here: this build has no liburing "
                         "(install liburing-dev, 2.3 or later, with ./lab setup, and build again)\n");
    return 2;
}
