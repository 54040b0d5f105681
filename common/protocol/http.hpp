// http.hpp: the HTTP/1.1 framing (curl, wrk, ab, a browser). No sockets here.
//
// Just enough HTTP/1.1 for GET and HEAD on the command routes: request line,
// header fields, keep-alive rules, pipelining, and the 4xx/5xx answers of
// docs/protocol.md. A request with a body is refused (413), so the parser
// never has to read one.
#pragma once

#include "protocol/commands.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace sl {

inline constexpr size_t kMaxTarget = 8192;        // longer: 414
inline constexpr size_t kMaxHeaderBytes = 16384;  // header section longer: 431
inline constexpr size_t kMaxResponseBody = 1 << 20;  // a backend's answer longer: 09 refuses it (502)

struct HttpRequest {
    std::string method;
    std::string target;
    int minor_version = 1;  // HTTP/1.<minor>
    bool keep_alive = true;
};

struct HttpParse {
    enum Status { need_more, complete, error } status = need_more;
    size_t consumed = 0;  // bytes of the whole request head
    int error_status = 0;
    std::string reason;
    HttpRequest request;
};

/// Is this first line of a connection an HTTP request line (`METHOD TARGET
/// HTTP/d.d`)? For a first line still without its LF after kMaxLine bytes,
/// `complete` is false and the test is on its start: `METHOD /`.
bool looks_like_http(std::string_view first_line, bool complete);

/// Parses one request head at the front of `buffer`.
HttpParse parse_http_request(std::string_view buffer);

/// What a request asks for: a Command, or an error status with its reason.
struct Route {
    int status = 200;  // 200, or 400/404/405
    Command command;
    std::string reason;  // for errors
};
Route route(const HttpRequest& request);

/// Percent-decodes a query value ('+' is a space, as in HTML forms). False on a bad escape.
bool percent_decode(std::string_view in, std::string& out);

/// Appends a full response with Content-Type, Content-Length and Date.
/// HEAD gets the same header fields and no body. `close` adds `Connection:
/// close`; `echo_keep_alive` adds `Connection: keep-alive` (HTTP/1.0 asked for it).
struct HttpResponse {
    int status = 200;
    std::string_view body;
    bool head = false;
    bool close = false;
    bool echo_keep_alive = false;
    std::string_view content_type = "text/plain";
};
void append_response(std::string& out, const HttpResponse& response);

std::string_view status_text(int status);

/// The request for `command` as a proxy sends it upstream (09): `GET
/// <target> HTTP/1.1`, keep-alive, for the routes of docs/protocol.md.
/// Empty for a command no route reaches (QUIT, CRASH).
std::string http_request_for(const Command& command, std::string_view host);

/// One response at the front of `buffer`, as a server of this toolkit sends
/// it (Content-Length always; no chunked body, which it never sends).
struct HttpResponseParse {
    enum Status { need_more, complete, error } status = need_more;
    size_t consumed = 0;  // the whole response, head and body
    int code = 0;
    std::string content_type;
    std::string body;
    bool close = false;   // `Connection: close`: the connection ends after it
    std::string reason;   // error: what was wrong
};
/// `head`: the request was HEAD, so the response has no body whatever its Content-Length says.
HttpResponseParse parse_http_response(std::string_view buffer, bool head = false);

}  // namespace sl
