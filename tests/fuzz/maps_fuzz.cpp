// SPDX-License-Identifier: MIT
// libFuzzer target for the /proc/PID/{maps,smaps,smaps_rollup} parser.
//
// Every input is parsed as all three sources. A failure must be a parse error
// naming a line; a success is walked completely: every byte of every view is
// read (ASan catches a view that dangles or runs past the text), the invariants
// the header promises are checked, and a maps result is printed back in the
// kernel's format and parsed again to the same values.
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "xproc/maps.hpp"

namespace {

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            std::fprintf(stderr, "maps_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
            std::abort();                                                                     \
        }                                                                                     \
    } while (false)

volatile std::uint64_t g_sink;

std::uint64_t touch(std::string_view v) {
    std::uint64_t sum = 0;
    for (const char c : v) {
        sum = sum * 31 + static_cast<unsigned char>(c);
    }
    return sum;
}

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() ||
           (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_mapping(const xproc::Mapping& m, std::string_view text, xproc::MapsSource source) {
    std::uint64_t sum = touch(m.name) + touch(m.path()) + touch(m.anon_name()) + touch(m.perms.text()) +
                        touch(m.smaps.vm_flags);
    FUZZ_CHECK(m.start <= m.end);
    FUZZ_CHECK(m.size() == m.end - m.start);
    FUZZ_CHECK(m.perms.text().size() == 4);
    FUZZ_CHECK(inside(m.name, text));
    FUZZ_CHECK(inside(m.smaps.vm_flags, text));
    FUZZ_CHECK(m.name.empty() || m.name.front() != ' ');
    FUZZ_CHECK(m.name.find('\n') == std::string_view::npos);
    FUZZ_CHECK(m.name.find('\0') == std::string_view::npos);
    FUZZ_CHECK(m.name.starts_with(m.path()));
    FUZZ_CHECK(inside(m.anon_name(), m.name));
    FUZZ_CHECK((m.kind == xproc::MappingKind::anonymous) == m.name.empty());
    FUZZ_CHECK(m.kind != xproc::MappingKind::file || m.name.front() == '/');
    FUZZ_CHECK(!m.deleted || (m.kind == xproc::MappingKind::file && m.name.ends_with(" (deleted)")));
    FUZZ_CHECK(m.smaps.vm_flags.empty() || m.smaps.vm_flags.back() != ' ');
    if (source == xproc::MapsSource::maps) {
        FUZZ_CHECK(m.fields.empty());
    }
    for (const xproc::SmapsField& f : m.fields) {
        sum += touch(f.name) + f.value + (f.in_kb ? 1 : 0);
        FUZZ_CHECK(!f.name.empty());
        FUZZ_CHECK(inside(f.name, text));
        FUZZ_CHECK(m.find_field(f.name) != nullptr);
    }
    if (const xproc::SmapsField* rss = m.find_field("Rss"); rss != nullptr) {
        // The counter holds the last Rss line of the mapping.
        const xproc::SmapsField* last = rss;
        for (const xproc::SmapsField& f : m.fields) {
            if (f.name == "Rss") {
                last = &f;
            }
        }
        FUZZ_CHECK(m.smaps.rss_kb == last->value);
    }
    g_sink = g_sink + sum;
}

/// The kernel's format for one maps line (without the column padding).
std::string format_line(const xproc::Mapping& m) {
    char head[160];
    std::snprintf(head, sizeof head, "%08" PRIx64 "-%08" PRIx64 " %.4s %08" PRIx64 " %02x:%02x %" PRIu64 " ",
                  m.start, m.end, m.perms.text().data(), m.offset, m.dev_major, m.dev_minor, m.inode);
    return std::string(head) + std::string(m.name) + "\n";
}

void check_round_trip(const xproc::MemoryMap& map) {
    std::string again;
    for (const xproc::Mapping& m : map) {
        again += format_line(m);
    }
    auto reparsed = xproc::MemoryMap::parse(std::move(again), xproc::MapsSource::maps);
    FUZZ_CHECK(reparsed.has_value());
    FUZZ_CHECK(reparsed->size() == map.size());
    for (std::size_t i = 0; i < map.size(); ++i) {
        const xproc::Mapping& a = map[i];
        const xproc::Mapping& b = (*reparsed)[i];
        FUZZ_CHECK(a.start == b.start && a.end == b.end && a.offset == b.offset && a.inode == b.inode);
        FUZZ_CHECK(a.dev_major == b.dev_major && a.dev_minor == b.dev_minor);
        FUZZ_CHECK(a.perms.text() == b.perms.text());
        FUZZ_CHECK(a.name == b.name && a.kind == b.kind && a.deleted == b.deleted);
    }
}

void run(std::string_view data, xproc::MapsSource source) {
    auto map = xproc::MemoryMap::parse(std::string(data), source);
    if (!map) {
        const xproc::Error& e = map.error();
        FUZZ_CHECK(e.kind == xproc::ErrorKind::parse);
        FUZZ_CHECK(e.operation.find(" line ") != std::string::npos);
        FUZZ_CHECK(!e.detail.empty());
        g_sink = g_sink + touch(e.message());
        return;
    }
    // Move it first: views must survive a move of the map.
    xproc::MemoryMap moved = std::move(*map);
    const std::string_view text = moved.text();
    FUZZ_CHECK(text == data);
    FUZZ_CHECK(moved.source() == source);
    if (source == xproc::MapsSource::smaps_rollup) {
        FUZZ_CHECK(moved.size() <= 1);
    }
    const xproc::SmapsField* next = nullptr;
    for (const xproc::Mapping& m : moved) {
        check_mapping(m, text, source);
        if (!m.fields.empty()) {
            // One vector, in order: each mapping's fields follow the previous ones.
            FUZZ_CHECK(next == nullptr || m.fields.data() == next);
            next = m.fields.data() + m.fields.size();
        }
    }
    if (source == xproc::MapsSource::maps) {
        check_round_trip(moved);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    run(text, xproc::MapsSource::maps);
    run(text, xproc::MapsSource::smaps);
    run(text, xproc::MapsSource::smaps_rollup);
    return 0;
}
