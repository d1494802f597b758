// SPDX-License-Identifier: MIT
// Tests for memory.hpp on real processes: tests/targets/mem_target.c lays out known values,
// a hole, a PROT_NONE page, a read-only page, a big buffer (byte i = i % 251), an optional
// sparse MAP_NORESERVE region and the last user page, and prints where they are.
#include "xproc/memory.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <array>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "child.hpp"
#include "mem_target.hpp"
#include "xproc/access.hpp"
#include "xproc/maps.hpp"

namespace xproc {
namespace {

const std::size_t PAGE = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));

using Target = test::MemTarget;
using test::start_mem_target;

RemoteMemory open_ok(pid_t pid, MemoryOptions options = {}) {
    auto m = RemoteMemory::open(pid, std::move(options));
    if (!m) {
        ADD_FAILURE() << m.error().message();
        std::abort();
    }
    return std::move(*m);
}

Transfer read_ok(RemoteMemory& mem, std::uint64_t address, std::span<std::byte> out) {
    auto t = mem.read(address, out);
    EXPECT_TRUE(t.has_value()) << (t ? "" : t.error().message());
    return t ? std::move(*t) : Transfer{};
}

bool all_bytes(std::span<const std::byte> s, unsigned char v) {
    for (std::byte b : s) {
        if (b != std::byte{v}) {
            return false;
        }
    }
    return true;
}

MemoryOptions no_proc_mem() {
    MemoryOptions o;
    o.allow_proc_mem = false;
    return o;
}

/// Byte i of mem_target's big buffer (where no needle was written).
unsigned char big_byte(std::size_t i) {
    return static_cast<unsigned char>(i % 251);
}

TEST(RemoteMemory, path_names) {
    EXPECT_EQ(to_string(MemoryPath::vm_syscall), "process_vm_readv");
    EXPECT_EQ(to_string(MemoryPath::proc_mem), "/proc/PID/mem");
    EXPECT_EQ(to_string(MemoryPath::ptrace), "ptrace");
}

TEST(RemoteMemory, open_of_a_vanished_pid_is_no_such_process) {
    auto m = RemoteMemory::open(test::vanished_pid());
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.error().kind, ErrorKind::no_such_process) << m.error().message();
}

TEST(RemoteMemory, reads_known_values_with_process_vm_readv) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    auto v = mem.read_value<std::int32_t>(t->addr("value"));
    ASSERT_TRUE(v.has_value()) << v.error().message();
    EXPECT_EQ(*v, 0x5eed1234);
    auto u = mem.read_value<std::uint64_t>(t->addr("u64"));
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(*u, 0x1122334455667788ull);
    auto d = mem.read_value<double>(t->addr("double"));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, 3.25);
    std::array<std::byte, 12> needle{};
    Transfer tr = read_ok(mem, t->addr("needle"), needle);
    EXPECT_TRUE(tr.complete());
    EXPECT_EQ(tr.path, MemoryPath::vm_syscall);
    EXPECT_EQ(std::memcmp(needle.data(), "XPROC-NEEDLE", 12), 0);
}

TEST(RemoteMemory, write_then_read_round_trips) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    ASSERT_TRUE(mem.write_value<std::int32_t>(t->addr("value"), 777).has_value());
    EXPECT_EQ(mem.read_value<std::int32_t>(t->addr("value")).value(), 777);

    // 1 MiB of non-repeating bytes into the big buffer, read back.
    std::vector<std::byte> data(1 << 20);
    std::uint32_t x = 12345;
    for (auto& b : data) {
        x = x * 1103515245u + 12345u;
        b = static_cast<std::byte>(x >> 24);
    }
    auto w = mem.write(t->addr("big"), data);
    ASSERT_TRUE(w.has_value()) << w.error().message();
    EXPECT_TRUE(w->complete());
    EXPECT_EQ(w->path, MemoryPath::vm_syscall);
    std::vector<std::byte> back(data.size());
    EXPECT_TRUE(read_ok(mem, t->addr("big"), back).complete());
    EXPECT_EQ(back, data);
}

TEST(RemoteMemory, zero_byte_read_is_complete) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    Transfer tr = read_ok(mem, 0, {});
    EXPECT_TRUE(tr.complete());
    EXPECT_EQ(tr.bytes, 0u);
}

