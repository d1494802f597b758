// SPDX-License-Identifier: MIT
#pragma once
/// @file process.hpp
/// `Process`: a pid pinned by a pidfd, so the process we read is the process we
/// meant even if the pid is reused; and `list_processes()`.

#include <sys/types.h>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "xproc/error.hpp"
#include "xproc/fd.hpp"

namespace xproc {

/// Fields of /proc/PID/stat that xproc uses (see proc(5) for meanings).
struct ProcStat {
    pid_t pid = 0;
    std::string comm;  ///< without the parentheses; may contain spaces and ')'
    char state = '?';  ///< R S D Z T t X I ...
    pid_t ppid = 0;
    pid_t pgrp = 0;
    pid_t session = 0;
    unsigned flags = 0;  ///< PF_* (PF_KTHREAD = 0x00200000)
    std::uint64_t utime_ticks = 0;
    std::uint64_t stime_ticks = 0;
    long num_threads = 0;
    std::uint64_t start_time_ticks = 0;  ///< since boot, in clock ticks: with pid, identifies a process
    std::uint64_t vsize = 0;             ///< bytes
    std::int64_t rss_pages = 0;
    std::uint64_t start_stack = 0;  ///< address of the bottom of the main stack
    bool is_kernel_thread() const noexcept { return (flags & 0x00200000u) != 0; }
};

/// Parses the text of /proc/PID/stat (pure; for tests and fuzzing).
Result<ProcStat> parse_proc_stat(std::string_view text);

/// Ids from /proc/PID/status.
struct ProcIds {
    pid_t tgid = 0;  ///< thread-group id: the process a thread belongs to (its own pid for a leader)
    uid_t ruid = 0, euid = 0, suid = 0, fsuid = 0;
    gid_t rgid = 0, egid = 0, sgid = 0, fsgid = 0;
    std::uint64_t cap_eff = 0;
    std::uint64_t cap_prm = 0;
    pid_t tracer_pid = 0;
    bool no_new_privs = false;
};

/// Parses the text of /proc/PID/status into ids, capabilities, TracerPid, Tgid.
/// Tgid is optional (0 when absent), the others are required.
Result<ProcIds> parse_proc_ids(std::string_view status_text);

/// The process (thread-group id) that thread `tid` belongs to; `tid` itself for
/// a thread-group leader. Reads `Tgid:` from /proc/TID/status, which exists for
/// every thread although /proc lists only leaders. Use it to pin the process of
/// a thread id, which `Process::open` refuses (pidfd_open takes leaders only).
/// The answer is a snapshot: if the thread exits, its id may be reused.
/// Errors: invalid_argument for tid <= 0, no_such_process if no such thread
/// exists, parse if the status file has no valid `Tgid:`. Thread safe.
Result<pid_t> thread_group_of(pid_t tid);

/// A process pinned by a pidfd.
///
/// Every accessor re-reads /proc (values are live) and then checks the pidfd:
/// if the process died and was reaped meanwhile, the result is
/// `ErrorKind::no_such_process` rather than data from a process that reused the
/// pid. A zombie (exited, not reaped) still answers: `stat().state == 'Z'`.
/// A refusal (EACCES) carries the ptrace rule that refused (see access.hpp).
/// Move-only; not thread safe (use one per thread).
class Process {
  public:
    /// Pins `pid` with pidfd_open(2). Fails with no_such_process if absent.
    static Result<Process> open(pid_t pid);
    /// The calling process.
    static Result<Process> self();

    pid_t pid() const noexcept { return m_pid; }
    int pidfd() const noexcept { return m_pidfd.get(); }
    /// The directory fd of /proc/PID, opened together with the pidfd.
    int proc_dir() const noexcept { return m_proc_dir.get(); }

    /// True while the process has not exited (pidfd is not readable yet).
    bool alive() const noexcept;

    Result<ProcStat> stat() const;
    Result<ProcIds> ids() const;
    Result<std::string> comm() const;
    /// argv as the process sees it now (empty vector for kernel threads and zombies).
    Result<std::vector<std::string>> cmdline() const;
    /// Target of /proc/PID/exe ("" when the link is empty, e.g. kernel threads).
    Result<std::string> exe() const;
    /// Thread ids from /proc/PID/task.
    Result<std::vector<pid_t>> threads() const;
    /// Start time since boot, in clock ticks (field 22 of stat).
    Result<std::uint64_t> start_time() const;

  private:
    Process(pid_t pid, UniqueFd pidfd, UniqueFd proc_dir) noexcept
        : m_pid(pid), m_pidfd(std::move(pidfd)), m_proc_dir(std::move(proc_dir)) {}
    /// Checks the pidfd after a read from /proc: no_such_process if the process
    /// was reaped (only then can its pid be reused); `what` names the operation.
    Result<void> still_alive(const char* what) const;
    /// Reads /proc/PID/NAME through the pinned directory, then checks still_alive().
    Result<std::string> read_entry(const char* name) const;

    pid_t m_pid = 0;
    UniqueFd m_pidfd;
    UniqueFd m_proc_dir;
};

/// Pids of every process in /proc, ascending (threads are not listed).
Result<std::vector<pid_t>> list_processes();

}  // namespace xproc
