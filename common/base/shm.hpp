// shm.hpp: memory that processes forked later share, and the one kind of
// lock that may live in it.
#pragma once

#include "base/die.hpp"

#include <pthread.h>
#include <sys/mman.h>

#include <cstddef>
#include <new>

namespace sl {

/// An anonymous shared mapping (mmap MAP_SHARED | MAP_ANONYMOUS): no file, no
/// name, and every process forked *after* this call sees the same bytes. It
/// must be created before the first fork(); a mapping made later would be
/// private to the process that made it. Lives until the process exits.
///
/// What goes in it must survive a process killed at any instruction. Lock-free
/// std::atomic members do (nothing is ever held); the locks that live in
/// shared memory (03/04's `--accept lock-mutex`, 06's accept mutex, the
/// INCR table's insert lock) are *robust* mutexes for exactly that reason.
inline void* map_shared_or_die(size_t bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap shared");
    return p;
}

template <class T>
T* shared_new() {
    return new (map_shared_or_die(sizeof(T))) T();
}

/// A pthread mutex in shared memory, PTHREAD_PROCESS_SHARED so that
/// processes may use it, and ROBUST because a process may die holding it
/// (kill -9 at the wrong moment). A plain mutex would then stay locked
/// forever, and every other process would sleep on it. With a robust one,
/// the next locker gets EOWNERDEAD instead, marks the mutex consistent and
/// carries on (nginx force-unlocks its accept mutex for the same reason).
/// Make it before the first fork, so that every process maps the same one.
pthread_mutex_t* new_robust_mutex();

/// After a lock or trylock that returned `rc`: EOWNERDEAD (its holder died
/// holding it) is recovered, logged as `<what>: its holder died; recovering
/// it`, and counts as taken: 0. Whatever the lock protected may be
/// half-written; the caller's data must allow that. Other values are
/// returned as they are.
int recover_if_owner_died(pthread_mutex_t* mutex, int rc, const char* what);

}  // namespace sl
