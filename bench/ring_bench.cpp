// SPDX-License-Identifier: MIT
// ring_bench: the xproc ring next to pipes, Unix sockets, POSIX and Boost message queues,
// ZeroMQ and iceoryx, and next to two hardware references, between two processes, in one run.
// The measuring is done by the harness in bench/ipc (ipc_bench.hpp); this is its Google
// Benchmark front end. How to run it and read the results: bench/README.md.
//
// One benchmark per (kind, transport, size), each one harness measurement (Iterations(1),
// manual time): `Time` is the time per message for throughput and the median round trip for
// ping-pong; the counters carry the harness's numbers. After Google Benchmark's report the
// harness's own table and the goal ratios follow.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipc_bench.hpp"

namespace xproc::bench {
namespace {

namespace ib = xproc::ipc_bench;

struct BenchOptions {
    ib::Options harness;
    std::string json_path;         // --json=PATH: the harness report as JSON
    bool table_to_stderr = false;  // when stdout carries Google Benchmark's JSON or CSV
};
BenchOptions g_options;
std::unique_ptr<ib::Session> g_session;
std::vector<ib::Measurement> g_measurements;         // each case's best run
std::vector<std::vector<ib::Measurement>> g_rounds;  // g_rounds[round][case]: that round's run
int g_failures = 0;

void print_usage() {
    std::printf(
        "ring_bench: cross-process IPC, xproc ring vs peers vs hardware references; see bench/README.md\n"
        "  --quick              small runs (about 0.05 s each, 2,000 round trips): a smoke test\n"
        "  --seconds=S          throughput: run length of each measurement (default 0.5)\n"
        "  --messages=N         throughput: send exactly N messages instead (overrides --seconds)\n"
        "  --round-trips=N      ping-pong: timed round trips (default 50000; stops after\n"
        "                       --max-ping-seconds=S, default 2, with at least 1000)\n"
        "  --warmup=N           ping-pong: untimed round trips first (default 1000)\n"
        "  --repeat=K           K interleaved rounds (default 1): the table keeps each case's best\n"
        "                       run, a goal ratio is the median of the rounds' ratios\n"
        "  --transports=T[,T]   subset, of:");
    for (const ib::Transport t : ib::ALL_TRANSPORTS) {
        std::printf(" %s", std::string(ib::to_string(t)).c_str());
    }
    std::printf(
        "\n"
        "  --sizes=N[,N]        throughput message sizes in bytes (default 64,1024; 16..4096)\n"
        "  --pin=MODE           where the two sides run: both (default: every run made twice, the\n"
        "                       producer/pinger on the first CPU and the consumer/echoer on the\n"
        "                       second, then swapped, the better kept), one (that way only) or\n"
        "                       none (the kernel places them)\n"
        "  --cpu=A,B            the two CPUs --pin uses (default: the first two this process may\n"
        "                       run on)\n"
        "  --ring-wait=MODE     how ring_copy and ring_zero_copy wait: busy (default: spin on the\n"
        "                       NO_WAIT calls), blocking (futex at once) or adaptive (spin, then\n"
        "                       futex); the *_adaptive transports are always adaptive\n"
        "  --ring-slip=BYTES    throughput runs: a ring consumer that caught up stays up to this much\n"
        "                       behind, a producer that found the ring full waits for this much more\n"
        "                       room (set_slip of both sides; default 65536, 0 = off)\n"
        "  --ring-release-step=BYTES  ping-pong runs: the ring consumers zero what they read at\n"
        "                       their next call, not before the reply (set_release_step; default\n"
        "                       65536, 0 = after every call)\n"
        "  --timeout=S          kill a measurement that runs this much longer than planned (default 60)\n"
        "  --roudi=PATH         iceoryx's daemon (default iox-roudi from PATH; started if none runs)\n"
        "  --json=PATH          also write the harness report as JSON\n"
        "Google Benchmark's own options follow.\n\n");
}

std::optional<std::vector<std::string>> split(const std::string& text) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = text.find(',', start);
        const std::string part =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (part.empty()) {
            return std::nullopt;
        }
        parts.push_back(part);
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
    }
    return parts;
}

bool parse_unsigned(const std::string& text, std::uint64_t& out) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
        return false;
    }
    out = std::strtoull(text.c_str(), nullptr, 10);
    return true;
}

bool parse_seconds(const std::string& text, double& out) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || *end != '\0' || !(v > 0)) {
        return false;
    }
    out = v;
    return true;
}

