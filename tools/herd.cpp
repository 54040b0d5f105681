// herd: the accept-competition experiment, rerunnable by anyone.
//
// For each accept strategy it starts `prefork --workers W --accept S`:
//   1. idle herd: C connections one after another, each while all W workers
//      are idle. Counts, per accepted connection, the wakeups, the spurious
//      wakeups (woken, found nothing) and the workers' voluntary context
//      switches (read from /proc: they also count wakeups that the kernel
//      sent back to sleep before user space saw them), and how evenly the
//      connections spread over workers (min, max, coefficient of variation).
//   2. load: K client threads connect, PING and close for D seconds:
//      connections per second and the p99 latency of one connection.
// Prints a table, or JSON with --json. See docs/thundering-herd.md.
#include "fd.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

// ---- a prefork server under test ------------------------------------------------------------

struct Server {
    pid_t pid = -1;
    int port = 0;
    sl::Fd stderr_pipe;
};

Server start_server(const std::string& exe, int workers, const std::string& strategy) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    std::vector<std::string> args = {exe, "--port", "0", "--workers", std::to_string(workers), "--accept", strategy};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    Server s;
    if (int rc = ::posix_spawn(&s.pid, exe.c_str(), &actions, nullptr, argv.data(), environ); rc != 0)
        throw std::runtime_error(fmt::format("cannot start {}: {}", exe, std::strerror(rc)));
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    sl::Fd stdout_pipe(out[0]);
    s.stderr_pipe.reset(err[0]);

    std::string text;
    std::smatch m;
    static const std::regex listening(R"(listening on (\S+):(\d+))");
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!std::regex_search(text, m, listening)) {
        pollfd p{stdout_pipe.get(), POLLIN, 0};
        char buf[512];
        ssize_t n = ::poll(&p, 1, 100) > 0 ? ::read(stdout_pipe.get(), buf, sizeof buf) : -1;
        if (n == 0 || Clock::now() > deadline) throw std::runtime_error(exe + " printed no listening line");
        if (n > 0) text.append(buf, static_cast<size_t>(n));
    }
    s.port = std::stoi(m[2]);
    return s;
}

// SIGTERM, then everything it wrote to stderr (the per-worker table).
std::string stop_server(Server& s) {
    ::kill(s.pid, SIGTERM);
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(s.stderr_pipe.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    int status = 0;
    ::waitpid(s.pid, &status, 0);
    return text;
}

std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    while (dirent* e = d ? ::readdir(d) : nullptr) {
        if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
        std::ifstream f(fmt::format("/proc/{}/stat", e->d_name));
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        size_t close = text.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(text.substr(close + 2));
        std::string state;
        pid_t ppid = 0;
        rest >> state >> ppid;
        if (ppid == parent) out.push_back(std::stoi(e->d_name));
    }
    if (d) ::closedir(d);
    return out;
}

// Voluntary context switches: every time a process went to sleep.
uint64_t voluntary_switches(pid_t pid) {
    std::ifstream f(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stoull(line.substr(24));
    return 0;
}

// ---- a client ---------------------------------------------------------------------------------

// Connects, sends `request`, returns the answer line ("" on failure).
std::string ask(int port, const char* request) {
    sl::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return "";
    if (::send(fd.get(), request, std::strlen(request), MSG_NOSIGNAL) < 0) return "";
    std::string answer;
    char buf[512];
    while (answer.find('\n') == std::string::npos) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0) return "";
        answer.append(buf, static_cast<size_t>(n));
    }
    return answer.substr(0, answer.find('\n'));
}

std::map<std::string, double> stats(int port) {
    std::map<std::string, double> out;
    std::istringstream in(ask(port, "STATS\n"));
    std::string pair;
    while (in >> pair) {
        size_t eq = pair.find('=');
        if (eq != std::string::npos && std::isdigit(static_cast<unsigned char>(pair[eq + 1])))
            out[pair.substr(0, eq)] = std::stod(pair.substr(eq + 1));
    }
    return out;
}

// ---- the experiment ---------------------------------------------------------------------------

struct Row {
    std::string strategy;
    double accepts = 0, wakeups = 0, spurious = 0, switches = 0;
    double spread_min = 0, spread_max = 0, spread_cv = 0;
    double conn_per_s = 0, p99_ms = 0;
    uint64_t errors = 0;
};

// Per-worker accepts from the table the master prints at stop.
std::vector<double> accepts_per_worker(const std::string& table) {
    std::vector<double> out;
    static const std::regex row(R"(^\s*\d+\s+\d+\s+\w+\s+(\d+)\s)", std::regex::multiline);
    for (std::sregex_iterator it(table.begin(), table.end(), row), end; it != end; ++it)
        out.push_back(std::stod((*it)[1]));
    return out;
}

