// load.cpp: the load engine (see load.hpp).
//
// Each thread runs one loop: epoll_wait with a short timeout, handle the
// sockets that are ready, start the requests whose time has come (a min-heap
// of due times: --rate, the back-off after a refused connect), and every
// 20 ms look for requests past their deadline. A connection is a small state
// machine: connecting -> waiting for its answer -> (next request, or close
// and connect again). All sockets are non-blocking; a send that does not go
// out at once waits for EPOLLOUT; MSG_NOSIGNAL keeps a reset peer from
// killing us with SIGPIPE.
#include "load.hpp"

#include "base/fd.hpp"
#include "oracle.hpp"
#include "response.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <thread>

namespace lg {

uint64_t LoadResult::errors() const { return std::accumulate(failures.begin(), failures.end(), uint64_t{0}); }

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kWrongSamples = 5;

// ---- state shared by the threads (read-only while they run, but the budget) -----------------

struct Shared {
    const LoadOptions& o;
    std::vector<Expected> expected;
    std::vector<size_t> deck;  // request indices in weighted, interleaved order
    sockaddr_in addr{};
    Clock::time_point start, end;  // end: --duration's limit (time_point::max() without one)
    std::atomic<int64_t> budget{0};  // requests left to send under --requests
    Clock::duration interval{};      // --rate: between two requests on one connection
};

// Weights 3,1 -> 0 1 0 0 (each request spread evenly over the deck).
std::vector<size_t> make_deck(const std::vector<unsigned>& weights, size_t kinds) {
    std::vector<std::pair<double, size_t>> slots;
    for (size_t k = 0; k < kinds; ++k) {
        unsigned w = k < weights.size() ? weights[k] : 1;
        for (unsigned j = 0; j < w; ++j) slots.push_back({(j + 0.5) / w, k});
    }
    std::stable_sort(slots.begin(), slots.end());
    std::vector<size_t> deck;
    for (auto& s : slots) deck.push_back(s.second);
    return deck;
}

// ---- one thread -------------------------------------------------------------------------------

class Worker {
public:
    Worker(Shared& sh, int first, int count) : sh_(sh), first_(first), conns_(static_cast<size_t>(count)) {
        epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
        if (!epoll_) throw std::runtime_error(fmt::format("epoll_create1: {}", std::strerror(errno)));
        result_.per_request.resize(sh.expected.size());
    }

    LoadResult run(const std::function<void(double)>& progress);

private:
    enum class State { scheduled, connecting, waiting, done };
    struct Conn {
        sl::Fd fd;
        State state = State::scheduled;
        std::string_view out;  // unsent part of the request (a view of its Expected::wire)
        std::string in;
        size_t kind = 0;
        uint64_t picks = 0;
        bool reused = false;    // this request went out on a connection that had answered one already
        bool retrying = false;  // this request is being sent a second time
        Clock::time_point start, deadline, due;
    };
    using Timer = std::pair<Clock::time_point, size_t>;

    void begin(size_t i, Clock::time_point now);
    void open(size_t i, Clock::time_point now);
    void send_some(size_t i);
    void on_event(size_t i, uint32_t events, Clock::time_point now);
    void read_answers(size_t i, Clock::time_point now);
    void finish(size_t i, Clock::time_point now, bool reconnect);
    void fail(size_t i, Failure why, Clock::time_point now, const std::string& got = {});
    void schedule(size_t i, Clock::time_point at) {
        conns_[i].state = State::scheduled;
        timers_.push({at, i});
    }
    // Interest in a connection's events. A failure (ENOMEM, ENOSPC: the
    // limit of watched descriptors) would leave the connection unwatched, to
    // surface only as a timeout much later: it is a failed connection now.
    bool watch(size_t i, uint32_t events, int op) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = i;
        if (::epoll_ctl(epoll_.get(), op, conns_[i].fd.get(), &ev) == 0) return true;
        fail(i, Failure::connect, Clock::now());
        return false;
    }
    bool active() const {
        for (const Conn& c : conns_)
            if (c.state != State::done) return true;
        return false;
    }

