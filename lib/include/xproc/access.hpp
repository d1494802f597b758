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

#include "xproc/error.hpp"
#include "xproc/process.hpp"

namespace xproc {

/// The ptrace access mode an operation needs (kernel's PTRACE_MODE_*).
enum class AccessMode : std::uint8_t {
    read,    ///< PTRACE_MODE_READ: /proc/PID/maps, smaps, environ
    attach,  ///< PTRACE_MODE_ATTACH: ptrace, process_vm_readv, /proc/PID/mem
};

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
    /// effective set in read mode, permitted set in attach mode), no CAP_SYS_PTRACE
    target_capabilities,
    yama_scope_1,    ///< Yama 1: only descendants or a PR_SET_PTRACER grant (attach only)
    yama_scope_2,    ///< Yama 2: CAP_SYS_PTRACE only (attach only)
    yama_scope_3,    ///< Yama 3: no attach at all (attach only)
    already_traced,  ///< another tracer is attached (attach only)
    undetermined,    ///< the facts could not be read (reason says why); the kernel decides
};

std::string_view to_string(AccessRule rule) noexcept;

/// Everything the diagnosis depends on; filled from /proc or by a test.
///
/// Which caller ids count depends on the mode, as in the kernel: read mode
/// (PTRACE_MODE_FSCREDS) compares the caller's filesystem uid/gid and effective
/// capabilities, attach mode (PTRACE_MODE_REALCREDS, used by ptrace and
/// process_vm_readv) the real uid/gid and permitted capabilities. CAP_SYS_PTRACE
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
};

/// Outcome: allowed, or the first rule that refuses, why, and how to allow it.
struct AccessVerdict {
    AccessRule rule = AccessRule::allowed;
    std::string reason;        ///< one sentence: what refused
    std::string how_to_allow;  ///< one sentence: what would allow it
    bool allowed() const noexcept { return rule == AccessRule::allowed; }
    /// An `Error` (kind permission/no_such_process/zombie/kernel_thread) for `operation` on `pid`,
    /// with detail = reason and hint = how_to_allow. For a verdict that allows (the kernel refused
    /// for a reason outside these rules: SELinux, AppArmor, Landlock...) the kind follows `errno_value`
    /// and the detail says that no ptrace rule explains the refusal.
    Error to_error(std::string operation, pid_t pid, int errno_value) const;
};

/// Pure diagnosis in the kernel's order (__ptrace_may_access, then the commoncap
/// and Yama LSMs); no system calls. Thread safe.
AccessVerdict diagnose(const AccessFacts& facts, AccessMode mode);

/// Reads the facts about `pid` and the calling thread from /proc (status, stat,
/// the owner of /proc/PID, Yama's ptrace_scope, the parent chain, user
/// namespaces). Fails with no_such_process when `pid` does not exist.
Result<AccessFacts> gather_access_facts(pid_t pid);

/// gather + diagnose. If the facts cannot be gathered, returns a verdict naming
/// the failure (no_such_process, or undetermined with the error in `reason`).
AccessVerdict explain_access(pid_t pid, AccessMode mode);

}  // namespace xproc
