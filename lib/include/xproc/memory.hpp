// SPDX-License-Identifier: MIT
#pragma once
/// @file memory.hpp
/// `RemoteMemory`: read, write and scatter-read another process's memory, saying
/// exactly how many bytes were transferred, which kernel interface served them,
/// and where and why a transfer stopped.
///
/// Paths, in the order they are tried (rr's fallbacks):
///  1. `process_vm_readv` / `process_vm_writev` (one copy, no attach, fastest). Calls are
///     split at `MemoryOptions::max_per_call` bytes (the kernel's MAX_RW_COUNT, 0x7ffff000)
///     and at `MemoryOptions::max_iovecs` iovecs (IOV_MAX).
///  2. `pread` / `pwrite` on /proc/PID/mem, when (1) is refused (EPERM, e.g. kernels without
///     cross-memory attach) or unavailable (ENOSYS), or when the range lies in a mapping whose
///     protection refuses the access (PROT_NONE, a read-only mapping for a write): the kernel
///     opens /proc/PID/mem accesses with FOLL_FORCE, so they reach such pages, like a debugger.
///     Writes to read-only text go this way on purpose: it is how gdb inserts breakpoints.
///  3. `PTRACE_PEEKDATA` / `PTRACE_POKEDATA`, only for a target that is already in a
///     ptrace-stop under the calling thread (TracerPid == gettid(), state `t`); reading never
///     attaches.
///
/// Reading needs PTRACE_MODE_ATTACH access (see access.hpp), not an attachment: it works while
/// another debugger is attached to the target.

#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "xproc/error.hpp"
#include "xproc/fd.hpp"
#include "xproc/process.hpp"

namespace xproc {

/// The kernel interface that served a transfer.
enum class MemoryPath : std::uint8_t {
    none,        ///< nothing was attempted / nothing served
    vm_syscall,  ///< process_vm_readv / process_vm_writev
    proc_mem,    ///< pread / pwrite on /proc/PID/mem
    ptrace,      ///< PTRACE_PEEKDATA / PTRACE_POKEDATA
};

/// "process_vm_readv", "/proc/PID/mem", "ptrace", "none".
std::string_view to_string(MemoryPath path) noexcept;

/// First address of the kernel half on x86-64 and aarch64 (48-bit user space): no user
/// mapping lies at or above it, so a range reaching it stops there with "kernel address".
inline constexpr std::uint64_t KERNEL_ADDRESS_START = 0x0000800000000000ull;
/// Most bytes one process_vm_readv/writev or pread/pwrite moves (the kernel's MAX_RW_COUNT).
inline constexpr std::size_t MAX_BYTES_PER_CALL = 0x7ffff000;

/// Result of one read or write. A partial (even zero-byte) transfer is not an error: it says
/// how far it got and why it stopped.
struct Transfer {
    std::size_t bytes = 0;               ///< bytes transferred, from the start of the range, contiguous
    std::size_t requested = 0;           ///< bytes asked for
    MemoryPath path = MemoryPath::none;  ///< the path that served them (the last one used / tried)
    std::uint64_t stop_address = 0;      ///< when incomplete: first address not transferred
    int stop_errno = 0;                  ///< when incomplete: why (EFAULT, EIO, EPERM...)
    /// When incomplete, in words: "unmapped (no mapping at 0x10)", "PROT_NONE mapping
    /// 7f..-7f.. ---p", "read-only mapping ...", "kernel address".
    std::string stop_reason;

    bool complete() const noexcept { return bytes == requested; }
};

/// How a `RemoteMemory` may reach the target.
struct MemoryOptions {
    bool allow_proc_mem = true;  ///< fall back to /proc/PID/mem
    bool allow_ptrace = true;    ///< PEEK/POKEDATA, only when the target is stopped under OUR ptrace
    /// Benchmarks/tests: use only `path` (no fallback). Forcing `ptrace` on a target that is not
    /// stopped under the calling thread is an invalid_argument error.
    bool force_path = false;
    MemoryPath path = MemoryPath::none;
    /// Bytes per system call (tests lower it to exercise the splitting of > 2 GiB transfers).
    std::size_t max_per_call = MAX_BYTES_PER_CALL;
    /// iovecs per process_vm_readv call in `readv` (IOV_MAX).
    std::size_t max_iovecs = 1024;
    /// Called after each system call that moved bytes, with the bytes it moved (progress,
    /// tests). Runs on the calling thread.
    std::function<void(std::size_t)> on_call;

    /// Options that use `p` alone (force_path).
    static MemoryOptions only(MemoryPath p) {
        MemoryOptions o;
        o.force_path = true;
        o.path = p;
        return o;
    }
};

/// Another process's memory.
///
/// The process is pinned by a pidfd (`Process`): after each call the pidfd is checked, so
/// data never comes from a process that reused the pid. Move-only; not thread safe (use one
/// per thread: it caches an fd of /proc/PID/mem and what it learned about the paths).
class RemoteMemory {
  public:
    /// Pins `pid` (Process::open). Does not check access: the first transfer does.
    static Result<RemoteMemory> open(pid_t pid, MemoryOptions options = {});
    static Result<RemoteMemory> open(Process&& process, MemoryOptions options = {});

