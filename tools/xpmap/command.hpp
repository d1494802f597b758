// SPDX-License-Identifier: MIT
#pragma once
/// @file command.hpp
/// The command line pmap prints after "PID:", made exactly as procps-ng 4.0.2
/// makes it (its library's PIDS_CMDLINE), so that xpmap's header lines are
/// byte-identical.
///
/// Rules found by experiment against Debian 12's pmap:
///  - argv is read as /proc/PID/cmdline gives it, at most 131071 bytes; trailing
///    NULs are dropped, every other NUL and every newline becomes a space;
///  - then it is escaped: in a UTF-8 locale (nl_langinfo(CODESET) is "UTF-8"),
///    control bytes (< 0x20, 0x7f) become '?', a byte that cannot start a UTF-8
///    sequence (0x80-0xc1, 0xf5-0xff) or a sequence cut by the end of the string
///    switches to the 8-bit rule for the rest of the string (continuation bytes
///    are not checked); in other locales, and after such a switch, the 8-bit rule
///    applies: control bytes become '.', bytes >= 0x80 become '?';
///  - an empty result is shown as "?";
///  - with no cmdline at all (kernel threads, zombies) it is "[comm]", escaped the
///    same way, followed by " <defunct>" for a zombie.

#include <string>
#include <string_view>
#include <vector>

namespace xpmap {

/// Whether the current LC_CTYPE is UTF-8 (call after setlocale()).
bool locale_is_utf8();

/// The header text for a process with argument vector `argv` (empty when the
/// kernel gives no cmdline), `comm` and `state` (from /proc/PID/stat).
std::string pmap_command(const std::vector<std::string>& argv, std::string_view comm, char state, bool utf8);

/// procps' escape_str(): escapes `s` in place by the rules above.
void escape_in_place(std::string& s, bool utf8);

}  // namespace xpmap
