#include "process/shared_state.hpp"

#include "base/shm.hpp"

#include <cstring>
#include <functional>

namespace sl {

void add_state_option(CLI::App& app, State& state, bool with_sharded) {
    Names<State> names = {{"shared", State::shared}, {"local", State::local}};
    if (with_sharded) names.push_back({"sharded", State::sharded});
    add_enum_option(app, "--state", state, names,
                    "where INCR counts: " + name_list(names) +
                        " (local: a table per process or thread, the wrong answer on purpose)");
}

SharedStore::SharedStore() : table_(shared_new<Table>()), insert_lock_(new_robust_mutex()) {}

// The slot holding `name`, or nullptr; then `first_empty` is where the
// probe stopped: the first empty slot on the name's path.
SharedStore::Slot* SharedStore::find(std::string_view name, size_t& first_empty) {
    size_t start = std::hash<std::string_view>{}(name) % kSlots;
    for (size_t i = 0; i < kSlots; ++i) {
        Slot& s = table_->slots[(start + i) % kSlots];
        if (s.taken.load(std::memory_order_acquire) == 0) {
            first_empty = (start + i) % kSlots;
            return nullptr;
        }
        if (s.length == name.size() && std::memcmp(s.name, name.data(), name.size()) == 0) return &s;
    }
    first_empty = kSlots;  // not reached: the table is never more than half full
    return nullptr;
}

std::optional<uint64_t> SharedStore::incr(std::string_view name) {
    size_t empty = 0;
    if (Slot* s = find(name, empty)) return s->count.fetch_add(1, std::memory_order_relaxed) + 1;
    // A new name, maybe: insert it under the lock, after looking again (another
    // process may have inserted it since). A holder killed in here leaves, at
    // worst, a name half-written into a slot nobody reads (not yet taken).
    int rc = recover_if_owner_died(insert_lock_, pthread_mutex_lock(insert_lock_), "counter table lock");
    if (rc != 0) die("pthread_mutex_lock counter table", rc);
    Slot* s = find(name, empty);
    if (s == nullptr && table_->names.load(std::memory_order_relaxed) < kMaxCounters && empty < kSlots) {
        s = &table_->slots[empty];
        s->length = static_cast<uint8_t>(name.size());
        std::memcpy(s->name, name.data(), name.size());
        s->count.store(0, std::memory_order_relaxed);
        s->taken.store(1, std::memory_order_release);  // published: readers see the name from now on
        table_->names.fetch_add(1, std::memory_order_relaxed);
    }
    pthread_mutex_unlock(insert_lock_);
    if (s == nullptr) return std::nullopt;
    return s->count.fetch_add(1, std::memory_order_relaxed) + 1;
}

uint64_t SharedStore::get(std::string_view name) {
    size_t empty = 0;
    Slot* s = find(name, empty);
    return s ? s->count.load(std::memory_order_relaxed) : 0;
}

}  // namespace sl
