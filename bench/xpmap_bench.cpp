// SPDX-License-Identifier: MIT
// xpmap_bench: xpmap next to procps pmap, and both next to the kernel's own cost of producing
// /proc/PID/maps and /proc/PID/smaps, on frozen targets with many mappings, in one run.
// How to run it and read the results: bench/README.md.
//
// Every tool is measured the way a user meets it: one fork+exec of the real binary with stdout
// on /dev/null, timed from spawn to exit (wall clock). After Google Benchmark's own report the
// binary prints a ratio table built from those per-run times.

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

// ---------------------------------------------------------------------------------------------
// What is measured

enum class Mode { plain, extended, extended_all };                 // pmap, pmap -x, pmap -X
enum class Tool { pmap, xpmap, cat_maps, cat_smaps, read_smaps };  // the last three: the kernel

constexpr Mode ALL_MODES[] = {Mode::plain, Mode::extended, Mode::extended_all};

const char* mode_name(Mode m) {
    switch (m) {
        case Mode::plain:
            return "default";
        case Mode::extended:
            return "-x";
        case Mode::extended_all:
            return "-X";
    }
    return "?";
}

const char* mode_flag(Mode m) {
    return m == Mode::extended ? "-x" : m == Mode::extended_all ? "-X" : nullptr;
}

const char* tool_name(Tool t) {
    switch (t) {
        case Tool::pmap:
            return "pmap";
        case Tool::xpmap:
            return "xpmap";
        case Tool::cat_maps:
            return "cat_maps";
        case Tool::cat_smaps:
            return "cat_smaps";
        case Tool::read_smaps:
            return "read_smaps";
    }
    return "?";
}

bool is_kernel(Tool t) {
    return t == Tool::cat_maps || t == Tool::cat_smaps || t == Tool::read_smaps;
}

/// One benchmark: a tool (in a mode, for pmap and xpmap) on the target with `n` mappings.
struct Case {
    long n;
    Mode mode;
    Tool tool;
};

/// "N=50000/-X/xpmap", "N=50000/kernel/cat_smaps": the benchmark's name and the key of its samples.
std::string case_name(const Case& c) {
    return "N=" + std::to_string(c.n) + "/" + (is_kernel(c.tool) ? "kernel" : mode_name(c.mode)) + "/" +
           tool_name(c.tool);
}

// ---------------------------------------------------------------------------------------------
// Options (ours; everything else goes to Google Benchmark)

struct Options {
    std::vector<long> sizes{1000, 10000, 50000};
    long iterations = 0;     // per repetition; 0: chosen per size, see iterations_for()
    long repetitions = 3;    // 0 when --benchmark_repetitions is given: Google Benchmark's then
    bool interleave = true;  // add --benchmark_enable_random_interleaving=true unless given
    std::string pmap;
    std::string xpmap = XPMAP_BENCH_XPMAP;
    std::string cat;
    std::string target = XPMAP_BENCH_TARGET;
    bool table_to_stderr = false;  // when stdout carries JSON or CSV
};
Options g_options;

/// Timed runs per repetition, few at large N: with 3 repetitions, 30 / 15 / 9 runs in all, and
/// the whole default run takes about two minutes on two cores.
long iterations_for(long n) {
    if (g_options.iterations > 0) {
        return g_options.iterations;
    }
    return n <= 1000 ? 10 : n <= 10000 ? 5 : 3;
}

/// Full path of `name` found in PATH, or "" when it is not there.
std::string find_in_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string_view rest = path != nullptr ? path : "/usr/bin:/bin";
    while (true) {
        const std::size_t colon = rest.find(':');
        std::string dir(rest.substr(0, colon));
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
        "xpmap_bench: xpmap vs procps pmap vs the kernel's /proc/PID/{maps,smaps}, see bench/README.md\n"
        "  --sizes=N[,N...]   mappings in the target (default 1000,10000,50000; at most 65000)\n"
        "  --iterations=K     timed runs per repetition (default 10 / 5 / 3 for N <= 1000 / 10000 / more)\n"
        "                     Every benchmark runs 3 repetitions, all shuffled together (change with\n"
        "                     --benchmark_repetitions and --benchmark_enable_random_interleaving)\n"
        "  --xpmap=PATH       xpmap to measure (default: the one in this build tree)\n"
        "  --pmap=PATH        pmap to compare with (default: pmap from PATH)\n"
        "  --target=PATH      the many_maps target program\n"
        "Google Benchmark's own options follow.\n\n");
}

