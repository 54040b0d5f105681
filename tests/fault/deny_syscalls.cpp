// deny_syscalls: runs a command under a seccomp filter that refuses the named
// system calls with EPERM, as a container's seccomp profile refuses
// io_uring_setup. For the tests of a program's "not available here" path:
//
//     deny_syscalls io_uring_setup,io_uring_enter -- build/bin/uring --port 0
//
// Needs no privilege: PR_SET_NO_NEW_PRIVS first, then SECCOMP_SET_MODE_FILTER
// (seccomp(2)). The filter lasts for the process and everything it executes.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Named {
    const char* name;
    long number;
};
constexpr Named kCalls[] = {{"io_uring_setup", __NR_io_uring_setup},
                            {"io_uring_enter", __NR_io_uring_enter},
                            {"io_uring_register", __NR_io_uring_register}};

#if defined(__x86_64__)
constexpr unsigned kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kArch = AUDIT_ARCH_AARCH64;
#endif

int usage() {
    std::fprintf(stderr, "usage: deny_syscalls CALL[,CALL...] -- COMMAND [ARGS...]   (CALL: io_uring_setup, "
                         "io_uring_enter, io_uring_register)\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4 || std::strcmp(argv[2], "--") != 0) return usage();
    std::vector<long> denied;
    std::string list = argv[1];
    for (size_t start = 0; start <= list.size();) {
        size_t end = list.find(',', start);
        std::string name = list.substr(start, end == std::string::npos ? std::string::npos : end - start);
        start = end == std::string::npos ? list.size() + 1 : end + 1;
        bool known = false;
        for (const Named& c : kCalls)
            if (name == c.name) denied.push_back(c.number), known = true;
        if (!known) return usage();
    }
    // A wrong architecture is refused outright; then each denied call gets
    // EPERM; everything else is allowed.
    std::vector<sock_filter> code = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
    };
    for (long nr : denied) {
        code.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), 0, 1));
        code.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)));
    }
    code.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    sock_fprog program{static_cast<unsigned short>(code.size()), code.data()};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
        std::perror("deny_syscalls: seccomp");
        return 2;
    }
    ::execvp(argv[3], argv + 3);
    std::perror("deny_syscalls: exec");
    return 127;
}
