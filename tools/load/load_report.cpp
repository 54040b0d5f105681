// load_report.cpp: a load result as JSON (for tools) and as text (for people).
#include "load.hpp"

#include "json.hpp"

#include <fmt/format.h>

namespace lg {

namespace {

std::string latency_json(const Histogram& h) {
    auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
    return fmt::format(R"({{"p50": {:.3f}, "p90": {:.3f}, "p99": {:.3f}, "p99.9": {:.3f}, "max": {:.3f}, "mean": {:.3f}}})",
                       ms(h.percentile(0.5)), ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.percentile(0.999)),
                       ms(h.max()), h.mean() / 1000.0);
}

std::string latency_text(const Histogram& h) {
    auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
    return fmt::format("p50 {:.2f} ms  p90 {:.2f}  p99 {:.2f}  p99.9 {:.2f}  max {:.2f}", ms(h.percentile(0.5)),
                       ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max()));
}

}  // namespace

std::string to_json(const LoadOptions& o, const LoadResult& r) {
    std::string out = fmt::format(
        R"({{"host": {}, "port": {}, "protocol": "{}", "connections": {}, "conn_per_request": {}, "rate": {}, )"
        R"("elapsed_s": {:.3f}, "sent": {}, "ok": {}, "errors": {}, "unfinished": {}, "connects": {}, "retried": {}, )"
        R"("rps": {:.1f}, "latency_ms": {}, "failures": {{)",
        json_string(o.host), o.port, o.protocol == Protocol::text ? "text" : "http", o.connections,
        o.conn_per_request ? "true" : "false", o.rate, r.elapsed_s, r.sent, r.ok, r.errors(), r.unfinished, r.connects,
        r.retried, r.rps(), latency_json(r.latency));
    for (size_t f = 0; f < r.failures.size(); ++f)
        out += fmt::format("{}\"{}\": {}", f ? ", " : "", kFailureNames[f], r.failures[f]);
    out += "}, \"by_request\": [";
    for (size_t k = 0; k < r.per_request.size(); ++k)
        out += fmt::format(R"({}{{"request": {}, "ok": {}, "latency_ms": {}}})", k ? ", " : "",
                           json_string(r.per_request[k].request), r.per_request[k].ok,
                           latency_json(r.per_request[k].latency));
    out += "], \"wrong_samples\": [";
    for (size_t k = 0; k < r.wrong_samples.size(); ++k) out += (k ? ", " : "") + json_string(r.wrong_samples[k]);
    return out + "]}";
}

std::string to_text(const LoadOptions& o, const LoadResult& r) {
    std::string out = fmt::format(
        "loadgen: {}:{} {}, {} connections ({}), {:.2f} s\n"
        "  requests  {} sent, {} right answers, {} errors, {} unfinished at the end, {} retried\n"
        "  rate      {:.0f} requests/s\n"
        "  latency   {}\n"
        "  errors   ",
        o.host, o.port, o.protocol == Protocol::text ? "text" : "http", o.connections,
        o.conn_per_request ? "a connection per request" : "keep-alive", r.elapsed_s, r.sent, r.ok, r.errors(),
        r.unfinished, r.retried, r.rps(), latency_text(r.latency));
    for (size_t f = 0; f < r.failures.size(); ++f) out += fmt::format(" {} {}", kFailureNames[f], r.failures[f]);
    out += "\n";
    if (r.per_request.size() > 1)
        for (const PerRequest& p : r.per_request)
            out += fmt::format("  {:<9} {} right, {}\n", p.request.substr(0, 9), p.ok, latency_text(p.latency));
    for (const std::string& w : r.wrong_samples) out += fmt::format("  wrong answer: {}\n", w);
    return out;
}

}  // namespace lg
