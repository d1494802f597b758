// SPDX-License-Identifier: MIT
// diagnose(): every ptrace access rule and their combinations, on hand-made facts.

#include "xproc/access.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <set>
#include <string>

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
    AccessVerdict v = attach(f);
    EXPECT_EQ(v.rule, AccessRule::already_traced);
    EXPECT_EQ(
        v.reason,
        "process 42 (victim) is already traced by process 77 (gdb) (its TracerPid), and a process can have "
        "only one tracer");
    EXPECT_THAT(v.how_to_allow, HasSubstr("detach the other tracer, process 77 (gdb)"));
    EXPECT_THAT(v.how_to_allow, HasSubstr("kill 77"));

    f.tracer_comm.clear();
    v = attach(f);
    EXPECT_THAT(v.reason, HasSubstr("already traced by process 77 (its TracerPid)"));
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
    EXPECT_EQ(attach(f).rule, AccessRule::yama_scope_2);
    give_cap_sys_ptrace(f);  // passes Yama 2, still traced
    EXPECT_EQ(attach(f).rule, AccessRule::already_traced);
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
    for (AccessRule r : {AccessRule::allowed, AccessRule::no_such_process, AccessRule::zombie,
                         AccessRule::kernel_thread, AccessRule::uid_mismatch, AccessRule::gid_mismatch,
                         AccessRule::user_namespace, AccessRule::not_dumpable,
                         AccessRule::target_capabilities, AccessRule::yama_scope_1, AccessRule::yama_scope_2,
                         AccessRule::yama_scope_3, AccessRule::already_traced, AccessRule::undetermined}) {
        const std::string name(xproc::to_string(r));
        EXPECT_NE(name, "unknown");
        EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_0123456789"), std::string::npos) << name;
        names.insert(name);
    }
    EXPECT_EQ(names.size(), 14u);
    EXPECT_EQ(xproc::to_string(AccessRule::uid_mismatch), "uid_mismatch");
}

}  // namespace