/// Takes our options out of argv, leaving Google Benchmark's. Returns false on a bad value.
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
        if (auto v = value_of("--sizes")) {
            g_options.sizes.clear();
            const char* p = v->c_str();
            while (*p != '\0') {
                char* end = nullptr;
                const long n = std::strtol(p, &end, 10);
                if (end == p || n < 0 || n > 65000 || (*end != ',' && *end != '\0')) {
                    std::fprintf(stderr, "xpmap_bench: bad --sizes value: %s\n", v->c_str());
                    return false;
                }
                g_options.sizes.push_back(n);
                p = *end == ',' ? end + 1 : end;
            }
        } else if (auto it = value_of("--iterations")) {
            g_options.iterations = std::strtol(it->c_str(), nullptr, 10);
            if (g_options.iterations <= 0) {
                std::fprintf(stderr, "xpmap_bench: bad --iterations value: %s\n", it->c_str());
                return false;
            }
        } else if (auto x = value_of("--xpmap")) {
            g_options.xpmap = *x;
        } else if (auto p = value_of("--pmap")) {
            g_options.pmap = *p;
        } else if (auto t = value_of("--target")) {
            g_options.target = *t;
        } else {
            if (arg == "--help" || arg == "-h") {
                print_usage();
            }
            if (arg.starts_with("--benchmark_format=") && !arg.ends_with("=console")) {
                g_options.table_to_stderr = true;
            }
            if (arg.starts_with("--benchmark_repetitions")) {
                g_options.repetitions = 0;
            }
            if (arg.starts_with("--benchmark_enable_random_interleaving")) {
                g_options.interleave = false;
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
    double wall_s = 0;  // spawn to exit
    double user_s = 0;  // the child's CPU time in user space: parsing and formatting
    double sys_s = 0;   // ... and in the kernel: mostly generating maps/smaps
    int status = 0;     // wait status
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

double seconds(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

/// Runs argv[0] (a full path) to completion: stdin from /dev/null, stdout to `out_fd` or to
/// /dev/null when it is -1, stderr inherited so that a tool's complaint is seen.
std::optional<RunSample> run_command(const std::vector<std::string>& argv, int out_fd, std::string& error) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (out_fd >= 0) {
        posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
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
    rusage usage{};
    while (wait4(pid, &s.status, 0, &usage) < 0) {
        const int err = errno;
        if (err != EINTR) {
            error = "wait4: " + std::string(std::strerror(err));
            return std::nullopt;
        }
    }
    s.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    s.user_s = seconds(usage.ru_utime);
    s.sys_s = seconds(usage.ru_stime);
    return s;
}

/// Reads a whole file in this process with large read(2) calls: the kernel's cost without an exec.
/// Counts lines into `lines` when it is not null.
std::optional<RunSample> read_whole_file(const std::string& path, long* lines, std::string& error) {
    static std::vector<char> buffer(1 << 18);
    rusage before{};
    rusage after{};
    getrusage(RUSAGE_THREAD, &before);
    const auto start = std::chrono::steady_clock::now();
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        error = "open " + path + ": " + std::strerror(err);
        return std::nullopt;
    }
    long count = 0;
    for (;;) {
        const ssize_t n = read(fd, buffer.data(), buffer.size());
        if (n < 0) {
            const int err = errno;
            if (err == EINTR) {
                continue;
            }
            close(fd);
            error = "read " + path + ": " + std::strerror(err);
            return std::nullopt;
        }
        if (n == 0) {
            break;
        }
        if (lines != nullptr) {
            count += std::count(buffer.data(), buffer.data() + n, '\n');
        }
    }
    close(fd);
    RunSample s;
    s.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    getrusage(RUSAGE_THREAD, &after);
    s.user_s = seconds(after.ru_utime) - seconds(before.ru_utime);
    s.sys_s = seconds(after.ru_stime) - seconds(before.ru_stime);
    if (lines != nullptr) {
        *lines = count;
    }
    return s;
}

long count_lines(int fd) {
    long count = 0;
    char buf[1 << 16];
    off_t off = 0;
    for (;;) {
        const ssize_t n = pread(fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return count;
        }
        count += std::count(buf, buf + n, '\n');
        off += n;
    }
}

// ---------------------------------------------------------------------------------------------
// The target: tests/targets/many_maps, frozen with SIGSTOP for the whole measurement

class Target {
  public:
    Target(const std::string& path, long n) : m_n(n) { start(path); }
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

    long n() const { return m_n; }
    pid_t pid() const { return m_pid; }
    const std::string& error() const { return m_error; }  ///< empty when it is ready and frozen
    long mappings() const { return m_mappings; }          ///< lines of /proc/PID/maps once frozen

  private:
    void start(const std::string& path) {
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
            // Never outlive the bench, even if it is killed: a frozen 50,000-mapping process
            // left behind would hold 200 MB.
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) {
                _exit(1);
            }
            dup2(fds[1], STDOUT_FILENO);
            const std::string count = std::to_string(m_n);
            execl(path.c_str(), path.c_str(), count.c_str(), static_cast<char*>(nullptr));
            std::fprintf(stderr, "xpmap_bench: exec %s: %s\n", path.c_str(), std::strerror(errno));
            _exit(127);
        }
        close(fds[1]);
        m_pid = pid;

        // Wait for "ready": the target has made all its mappings.
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
            m_error = path + " " + std::to_string(m_n) + " did not get ready (see its message above)";
            return;
        }
        int status = 0;
        if (kill(m_pid, SIGSTOP) != 0 || waitpid(m_pid, &status, WUNTRACED) != m_pid || !WIFSTOPPED(status)) {
            m_error = "could not freeze the target with SIGSTOP";
            return;
        }
        std::string ignored;
        read_whole_file("/proc/" + std::to_string(m_pid) + "/maps", &m_mappings, ignored);
    }

    long m_n;
    pid_t m_pid = -1;
    long m_mappings = 0;
    std::string m_error;
};

