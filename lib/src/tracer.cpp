// SPDX-License-Identifier: MIT
#include "xproc/tracer.hpp"

#include <sched.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

#include "xproc/access.hpp"
#include "xproc/breakpoints.hpp"
#include "xproc/fd.hpp"
#include "xproc/process.hpp"

namespace xproc {

namespace {

using Clock = std::chrono::steady_clock;

bool is_job_control_signal(int sig) noexcept {
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

std::string tid_text(pid_t tid) {
    return std::to_string(tid);
}

/// The thread is gone, a zombie or dead (state Z or X), or has PF_EXITING set.
bool thread_exiting(pid_t pid, pid_t tid) {
    auto text =
        read_file(("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat").c_str());
    if (!text) {
        return true;
    }
    auto st = parse_proc_stat(*text);
    if (!st) {
        return true;
    }
    constexpr unsigned PF_EXITING = 0x00000004;
    return st->state == 'Z' || st->state == 'X' || (st->flags & PF_EXITING) != 0;
}

/// The thread's tracer (TracerPid in /proc/PID/task/TID/status) is this thread: the kernel
/// attached it for us, as a clone of a thread we had already seized (PTRACE_O_TRACECLONE).
bool traced_by_us(pid_t pid, pid_t tid) {
    auto text =
        read_file(("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status").c_str());
    if (!text) {
        return false;
    }
    const auto at = text->find("\nTracerPid:");
    if (at == std::string::npos) {
        return false;
    }
    const long tracer = std::strtol(text->c_str() + at + 11, nullptr, 10);
    return tracer == static_cast<long>(::gettid());
}

/// Polling back-off: a few rounds of yield (a stop usually arrives within microseconds),
/// then sleeps growing from 20 µs to 1 ms.
class Backoff {
  public:
    void pause() noexcept {
        if (m_round < 32) {
            ++m_round;
            ::sched_yield();
            return;
        }
        timespec ts{0, m_sleep_ns};
        ::nanosleep(&ts, nullptr);
        m_sleep_ns = std::min<long>(m_sleep_ns * 2, 1'000'000);
    }
    void reset() noexcept {
        m_round = 0;
        m_sleep_ns = 20'000;
    }

  private:
    int m_round = 0;
    long m_sleep_ns = 20'000;
};

}  // namespace

std::string_view to_string(StopKind kind) noexcept {
    switch (kind) {
        case StopKind::interrupted:
            return "interrupted";
        case StopKind::group_stop:
            return "group-stop";
        case StopKind::signal:
            return "signal";
        case StopKind::breakpoint:
            return "breakpoint";
        case StopKind::watchpoint:
            return "watchpoint";
        case StopKind::single_step:
            return "single-step";
        case StopKind::thread_exited:
            return "thread-exited";
        case StopKind::exited:
            return "exited";
        case StopKind::killed:
            return "killed";
    }
    return "?";
}

Attachment::Attachment(pid_t pid) : m_pid(pid) {}

Attachment::~Attachment() {
    (void)detach();
}

Result<std::unique_ptr<Attachment>> Attachment::seize(pid_t pid, AttachOptions options) {
    if (pid <= 0) {
        return fail(Error::make(ErrorKind::invalid_argument, "ptrace(PTRACE_SEIZE)",
                                "pid must be a positive process id", pid));
    }
    if (pid == ::getpid()) {
        return fail(Error::make(ErrorKind::invalid_argument, "ptrace(PTRACE_SEIZE)",
                                "a process cannot trace itself", pid)
                        .with_hint("run the tool from another process"));
    }
    auto proc = Process::open(pid);
    if (!proc) {
        return fail(std::move(proc.error()));
    }
    auto st = proc->stat();
    if (!st) {
        return fail(std::move(st.error()));
    }
    if (st->is_kernel_thread()) {
        return fail(Error::make(ErrorKind::kernel_thread, "ptrace(PTRACE_SEIZE)",
                                "a kernel thread cannot be traced", pid));
    }
    if (st->state == 'Z' || st->state == 'X') {
        return fail(Error::make(ErrorKind::zombie, "ptrace(PTRACE_SEIZE)",
                                "the process has exited (zombie): nothing left to trace", pid));
    }
    auto mem = RemoteMemory::open(std::move(*proc));
    if (!mem) {
        return fail(std::move(mem.error()));
    }
    std::unique_ptr<Attachment> att(new Attachment(pid));
    att->m_options = options;
    att->m_was_stopped = st->state == 'T';
    att->m_memory = std::make_unique<RemoteMemory>(std::move(*mem));
    att->m_breakpoints = std::make_unique<Breakpoints>(*att);
    if (auto r = att->seize_all(); !r) {
        return fail(std::move(r.error()));
    }
    if (options.stop) {
        if (auto r = att->stop_all(); !r) {
            return fail(std::move(r.error()));
        }
    }
    return att;
}

Result<void> Attachment::seize_thread(pid_t tid) {
    // EXITKILL off: if we die, the target must go on. TRACECLONE: follow new threads.
    if (::ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACECLONE)) != 0) {
        const int err = errno;
        if (err == EPERM || err == EACCES) {
            return fail(explain_access(m_pid, AccessMode::ptrace_attach)
                            .to_error("ptrace(PTRACE_SEIZE, " + tid_text(tid) + ")", m_pid, err));
        }
        return fail(Error::from_errno(err, "ptrace(PTRACE_SEIZE, " + tid_text(tid) + ")", m_pid));
    }
    TracedThread t;
    t.tid = tid;
    m_threads.push_back(t);
    return {};
}

