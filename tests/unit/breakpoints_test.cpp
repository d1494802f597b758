// SPDX-License-Identifier: MIT
// Breakpoints and watchpoints on a real process (tests/targets/bp_target.c).
#include "xproc/breakpoints.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "child.hpp"
#include "debug_registers.hpp"
#include "xproc/memory.hpp"
#include "xproc/symbols.hpp"
#include "xproc/tracer.hpp"

namespace xproc {
namespace {

using namespace std::chrono_literals;

/// bp_target as a child: stdout lines read with a timeout (a broken target fails the test
/// instead of hanging it); killed and reaped at the end.
class Target {
  public:
    explicit Target(std::vector<std::string> args) {
        args.insert(args.begin(), test::target_path("bp_target"));
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            ADD_FAILURE() << "pipe2: " << std::strerror(errno);
            return;
        }
        m_pid = fork();
        if (m_pid == 0) {
            // Dies with the test even when the test process is killed before its destructors.
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            dup2(fds[1], STDOUT_FILENO);
            std::vector<char*> argv;
            for (auto& a : args) {
                argv.push_back(a.data());
            }
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            _exit(127);
        }
        close(fds[1]);
        m_fd = fds[0];
    }
    ~Target() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            int status = 0;
            while (waitpid(m_pid, &status, __WALL) < 0 && errno == EINTR) {
            }
        }
        if (m_fd >= 0) {
            close(m_fd);
        }
    }
    Target(const Target&) = delete;
    Target& operator=(const Target&) = delete;

    pid_t pid() const { return m_pid; }

    /// The next stdout line (without '\n'), or nullopt after `timeout`/EOF.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout = 5s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto nl = m_buf.find('\n'); nl != std::string::npos) {
                std::string line = m_buf.substr(0, nl);
                m_buf.erase(0, nl + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return std::nullopt;
            }
            pollfd p{m_fd, POLLIN, 0};
            const int r = poll(&p, 1, static_cast<int>(left.count()));
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                return std::nullopt;
            }
            char chunk[256];
            const ssize_t n = read(m_fd, chunk, sizeof chunk);
            if (n <= 0) {
                return std::nullopt;
            }
            m_buf.append(chunk, static_cast<std::size_t>(n));
        }
    }
    bool wait_ready() {
        auto line = read_line();
        return line && *line == "ready";
    }
    /// Not attached any more: SIGUSR1 must give "ok <counter>" (the target still computes).
    /// Returns the counter, or -1.
    long ask_ok() {
        if (::kill(m_pid, SIGUSR1) != 0) {
            return -1;
        }
        for (;;) {
            auto line = read_line();
            if (!line) {
                return -1;
            }
            if (line->rfind("ok ", 0) == 0) {
                return std::stol(line->substr(3));
            }
        }
    }
    /// Still running (not exited with 42 after an ARITHMETIC ERROR). Only when not traced.
    bool alive() {
        int status = 0;
        return waitpid(m_pid, &status, WNOHANG) == 0;
    }

  private:
    pid_t m_pid = -1;
    int m_fd = -1;
    std::string m_buf;
};

std::uint64_t symbol(pid_t pid, std::string_view name) {
    auto table = SymbolTable::load(pid);
    EXPECT_TRUE(table.has_value()) << (table ? "" : table.error().message());
    if (!table) {
        return 0;
    }
    auto a = table->lookup(name);
    EXPECT_TRUE(a.has_value()) << name;
    return a.value_or(0);
}

std::vector<std::byte> read_bytes(pid_t pid, std::uint64_t address, std::size_t n) {
    std::vector<std::byte> out(n);
    auto mem = RemoteMemory::open(pid);
    EXPECT_TRUE(mem.has_value());
    if (mem) {
        auto t = mem->read(address, out);
        EXPECT_TRUE(t && t->complete());
    }
    return out;
}

std::vector<std::byte> read_bytes(Attachment& att, std::uint64_t address, std::size_t n) {
    std::vector<std::byte> out(n);
    auto t = att.memory().read(address, out);
    EXPECT_TRUE(t && t->complete());
    return out;
}

