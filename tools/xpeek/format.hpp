// SPDX-License-Identifier: MIT
#pragma once
/// @file format.hpp
/// gdb's value printing for `x/FMT`, as pure functions of bytes (no I/O, no
/// process): the scalar formats x z d u o t c a f, strings (`x/s`, with gdb's
/// escapes, `<repeats N times>` runs, `<incomplete sequence ...>`, the 200
/// element limit) and addresses with `<sym+off>` labels.
///
/// The rules follow gdb 13's printcmd.c (print_scalar_formatted, do_examine,
/// decode_format) and valprint.c (generic_printstr, print_wchar), checked
/// against /usr/bin/gdb by tests/integration/xpeek_test.cpp.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace xpeek {

/// Bytes per unit for gdb's size letters b h w g.
std::size_t unit_bytes(char size) noexcept;

/// Items gdb prints per line for a format and size (8 for b/h, 4 for w, 2 for g, 1 for s).
int items_per_line(char format, char size) noexcept;

/// gdb's `<sym+off>` for an address, or "" when gdb would print no label.
using Labeler = std::function<std::string(std::uint64_t address)>;

/// The `print` settings that change how x/ prints (gdb's `set print elements`, `set print repeats`).
struct PrintSettings {
    unsigned print_max = 200;        ///< characters of a string printed before "..."
    unsigned repeat_threshold = 10;  ///< runs longer than this print as '<c>' <repeats N times>
};

/// "0x55ca3f582070 <xp_small+4>" (gdb's print_address): hex without padding, then the label.
std::string format_address(std::uint64_t address, const Labeler& label);

/// One item of x/FMT for formats x z d u o t c a f (size b h w g): `bytes` holds
/// unit_bytes(size) bytes in the machine's (little-endian) order.
std::string format_scalar(std::span<const std::byte> bytes, char format, char size, const Labeler& label);

/// gdb's float printing: %.9g (float) / %.17g (double), "inf", "-inf", "nan(0xMANTISSA)", "-0".
std::string format_float(float value);
std::string format_double(double value);

/// A character literal as gdb prints a char value: `116 't'`, `10 '\n'`, `-1 '\377'`.
std::string format_char(std::int64_t value);

/// Converts target characters to wide characters like gdb's wchar_iterator (iconv from the
/// target charset, here the locale's codeset, or UTF-16LE/UTF-32LE for x/sh and x/sw).
/// Decides which bytes are valid, printable characters; the rest print as escapes.
class Charset {
  public:
    /// The current locale's codeset (call after setlocale); width 1, 2 or 4 bytes per unit.
    static Charset for_width(int width);
    int width() const noexcept { return m_width; }
    const std::string& name() const noexcept { return m_name; }

  private:
    friend std::string format_string(std::span<const std::byte>, bool, const Charset&, const PrintSettings&);
    std::string m_name;
    int m_width = 1;
};

/// A string as gdb's x/s prints it (C language printstr): optional u/U prefix, quotes,
/// escapes, repeat runs, "..." when `force_ellipses` or print_max stops it. `units` holds the
/// characters read, a trailing NUL unit included when one was found (it is not printed).
std::string format_string(std::span<const std::byte> units, bool force_ellipses, const Charset& charset,
                          const PrintSettings& settings);

}  // namespace xpeek
