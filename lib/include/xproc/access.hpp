// SPDX-License-Identifier: MIT
#pragma once
/// @file access.hpp
/// Why a process's memory cannot be read or attached to, and what would allow it.
///
/// The diagnosis is a pure function, `diagnose()`, of the facts read from /proc
/// by `gather_access_facts()`; unit tests feed it every rule and combination.
/// See DESIGN.md, "Permission model".

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>

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
    yama_scope_1,     ///< Yama 1: only descendants or a PR_SET_PTRACER grant (attach only)
    yama_scope_2,     ///< Yama 2: CAP_SYS_PTRACE only (attach only)
    yama_scope_3,     ///< Yama 3: no attach at all (attach only)
    already_traced,   ///< another tracer is attached (attach only)
};

std::string_view to_string(AccessRule rule) noexcept;

/// Everything the diagnosis depends on; filled from /proc or by a test.
struct AccessFacts {
    bool exists = true;
    bool zombie = false;
    bool kernel_thread = false;
    ProcIds caller;  ///< ids and capabilities of the caller
    ProcIds target;  ///< ids of the target (TracerPid, etc.)
    bool target_dumpable = true;  ///< from the owner of /proc/PID (root:root when not dumpable)
    std::optional<int> yama_ptrace_scope;  ///< absent when Yama is not loaded
    bool caller_is_ancestor = false;       ///< target descends from the caller (Yama 1)
    pid_t caller_pid = 0;
    bool same_user_namespace = true;          ///< caller and target in one user namespace
    bool caller_owns_target_namespace = false;  ///< target's userns created by caller's euid in caller's ns
};

/// Outcome: allowed, or the first rule that refuses, why, and how to allow it.
struct AccessVerdict {
    AccessRule rule = AccessRule::allowed;
    std::string reason;    ///< one sentence: what refused
    std::string how_to_allow;  ///< one sentence: what would allow it
    bool allowed() const noexcept { return rule == AccessRule::allowed; }
    /// An `Error` (kind permission/no_such_process/zombie/kernel_thread) for `operation` on `pid`.
    Error to_error(std::string operation, pid_t pid, int errno_value) const;
};

/// Pure diagnosis; no system calls.
AccessVerdict diagnose(const AccessFacts& facts, AccessMode mode);

/// Reads the facts about `pid` and the caller from /proc.
Result<AccessFacts> gather_access_facts(pid_t pid);

/// gather + diagnose. If the facts cannot be gathered, returns a verdict naming
/// the failure (e.g. no_such_process).
AccessVerdict explain_access(pid_t pid, AccessMode mode);

}  // namespace xproc