std::unique_ptr<Attachment> seize_stopped(pid_t pid) {
    AttachOptions o;
    o.stop = true;
    auto att = Attachment::seize(pid, o);
    // Seizing a target whose threads come and go (--churn) can fail transiently (a thread
    // exiting under PTRACE_SEIZE gives EPERM); that is the Attachment's business, not what
    // these tests are about: try again a few times.
    for (int i = 0; i < 5 && !att; ++i) {
        usleep(10'000);
        att = Attachment::seize(pid, o);
    }
    EXPECT_TRUE(att.has_value()) << (att ? "" : att.error().message());
    return att ? std::move(*att) : nullptr;
}

/// The next event, within a bounded time (a bug fails instead of hanging).
StopEvent next_event(Attachment& att, std::chrono::milliseconds timeout = 5s) {
    auto ev = att.wait(timeout);
    EXPECT_TRUE(ev.has_value()) << (ev ? "" : ev.error().message());
    if (!ev || !*ev) {
        ADD_FAILURE() << "no event within " << timeout.count() << " ms";
        StopEvent none;
        none.kind = StopKind::killed;
        return none;
    }
    return std::move(**ev);
}

std::uint64_t pc_of(Attachment& att, pid_t tid) {
    auto regs = att.registers(tid);
    EXPECT_TRUE(regs.has_value()) << (regs ? "" : regs.error().message());
    return regs ? regs->pc() : 0;
}

constexpr std::byte INT3{0xCC};

TEST(Breakpoints, software_breakpoint_is_hit_counted_and_original_byte_restored) {
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    ASSERT_NE(work, 0u);
    const auto original = read_bytes(target.pid(), work, 16);
    {
        auto att = seize_stopped(target.pid());
        ASSERT_TRUE(att);
        auto id = att->breakpoints().add_breakpoint(work, {.software_only = true});
        ASSERT_TRUE(id.has_value()) << id.error().message();
        const Breakpoint* bp = att->breakpoints().find(*id);
        ASSERT_NE(bp, nullptr);
        EXPECT_FALSE(bp->hardware);
        EXPECT_EQ(bp->address, work);
        auto patched = read_bytes(*att, work, 16);
        EXPECT_EQ(patched[0], INT3);
        // unpatch shows the program's own bytes.
        att->breakpoints().unpatch(work, patched);
        EXPECT_EQ(patched, original);

        for (int i = 0; i < 5; ++i) {
            ASSERT_TRUE(att->resume_all().has_value());
            StopEvent ev = next_event(*att);
            ASSERT_EQ(ev.kind, StopKind::breakpoint) << to_string(ev.kind);
            EXPECT_EQ(ev.breakpoints, std::vector<int>{*id});
            EXPECT_EQ(pc_of(*att, ev.tid), work);  // rewound onto the breakpoint
        }
        EXPECT_EQ(att->breakpoints().find(*id)->hits, 5u);

        ASSERT_TRUE(att->breakpoints().remove(*id).has_value());
        EXPECT_EQ(att->breakpoints().find(*id), nullptr);
        EXPECT_EQ(read_bytes(*att, work, 16), original);

        // Inserted again and left for the destructor to remove, with the thread on it.
        auto again = att->breakpoints().add_breakpoint(work, {.software_only = true});
        ASSERT_TRUE(again.has_value());
        EXPECT_GT(*again, *id);  // ids are not reused
        ASSERT_TRUE(att->resume_all().has_value());
        StopEvent ev = next_event(*att);
        ASSERT_EQ(ev.kind, StopKind::breakpoint);
    }
    EXPECT_EQ(read_bytes(target.pid(), work, 16), original);
    EXPECT_GE(target.ask_ok(), 0);
    EXPECT_TRUE(target.alive());
}

TEST(Breakpoints, hardware_breakpoint_is_used_first_and_leaves_text_unchanged) {
    SKIP_WITHOUT_DEBUG_REGISTERS();
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    const auto original = read_bytes(target.pid(), work, 16);
    {
        auto att = seize_stopped(target.pid());
        ASSERT_TRUE(att);
        auto id = att->breakpoints().add_breakpoint(work);
        ASSERT_TRUE(id.has_value()) << id.error().message();
        const Breakpoint* bp = att->breakpoints().find(*id);
        ASSERT_NE(bp, nullptr);
        EXPECT_TRUE(bp->hardware);
        EXPECT_GE(bp->slot, 0);
        EXPECT_LT(bp->slot, 4);
        EXPECT_EQ(read_bytes(*att, work, 16), original);
        for (int i = 0; i < 4; ++i) {
            ASSERT_TRUE(att->resume_all().has_value());
            StopEvent ev = next_event(*att);
            ASSERT_EQ(ev.kind, StopKind::breakpoint) << to_string(ev.kind);
            EXPECT_EQ(ev.breakpoints, std::vector<int>{*id});
            EXPECT_EQ(pc_of(*att, ev.tid), work);
            EXPECT_EQ(read_bytes(*att, work, 16), original);
        }
        EXPECT_EQ(att->breakpoints().find(*id)->hits, 4u);
    }
    EXPECT_EQ(read_bytes(target.pid(), work, 16), original);
    EXPECT_GE(target.ask_ok(), 0);
}

TEST(Breakpoints, falls_back_to_int3_when_the_four_debug_registers_are_taken) {
    SKIP_WITHOUT_DEBUG_REGISTERS();
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const pid_t pid = target.pid();
    const std::uint64_t work = symbol(pid, "bp_work");
    const std::uint64_t leaf = symbol(pid, "bp_leaf");
    const std::uint64_t churn = symbol(pid, "bp_churn_fn");
    const std::uint64_t main_fn = symbol(pid, "main");
    const std::uint64_t usr1 = symbol(pid, "on_usr1");
    const auto original = read_bytes(pid, work, 16);
    auto att = seize_stopped(pid);
    ASSERT_TRUE(att);
    auto& bps = att->breakpoints();
    std::vector<int> hw;
    for (std::uint64_t a : {leaf, churn, main_fn, usr1}) {
        auto id = bps.add_breakpoint(a);
        ASSERT_TRUE(id.has_value()) << id.error().message();
        EXPECT_TRUE(bps.find(*id)->hardware);
        hw.push_back(*id);
    }
    std::set<int> slots;
    for (int id : hw) {
        slots.insert(bps.find(id)->slot);
    }
    EXPECT_EQ(slots.size(), 4u);

    // hbreak: refused clearly.
    auto refused = bps.add_breakpoint(work, {.hardware_only = true});
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().kind, ErrorKind::invalid_argument);
    EXPECT_NE(refused.error().message().find("no free hardware debug register"), std::string::npos)
        << refused.error().message();
    // A watchpoint too.
    auto no_watch = bps.add_watchpoint(symbol(pid, "bp_counter"), 8, BreakpointType::watch_write);
    ASSERT_FALSE(no_watch.has_value());
    EXPECT_EQ(no_watch.error().kind, ErrorKind::invalid_argument);

    // break: falls back to int3.
    auto sw = bps.add_breakpoint(work);
    ASSERT_TRUE(sw.has_value()) << sw.error().message();
    EXPECT_FALSE(bps.find(*sw)->hardware);
    EXPECT_EQ(bps.find(*sw)->slot, -1);
    EXPECT_EQ(read_bytes(*att, work, 1)[0], INT3);
    ASSERT_TRUE(att->resume_all().has_value());
    StopEvent ev = next_event(*att);
    ASSERT_EQ(ev.kind, StopKind::breakpoint);
    // bp_work runs first, then bp_leaf (hardware): both are reported in turn.
    EXPECT_EQ(ev.breakpoints, std::vector<int>{*sw});
    ASSERT_TRUE(att->resume_all().has_value());
    ev = next_event(*att);
    ASSERT_EQ(ev.kind, StopKind::breakpoint);
    EXPECT_EQ(ev.breakpoints, std::vector<int>{hw[0]});
    EXPECT_EQ(pc_of(*att, ev.tid), leaf);

    // A freed register serves the next hbreak.
    ASSERT_TRUE(bps.remove(hw[1]).has_value());
    auto hb = bps.add_breakpoint(churn, {.hardware_only = true});
    ASSERT_TRUE(hb.has_value()) << hb.error().message();
    EXPECT_TRUE(bps.find(*hb)->hardware);

    ASSERT_TRUE(att->detach().has_value());
    EXPECT_EQ(read_bytes(pid, work, 16), original);
    EXPECT_GE(target.ask_ok(), 0);
}

