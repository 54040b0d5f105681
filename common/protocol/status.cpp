#include "protocol/status.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <iterator>

namespace sl {
namespace {

// '-' in text, null in JSON, where a field does not apply to this row.
template <typename T>
std::string text_or_dash(const std::optional<T>& v) {
    return v ? fmt::format("{}", *v) : "-";
}

template <typename T>
std::string json_or_null(const std::optional<T>& v) {
    return v ? fmt::format("{}", *v) : "null";
}

// Model and strategy names are plain words; escaping keeps the formats valid whatever they hold.
std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            out += fmt::format("\\u{:04x}", c);
            continue;
        }
        out += c;
    }
    return out + "\"";
}

std::string html_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '&': out += "&amp;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
        }
    }
    return out;
}

std::string_view accept_or_dash(const Status& s) { return s.accept.empty() ? "-" : s.accept; }

}  // namespace

char activity_letter(Activity a) {
    switch (a) {
    case Activity::waiting: return '_';
    case Activity::reading: return 'R';
    case Activity::working: return 'W';
    case Activity::keepalive: return 'K';
    }
    return '?';
}

StatusRow counters_row(const Counters& c) {
    StatusRow r;
    r.state = activity_letter(c.activity.load(std::memory_order_relaxed));
    r.accepts = c.connections.load(std::memory_order_relaxed);
    r.requests = c.requests.load(std::memory_order_relaxed);
    r.open = c.open.load(std::memory_order_relaxed);
    return r;
}

std::string format_status_text(const Status& s) {
    std::string out = fmt::format("STATUS model={} accept={} pid={} uptime_ms={} workers={} requests={} rows={}",
                                  s.model, accept_or_dash(s), s.pid, s.totals.uptime_ms, s.totals.workers,
                                  s.totals.requests, s.rows.size());
    for (const StatusRow& r : s.rows) {
        fmt::format_to(std::back_inserter(out),
                       "\nworker={} thread={} pid={} tid={} state={} generation={} accepts={} requests={} "
                       "wakeups={} spurious={} open={} cpu_ms={}",
                       text_or_dash(r.worker), text_or_dash(r.thread), r.pid, r.tid, r.state,
                       text_or_dash(r.generation), r.accepts, r.requests, text_or_dash(r.wakeups),
                       text_or_dash(r.spurious), r.open, r.cpu_ms);
        if (r.upstream) fmt::format_to(std::back_inserter(out), " upstream={}", *r.upstream);
    }
    return out;
}

std::string format_status_json(const Status& s) {
    const Totals& t = s.totals;
    std::string out = fmt::format(
        "{{\"model\": {}, \"accept\": {}, \"pid\": {}, \"uptime_ms\": {},\n \"totals\": {{\"workers\": {}, "
        "\"connections\": {}, \"requests\": {}",
        json_string(s.model), s.accept.empty() ? "null" : json_string(s.accept), s.pid, t.uptime_ms, t.workers,
        t.connections, t.requests);
    if (t.has_accept_counters)
        fmt::format_to(std::back_inserter(out), ", \"accepts\": {}, \"wakeups\": {}, \"spurious\": {}", t.accepts,
                       t.wakeups, t.spurious);
    out += "},\n \"workers\": [";
    const char* sep = "\n  ";
    for (const StatusRow& r : s.rows) {
        fmt::format_to(std::back_inserter(out),
                       "{}{{\"worker\": {}, \"thread\": {}, \"pid\": {}, \"tid\": {}, \"state\": \"{}\", "
                       "\"generation\": {}, \"accepts\": {}, \"requests\": {}, \"wakeups\": {}, \"spurious\": {}, "
                       "\"open\": {}, \"cpu_ms\": {}",
                       sep, json_or_null(r.worker), json_or_null(r.thread), r.pid, r.tid, r.state,
                       json_or_null(r.generation), r.accepts, r.requests, json_or_null(r.wakeups),
                       json_or_null(r.spurious), r.open, r.cpu_ms);
        if (r.upstream) fmt::format_to(std::back_inserter(out), ", \"upstream\": {}", *r.upstream);  // 09 only
        out += "}";
        sep = ",\n  ";
    }
    out += "],\n \"legend\": {";
    sep = "";
    for (const StateLetter& l : kStateLegend) {
        fmt::format_to(std::back_inserter(out), "{}\"{}\": {}", sep, l.letter, json_string(l.meaning));
        sep = ", ";
    }
    out += "}}";
    return out;
}

std::string format_status_html(const Status& s) {
    const Totals& t = s.totals;
    std::string out = fmt::format(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"2\">\n"
        "<title>{0} status</title>\n<style>\n"
        "body {{ font-family: sans-serif; margin: 1.5em; }}\n"
        "table {{ border-collapse: collapse; }} th, td {{ padding: 0.2em 0.7em; text-align: right; }}\n"
        "th {{ background: #ddd; }} tr:nth-child(even) {{ background: #f4f4f4; }}\n"
        "td.state {{ font-family: monospace; font-weight: bold; text-align: center; }}\n"
        ".W {{ color: #b00; }} .R {{ color: #a60; }} .K {{ color: #06a; }} ._ {{ color: #080; }}\n"
        "tr.thread td:first-child {{ padding-left: 2em; text-align: left; }}\n"
        "</style></head><body>\n<h1>{0}</h1>\n"
        "<p>accept strategy <b>{1}</b>, pid {2}, up {3:.1f} s: {4} workers, {5} connections, {6} requests",
        html_escape(s.model), html_escape(accept_or_dash(s)), s.pid, static_cast<double>(t.uptime_ms) / 1000,
        t.workers, t.connections, t.requests);
    if (t.has_accept_counters)
        fmt::format_to(std::back_inserter(out), ", {} wakeups of which {} spurious", t.wakeups, t.spurious);
    // 09's rows have one more column: the worker's connections to its backends.
    const bool upstream = std::any_of(s.rows.begin(), s.rows.end(), [](const StatusRow& r) { return r.upstream; });
    out += ".</p>\n<table>\n<tr><th>worker</th><th>thread</th><th>pid</th><th>tid</th><th>state</th><th>gen</th>"
           "<th>accepts</th><th>requests</th><th>wakeups</th><th>spurious</th><th>open</th>";
    out += upstream ? "<th>upstream</th><th>CPU ms</th></tr>\n" : "<th>CPU ms</th></tr>\n";
    for (const StatusRow& r : s.rows) {
        fmt::format_to(std::back_inserter(out),
                       "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"state {}\">{}</td><td>{}</td>"
                       "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                       r.thread ? " class=\"thread\"" : "", text_or_dash(r.worker), text_or_dash(r.thread), r.pid,
                       r.tid, r.state, r.state, text_or_dash(r.generation), r.accepts, r.requests,
                       text_or_dash(r.wakeups), text_or_dash(r.spurious), r.open);
        if (upstream) fmt::format_to(std::back_inserter(out), "<td>{}</td>", text_or_dash(r.upstream));
        fmt::format_to(std::back_inserter(out), "<td>{}</td></tr>\n", r.cpu_ms);
    }
    out += "</table>\n<p>State: ";
    const char* sep = "";
    for (const StateLetter& l : kStateLegend) {
        fmt::format_to(std::back_inserter(out), "{}<code>{}</code> {}", sep, l.letter, html_escape(l.meaning));
        sep = "; ";
    }
    out += ".</p>\n<p>The same as JSON: <a href=\"/status.json\">/status.json</a>. This page reloads itself every "
           "2 seconds.</p>\n</body></html>";
    return out;
}

}  // namespace sl
