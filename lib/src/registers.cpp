// SPDX-License-Identifier: MIT
#include "xproc/registers.hpp"

#include <elf.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "xproc/fd.hpp"

namespace xproc {

namespace {

#if defined(__x86_64__)

#define GP(field) static_cast<std::uint16_t>(offsetof(user_regs_struct, field))
#define FP(field) static_cast<std::uint16_t>(offsetof(user_fpregs_struct, field))
#define ST(i) static_cast<std::uint16_t>(offsetof(user_fpregs_struct, st_space) + 16 * (i))
#define XMM(i) static_cast<std::uint16_t>(offsetof(user_fpregs_struct, xmm_space) + 16 * (i))

using K = RegisterKind;

// gdb's amd64 `info registers` order, then `info all-registers` (x87, SSE), then the
// pseudo-registers (dword, word and byte views of the general registers).
constexpr RegisterDesc TABLE[] = {
    {"rax", K::integer, false, GP(rax), 8, true},
    {"rbx", K::integer, false, GP(rbx), 8, true},
    {"rcx", K::integer, false, GP(rcx), 8, true},
    {"rdx", K::integer, false, GP(rdx), 8, true},
    {"rsi", K::integer, false, GP(rsi), 8, true},
    {"rdi", K::integer, false, GP(rdi), 8, true},
    {"rbp", K::data_pointer, false, GP(rbp), 8, true},
    {"rsp", K::data_pointer, false, GP(rsp), 8, true},
    {"r8", K::integer, false, GP(r8), 8, true},
    {"r9", K::integer, false, GP(r9), 8, true},
    {"r10", K::integer, false, GP(r10), 8, true},
    {"r11", K::integer, false, GP(r11), 8, true},
    {"r12", K::integer, false, GP(r12), 8, true},
    {"r13", K::integer, false, GP(r13), 8, true},
    {"r14", K::integer, false, GP(r14), 8, true},
    {"r15", K::integer, false, GP(r15), 8, true},
    {"rip", K::code_pointer, false, GP(rip), 8, true},
    {"eflags", K::flags, false, GP(eflags), 4, true},
    {"cs", K::segment, false, GP(cs), 4, true},
    {"ss", K::segment, false, GP(ss), 4, true},
    {"ds", K::segment, false, GP(ds), 4, true},
    {"es", K::segment, false, GP(es), 4, true},
    {"fs", K::segment, false, GP(fs), 4, true},
    {"gs", K::segment, false, GP(gs), 4, true},
    {"fs_base", K::integer, false, GP(fs_base), 8, true},
    {"gs_base", K::integer, false, GP(gs_base), 8, true},
    {"st0", K::x87, true, ST(0), 10, false},
    {"st1", K::x87, true, ST(1), 10, false},
    {"st2", K::x87, true, ST(2), 10, false},
    {"st3", K::x87, true, ST(3), 10, false},
    {"st4", K::x87, true, ST(4), 10, false},
    {"st5", K::x87, true, ST(5), 10, false},
    {"st6", K::x87, true, ST(6), 10, false},
    {"st7", K::x87, true, ST(7), 10, false},
    {"fctrl", K::integer, true, FP(cwd), 2, false},
    {"fstat", K::integer, true, FP(swd), 2, false},
    {"ftag", K::integer, true, FP(ftw), 2, false},
    {"fop", K::integer, true, FP(fop), 2, false},
    {"fioff", K::integer, true, FP(rip), 8, false},
    {"fooff", K::integer, true, FP(rdp), 8, false},
    {"mxcsr", K::integer, true, FP(mxcsr), 4, false},
    {"xmm0", K::vector, true, XMM(0), 16, false},
    {"xmm1", K::vector, true, XMM(1), 16, false},
    {"xmm2", K::vector, true, XMM(2), 16, false},
    {"xmm3", K::vector, true, XMM(3), 16, false},
    {"xmm4", K::vector, true, XMM(4), 16, false},
    {"xmm5", K::vector, true, XMM(5), 16, false},
    {"xmm6", K::vector, true, XMM(6), 16, false},
    {"xmm7", K::vector, true, XMM(7), 16, false},
    {"xmm8", K::vector, true, XMM(8), 16, false},
    {"xmm9", K::vector, true, XMM(9), 16, false},
    {"xmm10", K::vector, true, XMM(10), 16, false},
    {"xmm11", K::vector, true, XMM(11), 16, false},
    {"xmm12", K::vector, true, XMM(12), 16, false},
    {"xmm13", K::vector, true, XMM(13), 16, false},
    {"xmm14", K::vector, true, XMM(14), 16, false},
    {"xmm15", K::vector, true, XMM(15), 16, false},
    {"orig_rax", K::integer, false, GP(orig_rax), 8, false},
    {"eax", K::integer, false, GP(rax), 4, false},
    {"ebx", K::integer, false, GP(rbx), 4, false},
    {"ecx", K::integer, false, GP(rcx), 4, false},
    {"edx", K::integer, false, GP(rdx), 4, false},
    {"esi", K::integer, false, GP(rsi), 4, false},
    {"edi", K::integer, false, GP(rdi), 4, false},
    {"ebp", K::integer, false, GP(rbp), 4, false},
    {"esp", K::integer, false, GP(rsp), 4, false},
    {"r8d", K::integer, false, GP(r8), 4, false},
    {"r9d", K::integer, false, GP(r9), 4, false},
    {"r10d", K::integer, false, GP(r10), 4, false},
    {"r11d", K::integer, false, GP(r11), 4, false},
    {"r12d", K::integer, false, GP(r12), 4, false},
    {"r13d", K::integer, false, GP(r13), 4, false},
    {"r14d", K::integer, false, GP(r14), 4, false},
    {"r15d", K::integer, false, GP(r15), 4, false},
    {"ax", K::integer, false, GP(rax), 2, false},
    {"bx", K::integer, false, GP(rbx), 2, false},
    {"cx", K::integer, false, GP(rcx), 2, false},
    {"dx", K::integer, false, GP(rdx), 2, false},
    {"si", K::integer, false, GP(rsi), 2, false},
    {"di", K::integer, false, GP(rdi), 2, false},
    {"bp", K::integer, false, GP(rbp), 2, false},
    {"r8w", K::integer, false, GP(r8), 2, false},
    {"r9w", K::integer, false, GP(r9), 2, false},
    {"r10w", K::integer, false, GP(r10), 2, false},
    {"r11w", K::integer, false, GP(r11), 2, false},
    {"r12w", K::integer, false, GP(r12), 2, false},
    {"r13w", K::integer, false, GP(r13), 2, false},
    {"r14w", K::integer, false, GP(r14), 2, false},
    {"r15w", K::integer, false, GP(r15), 2, false},
    {"al", K::integer, false, GP(rax), 1, false},
    {"bl", K::integer, false, GP(rbx), 1, false},
    {"cl", K::integer, false, GP(rcx), 1, false},
    {"dl", K::integer, false, GP(rdx), 1, false},
    {"sil", K::integer, false, GP(rsi), 1, false},
    {"dil", K::integer, false, GP(rdi), 1, false},
    {"bpl", K::integer, false, GP(rbp), 1, false},
    {"spl", K::integer, false, GP(rsp), 1, false},
    {"r8l", K::integer, false, GP(r8), 1, false},
    {"r9l", K::integer, false, GP(r9), 1, false},
    {"r10l", K::integer, false, GP(r10), 1, false},
    {"r11l", K::integer, false, GP(r11), 1, false},
    {"r12l", K::integer, false, GP(r12), 1, false},
    {"r13l", K::integer, false, GP(r13), 1, false},
    {"r14l", K::integer, false, GP(r14), 1, false},
    {"r15l", K::integer, false, GP(r15), 1, false},
    {"ah", K::integer, false, static_cast<std::uint16_t>(GP(rax) + 1), 1, false},
    {"bh", K::integer, false, static_cast<std::uint16_t>(GP(rbx) + 1), 1, false},
    {"ch", K::integer, false, static_cast<std::uint16_t>(GP(rcx) + 1), 1, false},
    {"dh", K::integer, false, static_cast<std::uint16_t>(GP(rdx) + 1), 1, false},
};

struct Alias {
    std::string_view alias;
    std::string_view name;
};
// gdb's user registers: $pc, $sp, $fp, $ps.
constexpr Alias ALIASES[] = {{"pc", "rip"}, {"sp", "rsp"}, {"fp", "rbp"}, {"ps", "eflags"}};

#undef GP
#undef FP
#undef ST
#undef XMM

#elif defined(__aarch64__)

#define GP(field) static_cast<std::uint16_t>(offsetof(user_regs_struct, field))
using K = RegisterKind;
constexpr std::uint16_t X(int i) {
    return static_cast<std::uint16_t>(offsetof(user_regs_struct, regs) + 8 * i);
}
constexpr std::uint16_t V(int i) {
    return static_cast<std::uint16_t>(offsetof(user_fpsimd_struct, vregs) + 16 * i);
}
constexpr RegisterDesc TABLE[] = {
    {"x0", K::integer, false, X(0), 8, true},
    {"x1", K::integer, false, X(1), 8, true},
    {"x2", K::integer, false, X(2), 8, true},
    {"x3", K::integer, false, X(3), 8, true},
    {"x4", K::integer, false, X(4), 8, true},
    {"x5", K::integer, false, X(5), 8, true},
    {"x6", K::integer, false, X(6), 8, true},
    {"x7", K::integer, false, X(7), 8, true},
    {"x8", K::integer, false, X(8), 8, true},
    {"x9", K::integer, false, X(9), 8, true},
    {"x10", K::integer, false, X(10), 8, true},
    {"x11", K::integer, false, X(11), 8, true},
    {"x12", K::integer, false, X(12), 8, true},
    {"x13", K::integer, false, X(13), 8, true},
    {"x14", K::integer, false, X(14), 8, true},
    {"x15", K::integer, false, X(15), 8, true},
    {"x16", K::integer, false, X(16), 8, true},
    {"x17", K::integer, false, X(17), 8, true},
    {"x18", K::integer, false, X(18), 8, true},
    {"x19", K::integer, false, X(19), 8, true},
    {"x20", K::integer, false, X(20), 8, true},
    {"x21", K::integer, false, X(21), 8, true},
    {"x22", K::integer, false, X(22), 8, true},
    {"x23", K::integer, false, X(23), 8, true},
    {"x24", K::integer, false, X(24), 8, true},
    {"x25", K::integer, false, X(25), 8, true},
    {"x26", K::integer, false, X(26), 8, true},
    {"x27", K::integer, false, X(27), 8, true},
    {"x28", K::integer, false, X(28), 8, true},
    {"x29", K::integer, false, X(29), 8, true},
    {"x30", K::integer, false, X(30), 8, true},
    {"sp", K::data_pointer, false, GP(sp), 8, true},
    {"pc", K::code_pointer, false, GP(pc), 8, true},
    {"cpsr", K::flags, false, GP(pstate), 4, true},
    {"fpsr", K::integer, true, static_cast<std::uint16_t>(offsetof(user_fpsimd_struct, fpsr)), 4, false},
    {"fpcr", K::integer, true, static_cast<std::uint16_t>(offsetof(user_fpsimd_struct, fpcr)), 4, false},
    {"v0", K::vector, true, V(0), 16, false},
    {"v1", K::vector, true, V(1), 16, false},
    {"v2", K::vector, true, V(2), 16, false},
    {"v3", K::vector, true, V(3), 16, false},
    {"v4", K::vector, true, V(4), 16, false},
    {"v5", K::vector, true, V(5), 16, false},
    {"v6", K::vector, true, V(6), 16, false},
    {"v7", K::vector, true, V(7), 16, false},
    {"v8", K::vector, true, V(8), 16, false},
    {"v9", K::vector, true, V(9), 16, false},
    {"v10", K::vector, true, V(10), 16, false},
    {"v11", K::vector, true, V(11), 16, false},
    {"v12", K::vector, true, V(12), 16, false},
    {"v13", K::vector, true, V(13), 16, false},
    {"v14", K::vector, true, V(14), 16, false},
    {"v15", K::vector, true, V(15), 16, false},
    {"v16", K::vector, true, V(16), 16, false},
    {"v17", K::vector, true, V(17), 16, false},
    {"v18", K::vector, true, V(18), 16, false},
    {"v19", K::vector, true, V(19), 16, false},
    {"v20", K::vector, true, V(20), 16, false},
    {"v21", K::vector, true, V(21), 16, false},
    {"v22", K::vector, true, V(22), 16, false},
    {"v23", K::vector, true, V(23), 16, false},
    {"v24", K::vector, true, V(24), 16, false},
    {"v25", K::vector, true, V(25), 16, false},
    {"v26", K::vector, true, V(26), 16, false},
    {"v27", K::vector, true, V(27), 16, false},
    {"v28", K::vector, true, V(28), 16, false},
    {"v29", K::vector, true, V(29), 16, false},
    {"v30", K::vector, true, V(30), 16, false},
    {"v31", K::vector, true, V(31), 16, false},
};
struct Alias {
    std::string_view alias;
    std::string_view name;
};
constexpr Alias ALIASES[] = {{"fp", "x29"}, {"lr", "x30"}};
#undef GP

#endif

const std::byte* base_of(const Registers& r, const RegisterDesc& d) noexcept {
    return d.in_fp_set ? reinterpret_cast<const std::byte*>(&r.fp)
                       : reinterpret_cast<const std::byte*>(&r.gp);
}
std::byte* base_of(Registers& r, const RegisterDesc& d) noexcept {
    return d.in_fp_set ? reinterpret_cast<std::byte*>(&r.fp) : reinterpret_cast<std::byte*>(&r.gp);
}

Error not_stopped_hint(Error e) {
    if (e.errno_value == ESRCH) {
        e.kind = ErrorKind::os;
        e.hint = "the thread must be in a ptrace-stop under this thread (Attachment::stop_all)";
    }
    return e;
}

}  // namespace

std::span<const RegisterDesc> register_table() noexcept {
    return TABLE;
}

const RegisterDesc* find_register(std::string_view name) noexcept {
    for (const Alias& a : ALIASES) {
        if (a.alias == name) {
            name = a.name;
            break;
        }
    }
    for (const RegisterDesc& d : TABLE) {
        if (d.name == name) {
            return &d;
        }
    }
    return nullptr;
}

std::uint64_t Registers::pc() const noexcept {
#if defined(__x86_64__)
    return gp.rip;
#else
    return gp.pc;
#endif
}

std::uint64_t Registers::sp() const noexcept {
#if defined(__x86_64__)
    return gp.rsp;
#else
    return gp.sp;
#endif
}

std::uint64_t Registers::frame_pointer() const noexcept {
#if defined(__x86_64__)
    return gp.rbp;
#else
    return gp.regs[29];
#endif
}

void Registers::set_pc(std::uint64_t value) noexcept {
#if defined(__x86_64__)
    gp.rip = value;
#else
    gp.pc = value;
#endif
}

std::span<const std::byte> Registers::bytes(const RegisterDesc& desc) const noexcept {
    if (desc.in_fp_set && !fp_valid) {
        return {};
    }
    return {base_of(*this, desc) + desc.offset, desc.size};
}

std::optional<std::uint64_t> Registers::get(const RegisterDesc& desc) const noexcept {
    if (desc.size > 8) {
        return std::nullopt;
    }
    auto b = bytes(desc);
    if (b.empty()) {
        return std::nullopt;
    }
    std::uint64_t v = 0;
    std::memcpy(&v, b.data(), b.size());  // little-endian: low bytes first
    return v;
}

std::optional<std::uint64_t> Registers::get(std::string_view name) const noexcept {
    const RegisterDesc* d = find_register(name);
    return d ? get(*d) : std::nullopt;
}

bool Registers::set(const RegisterDesc& desc, std::uint64_t value) noexcept {
    if (desc.size > 8 || (desc.in_fp_set && !fp_valid)) {
        return false;
    }
    std::memcpy(base_of(*this, desc) + desc.offset, &value, desc.size);
    return true;
}

bool Registers::set_bytes(const RegisterDesc& desc, std::span<const std::byte> value) noexcept {
    if (value.size() != desc.size || (desc.in_fp_set && !fp_valid)) {
        return false;
    }
    std::memcpy(base_of(*this, desc) + desc.offset, value.data(), value.size());
    return true;
}

Result<Registers> read_registers(pid_t tid, bool with_fp) {
    Registers r;
    r.tid = tid;
    iovec iov{&r.gp, sizeof(r.gp)};
    if (::ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_PRSTATUS), &iov) != 0) {
        const int err = errno;
        return fail(not_stopped_hint(Error::from_errno(err, "ptrace(PTRACE_GETREGSET, NT_PRSTATUS)", tid)));
    }
    if (with_fp) {
        iovec fiov{&r.fp, sizeof(r.fp)};
        r.fp_valid = ::ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_PRFPREG), &fiov) == 0;
    }
    return r;
}

