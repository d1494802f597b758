// SPDX-License-Identifier: MIT
#pragma once
/// @file tracer.hpp
/// `Attachment`: ptrace control of every thread of one process.
///
/// Seizes each thread with `PTRACE_SEIZE` (never `PTRACE_ATTACH`: a target attached that way
/// is left in state T if the tracer dies) with `PTRACE_O_TRACECLONE`, so threads created while
/// attached are followed, and `PTRACE_O_EXITKILL` off (a dying tracer leaves the target
/// running). Seizing does not stop anything; `stop_all` interrupts every thread
/// (`PTRACE_INTERRUPT`) and waits until each is in a ptrace-stop.
///
///     auto att = Attachment::seize(pid).value();   // target keeps running
///     att->stop_all().value();                      // all threads stopped
///     Registers r = att->registers(att->pid()).value();
///     att->resume_all().value();                    // running again
///     // ~Attachment: stops, restores breakpoints/debug registers, detaches
///
/// Stops, as the kernel reports them to a PTRACE_SEIZE tracer (ptrace(2) "Stopped states"):
///  - `PTRACE_EVENT_STOP` with SIGTRAP: our `PTRACE_INTERRUPT` (StopKind::interrupted), or the
///    first stop of a new thread (handled inside, never reported);
///  - `PTRACE_EVENT_STOP` with SIGSTOP/SIGTSTP/SIGTTIN/SIGTTOU: a group-stop (job control);
///  - a plain stop with signal S: signal-delivery-stop. S is delivered when the thread is
///    resumed unless the caller suppresses it (`resume(tid, 0)`); SIGTRAP from a breakpoint or a
///    single step is classified by `Breakpoints` and never delivered.
/// Group-stop and signal-delivery-stop are told apart, so a target that was stopped (state T)
/// before we attached is still stopped after we detach, and one that was running runs again.
///
/// Thread safety: ptrace requests must come from the thread that seized (the kernel's rule);
/// an Attachment is used from that one thread only. Not movable (Breakpoints keeps a reference):
/// `seize` returns it in a unique_ptr.
///
/// Waiting: `waitpid(tid, __WALL | WNOHANG)` per known thread, polling with a short back-off
/// (no SIGCHLD handler is installed, no other child of the caller is reaped). When the
/// traced process is also the caller's child, its exit status is collected here
/// (`exit_status()`), not by a later waitpid of the caller.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xproc/error.hpp"
#include "xproc/memory.hpp"
#include "xproc/registers.hpp"

namespace xproc {

class Breakpoints;  // breakpoints.hpp

/// Why a thread stopped (or ended).
enum class StopKind : std::uint8_t {
    interrupted,    ///< our PTRACE_INTERRUPT (stop_all)
    group_stop,     ///< job-control stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU): `signal`
    signal,         ///< signal-delivery-stop: `signal` will be delivered on resume
    breakpoint,     ///< a breakpoint was hit (`breakpoints` says which); pc is at its address
    watchpoint,     ///< a watchpoint triggered (`breakpoints`, `watch_address`)
    single_step,    ///< a step finished
    thread_exited,  ///< this thread exited (the process goes on)
    exited,         ///< the process exited: `exit_code`
    killed,         ///< the process was killed by `signal`
};
/// "interrupted", "group-stop", "signal", "breakpoint", ...
std::string_view to_string(StopKind kind) noexcept;

/// One stop, as `wait` reports it.
struct StopEvent {
    pid_t tid = 0;
    StopKind kind = StopKind::interrupted;
    int signal = 0;     ///< signal / group_stop: the signal; killed: the fatal signal
    int exit_code = 0;  ///< exited: the status passed to exit()
    siginfo_t info{};   ///< signal-delivery-stops (PTRACE_GETSIGINFO): si_code, si_addr...
    bool has_info = false;
    std::vector<int> breakpoints;     ///< breakpoint/watchpoint: ids (Breakpoints numbering)
    std::uint64_t watch_address = 0;  ///< watchpoint: the watched address
};

/// What we know about one traced thread.
struct TracedThread {
    pid_t tid = 0;
    bool stopped = false;                   ///< in a ptrace-stop (registers can be read)
    StopKind last = StopKind::interrupted;  ///< why it last stopped
    int pending_signal = 0;                 ///< delivered by a plain `resume` (signal-delivery-stop)
    bool group_stopped = false;             ///< its last stop was a group-stop
};

struct AttachOptions {
    /// stop_all() after seizing (all threads stopped on return).
    bool stop = false;
    /// How long stop_all and detach wait for every thread to stop.
    std::chrono::milliseconds timeout{2000};
};

/// ptrace control of all threads of one process. RAII: the destructor detaches from every
/// thread after removing every breakpoint and watchpoint and clearing the debug registers it
/// set, also after errors and when the target exited meanwhile.
class Attachment {
  public:
    /// Seizes every thread of `pid` (re-reading /proc/PID/task until no new thread appears).
    /// Errors: no_such_process, permission (the rule that refused, from
    /// explain_access(pid, AccessMode::ptrace_attach), e.g. "already traced by PID 12 (gdb)"),
    /// invalid_argument for the caller's own process.
    static Result<std::unique_ptr<Attachment>> seize(pid_t pid, AttachOptions options = {});

