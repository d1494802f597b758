// SPDX-License-Identifier: MIT
// Tests for maps.hpp: the parser on real samples captured from this kernel
// (tests/unit/samples, see its README.md) and on in-memory edge cases, and the
// readers on real processes (this one, a child, a zombie, a kernel thread).
#include "xproc/maps.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "child.hpp"
#include "xproc/fd.hpp"
#include "xproc/process.hpp"

namespace xproc {
namespace {

std::string read_sample(const std::string& name) {
    std::ifstream in(std::string(XPROC_SAMPLES_DIR) + "/" + name, std::ios::binary);
    EXPECT_TRUE(in.good()) << "missing sample " << name;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

MemoryMap parse_ok(std::string text, MapsSource source) {
    auto r = MemoryMap::parse(std::move(text), source);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
    return r ? std::move(*r) : MemoryMap();
}

/// Parses and expects a parse error whose operation names `line`.
Error parse_error(std::string text, MapsSource source, std::size_t line) {
    auto r = MemoryMap::parse(std::move(text), source);
    EXPECT_FALSE(r.has_value());
    if (r) {
        return Error{};
    }
    EXPECT_EQ(r.error().kind, ErrorKind::parse) << r.error().message();
    EXPECT_NE(r.error().operation.find("line " + std::to_string(line)), std::string::npos)
        << r.error().message();
    EXPECT_FALSE(r.error().detail.empty());
    return r.error();
}

const std::string HEADER = "00400000-00452000 r-xp 00000000 08:02 173521";
const std::string PADDING(73 - 1 - HEADER.size(), ' ');

/// A maps line with the kernel's padding before `name` (and its trailing space when anonymous).
std::string maps_line(const std::string& name) {
    return HEADER + (name.empty() ? " " : " " + PADDING + name);
}

Mapping only_mapping(const std::string& text, MapsSource source = MapsSource::maps) {
    static std::vector<MemoryMap> keep;  // the views must outlive this call
    keep.push_back(parse_ok(text, source));
    EXPECT_EQ(keep.back().size(), 1u);
    return keep.back().empty() ? Mapping{} : keep.back()[0];
}

// ---------------------------------------------------------------------------
// An independent reference parser (sscanf) to compare the samples against.

struct RefHeader {
    std::uint64_t start = 0, end = 0, offset = 0, inode = 0;
    unsigned major = 0, minor = 0;
    std::string perms, name;
};

bool ref_header(const std::string& line, RefHeader& h) {
    char perms[5] = {};
    int consumed = 0;
    unsigned long long start = 0, end = 0, offset = 0, inode = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %4s %llx %x:%x %llu%n", &start, &end, perms, &offset, &h.major,
                    &h.minor, &inode, &consumed) != 7) {
        return false;
    }
    h.start = start;
    h.end = end;
    h.offset = offset;
    h.inode = inode;
    h.perms = perms;
    const std::size_t name_at = line.find_first_not_of(' ', static_cast<std::size_t>(consumed));
    h.name = name_at == std::string::npos ? "" : line.substr(name_at);
    return true;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

void expect_same_header(const Mapping& m, const RefHeader& h) {
    EXPECT_EQ(m.start, h.start);
    EXPECT_EQ(m.end, h.end);
    EXPECT_EQ(m.perms.text(), h.perms);
    EXPECT_EQ(m.offset, h.offset);
    EXPECT_EQ(m.dev_major, h.major);
    EXPECT_EQ(m.dev_minor, h.minor);
    EXPECT_EQ(m.inode, h.inode);
    EXPECT_EQ(m.name, h.name);
}

const Mapping* find_by_name(const MemoryMap& map, std::string_view name) {
    for (const Mapping& m : map) {
        if (m.name == name) {
            return &m;
        }
    }
    return nullptr;
}

// ---------------------------------------------------------------------------
// Real samples.

TEST(Maps, parses_captured_maps_like_reference_parser) {
    for (const char* sample : {"capture.maps", "sleep.maps"}) {
        SCOPED_TRACE(sample);
        const std::string text = read_sample(sample);
        const MemoryMap map = parse_ok(text, MapsSource::maps);
        const auto lines = lines_of(text);
        ASSERT_EQ(map.size(), lines.size());
        ASSERT_GT(map.size(), 20u);
        for (std::size_t i = 0; i < lines.size(); ++i) {
            RefHeader h;
            ASSERT_TRUE(ref_header(lines[i], h)) << lines[i];
            expect_same_header(map[i], h);
            EXPECT_TRUE(map[i].fields.empty());
            EXPECT_EQ(map[i].smaps.vm_flags, "");
        }
    }
}

TEST(Maps, parses_captured_smaps_like_reference_parser) {
    for (const char* sample : {"capture.smaps", "sleep.smaps"}) {
        SCOPED_TRACE(sample);
        const std::string text = read_sample(sample);
        const MemoryMap map = parse_ok(text, MapsSource::smaps);
        ASSERT_EQ(map.source(), MapsSource::smaps);
        std::size_t index = 0;
        std::size_t field = 0;
        for (const std::string& line : lines_of(text)) {
            RefHeader h;
            char name[64];
            unsigned long long value = 0;
            char unit[4] = {};
            if (line.starts_with("VmFlags:")) {
                std::string flags = line.substr(std::strlen("VmFlags: "));
                flags.erase(flags.find_last_not_of(' ') + 1);
                EXPECT_EQ(map[index - 1].smaps.vm_flags, flags);
            } else if (std::sscanf(line.c_str(), "%63[A-Za-z_]: %llu %3s", name, &value, unit) >= 2) {
                ASSERT_GT(index, 0u);
                const Mapping& m = map[index - 1];
                ASSERT_LT(field, m.fields.size()) << line;
                EXPECT_EQ(m.fields[field].name, name);
                EXPECT_EQ(m.fields[field].value, value);
                EXPECT_EQ(m.fields[field].in_kb, std::string(unit) == "kB");
                ++field;
            } else {
                ASSERT_TRUE(ref_header(line, h)) << line;
                ASSERT_LT(index, map.size());
                if (index > 0) {
                    EXPECT_EQ(field, map[index - 1].fields.size());
                }
                expect_same_header(map[index], h);
                ++index;
                field = 0;
            }
        }
        EXPECT_EQ(index, map.size());
        for (const Mapping& m : map) {
            // 22 "kB" fields, THPeligible and ProtectionKey on this kernel.
            EXPECT_EQ(m.fields.size(), 24u) << m.name;
            EXPECT_EQ(m.smaps.size_kb * 1024, m.size()) << m.name;
            EXPECT_EQ(m.smaps.kernel_page_size_kb, 4u);
            EXPECT_LE(m.smaps.rss_kb, m.smaps.size_kb);
            EXPECT_LE(m.smaps.pss_kb, m.smaps.rss_kb);
            EXPECT_EQ(m.smaps.rss_kb, m.smaps.shared_clean_kb + m.smaps.shared_dirty_kb +
                                          m.smaps.private_clean_kb + m.smaps.private_dirty_kb);
            EXPECT_GE(m.smaps.thp_eligible, 0);
            EXPECT_GE(m.smaps.protection_key, 0);
            EXPECT_FALSE(m.smaps.vm_flags.empty());
        }
    }
}

TEST(Maps, smaps_and_maps_samples_of_one_stopped_process_agree) {
    const MemoryMap maps = parse_ok(read_sample("capture.maps"), MapsSource::maps);
    const MemoryMap smaps = parse_ok(read_sample("capture.smaps"), MapsSource::smaps);
    ASSERT_EQ(maps.size(), smaps.size());
    for (std::size_t i = 0; i < maps.size(); ++i) {
        EXPECT_EQ(maps[i].start, smaps[i].start);
        EXPECT_EQ(maps[i].end, smaps[i].end);
        EXPECT_EQ(maps[i].name, smaps[i].name);
        EXPECT_EQ(maps[i].kind, smaps[i].kind);
    }
}

TEST(Maps, classifies_every_kind_in_captured_sample) {
    const MemoryMap map = parse_ok(read_sample("capture.smaps"), MapsSource::smaps);
    std::map<MappingKind, int> kinds;
    for (const Mapping& m : map) {
        ++kinds[m.kind];
    }
    EXPECT_EQ(kinds[MappingKind::heap], 1);
    EXPECT_EQ(kinds[MappingKind::stack], 1);
    EXPECT_EQ(kinds[MappingKind::vdso], 1);
    EXPECT_EQ(kinds[MappingKind::vvar], 2);  // [vvar] and [vvar_vclock]
    EXPECT_EQ(kinds[MappingKind::vsyscall], 1);
    EXPECT_GE(kinds[MappingKind::anonymous], 3);
    EXPECT_GE(kinds[MappingKind::file], 15);

    const Mapping* deleted = find_by_name(map, "/tmp/xproc sample dir/deleted file.bin (deleted)");
    ASSERT_NE(deleted, nullptr);
    EXPECT_EQ(deleted->kind, MappingKind::file);
    EXPECT_TRUE(deleted->deleted);
    EXPECT_EQ(deleted->path(), "/tmp/xproc sample dir/deleted file.bin");
    EXPECT_EQ(deleted->perms.text(), "r--s");
    EXPECT_TRUE(deleted->perms.shared);

    const Mapping* kept = find_by_name(map, "/tmp/xproc sample dir/kept file.bin");
    ASSERT_NE(kept, nullptr);
    EXPECT_FALSE(kept->deleted);
    EXPECT_EQ(kept->path(), kept->name);

    // The kernel escapes a newline in a path as \012; the name keeps it verbatim.
    const Mapping* newline = find_by_name(map, "/tmp/xproc sample dir/new\\012line");
    ASSERT_NE(newline, nullptr);
    EXPECT_EQ(newline->kind, MappingKind::file);

    const Mapping* memfd = find_by_name(map, "/memfd:xproc-memfd (deleted)");
    ASSERT_NE(memfd, nullptr);
    EXPECT_EQ(memfd->kind, MappingKind::file);
    EXPECT_TRUE(memfd->deleted);
    EXPECT_EQ(memfd->path(), "/memfd:xproc-memfd");
    EXPECT_EQ(memfd->smaps.rss_kb, 4u);
    EXPECT_EQ(memfd->smaps.private_dirty_kb, 4u);
    EXPECT_EQ(memfd->smaps.dirty_kb(), 4u);
    EXPECT_EQ(memfd->smaps.vm_flags, "rd wr sh mr mw me ms");
    EXPECT_EQ(memfd->smaps.thp_eligible, 0);
    EXPECT_EQ(memfd->smaps.protection_key, 0);

    const Mapping* sysv = find_by_name(map, "/SYSV00000000 (deleted)");
    ASSERT_NE(sysv, nullptr);
    EXPECT_TRUE(sysv->deleted);
    EXPECT_EQ(sysv->path(), "/SYSV00000000");
    EXPECT_EQ(sysv->perms.text(), "rw-s");

    int dev_zero = 0;
    for (const Mapping& m : map) {
        dev_zero += m.path() == "/dev/zero" && m.deleted ? 1 : 0;
    }
    EXPECT_EQ(dev_zero, 2);  // shared anonymous memory (the sample's named one could not be named)

    const Mapping* heap = find_by_name(map, "[heap]");
    ASSERT_NE(heap, nullptr);
    EXPECT_GE(heap->smaps.rss_kb, 64u);  // the sample touched 64 KiB of heap
    EXPECT_EQ(heap->perms.text(), "rw-p");

    const Mapping* vsyscall = find_by_name(map, "[vsyscall]");
    ASSERT_NE(vsyscall, nullptr);
    EXPECT_EQ(vsyscall->start, 0xffffffffff600000u);
    EXPECT_EQ(vsyscall->perms.text(), "--xp");
}

TEST(Maps, parses_captured_smaps_rollup_consistent_with_smaps) {
    const MemoryMap rollup = parse_ok(read_sample("capture.smaps_rollup"), MapsSource::smaps_rollup);
    const MemoryMap smaps = parse_ok(read_sample("capture.smaps"), MapsSource::smaps);
    ASSERT_EQ(rollup.size(), 1u);
    ASSERT_FALSE(smaps.empty());
    const Mapping& r = rollup[0];
    EXPECT_EQ(r.name, "[rollup]");
    EXPECT_EQ(r.kind, MappingKind::pseudo);
    EXPECT_EQ(r.perms.text(), "---p");
    EXPECT_EQ(r.start, smaps[0].start);
    // The rollup walks the process's VMAs; [vsyscall] (the gate area) is not one.
    ASSERT_EQ(smaps[smaps.size() - 1].kind, MappingKind::vsyscall);
    EXPECT_EQ(r.end, smaps[smaps.size() - 2].end);
    ASSERT_EQ(r.fields.size(), 22u);
    EXPECT_EQ(r.fields[3].name, "Pss_Anon");
    EXPECT_EQ(r.fields[4].name, "Pss_File");
    EXPECT_EQ(r.fields[5].name, "Pss_Shmem");
    EXPECT_EQ(r.smaps.thp_eligible, -1);
    EXPECT_EQ(r.smaps.protection_key, -1);
    EXPECT_EQ(r.smaps.vm_flags, "");

    // The process was stopped for all three reads: page counts add up exactly.
    std::uint64_t rss = 0, pss = 0, anon = 0, shared_dirty = 0, private_dirty = 0;
    for (const Mapping& m : smaps) {
        rss += m.smaps.rss_kb;
        pss += m.smaps.pss_kb;
        anon += m.smaps.anonymous_kb;
        shared_dirty += m.smaps.shared_dirty_kb;
        private_dirty += m.smaps.private_dirty_kb;
    }
    EXPECT_EQ(r.smaps.rss_kb, rss);
    EXPECT_EQ(r.smaps.anonymous_kb, anon);
    EXPECT_EQ(r.smaps.shared_dirty_kb, shared_dirty);
    EXPECT_EQ(r.smaps.private_dirty_kb, private_dirty);
    // Pss is rounded down per mapping in smaps, once in the rollup.
    EXPECT_LE(pss, r.smaps.pss_kb);
    EXPECT_LE(r.smaps.pss_kb, pss + smaps.size());
    EXPECT_LE(r.smaps.pss_anon_kb + r.smaps.pss_file_kb + r.smaps.pss_shmem_kb, r.smaps.pss_kb);
    EXPECT_GE(r.smaps.pss_anon_kb + r.smaps.pss_file_kb + r.smaps.pss_shmem_kb + 3, r.smaps.pss_kb);
    EXPECT_GT(r.smaps.pss_shmem_kb, 0u);  // memfd, SysV and shared anonymous pages were touched
}

// ---------------------------------------------------------------------------
// Header lines.

TEST(Maps, parses_every_header_field) {
    const Mapping m = only_mapping("7f3a10000000-7f3a10021000 rw-s 1a2b3c4d 103:0a 18446744073709551615 " +
                                   PADDING + "/dev/shm/x\n");
    EXPECT_EQ(m.start, 0x7f3a10000000u);
    EXPECT_EQ(m.end, 0x7f3a10021000u);
    EXPECT_EQ(m.size(), 0x21000u);
    EXPECT_TRUE(m.perms.read);
    EXPECT_TRUE(m.perms.write);
    EXPECT_FALSE(m.perms.exec);
    EXPECT_TRUE(m.perms.shared);
    EXPECT_EQ(m.offset, 0x1a2b3c4du);
    EXPECT_EQ(m.dev_major, 0x103u);
    EXPECT_EQ(m.dev_minor, 0x0au);
    EXPECT_EQ(m.inode, 18446744073709551615u);
    EXPECT_EQ(m.name, "/dev/shm/x");
    EXPECT_EQ(m.kind, MappingKind::file);
    EXPECT_FALSE(m.deleted);
}

TEST(Maps, permissions_text_is_a_static_view_for_all_sixteen) {
    const char* letters[] = {"---p", "---s", "--xp", "--xs", "-w-p", "-w-s", "-wxp", "-wxs",
                             "r--p", "r--s", "r-xp", "r-xs", "rw-p", "rw-s", "rwxp", "rwxs"};
    std::string text;
    for (const char* l : letters) {
        text += "1000-2000 " + std::string(l) + " 00000000 00:00 0 \n";
    }
    std::vector<std::string_view> views;
    {
        const MemoryMap map = parse_ok(text, MapsSource::maps);
        ASSERT_EQ(map.size(), 16u);
        for (std::size_t i = 0; i < 16; ++i) {
            EXPECT_EQ(map[i].perms.text(), letters[i]);
            EXPECT_EQ(map[i].perms.read, letters[i][0] == 'r');
            EXPECT_EQ(map[i].perms.write, letters[i][1] == 'w');
            EXPECT_EQ(map[i].perms.exec, letters[i][2] == 'x');
            EXPECT_EQ(map[i].perms.shared, letters[i][3] == 's');
            views.push_back(map[i].perms.text());
        }
    }
    // The map is gone: the views must not have pointed into its text.
    for (std::size_t i = 0; i < 16; ++i) {
        EXPECT_EQ(views[i], letters[i]);
    }
    EXPECT_EQ(Permissions{}.text(), "---p");
}

TEST(Maps, removes_padding_but_keeps_spaces_inside_and_after_name) {
    EXPECT_EQ(only_mapping(maps_line("/tmp/a b/c d")).name, "/tmp/a b/c d");
    EXPECT_EQ(only_mapping(maps_line("/tmp/trailing ")).name, "/tmp/trailing ");
    // A header longer than the padding column: the kernel still puts one space.
    const Mapping m = only_mapping(
        "ffffffffff600000-ffffffffff601000 --xp ffffffffffffffff fff:fffff 18446744073709551615 /x\n");
    EXPECT_EQ(m.name, "/x");
    EXPECT_EQ(m.dev_major, 0xfffu);
    EXPECT_EQ(m.dev_minor, 0xfffffu);
    EXPECT_EQ(m.offset, UINT64_MAX);
}

TEST(Maps, parses_deleted_file_with_spaces) {
    const Mapping m = only_mapping(maps_line("/tmp/my dir/lib x.so (deleted)"));
    EXPECT_EQ(m.kind, MappingKind::file);
    EXPECT_TRUE(m.deleted);
    EXPECT_EQ(m.name, "/tmp/my dir/lib x.so (deleted)");
    EXPECT_EQ(m.path(), "/tmp/my dir/lib x.so");
}

TEST(Maps, memfd_is_a_deleted_file) {
    const Mapping m = only_mapping(maps_line("/memfd:ring buffer (deleted)"));
    EXPECT_EQ(m.kind, MappingKind::file);
    EXPECT_TRUE(m.deleted);
    EXPECT_EQ(m.path(), "/memfd:ring buffer");
}

TEST(Maps, anonymous_with_and_without_trailing_space) {
    for (const std::string& line : {HEADER + " \n", HEADER + "\n", HEADER}) {
        const Mapping m = only_mapping(line);
        EXPECT_EQ(m.kind, MappingKind::anonymous);
        EXPECT_EQ(m.name, "");
        EXPECT_EQ(m.path(), "");
        EXPECT_EQ(m.anon_name(), "");
        EXPECT_FALSE(m.deleted);
        EXPECT_EQ(m.inode, 173521u);
    }
}

TEST(Maps, classifies_every_kind) {
    struct Case {
        std::string name;
        MappingKind kind;
        std::string anon_name;
    };
    const Case cases[] = {
        {"", MappingKind::anonymous, ""},
        {"/usr/lib/libc.so.6", MappingKind::file, ""},
        {"[heap]", MappingKind::heap, ""},
        {"[stack]", MappingKind::stack, ""},
        {"[stack:1234]", MappingKind::stack, ""},
        {"[vdso]", MappingKind::vdso, ""},
        {"[vvar]", MappingKind::vvar, ""},
        {"[vvar_vclock]", MappingKind::vvar, ""},
        {"[vsyscall]", MappingKind::vsyscall, ""},
        {"[anon:my arena]", MappingKind::anon_named, "my arena"},
        {"[anon:]", MappingKind::anon_named, ""},
        {"[anon_shmem:ring]", MappingKind::anon_shmem, "ring"},
        {"[uprobes]", MappingKind::pseudo, ""},
        {"[rollup]", MappingKind::pseudo, ""},
        {"[heap", MappingKind::pseudo, ""},
        {"[", MappingKind::pseudo, ""},
        {"anon_inode:[perf_event]", MappingKind::pseudo, ""},
        {"[heap] (deleted)", MappingKind::pseudo, ""},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        const Mapping m = only_mapping(maps_line(c.name));
        EXPECT_EQ(m.kind, c.kind);
        EXPECT_EQ(m.name, c.name);
        EXPECT_EQ(m.anon_name(), c.anon_name);
        EXPECT_EQ(m.path(), c.name);  // only deleted files lose a suffix
        EXPECT_FALSE(m.deleted);
    }
}

TEST(Maps, named_anonymous_memory_in_smaps) {
    const Mapping m = only_mapping(maps_line("[anon:xproc arena (deleted)]") +
                                       "\nSize:                 16 kB\nRss:                   8 kB\n",
                                   MapsSource::smaps);
    EXPECT_EQ(m.kind, MappingKind::anon_named);
    EXPECT_EQ(m.anon_name(), "xproc arena (deleted)");
    EXPECT_FALSE(m.deleted);
    EXPECT_EQ(m.smaps.size_kb, 16u);
    EXPECT_EQ(m.smaps.rss_kb, 8u);
}

TEST(Maps, accepts_leading_zeros_and_uppercase_hex) {
    const Mapping m = only_mapping(
        "00000000000000000000ABC000-0000000000000000000ABD000 r--p 000000000000000000000010 "
        "0008:0002 000042\n");
    EXPECT_EQ(m.start, 0xabc000u);
    EXPECT_EQ(m.end, 0xabd000u);
    EXPECT_EQ(m.offset, 0x10u);
    EXPECT_EQ(m.dev_major, 8u);
    EXPECT_EQ(m.inode, 42u);
}

TEST(Maps, parses_without_trailing_newline) {
    const MemoryMap maps = parse_ok(maps_line("/a") + "\n" + maps_line("[heap]"), MapsSource::maps);
    ASSERT_EQ(maps.size(), 2u);
    EXPECT_EQ(maps[1].kind, MappingKind::heap);
    EXPECT_EQ(maps[1].name, "[heap]");

    const MemoryMap smaps =
        parse_ok(maps_line("/a") + "\nRss:                  12 kB\nVmFlags: rd ex", MapsSource::smaps);
    ASSERT_EQ(smaps.size(), 1u);
    EXPECT_EQ(smaps[0].smaps.rss_kb, 12u);
    EXPECT_EQ(smaps[0].smaps.vm_flags, "rd ex");
}

TEST(Maps, empty_text_is_an_empty_map) {
    for (MapsSource s : {MapsSource::maps, MapsSource::smaps, MapsSource::smaps_rollup}) {
        const MemoryMap map = parse_ok("", s);
        EXPECT_TRUE(map.empty());
        EXPECT_EQ(map.source(), s);
        EXPECT_EQ(map.begin(), map.end());
    }
    const MemoryMap defaulted;
    EXPECT_TRUE(defaulted.empty());
    EXPECT_EQ(defaulted.text(), "");
}

// ---------------------------------------------------------------------------
// smaps detail lines.

const std::string SMAPS_ONE = maps_line("/usr/bin/x") +
                              "\n"
                              "Size:                132 kB\n"
                              "KernelPageSize:        4 kB\n"
                              "MMUPageSize:           4 kB\n"
                              "Rss:                  96 kB\n"
                              "Pss:                  48 kB\n"
                              "Pss_Dirty:            12 kB\n"
                              "Shared_Clean:         40 kB\n"
                              "Shared_Dirty:          8 kB\n"
                              "Private_Clean:        32 kB\n"
                              "Private_Dirty:        16 kB\n"
                              "Referenced:           90 kB\n"
                              "Anonymous:            20 kB\n"
                              "KSM:                   1 kB\n"
                              "LazyFree:              2 kB\n"
                              "AnonHugePages:      2048 kB\n"
                              "ShmemPmdMapped:        3 kB\n"
                              "FilePmdMapped:         5 kB\n"
                              "Shared_Hugetlb:        6 kB\n"
                              "Private_Hugetlb:       7 kB\n"
                              "Swap:                  9 kB\n"
                              "SwapPss:              10 kB\n"
                              "Locked:               11 kB\n"
                              "THPeligible:           1\n"
                              "ProtectionKey:         5\n"
                              "VmFlags: rd ex mr mw me dw sd \n";

TEST(Maps, decodes_every_known_smaps_field) {
    const Mapping m = only_mapping(SMAPS_ONE, MapsSource::smaps);
    const SmapsCounters& c = m.smaps;
    EXPECT_EQ(c.size_kb, 132u);
    EXPECT_EQ(c.kernel_page_size_kb, 4u);
    EXPECT_EQ(c.mmu_page_size_kb, 4u);
    EXPECT_EQ(c.rss_kb, 96u);
    EXPECT_EQ(c.pss_kb, 48u);
    EXPECT_EQ(c.pss_dirty_kb, 12u);
    EXPECT_EQ(c.shared_clean_kb, 40u);
    EXPECT_EQ(c.shared_dirty_kb, 8u);
    EXPECT_EQ(c.private_clean_kb, 32u);
    EXPECT_EQ(c.private_dirty_kb, 16u);
    EXPECT_EQ(c.dirty_kb(), 24u);
    EXPECT_EQ(c.referenced_kb, 90u);
    EXPECT_EQ(c.anonymous_kb, 20u);
    EXPECT_EQ(c.ksm_kb, 1u);
    EXPECT_EQ(c.lazy_free_kb, 2u);
    EXPECT_EQ(c.anon_huge_pages_kb, 2048u);
    EXPECT_EQ(c.shmem_pmd_mapped_kb, 3u);
    EXPECT_EQ(c.file_pmd_mapped_kb, 5u);
    EXPECT_EQ(c.shared_hugetlb_kb, 6u);
    EXPECT_EQ(c.private_hugetlb_kb, 7u);
    EXPECT_EQ(c.swap_kb, 9u);
    EXPECT_EQ(c.swap_pss_kb, 10u);
    EXPECT_EQ(c.locked_kb, 11u);
    EXPECT_EQ(c.thp_eligible, 1);
    EXPECT_EQ(c.protection_key, 5);
    EXPECT_EQ(c.vm_flags, "rd ex mr mw me dw sd");
    EXPECT_EQ(c.pss_anon_kb, 0u);  // rollup only

    ASSERT_EQ(m.fields.size(), 24u);  // VmFlags is text, not a field
    EXPECT_EQ(m.fields[0].name, "Size");
    EXPECT_EQ(m.fields[0].value, 132u);
    EXPECT_TRUE(m.fields[0].in_kb);
    EXPECT_EQ(m.fields[22].name, "THPeligible");
    EXPECT_EQ(m.fields[22].value, 1u);
    EXPECT_FALSE(m.fields[22].in_kb);
    EXPECT_EQ(m.fields[23].name, "ProtectionKey");
    EXPECT_FALSE(m.fields[23].in_kb);

    ASSERT_NE(m.find_field("Pss_Dirty"), nullptr);
    EXPECT_EQ(m.find_field("Pss_Dirty")->value, 12u);
    EXPECT_EQ(m.find_field("Pss_Anon"), nullptr);
    EXPECT_EQ(m.find_field("VmFlags"), nullptr);
}

TEST(Maps, absent_fields_are_zero_and_minus_one) {
    const Mapping m = only_mapping(maps_line("/x") + "\nRss:                   4 kB\n", MapsSource::smaps);
    EXPECT_EQ(m.smaps.rss_kb, 4u);
    EXPECT_EQ(m.smaps.size_kb, 0u);
    EXPECT_EQ(m.smaps.thp_eligible, -1);
    EXPECT_EQ(m.smaps.protection_key, -1);
    EXPECT_EQ(m.smaps.vm_flags, "");
    EXPECT_EQ(m.fields.size(), 1u);
}

TEST(Maps, keeps_unknown_future_fields_in_kernel_order) {
    const std::string text = maps_line("/x") +
                             "\n"
                             "Size:                  8 kB\n"
                             "Future_Pages:         77 kB\n"
                             "Rss:                   4 kB\n"
                             "NewCounter:      123456789\n"
                             "Mystery_Text:   some words here\n"
                             "Empty_Text:\n"
                             "VmFlags: rd\n";
    const Mapping m = only_mapping(text, MapsSource::smaps);
    ASSERT_EQ(m.fields.size(), 4u);
    EXPECT_EQ(m.fields[0].name, "Size");
    EXPECT_EQ(m.fields[1].name, "Future_Pages");
    EXPECT_EQ(m.fields[1].value, 77u);
    EXPECT_TRUE(m.fields[1].in_kb);
    EXPECT_EQ(m.fields[2].name, "Rss");
    EXPECT_EQ(m.fields[3].name, "NewCounter");
    EXPECT_EQ(m.fields[3].value, 123456789u);
    EXPECT_FALSE(m.fields[3].in_kb);
    EXPECT_EQ(m.smaps.size_kb, 8u);
    EXPECT_EQ(m.smaps.rss_kb, 4u);
    EXPECT_EQ(m.smaps.vm_flags, "rd");
    ASSERT_NE(m.find_field("Future_Pages"), nullptr);
    EXPECT_EQ(m.find_field("Mystery_Text"), nullptr);
}

TEST(Maps, field_spans_partition_one_vector_and_survive_moves) {
    std::string text;
    for (int i = 0; i < 1000; ++i) {
        char header[128];
        std::snprintf(header, sizeof header, "%012x-%012x rw-p 00000000 00:00 0 \n", 0x1000 * (2 * i + 1),
                      0x1000 * (2 * i + 2));
        text += header;
        for (int f = 0; f < i % 4; ++f) {
            text += "Rss:    " + std::to_string(i * 10 + f) + " kB\n";
        }
    }
    auto parsed = MemoryMap::parse(text, MapsSource::smaps);
    ASSERT_TRUE(parsed.has_value());
    MemoryMap map = std::move(*parsed);  // moving must not invalidate any view
    MemoryMap moved;
    moved = std::move(map);
    ASSERT_EQ(moved.size(), 1000u);
    const SmapsField* next = nullptr;
    for (std::size_t i = 0; i < moved.size(); ++i) {
        const Mapping& m = moved[i];
        ASSERT_EQ(m.fields.size(), i % 4);
        if (next != nullptr && !m.fields.empty()) {
            EXPECT_EQ(m.fields.data(), next);  // contiguous, in order
        }
        for (std::size_t f = 0; f < m.fields.size(); ++f) {
            EXPECT_EQ(m.fields[f].value, i * 10 + f);
            // Names point into the map's own text.
            EXPECT_GE(m.fields[f].name.data(), moved.text().data());
            EXPECT_LT(m.fields[f].name.data(), moved.text().data() + moved.text().size());
        }
        if (!m.fields.empty()) {
            next = m.fields.data() + m.fields.size();
        }
        EXPECT_EQ(m.smaps.rss_kb, m.fields.empty() ? 0 : m.fields.back().value);
    }
}

TEST(Maps, field_spans_stay_valid_when_fields_outgrow_the_estimate) {
    // Lines far shorter than the kernel's make the fields vector grow past its
    // first reservation; the spans are set after the last move.
    std::string text = "1000-2000 rw-p 00000000 00:00 0\n";
    for (int i = 0; i < 5000; ++i) {
        text += "A:" + std::to_string(i % 10) + "\n";
    }
    text += "2000-3000 rw-p 00000000 00:00 0\n";
    for (int i = 0; i < 3000; ++i) {
        text += "B:7\n";
    }
    const MemoryMap map = parse_ok(text, MapsSource::smaps);
    ASSERT_EQ(map.size(), 2u);
    ASSERT_EQ(map[0].fields.size(), 5000u);
    ASSERT_EQ(map[1].fields.size(), 3000u);
    EXPECT_EQ(map[0].fields.data() + 5000, map[1].fields.data());
    for (std::size_t i = 0; i < 5000; ++i) {
        ASSERT_EQ(map[0].fields[i].name, "A");
        ASSERT_EQ(map[0].fields[i].value, i % 10);
        ASSERT_FALSE(map[0].fields[i].in_kb);
    }
    for (const SmapsField& f : map[1].fields) {
        ASSERT_EQ(f.name, "B");
        ASSERT_EQ(f.value, 7u);
    }
}

TEST(Maps, parses_smaps_rollup_header_and_fields) {
    const std::string text =
        "55d0c0a00000-7ffd1c3f1000 ---p 00000000 00:00 0                          [rollup]\n"
        "Rss:                1708 kB\n"
        "Pss:                 403 kB\n"
        "Pss_Dirty:           116 kB\n"
        "Pss_Anon:            116 kB\n"
        "Pss_File:            287 kB\n"
        "Pss_Shmem:             0 kB\n";
    const Mapping m = only_mapping(text, MapsSource::smaps_rollup);
    EXPECT_EQ(m.start, 0x55d0c0a00000u);
    EXPECT_EQ(m.end, 0x7ffd1c3f1000u);
    EXPECT_EQ(m.name, "[rollup]");
    EXPECT_EQ(m.smaps.rss_kb, 1708u);
    EXPECT_EQ(m.smaps.pss_anon_kb, 116u);
    EXPECT_EQ(m.smaps.pss_file_kb, 287u);
    EXPECT_EQ(m.smaps.pss_shmem_kb, 0u);
    EXPECT_EQ(m.fields.size(), 6u);
}

// ---------------------------------------------------------------------------
// Malformed input: always a parse error naming the line.

TEST(Maps, rejects_malformed_header_lines) {
    const std::vector<std::string> bad = {
        "garbage",
        "00400000",
        "00400000-",
        "00400000-00452000",
        "00400000-00452000 ",
        "00400000-00452000 r-x",
        "00400000-00452000 r-xp",
        "00400000-00452000 rwxq 00000000 08:02 1",
        "00400000-00452000 xwrp 00000000 08:02 1",
        "00400000-00452000 r-xp  00000000 08:02 1",
        "00400000-00452000 r-xp 00000000",
        "00400000-00452000 r-xp 00000000 08",
        "00400000-00452000 r-xp 00000000 08:",
        "00400000-00452000 r-xp 00000000 08:02",
        "00400000-00452000 r-xp 00000000 08-02 1",
        "00400000-00452000 r-xp 00000000 08:02 1x /a",
        "00400000-00452000 r-xp 00000000 08:02 -1",
        "00400000-00452000 r-xp 0000000g 08:02 1",
        "-00452000 r-xp 00000000 08:02 1",
        "00400000 00452000 r-xp 00000000 08:02 1",
        "00452000-00400000 r-xp 00000000 08:02 1",           // end below start
        "10000000000000000-10000000000000001 r--p 0 0:0 0",  // 65-bit address
        "0-10000000000000000 r--p 0 0:0 0",
        "0-1 r--p 10000000000000000 0:0 0",
        "0-1 r--p 0 100000000:0 0",  // major above 32 bits
        "0-1 r--p 0 0:100000000 0",
        "0-1 r--p 0 0:0 18446744073709551616",  // inode = 2^64
        "0-1 r--p 0 0:0 99999999999999999999999999",
        " 0-1 r--p 0 0:0 0",
        ":0-1 r--p 0 0:0 0",
    };
    for (const std::string& line : bad) {
        SCOPED_TRACE(line);
        parse_error(line, MapsSource::maps, 1);
        parse_error(maps_line("/a") + "\n" + maps_line("/b") + "\n" + line + "\n" + maps_line("/c"),
                    MapsSource::maps, 3);
        parse_error(SMAPS_ONE + line + "\n", MapsSource::smaps, 27);
    }
}

TEST(Maps, rejects_malformed_detail_lines) {
    const std::vector<std::string> bad = {
        "Rss:",
        "Rss:   ",
        "Rss:   kB",
        "Rss:   12",                          // a kB field without its unit
        "Rss:   12 kb",                       // wrong unit
        "Rss:   12 kB ",                      // trailing space
        "Rss:   12 kB extra",                 // trailing text
        "Rss:   12  kB",                      // two spaces
        "Rss:   1x kB",                       // not a number
        "Rss:   -4 kB",                       // negative
        "Rss:   18446744073709551616 kB",     // 2^64
        "Rss:   99999999999999999999999 kB",  // far beyond
        "Future:  18446744073709551616",      // unknown fields overflow too
        "Future:  12 MB",
        "THPeligible:    1 kB",
        "ProtectionKey:  2147483648",  // does not fit the int32
        "THPeligible:",
    };
    for (const std::string& line : bad) {
        SCOPED_TRACE(line);
        parse_error(SMAPS_ONE + line + "\n", MapsSource::smaps, 27);
        parse_error(SMAPS_ONE + line, MapsSource::smaps, 27);  // also without a final newline
    }
    // The largest value fits.
    const Mapping m = only_mapping(
        maps_line("/x") + "\nRss:   18446744073709551615 kB\nProtectionKey: 2147483647\n", MapsSource::smaps);
    EXPECT_EQ(m.smaps.rss_kb, UINT64_MAX);
    EXPECT_EQ(m.smaps.protection_key, INT32_MAX);
}

TEST(Maps, rejects_detail_line_before_any_header) {
    parse_error("Rss:                   4 kB\n" + maps_line("/x") + "\n", MapsSource::smaps, 1);
    parse_error("VmFlags: rd\n", MapsSource::smaps_rollup, 1);
}

TEST(Maps, rejects_smaps_detail_in_maps_file) {
    parse_error(SMAPS_ONE, MapsSource::maps, 2);
}

TEST(Maps, rejects_second_rollup_header) {
    const std::string rollup = "1000-2000 ---p 00000000 00:00 0    [rollup]\nRss:  4 kB\n";
    parse_error(rollup + rollup, MapsSource::smaps_rollup, 3);
}

TEST(Maps, rejects_nul_bytes_anywhere) {
    const std::string text = SMAPS_ONE;
    // At several positions: in the header, the name, a field name, a value, VmFlags, the last byte.
    for (const std::size_t at : {std::size_t{0}, std::size_t{5}, std::size_t{75}, SMAPS_ONE.find("Rss"),
                                 SMAPS_ONE.find("96"), SMAPS_ONE.find("ex mr"), SMAPS_ONE.size() - 1}) {
        SCOPED_TRACE(at);
        std::string t = text;
        t[at] = '\0';
        const std::size_t line = 1 + static_cast<std::size_t>(std::count(t.begin(), t.begin() + at, '\n'));
        const Error e = parse_error(t, MapsSource::smaps, line);
        EXPECT_NE(e.detail.find("NUL"), std::string::npos) << e.detail;
    }
}

TEST(Maps, rejects_empty_lines) {
    parse_error(maps_line("/a") + "\n\n" + maps_line("/b"), MapsSource::maps, 2);
    parse_error(maps_line("/a") + "\n\n", MapsSource::maps, 2);
    parse_error("\n", MapsSource::smaps, 1);
}

TEST(Maps, parse_error_message_quotes_the_line_and_names_source) {
    const Error e = parse_error(SMAPS_ONE + "Rss: 12 MB\n", MapsSource::smaps, 27);
    EXPECT_EQ(e.operation, "parse smaps line 27");
    EXPECT_NE(e.detail.find("\"Rss: 12 MB\""), std::string::npos) << e.detail;
    const std::string msg = e.message();
    EXPECT_NE(msg.find("parse smaps line 27"), std::string::npos) << msg;

    const Error rollup = parse_error("x", MapsSource::smaps_rollup, 1);
    EXPECT_EQ(rollup.operation, "parse smaps_rollup line 1");
    // Control bytes are escaped and a long line is cut.
    const Error long_line = parse_error(std::string(200, 'z') + "\x01", MapsSource::maps, 1);
    EXPECT_LT(long_line.detail.size(), 200u);
    const Error ctrl = parse_error("\x01\x7f", MapsSource::maps, 1);
    EXPECT_NE(ctrl.detail.find("\\x01\\x7f"), std::string::npos) << ctrl.detail;
}

TEST(Maps, truncated_sample_fails_only_where_cut_mid_line) {
    // Cutting a real smaps at every byte either parses (cut at a line end or
    // inside a name/value that is still valid) or fails with a parse error; never crashes.
    const std::string text = read_sample("capture.smaps").substr(0, 4000);
    int failures = 0;
    for (std::size_t n = 0; n <= text.size(); ++n) {
        auto r = MemoryMap::parse(text.substr(0, n), MapsSource::smaps);
        if (!r) {
            ++failures;
            EXPECT_EQ(r.error().kind, ErrorKind::parse);
        }
    }
    EXPECT_GT(failures, 100);
}

TEST(Maps, fuzz_seed_corpus_parses_as_its_extension_says) {
    // The seeds are only useful if they are valid: the fuzzer mutates from there.
    const std::string dir = std::string(XPROC_SOURCE_DIR) + "/tests/fuzz/corpus/maps";
    DIR* d = opendir(dir.c_str());
    ASSERT_NE(d, nullptr) << dir;
    int seeds = 0;
    while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        MapsSource source = MapsSource::maps;
        if (name.ends_with(".smaps_rollup")) {
            source = MapsSource::smaps_rollup;
        } else if (name.ends_with(".smaps")) {
            source = MapsSource::smaps;
        } else if (!name.ends_with(".maps")) {
            continue;
        }
        SCOPED_TRACE(name);
        std::ifstream in(dir + "/" + name, std::ios::binary);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const MemoryMap map = parse_ok(text, source);
        EXPECT_FALSE(map.empty());
        ++seeds;
    }
    closedir(d);
    EXPECT_GE(seeds, 5);
}

// ---------------------------------------------------------------------------
// Reading real processes.

using PidReader = Result<MemoryMap> (*)(pid_t);
using ProcessReader = Result<MemoryMap> (*)(const Process&);
constexpr PidReader PID_READERS[] = {read_maps, read_smaps, read_smaps_rollup};
constexpr ProcessReader PROCESS_READERS[] = {read_maps, read_smaps, read_smaps_rollup};

TEST(Maps, read_smaps_of_self_agrees_with_maps) {
    // A first read of each sets up what the reads allocate (a sanitizer's
    // allocator maps a region per size class), so that the two reads compared
    // below differ by as few mappings as possible.
    ASSERT_TRUE(read_maps(getpid()).has_value());
    ASSERT_TRUE(read_smaps(getpid()).has_value());
    auto maps = read_maps(getpid());
    auto smaps = read_smaps(getpid());
    ASSERT_TRUE(maps.has_value()) << maps.error().message();
    ASSERT_TRUE(smaps.has_value()) << smaps.error().message();
    EXPECT_EQ(maps->source(), MapsSource::maps);
    EXPECT_EQ(smaps->source(), MapsSource::smaps);
    ASSERT_GT(maps->size(), 10u);
    // Buffers allocated between the two reads may add or remove a few anonymous
    // mappings; everything with a name is the same in both.
    const auto diff = static_cast<long>(maps->size()) - static_cast<long>(smaps->size());
    EXPECT_LE(std::labs(diff), 4);
    std::set<std::tuple<std::uint64_t, std::uint64_t, std::string>> named;
    for (const Mapping& m : *smaps) {
        if (!m.name.empty()) {
            named.emplace(m.start, m.end, std::string(m.name));
        }
        EXPECT_EQ(m.smaps.size_kb * 1024, m.size()) << m.name;
        EXPECT_LE(m.smaps.rss_kb, m.smaps.size_kb) << m.name;
        EXPECT_FALSE(m.fields.empty());
        EXPECT_FALSE(m.smaps.vm_flags.empty());
    }
    int named_in_maps = 0;
    bool found_stack = false;
    bool found_self = false;
    for (const Mapping& m : *maps) {
        if (m.name.empty() || m.kind == MappingKind::heap) {
            continue;  // the heap may grow between the reads
        }
        ++named_in_maps;
        EXPECT_TRUE(named.contains({m.start, m.end, std::string(m.name)})) << m.name;
        found_stack |= m.kind == MappingKind::stack;
        found_self |= m.kind == MappingKind::file && m.path().ends_with("/unit_maps");
    }
    EXPECT_GT(named_in_maps, 5);
    EXPECT_TRUE(found_stack);
    EXPECT_TRUE(found_self);
}

TEST(Maps, read_smaps_rollup_of_self) {
    auto rollup = read_smaps_rollup(getpid());
    ASSERT_TRUE(rollup.has_value()) << rollup.error().message();
    ASSERT_EQ(rollup->size(), 1u);
    const Mapping& r = (*rollup)[0];
    EXPECT_EQ(r.name, "[rollup]");
    EXPECT_GT(r.smaps.rss_kb, 100u);
    EXPECT_GT(r.smaps.pss_kb, 0u);
    EXPECT_LE(r.smaps.pss_kb, r.smaps.rss_kb);
    EXPECT_LE(r.smaps.pss_anon_kb + r.smaps.pss_file_kb + r.smaps.pss_shmem_kb, r.smaps.pss_kb);
    EXPECT_GE(r.smaps.pss_anon_kb + r.smaps.pss_file_kb + r.smaps.pss_shmem_kb + 3, r.smaps.pss_kb);
    EXPECT_NE(r.find_field("Pss_Anon"), nullptr);
}

TEST(Maps, read_smaps_of_child_sees_its_touched_pages) {
    test::Child child({test::target_path("sleeper"), "100"});
    ASSERT_TRUE(child.wait_for_line());
    auto smaps = read_smaps(child.pid());
    ASSERT_TRUE(smaps.has_value()) << smaps.error().message();
    bool found_exe = false;
    bool found_pages = false;
    for (const Mapping& m : *smaps) {
        found_exe |= m.kind == MappingKind::file && m.path().ends_with("/sleeper") && m.perms.exec;
        // 100 touched pages: one anonymous rw mapping (perhaps merged with a neighbour) holds them.
        found_pages |= m.kind == MappingKind::anonymous && m.perms.write && m.smaps.anonymous_kb >= 400 &&
                       m.smaps.private_dirty_kb >= 400;
    }
    EXPECT_TRUE(found_exe);
    EXPECT_TRUE(found_pages);
}

TEST(Maps, read_through_process_of_live_child) {
    test::Child child({test::target_path("sleeper"), "100"});
    ASSERT_TRUE(child.wait_for_line());
    auto proc = Process::open(child.pid());
    ASSERT_TRUE(proc) << proc.error().message();

    auto maps = read_maps(*proc);
    ASSERT_TRUE(maps) << maps.error().message();
    EXPECT_EQ(maps->source(), MapsSource::maps);
    auto smaps = read_smaps(*proc);
    ASSERT_TRUE(smaps) << smaps.error().message();
    EXPECT_EQ(smaps->source(), MapsSource::smaps);
    // The child is idle: both reads see the same mappings.
    ASSERT_EQ(maps->size(), smaps->size());
    bool found_exe = false;
    bool found_pages = false;
    for (std::size_t i = 0; i < maps->size(); ++i) {
        const Mapping& m = (*smaps)[i];
        EXPECT_EQ((*maps)[i].start, m.start);
        EXPECT_EQ((*maps)[i].name, m.name);
        found_exe |= m.kind == MappingKind::file && m.path().ends_with("/sleeper") && m.perms.exec;
        found_pages |= m.kind == MappingKind::anonymous && m.perms.write && m.smaps.private_dirty_kb >= 400;
    }
    EXPECT_TRUE(found_exe);
    EXPECT_TRUE(found_pages);

    auto rollup = read_smaps_rollup(*proc);
    ASSERT_TRUE(rollup) << rollup.error().message();
    ASSERT_EQ(rollup->size(), 1u);
    EXPECT_GE((*rollup)[0].smaps.private_dirty_kb, 400u);
}

TEST(Maps, read_through_process_of_reaped_child_is_no_such_process) {
    test::Child child({test::target_path("sleeper")});
    ASSERT_TRUE(child.wait_for_line());
    auto proc = Process::open(child.pid());
    ASSERT_TRUE(proc) << proc.error().message();
    const pid_t pid = child.pid();
    ASSERT_TRUE(read_maps(*proc));

    // The pidfd and the /proc/PID directory fd stay open after the reap.
    child.kill_and_reap();
    for (const ProcessReader reader : PROCESS_READERS) {
        auto r = reader(*proc);
        ASSERT_FALSE(r.has_value()) << "read a reaped process";
        EXPECT_EQ(r.error().kind, ErrorKind::no_such_process) << r.error().message();
        EXPECT_EQ(r.error().pid, pid);
    }
}

TEST(Maps, read_through_process_of_zombie_is_zombie_error) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        pause();
        _exit(0);
    }
    struct Reaper {  // reaps the child even when an assertion below fails
        pid_t pid;
        ~Reaper() {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    } reaper{pid};
    auto proc = Process::open(pid);
    ASSERT_TRUE(proc) << proc.error().message();
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    // Wait for the exit without reaping: the child stays a zombie.
    siginfo_t info{};
    ASSERT_EQ(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
    for (const ProcessReader reader : PROCESS_READERS) {
        auto r = reader(*proc);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().kind, ErrorKind::zombie) << r.error().message();
        EXPECT_EQ(r.error().pid, pid);
    }
}

