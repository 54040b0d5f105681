// report.cpp: compare's results as JSON (everything), CSV (a row per run)
// and Markdown (a table per scenario, the lesson above it).
#include "compare.hpp"
#include "json.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace lg {
namespace {

double ms(uint64_t us) { return static_cast<double>(us) / 1000.0; }

const Histogram& focus_latency(const Report& report, const Run& run) {
    for (const Scenario& s : report.scenarios)
        if (s.name == run.scenario && s.focus < run.result.per_request.size()) return run.result.per_request[s.focus].latency;
    return run.result.latency;
}

std::string errors_text(const LoadResult& r) {
    std::string out;
    for (size_t f = 0; f < r.failures.size(); ++f)
        if (r.failures[f]) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", kFailureNames[f], r.failures[f]);
    return out.empty() ? "0" : out;
}

std::string busiest_text(const Usage& u) {
    if (u.workers < 2 || u.busiest == 0) return "-";
    return fmt::format("{:.0f}% of {}", u.busiest * 100, u.workers);
}

bool same_row(const Run& a, const Run& b) {
    return a.scenario == b.scenario && a.label == b.label && a.load.connections == b.load.connections &&
           a.load.conn_per_request == b.load.conn_per_request && a.load.rate == b.load.rate;
}

// "1000", "10, one per request", "1000 at 20000/s": a variant's load.
std::string connections_text(const LoadOptions& load) {
    return fmt::format("{}{}{}", load.connections, load.conn_per_request ? ", one per request" : "",
                       load.rate > 0 ? fmt::format(" at {:.0f}/s", load.rate) : "");
}

// --rounds: "05 1: 41210 40870 42010 (3%)", the spread being (max - min) / median.
std::string spread_text(const Report& report, const Scenario& sc) {
    if (report.settings.rounds < 2) return "";
    std::string out;
    for (const Run& run : report.runs) {
        if (run.scenario != sc.name || run.rounds_rps.size() < 2) continue;
        const auto [lo, hi] = std::minmax_element(run.rounds_rps.begin(), run.rounds_rps.end());
        double median = run.result.rps();
        std::string each;
        for (double r : run.rounds_rps) each += fmt::format(" {:.0f}", r);
        out += fmt::format("{}{}{}:{} ({:.0f}%)", out.empty() ? "" : "; ", run.label,
                           sc.kind == Scenario::uring || sc.kind == Scenario::state
                               ? " with " + connections_text(run.load)
                               : "",
                           each, median > 0 ? (*hi - *lo) * 100 / median : 0);
    }
    return out.empty() ? "" : fmt::format("Each round's req/s, and their spread as a share of the median: {}.\n\n", out);
}

}  // namespace

void keep_medians(std::vector<Run>& runs) {
    std::vector<Run> kept;
    std::vector<bool> taken(runs.size(), false);
    for (size_t i = 0; i < runs.size(); ++i) {
        if (taken[i]) continue;
        std::vector<Run*> group;  // this row's runs, one per round, measured ones only
        for (size_t j = i; j < runs.size(); ++j) {
            if (taken[j] || !same_row(runs[i], runs[j])) continue;
            taken[j] = true;
            if (runs[j].skipped.empty()) group.push_back(&runs[j]);
        }
        if (group.empty()) {  // skipped in every round: say why once
            kept.push_back(runs[i]);
            continue;
        }
        std::sort(group.begin(), group.end(), [](const Run* a, const Run* b) { return a->result.rps() < b->result.rps(); });
        Run median = *group[(group.size() - 1) / 2];
        for (const Run* r : group) median.rounds_rps.push_back(r->result.rps());
        kept.push_back(std::move(median));
    }
    runs = std::move(kept);
}