TEST(Breakpoints, write_watchpoint_reports_old_and_new_value) {
    SKIP_WITHOUT_DEBUG_REGISTERS();
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t counter = symbol(target.pid(), "bp_counter");
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto id = att->breakpoints().add_watchpoint(counter, 8, BreakpointType::watch_write);
    ASSERT_TRUE(id.has_value()) << id.error().message();
    std::uint64_t previous = att->breakpoints().find(*id)->new_value;
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(att->resume_all().has_value());
        StopEvent ev = next_event(*att);
        ASSERT_EQ(ev.kind, StopKind::watchpoint) << to_string(ev.kind);
        EXPECT_EQ(ev.breakpoints, std::vector<int>{*id});
        EXPECT_EQ(ev.watch_address, counter);
        const Breakpoint* bp = att->breakpoints().find(*id);
        EXPECT_EQ(bp->old_value, previous);
        EXPECT_EQ(bp->new_value, previous + 1);
        auto now = att->memory().read_value<std::uint64_t>(counter);
        ASSERT_TRUE(now.has_value());
        EXPECT_EQ(*now, bp->new_value);
        previous = bp->new_value;
    }
    EXPECT_EQ(att->breakpoints().find(*id)->hits, 3u);
}

TEST(Breakpoints, access_watchpoint_reports_every_access) {
    SKIP_WITHOUT_DEBUG_REGISTERS();
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t counter = symbol(target.pid(), "bp_counter");
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto id = att->breakpoints().add_watchpoint(counter, 8, BreakpointType::watch_access);
    ASSERT_TRUE(id.has_value()) << id.error().message();
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(att->resume_all().has_value());
        StopEvent ev = next_event(*att);
        ASSERT_EQ(ev.kind, StopKind::watchpoint) << to_string(ev.kind);
        EXPECT_EQ(ev.watch_address, counter);
        const Breakpoint* bp = att->breakpoints().find(*id);
        EXPECT_EQ(bp->new_value, bp->old_value + 1);  // the lock add reads and writes
    }
}

