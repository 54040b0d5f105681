// compare: the models side by side under the same load (./lab compare).
//
// For each scenario and each model: start the server on a free port in a
// process group of its own, run the load engine against it while a sampler
// reads the group's processes from /proc every 100 ms (CPU, threads, RSS),
// stop the server, keep what it printed. Then one table per scenario in
// results/<timestamp>/results.{md,csv,json}, and charts by tools/compare/plot.py.
#include "base/limits.hpp"
#include "compare.hpp"
#include "idle.hpp"
#include "kernel_wakeups.hpp"
#include "measure.hpp"
#include "proc.hpp"
#include "scenarios.hpp"

#include <CLI/CLI.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

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

std::vector<std::string> expand_models(std::vector<std::string> names) {
    for (std::string& n : names)
        if (auto it = lg::model_aliases().find(n); it != lg::model_aliases().end()) n = it->second;
    return names;
}

// --pin: the server on the upper half of the CPUs, the load on the lower half.
void split_cpus(std::vector<int>& server, std::vector<int>& load) {
    int n = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
    for (int c = 0; c < n; ++c) (c < n / 2 ? load : server).push_back(c);
}

std::string cpu_list(const std::vector<int>& cpus) {
    std::string out;
    for (int c : cpus) out += (out.empty() ? "" : ",") + std::to_string(c);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> model_names = {"01", "02", "03", "04", "05", "06", "07", "08", "nginx"};
    std::vector<std::string> commands;
    std::vector<std::string> scenario_names = lg::scenario_names();
    double duration = 5;
    int rounds = 1;
    int connections = 16;
    int idle = 10000;
    bool quick = false, no_plot = false, pin = false;
    std::string out_dir = "results";
    lg::Setup setup;
    setup.bin_dir = lg::self_dir();
    setup.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

    CLI::App app{"Runs the serverlab models side by side under the same load; writes tables, JSON, CSV and charts.",
                 "compare"};
    std::vector<std::string> valid_models;
    for (const lg::Model& m : lg::all_models()) valid_models.push_back(m.name);
    for (const auto& [alias, name] : lg::model_aliases()) valid_models.push_back(alias);
    auto* models_opt = app.add_option("--models", model_names,
                                      "which models, in order (01..06 or names; nginx for the reference row)")
                           ->delimiter(',')->capture_default_str()->check(CLI::IsMember(valid_models));
    app.add_option("--cmd", commands,
                   "a server of your own, measured beside the models (with --models) or instead of them: its command, "
                   "words separated by spaces, {port} where the port goes; repeatable. Every run then speaks the "
                   "text protocol, and your server skips the scenarios that need WORK");
    app.add_option("--scenarios", scenario_names, "which scenarios, in order")
        ->delimiter(',')->capture_default_str()->check(CLI::IsMember(lg::scenario_names()));
    auto* dur = app.add_option("--duration", duration, "seconds of load per model and scenario")->capture_default_str()
                    ->check(CLI::Range(0.2, 3600.0));
    app.add_option("--connections", connections, "client connections")->capture_default_str()->check(CLI::Range(1, 10000));
    auto* idle_opt = app.add_option("--idle", idle, "c10k: idle connections (2000 with --quick)")->capture_default_str()
                         ->check(CLI::Range(1, 100000));
    app.add_option("--workers", setup.workers, "workers of 03, 04, 06 and nginx, and loops of 07 (default: the number of CPUs)")
        ->capture_default_str()->check(CLI::Range(1, 256));
    app.add_option("--rounds", rounds,
                   "measure every row this many times, each round going through all the rows in turn, and keep "
                   "the median: on a shared, noisy machine, 3 (herd runs once)")
        ->capture_default_str()->check(CLI::Range(1, 9));
    app.add_flag("--pin", pin, "run the server and the load on disjoint CPUs (the upper half, the lower half)");
    app.add_flag("--quick", quick, "1 s per run, fewer idle connections, a smaller herd: about two minutes in all");
    app.add_option("--out", out_dir, "where results/<timestamp>/ goes")->capture_default_str();
    app.add_flag("--no-plot", no_plot, "do not draw the charts");
    CLI11_PARSE(app, argc, argv);
    if (quick && dur->count() == 0) duration = 1;
    if (quick && idle_opt->count() == 0) idle = 2000;
    if (!commands.empty() && models_opt->count() == 0) model_names.clear();  // --cmd alone: only yours
    std::signal(SIGPIPE, SIG_IGN);

    lg::Report report;
    report.machine = this_machine();
    report.settings.duration_s = duration;
    report.settings.connections = connections;
    report.settings.workers = setup.workers;
    report.settings.quick = quick;
    report.settings.text = !commands.empty();
    report.settings.rounds = rounds;
    setup.nginx = find_nginx();
    if (pin) {
        std::vector<int> load_cpus;
        split_cpus(setup.server_cpus, load_cpus);
        if (!lg::pin_to(load_cpus)) {
            fmt::print(stderr, "compare: --pin: sched_setaffinity: {}\n", std::strerror(errno));
            return 1;
        }
        report.settings.pinned = fmt::format("server on CPU {}, load on CPU {}", cpu_list(setup.server_cpus),
                                             cpu_list(load_cpus));
    }
    // c10k: a descriptor per idle connection, here and in the server (which
    // inherits the limit): raise the soft limit to the hard one, and say so
    // if even that is not enough.
    int limit = sl::raise_descriptor_limit();
    if (idle + 200 > limit) {
        report.settings.c10k_note = fmt::format("{} idle connections asked, {} opened: RLIMIT_NOFILE's hard limit is {}",
                                                idle, limit - 200, limit);
        idle = limit - 200;
    }
    report.settings.c10k_idle = idle;
    report.settings.cost_connections = quick ? 2000 : 10000;
    for (const std::string& n : scenario_names)
        for (const lg::Scenario& s : lg::all_scenarios())
            if (s.name == n) report.scenarios.push_back(s);
    model_names = expand_models(model_names);
    for (const std::string& n : model_names)
        for (const lg::Model& m : lg::all_models())
            if (m.name == n) report.models.push_back(m);
    for (const std::string& c : commands) report.models.push_back(lg::command_model(c));
    report.herd_options.bin_dir = setup.bin_dir;
    report.herd_options.workers = 4;
    report.herd_options.connections = quick ? 100 : 300;
    report.herd_options.seconds = quick ? 0.5 : 2;
    std::vector<lg::HerdCase> herd_cases;
    for (const lg::HerdCase& c : lg::herd_cases()) {
        bool wanted = std::find(model_names.begin(), model_names.end(), c.model) != model_names.end();
        bool in_quick = c.strategy == sl::Accept::blocking || c.strategy == sl::Accept::poll ||
                        c.strategy == sl::Accept::reuseport ||
                        (c.model == "prefork_event_loop" && c.strategy == sl::Accept::epoll_exclusive);
        if (wanted && (!quick || in_quick)) herd_cases.push_back(c);
    }
    std::vector<lg::Model> variants;
    for (const lg::Model& v : lg::cost_variants())
        if (std::find(model_names.begin(), model_names.end(), v.name) != model_names.end()) variants.push_back(v);
    for (const std::string& c : commands) variants.push_back(lg::command_model(c));

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

    // The rows of each scenario: a model (or a variant) at a client count.
    auto rows_of = [&](const lg::Scenario& sc) {
        std::vector<lg::Row> rows = lg::scenario_rows(sc, setup.workers, connections, quick);
        if (!rows.empty()) return rows;
        for (const lg::Model& m : sc.kind == lg::Scenario::cost ? variants : report.models)
            rows.push_back({m, connections, sc.conn_per_request});
        return rows;
    };
    const std::string uring_why_not = lg::uring_unavailable(setup);  // 08 where io_uring cannot run: skipped, saying why
    int steps = 0;
    for (const lg::Scenario& s : report.scenarios)
        steps += static_cast<int>(s.kind == lg::Scenario::herd ? herd_cases.size() : rows_of(s).size() * rounds);
    Progress progress(steps, ::isatty(STDERR_FILENO));
    int step = 0;
    int failures = 0;
    for (const lg::Scenario& sc : report.scenarios) {
        if (sc.kind == lg::Scenario::herd) {
            for (const lg::HerdCase& c : herd_cases) {
                progress.at(step++, 0, "herd · " + lg::herd_label(c));
                try {
                    report.herd.push_back(lg::run_herd(report.herd_options, c));
                } catch (const std::exception& e) {
                    fmt::print(stderr, "\ncompare: herd {}: {}\n", lg::herd_label(c), e.what());
                    ++failures;
                }
            }
            continue;
        }
        // Round after round through all the rows: a burst of noise on the
        // machine then lands on one round of several rows, not on every
        // round of one row, and the median leaves it out.
        for (int round = 0; round < rounds; ++round) {
            for (const lg::Row& row : rows_of(sc)) {
                const lg::Model& m = row.model;
                lg::Run run;
                run.scenario = sc.name;
                run.model = m.name;
                run.label = m.label;
                if (m.name == "nginx" && setup.nginx.empty()) run.skipped = "not installed (./lab setup --bench)";
                else if (m.name == "nginx" && !sc.nginx) run.skipped = "no such endpoint in nginx";
                else if (m.name == "nginx" && report.settings.text) run.skipped = "speaks HTTP, and --cmd asks for text";
                else if (!m.command.empty() && !lg::lab_protocol(sc)) run.skipped = "needs WORK, which no lab asks for";
                else if (m.name == "uring" && !uring_why_not.empty()) run.skipped = "io_uring is not available: " + uring_why_not;
                if (!run.skipped.empty()) {
                    report.runs.push_back(run);
                    ++step;
                    continue;
                }
                std::string what = fmt::format("{} · {}{}", sc.name, m.label,
                                               rounds > 1 ? fmt::format(" · round {}", round + 1) : "");
                progress.at(step, 0, what);
                try {
                    run.load.protocol = report.settings.text ? lg::Protocol::text : lg::Protocol::http;
                    run.load.requests = report.settings.text ? sc.lines : sc.paths;
                    run.load.weights = sc.weights;
                    run.load.connections = row.connections;
                    run.load.conn_per_request = row.conn_per_request;
                    run.load.rate = row.rate;
                    run.load.duration_s = duration;
                    // Shorter than the run, so a connection that is never served shows as a timeout.
                    run.load.timeout_s = std::clamp(duration / 2, 0.5, 2.0);
                    if (sc.kind == lg::Scenario::cost) {
                        run.load.duration_s = 0;  // a fixed count: CPU per connection
                        run.load.total_requests = report.settings.cost_connections;
                        run.load.connections = 8;
                        run.load.timeout_s = 5;
                    }
                    lg::measure(setup, m, run, [&](const lg::LoadOptions& load, pid_t server) {
                        auto bar = [&](double part) { progress.at(step, part, what); };
                        if (sc.kind == lg::Scenario::uring) {  // and the server's system calls meanwhile
                            auto counter = lg::TaskSyscalls::open(server, run.syscalls_note);
                            lg::LoadResult r = lg::run_load(load, bar);
                            if (counter) run.syscalls = static_cast<double>(counter->count());
                            return r;
                        }
                        if (sc.kind == lg::Scenario::state) {  // and what the server counted
                            lg::LoadResult r = lg::run_load(load, bar);
                            std::string value = lg::ask(load.port, "GET hits\n");
                            if (value.rfind("VALUE ", 0) == 0) run.counted = std::stoll(value.substr(6));
                            return r;
                        }
                        if (sc.kind != lg::Scenario::c10k) return lg::run_load(load, bar);
                        // The idle connections first, held open while the active clients ask.
                        lg::IdleConnections held(load.port, idle, 3.0);
                        int connected = held.connected();
                        run.idle = {idle, connected, lg::held_connections_settled(server, load.port, connected)};
                        return lg::run_load(load, bar);
                    });
                } catch (const std::exception& e) {
                    run.skipped = fmt::format("failed: {}", e.what());
                    ++failures;
                }
                report.runs.push_back(run);
                ++step;
            }
        }
    }
    progress.done();
    fs::remove_all(setup.scratch, ec);
    if (rounds > 1) lg::keep_medians(report.runs);

    std::ofstream(dir / "results.json") << lg::report_json(report);
    std::ofstream(dir / "results.csv") << lg::report_csv(report);
    std::string md = lg::report_markdown(report);
    std::ofstream(dir / "results.md") << md;
    fmt::print("{}", md.substr(0, md.find("## What each server printed")));
    fmt::print("compare: results in {}/ (results.md, results.csv, results.json)\n", dir.string());
    std::fflush(stdout);  // before the plotter's own output, not after it

    // The charts draw the measured runs; a herd-only run has none (its table is the result).
    const bool measured = std::any_of(report.runs.begin(), report.runs.end(),
                                      [](const lg::Run& r) { return r.skipped.empty(); });
    if (!no_plot && measured) {
        std::string plot = std::string(SERVERLAB_SOURCE_DIR) + "/tools/compare/plot.py";
        if (std::system("/usr/bin/python3 -c 'import matplotlib' 2>/dev/null") == 0) {
            std::string cmd = fmt::format("/usr/bin/python3 '{}' '{}'", plot, dir.string());
            if (std::system(cmd.c_str()) != 0) fmt::print(stderr, "compare: the charts failed: {}\n", cmd);
        } else {
            fmt::print(stderr, "compare: no charts: python3-matplotlib is missing (./lab setup installs it), then run\n"
                               "  /usr/bin/python3 tools/compare/plot.py {}\n", dir.string());
        }
    }
    return failures ? 1 : 0;
}
