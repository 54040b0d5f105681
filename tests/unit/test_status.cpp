// The status views' three formats, from a fixed set of rows (fake_server.hpp).
#include "protocol/commands.hpp"
#include "protocol/session.hpp"
#include "fake_server.hpp"

#include <gtest/gtest.h>

namespace {

std::string status_as(std::string_view line) {
    FakeServer server;
    return sl::execute(sl::parse_command(line), server).line;
}

std::string http_status(std::string_view target) {
    FakeServer server;
    sl::Session session(server);
    std::string out;
    std::string request = "GET " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n\r\n";
    session.step(request, out);
    return out;
}

}  // namespace

TEST(Status, TextIsAHeaderLineThenOneLinePerRow) {
    std::string s = status_as("STATUS");
    EXPECT_EQ(s,
              "STATUS model=fake accept=blocking pid=10 uptime_ms=5 workers=2 requests=4 rows=2\n"
              "worker=0 thread=- pid=11 tid=11 state=_ generation=0 accepts=2 requests=3 wakeups=2 spurious=0 "
              "open=0 cpu_ms=0\n"
              "worker=1 thread=- pid=12 tid=12 state=W generation=0 accepts=2 requests=3 wakeups=2 spurious=0 "
              "open=1 cpu_ms=40")
        << "STATUS: the row count in the header tells a client how many lines follow";
    EXPECT_EQ(status_as("STATUS now"), "ERR STATUS takes no argument");
}

TEST(Status, JsonHasTheWorkersTheLegendAndNullWhereAFieldDoesNotApply) {
    std::string s = http_status("/status.json");
    EXPECT_NE(s.find("Content-Type: application/json\r\n"), std::string::npos) << s;
    EXPECT_NE(s.find("\"workers\": [\n  {\"worker\": 0, \"thread\": null, \"pid\": 11"), std::string::npos) << s;
    EXPECT_NE(s.find("\"state\": \"W\""), std::string::npos) << s;
    EXPECT_NE(s.find("\"legend\": {\"_\": \"waiting for a connection\""), std::string::npos) << s;
}

TEST(Status, HtmlPageRefreshesItselfAndFetchesNothing) {
    std::string s = http_status("/status");
    EXPECT_NE(s.find("Content-Type: text/html; charset=utf-8\r\n"), std::string::npos) << s;
    EXPECT_NE(s.find("<meta http-equiv=\"refresh\" content=\"2\">"), std::string::npos);
    EXPECT_NE(s.find("<td class=\"state W\">W</td>"), std::string::npos) << "the state letter, styled by its class";
    EXPECT_NE(s.find("keep-alive: a connection open, between requests"), std::string::npos) << "the legend";
    EXPECT_EQ(s.find("<script"), std::string::npos) << "no script";
    EXPECT_EQ(s.find("src="), std::string::npos) << "nothing fetched from anywhere";
    EXPECT_EQ(s.find("<link"), std::string::npos) << "nothing fetched from anywhere";
}
