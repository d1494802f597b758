// SPDX-License-Identifier: MIT
#pragma once
/// @file registers.hpp
/// A thread's registers: general-purpose (`NT_PRSTATUS`) and floating-point/SSE
/// (`NT_PRFPREG`) through `PTRACE_GETREGSET`/`PTRACE_SETREGSET`, looked up by
/// gdb's names; and the system call a thread is blocked in.
///
/// x86-64 is complete (gdb's `info registers` set: rax..r15, rip, eflags, the
/// segment registers, fs_base, gs_base; the 32/16/8-bit views eax, ax, al, ah...;
/// st0-7, mxcsr, fctrl/fstat..., xmm0-15). aarch64 builds (x0-x30, sp, pc, cpsr,
/// v0-31, fpsr, fpcr) where its headers exist.
///
/// Reading or writing needs the thread to be in a ptrace-stop under the calling
/// thread (see tracer.hpp: `Attachment::registers`).

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "xproc/error.hpp"

namespace xproc {

#if defined(__x86_64__)
using GeneralRegisters = user_regs_struct;
using FloatRegisters = user_fpregs_struct;
#elif defined(__aarch64__)
using GeneralRegisters = user_regs_struct;
using FloatRegisters = user_fpsimd_struct;
#else
#error "xproc registers: only x86-64 and aarch64 are supported"
#endif

/// How a register's bytes are to be read (gdb's register types).
enum class RegisterKind : std::uint8_t {
    integer,       ///< int64/int32/...: printed hex and signed decimal
    code_pointer,  ///< rip / pc: printed with <symbol+off>
    data_pointer,  ///< rsp, rbp / sp: printed hex only
    flags,         ///< eflags / cpsr: printed as [ ZF PF ... ]
    segment,       ///< cs, ss, ...: printed hex and decimal
    x87,           ///< st0-7: 80-bit extended float
    vector,        ///< xmm / v registers: 16 bytes
};

/// One register: where its bytes are in the snapshot.
struct RegisterDesc {
    std::string_view name;  ///< gdb's name: "rax", "eax", "al", "xmm0", "st0"
    RegisterKind kind;
    bool in_fp_set;        ///< bytes come from `FloatRegisters` (else `GeneralRegisters`)
    std::uint16_t offset;  ///< byte offset in that struct
    std::uint8_t size;     ///< bytes: 1, 2, 4, 8, 10 (st), 16 (xmm)
    bool general;          ///< listed by plain `info registers` (gdb's general group)
};

/// Every register this architecture knows, in gdb's `info registers` order (general
/// registers first), then the sub-registers (eax, ax, al...).
std::span<const RegisterDesc> register_table() noexcept;
/// The register named `name` (without '$'), or nullptr. Also accepts gdb's aliases:
/// "pc" (rip), "sp" (rsp), "fp" (rbp), "ps" (eflags) on x86-64.
const RegisterDesc* find_register(std::string_view name) noexcept;

/// The registers of one thread, as read at one moment.
struct Registers {
    pid_t tid = 0;
    GeneralRegisters gp{};
    FloatRegisters fp{};
    bool fp_valid = false;  ///< NT_PRFPREG could be read

    std::uint64_t pc() const noexcept;
    std::uint64_t sp() const noexcept;
    /// rbp / x29
    std::uint64_t frame_pointer() const noexcept;
    void set_pc(std::uint64_t value) noexcept;

    /// The register's bytes (little-endian, `desc.size` of them); empty when it lives in the
    /// FP set and `fp_valid` is false.
    std::span<const std::byte> bytes(const RegisterDesc& desc) const noexcept;
    /// The value of a register of at most 8 bytes, zero-extended; nullopt for wider ones or
    /// when not available.
    std::optional<std::uint64_t> get(const RegisterDesc& desc) const noexcept;
    std::optional<std::uint64_t> get(std::string_view name) const noexcept;
    /// Sets a register of at most 8 bytes (sub-registers keep the other bytes of their
    /// parent: setting "al" changes only the low byte of rax). False if unknown/too wide.
    bool set(const RegisterDesc& desc, std::uint64_t value) noexcept;
    /// Sets all `desc.size` bytes from `value` (xmm, st). False if sizes differ.
    bool set_bytes(const RegisterDesc& desc, std::span<const std::byte> value) noexcept;
};

/// Reads both register sets (or only the general one) of a thread in a ptrace-stop under the
/// calling thread. Errors: os (ESRCH when not stopped under us, with a hint saying so).
Result<Registers> read_registers(pid_t tid, bool with_fp = true);
/// Writes the general set, and the FP set when `regs.fp_valid`.
Result<void> write_registers(const Registers& regs);

/// The system call a thread is blocked in, from /proc/PID/task/TID/syscall.
struct BlockedSyscall {
    enum class State : std::uint8_t {
        in_syscall,   ///< number and args valid
        running,      ///< "running": the thread is running in user space
        not_blocked,  ///< "-1 sp pc": blocked, but not in a system call (e.g. a ptrace-stop)
    };
    State state = State::not_blocked;
    long number = -1;
    std::uint64_t args[6] = {};
    std::uint64_t sp = 0;
    std::uint64_t pc = 0;
};
/// Parses the text of /proc/PID/task/TID/syscall (pure).
Result<BlockedSyscall> parse_syscall_file(std::string_view text);
/// Reads /proc/PID/task/TID/syscall (needs PTRACE_MODE_ATTACH access).
Result<BlockedSyscall> blocked_syscall(pid_t pid, pid_t tid);
/// The name of x86-64 system call `number` ("read", "futex", "epoll_wait"...), or
/// "syscall_N" when unknown.
std::string syscall_name(long number);

}  // namespace xproc
