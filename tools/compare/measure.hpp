// measure.hpp: one model under one load, watched from /proc (compare's runs).
#pragma once

#include "compare.hpp"

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace lg {

/// Where the servers are, and how they are started.
struct Setup {
    std::string bin_dir;  // the models' binaries
    int workers = 2;      // --workers for the models with workers, worker_processes for nginx
    std::string nginx;    // nginx's path, or empty when not installed
    std::string scratch;  // a directory for nginx's configuration and files
    std::vector<int> server_cpus;  // --pin: the CPUs the server may run on (empty: any)
};

/// Runs one load against a server, given its process group: run_load, or
/// more (c10k first opens its idle connections), or a stand-in in the tests.
using LoadFn = std::function<LoadResult(const LoadOptions&, pid_t server)>;

/// Pins the calling thread, and what it starts from now on, to `cpus`
/// (sched_setaffinity). False if the kernel refused.
bool pin_to(const std::vector<int>& cpus);

/// "" where 08 (uring) can run; else why not, as it says itself ("a seccomp filter ...").
std::string uring_unavailable(const Setup& setup);

/// Starts `model` on a free port (a proxy's `backend` first, behind it), runs `load` against it (run.load gets the
/// port; the rest of run.load is the caller's) while a sampler reads the
/// server's process group from /proc every 100 ms, stops the server, and
/// fills run.result, run.usage and run.summary.
///
/// Whatever goes wrong, nothing is left behind: if the load throws, the
/// sampler thread is stopped and joined (a joinable std::thread destroyed
/// unjoined calls std::terminate) and the server's whole process group is
/// stopped, and then the exception goes on to the caller.
void measure(const Setup& setup, const Model& model, Run& run, const LoadFn& load);

}  // namespace lg
