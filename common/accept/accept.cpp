#include "accept/accept.hpp"

#include "base/signals.hpp"
#include "base/trace.hpp"

#include <map>
#include <string>

namespace sl {

const std::vector<std::pair<std::string_view, Accept>>& accept_strategies() {
    static const std::vector<std::pair<std::string_view, Accept>> all = {
        {"blocking", Accept::blocking},     {"poll", Accept::poll},
        {"epoll", Accept::epoll},           {"epoll-exclusive", Accept::epoll_exclusive},
        {"lock-fcntl", Accept::lock_fcntl}, {"lock-mutex", Accept::lock_mutex},
        {"reuseport", Accept::reuseport},   {"pass-fd", Accept::pass_fd}};
    return all;
}

std::vector<Accept> all_accept_strategies() {
    std::vector<Accept> all;
    for (const auto& [name, s] : accept_strategies()) all.push_back(s);
    return all;
}

std::string_view accept_name(Accept strategy) {
    for (const auto& [name, s] : accept_strategies())
        if (s == strategy) return name;
    return "?";
}

void add_accept_option(CLI::App& app, Accept& strategy, const std::vector<Accept>& allowed) {
    std::map<std::string, Accept> names;
    for (Accept a : allowed) names.emplace(accept_name(a), a);
    app.add_option("--accept", strategy, "how workers compete for connections")
        ->transform(CLI::CheckedTransformer(names))
        ->default_str(std::string(accept_name(strategy)));
}

ListenOptions listen_options_for(Accept strategy, ListenOptions base) {
    switch (strategy) {
    case Accept::poll:
    case Accept::epoll:
    case Accept::epoll_exclusive:
    case Accept::pass_fd:
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