TEST(RemoteMemory, read_into_a_hole_is_a_short_count_not_an_error) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    const std::uint64_t holes = t->addr("holes");
    std::vector<std::byte> buf(2 * PAGE);
    Transfer tr = read_ok(mem, holes, buf);
    EXPECT_FALSE(tr.complete());
    EXPECT_EQ(tr.bytes, PAGE);
    EXPECT_EQ(tr.requested, 2 * PAGE);
    EXPECT_EQ(tr.path, MemoryPath::vm_syscall);
    EXPECT_EQ(tr.stop_address, holes + PAGE);
    EXPECT_EQ(tr.stop_errno, EFAULT);
    EXPECT_NE(tr.stop_reason.find("unmapped"), std::string::npos) << tr.stop_reason;
    EXPECT_TRUE(all_bytes(std::span(buf).first(PAGE), 0xA1));

    // read_value across the hole is an error that says where.
    auto v = mem.read_value<std::uint64_t>(holes + PAGE - 4);
    ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error().kind, ErrorKind::os);
    EXPECT_EQ(v.error().errno_value, EFAULT);
    EXPECT_TRUE(v.error().has_address);
    EXPECT_EQ(v.error().address, holes + PAGE);
}

TEST(RemoteMemory, fully_unmapped_range_is_efault_or_eio_via_proc_mem) {
    auto t = start_mem_target();
    const std::uint64_t hole = t->addr("holes") + PAGE;
    std::vector<std::byte> buf(64);
    {
        RemoteMemory mem = open_ok(t->pid());
        Transfer tr = read_ok(mem, hole, buf);
        EXPECT_EQ(tr.bytes, 0u);
        EXPECT_EQ(tr.stop_address, hole);
        EXPECT_EQ(tr.stop_errno, EFAULT);
        EXPECT_EQ(tr.path, MemoryPath::vm_syscall);
        EXPECT_EQ(
            tr.stop_reason, "unmapped (no mapping at 0x" + [&] {
                char b[32];
                std::snprintf(b, sizeof b, "%" PRIx64, hole);
                return std::string(b);
            }() + ")");
    }
    {
        RemoteMemory mem = open_ok(t->pid(), MemoryOptions::only(MemoryPath::proc_mem));
        Transfer tr = read_ok(mem, hole, buf);
        EXPECT_EQ(tr.bytes, 0u);
        EXPECT_EQ(tr.stop_errno, EIO);
        EXPECT_EQ(tr.path, MemoryPath::proc_mem);
        EXPECT_NE(tr.stop_reason.find("unmapped"), std::string::npos) << tr.stop_reason;
        // ...and the proc_mem path also stops short at the hole.
        std::vector<std::byte> two(2 * PAGE);
        Transfer part = read_ok(mem, t->addr("holes"), two);
        EXPECT_EQ(part.bytes, PAGE);
        EXPECT_EQ(part.path, MemoryPath::proc_mem);
        EXPECT_TRUE(all_bytes(std::span(two).first(PAGE), 0xA1));
    }
}

TEST(RemoteMemory, prot_none_page_is_read_through_proc_mem) {
    auto t = start_mem_target();
    const std::uint64_t page = t->addr("protnone");
    std::vector<std::byte> buf(PAGE);
    {
        RemoteMemory mem = open_ok(t->pid());
        Transfer tr = read_ok(mem, page, buf);
        EXPECT_TRUE(tr.complete()) << tr.stop_reason;
        EXPECT_EQ(tr.path, MemoryPath::proc_mem);
        EXPECT_TRUE(all_bytes(buf, 0x5A));
    }
    {
        // Without the fallback: a clean stop that names the mapping.
        RemoteMemory mem = open_ok(t->pid(), no_proc_mem());
        Transfer tr = read_ok(mem, page, buf);
        EXPECT_EQ(tr.bytes, 0u);
        EXPECT_EQ(tr.stop_errno, EFAULT);
        EXPECT_NE(tr.stop_reason.find("PROT_NONE mapping"), std::string::npos) << tr.stop_reason;
        EXPECT_NE(tr.stop_reason.find("---p"), std::string::npos) << tr.stop_reason;
    }
}

TEST(RemoteMemory, write_to_read_only_page_goes_through_proc_mem_like_gdb) {
    auto t = start_mem_target();
    const std::uint64_t ro = t->addr("readonly");
    const std::array<std::byte, 4> cc{std::byte{0xCC}, std::byte{0xCC}, std::byte{0xCC}, std::byte{0xCC}};
    {
        RemoteMemory mem = open_ok(t->pid(), no_proc_mem());
        auto w = mem.write(ro + 8, cc);
        ASSERT_TRUE(w.has_value());
        EXPECT_EQ(w->bytes, 0u);
        EXPECT_EQ(w->stop_errno, EFAULT);
        EXPECT_NE(w->stop_reason.find("read-only mapping"), std::string::npos) << w->stop_reason;
    }
    RemoteMemory mem = open_ok(t->pid());
    auto w = mem.write(ro + 8, cc);
    ASSERT_TRUE(w.has_value()) << w.error().message();
    EXPECT_TRUE(w->complete()) << w->stop_reason;
    EXPECT_EQ(w->path, MemoryPath::proc_mem);
    std::vector<std::byte> buf(16);
    read_ok(mem, ro, buf);
    EXPECT_TRUE(all_bytes(std::span(buf).first(8), 0x77));
    EXPECT_TRUE(all_bytes(std::span(buf).subspan(8, 4), 0xCC));
    EXPECT_TRUE(all_bytes(std::span(buf).subspan(12), 0x77));
}

