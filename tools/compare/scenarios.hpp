// scenarios.hpp: what compare runs: its scenarios, models, and the variants
// of the cost table.
#pragma once

#include "compare.hpp"

#include <map>
#include <string>
#include <vector>

namespace lg {

std::vector<Scenario> all_scenarios();
std::vector<std::string> scenario_names();

/// 01 .. 06 and nginx, each with its default options.
std::vector<Model> all_models();

/// The cost table's rows: every model, every accept strategy of 03 and 06,
/// every thread mode of 04.
std::vector<Model> cost_variants();

/// 01, 01_single_process or single_process -> single_process (as ./lab run takes them).
const std::map<std::string, std::string>& model_aliases();

}  // namespace lg
