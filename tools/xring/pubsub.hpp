// SPDX-License-Identifier: MIT
#pragma once
/// @file pubsub.hpp
/// `xring pub` (standard input to messages) and `xring sub` (messages to standard output).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common.hpp"

namespace xring {

struct PubOptions {
    std::string name;                                 ///< "/NAME"
    std::uint64_t chunk = 0;                          ///< 0: one message per line
    std::optional<std::chrono::nanoseconds> timeout;  ///< per message; none: wait as long as it takes
    bool create = false;
    CreateOptions create_options;
};

struct SubOptions {
    std::string name;
    bool raw = false;         ///< bytes as they are; else each message and a newline
    std::uint64_t count = 0;  ///< 0: until end-of-stream
    bool follow = false;      ///< wait for a new producer when one dies
};

/// Returns the exit status; throws Failure / QuietExit.
int run_pub(const PubOptions& options);
int run_sub(const SubOptions& options);

}  // namespace xring
