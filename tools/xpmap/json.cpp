// SPDX-License-Identifier: MIT
// xpmap --json
//
// JSON SCHEMA (for man/xpmap.1)
// =============================
// xpmap --json PID... prints one JSON object per process, each on one line
// (JSON Lines; with one PID the output is one JSON document). Processes that
// cannot be read print nothing on stdout (an error line goes to stderr). -A
// (range), --sort and --top select and order "mappings"; -q and -p have no effect.
// Key names are stable: new kernel fields add keys, existing keys never change.
//
// {
//   "pid": 1234,                       thread-group id (also for a thread id argument)
//   "comm": "bash",                    /proc/PID/comm
//   "cmdline": ["bash", "-i"],         argv, one string per argument ([] for kernel threads, zombies)
//   "mappings": [                      one object per mapping (VMA), address order unless --sort
//     {
//       "start": "0x55d4c3a00000",     first address, hex string (64-bit values do not fit a JSON double)
//       "end": "0x55d4c3a2f000",       one past the last address, hex string
//       "perms": "r-xp",               as in /proc/PID/maps: r w x, then s (shared) or p (private)
//       "offset": 192512,              file offset, bytes
//       "device": "fe:00",             major:minor, hex, as in /proc/PID/maps
//       "inode": 247101,
//       "name": "/usr/bin/bash",       name column as the kernel prints it ("" for anonymous;
//                                      includes " (deleted)"; a newline in a path is "\012")
//       "kind": "file",                anonymous | file | heap | stack | vdso | vvar | vsyscall |
//                                      anon_named | anon_shmem | pseudo
//       "deleted": false,              a file mapping whose file was deleted
//       "size": 192512,                end - start, bytes
//       "kernel_page_size": 4096,      every smaps field, in bytes:
//       "mmu_page_size": 4096,
//       "rss": 188416,
//       "pss": 37888,
//       "pss_dirty": 0,
//       "shared_clean": 188416,
//       "shared_dirty": 0,
//       "private_clean": 0,
//       "private_dirty": 0,
//       "referenced": 188416,
//       "anonymous": 0,
//       "ksm": 0,
//       "lazy_free": 0,
//       "anon_huge_pages": 0,
//       "shmem_pmd_mapped": 0,
//       "file_pmd_mapped": 0,
//       "shared_hugetlb": 0,
//       "private_hugetlb": 0,
//       "swap": 0,
//       "swap_pss": 0,
//       "locked": 0,
//       "thp_eligible": false,         true/false, null when the kernel does not say
//       "protection_key": 0,           number, null when the kernel does not say
//       "vm_flags": ["rd", "ex", "mr", "mw", "me"]   the VmFlags mnemonics ([] when absent)
//       ...                            a field of a newer kernel appears under its snake_case
//                                      name ("FooBar" -> "foo_bar"), in bytes if it is in kB
//     }
//   ],
//   "totals": {                        sums over "mappings", bytes
//     "mappings": 42,                  number of mappings
//     "size": ..., "rss": ..., "pss": ..., "pss_dirty": ..., "shared_clean": ..., "shared_dirty": ...,
//     "private_clean": ..., "private_dirty": ..., "referenced": ..., "anonymous": ..., "ksm": ...,
//     "lazy_free": ..., "anon_huge_pages": ..., "shmem_pmd_mapped": ..., "file_pmd_mapped": ...,
//     "shared_hugetlb": ..., "private_hugetlb": ..., "swap": ..., "swap_pss": ..., "locked": ...
//     (and any newer kB field)
//   }
// }
//
// Strings: names, argv and comm are bytes to the kernel. Valid UTF-8 is copied,
// '"', '\' and control characters are escaped (\n, \t, \u0001, ...), and each
// byte that is not part of valid UTF-8 becomes U+FFFD, so the output is always
// valid UTF-8 JSON.

#include "json.hpp"

#include <array>
#include <cstdint>

