// SPDX-License-Identifier: MIT
// explain_access() against what the kernel really does: a privilege-dropped
// reader, a non-dumpable target, an existing tracer, a zombie, a kernel thread
// and a pid that does not exist. Needs root to drop privileges (CI runs as root).

#include "xproc/access.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "child.hpp"
#include "xproc/maps.hpp"

namespace {

using ::testing::HasSubstr;
using xproc::AccessMode;
using xproc::AccessRule;
using xproc::ErrorKind;
using xproc::explain_access;

constexpr uid_t NOBODY = 65534;

/// Becomes uid/gid 65534 with no supplementary groups and no capabilities.
bool drop_to_nobody() {
    return setgroups(0, nullptr) == 0 && setresgid(NOBODY, NOBODY, NOBODY) == 0 &&
           setresuid(NOBODY, NOBODY, NOBODY) == 0;
}

std::string self_exe() {
    char buf[PATH_MAX] = {};
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

bool self_no_new_privs() {
    return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
}

/// The setcap advice the library prints for this test binary.
std::string setcap_advice() {
    std::string s = "give the tool CAP_SYS_PTRACE (`sudo setcap cap_sys_ptrace+ep " + self_exe() + "`";
    if (self_no_new_privs()) {
        s += "; file capabilities have no effect while no_new_privs is set, as it is for you";
    }
    return s + ")";
}

/// What a forked child reported: its exit code and the lines it wrote.
struct Report {
    int exit_code = -1;
    std::vector<std::string> lines;
};

/// Runs `body` in a forked child that first drops to uid 65534; the child writes
/// the lines `body` returns to a pipe and exits 0 (3 if it could not drop
/// privileges). The parent collects both, so the checks run in the parent.
template <typename Body>
Report run_as_nobody(Body body) {
    Report report;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe2: " << std::strerror(errno);
        return report;
    }
    const pid_t pid = fork();
    if (pid < 0) {
        ADD_FAILURE() << "fork: " << std::strerror(errno);
        return report;
    }
    if (pid == 0) {
        close(fds[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!drop_to_nobody()) {
            _exit(3);
        }
        std::string out;
        for (const std::string& line : body()) {
            out += line;
            out += '\n';
        }
        std::size_t done = 0;
        while (done < out.size()) {
            const ssize_t n = write(fds[1], out.data() + done, out.size() - done);
            if (n <= 0) {
                _exit(4);
            }
            done += static_cast<std::size_t>(n);
        }
        _exit(0);
    }
    close(fds[1]);
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    report.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t nl = text.find('\n', start);
        report.lines.push_back(text.substr(start, nl - start));
        start = nl == std::string::npos ? text.size() : nl + 1;
    }
    return report;
}

/// A target program started as uid 65534 (so it is not root-owned). Killed and
/// reaped by the destructor.
class NobodyTarget {
  public:
    explicit NobodyTarget(const std::string& name) {
        // Opened as root and exec'd through the descriptor: the build tree's
        // directories need not be searchable by nobody.
        const int exe = open(xproc::test::target_path(name).c_str(), O_RDONLY | O_CLOEXEC);
        int fds[2];
        if (exe < 0 || pipe2(fds, O_CLOEXEC) != 0) {
            ADD_FAILURE() << "open/pipe2: " << std::strerror(errno);
            return;
        }
        m_pid = fork();
        if (m_pid == 0) {
            dup2(fds[1], STDOUT_FILENO);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (!drop_to_nobody()) {
                _exit(3);
            }
            std::string arg0 = name;
            char* argv[] = {arg0.data(), nullptr};
            fexecve(exe, argv, environ);
            _exit(127);
        }
        close(exe);
        close(fds[1]);
        m_out = fdopen(fds[0], "r");
    }
    NobodyTarget(const NobodyTarget&) = delete;
    NobodyTarget& operator=(const NobodyTarget&) = delete;
    ~NobodyTarget() {
        if (m_pid > 0) {
            kill(m_pid, SIGKILL);
            while (waitpid(m_pid, nullptr, 0) < 0 && errno == EINTR) {
            }
        }
        if (m_out != nullptr) {
            std::fclose(m_out);
        }
    }

