// SPDX-License-Identifier: MIT
// xstack: every thread's stack of running processes, in eu-stack's format, with the target
// stopped only while registers and stacks are copied (xproc::snapshot_stacks); unwinding and
// naming happen afterwards, from the copy, while the target runs. See man/xstack.1.
//
// Exit status: 0 when every process was shown completely; 1 on any error (bad arguments, a
// process that could not be shown, a thread whose backtrace failed). Processes that worked are
// printed even when others fail.

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "format.hpp"
#include "xproc/error.hpp"
#include "xproc/process.hpp"
#include "xproc/symbols.hpp"
#include "xproc/unwind.hpp"

#ifndef XPROC_VERSION
#define XPROC_VERSION "unknown"
#endif

namespace xstack {
namespace {

/// eu-stack's default -n.
constexpr long DEFAULT_MAX_FRAMES = 256;
/// What -n 0 ("no limit") asks the unwinder for: its own cap (unwind.cpp), far beyond any
/// real stack; a corrupt stack that loops still ends.
constexpr std::size_t UNLIMITED_FRAMES = 1u << 16;

struct Options {
    std::vector<std::string> pid_args;
    long max_frames = DEFAULT_MAX_FRAMES;
    TextOptions text;
    bool json = false;
    bool verbose = false;
    std::string threads_arg;
    std::vector<pid_t> threads;  ///< --threads, parsed
    std::string debuginfo_path = "/usr/lib/debug";
};

void print_error(std::string_view message) {
    std::fprintf(stderr, "xstack: %.*s\n", static_cast<int>(message.size()), message.data());
}

[[noreturn]] void die(std::string_view message) {
    print_error(message);
    std::exit(EXIT_FAILURE);
}

bool write_all(std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(STDOUT_FILENO, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

/// A decimal id from 1 to 2^31-1, or nullopt.
std::optional<pid_t> parse_id(std::string_view text) {
    if (text.empty() || text.size() > 10) {
        return std::nullopt;
    }
    long long v = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        v = v * 10 + (c - '0');
    }
    if (v < 1 || v > std::numeric_limits<pid_t>::max()) {
        return std::nullopt;
    }
    return static_cast<pid_t>(v);
}

std::vector<pid_t> parse_pids(const std::vector<std::string>& args) {
    std::vector<pid_t> pids;
    for (const std::string& arg : args) {
        const auto pid = parse_id(arg);
        if (!pid) {
            die("'" + arg + "' is not a process id (expected a number from 1 to 2147483647)");
        }
        pids.push_back(*pid);
    }
    if (pids.empty()) {
        die("no process id given (usage: xstack [options] PID...; see xstack --help)");
    }
    return pids;
}

std::vector<pid_t> parse_threads(const std::string& text) {
    std::vector<pid_t> tids;
    std::string_view rest = text;
    while (true) {
        const std::size_t comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        const auto tid = parse_id(item);
        if (!tid) {
            die("--threads: '" + std::string(item) +
                "' is not a thread id (expected TID[,TID...], numbers from 1 to 2147483647)");
        }
        tids.push_back(*tid);
        if (comma == std::string_view::npos) {
            return tids;
        }
        rest.remove_prefix(comma + 1);
    }
}

/// What went wrong with one process, as xstack says it (the cause and what to do).
std::string describe(pid_t pid, const xproc::Error& error) {
    const std::string p = "PID " + std::to_string(pid);
    switch (error.kind) {
        case xproc::ErrorKind::no_such_process:
            return p + ": no such process (it has exited, or the number is wrong: see ps -e)";
        case xproc::ErrorKind::zombie:
            return p +
                   " is a zombie: it has exited and has no threads left to show (its parent has not reaped "
                   "it yet)";
        case xproc::ErrorKind::kernel_thread:
            return p + " is a kernel thread: it has no user-space stack to show (see /proc/" +
                   std::to_string(pid) + "/stack as root)";
        default:
            return error.message();
    }
}

class Runner {
  public:
    explicit Runner(const Options& options) : m_opt(options) {}

    /// Shows one process (text: printed at once; JSON: kept for the end).
    void run(pid_t pid);
    void finish();
    int status() const { return m_status; }

  private:
    void fail(std::string_view message) {
        flush();  // stdout first, so that a terminal shows both in order
        print_error(message);
        m_status = EXIT_FAILURE;
    }
    void flush() {
        if (!m_out.empty()) {
            if (!write_all(m_out)) {
                const int err = errno;
                die(std::string("write error: ") + std::strerror(err));
            }
            m_out.clear();
        }
    }
    std::optional<ProcessStack> snapshot_and_unwind(pid_t pid);

    const Options& m_opt;
    std::string m_out;
    std::vector<ProcessStack> m_json;
    int m_status = EXIT_SUCCESS;
    std::vector<pid_t> m_threads_seen;  ///< --threads entries that some process has
};

std::optional<ProcessStack> Runner::snapshot_and_unwind(pid_t pid) {
    if (pid == getpid()) {
        fail("PID " + std::to_string(pid) +
             " is xstack itself: a process cannot stop and trace itself (run xstack from another process)");
        return std::nullopt;
    }
    auto proc = xproc::Process::open(pid);
    if (!proc && (proc.error().errno_value == ENOENT || proc.error().errno_value == EINVAL)) {
        // pidfd_open refuses a thread that is not a leader: show its process, as eu-stack does.
        if (const auto tgid = xproc::thread_group_of(pid)) {
            proc = xproc::Process::open(*tgid);
        }
    }
    if (!proc) {
        fail(describe(pid, proc.error()));
        return std::nullopt;
    }
    pid = proc->pid();
    if (pid == getpid()) {
        fail("PID " + std::to_string(pid) +
             " is xstack itself: a process cannot stop and trace itself (run xstack from another process)");
        return std::nullopt;
    }
    const auto stat = proc->stat();
    if (!stat) {
        fail(describe(pid, stat.error()));
        return std::nullopt;
    }
    if (stat->state == 'Z' || stat->state == 'X') {
        fail("PID " + std::to_string(pid) +
             " is a zombie: it has exited and has no threads left to show (its parent, PID " +
             std::to_string(stat->ppid) + ", has not reaped it yet)");
        return std::nullopt;
    }
    if (stat->is_kernel_thread()) {
        fail(describe(pid, xproc::Error::make(xproc::ErrorKind::kernel_thread, "", "", pid)));
        return std::nullopt;
    }

    xproc::SnapshotOptions snap_options;
    if (!m_opt.threads.empty() || m_opt.text.one_thread) {
        if (m_opt.text.one_thread) {
            snap_options.threads.push_back(pid);  // eu-stack -1: the main thread
        }
        const auto tids = proc->threads();
        if (!tids) {
            fail(describe(pid, tids.error()));
            return std::nullopt;
        }
        for (const pid_t tid : m_opt.threads) {
            if (std::find(tids->begin(), tids->end(), tid) != tids->end()) {
                snap_options.threads.push_back(tid);
                m_threads_seen.push_back(tid);
            }
        }
        if (snap_options.threads.empty()) {
            return std::nullopt;  // none of --threads is here: nothing to show, not an error
        }
    }

    auto snapshot = xproc::snapshot_stacks(pid, snap_options);
    if (!snapshot) {
        fail(describe(pid, snapshot.error()));
        return std::nullopt;
    }
    // The target runs again from here on; the rest works on the copy.
    xproc::SymbolLoadOptions sym_options;
    sym_options.debug_directory = m_opt.debuginfo_path;
    sym_options.use_debug_files = !m_opt.debuginfo_path.empty();
    auto symbols = xproc::SymbolTable::load(pid, sym_options);
    if (!symbols) {
        fail(describe(pid, symbols.error()));
        return std::nullopt;
    }
    auto unwinder = xproc::Unwinder::create(pid, *symbols);
    if (!unwinder) {
        fail(describe(pid, unwinder.error()));
        return std::nullopt;
    }

    const std::size_t limit =
        m_opt.max_frames == 0 ? UNLIMITED_FRAMES : static_cast<std::size_t>(m_opt.max_frames);
    ProcessStack out;
    out.pid = pid;
    out.stopped_for = snapshot->stopped_for;
    out.was_stopped = snapshot->was_stopped;
    for (const xproc::ThreadSnapshot& thread : snapshot->threads) {
        ThreadStack t;
        t.tid = thread.tid;
        t.name = thread.name;
        // One frame more than shown tells whether -n cut the stack short.
        auto frames = unwinder->backtrace(thread, limit == UNLIMITED_FRAMES ? limit : limit + 1);
        if (!frames) {
            t.error = frames.error().message();
        } else {
            if (frames->size() > limit) {
                frames->resize(limit);
                t.truncated = true;
            }
            for (std::size_t i = 0; i < frames->size(); ++i) {
                const xproc::Frame& f = (*frames)[i];
                ShownFrame shown{f, false, false};
                shown.activation = i == 0 || f.signal_frame || (*frames)[i - 1].signal_frame;
                shown.named = !f.symbol.empty() && !f.guessed;
                if (!f.symbol.empty() && f.guessed) {
                    // Like gdb's minimal symbols and elfutils: a zero-sized label (an assembly
                    // entry point) names the code after it; a sized function never names code
                    // past its end.
                    const std::uint64_t at = shown.activation ? f.pc : f.pc - 1;
                    const auto r = symbols->resolve(at);
                    shown.named = r.has_value() && r->symbol_size == 0;
                }
                t.frames.push_back(std::move(shown));
            }
        }
        out.threads.push_back(std::move(t));
    }
    return out;
}

void Runner::run(pid_t pid) {
    auto stack = snapshot_and_unwind(pid);
    if (!stack) {
        return;
    }
    const auto say_stopped = [&] {
        if (!m_opt.verbose) {
            return;
        }
        char line[200];
        std::snprintf(line, sizeof line, "PID %d stopped for %.2f ms (%zu thread%s)%s",
                      static_cast<int>(stack->pid), static_cast<double>(stack->stopped_for.count()) / 1e6,
                      stack->threads.size(), stack->threads.size() == 1 ? "" : "s",
                      stack->was_stopped ? ", already stopped before xstack: left stopped" : "");
        flush();
        print_error(line);
    };
    for (const ThreadStack& t : stack->threads) {
        if (!t.error.empty()) {
            // eu-stack: the frames it could show, then the reason on stderr, exit status 1.
            m_status = EXIT_FAILURE;
        }
    }
    if (m_opt.json) {
        say_stopped();
        m_json.push_back(std::move(*stack));
        for (const ThreadStack& t : m_json.back().threads) {
            if (!t.error.empty()) {
                print_error("tid " + std::to_string(t.tid) + ": " + t.error);
            }
        }
        return;
    }
    append_text(m_out, *stack, m_opt.text);
    flush();
    for (const ThreadStack& t : stack->threads) {
        if (!t.error.empty()) {
            print_error("tid " + std::to_string(t.tid) + ": " + t.error);
        } else if (t.truncated) {
            print_error("tid " + std::to_string(t.tid) + ": shown max number of frames (" +
                        std::to_string(m_opt.max_frames) + ", use -n 0 for unlimited)");
        }
    }
    say_stopped();
}

void Runner::finish() {
    for (const pid_t tid : m_opt.threads) {
        if (std::find(m_threads_seen.begin(), m_threads_seen.end(), tid) == m_threads_seen.end()) {
            fail("--threads: " + std::to_string(tid) +
                 " is not a thread of the processes given (their threads are listed in /proc/PID/task)");
        }
    }
    if (m_opt.json) {
        append_json(m_out, m_json);
    }
    flush();
}

}  // namespace
}  // namespace xstack

int main(int argc, char** argv) {
    using namespace xstack;
    Options opt;
    bool version = false;
    CLI::App app{
        "xstack: print the stack of every thread of running processes, in eu-stack's format.\n"
        "The target is stopped only while registers and stacks are copied."};
    app.name("xstack");
    app.add_option("pid", opt.pid_args, "Processes to show")->type_name("PID");
    std::vector<std::string> dash_p;
    app.add_option("-p,--pid", dash_p, "Process to show (eu-stack's spelling; repeatable)")->type_name("PID");
    app.add_option("-n", opt.max_frames, "Show at most MAXFRAMES per thread (default 256, 0 for unlimited)")
        ->type_name("MAXFRAMES")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("-m,--module", opt.text.module, "Also show each frame's module file");
    app.add_flag("-a,--activation", opt.text.activation,
                 "Show frame activation, as eu-stack: '- 1' when the name was looked up at pc - 1");
    app.add_flag("-o,--offsets", opt.text.offsets, "Show each name with its offset: name+0x12");
    app.add_flag("-q,--quiet", opt.text.quiet, "Do not resolve addresses to function names");
    app.add_flag("-1", opt.text.one_thread, "Show the backtrace of the main thread only (no PID line)");
    app.add_option("--threads", opt.threads_arg, "Only these threads")->type_name("TID,...");
    app.add_flag("--json", opt.json, "Print JSON (see xstack(1) for the fields)");
    app.add_flag("-v,--verbose", opt.verbose, "Also say on stderr how long each process was stopped");
    app.add_option("--debuginfo-path", opt.debuginfo_path,
                   "Where separate debug files are found by build-id (default /usr/lib/debug; empty: none)")
        ->type_name("PATH");
    app.add_flag("-V,--version", version, "Print the version and exit");
    app.footer("Exit status: 0 when every stack was shown, 1 on any error. See xstack(1).");
    // "--opt=" (an empty value) would make CLI11 take the next argument as the value: split
    // it into "--opt" "".
    std::vector<std::string> args(argv, argv + argc);
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--") {
            break;
        }
        if (args[i].starts_with("--") && args[i].size() > 3 && args[i].back() == '=' &&
            args[i].find('=') == args[i].size() - 1) {
            args[i].pop_back();
            args.insert(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::string());
            ++i;
        }
    }
    args.erase(args.begin());                // CLI11's vector overload: no program name,
    std::reverse(args.begin(), args.end());  // arguments in reverse order
    try {
        app.parse(args);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        die(std::string(e.what()) + " (see xstack --help)");
    }
    // After the plain PID arguments (CLI11 keeps each option's values apart).
    opt.pid_args.insert(opt.pid_args.end(), dash_p.begin(), dash_p.end());
    if (version) {
        std::printf("xstack from xproc %s\n", XPROC_VERSION);
        return EXIT_SUCCESS;
    }
    if (!opt.threads_arg.empty() || app.count("--threads") > 0) {
        opt.threads = parse_threads(opt.threads_arg);
    }
    if (opt.text.one_thread && !opt.threads.empty()) {
        die("-1 and --threads cannot be used together (-1 is the main thread alone)");
    }
    const std::vector<pid_t> pids = parse_pids(opt.pid_args);
    Runner runner(opt);
    for (const pid_t pid : pids) {
        runner.run(pid);
    }
    runner.finish();
    return runner.status();
}
