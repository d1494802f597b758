// SPDX-License-Identifier: MIT
#include "register_view.hpp"

#include <elf.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <charconv>
#include <cstring>

#include "value_print.hpp"

namespace xpeek {
namespace {

/// gdb's column padding: at least one space, then up to column `col`.
void pad_to_column(std::string& s, std::size_t col) {
    s += ' ';
    if (s.size() < col) {
        s.append(col - s.size(), ' ');
    }
}

/// gdb's user registers.
std::string_view canonical_name(std::string_view name) {
#if defined(__x86_64__)
    if (name == "pc") {
        return "rip";
    }
    if (name == "sp") {
        return "rsp";
    }
    if (name == "fp") {
        return "rbp";
    }
    if (name == "ps") {
        return "eflags";
    }
#endif
    return name;
}

RegisterType type_of(const xproc::RegisterDesc& d) {
    switch (d.kind) {
        case xproc::RegisterKind::code_pointer:
            return RegisterType::code_pointer;
        case xproc::RegisterKind::data_pointer:
            return RegisterType::data_pointer;
        case xproc::RegisterKind::flags:
            return RegisterType::eflags;
        case xproc::RegisterKind::x87:
            return RegisterType::i387_ext;
        case xproc::RegisterKind::vector:
            return RegisterType::vec128;
        default:
            return RegisterType::signed_int;
    }
}

// XCR0 bits of the state components gdb shows registers of.
// XSAVE state components (bit numbers in XCR0 and XSTATE_BV, and CPUID 0xd sub-leaves).
constexpr unsigned XFEATURE_AVX_BIT = 2;
constexpr unsigned XFEATURE_OPMASK_BIT = 5;
constexpr unsigned XFEATURE_ZMM_HI256_BIT = 6;
constexpr unsigned XFEATURE_HI16_ZMM_BIT = 7;
constexpr unsigned XFEATURE_PKRU_BIT = 9;
constexpr std::uint64_t XFEATURE_AVX = std::uint64_t{1} << XFEATURE_AVX_BIT;
constexpr std::uint64_t XFEATURE_PKRU = std::uint64_t{1} << XFEATURE_PKRU_BIT;
/// opmask, ZMM_Hi256, Hi16_ZMM: gdb's amd64-avx512 description needs all three.
constexpr std::uint64_t XFEATURE_AVX512 = std::uint64_t{7} << XFEATURE_OPMASK_BIT;

#if defined(__x86_64__)

std::vector<std::byte> bytes_of(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    return {b, b + n};
}

std::vector<std::byte> le_bytes(std::uint64_t v, std::size_t n) {
    std::vector<std::byte> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
    }
    return out;
}

/// "ymm12" → 12 for prefix "ymm" (0..15 only); -1 otherwise. `suffix` must follow the number.
int numbered(std::string_view name, std::string_view prefix, std::string_view suffix = {}, int max = 15) {
    if (!name.starts_with(prefix) || !name.ends_with(suffix) ||
        name.size() <= prefix.size() + suffix.size()) {
        return -1;
    }
    const std::string_view digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    int n = -1;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc{} || p != digits.data() + digits.size() || n < 0 || n > max ||
        (digits.size() > 1 && digits[0] == '0')) {
        return -1;
    }
    return n;
}

// Byte offsets in the FXSAVE area (user_fpregs_struct), 64-bit format.
constexpr std::size_t FX_FCW = 0;
constexpr std::size_t FX_FSW = 2;
constexpr std::size_t FX_FTW = 4;  // abridged: one bit per physical register, 1 = not empty
constexpr std::size_t FX_FOP = 6;
constexpr std::size_t FX_FIP = 8;   // 64 bits: gdb shows the low half as fioff, the high as fiseg
constexpr std::size_t FX_FDP = 16;  // likewise fooff and foseg
constexpr std::size_t FX_MXCSR = 24;
constexpr std::size_t FX_ST0 = 32;

// The XSAVE area as PTRACE_GETREGSET NT_X86_XSTATE returns it (standard format).
constexpr std::size_t XSAVE_XCR0 = 464;  // the kernel stores XCR0 in the software-reserved bytes
constexpr std::size_t XSAVE_XSTATE_BV = 512;

