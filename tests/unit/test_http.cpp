#include "protocol/http.hpp"

#include <gtest/gtest.h>

#include <string>

using sl::HttpParse;

namespace {

HttpParse parse(const std::string& s) {
    return sl::parse_http_request(s);
}

int error_of(const std::string& s) {
    HttpParse p = parse(s);
    return p.status == HttpParse::error ? p.error_status : 0;
}

}  // namespace

TEST(HttpDetection, RequestLineShape) {
    EXPECT_TRUE(sl::looks_like_http("GET /ping HTTP/1.1", true));
    EXPECT_TRUE(sl::looks_like_http("POST /x HTTP/1.0", true));
    EXPECT_TRUE(sl::looks_like_http("GET / HTTP/2.0", true)) << "shape only; the version is checked later (505)";
    EXPECT_FALSE(sl::looks_like_http("PING", true));
    EXPECT_FALSE(sl::looks_like_http("ECHO hello world", true));
    EXPECT_FALSE(sl::looks_like_http("get /ping HTTP/1.1", true)) << "methods are case-sensitive";
    EXPECT_FALSE(sl::looks_like_http("GET /ping HTTP/1.1 extra", true));
    EXPECT_FALSE(sl::looks_like_http("GET /ping", true)) << "HTTP/0.9 is not spoken";
    EXPECT_TRUE(sl::looks_like_http("GET /aaaa", false)) << "an overlong first line that starts like HTTP";
    EXPECT_FALSE(sl::looks_like_http("ECHO aaaa", false));
}

TEST(HttpParser, SimpleGet) {
    HttpParse p = parse("GET /ping HTTP/1.1\r\nHost: x\r\n\r\nnext");
    ASSERT_EQ(p.status, HttpParse::complete);
    EXPECT_EQ(p.request.method, "GET");
    EXPECT_EQ(p.request.target, "/ping");
    EXPECT_EQ(p.request.minor_version, 1);
    EXPECT_TRUE(p.request.keep_alive);
    EXPECT_EQ(p.consumed, std::string("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n").size());
}

TEST(HttpParser, BareLineFeedsAreAccepted) {
    EXPECT_EQ(parse("GET /ping HTTP/1.1\nHost: x\n\n").status, HttpParse::complete);
}

TEST(HttpParser, EveryProperPrefixNeedsMore) {
    std::string request = "GET /echo?msg=hi HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n";
    for (size_t n = 0; n < request.size(); ++n)
        EXPECT_EQ(parse(request.substr(0, n)).status, HttpParse::need_more) << "prefix of " << n << " bytes";
    EXPECT_EQ(parse(request).status, HttpParse::complete);
}

