// SPDX-License-Identifier: MIT
// The ptrace half of xpeek: attach, registers, backtraces, threads, breakpoints and
// watchpoints, continue/stepi/nexti/finish/signal, detach and kill. gdb's names and output
// (for a target without debug info: frames print as "0x... in func () from /lib/...").
//
// All-stop, as gdb: when one thread stops, every thread is stopped; continue resumes them all.
// stepi and nexti move only the selected thread (gdb's `set scheduler-locking step`).

#include <signal.h>
#include <string.h>
#include <sys/user.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "link_map.hpp"
#include "register_view.hpp"
#include "session.hpp"
#include "text.hpp"
#include "value_print.hpp"
#include "xproc/breakpoints.hpp"

namespace xpeek {

volatile std::sig_atomic_t g_terminate = 0;

namespace {

using namespace std::chrono_literals;

/// gdb's signal descriptions (gdb/signals.def), which differ from strsignal's in places.
std::string signal_description(int sig) {
    switch (sig) {
        case SIGHUP:
            return "Hangup";
        case SIGINT:
            return "Interrupt";
        case SIGQUIT:
            return "Quit";
        case SIGILL:
            return "Illegal instruction";
        case SIGTRAP:
            return "Trace/breakpoint trap";
        case SIGABRT:
            return "Aborted";
        case SIGBUS:
            return "Bus error";
        case SIGFPE:
            return "Arithmetic exception";
        case SIGKILL:
            return "Killed";
        case SIGUSR1:
            return "User defined signal 1";
        case SIGSEGV:
            return "Segmentation fault";
        case SIGUSR2:
            return "User defined signal 2";
        case SIGPIPE:
            return "Broken pipe";
        case SIGALRM:
            return "Alarm clock";
        case SIGTERM:
            return "Terminated";
        case SIGCHLD:
            return "Child status changed";
        case SIGCONT:
            return "Continued";
        case SIGSTOP:
            return "Stopped (signal)";
        case SIGTSTP:
            return "Stopped (user)";
        case SIGTTIN:
            return "Stopped (tty input)";
        case SIGTTOU:
            return "Stopped (tty output)";
        case SIGURG:
            return "Urgent I/O condition";
        case SIGXCPU:
            return "CPU time limit exceeded";
        case SIGXFSZ:
            return "File size limit exceeded";
        case SIGVTALRM:
            return "Virtual timer expired";
        case SIGPROF:
            return "Profiling timer expired";
        case SIGWINCH:
            return "Window size changed";
        case SIGIO:
            return "I/O possible";
        case SIGPWR:
            return "Power fail/restart";
        case SIGSYS:
            return "Bad system call";
        default:
            break;
    }
    const char* d = ::strsignal(sig);
    return d != nullptr ? d : "Unknown signal";
}

std::string signal_name(int sig) {
    if (const char* abbrev = ::sigabbrev_np(sig); abbrev != nullptr) {
        return std::string("SIG") + abbrev;
    }
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        return "SIG" + std::to_string(sig);
    }
    return "signal " + std::to_string(sig);
}

/// "SIGUSR1", "USR1", "10" → 10; 0 for "0" (no signal); -1 when unknown.
int parse_signal(std::string_view text) {
    if (text.empty()) {
        return -1;
    }
    if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        const int n = std::atoi(std::string(text).c_str());
        return n >= 0 && n < NSIG ? n : -1;
    }
    std::string up(text);
    for (char& c : up) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (up.starts_with("SIG")) {
        up = up.substr(3);
    }
    for (int s = 1; s < NSIG; ++s) {
        if (const char* a = ::sigabbrev_np(s); a != nullptr && up == a) {
            return s;
        }
    }
    return -1;
}

/// Sign-extends the low `size` bytes of `v`.
std::int64_t sign_extend(std::uint64_t v, unsigned size) {
    if (size >= 8) {
        return static_cast<std::int64_t>(v);
    }
    const unsigned bits = size * 8;
    const std::uint64_t m = 1ull << (bits - 1);
    v &= (1ull << bits) - 1;
    return static_cast<std::int64_t>((v ^ m) - m);
}

/// gdb's frame level: "#" and the number left-aligned in two columns, then a space ("#0  ",
/// "#10 ", "#100 "), as print_frame_info's field_fmt_signed (2, ui_left, "level").
std::string frame_level(unsigned index) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "#%-2u ", index);
    return buf;
}

long parse_count(std::string_view text, long fallback) {
    text = trim(text);
    if (text.empty()) {
        return fallback;
    }
    char* end = nullptr;
    const std::string s(text);
    const long v = std::strtol(s.c_str(), &end, 0);
    if (*end != '\0') {
        return -1;
    }
    return v;
}

/// The int3-free prologue skip gdb does for a function without debug info
/// (amd64_analyze_prologue): endbr64, then `push %rbp; mov %rsp,%rbp`.
std::uint64_t skip_prologue(xproc::RemoteMemory& mem, std::uint64_t address) {
    std::byte code[8]{};
    auto t = mem.read(address, code);
    if (!t || t->bytes < sizeof code) {
        return address;
    }
    const auto* b = reinterpret_cast<const unsigned char*>(code);
    std::uint64_t at = address;
    std::size_t i = 0;
    if (b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa) {
        i = 4;
    }
    if (i + 4 <= sizeof code && b[i] == 0x55 && b[i + 1] == 0x48 && b[i + 2] == 0x89 && b[i + 3] == 0xe5) {
        return at + i + 4;
    }
    if (i + 4 <= sizeof code && b[i] == 0x55 && b[i + 1] == 0x48 && b[i + 2] == 0x8b && b[i + 3] == 0xec) {
        return at + i + 4;
    }
    return at + i;
}

}  // namespace

Session::~Session() {
    release(nullptr);
}

void Session::release(const char* why) {
    if (!m_att) {
        return;
    }
    const pid_t pid = m_att->pid();
    const bool gone = m_att->process_gone();
    auto r = m_att->detach();
    drop_attachment();
    if (why != nullptr && !gone) {
        std::fflush(stdout);
        if (r) {
            std::fprintf(stderr, "xpeek: %s: detached from process %d (breakpoints removed, left %s)\n", why,
                         static_cast<int>(pid), m_was_stopped_at_attach ? "stopped as it was" : "running");
        } else {
            std::fprintf(stderr, "xpeek: %s: detaching from process %d: %s\n", why, static_cast<int>(pid),
                         r.error().message().c_str());
        }
        std::fflush(stderr);
    }
}

void Session::drop_attachment() {
    m_window.set_patches(nullptr);
    m_unwinder.reset();
    m_att.reset();
    m_user_bps.clear();
    m_thread_numbers.clear();
    m_current = 0;
}

