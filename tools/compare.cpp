// compare: the models side by side under the same load (./lab compare).
//
// For each scenario and each model: start the server on a free port in a
// process group of its own, run the load engine against it while a sampler
// reads the group's processes from /proc every 100 ms (CPU, threads, RSS),
// stop the server, keep what it printed. Then one table per scenario in
// results/<timestamp>/results.{md,csv,json}, and charts by tools/plot.py.
#include "compare.hpp"
#include "measure.hpp"
#include "proc.hpp"

#include <CLI/CLI.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::vector<lg::Scenario> all_scenarios() {
    return {
        {"hello", "Keep-alive PING on every connection: the cost of one request, and how many connections a model "
                  "serves at once (a process serves one connection at a time: the others wait and time out).",
         false, {"/ping"}, {}, 0, true},
        {"connect", "A new connection for every PING: the cost of accepting, and of a fork per connection.", true,
         {"/ping"}, {}, 0, true},
        {"slow", "9 PINGs for 1 SLEEP 100, a connection each: do short requests wait behind slow ones? "
                 "(latency columns are the PINGs')",
         true, {"/ping", "/sleep?ms=100"}, {9, 1}, 0, false},
        {"cpu", "WORK 500000 (about a millisecond of CPU each), a connection each: who uses every core?", true,
         {"/work?n=500000"}, {}, 0, false},
        {"herd", "The accept-strategy table of 03.", false, {}, {}, 0, false},
    };
}

std::vector<lg::Model> all_models() {
    return {{"single_process", "01", false},
            {"fork_per_conn", "02", false},
            {"prefork", "03", true},
            {"prefork_threads", "04", true},
            {"nginx", "nginx", true}};
}

std::string find_nginx() {
    for (const char* p : {"/usr/sbin/nginx", "/usr/bin/nginx"})
        if (::access(p, X_OK) == 0) return p;
    return {};
}

// ---- progress ---------------------------------------------------------------------------------

class Progress {
public:
    Progress(int steps, bool show) : steps_(steps), show_(show) {}
    void at(int step, double part, const std::string& what) {
        if (!show_) return;
        double done = (step + std::clamp(part, 0.0, 1.0)) / steps_;
        auto filled = static_cast<size_t>(done * 30);
        fmt::print(stderr, "\r[{}{}] {:3.0f}%  {:<40}", std::string(filled, '#'), std::string(30 - filled, '.'),
                   done * 100, what);
    }
    void done() {
        if (show_) fmt::print(stderr, "\r{:80}\r", "");
    }

private:
    int steps_;
    bool show_;
};

lg::Machine this_machine() {
    lg::Machine m;
    m.cpus = static_cast<int>(std::thread::hardware_concurrency());
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);)
        if (line.rfind("model name", 0) == 0) {
            m.cpu = line.substr(line.find(':') + 2);
            break;
        }
    utsname u{};
    ::uname(&u);
    m.kernel = u.release;
    m.date = fmt::format("{:%Y-%m-%d %H:%M}", fmt::localtime(std::time(nullptr)));
    return m;
}

// 01, 01_single_process or single_process -> single_process (as ./lab run accepts them).
const std::map<std::string, std::string>& model_aliases() {
    static const std::map<std::string, std::string> alias = {
        {"01", "single_process"},    {"02", "fork_per_conn"},    {"03", "prefork"},
        {"04", "prefork_threads"},   {"01_single_process", "single_process"},
        {"02_fork_per_conn", "fork_per_conn"}, {"03_prefork", "prefork"},
        {"04_prefork_threads", "prefork_threads"}};
    return alias;
}

