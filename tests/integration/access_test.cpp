// SPDX-License-Identifier: MIT
// explain_access() against what the kernel really does: a privilege-dropped
// reader, a non-dumpable target, an existing tracer, a zombie, a kernel thread
// and a pid that does not exist. Needs root to drop privileges (CI runs as root).

#include "xproc/access.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "child.hpp"
#include "xproc/maps.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;
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

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t nl = text.find('\n', start);
        lines.push_back(text.substr(start, nl - start));
        start = nl == std::string::npos ? text.size() : nl + 1;
    }
    return lines;
}

bool has_line(const std::string& text, const std::string& line) {
    for (const std::string& l : split_lines(text)) {
        if (l == line) {
            return true;
        }
    }
    return false;
}

std::string tracer_comm(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string comm;
    std::getline(in, comm);
    return comm;
}

/// The start of the first readable mapping of `pid` (read as root), 0 if none.
std::uint64_t first_readable_address(pid_t pid) {
    auto map = xproc::read_maps(pid);
    if (!map) {
        return 0;
    }
    for (const xproc::Mapping& m : *map) {
        if (m.perms.read && m.name != "[vvar]" && m.name != "[vsyscall]") {
            return m.start;
        }
    }
    return 0;
}

/// process_vm_readv of one byte: "ok" or the errno name.
std::string read_one_byte(pid_t pid, std::uint64_t address) {
    char byte = 0;
    iovec local{&byte, 1};
    iovec remote{reinterpret_cast<void*>(address), 1};
    return process_vm_readv(pid, &local, 1, &remote, 1, 0) == 1 ? "ok" : strerrorname_np(errno);
}

/// open(2) of /proc/PID/mem for reading: "ok" or the errno name.
std::string open_proc_mem(pid_t pid) {
    const int fd = open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return strerrorname_np(errno);
    }
    close(fd);
    return "ok";
}

/// What a forked child reported: its exit code and the lines it wrote.
struct Report {
    int exit_code = -1;
    std::vector<std::string> lines;
    /// The lines, each ended by a newline (for has_line and HasSubstr).
    std::string text() const {
        std::string all;
        for (const std::string& l : lines) {
            all += l + "\n";
        }
        return all;
    }
};

