// SPDX-License-Identifier: MIT
#pragma once
/// @file bench.hpp
/// `xring bench`: the ring against the usual IPC mechanisms, through the shared harness
/// bench/ipc/ipc_bench.hpp.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace xring {

struct BenchOptions {
    bool quick = false;
    bool json = false;
    std::vector<std::string> transports;  ///< empty: all
    std::uint64_t messages = 0;           ///< 0: run for a time
    std::vector<std::size_t> sizes;       ///< empty: the harness's default
    std::size_t ping_size = 0;            ///< ping-pong message size; 0: the harness's default
    bool throughput_only = false;
    unsigned repeat = 1;       ///< interleaved rounds; each case's best run is reported
    std::string pin = "both";  ///< both, one or none (bench::Pinning)
    std::vector<int> cpus;     ///< the two CPUs --pin uses; empty: the first two allowed
};

int run_bench(const BenchOptions& options);

}  // namespace xring