Result<void> Attachment::seize_all() {
    // Threads may be created while we seize: re-read the list until a pass finds nothing new
    // (a thread created by an already seized one is followed through PTRACE_O_TRACECLONE).
    for (int pass = 0; pass < 1000; ++pass) {
        auto tids = m_memory->process().threads();
        if (!tids) {
            return fail(std::move(tids.error()));
        }
        std::sort(tids->begin(), tids->end(), [this](pid_t a, pid_t b) {
            // leader first, then ascending (creation order, mostly)
            if (a == m_pid || b == m_pid) {
                return a == m_pid && b != m_pid;
            }
            return a < b;
        });
        bool added = false;
        for (pid_t tid : *tids) {
            if (find(tid) != nullptr ||
                std::find(m_new_threads.begin(), m_new_threads.end(), tid) != m_new_threads.end()) {
                continue;
            }
            auto r = seize_thread(tid);
            if (!r && tid != m_pid && r.error().errno_value == EPERM && traced_by_us(m_pid, tid)) {
                // Created by a thread seized in an earlier pass and attached by the kernel: its
                // clone event and first stop (PTRACE_EVENT_STOP) are still to be collected.
                TracedThread child;
                child.tid = tid;
                m_threads.push_back(child);
                m_new_threads.push_back(tid);
                added = true;
                continue;
            }
            if (!r) {
                if (tid != m_pid && (r.error().errno_value == ESRCH || thread_exiting(m_pid, tid))) {
                    // The thread exited between the listing and the seize; a thread that is
                    // exiting refuses PTRACE_SEIZE with EPERM (the kernel's PF_EXITING check).
                    continue;
                }
                return r;
            }
            added = true;
        }
        if (!added) {
            return {};
        }
    }
    return fail(Error::make(ErrorKind::os, "ptrace(PTRACE_SEIZE)",
                            "threads keep appearing faster than they can be seized", m_pid));
}

TracedThread* Attachment::find(pid_t tid) noexcept {
    for (auto& t : m_threads) {
        if (t.tid == tid) {
            return &t;
        }
    }
    return nullptr;
}

const TracedThread* Attachment::thread(pid_t tid) const noexcept {
    for (const auto& t : m_threads) {
        if (t.tid == tid) {
            return &t;
        }
    }
    return nullptr;
}

