#include "protocol/commands.hpp"
#include "fake_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

using sl::Verb;

namespace {

std::string answer(std::string_view line) {
    FakeServer server;
    return sl::execute(sl::parse_command(line), server).line;
}

// A FakeServer that keeps counters, in a plain map.
struct CountingServer : FakeServer {
    mutable sl::LocalStore counters;
    sl::CounterStore* store() const override { return &counters; }
};

}  // namespace

TEST(Commands, CommandWordIsCaseInsensitive) {
    EXPECT_EQ(answer("PING"), "PONG");
    EXPECT_EQ(answer("ping"), "PONG");
    EXPECT_EQ(answer("PiNg"), "PONG");
    EXPECT_EQ(answer("  PING  "), "PONG") << "surrounding blanks are not part of the word";
}

TEST(Commands, EchoReturnsTheBytesAfterTheFirstSpaceUnchanged) {
    EXPECT_EQ(answer("ECHO hello"), "hello");
    EXPECT_EQ(answer("echo  two  spaces "), " two  spaces ");
    EXPECT_EQ(answer("ECHO "), "");
    EXPECT_EQ(answer("ECHO"), "");
    EXPECT_EQ(answer(std::string("ECHO a\0b", 8)), std::string("a\0b", 3)) << "binary bytes pass through";
}

TEST(Commands, SleepAcceptsMillisecondsInRange) {
    EXPECT_EQ(answer("SLEEP 0"), "SLEPT 0");
    EXPECT_EQ(answer("sleep 5"), "SLEPT 5");
    auto c = sl::parse_command("SLEEP 60000");
    EXPECT_EQ(c.verb, Verb::sleep);
    EXPECT_EQ(c.number, 60000u);
}

TEST(Commands, SleepRejectsBadArguments) {
    for (const char* bad : {"SLEEP", "SLEEP -1", "SLEEP 60001", "SLEEP 1.5", "SLEEP 10ms", "SLEEP +5",
                            "SLEEP 99999999999999999999999"}) {
        EXPECT_EQ(answer(bad), "ERR SLEEP needs milliseconds in 0..60000") << "input: " << bad;
    }
}

TEST(Commands, WorkGivesTheLastSplitmix64Output) {
    EXPECT_EQ(answer("WORK 0"), "WORKED 0 0000000000000000");
    EXPECT_EQ(answer("WORK 1"), "WORKED 1 e220a8397b1dcdaf");
    EXPECT_EQ(answer("WORK 2"), "WORKED 2 6e789e6aa1b965f4");
    EXPECT_EQ(answer("WORK 3"), "WORKED 3 06c45d188009454f");
    EXPECT_EQ(answer("WORK 1000000001"), "ERR WORK needs a step count in 0..1000000000");
    EXPECT_EQ(sl::parse_command("WORK 1000000000").number, 1000000000u) << "the upper bound is allowed";
}

TEST(Commands, Splitmix64ReferenceVectors) {
    // Outputs 1..5 of splitmix64 from seed 0, as in Vigna's reference splitmix64.c.
    EXPECT_EQ(sl::splitmix64_after(1), 0xe220a8397b1dcdafULL);
    EXPECT_EQ(sl::splitmix64_after(2), 0x6e789e6aa1b965f4ULL);
    EXPECT_EQ(sl::splitmix64_after(3), 0x06c45d188009454fULL);
    EXPECT_EQ(sl::splitmix64_after(4), 0xf88bb8a8724c81ecULL);
    EXPECT_EQ(sl::splitmix64_after(5), 0x1b39896a51a8749bULL);
}

TEST(Commands, NoArgumentCommandsRejectArguments) {
    EXPECT_EQ(answer("PING now"), "ERR PING takes no argument");
    EXPECT_EQ(answer("WHO x"), "ERR WHO takes no argument");
    EXPECT_EQ(answer("QUIT please"), "ERR QUIT takes no argument");
}

