#include "event/loop_threads.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"
#include "base/procfs.hpp"
#include "base/trace.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <system_error>

namespace sl {

const Names<LoopAccept>& loop_accept_names() {
    static const Names<LoopAccept> all = {{"main-reactor", LoopAccept::main_reactor},
                                          {"reuseport", LoopAccept::reuseport},
                                          {"epoll-exclusive", LoopAccept::epoll_exclusive}};
    return all;
}

void add_loop_options(CLI::App& app, LoopOptions& o) {
    app.add_option("--threads", o.threads, "event loops, one per thread (0: one per CPU)")
        ->capture_default_str()
        ->check(CLI::Range(0, 256));
    add_enum_option(app, "--accept", o.accept, loop_accept_names(),
                    "how connections reach the loops: " + name_list(loop_accept_names()));
    add_enum_option(app, "--balance", o.balance,
                    Names<Balance>{{"rr", Balance::round_robin}, {"least", Balance::least}},
                    "main-reactor: hand each connection to the next loop in turn (rr) or to the least loaded");
}

// ---- one loop ------------------------------------------------------------------------------

LoopThread::LoopThread(int index, const ServerContext& base, const EventOptions& events)
    : index_(index), loop_(events.trigger), ctx_(base) {
    ctx_.worker = index;  // WHO: worker=<the loop>
    ctx_.counters = &counters_;
    server_ = std::make_unique<EventServer>(loop_, ctx_, events);
}

void LoopThread::hand_over(Fd conn) {
    // std::function wants a copyable lambda: the descriptor travels in a
    // shared_ptr, and closes with it if the loop never runs the function.
    auto fd = std::make_shared<Fd>(std::move(conn));
    on_the_way_.fetch_add(1, std::memory_order_relaxed);
    loop_.post([this, fd] {
        server_->serve(std::move(*fd));
        on_the_way_.fetch_sub(1, std::memory_order_relaxed);
    });
}

uint32_t LoopThread::load() const {
    return counters_.open.load(std::memory_order_relaxed) + on_the_way_.load(std::memory_order_relaxed);
}

void LoopThread::no_more_hand_overs() {
    // Posted after every hand-off: when the loop runs it, it has taken them all.
    loop_.post([this] { expecting_ = false; });
}

void LoopThread::run_here(const std::function<void(LoopThread&)>& body) {
    tid_ = static_cast<pid_t>(::syscall(SYS_gettid));
    set_thread_role(fmt::format("loop {}", index_));
    SL_TRACE("loop {} started", index_);
    body(*this);
}

void LoopThread::start(const std::function<void(LoopThread&)>& body) {
    // Signals are the main thread's: a SIGTERM must interrupt its wait, and
    // the loops hear of a stop through the stop pipe (signals.hpp), which
    // each one watches. Threads inherit the mask of the thread that creates
    // them, so block everything around the creation.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    try {
        thread_ = std::thread([this, body] {
            // The thread's name in ps -L, top -H and /proc/PID/task/TID/comm
            // (15 characters at most). Not for loop 0 when it is the main
            // thread: that name is the process's, which pgrep looks for.
            pthread_setname_np(pthread_self(), fmt::format("loop {}", index_).c_str());
            run_here(body);
        });
    } catch (const std::system_error& e) {  // EAGAIN: out of threads
        die_now("pthread_create", e.code().value());  // other loops may run: no exit() here
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void LoopThread::join() {
    if (thread_.joinable()) thread_.join();
}

// ---- all of them ---------------------------------------------------------------------------

LoopThreads::LoopThreads(int count, const ServerContext& base, const EventOptions& events)
    : started_ms_(monotonic_ms()) {
    for (int i = 0; i < count; ++i) loops_.push_back(std::make_unique<LoopThread>(i, base, events));
}

LoopThread& LoopThreads::pick(Balance balance) {
    if (balance == Balance::least) {
        size_t best = 0;
        for (size_t i = 1; i < loops_.size(); ++i)
            if (loops_[i]->load() < loops_[best]->load()) best = i;
        return *loops_[best];
    }
    return *loops_[next_++ % loops_.size()];
}

namespace {

// What executes a counter's command in the loop that owns it: that loop's map.
class OwnerView final : public ServerView {
public:
    explicit OwnerView(CounterStore& store) : store_(store) {}
    Identity identity() const override { return {}; }
    Totals totals() const override { return {}; }
    Status status() const override { return {}; }
    CounterStore* store() const override { return &store_; }

private:
    CounterStore& store_;
};

}  // namespace

void LoopThreads::shard_counters() {
    for (auto& asker : loops_) {
        LoopThread* from = asker.get();
        from->context().store = &from->own_store();  // the names it owns
        from->own_store().share_limit(sharded_names_);  // at most kMaxCounters in all the shards
        from->server().delegate([this, from](const Command& c, Framing, std::function<void(Answer)> done) {
            if (c.verb != Verb::incr && c.verb != Verb::get) return false;
            LoopThread* owner = loops_[std::hash<std::string>{}(c.text) % loops_.size()].get();
            if (owner == from) return false;  // ours: counted here, at once
            // To the owner's queue; it counts in its own map, on its own
            // thread, and posts the answer back to ours. Two wakeups, no lock.
            owner->loop().post([owner, from, c, done] {
                Answer a = execute(c, OwnerView(owner->own_store()));
                from->loop().post([done, a] { done(a); });
            });
            return true;
        });
    }
}

bool LoopThreads::all_finished(LoopThread& me) {
    me.done_.store(me.finished(), std::memory_order_release);
    for (const auto& l : loops_)
        if (!l->done_.load(std::memory_order_acquire)) return false;
    return true;
}

Totals LoopThreads::totals(std::string_view model) const {
    Totals t{model, loops_.size(), 0, 0, static_cast<uint64_t>(monotonic_ms() - started_ms_)};
    for (const auto& l : loops_) {
        t.connections += l->counters().connections.load(std::memory_order_relaxed);
        t.requests += l->counters().requests.load(std::memory_order_relaxed);
    }
    return t;
}

Status LoopThreads::status(std::string_view model, std::string_view accept) const {
    Status s{model, accept, ::getpid(), totals(model), {}};
    for (const auto& l : loops_) {
        StatusRow row = counters_row(l->counters());
        row.thread = l->index();
        row.pid = s.pid;
        row.tid = l->tid();
        if (auto st = read_proc_stat(row.tid)) row.cpu_ms = static_cast<uint64_t>((st->utime + st->stime) * 1000);
        s.rows.push_back(row);
    }
    return s;
}

}  // namespace sl
