// shm.hpp: memory that processes forked later share.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <new>

namespace sl {

/// An anonymous shared mapping (mmap MAP_SHARED | MAP_ANONYMOUS): no file, no
/// name, and every process forked *after* this call sees the same bytes. It
/// must be created before the first fork(); a mapping made later would be
/// private to the process that made it. Lives until the process exits.
///
/// Only lock-free std::atomic members belong in it: a process may be killed
/// at any instruction, and a lock-free atomic never leaves a lock held.
inline void* map_shared_or_die(size_t bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        std::perror("mmap shared");
        std::exit(1);
    }
    return p;
}

template <class T>
T* shared_new() {
    return new (map_shared_or_die(sizeof(T))) T();
}

}  // namespace sl