TEST(RemoteMemory, write_to_program_text_makes_a_private_copy_and_leaves_the_file_alone) {
    auto t = start_mem_target();
    auto maps = read_maps(t->pid());
    ASSERT_TRUE(maps.has_value()) << maps.error().message();
    const Mapping* text = nullptr;
    for (const Mapping& m : *maps) {
        if (m.perms.exec && !m.perms.write && m.path().find("mem_target") != std::string_view::npos) {
            text = &m;
        }
    }
    ASSERT_NE(text, nullptr);
    // The first byte of the mapping: ELF/.init code the target does not run again.
    RemoteMemory mem = open_ok(t->pid());
    const auto before = mem.read_value<std::uint8_t>(text->start);
    ASSERT_TRUE(before.has_value());
    const std::uint8_t patched = static_cast<std::uint8_t>(*before ^ 0xff);
    auto w = mem.write(text->start, std::as_bytes(std::span(&patched, 1)));
    ASSERT_TRUE(w.has_value()) << w.error().message();
    EXPECT_TRUE(w->complete()) << w->stop_reason;
    EXPECT_EQ(w->path, MemoryPath::proc_mem);
    EXPECT_EQ(mem.read_value<std::uint8_t>(text->start).value(), patched);
    // The file on disk still has the original byte (the page was copied, like a gdb breakpoint).
    std::ifstream file(std::string(text->path()), std::ios::binary);
    file.seekg(static_cast<std::streamoff>(text->offset));
    char on_disk = 0;
    file.read(&on_disk, 1);
    EXPECT_EQ(static_cast<std::uint8_t>(on_disk), *before);
    ASSERT_TRUE(mem.write_value<std::uint8_t>(text->start, *before).has_value());
    EXPECT_EQ(mem.read_value<std::uint8_t>(text->start).value(), *before);
}

TEST(RemoteMemory, kernel_addresses_stop_with_kernel_address) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    std::vector<std::byte> buf(64);
    Transfer tr = read_ok(mem, 0xffff888000000000ull, buf);
    EXPECT_EQ(tr.bytes, 0u);
    EXPECT_EQ(tr.stop_reason, "kernel address");
    EXPECT_EQ(tr.stop_address, 0xffff888000000000ull);
    // A range whose end wraps around 2^64.
    Transfer wrap = read_ok(mem, 0xffffffffffffffe0ull, buf);
    EXPECT_EQ(wrap.bytes, 0u);
    EXPECT_EQ(wrap.stop_reason, "kernel address");
    // The first kernel address exactly.
    Transfer edge = read_ok(mem, KERNEL_ADDRESS_START, buf);
    EXPECT_EQ(edge.stop_reason, "kernel address");
    // From the last user page (mem_target maps it when the kernel lets it) towards the kernel half.
    if (t->addr("top") != 0) {
        std::vector<std::byte> three(3 * PAGE);
        Transfer top = read_ok(mem, t->addr("top"), three);
        EXPECT_EQ(top.bytes, PAGE);
        EXPECT_TRUE(all_bytes(std::span(three).first(PAGE), 0x7E));
        // The page below 2^47 is never mapped (the kernel's guard page).
        EXPECT_EQ(top.stop_address, t->addr("top") + PAGE);
        EXPECT_NE(top.stop_reason.find("unmapped"), std::string::npos) << top.stop_reason;
    }
}

TEST(RemoteMemory, huge_count_stops_at_the_end_of_the_mapping) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    // A 64 GiB destination, reserved but never touched beyond the first page.
    const std::size_t huge = std::size_t{64} << 30;
    void* local =
        mmap(nullptr, huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(local, MAP_FAILED);
    Transfer tr = read_ok(mem, t->addr("holes"), std::span(static_cast<std::byte*>(local), huge));
    EXPECT_EQ(tr.requested, huge);
    EXPECT_EQ(tr.bytes, PAGE);
    EXPECT_EQ(tr.stop_address, t->addr("holes") + PAGE);
    EXPECT_TRUE(all_bytes(std::span(static_cast<std::byte*>(local), PAGE), 0xA1));
    munmap(local, huge);
}

