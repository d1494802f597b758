// SPDX-License-Identifier: MIT
// Attachment (tracer.hpp) and registers.hpp against real child processes.
#include "xproc/tracer.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "child.hpp"
#include "xproc/process.hpp"

using namespace std::chrono_literals;
using xproc::Attachment;
using xproc::StopKind;
using xproc::test::Child;
using xproc::test::state_of;
using xproc::test::target_path;
using xproc::test::tracer_of;

namespace {

/// Waits up to 2 s for every thread of `pid` to leave the ptrace-stop ('t').
bool all_running(pid_t pid) {
    for (int i = 0; i < 200; ++i) {
        auto proc = xproc::Process::open(pid);
        if (!proc) {
            return false;
        }
        auto tids = proc->threads();
        bool ok = tids.has_value();
        for (pid_t tid : tids.value_or(std::vector<pid_t>{})) {
            const char s = state_of(pid, tid);
            ok = ok && s != 't' && s != 'T';
        }
        if (ok) {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

}  // namespace

TEST(Tracer, seize_leaves_threads_running_and_stop_all_stops_every_one) {
    Child child({target_path("threads"), "4"});
    ASSERT_TRUE(child.wait_for_line());
    auto att = Attachment::seize(child.pid());
    ASSERT_TRUE(att) << att.error().message();
    EXPECT_EQ((*att)->threads().size(), 5u);
    EXPECT_EQ((*att)->threads().front().tid, child.pid());
    EXPECT_TRUE(all_running(child.pid()));
    EXPECT_EQ(tracer_of(child.pid()), getpid());

    ASSERT_TRUE((*att)->stop_all()) << "stop_all";
    EXPECT_TRUE((*att)->all_stopped());
    for (const auto& t : (*att)->threads()) {
        EXPECT_EQ(state_of(child.pid(), t.tid), 't') << t.tid;
        auto regs = (*att)->registers(t.tid);
        ASSERT_TRUE(regs) << regs.error().message();
        EXPECT_NE(regs->pc(), 0u);
        EXPECT_NE(regs->sp(), 0u);
        EXPECT_TRUE(regs->fp_valid);
    }
    ASSERT_TRUE((*att)->resume_all());
    EXPECT_TRUE(all_running(child.pid()));
}

TEST(Tracer, destruction_detaches_and_the_target_keeps_running) {
    Child child({target_path("threads"), "3"});
    ASSERT_TRUE(child.wait_for_line());
    {
        auto att = Attachment::seize(child.pid(), {.stop = true});
        ASSERT_TRUE(att) << att.error().message();
        EXPECT_TRUE((*att)->all_stopped());
    }
    EXPECT_EQ(tracer_of(child.pid()), 0);
    EXPECT_TRUE(all_running(child.pid()));
}

TEST(Tracer, a_target_stopped_before_the_attach_stays_stopped_after_detach) {
    Child child({target_path("threads"), "2"});
    ASSERT_TRUE(child.wait_for_line());
    ASSERT_TRUE(child.freeze());
    {
        auto att = Attachment::seize(child.pid(), {.stop = true});
        ASSERT_TRUE(att) << att.error().message();
        EXPECT_TRUE((*att)->was_stopped());
        // Running it while attached does not cancel the job-control stop.
        ASSERT_TRUE((*att)->resume_all());
        std::this_thread::sleep_for(20ms);
    }
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(tracer_of(child.pid()), 0);
    EXPECT_EQ(state_of(child.pid(), child.pid()), 'T');
    ASSERT_TRUE(child.thaw());
    EXPECT_TRUE(all_running(child.pid()));
}

TEST(Tracer, follows_threads_created_while_attached) {
    Child child({target_path("bp_target"), "--churn"});
    ASSERT_TRUE(child.wait_for_line());
    auto att = Attachment::seize(child.pid());
    ASSERT_TRUE(att) << att.error().message();
    std::set<pid_t> initial;
    for (const auto& t : (*att)->threads()) {
        initial.insert(t.tid);
    }
    // Run for a while, then stop, until a stop finds a thread created while attached (the churn
    // thread creates and joins short-lived ones all the time).
    std::set<pid_t> seen;
    bool new_one = false;
    for (int round = 0; round < 300 && !new_one; ++round) {
        auto ev = (*att)->wait(10ms);
        ASSERT_TRUE(ev) << ev.error().message();
        ASSERT_FALSE(ev->has_value()) << "unexpected event " << xproc::to_string((*ev)->kind);
        ASSERT_TRUE((*att)->stop_all());
        for (const auto& t : (*att)->threads()) {
            seen.insert(t.tid);
            new_one = new_one || !initial.contains(t.tid);
            EXPECT_EQ(state_of(child.pid(), t.tid), 't');
        }
        ASSERT_TRUE((*att)->resume_all());
    }
    EXPECT_TRUE(new_one) << "no thread created while attached was followed";
    att->reset();
    EXPECT_TRUE(all_running(child.pid()));
    ASSERT_EQ(::kill(child.pid(), SIGUSR1), 0);
    EXPECT_TRUE(child.wait_for_line_prefix("ok "));
}

TEST(Tracer, seize_succeeds_while_threads_are_being_created) {
    // A thread created by one seized in an earlier pass of the task list is attached by the
    // kernel (TRACECLONE): PTRACE_SEIZE of it fails with EPERM, and that must not fail the attach.
    Child child({target_path("bp_target"), "--churn", "--busy"});
    ASSERT_TRUE(child.wait_for_line());
    for (int round = 0; round < 300; ++round) {
        auto att = Attachment::seize(child.pid(), {.stop = true});
        ASSERT_TRUE(att) << "round " << round << ": " << att.error().message();
        for (const auto& t : (*att)->threads()) {
            EXPECT_EQ(state_of(child.pid(), t.tid), 't') << "thread " << t.tid;
        }
    }
    EXPECT_TRUE(all_running(child.pid()));
    ASSERT_EQ(::kill(child.pid(), SIGUSR1), 0);
    EXPECT_TRUE(child.wait_for_line_prefix("ok "));
}

TEST(Tracer, a_signal_is_reported_and_then_delivered) {
    Child child({target_path("bp_target")});
    ASSERT_TRUE(child.wait_for_line());
    auto att = Attachment::seize(child.pid());
    ASSERT_TRUE(att) << att.error().message();
    ASSERT_EQ(::kill(child.pid(), SIGUSR1), 0);
    std::optional<xproc::StopEvent> ev;
    for (int i = 0; i < 100 && !ev; ++i) {
        auto w = (*att)->wait(50ms);
        ASSERT_TRUE(w) << w.error().message();
        ev = *w;
    }
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->kind, StopKind::signal);
    EXPECT_EQ(ev->signal, SIGUSR1);
    EXPECT_TRUE(ev->has_info);
    ASSERT_TRUE((*att)->stop_all());
    ASSERT_TRUE((*att)->resume_all());  // delivers SIGUSR1: the handler prints "ok N"
    EXPECT_TRUE(child.wait_for_line_prefix("ok "));
}

TEST(Tracer, a_suppressed_signal_is_not_delivered) {
    Child child({target_path("bp_target")});
    ASSERT_TRUE(child.wait_for_line());
    auto att = Attachment::seize(child.pid());
    ASSERT_TRUE(att) << att.error().message();
    ASSERT_EQ(::kill(child.pid(), SIGTERM), 0);
    std::optional<xproc::StopEvent> ev;
    for (int i = 0; i < 100 && !ev; ++i) {
        ev = (*att)->wait(50ms).value_or(std::nullopt);
    }
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->signal, SIGTERM);
    ASSERT_TRUE((*att)->resume(ev->tid, 0));
    att->reset();
    std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(all_running(child.pid())) << "SIGTERM was delivered";
}

TEST(Tracer, a_target_that_exits_while_attached_is_reported) {
    Child child({target_path("bp_target"), "--iterations", "50"});
    ASSERT_TRUE(child.wait_for_line());
    auto att = Attachment::seize(child.pid());
    ASSERT_TRUE(att) << att.error().message();
    std::optional<xproc::StopEvent> ev;
    for (int i = 0; i < 200 && !ev; ++i) {
        auto w = (*att)->wait(50ms);
        ASSERT_TRUE(w) << w.error().message();
        ev = *w;
    }
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->kind, StopKind::exited);
    EXPECT_EQ(ev->exit_code, 0);
    EXPECT_TRUE((*att)->process_gone());
    EXPECT_FALSE((*att)->stop_all());
    EXPECT_TRUE((*att)->detach());
}

