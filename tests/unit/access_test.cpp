// SPDX-License-Identifier: MIT
// diagnose(): every ptrace access rule and their combinations, on hand-made facts.

#include "xproc/access.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <set>
#include <string>
#include <vector>

namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using xproc::AccessFacts;
using xproc::AccessMode;
using xproc::AccessRule;
using xproc::AccessVerdict;
using xproc::diagnose;
using xproc::ErrorKind;

constexpr std::uint64_t CAP_SYS_PTRACE_BIT = std::uint64_t{1} << 19;
constexpr std::uint64_t CAP_NET_RAW_BIT = std::uint64_t{1} << 13;

void set_uids(xproc::ProcIds& ids, uid_t r, uid_t e, uid_t s, uid_t fs) {
    ids.ruid = r;
    ids.euid = e;
    ids.suid = s;
    ids.fsuid = fs;
}
void set_gids(xproc::ProcIds& ids, gid_t r, gid_t e, gid_t s, gid_t fs) {
    ids.rgid = r;
    ids.egid = e;
    ids.sgid = s;
    ids.fsgid = fs;
}

/// A user (uid/gid 1000, no capabilities, pid 100, /usr/bin/xpeek) looking at
/// its own process 42 (victim); nothing refuses.
AccessFacts user_facts() {
    AccessFacts f;
    set_uids(f.caller, 1000, 1000, 1000, 1000);
    set_gids(f.caller, 1000, 1000, 1000, 1000);
    set_uids(f.target, 1000, 1000, 1000, 1000);
    set_gids(f.target, 1000, 1000, 1000, 1000);
    f.caller_pid = 100;
    f.caller_exe = "/usr/bin/xpeek";
    f.target_pid = 42;
    f.target_comm = "victim";
    f.target_user = "alice";
    f.target_group = "alice";
    return f;
}

/// The same user looking at a root process 42.
AccessFacts root_target_facts() {
    AccessFacts f = user_facts();
    set_uids(f.target, 0, 0, 0, 0);
    set_gids(f.target, 0, 0, 0, 0);
    f.target_user = "root";
    f.target_group = "root";
    return f;
}

void give_cap_sys_ptrace(AccessFacts& f) {
    f.caller.cap_eff |= CAP_SYS_PTRACE_BIT;
    f.caller.cap_prm |= CAP_SYS_PTRACE_BIT;
}

AccessVerdict read(const AccessFacts& f) {
    return diagnose(f, AccessMode::read);
}
AccessVerdict attach(const AccessFacts& f) {
    return diagnose(f, AccessMode::attach);
}
AccessVerdict ptrace_attach(const AccessFacts& f) {
    return diagnose(f, AccessMode::ptrace_attach);
}

TEST(Diagnose, same_user_is_allowed_in_both_modes) {
    const AccessFacts f = user_facts();
    for (AccessMode mode : {AccessMode::read, AccessMode::attach}) {
        const AccessVerdict v = diagnose(f, mode);
        EXPECT_TRUE(v.allowed()) << v.reason;
        EXPECT_EQ(v.rule, AccessRule::allowed);
        EXPECT_THAT(v.reason, HasSubstr("nothing refuses"));
        EXPECT_EQ(v.how_to_allow, "");
    }
}

TEST(Diagnose, no_such_process_comes_first) {
    AccessFacts f = root_target_facts();
    f.exists = false;
    f.zombie = true;
    f.kernel_thread = true;
    f.yama_ptrace_scope = 3;
    for (AccessMode mode : {AccessMode::read, AccessMode::attach}) {
        const AccessVerdict v = diagnose(f, mode);
        EXPECT_EQ(v.rule, AccessRule::no_such_process);
        EXPECT_THAT(v.reason, HasSubstr("process 42 (victim) does not exist"));
        EXPECT_THAT(v.how_to_allow, HasSubstr("ps -p 42"));
    }
}

TEST(Diagnose, kernel_thread_before_zombie_and_uids) {
    AccessFacts f = root_target_facts();
    f.kernel_thread = true;
    f.zombie = true;
    f.target_comm = "kthreadd";
    f.target_pid = 2;
    AccessVerdict v = read(f);
    EXPECT_EQ(v.rule, AccessRule::kernel_thread);
    EXPECT_EQ(
        v.reason,
        "process 2 (kthreadd) is a kernel thread: it has no user address space, so its memory map is empty");
    EXPECT_THAT(v.how_to_allow, HasSubstr("user-space process"));
    v = attach(f);
    EXPECT_EQ(v.rule, AccessRule::kernel_thread);
    EXPECT_THAT(v.reason, HasSubstr("cannot be traced"));
}

TEST(Diagnose, zombie_before_uids) {
    AccessFacts f = root_target_facts();
    f.zombie = true;
    for (AccessMode mode : {AccessMode::read, AccessMode::attach}) {
        const AccessVerdict v = diagnose(f, mode);
        EXPECT_EQ(v.rule, AccessRule::zombie);
        EXPECT_THAT(v.reason, HasSubstr("process 42 (victim) is a zombie"));
        EXPECT_THAT(v.how_to_allow, HasSubstr("reap"));
    }
}

TEST(Diagnose, own_process_is_allowed_whatever_else_holds) {
    AccessFacts f = root_target_facts();
    f.target_pid = f.caller_pid;
    f.target_dumpable = false;
    f.yama_ptrace_scope = 3;
    f.target.tracer_pid = 77;
    f.same_user_namespace = false;
    f.target.cap_prm = ~std::uint64_t{0};
    for (AccessMode mode : {AccessMode::read, AccessMode::attach}) {
        const AccessVerdict v = diagnose(f, mode);
        EXPECT_TRUE(v.allowed()) << v.reason;
        EXPECT_THAT(v.reason, HasSubstr("your own process"));
    }
}

TEST(Diagnose, uid_mismatch_names_the_uids_and_the_fixes) {
    const AccessFacts f = root_target_facts();
    for (AccessMode mode : {AccessMode::read, AccessMode::attach}) {
        const AccessVerdict v = diagnose(f, mode);
        EXPECT_EQ(v.rule, AccessRule::uid_mismatch);
        EXPECT_EQ(
            v.reason,
            "process 42 (victim) runs as uid 0 (real/effective/saved 0/0/0) and you are uid 1000 without "
            "CAP_SYS_PTRACE");
        EXPECT_EQ(
            v.how_to_allow,
            "run as root (`sudo <command>`) or give the tool CAP_SYS_PTRACE (`sudo setcap cap_sys_ptrace+ep "
            "/usr/bin/xpeek`)");
    }
}

