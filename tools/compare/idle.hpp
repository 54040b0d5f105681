// idle.hpp: many idle connections held open, for compare's c10k scenario.
#pragma once

#include "base/fd.hpp"

#include <sys/types.h>

#include <vector>

namespace lg {

/// Opens `count` connections to 127.0.0.1:port at once (non-blocking
/// connects, then waits up to `timeout_s` for the handshakes) and keeps those
/// that completed open, sending nothing, until destroyed. A server that no
/// longer accepts leaves the rest in its backlog, and past the backlog the
/// kernel drops their SYNs: those are closed and not counted.
class IdleConnections {
public:
    IdleConnections(int port, int count, double timeout_s);
    int connected() const { return static_cast<int>(open_.size()); }

private:
    std::vector<sl::Fd> open_;
};

/// How many established TCP connections on local port `port` the processes
/// of group `pgid` hold (/proc/net/tcp, then each process's descriptors and
/// the files registered in its io_uring, where 08 keeps its connections):
/// the connections a server has accepted, not those waiting in its backlog.
int held_connections(pid_t pgid, int port);

/// held_connections once the server has taken what it will take: when it
/// holds all `connected`, or when the count has not grown for half a second
/// (a model that holds one connection at a time stops there), at most 5 s.
/// A server on a busy machine may still be accepting from its backlog.
int held_connections_settled(pid_t pgid, int port, int connected);

}  // namespace lg
