// SPDX-License-Identifier: MIT
// Process (pidfd-pinned /proc access), the stat/status parsers and list_processes().

#include "xproc/process.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <string>

#include "child.hpp"

namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using xproc::ErrorKind;
using xproc::Process;

/// A full 52-field stat line for `comm`, with recognisable values in the fields we parse.
std::string stat_line(const std::string& comm) {
    return "4242 (" + comm +
           ") S 17 4242 4200 34816 4242 4194560 1182 0 3 0 111 222 0 0 20 0 7 0 98765 123456789 4321 "
           "18446744073709551615 94000000000000 94000000100000 140731234567888 0 0 0 0 4096 1256 0 0 0 17 1 "
           "0 0 "
           "0 0 0 94000000200000 94000000300000 94000000400000 140731234570000 140731234570100 "
           "140731234570100 "
           "140731234574000 0\n";
}

TEST(ParseProcStat, reads_every_field_used) {
    auto st = xproc::parse_proc_stat(stat_line("sleeper"));
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->pid, 4242);
    EXPECT_EQ(st->comm, "sleeper");
    EXPECT_EQ(st->state, 'S');
    EXPECT_EQ(st->ppid, 17);
    EXPECT_EQ(st->pgrp, 4242);
    EXPECT_EQ(st->session, 4200);
    EXPECT_EQ(st->flags, 4194560u);
    EXPECT_EQ(st->utime_ticks, 111u);
    EXPECT_EQ(st->stime_ticks, 222u);
    EXPECT_EQ(st->num_threads, 7);
    EXPECT_EQ(st->start_time_ticks, 98765u);
    EXPECT_EQ(st->vsize, 123456789u);
    EXPECT_EQ(st->rss_pages, 4321);
    EXPECT_EQ(st->start_stack, 140731234567888u);
    EXPECT_FALSE(st->is_kernel_thread());
}

TEST(ParseProcStat, comm_with_spaces_and_parentheses_ends_at_the_last_paren) {
    auto st = xproc::parse_proc_stat(stat_line("a) b (c)"));
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->comm, "a) b (c)");
    EXPECT_EQ(st->state, 'S');
    EXPECT_EQ(st->ppid, 17);
    EXPECT_EQ(st->start_time_ticks, 98765u);
}

TEST(ParseProcStat, comm_that_looks_like_fields) {
    auto st = xproc::parse_proc_stat(stat_line(") R 1 2 3 ("));
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->comm, ") R 1 2 3 (");
    EXPECT_EQ(st->state, 'S');
    EXPECT_EQ(st->ppid, 17);
}

TEST(ParseProcStat, empty_comm) {
    auto st = xproc::parse_proc_stat(stat_line(""));
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->comm, "");
    EXPECT_EQ(st->pid, 4242);
}

