#include "protocol/http.hpp"

#include "protocol/strings.hpp"
#include "protocol/text.hpp"

#include <fmt/format.h>

#include <charconv>
#include <ctime>

namespace sl {
namespace {

// RFC 9110 token characters: what a method or a field name may be made of.
bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

bool is_upper_word(std::string_view s) {
    if (s.empty() || s.size() > 16) return false;
    for (char c : s)
        if (c < 'A' || c > 'Z') return false;
    return true;
}

// "HTTP/d.d" -> major, minor.
bool parse_version(std::string_view v, int& major, int& minor) {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return false;
    if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return false;
    major = v[5] - '0';
    minor = v[7] - '0';
    return true;
}

bool has_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        size_t comma = list.find(',');
        if (iequals(trim(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

HttpParse fail(int status, std::string reason) {
    HttpParse p;
    p.status = HttpParse::error;
    p.error_status = status;
    p.reason = std::move(reason);
    return p;
}

// The value of `key` in a query string, percent-decoded. Missing: false.
bool query_value(std::string_view query, std::string_view key, std::string& value, bool& bad) {
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        size_t eq = pair.find('=');
        if (pair.substr(0, eq) == key) {
            std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
            bad = !percent_decode(raw, value);
            return true;
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return false;
}

// The Date field, formatted once a second per thread (RFC 9110 asks an origin
// server with a clock to send it).
std::string_view http_date() {
    thread_local time_t cached_second = 0;
    thread_local char text[64] = "";
    time_t now = ::time(nullptr);
    if (now != cached_second) {
        cached_second = now;
        tm utc{};
        ::gmtime_r(&now, &utc);
        ::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
    }
    return text;
}

}  // namespace

bool looks_like_http(std::string_view line, bool complete) {
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || !is_upper_word(line.substr(0, sp1))) return false;
    if (!complete) return sp1 + 1 < line.size() && line[sp1 + 1] == '/';
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return false;
    if (line.find(' ', sp2 + 1) != std::string_view::npos) return false;
    int major = 0, minor = 0;
    return parse_version(line.substr(sp2 + 1), major, minor);
}

bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '+') {
            out += ' ';
        } else if (c != '%') {
            out += c;
        } else {
            unsigned value = 0;
            if (i + 2 >= in.size()) return false;  // '%' needs two hex digits after it
            auto [end, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, value, 16);
            if (ec != std::errc() || end != in.data() + i + 3) return false;
            out += static_cast<char>(value);
            i += 2;
        }
    }
    return true;
}

HttpParse parse_http_request(std::string_view buffer) {
    size_t line_end = buffer.find('\n');
    if (line_end == std::string_view::npos) {
        // No complete request line yet. Past the longest legal one it can only be an error.
        if (buffer.size() > kMaxTarget + 32) return fail(414, "request target over 8 KiB");
        return {};
    }
    std::string_view line = buffer.substr(0, line_end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return fail(400, "malformed request line");
    HttpParse p;
    HttpRequest& r = p.request;
    r.method = std::string(line.substr(0, sp1));
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(r.method) || target.empty()) return fail(400, "malformed request line");
    if (target.size() > kMaxTarget) return fail(414, "request target over 8 KiB");
    int major = 0;
    if (!parse_version(version, major, r.minor_version)) return fail(400, "malformed HTTP version");
    if (major != 1 || r.minor_version > 1) return fail(505, "only HTTP/1.0 and HTTP/1.1 are supported");
    r.target = std::string(target);

    // Header fields, up to the empty line that ends the head.
    bool close = false, keep_alive = false, body = false;
    size_t headers_start = line_end + 1;
    size_t pos = headers_start;
    for (;;) {
        size_t end = buffer.find('\n', pos);
        if (end == std::string_view::npos) {
            if (buffer.size() - headers_start > kMaxHeaderBytes) return fail(431, "header section over 16 KiB");
            return {};
        }
        if (end + 1 - headers_start > kMaxHeaderBytes) return fail(431, "header section over 16 KiB");
        std::string_view field = buffer.substr(pos, end - pos);
        if (!field.empty() && field.back() == '\r') field.remove_suffix(1);
        pos = end + 1;
        if (field.empty()) break;

        size_t colon = field.find(':');
        // A name must be a token: no leading white space (obsolete line folding), none before the colon.
        if (colon == std::string_view::npos || !is_token(field.substr(0, colon)))
            return fail(400, "malformed header field");
        std::string_view name = field.substr(0, colon);
        std::string_view value = trim(field.substr(colon + 1));
        if (iequals(name, "Connection")) {
            close = close || has_token(value, "close");
            keep_alive = keep_alive || has_token(value, "keep-alive");
        } else if (iequals(name, "Content-Length")) {
            uint64_t length = 0;
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
            if (ec != std::errc() || ptr != value.data() + value.size() || value.empty())
                return fail(400, "malformed Content-Length");
            body = body || length > 0;
        } else if (iequals(name, "Transfer-Encoding")) {
            body = true;
        }
    }
    if (body) return fail(413, "requests with a body are not accepted");
    // HTTP/1.1 keeps the connection unless asked to close; HTTP/1.0 closes unless asked to keep it.
    r.keep_alive = r.minor_version == 1 ? !close : keep_alive && !close;
    p.status = HttpParse::complete;
    p.consumed = pos;
    return p;
}

Route route(const HttpRequest& request) {
    Route out;
    if (request.method != "GET" && request.method != "HEAD") {
        out.status = 405;
        out.reason = "only GET and HEAD are allowed";
        return out;
    }
    std::string_view target = request.target;
    if (target.substr(0, 7) == "http://") {  // absolute-form: drop scheme and authority
        size_t slash = target.find('/', 7);
        target = slash == std::string_view::npos ? "/" : target.substr(slash);
    }
    size_t qmark = target.find('?');
    std::string_view path = target.substr(0, qmark);
    std::string_view query = qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);

