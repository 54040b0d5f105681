// status.hpp: what every worker and thread is doing now, as the status views
// show it: `STATUS` (text lines), `GET /status.json` and `GET /status` (an
// HTML page that refreshes itself). Apache's mod_status and php-fpm's status
// page do this for their operators; here it is for students watching a
// model at work. Pure formatting: the rows are gathered by the layer that
// knows the workers (the scoreboard, or a single process's counters).
// See docs/status.md.
#pragma once

#include "protocol/counters.hpp"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sl {

/// One line of the table: a worker process, or one thread of one.
struct StatusRow {
    std::optional<int> worker;  // its slot; none in a model without workers (01, 05)
    std::optional<int> thread;  // a thread row (04): its index in the worker
    pid_t pid = 0;
    pid_t tid = 0;
    char state = '_';           // a letter of kStateLegend
    std::optional<int> generation;
    uint64_t accepts = 0;
    uint64_t requests = 0;
    std::optional<uint64_t> wakeups;  // counted only where workers compete in accept
    std::optional<uint64_t> spurious;
    uint64_t open = 0;                // connections open now
    std::optional<uint64_t> upstream; // 09: connections to backends open now (other models: none)
    uint64_t cpu_ms = 0;              // user + system, from /proc
};

struct Status {
    std::string_view model;
    std::string_view accept;  // the --accept strategy; empty: the model has none
    pid_t pid = 0;            // the process the model was started as (the master, if any)
    Totals totals;
    std::vector<StatusRow> rows;
};

/// The state letters and what they mean, in the order the legend lists them.
struct StateLetter {
    char letter;
    std::string_view meaning;
};
inline constexpr StateLetter kStateLegend[] = {
    {'_', "waiting for a connection"},
    {'R', "reading a request"},
    {'W', "working: executing a request, writing its answer"},
    {'K', "keep-alive: a connection open, between requests"},
    {'S', "starting"},
    {'G', "exiting gracefully"},
};

char activity_letter(Activity a);

/// A row for the owner of `c`: its state letter, accepts (c.connections), requests, open connections.
StatusRow counters_row(const Counters& c);

/// `STATUS model=... accept=... pid=... uptime_ms=... rows=N`, then N lines
/// `worker=0 thread=- pid=... state=_ ...` ('-' where a field does not apply).
std::string format_status_text(const Status& s);
/// {"model": ..., "accept": ..., "pid": ..., "uptime_ms": ..., "totals": {...},
///  "workers": [{...}, ...], "legend": {...}}; null where a field does not apply.
std::string format_status_json(const Status& s);
/// A self-contained HTML page (no script, no fetched style) that reloads itself every 2 s.
std::string format_status_html(const Status& s);

}  // namespace sl