    pid_t pid() const { return m_pid; }
    bool wait_ready() {
        char line[64];
        return m_out != nullptr && std::fgets(line, sizeof line, m_out) != nullptr &&
               std::string(line) == "ready\n";
    }

  private:
    pid_t m_pid = -1;
    FILE* m_out = nullptr;
};

#define REQUIRE_ROOT()                                                                   \
    do {                                                                                 \
        if (geteuid() != 0) {                                                            \
            GTEST_SKIP() << "needs root to drop privileges (CI runs the tests as root)"; \
        }                                                                                \
    } while (false)

TEST(AccessIntegration, dropped_privileges_cannot_read_a_root_process) {
    REQUIRE_ROOT();
    xproc::test::Child target({xproc::test::target_path("sleeper")});
    ASSERT_TRUE(target.wait_for_line());
    const pid_t pid = target.pid();

    const Report r = run_as_nobody([pid] {
        std::vector<std::string> out;
        auto map = xproc::read_maps(pid);
        out.push_back(map ? "read_maps succeeded" : std::string(xproc::to_string(map.error().kind)));
        out.push_back(map ? "" : map.error().message());
        out.push_back(std::string(xproc::to_string(explain_access(pid, AccessMode::read).rule)));
        out.push_back(std::string(xproc::to_string(explain_access(pid, AccessMode::attach).rule)));
        // What the kernel says about the attach-mode path.
        char byte = 0;
        iovec local{&byte, 1};
        iovec remote{reinterpret_cast<void*>(0x10000), 1};
        const ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        out.push_back(n < 0 ? strerrorname_np(errno) : "process_vm_readv succeeded");
        return out;
    });

    ASSERT_EQ(r.exit_code, 0);
    ASSERT_EQ(r.lines.size(), 5u);
    EXPECT_EQ(r.lines[0], "permission");
    const std::string p = std::to_string(pid);
    EXPECT_EQ(r.lines[1],
              "open(/proc/" + p + "/maps) [pid " + p + "]: process " + p +
                  " (sleeper) runs as uid 0 (real/effective/saved 0/0/0) and you are uid 65534 without "
                  "CAP_SYS_PTRACE (Permission denied); run as root (`sudo <command>`) or " +
                  setcap_advice());
    EXPECT_EQ(r.lines[2], "uid_mismatch");
    EXPECT_EQ(r.lines[3], "uid_mismatch");
    EXPECT_EQ(r.lines[4], "EPERM");

    // The same target, seen by root: allowed.
    EXPECT_TRUE(explain_access(pid, AccessMode::read).allowed());
    EXPECT_TRUE(explain_access(pid, AccessMode::attach).allowed());
}

TEST(AccessIntegration, non_dumpable_target_of_the_same_user) {
    REQUIRE_ROOT();
    NobodyTarget target("nondumpable");
    ASSERT_TRUE(target.wait_ready());
    const pid_t pid = target.pid();

    // The facts as root sees them: same uid as the reader will have, not dumpable.
    auto facts = xproc::gather_access_facts(pid);
    ASSERT_TRUE(facts) << facts.error().message();
    EXPECT_EQ(facts->target.euid, NOBODY);
    EXPECT_FALSE(facts->target_dumpable);
    EXPECT_TRUE(facts->caller_is_ancestor);
    EXPECT_TRUE(explain_access(pid, AccessMode::read).allowed());  // root has CAP_SYS_PTRACE

    const Report r = run_as_nobody([pid] {
        std::vector<std::string> out;
        const auto v = explain_access(pid, AccessMode::read);
        out.push_back(std::string(xproc::to_string(v.rule)));
        out.push_back(v.reason);
        out.push_back(v.how_to_allow);
        auto map = xproc::read_maps(pid);
        out.push_back(map ? "read_maps succeeded" : std::string(xproc::to_string(map.error().kind)));
        out.push_back(map ? "" : map.error().detail);
        const int fd = open(("/proc/" + std::to_string(pid) + "/maps").c_str(), O_RDONLY | O_CLOEXEC);
        out.push_back(fd < 0 ? strerrorname_np(errno) : "open succeeded");
        if (fd >= 0) {
            close(fd);
        }
        return out;
    });

    ASSERT_EQ(r.exit_code, 0);
    ASSERT_EQ(r.lines.size(), 6u);
    EXPECT_EQ(r.lines[0], "not_dumpable");
    EXPECT_EQ(r.lines[1],
              "process " + std::to_string(pid) +
                  " (nondumpable) is not dumpable (it runs a setuid/setgid or file-capability program, "
                  "changed its credentials, or called prctl(PR_SET_DUMPABLE, 0)) and you lack "
                  "CAP_SYS_PTRACE");
    EXPECT_EQ(r.lines[2],
              "only root or a process with CAP_SYS_PTRACE can read its memory map: run as root (`sudo "
              "<command>`) or " +
                  setcap_advice() + "; or the target itself calls prctl(PR_SET_DUMPABLE, 1)");
    EXPECT_EQ(r.lines[3], "permission");
    EXPECT_EQ(r.lines[4], r.lines[1]);
    EXPECT_EQ(r.lines[5], "EACCES");
}

TEST(AccessIntegration, dumpable_target_of_the_same_user_is_readable) {
    REQUIRE_ROOT();
    NobodyTarget target("sleeper");
    ASSERT_TRUE(target.wait_ready());
    const pid_t pid = target.pid();
    auto facts = xproc::gather_access_facts(pid);
    ASSERT_TRUE(facts) << facts.error().message();
    EXPECT_TRUE(facts->target_dumpable);

    const Report r = run_as_nobody([pid] {
        const auto v = explain_access(pid, AccessMode::read);
        auto map = xproc::read_maps(pid);
        return std::vector<std::string>{std::string(xproc::to_string(v.rule)), v.reason,
                                        map ? "read_maps succeeded" : map.error().message()};
    });
    ASSERT_EQ(r.exit_code, 0);
    ASSERT_EQ(r.lines.size(), 3u);
    EXPECT_EQ(r.lines[0], "allowed") << r.lines[1];
    EXPECT_EQ(r.lines[2], "read_maps succeeded");
}

TEST(AccessIntegration, existing_tracer_is_named) {
    xproc::test::Child target({xproc::test::target_path("sleeper")});
    ASSERT_TRUE(target.wait_for_line());
    const pid_t pid = target.pid();

    // A helper process seizes the target and holds on until killed.
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    const pid_t tracer = fork();
    ASSERT_GE(tracer, 0);
    if (tracer == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        const char ok = ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) == 0 ? '1' : '0';
        (void)!write(fds[1], &ok, 1);
        for (;;) {
            pause();
        }
    }
    struct Reaper {
        pid_t pid;
        ~Reaper() {
            kill(pid, SIGKILL);
            while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
            }
        }
    } reaper{tracer};
    close(fds[1]);
    char ok = 0;
    ASSERT_EQ(read(fds[0], &ok, 1), 1);
    close(fds[0]);
    ASSERT_EQ(ok, '1') << "PTRACE_SEIZE failed in the helper";

    const auto v = explain_access(pid, AccessMode::attach);
    EXPECT_EQ(v.rule, AccessRule::already_traced);
    const std::string t = std::to_string(tracer);
    EXPECT_THAT(v.reason, HasSubstr("is already traced by process " + t + " ("));
    EXPECT_THAT(v.reason, HasSubstr("a process can have only one tracer"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("detach the other tracer, process " + t));
    EXPECT_THAT(v.how_to_allow, HasSubstr("kill " + t));
    // Reading the map does not need the tracer slot.
    EXPECT_TRUE(explain_access(pid, AccessMode::read).allowed());

    // The kernel agrees: a second seize fails.
    EXPECT_EQ(ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), -1);
    EXPECT_EQ(errno, EPERM);
}

