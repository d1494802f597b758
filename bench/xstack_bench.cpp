// SPDX-License-Identifier: MIT
// xstack_bench: xstack next to eu-stack (elfutils) and gdb, on running stack_target processes
// with 8 and 64 threads, in one run. How to run it and read the results: bench/README.md.
//
// Every tool is measured the way a user meets it: one posix_spawn of the real binary with stdout
// on /dev/null, timed from spawn to exit on the wall clock:
//   xstack -v PID          (its stderr line "stopped for X ms" gives the target's stop time)
//   eu-stack -p PID
//   gdb -nx -batch -ex 'thread apply all bt' -p PID
// The targets run (they are not frozen): each tool stops and resumes them itself, as it would
// in real use. After Google Benchmark's report the binary prints a ratio table and the goals of
// issue 5, each PASS or FAIL; it exits 1 when a command failed.

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace xproc::bench {
namespace {

enum class Tool { xstack, eu_stack, gdb };
constexpr Tool ALL_TOOLS[] = {Tool::gdb, Tool::eu_stack, Tool::xstack};  // peers first: ratios fill in

const char* tool_name(Tool t) {
    switch (t) {
        case Tool::xstack:
            return "xstack";
        case Tool::eu_stack:
            return "eu-stack";
        case Tool::gdb:
            return "gdb";
    }
    return "?";
}

struct Case {
    long threads;  ///< worker threads of the target (it has one more: main)
    Tool tool;
};

std::string case_name(const Case& c) {
    return "threads=" + std::to_string(c.threads) + "/" + tool_name(c.tool);
}

// ---------------------------------------------------------------------------------------------
// Options (ours; everything else goes to Google Benchmark)

struct Options {
    std::vector<long> threads{8, 64};
    long iterations = 20;     ///< xstack and eu-stack timed runs per benchmark
    long gdb_iterations = 3;  ///< gdb takes about half a second a run
    std::string xstack = XSTACK_BENCH_XSTACK;
    std::string eu_stack;
    std::string gdb;
    std::string target = XSTACK_BENCH_TARGET;
    bool table_to_stderr = false;
};
Options g_options;

std::string find_in_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string_view rest = path != nullptr ? path : "/usr/bin:/bin";
    while (true) {
        const std::size_t colon = rest.find(':');
        const std::string dir(rest.substr(0, colon));
        const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
        if (access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
        if (colon == std::string_view::npos) {
            return {};
        }
        rest.remove_prefix(colon + 1);
    }
}

void print_usage() {
    std::printf(
        "xstack_bench: xstack vs eu-stack vs gdb on running stack_target processes, see bench/README.md\n"
        "  --threads=N[,N...]    worker threads of the targets (default 8,64)\n"
        "  --iterations=K        timed runs of xstack and eu-stack per benchmark (default 20)\n"
        "  --gdb-iterations=K    timed runs of gdb (default 3)\n"
        "  --xstack=PATH         xstack to measure (default: the one in this build tree)\n"
        "  --eu-stack=PATH       eu-stack to compare with (default: from PATH)\n"
        "  --gdb=PATH            gdb to compare with (default: from PATH)\n"
        "  --target=PATH         the stack_target program\n"
        "Google Benchmark's own options follow.\n\n");
}

std::optional<std::vector<long>> parse_list(const std::string& text) {
    std::vector<long> out;
    const char* p = text.c_str();
    while (*p != '\0') {
        char* end = nullptr;
        const long n = std::strtol(p, &end, 10);
        if (end == p || n < 1 || n > 4096 || (*end != ',' && *end != '\0')) {
            return std::nullopt;
        }
        out.push_back(n);
        p = *end == ',' ? end + 1 : end;
    }
    return out;
}

bool parse_options(int& argc, char** argv) {
    int out = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value_of = [&](std::string_view key) -> std::optional<std::string> {
            if (arg.starts_with(key) && arg.size() > key.size() && arg[key.size()] == '=') {
                return std::string(arg.substr(key.size() + 1));
            }
            return std::nullopt;
        };
        if (auto v = value_of("--threads")) {
            auto list = parse_list(*v);
            if (!list) {
                std::fprintf(stderr, "xstack_bench: bad --threads value: %s\n", v->c_str());
                return false;
            }
            g_options.threads = *list;
        } else if (auto it = value_of("--iterations")) {
            g_options.iterations = std::strtol(it->c_str(), nullptr, 10);
            if (g_options.iterations <= 0) {
                std::fprintf(stderr, "xstack_bench: bad --iterations value: %s\n", it->c_str());
                return false;
            }
        } else if (auto g = value_of("--gdb-iterations")) {
            g_options.gdb_iterations = std::strtol(g->c_str(), nullptr, 10);
            if (g_options.gdb_iterations <= 0) {
                std::fprintf(stderr, "xstack_bench: bad --gdb-iterations value: %s\n", g->c_str());
                return false;
            }
        } else if (auto x = value_of("--xstack")) {
            g_options.xstack = *x;
        } else if (auto e = value_of("--eu-stack")) {
            g_options.eu_stack = *e;
        } else if (auto d = value_of("--gdb")) {
            g_options.gdb = *d;
        } else if (auto t = value_of("--target")) {
            g_options.target = *t;
        } else {
            if (arg == "--help" || arg == "-h") {
                print_usage();
            }
            if (arg.starts_with("--benchmark_format=") && !arg.ends_with("=console")) {
                g_options.table_to_stderr = true;
            }
            argv[out++] = argv[i];
        }
    }
    argc = out;
    argv[argc] = nullptr;
    return true;
}

// ---------------------------------------------------------------------------------------------
// Running one command

struct RunSample {
    double wall_s = 0;
    int status = 0;
    std::string output;  ///< stdout, when asked for
    std::string errors;  ///< stderr, when asked for
};

std::string describe_status(int status) {
    if (WIFEXITED(status)) {
        return "exit status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return std::string("killed by signal ") + strsignal(WTERMSIG(status));
    }
    return "wait status " + std::to_string(status);
}

std::string read_memfd(int fd) {
    std::string text;
    char buf[1 << 16];
    off_t off = 0;
    for (;;) {
        const ssize_t n = pread(fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return text;
        }
        text.append(buf, static_cast<std::size_t>(n));
        off += n;
    }
}

/// Runs argv[0] (a full path) to completion, stdin from /dev/null. stdout and stderr go to
/// memory when `keep_out` / `keep_err`, else to /dev/null.
std::optional<RunSample> run_command(const std::vector<std::string>& argv, bool keep_out, bool keep_err,
                                     std::string& error) {
    int out_fd = -1;
    int err_fd = -1;
    if (keep_out) {
        out_fd = memfd_create("xstack_bench_out", MFD_CLOEXEC);
    }
    if (keep_err) {
        err_fd = memfd_create("xstack_bench_err", MFD_CLOEXEC);
    }
    if ((keep_out && out_fd < 0) || (keep_err && err_fd < 0)) {
        error = std::string("memfd_create: ") + std::strerror(errno);
        return std::nullopt;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (out_fd >= 0) {
        posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    }
    if (err_fd >= 0) {
        posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);

    const auto start = std::chrono::steady_clock::now();
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        error = "posix_spawn " + argv[0] + ": " + std::strerror(rc);
        return std::nullopt;
    }
    RunSample s;
    while (waitpid(pid, &s.status, 0) < 0) {
        const int err = errno;
        if (err != EINTR) {
            error = "waitpid: " + std::string(std::strerror(err));
            return std::nullopt;
        }
    }
    s.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (out_fd >= 0) {
        s.output = read_memfd(out_fd);
        close(out_fd);
    }
    if (err_fd >= 0) {
        s.errors = read_memfd(err_fd);
        close(err_fd);
    }
    return s;
}

// ---------------------------------------------------------------------------------------------
// The targets: stack_target --threads N, running, started once and kept to the end

class Target {
  public:
    Target(const std::string& path, long threads) { start(path, threads); }
    Target(const Target&) = delete;
    Target& operator=(const Target&) = delete;
    ~Target() {
        if (m_pid > 0) {
            kill(m_pid, SIGKILL);
            int status = 0;
            while (waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
    }
    pid_t pid() const { return m_pid; }
    const std::string& error() const { return m_error; }

  private:
    void start(const std::string& path, long threads) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            m_error = std::string("pipe2: ") + std::strerror(errno);
            return;
        }
        const pid_t parent = getpid();
        const pid_t pid = fork();
        if (pid < 0) {
            m_error = std::string("fork: ") + std::strerror(errno);
            close(fds[0]);
            close(fds[1]);
            return;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the bench
            if (getppid() != parent) {
                _exit(1);
            }
            dup2(fds[1], STDOUT_FILENO);
            const std::string count = std::to_string(threads);
            execl(path.c_str(), path.c_str(), "--threads", count.c_str(), static_cast<char*>(nullptr));
            std::fprintf(stderr, "xstack_bench: exec %s: %s\n", path.c_str(), std::strerror(errno));
            _exit(127);
        }
        close(fds[1]);
        m_pid = pid;
        std::string seen;
        char buf[256];
        while (seen.find("ready\n") == std::string::npos) {
            const ssize_t got = read(fds[0], buf, sizeof buf);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                break;
            }
            seen.append(buf, static_cast<std::size_t>(got));
        }
        close(fds[0]);
        if (seen.find("ready\n") == std::string::npos) {
            m_error = path + " --threads " + std::to_string(threads) + " did not get ready";
        }
    }

    pid_t m_pid = -1;
    std::string m_error;
};