TEST(Tracer, a_target_killed_while_attached_is_reported_as_killed) {
    Child child({target_path("threads"), "3"});
    ASSERT_TRUE(child.wait_for_line());
    auto att = Attachment::seize(child.pid(), {.stop = true});
    ASSERT_TRUE(att) << att.error().message();
    ASSERT_EQ(::kill(child.pid(), SIGKILL), 0);
    std::optional<xproc::StopEvent> ev;
    for (int i = 0; i < 100 && !ev; ++i) {
        ev = (*att)->wait(50ms).value_or(std::nullopt);
    }
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->kind, StopKind::killed);
    EXPECT_EQ(ev->signal, SIGKILL);
}

TEST(Tracer, kill_ends_the_process) {
    Child child({target_path("threads"), "2"});
    ASSERT_TRUE(child.wait_for_line());
    auto att = Attachment::seize(child.pid());
    ASSERT_TRUE(att) << att.error().message();
    ASSERT_TRUE((*att)->kill());
    EXPECT_TRUE((*att)->process_gone());
    EXPECT_EQ((*att)->exit_event()->kind, StopKind::killed);
}

TEST(Tracer, single_step_moves_the_pc_by_one_instruction) {
    Child child({target_path("bp_target"), "--busy"});
    ASSERT_TRUE(child.wait_for_line());
    auto att = Attachment::seize(child.pid(), {.stop = true});
    ASSERT_TRUE(att) << att.error().message();
    const pid_t worker = (*att)->threads().back().tid;
    for (int i = 0; i < 50; ++i) {
        auto before = (*att)->registers(worker);
        ASSERT_TRUE(before);
        auto ev = (*att)->step(worker);
        ASSERT_TRUE(ev) << ev.error().message();
        ASSERT_EQ(ev->kind, StopKind::single_step) << xproc::to_string(ev->kind);
        auto after = (*att)->registers(worker);
        ASSERT_TRUE(after);
        EXPECT_NE(after->pc(), before->pc());
    }
    att->reset();
    ASSERT_EQ(::kill(child.pid(), SIGUSR1), 0);
    EXPECT_TRUE(child.wait_for_line_prefix("ok "));
}