TEST(Commands, UnknownCommandIsNamedPrintably) {
    EXPECT_EQ(answer("FOO bar"), "ERR unknown command 'FOO'");
    EXPECT_EQ(answer("\x01\x02"), "ERR unknown command '?" "?'");  // split: no trigraph
    EXPECT_EQ(answer(std::string(100, 'X')), "ERR unknown command '" + std::string(32, 'X') + "...'");
}

TEST(Commands, WhoAndStatsFormatKeyValuePairs) {
    EXPECT_EQ(answer("WHO"), "model=fake pid=10 ppid=1 tid=11 worker=- conn=7");
    EXPECT_EQ(answer("stats"), "model=fake workers=2 connections=3 requests=4 uptime_ms=5");
    sl::Identity with_worker{"m", 1, 2, 3, 4, 5};
    EXPECT_EQ(sl::format_identity(with_worker), "model=m pid=1 ppid=2 tid=3 worker=4 conn=5");
}

TEST(Commands, QuitAnswersByeAndCloses) {
    FakeServer server;
    sl::Answer a = sl::execute(sl::parse_command("quit"), server);
    EXPECT_EQ(a.line, "BYE");
    EXPECT_TRUE(a.close);
}

TEST(Commands, IncrCountsByNameAndGetReadsWithoutCounting) {
    CountingServer server;
    auto ask = [&](std::string_view line) { return sl::execute(sl::parse_command(line), server).line; };
    EXPECT_EQ(ask("GET a"), "VALUE 0") << "a name never counted reads 0";
    EXPECT_EQ(ask("INCR a"), "VALUE 1");
    EXPECT_EQ(ask("incr a"), "VALUE 2");
    EXPECT_EQ(ask("INCR  b "), "VALUE 1") << "blanks around the name are not part of it";
    EXPECT_EQ(ask("GET a"), "VALUE 2");
    EXPECT_EQ(ask("INCR user:42.visits-total_x"), "VALUE 1");
}

TEST(Commands, CounterNamesAreCheckedBeforeAnythingIsCounted) {
    for (const std::string& line : std::vector<std::string>{"INCR", "INCR ", "GET", "INCR a b", "INCR a/b",
                                                          "INCR " + std::string(65, 'x')}) {
        sl::Command c = sl::parse_command(line);
        EXPECT_EQ(c.verb, Verb::invalid) << line;
        EXPECT_FALSE(c.error.empty()) << line;
    }
    EXPECT_EQ(sl::parse_command("INCR " + std::string(64, 'x')).verb, Verb::incr) << "64 bytes is the limit, allowed";
    EXPECT_EQ(answer("INCR a"), "ERR counters are not kept here") << "a server without a store says so";
}

TEST(Commands, TheTableRefusesTheNameAfterItsLimitAndCountsTheOthersOn) {
    CountingServer server;
    for (size_t i = 0; i < sl::kMaxCounters; ++i)
        ASSERT_EQ(sl::execute(sl::parse_command("INCR n" + std::to_string(i)), server).line, "VALUE 1");
    sl::Answer refused = sl::execute(sl::parse_command("INCR one-more"), server);
    EXPECT_TRUE(refused.error);
    EXPECT_EQ(refused.line, "ERR too many counters (at most 1024)");
    EXPECT_EQ(sl::execute(sl::parse_command("INCR n3"), server).line, "VALUE 2");
}

TEST(Commands, ShardsThatShareTheLimitRefuseTheNameAfterItTogether) {
    std::atomic<size_t> names{0};
    sl::LocalStore a, b;
    a.share_limit(names);
    b.share_limit(names);
    for (size_t i = 0; i < sl::kMaxCounters; ++i)
        ASSERT_TRUE((i % 2 ? a : b).incr("n" + std::to_string(i))) << "name " << i << " of the limit";
    EXPECT_FALSE(a.incr("one-more")) << "the shards hold kMaxCounters names between them: a new one is refused";
    EXPECT_FALSE(b.incr("one-more")) << "in every shard";
    EXPECT_EQ(a.incr("n1"), 2u) << "the names already there count on";
    EXPECT_EQ(names.load(), sl::kMaxCounters) << "a refused name gives its place back";
}
