// The session, fed the way a socket might deliver bytes: whole, one byte at a
// time, and split in two at every position. The answers must not depend on it.
#include "fake_server.hpp"
#include "protocol/session.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

struct Outcome {
    std::string out;
    bool closed = false;
    int answered = 0;
};

// Delivers `input` in the given chunks, like the connection loop does.
Outcome feed(const std::vector<std::string>& chunks) {
    FakeServer server;
    sl::Session session(server);
    Outcome o;
    std::string buffer;
    for (const std::string& chunk : chunks) {
        buffer += chunk;
        size_t used = 0;
        for (;;) {
            auto s = session.step(std::string_view(buffer).substr(used), o.out);
            if (s.consumed == 0) break;
            used += s.consumed;
            o.answered += s.answered;
            if (session.closing()) {
                o.closed = true;
                return o;
            }
        }
        buffer.erase(0, used);
    }
    return o;
}

Outcome whole(const std::string& input) {
    return feed({input});
}

Outcome bytewise(const std::string& input) {
    std::vector<std::string> chunks;
    for (char c : input) chunks.emplace_back(1, c);
    return feed(chunks);
}

void expect_split_invariant(const std::string& input) {
    Outcome reference = whole(input);
    Outcome one = bytewise(input);
    EXPECT_EQ(one.out, reference.out) << "byte-by-byte delivery changed the answers";
    EXPECT_EQ(one.closed, reference.closed);
    for (size_t cut = 1; cut < input.size(); ++cut) {
        Outcome two = feed({input.substr(0, cut), input.substr(cut)});
        // The Date field may tick between runs; compare without it.
        EXPECT_EQ(two.out.size(), reference.out.size()) << "split at byte " << cut;
        EXPECT_EQ(two.answered, reference.answered) << "split at byte " << cut;
    }
}

}  // namespace

TEST(SessionText, PipelinedRequestsAreAnsweredInOrder) {
    std::string input = "PING\r\nECHO a b\n\n  \nWORK 1\nbogus\nWHO\nSTATS\n";
    Outcome o = whole(input);
    EXPECT_EQ(o.out,
              "PONG\na b\nWORKED 1 e220a8397b1dcdaf\nERR unknown command 'bogus'\n"
              "model=fake pid=10 ppid=1 tid=11 worker=- conn=7\n"
              "model=fake workers=2 connections=3 requests=4 uptime_ms=5\n");
    EXPECT_EQ(o.answered, 6) << "blank lines get no answer";
    EXPECT_FALSE(o.closed);
    expect_split_invariant(input);
}

TEST(SessionText, QuitClosesAndLaterRequestsAreNotAnswered) {
    Outcome o = whole("PING\nQUIT\nPING\n");
    EXPECT_EQ(o.out, "PONG\nBYE\n");
    EXPECT_TRUE(o.closed);
    expect_split_invariant("PING\nQUIT\nPING\n");
}

TEST(SessionText, OverlongLineIsAnErrorAndCloses) {
    Outcome o = whole("PING\n" + std::string(9000, 'x') + "\nPING\n");
    EXPECT_EQ(o.out, "PONG\nERR line too long\n");
    EXPECT_TRUE(o.closed);
    Outcome slow = bytewise(std::string(8192, 'x'));
    EXPECT_EQ(slow.out, "ERR line too long\n") << "detected once 8192 bytes arrived without LF";
}

TEST(SessionText, PartialLineWaits) {
    Outcome o = whole("PIN");
    EXPECT_EQ(o.out, "");
    EXPECT_EQ(o.answered, 0);
}

TEST(SessionHttp, PipelinedKeepAliveRequests) {
    std::string input =
        "GET /ping HTTP/1.1\r\nHost: a\r\n\r\n"
        "HEAD /echo?msg=x HTTP/1.1\r\n\r\n"
        "GET /echo?msg=hello%21 HTTP/1.1\r\nConnection: close\r\n\r\n"
        "GET /ping HTTP/1.1\r\n\r\n";
    Outcome o = whole(input);
    EXPECT_EQ(o.answered, 3) << "the request after Connection: close is not answered";
    EXPECT_TRUE(o.closed);
    size_t first = o.out.find("PONG\n");
    size_t third = o.out.find("hello!\n");
    EXPECT_NE(first, std::string::npos);
    EXPECT_NE(third, std::string::npos);
    EXPECT_LT(first, third) << "answers in request order";
    EXPECT_EQ(o.out.find("\r\n\r\nx\n"), std::string::npos) << "HEAD has no body";
    expect_split_invariant(input);
}