/// Runs `body` in a forked child after `setup` (which returns false when it could not
/// do its part); the child writes the lines `body` returns to a pipe and exits 0 (3 when
/// `setup` failed). The parent collects both, so the checks run in the parent.
template <typename Setup, typename Body>
Report run_in_child(Setup setup, Body body) {
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
        if (!setup()) {
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

/// `body` in a forked child that first drops to uid 65534 (see run_in_child).
template <typename Body>
Report run_as_nobody(Body body) {
    return run_in_child(drop_to_nobody, body);
}

/// Landlock's ABI version, 0 when the kernel has no Landlock or it is disabled.
int landlock_abi() {
    const long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return abi > 0 ? static_cast<int>(abi) : 0;
}

/// Enters a Landlock domain that restricts nothing we use (it handles only making
/// directories): what changes is that, as for any Landlock domain, we may no longer trace or
/// read the memory of a process outside it.
bool enter_landlock_domain() {
    struct landlock_ruleset_attr attr {};
    attr.handled_access_fs = LANDLOCK_ACCESS_FS_MAKE_DIR;
    const int ruleset = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0));
    if (ruleset < 0) {
        return false;
    }
    const bool ok =
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) == 0;
    close(ruleset);
    return ok;
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

    const auto v = explain_access(pid, AccessMode::ptrace_attach);
    EXPECT_EQ(v.rule, AccessRule::already_traced);
    const std::string t = std::to_string(tracer);
    EXPECT_THAT(v.reason, HasSubstr("is already traced by PID " + t + " ("));
    EXPECT_THAT(v.reason, HasSubstr("a process can have only one tracer"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("detach the other tracer, PID " + t));
    EXPECT_THAT(v.how_to_allow, HasSubstr("kill " + t));
    // Reading the map and the memory does not need the tracer slot.
    EXPECT_TRUE(explain_access(pid, AccessMode::read).allowed());
    EXPECT_TRUE(explain_access(pid, AccessMode::attach).allowed());
    EXPECT_TRUE(explain_access(pid, AccessMode::proc_mem).allowed());

    // The report names the tracer by pid and command in both modes, refusing only ptrace.
    const std::string comm = tracer_comm(tracer);
    ASSERT_FALSE(comm.empty());
    const auto attach_report = xproc::explain_access_all(pid, AccessMode::attach);
    EXPECT_TRUE(attach_report.verdict.allowed()) << attach_report.text();
    EXPECT_TRUE(has_line(attach_report.text(), "  ok       tracer: traced by PID " + t + " (" + comm +
                                                   ") — memory access does not need the tracer slot"))
        << attach_report.text();
    const auto ptrace_report = xproc::explain_access_all(pid, AccessMode::ptrace_attach);
    EXPECT_EQ(ptrace_report.verdict.rule, AccessRule::already_traced);
    EXPECT_TRUE(has_line(ptrace_report.text(),
                         "  REFUSES  tracer: traced by PID " + t + " (" + comm + ") — one tracer at a time"))
        << ptrace_report.text();
    std::size_t refusals = 0;
    for (const auto& rule : attach_report.rules) {
        refusals += rule.allowed() ? 0 : 1;
    }
    EXPECT_EQ(refusals, 0u);

    // The kernel agrees: the memory can be read while traced, but a second seize fails.
    EXPECT_EQ(read_one_byte(pid, first_readable_address(pid)), "ok");
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
    EXPECT_EQ(self->caller_file_caps.has_value(),
              xproc::read_file_capabilities(self_exe().c_str()).has_value());
    ASSERT_TRUE(self->proc_mem.has_value());
    EXPECT_EQ(self->proc_mem->mode, 0600u);
    EXPECT_EQ(self->proc_mem->uid, geteuid());

    auto init = xproc::gather_access_facts(1);
    ASSERT_TRUE(init) << init.error().message();
    EXPECT_FALSE(init->caller_is_ancestor);
    EXPECT_FALSE(init->zombie);
    EXPECT_FALSE(init->kernel_thread);
}

// ---------------------------------------------------------------------------
// explain_access_all(): the whole report, against what the kernel does