/// The targets, made when first needed and kept to the end: with random interleaving the
/// benchmarks of all sizes take turns (all three cost about 250 MB).
std::map<long, std::unique_ptr<Target>> g_targets;

const Target& target_with(long n) {
    std::unique_ptr<Target>& t = g_targets[n];
    if (!t) {
        t = std::make_unique<Target>(g_options.target, n);
    }
    return *t;
}

// ---------------------------------------------------------------------------------------------
// Samples, kept for the ratio table

struct Samples {
    std::vector<double> wall_s;
    std::vector<double> user_s;
    std::vector<double> sys_s;
    long output_lines = -1;  // from the untimed warm-up run
    long mappings = 0;       // of the target, for the table
};
std::map<std::string, Samples> g_samples;
int g_failures = 0;

double median(std::vector<double> v) {
    if (v.empty()) {
        return 0;
    }
    const std::size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    double m = v[mid];
    if (v.size() % 2 == 0) {
        m = (m + *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid))) / 2;
    }
    return m;
}

double mean(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) {
        sum += x;
    }
    return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

/// What the table and the counters say about one case; all 0 when it was not measured
/// (filtered out, or failed).
struct Summary {
    double best_s = 0;  // fastest wall time: other work on the machine only ever adds to it
    double cpu_s = 0;   // median user+sys CPU time of the child: hardly moved by other work
    double user_s = 0;  // mean
    double sys_s = 0;   // mean
};