TEST(RemoteMemory, a_large_read_is_split_across_threads_and_every_byte_is_right) {
    // 64 MiB: above the 32 MiB where read() splits the work between threads (on a machine
    // with more than one CPU), in parts that end on page boundaries.
    ASSERT_GE(std::thread::hardware_concurrency(), 2u) << "the parallel path needs two CPUs";
    auto t = start_mem_target({"--big", "64"});
    RemoteMemory mem = open_ok(t->pid());
    const std::size_t size = t->size("big");
    ASSERT_EQ(size, std::size_t{64} << 20);
    std::vector<std::byte> buf(size, std::byte{0xEE});
    Transfer tr = read_ok(mem, t->addr("big"), buf);
    EXPECT_TRUE(tr.complete());
    EXPECT_EQ(tr.bytes, size);
    EXPECT_EQ(tr.path, MemoryPath::vm_syscall);
    const std::string_view needle = "XPROC-NEEDLE";
    const std::size_t needles[] = {65531, 1048579, size - 12};
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < size; ++i) {
        unsigned char want = big_byte(i);
        for (std::size_t at : needles) {
            if (i >= at && i < at + needle.size()) {
                want = static_cast<unsigned char>(needle[i - at]);
            }
        }
        wrong += static_cast<unsigned char>(buf[i]) != want ? 1 : 0;
    }
    EXPECT_EQ(wrong, 0u);
}