bool Attachment::all_stopped() const noexcept {
    if (!m_new_threads.empty()) {
        return false;
    }
    return std::all_of(m_threads.begin(), m_threads.end(), [](const TracedThread& t) { return t.stopped; });
}

void Attachment::forget_thread(pid_t tid) {
    std::erase_if(m_threads, [tid](const TracedThread& t) { return t.tid == tid; });
    std::erase(m_new_threads, tid);
}

Result<void> Attachment::ptrace_resume(pid_t tid, int request, int signal) {
    TracedThread* t = find(tid);
    if (::ptrace(static_cast<__ptrace_request>(request), tid, nullptr,
                 reinterpret_cast<void*>(static_cast<long>(signal))) != 0) {
        const int err = errno;
        if (err == ESRCH) {
            // Killed meanwhile (SIGKILL needs no ptrace-stop): its exit is collected by a wait.
            if (t != nullptr) {
                t->stopped = false;
            }
            return {};
        }
        return fail(Error::from_errno(err,
                                      std::string(request == PTRACE_SINGLESTEP ? "ptrace(PTRACE_SINGLESTEP, "
                                                                               : "ptrace(PTRACE_CONT, ") +
                                          tid_text(tid) + ")",
                                      m_pid));
    }
    if (t != nullptr) {
        t->stopped = false;
        t->pending_signal = 0;
        t->group_stopped = false;
    }
    return {};
}

void Attachment::on_status(pid_t tid, int status, std::vector<StopEvent>& out) {
    TracedThread* t = find(tid);
    const bool is_new = std::find(m_new_threads.begin(), m_new_threads.end(), tid) != m_new_threads.end();
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        StopEvent ev;
        ev.tid = tid;
        if (tid == m_pid) {
            // The leader's end is reported after every other thread's: the process is gone.
            ev.kind = WIFEXITED(status) ? StopKind::exited : StopKind::killed;
            ev.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
            ev.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
            m_gone = ev;
            m_threads.clear();
            m_new_threads.clear();
            out.push_back(ev);
        } else {
            forget_thread(tid);
        }
        return;
    }
    if (!WIFSTOPPED(status)) {
        return;
    }
    const int sig = WSTOPSIG(status);
    const int event = status >> 16;
    if (is_new && t == nullptr) {
        // Should not happen (new threads are added to m_threads at the clone event).
        return;
    }
    if (t == nullptr) {
        return;
    }
    if (event == PTRACE_EVENT_CLONE) {
        unsigned long new_tid = 0;
        if (::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &new_tid) == 0 && new_tid != 0) {
            const auto nt = static_cast<pid_t>(new_tid);
            if (find(nt) == nullptr) {
                TracedThread child;
                child.tid = nt;
                m_threads.push_back(child);  // may reallocate: `t` is looked up again below
                m_new_threads.push_back(nt);
            }
        }
        t = find(tid);
        t->stopped = true;
        t->last = StopKind::interrupted;
        if (!m_stopping) {
            (void)ptrace_resume(tid, PTRACE_CONT, 0);
        }
        return;
    }
    if (event == PTRACE_EVENT_STOP) {
        t->stopped = true;
        if (is_new) {
            // A new thread's first stop: it inherits nothing of ours yet (debug registers).
            std::erase(m_new_threads, tid);
            t->last = StopKind::interrupted;
            (void)m_breakpoints->thread_added(tid);
            if (!m_stopping) {
                (void)ptrace_resume(tid, PTRACE_CONT, 0);
            }
            return;
        }
        if (is_job_control_signal(sig)) {
            t->last = StopKind::group_stop;
            t->group_stopped = true;
            t->pending_signal = 0;
            if (!m_stopping) {
                StopEvent ev;
                ev.tid = tid;
                ev.kind = StopKind::group_stop;
                ev.signal = sig;
                out.push_back(ev);
            }
            return;
        }
        // PTRACE_INTERRUPT's stop. Outside stop_all it is a late one (the interrupt was
        // overtaken by another stop, and the thread has been resumed since): swallow it.
        t->last = StopKind::interrupted;
        if (!m_stopping) {
            (void)ptrace_resume(tid, PTRACE_CONT, 0);
        }
        return;
    }
    if (event != 0) {
        // An event we did not ask for: go on.
        t->stopped = true;
        if (!m_stopping) {
            (void)ptrace_resume(tid, PTRACE_CONT, 0);
        }
        return;
    }
    // Signal-delivery-stop.
    t->stopped = true;
    t->last = StopKind::signal;
    t->pending_signal = sig;
    StopEvent ev;
    ev.tid = tid;
    ev.kind = StopKind::signal;
    ev.signal = sig;
    if (::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &ev.info) == 0) {
        ev.has_info = true;
    }
    if (auto it = std::find(m_inject.begin(), m_inject.end(), std::pair<pid_t, int>(tid, sig));
        it != m_inject.end()) {
        // The signal the caller asked `resume` to give this thread: deliver it, do not report it.
        m_inject.erase(it);
        if (!m_stopping) {
            (void)ptrace_resume(tid, PTRACE_CONT, sig);
        }
        return;
    }
    if (sig == SIGTRAP) {
        auto report = m_breakpoints->on_sigtrap(ev);
        t = find(tid);
        if (t == nullptr) {
            return;
        }
        if (ev.kind != StopKind::signal) {
            t->pending_signal = 0;
            t->last = ev.kind;
        }
        if (report && !*report) {
            // An ignored hit: on with the program.
            if (!m_stopping) {
                (void)resume(tid, 0);
            }
            return;
        }
    }
    out.push_back(std::move(ev));
}

