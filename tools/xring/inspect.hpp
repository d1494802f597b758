// SPDX-License-Identifier: MIT
#pragma once
/// @file inspect.hpp
/// `xring stat` (a snapshot of a ring's header, optionally sampled with rates) and
/// `xring check` (offline validation of a whole segment).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "xproc/ring.hpp"

namespace xring {

struct StatOptions {
    std::string name;
    std::optional<std::chrono::nanoseconds> watch;  ///< sample every this long
    std::uint64_t samples = 0;                      ///< with watch: stop after this many (0: until a signal)
    bool json = false;
};

/// Rates between two samples.
struct Rates {
    double seconds = 0;
    double messages_per_second = 0;
    double bytes_per_second = 0;
};

/// The text block of one snapshot (lines ending in '\n').
std::string format_stat_text(const std::string& name, const xproc::RingSnapshot& s, const Rates* rates);
/// One JSON object on one line (with '\n'); `unix_time` is when the sample was taken.
std::string format_stat_json(const std::string& name, const xproc::RingSnapshot& s, const Rates* rates,
                             double unix_time);

int run_stat(const StatOptions& options);
int run_check(const std::string& name);

}  // namespace xring
