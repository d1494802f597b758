// SPDX-License-Identifier: MIT
// Tests for scan.hpp on real processes (tests/targets/mem_target.c): byte, string and value
// searches over the whole address space or a range, matches across read-chunk boundaries,
// alignment, max_matches, and the narrowing rescan after the target changes a value.
#include "xproc/scan.hpp"

#include <gtest/gtest.h>

#include <sys/utsname.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "child.hpp"
#include "mem_target.hpp"

namespace xproc {
namespace {

const char NEEDLE[] = "XPROC-NEEDLE";
const std::size_t NEEDLE_LEN = sizeof NEEDLE - 1;

using Target = test::MemTarget;
using test::start_mem_target;

RemoteMemory open_ok(pid_t pid) {
    auto m = RemoteMemory::open(pid);
    if (!m) {
        ADD_FAILURE() << m.error().message();
        std::abort();
    }
    return std::move(*m);
}

/// mem_target's big buffer, rebuilt locally: byte i = i % 251, needles at its three offsets.
std::vector<std::byte> model_big(std::size_t size) {
    std::vector<std::byte> b(size);
    for (std::size_t i = 0; i < size; ++i) {
        b[i] = static_cast<std::byte>(i % 251);
    }
    for (std::size_t off : {std::size_t{65531}, std::size_t{1048579}, size - NEEDLE_LEN}) {
        if (off + NEEDLE_LEN <= size) {
            std::memcpy(b.data() + off, NEEDLE, NEEDLE_LEN);
        }
    }
    return b;
}

/// Naive reference search: offsets of `pattern` in `hay` at addresses base+off aligned to `align`.
std::vector<std::uint64_t> naive(const std::vector<std::byte>& hay, std::span<const std::byte> pattern,
                                 std::uint64_t base, std::size_t align) {
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i + pattern.size() <= hay.size(); ++i) {
        if ((base + i) % align == 0 && std::memcmp(hay.data() + i, pattern.data(), pattern.size()) == 0) {
            out.push_back(base + i);
        }
    }
    return out;
}

bool contains(const std::vector<std::uint64_t>& v, std::uint64_t a) {
    return std::find(v.begin(), v.end(), a) != v.end();
}

ScanOptions in_range(std::uint64_t start, std::uint64_t end) {
    ScanOptions o;
    o.range = std::make_pair(start, end);
    return o;
}

TEST(Scan, finds_a_string_everywhere_in_the_process) {
    auto t = start_mem_target({"--big", "2"});
    RemoteMemory mem = open_ok(t->pid());
    auto r = find_string(mem, NEEDLE);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    const std::uint64_t big = t->addr("big");
    const std::size_t size = t->size("big");
    EXPECT_TRUE(contains(r->addresses, t->addr("needle")));
    EXPECT_TRUE(contains(r->addresses, big + 65531));
    EXPECT_TRUE(contains(r->addresses, big + 1048579));
    EXPECT_TRUE(contains(r->addresses, big + size - NEEDLE_LEN));
    EXPECT_TRUE(std::is_sorted(r->addresses.begin(), r->addresses.end()));
    EXPECT_EQ(std::adjacent_find(r->addresses.begin(), r->addresses.end()), r->addresses.end())
        << "duplicates";
    EXPECT_FALSE(r->truncated);
    EXPECT_GT(r->stats.regions, 3u);
    EXPECT_GE(r->stats.bytes_scanned, size);
}

TEST(Scan, matches_across_chunk_boundaries_are_found_once_for_every_chunk_size) {
    auto t = start_mem_target({"--big", "2"});
    RemoteMemory mem = open_ok(t->pid());
    const std::uint64_t big = t->addr("big");
    const std::size_t size = t->size("big");
    const std::vector<std::uint64_t> want = {big + 65531, big + 1048579, big + size - NEEDLE_LEN};
    // 65531 straddles 64 KiB; the small chunks put many boundaries through the needles.
    for (std::size_t chunk : {std::size_t{4096 + 24}, std::size_t{8192}, std::size_t{65536},
                              std::size_t{65536 + 7}, std::size_t{1 << 20}, std::size_t{8 << 20}}) {
        ScanOptions o = in_range(big, big + size);
        o.chunk = chunk;
        auto r = find_string(mem, NEEDLE, o);
        ASSERT_TRUE(r.has_value()) << r.error().message();
        EXPECT_EQ(r->addresses, want) << "chunk " << chunk;
        EXPECT_EQ(r->stats.bytes_scanned, size) << "chunk " << chunk;
        EXPECT_EQ(r->stats.unreadable_bytes, 0u);
    }
}

TEST(Scan, finds_a_pattern_that_straddles_two_mappings) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    const std::uint64_t s = t->addr("straddle");
    const std::uint64_t want = s + 4096 - 5;
    auto all = find_string(mem, NEEDLE);
    ASSERT_TRUE(all.has_value()) << all.error().message();
    EXPECT_TRUE(contains(all->addresses, want));
    auto in = find_string(mem, NEEDLE, in_range(s, s + t->size("straddle")));
    ASSERT_TRUE(in.has_value());
    EXPECT_EQ(in->addresses, std::vector<std::uint64_t>{want});
    // Only the first mapping is writable: the match needs both, so writable_only misses it.
    ScanOptions w;
    w.writable_only = true;
    auto writable = find_string(mem, NEEDLE, w);
    ASSERT_TRUE(writable.has_value());
    EXPECT_FALSE(contains(writable->addresses, want));
}

