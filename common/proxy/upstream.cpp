#include "proxy/upstream.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"
#include "base/fd.hpp"
#include "base/trace.hpp"
#include "protocol/http.hpp"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sl {

// A text answer is one line; the longest a backend of this toolkit sends is
// the ECHO of a request line (under 8 KiB). Longer gets the client an error.
constexpr size_t kMaxAnswerLine = 64 * 1024;

// ---- one connection to a backend -----------------------------------------------------------

class UpstreamConnection final : public Watcher {
public:
    UpstreamConnection(Upstreams& pool, int backend, Fd fd) : pool_(pool), backend_(backend), fd_(std::move(fd)) {}
    ~UpstreamConnection() override {
        if (timer_) pool_.loop_.cancel(timer_);
    }

    int backend() const { return backend_; }
    bool http() const { return http_; }
    bool connected() const { return connected_; }

    /// A fresh socket: connecting, then `job` is sent.
    void connect(Upstreams::Job job) {
        job_ = std::move(job);
        http_ = job_.http;
        if (!pool_.loop_.add(fd_.get(), EPOLLOUT, this)) return connect_failed("could not be watched (epoll_ctl)", false);
        watching_ = EPOLLOUT;
        set_deadline(pool_.options_.connect_timeout_s, [this] { connect_failed("timed out", true); });
    }

    /// A pooled connection takes `job`.
    void send(Upstreams::Job job) {
        job_ = std::move(job);
        reused_ = true;
        start_request();
    }

    void on_events(uint32_t events) override {
        if (closed_) return;
        if (!connected_) return on_connect();
        if (!busy_) return on_idle_input();
        if (events & EPOLLOUT) write_request();
        if (!closed_ && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_answer();
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        if (timer_) pool_.loop_.cancel(timer_), timer_ = 0;
        fd_.reset();  // the last descriptor: out of the epoll set too
        pool_.closed(this);
    }

private:
    void on_connect() {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err != 0) return connect_failed(std::strerror(err), false);
        connected_ = true;
        int one = 1;  // small requests, one at a time: Nagle would hold each back behind the previous ACK
        ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SL_TRACE("upstream: connected to {}", pool_.backends_[static_cast<size_t>(backend_)].name);
        start_request();
    }

    void connect_failed(const std::string& why, bool timeout) {
        Upstreams::Job job = std::move(job_);
        close();
        pool_.done_with(backend_);
        pool_.failed(backend_, fmt::format("connect to {}: {}", pool_.backends_[static_cast<size_t>(backend_)].name, why),
                     timeout, std::move(job), /*sent=*/false);
    }

    void start_request() {
        busy_ = true;
        in_.clear();
        written_ = 0;
        set_deadline(pool_.options_.read_timeout_s, [this] { answer_failed("no answer within --read-timeout", true); });
        write_request();
    }

