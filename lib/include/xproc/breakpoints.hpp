// SPDX-License-Identifier: MIT
#pragma once
/// @file breakpoints.hpp
/// Breakpoints and watchpoints of one `Attachment`.
///
/// Hardware first: x86 debug registers DR0-DR3 (address) and DR7 (enable, type, length),
/// written per thread with PTRACE_POKEUSER; they change nothing in the target's memory.
/// Execute breakpoints, and write / read-write watchpoints of 1, 2, 4 or 8 bytes (aligned to
/// their length). When the four slots are taken, breakpoints fall back to software `int3`
/// (0xCC written through /proc/PID/mem; the original byte is kept and restored on removal,
/// on detach, and while stepping over it). Watchpoints have no software fallback.
///
/// Debug registers are per thread and not inherited by new threads: the Attachment calls
/// `thread_added` for each new thread, which programs the current slots into it. Changing
/// them needs every thread stopped: threads that run are stopped (Attachment::stop_all) for
/// the change and resumed after.
///
/// Semantics follow gdb's: a breakpoint is reported when a thread arrives at it (by running
/// or by a single step), not when a thread that is already there is resumed (it is stepped
/// over: int3 taken out for one single step with all other threads stopped; a debug register
/// skipped with the RF flag). Watchpoints: `watch` reports a changed value, `rwatch` an access
/// that left the value unchanged (x86 has no read-only watch), `awatch` every access.
/// aarch64: software breakpoints only (BRK #0); hardware ones and watchpoints give
/// not_supported. The same on an x86-64 machine whose debug registers raise no trap (some
/// virtual machines accept them and never deliver the exception; see
/// hardware_breakpoints_work()): `break` uses int3 there.
///
/// Owned by its Attachment (`Attachment::breakpoints()`); same threading rule (the tracer
/// thread only).

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "xproc/error.hpp"
#include "xproc/tracer.hpp"

namespace xproc {

enum class BreakpointType : std::uint8_t {
    breakpoint,    ///< stop when the instruction at `address` is about to run
    watch_write,   ///< stop after a write to [address, address+length) (gdb `watch`)
    watch_read,    ///< stop after a read (gdb `rwatch`; x86 can only watch read-or-write, so a
                   ///< read is reported when the value did not change)
    watch_access,  ///< stop after a read or write (gdb `awatch`)
};

struct BreakpointOptions {
    bool temporary = false;      ///< deleted after its first reported hit (gdb `tbreak`)
    bool hardware_only = false;  ///< fail when no debug register is free (gdb `hbreak`)
    bool software_only = false;  ///< always int3 (tests)
};

/// Whether hardware breakpoints and watchpoints work here: x86-64 debug registers that
/// raise a trap when hit. Some virtual machines let the kernel program them and never
/// deliver the debug exception; a breakpoint in them would never stop anything. Probed once
/// per process, on first use, with a throw-away traced child (fork, PTRACE_TRACEME, DR0 on
/// a function it then calls); when the probe itself cannot run (ptrace refused), they are
/// assumed to work. The environment variable XPROC_HW_BREAKPOINTS=0 makes it false (the
/// analogue of gdb's `set can-use-hw-watchpoints 0`). Always false on aarch64.
bool hardware_breakpoints_work() noexcept;

/// One breakpoint or watchpoint, as `info breakpoints` lists it.
struct Breakpoint {
    int id = 0;  ///< 1, 2, ... never reused within an Attachment (gdb numbering)
    BreakpointType type = BreakpointType::breakpoint;
    std::uint64_t address = 0;
    std::size_t length = 1;  ///< watchpoints: 1, 2, 4, 8
    bool hardware = false;   ///< uses a debug register (else int3)
    int slot = -1;           ///< DR0-3 index when hardware
    bool temporary = false;
    bool enabled = true;
    std::uint64_t hits = 0;          ///< times hit (counted also while ignored)
    std::uint64_t ignore_count = 0;  ///< this many more hits are not reported (gdb `ignore`)
    std::uint64_t old_value = 0;     ///< watchpoints: the value before the last trigger
    std::uint64_t new_value = 0;     ///< watchpoints: the value after it
};

class Breakpoints {
  public:
    explicit Breakpoints(Attachment& att) : m_att(att) {}
    ~Breakpoints();  // nothing to undo: the Attachment calls remove_all() before detaching
    Breakpoints(const Breakpoints&) = delete;
    Breakpoints& operator=(const Breakpoints&) = delete;

