// compare.hpp: what compare measures, and the reports it writes (report.cpp).
#pragma once

#include "herd_run.hpp"
#include "load.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lg {

struct Scenario {
    // load: every model, one load; c10k: and idle connections; cost: every
    // variant, CPU per connection; herd: the accept strategies; state, uring,
    // proxy: their own variants, each at several client counts.
    enum Kind { load, c10k, cost, herd, state, uring, proxy } kind = load;
    std::string name;
    std::string lesson;  // the question the scenario asks, printed above its table
    bool conn_per_request = false;
    std::vector<std::string> paths;  // HTTP paths (compare speaks HTTP, so nginx can be a row)
    std::vector<unsigned> weights;
    size_t focus = 0;  // the request whose latency the table shows (slow: PING)
    bool nginx = true;  // nginx can answer it (it has no SLEEP or WORK)
    std::vector<std::string> lines = {};  // the same requests in the text protocol (with --cmd)
};

struct Model {
    std::string name;   // as in build/bin (nginx for the reference row)
    std::string label;  // 01 .. 06, "03 poll" (a variant), or "nginx"
    bool has_workers = false;  // long-lived worker processes whose share of the work we can measure
    std::vector<std::string> args = {};  // more options (--accept poll, --thread-accept queue)
    std::string backend = {};            // proxy: the model started first, behind it (09, nginx's proxy_pass)
    std::vector<std::string> command = {};  // --cmd: a server of one's own, {port} where its port goes
};

/// What the server's process tree did during one run, sampled from /proc.
struct Usage {
    int processes = 0;   // peak
    long threads = 0;    // peak, summed over the processes
    uint64_t rss_kib = 0;  // peak of the summed resident sets
    double user_s = 0, sys_s = 0;  // CPU of the tree (reaped children included)
    int workers = 0;     // long-lived workers seen
    double busiest = 0;  // the busiest worker's share of the workers' CPU (0..1)
    std::vector<std::pair<double, double>> timeline;  // (seconds, CPU in cores) per sample interval
};

/// c10k: the idle connections a run held open beside its active clients.
struct Idle {
    int wanted = 0;     // opened
    int connected = 0;  // whose handshake completed (accepted, or queued in the backlog)
    int held = 0;       // accepted by the server: its processes hold them
};

struct Run {
    std::string scenario, model;
    std::string label;    // the model's label (a variant's, in the cost scenario)
    std::string skipped;  // why there is no measurement (nginx not installed, ...), or empty
    LoadOptions load;
    LoadResult result;
    Usage usage;
    Idle idle;            // c10k only
    std::string summary;  // what the server printed at stop
    // The CPU the server counted itself (getrusage, to the millisecond, its
    // reaped children included) in its stop summary; -1 where it prints
    // none (nginx): the sampler's figures (clock ticks, 10 ms) stand instead.
    double own_user_s = -1, own_sys_s = -1;
    double syscalls = -1;  // uring: the server's system calls in the run (raw_syscalls:sys_enter); -1: not measured
    std::string syscalls_note;  // why they were not measured
    int64_t counted = -1;  // state: the count GET read back after the run (-1: none)
    std::vector<double> rounds_rps;  // --rounds: every round's req/s, this run being the median one
};

struct Machine {
    std::string cpu, kernel, date;
    int cpus = 0;
};

struct Settings {
    double duration_s = 0;
    int connections = 0, workers = 0;
    bool quick = false;
    std::string pinned;      // --pin: "server on CPU 1, load on CPU 0"; empty: not pinned
    int c10k_idle = 0;       // idle connections of the c10k scenario
    std::string c10k_note;   // why fewer than asked (the descriptor limit), or empty
    uint64_t cost_connections = 0;  // connections per run of the cost scenario
    bool text = false;       // every run in the text protocol (--cmd): a lab's server need not speak HTTP
    int rounds = 1;          // --rounds: each row measured this many times, alternating; the median kept
};

struct Report {
    Machine machine;
    Settings settings;
    std::vector<Scenario> scenarios;
    std::vector<Model> models;
    std::vector<Run> runs;
    HerdOptions herd_options;
    std::vector<HerdRow> herd;  // empty when the herd scenario did not run
};

/// --rounds: of the runs of one row (scenario, variant, client count), one
/// per round, keep the median by req/s (its other columns with it: one real
/// run, not a mix), remembering every round's req/s for the spread.
void keep_medians(std::vector<Run>& runs);

std::string report_json(const Report& report);
std::string report_csv(const Report& report);
std::string report_markdown(const Report& report);

}  // namespace lg
