// cli.hpp: the options every model shares, declared once (CLI11).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace sl {

struct CommonOptions {
    std::string host = "127.0.0.1";
    int port = 8080;
    int backlog = 511;  // nginx's and redis's default; Linux caps it at net.core.somaxconn
    int idle_timeout = 30;
    bool trace = false;
};

/// --host --port --backlog --idle-timeout --trace --version (and CLI11's
/// --help). A bad value stops the program with a message naming the option
/// and a non-zero exit, before any socket is opened.
void add_common_options(CLI::App& app, CommonOptions& options);

/// --graceful-timeout SECONDS, for models with children (default 10): how long
/// a stop waits for children to finish their requests before SIGKILL.
void add_graceful_timeout_option(CLI::App& app, int& seconds);

/// The number of online CPUs: the default worker count.
int cpu_count();

}  // namespace sl
