// proc.hpp: servers under test, started and watched from outside, as a
// student would with ps and /proc (herd and compare use it).
#pragma once

#include "base/fd.hpp"
#include "base/procfs.hpp"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lg {

/// A server started in its own process group, stdout and stderr on pipes.
struct Spawned {
    pid_t pid = -1;  // also the process group id: every process it forks is in the group
    int port = 0;
    sl::Fd out, err;
};

/// Starts argv (argv[0] is a path, or a name looked up in PATH) in a new process group. With
/// `listening_line`, waits (5 s at most) for the models' "listening on
/// HOST:PORT" line and takes the port from it; otherwise waits until `port`
/// accepts connections. Throws std::runtime_error with what went wrong.
Spawned spawn_server(const std::vector<std::string>& argv, bool listening_line, int port = 0);

/// --cmd: a server of one's own. Its words split at spaces ("python3 my_server.py --port {port}").
std::vector<std::string> command_words(const std::string& text);

/// Starts `words` with {port} replaced by a free port, as spawn_server does, and waits until that
/// port accepts connections (a student's server need print nothing).
Spawned spawn_command(const std::vector<std::string>& words);

/// SIGTERM to the leader; after `grace_s` SIGKILL to the whole group. Returns
/// what the server wrote to stderr (its summary). Nothing is left running.
std::string stop_server(Spawned& s, double grace_s = 5);

/// A started server that is stopped, with its whole process group, however
/// the scope is left (an exception out of a load included).
class RunningServer {
public:
    explicit RunningServer(Spawned s) : s_(std::move(s)) {}
    RunningServer(const RunningServer&) = delete;
    RunningServer& operator=(const RunningServer&) = delete;
    ~RunningServer() { stop(); }
    int port() const { return s_.port; }
    pid_t pid() const { return s_.pid; }
    std::string stop() { return stop_server(s_); }  // a second call returns "" at once

private:
    Spawned s_;
};

/// Waits (at most `max_ms`) until every process of `pids` sleeps (state S in
/// /proc/PID/stat): a worker woken for a connection another took has gone
/// back to its wait. False if one is still running or runnable by then.
bool wait_all_sleeping(const std::vector<pid_t>& pids, int max_ms);

/// A free TCP port on 127.0.0.1 (for servers that cannot be given port 0).
int free_port();

/// Every process of a process group, as /proc shows it (base/procfs.hpp).
std::vector<sl::ProcStat> group_members(pid_t pgid);
std::vector<pid_t> children_of(pid_t parent);
uint64_t voluntary_switches(pid_t pid);

/// Connects to 127.0.0.1:port, sends `request`, returns the first answer line ("" on failure).
std::string ask(int port, const std::string& request);

/// The directory of this executable (build/bin), to find the models beside it.
std::string self_dir();

}  // namespace lg