Result<void> write_registers(const Registers& regs) {
    auto gp = regs.gp;
    iovec iov{&gp, sizeof(gp)};
    if (::ptrace(PTRACE_SETREGSET, regs.tid, reinterpret_cast<void*>(NT_PRSTATUS), &iov) != 0) {
        const int err = errno;
        return fail(
            not_stopped_hint(Error::from_errno(err, "ptrace(PTRACE_SETREGSET, NT_PRSTATUS)", regs.tid)));
    }
    if (regs.fp_valid) {
        auto fp = regs.fp;
        iovec fiov{&fp, sizeof(fp)};
        if (::ptrace(PTRACE_SETREGSET, regs.tid, reinterpret_cast<void*>(NT_PRFPREG), &fiov) != 0) {
            const int err = errno;
            return fail(
                not_stopped_hint(Error::from_errno(err, "ptrace(PTRACE_SETREGSET, NT_PRFPREG)", regs.tid)));
        }
    }
    return {};
}

namespace {

bool parse_number(std::string_view token, std::uint64_t& out) {
    int base = 10;
    if (token.starts_with("0x")) {
        token.remove_prefix(2);
        base = 16;
    }
    if (token.empty()) {
        return false;
    }
    auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), out, base);
    return ec == std::errc{} && p == token.data() + token.size();
}

}  // namespace

