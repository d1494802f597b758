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
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "link_map.hpp"
#include "session.hpp"
#include "text.hpp"
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

/// gdb's eflags: "[ PF ZF IF ]" (bits in ascending order).
std::string eflags_text(std::uint64_t v) {
    static constexpr struct {
        int bit;
        const char* name;
    } FLAGS[] = {{0, "CF"},  {2, "PF"},   {4, "AF"},   {6, "ZF"},  {7, "SF"},  {8, "TF"},
                 {9, "IF"},  {10, "DF"},  {11, "OF"},  {14, "NT"}, {16, "RF"}, {17, "VM"},
                 {18, "AC"}, {19, "VIF"}, {20, "VIP"}, {21, "ID"}};
    std::string s = "[ ";
    for (const auto& f : FLAGS) {
        if ((v >> f.bit) & 1u) {
            s += f.name;
            s += ' ';
        }
    }
    s += "]";
    return s;
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

bool Session::attach_to(pid_t pid, bool announce) {
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
    if (announce) {
        std::printf("Attaching to process %d\n", static_cast<int>(pid));
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
    return "#" + std::to_string(f.index) + "  " + hex16(f.pc) + " in " + name + " ()" + from;
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
            std::printf("(More stack frames follow...)\n");
            break;
        }
        if (g_interrupted != 0) {
            return error("Quit");
        }
        if (f.signal_frame) {
            std::printf("#%u  <signal handler called>\n", f.index);
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

std::expected<Value, std::string> Session::register_as_value(const xproc::RegisterDesc& desc) {
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
    auto v = regs->get(desc);
    if (!v) {
        return std::unexpected("$" + std::string(desc.name) + " cannot be used in an expression (" +
                               std::to_string(desc.size) + " bytes)");
    }
    Value out;
    out.size = desc.size;
    if (desc.kind == xproc::RegisterKind::code_pointer || desc.kind == xproc::RegisterKind::data_pointer) {
        out.kind = Value::Kind::address;
        out.is_unsigned = true;
        out.integer = static_cast<std::int64_t>(*v);
    } else {
        out.kind = Value::Kind::integer;
        out.integer = desc.kind == xproc::RegisterKind::integer ? sign_extend(*v, desc.size)
                                                                : static_cast<std::int64_t>(*v);
        out.is_unsigned = desc.kind != xproc::RegisterKind::integer;
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
    std::string exe;
    if (m_memory) {
        exe = m_memory->process().exe().value_or("");
    }
    std::printf("Detaching from program: %s, process %d\n", exe.c_str(), static_cast<int>(pid));
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
                    std::printf("Will ignore next %ld crossings of breakpoint %d.  ", n - 1,
                                ub ? ub->number : b.id);
                    break;
                }
            }
        }
    }
    std::printf("Continuing.\n");
    std::fflush(stdout);
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
    if (sig == 0) {
        std::printf("Continuing with no signal.\n");
    } else {
        std::printf("Continuing with signal %s.\n", signal_name(sig).c_str());
    }
    std::fflush(stdout);
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
    std::printf("Run till exit from %s\n", frame_text((*frames)[0]).c_str());
    std::fflush(stdout);
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

bool Session::info_breakpoints(std::string_view) {
    if (!m_att || m_user_bps.empty()) {
        std::printf("No breakpoints or watchpoints.\n");
        return true;
    }
    struct Row {
        const UserBreakpoint* ub;
        const xproc::Breakpoint* b;
        std::string type;
    };
    std::vector<Row> rows;
    std::size_t width = 14;
    for (const auto& ub : m_user_bps) {
        const xproc::Breakpoint* b = m_att->breakpoints().find(ub.lib_id);
        if (b == nullptr) {
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
            std::printf("\tWill ignore next %" PRIu64 " crossings of breakpoint.\n", r.b->ignore_count);
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
    std::vector<const xproc::RegisterDesc*> list;
    std::string_view rest = trim(args);
    if (rest.empty()) {
        for (const auto& d : xproc::register_table()) {
            if (d.general || (all && d.in_fp_set)) {
                list.push_back(&d);
            }
        }
    } else {
        while (!rest.empty()) {
            std::string_view name = next_word(rest);
            if (name.starts_with("$")) {
                name.remove_prefix(1);
            }
            const auto* d = xproc::find_register(name);
            if (d == nullptr) {
                return error("Invalid register `" + std::string(name) + "'");
            }
            list.push_back(d);
        }
    }
    for (const auto* d : list) {
        const auto bytes = regs->bytes(*d);
        if (bytes.empty()) {
            std::printf("%-15s<unavailable>\n", std::string(d->name).c_str());
            continue;
        }
        std::string raw;
        std::string natural;
        if (d->size <= 8) {
            const std::uint64_t v = *regs->get(*d);
            raw = hex(v);
            switch (d->kind) {
                case xproc::RegisterKind::code_pointer:
                    natural = format_address(v, labeler());
                    break;
                case xproc::RegisterKind::data_pointer:
                    natural = hex(v);
                    break;
                case xproc::RegisterKind::flags:
                    natural = eflags_text(v);
                    break;
                case xproc::RegisterKind::segment:
                    natural = std::to_string(v);
                    break;
                default:
                    natural = std::to_string(sign_extend(v, d->size));
                    break;
            }
        } else if (d->kind == xproc::RegisterKind::x87) {
            long double ld = 0;
            std::memcpy(&ld, bytes.data(), 10);
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.19Lg", ld);
            std::uint64_t lo = 0;
            std::uint16_t hi = 0;
            std::memcpy(&lo, bytes.data(), 8);
            std::memcpy(&hi, bytes.data() + 8, 2);
            char rawbuf[48];
            std::snprintf(rawbuf, sizeof rawbuf, "(raw 0x%04x%016" PRIx64 ")", hi, lo);
            raw = buf;
            natural = rawbuf;
        } else {
            // 16-byte vector: gdb prints the union; we print the 128-bit value and its two halves.
            std::uint64_t lo = 0;
            std::uint64_t hi = 0;
            std::memcpy(&lo, bytes.data(), 8);
            std::memcpy(&hi, bytes.data() + 8, 8);
            char buf[96];
            std::snprintf(buf, sizeof buf, "{v2_int64 = {0x%" PRIx64 ", 0x%" PRIx64 "}}", lo, hi);
            raw = buf;
        }
        if (natural.empty()) {
            std::printf("%-15s%s\n", std::string(d->name).c_str(), raw.c_str());
        } else {
            std::printf("%-15s%-19s %s\n", std::string(d->name).c_str(), raw.c_str(), natural.c_str());
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
    // Value history: $ (last), $N.
    if (name.empty() || std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        if (m_history.empty()) {
            return std::unexpected(std::string("History is empty."));
        }
        const std::size_t n = name.empty() ? m_history.size() : std::stoul(std::string(name));
        if (n == 0 || n > m_history.size()) {
            return std::unexpected("History has not yet reached $" + std::string(name) + ".");
        }
        return m_history[n - 1];
    }
    if (const auto* desc = xproc::find_register(name); desc != nullptr) {
        return register_as_value(*desc);
    }
    if (auto it = m_convenience.find(name); it != m_convenience.end()) {
        return it->second;
    }
    // gdb: an unset convenience variable is void; an expression cannot use it.
    return std::unexpected("$" + std::string(name) + " is void (not a register and never set).");
}

bool Session::set_dollar(std::string_view args) {
    const auto eq = args.find('=');
    if (eq == std::string_view::npos) {
        return error("set $NAME = VALUE: missing '='.");
    }
    const std::string_view name = trim(args.substr(1, eq - 1));
    auto value = eval(args.substr(eq + 1));
    if (!value) {
        return error(value.error());
    }
    const auto* desc = xproc::find_register(name);
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
        if (f.size() != 1 || std::string_view("xduotcaz").find(f[0]) == std::string_view::npos) {
            return error("Undefined output format \"" + std::string(f) + "\".");
        }
        fmt = f[0];
        args = rest;
    }
    if (args.empty()) {
        if (m_history.empty()) {
            return error("History is empty.");
        }
        args = "$";
    }
    // A register alone prints with its gdb type: (void (*)()) for $pc, (void *) for $sp...
    const xproc::RegisterDesc* desc = nullptr;
    if (args.size() > 1 && args.front() == '$') {
        desc = xproc::find_register(args.substr(1));
    }
    auto value = eval(args);
    if (!value) {
        return error(value.error());
    }
    m_history.push_back(*value);
    const std::string number = "$" + std::to_string(m_history.size()) + " = ";
    const Value& v = *value;
    const std::uint64_t bits = v.as_address();
    const unsigned size = v.size == 0 ? 8 : v.size;
    const std::uint64_t mask = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
    std::string text;
    switch (fmt) {
        case 'x':
            text = v.kind == Value::Kind::floating ? hex(static_cast<std::uint64_t>(v.floating))
                                                   : hex(bits & mask);
            break;
        case 'z': {
            char buf[40];
            std::snprintf(buf, sizeof buf, "0x%0*" PRIx64, static_cast<int>(size * 2), bits & mask);
            text = buf;
            break;
        }
        case 'o': {
            char buf[40];
            std::snprintf(buf, sizeof buf, "0%" PRIo64, bits & mask);
            text = (bits & mask) == 0 ? "0" : buf;
            break;
        }
        case 't': {
            std::uint64_t x = bits & mask;
            if (x == 0) {
                text = "0";
            }
            while (x != 0) {
                text.insert(text.begin(), static_cast<char>('0' + (x & 1)));
                x >>= 1;
            }
            break;
        }
        case 'd':
            text = std::to_string(sign_extend(bits, size));
            break;
        case 'u':
            text = std::to_string(bits & mask);
            break;
        case 'c':
            text = format_char(sign_extend(bits, 1));
            break;
        case 'a':
            text = format_address(bits, labeler());
            break;
        default:
            if (desc != nullptr && desc->kind == xproc::RegisterKind::code_pointer) {
                text = "(void (*)()) " + format_address(bits, labeler());
            } else if (desc != nullptr && desc->kind == xproc::RegisterKind::data_pointer) {
                text = "(void *) " + hex(bits);
            } else if (desc != nullptr && desc->kind == xproc::RegisterKind::flags) {
                text = eflags_text(bits);
            } else if (v.kind == Value::Kind::floating) {
                text = format_double(v.floating);
            } else if (v.kind == Value::Kind::string) {
                text = "\"" + v.text + "\"";
            } else if (v.kind == Value::Kind::address) {
                const std::string l = label(bits);
                text = "(void *) " + hex(bits) + (l.empty() ? "" : " " + l);
            } else if (v.is_unsigned) {
                text = std::to_string(bits & mask);
            } else {
                text = std::to_string(sign_extend(bits, size));
            }
            break;
    }
    std::printf("%s%s\n", number.c_str(), text.c_str());
    return true;
}

}  // namespace xpeek