namespace xpmap {
namespace {

/// The smaps fields every mapping object carries, in the kernel's order.
struct KnownField {
    std::string_view smaps;  // name in smaps
    std::string_view key;    // JSON key
    std::uint64_t xproc::SmapsCounters::*counter;
    bool summed;  // appears in "totals"
};

constexpr std::array<KnownField, 21> KNOWN = {{
    {"KernelPageSize", "kernel_page_size", &xproc::SmapsCounters::kernel_page_size_kb, false},
    {"MMUPageSize", "mmu_page_size", &xproc::SmapsCounters::mmu_page_size_kb, false},
    {"Rss", "rss", &xproc::SmapsCounters::rss_kb, true},
    {"Pss", "pss", &xproc::SmapsCounters::pss_kb, true},
    {"Pss_Dirty", "pss_dirty", &xproc::SmapsCounters::pss_dirty_kb, true},
    {"Shared_Clean", "shared_clean", &xproc::SmapsCounters::shared_clean_kb, true},
    {"Shared_Dirty", "shared_dirty", &xproc::SmapsCounters::shared_dirty_kb, true},
    {"Private_Clean", "private_clean", &xproc::SmapsCounters::private_clean_kb, true},
    {"Private_Dirty", "private_dirty", &xproc::SmapsCounters::private_dirty_kb, true},
    {"Referenced", "referenced", &xproc::SmapsCounters::referenced_kb, true},
    {"Anonymous", "anonymous", &xproc::SmapsCounters::anonymous_kb, true},
    {"KSM", "ksm", &xproc::SmapsCounters::ksm_kb, true},
    {"LazyFree", "lazy_free", &xproc::SmapsCounters::lazy_free_kb, true},
    {"AnonHugePages", "anon_huge_pages", &xproc::SmapsCounters::anon_huge_pages_kb, true},
    {"ShmemPmdMapped", "shmem_pmd_mapped", &xproc::SmapsCounters::shmem_pmd_mapped_kb, true},
    {"FilePmdMapped", "file_pmd_mapped", &xproc::SmapsCounters::file_pmd_mapped_kb, true},
    {"Shared_Hugetlb", "shared_hugetlb", &xproc::SmapsCounters::shared_hugetlb_kb, true},
    {"Private_Hugetlb", "private_hugetlb", &xproc::SmapsCounters::private_hugetlb_kb, true},
    {"Swap", "swap", &xproc::SmapsCounters::swap_kb, true},
    {"SwapPss", "swap_pss", &xproc::SmapsCounters::swap_pss_kb, true},
    {"Locked", "locked", &xproc::SmapsCounters::locked_kb, true},
}};

/// Fields with their own JSON rendering (not a byte count from the table above).
bool is_special(std::string_view name) {
    return name == "Size" || name == "THPeligible" || name == "ProtectionKey";
}

bool is_known(std::string_view name) {
    if (is_special(name)) {
        return true;
    }
    for (const KnownField& k : KNOWN) {
        if (k.smaps == name) {
            return true;
        }
    }
    return false;
}

std::string_view kind_name(xproc::MappingKind kind) {
    switch (kind) {
        case xproc::MappingKind::anonymous:
            return "anonymous";
        case xproc::MappingKind::file:
            return "file";
        case xproc::MappingKind::heap:
            return "heap";
        case xproc::MappingKind::stack:
            return "stack";
        case xproc::MappingKind::vdso:
            return "vdso";
        case xproc::MappingKind::vvar:
            return "vvar";
        case xproc::MappingKind::vsyscall:
            return "vsyscall";
        case xproc::MappingKind::anon_named:
            return "anon_named";
        case xproc::MappingKind::anon_shmem:
            return "anon_shmem";
        case xproc::MappingKind::pseudo:
            return "pseudo";
    }
    return "pseudo";
}

/// Length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no overlong
/// forms, no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view s) {
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char c = b(0);
    if (c < 0x80) {
        return 1;
    }
    auto cont = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xbf) {
        return i < s.size() && b(i) >= lo && b(i) <= hi;
    };
    if (c >= 0xc2 && c <= 0xdf) {
        return cont(1) ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        const unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;
        const unsigned char hi = c == 0xed ? 0x9f : 0xbf;
        return cont(1, lo, hi) && cont(2) ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        const unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
        const unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;
        return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
}

void key(OutBuffer& out, std::string_view k) {
    out.put('"');
    out.put(k);
    out.put("\":");
}

void hex_address(OutBuffer& out, std::uint64_t v) {
    out.put("\"0x");
    out.hex(v);
    out.put('"');
}

/// "rd wr mr" -> ["rd","wr","mr"]
void vm_flags(OutBuffer& out, std::string_view flags) {
    out.put('[');
    bool first = true;
    while (!flags.empty()) {
        const std::size_t sp = flags.find(' ');
        const std::string_view f = flags.substr(0, sp);
        flags.remove_prefix(sp == std::string_view::npos ? flags.size() : sp + 1);
        if (f.empty()) {
            continue;
        }
        if (!first) {
            out.put(',');
        }
        first = false;
        json_string(out, f);
    }
    out.put(']');
}

/// Sums of the fields that are not in KNOWN (a newer kernel's), in first-seen order.
struct ExtraTotal {
    std::string key;
    std::uint64_t bytes = 0;
};

}  // namespace

std::string json_key(std::string_view name) {
    if (name == "THPeligible") {
        return "thp_eligible";
    }
    if (name == "ProtectionKey") {
        return "protection_key";
    }
    for (const KnownField& k : KNOWN) {
        if (k.smaps == name) {
            return std::string(k.key);
        }
    }
    auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
    auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    std::string out;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        if (upper(c)) {
            const bool after_word = i > 0 && lower_or_digit(name[i - 1]);
            const bool ends_acronym = i > 0 && upper(name[i - 1]) && i + 1 < name.size() &&
                                      name[i + 1] >= 'a' && name[i + 1] <= 'z';
            if ((after_word || ends_acronym) && !out.empty() && out.back() != '_') {
                out += '_';
            }
            out += static_cast<char>(c - 'A' + 'a');
        } else if (lower_or_digit(c) || c == '_') {
            out += c;
        } else if (!out.empty() && out.back() != '_') {
            out += '_';
        }
    }
    return out.empty() ? std::string("field") : out;
}