/// PAGEMAP_SCAN, which lets a scan skip never-touched memory, came with Linux 6.7.
bool kernel_has_pagemap_scan() {
    struct utsname u {};
    int major = 0, minor = 0;
    return uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
           (major > 6 || (major == 6 && minor >= 7));
}

TEST(Scan, skips_never_touched_anonymous_memory_but_finds_what_was_written_there) {
    const std::size_t mib = 4096;
    auto t = start_mem_target({"--sparse", std::to_string(mib)});
    RemoteMemory mem = open_ok(t->pid());
    const std::uint64_t sentinel_at = t->addr("sparse") + t->size("sparse") - 8;
    ScanOptions o;
    o.alignment = 8;
    auto r = find_value(mem, ValueType::u64, std::uint64_t{0xC0FFEE0DDBA11ull}, o);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_TRUE(contains(r->addresses, sentinel_at));
    if (!kernel_has_pagemap_scan()) {
        GTEST_SKIP() << "no PAGEMAP_SCAN (Linux < 6.7): the 4 GiB were read";
    }
    // 4 GiB less the page (or huge page) the sentinel lives in were never read.
    EXPECT_GE(r->stats.absent_bytes, (std::uint64_t{mib} << 20) - (4u << 20));
    EXPECT_LT(r->stats.bytes_scanned, std::uint64_t{512} << 20);
    // A pattern that crosses from written memory into the untouched zeros after it: the
    // sentinel's page is followed by zeros only when it is not the end of the mapping, so
    // write one in the middle, then search for it followed by zeros.
    const std::uint64_t middle = t->addr("sparse") + (std::uint64_t{mib} << 19) - 4;
    ASSERT_TRUE(mem.write_value<std::uint32_t>(middle, 0xfeedf00d).has_value());
    std::array<std::byte, 16> pattern{};
    const std::uint32_t feed = 0xfeedf00d;
    std::memcpy(pattern.data(), &feed, 4);
    auto whole = find_bytes(mem, pattern);
    ASSERT_TRUE(whole.has_value());
    EXPECT_TRUE(contains(whole->addresses, middle));
    // Reading maps the shared zero page over untouched memory: still treated as absent.
    auto across = find_bytes(mem, pattern, in_range(middle - 4096, middle + 8192));
    ASSERT_TRUE(across.has_value());
    EXPECT_EQ(across->addresses, std::vector<std::uint64_t>{middle});
    auto again = find_bytes(mem, pattern);
    ASSERT_TRUE(again.has_value());
    EXPECT_TRUE(contains(again->addresses, middle));
    // The region is MADV_HUGEPAGE: that read mapped the huge zero page. Some kernels flag it
    // PFNZERO in PAGEMAP_SCAN (the scan then still skips it); 6.18.44 does not, and the scan
    // reads those few MiB of zeros. Never the untouched rest of the 4 GiB.
    EXPECT_LE(again->stats.absent_bytes, whole->stats.absent_bytes);
    EXPECT_GE(again->stats.absent_bytes, whole->stats.absent_bytes - (std::uint64_t{16} << 20));
}