    void write_request() {
        const std::string& out = job_.request;
        while (written_ < out.size()) {
            ssize_t n = ::send(fd_.get(), out.data() + written_, out.size() - written_, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                written_ += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return watch(EPOLLIN | EPOLLOUT);
            return answer_failed(fmt::format("send: {}", std::strerror(errno)), false);
        }
        watch(EPOLLIN);
    }

    void read_answer() {
        // An answer is held whole before it is relayed, so what is held is
        // bounded: reading stops past the largest answer that could be
        // complete, and the checks below refuse the rest.
        const size_t most = job_.http ? kMaxHeaderBytes + 4 + kMaxResponseBody : kMaxAnswerLine + 1;
        char buf[16384];
        while (in_.size() <= most) {
            ssize_t n = ::read(fd_.get(), buf, sizeof buf);
            if (n > 0) {
                in_.append(buf, static_cast<size_t>(n));
                if (static_cast<size_t>(n) < sizeof buf) break;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            return answer_failed(n == 0 ? "the backend closed the connection" : "the backend reset the connection",
                                 false);
        }
        Answer answer;
        bool keep = true;
        if (job_.http) {
            HttpResponseParse r = parse_http_response(in_);
            if (r.status == HttpResponseParse::need_more) return;
            if (r.status == HttpResponseParse::error) return answer_failed("a malformed answer: " + r.reason, false);
            std::string body = r.body;
            if (!body.empty() && body.back() == '\n') body.pop_back();
            answer.line = std::move(body);
            answer.error = r.code >= 400;
            if (r.code != 200 && r.code != 400) answer.status = r.code;
            if (r.content_type.rfind("application/json", 0) == 0) answer.content_type = "application/json";
            if (r.content_type.rfind("text/html", 0) == 0) answer.content_type = "text/html; charset=utf-8";
            keep = !r.close && r.consumed == in_.size();
        } else {
            size_t lf = in_.find('\n');
            if ((lf == std::string::npos ? in_.size() : lf) > kMaxAnswerLine)
                return answer_failed("an answer line over 64 KiB", false);
            if (lf == std::string::npos) return;
            answer.line = in_.substr(0, lf);
            if (!answer.line.empty() && answer.line.back() == '\r') answer.line.pop_back();
            answer.error = answer.line.rfind("ERR ", 0) == 0;
            keep = lf + 1 == in_.size();  // nothing more may come unasked
        }
        busy_ = false;
        if (timer_) pool_.loop_.cancel(timer_), timer_ = 0;
        std::function<void(Answer)> done = std::move(job_.done);
        job_ = {};
        pool_.done_with(backend_);
        if (!keep) close();
        else pool_.give_back(this);
        done(std::move(answer));
    }

    // The answer will not come. A request on a reused connection that met
    // its close with no byte of answer was never read: sent again, once, on a
    // new connection (RFC 9112, section 9.3.1; docs/protocol.md).
    void answer_failed(const std::string& why, bool timeout) {
        Upstreams::Job job = std::move(job_);
        bool never_read = reused_ && in_.empty() && !timeout;
        busy_ = false;
        close();
        pool_.done_with(backend_);
        std::string name = pool_.backends_[static_cast<size_t>(backend_)].name;
        if (never_read && job.tries < 2) {
            SL_TRACE("upstream: a pooled connection to {} was closed under a request: sending it again", name);
            ++job.tries;
            return pool_.dispatch(std::move(job));
        }
        pool_.failed(backend_, fmt::format("{}: {}", name, why), timeout, std::move(job), /*sent=*/true);
    }

    // Idle in the pool, its socket is watched for input: only an end (the
    // backend closed it: its idle timeout, a restart) or an error can come.
    // Close our side at once: left alone it would sit in CLOSE_WAIT.
    void on_idle_input() {
        char c;
        ssize_t n = ::recv(fd_.get(), &c, 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        SL_TRACE("upstream: {} closed an idle connection; closing ours",
                 pool_.backends_[static_cast<size_t>(backend_)].name);
        close();
    }

    void watch(uint32_t events) {
        if (events == watching_) return;
        if (!pool_.loop_.modify(fd_.get(), events, this)) return answer_failed("epoll_ctl failed", false);
        watching_ = events;
    }

    // One timer at a time (the connect's, then the answer's). When it fires it
    // is no longer the loop's to cancel; until then close() cancels it, so it
    // never runs for a connection that is gone.
    void set_deadline(double seconds, std::function<void()> fn) {
        if (timer_) pool_.loop_.cancel(timer_);
        timer_ = pool_.loop_.at(monotonic_ms() + static_cast<int64_t>(seconds * 1000), [this, fn = std::move(fn)] {
            timer_ = 0;
            fn();
        });
    }

    Upstreams& pool_;
    int backend_;
    Fd fd_;
    Upstreams::Job job_;
    std::string in_;
    size_t written_ = 0;
    uint32_t watching_ = 0;
    EventLoop::TimerId timer_ = 0;
    bool connected_ = false;
    bool busy_ = false;
    bool reused_ = false;
    bool http_ = false;  // the framing of its first request, which it keeps
    bool closed_ = false;
};

// ---- the pool ------------------------------------------------------------------------------

void add_upstream_options(CLI::App& app, UpstreamOptions& o) {
    auto host_port = [](std::string& text) -> std::string {
        size_t colon = text.rfind(':');
        in_addr a{};
        if (colon == std::string::npos || ::inet_pton(AF_INET, text.substr(0, colon).c_str(), &a) != 1)
            return "a backend is IPV4:PORT, e.g. 127.0.0.1:9001";
        int port = std::atoi(text.c_str() + colon + 1);
        return port > 0 && port < 65536 ? std::string() : "a backend's port is 1..65535";
    };
    app.add_option("--backend", o.backends, "a backend, IPV4:PORT (repeat for several)")
        ->required()
        ->check(CLI::Validator(host_port, "IPV4:PORT", "backend"));
    app.add_option("--upstream-keepalive", o.keepalive, "idle connections to backends each worker keeps (0: none)")
        ->capture_default_str()
        ->check(CLI::Range(0, 10000));
    app.add_option("--connect-timeout", o.connect_timeout_s, "seconds to connect to a backend")
        ->capture_default_str()
        ->check(CLI::Range(0.01, 600.0));
    app.add_option("--read-timeout", o.read_timeout_s, "seconds a backend may take to answer")
        ->capture_default_str()
        ->check(CLI::Range(0.01, 3600.0));
    app.add_option("--fail-timeout", o.fail_timeout_s, "seconds a backend that failed a connect is left alone")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 3600.0));
    add_enum_option(app, "--balance", o.balance, Names<Balance>{{"rr", Balance::round_robin}, {"least", Balance::least}},
                    "round robin, or the backend with the fewest requests in flight");
}

Upstreams::Upstreams(EventLoop& loop, const UpstreamOptions& options, Counters& counters)
    : loop_(loop), options_(options), counters_(counters) {
    for (const std::string& b : options.backends) {
        Backend backend;
        backend.name = b;
        size_t colon = b.rfind(':');
        backend.addr.sin_family = AF_INET;
        backend.addr.sin_port = htons(static_cast<uint16_t>(std::atoi(b.c_str() + colon + 1)));
        ::inet_pton(AF_INET, b.substr(0, colon).c_str(), &backend.addr.sin_addr);
        backends_.push_back(std::move(backend));
    }
}

Upstreams::~Upstreams() = default;

uint32_t Upstreams::open() const {
    return static_cast<uint32_t>(connections_.size());
}

void Upstreams::relay(const Command& command, Framing framing, std::function<void(Answer)> done) {
    Job job;
    job.http = framing == Framing::http;
    job.request = job.http ? http_request_for(command, "backend") : text_request_for(command) + "\n";
    job.done = std::move(done);
    dispatch(std::move(job));
}

// The backend for the next request: among those not left alone after a
// failure, the next in turn, or the one with the fewest requests in flight.
// -1 when none is up. `advance` false: only look, the turn does not move.
int Upstreams::pick(bool advance) {
    int64_t now = monotonic_ms();
    int best = -1;
    for (size_t k = 0; k < backends_.size() && !(best >= 0 && options_.balance == Balance::round_robin); ++k) {
        size_t i = (next_ + k) % backends_.size();
        if (backends_[i].down_until_ms > now) continue;
        if (best < 0 || backends_[i].busy < backends_[static_cast<size_t>(best)].busy) best = static_cast<int>(i);
    }
    if (best >= 0 && advance) next_ = static_cast<size_t>(best) + 1;
    return best;
}

void Upstreams::dispatch(Job job) {
    int b = pick();
    if (b < 0) return failed(-1, "every backend failed a moment ago (--fail-timeout)", false, std::move(job), false);
    Backend& backend = backends_[static_cast<size_t>(b)];
    ++backend.busy;
    ++job.tries;
    std::vector<UpstreamConnection*>& idle = backend.idle[job.http];
    if (!idle.empty()) {  // the most recently used: the least likely to have been closed meanwhile
        UpstreamConnection* c = idle.back();
        idle.pop_back();
        return c->send(std::move(job));
    }
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        --backend.busy;
        return failed(-1, fmt::format("socket: {}", std::strerror(errno)), false, std::move(job), false);
    }
    int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&backend.addr), sizeof backend.addr);
    if (rc < 0 && errno != EINPROGRESS) {  // on loopback a refusal is known at once
        --backend.busy;
        return failed(b, fmt::format("connect to {}: {}", backend.name, std::strerror(errno)), false, std::move(job),
                      false);
    }
    auto c = std::make_unique<UpstreamConnection>(*this, b, std::move(fd));
    UpstreamConnection* raw = c.get();
    connections_.push_back(std::move(c));
    counters_.upstream.store(static_cast<uint32_t>(connections_.size()), std::memory_order_relaxed);
    raw->connect(std::move(job));
}

