// session.hpp: one connection's protocol state, with no socket inside.
//
// The connection loop (serve_connection in server.hpp) reads bytes and hands them here; the
// session picks the framing from the first line, answers one request per
// step() and says when the connection must close. GoogleTest drives it with
// any byte split it likes.
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

    struct Step {
        size_t consumed = 0;    // 0: the front of the input is not a complete request yet
        bool answered = false;  // an answer was appended (blank lines get none)
    };

    /// Handles the first request at the front of `input` and appends its
    /// answer to `out`. Call again with the rest of the input until consumed
    /// is 0. Once closing() is true, send `out` and close the connection.
    Step step(std::string_view input, std::string& out);

    bool closing() const { return closing_; }
    Framing framing() const { return framing_; }

    /// What to send before closing a connection that sat idle too long:
    /// `ERR idle timeout` in the text framing; nothing in HTTP (as nginx does).
    std::string_view idle_goodbye() const;

    /// The last request and answer in a few words, for --trace lines.
    const std::string& last_request() const { return last_request_; }
    const std::string& last_answer() const { return last_answer_; }

private:
    Step step_text(std::string_view input, std::string& out);
    Step step_http(std::string_view input, std::string& out);
    void note(std::string_view request, std::string_view answer);

    const ServerView& server_;
    Framing framing_ = Framing::unknown;
    bool closing_ = false;
    std::string last_request_;
    std::string last_answer_;
};

}  // namespace sl
