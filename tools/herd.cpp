// herd: the thundering-herd experiment, rerunnable by anyone.
//
// For each accept strategy it starts `prefork --workers W --accept S`, makes
// C connections one at a time while every worker is idle (wakeups, spurious
// wakeups and context switches per accept; how evenly they spread), then K
// clients connect-PING-close for D seconds. The measurement is herd_run.cpp;
// this file is its command line. Prints a table, or JSON with --json.
// See docs/thundering-herd.md.
#include "herd_run.hpp"
#include "proc.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <csignal>

int main(int argc, char** argv) {
    lg::HerdOptions o;
    o.prefork = lg::self_dir() + "/prefork";
    bool json = false;
    std::vector<std::string> strategies = lg::herd_strategies();
    CLI::App app{"The thundering-herd experiment: prefork under every accept strategy.", "herd"};
    app.add_option("--workers", o.workers, "prefork workers, all idle during the herd phase")->capture_default_str()->check(CLI::Range(1, 256));
    app.add_option("--connections", o.connections, "sequential connections in the herd phase")->capture_default_str()->check(CLI::Range(1, 1000000));
    app.add_option("--clients", o.clients, "concurrent clients in the load phase")->capture_default_str()->check(CLI::Range(1, 256));
    app.add_option("--duration", o.seconds, "seconds of the load phase (0: skip it)")->capture_default_str()->check(CLI::Range(0.0, 600.0));
    app.add_option("--strategies", strategies, "which strategies, in order")->delimiter(',')->capture_default_str()
        ->check(CLI::IsMember(lg::herd_strategies()));
    app.add_option("--prefork", o.prefork, "the prefork binary")->capture_default_str();
    app.add_flag("--json", json, "print JSON instead of a table");
    CLI11_PARSE(app, argc, argv);
    std::signal(SIGPIPE, SIG_IGN);

    std::vector<lg::HerdRow> rows;
    for (const std::string& name : strategies) {
        try {
            rows.push_back(lg::run_herd(o, name));
        } catch (const std::exception& e) {
            fmt::print(stderr, "herd: {}: {}\n", name, e.what());
            return 1;
        }
        if (!json) fmt::print(stderr, "herd: {} done\n", name);
    }
    if (json) {
        fmt::print("{}\n", lg::herd_json(o, rows));
        return 0;
    }
    fmt::print("herd: {} idle workers, {} sequential connections; then {} clients for {} s\n\n{}", o.workers,
               o.connections, o.clients, o.seconds, lg::herd_table(rows));
    return 0;
}