bool Session::attach_to(pid_t pid, bool show_where) {
    auto att = xproc::Attachment::seize(pid, {.stop = true});
    if (!att) {
        return error(att.error().message());
    }
    m_att = std::move(*att);
    m_att->set_cancel_check([] { return g_interrupted != 0 || g_terminate != 0; });
    m_was_stopped_at_attach = m_att->was_stopped();
    m_window.set_patches(&m_att->breakpoints());
    m_thread_numbers.clear();
    note_threads();
    m_current = m_att->pid();
    if (m_symbols) {
        auto unw = xproc::Unwinder::create(pid, *m_symbols);
        if (unw) {
            m_unwinder.emplace(std::move(*unw));
        } else {
            warning("no backtraces: " + unw.error().message());
        }
    }
    if (show_where) {
        announce("Attaching to process " + std::to_string(pid) + "\n");
        auto regs = m_att->registers(m_current);
        if (regs) {
            std::printf("%s\n", location(regs->pc(), false).c_str());
        }
    }
    return true;
}

bool Session::ensure_attached() {
    if (m_att && !m_att->process_gone()) {
        return true;
    }
    if (!need_process()) {
        return false;
    }
    if (m_att) {
        return error("The program is not being run.");
    }
    return attach_to(m_pid, true);
}

bool Session::need_attached_stopped() {
    if (!ensure_attached()) {
        return false;
    }
    if (!m_att->all_stopped()) {
        if (auto r = m_att->stop_all(); !r) {
            return error(r.error().message());
        }
    }
    if (m_att->thread(m_current) == nullptr) {
        m_current = m_att->threads().empty() ? 0 : m_att->threads().front().tid;
    }
    return m_current != 0 || error("No thread selected.");
}

void Session::note_threads() {
    if (!m_att) {
        return;
    }
    for (const auto& t : m_att->threads()) {
        if (std::find(m_thread_numbers.begin(), m_thread_numbers.end(), t.tid) == m_thread_numbers.end()) {
            m_thread_numbers.push_back(t.tid);
        }
    }
}

int Session::thread_number(pid_t tid) {
    note_threads();
    auto it = std::find(m_thread_numbers.begin(), m_thread_numbers.end(), tid);
    return it == m_thread_numbers.end() ? 0 : static_cast<int>(it - m_thread_numbers.begin()) + 1;
}

std::string Session::thread_name(pid_t tid) {
    std::ifstream f("/proc/" + std::to_string(m_pid) + "/task/" + std::to_string(tid) + "/comm");
    std::string name;
    std::getline(f, name);
    return name;
}

std::string Session::target_id(pid_t tid) {
    // glibc's pthread_t is the thread pointer, fs_base on x86-64 (what libthread_db reports).
    std::string id;
#if defined(__x86_64__)
    if (auto regs = m_att->registers(tid); regs && regs->gp.fs_base != 0) {
        id = "Thread " + hex(regs->gp.fs_base) + " (LWP " + std::to_string(tid) + ")";
    }
#endif
    if (id.empty()) {
        id = "LWP " + std::to_string(tid);
    }
    return id;
}

std::string Session::library_suffix(std::uint64_t pc) {
    // gdb: " from LIB" for code in a shared library (not the executable, not the vdso), named
    // as the dynamic linker named it ("/lib/x86_64-linux-gnu/libc.so.6").
    if (!m_symbols) {
        return {};
    }
    const auto* mod = m_symbols->module_of(pc);
    if (mod == nullptr || mod->main_executable || mod->vdso) {
        return {};
    }
    if (!m_link_names && m_memory) {
        m_link_names = read_link_map(*m_memory, *m_symbols);
    }
    if (const auto it = m_link_names->find(mod->load_bias); it != m_link_names->end()) {
        return " from " + it->second;
    }
    return " from " + mod->path;
}

std::string Session::location(std::uint64_t pc, bool caller) {
    std::string name = "??";
    std::string from;
    if (m_symbols) {
        // For a caller, pc is a return address: name the call, which is before it (gdb).
        const auto r = m_symbols->resolve(caller ? pc - 1 : pc);
        if (r && !r->section.empty()) {
            name = xproc::gdb_display_name(r->symbol);
        }
        from = library_suffix(pc);
    }
    return hex16(pc) + " in " + name + " ()" + from;
}

std::string Session::frame_text(const xproc::Frame& f) {
    std::string name = f.symbol.empty() ? "??" : f.symbol;
    const std::string from = library_suffix(f.pc);
    return frame_level(f.index) + hex16(f.pc) + " in " + name + " ()" + from;
}

bool Session::print_backtrace(pid_t tid, long limit) {
    if (!m_unwinder) {
        return error("No backtrace: the unwinder could not be set up (see the warning at attach).");
    }
    const std::size_t max = limit > 0 ? static_cast<std::size_t>(limit) : 4096;
    auto frames = m_unwinder->backtrace(*m_att, tid, max + 1);
    if (!frames) {
        return error(frames.error().message());
    }
    std::size_t shown = 0;
    for (const auto& f : *frames) {
        if (shown == max) {
            if (m_from_tty) {
                std::printf("(More stack frames follow...)\n");
            }
            break;
        }
        if (g_interrupted != 0) {
            return error("Quit");
        }
        if (f.signal_frame) {
            std::printf("%s<signal handler called>\n", frame_level(f.index).c_str());
        } else {
            std::printf("%s\n", frame_text(f).c_str());
        }
        ++shown;
        if (f.symbol == "main") {
            break;  // gdb's "backtrace past-main off"
        }
    }
    return true;
}

std::expected<Value, std::string> Session::register_as_value(std::string_view name) {
    if (!ensure_attached()) {
        return std::unexpected(std::string("registers need a ptrace attach, which failed (see above)"));
    }
    if (!m_att->all_stopped()) {
        if (auto r = m_att->stop_all(); !r) {
            return std::unexpected(r.error().message());
        }
    }
    auto regs = m_att->registers(m_current);
    if (!regs) {
        return std::unexpected(regs.error().message());
    }
    const RegisterView view(*regs,
                            needs_extended_state(name) ? read_extended_state(m_current) : std::nullopt);
    if (!view.exists(name)) {
        return convenience_value(name);
    }
    auto reg = view.get(name);
    if (!reg) {
        return std::unexpected("$" + std::string(name) +
                               " is not available (the FP/SSE registers could not be read)");
    }
    Value out;
    out.size = static_cast<unsigned>(reg->bytes.size());
    switch (reg->type) {
        case RegisterType::code_pointer:
        case RegisterType::data_pointer:
            out.kind = Value::Kind::address;
            out.type =
                reg->type == RegisterType::code_pointer ? Value::Type::code_pointer : Value::Type::plain;
            out.is_unsigned = true;
            out.integer = static_cast<std::int64_t>(reg->as_u64());
            break;
        case RegisterType::i387_ext:
        case RegisterType::vec128:
        case RegisterType::vec256:
        case RegisterType::vec512:
            out.kind = Value::Kind::raw;
            out.type = reg->type == RegisterType::i387_ext ? Value::Type::i387_ext
                       : reg->type == RegisterType::vec128 ? Value::Type::vec128
                       : reg->type == RegisterType::vec256 ? Value::Type::vec256
                                                           : Value::Type::vec512;
            out.bytes = reg->bytes;
            break;
        default:
            if (reg->bytes.size() > 8) {
                out.kind = Value::Kind::raw;
                out.type = Value::Type::uint128;
                out.bytes = reg->bytes;
                break;
            }
            out.kind = Value::Kind::integer;
            out.type = reg->type == RegisterType::eflags  ? Value::Type::eflags
                       : reg->type == RegisterType::mxcsr ? Value::Type::mxcsr
                                                          : Value::Type::plain;
            out.is_unsigned = reg->type != RegisterType::signed_int;
            out.integer = out.is_unsigned ? static_cast<std::int64_t>(reg->as_u64())
                                          : sign_extend(reg->as_u64(), out.size);
            break;
    }
    return out;
}