    Attachment(const Attachment&) = delete;
    Attachment& operator=(const Attachment&) = delete;
    /// Detaches (see `detach`); errors are ignored (nothing to report them to).
    ~Attachment();

    pid_t pid() const noexcept { return m_pid; }
    /// The process was in a group-stop (state T) when we seized it: detach leaves it stopped.
    bool was_stopped() const noexcept { return m_was_stopped; }
    /// Live traced threads, leader first, then in the order they were seized/created.
    const std::vector<TracedThread>& threads() const noexcept { return m_threads; }
    const TracedThread* thread(pid_t tid) const noexcept;
    bool all_stopped() const noexcept;
    /// The process is gone (exited or killed); only detach/destruction remain useful.
    bool process_gone() const noexcept { return m_gone.has_value(); }
    /// How the process ended (exited/killed event), when `process_gone()`.
    const std::optional<StopEvent>& exit_event() const noexcept { return m_gone; }

    /// Interrupts every running thread and waits until all are in a ptrace-stop. A thread
    /// that reports something else first (a signal, a breakpoint) counts as stopped; that
    /// event is queued and returned by the next `wait`. Errors: a thread did not stop within
    /// `timeout` (os, ETIMEDOUT, naming the tid); the process is gone (no_such_process).
    Result<void> stop_all(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
    /// Resumes one stopped thread (PTRACE_CONT). `signal`: nullopt delivers the pending
    /// signal of a signal-delivery-stop, 0 suppresses it, N delivers N (from a stop that is
    /// not a signal-delivery-stop, N is sent with tgkill and delivered, unreported, when the
    /// thread dequeues it). A thread sitting on a software breakpoint steps over it first.
    Result<void> resume(pid_t tid, std::optional<int> signal = std::nullopt);
    /// Resumes every stopped thread as `resume` does (software breakpoints stepped over
    /// first, while the others are still stopped). A thread with a queued breakpoint,
    /// watchpoint or step event stays stopped until that event is taken by `wait` (gdb's
    /// pending events); queued signals are delivered.
    Result<void> resume_all(std::optional<int> signal_for_leader = std::nullopt);
    /// Single-steps one stopped thread (others keep their state) and waits for it. Returns
    /// the event: single_step normally; breakpoint if it lands on one; signal, exited...
    Result<StopEvent> step(pid_t tid, std::optional<int> signal = std::nullopt);
    /// The next reportable event of a running thread: nullopt after `timeout`. Clone
    /// events, new threads' first stops and late interrupt stops are handled inside.
    /// Breakpoint SIGTRAPs come back classified (kind breakpoint/watchpoint, pc rewound);
    /// a breakpoint whose ignore count or condition says "go on" is resumed silently.
    Result<std::optional<StopEvent>> wait(std::chrono::milliseconds timeout);

    /// An event seen while doing something else (stop_all, a step) waits to be reported: the
    /// next `wait` returns it at once. gdb reports such events before resuming anything.
    bool has_queued_event() const noexcept { return !m_queued.empty(); }
    /// Called while `step` waits (and between polls): returning true interrupts the wait (the
    /// thread is interrupted and reported with kind interrupted). xpeek passes its Ctrl-C flag.
    void set_cancel_check(std::function<bool()> check) { m_cancel = std::move(check); }

    /// Registers of a stopped thread; `with_fp` false skips the FP/SSE set (one system call
    /// less, for snapshots: the result has fp_valid false).
    Result<Registers> registers(pid_t tid, bool with_fp = true);
    /// Writes them back (both sets; the FP set only if `regs.fp_valid`). The thread must be
    /// stopped. The change stays after detach (as gdb's `set $reg`); use RegisterGuard for
    /// temporary changes.
    Result<void> set_registers(const Registers& regs);
    /// PTRACE_PEEKUSER / PTRACE_POKEUSER on a stopped thread (debug registers:
    /// offsetof(struct user, u_debugreg[i])).
    Result<std::uint64_t> peek_user(pid_t tid, std::size_t offset);
    Result<void> poke_user(pid_t tid, std::size_t offset, std::uint64_t value);
    /// The target's memory (process_vm_*, /proc/PID/mem; ptrace when stopped under us).
    RemoteMemory& memory() noexcept { return *m_memory; }
    /// The breakpoints and watchpoints of this attachment.
    Breakpoints& breakpoints() noexcept { return *m_breakpoints; }

    /// Sends SIGKILL and waits for the process to end.
    Result<void> kill();
    /// Stops all threads, removes breakpoints and watchpoints (original bytes back, debug
    /// registers cleared), and detaches each thread, delivering its pending signal; a
    /// process that was group-stopped before we attached stays stopped. Idempotent.
    Result<void> detach();
    bool detached() const noexcept { return m_detached; }

    /// Used by Breakpoints: the raw single step (no breakpoint handling), and the thread
    /// list changes it must follow (debug registers are per thread).
    Result<StopEvent> step_raw(pid_t tid, int signal);

  private:
    explicit Attachment(pid_t pid);
    Result<void> seize_thread(pid_t tid);
    Result<void> seize_all();
    TracedThread* find(pid_t tid) noexcept;
    /// Collects one status for `tid` (already waited); true if the thread is now stopped.
    void on_status(pid_t tid, int status, std::vector<StopEvent>& out);
    /// One polling round over all threads; appends events; returns whether anything arrived.
    Result<bool> poll_once(std::vector<StopEvent>& out);
    void forget_thread(pid_t tid);
    Result<void> ptrace_resume(pid_t tid, int request, int signal);
    Result<void> interrupt_thread(TracedThread& t);

    bool m_stopping = false;                      // inside stop_all/detach: interrupt stops are wanted
    std::size_t m_poll_round = 0;                 // poll_once starts at a different thread each round
    std::vector<std::pair<pid_t, int>> m_inject;  // (tid, signal) sent by tgkill for `resume`
    std::function<bool()> m_cancel;
    bool m_cancellable = false;  // inside step(): m_cancel may interrupt the wait

    pid_t m_pid = 0;
    bool m_was_stopped = false;
    bool m_detached = false;
    AttachOptions m_options;
    std::vector<TracedThread> m_threads;
    std::vector<pid_t> m_new_threads;       // auto-attached, first stop not seen yet
    std::vector<pid_t> m_expect_interrupt;  // interrupted while running: a late stop to swallow
    std::vector<StopEvent> m_queued;        // reportable events seen while doing something else
    std::optional<StopEvent> m_gone;
    std::unique_ptr<RemoteMemory> m_memory;
    std::unique_ptr<Breakpoints> m_breakpoints;
    friend class Breakpoints;
};

/// Restores a thread's registers when it leaves scope (rr's AutoRemoteSyscalls): for
/// operations that change registers temporarily.
class RegisterGuard {
  public:
    static Result<RegisterGuard> save(Attachment& att, pid_t tid);
    ~RegisterGuard();
    RegisterGuard(RegisterGuard&& other) noexcept;
    RegisterGuard& operator=(RegisterGuard&&) = delete;
    const Registers& saved() const noexcept { return m_saved; }

  private:
    RegisterGuard(Attachment& att, Registers saved) : m_att(&att), m_saved(saved) {}
    Attachment* m_att;
    Registers m_saved;
};

}  // namespace xproc
