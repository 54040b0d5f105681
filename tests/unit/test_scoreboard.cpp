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

TEST(Scoreboard, ALiveSlotIsFoundByPidAndAReapedOneIsNot) {
    sl::Scoreboard board(3);
    occupy(board, 2, 4242, 0);
    EXPECT_EQ(board.find(4242), 2);
    EXPECT_EQ(board.live_workers(), 1u);
    board.retire(2);
    EXPECT_EQ(board.find(4242), -1) << "a reaped worker's pid may be reused by another process";
    EXPECT_EQ(board.slot(2).pid.load(), 4242) << "the table still names the slot's last worker";
    EXPECT_EQ(board.live_workers(), 0u);
}
