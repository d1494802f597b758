// SPDX-License-Identifier: MIT
#include "link_map.hpp"

#include <set>

namespace xpeek {
namespace {

// glibc's struct r_debug and struct link_map (LP64): only the leading fields, stable ABI.
constexpr std::uint64_t R_DEBUG_R_MAP = 8;
constexpr std::uint64_t LINK_MAP_L_ADDR = 0;
constexpr std::uint64_t LINK_MAP_L_NAME = 8;
constexpr std::uint64_t LINK_MAP_L_NEXT = 24;
constexpr int MAX_ENTRIES = 4096;  // a corrupt or cyclic list stops here
constexpr std::size_t MAX_NAME = 4096;

std::string read_c_string(xproc::RemoteMemory& memory, std::uint64_t address) {
    std::string s;
    char buf[256];
    while (s.size() < MAX_NAME) {
        auto t = memory.read(address + s.size(), std::as_writable_bytes(std::span(buf)));
        if (!t || t->bytes == 0) {
            return s;
        }
        for (std::size_t i = 0; i < t->bytes; ++i) {
            if (buf[i] == '\0') {
                return s;
            }
            s += buf[i];
        }
        if (!t->complete()) {
            return s;
        }
    }
    return s;
}

}  // namespace

std::map<std::uint64_t, std::string> read_link_map(xproc::RemoteMemory& memory,
                                                   const xproc::SymbolTable& symbols) {
    std::map<std::uint64_t, std::string> names;
    const auto r_debug = symbols.lookup("_r_debug");
    if (!r_debug) {
        return names;
    }
    auto entry = memory.read_value<std::uint64_t>(*r_debug + R_DEBUG_R_MAP);
    std::set<std::uint64_t> seen;
    for (int i = 0; entry && *entry != 0 && i < MAX_ENTRIES && seen.insert(*entry).second; ++i) {
        const auto l_addr = memory.read_value<std::uint64_t>(*entry + LINK_MAP_L_ADDR);
        const auto l_name = memory.read_value<std::uint64_t>(*entry + LINK_MAP_L_NAME);
        if (!l_addr || !l_name) {
            break;
        }
        if (*l_name != 0) {
            std::string name = read_c_string(memory, *l_name);
            if (!name.empty()) {
                names.emplace(*l_addr, std::move(name));
            }
        }
        entry = memory.read_value<std::uint64_t>(*entry + LINK_MAP_L_NEXT);
    }
    return names;
}

}  // namespace xpeek