// ---- commands ---------------------------------------------------------------------------

bool Session::cmd_attach(std::string_view args) {
    args = trim(args);
    if (args.empty()) {
        return error("Argument required (process-id to attach).");
    }
    const long pid = parse_count(args, 0);
    if (pid <= 0 || pid > 0x7fffffffL) {
        return error("Illegal process-id: " + std::string(args) + ".");
    }
    if (m_att && !m_att->process_gone()) {
        return error("Already attached to process " + std::to_string(m_att->pid()) +
                     ": \"detach\" first (xpeek traces one process at a time).");
    }
    drop_attachment();
    if (static_cast<pid_t>(pid) != m_pid || !m_memory) {
        std::string err;
        m_memory.reset();
        m_symbols.reset();
        m_link_names.reset();
        m_window.clear();
        if (!open(static_cast<pid_t>(pid), err)) {
            return error(err);
        }
    }
    return attach_to(static_cast<pid_t>(pid), true);
}

bool Session::cmd_detach(std::string_view) {
    if (!m_att) {
        return error("The program is not being run.");
    }
    const pid_t pid = m_att->pid();
    const std::string exe = m_memory ? m_memory->process().exe().value_or("") : std::string();
    announce("Detaching from program: " + exe + ", process " + std::to_string(pid) + "\n");
    auto r = m_att->detach();
    drop_attachment();
    std::printf("[Inferior 1 (process %d) detached]\n", static_cast<int>(pid));
    if (!r) {
        return error(r.error().message());
    }
    return true;
}

bool Session::cmd_kill(std::string_view) {
    if (!ensure_attached()) {
        return false;
    }
    const pid_t pid = m_att->pid();
    auto r = m_att->kill();
    if (!r) {
        return error(r.error().message());
    }
    drop_attachment();
    std::printf("[Inferior 1 (process %d) killed]\n", static_cast<int>(pid));
    return true;
}

bool Session::report_exit(const xproc::StopEvent& ev) {
    const pid_t pid = m_att ? m_att->pid() : m_pid;
    if (ev.kind == xproc::StopKind::exited) {
        if (ev.exit_code == 0) {
            std::printf("[Inferior 1 (process %d) exited normally]\n", static_cast<int>(pid));
        } else {
            std::printf("[Inferior 1 (process %d) exited with code %02o]\n", static_cast<int>(pid),
                        static_cast<unsigned>(ev.exit_code));
        }
    } else {
        std::printf("\nProgram terminated with signal %s, %s.\nThe program no longer exists.\n",
                    signal_name(ev.signal).c_str(), signal_description(ev.signal).c_str());
    }
    drop_attachment();
    return true;
}

const Session::UserBreakpoint* Session::user_breakpoint_of(int lib_id) const {
    for (const auto& b : m_user_bps) {
        if (b.lib_id == lib_id) {
            return &b;
        }
    }
    return nullptr;
}

void Session::report_stop(const xproc::StopEvent& ev) {
    if (ev.kind == xproc::StopKind::exited || ev.kind == xproc::StopKind::killed) {
        report_exit(ev);
        return;
    }
    note_threads();
    if (ev.tid != m_current && m_att->thread(ev.tid) != nullptr) {
        m_current = ev.tid;
        std::printf("[Switching to %s]\n", target_id(ev.tid).c_str());
    }
    const bool threaded = m_att->threads().size() > 1;
    const std::string who =
        threaded ? "Thread " + std::to_string(thread_number(ev.tid)) + " \"" + thread_name(ev.tid) + "\""
                 : std::string();
    auto regs = m_att->registers(ev.tid);
    const std::uint64_t pc = regs ? regs->pc() : 0;
    switch (ev.kind) {
        case xproc::StopKind::breakpoint: {
            const xproc::Breakpoint* b =
                ev.breakpoints.empty() ? nullptr : m_att->breakpoints().find(ev.breakpoints[0]);
            const UserBreakpoint* ub =
                ev.breakpoints.empty() ? nullptr : user_breakpoint_of(ev.breakpoints[0]);
            const bool temp = (b != nullptr && b->temporary) || (ub != nullptr && b == nullptr);
            const std::string label = std::string(temp ? "Temporary breakpoint " : "Breakpoint ") +
                                      (ub ? std::to_string(ub->number) : "?");
            std::printf("\n%s%s, %s\n", threaded ? (who + " hit ").c_str() : "", label.c_str(),
                        location(pc, false).c_str());
            if (temp && ub != nullptr) {
                const int n = ub->number;
                std::erase_if(m_user_bps, [n](const UserBreakpoint& u) { return u.number == n; });
            }
            break;
        }
        case xproc::StopKind::watchpoint: {
            const xproc::Breakpoint* b =
                ev.breakpoints.empty() ? nullptr : m_att->breakpoints().find(ev.breakpoints[0]);
            const UserBreakpoint* ub =
                ev.breakpoints.empty() ? nullptr : user_breakpoint_of(ev.breakpoints[0]);
            std::string kind = "Hardware watchpoint";
            if (b != nullptr && b->type == xproc::BreakpointType::watch_read) {
                kind = "Hardware read watchpoint";
            } else if (b != nullptr && b->type == xproc::BreakpointType::watch_access) {
                kind = "Hardware access (read/write) watchpoint";
            }
            std::printf("\n%s%s %d: %s\n\n", threaded ? (who + " hit ").c_str() : "", kind.c_str(),
                        ub ? ub->number : 0, ub ? ub->what.c_str() : "?");
            if (b != nullptr) {
                const unsigned len = static_cast<unsigned>(b->length);
                const auto oldv = sign_extend(b->old_value, len);
                const auto newv = sign_extend(b->new_value, len);
                if (b->type == xproc::BreakpointType::watch_read || oldv == newv) {
                    std::printf("Value = %" PRId64 "\n", newv);
                } else {
                    std::printf("Old value = %" PRId64 "\nNew value = %" PRId64 "\n", oldv, newv);
                }
            }
            std::printf("%s\n", location(pc, false).c_str());
            break;
        }
        case xproc::StopKind::signal:
            std::printf("\n%s%s %s, %s.\n%s\n", threaded ? (who + " received").c_str() : "Program received",
                        " signal", signal_name(ev.signal).c_str(), signal_description(ev.signal).c_str(),
                        location(pc, false).c_str());
            break;
        case xproc::StopKind::group_stop:
            std::printf("\n%s%s %s, %s.\n%s\n",
                        threaded ? (who + " stopped by").c_str() : "Program stopped by", " signal",
                        signal_name(ev.signal).c_str(), signal_description(ev.signal).c_str(),
                        location(pc, false).c_str());
            break;
        case xproc::StopKind::single_step:
        case xproc::StopKind::interrupted:
        case xproc::StopKind::thread_exited:
        default:
            std::printf("%s\n", location(pc, false).c_str());
            break;
    }
}

