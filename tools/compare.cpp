// compare: the models side by side under the same load (./lab compare).
//
// For each scenario and each model: start the server on a free port in a
// process group of its own, run the load engine against it while a sampler
// reads the group's processes from /proc every 100 ms (CPU, threads, RSS),
// stop the server, keep what it printed. Then one table per scenario in
// results/<timestamp>/results.{md,csv,json}, and charts by tools/plot.py.
#include "compare.hpp"
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

// ---- the server's process tree, sampled from /proc -------------------------------------------

class Sampler {
public:
    explicit Sampler(pid_t leader) : leader_(leader), thread_([this] { loop(); }) {}
    lg::Usage finish() {
        stop_ = true;
        thread_.join();
        return usage_;
    }

private:
    struct Tree {
        double user = 0, sys = 0;
        std::map<pid_t, double> worker_cpu;
    };

    // CPU of the tree: every live process, plus the children the leader has
    // reaped (its cutime/cstime), so 02's short-lived children are not lost.
    Tree sample() {
        Tree t;
        auto members = lg::group_members(leader_);
        long threads = 0;
        uint64_t rss = 0;
        for (const lg::ProcStat& p : members) {
            t.user += p.utime;
            t.sys += p.stime;
            if (p.pid == leader_) t.user += p.cutime, t.sys += p.cstime;
            else t.worker_cpu[p.pid] = p.utime + p.stime;
            threads += p.threads;
            rss += p.rss_kib;
        }
        usage_.processes = std::max(usage_.processes, static_cast<int>(members.size()));
        usage_.threads = std::max(usage_.threads, threads);
        usage_.rss_kib = std::max(usage_.rss_kib, rss);
        return t;
    }

    void loop() {
        auto start = Clock::now();
        Tree first = sample(), last = first;
        while (!stop_) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            Tree now = sample();
            double t = std::chrono::duration<double>(Clock::now() - start).count();
            double prev_t = usage_.timeline.empty() ? 0 : usage_.timeline.back().first;
            if (t > prev_t) usage_.timeline.push_back({t, (now.user + now.sys - last.user - last.sys) / (t - prev_t)});
            last = now;
        }
        usage_.user_s = last.user - first.user;
        usage_.sys_s = last.sys - first.sys;
        // A worker's share: CPU it used between the first and last sample (both must see it).
        double sum = 0, most = 0;
        for (auto& [pid, cpu] : last.worker_cpu) {
            auto was = first.worker_cpu.find(pid);
            if (was == first.worker_cpu.end()) continue;
            double used = cpu - was->second;
            sum += used, most = std::max(most, used), ++usage_.workers;
        }
        // Below 50 ms of CPU in all (slow: workers mostly asleep) a share means nothing.
        usage_.busiest = sum >= 0.05 ? most / sum : 0;
    }

    pid_t leader_;
    std::atomic<bool> stop_{false};
    lg::Usage usage_;
    std::thread thread_;
};

// ---- servers --------------------------------------------------------------------------------

struct Setup {
    std::string bin_dir;
    int workers = 2;
    std::string nginx;     // path, or empty when not installed
    fs::path scratch;      // for nginx's configuration and files
};

// The models print their listening line before they fork their workers:
// wait for them, so the sampler's first look sees every worker.
lg::Spawned wait_for_workers(lg::Spawned s, const lg::Model& m, int workers) {
    for (int i = 0; m.has_workers && i < 250; ++i) {
        if (static_cast<int>(lg::group_members(s.pid).size()) >= workers + 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return s;
}

lg::Spawned start_model(const Setup& setup, const lg::Model& m) {
    if (m.name != "nginx") {
        std::vector<std::string> argv = {setup.bin_dir + "/" + m.name, "--port", "0"};
        if (m.has_workers) argv.insert(argv.end(), {"--workers", std::to_string(setup.workers)});
        return wait_for_workers(lg::spawn_server(argv, true), m, setup.workers);
    }
    // nginx as the reference row: the same answer to /ping, its worker count ours.
    int port = lg::free_port();
    fs::path dir = setup.scratch;
    std::ofstream(dir / "nginx.conf") << fmt::format(
        "daemon off;\nworker_processes {0};\npid {1}/nginx.pid;\nerror_log {1}/error.log;\n"
        "events {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n"
        "  client_body_temp_path {1}/body; proxy_temp_path {1}/proxy; fastcgi_temp_path {1}/fastcgi;\n"
        "  scgi_temp_path {1}/scgi; uwsgi_temp_path {1}/uwsgi;\n"
        "  server {{ listen 127.0.0.1:{2}; location / {{ default_type text/plain; return 200 \"PONG\\n\"; }} }}\n}}\n",
        setup.workers, dir.string(), port);
    return wait_for_workers(lg::spawn_server({setup.nginx, "-c", (dir / "nginx.conf").string(), "-p", dir.string()}, false, port),
                            m, setup.workers);
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
    Setup setup;
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
                lg::Spawned server = start_model(setup, m);
                run.load.port = server.port;
                run.load.protocol = lg::Protocol::http;
                run.load.requests = sc.paths;
                run.load.weights = sc.weights;
                run.load.connections = connections;
                run.load.conn_per_request = sc.conn_per_request;
                run.load.duration_s = duration;
                // Shorter than the run, so a connection that is never served shows as a timeout.
                run.load.timeout_s = std::clamp(duration / 2, 0.5, 2.0);
                Sampler sampler(server.pid);
                run.result = lg::run_load(run.load, [&](double part) { progress.at(step, part, what); });
                run.usage = sampler.finish();
                run.summary = lg::stop_server(server);
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