TEST(HttpParser, KeepAliveRules) {
    EXPECT_TRUE(parse("GET / HTTP/1.1\r\n\r\n").request.keep_alive) << "HTTP/1.1 keeps by default";
    EXPECT_FALSE(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").request.keep_alive);
    EXPECT_FALSE(parse("GET / HTTP/1.1\r\nconnection: Keep-Alive, CLOSE\r\n\r\n").request.keep_alive);
    EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").request.keep_alive) << "HTTP/1.0 closes by default";
    EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").request.keep_alive);
}

TEST(HttpParser, Errors) {
    EXPECT_EQ(error_of("GET  /x HTTP/1.1\r\n\r\n"), 400) << "two spaces";
    EXPECT_EQ(error_of("GET /x HTTP/1.x\r\n\r\n"), 400);
    EXPECT_EQ(error_of("GET /x HTTP/1.1\r\nNoColon\r\n\r\n"), 400);
    EXPECT_EQ(error_of("GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n"), 400);
    EXPECT_EQ(error_of("GET /x HTTP/1.1\r\n folded: v\r\n\r\n"), 400);
    EXPECT_EQ(error_of("GET /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n"), 400);
    EXPECT_EQ(error_of("GET /x HTTP/2.0\r\n\r\n"), 505);
    EXPECT_EQ(error_of("GET /x HTTP/1.2\r\n\r\n"), 505);
    EXPECT_EQ(error_of("GET /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), 413);
    EXPECT_EQ(error_of("GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 413);
    EXPECT_EQ(error_of("GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 0) << "an empty body is no body";
}

TEST(HttpParser, TargetLimit) {
    std::string at_limit = "/" + std::string(sl::kMaxTarget - 1, 'a');
    EXPECT_EQ(error_of("GET " + at_limit + " HTTP/1.1\r\n\r\n"), 0);
    EXPECT_EQ(error_of("GET " + at_limit + "a HTTP/1.1\r\n\r\n"), 414);
    EXPECT_EQ(error_of("GET /" + std::string(sl::kMaxTarget + 100, 'a')), 414) << "known before the line ends";
}

TEST(HttpParser, HeaderSectionLimit) {
    std::string big_field = "X-Big: " + std::string(sl::kMaxHeaderBytes, 'v') + "\r\n";
    EXPECT_EQ(error_of("GET / HTTP/1.1\r\n" + big_field + "\r\n"), 431);
    EXPECT_EQ(error_of("GET / HTTP/1.1\r\n" + big_field), 431) << "known before the head ends";
    std::string fits = "X-Ok: " + std::string(sl::kMaxHeaderBytes - 20, 'v') + "\r\n";
    EXPECT_EQ(error_of("GET / HTTP/1.1\r\n" + fits + "\r\n"), 0);
}

TEST(HttpRoutes, CommandsAndErrors) {
    auto r = [](std::string method, std::string target) {
        sl::HttpRequest req;
        req.method = std::move(method);
        req.target = std::move(target);
        return sl::route(req);
    };
    EXPECT_EQ(r("GET", "/ping").command.verb, sl::Verb::ping);
    EXPECT_EQ(r("HEAD", "/who").command.verb, sl::Verb::who);
    EXPECT_EQ(r("GET", "/stats?x=1").command.verb, sl::Verb::stats);
    EXPECT_EQ(r("GET", "/status").command.format, sl::StatusFormat::html);
    EXPECT_EQ(r("GET", "/status.json").command.format, sl::StatusFormat::json);
    EXPECT_EQ(r("GET", "/status.json").command.verb, sl::Verb::status);
    EXPECT_EQ(r("GET", "/echo?msg=a%20b+c%2B").command.text, "a b c+");
    EXPECT_EQ(r("GET", "/echo?x=1&msg=%E2%9C%93").command.text, "\xE2\x9C\x93");
    EXPECT_EQ(r("GET", "/sleep?ms=5").command.number, 5u);
    EXPECT_EQ(r("GET", "/work?n=3").command.number, 3u);
    EXPECT_EQ(r("GET", "http://host:1/ping").command.verb, sl::Verb::ping) << "absolute-form";
    EXPECT_EQ(r("POST", "/ping").status, 405);
    EXPECT_EQ(r("GET", "/nope").status, 404);
    EXPECT_EQ(r("GET", "/sleep").status, 400);
    EXPECT_EQ(r("GET", "/sleep?ms=-1").status, 400);
    EXPECT_EQ(r("GET", "/work?n=x").status, 400);
    EXPECT_EQ(r("GET", "/echo?msg=%zz").status, 400);
    EXPECT_EQ(r("GET", "/echo?msg=%4").status, 400);
}

TEST(HttpResponse, HeadHasTheSameFieldsAndNoBody) {
    std::string get, head;
    sl::append_response(get, {200, "PONG\n", false, false, false});
    sl::append_response(head, {200, "PONG\n", true, false, false});
    EXPECT_EQ(get.substr(0, get.size() - 5), head);
    EXPECT_NE(get.find("Content-Length: 5\r\n"), std::string::npos);
    EXPECT_EQ(get.substr(get.size() - 5), "PONG\n");
}

TEST(HttpResponse, ConnectionFieldsAndAllow) {
    std::string out;
    sl::append_response(out, {405, "ERR x\n", false, true, false});
    EXPECT_EQ(out.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u);
    EXPECT_NE(out.find("Allow: GET, HEAD\r\n"), std::string::npos);
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
    out.clear();
    sl::append_response(out, {200, "x\n", false, false, true});
    EXPECT_NE(out.find("Connection: keep-alive\r\n"), std::string::npos);
}

// parse_http_response reads what a backend sends 09: untrusted bytes, like a request.
TEST(HttpResponseParser, ReadsWhatAppendResponseWrites) {
    std::string out;
    sl::append_response(out, {502, "ERR upstream x\n", false, true, false});
    out += "HTTP/1.1 200";  // the start of the next one stays unread
    sl::HttpResponseParse r = sl::parse_http_response(out);
    ASSERT_EQ(r.status, sl::HttpResponseParse::complete) << r.reason;
    EXPECT_EQ(r.code, 502);
    EXPECT_EQ(r.body, "ERR upstream x\n");
    EXPECT_TRUE(r.close);
    EXPECT_EQ(r.consumed, out.size() - 12);
}

TEST(HttpResponseParser, EveryProperPrefixNeedsMore) {
    std::string out;
    sl::append_response(out, {200, "PONG\n", false, false, false});
    for (size_t n = 0; n < out.size(); ++n)
        EXPECT_EQ(sl::parse_http_response(out.substr(0, n)).status, sl::HttpResponseParse::need_more) << n;
}

TEST(HttpResponseParser, ABodyOverTheLimitIsRefusedFromItsHead) {
    // Held whole until it is complete, a 5 GiB answer would take 5 GiB of the
    // proxy; and a length near SIZE_MAX wrapped the sum of head and body to
    // a few bytes, which made whatever followed the head a "complete" body.
    for (std::string length : {"5368709120", "18446744073709551615", "18446744073709551611"}) {
        sl::HttpResponseParse r =
            sl::parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: " + length + "\r\n\r\nPONG\n");
        EXPECT_EQ(r.status, sl::HttpResponseParse::error) << length;
        EXPECT_EQ(r.reason, "a body over 1 MiB") << length;
    }
    std::string at_limit = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(sl::kMaxResponseBody) + "\r\n\r\n";
    EXPECT_EQ(sl::parse_http_response(at_limit).status, sl::HttpResponseParse::need_more);
    EXPECT_EQ(sl::parse_http_response(at_limit + std::string(sl::kMaxResponseBody, 'x')).status,
              sl::HttpResponseParse::complete);
}

TEST(HttpResponseParser, Errors) {
    auto reason = [](std::string_view s) { return sl::parse_http_response(s).reason; };
    EXPECT_EQ(reason("HTTP/1.1 200 OK\r\n\r\n"), "a response without Content-Length");
    EXPECT_EQ(reason("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), "malformed Content-Length");
    EXPECT_EQ(reason("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
              "a chunked response (this toolkit's servers send Content-Length)");
    EXPECT_EQ(reason("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"), "malformed status code");
    EXPECT_EQ(reason(std::string(sl::kMaxHeaderBytes + 1, 'x')), "response head over 16 KiB");
    // A head over the limit is refused even when its end came in the same read.
    EXPECT_EQ(reason("HTTP/1.1 200 OK\r\nX: " + std::string(sl::kMaxHeaderBytes, 'x') + "\r\nContent-Length: 0\r\n\r\n"),
              "response head over 16 KiB");
    EXPECT_EQ(reason("HTTP/1.1 200 OK\r\nContent-Length: 99\r\nContent-Length: 5\r\n\r\nPONG\n"),
              "two different Content-Lengths");
    EXPECT_EQ(sl::parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nPONG\n").body,
              "PONG\n");
}