/// i387_tag: the full tag of one 80-bit register: 0 valid, 1 zero, 2 special.
unsigned i387_tag(const std::byte* raw) {
    std::uint64_t mantissa = 0;
    std::memcpy(&mantissa, raw, 8);
    const unsigned exponent =
        (std::to_integer<unsigned>(raw[8]) | (std::to_integer<unsigned>(raw[9]) << 8)) & 0x7fff;
    const bool integer = (mantissa >> 63) != 0;
    if (exponent == 0x7fff) {
        return 2;
    }
    if (exponent == 0) {
        return mantissa == 0 ? 1 : 2;
    }
    return integer ? 0 : 2;
}

constexpr std::string_view GENERAL[] = {"rax", "rbx",    "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                        "r8",  "r9",     "r10", "r11", "r12", "r13", "r14", "r15",
                                        "rip", "eflags", "cs",  "ss",  "ds",  "es",  "fs",  "gs"};
constexpr std::string_view FLOAT[] = {"st0",   "st1",   "st2",  "st3",   "st4",   "st5",   "st6",   "st7",
                                      "fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"};
constexpr std::string_view SYSTEM[] = {"fs_base", "gs_base", "orig_rax"};

#endif

}  // namespace

std::uint64_t RegisterValue::as_u64() const noexcept {
    std::uint64_t v = 0;
    std::memcpy(&v, bytes.data(), std::min<std::size_t>(bytes.size(), 8));
    return v;
}

bool is_register_name(std::string_view name) {
    name = canonical_name(name);
#if defined(__x86_64__)
    if (name == "fiseg" || name == "foseg" || name == "pkru") {
        return true;
    }
#endif
    return needs_extended_state(name) || xproc::find_register(name) != nullptr;
}

bool needs_extended_state([[maybe_unused]] std::string_view name) {
#if defined(__x86_64__)
    return name == "pkru" || numbered(name, "ymm", {}, 31) >= 0 || numbered(name, "ymm", "h") >= 0 ||
           numbered(name, "k", {}, 7) >= 0 || numbered(name, "zmm", {}, 31) >= 0 ||
           numbered(name, "xmm", {}, 31) >= 16;
#else
    return false;
#endif
}

std::optional<ExtendedState> read_extended_state([[maybe_unused]] pid_t tid) {
#if defined(__x86_64__)
    unsigned eax = 0;
    unsigned size = 0;
    unsigned ecx = 0;
    unsigned edx = 0;
    // CPUID 0xd.0: EBX is the XSAVE area size for the features XCR0 enables (what ptrace fills).
    if (__get_cpuid_count(0xd, 0, &eax, &size, &ecx, &edx) == 0 || size < XSAVE_XSTATE_BV + 64) {
        return std::nullopt;
    }
    std::vector<std::byte> area(size);
    iovec iov{area.data(), area.size()};
    if (::ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0) {
        return std::nullopt;
    }
    const std::size_t got = iov.iov_len;
    ExtendedState ext;
    std::uint64_t xstate_bv = 0;
    std::memcpy(&ext.xcr0, area.data() + XSAVE_XCR0, 8);
    std::memcpy(&xstate_bv, area.data() + XSAVE_XSTATE_BV, 8);
    // Copies state component `component` (its XFEATURE bit) from where this CPU's XSAVE
    // layout puts it (CPUID 0xd.component: EBX is the offset) into `out`. A component whose
    // XSTATE_BV bit is clear is in its initial state (zeros), whatever the buffer holds there.
    auto copy_component = [&](unsigned component, void* out, std::size_t n) {
        unsigned offset = 0;
        if ((ext.xcr0 & xstate_bv & (std::uint64_t{1} << component)) != 0 &&
            __get_cpuid_count(0xd, component, &eax, &offset, &ecx, &edx) != 0 && offset + n <= got) {
            std::memcpy(out, area.data() + offset, n);
        }
    };
    copy_component(XFEATURE_AVX_BIT, ext.ymm_high.data(), ext.ymm_high.size());
    // The AVX-512 state: 1088, 1152 and 1664 on Intel; 832, 896 and 1408 on AMD Zen 4.
    copy_component(XFEATURE_OPMASK_BIT, ext.opmask.data(), sizeof ext.opmask);
    copy_component(XFEATURE_ZMM_HI256_BIT, ext.zmm_high.data(), ext.zmm_high.size());
    copy_component(XFEATURE_HI16_ZMM_BIT, ext.zmm16_31.data(), ext.zmm16_31.size());
    // PKRU: 2688 on Intel, 2432 on AMD Zen. gdb 13 always reads 2688 (and its other Intel
    // offsets) and so shows 0 on AMD; gdb 14 reads the CPU's layout, as here.
    copy_component(XFEATURE_PKRU_BIT, &ext.pkru, sizeof ext.pkru);
    return ext;
#else
    return std::nullopt;
#endif
}

