#include "process/children.hpp"
#include "process/scoreboard.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace {

void occupy(sl::Scoreboard& board, int slot, pid_t pid, uint64_t requests) {
    board.prepare(slot, 0, slot, 0);
    board.slot(slot).pid = pid;
    board.slot(slot).counters.requests.store(requests);
}

}  // namespace

// The master retires a worker (its counts move to the retired totals) while
// workers answer STATS: a STATS in between must never count that worker
// twice, nor not at all, so the totals a reader sees never go down.
TEST(Scoreboard, TotalsNeverGoBackwardsWhileAWorkerIsRetired) {
    sl::Scoreboard board(2);
    occupy(board, 1, 999, 5);  // a worker that stays
    std::atomic<bool> done{false};
    uint64_t decreases = 0, reads = 0, worst = 0;
    std::thread reader([&] {
        uint64_t last = 0;
        while (!done.load()) {
            uint64_t now = board.totals("test").requests;
            ++reads;
            if (now < last) {
                ++decreases;
                worst = std::max(worst, last - now);
            }
            last = now;
        }
    });
    for (int i = 0; i < 200000; ++i) {
        occupy(board, 0, 1000 + i % 1000, 1);
        board.retire(0);
    }
    done = true;
    reader.join();
    EXPECT_EQ(decreases, 0u) << "of " << reads << " STATS reads during 200000 retirements, " << decreases
                             << " saw the total go down (by up to " << worst << "): a worker counted twice, then once";
    EXPECT_EQ(board.totals("test").requests, 200005u);
}

TEST(Scoreboard, AReapedSlotStillNamesItsLastWorkerForTheTables) {
    sl::Scoreboard board(3);
    occupy(board, 2, 4242, 0);
    EXPECT_EQ(board.live_workers(), 1u);
    board.retire(2);
    EXPECT_EQ(board.slot(2).pid.load(), 4242) << "the table still names the slot's last worker";
    EXPECT_EQ(board.live_workers(), 0u);
}

TEST(ChildTable, ALiveChildIsFoundByPidAndAReapedOneIsNot) {
    sl::ChildTable children(3);
    children.forked(2, 4242);
    EXPECT_EQ(children.find(4242), 2);
    EXPECT_EQ(children.count(), 1);
    EXPECT_EQ(children.free_slot(), 0);
    children.reaped(2);
    EXPECT_EQ(children.find(4242), -1) << "a reaped child's pid may be reused by another process";
    EXPECT_EQ(children.count(), 0);
}

TEST(ChildTable, NoPidButAForkedOneIsEverFoundOrSignalled) {
    sl::ChildTable children(2);
    EXPECT_EQ(children.find(0), -1) << "0 is not a child: kill(0, ...) would signal the parent's own group";
    EXPECT_EQ(children.find(-1), -1) << "-1 is not a child: kill(-1, ...) would signal every process";
    children.ask_all_to_leave(1000);  // no row is live: nothing may be sent
    EXPECT_EQ(children.chase(), 0);
    EXPECT_EQ(children.next_chase_ms(), -1);
}