Summary summary_of(const Case& c) {
    auto it = g_samples.find(case_name(c));
    if (it == g_samples.end() || it->second.wall_s.empty()) {
        return {};
    }
    const Samples& s = it->second;
    std::vector<double> cpu(s.user_s.size());
    for (std::size_t i = 0; i < cpu.size(); ++i) {
        cpu[i] = s.user_s[i] + s.sys_s[i];
    }
    return {*std::min_element(s.wall_s.begin(), s.wall_s.end()), median(cpu), mean(s.user_s), mean(s.sys_s)};
}

/// a / b, or 0 when either is unknown.
double ratio(double a, double b) {
    return a > 0 && b > 0 ? a / b : 0;
}

// ---------------------------------------------------------------------------------------------
// The benchmark body

std::vector<std::string> command_for(const Case& c, pid_t pid) {
    const std::string spid = std::to_string(pid);
    switch (c.tool) {
        case Tool::pmap:
        case Tool::xpmap: {
            std::vector<std::string> argv{c.tool == Tool::pmap ? g_options.pmap : g_options.xpmap};
            if (const char* flag = mode_flag(c.mode)) {
                argv.emplace_back(flag);
            }
            argv.push_back(spid);
            return argv;
        }
        case Tool::cat_maps:
            return {g_options.cat, "/proc/" + spid + "/maps"};
        case Tool::cat_smaps:
            return {g_options.cat, "/proc/" + spid + "/smaps"};
        case Tool::read_smaps:
            return {};
    }
    return {};
}

/// Runs a case once; `lines`, when not null, gets the number of lines it printed.
std::optional<RunSample> run_once(const Case& c, pid_t pid, long* lines, std::string& error) {
    if (c.tool == Tool::read_smaps) {
        return read_whole_file("/proc/" + std::to_string(pid) + "/smaps", lines, error);
    }
    int out_fd = -1;
    if (lines != nullptr) {
        out_fd = memfd_create("xpmap_bench_out", MFD_CLOEXEC);
        if (out_fd < 0) {
            error = std::string("memfd_create: ") + std::strerror(errno);
            return std::nullopt;
        }
    }
    auto sample = run_command(command_for(c, pid), out_fd, error);
    if (out_fd >= 0) {
        if (sample) {
            *lines = count_lines(out_fd);
        }
        close(out_fd);
    }
    if (sample && sample->status != 0) {
        error = command_for(c, pid)[0] + ": " + describe_status(sample->status);
        return std::nullopt;
    }
    return sample;
}

void fail(benchmark::State& state, const std::string& why) {
    ++g_failures;
    state.SkipWithError(why.c_str());
}

/// The pmap run that a case is compared with: the same mode for xpmap; for the kernel, `pmap`
/// for maps and `pmap -X` for smaps.
Case pmap_peer(const Case& c) {
    if (c.tool == Tool::cat_maps) {
        return {c.n, Mode::plain, Tool::pmap};
    }
    if (is_kernel(c.tool)) {
        return {c.n, Mode::extended_all, Tool::pmap};
    }
    return {c.n, c.mode, Tool::pmap};
}

void run_case(benchmark::State& state, Case c) {
    const Target& target = target_with(c.n);
    if (!target.error().empty()) {
        fail(state, target.error());
        return;
    }
    if (c.tool == Tool::xpmap && g_options.xpmap.empty()) {
        fail(state, "xpmap is not built in this tree: build tools/xpmap or pass --xpmap=PATH");
        return;
    }
    // Every repetition adds to the same samples.
    Samples& samples = g_samples[case_name(c)];
    samples.mappings = target.mappings();

    // Before the first repetition, one untimed run: checks that the command works, counts its
    // output, warms the caches.
    std::string error;
    if (samples.output_lines < 0 && !run_once(c, target.pid(), &samples.output_lines, error)) {
        fail(state, error);
        return;
    }
    for (auto _ : state) {
        auto s = run_once(c, target.pid(), nullptr, error);
        if (!s) {
            fail(state, error);
            break;
        }
        samples.wall_s.push_back(s->wall_s);
        samples.user_s.push_back(s->user_s);
        samples.sys_s.push_back(s->sys_s);
    }
    // Counters for --benchmark_format=json|csv and the console's tabular view. Google Benchmark
    // prints values below 1 with SI prefixes: a vs_pmap of "850m" means 0.85.
    const Summary self = summary_of(c);
    const Summary peer = summary_of(pmap_peer(c));
    state.counters["best_ms"] = self.best_s * 1e3;
    state.counters["usr_ms"] = self.user_s * 1e3;
    state.counters["sys_ms"] = self.sys_s * 1e3;
    state.counters["vs_pmap"] = ratio(peer.best_s, self.best_s);
    state.counters["cpu_vs_pmap"] = ratio(peer.cpu_s, self.cpu_s);
    state.counters["mappings"] = static_cast<double>(samples.mappings);
}