TEST(AccessIntegration, our_own_tracee_is_allowed) {
    xproc::test::Child target({xproc::test::target_path("sleeper")});
    ASSERT_TRUE(target.wait_for_line());
    ASSERT_EQ(ptrace(PTRACE_SEIZE, target.pid(), nullptr, nullptr), 0) << std::strerror(errno);
    auto facts = xproc::gather_access_facts(target.pid());
    ASSERT_TRUE(facts) << facts.error().message();
    EXPECT_EQ(facts->target.tracer_pid, getpid());
    EXPECT_TRUE(explain_access(target.pid(), AccessMode::attach).allowed());
    // The Child destructor kills the tracee; a SIGKILLed tracee needs no detach.
}

TEST(AccessIntegration, unreaped_child_is_a_zombie) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        _exit(0);
    }
    struct Reaper {
        pid_t pid;
        ~Reaper() {
            while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
            }
        }
    } reaper{pid};
    siginfo_t info{};
    ASSERT_EQ(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);  // exited, not reaped

    for (AccessMode mode : {AccessMode::read, AccessMode::attach}) {
        const auto v = explain_access(pid, mode);
        EXPECT_EQ(v.rule, AccessRule::zombie);
        EXPECT_THAT(v.reason, HasSubstr("process " + std::to_string(pid) + " ("));
        EXPECT_THAT(v.reason, HasSubstr("is a zombie"));
    }
    auto map = xproc::read_maps(pid);
    ASSERT_FALSE(map);
    EXPECT_EQ(map.error().kind, ErrorKind::zombie) << map.error().message();
}