TEST(Breakpoints, read_watchpoint_reports_reads) {
    SKIP_WITHOUT_DEBUG_REGISTERS();
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t read_me = symbol(target.pid(), "bp_read_me");
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto id = att->breakpoints().add_watchpoint(read_me, 8, BreakpointType::watch_read);
    ASSERT_TRUE(id.has_value()) << id.error().message();
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(att->resume_all().has_value());
        StopEvent ev = next_event(*att);
        ASSERT_EQ(ev.kind, StopKind::watchpoint) << to_string(ev.kind);
        EXPECT_EQ(ev.watch_address, read_me);
        const Breakpoint* bp = att->breakpoints().find(*id);
        EXPECT_EQ(bp->old_value, 12345u);
        EXPECT_EQ(bp->new_value, 12345u);
    }
    EXPECT_EQ(att->breakpoints().find(*id)->hits, 3u);
}

TEST(Breakpoints, read_watchpoint_does_not_report_writes_that_change_the_value) {
    SKIP_WITHOUT_DEBUG_REGISTERS();
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t counter = symbol(target.pid(), "bp_counter");
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto before = att->memory().read_value<std::uint64_t>(counter);
    ASSERT_TRUE(before.has_value());
    auto id = att->breakpoints().add_watchpoint(counter, 8, BreakpointType::watch_read);
    ASSERT_TRUE(id.has_value()) << id.error().message();
    ASSERT_TRUE(att->resume_all().has_value());
    // bp_counter is only ever incremented: every trigger changes it, so none is a read.
    auto ev = att->wait(300ms);
    ASSERT_TRUE(ev.has_value());
    EXPECT_FALSE(ev->has_value()) << to_string((*ev)->kind);
    ASSERT_TRUE(att->stop_all().has_value());
    auto after = att->memory().read_value<std::uint64_t>(counter);
    ASSERT_TRUE(after.has_value());
    EXPECT_GT(*after, *before + 10);  // it ran meanwhile
    EXPECT_EQ(att->breakpoints().find(*id)->hits, 0u);
}

TEST(Breakpoints, watchpoint_arguments_are_checked) {
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t counter = symbol(target.pid(), "bp_counter");
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto& bps = att->breakpoints();
    EXPECT_EQ(bps.add_watchpoint(counter, 3, BreakpointType::watch_write).error().kind,
              ErrorKind::invalid_argument);
    EXPECT_EQ(bps.add_watchpoint(counter + 2, 4, BreakpointType::watch_write).error().kind,
              ErrorKind::invalid_argument);
    EXPECT_EQ(bps.add_watchpoint(counter, 8, BreakpointType::breakpoint).error().kind,
              ErrorKind::invalid_argument);
    // A breakpoint on data is refused: not executable.
    auto on_data = bps.add_breakpoint(counter);
    ASSERT_FALSE(on_data.has_value());
    EXPECT_EQ(on_data.error().kind, ErrorKind::invalid_argument);
    EXPECT_TRUE(bps.list().empty());
    EXPECT_EQ(bps.remove(99).error().kind, ErrorKind::invalid_argument);
}

TEST(Breakpoints, without_working_debug_registers_break_uses_int3_and_hbreak_and_watch_say_why) {
    // XPROC_HW_BREAKPOINTS=0 stands in for a machine whose debug registers raise no trap.
    ASSERT_EQ(::setenv("XPROC_HW_BREAKPOINTS", "0", 1), 0);
    struct Unset {
        ~Unset() { ::unsetenv("XPROC_HW_BREAKPOINTS"); }
    } unset;
    EXPECT_FALSE(xproc::hardware_breakpoints_work());
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    const std::uint64_t counter = symbol(target.pid(), "bp_counter");
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto& bps = att->breakpoints();
    auto hw = bps.add_breakpoint(work, {.hardware_only = true});
    ASSERT_FALSE(hw.has_value());
    EXPECT_EQ(hw.error().kind, ErrorKind::not_supported);
    EXPECT_NE(hw.error().message().find("hardware breakpoints are turned off (XPROC_HW_BREAKPOINTS=0)"),
              std::string::npos)
        << hw.error().message();
    auto watch = bps.add_watchpoint(counter, 8, BreakpointType::watch_write);
    ASSERT_FALSE(watch.has_value());
    EXPECT_EQ(watch.error().kind, ErrorKind::not_supported);
    EXPECT_NE(watch.error().message().find("hardware watchpoints are turned off"), std::string::npos)
        << watch.error().message();
    auto id = bps.add_breakpoint(work);  // int3, and it is hit
    ASSERT_TRUE(id.has_value()) << id.error().message();
    EXPECT_FALSE(bps.find(*id)->hardware);
    EXPECT_EQ(read_bytes(*att, work, 1)[0], INT3);
    ASSERT_TRUE(att->resume_all().has_value());
    StopEvent ev = next_event(*att);
    EXPECT_EQ(ev.kind, StopKind::breakpoint);
    EXPECT_EQ(bps.find(*id)->hits, 1u);
}

class BreakpointsBoth : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        if (GetParam()) {
            SKIP_WITHOUT_DEBUG_REGISTERS();
        }
    }
    BreakpointOptions options() const {
        BreakpointOptions o;
        o.software_only = !GetParam();
        o.hardware_only = GetParam();
        return o;
    }
};

