// response.cpp: see response.hpp.
#include "response.hpp"

#include <fmt/format.h>

#include <charconv>
#include <string_view>

namespace lg {
namespace {

constexpr size_t kMaxAnswer = 1 << 20;  // an answer this long without its end is wrong

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool same_word(std::string_view a, std::string_view b) {  // ASCII, case-insensitive
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
    return true;
}

Parse text_answer(const Expected& e, std::string& in, std::string& got) {
    size_t lf = in.find('\n');
    if (lf == std::string::npos) {
        if (in.size() <= kMaxAnswer) return Parse::need_more;
        got = "(no LF in 1 MiB)";
        return Parse::wrong;
    }
    std::string_view line(in.data(), lf > 0 && in[lf - 1] == '\r' ? lf - 1 : lf);
    bool right = matches(e, line);
    if (!right) got = line;
    in.erase(0, lf + 1);
    return right ? Parse::right : Parse::wrong;
}

Parse http_answer(const Expected& e, std::string& in, std::string& got, bool& server_closes) {
    size_t head_end = in.find("\r\n\r\n");
    if (head_end == std::string::npos) {
        if (in.size() <= kMaxAnswer) return Parse::need_more;
        got = "(no header end)";
        return Parse::wrong;
    }
    std::string_view head(in.data(), head_end);
    int status = 0;
    if (head.size() >= 12 && head.substr(0, 7) == "HTTP/1.") std::from_chars(head.data() + 9, head.data() + 12, status);
    size_t length = 0;
    for (size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
        size_t next = head.find("\r\n", pos + 2);
        std::string_view line = head.substr(pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
        size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
            if (same_word(name, "Content-Length")) std::from_chars(value.data(), value.data() + value.size(), length);
            if (same_word(name, "Connection") && same_word(value, "close")) server_closes = true;
        }
        pos = next;
    }
    if (length > kMaxAnswer) {
        got = "(body too long)";
        return Parse::wrong;
    }
    if (in.size() < head_end + 4 + length) return Parse::need_more;
    std::string_view body(in.data() + head_end + 4, length);
    bool right = status == e.status &&
                 (status != 200 || (!body.empty() && body.back() == '\n' && matches(e, body.substr(0, body.size() - 1))));
    if (!right) got = fmt::format("{} {}", status, body.substr(0, body.find('\n')));
    in.erase(0, head_end + 4 + length);
    return right ? Parse::right : Parse::wrong;
}

}  // namespace

Parse parse_answer(Protocol protocol, const Expected& e, std::string& in, std::string& got, bool& server_closes) {
    return protocol == Protocol::text ? text_answer(e, in, got) : http_answer(e, in, got, server_closes);
}

}  // namespace lg
