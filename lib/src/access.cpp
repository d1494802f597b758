// SPDX-License-Identifier: MIT
#include "xproc/access.hpp"

#include <endian.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string_view>
#include <vector>

namespace xproc {

std::string_view to_string(AccessMode mode) noexcept {
    switch (mode) {
        case AccessMode::read:
            return "read";
        case AccessMode::attach:
            return "attach";
        case AccessMode::ptrace_attach:
            return "ptrace_attach";
        case AccessMode::proc_mem:
            return "proc_mem";
    }
    return "unknown";
}

std::string_view to_string(AccessRule rule) noexcept {
    switch (rule) {
        case AccessRule::allowed:
            return "allowed";
        case AccessRule::no_such_process:
            return "no_such_process";
        case AccessRule::zombie:
            return "zombie";
        case AccessRule::kernel_thread:
            return "kernel_thread";
        case AccessRule::uid_mismatch:
            return "uid_mismatch";
        case AccessRule::gid_mismatch:
            return "gid_mismatch";
        case AccessRule::user_namespace:
            return "user_namespace";
        case AccessRule::not_dumpable:
            return "not_dumpable";
        case AccessRule::target_capabilities:
            return "target_capabilities";
        case AccessRule::yama_scope_1:
            return "yama_scope_1";
        case AccessRule::yama_scope_2:
            return "yama_scope_2";
        case AccessRule::yama_scope_3:
            return "yama_scope_3";
        case AccessRule::already_traced:
            return "already_traced";
        case AccessRule::undetermined:
            return "undetermined";
        case AccessRule::own_process:
            return "own_process";
        case AccessRule::no_new_privs:
            return "no_new_privs";
        case AccessRule::proc_mem_permission:
            return "proc_mem_permission";
        case AccessRule::security_module:
            return "security_module";
    }
    return "unknown";
}

std::string_view to_string(AccessCheck check) noexcept {
    switch (check) {
        case AccessCheck::process:
            return "process";
        case AccessCheck::file_caps:
            return "file caps";
        case AccessCheck::uids:
            return "uids";
        case AccessCheck::gids:
            return "gids";
        case AccessCheck::dumpable:
            return "dumpable";
        case AccessCheck::user_namespace:
            return "user namespace";
        case AccessCheck::capabilities:
            return "capabilities";
        case AccessCheck::yama:
            return "yama";
        case AccessCheck::tracer:
            return "tracer";
        case AccessCheck::proc_mem_file:
            return "/proc/PID/mem";
        case AccessCheck::probe:
            return "probe";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------
// diagnose(): pure

namespace {

/// Capability numbers (linux/capability.h).
constexpr int CAP_SYS_PTRACE_BIT = 19;
constexpr std::uint64_t CAP_SYS_PTRACE_MASK = std::uint64_t{1} << CAP_SYS_PTRACE_BIT;
constexpr std::uint64_t CAP_DAC_OVERRIDE_MASK = std::uint64_t{1} << 1;
constexpr std::uint64_t CAP_DAC_READ_SEARCH_MASK = std::uint64_t{1} << 2;

/// Names of capabilities 0..40, as capabilities(7) and setcap spell them.
constexpr std::string_view CAP_NAMES[] = {
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
};

std::string num(long long v) {
    return std::to_string(v);
}

std::string hex64(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
    return buf;
}

std::string octal_mode(std::uint32_t mode) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", mode & 07777U);
    return buf;
}

/// "cap_net_raw,cap_sys_ptrace" (unknown bits as cap_N), "none" for an empty set.
std::string cap_names(std::uint64_t mask) {
    std::string s;
    for (int bit = 0; bit < 64; ++bit) {
        if ((mask & (std::uint64_t{1} << bit)) == 0) {
            continue;
        }
        if (!s.empty()) {
            s += ',';
        }
        s += static_cast<std::size_t>(bit) < std::size(CAP_NAMES) ? std::string(CAP_NAMES[bit])
                                                                  : "cap_" + num(bit);
    }
    return s.empty() ? "none" : s;
}

/// cap_names() for at most three capabilities, else the first three and "and N more".
std::string cap_names_short(std::uint64_t mask) {
    constexpr int SHOWN = 3;
    const int count = std::popcount(mask);
    if (count <= SHOWN) {
        return cap_names(mask);
    }
    std::uint64_t first = 0;
    for (int bit = 0, taken = 0; bit < 64 && taken < SHOWN; ++bit) {
        if ((mask & (std::uint64_t{1} << bit)) != 0) {
            first |= std::uint64_t{1} << bit;
            ++taken;
        }
    }
    return cap_names(first) + " and " + num(count - SHOWN) + " more";
}

/// "process 42 (sleeper)", or "the target" when the pid is not known.
std::string target_name(const AccessFacts& f) {
    if (f.target_pid == 0) {
        return "the target";
    }
    std::string s = "process " + num(f.target_pid);
    if (!f.target_comm.empty()) {
        s += " (" + f.target_comm + ")";
    }
    return s;
}

/// The pid for commands such as `ps -p PID`, or a placeholder.
std::string target_pid_text(const AccessFacts& f) {
    return f.target_pid != 0 ? num(f.target_pid) : "PID";
}

std::string proc_mem_path(const AccessFacts& f) {
    return "/proc/" + target_pid_text(f) + "/mem";
}

std::string tool_text(const AccessFacts& f) {
    return f.caller_exe.empty() ? "<tool>" : f.caller_exe;
}

/// "give the tool CAP_SYS_PTRACE (`sudo setcap cap_sys_ptrace+ep /usr/bin/xpeek`)".
std::string setcap_advice(const AccessFacts& f) {
    std::string s = "give the tool CAP_SYS_PTRACE (`sudo setcap cap_sys_ptrace+ep " + tool_text(f) + "`";
    if (f.caller.no_new_privs) {
        s += "; file capabilities have no effect while no_new_privs is set, as it is for you";
    }
    return s + ")";
}

std::string root_or_cap_advice(const AccessFacts& f) {
    return "run as root (`sudo <command>`) or " + setcap_advice(f);
}

/// Does the caller hold CAP_SYS_PTRACE in the target's user namespace (the
/// kernel's ptrace_has_cap / ns_capable on the target's namespace)?
bool has_ptrace_cap_over_target(const AccessFacts& f) {
    const bool cap = (f.caller.cap_eff & CAP_SYS_PTRACE_MASK) != 0;
    if (f.same_user_namespace) {
        return cap;
    }
    if (f.caller_owns_target_namespace) {
        return true;  // the creator of a namespace has every capability in it
    }
    return f.target_in_descendant_namespace && cap;
}

/// PTRACE_MODE_FSCREDS (filesystem ids, effective caps) rather than REALCREDS.
bool uses_fs_creds(AccessMode mode) {
    return mode == AccessMode::read || mode == AccessMode::proc_mem;
}

AccessVerdict verdict(AccessRule rule, std::string reason, std::string how_to_allow) {
    AccessVerdict v;
    v.rule = rule;
    v.reason = std::move(reason);
    v.how_to_allow = std::move(how_to_allow);
    return v;
}

AccessVerdict refuse_ids(const AccessFacts& f, AccessMode mode, bool uid_refuses) {
    const ProcIds& t = f.target;
    const bool fs = uses_fs_creds(mode);
    const char* id = uid_refuses ? "uid" : "gid";
    const std::uint32_t caller_id =
        uid_refuses ? (fs ? f.caller.fsuid : f.caller.ruid) : (fs ? f.caller.fsgid : f.caller.rgid);
    const std::uint32_t r = uid_refuses ? t.ruid : t.rgid;
    const std::uint32_t e = uid_refuses ? t.euid : t.egid;
    const std::uint32_t s = uid_refuses ? t.suid : t.sgid;
    std::string reason = target_name(f) + " runs as " + id + " " + num(e) + " (real/effective/saved " +
                         num(r) + "/" + num(e) + "/" + num(s) + ") and you are " + id + " " + num(caller_id) +
                         " without CAP_SYS_PTRACE";
    std::string how;
    if (r != e || e != s) {
        how = std::string("its real, effective and saved ") + id +
              "s differ, so no single user matches them all: " + root_or_cap_advice(f);
    } else if (uid_refuses && e == 0) {
        how = root_or_cap_advice(f);
    } else if (uid_refuses) {
        const std::string user = f.target_user.empty() ? "'#" + num(e) + "'" : f.target_user;
        how = "run as its owner (`sudo -u " + user + " <command>`), or as root, or " + setcap_advice(f);
    } else {
        const std::string group = f.target_group.empty() ? "'#" + num(e) + "'" : f.target_group;
        how = "run with its group as your real, effective and saved gid (`sudo -g " + group +
              " <command>`), or as root, or " + setcap_advice(f);
    }
    return verdict(uid_refuses ? AccessRule::uid_mismatch : AccessRule::gid_mismatch, std::move(reason),
                   std::move(how));
}

AccessVerdict refuse_namespace(const AccessFacts& f) {
    const bool nested = f.target_in_descendant_namespace || f.caller_owns_target_namespace;
    const std::string target_ns = f.target_user_namespace.empty()
                                      ? "another user namespace"
                                      : "user namespace " + f.target_user_namespace;
    const std::string own_ns = f.caller_user_namespace.empty() ? "" : " (" + f.caller_user_namespace + ")";
    std::string reason = target_name(f) + " lives in " + target_ns;
    if (nested) {
        reason += ", nested in yours" + own_ns + " but not created by you, and you lack CAP_SYS_PTRACE";
    } else {
        reason += ", which is neither yours" + own_ns +
                  " nor nested inside it, so no capability of yours (not even CAP_SYS_PTRACE) applies there";
    }
    std::string how =
        "run the tool in the target's user namespace or one it is nested in (e.g. on the host, or `sudo "
        "nsenter --target " +
        target_pid_text(f) + " --user <command>`) as its owner or with CAP_SYS_PTRACE there";
    return verdict(AccessRule::user_namespace, std::move(reason), std::move(how));
}

/// Collects the report: every check in order; the first refusal that decides becomes the verdict.
class ReportBuilder {
  public:
    explicit ReportBuilder(AccessMode mode) { m_report.mode = mode; }

    void ok(AccessCheck check, std::string finding) {
        AccessVerdict v;
        v.check = check;
        v.finding = std::move(finding);
        m_report.rules.push_back(std::move(v));
    }
    /// A refusing check; `decides` is false for a refusal outside the operation's own path
    /// (/proc/PID/mem in attach mode, the no_new_privs note).
    void refuse(AccessCheck check, AccessVerdict v, std::string finding, bool decides = true) {
        v.check = check;
        v.finding = std::move(finding);
        if (decides && !m_decided) {
            m_report.verdict = v;
            m_decided = true;
        }
        m_report.rules.push_back(std::move(v));
    }
    void decide_allowed(std::string reason) {
        if (!m_decided) {
            m_report.verdict = verdict(AccessRule::allowed, std::move(reason), "");
            m_decided = true;
        }
    }
    bool decided() const noexcept { return m_decided; }
    AccessReport& report() noexcept { return m_report; }

  private:
    AccessReport m_report;
    bool m_decided = false;
};

std::string cap_suffix(bool cap) {
    return cap ? "CAP_SYS_PTRACE overrides" : "no CAP_SYS_PTRACE";
}

/// uids or gids: the caller's id against the target's real/effective/saved ones.
void check_ids(ReportBuilder& b, const AccessFacts& f, AccessMode mode, bool uids, bool cap) {
    const ProcIds& c = f.caller;
    const ProcIds& t = f.target;
    const bool fs = uses_fs_creds(mode);
    const std::uint32_t mine = uids ? (fs ? c.fsuid : c.ruid) : (fs ? c.fsgid : c.rgid);
    const std::uint32_t r = uids ? t.ruid : t.rgid;
    const std::uint32_t e = uids ? t.euid : t.egid;
    const std::uint32_t s = uids ? t.suid : t.sgid;
    const std::string id = uids ? "uid" : "gid";
    std::string finding = "caller " + std::string(fs ? "fs" : "r") + id + " " + num(mine) + ", target r" +
                          id + "/e" + id + "/s" + id + " " + num(r) + "/" + num(e) + "/" + num(s) + " — ";
    if (mine == r && mine == e && mine == s) {
        b.ok(uids ? AccessCheck::uids : AccessCheck::gids, finding + "match");
        return;
    }
    if (cap) {
        b.ok(uids ? AccessCheck::uids : AccessCheck::gids, finding + "mismatch; " + cap_suffix(true));
        return;
    }
    if (!f.same_user_namespace) {
        b.refuse(uids ? AccessCheck::uids : AccessCheck::gids, refuse_namespace(f),
                 finding + "mismatch; no CAP_SYS_PTRACE in the target's user namespace");
        return;
    }
    b.refuse(uids ? AccessCheck::uids : AccessCheck::gids, refuse_ids(f, mode, uids),
             finding + "mismatch; " + cap_suffix(false));
}

void check_dumpable(ReportBuilder& b, const AccessFacts& f, AccessMode mode, bool cap) {
    if (f.target_dumpable) {
        b.ok(AccessCheck::dumpable, "yes");
        return;
    }
    const std::string finding = "no (its /proc files belong to root) — ";
    if (cap) {
        b.ok(AccessCheck::dumpable, finding + cap_suffix(true));
        return;
    }
    b.refuse(
        AccessCheck::dumpable,
        verdict(AccessRule::not_dumpable,
                target_name(f) +
                    " is not dumpable (it runs a setuid/setgid or file-capability program, changed its "
                    "credentials, or called prctl(PR_SET_DUMPABLE, 0)) and you lack CAP_SYS_PTRACE",
                std::string("only root or a process with CAP_SYS_PTRACE can ") +
                    (mode == AccessMode::read ? "read its memory map" : "attach to it or read its memory") +
                    ": " + root_or_cap_advice(f) + "; or the target itself calls prctl(PR_SET_DUMPABLE, 1)"),
        finding + cap_suffix(false));
}

void check_namespace(ReportBuilder& b, const AccessFacts& f, bool cap) {
    const std::string theirs = f.target_user_namespace.empty() ? "another one" : f.target_user_namespace;
    const std::string yours = f.caller_user_namespace.empty() ? "yours" : "yours, " + f.caller_user_namespace;
    if (f.same_user_namespace) {
        b.ok(AccessCheck::user_namespace,
             "same as yours" + (f.caller_user_namespace.empty() ? "" : " (" + f.caller_user_namespace + ")"));
        return;
    }
    if (f.caller_owns_target_namespace) {
        b.ok(AccessCheck::user_namespace, "target in " + theirs + ", created by your euid inside " + yours +
                                              ": you hold every capability there");
        return;
    }
    if (f.target_in_descendant_namespace) {
        if (cap) {
            b.ok(AccessCheck::user_namespace,
                 "target in " + theirs + ", nested in " + yours + " — your CAP_SYS_PTRACE applies there");
        } else {
            b.refuse(AccessCheck::user_namespace, refuse_namespace(f),
                     "target in " + theirs + ", nested in " + yours + " but not created by you — " +
                         cap_suffix(false));
        }
        return;
    }
    b.refuse(AccessCheck::user_namespace, refuse_namespace(f),
             "target in " + theirs + ", outside " + yours + " — no capability of yours applies there");
}

void check_capabilities(ReportBuilder& b, const AccessFacts& f, AccessMode mode, bool cap) {
    const bool fs = uses_fs_creds(mode);
    const std::uint64_t mine = fs ? f.caller.cap_eff : f.caller.cap_prm;
    const char* set = fs ? "effective" : "permitted";
    const std::uint64_t extra = f.target.cap_prm & ~mine;
    std::string finding = "target permitted " + hex64(f.target.cap_prm) +
                          (extra == 0 ? " within " : " not within ") + "your " + set + " " + hex64(mine);
    if (extra == 0) {
        b.ok(AccessCheck::capabilities, std::move(finding));
        return;
    }
    finding += " (it has " + cap_names_short(extra) + ") — " + cap_suffix(cap);
    if (cap) {
        b.ok(AccessCheck::capabilities, std::move(finding));
        return;
    }
    b.refuse(AccessCheck::capabilities,
             verdict(AccessRule::target_capabilities,
                     target_name(f) + " holds capabilities you lack (its permitted set " +
                         hex64(f.target.cap_prm) + " is not within your " + set + " set " + hex64(mine) +
                         ") and you lack CAP_SYS_PTRACE",
                     root_or_cap_advice(f)),
             std::move(finding));
}

void check_yama(ReportBuilder& b, const AccessFacts& f, bool cap) {
    if (!f.yama_ptrace_scope) {
        b.ok(AccessCheck::yama, "not loaded (no /proc/sys/kernel/yama/ptrace_scope)");
        return;
    }
    const int scope = *f.yama_ptrace_scope;
    const std::string who = target_name(f);
    const std::string you = f.caller_pid != 0 ? num(f.caller_pid) : "<your pid>";
    const std::string prefix = "ptrace_scope " + num(scope) + ": ";
    if (scope <= 0) {
        b.ok(AccessCheck::yama, prefix + "classic ptrace permissions only");
    } else if (scope == 1) {
        if (f.caller_is_ancestor) {
            b.ok(AccessCheck::yama, prefix + "you (pid " + you + ") are an ancestor of the target");
        } else if (cap) {
            b.ok(AccessCheck::yama, prefix + "not an ancestor — " + cap_suffix(true));
        } else {
            b.refuse(
                AccessCheck::yama,
                verdict(AccessRule::yama_scope_1,
                        "Yama ptrace_scope is 1: only an ancestor of " + who +
                            " may attach to it, and you (pid " + you +
                            ") are not one and lack CAP_SYS_PTRACE; the target could still grant you access "
                            "with prctl(PR_SET_PTRACER, " +
                            you + "), which cannot be seen from outside",
                        "have the target call prctl(PR_SET_PTRACER, " + you +
                            ") (or start it from the tool so it descends from it), " + root_or_cap_advice(f) +
                            ", or allow attaching to any process of your uid with `sudo sysctl "
                            "kernel.yama.ptrace_scope=0`"),
                prefix + "you (pid " + you +
                    ") are not an ancestor of the target and lack CAP_SYS_PTRACE — refused unless the target "
                    "called prctl(PR_SET_PTRACER, " +
                    you + ")");
        }
    } else if (scope == 2) {
        if (cap) {
            b.ok(AccessCheck::yama, prefix + "CAP_SYS_PTRACE required — you have it");
        } else {
            b.refuse(
                AccessCheck::yama,
                verdict(
                    AccessRule::yama_scope_2,
                    "Yama ptrace_scope is 2: only processes with CAP_SYS_PTRACE may attach, and you lack it",
                    root_or_cap_advice(f) +
                        ", or lower the setting with `sudo sysctl kernel.yama.ptrace_scope=1`"),
                prefix + "CAP_SYS_PTRACE required — you lack it");
        }
    } else {
        b.refuse(AccessCheck::yama,
                 verdict(AccessRule::yama_scope_3,
                         "Yama ptrace_scope is 3: attaching is disabled for every process, even root with "
                         "CAP_SYS_PTRACE",
                         "the setting cannot be lowered while the system runs: set kernel.yama.ptrace_scope "
                         "to 2 or less in /etc/sysctl.d/ and reboot (read mode, e.g. the memory map, still "
                         "works)"),
                 prefix + "attaching is disabled for everyone, even with CAP_SYS_PTRACE");
    }
}

std::string tracer_text(const AccessFacts& f) {
    return "PID " + num(f.target.tracer_pid) + (f.tracer_comm.empty() ? "" : " (" + f.tracer_comm + ")");
}

void check_tracer(ReportBuilder& b, const AccessFacts& f, AccessMode mode) {
    const pid_t tracer = f.target.tracer_pid;
    if (mode != AccessMode::ptrace_attach) {
        // Memory access and /proc reads do not need the tracer slot; say so only when it is taken.
        if (tracer != 0) {
            b.ok(AccessCheck::tracer, "traced by " + tracer_text(f) + " — " +
                                          (mode == AccessMode::read ? "reading the map" : "memory access") +
                                          " does not need the tracer slot");
        }
        return;
    }
    if (tracer == 0) {
        b.ok(AccessCheck::tracer, "not traced (TracerPid 0)");
        return;
    }
    const std::string who = target_name(f);
    if (tracer == f.caller_pid) {
        b.refuse(AccessCheck::tracer,
                 verdict(AccessRule::already_traced,
                         who + " is already traced by you (TracerPid " + num(tracer) +
                             "), and a process can have only one tracer",
                         "use the attachment you already have, or detach it (PTRACE_DETACH) before attaching "
                         "again"),
                 "already traced by you (pid " + num(tracer) + ") — one tracer at a time");
        return;
    }
    const std::string t = tracer_text(f);
    b.refuse(AccessCheck::tracer,
             verdict(AccessRule::already_traced,
                     who + " is already traced by " + t +
                         " (its TracerPid), and a process can have only one tracer",
                     "detach the other tracer, " + t + " (e.g. `detach` or quit in that debugger, or `kill " +
                         num(tracer) + "`), then retry"),
             "traced by " + t + " — one tracer at a time");
}

/// generic_permission() for reading /proc/PID/mem with the caller's filesystem ids.
void check_proc_mem_file(ReportBuilder& b, const AccessFacts& f, AccessMode mode) {
    const bool decides = mode == AccessMode::proc_mem;
    const std::string path = proc_mem_path(f);
    if (!f.proc_mem) {
        b.ok(AccessCheck::proc_mem_file, "owner and mode unknown (" + path + " could not be examined)");
        return;
    }
    const AccessFacts::FileOwner& m = *f.proc_mem;
    const ProcIds& c = f.caller;
    std::string owner = num(m.uid) + ":" + num(m.gid);
    if (!f.proc_mem_user.empty() || !f.proc_mem_group.empty()) {
        owner += " (" + (f.proc_mem_user.empty() ? num(m.uid) : f.proc_mem_user) + ":" +
                 (f.proc_mem_group.empty() ? num(m.gid) : f.proc_mem_group) + ")";
    }
    std::string finding =
        path + " owner " + owner + " mode " + octal_mode(m.mode) + "; your fsuid " + num(c.fsuid);
    bool readable = false;
    if (c.fsuid == m.uid) {
        finding += " is the owner";
        readable = (m.mode & S_IRUSR) != 0;
    } else {
        bool in_group = c.fsgid == m.gid;
        for (gid_t g : f.caller_groups) {
            in_group = in_group || g == m.gid;
        }
        if (in_group) {
            finding += " is in its group";
            readable = (m.mode & S_IRGRP) != 0;
        } else {
            finding += " is neither owner nor in its group";
            readable = (m.mode & S_IROTH) != 0;
        }
    }
    if (readable) {
        b.ok(AccessCheck::proc_mem_file, finding + " — readable");
        return;
    }
    const std::uint64_t dac = c.cap_eff & (CAP_DAC_READ_SEARCH_MASK | CAP_DAC_OVERRIDE_MASK);
    if (dac != 0) {
        b.ok(AccessCheck::proc_mem_file,
             finding + " — not readable; " +
                 ((dac & CAP_DAC_READ_SEARCH_MASK) != 0 ? "CAP_DAC_READ_SEARCH" : "CAP_DAC_OVERRIDE") +
                 " overrides");
        return;
    }
    finding += " — not readable; no CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE";
    if (!decides) {
        finding += " (process_vm_readv does not check it)";
    }
    const std::string user = f.proc_mem_user.empty() ? "'#" + num(m.uid) + "'" : f.proc_mem_user;
    std::string how = m.uid == 0 ? std::string("run as root (`sudo <command>`)")
                                 : "run as its owner (`sudo -u " + user + " <command>`) or as root";
    how +=
        ", or give the tool CAP_DAC_READ_SEARCH besides CAP_SYS_PTRACE (`sudo setcap "
        "cap_dac_read_search,cap_sys_ptrace+ep " +
        tool_text(f) +
        "`; writing needs cap_dac_override), or read the memory with process_vm_readv, "
        "which does not check the file's permission";
    b.refuse(AccessCheck::proc_mem_file,
             verdict(AccessRule::proc_mem_permission,
                     path + " belongs to " + owner + " with mode " + octal_mode(m.mode) +
                         ", which does not let your filesystem uid " + num(c.fsuid) + " (gid " +
                         num(c.fsgid) + ") read it, and you lack CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE",
                     std::move(how)),
             std::move(finding), decides);
}

/// The rules CAP_SYS_PTRACE would have overridden, had exec granted it.
bool cap_would_help(AccessRule rule, const AccessFacts& f) {
    switch (rule) {
        case AccessRule::uid_mismatch:
        case AccessRule::gid_mismatch:
        case AccessRule::not_dumpable:
        case AccessRule::target_capabilities:
        case AccessRule::yama_scope_1:
        case AccessRule::yama_scope_2:
            return true;
        case AccessRule::user_namespace:
            return f.target_in_descendant_namespace;
        default:
            return false;
    }
}

/// The caller's executable has file capabilities: were they granted? Inserted at `index`
/// once the other checks are known, since it refuses only if they needed CAP_SYS_PTRACE.
void check_file_caps(ReportBuilder& b, const AccessFacts& f, std::size_t index) {
    if (!f.caller_file_caps) {
        return;
    }
    const FileCapabilities& fc = *f.caller_file_caps;
    AccessReport& r = b.report();
    const std::string caps = cap_names(fc.permitted) + (fc.effective ? "+ep" : "+p");
    std::string finding = tool_text(f) + " has file capabilities " + caps;
    AccessVerdict line;
    line.check = AccessCheck::file_caps;
    const std::uint64_t stripped = fc.permitted & ~f.caller.cap_prm;
    if (!f.caller.no_new_privs) {
        line.finding = finding + "; no_new_privs is not set";
        if (stripped != 0) {
            // Granted caps can also be withheld by a nosuid mount or the bounding set.
            line.finding +=
                ", yet you lack " + cap_names_short(stripped) +
                " (file capabilities are ignored on nosuid mounts and limited by the bounding set)";
        }
    } else if (stripped == 0) {
        line.finding = finding + "; no_new_privs is set, but you hold them anyway";
    } else {
        finding += ", but no_new_privs is set, so exec did not grant " + cap_names(stripped);
        const bool ptrace_stripped =
            (stripped & CAP_SYS_PTRACE_MASK) != 0 && (f.caller.cap_eff & CAP_SYS_PTRACE_MASK) == 0;
        if (ptrace_stripped && !r.verdict.allowed() && cap_would_help(r.verdict.rule, f)) {
            line = verdict(AccessRule::no_new_privs,
                           tool_text(f) +
                               " has the file capability cap_sys_ptrace, but exec did not grant it "
                               "because no_new_privs is set",
                           "run the tool without no_new_privs (it is inherited: not under `setpriv "
                           "--no-new-privs`, a systemd unit with NoNewPrivileges=yes or a container started "
                           "with no-new-privileges), so that its file capability takes effect");
            line.check = AccessCheck::file_caps;
            line.finding = finding + " — you run without CAP_SYS_PTRACE";
            r.verdict.how_to_allow = line.how_to_allow + "; or " + r.verdict.how_to_allow;
        } else {
            line.finding = finding + "; none of the checks here needs them";
        }
    }
    r.rules.insert(r.rules.begin() + static_cast<std::ptrdiff_t>(index), std::move(line));
}

std::string mode_description(AccessMode mode) {
    switch (mode) {
        case AccessMode::read:
            return "reading its memory map (PTRACE_MODE_READ_FSCREDS: /proc/PID/maps, smaps)";
        case AccessMode::attach:
            return "memory access (PTRACE_MODE_ATTACH_REALCREDS: process_vm_readv; /proc/PID/mem also needs "
                   "its file permission)";
        case AccessMode::ptrace_attach:
            return "ptrace attach (PTRACE_ATTACH/PTRACE_SEIZE: PTRACE_MODE_ATTACH_REALCREDS, one tracer at a "
                   "time)";
        case AccessMode::proc_mem:
            return "opening /proc/PID/mem (its file permission, then PTRACE_MODE_ATTACH_FSCREDS)";
    }
    return "unknown";
}

std::vector<std::string> report_context(const AccessFacts& f, AccessMode mode) {
    std::vector<std::string> lines;
    lines.push_back("Access to " + target_name(f) + " for " + mode_description(mode));
    if (!f.exists) {
        return lines;
    }
    const ProcIds& c = f.caller;
    std::string caller = "Caller: ";
    caller += f.caller_pid != 0 ? "pid " + num(f.caller_pid) : "you";
    if (!f.caller_exe.empty()) {
        caller += " (" + f.caller_exe + ")";
    }
    caller +=
        ", uid r/e/s/fs " + num(c.ruid) + "/" + num(c.euid) + "/" + num(c.suid) + "/" + num(c.fsuid) +
        ", gid r/e/s/fs " + num(c.rgid) + "/" + num(c.egid) + "/" + num(c.sgid) + "/" + num(c.fsgid) +
        ", CAP_SYS_PTRACE in the target's user namespace: " + (has_ptrace_cap_over_target(f) ? "yes" : "no");
    if (c.no_new_privs) {
        caller += ", no_new_privs set";
    }
    lines.push_back(std::move(caller));
    return lines;
}

}  // namespace

AccessReport diagnose_all(const AccessFacts& f, AccessMode mode) {
    ReportBuilder b(mode);
    b.report().context = report_context(f, mode);
    const bool fs = uses_fs_creds(mode);
    const std::string who = target_name(f);
    const std::string pid_text = target_pid_text(f);

    if (!f.exists) {
        b.refuse(AccessCheck::process,
                 verdict(AccessRule::no_such_process,
                         who + " does not exist (it exited and was reaped, or never existed)",
                         "check the pid (e.g. `ps -p " + pid_text + "`); it may have exited"),
                 "no such process");
        return std::move(b.report());
    }
    if (f.kernel_thread) {
        b.refuse(
            AccessCheck::process,
            verdict(
                AccessRule::kernel_thread,
                mode == AccessMode::read
                    ? who + " is a kernel thread: it has no user address space, so its memory map is empty"
                    : who + " is a kernel thread: it has no user memory and cannot be traced",
                "nothing can: pick a user-space process (`ps` shows kernel threads with their names in "
                "[brackets])"),
            "kernel thread (no user address space)");
        return std::move(b.report());
    }
    if (f.zombie) {
        b.refuse(
            AccessCheck::process,
            verdict(
                AccessRule::zombie,
                who + " is a zombie: it has exited and its memory is gone, but its parent has not reaped it "
                      "yet",
                "nothing can read it any more; its parent must reap it with wait(2) (if the parent is stuck, "
                "killing the parent lets init reap it)"),
            "zombie (exited, not reaped)");
        return std::move(b.report());
    }
    const bool own = f.caller_pid != 0 && (f.caller_pid == f.target_pid || f.caller_pid == f.target.tgid);
    if (own) {
        // The kernel allows a thread group access to itself before any other check, but
        // ptrace_attach refuses it outright (a process cannot trace itself).
        if (mode == AccessMode::ptrace_attach) {
            b.refuse(
                AccessCheck::process,
                verdict(
                    AccessRule::own_process,
                    who + " is your own process, and a process cannot ptrace-attach to itself or its threads",
                    "attach from another process (e.g. fork a child to be the tracer)"),
                "your own process — ptrace cannot attach to its own thread group");
        } else {
            b.ok(AccessCheck::process, "your own process — allowed before any other check");
            b.decide_allowed("nothing refuses: " + who + " is your own process");
        }
        return std::move(b.report());
    }
    b.ok(AccessCheck::process, "live user-space process");
    const std::size_t file_caps_index = b.report().rules.size();

    // open(2) checks the file's permission before proc_mem_open's ptrace check.
    if (mode == AccessMode::proc_mem) {
        check_proc_mem_file(b, f, mode);
    }
    // __ptrace_may_access: the caller's uid must equal the target's real, effective
    // and saved uid, and likewise for gids, unless it has CAP_SYS_PTRACE over the target.
    const bool cap = has_ptrace_cap_over_target(f);
    check_ids(b, f, mode, true, cap);
    check_ids(b, f, mode, false, cap);
    // Then the target's dumpable flag (checked against its mm's namespace).
    check_dumpable(b, f, mode, cap);
    // The commoncap LSM: in the same namespace the target's permitted capabilities must
    // be within the caller's; otherwise (or failing that) only CAP_SYS_PTRACE helps.
    check_namespace(b, f, cap);
    if (f.same_user_namespace) {
        check_capabilities(b, f, mode, cap);
    }
    if (mode != AccessMode::read) {
        check_yama(b, f, cap);  // Yama applies to every PTRACE_MODE_ATTACH check
    }
    check_tracer(b, f, mode);
    if (mode == AccessMode::attach) {
        check_proc_mem_file(b, f, mode);
    }

    if (!b.decided()) {
        const ProcIds& c = f.caller;
        const ProcIds& t = f.target;
        const uid_t caller_uid = fs ? c.fsuid : c.ruid;
        const gid_t caller_gid = fs ? c.fsgid : c.rgid;
        const bool ids_match = caller_uid == t.ruid && caller_uid == t.euid && caller_uid == t.suid &&
                               caller_gid == t.rgid && caller_gid == t.egid && caller_gid == t.sgid;
        std::string why = ids_match ? who + " runs with your " + (fs ? "filesystem" : "real") + " uid and gid"
                                    : "you have CAP_SYS_PTRACE over " + who;
        for (const AccessVerdict& line : b.report().rules) {
            if (line.rule == AccessRule::proc_mem_permission) {
                why += "; but " + proc_mem_path(f) +
                       " refuses you (its file permission), so only process_vm_readv can read the memory";
            }
        }
        b.decide_allowed("nothing refuses: " + why);
    }
    check_file_caps(b, f, file_caps_index);
    return std::move(b.report());
}

AccessVerdict diagnose(const AccessFacts& f, AccessMode mode) {
    return diagnose_all(f, mode).verdict;
}

std::string AccessReport::text() const {
    std::string s;
    for (const std::string& line : context) {
        s += line + "\n";
    }
    for (const AccessVerdict& r : rules) {
        s += std::string("  ") + (r.allowed() ? "ok     " : "REFUSES") + "  " +
             std::string(to_string(r.check)) + ": " + r.finding + "\n";
    }
    if (verdict.allowed()) {
        s += "Verdict: allowed: " + verdict.reason + "\n";
    } else {
        s += "Verdict: " +
             (verdict.rule == AccessRule::undetermined
                  ? std::string("undetermined")
                  : "refused by " + std::string(to_string(verdict.rule))) +
             ": " + verdict.reason + ". To allow: " + verdict.how_to_allow + ".\n";
    }
    return s;
}

Error AccessVerdict::to_error(std::string operation, pid_t pid, int errno_value) const {
    Error e;
    switch (rule) {
        case AccessRule::allowed:
        case AccessRule::undetermined:
            if (errno_value != 0) {
                e = Error::from_errno(errno_value, std::move(operation), pid);
            } else {
                e = Error::make(ErrorKind::permission, std::move(operation), "", pid);
            }
            if (rule == AccessRule::undetermined) {
                e.detail = reason;
                e.hint = how_to_allow;
            } else if (e.kind == ErrorKind::permission) {
                e.detail =
                    "refused although no ptrace rule explains it; a security module (SELinux, AppArmor, "
                    "Landlock, a BPF LSM) or a sandbox may have refused it";
                e.hint =
                    "look for a denial in the kernel log (`sudo dmesg`, `journalctl -k`) and check whether "
                    "the "
                    "tool runs sandboxed (a container, Landlock, seccomp)";
            }
            return e;
        case AccessRule::no_such_process:
            e.kind = ErrorKind::no_such_process;
            break;
        case AccessRule::zombie:
            e.kind = ErrorKind::zombie;
            break;
        case AccessRule::kernel_thread:
            e.kind = ErrorKind::kernel_thread;
            break;
        default:
            e.kind = ErrorKind::permission;
            break;
    }
    e.errno_value = errno_value;
    e.operation = std::move(operation);
    e.pid = pid;
    e.detail = reason;
    e.hint = how_to_allow;
    return e;
}

// ---------------------------------------------------------------------------
// gather_access_facts(): the one layer that reads /proc

namespace {

std::string read_link_at(int dir, const char* name) {
    std::string target(256, '\0');
    for (;;) {
        const ssize_t n = ::readlinkat(dir, name, target.data(), target.size());
        if (n < 0) {
            return {};
        }
        if (static_cast<std::size_t>(n) < target.size()) {
            target.resize(static_cast<std::size_t>(n));
            return target;
        }
        target.resize(target.size() * 2);
    }
}

void strip_newline(std::string& s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
}

std::string user_name(uid_t uid) {
    std::vector<char> buf(4096);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
        return {};
    }
    return pw.pw_name;
}

std::string group_name(gid_t gid) {
    std::vector<char> buf(4096);
    group gr{};
    group* found = nullptr;
    if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
        return {};
    }
    return gr.gr_name;
}

/// Is `pid`'s chain of parents going through `ancestor`? (Yama's task_is_descendant.)
bool descends_from(pid_t first_parent, pid_t ancestor) {
    pid_t cur = first_parent;
    // The bound only guards against a cycle seen through pid reuse while we walk.
    for (int steps = 0; cur > 0 && steps < 100000; ++steps) {
        if (cur == ancestor) {
            return true;
        }
        if (cur == 1) {
            return false;
        }
        auto text = read_file(("/proc/" + num(cur) + "/stat").c_str(), cur);
        if (!text) {
            return false;
        }
        auto st = parse_proc_stat(*text);
        if (!st) {
            return false;
        }
        cur = st->ppid;
    }
    return false;
}

/// Where the target's user namespace sits relative to the caller's: walks its
/// parents with NS_GET_PARENT (which refuses to leave the caller's scope).
void locate_namespace(int target_ns_fd, const AccessFacts& f, bool& descendant, bool& owned) {
    struct stat mine {};
    if (::stat("/proc/thread-self/ns/user", &mine) != 0) {
        return;
    }
    UniqueFd cur(::fcntl(target_ns_fd, F_DUPFD_CLOEXEC, 0));
    for (int depth = 0; cur.valid() && depth < 64; ++depth) {  // user namespaces nest at most 32 deep
        UniqueFd parent(::ioctl(cur.get(), NS_GET_PARENT));
        if (!parent.valid()) {
            return;  // EPERM: the parent lies outside our namespace, so we are not an ancestor
        }
        struct stat ps {};
        if (::fstat(parent.get(), &ps) != 0) {
            return;
        }
        if (ps.st_dev == mine.st_dev && ps.st_ino == mine.st_ino) {
            descendant = true;
            uid_t owner = 0;
            if (::ioctl(cur.get(), NS_GET_OWNER_UID, &owner) == 0) {
                owned = owner == f.caller.euid;
            }
            return;
        }
        cur = std::move(parent);
    }
}

/// The "Groups:" line of a /proc status file (supplementary groups).
std::vector<gid_t> parse_groups(std::string_view status) {
    std::vector<gid_t> groups;
    const std::size_t at = status.find("\nGroups:");
    if (at == std::string_view::npos) {
        return groups;
    }
    std::string_view rest = status.substr(at + 8);
    rest = rest.substr(0, rest.find('\n'));
    while (!rest.empty()) {
        const std::size_t skip = rest.find_first_not_of(" \t");
        if (skip == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(skip);
        gid_t g = 0;
        const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), g);
        if (ec != std::errc()) {
            break;
        }
        groups.push_back(g);
        rest.remove_prefix(static_cast<std::size_t>(ptr - rest.data()));
    }
    return groups;
}

}  // namespace