TEST(AccessReportIntegration, nobody_is_refused_a_root_process_by_the_uid_rule) {
    REQUIRE_ROOT();
    xproc::test::Child target({xproc::test::target_path("sleeper")});
    ASSERT_TRUE(target.wait_for_line());
    const pid_t pid = target.pid();
    const std::uint64_t address = first_readable_address(pid);
    ASSERT_NE(address, 0u);

    const Report r = run_as_nobody([pid, address] {
        std::vector<std::string> out;
        const auto attach = xproc::explain_access_all(pid, AccessMode::attach);
        out.push_back(std::string(xproc::to_string(attach.verdict.rule)));
        out.push_back(std::string(xproc::to_string(explain_access(pid, AccessMode::ptrace_attach).rule)));
        out.push_back(std::string(xproc::to_string(explain_access(pid, AccessMode::proc_mem).rule)));
        out.push_back(read_one_byte(pid, address));
        out.push_back(open_proc_mem(pid));
        out.push_back(ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) == 0 ? "ok" : strerrorname_np(errno));
        out.push_back(std::to_string(getpid()));
        for (const std::string& line : split_lines(attach.text())) {
            out.push_back(line);
        }
        return out;
    });
    ASSERT_EQ(r.exit_code, 0);
    ASSERT_GE(r.lines.size(), 8u);
    EXPECT_EQ(r.lines[0], "uid_mismatch");
    EXPECT_EQ(r.lines[1], "uid_mismatch");
    EXPECT_EQ(r.lines[2], "proc_mem_permission");  // open(2) checks the file mode first
    EXPECT_EQ(r.lines[3], "EPERM");                // process_vm_readv: the ptrace check
    EXPECT_EQ(r.lines[4], "EACCES");               // open(/proc/PID/mem): the file mode
    EXPECT_EQ(r.lines[5], "EPERM");
    const std::string p = std::to_string(pid);
    const std::vector<std::string> text(r.lines.begin() + 7, r.lines.end());
    const std::vector<std::string> expected = {
        "Access to process " + p +
            " (sleeper) for memory access (PTRACE_MODE_ATTACH_REALCREDS: process_vm_readv; /proc/PID/mem "
            "also "
            "needs its file permission)",
        "Caller: pid " + r.lines[6] + " (" + self_exe() +
            "), uid r/e/s/fs 65534/65534/65534/65534, gid r/e/s/fs 65534/65534/65534/65534, CAP_SYS_PTRACE "
            "in the "
            "target's user namespace: no" +
            (self_no_new_privs() ? ", no_new_privs set" : ""),
        "  ok       process: live user-space process",
        "  REFUSES  uids: caller ruid 65534, target ruid/euid/suid 0/0/0 — mismatch; no CAP_SYS_PTRACE",
        "  REFUSES  gids: caller rgid 65534, target rgid/egid/sgid 0/0/0 — mismatch; no CAP_SYS_PTRACE",
        "  ok       dumpable: yes",
    };
    ASSERT_GE(text.size(), expected.size() + 2);
    for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(text[i], expected[i]) << i;
    }
    EXPECT_TRUE(
        has_line(r.lines.back(),
                 "Verdict: refused by uid_mismatch: process " + p +
                     " (sleeper) runs as uid 0 (real/effective/saved 0/0/0) and you are uid 65534 without "
                     "CAP_SYS_PTRACE. To allow: run as root (`sudo <command>`) or " +
                     setcap_advice() + "."))
        << r.lines.back();
    const std::string report = [&] {
        std::string s;
        for (const std::string& l : text) {
            s += l + "\n";
        }
        return s;
    }();
    EXPECT_TRUE(
        has_line(report, "  REFUSES  /proc/PID/mem: /proc/" + p +
                             "/mem owner 0:0 (root:root) mode 0600; your fsuid 65534 is neither owner nor "
                             "in its group — not readable; no CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE "
                             "(process_vm_readv does not check it)"))
        << report;
    EXPECT_THAT(report, HasSubstr("\n  ok       yama: "));
}