bool Session::resume_and_report(std::optional<int> signal) {
    if (m_unwinder) {
        m_unwinder->invalidate();
    }
    g_interrupted = 0;
    if (!m_att->has_queued_event()) {
        // The signal (if any) goes to the selected thread; the others get their pending ones.
        if (signal) {
            if (auto r = m_att->resume(m_current, *signal); !r) {
                return error(r.error().message());
            }
        }
        if (auto r = m_att->resume_all(); !r) {
            return error(r.error().message());
        }
    }
    for (;;) {
        auto ev = m_att->wait(50ms);
        if (!ev) {
            return error(ev.error().message());
        }
        if (*ev) {
            if ((*ev)->kind == xproc::StopKind::exited || (*ev)->kind == xproc::StopKind::killed) {
                report_exit(**ev);
                return true;
            }
            if (auto r = m_att->stop_all(); !r && !m_att->process_gone()) {
                return error(r.error().message());
            }
            if (m_att->process_gone()) {
                report_exit(*m_att->exit_event());
                return true;
            }
            report_stop(**ev);
            return true;
        }
        if (g_terminate != 0) {
            return false;  // the caller releases the target
        }
        if (g_interrupted != 0) {
            g_interrupted = 0;
            if (auto r = m_att->stop_all(); !r) {
                if (m_att->process_gone()) {
                    report_exit(*m_att->exit_event());
                    return true;
                }
                return error(r.error().message());
            }
            // gdb: the target "received" SIGINT; we stopped it without sending one.
            const bool threaded = m_att->threads().size() > 1;
            auto regs = m_att->registers(m_current);
            std::printf("\n%s received signal SIGINT, Interrupt.\n%s\n",
                        threaded ? ("Thread " + std::to_string(thread_number(m_current)) + " \"" +
                                    thread_name(m_current) + "\"")
                                       .c_str()
                                 : "Program",
                        regs ? location(regs->pc(), false).c_str() : "");
            return true;
        }
    }
}

bool Session::cmd_continue(std::string_view args) {
    const long n = parse_count(args, 1);
    if (n < 1) {
        return error("Invalid count: " + std::string(trim(args)));
    }
    if (!need_attached_stopped()) {
        return false;
    }
    if (n > 1) {
        // gdb: ignore the breakpoint the thread is stopped at N-1 more times.
        const xproc::TracedThread* t = m_att->thread(m_current);
        auto regs = m_att->registers(m_current);
        if (t != nullptr && t->last == xproc::StopKind::breakpoint && regs) {
            for (const auto& b : m_att->breakpoints().list()) {
                if (b.address == regs->pc() && b.type == xproc::BreakpointType::breakpoint) {
                    (void)m_att->breakpoints().set_ignore_count(b.id, static_cast<std::uint64_t>(n - 1));
                    const UserBreakpoint* ub = user_breakpoint_of(b.id);
                    announce("Will ignore next " + std::to_string(n - 1) + " crossings of breakpoint " +
                             std::to_string(ub ? ub->number : b.id) + ".  ");
                    break;
                }
            }
        }
    }
    announce("Continuing.\n");
    const bool ok = resume_and_report(std::nullopt);
    return ok;
}

bool Session::cmd_signal(std::string_view args) {
    args = trim(args);
    if (args.empty()) {
        return error("Argument required (signal number).");
    }
    const int sig = parse_signal(args);
    if (sig < 0) {
        return error(
            "Only signals 1-15 are valid as numeric signals.\nUse \"info signals\" for a list of "
            "symbolic signals.");
    }
    if (!need_attached_stopped()) {
        return false;
    }
    announce(sig == 0 ? std::string("Continuing with no signal.\n")
                      : "Continuing with signal " + signal_name(sig) + ".\n");
    return resume_and_report(sig);
}

bool Session::cmd_stepi(std::string_view args) {
    const long n = parse_count(args, 1);
    if (n < 1) {
        return error("Invalid count: " + std::string(trim(args)));
    }
    if (!need_attached_stopped()) {
        return false;
    }
    if (m_unwinder) {
        m_unwinder->invalidate();
    }
    for (long i = 0; i < n; ++i) {
        auto ev = m_att->step(m_current);
        if (!ev) {
            return error(ev.error().message());
        }
        if (ev->kind != xproc::StopKind::single_step) {
            if (ev->kind == xproc::StopKind::exited || ev->kind == xproc::StopKind::killed) {
                return report_exit(*ev);
            }
            report_stop(*ev);
            return true;
        }
        if (g_interrupted != 0 || g_terminate != 0) {
            break;
        }
    }
    auto regs = m_att->registers(m_current);
    if (!regs) {
        return error(regs.error().message());
    }
    std::printf("%s\n", location(regs->pc(), false).c_str());
    return true;
}

bool Session::run_to(pid_t tid, std::uint64_t address, std::uint64_t above_sp) {
    auto added = m_att->breakpoints().add_breakpoint(address, {.temporary = false});
    if (!added) {
        return error(added.error().message());
    }
    const int id = *added;
    bool ok = true;
    g_interrupted = 0;
    for (;;) {
        if (auto r = m_att->resume_all(); !r) {
            ok = error(r.error().message());
            break;
        }
        std::optional<xproc::StopEvent> got;
        while (!got) {
            auto ev = m_att->wait(50ms);
            if (!ev) {
                ok = error(ev.error().message());
                break;
            }
            if (*ev) {
                got = std::move(**ev);
                break;
            }
            if (g_interrupted != 0 || g_terminate != 0) {
                break;
            }
        }
        if (!got) {
            if (!ok || g_terminate != 0) {
                break;
            }
            // Ctrl-C: stop and show where we are.
            g_interrupted = 0;
            (void)m_att->stop_all();
            auto regs = m_att->registers(m_current);
            std::printf("\nProgram received signal SIGINT, Interrupt.\n%s\n",
                        regs ? location(regs->pc(), false).c_str() : "");
            break;
        }
        if (got->kind == xproc::StopKind::exited || got->kind == xproc::StopKind::killed) {
            report_exit(*got);
            return true;
        }
        if (auto r = m_att->stop_all(); !r && !m_att->process_gone()) {
            ok = error(r.error().message());
            break;
        }
        const bool ours =
            got->kind == xproc::StopKind::breakpoint &&
            std::find(got->breakpoints.begin(), got->breakpoints.end(), id) != got->breakpoints.end();
        if (ours) {
            auto regs = m_att->registers(got->tid);
            const bool done =
                got->tid == tid && regs && regs->sp() > above_sp && got->breakpoints.size() == 1;
            if (done) {
                if (got->tid != m_current) {
                    m_current = got->tid;
                }
                (void)m_att->breakpoints().remove(id);
                std::printf("%s\n", location(regs->pc(), false).c_str());
                return true;
            }
            if (got->breakpoints.size() == 1) {
                continue;  // another thread, or a deeper recursion: not the frame we wait for
            }
        }
        (void)m_att->breakpoints().remove(id);
        report_stop(*got);
        return true;
    }
    if (m_att && !m_att->process_gone()) {
        (void)m_att->breakpoints().remove(id);
    }
    return ok;
}

