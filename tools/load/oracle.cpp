// oracle.cpp: see oracle.hpp.
#include "oracle.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace lg {
namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

// Plain decimal digits within [0, max] (docs/protocol.md: no sign, no unit).
bool number(std::string_view s, uint64_t max, uint64_t& out) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && out <= max;
}

// A counter's name (docs/protocol.md): 1 to 64 of letters, digits, '_', '-', '.', ':'.
bool counter_name(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':';
    });
}

// A command's answer, from its word and argument; "ERR " for anything the page calls an error.
Expected answer_for(std::string_view word, std::string_view arg, bool has_arg) {
    Expected e;
    uint64_t n = 0;
    std::string w = upper(word);
    if (w == "PING" && !has_arg) e.answer = "PONG";
    else if (w == "ECHO") e.answer = std::string(arg);
    else if (w == "SLEEP" && number(arg, 60000, n)) e.answer = fmt::format("SLEPT {}", n);
    else if (w == "WORK" && number(arg, 1000000000, n)) e.answer = fmt::format("WORKED {} {:016x}", n, splitmix64_nth(n));
    else if ((w == "WHO" || w == "STATS") && !has_arg) e.answer = "model=", e.prefix = true;
    else if ((w == "INCR" || w == "GET") && counter_name(arg)) e.answer = "VALUE ", e.prefix = true;  // any count
    else if (w == "QUIT" && !has_arg) e.answer = "BYE", e.closes = true;
    else e.answer = "ERR ", e.prefix = true;
    return e;
}

// %XX and '+' (a space) in a query value; nullopt-like false on a bad escape.
bool decode(std::string_view in, std::string& out) {
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
            out += ' ';
        } else if (in[i] != '%') {
            out += in[i];
        } else {
            unsigned v = 0;
            if (i + 3 > in.size() || std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16).ptr != in.data() + i + 3)
                return false;
            out += static_cast<char>(v);
            i += 2;
        }
    }
    return true;
}

// The value of `key` in a query string, decoded.
bool query_value(std::string_view query, std::string_view key, std::string& out) {
    while (!query.empty()) {
        std::string_view pair = query.substr(0, query.find('&'));
        if (pair.substr(0, key.size() + 1) == std::string(key) + "=") return decode(pair.substr(key.size() + 1), out);
        query.remove_prefix(std::min(query.size(), pair.size() + 1));
    }
    return false;
}

}  // namespace

uint64_t splitmix64_nth(uint64_t n) {
    if (n == 0) return 0;
    uint64_t z = n * 0x9e3779b97f4a7c15ULL;  // the state after n steps
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

Expected expect(const LoadOptions& o, const std::string& request) {
    Expected e;
    if (o.protocol == Protocol::text) {
        std::string_view line = request;
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
        size_t space = line.find_first_of(" \t");
        std::string_view arg = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
        bool has_arg = arg.find_first_not_of(" \t") != std::string_view::npos;
        e = answer_for(line.substr(0, space), arg, has_arg);
        e.wire = request + "\n";
    } else {
        std::string_view target = request;
        std::string_view path = target.substr(0, target.find('?'));
        std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view();
        std::string value;
        static const struct { std::string_view path, word, key; } routes[] = {
            {"/ping", "PING", ""}, {"/echo", "ECHO", "msg"}, {"/sleep", "SLEEP", "ms"},
            {"/work", "WORK", "n"}, {"/who", "WHO", ""},     {"/stats", "STATS", ""},
            {"/incr", "INCR", "name"}, {"/get", "GET", "name"}};
        e.status = 404;
        for (const auto& r : routes) {
            if (path != r.path) continue;
            bool ok = r.key.empty() || query_value(query, r.key, value);
            e = answer_for(r.word, value, !value.empty());
            e.status = ok && e.answer != "ERR " ? 200 : 400;
        }
        e.closes = o.conn_per_request;
        e.wire = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\n{}\r\n", request, o.host,
                             o.conn_per_request ? "Connection: close\r\n" : "");
    }
    e.label = request;
    return e;
}

bool matches(const Expected& e, std::string_view got) {
    return e.prefix ? got.substr(0, e.answer.size()) == e.answer : got == e.answer;
}

}  // namespace lg