    // The routes that need a parameter: its name and how to build the command from it.
    struct WithParam {
        std::string_view path, key;
        Command (*make)(std::string_view);
    };
    static constexpr WithParam with_param[] = {
        {"/echo", "msg", make_echo}, {"/sleep", "ms", make_sleep}, {"/work", "n", make_work},
        {"/incr", "name", make_incr}, {"/get", "name", make_get}};
    for (const WithParam& w : with_param) {
        if (path != w.path) continue;
        std::string value;
        bool bad = false;
        if (!query_value(query, w.key, value, bad)) {
            out.status = 400;
            out.reason = fmt::format("{} needs {}=", w.path, w.key);
        } else if (bad) {
            out.status = 400;
            out.reason = "bad percent-encoding";
        } else {
            out.command = w.make(value);
            if (out.command.verb == Verb::invalid) {
                out.status = 400;
                out.reason = out.command.error;
            }
        }
        return out;
    }
    if (path == "/status" || path == "/status.json") {
        out.command.verb = Verb::status;
        out.command.format = path == "/status" ? StatusFormat::html : StatusFormat::json;
        return out;
    }
    static constexpr std::pair<std::string_view, Verb> plain[] = {
        {"/ping", Verb::ping}, {"/who", Verb::who}, {"/stats", Verb::stats}};
    for (const auto& [name, verb] : plain) {
        if (path == name) {
            out.command.verb = verb;
            return out;
        }
    }
    out.status = 404;
    out.reason = fmt::format("no route {}", path.substr(0, 64));
    return out;
}

