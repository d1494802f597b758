// SPDX-License-Identifier: MIT
#pragma once
/// @file rc_file.hpp
/// pmap's rc file (-c, -C FILE, -n, -N FILE), the same format and the same file
/// (~/.pmaprc) as procps-ng 4.0.2, so that a user's rc file serves both tools.
///
/// Format (found by experiment; `pmap -n` writes the template, see rc_template()):
///   - lines are read up to 1024 bytes; leading blanks are ignored; '#' starts a
///     comment line; empty lines are ignored;
///   - "[Fields Display]" starts the list of enabled columns: one name per line
///     (its first blank-separated word): Perm, Offset, Device, Inode, Mapping,
///     VmFlags, or any smaps field name (Size, Rss, Pss_Dirty, THPeligible...);
///     the columns appear in smaps order, not in the order listed;
///   - "[Mapping]" holds options: "ShowPath" toggles full paths (so ShowPath
///     together with -p shows base names again, as in pmap);
///   - other "[sections]" are ignored; anything else earns a warning on stderr.

#include <string>
#include <vector>

namespace xpmap {

/// The text pmap -n / -N writes.
const char* rc_template() noexcept;

/// Reads an rc file. Returns false when it cannot be opened. Warnings (syntax
/// errors, unsupported sections) go to stderr prefixed with "xpmap: ".
bool read_rc_file(const std::string& path, std::vector<std::string>& enabled_fields, bool& show_path);

/// Creates `path` with the template, failing (false, after a warning) if it
/// already exists or cannot be written.
bool create_rc_file(const std::string& path);

/// "$HOME/.pmaprc"; empty (after a warning) when HOME is not set.
std::string default_rc_path();

}  // namespace xpmap
