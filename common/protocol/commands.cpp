#include "protocol/commands.hpp"

#include "protocol/strings.hpp"

#include "base/clock.hpp"

#include <fmt/format.h>

#include <sys/resource.h>

#include <cerrno>
#include <cstdlib>
#include <charconv>
#include <ctime>

namespace sl {
namespace {

// Decimal digits only, no sign, no spaces inside, within [0, max].
bool parse_number(std::string_view text, uint64_t max, uint64_t& out) {
    text = trim(text);
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size() && out <= max;
}

// What an error message may quote of the client's bytes: short, printable.
std::string quote(std::string_view word) {
    std::string out;
    for (char c : word.substr(0, 32)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (word.size() > 32) out += "...";
    return out;
}

// Sleeps until an absolute CLOCK_MONOTONIC deadline, so an interruption by a
// signal (EINTR, e.g. SIGTERM during a graceful stop) resumes instead of
// cutting the request short or sleeping longer than asked.
void sleep_ms(uint64_t ms) {
    const timespec until = clock_after_ms(CLOCK_MONOTONIC, ms);
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {
    }
}

// The CRASH test hook: die the way a buggy worker would, without leaving a
// core file in the working directory.
[[noreturn]] void crash() {
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    std::abort();
}

}  // namespace

Command invalid_command(std::string error) {
    Command c;
    c.error = std::move(error);
    return c;
}

Command make_echo(std::string_view text) {
    Command c;
    c.verb = Verb::echo;
    c.text = std::string(text);
    return c;
}

Command make_sleep(std::string_view ms) {
    Command c;
    if (!parse_number(ms, kMaxSleepMs, c.number)) return invalid_command("SLEEP needs milliseconds in 0..60000");
    c.verb = Verb::sleep;
    return c;
}

Command make_work(std::string_view steps) {
    Command c;
    if (!parse_number(steps, kMaxWorkSteps, c.number)) return invalid_command("WORK needs a step count in 0..1000000000");
    c.verb = Verb::work;
    return c;
}

namespace {

Command make_counter(Verb verb, std::string_view name) {
    name = trim(name);
    if (std::string why = check_counter_name(name); !why.empty()) return invalid_command(why);
    Command c;
    c.verb = verb;
    c.text = std::string(name);
    return c;
}

}  // namespace

Command make_incr(std::string_view name) {
    return make_counter(Verb::incr, name);
}

Command make_get(std::string_view name) {
    return make_counter(Verb::get, name);
}

Command parse_command(std::string_view line) {
    // Leading blanks never belong to the command word; trailing ones may be ECHO's text.
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    size_t space = line.find_first_of(" \t");
    std::string_view word = line.substr(0, space);
    std::string_view rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);

    if (iequals(word, "ECHO")) return make_echo(rest);
    if (iequals(word, "SLEEP")) return make_sleep(rest);
    if (iequals(word, "WORK")) return make_work(rest);
    if (iequals(word, "INCR")) return make_incr(rest);
    if (iequals(word, "GET")) return make_get(rest);

    struct Plain {
        std::string_view name;
        Verb verb;
    };
    static constexpr Plain plain[] = {
        {"PING", Verb::ping},   {"WHO", Verb::who},   {"STATS", Verb::stats},
        {"STATUS", Verb::status}, {"QUIT", Verb::quit}, {"CRASH", Verb::crash}};
    for (const Plain& p : plain) {
        if (!iequals(word, p.name)) continue;
        if (!trim(rest).empty()) return invalid_command(fmt::format("{} takes no argument", p.name));
        Command c;
        c.verb = p.verb;
        return c;
    }
    return invalid_command(fmt::format("unknown command '{}'", quote(word)));
}

uint64_t splitmix64_after(uint64_t n) {
    uint64_t state = 0;
    uint64_t z = 0;
    for (uint64_t i = 0; i < n; ++i) {
        z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z = z ^ (z >> 31);
        // Only the last output is answered, and state is just i times a
        // constant: without this empty asm the compiler computes the last
        // step directly and WORK stops costing CPU. It makes z "used" by
        // every step, at no cost of its own.
        asm volatile("" : "+r"(z));
    }
    return z;
}

std::string text_request_for(const Command& c) {
    switch (c.verb) {
    case Verb::ping: return "PING";
    case Verb::echo: return "ECHO " + c.text;
    case Verb::sleep: return fmt::format("SLEEP {}", c.number);
    case Verb::work: return fmt::format("WORK {}", c.number);
    case Verb::incr: return "INCR " + c.text;
    case Verb::get: return "GET " + c.text;
    case Verb::who: return "WHO";
    case Verb::stats: return "STATS";
    case Verb::status: return "STATUS";
    case Verb::quit:
    case Verb::crash:
    case Verb::invalid: break;
    }
    return {};
}

std::string format_identity(const Identity& w) {
    std::string worker = w.worker < 0 ? "-" : std::to_string(w.worker);
    return fmt::format("model={} pid={} ppid={} tid={} worker={} conn={}", w.model, w.pid, w.ppid, w.tid, worker,
                       w.conn);
}

std::string format_totals(const Totals& t) {
    std::string line = fmt::format("model={} workers={} connections={} requests={} uptime_ms={}", t.model,
                                   t.workers, t.connections, t.requests, t.uptime_ms);
    if (t.has_accept_counters)
        line += fmt::format(" accepts={} wakeups={} spurious={}", t.accepts, t.wakeups, t.spurious);
    return line;
}

Answer execute(const Command& c, const ServerView& server) {
    switch (c.verb) {
    case Verb::ping:
        return {"PONG"};
    case Verb::echo:
        return {c.text};
    case Verb::sleep:
        sleep_ms(c.number);
        return {fmt::format("SLEPT {}", c.number)};
    case Verb::work:
        return {fmt::format("WORKED {} {:016x}", c.number, splitmix64_after(c.number))};
    case Verb::incr:
    case Verb::get: {
        CounterStore* store = server.store();
        if (store == nullptr) return {"ERR counters are not kept here", false, true};
        if (c.verb == Verb::get) return {fmt::format("VALUE {}", store->get(c.text))};
        std::optional<uint64_t> value = store->incr(c.text);
        if (!value) return {fmt::format("ERR too many counters (at most {})", kMaxCounters), false, true};
        return {fmt::format("VALUE {}", *value)};
    }
    case Verb::who:
        return {format_identity(server.identity())};
    case Verb::stats:
        return {format_totals(server.totals())};
    case Verb::status:
        switch (c.format) {
        case StatusFormat::json: return {format_status_json(server.status()), false, false, "application/json"};
        case StatusFormat::html: return {format_status_html(server.status()), false, false, "text/html; charset=utf-8"};
        case StatusFormat::text: break;
        }
        return {format_status_text(server.status())};
    case Verb::quit:
        return {"BYE", true};
    case Verb::crash:
        if (!server.debug_commands()) return {"ERR unknown command 'CRASH'", false, true};
        crash();
    case Verb::invalid:
        break;
    }
    return {"ERR " + c.error, false, true};
}

}  // namespace sl