    Shared& sh_;
    int first_;  // global index of conns_[0], to stagger --rate start times
    std::vector<Conn> conns_;
    sl::Fd epoll_;
    std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
    LoadResult result_;
};

LoadResult Worker::run(const std::function<void(double)>& progress) {
    for (size_t i = 0; i < conns_.size(); ++i) {
        Clock::duration offset{};
        if (sh_.o.rate > 0) offset = std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>((first_ + static_cast<double>(i)) / sh_.o.rate));
        conns_[i].due = sh_.start + offset;
        schedule(i, conns_[i].due);
    }
    std::vector<epoll_event> events(conns_.size() + 1);
    Clock::time_point last_scan = sh_.start, last_progress = sh_.start;
    while (active()) {
        Clock::time_point now = Clock::now();
        if (now >= sh_.end) break;
        // epoll_pwait2 takes nanoseconds: a --rate schedule is kept to the
        // microsecond, not rounded up to epoll_wait's milliseconds.
        Clock::duration wait = std::chrono::milliseconds(20);
        if (!timers_.empty()) wait = std::max(Clock::duration::zero(), std::min(wait, timers_.top().first - now));
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
        timespec timeout{0, static_cast<long>(ns)};
        int n = ::epoll_pwait2(epoll_.get(), events.data(), static_cast<int>(events.size()), &timeout, nullptr);
        now = Clock::now();
        for (int e = 0; e < n; ++e) on_event(events[static_cast<size_t>(e)].data.u64, events[static_cast<size_t>(e)].events, now);
        while (!timers_.empty() && timers_.top().first <= now) {
            size_t i = timers_.top().second;
            timers_.pop();
            if (conns_[i].state == State::scheduled) begin(i, now);
        }
        if (now - last_scan >= std::chrono::milliseconds(20)) {
            last_scan = now;
            for (size_t i = 0; i < conns_.size(); ++i)
                if ((conns_[i].state == State::connecting || conns_[i].state == State::waiting) && now >= conns_[i].deadline)
                    fail(i, Failure::timeout, now);
        }
        if (progress && now - last_progress >= std::chrono::milliseconds(100)) {
            last_progress = now;
            if (sh_.o.total_requests > 0)
                progress(1.0 - static_cast<double>(std::max<int64_t>(0, sh_.budget.load())) /
                                   static_cast<double>(sh_.o.total_requests));
            else
                progress(std::chrono::duration<double>(now - sh_.start) / std::chrono::duration<double>(sh_.end - sh_.start));
        }
    }
    for (Conn& c : conns_)
        if (c.state == State::connecting || c.state == State::waiting) ++result_.unfinished;
    return std::move(result_);
}

// Starts request number `picks` on connection i: intended at c.due under
// --rate (latency counts from then, so a stalled server cannot hide), now otherwise.
void Worker::begin(size_t i, Clock::time_point now) {
    Conn& c = conns_[i];
    if (sh_.o.total_requests > 0 && sh_.budget.fetch_sub(1) <= 0) {
        c.state = State::done;
        c.fd.reset();
        return;
    }
    c.kind = sh_.deck[(c.picks++ + static_cast<size_t>(first_) + i) % sh_.deck.size()];
    c.start = sh_.o.rate > 0 ? c.due : now;
    c.deadline = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(sh_.o.timeout_s));
    c.out = sh_.expected[c.kind].wire;
    c.in.clear();
    c.retrying = false;
    ++result_.sent;
    if (!c.fd) {
        open(i, now);
        return;
    }
    c.reused = true;
    c.state = State::waiting;
    send_some(i);
}