/// Takes our options out of argv, leaving Google Benchmark's. Returns false on a bad value.
bool parse_options(int& argc, char** argv) {
    // --quick first, whatever its position: the other options refine it.
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--quick") {
            g_options.harness = ib::quick_options();
        }
    }
    ib::Options& o = g_options.harness;
    int out = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value_of = [&](std::string_view key) -> std::optional<std::string> {
            if (arg.starts_with(key) && arg.size() > key.size() && arg[key.size()] == '=') {
                return std::string(arg.substr(key.size() + 1));
            }
            return std::nullopt;
        };
        const auto bad = [&](const std::string& what) {
            std::fprintf(stderr, "ring_bench: bad %s: %s (see --help)\n", what.c_str(), argv[i]);
            return false;
        };
        std::uint64_t n = 0;
        if (arg == "--quick") {
            continue;
        } else if (auto v = value_of("--seconds")) {
            if (!parse_seconds(*v, o.seconds)) {
                return bad("--seconds");
            }
        } else if (auto v = value_of("--messages")) {
            if (!parse_unsigned(*v, o.messages) || o.messages == 0) {
                return bad("--messages");
            }
        } else if (auto v = value_of("--round-trips")) {
            if (!parse_unsigned(*v, o.round_trips) || o.round_trips == 0) {
                return bad("--round-trips");
            }
        } else if (auto v = value_of("--warmup")) {
            if (!parse_unsigned(*v, o.warmup_round_trips)) {
                return bad("--warmup");
            }
        } else if (auto v = value_of("--max-ping-seconds")) {
            if (!parse_seconds(*v, o.ping_pong_max_seconds)) {
                return bad("--max-ping-seconds");
            }
        } else if (auto v = value_of("--repeat")) {
            if (!parse_unsigned(*v, n) || n == 0 || n > 100) {
                return bad("--repeat (1..100)");
            }
            o.repetitions = static_cast<unsigned>(n);
        } else if (auto v = value_of("--timeout")) {
            if (!parse_seconds(*v, o.timeout_seconds)) {
                return bad("--timeout");
            }
        } else if (auto v = value_of("--transports")) {
            auto names = split(*v);
            if (!names) {
                return bad("--transports");
            }
            o.transports.clear();
            for (const std::string& name : *names) {
                auto t = ib::parse_transport(name);
                if (!t) {
                    return bad("transport name '" + name + "'");
                }
                o.transports.push_back(*t);
            }
        } else if (auto v = value_of("--sizes")) {
            auto parts = split(*v);
            if (!parts) {
                return bad("--sizes");
            }
            o.throughput_sizes.clear();
            for (const std::string& p : *parts) {
                if (!parse_unsigned(p, n) || n < 16 || n > 4096) {
                    return bad("--sizes (16..4096)");
                }
                o.throughput_sizes.push_back(n);
            }
        } else if (auto v = value_of("--cpu")) {
            auto parts = split(*v);
            std::uint64_t a = 0;
            std::uint64_t b = 0;
            if (!parts || parts->size() != 2 || !parse_unsigned((*parts)[0], a) ||
                !parse_unsigned((*parts)[1], b)) {
                return bad("--cpu (A,B)");
            }
            o.a_cpu = static_cast<int>(std::min<std::uint64_t>(a, INT_MAX));
            o.b_cpu = static_cast<int>(std::min<std::uint64_t>(b, INT_MAX));
        } else if (auto v = value_of("--pin")) {
            auto p = ib::parse_pinning(*v);
            if (!p) {
                return bad("--pin (both, one, none)");
            }
            o.pinning = *p;
        } else if (auto v = value_of("--ring-wait")) {
            auto w = ib::parse_ring_wait(*v);
            if (!w) {
                return bad("--ring-wait (busy, blocking, adaptive)");
            }
            o.ring_wait = *w;
        } else if (auto v = value_of("--ring-slip")) {
            if (!parse_unsigned(*v, o.ring_slip)) {
                return bad("--ring-slip (bytes, 0 = off)");
            }
        } else if (auto v = value_of("--ring-release-step")) {
            if (!parse_unsigned(*v, o.ring_release_step)) {
                return bad("--ring-release-step (bytes, 0 = off)");
            }
        } else if (auto v = value_of("--roudi")) {
            o.roudi = *v;
        } else if (auto v = value_of("--json")) {
            g_options.json_path = *v;
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
    if (auto error = ib::resolve_pinning(o)) {
        std::fprintf(stderr, "ring_bench: %s\n", error->c_str());
        return false;
    }
    return true;
}

std::string case_name(const ib::Case& c) {
    return std::string(ib::to_string(c.kind)) + "/" + std::string(ib::to_string(c.transport)) + "/" +
           std::to_string(c.size);
}