    /// Adds an execute breakpoint at `address`: a free debug register, else an int3 (see
    /// BreakpointOptions). Returns its id. A thread stopped at `address` now is not reported
    /// there when resumed (it steps over). Errors: invalid_argument (not in an executable
    /// mapping; hardware_only with no free slot; both hardware_only and software_only),
    /// not_supported (hardware_only without working debug registers), os (the int3 could not be
    /// written; stop_all failed), no_such_process (detached, or the process ended).
    Result<int> add_breakpoint(std::uint64_t address, BreakpointOptions options = {});
    /// Adds a watchpoint (always hardware) on [address, address+length); its current value is
    /// read now (old_value = new_value = it). Errors: invalid_argument for a length other than
    /// 1/2/4/8, a misaligned address, type breakpoint, or no free debug register; os when the
    /// address cannot be read; not_supported without working debug registers.
    Result<int> add_watchpoint(std::uint64_t address, std::size_t length, BreakpointType type);
    /// Removes one (original byte back / slot cleared in every thread). Errors:
    /// invalid_argument (no such id), os (memory or debug-register write failed).
    Result<void> remove(int id);
    /// Removes all and clears DR0-3/DR7 in every thread if they were ever written; called by
    /// Attachment::detach. Tries every one even after an error (returns the first).
    Result<void> remove_all();
    /// The next `count` hits are counted but not reported (gdb `ignore`). Errors:
    /// invalid_argument (no such id).
    Result<void> set_ignore_count(int id, std::uint64_t count);
    /// Disables (int3 taken out / DR7 slot off; a disabled hardware one keeps its slot) or
    /// enables again. Errors as for remove.
    Result<void> set_enabled(int id, bool enabled);
    const std::vector<Breakpoint>& list() const noexcept { return m_list; }
    const Breakpoint* find(int id) const noexcept;

    /// Fills `out` (read from the target at `address`) with the original bytes where int3s
    /// are inserted, so callers show the program's own bytes (gdb does the same).
    void unpatch(std::uint64_t address, std::span<std::byte> out) const noexcept;

    // ---- hooks called by the Attachment ----
    /// `ev` is a SIGTRAP signal-delivery-stop of a stopped thread. If it comes from one of
    /// ours, turns it into kind breakpoint/watchpoint/single_step (pc rewound after an int3,
    /// DR6 cleared, hit counted, temporary ones deleted) and returns true to report it, or
    /// false when it must be resumed silently (ignore count, `watch` with an unchanged value,
    /// `rwatch` with a changed one, a trap of a breakpoint deleted meanwhile); `ev` is then
    /// kind interrupted (no signal to deliver: whoever keeps the thread stopped resumes it as
    /// an interrupted one). A SIGTRAP that is not ours is left as kind signal (returns true).
    Result<bool> on_sigtrap(StopEvent& ev);
    /// Before `tid` (stopped) is resumed or stepped: if it is on a breakpoint it has reported
    /// (or was on when the breakpoint was inserted), step it over so it is not hit again at
    /// once. int3: the byte is restored, `step_raw`, the byte written again, with every other
    /// thread stopped meanwhile (threads that were running are stopped with stop_all and
    /// resumed after; those that stopped for something to report stay stopped, their event
    /// queued). Debug register: RF is set in eflags (no step needed). Returns the event if the
    /// step-over ended in something reportable (a signal, a watchpoint, landing on another
    /// breakpoint, the process exit; the thread then stays stopped), else nullopt.
    Result<std::optional<StopEvent>> before_resume(pid_t tid);
    /// A new thread (stopped): program the debug registers in use.
    Result<void> thread_added(pid_t tid);
    /// `ev` is a completed single step of `ev.tid` (stopped). If an enabled breakpoint is at
    /// the new pc, counts the hit and, unless its ignore count swallows it, makes `ev` kind
    /// breakpoint (gdb reports a step onto a breakpoint as its hit); resuming the thread then
    /// steps over it. on_sigtrap does this itself; the Attachment calls it when a step was
    /// done by before_resume (stepping off an int3), whose SIGTRAP it does not see.
    Result<void> on_step_landed(StopEvent& ev);