Result<bool> Attachment::poll_once(std::vector<StopEvent>& out) {
    bool any = false;
    // Copy the ids: on_status may add or remove threads.
    // Start at a different thread each round, so that when several threads stop at once each
    // gets its turn to be reported first (gdb picks at random among them).
    std::vector<pid_t> tids;
    tids.reserve(m_threads.size());
    const std::size_t n = m_threads.size();
    const std::size_t first = n == 0 ? 0 : m_poll_round++ % n;
    for (std::size_t i = 0; i < n; ++i) {
        tids.push_back(m_threads[(first + i) % n].tid);
    }
    for (pid_t tid : tids) {
        if (m_gone) {
            break;
        }
        int status = 0;
        const pid_t r = ::waitpid(tid, &status, __WALL | WNOHANG);
        if (r == tid) {
            any = true;
            on_status(tid, status, out);
        } else if (r < 0 && errno == ECHILD) {
            // Not our tracee any more (exited and reaped through another path).
            if (tid == m_pid) {
                StopEvent ev;
                ev.tid = tid;
                ev.kind = StopKind::exited;
                m_gone = ev;
                m_threads.clear();
                m_new_threads.clear();
                out.push_back(ev);
                any = true;
            } else {
                forget_thread(tid);
                any = true;
            }
        }
    }
    return any;
}

Result<void> Attachment::interrupt_thread(TracedThread& t) {
    if (::ptrace(PTRACE_INTERRUPT, t.tid, nullptr, nullptr) != 0) {
        const int err = errno;
        if (err != ESRCH) {
            return fail(Error::from_errno(err, "ptrace(PTRACE_INTERRUPT, " + tid_text(t.tid) + ")", m_pid));
        }
    }
    return {};
}