std::optional<FileCapabilities> read_file_capabilities(const char* path) {
    // struct vfs_cap_data (linux/capability.h), little-endian: magic_etc, then
    // {permitted, inheritable} low 32 bits, then (revision 2 and 3) the high 32 bits;
    // revision 3 appends the namespace root uid.
    std::uint32_t raw[6] = {};
    const ssize_t n = ::getxattr(path, "security.capability", raw, sizeof raw);
    if (n < static_cast<ssize_t>(XATTR_CAPS_SZ_1)) {
        return std::nullopt;
    }
    const std::uint32_t magic = le32toh(raw[0]);
    const std::uint32_t revision = magic & VFS_CAP_REVISION_MASK;
    FileCapabilities caps;
    caps.effective = (magic & VFS_CAP_FLAGS_EFFECTIVE) != 0;
    caps.permitted = le32toh(raw[1]);
    caps.inheritable = le32toh(raw[2]);
    if (revision == VFS_CAP_REVISION_2 || revision == VFS_CAP_REVISION_3) {
        if (n < static_cast<ssize_t>(XATTR_CAPS_SZ_2)) {
            return std::nullopt;
        }
        caps.permitted |= std::uint64_t{le32toh(raw[3])} << 32;
        caps.inheritable |= std::uint64_t{le32toh(raw[4])} << 32;
    } else if (revision != VFS_CAP_REVISION_1) {
        return std::nullopt;
    }
    return caps;
}

