// SPDX-License-Identifier: MIT
#pragma once
/// @file rows.hpp
/// Which mappings xpmap prints, in which order: -A, --sort, --top.

#include <cstdint>
#include <vector>

#include "options.hpp"
#include "xproc/maps.hpp"

namespace xpmap {

/// The value a mapping is sorted by, in kB (address: the start address).
std::uint64_t sort_value(const xproc::Mapping& m, SortKey key) noexcept;

/// True when sorting by `key` needs smaps (rss, pss, swap, dirty).
bool sort_needs_smaps(SortKey key) noexcept;

/// The rows to print. Without --sort and --top, pmap's formats get every mapping
/// in address order (they apply -A themselves, the way pmap does). Otherwise, and
/// for --json and --by-file, the mappings that overlap -A's range (end-1 >= low
/// and start <= high), sorted (stable; largest first except by address), then
/// the first --top of them.
std::vector<const xproc::Mapping*> select_rows(const xproc::MemoryMap& map, const Options& options);

}  // namespace xpmap