Result<void> Attachment::stop_all(std::optional<std::chrono::milliseconds> timeout) {
    if (m_gone) {
        return fail(Error::make(ErrorKind::no_such_process, "stop threads", "the process has exited", m_pid));
    }
    if (m_detached) {
        return fail(Error::make(ErrorKind::invalid_argument, "stop threads", "already detached", m_pid));
    }
    struct Flag {
        bool& f;
        explicit Flag(bool& x) : f(x) { f = true; }
        ~Flag() { f = false; }
    } stopping(m_stopping);

    for (auto& t : m_threads) {
        if (!t.stopped) {
            if (auto r = interrupt_thread(t); !r) {
                return r;
            }
        }
    }
    const auto deadline = Clock::now() + timeout.value_or(m_options.timeout);
    Backoff backoff;
    std::vector<StopEvent> events;
    while (!all_stopped()) {
        events.clear();
        auto got = poll_once(events);
        for (auto& ev : events) {
            m_queued.push_back(std::move(ev));
        }
        if (m_gone) {
            return fail(Error::make(ErrorKind::no_such_process, "stop threads", "the process exited", m_pid));
        }
        if (got && *got) {
            backoff.reset();
            // A thread that reported a clone event may have a new sibling to interrupt: new
            // threads start with their own stop, nothing to do.
            continue;
        }
        if (Clock::now() > deadline) {
            std::string running;
            for (const auto& t : m_threads) {
                if (!t.stopped) {
                    running += (running.empty() ? "" : ", ") + tid_text(t.tid);
                }
            }
            return fail(Error::make(ErrorKind::os, "stop threads",
                                    "thread(s) " + running + " did not stop in time (uninterruptible sleep?)",
                                    m_pid)
                            .with_hint("retry; a thread in state D stops when its I/O completes"));
        }
        backoff.pause();
    }
    return {};
}

Result<void> Attachment::resume(pid_t tid, std::optional<int> signal) {
    TracedThread* t = find(tid);
    if (t == nullptr) {
        return fail(Error::make(ErrorKind::invalid_argument, "resume",
                                "thread " + tid_text(tid) + " is not traced", m_pid));
    }
    if (!t->stopped) {
        return {};
    }
    auto over = m_breakpoints->before_resume(tid);
    if (!over) {
        return fail(std::move(over.error()));
    }
    if (*over) {
        // The step over a breakpoint ended in something to report: the thread stays stopped.
        m_queued.push_back(std::move(**over));
        return {};
    }
    t = find(tid);
    if (t == nullptr || !t->stopped) {
        return {};
    }
    if (signal && *signal != 0 && t->last != StopKind::signal) {
        // Only a signal-delivery-stop can take a signal from PTRACE_CONT (ptrace(2)); from any
        // other stop, queue it to the thread, and deliver it when it reports it.
        if (::syscall(SYS_tgkill, m_pid, tid, *signal) != 0) {
            const int err = errno;
            return fail(Error::from_errno(
                err, "tgkill(" + tid_text(tid) + ", " + std::to_string(*signal) + ")", m_pid));
        }
        m_inject.emplace_back(tid, *signal);
        return ptrace_resume(tid, PTRACE_CONT, 0);
    }
    const int sig = signal.value_or(t->last == StopKind::signal ? t->pending_signal : 0);
    return ptrace_resume(tid, PTRACE_CONT, sig);
}

Result<void> Attachment::resume_all(std::optional<int> signal_for_leader) {
    if (m_gone) {
        return fail(Error::make(ErrorKind::no_such_process, "resume", "the process has exited", m_pid));
    }
    // Queued events (seen during stop_all) that still have to be reported keep their thread
    // stopped, as gdb keeps pending events: a breakpoint, watchpoint or step. A queued signal
    // is delivered through pending_signal when its thread resumes, so it is dropped here.
    std::erase_if(m_queued, [](const StopEvent& ev) {
        return ev.kind == StopKind::signal || ev.kind == StopKind::group_stop ||
               ev.kind == StopKind::interrupted;
    });
    std::vector<pid_t> tids;
    for (const auto& t : m_threads) {
        const bool pending = std::any_of(m_queued.begin(), m_queued.end(),
                                         [&t](const StopEvent& ev) { return ev.tid == t.tid; });
        if (t.stopped && !pending) {
            tids.push_back(t.tid);
        }
    }
    // Step over breakpoints while everything else is still stopped, then let all go.
    std::vector<pid_t> ready;
    for (pid_t tid : tids) {
        auto over = m_breakpoints->before_resume(tid);
        if (!over) {
            return fail(std::move(over.error()));
        }
        if (*over) {
            m_queued.push_back(std::move(**over));
            continue;
        }
        ready.push_back(tid);
    }
    Result<void> result;
    for (pid_t tid : ready) {
        TracedThread* t = find(tid);
        if (t == nullptr || !t->stopped) {
            continue;
        }
        int sig = t->last == StopKind::signal ? t->pending_signal : 0;
        if (tid == m_pid && signal_for_leader) {
            sig = *signal_for_leader;
        }
        if (auto r = ptrace_resume(tid, PTRACE_CONT, sig); !r && result) {
            result = std::move(r);
        }
    }
    return result;
}