Result<AccessFacts> gather_access_facts(pid_t pid) {
    if (pid <= 0) {
        return fail(Error::make(ErrorKind::invalid_argument, "gather_access_facts(" + num(pid) + ")",
                                "a pid must be positive", pid));
    }
    AccessFacts f;
    f.target_pid = pid;
    f.caller_pid = ::getpid();

    // The kernel checks the credentials of the calling thread.
    auto caller_status = read_file("/proc/thread-self/status");
    if (!caller_status) {
        return fail(std::move(caller_status.error()));
    }
    auto caller_ids = parse_proc_ids(*caller_status);
    if (!caller_ids) {
        return fail(std::move(caller_ids.error()));
    }
    f.caller = *caller_ids;
    f.caller_groups = parse_groups(*caller_status);

    // Everything about the target is read through one directory fd, so it all
    // describes the same process even if the pid is reused meanwhile.
    const std::string dir_path = "/proc/" + num(pid);
    auto dir = open_fd(dir_path.c_str(), O_RDONLY | O_DIRECTORY, pid);
    if (!dir) {
        Error e = std::move(dir.error());
        if (e.errno_value == ENOENT) {
            e.kind = ErrorKind::no_such_process;
        }
        return fail(std::move(e));
    }
    auto stat_text = read_file_at(dir->get(), "stat", dir_path + "/stat", pid);
    if (!stat_text) {
        return fail(std::move(stat_text.error()));
    }
    auto st = parse_proc_stat(*stat_text);
    if (!st) {
        return fail(std::move(st.error()));
    }
    f.zombie = st->state == 'Z' || st->state == 'X';
    f.kernel_thread = st->is_kernel_thread();
    f.target_comm = st->comm;

    auto status_text = read_file_at(dir->get(), "status", dir_path + "/status", pid);
    if (!status_text) {
        return fail(std::move(status_text.error()));
    }
    auto target_ids = parse_proc_ids(*status_text);
    if (!target_ids) {
        return fail(std::move(target_ids.error()));
    }
    f.target = *target_ids;

    // The files in /proc/PID of a non-dumpable process belong to root:root, those
    // of a dumpable one to its effective uid and gid (task_dump_owner; the
    // directory itself keeps the effective ids either way). A root target looks
    // the same both ways and is then taken as dumpable.
    struct stat owner {};
    if (::fstatat(dir->get(), "status", &owner, 0) == 0) {
        f.target_dumpable = owner.st_uid == f.target.euid && owner.st_gid == f.target.egid;
    }

    // /proc/PID/mem is 0600 and owned like status; stat it for the open(2) permission check.
    struct stat mem {};
    if (::fstatat(dir->get(), "mem", &mem, AT_SYMLINK_NOFOLLOW) == 0) {
        f.proc_mem =
            AccessFacts::FileOwner{mem.st_uid, mem.st_gid, static_cast<std::uint32_t>(mem.st_mode & 07777)};
        f.proc_mem_user = user_name(mem.st_uid);
        f.proc_mem_group = group_name(mem.st_gid);
    }

    if (auto scope = read_file("/proc/sys/kernel/yama/ptrace_scope"); scope) {
        strip_newline(*scope);
        int value = 0;
        const auto [ptr, ec] = std::from_chars(scope->data(), scope->data() + scope->size(), value);
        if (ec == std::errc() && ptr == scope->data() + scope->size()) {
            f.yama_ptrace_scope = value;
        }
    }

    f.caller_is_ancestor = descends_from(st->ppid, f.caller_pid);

    // User namespaces: if the target's link cannot be read, assume they are the same.
    f.caller_user_namespace = read_link_at(AT_FDCWD, "/proc/thread-self/ns/user");
    f.target_user_namespace = read_link_at(dir->get(), "ns/user");
    if (!f.caller_user_namespace.empty() && !f.target_user_namespace.empty() &&
        f.caller_user_namespace != f.target_user_namespace) {
        f.same_user_namespace = false;
        const int ns_fd =
            detail::retry_eintr([&] { return ::openat(dir->get(), "ns/user", O_RDONLY | O_CLOEXEC); });
        if (ns_fd >= 0) {
            UniqueFd ns_owner(ns_fd);
            locate_namespace(ns_fd, f, f.target_in_descendant_namespace, f.caller_owns_target_namespace);
        }
    }

    if (f.target.tracer_pid != 0) {
        if (auto comm = read_file(("/proc/" + num(f.target.tracer_pid) + "/comm").c_str()); comm) {
            strip_newline(*comm);
            f.tracer_comm = std::move(*comm);
        }
    }
    f.caller_exe = read_link_at(AT_FDCWD, "/proc/self/exe");
    f.caller_file_caps = read_file_capabilities("/proc/self/exe");
    f.target_user = user_name(f.target.euid);
    f.target_group = group_name(f.target.egid);
    return f;
}

