// load.hpp: the load engine behind loadgen and compare.
//
// A few threads, each with its own epoll instance and its own share of the
// connections; nothing is shared while the load runs except one atomic
// request budget. Every answer is checked against what its request must get
// back (PING -> PONG, WORK n -> the exact splitmix64 digits, ...).
#pragma once

#include "histogram.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lg {

enum class Protocol { text, http };

struct LoadOptions {
    std::string host = "127.0.0.1";
    int port = 0;
    Protocol protocol = Protocol::text;
    std::vector<std::string> requests;  // text lines, or HTTP paths; picked by weight
    std::vector<unsigned> weights;      // one per request; empty: all 1
    int connections = 10;
    double duration_s = 0;          // stop after this long ...
    uint64_t total_requests = 0;    // ... or after this many requests (then wait for every answer)
    bool conn_per_request = false;  // connect, one request, close
    double rate = 0;                // requests/s over all connections; 0: send as soon as answered
    double timeout_s = 5;           // no answer (or no connection) after this: a timeout
    int threads = 0;                // 0: min(CPUs, connections, 4)
};

enum class Failure { refused, connect, timeout, reset, closed, wrong, count };
inline constexpr std::array<const char*, static_cast<size_t>(Failure::count)> kFailureNames = {
    "refused", "connect", "timeout", "reset", "closed", "wrong"};

struct PerRequest {
    std::string request;
    uint64_t ok = 0;
    Histogram latency;  // microseconds, answered requests only
};

struct LoadResult {
    double elapsed_s = 0;
    uint64_t sent = 0;        // requests written (or attempted: a refused connect counts)
    uint64_t ok = 0;          // right answers
    uint64_t unfinished = 0;  // still waiting when a --duration ran out (not errors)
    uint64_t connects = 0;    // connections opened
    // Sent again, once, on a new connection: the request went out on a reused
    // keep-alive connection that the server closed before any byte of the
    // answer came back (see Worker::fail). Not errors: answered the second time.
    uint64_t retried = 0;
    std::array<uint64_t, static_cast<size_t>(Failure::count)> failures{};
    Histogram latency;
    std::vector<PerRequest> per_request;
    std::vector<std::string> wrong_samples;  // the first few wrong answers, for the report

    uint64_t errors() const;
    double rps() const { return elapsed_s > 0 ? static_cast<double>(ok) / elapsed_s : 0; }
};

/// Runs the load; throws std::invalid_argument on options it cannot run
/// (an unknown host, no request). `progress`, if given, is called about every
/// 100 ms from the first thread with the share done (0..1).
LoadResult run_load(const LoadOptions& options, const std::function<void(double)>& progress = {});

/// The result as one JSON object (options included, latencies in ms).
std::string to_json(const LoadOptions& options, const LoadResult& result);

/// The result for people: a few lines.
std::string to_text(const LoadOptions& options, const LoadResult& result);

}  // namespace lg