Result<StopEvent> Attachment::step_raw(pid_t tid, int signal) {
    TracedThread* t = find(tid);
    if (t == nullptr || !t->stopped) {
        return fail(Error::make(ErrorKind::invalid_argument, "single-step",
                                "thread " + tid_text(tid) + " is not stopped under this tracer", m_pid));
    }
    if (auto r = ptrace_resume(tid, PTRACE_SINGLESTEP, signal); !r) {
        return fail(std::move(r.error()));
    }
    Backoff backoff;
    bool cancelled = false;
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(tid, &status, __WALL | WNOHANG);
        if (r < 0) {
            const int err = errno;
            if (err == EINTR) {
                continue;
            }
            forget_thread(tid);
            StopEvent ev;
            ev.tid = tid;
            ev.kind = StopKind::thread_exited;
            return ev;
        }
        if (r == 0) {
            if (!cancelled && m_cancellable && m_cancel && m_cancel()) {
                cancelled = true;
                if (TracedThread* tt = find(tid)) {
                    (void)interrupt_thread(*tt);
                }
            }
            backoff.pause();
            continue;
        }
        backoff.reset();
        t = find(tid);
        if (t == nullptr) {
            continue;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            std::vector<StopEvent> out;
            on_status(tid, status, out);
            StopEvent ev;
            ev.tid = tid;
            ev.kind = StopKind::thread_exited;
            if (!out.empty()) {
                ev = out.front();
            }
            return ev;
        }
        if (!WIFSTOPPED(status)) {
            continue;
        }
        const int sig = WSTOPSIG(status);
        const int event = status >> 16;
        if (event == PTRACE_EVENT_CLONE) {
            std::vector<StopEvent> out;
            const bool was = m_stopping;
            m_stopping = true;  // keep it stopped: we continue the step ourselves
            on_status(tid, status, out);
            m_stopping = was;
            (void)ptrace_resume(tid, PTRACE_SINGLESTEP, 0);
            continue;
        }
        if (event == PTRACE_EVENT_STOP && !is_job_control_signal(sig)) {
            t->stopped = true;
            if (cancelled) {
                StopEvent ev;
                ev.tid = tid;
                ev.kind = StopKind::interrupted;
                t->last = StopKind::interrupted;
                return ev;
            }
            // A late interrupt from an earlier stop_all: the step has not happened yet.
            (void)ptrace_resume(tid, PTRACE_SINGLESTEP, 0);
            continue;
        }
        if (event == PTRACE_EVENT_STOP) {
            t->stopped = true;
            t->last = StopKind::group_stop;
            t->group_stopped = true;
            StopEvent ev;
            ev.tid = tid;
            ev.kind = StopKind::group_stop;
            ev.signal = sig;
            return ev;
        }
        // Signal-delivery-stop: the step's SIGTRAP, or a signal that arrived first.
        t->stopped = true;
        t->last = StopKind::signal;
        t->pending_signal = sig;
        StopEvent ev;
        ev.tid = tid;
        ev.kind = StopKind::signal;
        ev.signal = sig;
        if (::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &ev.info) == 0) {
            ev.has_info = true;
        }
        if (sig == SIGTRAP) {
            auto report = m_breakpoints->on_sigtrap(ev);
            if (ev.kind != StopKind::signal) {
                t->pending_signal = 0;
                t->last = ev.kind;
            }
            if (report && !*report) {
                ev.kind = StopKind::single_step;
                ev.breakpoints.clear();
                t->last = StopKind::single_step;
            }
        }
        return ev;
    }
}

