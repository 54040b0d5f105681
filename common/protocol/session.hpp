// session.hpp: one connection's protocol state, with no socket inside.
//
// A connection loop reads bytes and hands them here; the session picks the
// framing from the first line, and answers one request at a time in two
// halves: parse() finds the next request and says which command it asks
// for, and answer() frames that command's answer (a text line, or an HTTP
// response). Between the two the caller executes the command: at once
// (step() does all three, for the blocking models), or later (the event loop
// answers a SLEEP when its timer fires). GoogleTest drives it with any byte
// split it likes.
#pragma once

#include "protocol/commands.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace sl {

enum class Framing { unknown, text, http };

class Session {
public:
    explicit Session(const ServerView& server) : server_(server) {}

    struct Parsed {
        size_t consumed = 0;   // 0: the front of the input is not a complete request yet
        bool command = false;  // a command to execute, then answer()
        Command what;          // ... which one
        bool answered = false;  // no command: the session answered itself (a protocol error) into `out`
    };

    /// Finds the request at the front of `input`. A blank line is consumed
    /// with nothing to do; a malformed request is answered here (an ERR line,
    /// a 4xx) and may set closing(). Otherwise the caller executes `what`
    /// and passes the result to answer() before parsing the next request.
    Parsed parse(std::string_view input, std::string& out);

    /// Appends the answer to the command parse() returned, framed as the
    /// request was (text line, or HTTP response with its keep-alive rule).
    /// Once the server is stopping() the answer is the connection's last:
    /// in HTTP it says `Connection: close`, so the client sends nothing more
    /// on it (closing a keep-alive connection without saying so would race
    /// the client's next request); in text the connection closes after it.
    void answer(const Answer& answer, std::string& out);

    struct Step {
        size_t consumed = 0;    // 0: the front of the input is not a complete request yet
        bool answered = false;  // an answer was appended (blank lines get none)
    };

    /// parse(), execute() at once, answer(): the first request at the front
    /// of `input`, answered into `out`. Call again with the rest of the input
    /// until consumed is 0. Once closing() is true, send `out` and close.
    Step step(std::string_view input, std::string& out);

    bool closing() const { return closing_; }
    /// Closing because a request was malformed (ERR line too long, a 4xx):
    /// the rest of what the client sent was not read, and may still be
    /// arriving (a request body). The connection loop closes it lingering.
    bool ended_on_error() const { return ended_on_error_; }
    Framing framing() const { return framing_; }

    /// What to send before closing a connection that sat idle too long:
    /// `ERR idle timeout` in the text framing; nothing in HTTP (as nginx does).
    std::string_view idle_goodbye() const;

    /// The last request and answer in a few words, for --trace lines.
    const std::string& last_request() const { return last_request_; }
    const std::string& last_answer() const { return last_answer_; }

    const ServerView& server() const { return server_; }

private:
    Parsed parse_text(std::string_view input, std::string& out);
    Parsed parse_http(std::string_view input, std::string& out);
    void note(std::string_view request, std::string_view answer);

    const ServerView& server_;
    Framing framing_ = Framing::unknown;
    bool closing_ = false;
    bool ended_on_error_ = false;
    // The request being answered, between parse() and answer().
    struct Pending {
        std::string text;  // the text line, or "METHOD TARGET" (for --trace)
        bool head = false;
        bool keep_alive = true;
        bool echo_keep_alive = false;
    } pending_;
    std::string last_request_;
    std::string last_answer_;
};

}  // namespace sl