TEST(RemoteMemory, a_large_read_past_the_mapping_stops_where_a_serial_read_stops) {
    // A request that runs off the end of the 48 MiB buffer: the split is only made for ranges
    // that mappings cover end to end, so the result is the serial one (on_call forces serial).
    auto t = start_mem_target({"--big", "48"});
    const std::uint64_t big = t->addr("big");
    const std::size_t ask = t->size("big") + (std::size_t{64} << 20);
    RemoteMemory fast = open_ok(t->pid(), no_proc_mem());
    MemoryOptions serial_options = no_proc_mem();
    serial_options.on_call = [](std::size_t) {};
    RemoteMemory serial = open_ok(t->pid(), std::move(serial_options));
    void* a = mmap(nullptr, ask, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void* b = mmap(nullptr, ask, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(a, MAP_FAILED);
    ASSERT_NE(b, MAP_FAILED);
    Transfer x = read_ok(fast, big, std::span(static_cast<std::byte*>(a), ask));
    Transfer y = read_ok(serial, big, std::span(static_cast<std::byte*>(b), ask));
    EXPECT_FALSE(x.complete());
    EXPECT_GE(x.bytes, t->size("big"));
    EXPECT_EQ(x.bytes, y.bytes);
    EXPECT_EQ(x.stop_address, y.stop_address);
    EXPECT_EQ(x.stop_errno, y.stop_errno);
    EXPECT_EQ(std::memcmp(a, b, t->size("big")), 0);
    munmap(a, ask);
    munmap(b, ask);
}

TEST(RemoteMemory, transfers_are_split_at_max_per_call) {
    auto t = start_mem_target({"--big", "2"});
    std::size_t calls = 0;
    std::size_t largest = 0;
    MemoryOptions opts;
    opts.max_per_call = 3 * PAGE + 1;  // odd on purpose: calls end mid-page
    opts.on_call = [&](std::size_t n) {
        ++calls;
        largest = std::max(largest, n);
    };
    RemoteMemory mem = open_ok(t->pid(), std::move(opts));
    const std::size_t size = t->size("big");
    std::vector<std::byte> buf(size);
    Transfer tr = read_ok(mem, t->addr("big"), buf);
    EXPECT_TRUE(tr.complete());
    EXPECT_EQ(calls, (size + 3 * PAGE) / (3 * PAGE + 1));
    EXPECT_EQ(largest, 3 * PAGE + 1);
    for (std::size_t i = 0; i < 65531; ++i) {
        ASSERT_EQ(static_cast<unsigned char>(buf[i]), big_byte(i)) << i;
    }
    // Writes split the same way.
    calls = 0;
    auto w = mem.write(t->addr("big"), buf);
    ASSERT_TRUE(w.has_value());
    EXPECT_TRUE(w->complete());
    EXPECT_EQ(calls, (size + 3 * PAGE) / (3 * PAGE + 1));
}

/// A local window of `size` bytes backed by only `period` bytes of memory: one memfd mapped
/// again and again, so a > 2 GiB read costs no more than `period` of RAM.
struct AliasedWindow {
    std::byte* base = nullptr;
    std::size_t size = 0;
    AliasedWindow(std::size_t total, std::size_t period) : size(total) {
        const int fd = memfd_create("xproc-alias", MFD_CLOEXEC);
        EXPECT_GE(fd, 0);
        EXPECT_EQ(ftruncate(fd, static_cast<off_t>(period)), 0);
        void* r = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        EXPECT_NE(r, MAP_FAILED);
        base = static_cast<std::byte*>(r);
        for (std::size_t off = 0; off < total; off += period) {
            void* p = mmap(base + off, std::min(period, total - off), PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, 0);
            EXPECT_EQ(p, base + off);
        }
        close(fd);
    }
    ~AliasedWindow() { munmap(base, size); }
};

TEST(RemoteMemory, reads_a_sparse_mapping_larger_than_2_GiB_in_split_calls) {
    const std::size_t mib = 2048 + 64;  // just over 2 GiB: two calls
    auto t = start_mem_target({"--sparse", std::to_string(mib)});
    const std::size_t size = t->size("sparse");
    ASSERT_EQ(size, mib << 20);
    std::vector<std::size_t> calls;
    MemoryOptions opts;
    opts.on_call = [&](std::size_t n) { calls.push_back(n); };
    RemoteMemory mem = open_ok(t->pid(), std::move(opts));
    AliasedWindow window(size, std::size_t{64} << 20);
    Transfer tr = read_ok(mem, t->addr("sparse"), std::span(window.base, size));
    EXPECT_TRUE(tr.complete()) << tr.stop_reason;
    EXPECT_EQ(tr.bytes, size);
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[0], MAX_BYTES_PER_CALL);
    EXPECT_EQ(calls[1], size - MAX_BYTES_PER_CALL);
    // The last alias was written last: it holds the sentinel from the end of the region.
    std::uint64_t sentinel = 0;
    std::memcpy(&sentinel, window.base + size - 8, 8);
    EXPECT_EQ(sentinel, 0xC0FFEE0DDBA11ull);
}

TEST(RemoteMemory, readv_reads_many_ranges_in_batches) {
    auto t = start_mem_target({"--big", "2"});
    std::size_t calls = 0;
    MemoryOptions opts;
    opts.on_call = [&](std::size_t) { ++calls; };
    RemoteMemory mem = open_ok(t->pid(), std::move(opts));
    const std::uint64_t big = t->addr("big");
    // 3000 ranges (more than IOV_MAX) of sizes 1..97 at scattered offsets below the first needle.
    const std::size_t n = 3000;
    std::vector<std::vector<std::byte>> bufs(n);
    std::vector<RemoteMemory::Range> ranges;
    std::vector<std::size_t> offsets;
    for (std::size_t i = 0; i < n; ++i) {
        bufs[i].resize(1 + (i * 31) % 97);
        offsets.push_back((i * 7919) % 60000);
        ranges.push_back({big + offsets[i], bufs[i]});
    }
    auto r = mem.readv(ranges);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_EQ(r->size(), n);
    for (std::size_t i = 0; i < n; ++i) {
        ASSERT_TRUE((*r)[i].complete()) << i;
        ASSERT_EQ((*r)[i].path, MemoryPath::vm_syscall);
        for (std::size_t k = 0; k < bufs[i].size(); ++k) {
            ASSERT_EQ(static_cast<unsigned char>(bufs[i][k]), big_byte(offsets[i] + k)) << i << " " << k;
        }
    }
    EXPECT_EQ(calls, 3u);  // ceil(3000 / IOV_MAX)

    // A smaller iovec limit, same data.
    std::size_t small_calls = 0;
    MemoryOptions small;
    small.max_iovecs = 7;
    small.on_call = [&](std::size_t) { ++small_calls; };
    RemoteMemory mem7 = open_ok(t->pid(), std::move(small));
    auto r7 = mem7.readv(std::span(ranges).first(70));
    ASSERT_TRUE(r7.has_value());
    EXPECT_EQ(small_calls, 10u);
}

TEST(RemoteMemory, readv_reports_each_range_across_holes_and_prot_none) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    const std::uint64_t holes = t->addr("holes");
    std::vector<std::byte> a(PAGE), b(64), c(2 * PAGE), d(PAGE), e(16);
    std::vector<RemoteMemory::Range> ranges = {
        {holes, a},                                 // complete
        {holes + PAGE + 8, b},                      // in the hole: nothing
        {holes, c},                                 // runs into the hole: one page
        {t->addr("protnone"), d},                   // PROT_NONE: served by /proc/PID/mem
        {t->addr("value"), std::span(e).first(4)},  // complete again
    };
    auto r = mem.readv(ranges);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_EQ(r->size(), 5u);
    EXPECT_TRUE((*r)[0].complete());
    EXPECT_TRUE(all_bytes(a, 0xA1));
    EXPECT_EQ((*r)[1].bytes, 0u);
    EXPECT_EQ((*r)[1].stop_address, holes + PAGE + 8);
    EXPECT_NE((*r)[1].stop_reason.find("unmapped"), std::string::npos);
    EXPECT_EQ((*r)[2].bytes, PAGE);
    EXPECT_EQ((*r)[2].stop_address, holes + PAGE);
    EXPECT_TRUE((*r)[3].complete()) << (*r)[3].stop_reason;
    EXPECT_EQ((*r)[3].path, MemoryPath::proc_mem);
    EXPECT_TRUE(all_bytes(d, 0x5A));
    EXPECT_TRUE((*r)[4].complete());
    std::int32_t v = 0;
    std::memcpy(&v, e.data(), 4);
    EXPECT_EQ(v, 0x5eed1234);
}

