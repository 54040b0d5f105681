// json.hpp: just enough to write JSON by hand with fmt (no JSON library in
// Debian's C++ toolbox that we want to depend on for this).
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace lg {

/// `s` as a JSON string literal, quotes included.
inline std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:  // control and non-ASCII bytes as \u00XX: the output stays valid UTF-8
            if (c < 0x20 || c >= 0x7f) out += fmt::format("\\u{:04x}", c);
            else out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

}  // namespace lg