bool Session::cmd_nexti(std::string_view args) {
    const long n = parse_count(args, 1);
    if (n < 1) {
        return error("Invalid count: " + std::string(trim(args)));
    }
    if (!need_attached_stopped()) {
        return false;
    }
    if (m_unwinder) {
        m_unwinder->invalidate();
    }
    for (long i = 0; i < n; ++i) {
        auto before = m_att->registers(m_current);
        if (!before) {
            return error(before.error().message());
        }
        auto ev = m_att->step(m_current);
        if (!ev) {
            return error(ev.error().message());
        }
        if (ev->kind != xproc::StopKind::single_step) {
            if (ev->kind == xproc::StopKind::exited || ev->kind == xproc::StopKind::killed) {
                return report_exit(*ev);
            }
            report_stop(*ev);
            return true;
        }
        auto after = m_att->registers(m_current);
        if (!after) {
            return error(after.error().message());
        }
        // Into a call: sp went down by 8 and the word there is a return address just after the
        // instruction we stepped (a call is 2 to 15 bytes long). Run to that address.
        if (after->sp() + 8 == before->sp()) {
            auto ret = m_memory->read_value<std::uint64_t>(after->sp());
            if (ret && *ret > before->pc() && *ret - before->pc() <= 15 && after->pc() != *ret) {
                if (!run_to(m_current, *ret, after->sp())) {
                    return false;
                }
                if (!m_att || m_att->process_gone()) {
                    return true;
                }
                auto now = m_att->registers(m_current);
                if (!now || now->pc() != *ret) {
                    return true;  // stopped elsewhere (reported)
                }
                if (i + 1 == n) {
                    return true;  // run_to printed the location
                }
                continue;
            }
        }
        if (i + 1 == n) {
            std::printf("%s\n", location(after->pc(), false).c_str());
        }
        if (g_interrupted != 0 || g_terminate != 0) {
            std::printf("%s\n", location(after->pc(), false).c_str());
            break;
        }
    }
    return true;
}

bool Session::cmd_finish(std::string_view) {
    if (!need_attached_stopped()) {
        return false;
    }
    if (!m_unwinder) {
        return error("\"finish\" needs the unwinder, which could not be set up.");
    }
    m_unwinder->invalidate();
    auto frames = m_unwinder->backtrace(*m_att, m_current, 2);
    if (!frames) {
        return error(frames.error().message());
    }
    if (frames->size() < 2) {
        return error("\"finish\" not meaningful in the outermost frame.");
    }
    announce("Run till exit from " + frame_text((*frames)[0]) + "\n");
    return run_to(m_current, (*frames)[1].pc, (*frames)[0].sp);
}

std::optional<std::uint64_t> Session::breakpoint_address(std::string_view loc, std::string& err) {
    loc = trim(loc);
    if (loc.empty()) {
        if (!m_att) {
            err = "No default breakpoint location: give a function name or *ADDRESS.";
            return std::nullopt;
        }
        auto regs = m_att->registers(m_current);
        if (!regs) {
            err = regs.error().message();
            return std::nullopt;
        }
        return regs->pc();
    }
    if (loc.front() == '*') {
        auto v = eval(loc.substr(1));
        if (!v) {
            err = v.error();
            return std::nullopt;
        }
        return v->as_address();
    }
    const auto addr = symbol_address(loc);
    if (!addr) {
        err = "Function \"" + std::string(loc) + "\" not defined.";
        return std::nullopt;
    }
    return skip_prologue(*m_memory, *addr);
}

bool Session::add_breakpoint(std::string_view args, bool temporary, bool hardware) {
    if (!need_attached_stopped()) {
        return false;
    }
    std::string err;
    const auto address = breakpoint_address(args, err);
    if (!address) {
        return error(err);
    }
    xproc::BreakpointOptions opts;
    opts.temporary = temporary;
    opts.hardware_only = hardware;
    auto id = m_att->breakpoints().add_breakpoint(*address, opts);
    if (!id) {
        return error(id.error().message());
    }
    UserBreakpoint ub;
    ub.number = m_next_bp++;
    ub.lib_id = *id;
    ub.address = *address;
    ub.hardware_requested = hardware;
    m_user_bps.push_back(ub);
    std::printf(
        "%s %d at %s\n",
        temporary ? "Temporary breakpoint" : (hardware ? "Hardware assisted breakpoint" : "Breakpoint"),
        ub.number, hex(*address).c_str());
    return true;
}

bool Session::cmd_break(std::string_view args) {
    return add_breakpoint(args, false, false);
}
bool Session::cmd_tbreak(std::string_view args) {
    return add_breakpoint(args, true, false);
}
bool Session::cmd_hbreak(std::string_view args) {
    return add_breakpoint(args, false, true);
}