TEST(Maps, read_through_process_that_exits_meanwhile_is_complete_or_no_such_process) {
    // A big map takes milliseconds to read; kill the target at various moments of
    // the read. The kernel then ends the file early without an error: the read
    // must either return every mapping or fail with no_such_process.
    constexpr int N = 20000;
    for (const bool smaps : {false, true}) {
        for (const int delay_us : {0, 500, 1000, 2000, 4000, 8000}) {
            test::Child target({test::target_path("many_maps"), std::to_string(N)});
            ASSERT_TRUE(target.wait_for_line());
            ASSERT_TRUE(target.freeze());
            auto proc = Process::open(target.pid());
            ASSERT_TRUE(proc) << proc.error().message();
            auto whole = read_maps(*proc);
            ASSERT_TRUE(whole) << whole.error().message();
            ASSERT_GT(whole->size(), static_cast<std::size_t>(N));

            std::thread killer([&] {
                std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
                target.kill_and_reap();
            });
            auto r = smaps ? read_smaps(*proc) : read_maps(*proc);
            killer.join();
            if (r) {
                EXPECT_EQ(r->size(), whole->size()) << "partial map, delay " << delay_us << " us";
            } else {
                EXPECT_EQ(r.error().kind, ErrorKind::no_such_process) << r.error().message();
            }
        }
    }
}

