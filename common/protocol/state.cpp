#include "protocol/state.hpp"

#include <fmt/format.h>

namespace sl {

std::string check_counter_name(std::string_view name) {
    if (name.empty()) return "a counter needs a name";
    if (name.size() > kMaxCounterName) return fmt::format("a counter name has at most {} bytes", kMaxCounterName);
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '.' || c == ':';
        if (!ok) return "a counter name is letters, digits, '_', '-', '.' and ':'";
    }
    return {};
}

bool LocalStore::take_place_for_a_new_name() {
    if (!shared_names_) return counts_.size() < kMaxCounters;
    // Take a place, and give it back if there was none: two shards that
    // race for the last place cannot both get it. A refusal only comes when
    // kMaxCounters names were already placed, so none comes too early.
    if (shared_names_->fetch_add(1, std::memory_order_relaxed) < kMaxCounters) return true;
    shared_names_->fetch_sub(1, std::memory_order_relaxed);
    return false;
}

std::optional<uint64_t> LocalStore::incr(std::string_view name) {
    auto it = counts_.find(std::string(name));
    if (it == counts_.end()) {
        if (!take_place_for_a_new_name()) return std::nullopt;
        it = counts_.emplace(std::string(name), 0).first;
    }
    return ++it->second;
}

uint64_t LocalStore::get(std::string_view name) {
    auto it = counts_.find(std::string(name));
    return it == counts_.end() ? 0 : it->second;
}

std::optional<uint64_t> MutexStore::incr(std::string_view name) {
    std::lock_guard<std::mutex> lock(mutex_);
    return map_.incr(name);
}

uint64_t MutexStore::get(std::string_view name) {
    std::lock_guard<std::mutex> lock(mutex_);
    return map_.get(name);
}

}  // namespace sl