bool Session::add_watchpoint(std::string_view args, int type) {
    args = trim(args);
    if (args.empty()) {
        return error("Argument required (expression to compute).");
    }
    if (!need_attached_stopped()) {
        return false;
    }
    // What to watch: a symbol (its size from the symbol table), *ADDR or {TYPE}ADDR / *(TYPE *)ADDR.
    std::uint64_t address = 0;
    std::size_t length = 0;
    std::string_view text = args;
    if (text.front() == '{') {
        const auto close = text.find('}');
        if (close == std::string_view::npos) {
            return error("A syntax error in expression, near `" + std::string(text) + "'.");
        }
        auto type = find_ctype(text.substr(1, close - 1));
        if (!type) {
            return error("No symbol \"" + std::string(text.substr(1, close - 1)) + "\" in current context.");
        }
        auto v = eval(text.substr(close + 1));
        if (!v) {
            return error(v.error());
        }
        address = v->as_address();
        length = type->size;
    } else if (text.front() == '*') {
        std::string_view rest = trim(text.substr(1));
        length = 8;
        if (rest.starts_with("(")) {
            const auto close = rest.find(')');
            std::string_view cast =
                close == std::string_view::npos ? std::string_view() : trim(rest.substr(1, close - 1));
            if (cast.ends_with("*")) {
                auto type = find_ctype(trim(cast.substr(0, cast.size() - 1)));
                if (type) {
                    length = type->size;
                    rest = rest.substr(close + 1);
                }
            }
        }
        auto v = eval(rest);
        if (!v) {
            return error(v.error());
        }
        address = v->as_address();
    } else {
        if (!m_symbols) {
            return error("No symbol table is loaded.");
        }
        auto all = m_symbols->lookup_all(text);
        if (all.empty()) {
            return error("No symbol \"" + std::string(text) + "\" in current context.");
        }
        address = all.front().address;
        length = all.front().size;
        if (length != 1 && length != 2 && length != 4 && length != 8) {
            return error("'" + std::string(text) + "' has " + std::to_string(length) +
                         " bytes; watch {TYPE}ADDRESS or *(TYPE *)ADDRESS with a 1, 2, 4 or 8-byte TYPE.");
        }
    }
    const auto bt = type == 0   ? xproc::BreakpointType::watch_write
                    : type == 1 ? xproc::BreakpointType::watch_read
                                : xproc::BreakpointType::watch_access;
    auto id = m_att->breakpoints().add_watchpoint(address, length, bt);
    if (!id) {
        return error(id.error().message());
    }
    UserBreakpoint ub;
    ub.number = m_next_bp++;
    ub.lib_id = *id;
    ub.address = address;
    ub.what = std::string(args);
    m_user_bps.push_back(ub);
    const char* kind = type == 0   ? "Hardware watchpoint"
                       : type == 1 ? "Hardware read watchpoint"
                                   : "Hardware access (read/write) watchpoint";
    std::printf("%s %d: %s\n", kind, ub.number, ub.what.c_str());
    return true;
}

bool Session::cmd_watch(std::string_view args) {
    return add_watchpoint(args, 0);
}
bool Session::cmd_rwatch(std::string_view args) {
    return add_watchpoint(args, 1);
}
bool Session::cmd_awatch(std::string_view args) {
    return add_watchpoint(args, 2);
}

bool Session::cmd_delete(std::string_view args) {
    std::string_view rest = trim(args);
    if (rest.starts_with("breakpoints")) {
        rest = trim(rest.substr(11));
    }
    if (!m_att) {
        if (rest.empty()) {
            return true;
        }
        return error("No breakpoint number " + std::string(next_word(rest)) + ".");
    }
    if (rest.empty()) {
        for (const auto& b : m_user_bps) {
            (void)m_att->breakpoints().remove(b.lib_id);
        }
        m_user_bps.clear();
        return true;
    }
    bool ok = true;
    while (!rest.empty()) {
        const std::string_view word = next_word(rest);
        const long n = parse_count(word, -1);
        auto it = std::find_if(m_user_bps.begin(), m_user_bps.end(),
                               [n](const UserBreakpoint& b) { return b.number == n; });
        if (n <= 0) {
            ok = error(
                "Convenience variable must have integer value.\nArgs must be numbers or '$' variables.");
            continue;
        }
        if (it == m_user_bps.end()) {
            ok = error("No breakpoint number " + std::to_string(n) + ".");
            continue;
        }
        if (auto r = m_att->breakpoints().remove(it->lib_id); !r) {
            ok = error(r.error().message());
        }
        m_user_bps.erase(it);
    }
    return ok;
}

bool Session::cmd_ignore(std::string_view args) {
    std::string_view rest = trim(args);
    const std::string_view number = next_word(rest);
    if (number.empty()) {
        return error("Argument required (a breakpoint number).");
    }
    const long n = parse_count(number, -1);
    const long count = parse_count(rest, -1);
    if (rest.empty()) {
        return error("Second argument (specified ignore-count) is missing.");
    }
    if (count < 0) {
        return error("Invalid ignore count: " + std::string(rest));
    }
    auto it = std::find_if(m_user_bps.begin(), m_user_bps.end(),
                           [n](const UserBreakpoint& b) { return b.number == n; });
    if (!m_att || it == m_user_bps.end()) {
        return error("No breakpoint number " + std::string(number) + ".");
    }
    if (auto r = m_att->breakpoints().set_ignore_count(it->lib_id, static_cast<std::uint64_t>(count)); !r) {
        return error(r.error().message());
    }
    if (count == 0) {
        std::printf("Will stop next time breakpoint %ld is reached.\n", n);
    } else if (count == 1) {
        std::printf("Will ignore next crossing of breakpoint %ld.\n", n);
    } else {
        std::printf("Will ignore next %ld crossings of breakpoint %ld.\n", count, n);
    }
    return true;
}

bool Session::info_watchpoints(std::string_view args) {
    return list_breakpoints(args, true);
}

bool Session::info_breakpoints(std::string_view args) {
    return list_breakpoints(args, false);
}

bool Session::list_breakpoints(std::string_view, bool watchpoints_only) {
    struct Row {
        const UserBreakpoint* ub;
        const xproc::Breakpoint* b;
        std::string type;
    };
    std::vector<Row> rows;
    std::size_t width = 14;
    for (const auto& ub : m_user_bps) {
        const xproc::Breakpoint* b = m_att ? m_att->breakpoints().find(ub.lib_id) : nullptr;
        if (b == nullptr || (watchpoints_only && b->type == xproc::BreakpointType::breakpoint)) {
            continue;
        }
        std::string type;
        switch (b->type) {
            case xproc::BreakpointType::breakpoint:
                type = ub.hardware_requested ? "hw breakpoint" : "breakpoint";
                break;
            case xproc::BreakpointType::watch_write:
                type = "hw watchpoint";
                break;
            case xproc::BreakpointType::watch_read:
                type = "read watchpoint";
                break;
            case xproc::BreakpointType::watch_access:
                type = "acc watchpoint";
                break;
        }
        width = std::max(width, type.size());
        rows.push_back({&ub, b, type});
    }
    if (rows.empty()) {
        std::printf(watchpoints_only ? "No watchpoints.\n" : "No breakpoints or watchpoints.\n");
        return true;
    }
    std::printf("Num     %-*s Disp Enb Address            What\n", static_cast<int>(width), "Type");
    for (const auto& r : rows) {
        const bool watch = r.b->type != xproc::BreakpointType::breakpoint;
        std::string what = watch ? r.ub->what : label(r.b->address);
        if (!watch) {
            const auto l = label(r.b->address);
            what = l.empty() ? "" : l;
        }
        std::printf("%-7d %-*s %-4s %-3s %-18s %s\n", r.ub->number, static_cast<int>(width), r.type.c_str(),
                    r.b->temporary ? "del" : "keep", r.b->enabled ? "y" : "n",
                    watch ? "" : hex16(r.b->address).c_str(), what.c_str());
        if (r.b->hits > 0) {
            std::printf("\tbreakpoint already hit %" PRIu64 " time%s\n", r.b->hits,
                        r.b->hits == 1 ? "" : "s");
        }
        if (r.b->ignore_count > 0) {
            std::printf("\tignore next %" PRIu64 " hits\n", r.b->ignore_count);
        }
    }
    return true;
}