TEST(ParseProcStat, kernel_thread_flag) {
    auto st = xproc::parse_proc_stat(
        "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 14 0 0 18446744073709551615 0 0 0 0 0 0 "
        "0 "
        "2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_TRUE(st->is_kernel_thread());
    EXPECT_EQ(st->ppid, 0);
    EXPECT_EQ(st->vsize, 0u);
}

TEST(ParseProcStat, rejects_malformed_text) {
    for (const std::string& bad :
         {std::string(), std::string("4242"), std::string("4242 sleeper S 1"), std::string("x (a) S 1"),
          std::string("4242 (a)"), std::string("4242 (a) S 1 2 3"),
          std::string("4242 (a) SS 1 2 3 4 5 6 7 8 9"), stat_line("a").substr(0, 60)}) {
        auto st = xproc::parse_proc_stat(bad);
        ASSERT_FALSE(st) << "accepted: " << bad;
        EXPECT_EQ(st.error().kind, ErrorKind::parse) << bad;
    }
    std::string line = stat_line("a");
    line.replace(line.find(" 111 "), 5, " 1x1 ");
    auto st = xproc::parse_proc_stat(line);
    ASSERT_FALSE(st);
    EXPECT_THAT(st.error().message(), HasSubstr("field 14"));
}

constexpr const char* STATUS_SAMPLE =
    "Name:\tsleeper\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t4242\n"
    "Pid:\t4242\n"
    "PPid:\t17\n"
    "TracerPid:\t77\n"
    "Uid:\t1000\t1001\t1002\t1003\n"
    "Gid:\t100\t101\t102\t103\n"
    "FDSize:\t64\n"
    "Groups:\t4 24 27\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t00000000000020c0\n"
    "CapEff:\t000001fffeffffff\n"
    "CapBnd:\t000001ffffffffff\n"
    "NoNewPrivs:\t1\n"
    "Seccomp:\t0\n";

TEST(ParseProcIds, reads_ids_capabilities_and_tracer) {
    auto ids = xproc::parse_proc_ids(STATUS_SAMPLE);
    ASSERT_TRUE(ids) << ids.error().message();
    EXPECT_EQ(ids->ruid, 1000u);
    EXPECT_EQ(ids->euid, 1001u);
    EXPECT_EQ(ids->suid, 1002u);
    EXPECT_EQ(ids->fsuid, 1003u);
    EXPECT_EQ(ids->rgid, 100u);
    EXPECT_EQ(ids->egid, 101u);
    EXPECT_EQ(ids->sgid, 102u);
    EXPECT_EQ(ids->fsgid, 103u);
    EXPECT_EQ(ids->cap_prm, 0x20c0u);
    EXPECT_EQ(ids->cap_eff, 0x000001fffeffffffu);
    EXPECT_EQ(ids->tracer_pid, 77);
    EXPECT_EQ(ids->tgid, 4242);
    EXPECT_TRUE(ids->no_new_privs);
}

TEST(ParseProcIds, tgid_is_optional_but_must_be_a_positive_number) {
    std::string text = STATUS_SAMPLE;
    text.erase(text.find("Tgid:"), std::string("Tgid:\t4242\n").size());
    auto ids = xproc::parse_proc_ids(text);
    ASSERT_TRUE(ids) << ids.error().message();
    EXPECT_EQ(ids->tgid, 0);

    for (const char* bad : {"Tgid:\t0\n", "Tgid:\t-5\n", "Tgid:\tx\n", "Tgid:\t\n"}) {
        std::string bad_text = STATUS_SAMPLE;
        bad_text.replace(bad_text.find("Tgid:"), std::string("Tgid:\t4242\n").size(), bad);
        auto r = xproc::parse_proc_ids(bad_text);
        ASSERT_FALSE(r) << "accepted " << bad;
        EXPECT_EQ(r.error().kind, ErrorKind::parse);
        EXPECT_THAT(r.error().message(), HasSubstr("Tgid")) << bad;
    }
}

TEST(ParseProcIds, no_new_privs_is_optional) {
    std::string text = STATUS_SAMPLE;
    text.erase(text.find("NoNewPrivs:"), std::string("NoNewPrivs:\t1\n").size());
    auto ids = xproc::parse_proc_ids(text);
    ASSERT_TRUE(ids) << ids.error().message();
    EXPECT_FALSE(ids->no_new_privs);
}

TEST(ParseProcIds, missing_or_bad_fields_are_parse_errors) {
    std::string no_uid = STATUS_SAMPLE;
    no_uid.erase(no_uid.find("Uid:"), std::string("Uid:\t1000\t1001\t1002\t1003\n").size());
    auto ids = xproc::parse_proc_ids(no_uid);
    ASSERT_FALSE(ids);
    EXPECT_EQ(ids.error().kind, ErrorKind::parse);
    EXPECT_THAT(ids.error().message(), HasSubstr("missing Uid"));

    std::string short_gid = STATUS_SAMPLE;
    short_gid.replace(short_gid.find("Gid:\t100\t101\t102\t103"), 20, "Gid:\t100\t101\t102");
    ids = xproc::parse_proc_ids(short_gid);
    ASSERT_FALSE(ids);
    EXPECT_EQ(ids.error().kind, ErrorKind::parse);

    std::string bad_cap = STATUS_SAMPLE;
    bad_cap.replace(bad_cap.find("00000000000020c0"), 16, "00000000000020cg");
    ids = xproc::parse_proc_ids(bad_cap);
    ASSERT_FALSE(ids);
    EXPECT_THAT(ids.error().message(), HasSubstr("CapPrm"));

    EXPECT_FALSE(xproc::parse_proc_ids(""));
}

TEST(Process, self_matches_what_the_kernel_says_about_us) {
    auto self = Process::self();
    ASSERT_TRUE(self) << self.error().message();
    EXPECT_EQ(self->pid(), getpid());
    EXPECT_GE(self->pidfd(), 0);
    EXPECT_GE(self->proc_dir(), 0);
    EXPECT_TRUE(self->alive());

    auto st = self->stat();
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->pid, getpid());
    EXPECT_EQ(st->ppid, getppid());
    EXPECT_EQ(st->state, 'R');
    EXPECT_GE(st->num_threads, 1);
    EXPECT_GT(st->vsize, 0u);
    EXPECT_GT(st->start_stack, 0u);

    auto ids = self->ids();
    ASSERT_TRUE(ids) << ids.error().message();
    EXPECT_EQ(ids->ruid, getuid());
    EXPECT_EQ(ids->euid, geteuid());
    EXPECT_EQ(ids->rgid, getgid());
    EXPECT_EQ(ids->tracer_pid, 0);

    auto comm = self->comm();
    ASSERT_TRUE(comm) << comm.error().message();
    EXPECT_EQ(*comm, st->comm);

    char exe_buf[PATH_MAX] = {};
    ASSERT_GT(readlink("/proc/self/exe", exe_buf, sizeof exe_buf - 1), 0);
    auto exe = self->exe();
    ASSERT_TRUE(exe) << exe.error().message();
    EXPECT_EQ(*exe, exe_buf);

    auto args = self->cmdline();
    ASSERT_TRUE(args) << args.error().message();
    ASSERT_FALSE(args->empty());

    auto tids = self->threads();
    ASSERT_TRUE(tids) << tids.error().message();
    EXPECT_THAT(*tids, Contains(getpid()));

    auto start = self->start_time();
    ASSERT_TRUE(start) << start.error().message();
    EXPECT_EQ(*start, st->start_time_ticks);
}

