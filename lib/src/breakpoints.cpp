// SPDX-License-Identifier: MIT
// Breakpoints and watchpoints of one Attachment: x86 debug registers first, int3 after.
//
// Step-over (a thread resumed from a breakpoint it has reported):
//  - int3: the original byte is put back, the thread single-steps (Attachment::step_raw) and
//    the int3 is written again. While the byte is missing no other thread of the process
//    runs: threads that were running are stopped first (stop_all) and resumed after, so none
//    can run through the breakpoint unnoticed (gdb's in-line step-over, all-stop).
//  - debug register: RF (eflags bit 16) is set in the thread, which makes the CPU skip
//    instruction breakpoints for one instruction. Nothing is removed, so the other threads
//    need not stop. Checked on Linux 6.x: after an execute-breakpoint trap the kernel sets RF
//    itself; an RF written with SETREGS survives the return to user space (IRET), and a
//    thread whose RF is cleared traps again at the same pc.
#include "xproc/breakpoints.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "xproc/maps.hpp"

#ifndef TRAP_TRACE
#define TRAP_TRACE 2
#endif
#ifndef TRAP_BRKPT
#define TRAP_BRKPT 1
#endif
#ifndef TRAP_HWBKPT
#define TRAP_HWBKPT 4
#endif

namespace xproc {

namespace {

#if defined(__x86_64__)
constexpr std::size_t TRAP_SIZE = 1;
constexpr std::array<std::byte, 4> TRAP_BYTES{std::byte{0xCC}};
/// A trap leaves pc after the int3.
constexpr std::uint64_t TRAP_PC_ADVANCE = 1;
/// si_code of the SIGTRAP raised by int3 (do_int3_user → force_sig).
constexpr int TRAP_SI_CODE = SI_KERNEL;
constexpr bool HAVE_DEBUG_REGISTERS = true;

constexpr std::uint64_t DR6_TRAP_BITS = 0xF;         // B0-B3: which slot triggered
constexpr std::uint64_t DR6_SINGLE_STEP = 1u << 14;  // BS
constexpr std::uint64_t EFLAGS_RF = 1u << 16;        // resume flag

constexpr std::size_t debug_register_offset(int i) {
    return offsetof(struct user, u_debugreg) + static_cast<std::size_t>(i) * sizeof(unsigned long);
}
#elif defined(__aarch64__)
constexpr std::size_t TRAP_SIZE = 4;
// BRK #0, little-endian.
constexpr std::array<std::byte, 4> TRAP_BYTES{std::byte{0x00}, std::byte{0x00}, std::byte{0x20},
                                              std::byte{0xd4}};
/// BRK leaves pc on the instruction.
constexpr std::uint64_t TRAP_PC_ADVANCE = 0;
constexpr int TRAP_SI_CODE = TRAP_BRKPT;
constexpr bool HAVE_DEBUG_REGISTERS = false;
#else
#error "xproc breakpoints: only x86-64 and aarch64 are supported"
#endif

constexpr std::size_t SLOT_COUNT = 4;

#if defined(__x86_64__)
/// What the probe's child runs into: a real function (not inlined, not folded away).
[[gnu::noinline]] void probe_target() noexcept {
    asm volatile("" ::: "memory");
}

/// Sets DR0 on probe_target in a traced child and lets it call it: a working debug register
/// stops it with SIGTRAP; a dead one lets it exit. nullopt when the probe cannot run.
std::optional<bool> probe_debug_registers() noexcept {
    const pid_t child = ::fork();
    if (child < 0) {
        return std::nullopt;
    }
    if (child == 0) {
        // Only async-signal-safe calls: the parent may have other threads.
        if (::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0) {
            ::raise(SIGSTOP);
            probe_target();
        }
        ::_exit(0);
    }
    std::optional<bool> works;
    int status = 0;
    if (::waitpid(child, &status, __WALL) == child && WIFSTOPPED(status)) {
        const auto address = reinterpret_cast<std::uintptr_t>(&probe_target);
        if (::ptrace(PTRACE_POKEUSER, child, debug_register_offset(0), address) == 0 &&
            ::ptrace(PTRACE_POKEUSER, child, debug_register_offset(7), std::uintptr_t{1}) == 0 &&
            ::ptrace(PTRACE_CONT, child, nullptr, nullptr) == 0 &&
            ::waitpid(child, &status, __WALL) == child) {
            works = WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP;
        }
    }
    ::kill(child, SIGKILL);
    while (::waitpid(child, &status, __WALL) == child && !WIFEXITED(status) && !WIFSIGNALED(status)) {
    }
    return works;
}
#endif

/// XPROC_HW_BREAKPOINTS=0: the user turned the debug registers off.
bool turned_off_by_environment() noexcept {
    const char* env = std::getenv("XPROC_HW_BREAKPOINTS");
    return env != nullptr && std::strcmp(env, "0") == 0;
}

/// `what` cannot use a debug register on this machine: not_supported, saying why.
Error no_debug_registers(const std::string& what, const char* kind, pid_t pid) {
    if (!HAVE_DEBUG_REGISTERS) {
        return Error::make(ErrorKind::not_supported, what,
                           std::string(kind) + " are not supported on this architecture", pid);
    }
    if (turned_off_by_environment()) {
        return Error::make(ErrorKind::not_supported, what,
                           std::string(kind) + " are turned off (XPROC_HW_BREAKPOINTS=0)", pid)
            .with_hint("unset XPROC_HW_BREAKPOINTS to use the debug registers");
    }
    return Error::make(ErrorKind::not_supported, what,
                       std::string(kind) +
                           " do not work on this machine: its debug registers raise no trap (a virtual "
                           "machine that does not pass them through)",
                       pid)
        .with_hint(std::string_view(kind).ends_with("watchpoints")
                       ? "there are no software watchpoints: break where the value is written instead"
                       : "use a software breakpoint (break) instead");
}

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

std::string_view type_name(BreakpointType type) {
    switch (type) {
        case BreakpointType::breakpoint:
            return "breakpoint";
        case BreakpointType::watch_write:
            return "watchpoint";
        case BreakpointType::watch_read:
            return "read watchpoint";
        case BreakpointType::watch_access:
            return "access watchpoint";
    }
    return "breakpoint";
}

/// A hit that is not to be reported: the thread looks as if we had interrupted it, so
/// whoever holds it stopped (stop_all, our own step-over) resumes it like an interrupted one.
/// SIGTRAP is pending for thread `tid` (SigPnd of /proc/PID/task/TID/status): it executed a
/// trap but was interrupted before the signal was dequeued (the kernel takes a
/// PTRACE_INTERRUPT stop before dequeuing signals).
bool sigtrap_pending(pid_t pid, pid_t tid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    const auto at = text.find("\nSigPnd:");
    if (at == std::string::npos) {
        return false;
    }
    const std::uint64_t mask = std::strtoull(text.c_str() + at + 8, nullptr, 16);
    return (mask >> (SIGTRAP - 1)) & 1;
}

void make_silent(StopEvent& ev) {
    ev.kind = StopKind::interrupted;
    ev.breakpoints.clear();
    ev.watch_address = 0;
}

}  // namespace

bool hardware_breakpoints_work() noexcept {
    if (!HAVE_DEBUG_REGISTERS || turned_off_by_environment()) {
        return false;
    }
#if defined(__x86_64__)
    // 0 = not probed yet, 1 = works, 2 = does not. Two threads may both probe: same answer.
    static std::atomic<int> known{0};
    // relaxed: the value is self-contained.
    int k = known.load(std::memory_order_relaxed);
    if (k == 0) {
        k = probe_debug_registers().value_or(true) ? 1 : 2;
        known.store(k, std::memory_order_relaxed);
    }
    return k == 1;
#else
    return false;
#endif
}

Breakpoints::~Breakpoints() = default;

const Breakpoint* Breakpoints::find(int id) const noexcept {
    for (const auto& bp : m_list) {
        if (bp.id == id) {
            return &bp;
        }
    }
    return nullptr;
}

Breakpoint* Breakpoints::find_mut(int id) noexcept {
    for (auto& bp : m_list) {
        if (bp.id == id) {
            return &bp;
        }
    }
    return nullptr;
}

Breakpoints::Patch* Breakpoints::find_patch(std::uint64_t address) noexcept {
    for (auto& p : m_patches) {
        if (p.address == address) {
            return &p;
        }
    }
    return nullptr;
}

Result<void> Breakpoints::check_executable(std::uint64_t address, std::string_view what) {
    auto maps = read_maps(m_att.memory().process());
    if (!maps) {
        return fail(std::move(maps.error()));
    }
    for (const Mapping& m : *maps) {
        if (address >= m.start && address < m.end) {
            if (m.perms.exec) {
                return {};
            }
            return fail(Error::make(ErrorKind::invalid_argument, std::string(what),
                                    "not in an executable mapping (" + hex(m.start) + "-" + hex(m.end) + " " +
                                        std::string(m.perms.text()) + " " + std::string(m.name) + ")",
                                    m_att.pid())
                            .with_address(address));
        }
    }
    return fail(
        Error::make(ErrorKind::invalid_argument, std::string(what), "no mapping at this address", m_att.pid())
            .with_address(address));
}

Result<void> Breakpoints::write_trap(std::uint64_t address, bool insert, const Patch& patch) {
    const std::span<const std::byte> bytes =
        insert ? std::span<const std::byte>(TRAP_BYTES.data(), TRAP_SIZE)
               : std::span<const std::byte>(patch.original.data(), TRAP_SIZE);
    auto t = m_att.memory().write(address, bytes);
    if (!t) {
        return fail(std::move(t.error()));
    }
    if (!t->complete()) {
        return fail(m_att.memory().incomplete_error(insert ? "insert breakpoint" : "remove breakpoint",
                                                    address, TRAP_SIZE, *t));
    }
    return {};
}

Result<void> Breakpoints::sync_patch(std::uint64_t address) {
    const bool wanted = std::any_of(m_list.begin(), m_list.end(), [&](const Breakpoint& bp) {
        return bp.type == BreakpointType::breakpoint && !bp.hardware && bp.enabled && bp.address == address;
    });
    Patch* existing = find_patch(address);
    if (wanted && existing == nullptr) {
        Patch patch;
        patch.address = address;
        auto t = m_att.memory().read(address, std::span<std::byte>(patch.original.data(), TRAP_SIZE));
        if (!t) {
            return fail(std::move(t.error()));
        }
        if (!t->complete()) {
            return fail(
                m_att.memory().incomplete_error("read before inserting breakpoint", address, TRAP_SIZE, *t));
        }
        if (auto r = write_trap(address, true, patch); !r) {
            return r;
        }
        m_patches.push_back(patch);
        std::erase(m_removed_traps, address);
    } else if (!wanted && existing != nullptr) {
        const Patch patch = *existing;
        std::erase_if(m_patches, [&](const Patch& p) { return p.address == address; });
        // A thread may have executed the trap already, its SIGTRAP not yet seen.
        if (std::memcmp(patch.original.data(), TRAP_BYTES.data(), TRAP_SIZE) != 0 &&
            std::find(m_removed_traps.begin(), m_removed_traps.end(), address) == m_removed_traps.end()) {
            m_removed_traps.push_back(address);
        }
        if (m_att.process_gone()) {
            return {};
        }
        return write_trap(address, false, patch);
    }
    return {};
}

std::uint64_t Breakpoints::compute_dr7() const noexcept {
    std::uint64_t dr7 = 0;
    for (std::size_t i = 0; i < SLOT_COUNT; ++i) {
        const Slot& s = m_slots[i];
        if (s.id == 0 || s.retired) {
            continue;
        }
        const Breakpoint* bp = find(s.id);
        if (bp == nullptr || !bp->enabled) {
            continue;
        }
        std::uint64_t rw = 0;   // 00 execute, 01 write, 11 read/write
        std::uint64_t len = 0;  // 00 = 1, 01 = 2, 11 = 4, 10 = 8 bytes; execute: 00
        switch (bp->type) {
            case BreakpointType::breakpoint:
                rw = 0;
                break;
            case BreakpointType::watch_write:
                rw = 1;
                break;
            case BreakpointType::watch_read:
            case BreakpointType::watch_access:
                rw = 3;
                break;
        }
        if (bp->type != BreakpointType::breakpoint) {
            switch (bp->length) {
                case 2:
                    len = 1;
                    break;
                case 4:
                    len = 3;
                    break;
                case 8:
                    len = 2;
                    break;
                default:
                    len = 0;
                    break;
            }
        }
        dr7 |= std::uint64_t{1} << (2 * i);  // L_i
        dr7 |= rw << (16 + 4 * i);
        dr7 |= len << (18 + 4 * i);
    }
    return dr7;
}

Result<void> Breakpoints::program_thread([[maybe_unused]] pid_t tid, [[maybe_unused]] std::uint64_t dr7,
                                         [[maybe_unused]] bool clear_all) {
#if defined(__x86_64__)
    m_debug_registers_used = true;
    if (clear_all) {
        if (auto r = m_att.poke_user(tid, debug_register_offset(7), 0); !r) {
            return r;
        }
        for (int i = 0; i < 4; ++i) {
            if (auto r = m_att.poke_user(tid, debug_register_offset(i), 0); !r) {
                return r;
            }
        }
        return {};
    }
    // Addresses before DR7: the kernel validates an enabled slot against its address. A slot
    // gets a new address only after DR7 disabled it in every thread (remove), so rewriting an
    // address never moves a live breakpoint.
    for (std::size_t i = 0; i < SLOT_COUNT; ++i) {
        if ((dr7 >> (2 * i)) & 1) {
            if (auto r = m_att.poke_user(tid, debug_register_offset(static_cast<int>(i)), m_slots[i].address);
                !r) {
                return r;
            }
        }
    }
    return m_att.poke_user(tid, debug_register_offset(7), dr7);
#else
    return {};
#endif
}

template <class F>
Result<void> Breakpoints::with_all_stopped(F&& fn) {
    std::vector<pid_t> stopped_before;
    bool any_running = false;
    for (const auto& t : m_att.threads()) {
        if (t.stopped) {
            stopped_before.push_back(t.tid);
        } else {
            any_running = true;
        }
    }
    Result<void> result;
    if (any_running) {
        result = m_att.stop_all();
    }
    if (result) {
        result = fn();
    }
    if (any_running && !m_att.process_gone()) {
        // Resume the threads we stopped (those that stopped for something else keep their
        // event queued and stay stopped, as stop_all leaves them).
        std::vector<pid_t> ours;
        for (const auto& t : m_att.threads()) {
            if (t.stopped && t.last == StopKind::interrupted &&
                std::find(stopped_before.begin(), stopped_before.end(), t.tid) == stopped_before.end()) {
                ours.push_back(t.tid);
            }
        }
        // A thread whose hit was swallowed meanwhile (ignore count) sits on a breakpoint: it
        // goes first, stepping over it while all the others are still stopped. The others
        // need no step-over (they were running), so before_resume is skipped for them.
        std::stable_partition(ours.begin(), ours.end(), [&](pid_t tid) { return m_step_over.contains(tid); });
        for (pid_t tid : ours) {
            m_resuming_ours = !m_step_over.contains(tid);
            auto r = m_att.resume(tid);
            m_resuming_ours = false;
            if (!r && result) {
                result = std::move(r);
            }
        }
    }
    return result;
}

Result<void> Breakpoints::program_all_threads() {
    if (!HAVE_DEBUG_REGISTERS || m_att.process_gone() || m_att.detached()) {
        return {};
    }
    return with_all_stopped([&]() -> Result<void> {
        const std::uint64_t dr7 = compute_dr7();
        Result<void> result;
        for (const auto& t : m_att.threads()) {
            if (auto r = program_thread(t.tid, dr7, false);
                !r && r.error().kind != ErrorKind::no_such_process && result) {
                result = std::move(r);
            }
        }
        if (result) {
            for (auto& s : m_slots) {
                if (s.retired) {
                    s = Slot{};
                }
            }
        }
        return result;
    });
}

Result<void> Breakpoints::flush_retired() {
    const bool any = std::any_of(m_slots.begin(), m_slots.end(), [](const Slot& s) { return s.retired; });
    if (!any || !m_att.all_stopped() || m_att.process_gone()) {
        return {};
    }
    const std::uint64_t dr7 = compute_dr7();
    Result<void> result;
    for (const auto& t : m_att.threads()) {
        if (auto r = program_thread(t.tid, dr7, false);
            !r && r.error().kind != ErrorKind::no_such_process && result) {
            result = std::move(r);
        }
    }
    if (result) {
        for (auto& s : m_slots) {
            if (s.retired) {
                s = Slot{};
            }
        }
    }
    return result;
}

void Breakpoints::note_threads_at(std::uint64_t address) {
    for (const auto& t : m_att.threads()) {
        if (!t.stopped) {
            continue;
        }
        if (auto regs = m_att.registers(t.tid); regs && regs->pc() == address) {
            m_step_over[t.tid] = address;
        }
    }
}

Result<int> Breakpoints::add_breakpoint(std::uint64_t address, BreakpointOptions options) {
    const std::string what = std::string(options.hardware_only ? "hbreak *"
                                         : options.temporary   ? "tbreak *"
                                                               : "break *") +
                             hex(address);
    if (options.hardware_only && options.software_only) {
        return fail(Error::make(ErrorKind::invalid_argument, what, "hardware_only and software_only both set",
                                m_att.pid()));
    }
    if (m_att.detached() || m_att.process_gone()) {
        return fail(Error::make(ErrorKind::no_such_process, what,
                                "not attached (detached or the process ended)", m_att.pid()));
    }
    if (auto r = check_executable(address, what); !r) {
        return fail(std::move(r.error()));
    }
    Breakpoint bp;
    bp.id = m_next_id;
    bp.type = BreakpointType::breakpoint;
    bp.address = address;
    bp.length = 1;
    bp.temporary = options.temporary;

    if (!options.software_only) {
        if (!hardware_breakpoints_work()) {
            if (options.hardware_only) {
                return fail(no_debug_registers(what, "hardware breakpoints", m_att.pid()));
            }
        } else {
            int slot = -1;
            for (std::size_t i = 0; i < SLOT_COUNT; ++i) {
                if (m_slots[i].id == 0) {
                    slot = static_cast<int>(i);
                    break;
                }
            }
            if (slot >= 0) {
                bp.hardware = true;
                bp.slot = slot;
                m_list.push_back(bp);
                m_slots[static_cast<std::size_t>(slot)] = Slot{bp.id, false, address};
                auto r = program_all_threads();
                if (r) {
                    ++m_next_id;
                    note_threads_at(address);
                    return bp.id;
                }
                m_list.pop_back();
                m_slots[static_cast<std::size_t>(slot)] = Slot{};
                (void)program_all_threads();
                if (options.hardware_only) {
                    return fail(std::move(r.error()));
                }
                bp.hardware = false;
                bp.slot = -1;
            } else if (options.hardware_only) {
                std::string users;
                for (const auto& s : m_slots) {
                    users += (users.empty() ? "" : ", ") + std::to_string(s.id);
                }
                return fail(Error::make(ErrorKind::invalid_argument, what,
                                        "no free hardware debug register (DR0-DR3 used by " + users + ")",
                                        m_att.pid())
                                .with_address(address)
                                .with_hint("delete a hardware breakpoint or watchpoint, or use a software "
                                           "breakpoint"));
            }
        }
    }
    m_list.push_back(bp);
    if (auto r = sync_patch(address); !r) {
        m_list.pop_back();
        return fail(std::move(r.error()));
    }
    ++m_next_id;
    note_threads_at(address);
    return bp.id;
}

Result<int> Breakpoints::add_watchpoint(std::uint64_t address, std::size_t length, BreakpointType type) {
    const std::string what =
        std::string(type_name(type)) + " " + hex(address) + " length " + std::to_string(length);
    if (type == BreakpointType::breakpoint) {
        return fail(Error::make(ErrorKind::invalid_argument, what, "not a watchpoint type", m_att.pid()));
    }
    if (length != 1 && length != 2 && length != 4 && length != 8) {
        return fail(Error::make(ErrorKind::invalid_argument, what, "the length must be 1, 2, 4 or 8 bytes",
                                m_att.pid()));
    }
    if (address % length != 0) {
        return fail(Error::make(ErrorKind::invalid_argument, what,
                                "the address must be aligned to the length (" + std::to_string(length) + ")",
                                m_att.pid())
                        .with_address(address));
    }
    if (!hardware_breakpoints_work()) {
        return fail(no_debug_registers(what, "hardware watchpoints", m_att.pid()));
    }
    if (m_att.detached() || m_att.process_gone()) {
        return fail(Error::make(ErrorKind::no_such_process, what,
                                "not attached (detached or the process ended)", m_att.pid()));
    }
    int slot = -1;
    for (std::size_t i = 0; i < SLOT_COUNT; ++i) {
        if (m_slots[i].id == 0) {
            slot = static_cast<int>(i);
            break;
        }
    }
    if (slot < 0) {
        return fail(Error::make(ErrorKind::invalid_argument, what,
                                "no free hardware debug register (DR0-DR3 in use)", m_att.pid())
                        .with_address(address)
                        .with_hint("delete a hardware breakpoint or watchpoint"));
    }
    std::uint64_t value = 0;
    auto t = m_att.memory().read(address, std::span<std::byte>(reinterpret_cast<std::byte*>(&value), length));
    if (!t) {
        return fail(std::move(t.error()));
    }
    if (!t->complete()) {
        return fail(m_att.memory().incomplete_error("read watched value", address, length, *t));
    }
    Breakpoint bp;
    bp.id = m_next_id;
    bp.type = type;
    bp.address = address;
    bp.length = length;
    bp.hardware = true;
    bp.slot = slot;
    bp.old_value = value;
    bp.new_value = value;
    m_list.push_back(bp);
    m_slots[static_cast<std::size_t>(slot)] = Slot{bp.id, false, address};
    m_last_value[bp.id] = value;
    if (auto r = program_all_threads(); !r) {
        m_list.pop_back();
        m_slots[static_cast<std::size_t>(slot)] = Slot{};
        m_last_value.erase(bp.id);
        (void)program_all_threads();
        return fail(std::move(r.error()));
    }
    ++m_next_id;
    return bp.id;
}

Result<void> Breakpoints::remove(int id) {
    const Breakpoint* found = find(id);
    if (found == nullptr) {
        return fail(Error::make(ErrorKind::invalid_argument, "delete " + std::to_string(id),
                                "no breakpoint number " + std::to_string(id), m_att.pid()));
    }
    const Breakpoint bp = *found;
    std::erase_if(m_list, [&](const Breakpoint& b) { return b.id == id; });
    m_last_value.erase(id);
    if (bp.hardware) {
        if (bp.slot >= 0 && static_cast<std::size_t>(bp.slot) < SLOT_COUNT && m_slots[bp.slot].id == id) {
            m_slots[bp.slot] = Slot{};
        }
        return program_all_threads();
    }
    return sync_patch(bp.address);
}

void Breakpoints::flush_pending_traps() {
    if ((m_patches.empty() && !m_debug_registers_used) || m_att.process_gone()) {
        return;
    }
    std::vector<pid_t> tids;
    for (const auto& t : m_att.threads()) {
        if (t.stopped && t.last != StopKind::signal) {
            tids.push_back(t.tid);
        }
    }
    for (pid_t tid : tids) {
        if (sigtrap_pending(m_att.pid(), tid)) {
            // Resumed, it dequeues the SIGTRAP before running any instruction: the signal stop
            // comes back through on_sigtrap (pc rewound, or left as the program's own signal).
            (void)m_att.step_raw(tid, 0);
        }
    }
}

Result<void> Breakpoints::remove_all() {
    // Detaching with such a SIGTRAP pending would kill the program once we are gone.
    flush_pending_traps();
    Result<void> result;
    std::vector<int> ids;
    for (const auto& bp : m_list) {
        ids.push_back(bp.id);
    }
    for (int id : ids) {
        if (auto r = remove(id); !r && result) {
            result = std::move(r);
        }
    }
    // Traps left by a failed removal: try once more.
    while (!m_patches.empty()) {
        const Patch p = m_patches.back();
        m_patches.pop_back();
        if (!m_att.process_gone()) {
            if (auto r = write_trap(p.address, false, p); !r && result) {
                result = std::move(r);
            }
        }
    }
    if (m_debug_registers_used && HAVE_DEBUG_REGISTERS && !m_att.process_gone() && !m_att.detached()) {
        auto r = with_all_stopped([&]() -> Result<void> {
            Result<void> res;
            for (const auto& t : m_att.threads()) {
                if (auto e = program_thread(t.tid, 0, true);
                    !e && e.error().kind != ErrorKind::no_such_process && res) {
                    res = std::move(e);
                }
            }
            return res;
        });
        if (!r && result) {
            result = std::move(r);
        }
    }
    m_slots = {};
    m_step_over.clear();
    return result;
}

Result<void> Breakpoints::set_ignore_count(int id, std::uint64_t count) {
    Breakpoint* bp = find_mut(id);
    if (bp == nullptr) {
        return fail(Error::make(ErrorKind::invalid_argument, "ignore " + std::to_string(id),
                                "no breakpoint number " + std::to_string(id), m_att.pid()));
    }
    bp->ignore_count = count;
    return {};
}

Result<void> Breakpoints::set_enabled(int id, bool enabled) {
    Breakpoint* bp = find_mut(id);
    if (bp == nullptr) {
        return fail(Error::make(ErrorKind::invalid_argument,
                                (enabled ? "enable " : "disable ") + std::to_string(id),
                                "no breakpoint number " + std::to_string(id), m_att.pid()));
    }
    if (bp->enabled == enabled) {
        return {};
    }
    bp->enabled = enabled;
    const bool hardware = bp->hardware;
    const std::uint64_t address = bp->address;
    const bool is_exec = bp->type == BreakpointType::breakpoint;
    auto r = hardware ? program_all_threads() : sync_patch(address);
    if (!r) {
        if (Breakpoint* again = find_mut(id)) {
            again->enabled = !enabled;
        }
        return r;
    }
    if (enabled && is_exec) {
        note_threads_at(address);
    }
    return {};
}

void Breakpoints::unpatch(std::uint64_t address, std::span<std::byte> out) const noexcept {
    for (const Patch& p : m_patches) {
        for (std::size_t k = 0; k < TRAP_SIZE; ++k) {
            const std::uint64_t a = p.address + k;
            if (a >= address && a - address < out.size()) {
                out[a - address] = p.original[k];
            }
        }
    }
}

std::vector<int> Breakpoints::count_exec_hits(std::uint64_t address) {
    std::vector<int> ids;
    for (auto& bp : m_list) {
        if (bp.type != BreakpointType::breakpoint || !bp.enabled || bp.address != address) {
            continue;
        }
        ++bp.hits;
        if (bp.ignore_count > 0) {
            --bp.ignore_count;
            continue;
        }
        ids.push_back(bp.id);
    }
    return ids;
}

void Breakpoints::delete_temporaries(const std::vector<int>& ids, pid_t tid) {
    for (int id : ids) {
        const Breakpoint* bp = find(id);
        if (bp == nullptr || !bp->temporary) {
            continue;
        }
        if (bp->hardware) {
            // Other threads may be running: the slot is cleared everywhere the next time all
            // threads are stopped; until then its hits are swallowed.
            if (bp->slot >= 0 && static_cast<std::size_t>(bp->slot) < SLOT_COUNT &&
                m_slots[bp->slot].id == id) {
                m_slots[bp->slot].retired = true;
            }
            std::erase_if(m_list, [&](const Breakpoint& b) { return b.id == id; });
            // At least the thread that hit it (stopped) forgets it now.
            (void)program_thread(tid, compute_dr7(), false);
            (void)flush_retired();
        } else {
            (void)remove(id);
        }
    }
}

Result<bool> Breakpoints::on_sigtrap(StopEvent& ev) {
    if (ev.signal != SIGTRAP || !ev.has_info) {
        return true;
    }
    const int code = ev.info.si_code;
    const pid_t tid = ev.tid;

    if (code == TRAP_SI_CODE) {
        auto regs = m_att.registers(tid);
        if (!regs) {
            return fail(std::move(regs.error()));
        }
        const std::uint64_t address = regs->pc() - TRAP_PC_ADVANCE;
        const bool ours = find_patch(address) != nullptr;
        bool late = false;
        if (!ours &&
            std::find(m_removed_traps.begin(), m_removed_traps.end(), address) != m_removed_traps.end()) {
            // A trap we removed after this thread executed it: unless the program has its own
            // trap there now, rewind and go on as if nothing happened.
            std::array<std::byte, 4> now{};
            auto t = m_att.memory().read(address, std::span<std::byte>(now.data(), TRAP_SIZE));
            late = t && t->complete() && std::memcmp(now.data(), TRAP_BYTES.data(), TRAP_SIZE) != 0;
        }
        if (!ours && !late) {
            return true;  // the program's own int3, or a SIGTRAP sent by someone
        }
        if (TRAP_PC_ADVANCE != 0) {
            regs->set_pc(address);
            if (auto r = m_att.set_registers(*regs); !r) {
                return fail(std::move(r.error()));
            }
        }
        if (late) {
            make_silent(ev);
            return false;
        }
        m_step_over[tid] = address;
        auto ids = count_exec_hits(address);
        if (ids.empty()) {
            make_silent(ev);
            return false;
        }
        ev.kind = StopKind::breakpoint;
        ev.breakpoints = ids;
        delete_temporaries(ids, ev.tid);
        return true;
    }

    if (code != TRAP_HWBKPT && code != TRAP_TRACE && code != TRAP_BRKPT) {
        return true;
    }
    std::uint64_t dr6 = 0;
#if defined(__x86_64__)
    {
        auto v = m_att.peek_user(tid, debug_register_offset(6));
        if (!v) {
            return fail(std::move(v.error()));
        }
        dr6 = *v;
        if ((dr6 & (DR6_TRAP_BITS | DR6_SINGLE_STEP)) != 0) {
            (void)m_att.poke_user(tid, debug_register_offset(6), 0);
        }
    }
    const bool stepped = (dr6 & DR6_SINGLE_STEP) != 0 || code == TRAP_TRACE;
    const bool slot_hit = (dr6 & DR6_TRAP_BITS) != 0;
#else
    const bool stepped = code == TRAP_TRACE;
    const bool slot_hit = false;
#endif
    if (!stepped && !slot_hit) {
        return true;  // TRAP_BRKPT with nothing of ours in DR6
    }

    std::vector<int> reported;
    bool watch_reported = false;
    std::uint64_t watch_address = 0;
    std::optional<std::uint64_t> exec_address;
    bool stale_slot = false;
    for (std::size_t i = 0; i < SLOT_COUNT; ++i) {
        if (((dr6 >> i) & 1) == 0) {
            continue;
        }
        const Slot& s = m_slots[i];
        if (s.id == 0 || s.retired) {
            // Deleted while this thread ran (its DR7 still had it): swallowed below, and
            // cleared in this thread so it does not trap again.
            stale_slot = true;
            continue;
        }
        Breakpoint* bp = find_mut(s.id);
        if (bp == nullptr || !bp->enabled) {
            continue;
        }
        if (bp->type == BreakpointType::breakpoint) {
            exec_address = bp->address;
            continue;
        }
        std::uint64_t value = 0;
        auto t = m_att.memory().read(bp->address,
                                     std::span<std::byte>(reinterpret_cast<std::byte*>(&value), bp->length));
        const std::uint64_t last = m_last_value[bp->id];
        if (!t || !t->complete()) {
            value = last;
        }
        // gdb: `watch` stops only when the value changed; `rwatch` (an RW slot on x86) only
        // when it did not (a changed value means a write); `awatch` on every access.
        bool hit = false;
        switch (bp->type) {
            case BreakpointType::watch_write:
                hit = value != last;
                break;
            case BreakpointType::watch_read:
                hit = value == last;
                break;
            case BreakpointType::watch_access:
            case BreakpointType::breakpoint:
                hit = true;
                break;
        }
        m_last_value[bp->id] = value;
        if (!hit) {
            continue;
        }
        ++bp->hits;
        if (bp->ignore_count > 0) {
            --bp->ignore_count;
            continue;
        }
        bp->old_value = last;
        bp->new_value = value;
        reported.push_back(bp->id);
        if (!watch_reported) {
            watch_reported = true;
            watch_address = bp->address;
        }
    }
    if (stale_slot) {
        (void)program_thread(tid, compute_dr7(), false);
    }
    if (exec_address && !m_stepping_over) {
        m_step_over[tid] = *exec_address;
        for (int id : count_exec_hits(*exec_address)) {
            reported.push_back(id);
        }
    }
    if (!reported.empty()) {
        ev.kind = watch_reported ? StopKind::watchpoint : StopKind::breakpoint;
        ev.breakpoints = reported;
        ev.watch_address = watch_reported ? watch_address : 0;
        delete_temporaries(reported, tid);
        return true;
    }
    if (stepped) {
        ev.kind = StopKind::single_step;
        ev.breakpoints.clear();
        if (!m_stepping_over) {
            if (auto r = on_step_landed(ev); !r) {
                return fail(std::move(r.error()));
            }
        }
        return true;
    }
    // Only slots of ours (ignored, unchanged value, deleted meanwhile): go on silently.
    make_silent(ev);
    return false;
}

Result<void> Breakpoints::on_step_landed(StopEvent& ev) {
    const TracedThread* t = m_att.thread(ev.tid);
    if (t == nullptr || !t->stopped) {
        return {};
    }
    auto regs = m_att.registers(ev.tid);
    if (!regs) {
        return fail(std::move(regs.error()));
    }
    const std::uint64_t pc = regs->pc();
    const bool there = std::any_of(m_list.begin(), m_list.end(), [&](const Breakpoint& bp) {
        return bp.type == BreakpointType::breakpoint && bp.enabled && bp.address == pc;
    });
    if (!there) {
        return {};
    }
    m_step_over[ev.tid] = pc;
    auto ids = count_exec_hits(pc);
    if (!ids.empty()) {
        ev.kind = StopKind::breakpoint;
        ev.breakpoints = ids;
        delete_temporaries(ids, ev.tid);
    }
    return {};
}

Result<std::optional<StopEvent>> Breakpoints::before_resume(pid_t tid) {
    if (m_resuming_ours) {
        return std::optional<StopEvent>();
    }
    (void)flush_retired();
    // A step over one int3 can land on another breakpoint whose ignore count swallows the
    // hit: step over that one too (bounded: an ignore count can make this a long walk).
    for (int round = 0; round < 1000; ++round) {
        auto it = m_step_over.find(tid);
        if (it == m_step_over.end()) {
            return std::optional<StopEvent>();
        }
        const std::uint64_t address = it->second;
        m_step_over.erase(it);
        auto regs = m_att.registers(tid);
        if (!regs || regs->pc() != address) {
            return std::optional<StopEvent>();  // gone, or moved (set $pc): nothing to step over
        }
#if defined(__x86_64__)
        const bool hardware = std::any_of(m_list.begin(), m_list.end(), [&](const Breakpoint& bp) {
            return bp.type == BreakpointType::breakpoint && bp.hardware && bp.enabled &&
                   bp.address == address;
        });
        if (hardware && (regs->gp.eflags & EFLAGS_RF) == 0) {
            regs->gp.eflags |= EFLAGS_RF;
            if (auto r = m_att.set_registers(*regs); !r) {
                return fail(std::move(r.error()));
            }
        }
#endif
        if (find_patch(address) == nullptr) {
            return std::optional<StopEvent>();
        }
        auto over = step_over_trap(tid, address);
        if (!over || *over) {
            return over;
        }
    }
    return std::optional<StopEvent>();
}

Result<std::optional<StopEvent>> Breakpoints::step_over_trap(pid_t tid, std::uint64_t address) {
    std::optional<StopEvent> reported;
    Result<void> status;
    auto step = [&]() -> Result<void> {
        // stop_all may have seen another thread hit a temporary breakpoint here and deleted it.
        const Patch* p = find_patch(address);
        if (p == nullptr) {
            return {};
        }
        const Patch patch = *p;
        if (auto r = write_trap(address, false, patch); !r) {
            return r;
        }
        m_stepping_over = true;
        auto ev = m_att.step_raw(tid, 0);
        m_stepping_over = false;
        Result<void> result;
        if (find_patch(address) != nullptr && !m_att.process_gone()) {
            result = write_trap(address, true, patch);
        }
        if (!ev) {
            return fail(std::move(ev.error()));
        }
        if (ev->kind == StopKind::single_step) {
            // Landing on a breakpoint is its hit (what resuming would report right after).
            if (auto r = on_step_landed(*ev); !r) {
                return fail(std::move(r.error()));
            }
            if (ev->kind == StopKind::breakpoint) {
                reported = std::move(*ev);
            }
        } else {
            // A signal that came first, a watchpoint the instruction triggered, the end of the
            // thread: the caller reports it. If the instruction did not run, step over it next time.
            const TracedThread* t = m_att.thread(tid);
            if (t != nullptr && t->stopped) {
                if (auto regs = m_att.registers(tid); regs && regs->pc() == address) {
                    m_step_over[tid] = address;
                }
            }
            reported = std::move(*ev);
        }
        return result;
    };
    status = with_all_stopped(step);
    if (!status) {
        return fail(std::move(status.error()));
    }
    return reported;
}

Result<void> Breakpoints::thread_added([[maybe_unused]] pid_t tid) {
    m_step_over.erase(tid);  // a reused tid
    if (!HAVE_DEBUG_REGISTERS) {
        return {};
    }
    const std::uint64_t dr7 = compute_dr7();
    if (dr7 == 0) {
        return {};
    }
    return program_thread(tid, dr7, false);
}

}  // namespace xproc
