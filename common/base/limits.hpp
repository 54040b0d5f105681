// limits.hpp: resource limits a server sets for itself.
#pragma once

namespace sl {

/// Raises the soft RLIMIT_NOFILE to the hard limit (a descriptor per
/// connection: the soft limit is often 1024, far below what an event loop can
/// hold) and returns the limit now in force. Children inherit it across
/// fork() and exec(). nginx's worker_rlimit_nofile does the same.
int raise_descriptor_limit();

}  // namespace sl