TEST(AccessReportIntegration, nobody_may_access_its_own_child_in_every_mode) {
    REQUIRE_ROOT();
    // Opened as root: the build tree need not be searchable by nobody.
    const int exe = open(xproc::test::target_path("sleeper").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(exe, 0) << std::strerror(errno);
    const Report r = run_as_nobody([exe] {
        std::vector<std::string> out;
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            return std::vector<std::string>{"pipe2 failed"};
        }
        // exec makes the child dumpable again (changing ids made us non-dumpable).
        const pid_t child = fork();
        if (child == 0) {
            dup2(fds[1], STDOUT_FILENO);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            char arg0[] = "sleeper";
            char* argv[] = {arg0, nullptr};
            fexecve(exe, argv, environ);
            _exit(127);
        }
        close(fds[1]);
        char ready[16] = {};
        (void)!read(fds[0], ready, sizeof ready - 1);
        close(fds[0]);
        for (AccessMode mode :
             {AccessMode::read, AccessMode::attach, AccessMode::ptrace_attach, AccessMode::proc_mem}) {
            const auto report = xproc::explain_access_all(child, mode);
            out.push_back(std::string(xproc::to_string(mode)) + " " +
                          std::string(xproc::to_string(report.verdict.rule)));
            if (mode == AccessMode::attach) {
                for (const std::string& line : split_lines(report.text())) {
                    out.push_back(line);
                }
            }
        }
        out.push_back("open " + open_proc_mem(child));
        out.push_back(std::string("seize ") +
                      (ptrace(PTRACE_SEIZE, child, nullptr, nullptr) == 0 ? "ok" : strerrorname_np(errno)));
        kill(child, SIGKILL);
        waitpid(child, nullptr, 0);
        return out;
    });
    close(exe);
    ASSERT_EQ(r.exit_code, 0);
    std::string all = r.text();
    EXPECT_TRUE(has_line(all, "read allowed")) << all;
    EXPECT_TRUE(has_line(all, "attach allowed")) << all;
    EXPECT_TRUE(has_line(all, "ptrace_attach allowed")) << all;
    EXPECT_TRUE(has_line(all, "proc_mem allowed")) << all;
    EXPECT_TRUE(
        has_line(all, "  ok       uids: caller ruid 65534, target ruid/euid/suid 65534/65534/65534 — match"))
        << all;
    EXPECT_TRUE(has_line(all, "  ok       dumpable: yes")) << all;
    EXPECT_THAT(all, HasSubstr("  ok       /proc/PID/mem: /proc/"));
    EXPECT_THAT(all, HasSubstr("mode 0600; your fsuid 65534 is the owner — readable\n"));
    // The rules allow it, so the kernel is asked too, and agrees.
    EXPECT_THAT(all, HasSubstr("  ok       probe: opening /proc/"));
    EXPECT_THAT(all, HasSubstr("/mem passes the kernel's check (PTRACE_MODE_ATTACH)\n"));
    EXPECT_THAT(all, Not(HasSubstr("REFUSES")));
    EXPECT_TRUE(has_line(all, "open ok")) << all;
    EXPECT_TRUE(has_line(all, "seize ok")) << all;
}

TEST(AccessReportIntegration, a_refusal_no_rule_explains_is_put_down_to_a_security_module) {
    if (landlock_abi() == 0) {
        GTEST_SKIP() << "Landlock is not enabled in this kernel (it is the security module used here)";
    }
    // Every ptrace rule allows a root child to read its root parent's memory; a Landlock domain
    // refuses it (PTRACE_MODE_ATTACH on a process outside the domain; reading the maps stays
    // allowed). Only the kernel's own answer shows that.
    const pid_t parent = getpid();
    const std::string p = std::to_string(parent);
    const Report r = run_in_child(enter_landlock_domain, [parent] {
        std::vector<std::string> out;
        for (AccessMode mode : {AccessMode::attach, AccessMode::proc_mem}) {
            const auto report = xproc::explain_access_all(parent, mode);
            out.push_back(std::string(xproc::to_string(mode)) + " " +
                          std::string(xproc::to_string(report.verdict.rule)));
            for (const std::string& line : split_lines(report.text())) {
                out.push_back(line);
            }
        }
        const xproc::Error e =
            explain_access(parent, AccessMode::attach).to_error("read memory", parent, EPERM);
        out.push_back("error " + e.message());
        const xproc::test::RunResult why =
            xproc::test::run({xproc::test::tool_path("xpeek"), "--why", std::to_string(parent)});
        out.push_back("why exit " + std::to_string(why.exit_code));
        for (const std::string& line : split_lines(why.out)) {
            out.push_back("why " + line);
        }
        return out;
    });
    ASSERT_EQ(r.exit_code, 0) << "could not enter a Landlock domain";
    std::string all = r.text();
    EXPECT_TRUE(has_line(all, "attach security_module")) << all;
    EXPECT_TRUE(has_line(all, "proc_mem security_module")) << all;
    EXPECT_TRUE(has_line(all, "  ok       uids: caller ruid 0, target ruid/euid/suid 0/0/0 — match")) << all;
    EXPECT_TRUE(has_line(all, "  REFUSES  probe: opening /proc/" + p +
                                  "/mem is refused (Permission denied) although every rule above allows it"))
        << all;
    EXPECT_THAT(all,
                HasSubstr("Verdict: refused by security_module: every ptrace rule allows it, yet the kernel "
                          "refuses to open /proc/" +
                          p +
                          "/mem: a security module (Landlock, AppArmor, SELinux, a BPF LSM) or a "
                          "sandbox refuses. To allow: look for the denial in the kernel log"));
    EXPECT_THAT(all, HasSubstr("error read memory [pid " + p +
                               "]: every ptrace rule allows it, yet the kernel "
                               "refuses to open /proc/" +
                               p + "/mem"));
    EXPECT_TRUE(has_line(all, "why exit 1")) << all;
    EXPECT_THAT(all, HasSubstr("why Verdict: refused by security_module: "));
    // The parent itself, outside the domain, is allowed by the same rules and the probe.
    const auto self = xproc::explain_access_all(parent, AccessMode::attach);
    EXPECT_EQ(self.verdict.rule, AccessRule::allowed) << self.text();
}