Result<StopEvent> Attachment::step(pid_t tid, std::optional<int> signal) {
    TracedThread* t = find(tid);
    if (t == nullptr || !t->stopped) {
        return fail(Error::make(ErrorKind::invalid_argument, "single-step",
                                "thread " + tid_text(tid) + " is not stopped under this tracer", m_pid));
    }
    const int sig = signal.value_or(t->last == StopKind::signal ? t->pending_signal : 0);
    auto before = registers(tid);
    if (!before) {
        return fail(std::move(before.error()));
    }
    // On a breakpoint, stepping over it is the step.
    auto over = m_breakpoints->before_resume(tid);
    if (!over) {
        return fail(std::move(over.error()));
    }
    if (*over) {
        return std::move(**over);
    }
    if (find(tid) == nullptr) {
        StopEvent ev;
        ev.tid = tid;
        ev.kind = m_gone ? m_gone->kind : StopKind::thread_exited;
        return ev;
    }
    auto after = registers(tid);
    if (after && after->pc() != before->pc()) {
        StopEvent ev;
        ev.tid = tid;
        ev.kind = StopKind::single_step;
        if (TracedThread* tt = find(tid)) {
            tt->last = StopKind::single_step;
            tt->pending_signal = 0;
        }
        return ev;
    }
    // Only a step the caller asked for can be cancelled (a step over a breakpoint inside a
    // continue must complete: the original byte is out of the text meanwhile).
    m_cancellable = true;
    auto ev = step_raw(tid, sig);
    m_cancellable = false;
    return ev;
}

Result<std::optional<StopEvent>> Attachment::wait(std::chrono::milliseconds timeout) {
    while (!m_queued.empty()) {
        StopEvent ev = std::move(m_queued.front());
        m_queued.erase(m_queued.begin());
        // A hit that waited in the queue while the caller set an ignore count (gdb's
        // `continue N`) is one of the hits to ignore: its thread goes on.
        if (ev.kind == StopKind::breakpoint && ev.breakpoints.size() == 1) {
            const Breakpoint* b = m_breakpoints->find(ev.breakpoints.front());
            if (b != nullptr && b->ignore_count > 0 && thread(ev.tid) != nullptr) {
                (void)m_breakpoints->set_ignore_count(b->id, b->ignore_count - 1);
                if (auto r = resume(ev.tid, 0); !r) {
                    return fail(std::move(r.error()));
                }
                continue;
            }
        }
        return std::optional<StopEvent>(std::move(ev));
    }
    if (m_gone) {
        return fail(Error::make(ErrorKind::no_such_process, "wait", "the process has exited", m_pid));
    }
    const auto deadline = Clock::now() + timeout;
    Backoff backoff;
    std::vector<StopEvent> events;
    for (;;) {
        events.clear();
        auto got = poll_once(events);
        if (!got) {
            return fail(std::move(got.error()));
        }
        if (!events.empty()) {
            StopEvent first = std::move(events.front());
            for (std::size_t i = 1; i < events.size(); ++i) {
                m_queued.push_back(std::move(events[i]));
            }
            return std::optional<StopEvent>(std::move(first));
        }
        if (*got) {
            backoff.reset();
            continue;
        }
        if (Clock::now() >= deadline) {
            return std::optional<StopEvent>();
        }
        backoff.pause();
    }
}

Result<Registers> Attachment::registers(pid_t tid, bool with_fp) {
    const TracedThread* t = thread(tid);
    if (t == nullptr || !t->stopped) {
        return fail(Error::make(ErrorKind::invalid_argument, "read registers",
                                "thread " + tid_text(tid) + " is not stopped under this tracer", m_pid)
                        .with_hint("stop the threads first (Attachment::stop_all)"));
    }
    return read_registers(tid, with_fp);
}

