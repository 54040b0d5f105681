#include "net/server.hpp"

#include "base/clock.hpp"
#include "base/procfs.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"
#include "net/net.hpp"
#include "protocol/session.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace sl {
namespace {

// CPU already used when main() began. exec() keeps a process's CPU times and
// those of the children it reaped, so a server started by a script (./lab run
// builds first, then execs) would otherwise report the build's CPU as its own.
struct CpuBaseline {
    double user = 0, sys = 0;
};
CpuBaseline g_baseline;

CpuBaseline cpu_used() {
    rusage self{}, children{};
    ::getrusage(RUSAGE_SELF, &self);
    ::getrusage(RUSAGE_CHILDREN, &children);
    return {to_seconds(self.ru_utime) + to_seconds(children.ru_utime),
            to_seconds(self.ru_stime) + to_seconds(children.ru_stime)};
}

}  // namespace

ServerContext one_process_context(std::string_view model, const CommonOptions& options, Counters& counters,
                                  CounterStore& store) {
    ServerContext ctx;
    ctx.model = model;
    ctx.idle_timeout_s = options.idle_timeout;
    ctx.counters = &counters;
    ctx.store = &store;
    const int64_t started_ms = monotonic_ms();
    ctx.totals = [model, &counters, started_ms] {
        return Totals{model, 1, counters.connections.load(), counters.requests.load(),
                      static_cast<uint64_t>(monotonic_ms() - started_ms)};
    };
    return ctx;
}

Identity ConnectionView::identity() const {
    return {ctx_->model, ::getpid(), ::getppid(), static_cast<pid_t>(::syscall(SYS_gettid)), ctx_->worker, serial_};
}

bool ConnectionView::stopping() const {
    return stop_requested();
}

Status ConnectionView::status() const {
    if (ctx_->status) return ctx_->status();
    Status s{ctx_->model, {}, ::getpid(), ctx_->totals(), {}};
    StatusRow row = counters_row(*ctx_->counters);
    row.pid = row.tid = s.pid;
    if (auto st = read_proc_stat(s.pid)) row.cpu_ms = static_cast<uint64_t>((st->utime + st->stime) * 1000);
    s.rows.push_back(row);
    return s;
}

void start_process(std::string_view role, const CommonOptions& options) {
    g_baseline = cpu_used();
    set_role(std::string(role));
    enable_trace(options.trace);
    install_stop_handlers();
    SL_TRACE("started");
}

void announce_listening(std::string_view model, std::string_view host, int listen_fd) {
    std::printf("%.*s listening on %.*s:%d pid %d\n", static_cast<int>(model.size()), model.data(),
                static_cast<int>(host.size()), host.data(), local_port(listen_fd), ::getpid());
    std::fflush(stdout);
}

