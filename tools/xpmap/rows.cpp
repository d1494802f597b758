// SPDX-License-Identifier: MIT
#include "rows.hpp"

#include <algorithm>

namespace xpmap {

std::uint64_t sort_value(const xproc::Mapping& m, SortKey key) noexcept {
    switch (key) {
        case SortKey::rss:
            return m.smaps.rss_kb;
        case SortKey::pss:
            return m.smaps.pss_kb;
        case SortKey::size:
            return m.size() >> 10;
        case SortKey::swap:
            return m.smaps.swap_kb;
        case SortKey::dirty:
            return m.smaps.dirty_kb();
        case SortKey::address:
            return m.start;
        case SortKey::none:
            return 0;
    }
    return 0;
}

bool sort_needs_smaps(SortKey key) noexcept {
    return key == SortKey::rss || key == SortKey::pss || key == SortKey::swap || key == SortKey::dirty;
}

std::vector<const xproc::Mapping*> select_rows(const xproc::MemoryMap& map, const Options& options) {
    std::vector<const xproc::Mapping*> rows;
    rows.reserve(map.size());
    const bool own_format = options.format == Format::json || options.format == Format::by_file;
    if (!own_format && !options.reorders()) {
        for (const xproc::Mapping& m : map) {
            rows.push_back(&m);
        }
        return rows;
    }
    for (const xproc::Mapping& m : map) {
        if (m.end - 1 < options.range_low || options.range_high < m.start) {
            continue;
        }
        rows.push_back(&m);
    }
    // --by-file sorts groups, not mappings.
    if (options.sort != SortKey::none && options.format != Format::by_file) {
        const SortKey key = options.sort;
        if (key == SortKey::address) {
            std::stable_sort(rows.begin(), rows.end(), [](const xproc::Mapping* a, const xproc::Mapping* b) {
                return a->start < b->start;
            });
        } else {
            std::stable_sort(rows.begin(), rows.end(),
                             [key](const xproc::Mapping* a, const xproc::Mapping* b) {
                                 return sort_value(*a, key) > sort_value(*b, key);
                             });
        }
    }
    if (options.top && options.format != Format::by_file && rows.size() > *options.top) {
        rows.resize(*options.top);
    }
    return rows;
}

}  // namespace xpmap
