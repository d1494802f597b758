// SPDX-License-Identifier: MIT
#pragma once
/// @file unwind.hpp
/// Backtraces of another process's threads through libunwind's remote API, with accessors
/// backed by xproc (the public API below is what xpeek and xstack call; the implementation
/// is in lib/src/unwind.cpp and lib/src/stack_snapshot.cpp; libunwind is a private
/// dependency: no xproc header includes it).
///
///  - memory through `RemoteMemory`, with a page cache (libunwind's stock `_UPT_access_mem`
///    reads one word per ptrace call);
///  - registers from a `Registers` snapshot;
///  - unwind tables (.eh_frame_hdr) found per module and cached;
///  - names from `SymbolTable` (symbols.hpp), not `unw_get_proc_name`.
///
/// Snapshot mode: `snapshot_stacks` stops all threads, copies each one's registers and the
/// live part of its stack (bounded), resumes the target at once, and unwinding then works
/// from the copy; the time the target was stopped is measured.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xproc/error.hpp"
#include "xproc/registers.hpp"
#include "xproc/symbols.hpp"

namespace xproc {

class Attachment;

/// One frame of a backtrace. Frame 0 is the innermost.
struct Frame {
    unsigned index = 0;
    std::uint64_t pc = 0;  ///< the frame's pc (return address for callers)
    std::uint64_t sp = 0;
    std::uint64_t cfa = 0;     ///< canonical frame address, 0 when unknown
    std::string module;        ///< path of the module containing pc ("" if none, "[vdso]")
    std::string symbol;        ///< gdb's display name of the function; "" when none
    std::uint64_t offset = 0;  ///< pc - symbol start (for callers, computed on pc as gdb does)
    /// The name is a guess: no symbol's [start, start+size) covers the address (the nearest
    /// preceding one was taken), or no symbol at all.
    bool guessed = false;
    /// The signal trampoline the handler returns to (glibc's __restore_rt: gdb prints
    /// <signal handler called>); the next frame is the code the signal interrupted.
    bool signal_frame = false;
    /// No unwind table (CFI) covered the callee's pc, so this frame was found by libunwind's
    /// frame-pointer fallback (rbp chain): it may be wrong (JIT code, .debug_frame-only or
    /// hand-written assembly without CFI, code built without frame pointers).
    bool from_frame_pointer = false;
};

/// One thread's registers and a copy of the live part of its stack.
struct ThreadSnapshot {
    pid_t tid = 0;
    std::string name;  ///< /proc/PID/task/TID/comm
    Registers regs;
    std::uint64_t stack_start = 0;  ///< remote address of stack[0]
    std::vector<std::byte> stack;   ///< bytes from stack_start (sp - 128 red zone) upwards
};

struct StackSnapshot {
    pid_t pid = 0;
    std::vector<ThreadSnapshot> threads;  ///< leader first
    /// From the first PTRACE_INTERRUPT to the last thread resumed.
    std::chrono::nanoseconds stopped_for{0};
    bool was_stopped = false;  ///< group-stopped before (then left stopped)
};

struct SnapshotOptions {
    /// Most bytes copied per thread above sp (bounded by the stack mapping's end).
    std::size_t max_stack_bytes = 256 * 1024;
    /// Only these threads (empty: all).
    std::vector<pid_t> threads;
};

/// Seizes `pid`, stops all threads, copies registers and stacks, resumes, detaches.
///
/// While the target is stopped only this happens: PTRACE_INTERRUPT and wait per thread, the
/// registers of each thread, ONE batched process_vm_readv of every stack (from sp - 128 to
/// min(sp + max_stack_bytes, end of the mapping holding sp)), and the detach (which resumes).
/// /proc/PID/maps and the threads' names are read before stopping. A target that was
/// group-stopped (state T) before stays stopped. A thread that vanishes meanwhile is left out.
/// Errors: those of Attachment::seize (permission with the rule and its hint,
/// no_such_process), and of stop_all (a thread that does not stop).
Result<StackSnapshot> snapshot_stacks(pid_t pid, const SnapshotOptions& options = {});
/// The same on an existing attachment: threads already stopped stay stopped; the ones this
/// call stopped are resumed (the attachment stays). Errors: those of stop_all and resume.
Result<StackSnapshot> snapshot_stacks(Attachment& att, const SnapshotOptions& options = {});

/// Unwinds threads of one process with libunwind's remote API.
///
/// Memory is read through a page cache (process_vm_readv with read-ahead), registers come
/// from a `Registers` snapshot, and unwind tables are each module's .eh_frame_hdr (found
/// through its PT_GNU_EH_FRAME program header in the target's memory), located once per
/// module and kept for the Unwinder's life. Where no table covers a pc (JIT code, modules
/// with only .debug_frame), libunwind falls back to the frame-pointer chain and the frame
/// says so (`Frame::from_frame_pointer`). Names come from the SymbolTable (gdb's choice of
/// symbol): frame 0 and frames interrupted by a signal are named by their pc, callers by
/// pc - 1 (the call instruction), as gdb does.
///
/// The memory cache lives until `invalidate()`: call it after the target ran (stack and data
/// pages change; code and tables do not). Not thread safe: one Unwinder per thread.
class Unwinder {
  public:
    /// `symbols` must outlive the Unwinder (it names frames and finds modules). Does not
    /// attach. Errors: those of RemoteMemory::open (no_such_process), os when libunwind
    /// cannot create an address space.
    static Result<Unwinder> create(pid_t pid, const SymbolTable& symbols);
    Unwinder(Unwinder&&) noexcept;
    Unwinder& operator=(Unwinder&&) noexcept;
    ~Unwinder();

    /// A stopped thread of `att` (live registers, memory read through the cache). Errors:
    /// those of Attachment::registers (thread not stopped or gone). An unwind that cannot go
    /// on (unreadable stack, no rule) ends the list; it is not an error.
    Result<std::vector<Frame>> backtrace(Attachment& att, pid_t tid, std::size_t max_frames = 256);
    /// From a snapshot: stack reads inside [stack_start, stack_start + stack.size()) come
    /// from the copy, other reads (code, unwind tables) from the target, which may have run
    /// since (they are read-only).
    Result<std::vector<Frame>> backtrace(const ThreadSnapshot& thread, std::size_t max_frames = 256);
    /// The same from registers alone (memory read from the target through the cache).
    Result<std::vector<Frame>> backtrace(const Registers& regs, std::size_t max_frames = 256);
    /// Forgets cached memory pages and libunwind's per-pc cache; unwind table locations stay.
    void invalidate();

  private:
    struct Impl;
    explicit Unwinder(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace xproc