void Upstreams::done_with(int backend) {
    --backends_[static_cast<size_t>(backend)].busy;
}

void Upstreams::give_back(UpstreamConnection* c) {
    Backend& backend = backends_[static_cast<size_t>(c->backend())];
    size_t idle = 0;
    for (const Backend& b : backends_) idle += b.idle[0].size() + b.idle[1].size();
    if (idle >= static_cast<size_t>(options_.keepalive)) return c->close();  // enough kept: this one goes
    backend.idle[c->http()].push_back(c);
}

void Upstreams::closed(UpstreamConnection* c) {
    Backend& backend = backends_[static_cast<size_t>(c->backend())];
    for (auto& idle : backend.idle) idle.erase(std::remove(idle.begin(), idle.end(), c), idle.end());
    auto it = std::find_if(connections_.begin(), connections_.end(), [c](const auto& p) { return p.get() == c; });
    if (it == connections_.end()) return;
    closed_.push_back(std::move(*it));
    connections_.erase(it);
    counters_.upstream.store(static_cast<uint32_t>(connections_.size()), std::memory_order_relaxed);
    if (closed_.size() == 1) loop_.defer([this] { closed_.clear(); });  // its handler may be on the stack
}

// A request that could not be answered. A connect that failed marks its
// backend down; a request not yet sent is tried once more elsewhere. Then
// the client gets the proxy's error: 504 for a timeout, 502 otherwise.
void Upstreams::failed(int backend, const std::string& why, bool timeout, Job job, bool sent) {
    if (backend >= 0 && !sent) {
        Backend& b = backends_[static_cast<size_t>(backend)];
        b.down_until_ms = monotonic_ms() + static_cast<int64_t>(options_.fail_timeout_s * 1000);
        log("upstream {}: {}; left alone for {} s", b.name, why, options_.fail_timeout_s);
    }
    if (!sent && job.tries < 2 && backend >= 0 && pick(/*advance=*/false) >= 0) return dispatch(std::move(job));
    Answer a;
    a.line = "ERR upstream " + why;
    a.error = true;
    a.status = timeout ? 504 : 502;
    // Not at once: from relay() (no backend to try) the client's connection
    // is still inside its request (EventServer::delegate). At the turn's end.
    loop_.defer([done = std::move(job.done), a = std::move(a)] { done(a); });
}

}  // namespace sl
