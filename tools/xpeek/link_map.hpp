// SPDX-License-Identifier: MIT
#pragma once
/// @file link_map.hpp
/// The names the dynamic linker gave the loaded modules (its link_map list, reached
/// through `_r_debug`), keyed by load bias. gdb names a shared library by this name
/// ("/lib/x86_64-linux-gnu/libc.so.6") rather than by the path in /proc/PID/maps
/// ("/usr/lib/x86_64-linux-gnu/libc.so.6"); `info symbol` uses it to print the same.
///
/// Candidate for symbols.hpp (a `Module::linker_name`); here until then.

#include <cstdint>
#include <map>
#include <string>

#include "xproc/memory.hpp"
#include "xproc/symbols.hpp"

namespace xpeek {

/// Load bias -> l_name for every link_map entry with a non-empty name. Empty when the
/// process has no dynamic linker (static) or its list cannot be read.
std::map<std::uint64_t, std::string> read_link_map(xproc::RemoteMemory& memory,
                                                   const xproc::SymbolTable& symbols);

}  // namespace xpeek
