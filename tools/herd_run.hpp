// herd_run.hpp: the accept-competition experiment (docs/thundering-herd.md),
// used by `herd` and by compare's herd scenario.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lg {

struct HerdOptions {
    std::string prefork;  // path of the prefork binary
    int workers = 8;
    int connections = 500;  // idle herd: sequential connections
    int clients = 8;        // load: concurrent clients, a connection per request
    double seconds = 3;     // load: how long (0: skip the load phase)
};

struct HerdRow {
    std::string strategy;
    double accepts = 0, wakeups = 0, spurious = 0, switches = 0;  // the last three per accept
    double spread_min = 0, spread_max = 0, spread_cv = 0;         // accepts per worker
    double conn_per_s = 0, p99_ms = 0;
    uint64_t errors = 0;
};

/// Both phases for one strategy. Throws std::runtime_error if prefork cannot run.
HerdRow run_herd(const HerdOptions& options, const std::string& strategy);

std::vector<std::string> herd_strategies();
std::string herd_json(const HerdOptions& options, const std::vector<HerdRow>& rows);
std::string herd_table(const std::vector<HerdRow>& rows);  // Markdown

}  // namespace lg
