// SPDX-License-Identifier: MIT
#pragma once
/// @file by_file.hpp
/// xpmap --by-file: one row per backing file or pseudo-path, with the totals of
/// its mappings, largest first.
///
///   PID:   command
///    Kbytes   RSS   PSS Dirty  Swap Count Mapping
///      2104  1100   152     8     0     5 /usr/lib/x86_64-linux-gnu/libc.so.6
///      ...
///   ------ ----- ----- ----- ----- -----
///     14712  5764  4399  4224     0  3045 total
///
/// Columns: Kbytes (size of the mappings), RSS, PSS, Dirty (shared + private
/// dirty), Swap, all in kB; Count (mappings in the group); Mapping: the full path
/// as the kernel prints it (with " (deleted)"), or the pseudo-path ([heap],
/// [stack], [vdso], [anon:NAME], ...), or [anon] for unnamed anonymous memory.
/// Mappings of a file are grouped by device, inode and name. Columns are as wide
/// as their widest value or heading. Order: --sort key (default size), largest
/// first, then by name; --sort=address orders groups by their lowest address.
/// --top N keeps the first N groups; -A keeps the mappings that overlap the range
/// before grouping; -q drops the heading and the totals.

#include <vector>

#include "options.hpp"
#include "out_buffer.hpp"
#include "xproc/maps.hpp"

namespace xpmap {

void write_by_file(OutBuffer& out, const std::vector<const xproc::Mapping*>& rows, const Options& options);

}  // namespace xpmap
