#include "base/cli.hpp"

#include <arpa/inet.h>
#include <unistd.h>

namespace sl {
namespace {

// An IPv4 or IPv6 literal. Names are not resolved: a teaching server that
// listens where the user typed, no DNS involved.
std::string check_address(std::string& host) {
    if (host == "localhost") host = "127.0.0.1";
    unsigned char buf[sizeof(in6_addr)];
    if (::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1) return {};
    return "'" + host + "' is not an IPv4 or IPv6 address (try 127.0.0.1 or 0.0.0.0)";
}

}  // namespace

void add_common_options(CLI::App& app, CommonOptions& o) {
    app.add_option("--host", o.host, "address to listen on (IPv4 or IPv6 literal)")
        ->capture_default_str()
        ->transform(CLI::Validator(check_address, "ADDRESS", "address"));
    app.add_option("--port", o.port, "TCP port; 0 lets the kernel pick a free one")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    app.add_option("--backlog", o.backlog, "listen(2) backlog: completed connections the kernel queues for accept")
        ->capture_default_str()
        ->check(CLI::Range(1, 65535));
    app.add_option("--idle-timeout", o.idle_timeout, "close a connection with no complete request for this many seconds")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    app.add_flag("--trace", o.trace, "print one line per event to stderr: time, pid, tid, role");
    app.set_version_flag("--version", std::string(SERVERLAB_VERSION));
}

void add_graceful_timeout_option(CLI::App& app, int& seconds) {
    app.add_option("--graceful-timeout", seconds, "on stop, SIGKILL children still busy after this many seconds")
        ->capture_default_str()
        ->check(CLI::Range(0, 3600));
}

int cpu_count() {
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace sl
