// The text framing: any bytes, split into lines as the connection loop does.
// A finding is a crash, a sanitizer report, or a broken promise (abort()).
#include "protocol/text.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    while (!rest.empty()) {
        sl::TextParse p = sl::parse_text_line(rest);
        if (p.status != sl::TextParse::line) {
            // need_more only below the limit, too_long only at it
            if ((p.status == sl::TextParse::too_long) != (rest.size() >= sl::kMaxLine)) std::abort();
            break;
        }
        if (p.consumed == 0 || p.consumed > rest.size() || p.consumed > sl::kMaxLine) std::abort();
        if (p.text.size() >= p.consumed || p.text.find('\n') != std::string_view::npos) std::abort();
        (void)sl::is_blank(p.text);
        rest.remove_prefix(p.consumed);
    }
    return 0;
}