void json_string(OutBuffer& out, std::string_view s) {
    out.put('"');
    while (!s.empty()) {
        const auto c = static_cast<unsigned char>(s.front());
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            // Plain ASCII: copy the whole run at once.
            std::size_t n = 1;
            while (n < s.size()) {
                const auto d = static_cast<unsigned char>(s[n]);
                if (d < 0x20 || d >= 0x7f || d == '"' || d == '\\') {
                    break;
                }
                ++n;
            }
            out.put(s.substr(0, n));
            s.remove_prefix(n);
            continue;
        }
        switch (c) {
            case '"':
                out.put("\\\"");
                break;
            case '\\':
                out.put("\\\\");
                break;
            case '\n':
                out.put("\\n");
                break;
            case '\t':
                out.put("\\t");
                break;
            case '\r':
                out.put("\\r");
                break;
            case '\b':
                out.put("\\b");
                break;
            case '\f':
                out.put("\\f");
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out.put("\\u00");
                    out.hex(c, 2);
                } else {
                    const std::size_t n = utf8_sequence(s);
                    if (n == 0) {
                        out.put("\xef\xbf\xbd");  // U+FFFD for a byte that is not UTF-8
                        s.remove_prefix(1);
                    } else {
                        out.put(s.substr(0, n));
                        s.remove_prefix(n);
                    }
                    continue;
                }
        }
        s.remove_prefix(1);
    }
    out.put('"');
}

void write_json(OutBuffer& out, const JsonProcess& p) {
    std::array<std::uint64_t, KNOWN.size()> totals{};
    std::uint64_t total_size = 0;
    std::vector<ExtraTotal> extras;

    out.put("{\"pid\":");
    out.dec(static_cast<std::uint64_t>(p.pid));
    out.put(",\"comm\":");
    json_string(out, p.comm);
    out.put(",\"cmdline\":[");
    for (std::size_t i = 0; i < p.argv.size(); ++i) {
        if (i != 0) {
            out.put(',');
        }
        json_string(out, p.argv[i]);
    }
    out.put("],\"mappings\":[");
    bool first = true;
    for (const xproc::Mapping* mp : p.rows) {
        const xproc::Mapping& m = *mp;
        out.put(first ? "{" : ",{");
        first = false;
        key(out, "start");
        hex_address(out, m.start);
        out.put(',');
        key(out, "end");
        hex_address(out, m.end);
        out.put(",\"perms\":\"");
        out.put(m.perms.text());
        out.put("\",\"offset\":");
        out.dec(m.offset);
        out.put(",\"device\":\"");
        out.hex(m.dev_major, 2);
        out.put(':');
        out.hex(m.dev_minor, 2);
        out.put("\",\"inode\":");
        out.dec(m.inode);
        out.put(",\"name\":");
        json_string(out, m.name);
        out.put(",\"kind\":\"");
        out.put(kind_name(m.kind));
        out.put("\",\"deleted\":");
        out.put(m.deleted ? "true" : "false");
        out.put(",\"size\":");
        out.dec(m.size());
        total_size += m.size();
        for (std::size_t i = 0; i < KNOWN.size(); ++i) {
            const std::uint64_t bytes = m.smaps.*KNOWN[i].counter * 1024;
            out.put(',');
            key(out, KNOWN[i].key);
            out.dec(bytes);
            totals[i] += bytes;
        }
        out.put(",\"thp_eligible\":");
        out.put(m.smaps.thp_eligible < 0 ? "null" : (m.smaps.thp_eligible != 0 ? "true" : "false"));
        out.put(",\"protection_key\":");
        if (m.smaps.protection_key < 0) {
            out.put("null");
        } else {
            out.sdec(m.smaps.protection_key);
        }
        out.put(",\"vm_flags\":");
        vm_flags(out, m.smaps.vm_flags);
        // Fields of a newer kernel, under their snake_case names.
        for (const xproc::SmapsField& f : m.fields) {
            if (is_known(f.name)) {
                continue;
            }
            const std::string k = json_key(f.name);
            const std::uint64_t v = f.in_kb ? f.value * 1024 : f.value;
            out.put(',');
            key(out, k);
            out.dec(v);
            if (f.in_kb) {
                auto it = extras.begin();
                while (it != extras.end() && it->key != k) {
                    ++it;
                }
                if (it == extras.end()) {
                    extras.push_back({k, 0});
                    it = extras.end() - 1;
                }
                it->bytes += v;
            }
        }
        out.put('}');
        out.maybe_flush();
    }
    out.put("],\"totals\":{\"mappings\":");
    out.dec(p.rows.size());
    out.put(",\"size\":");
    out.dec(total_size);
    for (std::size_t i = 0; i < KNOWN.size(); ++i) {
        if (!KNOWN[i].summed) {
            continue;
        }
        out.put(',');
        key(out, KNOWN[i].key);
        out.dec(totals[i]);
    }
    for (const ExtraTotal& e : extras) {
        out.put(',');
        key(out, e.key);
        out.dec(e.bytes);
    }
    out.put("}}\n");
}

}  // namespace xpmap
