// state.hpp: where INCR and GET keep their counters, and the lesson of it.
//
// `INCR name` adds one to a counter and answers its new value; `GET name`
// answers it. Easy in one thread; the question every model must answer is
// where the counters live when requests are served by several processes or
// threads at once, and what sharing them costs:
//   LocalStore    a plain map: one thread only (01, 05, and each loop of 07
//                 --state sharded, which owns its names)
//   MutexStore    the same map under a mutex: the threads of one process (07)
//   SharedStore   a fixed table in shared memory with atomic counts: the
//                 processes of 02, 03, 04 and 06 (process/shared_state.hpp)
// and, on purpose, the wrong one: a LocalStore per process or per thread
// (--state local), where each worker counts alone. See docs/07-event-loop-threads.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sl {

inline constexpr size_t kMaxCounters = 1024;   // names a server keeps; the next new one is refused
inline constexpr size_t kMaxCounterName = 64;  // bytes

/// Where the counters live (--state).
enum class State {
    shared,   // one table for the whole server: every INCR counted once (the default)
    local,    // a table per process or per thread: the wrong answer, on purpose
    sharded,  // 07: each name belongs to one loop; the others ask it (no lock at all)
};

/// "" when `name` can name a counter, else why not (for `ERR ...`): 1 to 64
/// bytes of letters, digits, '_', '-', '.' and ':'.
std::string check_counter_name(std::string_view name);

/// A table of counters. incr() adds one and returns the new value, or
/// nothing when the name is new and the table already holds kMaxCounters
/// names. get() returns 0 for a name never counted. The caller has checked
/// the name (check_counter_name).
class CounterStore {
public:
    virtual ~CounterStore() = default;
    virtual std::optional<uint64_t> incr(std::string_view name) = 0;
    virtual uint64_t get(std::string_view name) = 0;
};

/// A plain map: for one thread. No lock, because nobody else touches it.
class LocalStore final : public CounterStore {
public:
    std::optional<uint64_t> incr(std::string_view name) override;
    uint64_t get(std::string_view name) override;

    /// Shards of one table (07 --state sharded) share the limit: each new
    /// name takes one of kMaxCounters places from `names`, the count of
    /// every shard's names. An atomic touched once per new name, never
    /// per INCR: the shards still count without a lock.
    void share_limit(std::atomic<size_t>& names) { shared_names_ = &names; }

private:
    bool take_place_for_a_new_name();

    std::unordered_map<std::string, uint64_t> counts_;
    std::atomic<size_t>* shared_names_ = nullptr;  // null: the limit is this map's own
};

/// The same map under a std::mutex, for the threads of one process. Every
/// INCR takes the lock: threads that count at once wait for each other.
class MutexStore final : public CounterStore {
public:
    std::optional<uint64_t> incr(std::string_view name) override;
    uint64_t get(std::string_view name) override;

private:
    std::mutex mutex_;
    LocalStore map_;  // guarded by mutex_
};

}  // namespace sl
