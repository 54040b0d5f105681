#include "oracle.hpp"

#include <gtest/gtest.h>

namespace {

lg::Expected text(const std::string& request) {
    lg::LoadOptions o;
    o.protocol = lg::Protocol::text;
    return lg::expect(o, request);
}

lg::Expected http(const std::string& path) {
    lg::LoadOptions o;
    o.protocol = lg::Protocol::http;
    return lg::expect(o, path);
}

// The loop the protocol page describes, step by step.
uint64_t splitmix64_by_steps(uint64_t n) {
    uint64_t state = 0, z = 0;
    for (uint64_t i = 0; i < n; ++i) {
        z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
    }
    return z;
}

}  // namespace

TEST(Oracle, WorkDigitsAreThoseOfTheProtocolPage) {
    EXPECT_EQ(text("WORK 0").answer, "WORKED 0 0000000000000000");
    EXPECT_EQ(text("WORK 1").answer, "WORKED 1 e220a8397b1dcdaf");
    EXPECT_EQ(text("WORK 2").answer, "WORKED 2 6e789e6aa1b965f4");
    EXPECT_EQ(text("WORK 3").answer, "WORKED 3 06c45d188009454f");
    for (uint64_t n : {4u, 17u, 1000u, 123457u})
        EXPECT_EQ(lg::splitmix64_nth(n), splitmix64_by_steps(n)) << "the closed form disagrees with the loop at " << n;
}

TEST(Oracle, TextAnswersFollowTheProtocolPage) {
    EXPECT_EQ(text("PING").answer, "PONG");
    EXPECT_EQ(text("ping").answer, "PONG") << "command words are case-insensitive";
    EXPECT_EQ(text("  PING").answer, "PONG") << "blanks before the word are ignored";
    EXPECT_EQ(text("ECHO  two spaces ").answer, " two spaces ") << "ECHO keeps the bytes after its first space";
    EXPECT_EQ(text("SLEEP 100").answer, "SLEPT 100");
    EXPECT_EQ(text("QUIT").answer, "BYE");
    EXPECT_TRUE(text("QUIT").closes);
    for (const char* bad : {"SLEEP 60001", "SLEEP -1", "SLEEP 1.5", "WORK 1000000001", "PING now", "FOO"}) {
        lg::Expected e = text(bad);
        EXPECT_TRUE(e.prefix && e.answer == "ERR ") << bad << " must be answered with an error";
    }
    EXPECT_TRUE(text("WHO").prefix && text("WHO").answer == "model=");
}

TEST(Oracle, HttpAnswersFollowTheProtocolPage) {
    EXPECT_EQ(http("/ping").answer, "PONG");
    EXPECT_EQ(http("/ping").status, 200);
    EXPECT_EQ(http("/ping?other=1").answer, "PONG") << "other query parameters are ignored";
    EXPECT_EQ(http("/echo?msg=a+b%21").answer, "a b!") << "percent-decoded, + is a space";
    EXPECT_EQ(http("/echo?msg=").answer, "");
    EXPECT_EQ(http("/echo").status, 400) << "/echo needs msg=";
    EXPECT_EQ(http("/echo?msg=%4").status, 400) << "a bad escape";
    EXPECT_EQ(http("/sleep?ms=x").status, 400);
    EXPECT_EQ(http("/work?n=3").answer, "WORKED 3 06c45d188009454f");
    EXPECT_EQ(http("/nowhere").status, 404);
}
