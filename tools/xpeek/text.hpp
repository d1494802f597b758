// SPDX-License-Identifier: MIT
#pragma once
/// @file text.hpp
/// Small string helpers shared by xpeek's command files.

#include <cctype>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace xpeek {

/// `s` without leading and trailing white space.
inline std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
        s.remove_suffix(1);
    }
    return s;
}

/// The first word of `s`; `s` is advanced past it and the spaces after it.
inline std::string_view next_word(std::string_view& s) {
    s = trim(s);
    std::size_t n = 0;
    while (n < s.size() && std::isspace(static_cast<unsigned char>(s[n])) == 0) {
        ++n;
    }
    const std::string_view w = s.substr(0, n);
    s = trim(s.substr(n));
    return w;
}

/// "0x1f" (gdb's hex: no padding).
inline std::string hex(std::uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

/// "0x00007f12345678" (gdb's 16-digit frame and breakpoint addresses).
inline std::string hex16(std::uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
    return buf;
}

}  // namespace xpeek
