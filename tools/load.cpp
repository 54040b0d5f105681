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

#include "commands.hpp"
#include "fd.hpp"
#include "http.hpp"
#include "json.hpp"
#include "strings.hpp"

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
constexpr size_t kMaxAnswer = 1 << 20;  // an answer this long without its end is wrong
constexpr size_t kWrongSamples = 5;

// ---- what each request must get back ------------------------------------------------------

struct Expected {
    std::string label;   // the request as given
    std::string wire;    // the bytes sent
    std::string answer;  // the answer line (text) or body line (HTTP), without LF
    bool prefix = false;  // answer is only a prefix (WHO, STATS, ERR ...)
    int status = 200;     // HTTP only
    bool closes = false;  // the server closes after answering (QUIT, Connection: close)
};

Expected expect(const LoadOptions& o, const std::string& request) {
    Expected e;
    e.label = request;
    sl::Command c;
    if (o.protocol == Protocol::text) {
        c = sl::parse_command(request);
        e.wire = request + "\n";
    } else {
        sl::HttpRequest r;
        r.method = "GET";
        r.target = request;
        sl::Route route = sl::route(r);
        c = route.command;
        e.status = route.status;
        e.closes = o.conn_per_request;
        e.wire = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\n{}\r\n", request, o.host,
                             o.conn_per_request ? "Connection: close\r\n" : "");
    }
    switch (c.verb) {
    case sl::Verb::ping: e.answer = "PONG"; break;
    case sl::Verb::echo: e.answer = c.text; break;
    case sl::Verb::sleep: e.answer = fmt::format("SLEPT {}", c.number); break;
    case sl::Verb::work: e.answer = fmt::format("WORKED {} {:016x}", c.number, sl::splitmix64_after(c.number)); break;
    case sl::Verb::who:
    case sl::Verb::stats: e.answer = "model="; e.prefix = true; break;
    case sl::Verb::quit: e.answer = "BYE"; e.closes = true; break;
    case sl::Verb::crash:
    case sl::Verb::invalid: e.answer = "ERR "; e.prefix = true; break;
    }
    return e;
}

bool matches(const Expected& e, std::string_view got) {
    return e.prefix ? got.substr(0, e.answer.size()) == e.answer : got == e.answer;
}

enum class Parse { need_more, right, wrong };

// One answer at the front of `in` (consumed when complete). `server_closes`
// is set when an HTTP answer says Connection: close.
Parse parse_answer(Protocol protocol, const Expected& e, std::string& in, std::string& got, bool& server_closes) {
    if (protocol == Protocol::text) {
        size_t lf = in.find('\n');
        if (lf == std::string::npos) return in.size() > kMaxAnswer ? (got = "(no LF in 1 MiB)", Parse::wrong) : Parse::need_more;
        std::string_view line(in.data(), lf > 0 && in[lf - 1] == '\r' ? lf - 1 : lf);
        bool right = matches(e, line);
        if (!right) got = line;
        in.erase(0, lf + 1);
        return right ? Parse::right : Parse::wrong;
    }
    size_t head_end = in.find("\r\n\r\n");
    if (head_end == std::string::npos) return in.size() > kMaxAnswer ? (got = "(no header end)", Parse::wrong) : Parse::need_more;
    std::string_view head(in.data(), head_end);
    int status = 0;
    if (head.size() >= 12 && head.substr(0, 7) == "HTTP/1.")
        std::from_chars(head.data() + 9, head.data() + 12, status);
    size_t length = 0;
    for (size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
        size_t next = head.find("\r\n", pos + 2);
        std::string_view line = head.substr(pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
        size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string_view name = line.substr(0, colon), value = sl::trim(line.substr(colon + 1));
            if (sl::iequals(name, "Content-Length")) std::from_chars(value.data(), value.data() + value.size(), length);
            if (sl::iequals(name, "Connection") && sl::iequals(value, "close")) server_closes = true;
        }
        pos = next;
    }
    if (length > kMaxAnswer) return got = "(body too long)", Parse::wrong;
    if (in.size() < head_end + 4 + length) return Parse::need_more;
    std::string_view body(in.data() + head_end + 4, length);
    bool right = status == e.status &&
                 (status != 200 || (!body.empty() && body.back() == '\n' && matches(e, body.substr(0, body.size() - 1))));
    if (!right) got = fmt::format("{} {}", status, body.substr(0, body.find('\n')));
    in.erase(0, head_end + 4 + length);
    return right ? Parse::right : Parse::wrong;
}

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
    void watch(size_t i, uint32_t events, int op) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = i;
        ::epoll_ctl(epoll_.get(), op, conns_[i].fd.get(), &ev);
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
    ++result_.sent;
    if (!c.fd) {
        open(i, now);
        return;
    }
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
            return watch(i, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);  // the rest when there is room
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
        watch(i, EPOLLIN, EPOLL_CTL_MOD);
        send_some(i);
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