AccessVerdict explain_access(pid_t pid, AccessMode mode) {
    return explain_access_all(pid, mode).verdict;
}

namespace {

/// When every rule allows the access, asks the kernel: opens /proc/PID/mem (attach modes,
/// when its file permission admits us: PTRACE_MODE_ATTACH) or /proc/PID/maps
/// (PTRACE_MODE_READ). The open runs __ptrace_may_access and the security modules' hooks,
/// and stops or reads nothing. A refusal there is outside the rules: a security module or
/// a sandbox, which becomes the verdict.
void probe_access(AccessReport& report, pid_t pid, AccessMode mode) {
    bool mem_admits = true;
    for (const AccessVerdict& r : report.rules) {
        if (r.check == AccessCheck::proc_mem_file && !r.allowed()) {
            mem_admits = false;
        }
    }
    const bool use_mem = mode != AccessMode::read && mem_admits;
    const std::string path = "/proc/" + num(pid) + (use_mem ? "/mem" : "/maps");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    const int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        ::close(fd);
    }
    AccessVerdict line;
    line.check = AccessCheck::probe;
    if (err != EACCES && err != EPERM) {
        // ESRCH/ENOENT: it exited meanwhile; the rules' answer stands.
        line.finding = "opening " + path +
                       (err == 0 ? std::string(" passes the kernel's check (") +
                                       (use_mem ? "PTRACE_MODE_ATTACH" : "PTRACE_MODE_READ") + ")"
                                 : std::string(": ") + std::strerror(err));
        report.rules.push_back(std::move(line));
        return;
    }
    line.rule = AccessRule::security_module;
    line.finding =
        "opening " + path + " is refused (" + std::strerror(err) + ") although every rule above allows it";
    line.reason = "every ptrace rule allows it, yet the kernel refuses to open " + path +
                  ": a security module (Landlock, AppArmor, SELinux, a BPF LSM) or a sandbox refuses";
    line.how_to_allow =
        "look for the denial in the kernel log (`sudo dmesg`, `journalctl -k`), then run the tool outside "
        "that sandbox (or, with Landlock, in the target's own domain) or allow ptrace in the policy";
    report.verdict = line;
    report.rules.push_back(std::move(line));
}

}  // namespace

AccessReport explain_access_all(pid_t pid, AccessMode mode) {
    auto facts = gather_access_facts(pid);
    if (facts) {
        AccessReport report = diagnose_all(*facts, mode);
        if (report.verdict.allowed()) {
            probe_access(report, pid, mode);
        }
        return report;
    }
    const Error& e = facts.error();
    if (e.kind == ErrorKind::no_such_process || e.errno_value == ESRCH || e.errno_value == ENOENT) {
        AccessFacts gone;
        gone.exists = false;
        gone.target_pid = pid;
        return diagnose_all(gone, mode);
    }
    AccessReport report;
    report.mode = mode;
    report.context.push_back("Access to process " + num(pid) + " for " + mode_description(mode));
    report.verdict = verdict(AccessRule::undetermined,
                             "the facts about process " + num(pid) + " could not be read: " + e.message(),
                             "run as root (`sudo <command>`) to see the whole diagnosis");
    report.verdict.finding = "could not be examined: " + e.message();
    report.rules.push_back(report.verdict);
    return report;
}

}  // namespace xproc