TEST(RemoteMemory, target_that_exits_during_a_read_is_no_such_process) {
    auto t = start_mem_target({"--big", "8"});
    bool killed = false;
    MemoryOptions opts;
    opts.max_per_call = 64 << 10;
    opts.on_call = [&](std::size_t) {
        if (!killed) {
            killed = true;
            t->child.kill_and_reap();  // exit and reap after the first call
        }
    };
    RemoteMemory mem = open_ok(t->pid(), std::move(opts));
    const std::uint64_t big = t->addr("big");
    std::vector<std::byte> buf(t->size("big"));
    auto r = mem.read(big, buf);
    EXPECT_TRUE(killed);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, ErrorKind::no_such_process) << r.error().message();
    EXPECT_NE(r.error().message().find("exited"), std::string::npos) << r.error().message();
    // Any later call says the same.
    auto again = mem.read_value<int>(big);
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().kind, ErrorKind::no_such_process);
}

TEST(RemoteMemory, zombie_target_is_no_such_process) {
    auto t = start_mem_target();
    RemoteMemory mem = open_ok(t->pid());
    ASSERT_EQ(kill(t->pid(), SIGKILL), 0);
    // Wait until it is a zombie, without reaping it.
    siginfo_t info{};
    ASSERT_EQ(waitid(P_PID, static_cast<id_t>(t->pid()), &info, WEXITED | WNOWAIT), 0);
    auto r = mem.read_value<int>(t->addr("value"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, ErrorKind::no_such_process) << r.error().message();
    auto w = mem.write_value<int>(t->addr("value"), 1);
    ASSERT_FALSE(w.has_value());
    EXPECT_EQ(w.error().kind, ErrorKind::no_such_process) << w.error().message();
}

/// Makes process_vm_readv/writev fail with `err` in this process (seccomp), as on a kernel
/// without cross-memory attach (ENOSYS) or under a sandbox that refuses it (EPERM).
bool deny_process_vm(int err) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_readv, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_writev, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
    };
    struct sock_fprog prog = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/// In a forked child where process_vm_* fail with `err`: everything is served by /proc/PID/mem.
/// Returns "" on success, else what went wrong.
std::string check_proc_mem_fallback(const Target& t, int err) {
    int report[2];
    if (pipe(report) != 0) {
        return "pipe";
    }
    const pid_t child = fork();
    if (child == 0) {
        close(report[0]);
        std::string why;
        auto check = [&](bool ok, const std::string& what) {
            if (!ok && why.empty()) {
                why = what;
            }
        };
        if (!deny_process_vm(err)) {
            why = "seccomp";
        }
        auto mem = RemoteMemory::open(t.pid());
        if (!mem) {
            why = "open: " + mem.error().message();
        } else {
            auto tr = mem->read_value<std::int32_t>(t.addr("value"));
            check(tr.has_value() && *tr == 0x5eed1234, "read_value");
            std::array<std::byte, 12> needle{};
            auto r = mem->read(t.addr("needle"), needle);
            check(r && r->complete() && r->path == MemoryPath::proc_mem, "read path");
            check(std::memcmp(needle.data(), "XPROC-NEEDLE", 12) == 0, "read data");
            std::vector<std::byte> a(8), b(8), c(PAGE * 2);
            std::vector<RemoteMemory::Range> ranges = {
                {t.addr("u64"), a}, {t.addr("holes") + PAGE, b}, {t.addr("holes"), c}};
            auto v = mem->readv(ranges);
            check(v && (*v)[0].complete() && (*v)[0].path == MemoryPath::proc_mem, "readv 0");
            check(v && (*v)[1].bytes == 0 && (*v)[1].stop_errno == EIO &&
                      (*v)[1].stop_reason.find("unmapped") != std::string::npos,
                  "readv 1: " + (v ? (*v)[1].stop_reason : v.error().message()));
            check(v && (*v)[2].bytes == PAGE, "readv 2");
            auto w = mem->write_value<std::int32_t>(t.addr("value"), 99);
            check(w.has_value(), "write");
            check(mem->read_value<std::int32_t>(t.addr("value")).value_or(0) == 99, "write data");
        }
        if (err == EPERM) {
            // No fallback allowed: refused, and no ptrace rule explains it (a sandbox did).
            MemoryOptions o;
            o.allow_proc_mem = false;
            auto strict = RemoteMemory::open(t.pid(), o);
            auto r = strict ? strict->read_value<std::int32_t>(t.addr("value"))
                            : Result<std::int32_t>(fail(strict.error()));
            check(!r && r.error().kind == ErrorKind::permission &&
                      r.error().message().find("sandbox") != std::string::npos,
                  "refusal: " + (r ? std::string("read succeeded") : r.error().message()));
        }
        (void)!write(report[1], why.data(), why.size());
        _exit(why.empty() ? 0 : 1);
    }
    close(report[1]);
    std::string text;
    char buf[512];
    ssize_t n;
    while ((n = read(report[0], buf, sizeof buf)) > 0) {
        text.append(buf, static_cast<std::size_t>(n));
    }
    close(report[0]);
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return text.empty() ? "child died" : text;
    }
    return "";
}