Result<void> Attachment::set_registers(const Registers& regs) {
    const TracedThread* t = thread(regs.tid);
    if (t == nullptr || !t->stopped) {
        return fail(Error::make(ErrorKind::invalid_argument, "write registers",
                                "thread " + tid_text(regs.tid) + " is not stopped under this tracer", m_pid));
    }
    return write_registers(regs);
}

Result<std::uint64_t> Attachment::peek_user(pid_t tid, std::size_t offset) {
    errno = 0;
    const long v = ::ptrace(PTRACE_PEEKUSER, tid, reinterpret_cast<void*>(offset), nullptr);
    if (v == -1 && errno != 0) {
        const int err = errno;
        return fail(Error::from_errno(err, "ptrace(PTRACE_PEEKUSER, " + tid_text(tid) + ")", m_pid)
                        .with_address(offset));
    }
    return static_cast<std::uint64_t>(v);
}

Result<void> Attachment::poke_user(pid_t tid, std::size_t offset, std::uint64_t value) {
    if (::ptrace(PTRACE_POKEUSER, tid, reinterpret_cast<void*>(offset), reinterpret_cast<void*>(value)) !=
        0) {
        const int err = errno;
        return fail(Error::from_errno(err, "ptrace(PTRACE_POKEUSER, " + tid_text(tid) + ")", m_pid)
                        .with_address(offset));
    }
    return {};
}

Result<void> Attachment::kill() {
    if (m_gone) {
        return {};
    }
    if (::syscall(SYS_pidfd_send_signal, m_memory->process().pidfd(), SIGKILL, nullptr, 0) != 0) {
        const int err = errno;
        if (err != ESRCH) {
            return fail(Error::from_errno(err, "pidfd_send_signal(SIGKILL)", m_pid));
        }
    }
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    Backoff backoff;
    std::vector<StopEvent> events;
    while (!m_gone) {
        events.clear();
        (void)poll_once(events);
        if (Clock::now() > deadline) {
            return fail(Error::make(ErrorKind::os, "kill", "the process did not end after SIGKILL", m_pid));
        }
        backoff.pause();
    }
    m_queued.clear();
    return {};
}

Result<void> Attachment::detach() {
    if (m_detached) {
        return {};
    }
    Result<void> result;
    if (!m_gone) {
        if (auto r = stop_all(); !r) {
            result = std::move(r);
        }
    }
    if (!m_gone && m_breakpoints) {
        if (auto r = m_breakpoints->remove_all(); !r && result) {
            result = std::move(r);
        }
    }
    if (!m_gone) {
        for (const auto& t : m_threads) {
            if (!t.stopped) {
                continue;  // could not be stopped: the kernel detaches it when we exit
            }
            // A pending signal is delivered now; a group-stopped thread re-enters the
            // group-stop if the process is still stopped (the kernel's ptrace_unlink).
            const int sig = t.last == StopKind::signal ? t.pending_signal : 0;
            if (::ptrace(PTRACE_DETACH, t.tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig))) !=
                0) {
                const int err = errno;
                if (err != ESRCH && result) {
                    result =
                        fail(Error::from_errno(err, "ptrace(PTRACE_DETACH, " + tid_text(t.tid) + ")", m_pid));
                }
            }
        }
    }
    m_threads.clear();
    m_new_threads.clear();
    m_queued.clear();
    m_inject.clear();
    m_detached = true;
    return result;
}

Result<RegisterGuard> RegisterGuard::save(Attachment& att, pid_t tid) {
    auto regs = att.registers(tid);
    if (!regs) {
        return fail(std::move(regs.error()));
    }
    return RegisterGuard(att, *regs);
}

RegisterGuard::RegisterGuard(RegisterGuard&& other) noexcept : m_att(other.m_att), m_saved(other.m_saved) {
    other.m_att = nullptr;
}

RegisterGuard::~RegisterGuard() {
    if (m_att != nullptr && !m_att->detached() && !m_att->process_gone()) {
        const TracedThread* t = m_att->thread(m_saved.tid);
        if (t != nullptr && t->stopped) {
            (void)m_att->set_registers(m_saved);
        }
    }
}

}  // namespace xproc