std::string report_json(const Report& report) {
    const Machine& m = report.machine;
    std::string out = fmt::format(
        "{{\n\"machine\": {{\"cpu\": {}, \"cpus\": {}, \"kernel\": {}, \"date\": {}}},\n"
        "\"settings\": {{\"duration_s\": {}, \"connections\": {}, \"workers\": {}, \"quick\": {}, \"pinned\": {}, "
        "\"c10k_idle\": {}, \"cost_connections\": {}, \"protocol\": \"{}\", \"rounds\": {}}},\n\"runs\": [",
        json_string(m.cpu), m.cpus, json_string(m.kernel), json_string(m.date), report.settings.duration_s,
        report.settings.connections, report.settings.workers, report.settings.quick ? "true" : "false",
        json_string(report.settings.pinned), report.settings.c10k_idle, report.settings.cost_connections,
        report.settings.text ? "text" : "http", report.settings.rounds);
    for (size_t i = 0; i < report.runs.size(); ++i) {
        const Run& run = report.runs[i];
        out += fmt::format("{}\n{{\"scenario\": {}, \"model\": {}, \"label\": {}, ", i ? "," : "",
                           json_string(run.scenario), json_string(run.model), json_string(run.label));
        if (!run.skipped.empty()) {
            out += fmt::format("\"skipped\": {}}}", json_string(run.skipped));
            continue;
        }
        const Usage& u = run.usage;
        std::string timeline;
        for (auto& [t, cores] : u.timeline) timeline += fmt::format("{}[{:.2f}, {:.3f}]", timeline.empty() ? "" : ", ", t, cores);
        std::string rounds;
        for (double r : run.rounds_rps) rounds += fmt::format("{}{:.0f}", rounds.empty() ? "" : ", ", r);
        if (!rounds.empty()) out += fmt::format("\"rounds_rps\": [{}], ", rounds);
        out += fmt::format(
            "\"load\": {},\n \"server\": {{\"processes\": {}, \"threads\": {}, \"peak_rss_kib\": {}, \"cpu_user_s\": {:.2f}, "
            "\"cpu_sys_s\": {:.2f}, \"workers\": {}, \"busiest_worker_share\": {:.3f}, \"cpu_timeline\": [{}], "
            "\"summary\": {}}}, \"idle\": {{\"wanted\": {}, \"connected\": {}, \"held\": {}}}}}",
            to_json(run.load, run.result), u.processes, u.threads, u.rss_kib, u.user_s, u.sys_s, u.workers, u.busiest,
            timeline, json_string(run.summary), run.idle.wanted, run.idle.connected, run.idle.held);
    }
    out += "\n],\n\"herd\": ";
    out += report.herd.empty() ? "null" : herd_json(report.herd_options, report.herd);
    return out + "\n}\n";
}

std::string report_csv(const Report& report) {
    std::string out = "scenario,model,label,requests_per_s,p50_ms,p99_ms,errors,retried,processes,threads,peak_rss_mib,"
                      "cpu_user_s,cpu_sys_s,busiest_worker_share,skipped\n";
    for (const Run& run : report.runs) {
        if (!run.skipped.empty()) {
            out += fmt::format("{},{},\"{}\",,,,,,,,,,,,\"{}\"\n", run.scenario, run.model, run.label, run.skipped);
            continue;
        }
        const Histogram& h = focus_latency(report, run);
        const Usage& u = run.usage;
        out += fmt::format("{},{},\"{}\",{:.0f},{:.3f},{:.3f},{},{},{},{},{:.1f},{:.2f},{:.2f},{},\n", run.scenario,
                           run.model, run.label, run.result.rps(), ms(h.percentile(0.5)), ms(h.percentile(0.99)),
                           run.result.errors(), run.result.retried, u.processes, u.threads,
                           static_cast<double>(u.rss_kib) / 1024, u.user_s, u.sys_s,
                           u.workers >= 2 ? fmt::format("{:.3f}", u.busiest) : "");
    }
    return out;
}

