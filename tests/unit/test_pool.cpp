#include "process/pool.hpp"

#include <gtest/gtest.h>

namespace {

sl::PoolOptions dynamic_pool(int min_spare, int max_spare, int max_workers) {
    sl::PoolOptions o;
    o.pool = sl::Pool::dynamic;
    o.min_spare = min_spare;
    o.max_spare = max_spare;
    o.max_workers = max_workers;
    return o;
}

}  // namespace

TEST(DynamicPool, ForksAtARateThatDoublesWhileShort) {
    sl::PoolOptions o = dynamic_pool(40, 50, 100);
    int rate = 1;
    std::vector<int> forks;
    for (int second = 0; second < 7; ++second) forks.push_back(sl::decide_spares(0, 10, o, rate).spawn);
    EXPECT_EQ(forks, (std::vector<int>{1, 2, 4, 8, 16, 32, 32})) << "Apache's 1, 2, 4 ... 32 per second";
}

TEST(DynamicPool, NeverForksPastTheCeiling) {
    int rate = 32;
    EXPECT_EQ(sl::decide_spares(0, 99, dynamic_pool(40, 50, 100), rate).spawn, 1) << "one below --max-workers";
    rate = 4;
    EXPECT_EQ(sl::decide_spares(0, 3, dynamic_pool(1, 2, 100), rate).spawn, 4)
        << "the whole rate, as Apache does, even if one spare is missing";
}

TEST(DynamicPool, RetiresOneWhenTooManyAreIdleAndResetsTheRate) {
    int rate = 8;
    sl::SpareDecision d = sl::decide_spares(5, 6, dynamic_pool(1, 2, 10), rate);
    EXPECT_EQ(d.spawn, 0);
    EXPECT_TRUE(d.retire_one);
    EXPECT_EQ(rate, 1) << "the rate starts over once no longer short";
    EXPECT_FALSE(sl::decide_spares(2, 2, dynamic_pool(1, 2, 10), rate).retire_one) << "at --max-spare: keep";
    EXPECT_FALSE(sl::decide_spares(5, 1, dynamic_pool(0, 2, 10), rate).retire_one) << "never below one worker";
}

TEST(CrashLoop, BackoffStartsAtTheSecondQuickDeathAndDoublesToTenSeconds) {
    EXPECT_EQ(sl::backoff_ms(0), 0);
    EXPECT_EQ(sl::backoff_ms(1), 0) << "one crash is replaced at once";
    EXPECT_EQ(sl::backoff_ms(2), 100);
    EXPECT_EQ(sl::backoff_ms(3), 200);
    EXPECT_EQ(sl::backoff_ms(8), 6400);
    EXPECT_EQ(sl::backoff_ms(9), 10000) << "12.8 s capped at 10 s";
    EXPECT_EQ(sl::backoff_ms(1000), 10000) << "capped, and no overflow";
}

TEST(Recycling, MaxRequestsPlusJitter) {
    sl::PoolOptions o;
    EXPECT_EQ(sl::recycle_after(o, 12345), 0u) << "--max-requests 0: never";
    o.max_requests = 100;
    EXPECT_EQ(sl::recycle_after(o, 12345), 100u);
    o.max_requests_jitter = 10;
    for (uint64_t r = 0; r < 50; ++r) {
        uint64_t n = sl::recycle_after(o, r * 7919);
        EXPECT_GE(n, 100u);
        EXPECT_LE(n, 110u);
    }
}

// ---- where workers go, and when the outgoing may leave --------------------------------------

namespace {

sl::SlotView running(int place, bool outgoing = false, bool ready = true, bool idle = true) {
    sl::SlotView s;
    s.role = sl::SlotView::running;
    s.place = place;
    s.outgoing = outgoing;
    s.ready = ready;
    s.idle = idle;
    return s;
}

sl::SlotView waiting(int place, bool backing_off) {
    sl::SlotView s;
    s.role = sl::SlotView::waiting;
    s.place = place;
    s.backing_off = backing_off;
    return s;
}

}  // namespace

TEST(Places, ANewWorkerTakesTheLowestPlaceNoStayingWorkerHolds) {
    EXPECT_EQ(sl::free_place({}), 0);
    EXPECT_EQ(sl::free_place({running(0), running(2)}), 1);
    EXPECT_EQ(sl::free_place({running(0), waiting(1, true)}), 2) << "a slot waiting to respawn keeps its place";
    EXPECT_EQ(sl::free_place({running(0, true), running(1, true), running(0)}), 1)
        << "after a HUP the new generation takes the old one's places, in order";
}

TEST(Places, OpenPlacesAreThoseWithARunningWorker) {
    std::vector<bool> open = sl::open_places({running(0), running(2, true)}, 4);
    EXPECT_EQ(open, (std::vector<bool>{true, false, true, false})) << "an outgoing worker still accepts";
    sl::SlotView leaving = running(1);
    leaving.role = sl::SlotView::retiring;
    EXPECT_EQ(sl::open_places({running(0), leaving}, 3), (std::vector<bool>{true, false, false}))
        << "a retiring worker's place closes before it is signalled";
    EXPECT_EQ(sl::open_places({waiting(2, true)}, 3), (std::vector<bool>{false, false, true}))
        << "with no worker running anywhere, the place about to be respawned";
}

TEST(Places, ShrinkingRetiresAnIdleStayingWorker) {
    EXPECT_EQ(sl::pick_to_retire({running(0, false, true, false), running(1, false, true, true)}), 1);
    EXPECT_EQ(sl::pick_to_retire({running(0, true), running(1, false, true, false)}), 1)
        << "an outgoing worker is leaving anyway";
    EXPECT_EQ(sl::pick_to_retire({running(0), waiting(1, true)}), 1) << "a slot backing off is dropped first";
    EXPECT_EQ(sl::pick_to_retire({running(0, false, true, false), waiting(1, false)}), 0)
        << "a slot about to be respawned is not: its successor takes over its place";
    EXPECT_EQ(sl::pick_to_retire({}), -1);
}

TEST(Places, OutgoingWorkersLeaveOnlyOnceTheirSuccessorsAreReady) {
    EXPECT_FALSE(sl::outgoing_may_leave({running(0, true), running(0, false, false)}, 1))
        << "the successor is still starting";
    EXPECT_TRUE(sl::outgoing_may_leave({running(0, true), running(0, false, true)}, 1));
    EXPECT_FALSE(sl::outgoing_may_leave({running(0, true), running(0)}, 2)) << "only one of two successors exists";
    EXPECT_FALSE(sl::outgoing_may_leave({running(0), running(1)}, 2)) << "nobody is outgoing";
}