namespace {

std::string latency_json(const Histogram& h) {
    auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
    return fmt::format(R"({{"p50": {:.3f}, "p90": {:.3f}, "p99": {:.3f}, "p99.9": {:.3f}, "max": {:.3f}, "mean": {:.3f}}})",
                       ms(h.percentile(0.5)), ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.percentile(0.999)),
                       ms(h.max()), h.mean() / 1000.0);
}

std::string latency_text(const Histogram& h) {
    auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
    return fmt::format("p50 {:.2f} ms  p90 {:.2f}  p99 {:.2f}  p99.9 {:.2f}  max {:.2f}", ms(h.percentile(0.5)),
                       ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max()));
}

}  // namespace

std::string to_json(const LoadOptions& o, const LoadResult& r) {
    std::string out = fmt::format(
        R"({{"host": {}, "port": {}, "protocol": "{}", "connections": {}, "conn_per_request": {}, "rate": {}, )"
        R"("elapsed_s": {:.3f}, "sent": {}, "ok": {}, "errors": {}, "unfinished": {}, "connects": {}, "rps": {:.1f}, )"
        R"("latency_ms": {}, "failures": {{)",
        json_string(o.host), o.port, o.protocol == Protocol::text ? "text" : "http", o.connections,
        o.conn_per_request ? "true" : "false", o.rate, r.elapsed_s, r.sent, r.ok, r.errors(), r.unfinished, r.connects,
        r.rps(), latency_json(r.latency));
    for (size_t f = 0; f < r.failures.size(); ++f)
        out += fmt::format("{}\"{}\": {}", f ? ", " : "", kFailureNames[f], r.failures[f]);
    out += "}, \"by_request\": [";
    for (size_t k = 0; k < r.per_request.size(); ++k)
        out += fmt::format(R"({}{{"request": {}, "ok": {}, "latency_ms": {}}})", k ? ", " : "",
                           json_string(r.per_request[k].request), r.per_request[k].ok,
                           latency_json(r.per_request[k].latency));
    out += "], \"wrong_samples\": [";
    for (size_t k = 0; k < r.wrong_samples.size(); ++k) out += (k ? ", " : "") + json_string(r.wrong_samples[k]);
    return out + "]}";
}

std::string to_text(const LoadOptions& o, const LoadResult& r) {
    std::string out = fmt::format(
        "loadgen: {}:{} {}, {} connections ({}), {:.2f} s\n"
        "  requests  {} sent, {} right answers, {} errors, {} unfinished at the end\n"
        "  rate      {:.0f} requests/s\n"
        "  latency   {}\n"
        "  errors   ",
        o.host, o.port, o.protocol == Protocol::text ? "text" : "http", o.connections,
        o.conn_per_request ? "a connection per request" : "keep-alive", r.elapsed_s, r.sent, r.ok, r.errors(),
        r.unfinished, r.rps(), latency_text(r.latency));
    for (size_t f = 0; f < r.failures.size(); ++f) out += fmt::format(" {} {}", kFailureNames[f], r.failures[f]);
    out += "\n";
    if (r.per_request.size() > 1)
        for (const PerRequest& p : r.per_request)
            out += fmt::format("  {:<9} {} right, {}\n", p.request.substr(0, 9), p.ok, latency_text(p.latency));
    for (const std::string& w : r.wrong_samples) out += fmt::format("  wrong answer: {}\n", w);
    return out;
}

}  // namespace lg