namespace {

std::string load_table(const Report& report, const Scenario& sc) {
    std::string latency_of = sc.paths.size() > 1 ? fmt::format(" ({})", sc.paths[sc.focus]) : "";
    std::string out = fmt::format("| model | req/s | p50 ms{0} | p99 ms{0} | errors | retried | processes | threads | "
                                  "peak RSS MiB | CPU user s | CPU sys s | busiest worker |\n"
                                  "|---|---|---|---|---|---|---|---|---|---|---|---|\n",
                                  latency_of);
    for (const Run& run : report.runs) {
        if (run.scenario != sc.name) continue;
        if (!run.skipped.empty()) {
            out += fmt::format("| {} | {} | | | | | | | | | | |\n", run.model, run.skipped);
            continue;
        }
        const Histogram& h = focus_latency(report, run);
        const Usage& u = run.usage;
        out += fmt::format("| {} | {:.0f} | {:.2f} | {:.2f} | {} | {} | {} | {} | {:.1f} | {:.2f} | {:.2f} | {} |\n",
                           run.model, run.result.rps(), ms(h.percentile(0.5)), ms(h.percentile(0.99)),
                           errors_text(run.result), run.result.retried, u.processes, u.threads,
                           static_cast<double>(u.rss_kib) / 1024, u.user_s, u.sys_s, busiest_text(u));
    }
    return out;
}

std::string c10k_table(const Report& report, const Scenario& sc) {
    std::string out =
        "| model | idle held | idle connected | peak RSS MiB | processes | threads | active req/s | active p99 ms | "
        "active errors |\n|---|---|---|---|---|---|---|---|---|\n";
    for (const Run& run : report.runs) {
        if (run.scenario != sc.name) continue;
        if (!run.skipped.empty()) {
            out += fmt::format("| {} | {} | | | | | | | |\n", run.model, run.skipped);
            continue;
        }
        const Usage& u = run.usage;
        std::string p99 = run.result.ok ? fmt::format("{:.2f}", ms(run.result.latency.percentile(0.99))) : "-";
        out += fmt::format("| {} | {} of {} | {} | {:.1f} | {} | {} | {:.0f} | {} | {} |\n", run.model, run.idle.held,
                           run.idle.wanted, run.idle.connected, static_cast<double>(u.rss_kib) / 1024, u.processes,
                           u.threads, run.result.rps(), p99, errors_text(run.result));
    }
    return out;
}

std::string cost_table(const Report& report, const Scenario& sc) {
    std::string out = "| model | connections/s | CPU user s | CPU sys s | µs CPU per connection | processes | threads | "
                      "errors |\n|---|---|---|---|---|---|---|---|\n";
    // The server's own count where it prints one (to the ms), else the sampler's (10 ms ticks).
    for (const Run& run : report.runs) {
        if (run.scenario != sc.name) continue;
        if (!run.skipped.empty()) {
            out += fmt::format("| {} | {} | | | | | | |\n", run.label, run.skipped);
            continue;
        }
        const Usage& u = run.usage;
        double user = run.own_user_s >= 0 ? run.own_user_s : u.user_s;
        double sys = run.own_sys_s >= 0 ? run.own_sys_s : u.sys_s;
        double per = run.result.ok ? (user + sys) * 1e6 / static_cast<double>(run.result.ok) : 0;
        out += fmt::format("| {} | {:.0f} | {:.3f} | {:.3f} | {:.0f} | {} | {} | {} |\n", run.label, run.result.rps(),
                           user, sys, per, u.processes, u.threads, errors_text(run.result));
    }
    return out;
}

}  // namespace