TEST_P(BreakpointsBoth, ignore_count_skips_that_many_hits) {
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto id = att->breakpoints().add_breakpoint(work, options());
    ASSERT_TRUE(id.has_value()) << id.error().message();
    ASSERT_TRUE(att->breakpoints().set_ignore_count(*id, 3).has_value());
    ASSERT_TRUE(att->resume_all().has_value());
    StopEvent ev = next_event(*att);
    ASSERT_EQ(ev.kind, StopKind::breakpoint) << to_string(ev.kind);
    const Breakpoint* bp = att->breakpoints().find(*id);
    EXPECT_EQ(bp->hits, 4u);
    EXPECT_EQ(bp->ignore_count, 0u);
    ASSERT_TRUE(att->detach().has_value());
    EXPECT_GE(target.ask_ok(), 0);
}

TEST_P(BreakpointsBoth, temporary_breakpoint_is_deleted_after_its_hit) {
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    const auto original = read_bytes(target.pid(), work, 16);
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto o = options();
    o.temporary = true;
    auto id = att->breakpoints().add_breakpoint(work, o);
    ASSERT_TRUE(id.has_value()) << id.error().message();
    EXPECT_TRUE(att->breakpoints().find(*id)->temporary);
    ASSERT_TRUE(att->resume_all().has_value());
    StopEvent ev = next_event(*att);
    ASSERT_EQ(ev.kind, StopKind::breakpoint);
    EXPECT_EQ(ev.breakpoints, std::vector<int>{*id});
    EXPECT_EQ(att->breakpoints().find(*id), nullptr);
    EXPECT_TRUE(att->breakpoints().list().empty());
    EXPECT_EQ(read_bytes(*att, work, 16), original);
    ASSERT_TRUE(att->resume_all().has_value());
    auto none = att->wait(200ms);
    ASSERT_TRUE(none.has_value());
    EXPECT_FALSE(none->has_value());
    ASSERT_TRUE(att->detach().has_value());
    EXPECT_GE(target.ask_ok(), 0);
}