TEST(AccessReportIntegration, non_dumpable_target_is_refused_by_the_dumpable_rule) {
    REQUIRE_ROOT();
    NobodyTarget target("nondumpable");
    ASSERT_TRUE(target.wait_ready());
    const pid_t pid = target.pid();
    const std::uint64_t address = first_readable_address(pid);
    ASSERT_NE(address, 0u);

    const Report r = run_as_nobody([pid, address] {
        std::vector<std::string> out;
        const auto report = xproc::explain_access_all(pid, AccessMode::attach);
        out.push_back(std::string(xproc::to_string(report.verdict.rule)));
        out.push_back(read_one_byte(pid, address));
        out.push_back(open_proc_mem(pid));
        for (const std::string& line : split_lines(report.text())) {
            out.push_back(line);
        }
        return out;
    });
    ASSERT_EQ(r.exit_code, 0);
    ASSERT_GE(r.lines.size(), 3u);
    EXPECT_EQ(r.lines[0], "not_dumpable");
    EXPECT_EQ(r.lines[1], "EPERM");
    EXPECT_EQ(r.lines[2], "EACCES");
    std::string all = r.text();
    EXPECT_TRUE(
        has_line(all, "  ok       uids: caller ruid 65534, target ruid/euid/suid 65534/65534/65534 — match"))
        << all;
    EXPECT_TRUE(has_line(all, "  REFUSES  dumpable: no (its /proc files belong to root) — no CAP_SYS_PTRACE"))
        << all;
    // A non-dumpable process's /proc/PID/mem belongs to root.
    EXPECT_THAT(all, HasSubstr("  REFUSES  /proc/PID/mem: /proc/" + std::to_string(pid) +
                               "/mem owner 0:0 (root:root)"));
    EXPECT_THAT(all, HasSubstr("\nVerdict: refused by not_dumpable: process " + std::to_string(pid) +
                               " (nondumpable) is not dumpable"));
}

/// A temporary directory, removed with its contents by the destructor.
class TempDir {
  public:
    TempDir() {
        std::string templ = (std::filesystem::temp_directory_path() / "xproc-access-XXXXXX").string();
        if (mkdtemp(templ.data()) != nullptr) {
            m_path = templ;
        }
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        if (!m_path.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(m_path, ec);
        }
    }
    const std::filesystem::path& path() const { return m_path; }

  private:
    std::filesystem::path m_path;
};

constexpr const char* HELPER_PID_ENV = "XPROC_ACCESS_HELPER_PID";
constexpr const char* HELPER_ADDRESS_ENV = "XPROC_ACCESS_HELPER_ADDRESS";
constexpr int HELPER_FD = 3;

