#include "accept/accept.hpp"

#include "base/signals.hpp"
#include "base/trace.hpp"

#include <algorithm>
#include <string>

namespace sl {

const Names<Accept>& accept_strategies() {
    static const Names<Accept> all = {
        {"blocking", Accept::blocking},     {"poll", Accept::poll},
        {"epoll", Accept::epoll},           {"epoll-exclusive", Accept::epoll_exclusive},
        {"lock-fcntl", Accept::lock_fcntl}, {"lock-mutex", Accept::lock_mutex},
        {"reuseport", Accept::reuseport},   {"pass-fd", Accept::pass_fd},
        {"accept-mutex", Accept::accept_mutex}};
    return all;
}

std::vector<Accept> prefork_strategies() {
    return {Accept::blocking,   Accept::poll,       Accept::epoll,     Accept::epoll_exclusive,
            Accept::lock_fcntl, Accept::lock_mutex, Accept::reuseport, Accept::pass_fd};
}

std::vector<Accept> event_strategies() {
    return {Accept::epoll, Accept::epoll_exclusive, Accept::reuseport, Accept::accept_mutex};
}

std::string_view accept_name(Accept strategy) {
    std::string_view name = find_word(accept_strategies(), strategy);
    return name.empty() ? "?" : name;
}

void add_accept_option(CLI::App& app, Accept& strategy, const std::vector<Accept>& allowed, std::string_view why_not) {
    std::string list;
    for (Accept a : allowed) list += (list.empty() ? "" : ", ") + std::string(accept_name(a));
    // The enum option, with a refusal that says why for the strategies of the other family.
    auto parse = [allowed, list, why = std::string(why_not)](std::string& text) -> std::string {
        const Accept* s = find_value(accept_strategies(), text);
        if (s == nullptr) return fmt::format("unknown strategy '{}': use {}", text, list);
        if (std::find(allowed.begin(), allowed.end(), *s) != allowed.end()) return {};
        return fmt::format("{} {}: use {}", text, why.empty() ? "is not available here" : why, list);
    };
    app.add_option_function<std::string>(
           "--accept", [&strategy](const std::string& text) { strategy = *find_value(accept_strategies(), text); },
           "how workers compete for connections: " + list)
        ->check(CLI::Validator(parse, "STRATEGY", "accept"))
        ->default_str(std::string(accept_name(strategy)));
}

ListenOptions listen_options_for(Accept strategy, ListenOptions base) {
    switch (strategy) {
    case Accept::poll:
    case Accept::epoll:
    case Accept::epoll_exclusive:
    case Accept::pass_fd:
    case Accept::accept_mutex:
        base.nonblocking = true;
        break;
    case Accept::reuseport:
        base.reuseport = true;
        break;
    case Accept::blocking:
    case Accept::lock_fcntl:
    case Accept::lock_mutex:
        break;
    }
    return base;
}

std::unique_ptr<AcceptStrategy> make_accept_strategy(Accept strategy, int listen_fd, const ListenOptions& listen,
                                                     int places, int slots) {
    switch (strategy) {
    case Accept::lock_fcntl:
    case Accept::lock_mutex:
        return make_lock_strategy(strategy, listen_fd);
    case Accept::reuseport:
        return make_reuseport_strategy(listen_fd, listen, places);
    case Accept::pass_fd:
        return make_pass_fd_strategy(listen_fd, slots);
    case Accept::blocking:
    case Accept::poll:
    case Accept::epoll:
    case Accept::epoll_exclusive:
    case Accept::accept_mutex:  // 06: no strategy object; the event loop and AcceptMutex do it
        break;
    }
    return make_wait_strategy(strategy, listen_fd);
}

Fd count_wakeup(Fd conn, AcceptStats& stats) {
    if (!conn && stop_requested()) return conn;  // woken to stop, not by a connection
    stats.wakeups.fetch_add(1, std::memory_order_relaxed);
    if (conn) {
        SL_TRACE("wakeup: won a connection");
    } else {
        stats.spurious.fetch_add(1, std::memory_order_relaxed);
        SL_TRACE("wakeup: no connection (another worker won it)");
    }
    return conn;
}

}  // namespace sl