TEST(RemoteMemory, falls_back_to_proc_mem_without_cross_memory_attach) {
    auto t = start_mem_target();
    EXPECT_EQ(check_proc_mem_fallback(*t, ENOSYS), "");
}

TEST(RemoteMemory, falls_back_to_proc_mem_when_process_vm_readv_is_refused) {
    auto t = start_mem_target();
    EXPECT_EQ(check_proc_mem_fallback(*t, EPERM), "");
}

TEST(RemoteMemory, kernel_thread_has_no_user_memory) {
    auto kthreadd = Process::open(2);
    auto st = kthreadd ? kthreadd->stat() : Result<ProcStat>(fail(kthreadd.error()));
    if (!st || !st->is_kernel_thread()) {
        GTEST_SKIP() << "pid 2 is not kthreadd here (a pid namespace?)";
    }
    RemoteMemory mem = open_ok(2);
    auto r = mem.read_value<int>(0x400000);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, ErrorKind::kernel_thread) << r.error().message();
}

/// A helper process that seizes `target` with PTRACE_SEIZE, stops it with PTRACE_INTERRUPT and
/// stays attached until killed.
struct OtherTracer {
    pid_t pid = -1;
    explicit OtherTracer(pid_t target) {
        int fds[2];
        EXPECT_EQ(pipe(fds), 0);
        pid = fork();
        if (pid == 0) {
            close(fds[0]);
            char ok = 'n';
            if (ptrace(PTRACE_SEIZE, target, nullptr, nullptr) == 0 &&
                ptrace(PTRACE_INTERRUPT, target, nullptr, nullptr) == 0) {
                int status = 0;
                if (waitpid(target, &status, __WALL) == target) {
                    ok = 'y';
                }
            }
            (void)!write(fds[1], &ok, 1);
            for (;;) {
                pause();
            }
        }
        close(fds[1]);
        char ok = 0;
        EXPECT_EQ(read(fds[0], &ok, 1), 1);
        EXPECT_EQ(ok, 'y') << "the helper could not seize the target";
        close(fds[0]);
    }
    ~OtherTracer() {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
};

TEST(RemoteMemory, reads_while_another_debugger_is_attached) {
    auto t = start_mem_target();
    OtherTracer tracer(t->pid());
    auto ids = Process::open(t->pid()).value().ids();
    ASSERT_TRUE(ids.has_value());
    ASSERT_EQ(ids->tracer_pid, tracer.pid);

    RemoteMemory mem = open_ok(t->pid());
    auto v = mem.read_value<std::int32_t>(t->addr("value"));
    ASSERT_TRUE(v.has_value()) << v.error().message();
    EXPECT_EQ(*v, 0x5eed1234);
    std::vector<std::byte> buf(PAGE);
    Transfer tr = read_ok(mem, t->addr("protnone"), buf);
    EXPECT_TRUE(tr.complete());
    EXPECT_TRUE(all_bytes(buf, 0x5A));
    ASSERT_TRUE(mem.write_value<std::int32_t>(t->addr("value"), 5).has_value());
    EXPECT_EQ(mem.read_value<std::int32_t>(t->addr("value")).value(), 5);

    // It is not OUR tracee: the ptrace path is not used, and forcing it is refused.
    RemoteMemory forced = open_ok(t->pid(), MemoryOptions::only(MemoryPath::ptrace));
    auto f = forced.read_value<std::int32_t>(t->addr("value"));
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error().kind, ErrorKind::invalid_argument) << f.error().message();
}