bool Session::cmd_backtrace(std::string_view args) {
    std::string_view rest = trim(args);
    if (rest == "full" || rest.starts_with("full ")) {
        rest = trim(rest.substr(4));
    }
    const long n = parse_count(rest, 0);
    if (n < 0) {
        return error("Invalid count: " + std::string(rest));
    }
    if (!need_attached_stopped()) {
        return false;
    }
    return print_backtrace(m_current, n);
}

bool Session::info_threads(std::string_view) {
    if (!need_attached_stopped()) {
        return false;
    }
    note_threads();
    struct Row {
        int number;
        pid_t tid;
        std::string id;
        std::string frame;
    };
    std::vector<Row> rows;
    std::size_t width = 9;
    for (std::size_t i = 0; i < m_thread_numbers.size(); ++i) {
        const pid_t tid = m_thread_numbers[i];
        if (m_att->thread(tid) == nullptr) {
            continue;
        }
        Row r;
        r.number = static_cast<int>(i) + 1;
        r.tid = tid;
        r.id = target_id(tid) + " \"" + thread_name(tid) + "\"";
        auto regs = m_att->registers(tid);
        r.frame = regs ? location(regs->pc(), false) : regs.error().message();
        width = std::max(width, r.id.size());
        rows.push_back(std::move(r));
    }
    std::printf("  Id   %-*s Frame \n", static_cast<int>(width), "Target Id");
    for (const auto& r : rows) {
        std::printf("%c %-4d %-*s %s\n", r.tid == m_current ? '*' : ' ', r.number, static_cast<int>(width),
                    r.id.c_str(), r.frame.c_str());
    }
    return true;
}

bool Session::cmd_thread(std::string_view args) {
    std::string_view rest = trim(args);
    if (!need_attached_stopped()) {
        return false;
    }
    if (rest.starts_with("apply")) {
        rest = trim(rest.substr(5));
        const std::string_view which = next_word(rest);
        if (which != "all") {
            return error("thread apply: only \"thread apply all COMMAND\" (e.g. thread apply all bt).");
        }
        std::string_view command = rest;
        if (command.empty()) {
            return error("Please specify a command at the end of 'thread apply all'");
        }
        note_threads();
        const pid_t saved = m_current;
        bool ok = true;
        for (std::size_t i = m_thread_numbers.size(); i-- > 0;) {
            const pid_t tid = m_thread_numbers[i];
            if (m_att == nullptr || m_att->thread(tid) == nullptr) {
                continue;
            }
            std::printf("\nThread %zu (%s \"%s\"):\n", i + 1, target_id(tid).c_str(),
                        thread_name(tid).c_str());
            m_current = tid;
            ok = execute(command) && ok;
            if (g_interrupted != 0) {
                break;
            }
        }
        if (m_att != nullptr && m_att->thread(saved) != nullptr) {
            m_current = saved;
        }
        return ok;
    }
    if (rest.empty()) {
        std::printf("[Current thread is %d (%s)]\n", thread_number(m_current), target_id(m_current).c_str());
        return true;
    }
    const long n = parse_count(rest, -1);
    if (n <= 0 || static_cast<std::size_t>(n) > m_thread_numbers.size() ||
        m_att->thread(m_thread_numbers[static_cast<std::size_t>(n - 1)]) == nullptr) {
        return error("Invalid thread ID: " + std::string(rest));
    }
    m_current = m_thread_numbers[static_cast<std::size_t>(n - 1)];
    std::printf("[Switching to thread %ld (%s)]\n", n, target_id(m_current).c_str());
    auto regs = m_att->registers(m_current);
    if (regs) {
        std::printf("#0  %s\n", location(regs->pc(), false).c_str());
    }
    return true;
}

bool Session::info_registers(std::string_view args, bool all) {
    if (!need_attached_stopped()) {
        return false;
    }
    auto regs = m_att->registers(m_current);
    if (!regs) {
        return error(regs.error().message());
    }
    const RegisterView view(*regs, read_extended_state(m_current));
    const Labeler lab = labeler();
    auto show = [&](const std::string& name) {
        if (const auto v = view.get(name)) {
            std::printf("%s\n", register_line(*v, lab, m_print).c_str());
        } else {
            std::printf("%-15s<unavailable>\n", name.c_str());
        }
    };
    std::string_view rest = trim(args);
    if (rest.empty()) {
        // gdb's default: the general group; info all-registers: the "all" group.
        const auto names = view.group(all ? "all" : "general");
        for (const auto& name : names.value()) {
            show(name);
        }
        return true;
    }
    // As gdb's registers_info: each word is a register, else a register group, in turn.
    while (!rest.empty()) {
        std::string_view name = next_word(rest);
        if (name.starts_with("$")) {
            name.remove_prefix(1);
        }
        if (view.exists(name)) {
            show(std::string(name));
        } else if (const auto group = view.group(name)) {
            for (const auto& n : *group) {
                show(n);
            }
        } else {
            return error("Invalid register `" + std::string(name) + "'");
        }
    }
    return true;
}

}  // namespace xpeek

