// measure.cpp: see measure.hpp.
#include "measure.hpp"

#include "proc.hpp"

#include <sched.h>

#include <fmt/format.h>

#include <atomic>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <thread>

namespace lg {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---- the server's process tree, sampled from /proc -------------------------------------------

// Reads the group every 100 ms on a thread of its own, from construction
// until finish() or destruction (which also stops and joins it).
class Sampler {
public:
    explicit Sampler(pid_t leader) : leader_(leader), thread_([this] { loop(); }) {}
    ~Sampler() { stop(); }
    Usage finish() {
        stop();
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
        auto members = group_members(leader_);
        long threads = 0;
        uint64_t rss = 0;
        for (const sl::ProcStat& p : members) {
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

    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }

    pid_t leader_;
    std::atomic<bool> stop_{false};
    Usage usage_;
    std::thread thread_;
};

// ---- servers --------------------------------------------------------------------------------


// The models print their listening line before they fork their workers:
// wait for them, so the sampler's first look sees every worker.
Spawned wait_for_workers(Spawned s, const Model& m, int workers) {
    for (int i = 0; m.has_workers && i < 250; ++i) {
        if (static_cast<int>(group_members(s.pid).size()) >= workers + 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return s;
}

// nginx's configuration: the same answer to /ping as the models; or, with
// `backend_port`, proxy_pass to that port over kept-alive connections (the
// upstream's keepalive, HTTP/1.1, and no Connection: close passed on).
std::string nginx_conf(const Setup& setup, int port, int backend_port) {
    std::string location =
        backend_port == 0
            ? "default_type text/plain; return 200 \"PONG\\n\";"
            : "proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";";
    std::string upstream =
        backend_port == 0 ? "" : fmt::format("  upstream backend {{ server 127.0.0.1:{}; keepalive 32; }}\n", backend_port);
    return fmt::format(
        "daemon off;\nworker_processes {0};\npid {1}/nginx.pid;\nerror_log {1}/error.log;\n"
        "worker_rlimit_nofile 20000;\nevents {{ worker_connections 20000; }}\nhttp {{\n  access_log off;\n"
        "  client_body_temp_path {1}/body; proxy_temp_path {1}/proxy; fastcgi_temp_path {1}/fastcgi;\n"
        "  scgi_temp_path {1}/scgi; uwsgi_temp_path {1}/uwsgi;\n{3}"
        "  server {{ listen 127.0.0.1:{2}; location / {{ {4} }} }}\n}}\n",
        setup.workers, setup.scratch, port, upstream, location);
}

Spawned start_model(const Setup& setup, const Model& m, int backend_port = 0) {
    if (!m.command.empty()) {
        Spawned s = spawn_command(m.command);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // its workers, if any, start meanwhile
        return s;
    }
    if (m.name != "nginx") {
        std::vector<std::string> argv = {setup.bin_dir + "/" + m.name, "--port", "0"};
        if (m.has_workers) argv.insert(argv.end(), {"--workers", std::to_string(setup.workers)});
        // 07's loops are threads: as many as the others' workers, unless the row says.
        if (m.name == "event_loop_threads" && std::find(m.args.begin(), m.args.end(), "--threads") == m.args.end())
            argv.insert(argv.end(), {"--threads", std::to_string(setup.workers)});
        if (backend_port != 0) argv.insert(argv.end(), {"--backend", fmt::format("127.0.0.1:{}", backend_port)});
        argv.insert(argv.end(), m.args.begin(), m.args.end());
        return wait_for_workers(spawn_server(argv, true), m, setup.workers);
    }
    // nginx as the reference row: the same answer to /ping, its worker count ours.
    int port = free_port();
    fs::path dir = setup.scratch;
    std::ofstream(dir / "nginx.conf") << nginx_conf(setup, port, backend_port);
    return wait_for_workers(spawn_server({setup.nginx, "-c", (dir / "nginx.conf").string(), "-p", dir.string()}, false, port),
                            m, setup.workers);
}


}  // namespace

bool pin_to(const std::vector<int>& cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : cpus) CPU_SET(c, &set);
    return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

namespace {

// Starts the server with its CPUs (--pin): this thread takes them for the
// spawn, which the server inherits, and goes back to its own.
Spawned start_pinned(const Setup& setup, const Model& model, int backend_port = 0) {
    if (setup.server_cpus.empty()) return start_model(setup, model, backend_port);
    cpu_set_t mine;
    ::sched_getaffinity(0, sizeof mine, &mine);
    pin_to(setup.server_cpus);
    try {
        Spawned s = start_model(setup, model, backend_port);
        ::sched_setaffinity(0, sizeof mine, &mine);
        return s;
    } catch (...) {
        ::sched_setaffinity(0, sizeof mine, &mine);
        throw;
    }
}

}  // namespace

std::string uring_unavailable(const Setup& setup) {
    try {
        Spawned s = spawn_server({setup.bin_dir + "/uring", "--port", "0"}, true);
        stop_server(s, 1);
        return {};
    } catch (const std::exception& e) {
        std::string why = e.what();
        size_t at = why.find("io_uring is not available here: ");
        return at == std::string::npos ? why : why.substr(at + 33, why.find('\n', at) - at - 33);
    }
}

void measure(const Setup& setup, const Model& model, Run& run, const LoadFn& load) {
    // A proxy's backend first, on the same CPUs; only the proxy is sampled.
    std::optional<RunningServer> backend;
    if (!model.backend.empty()) backend.emplace(start_pinned(setup, Model{model.backend, model.backend, false}));
    RunningServer server(start_pinned(setup, model, backend ? backend->port() : 0));
    run.load.port = server.port();
    Sampler sampler(server.pid());
    run.result = load(run.load, server.pid());
    run.usage = sampler.finish();
    run.summary = server.stop();
    static const std::regex cpu(R"(CPU user ([0-9.]+) s sys ([0-9.]+) s)");
    std::smatch m;
    if (std::regex_search(run.summary, m, cpu)) {
        run.own_user_s = std::stod(m[1]);
        run.own_sys_s = std::stod(m[2]);
    }
}

}  // namespace lg
