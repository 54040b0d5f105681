#include "accept.hpp"

#include "signals.hpp"
#include "trace.hpp"

#include <cstdlib>

namespace sl {

const std::vector<std::string>& accept_strategy_names() {
    static const std::vector<std::string> names = {"blocking",   "poll",       "epoll",     "epoll-exclusive",
                                                   "lock-fcntl", "lock-mutex", "reuseport", "pass-fd"};
    return names;
}

ListenOptions listen_options_for(std::string_view strategy, ListenOptions base) {
    if (strategy == "poll" || strategy == "epoll" || strategy == "epoll-exclusive" || strategy == "pass-fd")
        base.nonblocking = true;
    if (strategy == "reuseport") {
        base.reuseport = true;
        base.listen = false;  // the master holds the port; workers listen
    }
    return base;
}

std::unique_ptr<AcceptStrategy> make_accept_strategy(std::string_view name, int listen_fd,
                                                     const ListenOptions& listen, int workers) {
    if (name == "lock-fcntl" || name == "lock-mutex") return make_lock_strategy(name, listen_fd);
    if (name == "pass-fd") return make_pass_fd_strategy(listen_fd, workers);
    return make_wait_strategy(name, listen_fd, listen);
}

Fd count_wakeup(Fd conn, WorkerSlot& me) {
    if (!conn && stop_requested()) return conn;  // woken to stop, not by a connection
    me.wakeups.fetch_add(1, std::memory_order_relaxed);
    if (conn) {
        trace("wakeup: won a connection");
    } else {
        me.spurious.fetch_add(1, std::memory_order_relaxed);
        trace("wakeup: no connection (another worker won it)");
    }
    return conn;
}

}  // namespace sl
