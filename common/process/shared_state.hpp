// shared_state.hpp: INCR's counters for a server of several processes (02,
// 03, 04, 06), in shared memory made before the first fork.
//
// A map in each process would count each process's INCRs alone: twenty
// clients' thousand INCRs spread over four workers read back as four
// different, smaller numbers. The counters must live where every process
// sees them, and survive any of them being killed at any instruction:
//   - a fixed table of 2048 slots (a name, a count) in an anonymous shared
//     mapping; open addressing, so a name is found by hashing, with no
//     pointer in the table (each process maps it at its own address);
//   - counting is one atomic add on the slot, from any process or thread:
//     no lock, and a killed process leaves nothing held;
//   - a new name takes the insert lock (a robust mutex, base/shm.hpp), is
//     written, and only then published (the slot's state set with a
//     release store); a reader that sees the slot as taken sees its name.
//     Readers never take the lock: a name not found (yet) is looked for
//     again under it before being inserted.
#pragma once

#include "base/cli.hpp"
#include "protocol/state.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdint>

namespace sl {

/// --state shared|local (and, `with_sharded`, 07's sharded): where INCR counts.
void add_state_option(CLI::App& app, State& state, bool with_sharded = false);

class SharedStore final : public CounterStore {
public:
    /// Maps the table: call before the first fork().
    SharedStore();
    SharedStore(const SharedStore&) = delete;
    SharedStore& operator=(const SharedStore&) = delete;

    std::optional<uint64_t> incr(std::string_view name) override;
    uint64_t get(std::string_view name) override;

private:
    static constexpr size_t kSlots = 2 * kMaxCounters;  // at most half full: probes stay short
    struct Slot {
        std::atomic<uint8_t> taken{0};  // 0: empty; 1: name written, count in use
        uint8_t length = 0;
        char name[kMaxCounterName] = {};
        std::atomic<uint64_t> count{0};
    };
    struct Table {
        std::atomic<uint32_t> names{0};
        Slot slots[kSlots];
    };
    static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint8_t>::is_always_lock_free,
                  "the shared counters hold lock-free atomics only: a killed process must not leave a lock held");

    Slot* find(std::string_view name, size_t& first_empty);

    Table* table_;
    pthread_mutex_t* insert_lock_;
};

}  // namespace sl
