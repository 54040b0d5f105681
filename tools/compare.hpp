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
    std::string name;
    std::string lesson;  // the question the scenario asks, printed above its table
    bool conn_per_request = false;
    std::vector<std::string> paths;  // HTTP paths (compare speaks HTTP, so nginx can be a row)
    std::vector<unsigned> weights;
    size_t focus = 0;  // the request whose latency the table shows (slow: PING)
    bool nginx = true;  // nginx can answer it (it has no SLEEP or WORK)
};

struct Model {
    std::string name;   // as in build/bin (nginx for the reference row)
    std::string label;  // 01 .. 04, or "ref"
    bool has_workers = false;  // long-lived worker processes whose share of the work we can measure
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

struct Run {
    std::string scenario, model;
    std::string skipped;  // why there is no measurement (nginx not installed, ...), or empty
    LoadOptions load;
    LoadResult result;
    Usage usage;
    std::string summary;  // what the server printed at stop
};

struct Machine {
    std::string cpu, kernel, date;
    int cpus = 0;
};

struct Settings {
    double duration_s = 0;
    int connections = 0, workers = 0;
    bool quick = false;
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

std::string report_json(const Report& report);
std::string report_csv(const Report& report);
std::string report_markdown(const Report& report);

}  // namespace lg