void Worker::open(size_t i, Clock::time_point now) {
    Conn& c = conns_[i];
    c.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.fd) return fail(i, Failure::connect, now);
    int one = 1;  // requests are small and answered one at a time: do not let Nagle hold them
    ::setsockopt(c.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = ::connect(c.fd.get(), reinterpret_cast<const sockaddr*>(&sh_.addr), sizeof sh_.addr);
    if (rc < 0 && errno != EINPROGRESS) return fail(i, errno == ECONNREFUSED ? Failure::refused : Failure::connect, now);
    ++result_.connects;
    c.reused = false;
    c.state = State::connecting;
    watch(i, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
}

void Worker::send_some(size_t i) {
    Conn& c = conns_[i];
    while (!c.out.empty()) {
        ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n > 0) {
            c.out.remove_prefix(static_cast<size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch(i, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);  // the rest when there is room
            return;
        } else {
            return fail(i, Failure::reset, Clock::now());
        }
    }
}

void Worker::on_event(size_t i, uint32_t events, Clock::time_point now) {
    Conn& c = conns_[i];
    if (c.state == State::connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return fail(i, err == ECONNREFUSED ? Failure::refused : Failure::connect, now);
        if (!(events & EPOLLOUT)) return;
        c.state = State::waiting;
        if (watch(i, EPOLLIN, EPOLL_CTL_MOD)) send_some(i);
        return;
    }
    if (c.state == State::waiting && !c.out.empty() && (events & EPOLLOUT)) {
        send_some(i);
        if (c.out.empty() && c.state == State::waiting) watch(i, EPOLLIN, EPOLL_CTL_MOD);
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_answers(i, now);
}

void Worker::read_answers(size_t i, Clock::time_point now) {
    Conn& c = conns_[i];
    char buf[16384];
    bool eof = false;
    for (;;) {
        ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
        if (n > 0) {
            if (c.state == State::waiting) c.in.append(buf, static_cast<size_t>(n));
            if (static_cast<size_t>(n) < sizeof buf) break;
        } else if (n == 0) {
            eof = true;
            break;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            if (c.state == State::waiting) return fail(i, Failure::reset, now);
            c.fd.reset();  // an idle connection (--rate) the server dropped: reconnect at the next request
            return;
        }
    }
    if (c.state == State::waiting) {
        const Expected& e = sh_.expected[c.kind];
        std::string got;
        bool server_closes = false;
        switch (parse_answer(sh_.o.protocol, e, c.in, got, server_closes)) {
        case Parse::need_more:
            if (eof) return fail(i, Failure::closed, now);
            return;
        case Parse::wrong: return fail(i, Failure::wrong, now, got);
        case Parse::right: return finish(i, now, eof || server_closes || e.closes || sh_.o.conn_per_request);
        }
    }
    if (eof) c.fd.reset();
}

// A right answer: record it, then the next request on this slot.
void Worker::finish(size_t i, Clock::time_point now, bool reconnect) {
    Conn& c = conns_[i];
    auto us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - c.start).count());
    ++result_.ok;
    result_.latency.record(us);
    ++result_.per_request[c.kind].ok;
    result_.per_request[c.kind].latency.record(us);
    if (reconnect) c.fd.reset();  // closing the Fd also takes it out of the epoll set
    if (sh_.o.rate > 0) {
        c.due += sh_.interval;
        schedule(i, c.due);
    } else {
        begin(i, now);
    }
}

void Worker::fail(size_t i, Failure why, Clock::time_point now, const std::string& got) {
    Conn& c = conns_[i];
    // A keep-alive connection may be closed by the server at any moment
    // between two requests (an idle timeout, a worker leaving in a restart),
    // and our next request may cross its close on the wire. A server that
    // answers every request it reads closes (or resets) such a connection
    // without a byte of answer: the request was never executed, and sending
    // it again on a new connection is safe. HTTP clients do the same, once,
    // and only for a reused connection (RFC 9112, section 9.3.1): on a new
    // one, the same silence could mean the request crashed the server.
    if ((why == Failure::closed || why == Failure::reset) && c.state == State::waiting && c.reused &&
        !c.retrying && c.in.empty()) {
        ++result_.retried;
        c.retrying = true;
        c.fd.reset();
        c.out = sh_.expected[c.kind].wire;
        return open(i, now);  // the deadline and the latency still count from the first try
    }
    ++result_.failures[static_cast<size_t>(why)];
    if (why == Failure::wrong && result_.wrong_samples.size() < kWrongSamples)
        result_.wrong_samples.push_back(fmt::format("{} -> {}", sh_.expected[c.kind].label, got.substr(0, 200)));
    c.fd.reset();
    // A refused connect comes back at once: wait 10 ms before the next try, or
    // a server that is down would turn this loop into a busy loop.
    Clock::time_point next = now + std::chrono::milliseconds(why == Failure::refused || why == Failure::connect ? 10 : 0);
    if (sh_.o.rate > 0) {
        c.due += sh_.interval;
        next = std::max(next, c.due);
    }
    schedule(i, next);
}

