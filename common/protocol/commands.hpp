// commands.hpp: the command set, shared by both framings. No sockets here.
//
// A command is parsed (text line or HTTP route -> Command), then executed
// (Command -> Answer). Parsing is pure; executing SLEEP and WORK takes real
// time, which is the point of those two commands. See docs/protocol.md.
#pragma once

#include "protocol/counters.hpp"
#include "protocol/state.hpp"
#include "protocol/status.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace sl {

enum class Verb { ping, echo, sleep, work, incr, get, who, stats, status, quit, crash, invalid };

/// STATUS's three forms: text lines, /status.json, the /status page.
enum class StatusFormat { text, json, html };

inline constexpr uint64_t kMaxSleepMs = 60000;
inline constexpr uint64_t kMaxWorkSteps = 1000000000;

struct Command {
    Verb verb = Verb::invalid;
    std::string text;     // ECHO: the bytes to send back; INCR, GET: the counter's name
    uint64_t number = 0;  // SLEEP: milliseconds; WORK: steps
    StatusFormat format = StatusFormat::text;  // STATUS
    std::string error;    // Verb::invalid: why, answered as `ERR <error>`
};

/// Parses one text-framing line (terminator already removed). The command
/// word is case-insensitive; ECHO keeps the bytes after its first space as they are.
Command parse_command(std::string_view line);

/// The argument checks, shared with the HTTP routes so both framings agree.
Command make_echo(std::string_view text);
Command make_sleep(std::string_view ms);
Command make_work(std::string_view steps);
Command make_incr(std::string_view name);
Command make_get(std::string_view name);
Command invalid_command(std::string error);

/// The n-th output of splitmix64 started from state 0 (n = 0 gives 0).
/// Steele, Lea, Flood, "Fast splittable pseudorandom number generators", 2014.
uint64_t splitmix64_after(uint64_t n);

/// Who is answering: WHO's fields.
struct Identity {
    std::string_view model;
    pid_t pid = 0;
    pid_t ppid = 0;
    pid_t tid = 0;
    int worker = -1;  // -1 where the model has no worker index: printed as '-'
    uint64_t conn = 0;
};

/// What execute() needs from the running server.
class ServerView {
public:
    virtual ~ServerView() = default;
    virtual Identity identity() const = 0;
    virtual Totals totals() const = 0;
    /// STATUS: a row per worker (and thread) with its state and counts.
    virtual Status status() const = 0;
    /// CRASH is a test hook, refused unless the server was started with --debug-commands.
    virtual bool debug_commands() const { return false; }
    /// A graceful stop has begun: every answer from now on is its
    /// connection's last (Session::answer says so in HTTP).
    virtual bool stopping() const { return false; }
    /// Where INCR and GET count (state.hpp); none: they answer ERR.
    virtual CounterStore* store() const { return nullptr; }
};

struct Answer {
    std::string line;    // without the terminating LF
    bool close = false;  // QUIT: close the connection after this answer
    bool error = false;  // an `ERR ...` answer (HTTP answers it with 400, or with `status`)
    std::string_view content_type = "text/plain";  // HTTP: STATUS's JSON and HTML say so
    int status = 0;      // HTTP: a status of its own (09: 502, 504); 0: 200, or 400 for an error
};

/// The text request line for `command`, without its LF, as a proxy sends it
/// upstream (09): `PING`, `ECHO <bytes>`, `SLEEP 10` ... Empty for a command
/// that is the proxy's own to answer.
std::string text_request_for(const Command& command);

/// Runs the command. SLEEP really sleeps (and finishes even when a signal
/// interrupts it); WORK really computes; INCR and GET use server.store().
Answer execute(const Command& command, const ServerView& server);

std::string format_identity(const Identity& who);
std::string format_totals(const Totals& totals);

}  // namespace sl
