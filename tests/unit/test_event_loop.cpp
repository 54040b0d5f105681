// The event loop's own rules: timers run in deadline order, a cancelled
// timer never runs and does not stay in the heap for ever, and deferred work
// runs at the end of the turn without a wakeup.
#include "base/clock.hpp"
#include "event/loop.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>

namespace sl {
namespace {

TEST(EventLoop, TimersRunInDeadlineOrderNotInTheOrderTheyWereSet) {
    EventLoop loop;
    std::string order;
    int64_t now = monotonic_ms();
    loop.at(now + 30, [&] { order += 'c'; });
    loop.at(now + 10, [&] { order += 'a'; });
    loop.at(now + 20, [&] { order += 'b'; });
    for (int turn = 0; turn < 50 && order.size() < 3; ++turn) loop.run_once(100);
    EXPECT_EQ(order, "abc");
}

TEST(EventLoop, ACancelledTimerNeverRuns) {
    EventLoop loop;
    bool ran = false, other = false;
    int64_t now = monotonic_ms();
    auto id = loop.at(now + 5, [&] { ran = true; });
    loop.at(now + 20, [&] { other = true; });
    loop.cancel(id);
    for (int turn = 0; turn < 50 && !other; ++turn) loop.run_once(100);
    EXPECT_TRUE(other);
    EXPECT_FALSE(ran) << "a cancelled timer ran";
}

TEST(EventLoop, CancelledTimersDoNotPileUpInTheHeap) {
    // A connection per request: each sets an idle timer far away and cancels
    // it when it closes. The heap must stay the size of the live timers.
    EventLoop loop;
    int64_t later = monotonic_ms() + 60'000;
    loop.at(later, [] {});
    for (int i = 0; i < 100'000; ++i) loop.cancel(loop.at(later, [] {}));
    EXPECT_LT(loop.timer_entries(), 200u) << "100000 cancelled timers left " << loop.timer_entries() << " heap entries";
}

TEST(EventLoop, ATimerSetForThePastByATimerWaitsForTheNextTurn) {
    // A timer that sets another for a time already past (05's idle timer
    // did, during a long SLEEP) must not keep the turn going: the loop would
    // never poll its descriptors again.
    EventLoop loop;
    int runs = 0;
    std::function<void()> again = [&] {
        ++runs;
        loop.at(monotonic_ms() - 1, again);
    };
    loop.at(monotonic_ms() - 1, again);
    loop.run_once(0);
    EXPECT_EQ(runs, 1) << "one turn ran the self-renewing timer " << runs << " times";
    loop.run_once(0);
    EXPECT_EQ(runs, 2);
}

TEST(EventLoop, DeferredWorkRunsAtTheEndOfThisTurnWithoutWaiting) {
    EventLoop loop;
    int runs = 0;
    loop.defer([&] {
        ++runs;
        loop.defer([&] { ++runs; });  // deferred from deferred work: the next turn, which must not wait
    });
    int64_t began = monotonic_ms();
    loop.run_once(5000);
    EXPECT_EQ(runs, 1);
    loop.run_once(5000);
    EXPECT_EQ(runs, 2);
    EXPECT_LT(monotonic_ms() - began, 1000) << "a turn with deferred work waited in epoll_wait";
}

TEST(EventLoop, WorkPostedFromAnotherThreadWakesTheLoop) {
    EventLoop loop;
    bool ran = false;
    std::thread other([&] { loop.post([&] { ran = true; }); });
    other.join();
    loop.run_once(5000);  // the eventfd is readable: no wait
    EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace sl