namespace xpeek {

std::expected<Value, std::string> Session::register_value(std::string_view name) {
    if (name == "_" && m_next_address) {
        Value v;
        v.kind = Value::Kind::address;
        v.integer = static_cast<std::int64_t>(*m_next_address);
        v.size = 8;
        v.is_unsigned = true;
        return v;
    }
    // The value history: $ and $N count from the first value, $$ and $$N back from the last.
    const bool back = name.starts_with("$");
    const std::string_view digits = back ? name.substr(1) : name;
    if (std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        std::size_t n = back && digits.empty() ? 1 : 0;
        if (!digits.empty()) {
            auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
            if (ec != std::errc{}) {
                n = ~std::size_t{0};
            }
        }
        return history_value(n, back, std::string(digits.empty() && back ? "1" : digits));
    }
    if (is_register_name(name)) {
        return register_as_value(name);
    }
    return convenience_value(name);
}

std::expected<Value, std::string> Session::history_value(std::size_t n, bool back, const std::string& text) {
    // gdb's access_value_history: "$" is $$0 and $0, the last value.
    if (n == 0) {
        if (m_history.empty()) {
            return std::unexpected(std::string("The history is empty."));
        }
        return m_history.back();
    }
    if (back) {
        if (n >= m_history.size()) {
            return std::unexpected("History does not go back to $$" + text + ".");
        }
        return m_history[m_history.size() - 1 - n];
    }
    if (n > m_history.size()) {
        return std::unexpected("History has not yet reached $" + text + ".");
    }
    return m_history[n - 1];
}

std::expected<Value, std::string> Session::convenience_value(std::string_view name) {
    if (auto it = m_convenience.find(name); it != m_convenience.end()) {
        return it->second;
    }
    // gdb: an unset convenience variable is void: print shows "void", nothing else takes it.
    Value v;
    v.kind = Value::Kind::void_value;
    v.text = std::string(name);
    return v;
}

bool Session::set_dollar(std::string_view args) {
    const auto eq = args.find('=');
    if (eq == std::string_view::npos) {
        return error("set $NAME = VALUE: missing '='.");
    }
    const std::string_view name = trim(args.substr(1, eq - 1));
    const auto* desc = xproc::find_register(name);
    if (desc == nullptr && is_register_name(name)) {
        return error("$" + std::string(name) + ": xpeek cannot set this register.");
    }
    // A convenience variable takes any value ($xmm0 too); a register a number.
    auto value = desc == nullptr ? evaluate_any(args.substr(eq + 1), *this) : eval(args.substr(eq + 1));
    if (!value) {
        return error(value.error());
    }
    if (desc == nullptr) {
        m_convenience[std::string(name)] = *value;
        return true;
    }
    if (!need_attached_stopped()) {
        return false;
    }
    auto regs = m_att->registers(m_current);
    if (!regs) {
        return error(regs.error().message());
    }
    std::uint64_t bits = value->as_address();
    if (value->kind == Value::Kind::floating) {
        bits = static_cast<std::uint64_t>(static_cast<std::int64_t>(value->floating));
    }
    if (!regs->set(*desc, bits)) {
        return error("$" + std::string(name) + ": only registers of 8 bytes or less can be set.");
    }
    if (auto r = m_att->set_registers(*regs); !r) {
        return error(r.error().message());
    }
    if (m_unwinder) {
        m_unwinder->invalidate();
    }
    return true;
}

bool Session::cmd_print(std::string_view args) {
    args = trim(args);
    char fmt = 0;
    if (args.starts_with("/")) {
        std::string_view rest = args.substr(1);
        const std::string_view f = next_word(rest);
        if (f.size() != 1 || std::string_view("xduotcazf").find(f[0]) == std::string_view::npos) {
            return error("Undefined output format \"" + std::string(f) + "\".");
        }
        fmt = f[0];
        args = rest;
    }
    // print alone shows the last value again (and records it again, as gdb does).
    auto value = args.empty() ? history_value(0, false, "") : evaluate_any(args, *this);
    if (!value) {
        return error(value.error());
    }
    auto text = format_value(*value, fmt);
    if (!text) {
        return error(text.error());
    }
    m_history.push_back(*value);
    std::printf("$%zu = %s\n", m_history.size(), text->c_str());
    return true;
}

std::expected<std::string, std::string> Session::format_value(const Value& v, char fmt) {
    const Labeler lab = labeler();
    if (v.kind == Value::Kind::void_value) {
        return std::string("void");
    }
    if (v.kind == Value::Kind::string) {
        return "\"" + v.text + "\"";
    }
    if (v.kind == Value::Kind::raw) {
        if (v.type == Value::Type::vec128 || v.type == Value::Type::vec256 || v.type == Value::Type::vec512) {
            if (!vector_format_supported(fmt)) {
                return std::unexpected(
                    "print/" + std::string(1, fmt) +
                    " of a vector register: xpeek prints vectors in formats x z o t d u only.");
            }
            return format_vector(v.bytes,
                                 v.type == Value::Type::vec128   ? VectorUnion::vec128
                                 : v.type == Value::Type::vec256 ? VectorUnion::vec256
                                                                 : VectorUnion::vec512,
                                 fmt, m_print);
        }
        if (v.type == Value::Type::i387_ext && (fmt == 0 || fmt == 'f')) {
            return format_i387_ext(v.bytes);
        }
        if (fmt == 0 || std::string_view("xzotdu").find(fmt) != std::string_view::npos) {
            // x z o t d u print the raw bits; uint128 prints unsigned by default.
            return format_integer_bytes(v.bytes, fmt, false);
        }
        // c and a convert the value (an x87 value is a number), as gdb does.
        long double ld = 0;
        std::memcpy(&ld, v.bytes.data(), std::min<std::size_t>(v.bytes.size(), 10));
        const auto n = static_cast<std::int64_t>(ld);
        return fmt == 'c' ? format_char(n) : format_address(static_cast<std::uint64_t>(n), lab);
    }
    const unsigned size = v.size == 0 ? 8 : v.size;
    const std::uint64_t mask = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
    std::uint64_t bits = v.as_address() & mask;
    if (v.kind == Value::Kind::floating) {
        if (fmt == 0 || fmt == 'f') {
            return size == 4 ? format_float(static_cast<float>(v.floating)) : format_double(v.floating);
        }
        if (fmt == 'c' || fmt == 'a') {
            const auto n = static_cast<std::int64_t>(v.floating);
            return fmt == 'c' ? format_char(n) : format_address(static_cast<std::uint64_t>(n), lab);
        }
        // x z o t d u print a floating value's bits (gdb 8.1 and later): 1.5 is 0x3ff8000000000000.
        if (size == 4) {
            const auto f = static_cast<float>(v.floating);
            std::uint32_t u = 0;
            std::memcpy(&u, &f, sizeof u);
            bits = u;
        } else {
            std::memcpy(&bits, &v.floating, sizeof bits);
        }
    }
    std::byte raw[8];
    for (unsigned i = 0; i < 8; ++i) {
        raw[i] = static_cast<std::byte>((bits >> (8 * i)) & 0xff);
    }
    const std::span<const std::byte> bytes(raw, std::min(size, 8u));
    switch (fmt) {
        case 'x':
        case 'z':
        case 'o':
        case 't':
        case 'd':
        case 'u':
            return format_integer_bytes(bytes, fmt, false);
        case 'c':
            return format_char(sign_extend(bits, 1));
        case 'a':
            return format_address(bits, lab);
        case 'f':
            // An integer the size of a float or a double is read as one (gdb's
            // float_type_from_length); other sizes print as integers.
            if (size == 4) {
                float f = 0;
                std::memcpy(&f, raw, sizeof f);
                return format_float(f);
            }
            if (size == 8) {
                double d = 0;
                std::memcpy(&d, raw, sizeof d);
                return format_double(d);
            }
            break;
        default:
            break;
    }
    switch (v.type) {
        case Value::Type::code_pointer:
            return "(void (*)()) " + format_address(bits, lab);
        case Value::Type::eflags:
            return format_eflags(bits);
        case Value::Type::mxcsr:
            return format_mxcsr(bits);
        default:
            break;
    }
    if (v.kind == Value::Kind::address) {
        return "(void *) " + format_address(bits, lab);
    }
    return v.is_unsigned ? std::to_string(bits) : std::to_string(sign_extend(bits, size));
}

}  // namespace xpeek