sockaddr_in resolve(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0)
        throw std::invalid_argument(fmt::format("cannot resolve host '{}': {}", host, ::gai_strerror(rc)));
    sockaddr_in addr = *reinterpret_cast<sockaddr_in*>(found->ai_addr);
    ::freeaddrinfo(found);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    return addr;
}

}  // namespace

LoadResult run_load(const LoadOptions& o, const std::function<void(double)>& progress) {
    if (o.requests.empty()) throw std::invalid_argument("no request to send");
    if (!o.weights.empty() && o.weights.size() != o.requests.size())
        throw std::invalid_argument("give one weight per request");
    if (o.connections < 1) throw std::invalid_argument("need at least one connection");
    if (o.duration_s <= 0 && o.total_requests == 0) throw std::invalid_argument("give --duration or --requests");
    if (o.protocol == Protocol::http)
        for (const std::string& path : o.requests)
            if (path.empty() || path[0] != '/') throw std::invalid_argument(fmt::format("an HTTP path starts with '/': '{}'", path));

    // One descriptor per connection: lift the soft limit to the hard one.
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &nofile);
    }

    Shared sh{o, {}, {}, resolve(o.host, o.port), {}, {}, {}, {}};
    for (const std::string& r : o.requests) sh.expected.push_back(expect(o, r));
    sh.deck = make_deck(o.weights, o.requests.size());
    if (sh.deck.empty()) throw std::invalid_argument("every weight is 0");
    sh.budget = static_cast<int64_t>(o.total_requests);
    if (o.rate > 0)
        sh.interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.connections / o.rate));

    int threads = o.threads > 0 ? o.threads
                                : std::min({static_cast<int>(std::thread::hardware_concurrency()), o.connections, 4});
    threads = std::max(1, std::min(threads, o.connections));
    std::vector<LoadResult> parts(static_cast<size_t>(threads));
    std::vector<std::unique_ptr<Worker>> workers;
    for (int t = 0; t < threads; ++t) {
        int first = o.connections * t / threads, last = o.connections * (t + 1) / threads;
        workers.push_back(std::make_unique<Worker>(sh, first, last - first));
    }
    sh.start = Clock::now();
    sh.end = o.duration_s > 0 ? sh.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s))
                              : Clock::time_point::max();
    std::vector<std::thread> running;
    for (int t = 0; t < threads; ++t)
        running.emplace_back([&, t] {
            parts[static_cast<size_t>(t)] = workers[static_cast<size_t>(t)]->run(t == 0 ? progress : std::function<void(double)>{});
        });
    for (auto& th : running) th.join();

    LoadResult all;
    all.elapsed_s = std::chrono::duration<double>(std::min(Clock::now(), sh.end) - sh.start).count();
    all.per_request.resize(o.requests.size());
    for (size_t k = 0; k < o.requests.size(); ++k) all.per_request[k].request = o.requests[k];
    for (LoadResult& p : parts) {
        all.sent += p.sent;
        all.ok += p.ok;
        all.unfinished += p.unfinished;
        all.connects += p.connects;
        all.retried += p.retried;
        for (size_t f = 0; f < all.failures.size(); ++f) all.failures[f] += p.failures[f];
        all.latency.merge(p.latency);
        for (size_t k = 0; k < o.requests.size(); ++k) {
            all.per_request[k].ok += p.per_request[k].ok;
            all.per_request[k].latency.merge(p.per_request[k].latency);
        }
        for (auto& w : p.wrong_samples)
            if (all.wrong_samples.size() < kWrongSamples) all.wrong_samples.push_back(w);
    }
    return all;
}

}  // namespace lg