TEST(Scan, alignment_and_max_matches_match_a_reference_search) {
    auto t = start_mem_target({"--big", "2"});
    RemoteMemory mem = open_ok(t->pid());
    const std::uint64_t big = t->addr("big");
    const std::size_t size = t->size("big");
    const std::vector<std::byte> model = model_big(size);
    const std::array<std::byte, 3> pattern{std::byte{5}, std::byte{6}, std::byte{7}};
    for (std::size_t align : {1, 2, 4, 8}) {
        ScanOptions o = in_range(big, big + size);
        o.alignment = align;
        o.chunk = 100000;  // boundaries at odd places
        auto r = find_bytes(mem, pattern, o);
        ASSERT_TRUE(r.has_value()) << r.error().message();
        const auto want = naive(model, pattern, big, align);
        ASSERT_GT(want.size(), 100u);
        EXPECT_EQ(r->addresses, want) << "alignment " << align;

        o.max_matches = 10;
        auto first = find_bytes(mem, pattern, o);
        ASSERT_TRUE(first.has_value());
        EXPECT_TRUE(first->truncated);
        EXPECT_EQ(first->addresses, std::vector<std::uint64_t>(want.begin(), want.begin() + 10));
    }
}

TEST(Scan, find_value_then_rescan_narrows_to_the_changed_value) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    ScanOptions o;
    o.alignment = 4;
    auto first = find_value(mem, ValueType::i32, std::int64_t{0x5eed1234}, o);
    ASSERT_TRUE(first.has_value()) << first.error().message();
    EXPECT_TRUE(contains(first->addresses, t->addr("value")));
    EXPECT_TRUE(contains(first->addresses, t->addr("decoy")));

    // The target adds 1 to `value` on SIGUSR1; the decoy keeps the old value.
    ASSERT_EQ(kill(t->pid(), SIGUSR1), 0);
    ASSERT_TRUE(t->child.wait_for_line("changed"));
    const auto next = value_bytes(ValueType::i32, std::int64_t{0x5eed1235}).value();
    auto narrowed = rescan(mem, *first, next);
    ASSERT_TRUE(narrowed.has_value()) << narrowed.error().message();
    EXPECT_EQ(narrowed->addresses, std::vector<std::uint64_t>{t->addr("value")});
    EXPECT_EQ(narrowed->stats.bytes_scanned, first->addresses.size() * 4);

    // Unchanged value: the decoy (and value no longer) stays.
    const auto old = value_bytes(ValueType::i32, std::int64_t{0x5eed1234}).value();
    auto same = rescan(mem, *first, old);
    ASSERT_TRUE(same.has_value());
    EXPECT_TRUE(contains(same->addresses, t->addr("decoy")));
    EXPECT_FALSE(contains(same->addresses, t->addr("value")));
}

TEST(Scan, rescan_drops_addresses_that_became_unreadable) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    ScanResult previous;
    const std::uint64_t hole = t->addr("holes") + 4096;
    previous.addresses = {t->addr("holes"), hole, t->addr("holes") + 8};
    const std::array<std::byte, 2> a1{std::byte{0xA1}, std::byte{0xA1}};
    auto r = rescan(mem, previous, a1);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(r->addresses, (std::vector<std::uint64_t>{t->addr("holes"), t->addr("holes") + 8}));
    EXPECT_EQ(r->stats.unreadable_bytes, 2u);
}

