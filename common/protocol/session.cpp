#include "protocol/session.hpp"

#include "protocol/http.hpp"
#include "protocol/text.hpp"
#include "base/trace.hpp"

namespace sl {
namespace {

// A request consumed with nothing to do (a blank line).
Session::Parsed skipped(size_t consumed) {
    Session::Parsed p;
    p.consumed = consumed;
    return p;
}

}  // namespace

Session::Parsed Session::parse(std::string_view input, std::string& out) {
    if (closing_) return {};
    if (framing_ == Framing::unknown) {
        // The first line that is not blank decides the framing for the whole connection.
        TextParse first = parse_text_line(input);
        if (first.status == TextParse::need_more) return {};
        if (first.status == TextParse::line && is_blank(first.text)) return skipped(first.consumed);
        bool complete = first.status == TextParse::line;
        framing_ = looks_like_http(complete ? first.text : input, complete) ? Framing::http : Framing::text;
    }
    return framing_ == Framing::http ? parse_http(input, out) : parse_text(input, out);
}

Session::Parsed Session::parse_text(std::string_view input, std::string& out) {
    TextParse t = parse_text_line(input);
    switch (t.status) {
    case TextParse::need_more:
        return {};
    case TextParse::too_long:
        out += "ERR line too long\n";
        closing_ = ended_on_error_ = true;
        note("(line over 8192 bytes)", "ERR line too long");
        return {input.size(), false, {}, true};
    case TextParse::line:
        break;
    }
    if (is_blank(t.text)) return skipped(t.consumed);
    if (tracing()) pending_.text.assign(t.text.substr(0, 80));
    return {t.consumed, true, parse_command(t.text)};
}

Session::Parsed Session::parse_http(std::string_view input, std::string& out) {
    HttpParse p = parse_http_request(input);
    if (p.status == HttpParse::need_more) return {};
    if (p.status == HttpParse::error) {
        // An error answer closes the connection: after a malformed request we
        // cannot know where the next one would start.
        std::string body = "ERR " + p.reason + "\n";
        append_response(out, {p.error_status, body, false, true});
        closing_ = ended_on_error_ = true;
        note("(malformed HTTP request)", fmt::format("{} {}", p.error_status, p.reason));
        return {input.size(), false, {}, true};
    }
    const HttpRequest& request = p.request;
    bool head = request.method == "HEAD";
    Route r = route(request);
    if (r.status != 200) {
        std::string body = "ERR " + r.reason + "\n";
        append_response(out, {r.status, body, head, true});
        closing_ = ended_on_error_ = true;
        note(request.method + " " + request.target, fmt::format("{} {}", r.status, r.reason));
        return {p.consumed, false, {}, true};
    }
    pending_.head = head;
    pending_.keep_alive = request.keep_alive;
    pending_.echo_keep_alive = request.minor_version == 0 && request.keep_alive;
    if (tracing()) pending_.text = request.method + " " + request.target;
    return {p.consumed, true, std::move(r.command)};
}

void Session::answer(const Answer& answer, std::string& out) {
    if (framing_ == Framing::http) {
        std::string body = answer.line + "\n";
        const bool close = !pending_.keep_alive || server_.stopping();
        // An error the command found (ERR too many counters) is the client's: 400. The
        // request was well formed, so the connection goes on.
        int status = answer.status != 0 ? answer.status : answer.error ? 400 : 200;
        append_response(out, {status, body, pending_.head, close, pending_.echo_keep_alive && !close,
                               answer.content_type});
        closing_ = close;
        if (tracing()) note(pending_.text, fmt::format("{} {}", status, answer.line.substr(0, answer.line.find('\n'))));
        return;
    }
    out += answer.line;
    out += '\n';
    closing_ = answer.close || server_.stopping();
    if (tracing()) note(pending_.text, std::string_view(answer.line).substr(0, answer.line.find('\n')));
}

Session::Step Session::step(std::string_view input, std::string& out) {
    Parsed p = parse(input, out);
    if (p.command) answer(execute(p.what, server_), out);
    return {p.consumed, p.command || p.answered};
}

std::string_view Session::idle_goodbye() const {
    return framing_ == Framing::text ? "ERR idle timeout\n" : "";
}

void Session::note(std::string_view request, std::string_view answer) {
    if (!tracing()) return;  // only --trace reads these; keep the hot path free of copies
    last_request_.assign(request.substr(0, 80));
    last_answer_.assign(answer.substr(0, 80));
}

}  // namespace sl