void register_all() {
    for (long n : g_options.sizes) {
        std::vector<Case> cases;
        for (Mode m : ALL_MODES) {
            cases.push_back({n, m, Tool::pmap});
            cases.push_back({n, m, Tool::xpmap});
        }
        // After pmap, so that their vs_pmap counters can be filled in.
        cases.push_back({n, Mode::plain, Tool::cat_maps});
        cases.push_back({n, Mode::plain, Tool::cat_smaps});
        cases.push_back({n, Mode::plain, Tool::read_smaps});
        for (const Case& c : cases) {
            auto* b = benchmark::RegisterBenchmark(case_name(c).c_str(), run_case, c)
                          ->Iterations(iterations_for(n))
                          ->UseRealTime()
                          ->Unit(benchmark::kMillisecond);
            if (g_options.repetitions > 0) {
                b->Repetitions(static_cast<int>(g_options.repetitions))->DisplayAggregatesOnly(true);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The ratio table

std::string times_text(double r) {
    if (r <= 0) {
        return "n/a";
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2fx", r);
    return buf;
}

std::string ms_text(double seconds_value) {
    if (seconds_value <= 0) {
        return "n/a";
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", seconds_value * 1e3);
    return buf;
}

/// The 1-minute load average, from /proc/loadavg (-1 when unreadable).
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
        return;  // --benchmark_list_tests, or a filter that matched nothing
    }
    FILE* out = g_options.table_to_stderr ? stderr : stdout;
    std::fprintf(
        out,
        "\nxpmap vs procps pmap, target frozen. Times: the fastest of the timed runs (wall clock, spawn\n"
        "to exit, stdout to /dev/null). Speed-up = pmap time / other time (higher is faster; below 1 is\n"
        "slower). kernel = `cat` of /proc/PID/maps (default mode) or /proc/PID/smaps (-x, -X): the\n"
        "floor for any tool. cpu = the same speed-up by user+sys CPU time of the child (median).\n\n");
    std::fprintf(out, "%7s %6s %8s | %9s %9s %9s | %7s %7s %7s | %15s | %s\n", "N", "maps", "mode", "pmap ms",
                 "xpmap ms", "kernel ms", "xpmap", "kernel", "cpu", "xpmap usr/sys", "output lines");
    std::vector<std::string> sentences;
    for (long n : g_options.sizes) {
        for (Mode m : ALL_MODES) {
            const Case pmap{n, m, Tool::pmap};
            const Case xpmap{n, m, Tool::xpmap};
            const Case kernel{n, m, m == Mode::plain ? Tool::cat_maps : Tool::cat_smaps};
            const Summary p = summary_of(pmap);
            const Summary x = summary_of(xpmap);
            const Summary k = summary_of(kernel);
            auto sp = g_samples.find(case_name(pmap));
            auto sx = g_samples.find(case_name(xpmap));
            const long maps = sp != g_samples.end()   ? sp->second.mappings
                              : sx != g_samples.end() ? sx->second.mappings
                                                      : 0;
            std::string cpu = "n/a";
            if (x.best_s > 0) {
                cpu = ms_text(x.user_s) + "/" + ms_text(x.sys_s);
            }
            std::string lines = "n/a";
            if (sp != g_samples.end() && sx != g_samples.end() && sp->second.output_lines >= 0 &&
                sx->second.output_lines >= 0) {
                const long lp = sp->second.output_lines;
                const long lx = sx->second.output_lines;
                lines = lp == lx ? std::to_string(lp) + " (same)"
                                 : "DIFFER: pmap " + std::to_string(lp) + ", xpmap " + std::to_string(lx);
            }
            std::fprintf(out, "%7ld %6ld %8s | %9s %9s %9s | %7s %7s %7s | %15s | %s\n", n, maps,
                         mode_name(m), ms_text(p.best_s).c_str(), ms_text(x.best_s).c_str(),
                         ms_text(k.best_s).c_str(), times_text(ratio(p.best_s, x.best_s)).c_str(),
                         times_text(ratio(p.best_s, k.best_s)).c_str(),
                         times_text(ratio(p.cpu_s, x.cpu_s)).c_str(), cpu.c_str(), lines.c_str());

            const double r = ratio(p.best_s, x.best_s);
            if (r > 0) {
                char s[256];
                std::snprintf(
                    s, sizeof s,
                    "N=%-6ld %-8s xpmap %.1fx %s than pmap (kernel %s read alone: %.1fx; by CPU time: %.1fx)",
                    n, (std::string(mode_name(m)) + ":").c_str(), r >= 1 ? r : 1 / r,
                    r >= 1 ? "faster" : "SLOWER", m == Mode::plain ? "maps" : "smaps",
                    ratio(p.best_s, k.best_s), ratio(p.cpu_s, x.cpu_s));
                sentences.emplace_back(s);
            }
        }
    }
    std::fprintf(out, "\n");
    for (const std::string& s : sentences) {
        std::fprintf(out, "%s\n", s.c_str());
    }

    // The goals of issue 2 (section 4), at 50,000 mappings.
    struct Goal {
        Mode mode;
        double at_least;
    };
    constexpr long GOAL_N = 50000;
    for (const Goal& g : {Goal{Mode::extended_all, 3.0}, Goal{Mode::extended, 2.0}}) {
        const double r = ratio(summary_of({GOAL_N, g.mode, Tool::pmap}).best_s,
                               summary_of({GOAL_N, g.mode, Tool::xpmap}).best_s);
        if (r > 0) {
            std::fprintf(out, "goal: xpmap %s >= %.0fx faster than pmap %s at N=%ld: %s (%.2fx)\n",
                         mode_name(g.mode), g.at_least, mode_name(g.mode), GOAL_N,
                         r >= g.at_least ? "met" : "NOT MET", r);
        }
    }
    // The bench itself keeps about one CPU busy; more than that was someone else's work.
    const double load_after = load_average();
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    std::fprintf(out, "load average: %.2f before, %.2f after, on %ld CPUs%s\n", g_load_before, load_after,
                 cpus,
                 std::max(g_load_before, load_after) > 1.5
                     ? ": other work was running, wall times are stretched; trust the cpu column more"
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
    if (g_options.pmap.empty()) {
        g_options.pmap = find_in_path("pmap");
    }
    g_options.cat = find_in_path("cat");
    if (g_options.pmap.empty() || g_options.cat.empty()) {
        std::fprintf(stderr, "xpmap_bench: pmap (procps) and cat must be in PATH\n");
        return 2;
    }
    // Repetitions of all benchmarks in random order: a neighbour's load then falls on pmap and
    // xpmap alike instead of on whichever happened to run at the time.
    std::vector<char*> args(argv, argv + argc);
    std::string interleave = "--benchmark_enable_random_interleaving=true";
    if (g_options.interleave) {
        args.push_back(interleave.data());
    }
    args.push_back(nullptr);
    argc = static_cast<int>(args.size()) - 1;
    argv = args.data();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 2;
    }
    FILE* info = g_options.table_to_stderr ? stderr : stdout;
    std::fprintf(info, "pmap:   %s\nxpmap:  %s\ntarget: %s\n", g_options.pmap.c_str(),
                 g_options.xpmap.empty() ? "(not built)" : g_options.xpmap.c_str(), g_options.target.c_str());
    std::fflush(info);
    register_all();
    g_load_before = load_average();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    g_targets.clear();
    print_table();
    return g_failures == 0 ? 0 : 1;
}