TEST(RemoteMemory, ptrace_path_serves_a_target_stopped_under_our_ptrace) {
    auto t = start_mem_target();
    const pid_t pid = t->pid();
    ASSERT_EQ(ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), 0) << std::strerror(errno);
    ASSERT_EQ(ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, __WALL), pid);
    ASSERT_TRUE(WIFSTOPPED(status));

    RemoteMemory forced = open_ok(pid, MemoryOptions::only(MemoryPath::ptrace));
    std::array<std::byte, 13> needle{};
    // Unaligned start and length: partial words on both ends.
    Transfer tr = read_ok(forced, t->addr("needle") - 1, needle);
    EXPECT_TRUE(tr.complete());
    EXPECT_EQ(tr.path, MemoryPath::ptrace);
    EXPECT_EQ(std::memcmp(needle.data() + 1, "XPROC-NEEDLE", 12), 0);
    const std::array<char, 3> abc{'a', 'b', 'c'};
    auto w = forced.write(t->addr("needle") + 3, std::as_bytes(std::span(abc)));
    ASSERT_TRUE(w.has_value()) << w.error().message();
    EXPECT_TRUE(w->complete());
    EXPECT_EQ(w->path, MemoryPath::ptrace);
    std::array<std::byte, 12> after{};
    read_ok(forced, t->addr("needle"), after);
    EXPECT_EQ(std::memcmp(after.data(), "XPRabcNEEDLE", 12), 0);
    // Hole: PEEKDATA fails with EIO/EFAULT, a clean stop.
    std::vector<std::byte> two(2 * PAGE);
    Transfer hole = read_ok(forced, t->addr("holes"), two);
    EXPECT_EQ(hole.bytes, PAGE);
    EXPECT_NE(hole.stop_reason.find("unmapped"), std::string::npos) << hole.stop_reason;

    // As a fallback: PROT_NONE with /proc/PID/mem disallowed (PEEKDATA uses FOLL_FORCE too).
    RemoteMemory fallback = open_ok(pid, no_proc_mem());
    std::vector<std::byte> buf(PAGE);
    Transfer pn = read_ok(fallback, t->addr("protnone"), buf);
    EXPECT_TRUE(pn.complete()) << pn.stop_reason;
    EXPECT_EQ(pn.path, MemoryPath::ptrace);
    EXPECT_TRUE(all_bytes(buf, 0x5A));
    EXPECT_EQ(ptrace(PTRACE_DETACH, pid, nullptr, nullptr), 0);
}

std::int64_t g_marker = 0;

TEST(RemoteMemory, unprivileged_reader_is_refused_with_the_rule_but_reads_its_own_child) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root to drop to uid 65534";
    }
    const pid_t root_pid = getpid();
    g_marker = 0;
    int report[2];
    ASSERT_EQ(pipe(report), 0);
    const pid_t child = fork();
    if (child == 0) {
        close(report[0]);
        auto say = [&](const std::string& s) { (void)!write(report[1], s.data(), s.size()); };
        if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0) {
            say("drop failed");
            _exit(10);
        }
        // Changing uid made us non-dumpable; our own child must be readable by us.
        prctl(PR_SET_DUMPABLE, 1);
        int ready[2];
        if (pipe(ready) != 0) {
            _exit(11);
        }
        const pid_t grandchild = fork();
        if (grandchild == 0) {
            g_marker = 0x600dcafe;
            (void)!write(ready[1], "r", 1);
            for (;;) {
                pause();
            }
        }
        char c = 0;
        (void)!read(ready[0], &c, 1);
        int code = 0;
        // The root-owned test process: refused, and the error names the rule.
        auto refused = RemoteMemory::open(root_pid);
        if (!refused) {
            say("open: " + refused.error().message());
            code = 12;
        } else {
            auto r = refused->read_value<std::int64_t>(reinterpret_cast<std::uint64_t>(&g_marker));
            if (r.has_value()) {
                say("read of a root process succeeded");
                code = 13;
            } else if (r.error().kind != ErrorKind::permission ||
                       r.error().message().find("uid") == std::string::npos || r.error().hint.empty()) {
                say("wrong error: " + r.error().message());
                code = 14;
            } else {
                say("refused: " + r.error().message() + "\n");
            }
        }
        // Our own child, same uid: allowed.
        if (code == 0) {
            auto own = RemoteMemory::open(grandchild);
            auto v = own ? own->read_value<std::int64_t>(reinterpret_cast<std::uint64_t>(&g_marker))
                         : Result<std::int64_t>(fail(own.error()));
            if (!v) {
                say("own child: " + v.error().message());
                code = 15;
            } else if (*v != 0x600dcafe) {
                say("own child: wrong value");
                code = 16;
            }
        }
        kill(grandchild, SIGKILL);
        waitpid(grandchild, nullptr, 0);
        _exit(code);
    }
    close(report[1]);
    std::string text;
    char buf[512];
    ssize_t n;
    while ((n = read(report[0], buf, sizeof buf)) > 0) {
        text.append(buf, static_cast<std::size_t>(n));
    }
    close(report[0]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << text;
    EXPECT_NE(text.find("refused: "), std::string::npos) << text;
    std::printf("%s", text.c_str());
}

}  // namespace
}  // namespace xproc