/// Not a test: the body of the helper that no_new_privs_withholds_a_file_capability runs
/// from a copy of this binary that carries a file capability. Writes the attach report
/// about $XPROC_ACCESS_HELPER_PID and what the kernel did to fd 3.
TEST(AccessIntegrationHelper, DISABLED_report_to_fd_3) {
    const char* pid_text = std::getenv(HELPER_PID_ENV);
    const char* address_text = std::getenv(HELPER_ADDRESS_ENV);
    if (pid_text == nullptr || address_text == nullptr) {
        GTEST_SKIP() << "runs only as the helper of no_new_privs_withholds_a_file_capability";
    }
    const pid_t pid = static_cast<pid_t>(std::strtol(pid_text, nullptr, 10));
    const std::uint64_t address = std::strtoull(address_text, nullptr, 16);
    std::string out = xproc::explain_access_all(pid, AccessMode::attach).text();
    out += "process_vm_readv " + read_one_byte(pid, address) + "\n";
    out += "open " + open_proc_mem(pid) + "\n";
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = write(HELPER_FD, out.data() + done, out.size() - done);
        ASSERT_GT(n, 0) << std::strerror(errno);
        done += static_cast<std::size_t>(n);
    }
}

/// Runs the helper copy `exe` as uid 65534, with no_new_privs if asked; returns its fd 3 output.
Report run_helper(const std::string& exe, pid_t target, std::uint64_t address, bool no_new_privs) {
    Report report;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe2: " << std::strerror(errno);
        return report;
    }
    char address_text[32];
    std::snprintf(address_text, sizeof address_text, "%" PRIx64, address);
    const std::string pid_text = std::to_string(target);
    const pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fds[1] == HELPER_FD) {
            fcntl(HELPER_FD, F_SETFD, 0);
        } else if (dup2(fds[1], HELPER_FD) != HELPER_FD) {
            _exit(5);
        }
        const int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDOUT_FILENO);  // gtest's own chatter
        setenv(HELPER_PID_ENV, pid_text.c_str(), 1);
        setenv(HELPER_ADDRESS_ENV, address_text, 1);
        if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
            _exit(6);
        }
        if (!drop_to_nobody()) {
            _exit(3);
        }
        execl(exe.c_str(), exe.c_str(), "--gtest_also_run_disabled_tests",
              "--gtest_filter=AccessIntegrationHelper.DISABLED_report_to_fd_3", static_cast<char*>(nullptr));
        _exit(127);
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
    report.lines = split_lines(text);
    return report;
}