namespace {

// During a graceful stop, how long a connection with no complete request
// may take to send one: the one that was just accepted, and the keep-alive
// connection whose client may be sending its next request right now.
constexpr int64_t kStopGraceMs = 1000;

// A read blocked on a quiet connection wakes this often to look at the clock
// (idle deadline) and the stop flag. A signal wakes it at once (EINTR); the
// timer bounds the one case a signal cannot: it landed just before the read
// began. Waiting in poll() on the socket and the stop pipe would avoid that
// case too, but costs a third system call per request (poll, read, send),
// measured at a third of the keep-alive throughput (docs/results.md).
constexpr int kWakeMs = 1000;
// During a stop's grace, so that it ends when it should, not up to a second late.
constexpr int kGraceWakeMs = 50;

// How a connection ended: why (for the trace), and whether its client may
// still be sending, so that closing it must linger (net.hpp).
struct Ended {
    const char* why;
    bool linger = false;
};

// The connection loop.
Ended run_connection(int fd, Session& session, const ServerContext& ctx, uint64_t serial) {
    const int64_t idle_ms = int64_t{ctx.idle_timeout_s} * 1000;
    int64_t deadline = monotonic_ms() + idle_ms;
    bool answered_any = false;
    bool grace_started = false;
    bool full_read = false;  // the last read filled the buffer: more may be in the socket
    std::string in, out;
    char buf[16384];
    for (;;) {
        // Answer every complete request already received, one at a time.
        size_t used = 0;
        while (used < in.size()) {
            // busy_since lets a master see a request that takes too long (--request-timeout).
            ctx.counters->begin_request(monotonic_ms());
            // Stopping, before or while it runs (a SLEEP): its answer is the
            // connection's last, and says so in HTTP (ConnectionView::stopping).
            Session::Step s = session.step(std::string_view(in).substr(used), out);
            ctx.counters->busy_since_ms.store(0, std::memory_order_relaxed);
            if (s.consumed == 0) break;
            used += s.consumed;
            if (!s.answered) continue;
            answered_any = true;
            int64_t now = monotonic_ms();
            ctx.counters->count_answer(now);
            deadline = now + idle_ms;
            SL_TRACE("conn {}: {} -> {}", serial, session.last_request(), session.last_answer());
            if (!write_all(fd, out)) return {"write failed (client gone or not reading)"};
            out.clear();
            if (session.closing()) {
                // Bytes behind the last request, a read that filled the buffer, or
                // a malformed request whose rest was never read: the client may
                // still be sending.
                bool more = used < in.size() || full_read || session.ended_on_error();
                return {stop_requested() ? "server stopping" : "closed by the server", more};
            }
        }
        in.erase(0, used);
        // Waiting for bytes: the rest of a request, or the next one.
        ctx.counters->set_activity(in.empty() && answered_any ? Activity::keepalive : Activity::reading);

        for (;;) {
            // A graceful stop: a connection waiting for a request, whether
            // just accepted, holding half a request or idle between two, gets
            // a short grace for it. Closing an idle keep-alive connection at
            // once (as nginx does) races the request its client may be
            // sending right now: that request would be lost. One that comes
            // is answered as the last (HTTP: `Connection: close`).
            if (stop_requested() && !grace_started) {
                grace_started = true;
                deadline = std::min(deadline, monotonic_ms() + kStopGraceMs);
                // Look at the clock more often than kWakeMs while the grace runs.
                // (If it cannot be set, the grace just ends up to kWakeMs late.)
                static_cast<void>(set_receive_wakeup(fd, kGraceWakeMs));
            }
            if (monotonic_ms() >= deadline) {
                if (stop_requested()) return {"server stopping (no request within the grace)"};
                write_all(fd, session.idle_goodbye());
                return {"idle timeout"};
            }
            size_t got = 0;
            ReadStatus r = read_or_wake(fd, buf, sizeof buf, got);
            if (r == ReadStatus::eof) return {"client closed"};
            if (r == ReadStatus::error) return {"read failed (connection reset)"};
            if (r == ReadStatus::data) {
                in.append(buf, got);
                full_read = got == sizeof buf;
                break;
            }
        }
    }
}

}  // namespace

void serve_connection(Fd conn, const ServerContext& ctx, uint64_t serial) {
    SL_TRACE("conn {} from {}", serial, peer_name(conn.get()));
    if (!set_send_timeout(conn.get(), ctx.idle_timeout_s) || !set_receive_wakeup(conn.get(), kWakeMs)) {
        log("conn {}: setsockopt SO_SNDTIMEO/SO_RCVTIMEO: {} (closing it: without a timeout a silent client "
            "would hold it past every deadline)", serial, std::strerror(errno));
        return;
    }
    ConnectionView view(ctx, serial);
    Session session(view);
    // What the status views show: one relaxed store to a line this thread owns.
    ctx.counters->open.fetch_add(1, std::memory_order_relaxed);
    ctx.counters->set_activity(Activity::reading);
    Ended end = run_connection(conn.get(), session, ctx, serial);
    if (end.linger) {
        SL_TRACE("conn {}: {}; lingering close (the client may still be sending)", serial, end.why);
        linger_before_close(conn.get());
    }
    ctx.counters->open.fetch_sub(1, std::memory_order_relaxed);
    ctx.counters->set_activity(Activity::waiting);
    SL_TRACE("conn {} closed: {}", serial, end.why);
}  // `conn` closes here

void print_summary(std::string_view model, uint64_t connections, uint64_t requests) {
    CpuBaseline now = cpu_used();
    double user = now.user - g_baseline.user;
    double sys = now.sys - g_baseline.sys;
    write_line(fmt::format("{} stopped: {} connections, {} requests, CPU user {:.3f} s sys {:.3f} s "
                           "(self and children)",
                           model, connections, requests, user, sys));
}

}  // namespace sl