TEST(Maps, read_of_thread_id_reads_its_process) {
    test::Child child({test::target_path("threads"), "2"});
    ASSERT_TRUE(child.wait_for_line());
    auto proc = Process::open(child.pid());
    ASSERT_TRUE(proc) << proc.error().message();
    auto tids = proc->threads();
    ASSERT_TRUE(tids) << tids.error().message();
    ASSERT_EQ(tids->size(), 3u);
    // pidfd_open refuses a non-leader thread id; /proc/TID/maps is its process's map.
    auto by_tid = read_maps(tids->back());
    ASSERT_TRUE(by_tid) << by_tid.error().message();
    auto by_pid = read_maps(*proc);
    ASSERT_TRUE(by_pid) << by_pid.error().message();
    EXPECT_EQ(by_tid->size(), by_pid->size());
}

TEST(Maps, read_map_file_from_descriptor) {
    const std::string path = std::string(XPROC_SAMPLES_DIR) + "/capture.smaps";
    auto fd = open_fd(path.c_str(), O_RDONLY);
    ASSERT_TRUE(fd.has_value());
    auto map = read_map_file(fd->get(), MapsSource::smaps, 42);
    ASSERT_TRUE(map.has_value()) << map.error().message();
    EXPECT_EQ(map->size(), 33u);

    // A directory cannot be read: an os error, labelled with the pid.
    auto dir = open_fd(XPROC_SAMPLES_DIR, O_RDONLY | O_DIRECTORY);
    ASSERT_TRUE(dir.has_value());
    auto err = read_map_file(dir->get(), MapsSource::maps, 42);
    ASSERT_FALSE(err.has_value());
    EXPECT_EQ(err.error().errno_value, EISDIR);
    EXPECT_EQ(err.error().pid, 42);

    // A malformed file: the parse error names the descriptor and the line.
    auto maps_fd = open_fd((std::string(XPROC_SAMPLES_DIR) + "/capture.smaps").c_str(), O_RDONLY);
    ASSERT_TRUE(maps_fd.has_value());
    auto wrong = read_map_file(maps_fd->get(), MapsSource::maps, 7);
    ASSERT_FALSE(wrong.has_value());
    EXPECT_EQ(wrong.error().kind, ErrorKind::parse);
    EXPECT_EQ(wrong.error().pid, 7);
    EXPECT_NE(wrong.error().operation.find("line 2"), std::string::npos) << wrong.error().message();
    EXPECT_NE(wrong.error().operation.find("fd "), std::string::npos) << wrong.error().message();
}