std::map<long, std::unique_ptr<Target>> g_targets;

const Target& target_with(long threads) {
    std::unique_ptr<Target>& t = g_targets[threads];
    if (!t) {
        t = std::make_unique<Target>(g_options.target, threads);
    }
    return *t;
}

// ---------------------------------------------------------------------------------------------
// Samples and summaries

struct Samples {
    std::vector<double> wall_s;
    std::vector<double> stop_ms;  ///< xstack only: the target's stop time of each run
    long threads_shown = -1;      ///< from the check run
};
std::map<std::string, Samples> g_samples;
int g_failures = 0;

double median(std::vector<double> v) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const std::size_t mid = v.size() / 2;
    return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

double best_of(const Case& c) {
    auto it = g_samples.find(case_name(c));
    if (it == g_samples.end() || it->second.wall_s.empty()) {
        return 0;
    }
    return *std::min_element(it->second.wall_s.begin(), it->second.wall_s.end());
}

double median_wall(const Case& c) {
    auto it = g_samples.find(case_name(c));
    return it == g_samples.end() ? 0 : median(it->second.wall_s);
}

double ratio(double a, double b) {
    return a > 0 && b > 0 ? a / b : 0;
}

// ---------------------------------------------------------------------------------------------
// The benchmark body

std::vector<std::string> command_for(Tool t, pid_t pid) {
    const std::string spid = std::to_string(pid);
    switch (t) {
        case Tool::xstack:
            return {g_options.xstack, "-v", spid};
        case Tool::eu_stack:
            return {g_options.eu_stack, "-p", spid};
        case Tool::gdb:
            return {g_options.gdb, "-nx", "-batch", "-ex", "thread apply all bt", "-p", spid};
    }
    return {};
}