// The scenarios whose rows are variants at several client counts (state,
// uring, proxy): a row each, with the columns that scenario is about.
std::string variants_table(const Report& report, const Scenario& sc) {
    const bool uring = sc.kind == Scenario::uring, state = sc.kind == Scenario::state;
    std::string out = fmt::format("| server | connections | req/s | p50 ms | p99 ms | µs CPU per request | {}errors |\n"
                                  "|---|---|---|---|---|---|{}---|\n",
                                  uring ? "syscalls per request | " : state ? "counted | " : "",
                                  uring || state ? "---|" : "");
    for (const Run& run : report.runs) {
        if (run.scenario != sc.name) continue;
        std::string connections = connections_text(run.load);
        if (!run.skipped.empty()) {
            out += fmt::format("| {} | {} | {} | | | | {}|\n", run.label, connections, run.skipped, uring || state ? "| " : "");
            continue;
        }
        const Histogram& h = run.result.latency;
        double user = run.own_user_s >= 0 ? run.own_user_s : run.usage.user_s;
        double sys = run.own_sys_s >= 0 ? run.own_sys_s : run.usage.sys_s;
        double ok = static_cast<double>(std::max<uint64_t>(run.result.ok, 1));
        std::string extra;
        if (uring) extra = run.syscalls >= 0 ? fmt::format("{:.2f} | ", run.syscalls / ok)
                                             : fmt::format("not measured: {} | ", run.syscalls_note);
        // Answered, or sent and still waiting when the run ended: the server counted those too.
        if (state) extra = run.counted >= 0 ? fmt::format("{} of {} | ", run.counted, run.result.ok + run.result.unfinished) : "- | ";
        out += fmt::format("| {} | {} | {:.0f} | {:.2f} | {:.2f} | {:.1f} | {}{} |\n", run.label, connections,
                           run.result.rps(), ms(h.percentile(0.5)), ms(h.percentile(0.99)), (user + sys) * 1e6 / ok,
                           extra, errors_text(run.result));
    }
    return out;
}

std::string report_markdown(const Report& report) {
    const Machine& m = report.machine;
    const Settings& s = report.settings;
    std::string out = fmt::format(
        "# serverlab compare, {}\n\n"
        "Machine: {} ({} CPUs), Linux {}. Each run: {} s, {} client connections, {}; models with workers: {} "
        "workers. {}.{}{}\n\n",
        m.date, m.cpu, m.cpus, m.kernel, s.duration_s, s.connections,
        s.text ? "the text protocol (--cmd)" : "HTTP", s.workers,
        s.pinned.empty() ? "Not pinned: server and load share every CPU" : "Pinned: " + s.pinned,
        s.quick ? " A --quick run: short, noisy." : "",
        s.rounds > 1 ? fmt::format(" Each row is the median of {} rounds by req/s; the rounds went through all the "
                                   "rows of a scenario in turn.", s.rounds)
                     : "");
    for (const Scenario& sc : report.scenarios) {
        switch (sc.kind) {
        case Scenario::load:
            out += fmt::format("## {}\n\n{}\n\n{}\n{}", sc.name, sc.lesson, load_table(report, sc), spread_text(report, sc));
            break;
        case Scenario::c10k:
            out += fmt::format("## {}\n\n{} {} idle connections, then {} active clients for {} s.{}\n\n{}\n", sc.name,
                               sc.lesson, s.c10k_idle, s.connections, s.duration_s,
                               s.c10k_note.empty() ? "" : " (" + s.c10k_note + ")", c10k_table(report, sc));
            out += spread_text(report, sc);
            break;
        case Scenario::cost:
            out += fmt::format("## {}\n\n{} {} connections per row, 8 at a time.\n\n{}\n", sc.name, sc.lesson,
                               s.cost_connections, cost_table(report, sc));
            out += spread_text(report, sc);
            break;
        case Scenario::state:
        case Scenario::uring:
        case Scenario::proxy:
            out += fmt::format("## {}\n\n{}\n\n{}\n{}", sc.name, sc.lesson, variants_table(report, sc), spread_text(report, sc));
            break;
        case Scenario::herd:
            if (report.herd.empty()) break;
            out += fmt::format(
                "## herd\n\n{} {} idle workers, {} connections one after another (the herd), then {} clients "
                "connecting for {} s, nine PINGs for one WORK {} (docs/thundering-herd.md).\n\n{}\n",
                sc.lesson, report.herd_options.workers, report.herd_options.connections, report.herd_options.clients,
                report.herd_options.seconds, report.herd_options.work, herd_table(report.herd));
            break;
        }
    }
    out += "## What each server printed when it stopped\n\n";
    for (const Run& run : report.runs)
        if (run.skipped.empty())
            out += fmt::format("<details><summary>{} · {}</summary>\n\n```\n{}```\n</details>\n\n", run.scenario,
                               run.label, run.summary);
    return out;
}

}  // namespace lg