Result<BlockedSyscall> parse_syscall_file(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.remove_suffix(1);
    }
    BlockedSyscall s;
    if (text == "running") {
        s.state = BlockedSyscall::State::running;
        return s;
    }
    std::vector<std::string_view> tokens;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find(' ', pos);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        if (end > pos) {
            tokens.push_back(text.substr(pos, end - pos));
        }
        pos = end + 1;
    }
    auto bad = [&] { return fail(Error::make(ErrorKind::parse, "parse syscall file", std::string(text))); };
    if (tokens.size() == 3 && tokens[0] == "-1") {
        s.state = BlockedSyscall::State::not_blocked;
        if (!parse_number(tokens[1], s.sp) || !parse_number(tokens[2], s.pc)) {
            return bad();
        }
        return s;
    }
    if (tokens.size() != 9) {
        return bad();
    }
    std::uint64_t nr = 0;
    if (!parse_number(tokens[0], nr)) {
        return bad();
    }
    s.state = BlockedSyscall::State::in_syscall;
    s.number = static_cast<long>(nr);
    for (int i = 0; i < 6; ++i) {
        if (!parse_number(tokens[1 + i], s.args[i])) {
            return bad();
        }
    }
    if (!parse_number(tokens[7], s.sp) || !parse_number(tokens[8], s.pc)) {
        return bad();
    }
    return s;
}

Result<BlockedSyscall> blocked_syscall(pid_t pid, pid_t tid) {
    std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall";
    auto text = read_file(path.c_str(), pid);
    if (!text) {
        return fail(std::move(text.error()));
    }
    return parse_syscall_file(*text);
}

std::string syscall_name(long number) {
#if defined(__x86_64__)
    static constexpr std::string_view NAMES[] = {
#include "syscall_names_x86_64.inc"
    };
    if (number >= 0 && static_cast<std::size_t>(number) < std::size(NAMES) && !NAMES[number].empty()) {
        return std::string(NAMES[number]);
    }
#endif
    return "syscall_" + std::to_string(number);
}

}  // namespace xproc