void idle_herd(const std::string& exe, int workers, int connections, Row& r) {
    Server s = start_server(exe, workers, r.strategy);
    std::vector<pid_t> pids;
    for (int i = 0; i < 50 && static_cast<int>(pids.size()) < workers; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        pids = children_of(s.pid);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let every worker reach its wait
    auto before = stats(s.port);
    uint64_t switches_before = 0, switches_after = 0;
    for (pid_t p : pids) switches_before += voluntary_switches(p);
    for (int i = 0; i < connections; ++i)
        if (ask(s.port, "PING\n") != "PONG") ++r.errors;
    for (pid_t p : pids) switches_after += voluntary_switches(p);
    auto after = stats(s.port);
    // Each STATS is a connection too: `after` counts its own (one accept, one wakeup).
    r.accepts = after["accepts"] - before["accepts"] - 1;
    r.wakeups = (after["wakeups"] - before["wakeups"] - 1) / r.accepts;
    r.spurious = (after["spurious"] - before["spurious"]) / r.accepts;
    r.switches = static_cast<double>(switches_after - switches_before) / r.accepts;
    std::vector<double> per = accepts_per_worker(stop_server(s));
    if (per.empty()) return;
    double mean = 0, var = 0;
    for (double a : per) mean += a / static_cast<double>(per.size());
    for (double a : per) var += (a - mean) * (a - mean) / static_cast<double>(per.size());
    r.spread_min = *std::min_element(per.begin(), per.end());
    r.spread_max = *std::max_element(per.begin(), per.end());
    r.spread_cv = mean > 0 ? std::sqrt(var) / mean : 0;
}

void under_load(const std::string& exe, int workers, int clients, double seconds, Row& r) {
    Server s = start_server(exe, workers, r.strategy);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
    std::atomic<uint64_t> errors{0};
    auto end = Clock::now() + std::chrono::duration<double>(seconds);
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            while (Clock::now() < end) {
                auto t0 = Clock::now();
                if (ask(s.port, "PING\n") != "PONG") ++errors;
                latencies[static_cast<size_t>(c)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            }
        });
    }
    for (auto& t : threads) t.join();
    stop_server(s);
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    r.conn_per_s = static_cast<double>(all.size()) / seconds;
    r.p99_ms = all.empty() ? 0 : all[std::min(all.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(all.size())))];
    r.errors += errors;
}

std::string self_dir() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    std::string path(buf, n > 0 ? static_cast<size_t>(n) : 0);
    return path.substr(0, path.rfind('/'));
}

}  // namespace

int main(int argc, char** argv) {
    int workers = 8, connections = 500, clients = 8;
    double seconds = 3;
    bool json = false;
    std::vector<std::string> strategies = {"blocking",   "poll",       "epoll",     "epoll-exclusive",
                                           "lock-fcntl", "lock-mutex", "reuseport", "pass-fd"};
    std::string exe = self_dir() + "/prefork";
    CLI::App app{"The thundering-herd experiment: prefork under every accept strategy.", "herd"};
    app.add_option("--workers", workers, "prefork workers, all idle during the herd phase")->capture_default_str()->check(CLI::Range(1, 256));
    app.add_option("--connections", connections, "sequential connections in the herd phase")->capture_default_str()->check(CLI::Range(1, 1000000));
    app.add_option("--clients", clients, "concurrent client threads in the load phase")->capture_default_str()->check(CLI::Range(1, 256));
    app.add_option("--duration", seconds, "seconds of the load phase")->capture_default_str()->check(CLI::Range(0.1, 600.0));
    app.add_option("--strategies", strategies, "which strategies, in order")->delimiter(',')->capture_default_str();
    app.add_option("--prefork", exe, "the prefork binary")->capture_default_str();
    app.add_flag("--json", json, "print JSON instead of a table");
    CLI11_PARSE(app, argc, argv);
    ::signal(SIGPIPE, SIG_IGN);

    std::vector<Row> rows;
    for (const std::string& name : strategies) {
        Row r;
        r.strategy = name;
        try {
            idle_herd(exe, workers, connections, r);
            under_load(exe, workers, clients, seconds, r);
        } catch (const std::exception& e) {
            fmt::print(stderr, "herd: {}: {}\n", name, e.what());
            return 1;
        }
        if (!json) fmt::print(stderr, "herd: {} done\n", name);
        rows.push_back(r);
    }

    if (json) {
        fmt::print("{{\"workers\": {}, \"connections\": {}, \"clients\": {}, \"duration_s\": {}, \"rows\": [\n", workers,
                   connections, clients, seconds);
        for (size_t i = 0; i < rows.size(); ++i) {
            const Row& r = rows[i];
            fmt::print("  {{\"strategy\": \"{}\", \"accepts\": {}, \"wakeups_per_accept\": {:.3f}, "
                       "\"spurious_per_accept\": {:.3f}, \"switches_per_accept\": {:.3f}, \"spread_min\": {}, "
                       "\"spread_max\": {}, \"spread_cv\": {:.3f}, \"conn_per_s\": {:.0f}, \"p99_ms\": {:.3f}, "
                       "\"errors\": {}}}{}\n",
                       r.strategy, r.accepts, r.wakeups, r.spurious, r.switches, r.spread_min, r.spread_max,
                       r.spread_cv, r.conn_per_s, r.p99_ms, r.errors, i + 1 < rows.size() ? "," : "");
        }
        fmt::print("]}}\n");
        return 0;
    }
    fmt::print("herd: {} idle workers, {} sequential connections; then {} clients for {} s\n\n", workers, connections,
               clients, seconds);
    fmt::print("| strategy | accepts | wakeups/accept | spurious/accept | ctx switches/accept | spread min-max | spread CV | conn/s under load | p99 ms | errors |\n");
    fmt::print("|---|---|---|---|---|---|---|---|---|---|\n");
    for (const Row& r : rows)
        fmt::print("| {} | {:.0f} | {:.2f} | {:.2f} | {:.2f} | {:.0f}-{:.0f} | {:.2f} | {:.0f} | {:.2f} | {} |\n", r.strategy,
                   r.accepts, r.wakeups, r.spurious, r.switches, r.spread_min, r.spread_max, r.spread_cv, r.conn_per_s,
                   r.p99_ms, r.errors);
    return 0;
}
