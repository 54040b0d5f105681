// The command layer: every line parses to a command or a clear ERR, and
// executing it gives one answer line. SLEEP and WORK are parsed and
// bounds-checked but not run (they would sleep or spin the fuzzer). INCR
// and GET count in a plain map, which fills up: then INCR is refused.
#include "protocol/commands.hpp"
#include "protocol/http.hpp"
#include "protocol/text.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

struct Server : sl::ServerView {
    sl::Identity identity() const override { return {"fuzz", 1, 1, 1, -1, 1}; }
    sl::Totals totals() const override { return {"fuzz", 1, 1, 1, 1}; }
    sl::Status status() const override { return {"fuzz", {}, 1, totals(), {}}; }
    sl::CounterStore* store() const override { return &counters; }
    mutable sl::LocalStore counters;
};

void check(const sl::Command& c) {
    static const Server server;
    switch (c.verb) {
    case sl::Verb::sleep:
        if (c.number > sl::kMaxSleepMs) std::abort();
        return;
    case sl::Verb::work:
        if (c.number > sl::kMaxWorkSteps) std::abort();
        return;
    case sl::Verb::crash:
        return;  // refused by this server anyway; never run it here
    case sl::Verb::incr:
    case sl::Verb::get:
        if (!sl::check_counter_name(c.text).empty()) std::abort();  // only valid names reach a store
        break;
    case sl::Verb::invalid:
        if (c.error.empty()) std::abort();  // a malformed command says why
        break;
    default:
        break;
    }
    sl::Answer a = sl::execute(c, server);
    // One line per answer, except ECHO (the client's bytes) and STATUS,
    // whose rows follow its header line by design (docs/protocol.md).
    if (a.line.find('\n') != std::string::npos && c.verb != sl::Verb::echo && c.verb != sl::Verb::status)
        std::abort();
    // An error answer for a malformed command, and for INCR of a new name in a full table only.
    if (c.verb == sl::Verb::invalid && !a.error) std::abort();
    if (a.error && c.verb != sl::Verb::invalid && c.verb != sl::Verb::incr) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string_view line = input.substr(0, sl::kMaxLine);
    if (!sl::is_blank(line)) check(sl::parse_command(line));  // the server never parses a blank line
    sl::HttpRequest r;
    r.method = "GET";
    r.target = std::string(input.substr(0, sl::kMaxTarget));
    sl::Route route = sl::route(r);
    if (route.status == 200) check(route.command);
    else if (route.reason.empty()) std::abort();
    return 0;
}
