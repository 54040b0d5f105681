// proc.cpp: see proc.hpp.
#include "proc.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace lg {
namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

bool accepts_connections(int port) {
    sl::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = loopback(port);
    return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

bool alive(pid_t pid) {
    int status = 0;
    return ::waitpid(pid, &status, WNOHANG) == 0;
}

}  // namespace

Spawned spawn_server(const std::vector<std::string>& args, bool listening_line, int port) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) < 0) throw std::runtime_error(fmt::format("pipe2: {}", std::strerror(errno)));
    if (::pipe2(err, O_CLOEXEC) < 0) {
        ::close(out[0]), ::close(out[1]);
        throw std::runtime_error(fmt::format("pipe2: {}", std::strerror(errno)));
    }
    Spawned s;
    s.out.reset(out[0]);
    s.err.reset(err[0]);
    sl::Fd out_w(out[1]), err_w(err[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);  // dup2 clears CLOEXEC on the copy
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);  // pgid 0: a group of its own, to stop it whole
    posix_spawnattr_setpgroup(&attr, 0);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    // posix_spawnp: a name without a slash (python3, for --cmd) is looked up in PATH.
    int rc = ::posix_spawnp(&s.pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) throw std::runtime_error(fmt::format("cannot start {}: {}", args[0], std::strerror(rc)));
    out_w.reset();  // our copies of the write ends: EOF comes when the server's are gone
    err_w.reset();

    auto deadline = Clock::now() + std::chrono::seconds(5);
    if (!listening_line) {
        s.port = port;
        while (!accepts_connections(port)) {
            if (!alive(s.pid) || Clock::now() > deadline) {
                stop_server(s, 0);
                throw std::runtime_error(fmt::format("{} does not accept connections on port {}", args[0], port));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return s;
    }
    static const std::regex listening(R"(listening on (\S+):(\d+))");
    std::string text;
    std::smatch m;
    while (!std::regex_search(text, m, listening)) {
        pollfd p{s.out.get(), POLLIN, 0};
        char buf[512];
        ssize_t n = ::poll(&p, 1, 100) > 0 ? ::read(s.out.get(), buf, sizeof buf) : -1;
        if (n == 0 || Clock::now() > deadline) {
            std::string why = stop_server(s, 0);
            throw std::runtime_error(fmt::format("{} printed no listening line: {}", args[0], why));
        }
        if (n > 0) text.append(buf, static_cast<size_t>(n));
    }
    s.port = std::stoi(m[2]);
    return s;
}

std::string stop_server(Spawned& s, double grace_s) {
    if (s.pid <= 0) return {};
    ::kill(s.pid, SIGTERM);
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(grace_s));
    int status = 0;
    while (::waitpid(s.pid, &status, WNOHANG) == 0) {
        if (Clock::now() >= deadline) {
            ::kill(-s.pid, SIGKILL);
            ::waitpid(s.pid, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(-s.pid, SIGKILL);  // anything of the group still there (an orphaned worker): gone
    // Read what is left on stderr; a grandchild that left the group could
    // hold the pipe open, so stop after a second.
    std::string text;
    auto read_until = Clock::now() + std::chrono::seconds(1);
    while (Clock::now() < read_until) {
        pollfd p{s.err.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(s.err.get(), buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
    }
    s.pid = -1;
    return text;
}

std::vector<std::string> command_words(const std::string& text) {
    std::vector<std::string> words;
    std::istringstream in(text);
    for (std::string w; in >> w;) words.push_back(w);
    return words;
}

Spawned spawn_command(const std::vector<std::string>& words) {
    int port = free_port();
    std::vector<std::string> argv;
    for (std::string word : words) {
        for (size_t at; (at = word.find("{port}")) != std::string::npos;) word.replace(at, 6, std::to_string(port));
        argv.push_back(word);
    }
    return spawn_server(argv, false, port);
}

int free_port() {
    sl::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) < 0)
        throw std::runtime_error(fmt::format("cannot find a free port: {}", std::strerror(errno)));
    return ntohs(addr.sin_port);
}

namespace {
template <typename Keep>
std::vector<sl::ProcStat> scan(Keep keep) {
    std::vector<sl::ProcStat> out;
    DIR* d = ::opendir("/proc");
    while (dirent* e = d ? ::readdir(d) : nullptr) {
        if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
        std::optional<sl::ProcStat> st = sl::read_proc_stat(std::atoi(e->d_name));
        if (st && keep(*st)) out.push_back(*st);
    }
    if (d) ::closedir(d);
    return out;
}
}  // namespace

std::vector<sl::ProcStat> group_members(pid_t pgid) {
    return scan([pgid](const sl::ProcStat& st) { return st.pgid == pgid; });
}

std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    for (const sl::ProcStat& st : scan([parent](const sl::ProcStat& s) { return s.ppid == parent; })) out.push_back(st.pid);
    return out;
}

bool wait_all_sleeping(const std::vector<pid_t>& pids, int max_ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(max_ms);
    for (;;) {
        bool all = true;
        for (pid_t p : pids) {
            std::optional<sl::ProcStat> st = sl::read_proc_stat(p);  // gone: not awake either
            if (st && st->state != 'S') {
                all = false;
                break;
            }
        }
        if (all) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

uint64_t voluntary_switches(pid_t pid) {
    std::optional<std::string> status = sl::read_proc_file(fmt::format("/proc/{}/status", pid));
    if (!status) return 0;
    size_t at = status->find("\nvoluntary_ctxt_switches:");
    return at == std::string::npos ? 0 : std::strtoull(status->c_str() + at + 25, nullptr, 10);
}

std::string ask(int port, const std::string& request) {
    sl::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = loopback(port);
    timeval tv{5, 0};
    // Without the timeout a server that never answers would hold this read for ever.
    if (!fd || ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return "";
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return "";
    if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) return "";
    std::string answer;
    char buf[512];
    while (answer.find('\n') == std::string::npos) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0) return "";
        answer.append(buf, static_cast<size_t>(n));
    }
    return answer.substr(0, answer.find('\n'));
}

std::string self_dir() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    std::string path(buf, n > 0 ? static_cast<size_t>(n) : 0);
    return path.substr(0, path.rfind('/'));
}

}  // namespace lg
