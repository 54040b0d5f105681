// herd_run.cpp: for one model (03 or 06) and accept strategy, start
// `MODEL --workers W --accept S`:
//   1. idle herd: C connections one after another, each while all W workers
//      are idle. Counts, per accepted connection, the wakeups, the spurious
//      wakeups (woken, found nothing) and the workers' voluntary context
//      switches (read from /proc: they also count wakeups that the kernel
//      sent back to sleep before user space saw them), and how evenly the
//      connections spread over workers (min, max, coefficient of variation).
//   2. load: K clients connect, send one request and close, for D seconds:
//      nine PINGs for one WORK of about 10 ms (Cloudflare's experiment, in
//      small): a worker busy on a WORK is slowed. Connections per second, and
//      the PINGs' latency: mean, p99, max and standard deviation. Where
//      workers share one queue, an idle worker takes the next PING; where
//      each has its own (reuseport), a PING may wait behind a WORK.
#include "herd_run.hpp"
#include "kernel_wakeups.hpp"

#include "accept/accept.hpp"
#include "json.hpp"
#include "load.hpp"
#include "proc.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <regex>
#include <thread>

namespace lg {
namespace {

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

// Per-worker accepts from the table the master prints at stop
// (slot, pid, gen, place, state, accepts, ...).
std::vector<double> accepts_per_worker(const std::string& table) {
    std::vector<double> out;
    static const std::regex row(R"(^\s*\d+\s+\d+\s+\d+\s+\d+\s+\w+\s+(\d+)\s)", std::regex::multiline);
    for (std::sregex_iterator it(table.begin(), table.end(), row), end; it != end; ++it)
        out.push_back(std::stod((*it)[1]));
    return out;
}

// Stopped (with its process group) however the scope is left: an exception
// out of a load or a STATS must not leave a server running.
RunningServer start(const HerdOptions& o, const HerdCase& what) {
    if (!what.command.empty()) return RunningServer(spawn_command(what.command));
    return RunningServer(spawn_server({o.bin_dir + "/" + what.model, "--port", "0", "--workers",
                                       std::to_string(o.workers), "--accept", std::string(sl::accept_name(what.strategy))},
                                      true));
}

// The workers: the model's --workers children, or as many as a command has once their number
// stops changing (200 ms alike, 3 s at most).
std::vector<pid_t> workers_of(const HerdOptions& o, const HerdCase& what, pid_t server) {
    std::vector<pid_t> pids;
    if (what.command.empty()) {
        for (int i = 0; i < 50 && static_cast<int>(pids.size()) < o.workers; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            pids = children_of(server);
        }
        return pids;
    }
    for (int same = 0, i = 0; same < 10 && i < 150; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        std::vector<pid_t> now = children_of(server);
        same = (!now.empty() && now.size() == pids.size()) ? same + 1 : 0;
        pids = now;
    }
    return pids;
}

void idle_herd(const HerdOptions& o, HerdRow& r) {
    RunningServer s = start(o, r.what);
    std::vector<pid_t> pids = workers_of(o, r.what, s.pid());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let every worker reach its wait
    std::string why_not;
    auto kernel = KernelWakeups::open(pids, why_not);
    auto before = stats(s.port());
    uint64_t kernel_before = kernel ? kernel->count() : 0;
    uint64_t switches_before = 0, switches_after = 0;
    for (pid_t p : pids) switches_before += voluntary_switches(p);
    int not_asleep = 0, answered = 0;
    for (int i = 0; i < o.connections; ++i) {
        // Each connection finds every worker asleep in its wait, as the
        // experiment says: on a loaded machine the losers of the last one
        // may not have gone back to sleep yet, and a worker still runnable
        // needs no wakeup (the herd would be undercounted).
        if (!wait_all_sleeping(pids, 50)) ++not_asleep;
        if (ask(s.port(), "PING\n") == "PONG") ++answered;
        else ++r.errors;
    }
    for (pid_t p : pids) switches_after += voluntary_switches(p);
    uint64_t kernel_after = kernel ? kernel->count() : 0;
    auto after = stats(s.port());
    if (after.count("accepts")) {
        // Each STATS is a connection too: `after` counts its own (one accept, one wakeup).
        r.accepts = after["accepts"] - before["accepts"] - 1;
        r.wakeups = (after["wakeups"] - before["wakeups"] - 1) / r.accepts;
        r.spurious = (after["spurious"] - before["spurious"]) / r.accepts;
    } else {  // no STATS (a command of one's own): the connections it answered, and no counts
        r.accepts = std::max(answered, 1);
        r.wakeups = r.spurious = -1;
    }
    r.switches = static_cast<double>(switches_after - switches_before) / r.accepts;
    // The STATS connections before and after are outside the two counts'
    // window only in part; over hundreds of accepts that is noise.
    r.kernel_wakeups = kernel ? static_cast<double>(kernel_after - kernel_before) / r.accepts : r.switches;
    if (!kernel) r.kernel_note = "kernel wakeups: " + why_not + "; the column shows voluntary context switches";
    if (not_asleep > 0)  // a busy machine: say so rather than print a smaller herd as if it were the truth
        r.idle_note = fmt::format("{} of {} connections began with a worker still awake: the herd may be undercounted",
                                  not_asleep, o.connections);
    std::vector<double> per = accepts_per_worker(s.stop());
    if (per.empty()) {  // its stop printed no table of accepts per worker
        r.spread_min = r.spread_max = r.spread_cv = -1;
        return;
    }
    double mean = 0, var = 0;
    for (double a : per) mean += a / static_cast<double>(per.size());
    for (double a : per) var += (a - mean) * (a - mean) / static_cast<double>(per.size());
    r.spread_min = *std::min_element(per.begin(), per.end());
    r.spread_max = *std::max_element(per.begin(), per.end());
    r.spread_cv = mean > 0 ? std::sqrt(var) / mean : 0;
}

void under_load(const HerdOptions& o, HerdRow& r) {
    RunningServer s = start(o, r.what);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    LoadOptions load;
    load.port = s.port();
    // A command need not speak WORK: a SLEEP 10 slows the worker it lands on as a WORK of about 10 ms does.
    load.requests = {"PING", r.what.command.empty() ? fmt::format("WORK {}", o.work) : std::string("SLEEP 10")};
    load.weights = {9, 1};
    load.connections = o.clients;
    load.conn_per_request = true;
    load.duration_s = o.seconds;
    LoadResult result = run_load(load);
    s.stop();
    const Histogram& ping = result.per_request[0].latency;
    auto ms = [](double us) { return us / 1000.0; };
    r.conn_per_s = result.rps();
    r.ping_mean_ms = ms(ping.mean());
    r.ping_p99_ms = ms(static_cast<double>(ping.percentile(0.99)));
    r.ping_max_ms = ms(static_cast<double>(ping.max()));
    r.ping_stdev_ms = ms(ping.stdev());
    r.errors += result.errors();
}

}  // namespace

HerdRow run_herd(const HerdOptions& o, const HerdCase& what) {
    HerdRow r;
    r.what = what;
    idle_herd(o, r);
    if (o.seconds > 0) under_load(o, r);
    return r;
}

std::vector<HerdCase> herd_cases() {
    std::vector<HerdCase> cases;
    for (sl::Accept a : sl::prefork_strategies()) cases.push_back({"prefork", a});
    for (sl::Accept a : sl::event_strategies()) cases.push_back({"prefork_event_loop", a});
    return cases;
}

HerdCase command_case(const std::string& text) {
    HerdCase c;
    c.command = command_words(text);
    return c;
}

std::string herd_label(const HerdCase& c) {
    if (!c.command.empty()) {
        std::string text;
        for (const std::string& w : c.command) text += (text.empty() ? "" : " ") + w;
        return text;
    }
    return fmt::format("{} {}", c.model == "prefork" ? "03" : "06", sl::accept_name(c.strategy));
}

namespace {

// A figure a command's server may not give (-1: no STATS, no table at stop).
std::string or_dash(double v, const char* format = "{:.2f}") {
    return v < 0 ? "-" : fmt::format(fmt::runtime(format), v);
}
std::string or_null(double v) { return v < 0 ? "null" : fmt::format("{:.3f}", v); }

}  // namespace

std::string herd_json(const HerdOptions& o, const std::vector<HerdRow>& rows) {
    std::string out = fmt::format(R"({{"workers": {}, "connections": {}, "clients": {}, "duration_s": {}, "work": {}, "rows": [)",
                                  o.workers, o.connections, o.clients, o.seconds, o.work);
    for (size_t i = 0; i < rows.size(); ++i) {
        const HerdRow& r = rows[i];
        std::string what = r.what.command.empty()
            ? fmt::format("\"model\": \"{}\", \"strategy\": \"{}\"", r.what.model, sl::accept_name(r.what.strategy))
            : fmt::format("\"command\": {}", json_string(herd_label(r.what)));
        out += fmt::format("{}\n  {{{}, \"accepts\": {}, \"wakeups_per_accept\": {}, "
                           "\"spurious_per_accept\": {}, \"switches_per_accept\": {:.3f}, \"kernel_wakeups_per_accept\": {}, "
                           "\"kernel_note\": {}, \"idle_note\": {}, \"spread_min\": {}, "
                           "\"spread_max\": {}, \"spread_cv\": {}, \"conn_per_s\": {:.0f}, \"ping_mean_ms\": {:.3f}, "
                           "\"ping_p99_ms\": {:.3f}, \"ping_max_ms\": {:.3f}, \"ping_stdev_ms\": {:.3f}, \"errors\": {}}}",
                           i ? "," : "", what, r.accepts, or_null(r.wakeups), or_null(r.spurious), r.switches,
                           r.kernel_note.empty() ? fmt::format("{:.3f}", r.kernel_wakeups) : "null",
                           r.kernel_note.empty() ? "null" : json_string(r.kernel_note),
                           r.idle_note.empty() ? "null" : json_string(r.idle_note), or_null(r.spread_min),
                           or_null(r.spread_max), or_null(r.spread_cv), r.conn_per_s, r.ping_mean_ms, r.ping_p99_ms,
                           r.ping_max_ms, r.ping_stdev_ms, r.errors);
    }
    return out + "\n]}";
}

std::string herd_table(const std::vector<HerdRow>& rows) {
    std::string out =
        "| model · --accept | accepts | wakeups/accept | spurious/accept | ctx switches/accept | kernel wakeups/accept | "
        "spread min-max | spread CV | conn/s under load | PING mean ms | PING p99 | PING max | PING stdev | errors |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    std::string note, idle_notes;
    for (const HerdRow& r : rows) {
        std::string spread = r.spread_min < 0 ? "-" : fmt::format("{:.0f}-{:.0f}", r.spread_min, r.spread_max);
        out += fmt::format("| {} | {:.0f} | {} | {} | {:.2f} | {:.2f}{} | {} | {} | {:.0f} | {:.2f} | "
                           "{:.2f} | {:.2f} | {:.2f} | {} |\n",
                           herd_label(r.what), r.accepts, or_dash(r.wakeups), or_dash(r.spurious), r.switches,
                           r.kernel_wakeups, r.kernel_note.empty() ? "" : "*", spread, or_dash(r.spread_cv),
                           r.conn_per_s, r.ping_mean_ms, r.ping_p99_ms, r.ping_max_ms, r.ping_stdev_ms, r.errors);
        if (!r.kernel_note.empty()) note = r.kernel_note;
        if (!r.idle_note.empty()) idle_notes += fmt::format("\n{}: {}", herd_label(r.what), r.idle_note);
    }
    if (!note.empty()) out += "\n* " + note + "\n";
    if (!idle_notes.empty()) out += idle_notes + "\n";
    return out;
}

}  // namespace lg
