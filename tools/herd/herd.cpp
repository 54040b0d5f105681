// herd: the thundering-herd experiment, rerunnable by anyone.
//
// For each model (03, 06) and accept strategy it starts `MODEL --workers W
// --accept S`, makes C connections one at a time while every worker is idle
// (wakeups, spurious wakeups and context switches per accept; how evenly they
// spread), then K clients connect, ask and close for D seconds, nine PINGs for
// one WORK that slows the worker it lands on (connections per second, and
// the PINGs' latency). The measurement is herd_run.cpp; this file is its
// command line. Prints a table, or JSON with --json. See docs/thundering-herd.md.
#include "base/cli.hpp"
#include "herd_run.hpp"
#include "proc.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <csignal>

int main(int argc, char** argv) {
    lg::HerdOptions o;
    o.bin_dir = lg::self_dir();
    bool json = false;
    std::vector<std::string> models = {"03", "06"};
    std::vector<std::string> commands;
    // Every strategy of 03 or 06 (each model runs those it has).
    sl::Names<sl::Accept> names;
    std::vector<sl::Accept> strategies;
    for (const lg::HerdCase& c : lg::herd_cases()) {
        if (std::find(strategies.begin(), strategies.end(), c.strategy) != strategies.end()) continue;
        strategies.push_back(c.strategy);
        names.emplace_back(sl::accept_name(c.strategy), c.strategy);
    }
    CLI::App app{"The thundering-herd experiment: 03 and 06 under each of their accept strategies.", "herd"};
    app.add_option("--workers", o.workers, "workers, all idle during the herd phase")->capture_default_str()->check(CLI::Range(1, 256));
    app.add_option("--connections", o.connections, "sequential connections in the herd phase")->capture_default_str()->check(CLI::Range(1, 1000000));
    app.add_option("--clients", o.clients, "concurrent clients in the load phase")->capture_default_str()->check(CLI::Range(1, 256));
    app.add_option("--duration", o.seconds, "seconds of the load phase (0: skip it)")->capture_default_str()->check(CLI::Range(0.0, 600.0));
    app.add_option("--work", o.work, "the WORK of one request in ten in the load phase")->capture_default_str()
        ->check(CLI::Range(uint64_t{0}, uint64_t{1000000000}));
    auto* models_opt = app.add_option("--models", models, "03 (prefork), 06 (prefork_event_loop), or both")
                           ->delimiter(',')->capture_default_str()->check(CLI::IsMember({"03", "06"}));
    app.add_option("--cmd", commands,
                   "a server of your own, beside the models (with --models) or instead of them: its command, words "
                   "separated by spaces, {port} where the port goes; its children are its workers (repeatable)");
    sl::add_enum_option(app, "--strategies", strategies, names, "which strategies (each model runs those it has)");
    app.add_flag("--json", json, "print JSON instead of a table");
    CLI11_PARSE(app, argc, argv);
    std::signal(SIGPIPE, SIG_IGN);
    if (!commands.empty() && models_opt->count() == 0) models.clear();  // --cmd alone: only yours

    std::vector<lg::HerdCase> cases = lg::herd_cases();
    for (const std::string& c : commands) cases.push_back(lg::command_case(c));
    std::vector<lg::HerdRow> rows;
    for (const lg::HerdCase& c : cases) {
        std::string label = lg::herd_label(c);
        if (c.command.empty() && std::find(models.begin(), models.end(), label.substr(0, 2)) == models.end()) continue;
        if (c.command.empty() && std::find(strategies.begin(), strategies.end(), c.strategy) == strategies.end())
            continue;
        try {
            rows.push_back(lg::run_herd(o, c));
        } catch (const std::exception& e) {
            fmt::print(stderr, "herd: {}: {}\n", label, e.what());
            return 1;
        }
        if (!json) fmt::print(stderr, "herd: {} done\n", label);
    }
    if (json) {
        fmt::print("{}\n", lg::herd_json(o, rows));
        return 0;
    }
    // A command starts the workers it starts, and answers a SLEEP 10 where a model gets a WORK.
    bool any_model =
        std::any_of(rows.begin(), rows.end(), [](const lg::HerdRow& r) { return r.what.command.empty(); });
    std::string workers = any_model ? fmt::format("{} idle workers{}", o.workers,
                                                  commands.empty() ? "" : " (a command: its own)")
                                    : "the command's idle workers";
    std::string mix = any_model ? fmt::format("WORK {}{}", o.work, commands.empty() ? "" : "; a command: 1 SLEEP 10")
                                : "SLEEP 10";
    fmt::print("herd: {}, {} sequential connections; then {} clients for {} s (9 PING : 1 {})\n\n{}", workers,
               o.connections, o.clients, o.seconds, mix, lg::herd_table(rows));
    return 0;
}
