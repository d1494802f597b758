// SPDX-License-Identifier: MIT
#include "xproc/access.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <string_view>
#include <vector>

namespace xproc {

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
    }
    return "unknown";
}

// ---------------------------------------------------------------------------
// diagnose(): pure

namespace {

/// CAP_SYS_PTRACE is capability 19 (linux/capability.h).
constexpr std::uint64_t CAP_SYS_PTRACE_MASK = std::uint64_t{1} << 19;

std::string num(long long v) {
    return std::to_string(v);
}

std::string hex64(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
    return buf;
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

AccessVerdict verdict(AccessRule rule, std::string reason, std::string how_to_allow) {
    AccessVerdict v;
    v.rule = rule;
    v.reason = std::move(reason);
    v.how_to_allow = std::move(how_to_allow);
    return v;
}

AccessVerdict refuse_ids(const AccessFacts& f, AccessMode mode, bool uid_refuses) {
    const ProcIds& t = f.target;
    const char* id = uid_refuses ? "uid" : "gid";
    const std::uint32_t caller_id = uid_refuses ? (mode == AccessMode::read ? f.caller.fsuid : f.caller.ruid)
                                                : (mode == AccessMode::read ? f.caller.fsgid : f.caller.rgid);
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

}  // namespace

AccessVerdict diagnose(const AccessFacts& f, AccessMode mode) {
    const bool read = mode == AccessMode::read;
    const std::string who = target_name(f);
    const std::string pid_text = target_pid_text(f);

    if (!f.exists) {
        return verdict(AccessRule::no_such_process,
                       who + " does not exist (it exited and was reaped, or never existed)",
                       "check the pid (e.g. `ps -p " + pid_text + "`); it may have exited");
    }
    if (f.kernel_thread) {
        return verdict(
            AccessRule::kernel_thread,
            read ? who + " is a kernel thread: it has no user address space, so its memory map is empty"
                 : who + " is a kernel thread: it has no user memory and cannot be traced",
            "nothing can: pick a user-space process (`ps` shows kernel threads with their names in "
            "[brackets])");
    }
    if (f.zombie) {
        return verdict(
            AccessRule::zombie,
            who + " is a zombie: it has exited and its memory is gone, but its parent has not reaped it yet",
            "nothing can read it any more; its parent must reap it with wait(2) (if the parent is stuck, "
            "killing the parent lets init reap it)");
    }
    if (f.caller_pid != 0 && f.caller_pid == f.target_pid) {
        return verdict(AccessRule::allowed, "nothing refuses: " + who + " is your own process", "");
    }

    // __ptrace_may_access: the caller's uid must equal the target's real, effective
    // and saved uid, and likewise for gids, unless it has CAP_SYS_PTRACE over the target.
    const ProcIds& c = f.caller;
    const ProcIds& t = f.target;
    const uid_t caller_uid = read ? c.fsuid : c.ruid;
    const gid_t caller_gid = read ? c.fsgid : c.rgid;
    const bool uids_match = caller_uid == t.ruid && caller_uid == t.euid && caller_uid == t.suid;
    const bool gids_match = caller_gid == t.rgid && caller_gid == t.egid && caller_gid == t.sgid;
    const bool cap = has_ptrace_cap_over_target(f);
    if (!(uids_match && gids_match) && !cap) {
        if (!f.same_user_namespace) {
            return refuse_namespace(f);
        }
        return refuse_ids(f, mode, !uids_match);
    }
    // Then the target's dumpable flag (checked against its mm's namespace).
    if (!f.target_dumpable && !cap) {
        return verdict(
            AccessRule::not_dumpable,
            who +
                " is not dumpable (it runs a setuid/setgid or file-capability program, changed its "
                "credentials, or called prctl(PR_SET_DUMPABLE, 0)) and you lack CAP_SYS_PTRACE",
            std::string("only root or a process with CAP_SYS_PTRACE can ") +
                (read ? "read its memory map" : "attach to it or read its memory") + ": " +
                root_or_cap_advice(f) + "; or the target itself calls prctl(PR_SET_DUMPABLE, 1)");
    }
    // The commoncap LSM: outside the target's namespace, or when the target holds
    // capabilities the caller lacks, only CAP_SYS_PTRACE helps.
    if (!cap && !f.same_user_namespace) {
        return refuse_namespace(f);
    }
    const std::uint64_t caller_caps = read ? c.cap_eff : c.cap_prm;
    if (!cap && (t.cap_prm & ~caller_caps) != 0) {
        return verdict(AccessRule::target_capabilities,
                       who + " holds capabilities you lack (its permitted set " + hex64(t.cap_prm) +
                           " is not within your " + (read ? "effective" : "permitted") + " set " +
                           hex64(caller_caps) + ") and you lack CAP_SYS_PTRACE",
                       root_or_cap_advice(f));
    }

    if (!read) {
        // Yama applies to PTRACE_MODE_ATTACH only.
        if (f.yama_ptrace_scope) {
            const int scope = *f.yama_ptrace_scope;
            const std::string you = f.caller_pid != 0 ? num(f.caller_pid) : "<your pid>";
            if (scope == 1 && !f.caller_is_ancestor && !cap) {
                return verdict(
                    AccessRule::yama_scope_1,
                    "Yama ptrace_scope is 1: only an ancestor of " + who +
                        " may attach to it, and you (pid " + you +
                        ") are not one and lack CAP_SYS_PTRACE; the target could still grant you access "
                        "with prctl(PR_SET_PTRACER, " +
                        you + "), which cannot be seen from outside",
                    "have the target call prctl(PR_SET_PTRACER, " + you +
                        ") (or start it from the tool so it descends from it), " + root_or_cap_advice(f) +
                        ", or allow attaching to any process of your uid with `sudo sysctl "
                        "kernel.yama.ptrace_scope=0`");
            }
            if (scope == 2 && !cap) {
                return verdict(
                    AccessRule::yama_scope_2,
                    "Yama ptrace_scope is 2: only processes with CAP_SYS_PTRACE may attach, and you "
                    "lack it",
                    root_or_cap_advice(f) +
                        ", or lower the setting with `sudo sysctl kernel.yama.ptrace_scope=1`");
            }
            if (scope >= 3) {
                return verdict(
                    AccessRule::yama_scope_3,
                    "Yama ptrace_scope is 3: attaching is disabled for every process, even root with "
                    "CAP_SYS_PTRACE",
                    "the setting cannot be lowered while the system runs: set kernel.yama.ptrace_scope "
                    "to 2 or less in /etc/sysctl.d/ and reboot (read mode, e.g. the memory map, still "
                    "works)");
            }
        }
        if (t.tracer_pid != 0 && t.tracer_pid != f.caller_pid) {
            const std::string tracer =
                "process " + num(t.tracer_pid) + (f.tracer_comm.empty() ? "" : " (" + f.tracer_comm + ")");
            return verdict(AccessRule::already_traced,
                           who + " is already traced by " + tracer +
                               " (its TracerPid), and a process can have only one tracer",
                           "detach the other tracer, " + tracer +
                               " (e.g. `detach` or quit in that debugger, or `kill " + num(t.tracer_pid) +
                               "`), then retry");
        }
    }

    std::string why;
    if (!(uids_match && gids_match)) {
        why = "you have CAP_SYS_PTRACE over " + who;
    } else {
        why = who + " runs with your " + (read ? "filesystem" : "real") + " uid and gid";
    }
    return verdict(AccessRule::allowed, "nothing refuses: " + why, "");
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

}  // namespace

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
    f.target_user = user_name(f.target.euid);
    f.target_group = group_name(f.target.egid);
    return f;
}

AccessVerdict explain_access(pid_t pid, AccessMode mode) {
    auto facts = gather_access_facts(pid);
    if (facts) {
        return diagnose(*facts, mode);
    }
    const Error& e = facts.error();
    if (e.kind == ErrorKind::no_such_process || e.errno_value == ESRCH || e.errno_value == ENOENT) {
        AccessFacts gone;
        gone.exists = false;
        gone.target_pid = pid;
        return diagnose(gone, mode);
    }
    return verdict(AccessRule::undetermined,
                   "the facts about process " + num(pid) + " could not be read: " + e.message(),
                   "run as root (`sudo <command>`) to see the whole diagnosis");
}

}  // namespace xproc
