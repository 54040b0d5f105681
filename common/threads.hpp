// threads.hpp: the threads of one worker process (04_prefork_threads).
//
// A worker runs M threads that serve connections. How a connection reaches
// a thread is --thread-accept:
//   each   every thread calls the process's accept strategy itself; with
//          `blocking`, the kernel's wake-one covers all threads of all processes
//   mutex  a per-process mutex around accept, so one thread per process
//          waits in it (UNP's serv07)
//   queue  one listener thread accepts and hands connections to the pool
//          (UNP's serv08, Apache's worker MPM). It accepts only while a pool
//          thread is idle, so when all are busy, clients wait in the kernel's
//          backlog, where another process may take them, and not in a queue
//          inside a process that cannot serve them (the complaint about
//          gunicorn's gthread workers).
#pragma once

#include "accept.hpp"
#include "scoreboard.hpp"
#include "server.hpp"

#include <string>
#include <vector>

namespace sl {

struct ThreadOptions {
    int threads = 16;
    std::string mode = "each";  // each | mutex | queue
};

const std::vector<std::string>& thread_accept_names();

/// Runs options.threads serving threads in this worker process (slot `slot`),
/// each counting into its own thread slot of the scoreboard. Returns when a
/// stop was requested (or --max-requests was reached, which this process
/// treats as a graceful stop) and every thread has finished; the return value
/// is the worker's exit status.
///
/// A signal interrupts the blocking call of one thread only, so the process's
/// main thread waits for the stop and then sends SIGTERM to each thread
/// still running (pthread_kill), every 50 ms, until all have left: a thread
/// blocked in accept() gets EINTR and sees the stop.
int run_worker_threads(Scoreboard& board, int slot, AcceptStrategy& acceptor, const ThreadOptions& options,
                       const ServerContext& context);

}  // namespace sl
