// scenarios.cpp: see scenarios.hpp.
#include "scenarios.hpp"

#include "accept/accept.hpp"
#include "event/loop_threads.hpp"
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
        {K::state, "state",
         "Keep-alive clients all counting one name (INCR hits): where the count lives costs something. 06 keeps it "
         "in shared memory (atomic adds), 07 in a map under a mutex or in the one loop that owns the name (sharded); "
         "--state local keeps a table per worker, and its count comes out wrong. `counted` is what GET read back.",
         false, {"/incr?name=hits"}, {}, 0, false, {"INCR hits"}},
        {K::uring, "uring",
         "05's readiness loop against 08's completion ring, one thread each, keep-alive PING at 1 to 1000 "
         "connections and a connection per PING: requests/s, server CPU per request, system calls per request.",
         false, {"/ping"}, {}, 0, false, {"PING"}},
        {K::proxy, "proxy",
         "09 and nginx's proxy_pass (upstream keepalive on) in front of the same backend (05), keep-alive PING: "
         "what relaying costs. CPU is the proxy's alone.",
         false, {"/ping"}, {}, 0, true, {"PING"}},
    };
}

std::vector<Row> scenario_rows(const Scenario& s, int workers, int connections, bool quick) {
    const std::string threads = std::to_string(workers);
    std::vector<Row> rows;
    if (s.kind == Scenario::state) {
        std::vector<Model> variants = {
            {"prefork_event_loop", "06 shared memory", true, {"--state", "shared"}},
            {"event_loop_threads", "07 mutex", false, {"--threads", threads, "--state", "shared"}},
            {"event_loop_threads", "07 sharded", false, {"--threads", threads, "--state", "sharded"}},
            {"prefork_event_loop", "06 local (wrong)", true, {"--state", "local"}}};
        for (int clients : quick ? std::vector<int>{2, 16} : std::vector<int>{2, 4, 8, 16})
            for (const Model& v : variants) rows.push_back({v, clients, false});
    } else if (s.kind == Scenario::uring) {
        std::vector<Model> variants = {{"event_loop", "05", false},
                                       {"uring", "08 oneshot", false, {"--mode", "oneshot"}},
                                       {"uring", "08 multishot", false, {"--mode", "multishot"}}};
        if (!quick) {
            variants.push_back({"uring", "08 multishot, plain fds", false, {"--mode", "multishot", "--no-fixed-files"}});
            variants.push_back({"uring", "08 multishot, no DEFER_TASKRUN", false,
                                {"--mode", "multishot", "--no-defer-taskrun"}});
        }
        for (int c : quick ? std::vector<int>{1, 100} : std::vector<int>{1, 10, 100, 1000})
            for (const Model& v : variants) rows.push_back({v, c, false});
        for (const Model& v : variants) rows.push_back({v, 10, true});  // a connection per request
        // The same 1000 connections at a fixed rate, below what either
        // server can do: the same work for both, so CPU per request compares
        // like with like; and how many completions a ring collects per wait
        // (its system calls per request) depends on how busy it is.
        if (!quick)
            for (double rate : {20000.0, 50000.0})
                for (const Model& v : {variants[0], variants[2]}) rows.push_back({v, 1000, false, rate});
    } else if (s.kind == Scenario::proxy) {
        rows.push_back({{"proxy", "09", true, {}, "event_loop"}, connections, false});
        rows.push_back({{"nginx", "nginx proxy_pass", true, {}, "event_loop"}, connections, false});
    }
    return rows;
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
            {"event_loop_threads", "07", false},    {"uring", "08", false},
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
    // 07: the main reactor hands each connection over (a wakeup of another
    // thread); reuseport lets each loop accept its own: the hand-off's cost.
    for (const auto& [name, _] : sl::loop_accept_names())
        out.push_back({"event_loop_threads", "07 " + std::string(name), false, {"--accept", std::string(name)}});
    out.push_back({"uring", "08", false});
    out.push_back({"nginx", "nginx", true});
    return out;
}

const std::map<std::string, std::string>& model_aliases() {
    static const std::map<std::string, std::string> alias = [] {
        // Each model's directory and its binary (as its CMakeLists.txt names it).
        const std::pair<std::string, std::string> models[] = {
            {"01_single_process", "single_process"},   {"02_fork_per_conn", "fork_per_conn"},
            {"03_prefork", "prefork"},                 {"04_prefork_threads", "prefork_threads"},
            {"05_event_loop", "event_loop"},           {"06_prefork_event_loop", "prefork_event_loop"},
            {"07_event_loop_threads", "event_loop_threads"}, {"08_io_uring", "uring"},
            {"09_reverse_proxy", "proxy"}};
        std::map<std::string, std::string> a;
        for (const auto& [dir, binary] : models) a[dir.substr(0, 2)] = a[dir] = a[dir.substr(3)] = binary;
        return a;
    }();
    return alias;
}

}  // namespace lg
