// loadgen: drives any serverlab model (or nginx, or a student's server) and
// checks every answer. The engine is load.cpp; this file is its command line.
//
//   loadgen --port 8080 --connections 50 --duration 5
//   loadgen --port 8080 --protocol http --path /ping --conn-per-request --requests 10000
//   loadgen --port 8080 --request PING --weight 9 --request 'SLEEP 100' --weight 1 --duration 5
//   loadgen --port 8080 --rate 2000 --duration 10      (latency from the intended send time)
#include "load.hpp"

#include "base/cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <csignal>
#include <map>
#include <unistd.h>

int main(int argc, char** argv) {
    lg::LoadOptions o;
    std::vector<std::string> requests, paths;
    bool json = false;
    CLI::App app{"Load generator for the serverlab protocol: requests/s, latency percentiles, errors by kind.",
                 "loadgen"};
    app.add_option("--host", o.host, "server address")->capture_default_str();
    app.add_option("--port", o.port, "server port")->required()->check(CLI::Range(1, 65535));
    sl::add_enum_option(app, "--protocol", o.protocol,
                        sl::Names<lg::Protocol>{{"text", lg::Protocol::text}, {"http", lg::Protocol::http}},
                        "framing: text or http");
    app.add_option("--request", requests, "a text request line, repeatable (default PING)");
    app.add_option("--path", paths, "an HTTP path, repeatable (default /ping)");
    app.add_option("--weight", o.weights, "one weight per --request/--path (default 1 each)");
    app.add_option("--connections,-c", o.connections, "concurrent connections")->capture_default_str()->check(CLI::Range(1, 100000));
    auto* duration = app.add_option("--duration,-d", o.duration_s, "seconds to run")->check(CLI::Range(0.01, 86400.0));
    auto* total = app.add_option("--requests,-n", o.total_requests, "total requests to send, then wait for every answer")
                      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
    duration->excludes(total);
    app.add_flag("--conn-per-request", o.conn_per_request, "connect, send one request, read the answer, close");
    app.add_option("--rate", o.rate, "requests per second over all connections (latency counts from the intended send time)")
        ->check(CLI::Range(0.001, 1e8));
    app.add_option("--timeout", o.timeout_s, "seconds to wait for a connection or an answer")->capture_default_str()->check(CLI::Range(0.001, 3600.0));
    app.add_option("--threads", o.threads, "load threads (default: CPUs, at most 4)")->check(CLI::Range(1, 256));
    app.add_flag("--json", json, "print one JSON object instead of text");
    CLI11_PARSE(app, argc, argv);

    if (!requests.empty() && !paths.empty()) {
        fmt::print(stderr, "loadgen: --request is for --protocol text, --path for http: give one kind\n");
        return 2;
    }
    if (o.protocol == lg::Protocol::text && !paths.empty()) {
        fmt::print(stderr, "loadgen: --path needs --protocol http\n");
        return 2;
    }
    if (o.protocol == lg::Protocol::http && !requests.empty()) {
        fmt::print(stderr, "loadgen: --request is a text line: use --path with --protocol http\n");
        return 2;
    }
    o.requests = o.protocol == lg::Protocol::text ? requests : paths;
    if (o.requests.empty()) o.requests = {o.protocol == lg::Protocol::text ? "PING" : "/ping"};
    if (o.duration_s <= 0 && o.total_requests == 0) o.duration_s = 5;
    std::signal(SIGPIPE, SIG_IGN);  // belt and braces: every send already passes MSG_NOSIGNAL

    bool bar = !json && ::isatty(STDERR_FILENO);
    lg::LoadResult r;
    try {
        r = lg::run_load(o, [&](double done) {
            if (bar) fmt::print(stderr, "\r[{:<30}] {:3.0f}%", std::string(static_cast<size_t>(std::clamp(done, 0.0, 1.0) * 30), '#'), done * 100);
        });
    } catch (const std::exception& e) {
        fmt::print(stderr, "loadgen: {}\n", e.what());
        return 2;
    }
    if (bar) fmt::print(stderr, "\r{:40}\r", "");
    fmt::print("{}\n", json ? lg::to_json(o, r) : lg::to_text(o, r));
    return r.ok == 0 ? 1 : 0;
}