TEST(AccessIntegration, kthreadd_is_a_kernel_thread) {
    auto facts = xproc::gather_access_facts(2);
    if (!facts || facts->target_comm != "kthreadd") {
        GTEST_SKIP() << "pid 2 is not kthreadd here (a pid namespace?)";
    }
    EXPECT_TRUE(facts->kernel_thread);
    auto v = explain_access(2, AccessMode::read);
    EXPECT_EQ(v.rule, AccessRule::kernel_thread);
    EXPECT_EQ(
        v.reason,
        "process 2 (kthreadd) is a kernel thread: it has no user address space, so its memory map is empty");
    v = explain_access(2, AccessMode::attach);
    EXPECT_EQ(v.rule, AccessRule::kernel_thread);
    EXPECT_EQ(v.to_error("ptrace(PTRACE_SEIZE, 2)", 2, EPERM).kind, ErrorKind::kernel_thread);
}

TEST(AccessIntegration, nonexistent_pid) {
    std::ifstream in("/proc/sys/kernel/pid_max");
    pid_t pid_max = 0;
    in >> pid_max;
    ASSERT_GT(pid_max, 0);  // pids are always below pid_max
    for (AccessMode mode : {AccessMode::read, AccessMode::attach}) {
        const auto v = explain_access(pid_max, mode);
        EXPECT_EQ(v.rule, AccessRule::no_such_process);
        EXPECT_EQ(v.reason, "process " + std::to_string(pid_max) +
                                " does not exist (it exited and was reaped, or never existed)");
    }
    auto facts = xproc::gather_access_facts(pid_max);
    ASSERT_FALSE(facts);
    EXPECT_EQ(facts.error().kind, ErrorKind::no_such_process);
    auto bad = xproc::gather_access_facts(0);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, ErrorKind::invalid_argument);
}

TEST(AccessIntegration, facts_about_ourselves_and_init) {
    auto self = xproc::gather_access_facts(getpid());
    ASSERT_TRUE(self) << self.error().message();
    EXPECT_EQ(self->caller_pid, getpid());
    EXPECT_EQ(self->caller.euid, geteuid());
    EXPECT_TRUE(self->same_user_namespace);
    EXPECT_EQ(self->caller_exe, self_exe());
    EXPECT_FALSE(self->caller_user_namespace.empty());
    std::ifstream yama("/proc/sys/kernel/yama/ptrace_scope");
    EXPECT_EQ(self->yama_ptrace_scope.has_value(), yama.good());
    EXPECT_TRUE(explain_access(getpid(), AccessMode::attach).allowed());

    auto init = xproc::gather_access_facts(1);
    ASSERT_TRUE(init) << init.error().message();
    EXPECT_FALSE(init->caller_is_ancestor);
    EXPECT_FALSE(init->zombie);
    EXPECT_FALSE(init->kernel_thread);
}

}  // namespace