TEST(Tracer, registers_written_are_read_back_and_sub_registers_keep_the_rest) {
    Child child({target_path("threads"), "1"});
    ASSERT_TRUE(child.wait_for_line());
    auto att = Attachment::seize(child.pid(), {.stop = true});
    ASSERT_TRUE(att) << att.error().message();
    const pid_t tid = (*att)->threads().back().tid;
    auto regs = (*att)->registers(tid);
    ASSERT_TRUE(regs);
    xproc::Registers saved = *regs;
    {
        auto guard = xproc::RegisterGuard::save(**att, tid);
        ASSERT_TRUE(guard);
        xproc::Registers changed = *regs;
#if defined(__x86_64__)
        ASSERT_TRUE(changed.set(*xproc::find_register("r12"), 0x1122334455667788ull));
        ASSERT_TRUE(changed.set(*xproc::find_register("r12l"), 0xAB));
        ASSERT_TRUE((*att)->set_registers(changed));
        auto back = (*att)->registers(tid);
        ASSERT_TRUE(back);
        EXPECT_EQ(back->get("r12"), 0x11223344556677ABull);
        EXPECT_EQ(back->get("r12d"), 0x556677ABull);
#endif
    }
    auto restored = (*att)->registers(tid);
    ASSERT_TRUE(restored);
    EXPECT_EQ(restored->pc(), saved.pc());
    EXPECT_EQ(std::memcmp(&restored->gp, &saved.gp, sizeof(saved.gp)), 0);
}

TEST(Tracer, refuses_its_own_process_and_a_missing_one) {
    auto self = Attachment::seize(getpid());
    ASSERT_FALSE(self);
    EXPECT_EQ(self.error().kind, xproc::ErrorKind::invalid_argument);
    auto gone = Attachment::seize(xproc::test::vanished_pid());
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().kind, xproc::ErrorKind::no_such_process);
}