std::string_view status_text(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

void append_response(std::string& out, const HttpResponse& r) {
    fmt::format_to(std::back_inserter(out),
                   "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nDate: {}\r\n", r.status,
                   status_text(r.status), r.content_type, r.body.size(), http_date());
    if (r.status == 405) out += "Allow: GET, HEAD\r\n";
    if (r.close)
        out += "Connection: close\r\n";
    else if (r.echo_keep_alive)
        out += "Connection: keep-alive\r\n";
    out += "\r\n";
    if (!r.head) out += r.body;
}

namespace {

// A query value's bytes, percent-encoded but for the unreserved ones (RFC 3986).
std::string percent_encode(std::string_view in) {
    std::string out;
    for (unsigned char c : in) {
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                     c == '.' || c == '_' || c == '~';
        if (plain) out += static_cast<char>(c);
        else out += fmt::format("%{:02X}", c);
    }
    return out;
}

HttpResponseParse bad_response(std::string reason) {
    HttpResponseParse r;
    r.status = HttpResponseParse::error;
    r.reason = std::move(reason);
    return r;
}

}  // namespace

std::string http_request_for(const Command& c, std::string_view host) {
    std::string target;
    switch (c.verb) {
    case Verb::ping: target = "/ping"; break;
    case Verb::echo: target = "/echo?msg=" + percent_encode(c.text); break;
    case Verb::sleep: target = fmt::format("/sleep?ms={}", c.number); break;
    case Verb::work: target = fmt::format("/work?n={}", c.number); break;
    case Verb::incr: target = "/incr?name=" + c.text; break;  // a name is letters, digits and _-.: only
    case Verb::get: target = "/get?name=" + c.text; break;
    case Verb::who: target = "/who"; break;
    case Verb::stats: target = "/stats"; break;
    case Verb::status:
    case Verb::quit:
    case Verb::crash:
    case Verb::invalid: return {};
    }
    return fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", target, host);
}

HttpResponseParse parse_http_response(std::string_view buffer, bool head) {
    size_t end = buffer.find("\r\n\r\n");
    if ((end == std::string_view::npos ? buffer.size() : end) > kMaxHeaderBytes)
        return bad_response("response head over 16 KiB");  // whether or not its end has come
    if (end == std::string_view::npos) return {};
    std::string_view status_line = buffer.substr(0, buffer.find("\r\n"));
    int major = 0, minor = 0;
    HttpResponseParse r;
    if (status_line.size() < 12 || !parse_version(status_line.substr(0, 8), major, minor) || status_line[8] != ' ')
        return bad_response("malformed status line");
    auto [ptr, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, r.code);
    if (ec != std::errc() || ptr != status_line.data() + 12 || r.code < 100) return bad_response("malformed status code");
    bool has_length = false;
    size_t length = 0;
    r.close = minor == 0;  // HTTP/1.0 closes unless it says otherwise
    for (size_t pos = status_line.size() + 2; pos < end;) {
        size_t eol = buffer.find("\r\n", pos);
        std::string_view field = buffer.substr(pos, eol - pos);
        pos = eol + 2;
        size_t colon = field.find(':');
        if (colon == std::string_view::npos) return bad_response("malformed header field");
        std::string_view name = field.substr(0, colon), value = trim(field.substr(colon + 1));
        if (iequals(name, "Content-Length")) {
            size_t n = 0;
            auto [p, e] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (e != std::errc() || p != value.data() + value.size() || value.empty())
                return bad_response("malformed Content-Length");
            if (has_length && n != length) return bad_response("two different Content-Lengths");  // RFC 9112, 6.3
            length = n;
            has_length = true;
        } else if (iequals(name, "Content-Type")) {
            r.content_type = std::string(value);
        } else if (iequals(name, "Connection")) {
            if (has_token(value, "close")) r.close = true;
            if (has_token(value, "keep-alive")) r.close = false;
        } else if (iequals(name, "Transfer-Encoding")) {
            return bad_response("a chunked response (this toolkit's servers send Content-Length)");
        }
    }
    if (!has_length && !head) return bad_response("a response without Content-Length");
    if (head) length = 0;
    // The answer is held whole until it is complete (09 re-frames it), so its
    // length is capped before one byte of body is waited for: a backend cannot
    // grow the proxy past the limit, nor wrap end + 4 + length around to a
    // few bytes with a length near SIZE_MAX.
    if (length > kMaxResponseBody) return bad_response("a body over 1 MiB");
    size_t whole = end + 4 + length;
    if (buffer.size() < whole) return {};
    r.body = std::string(buffer.substr(end + 4, length));
    r.consumed = whole;
    r.status = HttpResponseParse::complete;
    return r;
}

}  // namespace sl
