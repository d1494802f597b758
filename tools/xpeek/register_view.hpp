// SPDX-License-Identifier: MIT
#pragma once
/// @file register_view.hpp
/// The registers as gdb 13 shows them for a Linux process: which registers there are (on
/// x86-64, gdb's amd64-linux target description for this CPU: AVX adds ymm0-15 and hides
/// xmm0-15 from `info all-registers`, AVX-512 adds k0-k7 and zmm0-31 (and xmm/ymm16-31) and
/// shows zmm instead of ymm, PKU adds pkru), the gdb type of each, the register
/// groups `info registers [GROUP]` and `info all-registers` list and their order, the
/// values gdb derives rather than reads (the full x87 tag word from the abridged one, fop's
/// 11 bits, fiseg/fioff and foseg/fooff as halves of the 64-bit FPU pointers), and the
/// `info registers` line of one register (gdb's default_print_one_register_info).
///
/// fs_base, gs_base and orig_rax are in gdb's "system" group only
/// (amd64_linux_register_reggroup_p), so plain `info registers` does not list them; `info
/// registers fs_base` and `info registers system` do.
///
/// Reading the extended state (ymm upper halves, pkru) needs the thread in a ptrace-stop
/// under the calling thread, like every register read.

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format.hpp"
#include "xproc/registers.hpp"

namespace xpeek {

/// How gdb types, and so prints, a register.
enum class RegisterType : std::uint8_t {
    signed_int,    ///< int64_t, int32_t, long, int...: hex, then signed decimal
    unsigned_int,  ///< uint32_t (pkru), uint128_t (ymm0h): hex, then unsigned decimal
    code_pointer,  ///< rip: `void (*)()`, printed with <symbol+offset>
    data_pointer,  ///< rsp, rbp: `void *`, printed with <symbol+offset> when there is one
    eflags,        ///< i386_eflags flags: "[ PF ZF IF ]"
    mxcsr,         ///< i386_mxcsr flags: "[ IM DM ZM OM UM PM ]"
    i387_ext,      ///< st0-7: the value, then "(raw 0x...)"
    vec128,        ///< xmm0-15: gdb's vec128 union
    vec256,        ///< ymm0-15 (16-31 with AVX-512): gdb's vec256 union
    vec512,        ///< zmm0-31: gdb's vec512 union
};

/// One register's value.
struct RegisterValue {
    std::string name;  ///< as asked: "pc" stays "pc" (gdb prints the name it was given)
    RegisterType type = RegisterType::signed_int;
    std::vector<std::byte> bytes;  ///< little-endian, the size of the gdb type
    /// The value zero-extended (registers of 8 bytes or less).
    std::uint64_t as_u64() const noexcept;
};

/// What NT_PRFPREG does not hold: the upper halves of ymm0-15, the AVX-512 state (k0-k7, the
/// upper halves of zmm0-15, zmm16-31) and pkru (x86-64, from PTRACE_GETREGSET NT_X86_XSTATE).
struct ExtendedState {
    std::uint64_t xcr0 = 0;  ///< the features the OS enabled (gdb picks its description from it)
    std::array<std::byte, 256> ymm_high{};   ///< bits 128-255 of ymm0-15, 16 bytes each
    std::array<std::uint64_t, 8> opmask{};   ///< AVX-512 k0-k7
    std::array<std::byte, 512> zmm_high{};   ///< bits 256-511 of zmm0-15, 32 bytes each
    std::array<std::byte, 1024> zmm16_31{};  ///< zmm16-31 whole, 64 bytes each
    std::uint32_t pkru = 0;
};

/// The extended state of thread `tid`, stopped under the calling thread; nullopt when the
/// kernel or the CPU has none (no XSAVE, not x86-64): gdb then shows xmm0-15 and no ymm.
std::optional<ExtendedState> read_extended_state(pid_t tid);

/// True when `name` may be a register (gdb's names and user registers), before knowing the
/// CPU's features: "ymm0" is one only with AVX (RegisterView::exists says).
bool is_register_name(std::string_view name);
/// True when reading `name` needs the extended state (ymm, pkru).
bool needs_extended_state(std::string_view name);

/// A thread's registers as gdb names, types, groups and derives them.
class RegisterView {
  public:
    RegisterView(const xproc::Registers& regs, std::optional<ExtendedState> extended);

    /// The register called `name` (gdb's names and its user registers pc, sp, fp, ps), or
    /// nullopt when gdb has no such register here.
    std::optional<RegisterValue> get(std::string_view name) const;
    /// True when `name` is a register (even one whose set could not be read).
    bool exists(std::string_view name) const;
    /// The registers of gdb's register group `group` (general, all, float, sse, vector,
    /// system), in gdb's order; nullopt when `group` is not a group name.
    std::optional<std::vector<std::string>> group(std::string_view group) const;

  private:
    /// The target's XCR0 (from its XSAVE area) enables all of `xfeatures` (XFEATURE_* bits);
    /// false without an extended state or off x86-64.
    bool has_xfeatures(std::uint64_t xfeatures) const noexcept;
    bool has_avx() const noexcept;
    bool has_avx512() const noexcept;
    bool has_pkru() const noexcept;
    const xproc::Registers& m_regs;
    std::optional<ExtendedState> m_extended;
};

/// The line `info registers` prints for one register (without the newline): the name in a
/// 15-column field, then the hex form, then from column 35 the natural form; floats print
/// their value then "(raw 0x...)", vectors only their hex union.
std::string register_line(const RegisterValue& value, const Labeler& label, const PrintSettings& settings);

}  // namespace xpeek
