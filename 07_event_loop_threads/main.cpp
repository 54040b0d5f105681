// 07_event_loop_threads: one process, an event loop per thread.
//
//     listen (non-blocking)
//     N loops, each 05's loop in a thread of its own (--threads, one per CPU)
//     --accept main-reactor   the main thread's loop accepts, and hands each
//                             connection to a loop's queue (an eventfd wakes
//                             it): round robin, or the least loaded (--balance)
//     --accept reuseport      each loop accepts from a socket of its own
//     --accept epoll-exclusive  every loop watches the one socket; the
//                             kernel wakes one of them
//
// The design most C++ servers are built on: muduo's EventLoopThreadPool,
// Netty's boss and worker groups, the "main/sub reactor" of many a project.
// Every connection lives in one loop, on one thread, for its whole life: its
// buffers and timers need no lock. What the loops share needs one, or must
// be given an owner: INCR's counters (--state) are the lesson.
// See docs/07-event-loop-threads.md.
#include "base/cli.hpp"
#include "base/limits.hpp"
#include "event/loop.hpp"
#include "event/loop_threads.hpp"
#include "event/server.hpp"
#include "net/net.hpp"
#include "net/server.hpp"
#include "process/shared_state.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "event_loop_threads";

    sl::CommonOptions options;
    sl::EventOptions events;
    sl::LoopOptions loop_options;
    sl::State state = sl::State::shared;
    CLI::App app{"An event loop per thread, in one process.", std::string(kModel)};
    sl::add_common_options(app, options);
    sl::add_event_options(app, events);        // --trigger, --offload, --output-limit
    sl::add_loop_options(app, loop_options);   // --threads, --accept, --balance
    sl::add_state_option(app, state, /*with_sharded=*/true);  // --state shared|local|sharded
    CLI11_PARSE(app, argc, argv);
    const int count = loop_options.threads > 0 ? loop_options.threads : sl::cpu_count();
    const bool main_reactor = loop_options.accept == sl::LoopAccept::main_reactor;
    const std::string_view accept = sl::find_word(sl::loop_accept_names(), loop_options.accept);

    sl::start_process(kModel, options);
    sl::raise_descriptor_limit();
    sl::ListenOptions listen = sl::listen_options(options);
    listen.nonblocking = true;
    listen.reuseport = loop_options.accept == sl::LoopAccept::reuseport;
    sl::Fd listener = sl::listen_or_die(listen);
    sl::announce_listening(kModel, options.host, listener.get());

    // The loops, made here, run in their threads below. STATS sums their
    // counters, STATUS shows a row for each.
    sl::ServerContext base;
    base.model = kModel;
    base.idle_timeout_s = options.idle_timeout;
    sl::LoopThreads loops(count, base, events);
    for (auto& l : loops) {
        l->context().totals = [&loops] { return loops.totals(kModel); };
        l->context().status = [&loops, accept] { return loops.status(kModel, accept); };
    }

    // Where INCR counts, the lesson of where state lives:
    //   shared   one map for all the loops, under a mutex: each INCR takes it
    //   local    a map per loop, each counting alone: wrong, on purpose
    //   sharded  a map per loop, each name owned by one loop: the others send
    //            it the request through its queue and get the answer back
    sl::MutexStore shared;
    for (auto& l : loops) {
        if (state == sl::State::shared) l->context().store = &shared;
        else l->context().store = &l->own_store();
    }
    if (state == sl::State::sharded) loops.shard_counters();

    // How connections reach the loops.
    std::vector<sl::Fd> own_sockets;  // reuseport: a socket per loop on the same port
    sl::ListenOptions same = listen;
    same.port = sl::local_port(listener.get());  // --port 0: the port the kernel chose
    for (auto& l : loops) {
        if (loop_options.accept == sl::LoopAccept::epoll_exclusive) {
            l->server().accept_from(listener.get(), EPOLLEXCLUSIVE);
        } else if (loop_options.accept == sl::LoopAccept::reuseport) {
            if (l->index() > 0) own_sockets.push_back(sl::listen_or_die(same));  // loop 0 has main()'s
            l->server().accept_from(l->index() == 0 ? listener.get() : own_sockets.back().get());
        }
    }
    // The main reactor: the main thread's loop accepts, and each connection
    // goes to a loop's queue. With one loop there is nothing to hand off: the
    // main thread is that loop, and accepts for itself.
    sl::EventLoop reactor_loop(events.trigger);
    sl::Counters reactor_counters;
    sl::ServerContext reactor_ctx = base;
    reactor_ctx.counters = &reactor_counters;
    sl::EventServer reactor(reactor_loop, reactor_ctx, events);
    const bool hand_off = main_reactor && count > 1;
    if (hand_off) {
        reactor.accept_from(listener.get());
        reactor.hand_off([&](sl::Fd conn) { loops.pick(loop_options.balance).hand_over(std::move(conn)); });
    } else if (main_reactor) {
        loops[0].server().accept_from(listener.get());
    }

    // What each loop runs, in its thread: 05's turn, until every loop is done.
    auto loop_main = [&loops](sl::LoopThread& me) {
        sl::EventLoop& loop = me.loop();
        sl::EventLoop::Ready ready;
        while (!loops.all_finished(me)) {
            loop.wait(ready, sl::LoopThreads::wait_ms(me));
            loop.dispatch(ready);
            loop.run_timers();
            loop.run_pending();
        }
    };

    for (auto& l : loops)
        if (hand_off || l->index() > 0) l->start(loop_main);
    if (hand_off) {
        // The main reactor's loop: accepts until a stop, then tells every
        // loop that nothing more will be handed to it.
        sl::EventLoop::Ready ready;
        while (!reactor.finished()) {
            reactor_loop.wait(ready);
            reactor_loop.dispatch(ready);
            reactor_loop.run_timers();
            reactor_loop.run_pending();
        }
        for (auto& l : loops) l->no_more_hand_overs();
    } else {
        for (auto& l : loops) l->no_more_hand_overs();  // none will come: the loops accept themselves
        loops[0].run_here(loop_main);                   // loop 0 is the main thread
    }
    for (auto& l : loops) l->join();

    sl::Totals t = loops.totals(kModel);
    sl::print_summary(kModel, t.connections, t.requests);
    return 0;
}
