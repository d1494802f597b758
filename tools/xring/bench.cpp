// SPDX-License-Identifier: MIT
// xring bench: a front end of the IPC benchmark harness (bench/ipc/ipc_bench.hpp).

#include "bench.hpp"

#include <unistd.h>
#include <cstdio>

#include "common.hpp"
#include "ipc_bench.hpp"

namespace xring {

namespace bench = xproc::ipc_bench;

int run_bench(const BenchOptions& options) {
    bench::Options o = options.quick ? bench::quick_options() : bench::Options{};
    for (const std::string& name : options.transports) {
        const auto t = bench::parse_transport(name);
        if (!t) {
            std::string known;
            for (const bench::Transport k : bench::ALL_TRANSPORTS) {
                known += (known.empty() ? "" : ", ") + std::string(bench::to_string(k));
            }
            usage_error("--transport: unknown transport '" + name + "' (" + known + ")");
        }
        o.transports.push_back(*t);
    }
    o.messages = options.messages;
    o.pinning = bench::parse_pinning(options.pin).value_or(bench::Pinning::both_ways);
    if (options.cpus.size() == 2) {
        o.a_cpu = options.cpus[0];
        o.b_cpu = options.cpus[1];
    }
    if (auto error = bench::resolve_pinning(o)) {
        usage_error(*error);
    }
    o.repetitions = options.repeat;
    if (options.ping_size != 0) {
        o.ping_pong_size = options.ping_size;
    }
    if (!options.sizes.empty()) {
        o.throughput_sizes = options.sizes;
    }
    const bool progress = ::isatty(STDERR_FILENO) != 0;
    bench::Session session(o);
    std::vector<bench::Case> cases = bench::default_cases(o);
    if (options.throughput_only) {
        std::erase_if(cases, [](const bench::Case& c) { return c.kind != bench::Kind::throughput; });
    }
    std::size_t done = 0;
    const bench::Report report = session.run_all(cases, [&](const bench::Measurement& m) {
        ++done;
        if (progress) {
            std::fprintf(stderr, "\rxring bench: %zu/%zu %s %s %zu B: %s   ", done, cases.size(),
                         std::string(bench::to_string(m.what.transport)).c_str(),
                         std::string(bench::to_string(m.what.kind)).c_str(), m.what.size,
                         std::string(bench::to_string(m.status)).c_str());
            std::fflush(stderr);
        }
        // Ctrl-C killed the measurement's processes (they keep the default action); stop here.
        check_signal();
    });
    if (progress) {
        std::fputs("\r\033[K", stderr);
    }
    if (options.json) {
        bench::print_json(stdout, report);
    } else {
        bench::print_table(stdout, report);
    }
    std::fflush(stdout);
    if (!bench::succeeded(report)) {
        std::fprintf(stderr, "xring: bench: a measurement failed (see its reason in the report)\n");
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

}  // namespace xring