TEST(Process, child_from_targets) {
    const std::string path = xproc::test::target_path("sleeper");
    xproc::test::Child child({path, "3"});
    ASSERT_TRUE(child.wait_for_line());

    auto p = Process::open(child.pid());
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_TRUE(p->alive());

    auto st = p->stat();
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->pid, child.pid());
    EXPECT_EQ(st->ppid, getpid());
    EXPECT_EQ(st->comm, "sleeper");
    EXPECT_EQ(st->num_threads, 1);

    auto comm = p->comm();
    ASSERT_TRUE(comm) << comm.error().message();
    EXPECT_EQ(*comm, "sleeper");

    auto args = p->cmdline();
    ASSERT_TRUE(args) << args.error().message();
    EXPECT_THAT(*args, ElementsAre(path, "3"));

    char* real = realpath(path.c_str(), nullptr);
    ASSERT_NE(real, nullptr);
    auto exe = p->exe();
    ASSERT_TRUE(exe) << exe.error().message();
    EXPECT_EQ(*exe, real);
    std::free(real);

    auto tids = p->threads();
    ASSERT_TRUE(tids) << tids.error().message();
    EXPECT_THAT(*tids, ElementsAre(child.pid()));

    auto self_start = Process::self()->start_time();
    auto start = p->start_time();
    ASSERT_TRUE(start && self_start);
    EXPECT_GE(*start, *self_start);
}

TEST(Process, reaped_process_gives_no_such_process_not_someone_elses_data) {
    xproc::test::Child child({xproc::test::target_path("sleeper")});
    ASSERT_TRUE(child.wait_for_line());
    auto p = Process::open(child.pid());
    ASSERT_TRUE(p) << p.error().message();
    ASSERT_TRUE(p->stat());

    child.kill_and_reap();
    EXPECT_FALSE(p->alive());
    auto expect_gone = [](const auto& r, const char* what) {
        ASSERT_FALSE(r) << what << " returned data for a reaped process";
        EXPECT_EQ(r.error().kind, ErrorKind::no_such_process) << what << ": " << r.error().message();
    };
    expect_gone(p->stat(), "stat");
    expect_gone(p->ids(), "ids");
    expect_gone(p->comm(), "comm");
    expect_gone(p->cmdline(), "cmdline");
    expect_gone(p->exe(), "exe");
    expect_gone(p->threads(), "threads");
    expect_gone(p->start_time(), "start_time");
    EXPECT_THAT(p->stat().error().message(), HasSubstr("exited and was reaped"));
}

TEST(Process, zombie_still_answers_until_reaped) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        _exit(7);
    }
    struct Reaper {  // reaps the child even when an assertion below fails
        pid_t pid;
        ~Reaper() {
            if (pid > 0) {
                waitpid(pid, nullptr, 0);
            }
        }
    } reaper{pid};
    auto p = Process::open(pid);
    // Wait for the exit without reaping: the pidfd turns readable.
    siginfo_t info{};
    ASSERT_EQ(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_FALSE(p->alive());

    auto st = p->stat();
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->state, 'Z');
    auto args = p->cmdline();
    ASSERT_TRUE(args) << args.error().message();
    EXPECT_TRUE(args->empty());
    auto exe = p->exe();
    ASSERT_TRUE(exe) << exe.error().message();
    EXPECT_EQ(*exe, "");

    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    reaper.pid = -1;
    EXPECT_EQ(WEXITSTATUS(status), 7);
    ASSERT_FALSE(p->stat());
    EXPECT_EQ(p->stat().error().kind, ErrorKind::no_such_process);
}

