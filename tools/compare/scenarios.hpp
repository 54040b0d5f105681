// scenarios.hpp: what compare runs: its scenarios, models, and the variants
// of the cost table.
#pragma once

#include "compare.hpp"

#include <map>
#include <string>
#include <vector>

namespace lg {

std::vector<Scenario> all_scenarios();

/// A run of a scenario with rows of its own (state, uring, proxy): a variant at a client count.
struct Row {
    Model model;
    int connections = 0;
    bool conn_per_request = false;
    double rate = 0;  // requests/s offered over all connections; 0: each sends as soon as answered
};
/// Those rows; empty for the other scenarios. `workers`: 07's loops too.
std::vector<Row> scenario_rows(const Scenario& s, int workers, int connections, bool quick);
std::vector<std::string> scenario_names();

/// 01 .. 06 and nginx, each with its default options.
std::vector<Model> all_models();

/// The cost table's rows: every model, every accept strategy of 03 and 06,
/// every thread mode of 04.
std::vector<Model> cost_variants();

/// Whether a scenario asks only what every lab's server answers (PING, SLEEP), not WORK.
bool lab_protocol(const Scenario& s);

/// --cmd: a server of one's own, started from `text` (words separated by spaces, {port} where
/// the port goes), measured like a model. Its name and label are the command.
Model command_model(const std::string& text);

/// 01, 01_single_process or single_process -> single_process (as ./lab run takes them).
const std::map<std::string, std::string>& model_aliases();

}  // namespace lg
