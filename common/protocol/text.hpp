// text.hpp: the text framing (nc, telnet): one request per LF-terminated line.
#pragma once

#include <cstddef>
#include <string_view>

namespace sl {

/// A request line may be this long, terminator included.
inline constexpr size_t kMaxLine = 8192;

struct TextParse {
    enum Status { need_more, line, too_long } status = need_more;
    size_t consumed = 0;    // bytes of the buffer this line used, LF included
    std::string_view text;  // the line without LF and without a CR before it
};

/// Looks for one complete line at the front of `buffer`. Pure: no I/O, so a
/// test can feed it a byte at a time.
inline TextParse parse_text_line(std::string_view buffer) {
    size_t newline = buffer.substr(0, kMaxLine).find('\n');
    if (newline == std::string_view::npos)
        return {buffer.size() >= kMaxLine ? TextParse::too_long : TextParse::need_more, 0, {}};
    std::string_view text = buffer.substr(0, newline);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    return {TextParse::line, newline + 1, text};
}

/// Blank lines (nothing but spaces and tabs) are ignored by the server.
inline bool is_blank(std::string_view line) {
    return line.find_first_not_of(" \t") == std::string_view::npos;
}

}  // namespace sl