TEST(Diagnose, uid_mismatch_with_another_user_suggests_sudo_u) {
    AccessFacts f = user_facts();
    set_uids(f.caller, 1001, 1001, 1001, 1001);
    AccessVerdict v = read(f);
    EXPECT_EQ(v.rule, AccessRule::uid_mismatch);
    EXPECT_THAT(v.reason,
                HasSubstr("runs as uid 1000 (real/effective/saved 1000/1000/1000) and you are uid 1001"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("run as its owner (`sudo -u alice <command>`)"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("setcap cap_sys_ptrace+ep /usr/bin/xpeek"));

    f.target_user.clear();
    f.caller_exe.clear();
    v = read(f);
    EXPECT_THAT(v.how_to_allow, HasSubstr("`sudo -u '#1000' <command>`"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("setcap cap_sys_ptrace+ep <tool>"));
}

TEST(Diagnose, uid_mismatch_when_target_uids_differ_among_themselves) {
    AccessFacts f = user_facts();
    set_uids(f.target, 1000, 0, 1000, 0);  // a setuid-root program run by the user
    const AccessVerdict v = read(f);
    EXPECT_EQ(v.rule, AccessRule::uid_mismatch);
    EXPECT_THAT(v.reason, HasSubstr("runs as uid 0 (real/effective/saved 1000/0/1000) and you are uid 1000"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("differ"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("run as root"));
}

TEST(Diagnose, cap_sys_ptrace_overrides_uid_and_gid_mismatch) {
    AccessFacts f = root_target_facts();
    give_cap_sys_ptrace(f);
    for (AccessMode mode : {AccessMode::read, AccessMode::attach}) {
        const AccessVerdict v = diagnose(f, mode);
        EXPECT_TRUE(v.allowed()) << v.reason;
        EXPECT_THAT(v.reason, HasSubstr("CAP_SYS_PTRACE"));
    }
}

TEST(Diagnose, cap_sys_ptrace_counts_only_in_the_effective_set) {
    AccessFacts f = root_target_facts();
    f.caller.cap_prm = CAP_SYS_PTRACE_BIT;  // permitted but not raised
    EXPECT_EQ(read(f).rule, AccessRule::uid_mismatch);
    EXPECT_EQ(attach(f).rule, AccessRule::uid_mismatch);
}

TEST(Diagnose, read_mode_uses_fsuid_attach_mode_uses_real_uid) {
    AccessFacts f = root_target_facts();
    set_uids(f.caller, 1000, 0, 0, 0);  // setuid root: real 1000, fs 0
    set_gids(f.caller, 0, 0, 0, 0);
    EXPECT_TRUE(read(f).allowed()) << read(f).reason;
    AccessVerdict v = attach(f);
    EXPECT_EQ(v.rule, AccessRule::uid_mismatch);
    EXPECT_THAT(v.reason, HasSubstr("you are uid 1000"));

    set_uids(f.caller, 0, 1000, 1000, 1000);  // real 0, fs 1000
    v = read(f);
    EXPECT_EQ(v.rule, AccessRule::uid_mismatch);
    EXPECT_THAT(v.reason, HasSubstr("you are uid 1000"));
    EXPECT_TRUE(attach(f).allowed()) << attach(f).reason;
}

TEST(Diagnose, gid_mismatch_when_only_gids_differ) {
    AccessFacts f = user_facts();
    set_gids(f.target, 1000, 50, 1000, 50);
    f.target_group = "staff";
    const AccessVerdict v = read(f);
    EXPECT_EQ(v.rule, AccessRule::gid_mismatch);
    EXPECT_EQ(
        v.reason,
        "process 42 (victim) runs as gid 50 (real/effective/saved 1000/50/1000) and you are gid 1000 without "
        "CAP_SYS_PTRACE");
    EXPECT_THAT(v.how_to_allow, HasSubstr("differ"));

    set_gids(f.target, 50, 50, 50, 50);
    const AccessVerdict same = attach(f);
    EXPECT_EQ(same.rule, AccessRule::gid_mismatch);
    EXPECT_THAT(same.how_to_allow, HasSubstr("sudo -g staff"));
    EXPECT_THAT(same.how_to_allow, HasSubstr("setcap cap_sys_ptrace+ep"));
}

TEST(Diagnose, uid_mismatch_is_reported_before_gid_mismatch) {
    AccessFacts f = user_facts();
    set_uids(f.target, 0, 0, 0, 0);
    set_gids(f.target, 0, 0, 0, 0);
    EXPECT_EQ(read(f).rule, AccessRule::uid_mismatch);
}

TEST(Diagnose, user_namespace_outside_ours_defeats_cap_sys_ptrace) {
    AccessFacts f = root_target_facts();
    give_cap_sys_ptrace(f);
    f.same_user_namespace = false;
    f.caller_user_namespace = "user:[4026532201]";
    f.target_user_namespace = "user:[4026531837]";
    for (AccessMode mode : {AccessMode::read, AccessMode::attach}) {
        const AccessVerdict v = diagnose(f, mode);
        EXPECT_EQ(v.rule, AccessRule::user_namespace);
        EXPECT_EQ(
            v.reason,
            "process 42 (victim) lives in user namespace user:[4026531837], which is neither yours "
            "(user:[4026532201]) nor nested inside it, so no capability of yours (not even CAP_SYS_PTRACE) "
            "applies there");
        EXPECT_THAT(v.how_to_allow, HasSubstr("nsenter --target 42 --user"));
    }
}

TEST(Diagnose, nested_user_namespace_needs_cap_or_ownership) {
    AccessFacts f = root_target_facts();
    f.same_user_namespace = false;
    f.target_in_descendant_namespace = true;
    AccessVerdict v = read(f);
    EXPECT_EQ(v.rule, AccessRule::user_namespace);
    EXPECT_THAT(v.reason, HasSubstr("nested in yours"));
    EXPECT_THAT(v.reason, HasSubstr("not created by you"));

    give_cap_sys_ptrace(f);  // CAP_SYS_PTRACE in an ancestor namespace reaches nested ones
    EXPECT_TRUE(read(f).allowed()) << read(f).reason;
    EXPECT_TRUE(attach(f).allowed()) << attach(f).reason;

    AccessFacts owner = root_target_facts();  // e.g. a rootless container the caller created
    owner.same_user_namespace = false;
    owner.caller_owns_target_namespace = true;
    owner.target_dumpable = false;
    owner.target.cap_prm = ~std::uint64_t{0};
    EXPECT_TRUE(read(owner).allowed()) << read(owner).reason;
    EXPECT_TRUE(attach(owner).allowed()) << attach(owner).reason;
}

TEST(Diagnose, same_uid_in_a_foreign_namespace_is_refused_by_the_namespace) {
    AccessFacts f = user_facts();  // uids match, so only the capability LSM refuses
    f.same_user_namespace = false;
    const AccessVerdict v = read(f);
    EXPECT_EQ(v.rule, AccessRule::user_namespace);
    EXPECT_THAT(v.reason, HasSubstr("another user namespace"));
}

TEST(Diagnose, not_dumpable_unless_cap_sys_ptrace) {
    AccessFacts f = user_facts();
    f.target_dumpable = false;
    AccessVerdict v = read(f);
    EXPECT_EQ(v.rule, AccessRule::not_dumpable);
    EXPECT_EQ(
        v.reason,
        "process 42 (victim) is not dumpable (it runs a setuid/setgid or file-capability program, changed "
        "its credentials, or called prctl(PR_SET_DUMPABLE, 0)) and you lack CAP_SYS_PTRACE");
    EXPECT_THAT(v.how_to_allow,
                HasSubstr("only root or a process with CAP_SYS_PTRACE can read its memory map"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("setcap cap_sys_ptrace+ep /usr/bin/xpeek"));
    v = attach(f);
    EXPECT_EQ(v.rule, AccessRule::not_dumpable);
    EXPECT_THAT(v.how_to_allow, HasSubstr("attach to it"));

    give_cap_sys_ptrace(f);
    EXPECT_TRUE(read(f).allowed());
    EXPECT_TRUE(attach(f).allowed());
}

TEST(Diagnose, uid_mismatch_is_reported_before_not_dumpable) {
    AccessFacts f = root_target_facts();
    f.target_dumpable = false;
    EXPECT_EQ(read(f).rule, AccessRule::uid_mismatch);
}

TEST(Diagnose, target_with_more_capabilities) {
    AccessFacts f = user_facts();
    f.target.cap_prm = CAP_NET_RAW_BIT;  // e.g. a file-capability ping run by the same user
    AccessVerdict v = read(f);
    EXPECT_EQ(v.rule, AccessRule::target_capabilities);
    EXPECT_THAT(v.reason, HasSubstr("its permitted set 0x0000000000002000 is not within your effective set "
                                    "0x0000000000000000"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("CAP_SYS_PTRACE"));

    // Read mode compares with the caller's effective set, attach mode with its permitted set.
    f.caller.cap_prm = CAP_NET_RAW_BIT;
    EXPECT_EQ(read(f).rule, AccessRule::target_capabilities);
    EXPECT_TRUE(attach(f).allowed()) << attach(f).reason;
    f.caller.cap_prm = 0;
    f.caller.cap_eff = CAP_NET_RAW_BIT;
    EXPECT_TRUE(read(f).allowed()) << read(f).reason;
    v = attach(f);
    EXPECT_EQ(v.rule, AccessRule::target_capabilities);
    EXPECT_THAT(v.reason, HasSubstr("your permitted set"));

    give_cap_sys_ptrace(f);
    EXPECT_TRUE(attach(f).allowed());
}

TEST(Diagnose, yama_1_refuses_non_ancestors_and_mentions_pr_set_ptracer) {
    AccessFacts f = user_facts();
    f.yama_ptrace_scope = 1;
    const AccessVerdict v = attach(f);
    EXPECT_EQ(v.rule, AccessRule::yama_scope_1);
    EXPECT_EQ(
        v.reason,
        "Yama ptrace_scope is 1: only an ancestor of process 42 (victim) may attach to it, and you (pid 100) "
        "are not one and lack CAP_SYS_PTRACE; the target could still grant you access with "
        "prctl(PR_SET_PTRACER, 100), which cannot be seen from outside");
    EXPECT_THAT(v.how_to_allow, HasSubstr("prctl(PR_SET_PTRACER, 100)"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("sysctl kernel.yama.ptrace_scope=0"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("setcap cap_sys_ptrace+ep /usr/bin/xpeek"));
}

TEST(Diagnose, yama_1_allows_ancestors_and_cap_sys_ptrace) {
    AccessFacts f = user_facts();
    f.yama_ptrace_scope = 1;
    f.caller_is_ancestor = true;
    EXPECT_TRUE(attach(f).allowed()) << attach(f).reason;

    f.caller_is_ancestor = false;
    give_cap_sys_ptrace(f);
    EXPECT_TRUE(attach(f).allowed()) << attach(f).reason;
}

TEST(Diagnose, yama_2_needs_cap_sys_ptrace_even_for_ancestors) {
    AccessFacts f = user_facts();
    f.yama_ptrace_scope = 2;
    f.caller_is_ancestor = true;
    const AccessVerdict v = attach(f);
    EXPECT_EQ(v.rule, AccessRule::yama_scope_2);
    EXPECT_THAT(v.reason, HasSubstr("ptrace_scope is 2"));
    EXPECT_THAT(v.reason, HasSubstr("CAP_SYS_PTRACE"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("sysctl kernel.yama.ptrace_scope=1"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("setcap cap_sys_ptrace+ep"));

    give_cap_sys_ptrace(f);
    EXPECT_TRUE(attach(f).allowed());
}

TEST(Diagnose, yama_3_refuses_even_cap_sys_ptrace) {
    AccessFacts f = user_facts();
    give_cap_sys_ptrace(f);
    f.caller_is_ancestor = true;
    for (int scope : {3, 4}) {
        f.yama_ptrace_scope = scope;
        const AccessVerdict v = attach(f);
        EXPECT_EQ(v.rule, AccessRule::yama_scope_3);
        EXPECT_THAT(v.reason, HasSubstr("even root with CAP_SYS_PTRACE"));
        EXPECT_THAT(v.how_to_allow, HasSubstr("reboot"));
    }
}

TEST(Diagnose, yama_0_or_absent_allows) {
    AccessFacts f = user_facts();
    f.yama_ptrace_scope = 0;
    EXPECT_TRUE(attach(f).allowed());
    f.yama_ptrace_scope.reset();
    EXPECT_TRUE(attach(f).allowed());
}

TEST(Diagnose, read_mode_ignores_yama_and_tracer) {
    AccessFacts f = user_facts();
    f.target.tracer_pid = 77;
    for (int scope : {1, 2, 3}) {
        f.yama_ptrace_scope = scope;
        EXPECT_TRUE(read(f).allowed()) << scope << ": " << read(f).reason;
    }
}

TEST(Diagnose, uid_rules_come_before_yama) {
    AccessFacts f = root_target_facts();
    f.yama_ptrace_scope = 3;
    EXPECT_EQ(attach(f).rule, AccessRule::uid_mismatch);
    f = user_facts();
    f.target_dumpable = false;
    f.yama_ptrace_scope = 2;
    EXPECT_EQ(attach(f).rule, AccessRule::not_dumpable);
}

TEST(Diagnose, already_traced_names_the_tracer) {
    AccessFacts f = user_facts();
    f.target.tracer_pid = 77;
    f.tracer_comm = "gdb";
    AccessVerdict v = ptrace_attach(f);
    EXPECT_EQ(v.rule, AccessRule::already_traced);
    EXPECT_EQ(v.reason,
              "process 42 (victim) is already traced by PID 77 (gdb) (its TracerPid), and a process can have "
              "only one tracer");
    EXPECT_THAT(v.how_to_allow, HasSubstr("detach the other tracer, PID 77 (gdb)"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("kill 77"));

    f.tracer_comm.clear();
    v = ptrace_attach(f);
    EXPECT_THAT(v.reason, HasSubstr("already traced by PID 77 (its TracerPid)"));
}

TEST(Diagnose, our_own_tracing_is_not_a_refusal) {
    AccessFacts f = user_facts();
    f.target.tracer_pid = f.caller_pid;
    EXPECT_TRUE(attach(f).allowed());
}

TEST(Diagnose, yama_is_reported_before_the_tracer) {
    AccessFacts f = user_facts();
    f.target.tracer_pid = 77;
    f.yama_ptrace_scope = 2;
    EXPECT_EQ(ptrace_attach(f).rule, AccessRule::yama_scope_2);
    give_cap_sys_ptrace(f);  // passes Yama 2, still traced
    EXPECT_EQ(ptrace_attach(f).rule, AccessRule::already_traced);
}

TEST(Diagnose, no_new_privs_warns_that_setcap_will_not_help) {
    AccessFacts f = root_target_facts();
    f.caller.no_new_privs = true;
    EXPECT_THAT(read(f).how_to_allow, HasSubstr("no effect while no_new_privs is set"));
    f.caller.no_new_privs = false;
    EXPECT_THAT(read(f).how_to_allow, Not(HasSubstr("no_new_privs")));
}

TEST(Diagnose, unknown_target_is_named_generically) {
    AccessFacts f = root_target_facts();
    f.target_pid = 0;
    f.target_comm.clear();
    EXPECT_THAT(read(f).reason, HasSubstr("the target runs as uid 0"));
}

TEST(AccessVerdict, to_error_carries_kind_reason_and_hint) {
    const AccessVerdict v = read(root_target_facts());
    const xproc::Error e = v.to_error("open(/proc/42/maps)", 42, EACCES);
    EXPECT_EQ(e.kind, ErrorKind::permission);
    EXPECT_EQ(e.errno_value, EACCES);
    EXPECT_EQ(e.pid, 42);
    EXPECT_EQ(e.detail, v.reason);
    EXPECT_EQ(e.hint, v.how_to_allow);
    EXPECT_EQ(
        e.message(),
        "open(/proc/42/maps) [pid 42]: process 42 (victim) runs as uid 0 (real/effective/saved 0/0/0) and "
        "you are uid 1000 without CAP_SYS_PTRACE (Permission denied); run as root (`sudo <command>`) or give "
        "the tool CAP_SYS_PTRACE (`sudo setcap cap_sys_ptrace+ep /usr/bin/xpeek`)");
}

TEST(AccessVerdict, to_error_kinds_follow_the_rule) {
    AccessFacts f = user_facts();
    f.exists = false;
    EXPECT_EQ(read(f).to_error("op", 42, ESRCH).kind, ErrorKind::no_such_process);
    f = user_facts();
    f.zombie = true;
    EXPECT_EQ(read(f).to_error("op", 42, 0).kind, ErrorKind::zombie);
    f = user_facts();
    f.kernel_thread = true;
    EXPECT_EQ(read(f).to_error("op", 42, 0).kind, ErrorKind::kernel_thread);
    f = user_facts();
    f.yama_ptrace_scope = 3;
    EXPECT_EQ(attach(f).to_error("ptrace(PTRACE_SEIZE)", 42, EPERM).kind, ErrorKind::permission);
}

TEST(AccessVerdict, to_error_of_an_allowing_verdict_points_at_other_security_modules) {
    const AccessVerdict v = read(user_facts());
    xproc::Error e = v.to_error("open(/proc/42/mem)", 42, EACCES);
    EXPECT_EQ(e.kind, ErrorKind::permission);
    EXPECT_THAT(e.detail, HasSubstr("no ptrace rule explains it; a security module"));
    e = v.to_error("read(/proc/42/maps)", 42, EIO);
    EXPECT_EQ(e.kind, ErrorKind::os);
    EXPECT_EQ(e.detail, "");
}

TEST(AccessRuleNames, are_distinct_and_snake_case) {
    std::set<std::string> names;
    for (AccessRule r :
         {AccessRule::allowed, AccessRule::no_such_process, AccessRule::zombie, AccessRule::kernel_thread,
          AccessRule::uid_mismatch, AccessRule::gid_mismatch, AccessRule::user_namespace,
          AccessRule::not_dumpable, AccessRule::target_capabilities, AccessRule::yama_scope_1,
          AccessRule::yama_scope_2, AccessRule::yama_scope_3, AccessRule::already_traced,
          AccessRule::undetermined, AccessRule::own_process, AccessRule::no_new_privs,
          AccessRule::proc_mem_permission}) {
        const std::string name(xproc::to_string(r));
        EXPECT_NE(name, "unknown");
        EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_0123456789"), std::string::npos) << name;
        names.insert(name);
    }
    EXPECT_EQ(names.size(), 17u);
    EXPECT_EQ(xproc::to_string(AccessRule::uid_mismatch), "uid_mismatch");
}

// ---------------------------------------------------------------------------
// The split of attach modes, and the new rules

/// A root-owned 0600 /proc/42/mem, as for a root target (or a non-dumpable one).
void root_proc_mem(AccessFacts& f) {
    f.proc_mem = AccessFacts::FileOwner{0, 0, 0600};
    f.proc_mem_user = "root";
    f.proc_mem_group = "root";
}

/// The caller's own 0600 /proc/42/mem (a dumpable target of its own uid).
void own_proc_mem(AccessFacts& f) {
    f.proc_mem = AccessFacts::FileOwner{1000, 1000, 0600};
    f.proc_mem_user = "alice";
    f.proc_mem_group = "alice";
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t nl = text.find('\n', start);
        lines.push_back(text.substr(start, nl - start));
        start = nl == std::string::npos ? text.size() : nl + 1;
    }
    return lines;
}

/// The report line of `check`, or "" if the report has none.
std::string line_of(const xproc::AccessReport& r, xproc::AccessCheck check) {
    for (const AccessVerdict& v : r.rules) {
        if (v.check == check) {
            return std::string(v.allowed() ? "ok" : "REFUSES") + " " + v.finding;
        }
    }
    return "";
}

std::vector<xproc::AccessCheck> checks_of(const xproc::AccessReport& r) {
    std::vector<xproc::AccessCheck> checks;
    for (const AccessVerdict& v : r.rules) {
        checks.push_back(v.check);
    }
    return checks;
}

using xproc::AccessCheck;
using xproc::AccessReport;
using xproc::diagnose_all;

TEST(DiagnoseModes, a_tracer_refuses_only_ptrace_attach) {
    AccessFacts f = user_facts();
    f.target.tracer_pid = 77;
    f.tracer_comm = "gdb";
    EXPECT_TRUE(read(f).allowed()) << read(f).reason;
    EXPECT_TRUE(attach(f).allowed()) << attach(f).reason;  // process_vm_readv works under a debugger
    EXPECT_TRUE(diagnose(f, AccessMode::proc_mem).allowed());
    EXPECT_EQ(ptrace_attach(f).rule, AccessRule::already_traced);

    const AccessReport r = diagnose_all(f, AccessMode::attach);
    EXPECT_EQ(line_of(r, AccessCheck::tracer),
              "ok traced by PID 77 (gdb) — memory access does not need the tracer slot");
    const AccessReport p = diagnose_all(f, AccessMode::ptrace_attach);
    EXPECT_EQ(line_of(p, AccessCheck::tracer), "REFUSES traced by PID 77 (gdb) — one tracer at a time");
}

TEST(DiagnoseModes, ptrace_attach_to_a_process_we_already_trace_is_refused) {
    AccessFacts f = user_facts();
    f.target.tracer_pid = f.caller_pid;
    EXPECT_TRUE(attach(f).allowed());
    const AccessVerdict v = ptrace_attach(f);
    EXPECT_EQ(v.rule, AccessRule::already_traced);
    EXPECT_EQ(v.reason,
              "process 42 (victim) is already traced by you (TracerPid 100), and a process can have only one "
              "tracer");
    EXPECT_THAT(v.how_to_allow, HasSubstr("PTRACE_DETACH"));
}

TEST(DiagnoseModes, an_untraced_target_has_a_free_tracer_slot) {
    const AccessReport r = diagnose_all(user_facts(), AccessMode::ptrace_attach);
    EXPECT_TRUE(r.verdict.allowed()) << r.verdict.reason;
    EXPECT_EQ(line_of(r, AccessCheck::tracer), "ok not traced (TracerPid 0)");
    // Memory access and reads do not list the tracer when there is none.
    EXPECT_EQ(line_of(diagnose_all(user_facts(), AccessMode::attach), AccessCheck::tracer), "");
}

TEST(DiagnoseModes, ptrace_attach_to_ourselves_is_refused) {
    AccessFacts f = user_facts();
    f.target_pid = f.caller_pid;
    const AccessVerdict v = ptrace_attach(f);
    EXPECT_EQ(v.rule, AccessRule::own_process);
    EXPECT_THAT(v.reason, HasSubstr("cannot ptrace-attach to itself"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("fork a child"));
    EXPECT_TRUE(attach(f).allowed());

    // One of our own threads: its tgid is our pid.
    f = user_facts();
    f.target_pid = 101;
    f.target.tgid = f.caller_pid;
    EXPECT_EQ(ptrace_attach(f).rule, AccessRule::own_process);
    EXPECT_TRUE(read(f).allowed());
}

TEST(DiagnoseModes, yama_applies_to_every_attach_mode_but_not_read) {
    AccessFacts f = user_facts();
    own_proc_mem(f);
    f.yama_ptrace_scope = 2;
    EXPECT_TRUE(read(f).allowed());
    for (AccessMode mode : {AccessMode::attach, AccessMode::ptrace_attach, AccessMode::proc_mem}) {
        EXPECT_EQ(diagnose(f, mode).rule, AccessRule::yama_scope_2) << xproc::to_string(mode);
    }
    EXPECT_EQ(line_of(diagnose_all(f, AccessMode::read), AccessCheck::yama), "");
}

TEST(DiagnoseModes, mode_names) {
    EXPECT_EQ(xproc::to_string(AccessMode::read), "read");
    EXPECT_EQ(xproc::to_string(AccessMode::attach), "attach");
    EXPECT_EQ(xproc::to_string(AccessMode::ptrace_attach), "ptrace_attach");
    EXPECT_EQ(xproc::to_string(AccessMode::proc_mem), "proc_mem");
}

TEST(DiagnoseAll, lists_every_check_in_kernel_order) {
    AccessFacts f = user_facts();
    own_proc_mem(f);
    EXPECT_EQ(checks_of(diagnose_all(f, AccessMode::read)),
              (std::vector<AccessCheck>{AccessCheck::process, AccessCheck::uids, AccessCheck::gids,
                                        AccessCheck::dumpable, AccessCheck::user_namespace,
                                        AccessCheck::capabilities}));
    EXPECT_EQ(
        checks_of(diagnose_all(f, AccessMode::attach)),
        (std::vector<AccessCheck>{AccessCheck::process, AccessCheck::uids, AccessCheck::gids,
                                  AccessCheck::dumpable, AccessCheck::user_namespace,
                                  AccessCheck::capabilities, AccessCheck::yama, AccessCheck::proc_mem_file}));
    EXPECT_EQ(checks_of(diagnose_all(f, AccessMode::ptrace_attach)),
              (std::vector<AccessCheck>{AccessCheck::process, AccessCheck::uids, AccessCheck::gids,
                                        AccessCheck::dumpable, AccessCheck::user_namespace,
                                        AccessCheck::capabilities, AccessCheck::yama, AccessCheck::tracer}));
    // open(2) checks the file's mode before proc_mem_open's ptrace check.
    EXPECT_EQ(checks_of(diagnose_all(f, AccessMode::proc_mem)),
              (std::vector<AccessCheck>{AccessCheck::process, AccessCheck::proc_mem_file, AccessCheck::uids,
                                        AccessCheck::gids, AccessCheck::dumpable, AccessCheck::user_namespace,
                                        AccessCheck::capabilities, AccessCheck::yama}));
    for (AccessMode mode :
         {AccessMode::read, AccessMode::attach, AccessMode::ptrace_attach, AccessMode::proc_mem}) {
        const AccessReport r = diagnose_all(f, mode);
        EXPECT_TRUE(r.verdict.allowed()) << r.verdict.reason;
        for (const AccessVerdict& v : r.rules) {
            EXPECT_TRUE(v.allowed()) << v.finding;
            EXPECT_FALSE(v.finding.empty());
        }
    }
}

TEST(DiagnoseAll, reports_every_refusal_and_the_first_decides) {
    AccessFacts f = root_target_facts();
    root_proc_mem(f);
    f.target_dumpable = false;
    f.target.cap_prm = CAP_NET_RAW_BIT;
    f.yama_ptrace_scope = 1;
    f.target.tracer_pid = 77;
    f.tracer_comm = "gdb";
    const AccessReport r = diagnose_all(f, AccessMode::ptrace_attach);
    EXPECT_EQ(r.verdict.rule, AccessRule::uid_mismatch);
    EXPECT_EQ(r.verdict.reason, read(f).reason);
    std::vector<AccessRule> refusals;
    for (const AccessVerdict& v : r.rules) {
        if (!v.allowed()) {
            refusals.push_back(v.rule);
            EXPECT_FALSE(v.reason.empty());
            EXPECT_FALSE(v.how_to_allow.empty()) << xproc::to_string(v.rule);
        }
    }
    EXPECT_EQ(refusals, (std::vector<AccessRule>{AccessRule::uid_mismatch, AccessRule::gid_mismatch,
                                                 AccessRule::not_dumpable, AccessRule::target_capabilities,
                                                 AccessRule::yama_scope_1, AccessRule::already_traced}));
    EXPECT_EQ(diagnose(f, AccessMode::ptrace_attach).rule, r.verdict.rule);
}

TEST(DiagnoseAll, finding_lines_say_what_each_check_saw) {
    AccessFacts f = root_target_facts();
    f.target_dumpable = false;
    f.target.cap_prm = CAP_NET_RAW_BIT;
    f.caller_user_namespace = "user:[4026531837]";
    AccessReport r = diagnose_all(f, AccessMode::attach);
    EXPECT_EQ(line_of(r, AccessCheck::uids),
              "REFUSES caller ruid 1000, target ruid/euid/suid 0/0/0 — mismatch; no CAP_SYS_PTRACE");
    EXPECT_EQ(line_of(r, AccessCheck::gids),
              "REFUSES caller rgid 1000, target rgid/egid/sgid 0/0/0 — mismatch; no CAP_SYS_PTRACE");
    EXPECT_EQ(line_of(r, AccessCheck::dumpable),
              "REFUSES no (its /proc files belong to root) — no CAP_SYS_PTRACE");
    EXPECT_EQ(line_of(r, AccessCheck::user_namespace), "ok same as yours (user:[4026531837])");
    EXPECT_EQ(
        line_of(r, AccessCheck::capabilities),
        "REFUSES target permitted 0x0000000000002000 not within your permitted 0x0000000000000000 (it has "
        "cap_net_raw) — no CAP_SYS_PTRACE");
    f.target.cap_prm = 0x1f;  // five capabilities: the line names three
    EXPECT_THAT(
        line_of(diagnose_all(f, AccessMode::attach), AccessCheck::capabilities),
        HasSubstr("(it has cap_chown,cap_dac_override,cap_dac_read_search and 2 more) — no CAP_SYS_PTRACE"));
    // Read mode compares the filesystem ids and the effective set.
    r = diagnose_all(f, AccessMode::read);
    EXPECT_EQ(line_of(r, AccessCheck::uids),
              "REFUSES caller fsuid 1000, target ruid/euid/suid 0/0/0 — mismatch; no CAP_SYS_PTRACE");
    EXPECT_THAT(line_of(r, AccessCheck::capabilities), HasSubstr("not within your effective"));

    give_cap_sys_ptrace(f);
    r = diagnose_all(f, AccessMode::attach);
    EXPECT_EQ(line_of(r, AccessCheck::uids),
              "ok caller ruid 1000, target ruid/euid/suid 0/0/0 — mismatch; CAP_SYS_PTRACE overrides");
    EXPECT_EQ(line_of(r, AccessCheck::dumpable),
              "ok no (its /proc files belong to root) — CAP_SYS_PTRACE overrides");
    EXPECT_THAT(line_of(r, AccessCheck::capabilities), HasSubstr("— CAP_SYS_PTRACE overrides"));

    r = diagnose_all(user_facts(), AccessMode::attach);
    EXPECT_EQ(line_of(r, AccessCheck::uids),
              "ok caller ruid 1000, target ruid/euid/suid 1000/1000/1000 — match");
    EXPECT_EQ(line_of(r, AccessCheck::dumpable), "ok yes");
}

TEST(DiagnoseAll, user_namespace_lines) {
    AccessFacts f = user_facts();
    f.same_user_namespace = false;
    f.caller_user_namespace = "user:[1]";
    f.target_user_namespace = "user:[2]";
    AccessReport r = diagnose_all(f, AccessMode::read);
    EXPECT_EQ(r.verdict.rule, AccessRule::user_namespace);
    EXPECT_EQ(line_of(r, AccessCheck::user_namespace),
              "REFUSES target in user:[2], outside yours, user:[1] — no capability of yours applies there");
    EXPECT_EQ(line_of(r, AccessCheck::capabilities), "");  // the subset rule is for one namespace only

    f.target_in_descendant_namespace = true;
    EXPECT_EQ(
        line_of(diagnose_all(f, AccessMode::read), AccessCheck::user_namespace),
        "REFUSES target in user:[2], nested in yours, user:[1] but not created by you — no CAP_SYS_PTRACE");
    give_cap_sys_ptrace(f);
    r = diagnose_all(f, AccessMode::read);
    EXPECT_TRUE(r.verdict.allowed());
    EXPECT_EQ(line_of(r, AccessCheck::user_namespace),
              "ok target in user:[2], nested in yours, user:[1] — your CAP_SYS_PTRACE applies there");

    f = root_target_facts();
    f.same_user_namespace = false;
    f.caller_owns_target_namespace = true;
    f.target_user_namespace = "user:[2]";
    r = diagnose_all(f, AccessMode::attach);
    EXPECT_TRUE(r.verdict.allowed()) << r.verdict.reason;
    EXPECT_THAT(line_of(r, AccessCheck::user_namespace),
                HasSubstr("ok target in user:[2], created by your euid"));
    // A uid mismatch outside our namespace is the namespace's fault.
    f = root_target_facts();
    f.same_user_namespace = false;
    r = diagnose_all(f, AccessMode::attach);
    EXPECT_EQ(r.verdict.rule, AccessRule::user_namespace);
    EXPECT_EQ(
        line_of(r, AccessCheck::uids),
        "REFUSES caller ruid 1000, target ruid/euid/suid 0/0/0 — mismatch; no CAP_SYS_PTRACE in the target's "
        "user namespace");
}

TEST(DiagnoseAll, yama_lines_for_each_scope) {
    AccessFacts f = user_facts();
    EXPECT_EQ(line_of(diagnose_all(f, AccessMode::attach), AccessCheck::yama),
              "ok not loaded (no /proc/sys/kernel/yama/ptrace_scope)");
    f.yama_ptrace_scope = 0;
    EXPECT_EQ(line_of(diagnose_all(f, AccessMode::attach), AccessCheck::yama),
              "ok ptrace_scope 0: classic ptrace permissions only");
    f.yama_ptrace_scope = 1;
    AccessReport r = diagnose_all(f, AccessMode::ptrace_attach);
    EXPECT_EQ(r.verdict.rule, AccessRule::yama_scope_1);
    EXPECT_EQ(
        line_of(r, AccessCheck::yama),
        "REFUSES ptrace_scope 1: you (pid 100) are not an ancestor of the target and lack CAP_SYS_PTRACE — "
        "refused unless the target called prctl(PR_SET_PTRACER, 100)");
    f.caller_is_ancestor = true;
    EXPECT_EQ(line_of(diagnose_all(f, AccessMode::attach), AccessCheck::yama),
              "ok ptrace_scope 1: you (pid 100) are an ancestor of the target");
    f.yama_ptrace_scope = 2;
    EXPECT_EQ(line_of(diagnose_all(f, AccessMode::attach), AccessCheck::yama),
              "REFUSES ptrace_scope 2: CAP_SYS_PTRACE required — you lack it");
    give_cap_sys_ptrace(f);
    EXPECT_EQ(line_of(diagnose_all(f, AccessMode::attach), AccessCheck::yama),
              "ok ptrace_scope 2: CAP_SYS_PTRACE required — you have it");
    f.yama_ptrace_scope = 1;
    f.caller_is_ancestor = false;
    EXPECT_EQ(line_of(diagnose_all(f, AccessMode::attach), AccessCheck::yama),
              "ok ptrace_scope 1: not an ancestor — CAP_SYS_PTRACE overrides");
    f.yama_ptrace_scope = 3;
    r = diagnose_all(f, AccessMode::attach);
    EXPECT_EQ(r.verdict.rule, AccessRule::yama_scope_3);
    EXPECT_EQ(line_of(r, AccessCheck::yama),
              "REFUSES ptrace_scope 3: attaching is disabled for everyone, even with CAP_SYS_PTRACE");
}

TEST(DiagnoseProcMem, root_owned_mem_file_refuses_an_open_but_not_process_vm_readv) {
    AccessFacts f = root_target_facts();
    root_proc_mem(f);
    give_cap_sys_ptrace(f);  // `setcap cap_sys_ptrace+ep`: ptrace rules pass, DAC does not
    const AccessVerdict open_verdict = diagnose(f, AccessMode::proc_mem);
    EXPECT_EQ(open_verdict.rule, AccessRule::proc_mem_permission);
    EXPECT_EQ(
        open_verdict.reason,
        "/proc/42/mem belongs to 0:0 (root:root) with mode 0600, which does not let your filesystem uid 1000 "
        "(gid 1000) read it, and you lack CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE");
    EXPECT_EQ(
        open_verdict.how_to_allow,
        "run as root (`sudo <command>`), or give the tool CAP_DAC_READ_SEARCH besides CAP_SYS_PTRACE (`sudo "
        "setcap cap_dac_read_search,cap_sys_ptrace+ep /usr/bin/xpeek`; writing needs cap_dac_override), or "
        "read the memory with process_vm_readv, which does not check the file's permission");
    EXPECT_EQ(open_verdict.to_error("open(/proc/42/mem)", 42, EACCES).kind, ErrorKind::permission);

    const AccessReport r = diagnose_all(f, AccessMode::attach);
    EXPECT_TRUE(r.verdict.allowed()) << r.verdict.reason;
    EXPECT_EQ(r.verdict.reason,
              "nothing refuses: you have CAP_SYS_PTRACE over process 42 (victim); but /proc/42/mem refuses "
              "you (its "
              "file permission), so only process_vm_readv can read the memory");
    EXPECT_EQ(
        line_of(r, AccessCheck::proc_mem_file),
        "REFUSES /proc/42/mem owner 0:0 (root:root) mode 0600; your fsuid 1000 is neither owner nor in its "
        "group — not readable; no CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE (process_vm_readv does not check "
        "it)");
}

TEST(DiagnoseProcMem, dac_capabilities_and_ownership_allow) {
    AccessFacts f = root_target_facts();
    root_proc_mem(f);
    give_cap_sys_ptrace(f);
    f.caller.cap_eff |= std::uint64_t{1} << 2;  // CAP_DAC_READ_SEARCH
    AccessReport r = diagnose_all(f, AccessMode::proc_mem);
    EXPECT_TRUE(r.verdict.allowed()) << r.verdict.reason;
    EXPECT_THAT(line_of(r, AccessCheck::proc_mem_file),
                HasSubstr("not readable; CAP_DAC_READ_SEARCH overrides"));
    f.caller.cap_eff = CAP_SYS_PTRACE_BIT | (std::uint64_t{1} << 1);  // CAP_DAC_OVERRIDE
    EXPECT_THAT(line_of(diagnose_all(f, AccessMode::proc_mem), AccessCheck::proc_mem_file),
                HasSubstr("CAP_DAC_OVERRIDE overrides"));

    AccessFacts mine = user_facts();
    own_proc_mem(mine);
    r = diagnose_all(mine, AccessMode::proc_mem);
    EXPECT_TRUE(r.verdict.allowed());
    EXPECT_EQ(
        line_of(r, AccessCheck::proc_mem_file),
        "ok /proc/42/mem owner 1000:1000 (alice:alice) mode 0600; your fsuid 1000 is the owner — readable");

    // Group and other bits count as in generic_permission(); the owner class is exclusive.
    mine.proc_mem = AccessFacts::FileOwner{2000, 50, 0640};
    mine.caller_groups = {50};
    EXPECT_THAT(line_of(diagnose_all(mine, AccessMode::proc_mem), AccessCheck::proc_mem_file),
                HasSubstr("is in its group — readable"));
    mine.proc_mem = AccessFacts::FileOwner{1000, 1000, 0044};
    EXPECT_EQ(diagnose(mine, AccessMode::proc_mem).rule, AccessRule::proc_mem_permission);
}

TEST(DiagnoseProcMem, proc_mem_checks_the_file_first_and_uses_filesystem_ids) {
    AccessFacts f = root_target_facts();
    root_proc_mem(f);
    EXPECT_EQ(diagnose(f, AccessMode::proc_mem).rule, AccessRule::proc_mem_permission);
    EXPECT_EQ(attach(f).rule, AccessRule::uid_mismatch);

    // A setuid-root caller: real uid 1000, filesystem uid 0. process_vm_readv compares the
    // real uid, the /proc/PID/mem open the filesystem uid.
    f.caller.fsuid = 0;
    f.caller.fsgid = 0;
    EXPECT_TRUE(diagnose(f, AccessMode::proc_mem).allowed()) << diagnose(f, AccessMode::proc_mem).reason;
    EXPECT_EQ(attach(f).rule, AccessRule::uid_mismatch);
}

TEST(DiagnoseFileCaps, no_new_privs_stripping_cap_sys_ptrace_is_reported) {
    AccessFacts f = root_target_facts();
    f.caller.no_new_privs = true;
    f.caller_file_caps = xproc::FileCapabilities{CAP_SYS_PTRACE_BIT, 0, true};
    const AccessReport r = diagnose_all(f, AccessMode::attach);
    ASSERT_GE(r.rules.size(), 2u);
    EXPECT_EQ(r.rules[1].check, AccessCheck::file_caps);  // right after the process, before the uid check
    EXPECT_EQ(r.rules[1].rule, AccessRule::no_new_privs);
    EXPECT_EQ(
        r.rules[1].finding,
        "/usr/bin/xpeek has file capabilities cap_sys_ptrace+ep, but no_new_privs is set, so exec did not "
        "grant cap_sys_ptrace — you run without CAP_SYS_PTRACE");
    EXPECT_EQ(r.rules[1].reason,
              "/usr/bin/xpeek has the file capability cap_sys_ptrace, but exec did not grant it because "
              "no_new_privs is set");
    // The kernel's refusing rule decides; its advice starts with no_new_privs.
    EXPECT_EQ(r.verdict.rule, AccessRule::uid_mismatch);
    EXPECT_THAT(r.verdict.how_to_allow, testing::StartsWith("run the tool without no_new_privs"));
    EXPECT_EQ(diagnose(f, AccessMode::attach).how_to_allow, r.verdict.how_to_allow);
}

TEST(DiagnoseFileCaps, file_caps_that_nothing_needs_or_that_were_granted) {
    AccessFacts f = user_facts();  // own uid: CAP_SYS_PTRACE is not needed
    f.caller.no_new_privs = true;
    f.caller_file_caps = xproc::FileCapabilities{CAP_SYS_PTRACE_BIT, 0, true};
    AccessReport r = diagnose_all(f, AccessMode::attach);
    EXPECT_TRUE(r.verdict.allowed());
    EXPECT_EQ(
        line_of(r, AccessCheck::file_caps),
        "ok /usr/bin/xpeek has file capabilities cap_sys_ptrace+ep, but no_new_privs is set, so exec did not "
        "grant cap_sys_ptrace; none of the checks here needs them");

    f = root_target_facts();
    f.caller_file_caps = xproc::FileCapabilities{CAP_SYS_PTRACE_BIT | CAP_NET_RAW_BIT, 0, true};
    give_cap_sys_ptrace(f);
    f.caller.cap_prm |= CAP_NET_RAW_BIT;
    r = diagnose_all(f, AccessMode::attach);
    EXPECT_TRUE(r.verdict.allowed());
    EXPECT_EQ(
        line_of(r, AccessCheck::file_caps),
        "ok /usr/bin/xpeek has file capabilities cap_net_raw,cap_sys_ptrace+ep; no_new_privs is not set");

    // Not granted without no_new_privs either (a nosuid mount, the bounding set): said, not blamed.
    f.caller.cap_eff = 0;
    f.caller.cap_prm = CAP_NET_RAW_BIT;
    r = diagnose_all(f, AccessMode::attach);
    EXPECT_EQ(r.verdict.rule, AccessRule::uid_mismatch);
    EXPECT_EQ(
        line_of(r, AccessCheck::file_caps),
        "ok /usr/bin/xpeek has file capabilities cap_net_raw,cap_sys_ptrace+ep; no_new_privs is not set, yet "
        "you lack cap_sys_ptrace (file capabilities are ignored on nosuid mounts and limited by the bounding "
        "set)");

    // Yama 3 refuses even CAP_SYS_PTRACE: the stripped capability would not have helped.
    f = root_target_facts();
    set_uids(f.target, 1000, 1000, 1000, 1000);
    set_gids(f.target, 1000, 1000, 1000, 1000);
    f.yama_ptrace_scope = 3;
    f.caller.no_new_privs = true;
    f.caller_file_caps = xproc::FileCapabilities{CAP_SYS_PTRACE_BIT, 0, true};
    r = diagnose_all(f, AccessMode::attach);
    EXPECT_EQ(r.verdict.rule, AccessRule::yama_scope_3);
    EXPECT_EQ(r.rules[1].rule, AccessRule::allowed);
    EXPECT_EQ(line_of(diagnose_all(user_facts(), AccessMode::attach), AccessCheck::file_caps), "");
}

TEST(AccessReportText, is_one_line_per_rule_and_a_verdict) {
    AccessFacts f = root_target_facts();
    root_proc_mem(f);
    f.caller_user_namespace = "user:[4026531837]";
    const std::vector<std::string> lines = lines_of(diagnose_all(f, AccessMode::attach).text());
    const std::vector<std::string> expected = {
        "Access to process 42 (victim) for memory access (PTRACE_MODE_ATTACH_REALCREDS: process_vm_readv; "
        "/proc/PID/mem also needs its file permission)",
        "Caller: pid 100 (/usr/bin/xpeek), uid r/e/s/fs 1000/1000/1000/1000, gid r/e/s/fs "
        "1000/1000/1000/1000, "
        "CAP_SYS_PTRACE in the target's user namespace: no",
        "  ok       process: live user-space process",
        "  REFUSES  uids: caller ruid 1000, target ruid/euid/suid 0/0/0 — mismatch; no CAP_SYS_PTRACE",
        "  REFUSES  gids: caller rgid 1000, target rgid/egid/sgid 0/0/0 — mismatch; no CAP_SYS_PTRACE",
        "  ok       dumpable: yes",
        "  ok       user namespace: same as yours (user:[4026531837])",
        "  ok       capabilities: target permitted 0x0000000000000000 within your permitted "
        "0x0000000000000000",
        "  ok       yama: not loaded (no /proc/sys/kernel/yama/ptrace_scope)",
        "  REFUSES  /proc/PID/mem: /proc/42/mem owner 0:0 (root:root) mode 0600; your fsuid 1000 is neither "
        "owner "
        "nor in its group — not readable; no CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE (process_vm_readv does "
        "not "
        "check it)",
        "Verdict: refused by uid_mismatch: process 42 (victim) runs as uid 0 (real/effective/saved 0/0/0) "
        "and you "
        "are uid 1000 without CAP_SYS_PTRACE. To allow: run as root (`sudo <command>`) or give the tool "
        "CAP_SYS_PTRACE (`sudo setcap cap_sys_ptrace+ep /usr/bin/xpeek`).",
    };
    EXPECT_EQ(lines, expected);
}

TEST(AccessReportText, allowed_and_gone) {
    std::string text = diagnose_all(user_facts(), AccessMode::read).text();
    EXPECT_THAT(text,
                testing::EndsWith(
                    "\nVerdict: allowed: nothing refuses: process 42 (victim) runs with your filesystem uid "
                    "and gid\n"));
    AccessFacts gone;
    gone.exists = false;
    gone.target_pid = 42;
    text = diagnose_all(gone, AccessMode::attach).text();
    EXPECT_EQ(lines_of(text).size(), 3u) << text;
    EXPECT_THAT(text, HasSubstr("\n  REFUSES  process: no such process\n"));
    EXPECT_THAT(text, HasSubstr("\nVerdict: refused by no_such_process: process 42 does not exist"));
}

TEST(AccessCheckNames, are_distinct) {
    std::set<std::string> names;
    for (AccessCheck c : {AccessCheck::process, AccessCheck::file_caps, AccessCheck::uids, AccessCheck::gids,
                          AccessCheck::dumpable, AccessCheck::user_namespace, AccessCheck::capabilities,
                          AccessCheck::yama, AccessCheck::tracer, AccessCheck::proc_mem_file}) {
        const std::string name(xproc::to_string(c));
        EXPECT_NE(name, "unknown");
        names.insert(name);
    }
    EXPECT_EQ(names.size(), 10u);
}

}  // namespace
