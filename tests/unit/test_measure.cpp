#include "measure.hpp"
#include "proc.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <stdexcept>

// compare measures each model under load. If the load throws while the
// sampler thread runs, the exception must reach compare (which reports the
// run as failed and goes on), and nothing may be left behind: destroying a
// joinable std::thread calls std::terminate, and a server never stopped
// keeps its port and its processes.
TEST(Measure, ALoadThatThrowsLeavesNoServerAndNoThreadBehind) {
    lg::Setup setup;
    setup.bin_dir = lg::self_dir();  // unit_tests sits beside the models in build/bin
    lg::Model model{"prefork", "03", true};
    setup.workers = 2;
    lg::Run run;
    pid_t server = -1;
    auto failing = [&](const lg::LoadOptions& load, pid_t) -> lg::LoadResult {
        EXPECT_GT(load.port, 0);
        server = lg::children_of(::getpid()).empty() ? -1 : lg::children_of(::getpid()).front();
        throw std::runtime_error("the load failed");
    };
    EXPECT_THROW(lg::measure(setup, model, run, failing), std::runtime_error);
    ASSERT_GT(server, 0) << "the server was never started";
    for (int i = 0; i < 100 && !lg::group_members(server).empty(); ++i) ::usleep(20000);  // killed workers being reaped
    EXPECT_TRUE(lg::group_members(server).empty())
        << "the server's process group (leader " << server << ") is still there after the load threw";
}