TEST_P(BreakpointsBoth, breakpoint_in_function_of_several_threads_is_hit_by_each) {
    Target target({"--threads", "4"});
    ASSERT_TRUE(target.wait_ready());
    const pid_t pid = target.pid();
    const std::uint64_t work = symbol(pid, "bp_work");
    const auto original = read_bytes(pid, work, 16);
    {
        auto att = seize_stopped(pid);
        ASSERT_TRUE(att);
        auto id = att->breakpoints().add_breakpoint(work, options());
        ASSERT_TRUE(id.has_value()) << id.error().message();
        std::set<pid_t> tids;
        auto note = [&](const StopEvent& ev) {
            ASSERT_EQ(ev.kind, StopKind::breakpoint) << to_string(ev.kind);
            EXPECT_EQ(pc_of(*att, ev.tid), work);
            tids.insert(ev.tid);
        };
        for (int i = 0; i < 100 && tids.size() < 4; ++i) {
            ASSERT_TRUE(att->resume_all().has_value());
            note(next_event(*att));
            // Let the others stop too, as a debugger's all-stop does; collect what they hit.
            ASSERT_TRUE(att->stop_all().has_value());
            for (;;) {
                auto more = att->wait(0ms);
                ASSERT_TRUE(more.has_value());
                if (!*more) {
                    break;
                }
                note(**more);
            }
        }
        EXPECT_GE(tids.size(), 2u);
        EXPECT_EQ(tids.count(pid), 0u);  // the main thread only joins
    }
    EXPECT_EQ(read_bytes(pid, work, 16), original);
    const long first = target.ask_ok();
    EXPECT_GE(first, 0);
    usleep(50'000);
    EXPECT_GT(target.ask_ok(), first);  // still computing, without ARITHMETIC ERROR
    EXPECT_TRUE(target.alive());
}

TEST_P(BreakpointsBoth, step_over_is_correct_while_other_threads_run) {
    Target target({"--threads", "4", "--busy"});
    ASSERT_TRUE(target.wait_ready());
    const pid_t pid = target.pid();
    const std::uint64_t work = symbol(pid, "bp_work");
    const std::uint64_t leaf = symbol(pid, "bp_leaf");
    {
        auto att = seize_stopped(pid);
        ASSERT_TRUE(att);
        const std::uint64_t counter = symbol(pid, "bp_counter");
        const auto calls_before = att->memory().read_value<std::uint64_t>(counter);
        ASSERT_TRUE(calls_before.has_value());
        // Two breakpoints on the path, so a thread stepping over one runs into the next.
        auto a = att->breakpoints().add_breakpoint(work, options());
        auto b = att->breakpoints().add_breakpoint(leaf, options());
        ASSERT_TRUE(a.has_value() && b.has_value());
        ASSERT_TRUE(att->resume_all().has_value());
        std::set<pid_t> tids;
        for (int i = 0; i < 300; ++i) {
            StopEvent ev = next_event(*att);
            ASSERT_TRUE(ev.kind == StopKind::breakpoint) << to_string(ev.kind) << " signal " << ev.signal;
            const std::uint64_t pc = pc_of(*att, ev.tid);
            EXPECT_TRUE(pc == work || pc == leaf);
            tids.insert(ev.tid);
            // Silent hits too: they are stepped over while other threads are being stopped.
            if (i % 10 == 0) {
                ASSERT_TRUE(att->breakpoints().set_ignore_count(*a, 3).has_value());
            }
            // Only this thread: the others are running meanwhile.
            ASSERT_TRUE(att->resume(ev.tid).has_value());
        }
        EXPECT_GE(tids.size(), 2u);
        ASSERT_TRUE(att->stop_all().has_value());
        // Each call of bp_work passes each breakpoint once: a hit counted twice (resumed
        // without a step-over) or missed (int3 absent while a thread ran) shows here. Slack:
        // threads stopped between bp_work's entry and its increment of bp_counter.
        const auto calls = att->memory().read_value<std::uint64_t>(counter).value() - *calls_before;
        const auto hits_a = att->breakpoints().find(*a)->hits;
        const auto hits_b = att->breakpoints().find(*b)->hits;
        EXPECT_GE(hits_a + hits_b, 300u);
        EXPECT_LE(hits_a, calls + 8) << "calls " << calls;
        EXPECT_GE(hits_a + 8, calls) << "hits " << hits_a;
        EXPECT_LE(hits_b, calls + 8) << "calls " << calls;
        EXPECT_GE(hits_b + 8, calls) << "hits " << hits_b;
    }
    const long first = target.ask_ok();
    EXPECT_GE(first, 0);
    usleep(50'000);
    EXPECT_GT(target.ask_ok(), first);
    EXPECT_TRUE(target.alive());
}

TEST_P(BreakpointsBoth, step_from_a_breakpoint_runs_one_instruction_and_keeps_it) {
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    const auto original = read_bytes(target.pid(), work, 1);
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto id = att->breakpoints().add_breakpoint(work, options());
    ASSERT_TRUE(id.has_value()) << id.error().message();
    ASSERT_TRUE(att->resume_all().has_value());
    StopEvent hit = next_event(*att);
    ASSERT_EQ(hit.kind, StopKind::breakpoint);
    auto step = att->step(hit.tid);
    ASSERT_TRUE(step.has_value()) << step.error().message();
    EXPECT_EQ(step->kind, StopKind::single_step) << to_string(step->kind);
    const std::uint64_t pc = pc_of(*att, hit.tid);
    EXPECT_GT(pc, work);
    EXPECT_LT(pc, work + 16);
    EXPECT_EQ(read_bytes(*att, work, 1)[0], GetParam() ? original[0] : INT3);  // still inserted
    // Still there for the next call.
    ASSERT_TRUE(att->resume_all().has_value());
    StopEvent again = next_event(*att);
    ASSERT_EQ(again.kind, StopKind::breakpoint);
    EXPECT_EQ(pc_of(*att, again.tid), work);
    EXPECT_EQ(att->breakpoints().find(*id)->hits, 2u);
    ASSERT_TRUE(att->detach().has_value());
    EXPECT_GE(target.ask_ok(), 0);
}

TEST_P(BreakpointsBoth, step_onto_a_breakpoint_reports_it) {
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto first = att->breakpoints().add_breakpoint(work, options());
    ASSERT_TRUE(first.has_value()) << first.error().message();
    ASSERT_TRUE(att->resume_all().has_value());
    StopEvent hit = next_event(*att);
    ASSERT_EQ(hit.kind, StopKind::breakpoint);
    // Where one step from bp_work leads: the next instruction.
    auto step = att->step(hit.tid);
    ASSERT_TRUE(step.has_value());
    const std::uint64_t next = pc_of(*att, hit.tid);
    ASSERT_TRUE(att->resume_all().has_value());
    hit = next_event(*att);
    ASSERT_EQ(hit.kind, StopKind::breakpoint);
    auto second = att->breakpoints().add_breakpoint(next, options());
    ASSERT_TRUE(second.has_value()) << second.error().message();
    step = att->step(hit.tid);
    ASSERT_TRUE(step.has_value());
    EXPECT_EQ(step->kind, StopKind::breakpoint) << to_string(step->kind);
    EXPECT_EQ(step->breakpoints, std::vector<int>{*second});
    EXPECT_EQ(pc_of(*att, hit.tid), next);
    // Going on from there steps over it: the next stop is bp_work's next call.
    ASSERT_TRUE(att->resume_all().has_value());
    hit = next_event(*att);
    ASSERT_EQ(hit.kind, StopKind::breakpoint);
    EXPECT_EQ(hit.breakpoints, std::vector<int>{*first});
    EXPECT_EQ(att->breakpoints().find(*second)->hits, 1u);
}

TEST_P(BreakpointsBoth, disabled_breakpoint_is_not_hit_and_enabling_it_again_works) {
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    const std::uint64_t counter = symbol(target.pid(), "bp_counter");
    const auto original = read_bytes(target.pid(), work, 16);
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    auto id = att->breakpoints().add_breakpoint(work, options());
    ASSERT_TRUE(id.has_value()) << id.error().message();
    ASSERT_TRUE(att->breakpoints().set_enabled(*id, false).has_value());
    EXPECT_FALSE(att->breakpoints().find(*id)->enabled);
    EXPECT_EQ(read_bytes(*att, work, 16), original);
    auto before = att->memory().read_value<long>(counter);
    ASSERT_TRUE(att->resume_all().has_value());
    auto none = att->wait(200ms);
    ASSERT_TRUE(none.has_value());
    EXPECT_FALSE(none->has_value());
    ASSERT_TRUE(att->stop_all().has_value());
    EXPECT_GT(att->memory().read_value<long>(counter).value(), before.value());
    ASSERT_TRUE(att->breakpoints().set_enabled(*id, true).has_value());
    ASSERT_TRUE(att->resume_all().has_value());
    StopEvent ev = next_event(*att);
    ASSERT_EQ(ev.kind, StopKind::breakpoint);
    EXPECT_EQ(att->breakpoints().find(*id)->hits, 1u);
}

TEST_P(BreakpointsBoth, breakpoint_inserted_at_a_stopped_threads_pc_is_stepped_over_on_resume) {
    Target target({"--threads", "1"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    const std::uint64_t leaf = symbol(target.pid(), "bp_leaf");
    auto att = seize_stopped(target.pid());
    ASSERT_TRUE(att);
    // Get a thread to sit on bp_leaf, then put the breakpoint under it (as gdb: `break` at
    // the current pc, `continue` runs on rather than reporting it at once).
    auto tmp = att->breakpoints().add_breakpoint(leaf, {.temporary = true});
    ASSERT_TRUE(tmp.has_value());
    ASSERT_TRUE(att->resume_all().has_value());
    StopEvent ev = next_event(*att);
    ASSERT_EQ(ev.kind, StopKind::breakpoint);
    ASSERT_EQ(pc_of(*att, ev.tid), leaf);
    auto on_work = att->breakpoints().add_breakpoint(work, options());
    auto on_leaf = att->breakpoints().add_breakpoint(leaf, options());
    ASSERT_TRUE(on_work.has_value() && on_leaf.has_value());
    ASSERT_TRUE(att->resume_all().has_value());
    ev = next_event(*att);
    ASSERT_EQ(ev.kind, StopKind::breakpoint);
    EXPECT_EQ(ev.breakpoints, std::vector<int>{*on_work});  // not bp_leaf at once
    EXPECT_EQ(att->breakpoints().find(*on_leaf)->hits, 0u);
}

TEST_P(BreakpointsBoth, removing_a_breakpoint_while_threads_run_leaks_no_sigtrap) {
    Target target({"--threads", "4", "--busy"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    const auto original = read_bytes(target.pid(), work, 16);
    {
        auto att = seize_stopped(target.pid());
        ASSERT_TRUE(att);
        ASSERT_TRUE(att->resume_all().has_value());
        for (int round = 0; round < 20; ++round) {
            auto id = att->breakpoints().add_breakpoint(work, options());
            ASSERT_TRUE(id.has_value()) << id.error().message();
            StopEvent ev = next_event(*att);
            ASSERT_EQ(ev.kind, StopKind::breakpoint) << to_string(ev.kind);
            // Other threads may have executed the int3 already, their SIGTRAP not yet seen.
            ASSERT_TRUE(att->breakpoints().remove(*id).has_value());
            ASSERT_TRUE(att->resume_all().has_value());
            for (;;) {
                auto more = att->wait(20ms);
                ASSERT_TRUE(more.has_value()) << more.error().message();
                if (!*more) {
                    break;
                }
                // A hit queued before the removal may still come; never a raw SIGTRAP.
                EXPECT_NE((*more)->kind, StopKind::signal) << "signal " << (*more)->signal;
                EXPECT_NE((*more)->kind, StopKind::killed);
                ASSERT_TRUE(att->resume_all().has_value());
            }
        }
    }
    EXPECT_EQ(read_bytes(target.pid(), work, 16), original);
    EXPECT_GE(target.ask_ok(), 0);
    EXPECT_TRUE(target.alive());
}

TEST_P(BreakpointsBoth, detaching_while_threads_hit_breakpoints_leaves_the_target_running) {
    Target target({"--threads", "4", "--busy", "--churn"});
    ASSERT_TRUE(target.wait_ready());
    const std::uint64_t work = symbol(target.pid(), "bp_work");
    const std::uint64_t leaf = symbol(target.pid(), "bp_leaf");
    const auto original = read_bytes(target.pid(), work, 16);
    for (int round = 0; round < 15; ++round) {
        auto att = seize_stopped(target.pid());
        ASSERT_TRUE(att);
        ASSERT_TRUE(att->breakpoints().add_breakpoint(work, options()).has_value());
        ASSERT_TRUE(att->breakpoints().add_breakpoint(leaf, options()).has_value());
        ASSERT_TRUE(att->resume_all().has_value());
        // Threads hit and queue; detach (the destructor) comes in the middle of it.
        for (int i = 0; i < round % 4; ++i) {
            auto ev = att->wait(50ms);
            ASSERT_TRUE(ev.has_value());
            if (*ev) {
                ASSERT_TRUE(att->resume((*ev)->tid).has_value());
            }
        }
    }
    EXPECT_EQ(read_bytes(target.pid(), work, 16), original);
    const long first = target.ask_ok();
    EXPECT_GE(first, 0);
    usleep(50'000);
    EXPECT_GT(target.ask_ok(), first);
    EXPECT_TRUE(target.alive());
}

INSTANTIATE_TEST_SUITE_P(HardwareAndSoftware, BreakpointsBoth, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                             return info.param ? std::string("hardware") : std::string("software");
                         });

TEST(Breakpoints, threads_created_while_attached_get_the_debug_registers) {
    SKIP_WITHOUT_DEBUG_REGISTERS();
    Target target({"--threads", "1", "--churn"});
    ASSERT_TRUE(target.wait_ready());
    const pid_t pid = target.pid();
    const std::uint64_t churn = symbol(pid, "bp_churn_fn");
    auto att = seize_stopped(pid);
    ASSERT_TRUE(att);
    std::set<pid_t> at_seize;
    for (const auto& t : att->threads()) {
        at_seize.insert(t.tid);
    }
    auto id = att->breakpoints().add_breakpoint(churn, {.hardware_only = true});
    ASSERT_TRUE(id.has_value()) << id.error().message();
    std::set<pid_t> new_tids;
    for (int i = 0; i < 50 && new_tids.size() < 5; ++i) {
        ASSERT_TRUE(att->resume_all().has_value());
        StopEvent ev = next_event(*att);
        ASSERT_EQ(ev.kind, StopKind::breakpoint) << to_string(ev.kind);
        EXPECT_EQ(ev.breakpoints, std::vector<int>{*id});
        EXPECT_EQ(pc_of(*att, ev.tid), churn);
        // A short-lived thread that already existed at seize time may hit it too (it got the
        // registers from add_breakpoint); the point is the ones created later.
        if (at_seize.count(ev.tid) == 0) {
            new_tids.insert(ev.tid);
        }
    }
    EXPECT_EQ(new_tids.size(), 5u);
    ASSERT_TRUE(att->detach().has_value());
    EXPECT_GE(target.ask_ok(), 0);
}

TEST(Breakpoints, detach_clears_debug_registers_in_every_thread_and_leaves_no_int3) {
    SKIP_WITHOUT_DEBUG_REGISTERS();
    Target target({"--threads", "3", "--churn"});
    ASSERT_TRUE(target.wait_ready());
    const pid_t pid = target.pid();
    const std::uint64_t work = symbol(pid, "bp_work");
    const std::uint64_t leaf = symbol(pid, "bp_leaf");
    const std::uint64_t churn = symbol(pid, "bp_churn_fn");
    const std::uint64_t counter = symbol(pid, "bp_counter");
    const std::uint64_t read_me = symbol(pid, "bp_read_me");
    const auto work_bytes = read_bytes(pid, work, 16);
    {
        auto att = seize_stopped(pid);
        ASSERT_TRUE(att);
        auto& bps = att->breakpoints();
        ASSERT_TRUE(bps.add_breakpoint(leaf).has_value());
        ASSERT_TRUE(bps.add_breakpoint(churn).has_value());
        ASSERT_TRUE(bps.add_watchpoint(counter, 8, BreakpointType::watch_write).has_value());
        ASSERT_TRUE(bps.add_watchpoint(read_me, 8, BreakpointType::watch_read).has_value());
        auto sw = bps.add_breakpoint(work);  // the fifth: int3
        ASSERT_TRUE(sw.has_value());
        EXPECT_FALSE(bps.find(*sw)->hardware);
        for (int i = 0; i < 10; ++i) {
            ASSERT_TRUE(att->resume_all().has_value());
            StopEvent ev = next_event(*att);
            EXPECT_TRUE(ev.kind == StopKind::breakpoint || ev.kind == StopKind::watchpoint)
                << to_string(ev.kind);
        }
        // The destructor detaches, with threads stopped at breakpoints.
    }
    {
        auto att = seize_stopped(pid);
        ASSERT_TRUE(att);
        EXPECT_GE(att->threads().size(), 4u);
        for (const auto& t : att->threads()) {
            for (int i : {0, 1, 2, 3, 7}) {
                auto v = att->peek_user(t.tid, offsetof(struct user, u_debugreg) + i * sizeof(unsigned long));
                ASSERT_TRUE(v.has_value()) << v.error().message();
                EXPECT_EQ(*v, 0u) << "DR" << i << " of thread " << t.tid;
            }
        }
        EXPECT_EQ(read_bytes(*att, work, 16), work_bytes);
    }
    const long first = target.ask_ok();
    EXPECT_GE(first, 0);
    usleep(50'000);
    EXPECT_GT(target.ask_ok(), first);
    EXPECT_TRUE(target.alive());
}

}  // namespace
}  // namespace xproc
