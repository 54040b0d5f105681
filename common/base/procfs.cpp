#include "base/procfs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>
#include <vector>

namespace sl {

std::optional<std::string> read_proc_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;  // ENOENT: no such process (any more)
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) != 0) {
        if (n > 0) text.append(buf, static_cast<size_t>(n));
        else if (errno != EINTR) break;  // ESRCH: it exited after our open()
    }
    ::close(fd);
    if (n < 0) return std::nullopt;
    return text;
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
    std::optional<std::string> text = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
    if (!text) return std::nullopt;
    // Field 2 is the command name in parentheses, which may itself hold
    // spaces and ')': the fields we want start after the *last* ')'.
    size_t close = text->rfind(')');
    if (close == std::string::npos || close + 2 > text->size()) return std::nullopt;
    std::vector<std::string_view> f;  // f[0] is field 3 (state) of proc(5)
    std::string_view rest = std::string_view(*text).substr(close + 2);
    while (!rest.empty()) {
        size_t space = rest.find(' ');
        f.push_back(rest.substr(0, space));
        rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    }
    if (f.size() < 22) return std::nullopt;
    auto number = [&f](size_t field) {
        long long v = 0;
        std::string_view s = f[field - 3];
        std::from_chars(s.data(), s.data() + s.size(), v);
        return v;
    };
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    ProcStat st;
    st.pid = pid;
    st.state = f[0].empty() ? '?' : f[0][0];
    st.ppid = static_cast<pid_t>(number(4));
    st.pgid = static_cast<pid_t>(number(5));
    st.utime = static_cast<double>(number(14)) / tick;
    st.stime = static_cast<double>(number(15)) / tick;
    st.cutime = static_cast<double>(number(16)) / tick;
    st.cstime = static_cast<double>(number(17)) / tick;
    st.threads = static_cast<long>(number(20));
    st.rss_kib = static_cast<uint64_t>(number(24)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) / 1024;
    return st;
}

}  // namespace sl
