// idle.cpp: see idle.hpp.
#include "idle.hpp"

#include "base/procfs.hpp"
#include "proc.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace lg {

IdleConnections::IdleConnections(int port, int count, double timeout_s) {
    sl::Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::unordered_map<int, sl::Fd> pending;
    for (int i = 0; i < count; ++i) {
        sl::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) break;  // out of descriptors: hold what we have
        int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        if (rc == 0) {
            open_.push_back(std::move(fd));
            continue;
        }
        if (errno != EINPROGRESS) continue;
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.fd = fd.get();
        if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd.get(), &ev) < 0) continue;
        int n = fd.get();
        pending.emplace(n, std::move(fd));
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    epoll_event events[256];
    while (!pending.empty() && std::chrono::steady_clock::now() < deadline) {
        int n = ::epoll_wait(epoll.get(), events, 256, 50);
        for (int i = 0; i < n; ++i) {
            auto it = pending.find(events[i].data.fd);
            if (it == pending.end()) continue;
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(it->first, SOL_SOCKET, SO_ERROR, &err, &len);
            ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, it->first, nullptr);
            if (err == 0) open_.push_back(std::move(it->second));
            pending.erase(it);
        }
    }
}  // the connections still pending close here

namespace {

// The sockets in an io_uring's table of registered files (08's accepted
// connections, with fixed files): they are in no descriptor table, and the
// ring's fdinfo lists them ("UserFiles:", then "   N: socket:[inode]"). The
// kernel prints the list only when it gets the ring's lock at once, so a busy
// ring may need a second look.
std::vector<std::string> ring_files(pid_t pid, const std::string& fd) {
    std::vector<std::string> files;
    for (int attempt = 0; attempt < 5 && files.empty(); ++attempt) {
        std::optional<std::string> info = sl::read_proc_file(fmt::format("/proc/{}/fdinfo/{}", pid, fd));
        if (!info) break;
        std::istringstream lines(*info);
        bool in_files = false;
        for (std::string line; std::getline(lines, line);) {
            if (line.rfind("UserFiles:", 0) == 0) in_files = true;
            else if (in_files && line.find(": socket:[") != std::string::npos) files.push_back(line.substr(line.find("socket:[")));
            else if (in_files && !line.empty() && line[0] != ' ') break;
        }
    }
    return files;
}

}  // namespace

int held_connections(pid_t pgid, int port) {
    std::set<std::string> established;  // socket inodes
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::optional<std::string> text = sl::read_proc_file(table);
        if (!text) continue;
        std::istringstream rows(*text);
        std::string row;
        std::getline(rows, row);  // the header
        while (std::getline(rows, row)) {
            std::istringstream f(row);
            std::string slot, local, remote, state, queues, timer, retrans, uid, timeout, inode;
            f >> slot >> local >> remote >> state >> queues >> timer >> retrans >> uid >> timeout >> inode;
            if (state != "01") continue;  // ESTABLISHED
            int local_port = std::stoi(local.substr(local.rfind(':') + 1), nullptr, 16);
            if (local_port == port) established.insert(inode);
        }
    }
    int held = 0;
    for (const sl::ProcStat& p : group_members(pgid)) {
        std::string dir = fmt::format("/proc/{}/fd", p.pid);
        DIR* d = ::opendir(dir.c_str());
        if (d == nullptr) continue;  // gone
        while (dirent* e = ::readdir(d)) {
            char link[64];
            ssize_t n = ::readlinkat(::dirfd(d), e->d_name, link, sizeof link - 1);
            if (n <= 0) continue;
            std::string target(link, static_cast<size_t>(n));
            std::vector<std::string> sockets = {target};
            if (target == "anon_inode:[io_uring]") sockets = ring_files(p.pid, e->d_name);
            for (const std::string& s : sockets)
                if (s.rfind("socket:[", 0) == 0 && established.count(s.substr(8, s.size() - 9))) ++held;
        }
        ::closedir(d);
    }
    return held;
}

int held_connections_settled(pid_t pgid, int port, int connected) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    int held = held_connections(pgid, port);
    auto grew = Clock::now();
    while (held < connected && Clock::now() < deadline && Clock::now() - grew < std::chrono::milliseconds(500)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        int now = held_connections(pgid, port);
        if (now > held) grew = Clock::now();
        held = now;
    }
    return held;
}

}  // namespace lg