TEST(Maps, read_rejects_non_positive_pid) {
    for (pid_t pid : {0, -1}) {
        auto r = read_maps(pid);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().kind, ErrorKind::invalid_argument);
    }
}

TEST(Maps, read_of_missing_process_is_no_such_process) {
    const pid_t pid = xproc::test::vanished_pid();
    ASSERT_GT(pid, 0);
    for (const PidReader reader : PID_READERS) {
        auto r = reader(pid);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().kind, ErrorKind::no_such_process) << r.error().message();
        EXPECT_EQ(r.error().pid, pid);
    }
}

TEST(Maps, read_of_zombie_is_zombie_error) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        _exit(0);
    }
    // Wait for the exit without reaping: the child stays a zombie.
    siginfo_t info{};
    ASSERT_EQ(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
    for (const PidReader reader : PID_READERS) {
        auto r = reader(pid);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().kind, ErrorKind::zombie) << r.error().message();
        EXPECT_EQ(r.error().pid, pid);
    }
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
}

pid_t find_kernel_thread() {
    DIR* dir = opendir("/proc");
    if (dir == nullptr) {
        return 0;
    }
    pid_t found = 0;
    while (dirent* e = readdir(dir)) {
        const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (pid <= 0) {
            continue;
        }
        std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        const std::size_t close = text.rfind(')');
        if (close == std::string::npos) {
            continue;
        }
        std::istringstream fields(text.substr(close + 2));
        std::string field;
        unsigned long flags = 0;
        for (int i = 3; i <= 9 && fields >> field; ++i) {
            if (i == 9) {
                flags = std::stoul(field);
            }
        }
        if ((flags & 0x00200000ul) != 0) {  // PF_KTHREAD
            found = pid;
            break;
        }
    }
    closedir(dir);
    return found;
}

TEST(Maps, read_of_kernel_thread_is_kernel_thread_error) {
    const pid_t pid = find_kernel_thread();
    if (pid == 0) {
        GTEST_SKIP() << "no kernel thread visible in this pid namespace";
    }
    for (const PidReader reader : PID_READERS) {
        auto r = reader(pid);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().kind, ErrorKind::kernel_thread) << r.error().message();
        EXPECT_EQ(r.error().pid, pid);
    }
}

}  // namespace
}  // namespace xproc
