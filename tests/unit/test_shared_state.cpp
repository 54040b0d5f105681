// INCR's table in shared memory: every process counts in the same counters,
// and a name that several processes insert at once is inserted once.
#include "process/shared_state.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

// Runs `body` in `n` forked children at once; true when every one exited with status 0.
template <class Body>
bool in_children(int n, Body body) {
    std::vector<pid_t> kids;
    for (int i = 0; i < n; ++i) {
        pid_t pid = ::fork();
        if (pid == 0) {
            body(i);
            ::_exit(0);
        }
        kids.push_back(pid);
    }
    bool ok = true;
    for (pid_t pid : kids) {
        int status = 0;
        ok = ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 && ok;
    }
    return ok;
}

TEST(SharedStore, ProcessesCountInTheSameCountersAndEveryIncrIsCountedOnce) {
    sl::SharedStore store;
    ASSERT_TRUE(in_children(4, [&](int) {
        for (int i = 0; i < 2000; ++i) store.incr("hits");
    }));
    EXPECT_EQ(store.get("hits"), 8000u) << "4 processes x 2000 INCR, counted in one place";
}

TEST(SharedStore, ANameInsertedByManyProcessesAtOnceIsInsertedOnce) {
    sl::SharedStore store;
    ASSERT_TRUE(in_children(4, [&](int) {
        for (int i = 0; i < 300; ++i) store.incr("name" + std::to_string(i));
    }));
    for (int i = 0; i < 300; ++i)
        ASSERT_EQ(store.get("name" + std::to_string(i)), 4u) << "name" << i << " was inserted twice, or lost";
    // 300 names in use: the table takes 724 more, then refuses.
    for (int i = 300; i < 1024; ++i) ASSERT_TRUE(store.incr("name" + std::to_string(i)).has_value()) << i;
    EXPECT_FALSE(store.incr("one-too-many").has_value());
    EXPECT_EQ(*store.incr("name0"), 5u) << "names already in the table still count";
}

}  // namespace