TEST(Scan, finds_floats_by_their_exact_bits) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    auto d = find_value(mem, ValueType::f64, 3.25);
    ASSERT_TRUE(d.has_value()) << d.error().message();
    EXPECT_TRUE(contains(d->addresses, t->addr("double")));
    auto f = find_value(mem, ValueType::f32, -1.5);
    ASSERT_TRUE(f.has_value());
    EXPECT_TRUE(contains(f->addresses, t->addr("float")));
    auto u = find_value(mem, ValueType::u64, std::uint64_t{0x1122334455667788ull});
    ASSERT_TRUE(u.has_value());
    EXPECT_TRUE(contains(u->addresses, t->addr("u64")));
}

TEST(Scan, writable_only_skips_read_only_mappings) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    // Plant the needle in the read-only page (written through /proc/PID/mem).
    auto w = mem.write(t->addr("readonly") + 100, std::as_bytes(std::span(NEEDLE, NEEDLE_LEN)));
    ASSERT_TRUE(w.has_value() && w->complete());
    auto all = find_string(mem, NEEDLE);
    ASSERT_TRUE(all.has_value());
    EXPECT_TRUE(contains(all->addresses, t->addr("readonly") + 100));
    ScanOptions o;
    o.writable_only = true;
    auto writable = find_string(mem, NEEDLE, o);
    ASSERT_TRUE(writable.has_value());
    EXPECT_FALSE(contains(writable->addresses, t->addr("readonly") + 100));
    EXPECT_TRUE(contains(writable->addresses, t->addr("needle")));
}

TEST(Scan, value_bytes_checks_the_range_of_the_type) {
    EXPECT_EQ(value_bytes(ValueType::i8, std::int64_t{-128}).value(),
              std::vector<std::byte>{std::byte{0x80}});
    EXPECT_EQ(value_bytes(ValueType::u8, std::uint64_t{255}).value(),
              std::vector<std::byte>{std::byte{0xff}});
    EXPECT_EQ(value_bytes(ValueType::i8, std::int64_t{128}).error().kind, ErrorKind::invalid_argument);
    EXPECT_EQ(value_bytes(ValueType::i8, std::int64_t{-129}).error().kind, ErrorKind::invalid_argument);
    EXPECT_EQ(value_bytes(ValueType::u8, std::int64_t{-1}).error().kind, ErrorKind::invalid_argument);
    EXPECT_EQ(value_bytes(ValueType::u16, std::uint64_t{65536}).error().kind, ErrorKind::invalid_argument);
    EXPECT_EQ(value_bytes(ValueType::i32, 2.5).error().kind, ErrorKind::invalid_argument);
    EXPECT_EQ(value_bytes(ValueType::i32, 3.0).value().size(), 4u);
    EXPECT_EQ(value_bytes(ValueType::u64, std::uint64_t{~0ull}).value(),
              std::vector<std::byte>(8, std::byte{0xff}));
    EXPECT_EQ(value_bytes(ValueType::i64, std::int64_t{INT64_MIN}).value().back(), std::byte{0x80});
    const auto f = value_bytes(ValueType::f32, 1.5).value();
    float back = 0;
    ASSERT_EQ(f.size(), 4u);
    std::memcpy(&back, f.data(), 4);
    EXPECT_EQ(back, 1.5f);
    EXPECT_EQ(width(ValueType::i16), 2u);
    EXPECT_EQ(to_string(ValueType::f64), "f64");
}

TEST(Scan, rejects_an_empty_pattern_and_zero_alignment) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    auto e = find_bytes(mem, {});
    ASSERT_FALSE(e.has_value());
    EXPECT_EQ(e.error().kind, ErrorKind::invalid_argument);
    ScanOptions o;
    o.alignment = 0;
    auto z = find_string(mem, "x", o);
    ASSERT_FALSE(z.has_value());
    EXPECT_EQ(z.error().kind, ErrorKind::invalid_argument);
}

TEST(Scan, target_that_exited_is_no_such_process) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    t->child.kill_and_reap();
    auto r = find_string(mem, NEEDLE);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, ErrorKind::no_such_process) << r.error().message();
    ScanResult previous;
    previous.addresses = {t->addr("value")};
    auto again = rescan(mem, previous, std::as_bytes(std::span("x", 1)));
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().kind, ErrorKind::no_such_process) << again.error().message();
}

}  // namespace
}  // namespace xproc
