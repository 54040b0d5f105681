// The HTTP framing: request heads, routes, percent-decoding, and the answers
// a backend sends the proxy, on any bytes.
#include "protocol/http.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    size_t lf = input.find('\n');
    (void)sl::looks_like_http(input.substr(0, lf), lf != std::string_view::npos);

    sl::HttpParse p = sl::parse_http_request(input);
    switch (p.status) {
    case sl::HttpParse::need_more:
        if (size > sl::kMaxHeaderBytes + sl::kMaxTarget + 64) std::abort();  // a head that big must be refused
        break;
    case sl::HttpParse::error:
        if (p.error_status < 400 || p.error_status > 505 || p.reason.empty()) std::abort();
        break;
    case sl::HttpParse::complete: {
        if (p.consumed == 0 || p.consumed > size) std::abort();
        sl::Route r = sl::route(p.request);
        if (r.status != 200 && (r.status < 400 || r.status > 499)) std::abort();
        std::string body;
        sl::append_response(body, {r.status, r.command.text, p.request.method == "HEAD", !p.request.keep_alive, false});
        break;
    }
    }
    // The same bytes as what a backend answers 09: a complete answer is its
    // head, then its body (within the limit), all within what was read.
    sl::HttpResponseParse a = sl::parse_http_response(input);
    if (a.status == sl::HttpResponseParse::complete &&
        (a.consumed > size || a.body.size() > sl::kMaxResponseBody ||
         a.consumed != input.find("\r\n\r\n") + 4 + a.body.size()))
        std::abort();
    if (a.status == sl::HttpResponseParse::error && a.reason.empty()) std::abort();
    if (a.status == sl::HttpResponseParse::need_more && size > sl::kMaxHeaderBytes + sl::kMaxResponseBody + 4)
        std::abort();

    std::string decoded;
    if (sl::percent_decode(input, decoded) && decoded.size() > input.size()) std::abort();
    return 0;
}