RegisterView::RegisterView(const xproc::Registers& regs, std::optional<ExtendedState> extended)
    : m_regs(regs), m_extended(std::move(extended)) {}

bool RegisterView::has_xfeatures([[maybe_unused]] std::uint64_t xfeatures) const noexcept {
#if defined(__x86_64__)
    return m_extended && (m_extended->xcr0 & xfeatures) == xfeatures;
#else
    return false;
#endif
}

bool RegisterView::has_avx() const noexcept {
    return has_xfeatures(XFEATURE_AVX);
}

bool RegisterView::has_avx512() const noexcept {
    return has_xfeatures(XFEATURE_AVX512);
}

bool RegisterView::has_pkru() const noexcept {
    return has_xfeatures(XFEATURE_PKRU);
}

bool RegisterView::exists(std::string_view name) const {
    const std::string_view canonical = canonical_name(name);
#if defined(__x86_64__)
    if (canonical == "fiseg" || canonical == "foseg") {
        return true;
    }
    if (canonical == "pkru") {
        return has_pkru();
    }
    if (numbered(canonical, "ymm") >= 0 || numbered(canonical, "ymm", "h") >= 0) {
        return has_avx();
    }
    if (numbered(canonical, "k", {}, 7) >= 0 || numbered(canonical, "zmm", {}, 31) >= 0 ||
        numbered(canonical, "ymm", {}, 31) >= 16 || numbered(canonical, "xmm", {}, 31) >= 16) {
        return has_avx512();
    }
#endif
    return xproc::find_register(canonical) != nullptr;
}

