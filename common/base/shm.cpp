#include "base/shm.hpp"

#include "base/trace.hpp"

#include <cerrno>

namespace sl {

pthread_mutex_t* new_robust_mutex() {
    auto* m = shared_new<pthread_mutex_t>();
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (int rc = pthread_mutex_init(m, &attr); rc != 0) die("pthread_mutex_init", rc);
    pthread_mutexattr_destroy(&attr);
    return m;
}

int recover_if_owner_died(pthread_mutex_t* m, int rc, const char* what) {
    if (rc != EOWNERDEAD) return rc;
    log("{}: its holder died; recovering it", what);
    if (int err = pthread_mutex_consistent(m); err != 0) die("pthread_mutex_consistent", err);
    return 0;
}

}  // namespace sl
