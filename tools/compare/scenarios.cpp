// scenarios.cpp: see scenarios.hpp.
#include "scenarios.hpp"

#include "accept/accept.hpp"
#include "process/threads.hpp"
#include "proc.hpp"

#include <algorithm>

namespace lg {

std::vector<Scenario> all_scenarios() {
    using K = Scenario::Kind;
    return {
        {K::load, "hello",
         "Keep-alive PING on every connection: the cost of one request, and how many connections a model "
         "serves at once (a process serves one connection at a time: the others wait and time out).",
         false, {"/ping"}, {}, 0, true, {"PING"}},
        {K::load, "connect", "A new connection for every PING: the cost of accepting, and of a fork per connection.",
         true, {"/ping"}, {}, 0, true, {"PING"}},
        {K::load, "slow",
         "9 PINGs for 1 SLEEP 100, a connection each: do short requests wait behind slow ones? "
         "(latency columns are the PINGs')",
         true, {"/ping", "/sleep?ms=100"}, {9, 1}, 0, false, {"PING", "SLEEP 100"}},
        {K::load, "cpu", "WORK 500000 (about half a millisecond of CPU each), a connection each: who uses every core?",
         true, {"/work?n=500000"}, {}, 0, false, {"WORK 500000"}},
        {K::c10k, "c10k",
         "Thousands of idle keep-alive connections, and 16 active clients asking PING meanwhile: how many idle "
         "connections does a model hold, at what memory, and do the active clients still get answers?",
         false, {"/ping"}, {}, 0, true, {"PING"}},
        {K::cost, "cost",
         "Server CPU per connection (user + sys), a connection per PING: every model, every accept strategy "
         "and thread mode (UNP's Figure 30.1, measured here).",
         true, {"/ping"}, {}, 0, true, {"PING"}},
        {K::herd, "herd", "The accept strategies of 03 and 06: the herd, the spread, and a slowed worker.", false,
         {}, {}, 0, false},
    };
}

bool lab_protocol(const Scenario& s) {
    return std::all_of(s.lines.begin(), s.lines.end(),
                       [](const std::string& l) { return l.rfind("PING", 0) == 0 || l.rfind("SLEEP", 0) == 0; });
}

Model command_model(const std::string& text) {
    Model m{text, text, true};
    m.command = command_words(text);
    return m;
}

std::vector<std::string> scenario_names() {
    std::vector<std::string> names;
    for (const Scenario& s : all_scenarios()) names.push_back(s.name);
    return names;
}

std::vector<Model> all_models() {
    return {{"single_process", "01", false},        {"fork_per_conn", "02", false},
            {"prefork", "03", true},                {"prefork_threads", "04", true},
            {"event_loop", "05", false},            {"prefork_event_loop", "06", true},
            {"nginx", "nginx", true}};
}

std::vector<Model> cost_variants() {
    std::vector<Model> out = {{"single_process", "01", false}, {"fork_per_conn", "02", false}};
    for (sl::Accept a : sl::prefork_strategies()) {
        std::string name(sl::accept_name(a));
        out.push_back({"prefork", "03 " + name, true, {"--accept", name}});
    }
    for (const auto& [mode, _] : sl::thread_accept_modes())
        out.push_back({"prefork_threads", "04 " + std::string(mode), true, {"--thread-accept", std::string(mode)}});
    out.push_back({"event_loop", "05", false});
    for (sl::Accept a : sl::event_strategies()) {
        std::string name(sl::accept_name(a));
        out.push_back({"prefork_event_loop", "06 " + name, true, {"--accept", name}});
    }
    out.push_back({"nginx", "nginx", true});
    return out;
}

const std::map<std::string, std::string>& model_aliases() {
    static const std::map<std::string, std::string> alias = [] {
        std::map<std::string, std::string> a;
        const char* dirs[] = {"01_single_process", "02_fork_per_conn", "03_prefork",
                              "04_prefork_threads", "05_event_loop",   "06_prefork_event_loop"};
        for (const char* d : dirs) {
            std::string dir = d;
            a[dir.substr(0, 2)] = dir.substr(3);
            a[dir] = dir.substr(3);
        }
        return a;
    }();
    return alias;
}

}  // namespace lg
