// SPDX-License-Identifier: MIT
#pragma once
/// @file options.hpp
/// What the command line asked for, after CLI11 parsed it and pmap's rules about
/// combining options were applied.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace xpmap {

/// The output format: pmap's four, and xpmap's two.
enum class Format : std::uint8_t {
    standard,  ///< pmap PID: address, size, mode, name; " total"
    extended,  ///< -x: address, Kbytes, RSS, Dirty, mode, name
    device,    ///< -d: address, Kbytes, mode, offset, device, name
    smaps,     ///< -X, -XX, -c, -C: one column per smaps field
    json,      ///< --json
    by_file,   ///< --by-file
};

/// --sort keys. Every key but `address` sorts largest first.
enum class SortKey : std::uint8_t { none, rss, pss, size, swap, dirty, address };

struct Options {
    Format format = Format::standard;
    int x_count = 0;  ///< how many -X (1: -X, 2 or more: -XX)
    bool quiet = false;
    bool show_path = false;
    std::uint64_t range_low = 0;
    std::uint64_t range_high = ~std::uint64_t{0};
    bool has_range = false;
    /// -c / -C: the smaps columns (and Perm/Offset/Device/Inode/Mapping/VmFlags) the rc file enables.
    bool rc_fields = false;
    std::vector<std::string> enabled_fields;
    SortKey sort = SortKey::none;
    std::optional<std::size_t> top;
    std::vector<std::string> pid_args;

    /// Rows are reordered or cut: pmap's row-by-row range handling does not apply.
    bool reorders() const noexcept { return sort != SortKey::none || top.has_value(); }
};

}  // namespace xpmap