TEST(AccessReportIntegration, no_new_privs_withholds_a_file_capability) {
    REQUIRE_ROOT();
    if (std::system("command -v setcap >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "setcap is not installed: scripts/install-deps.sh must install libcap2-bin";
    }
    TempDir dir;
    ASSERT_FALSE(dir.path().empty()) << "mkdtemp: " << std::strerror(errno);
    const std::string exe = (dir.path() / "xpeek-helper").string();
    std::error_code ec;
    std::filesystem::copy_file(self_exe(), exe, ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
    ASSERT_EQ(chmod(exe.c_str(), 0755), 0);
    EXPECT_FALSE(xproc::read_file_capabilities(exe.c_str()).has_value());
    if (std::system(("setcap cap_sys_ptrace+ep '" + exe + "'").c_str()) != 0) {
        GTEST_SKIP() << "setcap cap_sys_ptrace+ep failed on " << exe
                     << " (a file system without security xattrs?)";
    }
    const auto caps = xproc::read_file_capabilities(exe.c_str());
    ASSERT_TRUE(caps.has_value());
    EXPECT_EQ(caps->permitted, std::uint64_t{1} << 19);
    EXPECT_TRUE(caps->effective);

    xproc::test::Child target({xproc::test::target_path("sleeper")});
    ASSERT_TRUE(target.wait_for_line());
    const pid_t pid = target.pid();
    const std::uint64_t address = first_readable_address(pid);
    ASSERT_NE(address, 0u);
    const std::string p = std::to_string(pid);

    // With no_new_privs, exec does not grant the file capability: refused, and the report says why.
    Report r = run_helper(exe, pid, address, true);
    std::string all = r.text();
    ASSERT_EQ(r.exit_code, 0) << all;
    EXPECT_TRUE(
        has_line(all, "  REFUSES  file caps: " + exe +
                          " has file capabilities cap_sys_ptrace+ep, but no_new_privs is set, so exec did "
                          "not grant cap_sys_ptrace — you run without CAP_SYS_PTRACE"))
        << all;
    EXPECT_TRUE(has_line(all,
                         "  REFUSES  uids: caller ruid 65534, target ruid/euid/suid 0/0/0 — mismatch; no "
                         "CAP_SYS_PTRACE"))
        << all;
    EXPECT_THAT(all, HasSubstr(", CAP_SYS_PTRACE in the target's user namespace: no, no_new_privs set\n"));
    EXPECT_THAT(all, HasSubstr("\nVerdict: refused by uid_mismatch: process " + p +
                               " (sleeper) runs as uid 0 (real/effective/saved 0/0/0) and you are uid 65534 "
                               "without CAP_SYS_PTRACE. To allow: run the tool without no_new_privs"));
    EXPECT_TRUE(has_line(all, "process_vm_readv EPERM")) << all;

    // Without it, the same file capability is granted: memory access works, and only the
    // root-owned /proc/PID/mem still refuses (CAP_SYS_PTRACE does not override file modes).
    r = run_helper(exe, pid, address, false);
    all = r.text();
    ASSERT_EQ(r.exit_code, 0) << all;
    EXPECT_TRUE(has_line(all, "  ok       file caps: " + exe +
                                  " has file capabilities cap_sys_ptrace+ep; no_new_privs is not set"))
        << all;
    EXPECT_TRUE(has_line(all,
                         "  ok       uids: caller ruid 65534, target ruid/euid/suid 0/0/0 — mismatch; "
                         "CAP_SYS_PTRACE overrides"))
        << all;
    EXPECT_TRUE(
        has_line(all, "Verdict: allowed: nothing refuses: you have CAP_SYS_PTRACE over process " + p +
                          " (sleeper); but /proc/" + p +
                          "/mem refuses you (its file permission), so only process_vm_readv can read the "
                          "memory"))
        << all;
    EXPECT_TRUE(has_line(all, "process_vm_readv ok")) << all;
    EXPECT_TRUE(has_line(all, "open EACCES")) << all;
}

TEST(AccessReportIntegration, ptrace_attach_to_ourselves_is_refused) {
    const auto report = xproc::explain_access_all(getpid(), AccessMode::ptrace_attach);
    EXPECT_EQ(report.verdict.rule, AccessRule::own_process);
    EXPECT_EQ(ptrace(PTRACE_SEIZE, getpid(), nullptr, nullptr), -1);  // the kernel agrees
    EXPECT_EQ(errno, EPERM);
    EXPECT_TRUE(xproc::explain_access_all(getpid(), AccessMode::attach).verdict.allowed());
}

TEST(AccessReportIntegration, missing_process_report) {
    std::ifstream in("/proc/sys/kernel/pid_max");
    pid_t pid_max = 0;
    in >> pid_max;
    ASSERT_GT(pid_max, 0);
    const auto report = xproc::explain_access_all(pid_max, AccessMode::ptrace_attach);
    EXPECT_EQ(report.verdict.rule, AccessRule::no_such_process);
    ASSERT_EQ(report.rules.size(), 1u);
    EXPECT_EQ(report.text(),
              "Access to process " + std::to_string(pid_max) +
                  " for ptrace attach (PTRACE_ATTACH/PTRACE_SEIZE: PTRACE_MODE_ATTACH_REALCREDS, one "
                  "tracer at a time)\n  REFUSES  process: no such process\nVerdict: refused by "
                  "no_such_process: process " +
                  std::to_string(pid_max) +
                  " does not exist (it exited and was reaped, or never existed). To allow: check the "
                  "pid (e.g. `ps -p " +
                  std::to_string(pid_max) + "`); it may have exited.\n");
}

}  // namespace
