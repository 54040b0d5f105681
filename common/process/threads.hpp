// threads.hpp: the threads of one worker process (04_prefork_threads).
//
// A worker runs M threads that serve connections; each runs the loop 04's
// main.cpp gives it. How a thread gets its next connection is
// --thread-accept:
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

#include "accept/accept.hpp"
#include "process/scoreboard.hpp"

#include "base/cli.hpp"

#include <functional>
#include <string_view>
#include <utility>
#include <vector>

namespace sl {

enum class ThreadAccept { each, mutex, queue };

struct ThreadOptions {
    int threads = 16;
    ThreadAccept mode = ThreadAccept::each;
};

/// Every --thread-accept mode with its name, in the order the docs present them.
const Names<ThreadAccept>& thread_accept_modes();

/// --threads and --thread-accept (parsed into the enum).
void add_thread_options(CLI::App& app, ThreadOptions& options);

class WorkerThreads;

/// One serving thread, as its loop sees it. Used by that thread only.
class WorkerThread {
public:
    /// Waits for a connection the --thread-accept way. Empty: a stop, or
    /// nothing this time (another worker won); the loop looks and waits again.
    Fd next_connection();
    /// Leaving (a stop): a connection already this process's that no other
    /// worker can take (AcceptStrategy::leftover); empty when there is none.
    Fd leftover();
    /// Marks this thread busy and counts the connection; returns its serial
    /// number in this process (WHO's conn=).
    uint64_t begin_connection();
    /// Marks this thread idle again.
    void end_connection();
    /// This thread's counters in the scoreboard.
    Counters& counters();

private:
    friend class WorkerThreads;
    WorkerThread(WorkerThreads& pool, ThreadSlot& slot) : pool_(pool), slot_(slot) {}
    WorkerThreads& pool_;
    ThreadSlot& slot_;
};

/// Runs options.threads threads in this worker process (`me`), each running
/// `thread_main` with its WorkerThread and counting into its own thread slot
/// of the scoreboard. Returns once a stop was requested and every thread
/// has finished; the return value is the worker's exit status.
///
/// A signal interrupts the blocking call of one thread only, so the process's
/// main thread waits for the stop and then sends SIGTERM to each thread
/// still running (pthread_kill), every 50 ms, until all have left: a thread
/// blocked in accept() gets EINTR and sees the stop.
int run_worker_threads(Scoreboard& board, const WorkerId& me, AcceptStrategy& acceptor, const ThreadOptions& options,
                       const std::function<void(WorkerThread&)>& thread_main);

}  // namespace sl