TEST(Process, open_refuses_absent_and_invalid_pids) {
    std::ifstream in("/proc/sys/kernel/pid_max");
    pid_t pid_max = 0;
    in >> pid_max;
    ASSERT_GT(pid_max, 0);
    auto absent = Process::open(pid_max);  // pids are always below pid_max
    ASSERT_FALSE(absent);
    EXPECT_EQ(absent.error().kind, ErrorKind::no_such_process);
    EXPECT_THAT(absent.error().message(), HasSubstr("pidfd_open(" + std::to_string(pid_max) + ")"));

    for (pid_t bad : {0, -1}) {
        auto r = Process::open(bad);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().kind, ErrorKind::invalid_argument);
    }
}

TEST(Process, threads_of_a_multithreaded_target) {
    xproc::test::Child child({xproc::test::target_path("threads"), "4"});
    ASSERT_TRUE(child.wait_for_line());
    auto p = Process::open(child.pid());
    ASSERT_TRUE(p) << p.error().message();

    auto tids = p->threads();
    ASSERT_TRUE(tids) << tids.error().message();
    ASSERT_EQ(tids->size(), 5u);
    EXPECT_EQ(tids->front(), child.pid());
    EXPECT_TRUE(std::is_sorted(tids->begin(), tids->end()));
    EXPECT_EQ(p->stat()->num_threads, 5);

    // A thread id is not a process: pidfd_open refuses it, and list_processes skips it.
    auto thread = Process::open(tids->back());
    EXPECT_FALSE(thread);
    auto all = xproc::list_processes();
    ASSERT_TRUE(all) << all.error().message();
    EXPECT_TRUE(std::binary_search(all->begin(), all->end(), child.pid()));
    EXPECT_FALSE(std::binary_search(all->begin(), all->end(), tids->back()));
}

TEST(ThreadGroupOf, every_thread_id_leads_to_its_process) {
    xproc::test::Child child({xproc::test::target_path("threads"), "4"});
    ASSERT_TRUE(child.wait_for_line());
    auto p = Process::open(child.pid());
    ASSERT_TRUE(p) << p.error().message();
    auto tids = p->threads();
    ASSERT_TRUE(tids) << tids.error().message();
    ASSERT_EQ(tids->size(), 5u);
    for (const pid_t tid : *tids) {
        auto tgid = xproc::thread_group_of(tid);
        ASSERT_TRUE(tgid) << tid << ": " << tgid.error().message();
        EXPECT_EQ(*tgid, child.pid()) << tid;
    }
    // The non-leader ids pidfd_open refuses pin through their thread group.
    auto pinned = Process::open(xproc::thread_group_of(tids->back()).value());
    ASSERT_TRUE(pinned) << pinned.error().message();
    EXPECT_EQ(pinned->pid(), child.pid());

    auto ids = p->ids();
    ASSERT_TRUE(ids) << ids.error().message();
    EXPECT_EQ(ids->tgid, child.pid());
}

TEST(ThreadGroupOf, of_self_and_of_this_thread) {
    EXPECT_EQ(xproc::thread_group_of(getpid()).value_or(0), getpid());
    EXPECT_EQ(xproc::thread_group_of(gettid()).value_or(0), getpid());
    EXPECT_EQ(Process::self()->ids()->tgid, getpid());
}

TEST(ThreadGroupOf, absent_and_invalid_ids) {
    const pid_t pid = xproc::test::vanished_pid();
    ASSERT_GT(pid, 0);
    auto gone = xproc::thread_group_of(pid);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().kind, ErrorKind::no_such_process) << gone.error().message();
    EXPECT_EQ(gone.error().pid, pid);

    for (pid_t bad : {0, -1}) {
        auto r = xproc::thread_group_of(bad);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().kind, ErrorKind::invalid_argument);
    }
}

TEST(Process, kernel_thread_has_no_exe_or_cmdline) {
    auto p = Process::open(2);
    if (!p || p->comm().value_or("") != "kthreadd") {
        GTEST_SKIP() << "pid 2 is not kthreadd here (a pid namespace?)";
    }
    auto st = p->stat();
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_TRUE(st->is_kernel_thread());
    auto exe = p->exe();
    ASSERT_TRUE(exe) << exe.error().message();
    EXPECT_EQ(*exe, "");
    auto args = p->cmdline();
    ASSERT_TRUE(args) << args.error().message();
    EXPECT_TRUE(args->empty());
}

TEST(ListProcesses, ascending_and_contains_us_and_init) {
    auto pids = xproc::list_processes();
    ASSERT_TRUE(pids) << pids.error().message();
    EXPECT_TRUE(std::is_sorted(pids->begin(), pids->end()));
    EXPECT_TRUE(std::adjacent_find(pids->begin(), pids->end()) == pids->end());
    EXPECT_THAT(*pids, Contains(getpid()));
    EXPECT_THAT(*pids, Contains(1));
    EXPECT_GT(pids->front(), 0);
}

}  // namespace