  private:
    /// An int3 (aarch64: BRK) written into the target, shared by every software breakpoint at
    /// its address.
    struct Patch {
        std::uint64_t address = 0;
        std::array<std::byte, 4> original{};  ///< the program's own bytes under the trap
    };
    /// A debug register DR0-3: the breakpoint using it (0 = free). `retired`: its breakpoint
    /// was deleted while other threads ran (a temporary one after its hit); the slot is
    /// cleared in every thread the next time all are stopped, and hits on it are swallowed.
    struct Slot {
        int id = 0;
        bool retired = false;
        std::uint64_t address = 0;
    };

    Breakpoint* find_mut(int id) noexcept;
    Patch* find_patch(std::uint64_t address) noexcept;
    Result<void> check_executable(std::uint64_t address, std::string_view what);
    /// Inserts or removes the trap at `address` so that it is there exactly when an enabled
    /// software breakpoint is at that address.
    Result<void> sync_patch(std::uint64_t address);
    Result<void> write_trap(std::uint64_t address, bool insert, const Patch& patch);
    /// DR7 for the current slots (retired ones left out).
    std::uint64_t compute_dr7() const noexcept;
    /// Writes DR0-3 and DR7 into every thread; stops the running ones for it and resumes them.
    Result<void> program_all_threads();
    Result<void> program_thread(pid_t tid, std::uint64_t dr7, bool clear_all);
    /// Frees the retired slots (clears them in every thread) when all threads are stopped.
    Result<void> flush_retired();
    /// Runs `fn` with every thread stopped: threads that ran are stopped (stop_all) and
    /// resumed after, except those that stopped on their own for something to report.
    template <class F>
    Result<void> with_all_stopped(F&& fn);
    /// Marks the threads stopped at `address` as "already there": resuming them steps over
    /// the new breakpoint instead of reporting it at once (gdb's behaviour).
    void note_threads_at(std::uint64_t address);
    /// Counts a hit of an execute breakpoint at `address`; the ids to report.
    std::vector<int> count_exec_hits(std::uint64_t address);
    /// Deletes the temporary breakpoints among `ids` after their reported hit by `tid`.
    void delete_temporaries(const std::vector<int>& ids, pid_t tid);
    Result<std::optional<StopEvent>> step_over_trap(pid_t tid, std::uint64_t address);
    /// Stopped threads with a SIGTRAP of ours pending but not yet dequeued (interrupted right
    /// after the trap): let each take it, so it is classified instead of delivered after detach.
    void flush_pending_traps();

    Attachment& m_att;
    std::vector<Breakpoint> m_list;
    int m_next_id = 1;
    std::vector<Patch> m_patches;
    /// Addresses of removed traps: a SIGTRAP raised by one before its removal but seen after
    /// is swallowed (gdb's "moribund locations").
    std::vector<std::uint64_t> m_removed_traps;
    std::array<Slot, 4> m_slots{};
    bool m_debug_registers_used = false;  // DR7 was written at least once: clear it at the end
    /// Threads stopped at a breakpoint they already reported (or were at when it was
    /// inserted): the pc; resuming them steps over it.
    std::unordered_map<pid_t, std::uint64_t> m_step_over;
    /// The value of each watchpoint as last read (insertion, trigger).
    std::unordered_map<int, std::uint64_t> m_last_value;
    bool m_resuming_ours = false;  // resuming threads we stopped ourselves: no step-over
    bool m_stepping_over = false;  // inside step_over_trap: a step landing on a breakpoint is not a hit
};

}  // namespace xproc
