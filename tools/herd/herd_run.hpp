// herd_run.hpp: the accept-competition experiment (docs/thundering-herd.md),
// used by `herd` and by compare's herd scenario.
#pragma once

#include "accept/accept.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lg {

struct HerdOptions {
    std::string bin_dir;    // where prefork and prefork_event_loop are
    int workers = 8;
    int connections = 500;  // idle herd: sequential connections
    int clients = 8;        // load: concurrent clients, a connection per request
    double seconds = 3;     // load: how long (0: skip the load phase)
    uint64_t work = 10000000;  // load: the WORK that one request in ten asks for (about 10 ms)
};

/// One model and one of its --accept strategies, or (--cmd) a server of one's own.
struct HerdCase {
    std::string model;  // prefork (03) or prefork_event_loop (06); empty for a command
    sl::Accept strategy = sl::Accept::blocking;
    std::vector<std::string> command = {};  // --cmd: its words, {port} where the port goes; its workers are
                                            // its children, and it need not speak STATS or WORK
};

struct HerdRow {
    HerdCase what;
    // The last three per accept. A command that does not answer STATS has no wakeups or spurious
    // counts, and its stop prints no table of accepts per worker: those are -1 (shown as "-").
    double accepts = 0, wakeups = 0, spurious = 0, switches = 0;
    // Per accept: times the kernel woke a worker (sched:sched_wakeup), or, where
    // perf is not permitted, the voluntary context switches again; `kernel_note`
    // then says why.
    double kernel_wakeups = 0;
    std::string kernel_note;
    std::string idle_note;  // the idle phase could not always wait for every worker to sleep (a busy machine)
    double spread_min = 0, spread_max = 0, spread_cv = 0;         // accepts per worker
    double conn_per_s = 0;
    double ping_mean_ms = 0, ping_p99_ms = 0, ping_max_ms = 0, ping_stdev_ms = 0;  // under load, among WORKs
    uint64_t errors = 0;
};

/// Both phases for one case. Throws std::runtime_error if the model cannot run.
HerdRow run_herd(const HerdOptions& options, const HerdCase& what);

/// 03 with each of its 8 strategies, then 06 with each of its 4.
std::vector<HerdCase> herd_cases();
/// --cmd: a case for a server of one's own (words separated by spaces).
HerdCase command_case(const std::string& text);
/// "03 poll", "06 accept-mutex", or the command: a case as the tables name it.
std::string herd_label(const HerdCase& c);
std::string herd_json(const HerdOptions& options, const std::vector<HerdRow>& rows);
std::string herd_table(const std::vector<HerdRow>& rows);  // Markdown

}  // namespace lg
