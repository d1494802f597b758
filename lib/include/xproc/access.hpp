// SPDX-License-Identifier: MIT
#pragma once
/// @file access.hpp
/// Why a process's memory cannot be read or attached to, and what would allow it.
///
/// The diagnosis is a pure function, `diagnose()`, of the facts read from /proc
/// by `gather_access_facts()`; unit tests feed it every rule and combination.
/// See DESIGN.md, "Permission model".

#include <sys/types.h>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xproc/error.hpp"
#include "xproc/process.hpp"

namespace xproc {

/// The ptrace access mode an operation needs (kernel's PTRACE_MODE_*).
enum class AccessMode : std::uint8_t {
    read,  ///< PTRACE_MODE_READ_FSCREDS: /proc/PID/maps, smaps, environ
    /// PTRACE_MODE_ATTACH_REALCREDS for memory: process_vm_readv/writev, pidfd_getfd. Yama applies,
    /// an existing tracer does not (memory can be read while a debugger is attached). The report
    /// (`explain_access_all`) also checks the owner and mode of /proc/PID/mem, the fallback path,
    /// but the verdict is that of process_vm_readv.
    attach,
    /// ptrace(PTRACE_ATTACH/PTRACE_SEIZE) itself: attach's rules, then the tracer slot must be free
    /// and the target must not be the caller's own process.
    ptrace_attach,
    /// open(2) of /proc/PID/mem: the file's owner and mode (DAC, checked first), then
    /// PTRACE_MODE_ATTACH_FSCREDS (the caller's filesystem uid/gid, as in read mode).
    proc_mem,
};

std::string_view to_string(AccessMode mode) noexcept;

/// The rule that decides, in the order the kernel checks them.
enum class AccessRule : std::uint8_t {
    allowed,          ///< nothing refuses
    no_such_process,  ///< pid does not exist
    zombie,           ///< exited, not reaped: no memory map left
    kernel_thread,    ///< kernel threads have no user memory
    uid_mismatch,     ///< caller's uid does not match all of target's uids, no CAP_SYS_PTRACE
    gid_mismatch,     ///< caller's gid does not match all of target's gids, no CAP_SYS_PTRACE
    user_namespace,   ///< target lives in a user namespace where the caller has no CAP_SYS_PTRACE
    not_dumpable,     ///< target is not dumpable (setuid, prctl(PR_SET_DUMPABLE, 0)), no CAP_SYS_PTRACE
    /// target's permitted capabilities are not a subset of the caller's (commoncap LSM; the caller's
    /// effective set in read and proc_mem modes, permitted set otherwise), no CAP_SYS_PTRACE
    target_capabilities,
    yama_scope_1,    ///< Yama 1: only descendants or a PR_SET_PTRACER grant (attach modes)
    yama_scope_2,    ///< Yama 2: CAP_SYS_PTRACE only (attach modes)
    yama_scope_3,    ///< Yama 3: no attach at all (attach modes)
    already_traced,  ///< a tracer is already attached (ptrace_attach only)
    undetermined,    ///< the facts could not be read (reason says why); the kernel decides
    own_process,     ///< ptrace_attach to the caller's own process (thread group) is refused
    /// The caller's executable has file capabilities (security.capability) including CAP_SYS_PTRACE
    /// that exec did not grant because no_new_privs is set, and a rule refuses that they would
    /// have overridden. Reported as a rule of its own by `explain_access_all`; the deciding
    /// verdict stays the kernel's refusing rule, whose advice then starts with no_new_privs.
    no_new_privs,
    /// /proc/PID/mem's owner and mode refuse the caller's filesystem uid/gid (DAC; it is 0600 and
    /// owned by the target's euid, or by root when the target is not dumpable), and the caller
    /// lacks CAP_DAC_READ_SEARCH/CAP_DAC_OVERRIDE. Decides only in proc_mem mode.
    proc_mem_permission,
    /// Every rule above allows the access, yet the kernel refused the probe of it (opening
    /// /proc/PID/maps or /proc/PID/mem, which runs the same ptrace access check): a security
    /// module (Landlock, AppArmor, SELinux, a BPF LSM) or a sandbox refuses. Only
    /// `explain_access`/`explain_access_all` report it; `diagnose` has no system calls.
    security_module,
};

std::string_view to_string(AccessRule rule) noexcept;

/// Which check a line of an `AccessReport` is about (each may allow or refuse).
enum class AccessCheck : std::uint8_t {
    process,         ///< exists, not a zombie, not a kernel thread, not the caller itself
    file_caps,       ///< the caller's executable's file capabilities vs no_new_privs
    uids,            ///< caller's uid vs target's real/effective/saved uids
    gids,            ///< caller's gid vs target's real/effective/saved gids
    dumpable,        ///< target's dumpable flag
    user_namespace,  ///< caller's CAP_SYS_PTRACE reaches the target's user namespace
    capabilities,    ///< target's permitted capabilities within the caller's
    yama,            ///< Yama ptrace_scope (attach modes)
    tracer,          ///< TracerPid (refuses in ptrace_attach mode only)
    proc_mem_file,   ///< owner and mode of /proc/PID/mem (attach and proc_mem modes)
    probe,           ///< the kernel's own answer: opening /proc/PID/maps or /proc/PID/mem
};

/// Short label used in the report lines: "process", "file caps", "uids", ...
std::string_view to_string(AccessCheck check) noexcept;

/// Capabilities stored in a file's security.capability extended attribute.
struct FileCapabilities {
    std::uint64_t permitted = 0;
    std::uint64_t inheritable = 0;
    bool effective = false;  ///< the +e flag: permitted caps become effective at exec
};

/// Everything the diagnosis depends on; filled from /proc or by a test.
///
/// Which caller ids count depends on the mode, as in the kernel: read and proc_mem
/// modes (PTRACE_MODE_FSCREDS) compare the caller's filesystem uid/gid and effective
/// capabilities, attach and ptrace_attach modes (PTRACE_MODE_REALCREDS, used by ptrace
/// and process_vm_readv) the real uid/gid and permitted capabilities. CAP_SYS_PTRACE
/// is always taken from the caller's effective set.
struct AccessFacts {
    bool exists = true;
    bool zombie = false;
    bool kernel_thread = false;
    ProcIds caller;               ///< ids and capabilities of the caller (the calling thread)
    ProcIds target;               ///< ids of the target (TracerPid, etc.)
    bool target_dumpable = true;  ///< from the owner of /proc/PID/status (root:root when not dumpable)
    std::optional<int> yama_ptrace_scope;  ///< absent when Yama is not loaded
    bool caller_is_ancestor = false;       ///< target descends from the caller (Yama 1)
    pid_t caller_pid = 0;
    bool same_user_namespace = true;            ///< caller and target in one user namespace
    bool caller_owns_target_namespace = false;  ///< target's userns created by caller's euid in caller's ns
    /// Target's user namespace is nested (at any depth) inside the caller's, so the caller's
    /// CAP_SYS_PTRACE applies there. Implied by caller_owns_target_namespace.
    bool target_in_descendant_namespace = false;

