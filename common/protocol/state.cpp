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

std::optional<uint64_t> LocalStore::incr(std::string_view name) {
    auto it = counts_.find(std::string(name));
    if (it == counts_.end()) {
        if (counts_.size() >= kMaxCounters) return std::nullopt;
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