std::vector<std::string> expand_models(std::vector<std::string> names) {
    for (std::string& n : names)
        if (auto it = model_aliases().find(n); it != model_aliases().end()) n = it->second;
    return names;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> model_names = {"01", "02", "03", "04", "nginx"};
    std::vector<std::string> scenario_names = {"hello", "connect", "slow", "cpu", "herd"};
    double duration = 5;
    int connections = 16;
    bool quick = false, no_plot = false;
    std::string out_dir = "results";
    lg::Setup setup;
    setup.bin_dir = lg::self_dir();
    setup.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

    CLI::App app{"Runs the serverlab models side by side under the same load; writes tables, JSON, CSV and charts.",
                 "compare"};
    std::vector<std::string> valid_models;
    for (const lg::Model& m : all_models()) valid_models.push_back(m.name);
    for (const auto& [alias, name] : model_aliases()) valid_models.push_back(alias);
    app.add_option("--models", model_names, "which models, in order (01..04 or names; nginx for the reference row)")
        ->delimiter(',')->capture_default_str()->check(CLI::IsMember(valid_models));
    app.add_option("--scenarios", scenario_names, "which scenarios, in order")
        ->delimiter(',')->capture_default_str()->check(CLI::IsMember({"hello", "connect", "slow", "cpu", "herd"}));
    auto* dur = app.add_option("--duration", duration, "seconds of load per model and scenario")->capture_default_str()
                    ->check(CLI::Range(0.2, 3600.0));
    app.add_option("--connections", connections, "client connections")->capture_default_str()->check(CLI::Range(1, 10000));
    app.add_option("--workers", setup.workers, "workers of 03, 04 and nginx (default: the number of CPUs)")
        ->capture_default_str()->check(CLI::Range(1, 256));
    app.add_flag("--quick", quick, "1 s per run and a small herd: about 20 s in all");
    app.add_option("--out", out_dir, "where results/<timestamp>/ goes")->capture_default_str();
    app.add_flag("--no-plot", no_plot, "do not draw the charts");
    CLI11_PARSE(app, argc, argv);
    if (quick && dur->count() == 0) duration = 1;
    std::signal(SIGPIPE, SIG_IGN);

    lg::Report report;
    report.machine = this_machine();
    report.settings = {duration, connections, setup.workers, quick};
    setup.nginx = find_nginx();
    for (const std::string& n : scenario_names)
        for (const lg::Scenario& s : all_scenarios())
            if (s.name == n) report.scenarios.push_back(s);
    model_names = expand_models(model_names);
    for (const std::string& n : model_names)
        for (const lg::Model& m : all_models())
            if (m.name == n) report.models.push_back(m);
    report.herd_options.prefork = setup.bin_dir + "/prefork";
    report.herd_options.workers = 8;
    report.herd_options.connections = quick ? 100 : 300;
    report.herd_options.seconds = quick ? 0.5 : 1;
    std::vector<std::string> strategies = quick ? std::vector<std::string>{"blocking", "poll", "epoll-exclusive"}
                                                : lg::herd_strategies();

    fs::path dir = fs::path(out_dir) / fmt::format("{:%Y%m%d-%H%M%S}", fmt::localtime(std::time(nullptr)));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        fmt::print(stderr, "compare: cannot create {}: {}\n", dir.string(), ec.message());
        return 1;
    }
    char scratch[] = "/tmp/serverlab-compare-XXXXXX";
    if (!::mkdtemp(scratch)) {
        fmt::print(stderr, "compare: mkdtemp: {}\n", std::strerror(errno));
        return 1;
    }
    setup.scratch = scratch;

    int steps = 0;
    for (const lg::Scenario& s : report.scenarios)
        steps += s.name == "herd" ? static_cast<int>(strategies.size()) : static_cast<int>(report.models.size());
    Progress progress(steps, ::isatty(STDERR_FILENO));
    int step = 0;
    int failures = 0;
    for (const lg::Scenario& sc : report.scenarios) {
        if (sc.name == "herd") {
            for (const std::string& strategy : strategies) {
                progress.at(step++, 0, "herd · " + strategy);
                try {
                    report.herd.push_back(lg::run_herd(report.herd_options, strategy));
                } catch (const std::exception& e) {
                    fmt::print(stderr, "\ncompare: herd {}: {}\n", strategy, e.what());
                    ++failures;
                }
            }
            continue;
        }
        for (const lg::Model& m : report.models) {
            lg::Run run;
            run.scenario = sc.name;
            run.model = m.name;
            if (m.name == "nginx" && setup.nginx.empty()) run.skipped = "not installed (./lab setup --bench)";
            else if (m.name == "nginx" && !sc.nginx) run.skipped = "no such endpoint in nginx";
            if (!run.skipped.empty()) {
                report.runs.push_back(run);
                ++step;
                continue;
            }
            std::string what = fmt::format("{} · {}", sc.name, m.name);
            progress.at(step, 0, what);
            try {
                run.load.protocol = lg::Protocol::http;
                run.load.requests = sc.paths;
                run.load.weights = sc.weights;
                run.load.connections = connections;
                run.load.conn_per_request = sc.conn_per_request;
                run.load.duration_s = duration;
                // Shorter than the run, so a connection that is never served shows as a timeout.
                run.load.timeout_s = std::clamp(duration / 2, 0.5, 2.0);
                lg::measure(setup, m, run, [&](const lg::LoadOptions& load) {
                    return lg::run_load(load, [&](double part) { progress.at(step, part, what); });
                });
            } catch (const std::exception& e) {
                run.skipped = fmt::format("failed: {}", e.what());
                ++failures;
            }
            report.runs.push_back(run);
            ++step;
        }
    }
    progress.done();
    fs::remove_all(setup.scratch, ec);

    std::ofstream(dir / "results.json") << lg::report_json(report);
    std::ofstream(dir / "results.csv") << lg::report_csv(report);
    std::string md = lg::report_markdown(report);
    std::ofstream(dir / "results.md") << md;
    fmt::print("{}", md.substr(0, md.find("## What each server printed")));
    fmt::print("compare: results in {}/ (results.md, results.csv, results.json)\n", dir.string());

    if (!no_plot) {
        std::string plot = std::string(SERVERLAB_SOURCE_DIR) + "/tools/plot.py";
        if (std::system("/usr/bin/python3 -c 'import matplotlib' 2>/dev/null") == 0) {
            std::string cmd = fmt::format("/usr/bin/python3 '{}' '{}'", plot, dir.string());
            if (std::system(cmd.c_str()) != 0) fmt::print(stderr, "compare: the charts failed: {}\n", cmd);
        } else {
            fmt::print(stderr, "compare: no charts: python3-matplotlib is missing (./lab setup installs it), then run\n"
                               "  /usr/bin/python3 tools/plot.py {}\n", dir.string());
        }
    }
    return failures ? 1 : 0;
}