void run_case(benchmark::State& state, ib::Case c, std::size_t index, unsigned round) {
    if (const ib::Measurement& before = g_measurements[index];
        before.runs > 0 && before.status != ib::Status::ok) {
        // Unavailable or failed in an earlier round: not run again.
        for (auto _ : state) {
            state.SetIterationTime(1e-9);
        }
        state.SkipWithError(before.status == ib::Status::unavailable ? "unavailable (earlier round)"
                                                                     : "FAILED (earlier round)");
        return;
    }
    ib::Measurement m;
    for (auto _ : state) {
        m = g_session->run_once(c);
        // Manual time: per message (throughput) or the median round trip (ping-pong).
        double t = 1e-9;
        if (m.status == ib::Status::ok) {
            t = c.kind == ib::Kind::throughput ? m.seconds / static_cast<double>(m.messages)
                                               : m.rtt_median_ns * 1e-9;
        }
        state.SetIterationTime(t);
    }
    g_rounds[round][index] = m;
    ib::Session::keep_best(g_measurements[index], m);
    if (m.status == ib::Status::unavailable) {
        // Not a failure of the run: the peer could not be set up here.
        state.SkipWithError(("unavailable: " + m.reason).c_str());
        return;
    }
    if (m.status == ib::Status::failed) {
        ++g_failures;
        state.SkipWithError(("FAILED: " + m.reason).c_str());
        return;
    }
    if (c.kind == ib::Kind::throughput) {
        state.counters["msgs_per_s"] = m.messages_per_second;
        state.counters["MB_per_s"] = m.megabytes_per_second;
        state.counters["messages"] = static_cast<double>(m.messages);
    } else {
        state.counters["rtt_med_ns"] = m.rtt_median_ns;
        state.counters["rtt_p99_ns"] = m.rtt_p99_ns;
        state.counters["rtt_p999_ns"] = m.rtt_p999_ns;
        state.counters["round_trips"] = static_cast<double>(m.round_trips);
    }
}

/// --repeat=K: K interleaved rounds (every case once, then every case again), each case's
/// best run kept: the VM's state drifts over minutes (where the two vCPUs run moves results
/// by 2x), and back-to-back runs of one case would compare it under other conditions than
/// the case it is divided by.
void register_all() {
    const std::vector<ib::Case> cases = ib::default_cases(g_options.harness);
    g_measurements.assign(cases.size(), ib::Measurement{});
    const unsigned rounds = std::max(1u, g_options.harness.repetitions);
    g_rounds.assign(rounds, std::vector<ib::Measurement>(cases.size()));
    for (unsigned round = 1; round <= rounds; ++round) {
        for (std::size_t i = 0; i < cases.size(); ++i) {
            const std::string name =
                case_name(cases[i]) + (rounds > 1 ? "/round:" + std::to_string(round) : "");
            benchmark::RegisterBenchmark(name.c_str(), run_case, cases[i], i, round - 1)
                ->Iterations(1)
                ->UseManualTime()
                ->Unit(benchmark::kNanosecond);
        }
    }
}

}  // namespace
}  // namespace xproc::bench

int main(int argc, char** argv) {
    using namespace xproc::bench;
    std::signal(SIGPIPE, SIG_IGN);
    if (!parse_options(argc, argv)) {
        return 2;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 2;
    }
    g_session = std::make_unique<ib::Session>(g_options.harness);
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    // Cases Google Benchmark's filter left out were never run (nor were those that failed
    // or were unavailable in an earlier round, in later rounds).
    std::erase_if(g_measurements, [](const ib::Measurement& m) { return m.runs == 0; });
    for (std::vector<ib::Measurement>& round : g_rounds) {
        std::erase_if(round, [](const ib::Measurement& m) { return m.runs == 0; });
    }
    if (!g_measurements.empty()) {
        const ib::Report report = g_session->make_report(g_measurements, g_rounds);
        FILE* out = g_options.table_to_stderr ? stderr : stdout;
        std::fprintf(out, "\n");
        ib::print_table(out, report);
        if (!g_options.json_path.empty()) {
            FILE* f = std::fopen(g_options.json_path.c_str(), "w");
            if (f == nullptr) {
                std::perror(("ring_bench: " + g_options.json_path).c_str());
                ++g_failures;
            } else {
                ib::print_json(f, report);
                std::fclose(f);
            }
        }
    }
    g_session.reset();  // stops the RouDi it started
    return g_failures == 0 ? 0 : 1;
}