/// xstack -v's "xstack: PID N stopped for X ms (...)": X, or -1.
double stopped_ms(const std::string& errors) {
    const std::size_t at = errors.find(" stopped for ");
    if (at == std::string::npos) {
        return -1;
    }
    return std::strtod(errors.c_str() + at + 13, nullptr);
}

/// Threads in one output: "TID " lines (xstack, eu-stack) or "Thread N (" lines (gdb).
long count_threads(Tool t, const std::string& out) {
    const std::string_view key = t == Tool::gdb ? "\nThread " : "\nTID ";
    long n = 0;
    const std::string text = "\n" + out;
    for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
        ++n;
    }
    return n;
}

void fail(benchmark::State& state, const std::string& why) {
    ++g_failures;
    state.SkipWithError(why.c_str());
}

void run_case(benchmark::State& state, Case c) {
    const Target& target = target_with(c.threads);
    if (!target.error().empty()) {
        fail(state, target.error());
        return;
    }
    const std::string& exe = c.tool == Tool::xstack ? g_options.xstack
                             : c.tool == Tool::gdb  ? g_options.gdb
                                                    : g_options.eu_stack;
    if (exe.empty()) {
        fail(state, std::string(tool_name(c.tool)) + " not found (see --help)");
        return;
    }
    Samples& samples = g_samples[case_name(c)];
    const auto argv = command_for(c.tool, target.pid());
    std::string error;
    // One untimed run: the command works and shows every thread; warms the caches.
    if (samples.threads_shown < 0) {
        auto s = run_command(argv, true, c.tool == Tool::xstack, error);
        if (!s) {
            fail(state, error);
            return;
        }
        if (s->status != 0) {
            fail(state, argv[0] + ": " + describe_status(s->status));
            return;
        }
        samples.threads_shown = count_threads(c.tool, s->output);
        if (samples.threads_shown != c.threads + 1) {
            fail(state, std::string(tool_name(c.tool)) + " showed " + std::to_string(samples.threads_shown) +
                            " threads, not " + std::to_string(c.threads + 1));
            return;
        }
    }
    for (auto _ : state) {
        auto s = run_command(argv, false, c.tool == Tool::xstack, error);
        if (!s || s->status != 0) {
            fail(state, s ? argv[0] + ": " + describe_status(s->status) : error);
            break;
        }
        samples.wall_s.push_back(s->wall_s);
        if (c.tool == Tool::xstack) {
            samples.stop_ms.push_back(stopped_ms(s->errors));
        }
    }
    // Counters (Google Benchmark prints values below 1 with SI prefixes: 850m is 0.85).
    const double best = best_of(c);
    state.counters["best_ms"] = best * 1e3;
    state.counters["tids"] = static_cast<double>(c.threads + 1);  // with the main thread
    if (c.tool == Tool::xstack) {
        const double gdb = best_of({c.threads, Tool::gdb});
        const double eu = best_of({c.threads, Tool::eu_stack});
        state.counters["gdb_over_xstack"] = ratio(gdb, best);
        state.counters["eu_stack_over_xstack"] = ratio(eu, best);
        state.counters["stop_ms_median"] = median(samples.stop_ms);
        state.counters["stop_ms_max"] =
            samples.stop_ms.empty() ? 0 : *std::max_element(samples.stop_ms.begin(), samples.stop_ms.end());
        // The goals of issue 5, 1 = PASS, 0 = FAIL (the table at the end says it in words);
        // absent when the peer was not measured (--benchmark_filter).
        if (gdb > 0) {
            state.counters["goal_10x_gdb"] = ratio(gdb, best) >= 10.0 ? 1 : 0;
        }
        if (eu > 0) {
            state.counters["goal_eu_stack"] = ratio(eu, best) >= 1.0 ? 1 : 0;
        }
        if (c.threads == 8 && !samples.stop_ms.empty()) {
            state.counters["goal_stop_2ms"] = median(samples.stop_ms) < 2.0 ? 1 : 0;
        }
    }
}

