// shm.hpp: memory that processes forked later share.
#pragma once

#include "base/die.hpp"

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
/// std::atomic members do (nothing is ever held); the two locks that live in
/// shared memory, 03/04's `--accept lock-mutex` and 06's accept mutex, are
/// *robust* mutexes for exactly that reason (accept/lock.cpp).
inline void* map_shared_or_die(size_t bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap shared");
    return p;
}

template <class T>
T* shared_new() {
    return new (map_shared_or_die(sizeof(T))) T();
}

}  // namespace sl