std::optional<RegisterValue> RegisterView::get(std::string_view name) const {
    if (!exists(name)) {
        return std::nullopt;
    }
    const std::string_view canonical = canonical_name(name);
    RegisterValue v;
    v.name = std::string(name);
#if defined(__x86_64__)
    const auto* fx = reinterpret_cast<const std::byte*>(&m_regs.fp);
    auto fx_u16 = [&](std::size_t off) {
        return std::to_integer<unsigned>(fx[off]) | (std::to_integer<unsigned>(fx[off + 1]) << 8);
    };
    // The x87 control registers are `int` in gdb's description: 4 bytes, whatever their width.
    auto fp_int = [&](std::uint64_t value) {
        v.type = RegisterType::signed_int;
        v.bytes = le_bytes(value, 4);
        return m_regs.fp_valid ? std::optional<RegisterValue>(std::move(v)) : std::nullopt;
    };
    if (canonical == "fctrl") {
        return fp_int(fx_u16(FX_FCW));
    }
    if (canonical == "fstat") {
        return fp_int(fx_u16(FX_FSW));
    }
    if (canonical == "ftag") {
        // i387_supply_fxsave: rebuild the full tag word from the abridged one and the registers.
        const unsigned abridged = std::to_integer<unsigned>(fx[FX_FTW]);
        const unsigned top = (fx_u16(FX_FSW) >> 11) & 7;
        unsigned ftag = 0;
        for (unsigned phys = 0; phys < 8; ++phys) {
            const unsigned st = (phys + 8 - top) % 8;
            const unsigned tag = (abridged & (1u << phys)) != 0 ? i387_tag(fx + FX_ST0 + 16 * st) : 3;
            ftag |= tag << (2 * phys);
        }
        return fp_int(ftag);
    }
    if (canonical == "fop") {
        return fp_int(fx_u16(FX_FOP) & 0x7ff);
    }
    if (canonical == "fioff" || canonical == "fiseg" || canonical == "fooff" || canonical == "foseg") {
        const std::size_t base = canonical.starts_with("fi") ? FX_FIP : FX_FDP;
        const std::size_t half = canonical.ends_with("seg") ? 4 : 0;
        std::uint32_t x = 0;
        std::memcpy(&x, fx + base + half, 4);
        return fp_int(x);
    }
    if (canonical == "mxcsr") {
        std::uint32_t x = 0;
        std::memcpy(&x, fx + FX_MXCSR, 4);
        v.type = RegisterType::mxcsr;
        v.bytes = le_bytes(x, 4);
        return m_regs.fp_valid ? std::optional<RegisterValue>(std::move(v)) : std::nullopt;
    }
    if (canonical == "pkru") {
        v.type = RegisterType::unsigned_int;
        v.bytes = le_bytes(m_extended->pkru, 4);
        return v;
    }
    if (const int n = numbered(canonical, "zmm", {}, 31); n >= 0) {
        // xmm, ymm's upper half, then bits 256-511 (zmm0-15); zmm16-31 are stored whole.
        v.type = RegisterType::vec512;
        if (n >= 16) {
            v.bytes = bytes_of(m_extended->zmm16_31.data() + 64 * (n - 16), 64);
            return v;
        }
        if (!m_regs.fp_valid) {
            return std::nullopt;
        }
        v.bytes = bytes_of(reinterpret_cast<const std::byte*>(&m_regs.fp.xmm_space) + 16 * n, 16);
        const auto ymm = bytes_of(m_extended->ymm_high.data() + 16 * n, 16);
        const auto zmm = bytes_of(m_extended->zmm_high.data() + 32 * n, 32);
        v.bytes.insert(v.bytes.end(), ymm.begin(), ymm.end());
        v.bytes.insert(v.bytes.end(), zmm.begin(), zmm.end());
        return v;
    }
    if (const int n = numbered(canonical, "ymm", {}, 31); n >= 16) {
        v.type = RegisterType::vec256;
        v.bytes = bytes_of(m_extended->zmm16_31.data() + 64 * (n - 16), 32);
        return v;
    }
    if (const int n = numbered(canonical, "xmm", {}, 31); n >= 16) {
        v.type = RegisterType::vec128;
        v.bytes = bytes_of(m_extended->zmm16_31.data() + 64 * (n - 16), 16);
        return v;
    }
    if (const int n = numbered(canonical, "k"); n >= 0 && n < 8) {
        v.type = RegisterType::unsigned_int;  // gdb's uint64
        v.bytes = le_bytes(m_extended->opmask[static_cast<std::size_t>(n)], 8);
        return v;
    }
    if (const int n = numbered(canonical, "ymm", "h"); n >= 0) {
        v.type = RegisterType::unsigned_int;
        v.bytes = bytes_of(m_extended->ymm_high.data() + 16 * n, 16);
        return v;
    }
    if (const int n = numbered(canonical, "ymm"); n >= 0) {
        if (!m_regs.fp_valid) {
            return std::nullopt;
        }
        v.type = RegisterType::vec256;
        v.bytes = bytes_of(reinterpret_cast<const std::byte*>(&m_regs.fp.xmm_space) + 16 * n, 16);
        const auto high = bytes_of(m_extended->ymm_high.data() + 16 * n, 16);
        v.bytes.insert(v.bytes.end(), high.begin(), high.end());
        return v;
    }
#endif
    const xproc::RegisterDesc* d = xproc::find_register(canonical);
    const auto b = m_regs.bytes(*d);
    if (b.empty()) {
        return std::nullopt;
    }
    v.type = type_of(*d);
    v.bytes.assign(b.begin(), b.end());
    return v;
}

