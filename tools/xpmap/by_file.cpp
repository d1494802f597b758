// SPDX-License-Identifier: MIT
#include "by_file.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>
#include <unordered_map>

namespace xpmap {
namespace {

struct Group {
    std::string_view name;
    std::uint64_t dev = 0;
    std::uint64_t inode = 0;
    std::uint64_t lowest = ~std::uint64_t{0};
    std::uint64_t size_kb = 0;
    std::uint64_t rss_kb = 0;
    std::uint64_t pss_kb = 0;
    std::uint64_t dirty_kb = 0;
    std::uint64_t swap_kb = 0;
    std::uint64_t count = 0;
};

struct GroupKey {
    std::string_view name;
    std::uint64_t dev;
    std::uint64_t inode;
    bool operator==(const GroupKey&) const = default;
};

struct GroupKeyHash {
    std::size_t operator()(const GroupKey& k) const noexcept {
        return std::hash<std::string_view>()(k.name) ^ (k.dev * 0x9e3779b97f4a7c15ULL) ^ (k.inode << 1);
    }
};

std::uint64_t group_value(const Group& g, SortKey key) {
    switch (key) {
        case SortKey::rss:
            return g.rss_kb;
        case SortKey::pss:
            return g.pss_kb;
        case SortKey::swap:
            return g.swap_kb;
        case SortKey::dirty:
            return g.dirty_kb;
        case SortKey::size:
        case SortKey::none:
            return g.size_kb;
        case SortKey::address:
            return g.lowest;
    }
    return g.size_kb;
}

constexpr std::string_view ANON_GROUP = "[anon]";

}  // namespace

void write_by_file(OutBuffer& out, const std::vector<const xproc::Mapping*>& rows, const Options& options) {
    std::vector<Group> groups;
    std::unordered_map<GroupKey, std::size_t, GroupKeyHash> index;
    for (const xproc::Mapping* m : rows) {
        GroupKey k{m->name.empty() ? ANON_GROUP : m->name, 0, 0};
        if (m->kind == xproc::MappingKind::file) {
            k.dev = (static_cast<std::uint64_t>(m->dev_major) << 32) | m->dev_minor;
            k.inode = m->inode;
        }
        auto [it, inserted] = index.try_emplace(k, groups.size());
        if (inserted) {
            groups.push_back({k.name, k.dev, k.inode});
        }
        Group& g = groups[it->second];
        g.lowest = std::min(g.lowest, m->start);
        g.size_kb += m->size() >> 10;
        g.rss_kb += m->smaps.rss_kb;
        g.pss_kb += m->smaps.pss_kb;
        g.dirty_kb += m->smaps.dirty_kb();
        g.swap_kb += m->smaps.swap_kb;
        ++g.count;
    }
    const SortKey key = options.sort;
    std::sort(groups.begin(), groups.end(), [key](const Group& a, const Group& b) {
        const std::uint64_t va = group_value(a, key);
        const std::uint64_t vb = group_value(b, key);
        if (va != vb) {
            return key == SortKey::address ? va < vb : va > vb;
        }
        return a.name < b.name;
    });
    if (options.top && groups.size() > *options.top) {
        groups.resize(*options.top);
    }

    Group total;
    for (const Group& g : groups) {
        total.size_kb += g.size_kb;
        total.rss_kb += g.rss_kb;
        total.pss_kb += g.pss_kb;
        total.dirty_kb += g.dirty_kb;
        total.swap_kb += g.swap_kb;
        total.count += g.count;
    }
    static constexpr std::array<std::string_view, 6> HEADINGS = {"Kbytes", "RSS",  "PSS",
                                                                 "Dirty",  "Swap", "Count"};
    auto values = [](const Group& g) {
        return std::array<std::uint64_t, 6>{g.size_kb, g.rss_kb, g.pss_kb, g.dirty_kb, g.swap_kb, g.count};
    };
    std::array<int, 6> width{};
    for (std::size_t i = 0; i < width.size(); ++i) {
        width[i] = options.quiet ? 1 : static_cast<int>(HEADINGS[i].size());
    }
    auto widen = [&](const Group& g) {
        const auto v = values(g);
        for (std::size_t i = 0; i < width.size(); ++i) {
            width[i] = std::max(width[i], decimal_width(v[i]));
        }
    };
    for (const Group& g : groups) {
        widen(g);
    }
    if (!options.quiet) {
        widen(total);
        for (std::size_t i = 0; i < width.size(); ++i) {
            out.right(HEADINGS[i], width[i]);
            out.put(' ');
        }
        out.put("Mapping\n");
    }
    for (const Group& g : groups) {
        const auto v = values(g);
        for (std::size_t i = 0; i < width.size(); ++i) {
            out.dec(v[i], width[i]);
            out.put(' ');
        }
        // Unprintable bytes as '?', as pmap shows names.
        for (const char c : g.name) {
            out.put(std::isprint(static_cast<unsigned char>(c)) ? c : '?');
        }
        out.put('\n');
    }
    if (!options.quiet) {
        for (std::size_t i = 0; i < width.size(); ++i) {
            out.fill('-', width[i]);
            out.put(' ');
        }
        out.put('\n');
        const auto v = values(total);
        for (std::size_t i = 0; i < width.size(); ++i) {
            out.dec(v[i], width[i]);
            out.put(' ');
        }
        out.put("total\n");
    }
}

}  // namespace xpmap