    // Context for the messages only; the rules do not depend on these.
    pid_t target_pid = 0;               ///< the pid asked about (0: "the target")
    std::string target_comm;            ///< the target's comm, "" if unknown
    std::string target_user;            ///< user name of the target's effective uid, "" if unknown
    std::string target_group;           ///< group name of the target's effective gid, "" if unknown
    std::string tracer_comm;            ///< comm of target.tracer_pid, "" if unknown
    std::string caller_exe;             ///< the caller's executable (for `setcap ... <tool>`), "" if unknown
    std::string caller_user_namespace;  ///< e.g. "user:[4026531837]", "" if unknown
    std::string target_user_namespace;  ///< e.g. "user:[4026532201]", "" if unknown

    /// File capabilities of the caller's executable (security.capability); absent if none.
    std::optional<FileCapabilities> caller_file_caps;
    /// The caller's supplementary groups (for /proc/PID/mem's group permission bits).
    std::vector<gid_t> caller_groups;
    /// Owner, group and mode (permission bits) of /proc/PID/mem; absent if it could not be stat'ed.
    struct FileOwner {
        uid_t uid = 0;
        gid_t gid = 0;
        std::uint32_t mode = 0;  ///< st_mode & 07777, e.g. 0600
    };
    std::optional<FileOwner> proc_mem;
    std::string proc_mem_user;   ///< user name of proc_mem->uid, "" if unknown
    std::string proc_mem_group;  ///< group name of proc_mem->gid, "" if unknown
};

/// Outcome: allowed, or the first rule that refuses, why, and how to allow it.
/// In an `AccessReport`'s `rules`, one check's outcome (`rule` is `allowed` when it passed).
struct AccessVerdict {
    AccessRule rule = AccessRule::allowed;
    std::string reason;                        ///< one sentence: what refused
    std::string how_to_allow;                  ///< one sentence: what would allow it
    AccessCheck check = AccessCheck::process;  ///< the check that gave this outcome
    /// What the check found, e.g. "caller ruid 65534, target ruid/euid/suid 0/0/0 — mismatch; no
    /// CAP_SYS_PTRACE"; set for report lines and for the deciding verdict.
    std::string finding;
    bool allowed() const noexcept { return rule == AccessRule::allowed; }
    /// An `Error` (kind permission/no_such_process/zombie/kernel_thread) for `operation` on `pid`,
    /// with detail = reason and hint = how_to_allow. For a verdict that allows (the kernel refused
    /// for a reason outside these rules: SELinux, AppArmor, Landlock...) the kind follows `errno_value`
    /// and the detail says that no ptrace rule explains the refusal.
    Error to_error(std::string operation, pid_t pid, int errno_value) const;
};

/// Every check that applies to `mode`, in the kernel's order, and the deciding verdict.
struct AccessReport {
    AccessMode mode = AccessMode::read;
    /// One entry per check that applies, allowing ones too, in kernel order (`check` and
    /// `finding` set; `reason`/`how_to_allow` set on refusing entries). May hold several refusals.
    std::vector<AccessVerdict> rules;
    /// The deciding one: the first refusal of the operation's own path, or an allowing verdict.
    /// Same as `diagnose(facts, mode)`.
    AccessVerdict verdict;
    /// Lines printed before the rules: what was checked and who asks.
    std::vector<std::string> context;
    /// The multi-line report `xpeek --why PID` prints: the context lines, one line per rule
    /// ("  ok       uids: ..." / "  REFUSES  uids: ..."), then "Verdict: allowed: ..." or
    /// "Verdict: refused by <rule>: <reason>. To allow: <how_to_allow>." Ends with a newline.
    std::string text() const;
};

/// Pure diagnosis in the kernel's order (__ptrace_may_access, then the commoncap
/// and Yama LSMs; for proc_mem the file permission first); no system calls. Thread safe.
AccessVerdict diagnose(const AccessFacts& facts, AccessMode mode);

/// Pure: every check for `mode` on these facts (what `explain_access_all` reports). Thread safe.
AccessReport diagnose_all(const AccessFacts& facts, AccessMode mode);

/// Reads the facts about `pid` and the calling thread from /proc (status, stat,
/// the owner of /proc/PID, Yama's ptrace_scope, the parent chain, user
/// namespaces). Fails with no_such_process when `pid` does not exist.
Result<AccessFacts> gather_access_facts(pid_t pid);

/// gather + diagnose. If the facts cannot be gathered, returns a verdict naming
/// the failure (no_such_process, or undetermined with the error in `reason`).
AccessVerdict explain_access(pid_t pid, AccessMode mode);

/// gather + diagnose_all: the whole diagnosis for `xpeek --why PID`. If the facts cannot be
/// gathered, the report holds one rule, the verdict naming the failure (as explain_access).
AccessReport explain_access_all(pid_t pid, AccessMode mode);

/// Reads the security.capability attribute of `path` (following symlinks, so /proc/self/exe
/// works). nullopt when the file has none or it cannot be read. Exposed for tests.
std::optional<FileCapabilities> read_file_capabilities(const char* path);

}  // namespace xproc