void register_all() {
    for (long n : g_options.threads) {
        for (Tool t : ALL_TOOLS) {
            const Case c{n, t};
            benchmark::RegisterBenchmark(case_name(c).c_str(), run_case, c)
                ->Iterations(t == Tool::gdb ? g_options.gdb_iterations : g_options.iterations)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The ratio table and the goals

double load_average() {
    double load = -1;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
        if (std::fscanf(f, "%lf", &load) != 1) {
            load = -1;
        }
        std::fclose(f);
    }
    return load;
}
double g_load_before = -1;

void print_table() {
    if (g_samples.empty()) {
        return;
    }
    FILE* out = g_options.table_to_stderr ? stderr : stdout;
    std::fprintf(out,
                 "\nxstack vs eu-stack vs gdb on a running stack_target. Times: the fastest timed run (wall\n"
                 "clock, spawn to exit, output to /dev/null); median in parentheses. Speed-up = peer time /\n"
                 "xstack time. stop = how long xstack kept the target stopped (xstack -v), median / max.\n"
                 "threads = stack_target --threads N: N threads besides main.\n\n");
    std::fprintf(out, "%8s | %17s %17s %17s | %8s %8s | %15s\n", "threads", "gdb ms", "eu-stack ms",
                 "xstack ms", "vs gdb", "vs eu", "stop ms med/max");
    auto ms = [](double best, double med) {
        char buf[48];
        if (best <= 0) {
            return std::string("n/a");
        }
        std::snprintf(buf, sizeof buf, "%.1f (%.1f)", best * 1e3, med * 1e3);
        return std::string(buf);
    };
    std::vector<std::string> goals;
    bool all_pass = true;
    auto goal = [&](bool measured, bool pass, const std::string& text) {
        if (!measured) {
            goals.push_back("goal: " + text + ": not measured");
            return;
        }
        all_pass = all_pass && pass;
        goals.push_back("goal: " + text + ": " + (pass ? "PASS" : "FAIL"));
    };
    for (long n : g_options.threads) {
        const Case g{n, Tool::gdb};
        const Case e{n, Tool::eu_stack};
        const Case x{n, Tool::xstack};
        const double gb = best_of(g);
        const double eb = best_of(e);
        const double xb = best_of(x);
        const auto& stops = g_samples[case_name(x)].stop_ms;
        const double stop_med = median(stops);
        const double stop_max = stops.empty() ? 0 : *std::max_element(stops.begin(), stops.end());
        char stop[48];
        std::snprintf(stop, sizeof stop, "%.2f / %.2f", stop_med, stop_max);
        char vg[16];
        char ve[16];
        std::snprintf(vg, sizeof vg, "%.1fx", ratio(gb, xb));
        std::snprintf(ve, sizeof ve, "%.2fx", ratio(eb, xb));
        std::fprintf(out, "%8ld | %17s %17s %17s | %8s %8s | %15s\n", n, ms(gb, median_wall(g)).c_str(),
                     ms(eb, median_wall(e)).c_str(), ms(xb, median_wall(x)).c_str(), vg, ve,
                     stops.empty() ? "n/a" : stop);
        char text[160];
        std::snprintf(text, sizeof text, "xstack >= 10x faster than gdb at %ld threads (%.1fx)", n,
                      ratio(gb, xb));
        goal(gb > 0 && xb > 0, ratio(gb, xb) >= 10.0, text);
        std::snprintf(text, sizeof text, "xstack no slower than eu-stack at %ld threads (%.2fx)", n,
                      ratio(eb, xb));
        goal(eb > 0 && xb > 0, ratio(eb, xb) >= 1.0, text);
        if (n == 8) {
            std::snprintf(text, sizeof text, "target stopped < 2 ms at %ld threads (median %.2f ms)", n,
                          stop_med);
            goal(!stops.empty(), stop_med < 2.0, text);
        }
    }
    std::fprintf(out, "\n");
    for (const std::string& g : goals) {
        std::fprintf(out, "%s\n", g.c_str());
    }
    std::fprintf(out, "goals: %s\n", all_pass ? "all PASS" : "some FAIL");
    const double load_after = load_average();
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    std::fprintf(out, "load average: %.2f before, %.2f after, on %ld CPUs%s\n", g_load_before, load_after,
                 cpus,
                 std::max(g_load_before, load_after) > 1.5
                     ? ": other work was running, wall times are stretched; compare ratios"
                     : "");
    std::fflush(out);
}

}  // namespace
}  // namespace xproc::bench

int main(int argc, char** argv) {
    using namespace xproc::bench;
    if (!parse_options(argc, argv)) {
        return 2;
    }
    if (g_options.eu_stack.empty()) {
        g_options.eu_stack = find_in_path("eu-stack");
    }
    if (g_options.gdb.empty()) {
        g_options.gdb = find_in_path("gdb");
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 2;
    }
    FILE* info = g_options.table_to_stderr ? stderr : stdout;
    std::fprintf(
        info, "xstack:   %s\neu-stack: %s\ngdb:      %s\ntarget:   %s\n",
        g_options.xstack.empty() ? "(not built)" : g_options.xstack.c_str(),
        g_options.eu_stack.empty() ? "(not found: apt-get install elfutils)" : g_options.eu_stack.c_str(),
        g_options.gdb.empty() ? "(not found: apt-get install gdb)" : g_options.gdb.c_str(),
        g_options.target.c_str());
    std::fflush(info);
    register_all();
    g_load_before = load_average();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    print_table();
    g_targets.clear();
    return g_failures == 0 ? 0 : 1;
}