TEST(SessionHttp, ErrorAnswersClose) {
    for (std::string input : {"GET /nope HTTP/1.1\r\n\r\nGET /ping HTTP/1.1\r\n\r\n",
                              "DELETE /ping HTTP/1.1\r\n\r\nGET /ping HTTP/1.1\r\n\r\n",
                              "GET /ping HTTP/3.0\r\n\r\nGET /ping HTTP/1.1\r\n\r\n"}) {
        Outcome o = whole(input);
        EXPECT_TRUE(o.closed) << input;
        EXPECT_EQ(o.answered, 1) << input;
    }
}

TEST(SessionHttp, HttpOneZeroClosesUnlessAskedToKeep) {
    EXPECT_TRUE(whole("GET /ping HTTP/1.0\r\n\r\n").closed);
    Outcome kept = whole("GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_FALSE(kept.closed);
    EXPECT_NE(kept.out.find("Connection: keep-alive\r\n"), std::string::npos) << "keep-alive is echoed";
}

TEST(SessionFraming, LeadingBlankLinesDoNotChooseTheFraming) {
    Outcome o = whole("\r\n\nGET /ping HTTP/1.1\r\n\r\n");
    EXPECT_EQ(o.out.rfind("HTTP/1.1 200 OK", 0), 0u);
}

TEST(SessionFraming, TextConnectionsStayText) {
    // GET is a text command too (GET name): "/ping HTTP/1.1" is no counter's name.
    Outcome o = whole("PING\nGET /ping HTTP/1.1\n");
    EXPECT_EQ(o.out, "PONG\nERR a counter name is letters, digits, '_', '-', '.' and ':'\n");
}

TEST(SessionFraming, ATextGetFirstIsTextAndAnHttpGetIsHttp) {
    EXPECT_EQ(whole("GET hits\n").out, "ERR counters are not kept here\n") << "text: FakeServer keeps none";
    EXPECT_EQ(whole("GET /ping HTTP/1.1\r\n\r\n").out.rfind("HTTP/1.1 200 OK", 0), 0u);
}

TEST(SessionFraming, OverlongHttpLookingFirstLineGets414) {
    Outcome o = whole("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n");
    EXPECT_EQ(o.out.rfind("HTTP/1.1 414 ", 0), 0u);
    EXPECT_TRUE(o.closed);
}

TEST(SessionFraming, IdleGoodbyeDependsOnFraming) {
    FakeServer server;
    sl::Session text(server);
    std::string out;
    text.step("PING\n", out);
    EXPECT_EQ(text.idle_goodbye(), "ERR idle timeout\n");
    sl::Session http(server);
    http.step("GET /ping HTTP/1.1\r\n\r\n", out);
    EXPECT_EQ(http.idle_goodbye(), "");
}

namespace {

TEST(Session, AfterAStopTheNextHttpAnswerSaysConnectionCloseAndIsTheLast) {
    FakeServer server;
    sl::Session session(server);
    std::string out;
    const std::string request = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    session.step(request, out);
    EXPECT_EQ(out.find("Connection: close"), std::string::npos) << "HTTP/1.1 keeps the connection by default";
    EXPECT_FALSE(session.closing());
    out.clear();
    server.stop = true;  // a graceful stop began
    EXPECT_FALSE(session.closing()) << "a stop must not close before the next answer";
    session.step(request, out);
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos)
        << "the last answer must tell the client to send nothing more on this connection:\n" << out;
    EXPECT_TRUE(session.closing());
}

TEST(Session, AfterAStopTheNextTextAnswerIsTheLast) {
    FakeServer server;
    sl::Session session(server);
    std::string out;
    server.stop = true;
    auto s = session.step("PING\nPING\n", out);
    EXPECT_EQ(out, "PONG\n");
    EXPECT_EQ(s.consumed, 5u) << "one request, the last";
    EXPECT_TRUE(session.closing());
}

}  // namespace