    pid_t pid() const noexcept { return m_process.pid(); }
    const Process& process() const noexcept { return m_process; }
    const MemoryOptions& options() const noexcept { return m_options; }

    /// Reads `out.size()` bytes at `address`.
    ///
    /// Errors only when nothing could be attempted: the process does not exist or exited
    /// (no_such_process, also when it exits during the read: what was read before is not
    /// reported), a kernel thread (kernel_thread), access refused (permission: the
    /// `Error` comes from `explain_access(pid, AccessMode::attach).to_error(...)` and names the
    /// rule and the fix), or a forced path that cannot be used. A range that runs into a hole,
    /// a PROT_NONE mapping that no allowed path reaches, or a kernel address gives a Transfer
    /// with `bytes < requested` and stop_* set.
    ///
    /// A read of 32 MiB or more through process_vm_readv, of a range that readable mappings
    /// cover end to end (/proc/PID/maps), is split into parts of at least 16 MiB read by up to
    /// 4 threads at once (as many as there are CPUs): the kernel copies page by page, and one
    /// thread gets about half of memcpy's bandwidth. If a part comes up short (the map
    /// changed meanwhile) the rest is read on the calling thread as for any read, and the
    /// bytes of `out` past `bytes` are then unspecified. Not used with `on_call` (which runs
    /// on the calling thread).
    Result<Transfer> read(std::uint64_t address, std::span<std::byte> out);
    /// Writes `in` at `address`; same conventions. Read-only and PROT_NONE mappings are written
    /// through /proc/PID/mem (FOLL_FORCE; a private file mapping gets a private copy of the
    /// page, as when gdb inserts a breakpoint) unless `allow_proc_mem` is false.
    Result<Transfer> write(std::uint64_t address, std::span<const std::byte> in);

    struct Range {
        std::uint64_t address;
        std::span<std::byte> out;
    };
    /// Scatter read: one Transfer per range, in order. Ranges are batched into as few
    /// process_vm_readv calls as the limits allow (max_iovecs, max_per_call); a range that
    /// faults is finished on its own with the fallbacks of `read`. Errors as for `read`.
    Result<std::vector<Transfer>> readv(std::span<const Range> ranges);

    /// Reads one trivially copyable value; an incomplete read is an error (kind os, errno
    /// EFAULT/EIO from the stop, has_address = the stop address, detail = the stop reason).
    template <class T>
    Result<T> read_value(std::uint64_t address) {
        static_assert(std::is_trivially_copyable_v<T>);
        T value{};
        auto t = read(address, std::as_writable_bytes(std::span<T, 1>(&value, 1)));
        if (!t) {
            return fail(std::move(t.error()));
        }
        if (!t->complete()) {
            return fail(incomplete_error("read", address, sizeof(T), *t));
        }
        return value;
    }
    /// Writes one trivially copyable value; an incomplete write is an error as for read_value.
    template <class T>
    Result<void> write_value(std::uint64_t address, const T& value) {
        static_assert(std::is_trivially_copyable_v<T>);
        auto t = write(address, std::as_bytes(std::span<const T, 1>(&value, 1)));
        if (!t) {
            return fail(std::move(t.error()));
        }
        if (!t->complete()) {
            return fail(incomplete_error("write", address, sizeof(T), *t));
        }
        return {};
    }

    /// The Error describing an incomplete transfer (for callers that need all-or-nothing).
    Error incomplete_error(std::string_view what, std::uint64_t address, std::size_t size,
                           const Transfer& t) const;

    RemoteMemory(RemoteMemory&&) noexcept = default;
    RemoteMemory& operator=(RemoteMemory&&) noexcept = default;
    RemoteMemory(const RemoteMemory&) = delete;
    RemoteMemory& operator=(const RemoteMemory&) = delete;
    ~RemoteMemory() = default;

  private:
    enum class Direction : std::uint8_t { read, write };
    struct Engine;
    friend struct Engine;

    RemoteMemory(Process&& process, MemoryOptions options) noexcept
        : m_process(std::move(process)), m_options(std::move(options)) {}
    /// The bytes of a large read done by several threads (see read()): the prefix read
    /// without a failure; 0 when the read is not split.
    std::size_t parallel_read_prefix(std::uint64_t address, std::span<std::byte> out);

    Process m_process;
    MemoryOptions m_options;
    UniqueFd m_mem_fd;               // /proc/PID/mem, opened on first use
    bool m_mem_writable = false;     // m_mem_fd was opened O_RDWR
    int m_mem_open_errno = 0;        // why /proc/PID/mem could not be opened (sticky)
    int m_vm_unavailable_errno = 0;  // EPERM/ENOSYS from process_vm_*: skip that path (sticky)
};

}  // namespace xproc