TEST(Tracer, a_second_tracer_is_told_who_traces_already) {
    Child child({target_path("sleeper")});
    ASSERT_TRUE(child.wait_for_line());
    auto att = Attachment::seize(child.pid());
    ASSERT_TRUE(att) << att.error().message();
    // Another process tries: the message names us.
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    if (pid == 0) {
        auto second = Attachment::seize(child.pid());
        std::string msg = second ? std::string("attached?!") : second.error().message();
        (void)!write(fds[1], msg.data(), msg.size());
        _exit(second ? 1 : 0);
    }
    close(fds[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) {
        msg.append(buf, static_cast<std::size_t>(n));
    }
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_EQ(WEXITSTATUS(status), 0) << msg;
    EXPECT_NE(msg.find("already traced by PID " + std::to_string(getpid())), std::string::npos) << msg;
}

TEST(Tracer, an_unprivileged_caller_gets_the_rule_that_refused) {
    Child child({target_path("sleeper")});
    ASSERT_TRUE(child.wait_for_line());
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    if (pid == 0) {
        if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) {
            _exit(2);
        }
        auto att = Attachment::seize(child.pid());
        std::string msg = att ? std::string("attached?!") : att.error().message();
        (void)!write(fds[1], msg.data(), msg.size());
        _exit(att ? 1 : (att.error().kind == xproc::ErrorKind::permission ? 0 : 3));
    }
    close(fds[1]);
    std::string msg;
    char buf[1024];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) {
        msg.append(buf, static_cast<std::size_t>(n));
    }
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_EQ(WEXITSTATUS(status), 0) << msg;
    EXPECT_NE(msg.find("ptrace(PTRACE_SEIZE"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CAP_SYS_PTRACE"), std::string::npos) << msg;
}

TEST(Registers, names_and_aliases) {
#if defined(__x86_64__)
    ASSERT_NE(xproc::find_register("pc"), nullptr);
    EXPECT_EQ(xproc::find_register("pc")->name, "rip");
    EXPECT_EQ(xproc::find_register("sp")->name, "rsp");
    EXPECT_EQ(xproc::find_register("eax")->size, 4);
    EXPECT_EQ(xproc::find_register("ah")->offset, xproc::find_register("rax")->offset + 1);
    EXPECT_EQ(xproc::find_register("xmm15")->size, 16);
    EXPECT_EQ(xproc::find_register("nope"), nullptr);
    std::size_t general = 0;
    for (const auto& d : xproc::register_table()) {
        general += d.general ? 1 : 0;
    }
    EXPECT_EQ(general, 26u);  // gdb's `info registers` on amd64 without AVX-512
#endif
}

TEST(Registers, parses_the_syscall_file) {
    auto s = xproc::parse_syscall_file("230 0x0 0x0 0x7ffd1 0x0 0x0 0x0 0x7ffd0 0x7f12\n");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->state, xproc::BlockedSyscall::State::in_syscall);
    EXPECT_EQ(s->number, 230);
    EXPECT_EQ(s->args[2], 0x7ffd1u);
    EXPECT_EQ(s->pc, 0x7f12u);
    auto r = xproc::parse_syscall_file("running\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->state, xproc::BlockedSyscall::State::running);
    auto n = xproc::parse_syscall_file("-1 0x7ffd0 0x4010\n");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->state, xproc::BlockedSyscall::State::not_blocked);
    EXPECT_FALSE(xproc::parse_syscall_file("12 0x1"));
    EXPECT_FALSE(xproc::parse_syscall_file("zz 0 0 0 0 0 0 0 0"));
#if defined(__x86_64__)
    EXPECT_EQ(xproc::syscall_name(0), "read");
    EXPECT_EQ(xproc::syscall_name(202), "futex");
    EXPECT_EQ(xproc::syscall_name(100000), "syscall_100000");
#endif
}

TEST(Registers, a_sleeping_thread_is_seen_in_its_system_call) {
    Child child({target_path("sleeper")});
    ASSERT_TRUE(child.wait_for_line());
    std::this_thread::sleep_for(20ms);
    auto s = xproc::blocked_syscall(child.pid(), child.pid());
    ASSERT_TRUE(s) << s.error().message();
    ASSERT_EQ(s->state, xproc::BlockedSyscall::State::in_syscall);
    const std::string name = xproc::syscall_name(s->number);
    EXPECT_TRUE(name == "pause" || name == "clock_nanosleep" || name == "nanosleep") << name;
}