std::optional<std::vector<std::string>> RegisterView::group(std::string_view group) const {
    std::vector<std::string> out;
#if defined(__x86_64__)
    auto add = [&](std::span<const std::string_view> names) {
        for (const auto n : names) {
            out.emplace_back(n);
        }
    };
    auto add_numbered = [&](std::string_view prefix, int from = 0, int to = 16) {
        for (int i = from; i < to; ++i) {
            out.push_back(std::string(prefix) + std::to_string(i));
        }
    };
    // gdb lists a group in register-number order: the raw registers (general, x87, xmm,
    // mxcsr, ..., pkru, fs_base, gs_base, orig_rax), then the pseudo-registers (ymm).
    // AVX-512: gdb's general group has the opmask registers after gs.
    auto add_opmask = [&] {
        if (has_avx512()) {
            add_numbered("k", 0, 8);
        }
    };
    // The widest vector registers: gdb shows zmm0-31 (AVX-512) or ymm0-15 (AVX), and not
    // the narrower registers they contain.
    auto add_widest_vectors = [&] {
        if (has_avx512()) {
            add_numbered("zmm", 0, 32);
        } else if (has_avx()) {
            add_numbered("ymm");
        }
    };
    if (group == "general") {
        add(GENERAL);
        add_opmask();
    } else if (group == "float") {
        add(FLOAT);
    } else if (group == "sse") {
        add_numbered("xmm");
        out.emplace_back("mxcsr");
        if (has_avx512()) {
            add_numbered("xmm", 16, 32);
        }
    } else if (group == "vector") {
        if (!has_avx()) {
            add_numbered("xmm");
        }
        out.emplace_back("mxcsr");
        add_widest_vectors();
    } else if (group == "system") {
        add(SYSTEM);
    } else if (group == "all") {
        // With AVX gdb shows ymm0-15 and not the xmm registers they contain.
        add(GENERAL);
        add(FLOAT);
        if (!has_avx()) {
            add_numbered("xmm");
        }
        out.emplace_back("mxcsr");
        add_opmask();
        if (has_pkru()) {
            out.emplace_back("pkru");
        }
        add_widest_vectors();
    } else {
        return std::nullopt;
    }
#else
    const bool all = group == "all";
    if (!all && group != "general") {
        return std::nullopt;
    }
    for (const auto& d : xproc::register_table()) {
        if (d.general || (all && d.in_fp_set)) {
            out.emplace_back(d.name);
        }
    }
#endif
    return out;
}

std::string register_line(const RegisterValue& value, const Labeler& label, const PrintSettings& settings) {
    // gdb's default_print_one_register_info: value columns at 15 and 15 + 2 + 16 + 2.
    constexpr std::size_t VALUE_COLUMN_1 = 15;
    constexpr std::size_t VALUE_COLUMN_2 = VALUE_COLUMN_1 + 2 + 16 + 2;
    std::string s = value.name;
    pad_to_column(s, VALUE_COLUMN_1);
    switch (value.type) {
        case RegisterType::i387_ext:
            s += format_i387_ext(value.bytes);
            pad_to_column(s, VALUE_COLUMN_2);
            s += "(raw " + format_integer_bytes(value.bytes, 'z', false) + ")";
            return s;
        case RegisterType::vec128:
        case RegisterType::vec256:
        case RegisterType::vec512:
            // A vector prints only in hex.
            return s + format_vector(value.bytes,
                                     value.type == RegisterType::vec128   ? VectorUnion::vec128
                                     : value.type == RegisterType::vec256 ? VectorUnion::vec256
                                                                          : VectorUnion::vec512,
                                     'x', settings);
        default:
            break;
    }
    s += format_integer_bytes(value.bytes, 'x', false);
    pad_to_column(s, VALUE_COLUMN_2);
    switch (value.type) {
        case RegisterType::code_pointer:
        case RegisterType::data_pointer:
            s += format_address(value.as_u64(), label);
            break;
        case RegisterType::eflags:
            s += format_eflags(value.as_u64());
            break;
        case RegisterType::mxcsr:
            s += format_mxcsr(value.as_u64());
            break;
        case RegisterType::unsigned_int:
            s += format_integer_bytes(value.bytes, 0, false);
            break;
        default:
            s += format_integer_bytes(value.bytes, 0, true);
            break;
    }
    return s;
}

}  // namespace xpeek
