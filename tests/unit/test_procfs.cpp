#include "base/procfs.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

// A process may exit between the open() of its /proc file and the read():
// the read fails with ESRCH. The reader must hear "gone", not die.
// (Reading through std::istreambuf_iterator threw std::ios_base::failure
// from underflow and terminated compare and the master's table.)
TEST(ProcFs, AProcessThatExitsWhileItIsReadIsJustGone) {
    std::atomic<pid_t> current{0};
    std::atomic<bool> done{false};
    std::atomic<int> seen{0}, gone{0};
    std::thread reader([&] {
        while (!done) {
            pid_t p = current.load();
            if (p == 0) continue;
            (sl::read_proc_stat(p) ? seen : gone).fetch_add(1);
        }
    });
    // Short-lived children, each read while it dies. posix_spawn, not fork:
    // it does not copy this process's page tables, which under AddressSanitizer
    // (gigabytes of shadow mappings) made 3000 forks take 80 to 90 s instead of 1.
    char* const argv[] = {const_cast<char*>("true"), nullptr};
    for (int i = 0; i < 3000; ++i) {
        pid_t pid = 0;
        int error = ::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ);
        EXPECT_EQ(error, 0) << "posix_spawn /bin/true";  // not ASSERT: the reader must still be joined
        if (error != 0) break;
        current = pid;
        ::waitpid(pid, nullptr, 0);
    }
    done = true;
    reader.join();
    EXPECT_GT(seen + gone, 0) << "the reader never ran";
}

TEST(ProcFs, ReadsThisProcess) {
    std::optional<sl::ProcStat> me = sl::read_proc_stat(::getpid());
    ASSERT_TRUE(me.has_value());
    EXPECT_EQ(me->pid, ::getpid());
    EXPECT_EQ(me->ppid, ::getppid());
    EXPECT_EQ(me->state, 'R') << "the test reads itself while running";
    EXPECT_GE(me->threads, 1);
    EXPECT_GT(me->rss_kib, 0u);
}

TEST(ProcFs, AReapedProcessIsGone) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    EXPECT_FALSE(sl::read_proc_stat(pid).has_value());
    EXPECT_FALSE(sl::read_proc_file("/proc/" + std::to_string(pid) + "/status").has_value());
}
