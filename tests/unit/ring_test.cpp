// SPDX-License-Identifier: MIT
#include "xproc/ring.hpp"
#include "xproc/ring_segment.hpp"

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"

namespace {

using xproc::AttachOptions;
using xproc::ErrorKind;
using xproc::PeerState;
using xproc::ReadStatus;
using xproc::RingConsumer;
using xproc::RingKind;
using xproc::RingProducer;
using xproc::Timeout;
using xproc::WriteStatus;
using xproc::test::vanished_pid;
using namespace std::chrono_literals;
using xproc::ring::RecordHeader;
using xproc::ring::RecordType;
using xproc::ring::RingHeader;

/// A 128-byte aligned block of memory standing in for a mapped segment.
class Segment {
  public:
    explicit Segment(std::uint64_t capacity) : m_lines((xproc::ring_segment_size(capacity) + 127) / 128) {}
    std::span<std::byte> bytes() {
        return {reinterpret_cast<std::byte*>(m_lines.data()), m_lines.size() * 128};
    }
    RingHeader& header() { return *reinterpret_cast<RingHeader*>(m_lines.data()); }
    std::byte* data() { return bytes().data() + sizeof(RingHeader); }

  private:
    struct alignas(128) Line {
        std::byte b[128];
    };
    std::vector<Line> m_lines;
};

std::span<const std::byte> as_bytes(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

std::string read_string(RingConsumer& c, std::size_t cap = 4096) {
    std::vector<std::byte> buf(cap);
    auto r = c.try_read(buf);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
    if (!r || r->status != ReadStatus::ok) {
        return "<" + std::string(r ? xproc::to_string(r->status) : "error") + ">";
    }
    return std::string(reinterpret_cast<const char*>(buf.data()), r->length);
}

RecordHeader record_header_at(Segment& seg, std::uint64_t index) {
    RecordHeader h;
    std::memcpy(&h, seg.data() + index, sizeof h);
    return h;
}

void put_record_header(Segment& seg, std::uint64_t index, std::uint32_t length, std::uint16_t type) {
    const RecordHeader h{length, type, 0};
    std::memcpy(seg.data() + index, &h, sizeof h);
}

TEST(Ring, layout_offsets_and_sizes_are_pinned) {
    EXPECT_EQ(sizeof(RingHeader), 4096u);
    EXPECT_EQ(alignof(RingHeader), 128u);
    EXPECT_EQ(offsetof(RingHeader, magic), 0u);
    EXPECT_EQ(offsetof(RingHeader, version), 8u);
    EXPECT_EQ(offsetof(RingHeader, header_size), 12u);
    EXPECT_EQ(offsetof(RingHeader, capacity), 16u);
    EXPECT_EQ(offsetof(RingHeader, max_record), 24u);
    EXPECT_EQ(offsetof(RingHeader, kind), 28u);
    EXPECT_EQ(offsetof(RingHeader, creator_pid), 32u);
    EXPECT_EQ(offsetof(RingHeader, creator_start_time), 40u);
    EXPECT_EQ(offsetof(RingHeader, slots), 48u);
    EXPECT_EQ(offsetof(RingHeader, tail), 128u);
    EXPECT_EQ(offsetof(RingHeader, write_limit), 136u);
    EXPECT_EQ(offsetof(RingHeader, dirty_to), 144u);
    EXPECT_EQ(offsetof(RingHeader, head), 256u);
    EXPECT_EQ(offsetof(RingHeader, zeroed), 264u);
    EXPECT_EQ(offsetof(RingHeader, consumer_waiting), 384u);
    EXPECT_EQ(offsetof(RingHeader, producer_waiting), 388u);
    EXPECT_EQ(offsetof(RingHeader, doorbell_fd), 392u);
    EXPECT_EQ(offsetof(RingHeader, producer_pid), 512u);
    EXPECT_EQ(offsetof(RingHeader, producer_start_time), 520u);
    EXPECT_EQ(offsetof(RingHeader, consumer_pid), 528u);
    EXPECT_EQ(offsetof(RingHeader, consumer_start_time), 536u);
    EXPECT_EQ(offsetof(RingHeader, messages), 640u);
    EXPECT_EQ(offsetof(RingHeader, bytes), 648u);
    EXPECT_EQ(offsetof(RingHeader, full_waits), 656u);
    EXPECT_EQ(offsetof(RingHeader, producer_wakeups), 664u);
    EXPECT_EQ(offsetof(RingHeader, high_water), 672u);
    EXPECT_EQ(offsetof(RingHeader, dropped), 680u);
    EXPECT_EQ(offsetof(RingHeader, empty_waits), 768u);
    EXPECT_EQ(offsetof(RingHeader, consumer_wakeups), 776u);
    EXPECT_EQ(offsetof(RingHeader, skipped), 784u);
    EXPECT_EQ(offsetof(RingHeader, lapped), 792u);
    EXPECT_EQ(offsetof(RingHeader, slot), 1024u);
    EXPECT_EQ(sizeof(xproc::ring::PeerSlot), 64u);
    EXPECT_EQ(offsetof(xproc::ring::PeerSlot, pid), 0u);
    EXPECT_EQ(offsetof(xproc::ring::PeerSlot, start_time), 8u);
    EXPECT_EQ(offsetof(xproc::ring::PeerSlot, position), 16u);
    EXPECT_EQ(offsetof(xproc::ring::PeerSlot, claim_size), 24u);
    EXPECT_EQ(offsetof(xproc::ring::PeerSlot, messages), 32u);
    EXPECT_EQ(offsetof(xproc::ring::PeerSlot, lapped), 40u);
    EXPECT_EQ(xproc::ring::RING_SLOTS, 48u);
    EXPECT_EQ(sizeof(RecordHeader), 8u);
    EXPECT_EQ(offsetof(RecordHeader, length), 0u);
    EXPECT_EQ(offsetof(RecordHeader, type), 4u);
    EXPECT_EQ(offsetof(RecordHeader, flags), 6u);
    EXPECT_EQ(static_cast<int>(RecordType::data), 1);
    EXPECT_EQ(static_cast<int>(RecordType::padding), 2);
    EXPECT_EQ(static_cast<int>(RecordType::end_of_stream), 3);
    EXPECT_EQ(static_cast<int>(RecordType::skipped), 4);
    EXPECT_EQ(static_cast<int>(RecordType::uncommitted), 0);
    EXPECT_EQ(static_cast<int>(RingKind::spsc), 1);
    EXPECT_EQ(static_cast<int>(RingKind::mpsc), 2);
    EXPECT_EQ(static_cast<int>(RingKind::broadcast), 3);
    EXPECT_EQ(xproc::ring::WAIT_SLEEPING, 1u);
    EXPECT_EQ(xproc::ring::WAIT_DOORBELL, 2u);
    EXPECT_EQ(xproc::ring::RING_LAYOUT_VERSION, 4u);
    EXPECT_EQ(xproc::ring::RING_SPSC_GAP, 8u);
    EXPECT_EQ(std::memcmp(&xproc::ring::RING_MAGIC, "XPROCRNG", 8), 0);
    EXPECT_EQ(xproc::ring::record_size(0), 8u);
    EXPECT_EQ(xproc::ring::record_size(1), 16u);
    EXPECT_EQ(xproc::ring::record_size(8), 16u);
    EXPECT_EQ(xproc::ring::record_size(9), 24u);
}

TEST(Ring, create_fills_the_header_and_writes_version) {
    Segment seg(4096);
    seg.header().version = 0xdeadbeef;  // a stale version is replaced
    seg.header().tail = 77;             // stale positions are reset
    seg.header().zeroed = 99;
    auto p = RingProducer::create(seg.bytes(), 4096, 100);
    ASSERT_TRUE(p.has_value()) << p.error().message();
    const RingHeader& h = seg.header();
    EXPECT_EQ(h.magic, xproc::ring::RING_MAGIC);
    EXPECT_EQ(h.version, xproc::ring::RING_LAYOUT_VERSION);
    EXPECT_EQ(h.header_size, sizeof(RingHeader));
    EXPECT_EQ(h.capacity, 4096u);
    EXPECT_EQ(h.max_record, 100u);
    EXPECT_EQ(h.kind, static_cast<std::uint32_t>(RingKind::spsc));
    EXPECT_EQ(h.creator_pid, ::getpid());
    EXPECT_GT(h.creator_start_time, 0u);
    EXPECT_EQ(h.zeroed, 0u);
    EXPECT_EQ(h.head, 0u);
    EXPECT_EQ(h.tail, 0u);
    EXPECT_EQ(p->capacity(), 4096u);
    EXPECT_EQ(p->max_record(), 100u);
}

TEST(Ring, create_rejects_bad_geometry) {
    Segment seg(4096);
    auto kind_of = [&](std::uint64_t cap, std::uint32_t max, std::span<std::byte> mem) {
        auto r = RingProducer::create(mem, cap, max);
        EXPECT_FALSE(r.has_value());
        return r ? ErrorKind::os : r.error().kind;
    };
    EXPECT_EQ(kind_of(3000, 100, seg.bytes()), ErrorKind::invalid_argument);   // not a power of two
    EXPECT_EQ(kind_of(32, 8, seg.bytes()), ErrorKind::invalid_argument);       // below the minimum
    EXPECT_EQ(kind_of(4096, 0, seg.bytes()), ErrorKind::invalid_argument);     // max_record 0
    EXPECT_EQ(kind_of(4096, 2041, seg.bytes()), ErrorKind::invalid_argument);  // record > capacity / 2
    EXPECT_EQ(kind_of(8192, 100, seg.bytes()), ErrorKind::invalid_argument);   // memory too small
    EXPECT_EQ(kind_of(4096, 100, seg.bytes().subspan(8)), ErrorKind::invalid_argument);  // misaligned
    auto unknown = RingProducer::create(seg.bytes(), 4096, 100, static_cast<RingKind>(9));
    ASSERT_FALSE(unknown.has_value());
    EXPECT_EQ(unknown.error().kind, ErrorKind::invalid_argument);
    // The largest max_record whose record is capacity / 2 is accepted.
    EXPECT_TRUE(RingProducer::create(seg.bytes(), 4096, 2040).has_value());
}

TEST(Ring, messages_round_trip_in_order) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    for (const std::string s : {"a", "hello", "", "exactly8", "a longer message of some bytes"}) {
        ASSERT_EQ(p.try_write(as_bytes(s)), WriteStatus::ok);
    }
    EXPECT_EQ(read_string(c), "a");
    EXPECT_EQ(read_string(c), "hello");
    EXPECT_EQ(read_string(c), "");
    EXPECT_EQ(read_string(c), "exactly8");
    EXPECT_EQ(read_string(c), "a longer message of some bytes");
    EXPECT_EQ(read_string(c), "<empty>");
    EXPECT_EQ(c.head(), p.tail());
}

TEST(Ring, empty_ring_reads_empty_and_polls_nothing) {
    Segment seg(1024);
    auto c = RingConsumer::create(seg.bytes(), 1024, 64).value();
    EXPECT_EQ(read_string(c), "<empty>");
    auto n = c.poll([](std::span<const std::byte>) { FAIL(); }, 10);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 0u);
}

TEST(Ring, rejects_record_larger_than_max) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 100).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    const std::vector<std::byte> big(101, std::byte{1});
    EXPECT_EQ(p.try_write(big), WriteStatus::too_large);
    EXPECT_EQ(p.claim(101).status, WriteStatus::too_large);
    EXPECT_EQ(p.tail(), 0u);
    const std::vector<std::byte> max(100, std::byte{2});
    EXPECT_EQ(p.try_write(max), WriteStatus::ok);
    std::vector<std::byte> buf(100);
    auto r = c.try_read(buf);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, ReadStatus::ok);
    EXPECT_EQ(r->length, 100u);
    EXPECT_EQ(buf, max);
}

TEST(Ring, reports_full_and_accepts_again_after_a_read) {
    Segment seg(256);
    // 64-byte records: 3 fit, since the producer keeps the 8 bytes after its last record
    // free (the zeroed header slot the consumer polls).
    auto p = RingProducer::create(seg.bytes(), 256, 56).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    const std::vector<std::byte> msg(56, std::byte{7});
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(p.try_write(msg), WriteStatus::ok) << i;
    }
    EXPECT_EQ(p.try_write(msg), WriteStatus::full);
    EXPECT_EQ(p.claim(56).status, WriteStatus::full);
    auto small = p.claim(40);  // 48 bytes + the 8-byte gap: exactly the 64 left
    EXPECT_EQ(small.status, WriteStatus::ok);
    p.abort();
    std::vector<std::byte> buf(56);
    ASSERT_EQ(c.try_read(buf)->status, ReadStatus::ok);
    EXPECT_EQ(p.try_write(msg), WriteStatus::ok);
    EXPECT_EQ(p.try_write(msg), WriteStatus::full);
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(c.try_read(buf)->status, ReadStatus::ok) << i;
    }
    EXPECT_EQ(c.try_read(buf)->status, ReadStatus::empty);
}

TEST(Ring, wraps_with_a_padding_record_and_never_splits_records) {
    Segment seg(64);
    auto p = RingProducer::create(seg.bytes(), 64, 24).value();  // records of up to 32 bytes
    auto c = RingConsumer::attach(seg.bytes()).value();
    // 24 bytes (record 32) then 8 bytes (record 16): tail at 48, 16 bytes to the end.
    ASSERT_EQ(p.try_write(as_bytes(std::string(24, 'a'))), WriteStatus::ok);
    ASSERT_EQ(p.try_write(as_bytes(std::string(8, 'b'))), WriteStatus::ok);
    EXPECT_EQ(read_string(c), std::string(24, 'a'));
    EXPECT_EQ(read_string(c), std::string(8, 'b'));
    // A 20-byte payload needs 32 bytes: padding fills 48..63 and the record starts at 0.
    ASSERT_EQ(p.try_write(as_bytes(std::string(20, 'c'))), WriteStatus::ok);
    EXPECT_EQ(p.tail(), 64u + 32u);
    const RecordHeader pad = record_header_at(seg, 48);
    EXPECT_EQ(pad.type, static_cast<std::uint16_t>(RecordType::padding));
    EXPECT_EQ(pad.length, 8u);
    const RecordHeader rec = record_header_at(seg, 0);
    EXPECT_EQ(rec.type, static_cast<std::uint16_t>(RecordType::data));
    EXPECT_EQ(rec.length, 20u);
    EXPECT_EQ(read_string(c), std::string(20, 'c'));
    EXPECT_EQ(c.head(), 96u);
    // Many laps with every size: contents survive each wrap.
    for (int lap = 0; lap < 200; ++lap) {
        const std::string s(static_cast<std::size_t>(lap % 25), static_cast<char>('A' + lap % 26));
        ASSERT_EQ(p.try_write(as_bytes(s)), WriteStatus::ok) << lap;
        ASSERT_EQ(read_string(c), s) << lap;
    }
    EXPECT_GT(p.tail(), 64u * 20);
}

TEST(Ring, padding_at_the_end_is_exactly_one_header_when_eight_bytes_remain) {
    Segment seg(64);
    auto p = RingProducer::create(seg.bytes(), 64, 24).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    ASSERT_EQ(p.try_write(as_bytes(std::string(24, 'a'))), WriteStatus::ok);  // 0..31
    ASSERT_EQ(p.try_write(as_bytes(std::string(16, 'b'))), WriteStatus::ok);  // 32..55
    EXPECT_EQ(read_string(c), std::string(24, 'a'));
    EXPECT_EQ(read_string(c), std::string(16, 'b'));
    ASSERT_EQ(p.try_write(as_bytes(std::string(1, 'c'))), WriteStatus::ok);  // 16 bytes: padding 56..63
    EXPECT_EQ(record_header_at(seg, 56).length, 0u);
    EXPECT_EQ(read_string(c), "c");
}

TEST(Ring, abort_publishes_no_record_and_a_wrap_padding_stays_committed) {
    Segment seg(64);
    auto p = RingProducer::create(seg.bytes(), 64, 24).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    auto claim = p.claim(10);
    ASSERT_EQ(claim.status, WriteStatus::ok);
    std::memset(claim.buffer.data(), 'x', 10);
    p.abort();
    EXPECT_EQ(p.tail(), 0u);
    EXPECT_EQ(read_string(c), "<empty>");
    // Move tail to 48 so the next claim of 24 bytes wraps, then abort it.
    ASSERT_EQ(p.try_write(as_bytes(std::string(24, 'a'))), WriteStatus::ok);
    ASSERT_EQ(p.try_write(as_bytes(std::string(8, 'b'))), WriteStatus::ok);
    EXPECT_EQ(read_string(c), std::string(24, 'a'));
    EXPECT_EQ(read_string(c), std::string(8, 'b'));
    claim = p.claim(24);
    ASSERT_EQ(claim.status, WriteStatus::ok);
    p.abort();
    // The padding to the end was committed by the claim (SPSC commits every record on its
    // own); the aborted record was not.
    EXPECT_EQ(p.tail(), 64u);
    EXPECT_EQ(seg.header().tail, 64u);
    EXPECT_EQ(read_string(c), "<empty>");
    EXPECT_EQ(c.head(), 64u);  // the consumer skipped the padding
    ASSERT_EQ(p.try_write(as_bytes(std::string(8, 'd'))), WriteStatus::ok);
    EXPECT_EQ(read_string(c), std::string(8, 'd'));
    EXPECT_EQ(c.head(), 80u);
}

TEST(Ring, commit_shorter_than_claim_publishes_actual_length) {
    Segment seg(1024);
    auto p = RingProducer::create(seg.bytes(), 1024, 200).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    auto claim = p.claim(200);
    ASSERT_EQ(claim.status, WriteStatus::ok);
    ASSERT_EQ(claim.buffer.size(), 200u);
    std::memcpy(claim.buffer.data(), "short", 5);
    p.commit(5);
    EXPECT_EQ(p.tail(), 16u);
    EXPECT_EQ(read_string(c), "short");
}

/// Eight-byte words that read as committed data records of 8 bytes: stale bytes a
/// consumer would take for messages if a header slot it polls were not zeroed.
void fill_with_fake_headers(std::span<std::byte> area) {
    const RecordHeader fake{8, static_cast<std::uint16_t>(RecordType::data), 0};
    for (std::size_t i = 0; i + sizeof fake <= area.size(); i += sizeof fake) {
        std::memcpy(area.data() + i, &fake, sizeof fake);
    }
}

/// Moves `laps` laps of 40-byte messages through the ring, so that its producer is past its
/// first lap (where it zeroes every next header slot itself).
void run_laps(RingProducer& p, RingConsumer& c, std::uint64_t capacity, int laps) {
    const std::string msg(40, 'l');
    for (std::uint64_t moved = 0; moved < laps * capacity; moved += 48) {
        ASSERT_EQ(p.try_write(as_bytes(msg)), WriteStatus::ok);
        ASSERT_EQ(read_string(c), msg);
    }
}

TEST(Ring, the_consumer_zeroes_what_it_releases_and_says_so_in_zeroed) {
    Segment seg(1024);
    auto p = RingProducer::create(seg.bytes(), 1024, 200).value();
    std::optional<RingConsumer> c(RingConsumer::attach(seg.bytes()).value());
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(p.try_write(as_bytes(std::string(30, 'z'))), WriteStatus::ok);  // 40-byte records
    }
    EXPECT_EQ(seg.header().zeroed, 0u);
    // The next record is committed: the producer is past this line, zeroed up to head.
    EXPECT_EQ(read_string(*c), std::string(30, 'z'));
    EXPECT_EQ(seg.header().head, 40u);
    EXPECT_EQ(seg.header().zeroed, 40u);
    // The slot at head is not: the producer may be writing the line [192, 256), which
    // keeps the end of the last record (its payload at 168..197) until a later release.
    EXPECT_EQ(c->poll([](std::span<const std::byte>) {}, 10).value(), 4u);
    EXPECT_EQ(seg.header().head, 200u);
    EXPECT_EQ(seg.header().zeroed, 192u);
    for (std::size_t i = 0; i < 192; ++i) {
        ASSERT_EQ(seg.data()[i], std::byte{0}) << i;
    }
    EXPECT_EQ(seg.data()[192], std::byte{'z'});
    EXPECT_TRUE(xproc::check_ring(seg.bytes()).value().empty());  // normal, not a problem
    // Two more records (to 280): the line [192, 256) is all read now.
    for (int i = 0; i < 2; ++i) {
        ASSERT_EQ(p.try_write(as_bytes(std::string(30, 'y'))), WriteStatus::ok);
        ASSERT_EQ(read_string(*c), std::string(30, 'y'));
    }
    EXPECT_EQ(seg.header().head, 280u);
    EXPECT_EQ(seg.header().zeroed, 256u);
    // Closing zeroes the rest, so the next consumer finds zeroed == head.
    c.reset();
    EXPECT_EQ(seg.header().zeroed, 280u);
    for (std::size_t i = 0; i < 288; ++i) {  // the records and the empty slot after them
        ASSERT_EQ(seg.data()[i], std::byte{0}) << i;
    }
}

TEST(Ring, a_drained_ring_takes_the_largest_record_wherever_the_consumer_stopped) {
    // The consumer leaves the start of head's line unzeroed while the slot at head is not
    // committed. Near the middle of the area a record of max_record bytes must wrap, with
    // padding up to the end: it needs all the ring but the zeroed slot, so there the
    // consumer must zero up to head, or the producer waits for room that never comes.
    constexpr std::uint64_t CAP = 1024;
    const std::uint32_t largest = xproc::ring_max_record_for(CAP);
    for (std::uint64_t stop = 0; stop < CAP; stop += 8) {
        SCOPED_TRACE("consumer stops at " + std::to_string(stop));
        Segment seg(CAP);
        auto p = RingProducer::create(seg.bytes(), CAP, largest).value();
        auto c = RingConsumer::attach(seg.bytes()).value();
        for (std::uint64_t at = 0; at < stop; at += 8) {
            ASSERT_EQ(p.try_write({}), WriteStatus::ok);  // 8-byte records
        }
        ASSERT_EQ(c.poll([](std::span<const std::byte>) {}, CAP).value(), stop / 8);
        EXPECT_EQ(seg.header().head, stop);
        const std::string big(largest, 'L');
        ASSERT_EQ(p.try_write(as_bytes(big)), WriteStatus::ok) << "zeroed " << seg.header().zeroed;
        EXPECT_EQ(read_string(c), big);
    }
}

TEST(Ring, a_short_commit_or_an_abort_leaves_no_stale_header_behind_the_next_records) {
    // The payload written into a claim and not committed stays in the area: the next
    // records end inside it, and the header slot after each must read as "nothing yet".
    constexpr std::uint64_t CAP = 1024;
    for (const bool abort : {false, true}) {
        SCOPED_TRACE(abort ? "abort" : "short commit");
        Segment seg(CAP);
        auto p = RingProducer::create(seg.bytes(), CAP, 400).value();
        auto c = RingConsumer::attach(seg.bytes()).value();
        run_laps(p, c, CAP, 2);
        const xproc::Claim claim = p.claim(400);
        ASSERT_EQ(claim.status, WriteStatus::ok);
        fill_with_fake_headers(claim.buffer);
        if (abort) {
            p.abort();
        } else {
            std::memcpy(claim.buffer.data(), "short", 5);
            p.commit(5);
            EXPECT_EQ(read_string(c), "short");
        }
        for (int i = 0; i < 30; ++i) {
            const std::string msg = "m" + std::to_string(i);
            ASSERT_EQ(p.try_write(as_bytes(msg)), WriteStatus::ok);
            ASSERT_EQ(read_string(c), msg);
            ASSERT_EQ(read_string(c), "<empty>") << "after " << msg;
        }
    }
}

TEST(Ring, format_zeroes_the_area_and_a_producer_knows_what_the_previous_one_left) {
    constexpr std::uint64_t CAP = 1024;
    Segment seg(CAP);
    fill_with_fake_headers({seg.data(), CAP});  // memory that held something else before
    std::optional<RingProducer> p(RingProducer::create(seg.bytes(), CAP, 400).value());
    for (std::uint64_t i = 0; i < CAP; ++i) {
        ASSERT_EQ(seg.data()[i], std::byte{0}) << i;
    }
    auto c = RingConsumer::attach(seg.bytes()).value();
    auto stream = [&](const char* what) {
        for (int i = 0; i < 100; ++i) {  // about two laps of 16 to 24-byte records
            const std::string msg = std::string(what) + " " + std::to_string(i);
            ASSERT_EQ(p->try_write(as_bytes(msg)), WriteStatus::ok);
            ASSERT_EQ(read_string(c), msg);
            ASSERT_EQ(read_string(c), "<empty>") << "after " << msg;
        }
    };
    stream("first");
    // A producer that closes cleanly with an aborted claim behind it says how far it
    // wrote; the next one zeroes the header slots up to there.
    xproc::Claim claim = p->claim(400);
    ASSERT_EQ(claim.status, WriteStatus::ok);
    fill_with_fake_headers(claim.buffer);
    const std::uint64_t tail = p->tail();
    p.reset();
    EXPECT_EQ(seg.header().dirty_to, tail + xproc::ring::record_size(400));
    p.emplace(RingProducer::attach(seg.bytes()).value());
    stream("second");
    // One that died with a claim half written leaves no word: the next one treats its
    // whole first lap as dirty.
    claim = p->claim(400);
    ASSERT_EQ(claim.status, WriteStatus::ok);
    fill_with_fake_headers(claim.buffer);
    const std::uint64_t died_at = p->tail();
    const pid_t corpse = vanished_pid();
    p.reset();  // closes cleanly, then it "dies" holding the role with a stale dirty_to:
    seg.header().producer_pid = corpse;
    seg.header().dirty_to = 0;
    fill_with_fake_headers({seg.data() + ((died_at + 512) & (CAP - 1)), 256});
    p.emplace(RingProducer::attach(seg.bytes()).value());
    stream("third");
}

TEST(Ring, a_consumer_that_died_between_head_and_zeroed_is_finished_by_the_next_one) {
    constexpr std::uint64_t CAP = 1024;
    Segment seg(CAP);
    auto p = RingProducer::create(seg.bytes(), CAP, 200).value();
    std::optional<RingConsumer> c(RingConsumer::attach(seg.bytes()).value());
    run_laps(p, *c, CAP, 2);
    for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(p.try_write(as_bytes("r" + std::to_string(i))), WriteStatus::ok);  // 16-byte records
    }
    ASSERT_EQ(c->poll([](std::span<const std::byte>) {}, 4).value(), 4u);
    c->close();
    // As if it died after storing head, before zeroing the batch and storing zeroed: the
    // batch's bytes are still there (stale headers of consumed records).
    const std::uint64_t head = seg.header().head;
    const std::uint64_t from = head - 64;
    seg.header().zeroed = from;
    fill_with_fake_headers({seg.data() + (from & (CAP - 1)), 64});
    auto problems = xproc::check_ring(seg.bytes()).value();
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("zeroed only up to " + std::to_string(from)), std::string::npos)
        << problems[0];

    c.emplace(RingConsumer::attach(seg.bytes()).value());
    EXPECT_EQ(c->head(), head);
    EXPECT_EQ(seg.header().zeroed, head);
    for (std::uint64_t i = 0; i < 64; ++i) {
        ASSERT_EQ(seg.data()[(from + i) & (CAP - 1)], std::byte{0}) << i;
    }
    EXPECT_TRUE(xproc::check_ring(seg.bytes()).value().empty());
    // A lap later the producer writes over those bytes; nothing stale shows through.
    for (int i = 0; i < 100; ++i) {
        const std::string msg = "after " + std::to_string(i);
        ASSERT_EQ(p.try_write(as_bytes(msg)), WriteStatus::ok);
        ASSERT_EQ(read_string(*c), msg);
        ASSERT_EQ(read_string(*c), "<empty>") << "after " << msg;
    }
}

TEST(Ring, batched_commits_are_published_together_by_flush_commit_or_a_full_claim) {
    Segment seg(256);
    auto p = RingProducer::create(seg.bytes(), 256, 100).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    for (char ch : std::string("ab")) {
        const xproc::Claim cl = p.claim(1);
        ASSERT_EQ(cl.status, WriteStatus::ok);
        cl.buffer[0] = static_cast<std::byte>(ch);
        p.commit_batched(1);
    }
    // Written, but the first record's header is held back: the consumer sees neither.
    EXPECT_EQ(seg.header().tail, 0u);
    EXPECT_EQ(seg.header().messages, 0u);
    EXPECT_EQ(read_string(c), "<empty>");
    p.flush();
    EXPECT_EQ(seg.header().tail, 32u);  // then tail and the held header
    EXPECT_EQ(seg.header().messages, 2u);
    EXPECT_EQ(read_string(c), "a");
    EXPECT_EQ(read_string(c), "b");
    // A claim that finds the ring full publishes the batch first, so the consumer can
    // make room.
    const std::string big(100, 'x');
    xproc::Claim cl = p.claim(100);
    ASSERT_EQ(cl.status, WriteStatus::ok);
    std::memcpy(cl.buffer.data(), big.data(), big.size());
    p.commit_batched(100);
    cl = p.claim(100);
    ASSERT_EQ(cl.status, WriteStatus::ok);
    p.commit_batched(100);
    EXPECT_EQ(p.claim(100).status, WriteStatus::full);
    EXPECT_EQ(read_string(c), big);
    // close() publishes what is left.
    p.close();
    EXPECT_EQ(read_string(c).size(), 100u);
}

TEST(Ring, a_batch_followed_by_a_plain_commit_appears_with_that_commit) {
    Segment seg(256);
    auto p = RingProducer::create(seg.bytes(), 256, 100).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    // A batch then a plain commit: all three appear together with the commit.
    for (char ch : std::string("cde")) {
        const xproc::Claim next = p.claim(1);
        ASSERT_EQ(next.status, WriteStatus::ok);
        next.buffer[0] = static_cast<std::byte>(ch);
        if (ch == 'e') {
            p.commit(1);
        } else {
            p.commit_batched(1);
            EXPECT_EQ(read_string(c), "<empty>");
        }
    }
    EXPECT_EQ(read_string(c), "c");
    EXPECT_EQ(read_string(c), "d");
    EXPECT_EQ(read_string(c), "e");
}

TEST(Ring, poll_delivers_a_batch_in_place_and_releases_it_with_one_store) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 64).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    for (int i = 0; i < 10; ++i) {
        ASSERT_EQ(p.try_write(as_bytes(std::to_string(i))), WriteStatus::ok);
    }
    std::vector<std::string> seen;
    auto n = c.poll(
        [&](std::span<const std::byte> m) {
            // In place: the span points into the data area, and head has not moved yet.
            EXPECT_GE(m.data(), seg.data());
            EXPECT_LT(m.data(), seg.data() + 4096);
            EXPECT_EQ(seg.header().head, 0u);
            seen.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
        },
        4);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 4u);
    EXPECT_EQ(seen, (std::vector<std::string>{"0", "1", "2", "3"}));
    EXPECT_EQ(seg.header().head, 4u * 16u);
    n = c.poll(
        [&](std::span<const std::byte> m) {
            seen.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
        },
        100);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 6u);
    EXPECT_EQ(seen.size(), 10u);
    EXPECT_EQ(seen.back(), "9");
    EXPECT_EQ(seg.header().head, p.tail());
}

/// emplace(): records built in place by a writer, published together, in order, with the
/// lengths the writer returns; bytes it wrote past a shorter length never show as a record.
TEST(Ring, emplace_builds_records_in_place_and_publishes_them_together) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 64).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    int calls = 0;
    std::uint64_t published = 0;
    const auto writer = [&](std::span<std::byte> buf) {
        EXPECT_EQ(buf.size(), 16u);
        EXPECT_GE(buf.data(), seg.data());
        EXPECT_LE(buf.data() + buf.size(), seg.data() + 4096);
        EXPECT_EQ(seg.header().messages, published);  // nothing published while the batch is built
        fill_with_fake_headers(buf);                  // all of it, whatever the length
        const std::string msg = "m" + std::to_string(calls++);
        std::memcpy(buf.data(), msg.data(), msg.size());
        return msg.size();
    };
    const xproc::Emplaced e = p.emplace(16, writer, 12);
    EXPECT_EQ(e.status, WriteStatus::ok);
    EXPECT_EQ(e.count, 12u);
    EXPECT_EQ(calls, 12);
    EXPECT_EQ(seg.header().messages, 12u);
    EXPECT_EQ(seg.header().bytes, 10u * 2 + 2u * 3);
    EXPECT_EQ(record_header_at(seg, p.tail()).type, 0u) << "the slot after the last record";
    for (int i = 0; i < 12; ++i) {
        EXPECT_EQ(read_string(c), "m" + std::to_string(i));
    }
    // The slot after the last record lay in what the writer left there: zeroed.
    EXPECT_EQ(read_string(c), "<empty>");
    EXPECT_TRUE(xproc::check_ring(seg.bytes()).value().empty());
    // Plain commits after it still find zero slots after their records.
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(p.try_write(as_bytes("w")), WriteStatus::ok);
        EXPECT_EQ(read_string(c), "w");
        EXPECT_EQ(read_string(c), "<empty>");
    }
    // A batch joins records left by commit_batched(): all are published together.
    xproc::Claim cl = p.claim(1);
    ASSERT_EQ(cl.status, WriteStatus::ok);
    cl.buffer[0] = std::byte{'b'};
    p.commit_batched(1);
    EXPECT_EQ(read_string(c), "<empty>");
    published = seg.header().messages;
    EXPECT_EQ(p.emplace(16, writer, 2).count, 2u);
    EXPECT_EQ(read_string(c), "b");
    EXPECT_EQ(read_string(c), "m12");
    EXPECT_EQ(read_string(c), "m13");
    EXPECT_EQ(read_string(c), "<empty>");
}

/// emplace() goes on across the wrap (the padding record is claim()'s) and stops when the
/// ring is full: a partial count, then `full` without calling the writer.
TEST(Ring, emplace_stops_when_full_and_wraps_around_the_data_area) {
    for (const RingKind kind : {RingKind::spsc, RingKind::mpsc, RingKind::broadcast}) {
        SCOPED_TRACE(static_cast<int>(kind));
        Segment seg(1024);
        auto p = RingProducer::create(seg.bytes(), 1024, 100, kind).value();
        auto c = RingConsumer::attach(seg.bytes()).value();
        std::mt19937 rng(7);
        std::uint64_t written = 0, read = 0;
        for (int round = 0; round < 40; ++round) {
            const std::size_t max_len = 12 + rng() % 52;
            const xproc::Emplaced e = p.emplace(
                max_len,
                [&](std::span<std::byte> buf) {
                    const std::string msg = std::to_string(written++) + std::string(rng() % 8, '.');
                    EXPECT_LE(msg.size(), buf.size());
                    fill_with_fake_headers(buf);
                    std::memcpy(buf.data(), msg.data(), msg.size());
                    return msg.size();
                },
                1000);
            if (kind == RingKind::broadcast) {
                // The writer never waits: it overwrites what the reader has not read.
                EXPECT_EQ(e.count, 1000u);
                written = 0;
                continue;
            }
            ASSERT_EQ(e.status, WriteStatus::ok);
            ASSERT_GT(e.count, 0u);
            ASSERT_LT(e.count, 1000u);
            int more = 0;
            EXPECT_EQ(
                p.emplace(
                     max_len, [&](std::span<std::byte>) { return static_cast<std::size_t>(++more); }, 10)
                    .status,
                WriteStatus::full);
            EXPECT_EQ(more, 0);
            // Drain: every record in order, nothing else.
            for (;;) {
                const std::string got = read_string(c);
                if (got == "<empty>") {
                    break;
                }
                ASSERT_EQ(got.substr(0, got.find('.')), std::to_string(read)) << got;
                ++read;
            }
            ASSERT_EQ(read, written);
            EXPECT_TRUE(xproc::check_ring(seg.bytes()).value().empty());
        }
        if (kind != RingKind::broadcast) {
            EXPECT_GT(seg.header().tail, 4u * 1024);  // several laps
        }
    }
}

TEST(Ring, emplace_refuses_a_record_over_max_record_without_calling_the_writer) {
    Segment seg(1024);
    auto p = RingProducer::create(seg.bytes(), 1024, 100).value();
    int calls = 0;
    const xproc::Emplaced e = p.emplace(
        101, [&](std::span<std::byte>) { return static_cast<std::size_t>(++calls); }, 4);
    EXPECT_EQ(e.status, WriteStatus::too_large);
    EXPECT_EQ(e.count, 0u);
    EXPECT_EQ(calls, 0);
}

/// A writer that throws: the records it completed are published, the one it was writing is
/// dropped, and its bytes never read as a record, also after later commits.
TEST(Ring, emplace_publishes_what_was_written_when_the_writer_throws) {
    for (const RingKind kind : {RingKind::spsc, RingKind::mpsc}) {
        SCOPED_TRACE(static_cast<int>(kind));
        Segment seg(4096);
        auto p = RingProducer::create(seg.bytes(), 4096, 64, kind).value();
        auto c = RingConsumer::attach(seg.bytes()).value();
        int calls = 0;
        EXPECT_THROW(p.emplace(
                         32,
                         [&](std::span<std::byte> buf) {
                             fill_with_fake_headers(buf);
                             if (++calls == 4) {
                                 throw std::runtime_error("writer failed");
                             }
                             buf[0] = static_cast<std::byte>('0' + calls);
                             return std::size_t{1};
                         },
                         10),
                     std::runtime_error);
        EXPECT_EQ(read_string(c), "1");
        EXPECT_EQ(read_string(c), "2");
        EXPECT_EQ(read_string(c), "3");
        EXPECT_EQ(read_string(c), "<empty>");
        for (const char* msg : {"a", "bc", "def"}) {
            ASSERT_EQ(p.try_write(as_bytes(msg)), WriteStatus::ok);
            EXPECT_EQ(read_string(c), msg);
            EXPECT_EQ(read_string(c), "<empty>");
        }
        EXPECT_TRUE(xproc::check_ring(seg.bytes()).value().empty());
    }
}

/// poll() guesses each record's size from the one before: sizes that change at every record,
/// or now and then, are delivered exactly.
TEST(Ring, poll_delivers_records_whose_sizes_change) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 64).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    const std::vector<std::size_t> sizes{1, 1, 1, 9, 9, 17, 1, 64, 64, 64, 8, 16, 8, 16, 3, 3};
    std::vector<std::string> sent;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        sent.push_back(std::string(sizes[i], static_cast<char>('a' + i)));
        ASSERT_EQ(p.try_write(as_bytes(sent.back())), WriteStatus::ok);
    }
    std::vector<std::string> seen;
    auto n = c.poll(
        [&](std::span<const std::byte> m) {
            seen.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
        },
        100);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, sizes.size());
    EXPECT_EQ(seen, sent);
    EXPECT_EQ(c.head(), p.tail());
}

/// set_slip(): once the consumer found the ring empty, poll() and try_read() report nothing
/// until the producer is the slip distance ahead or `max_calls` calls were deferred.
TEST(Ring, a_slipping_consumer_stays_behind_until_the_producer_is_far_enough_or_calls_run_out) {
    for (const auto& [kind, use_poll] : {std::pair{RingKind::spsc, true}, std::pair{RingKind::spsc, false},
                                         std::pair{RingKind::mpsc, true}, std::pair{RingKind::mpsc, false}}) {
        SCOPED_TRACE(std::string(kind == RingKind::spsc ? "spsc " : "mpsc ") +
                     (use_poll ? "poll" : "try_read"));
        Segment seg(16384);
        auto p = RingProducer::create(seg.bytes(), 16384, 256, kind).value();
        auto c = RingConsumer::attach(seg.bytes()).value();
        c.set_slip(4096, 8);
        std::size_t got = 0;
        auto take = [&] {
            if (use_poll) {
                auto n = c.poll([&](std::span<const std::byte>) { ++got; }, 1000);
                EXPECT_TRUE(n.has_value());
                return n ? *n : 0;
            }
            const std::string s = read_string(c);
            if (s == "<empty>") {
                return std::size_t{0};
            }
            ++got;
            return std::size_t{1};
        };
        const std::string m(56, 'x');  // 64-byte records
        ASSERT_EQ(p.try_write(as_bytes(m)), WriteStatus::ok);
        EXPECT_EQ(take(), 1u);  // not caught up yet: read at once
        EXPECT_EQ(take(), 0u);  // now it is
        // A lone message waits out the deferred calls: 8 since the consumer caught up (poll:
        // the call above and 6 more report nothing, the 7th here reads it; try_read's
        // liveness check may look twice in one call).
        ASSERT_EQ(p.try_write(as_bytes(m)), WriteStatus::ok);
        int calls = 1;
        while (take() == 0 && calls < 100) {
            ++calls;
        }
        if (use_poll) {
            EXPECT_EQ(calls, 7);
        } else {
            EXPECT_GE(calls, 4);
            EXPECT_LE(calls, 8);
        }
        EXPECT_EQ(take(), 0u);  // caught up again
        // A producer 4 KiB ahead is read at once.
        for (int i = 0; i < 65; ++i) {
            ASSERT_EQ(p.try_write(as_bytes(m)), WriteStatus::ok);
        }
        std::size_t first = take();
        EXPECT_GE(first, 1u);
        while (take() > 0) {
        }
        EXPECT_EQ(got, 67u);
        // Off again: a lone message is read at once.
        c.set_slip(0);
        ASSERT_EQ(p.try_write(as_bytes(m)), WriteStatus::ok);
        EXPECT_EQ(take(), 1u);
    }
}

/// wait() defers only while it spins: a lone message ends a wait at once for a sleeping
/// policy, and within the spin otherwise (a sleeper must never miss a committed record).
TEST(Ring, a_slipping_consumer_never_sleeps_over_a_committed_record) {
    for (const auto policy : {xproc::WaitPolicy::sleep, xproc::WaitPolicy::adaptive}) {
        Segment seg(16384);
        auto p = RingProducer::create(seg.bytes(), 16384, 256).value();
        AttachOptions options;
        options.wait.policy = policy;
        options.take_role = false;
        auto c = RingConsumer::attach(seg.bytes(), options).value();
        c.set_slip(8192, 1000000);  // more calls than any spin makes
        EXPECT_EQ(c.poll([](std::span<const std::byte>) {}, 10).value(), 0u);  // caught up
        ASSERT_EQ(p.try_write(as_bytes("one")), WriteStatus::ok);
        const auto start = std::chrono::steady_clock::now();
        auto w = c.wait(Timeout(std::chrono::seconds(5)));
        ASSERT_TRUE(w.has_value());
        EXPECT_EQ(*w, ReadStatus::ok);
        EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);  // the first liveness check is at 250 ms
        EXPECT_EQ(read_string(c), "one");
    }
}

/// RingProducer::set_slip(): once a claim found the ring full, the next ones report full
/// until the consumer has freed the slip distance beyond the claim, or `max_calls` looks.
TEST(Ring, a_slipping_producer_rereads_a_full_ring_only_once_the_consumer_freed_enough) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    p.set_slip(1024, 8);
    const std::string m(56, 'y');  // 64-byte records
    auto fill = [&] {
        int n = 0;
        while (p.try_write(as_bytes(m)) == WriteStatus::ok) {
            ++n;
        }
        return n;
    };
    EXPECT_GT(fill(), 50);  // ends with a full claim: the producer caught up with the consumer
    // One record freed: not the slip distance, so the looks run out first (the first was
    // the failed write above).
    EXPECT_EQ(read_string(c), m);
    int calls = 1;
    while (p.try_write(as_bytes(m)) != WriteStatus::ok && calls < 100) {
        ++calls;
    }
    EXPECT_EQ(calls, 8);
    // Full again; then 2 KiB freed: the next write goes through at once.
    fill();
    for (int i = 0; i < 32; ++i) {
        EXPECT_EQ(read_string(c), m);
    }
    EXPECT_EQ(p.try_write(as_bytes(m)), WriteStatus::ok);
    // Off: a write after one read goes through at once.
    fill();
    p.set_slip(0);
    EXPECT_EQ(read_string(c), m);
    EXPECT_EQ(p.try_write(as_bytes(m)), WriteStatus::ok);
}

/// A blocking claim defers only while it spins: with room made, it returns at once for a
/// sleeping policy and after its spin otherwise, never after a sleep.
TEST(Ring, a_slipping_producer_never_sleeps_over_free_room) {
    for (const auto policy : {xproc::WaitPolicy::sleep, xproc::WaitPolicy::adaptive}) {
        Segment seg(4096);
        AttachOptions options;
        options.wait.policy = policy;
        options.take_role = false;
        auto p = RingProducer::create(seg.bytes(), 4096, 256, RingKind::spsc, options).value();
        auto c = RingConsumer::attach(seg.bytes(), options).value();
        p.set_slip(1024, 1000000);  // more looks than any spin makes
        const std::string m(56, 'z');
        while (p.try_write(as_bytes(m)) == WriteStatus::ok) {
        }
        EXPECT_EQ(read_string(c), m);
        const auto start = std::chrono::steady_clock::now();
        EXPECT_EQ(p.write(as_bytes(m), Timeout(std::chrono::seconds(5))), WriteStatus::ok);
        EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);  // the first liveness check is at 250 ms
    }
}

/// A slipping SPSC consumer's read() frees room in steps of a quarter of the slip distance,
/// and all it has read before it reports the ring empty or waits; `xring check` accepts
/// the lag while it is attached.
TEST(Ring, a_slipping_consumer_frees_room_in_steps_and_all_of_it_before_it_reports_empty) {
    constexpr std::uint64_t CAP = 16384;
    Segment seg(CAP);
    auto p = RingProducer::create(seg.bytes(), CAP, 256).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    c.set_slip(4096);  // steps of 1 KiB: 16 records of 64 bytes
    const std::string m(56, 's');
    int written = 0;
    while (p.try_write(as_bytes(m)) == WriteStatus::ok) {
        ++written;
    }
    ASSERT_GT(written, 200);
    const std::uint64_t zeroed = seg.header().zeroed;
    for (int i = 1; i < 16; ++i) {
        ASSERT_EQ(read_string(c), m);
    }
    EXPECT_EQ(seg.header().head, zeroed + 15 * 64);  // where a consumer taking over resumes
    EXPECT_EQ(seg.header().zeroed, zeroed);          // nothing freed yet
    EXPECT_EQ(p.try_write(as_bytes(m)), WriteStatus::full);
    EXPECT_TRUE(xproc::check_ring(seg.bytes()).value().empty());  // a live consumer's lag
    ASSERT_EQ(read_string(c), m);                                 // the 16th: a step
    EXPECT_EQ(seg.header().zeroed, zeroed + 16 * 64);
    EXPECT_EQ(p.try_write(as_bytes(m)), WriteStatus::ok);
    // wait() frees what was held first.
    ASSERT_EQ(read_string(c), m);
    EXPECT_EQ(seg.header().zeroed, zeroed + 16 * 64);
    ASSERT_EQ(c.wait(xproc::NO_WAIT).value(), ReadStatus::ok);
    EXPECT_EQ(seg.header().zeroed, zeroed + 17 * 64);
    // Drained: the empty report comes with everything freed but the line at head.
    int read = 17;
    while (read_string(c) == m) {
        ++read;
    }
    EXPECT_EQ(read, written + 1);
    EXPECT_EQ(seg.header().head, p.tail());
    EXPECT_GE(seg.header().zeroed, xproc::ring::zero_line_start(p.tail()));
    // Closing frees the rest, as before.
    c.close();
    EXPECT_EQ(seg.header().zeroed, p.tail());
}

/// set_release_step(): poll() stores head at once but frees room only per step, or when a
/// call finds nothing; a round trip's reply so goes out before the lines read are zeroed.
TEST(Ring, poll_frees_room_in_steps_and_all_of_it_at_the_next_call_that_finds_nothing) {
    constexpr std::uint64_t CAP = 16384;
    Segment seg(CAP);
    auto p = RingProducer::create(seg.bytes(), CAP, 256).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    c.set_release_step(1024);
    const std::string m(56, 'p');  // 64-byte records
    for (int i = 0; i < 40; ++i) {
        ASSERT_EQ(p.try_write(as_bytes(m)), WriteStatus::ok);
    }
    const std::uint64_t zeroed = seg.header().zeroed;
    auto take = [&](std::size_t limit) { return c.poll([](std::span<const std::byte>) {}, limit).value(); };
    EXPECT_EQ(take(15), 15u);
    EXPECT_EQ(seg.header().head, zeroed + 15 * 64);
    EXPECT_EQ(seg.header().zeroed, zeroed);  // less than a step: held
    EXPECT_EQ(take(1), 1u);                  // the 16th record: a step
    EXPECT_EQ(seg.header().zeroed, zeroed + 16 * 64);
    EXPECT_EQ(take(256), 24u);  // more than a step: freed
    EXPECT_EQ(seg.header().zeroed, p.tail());
    // Three records in one call, which finds the ring empty after them: still held (a
    // reply sent now does not wait for the zeroing) ...
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(p.try_write(as_bytes(m)), WriteStatus::ok);
    }
    const std::uint64_t held = seg.header().zeroed;
    EXPECT_EQ(take(256), 3u);
    EXPECT_EQ(seg.header().head, p.tail());
    EXPECT_EQ(seg.header().zeroed, held);
    // ... until the next call, which finds nothing.
    EXPECT_EQ(take(256), 0u);
    EXPECT_GE(seg.header().zeroed, xproc::ring::zero_line_start(p.tail()));
    // A step larger than an eighth of the capacity is capped there; MPSC ignores it.
    c.set_release_step(CAP);
    for (int i = 0; i < 40; ++i) {
        ASSERT_EQ(p.try_write(as_bytes(m)), WriteStatus::ok);
    }
    const std::uint64_t before = seg.header().zeroed;
    EXPECT_EQ(take(32), 32u);  // 2 KiB = CAP / 8
    EXPECT_GT(seg.header().zeroed, before);
    Segment mseg(CAP);
    auto mp = RingProducer::create(mseg.bytes(), CAP, 256, RingKind::mpsc).value();
    auto mc = RingConsumer::attach(mseg.bytes()).value();
    mc.set_release_step(1024);
    ASSERT_EQ(mp.try_write(as_bytes(m)), WriteStatus::ok);
    EXPECT_EQ(mc.poll([](std::span<const std::byte>) {}, 1).value(), 1u);
    EXPECT_EQ(mseg.header().zeroed, mseg.header().head);
}

/// A producer asleep on a full ring gets the room of the next record a stepping consumer
/// reads, not only a step later.
TEST(Ring, a_slipping_consumer_frees_room_at_once_for_a_sleeping_producer) {
    constexpr std::uint64_t CAP = 16384;
    Segment seg(CAP);
    AttachOptions options;
    options.wait.policy = xproc::WaitPolicy::sleep;
    options.take_role = false;
    auto p = RingProducer::create(seg.bytes(), CAP, 256, RingKind::spsc, options).value();
    auto c = RingConsumer::attach(seg.bytes(), options).value();
    c.set_slip(8192);  // steps of 2 KiB
    const std::string m(56, 'w');
    while (p.try_write(as_bytes(m)) == WriteStatus::ok) {
    }
    std::atomic<bool> done{false};
    std::chrono::steady_clock::duration took{};
    std::thread producer([&] {
        const auto start = std::chrono::steady_clock::now();
        EXPECT_EQ(p.write(as_bytes(m), Timeout(std::chrono::seconds(10))), WriteStatus::ok);
        took = std::chrono::steady_clock::now() - start;
        done = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::atomic_ref<std::uint32_t>(seg.header().producer_waiting).load() == 0 &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_NE(std::atomic_ref<std::uint32_t>(seg.header().producer_waiting).load(), 0u);
    EXPECT_EQ(read_string(c), m);  // one record: the producer's, freed at once
    producer.join();
    EXPECT_TRUE(done);
    EXPECT_LT(took, 2s);  // woken by the read, not at its 10 s deadline
}

/// A broadcast reader ignores set_slip().
TEST(Ring, broadcast_readers_ignore_slip) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256, RingKind::broadcast).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    c.set_slip(1024, 100);
    EXPECT_EQ(read_string(c), "<empty>");
    ASSERT_EQ(p.try_write(as_bytes("b")), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "b");
}

TEST(Ring, too_small_read_buffer_keeps_the_message) {
    Segment seg(1024);
    auto p = RingProducer::create(seg.bytes(), 1024, 100).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    ASSERT_EQ(p.try_write(as_bytes(std::string("twelve bytes"))), WriteStatus::ok);
    std::vector<std::byte> small(4);
    auto r = c.try_read(small);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, ReadStatus::too_small);
    EXPECT_EQ(r->length, 12u);
    EXPECT_EQ(c.head(), 0u);
    EXPECT_EQ(read_string(c), "twelve bytes");
}

TEST(Ring, end_of_stream_is_reported_by_try_read_and_stops_poll) {
    Segment seg(1024);
    auto p = RingProducer::create(seg.bytes(), 1024, 100).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    ASSERT_EQ(p.try_write(as_bytes(std::string("one"))), WriteStatus::ok);
    ASSERT_EQ(p.try_write_end_of_stream(), WriteStatus::ok);
    ASSERT_EQ(p.try_write(as_bytes(std::string("two"))), WriteStatus::ok);
    std::size_t got = 0;
    auto n = c.poll([&](std::span<const std::byte>) { ++got; }, 10);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 1u);
    EXPECT_TRUE(c.saw_end_of_stream());
    EXPECT_EQ(read_string(c), "two");

    Segment seg2(1024);
    auto p2 = RingProducer::create(seg2.bytes(), 1024, 100).value();
    auto c2 = RingConsumer::attach(seg2.bytes()).value();
    ASSERT_EQ(p2.try_write_end_of_stream(), WriteStatus::ok);
    EXPECT_EQ(read_string(c2), "<end_of_stream>");
    EXPECT_TRUE(c2.saw_end_of_stream());
}

TEST(Ring, counters_track_messages_bytes_and_high_water) {
    Segment seg(1024);
    auto p = RingProducer::create(seg.bytes(), 1024, 100).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    ASSERT_EQ(p.try_write(as_bytes(std::string(10, 'x'))), WriteStatus::ok);  // 24 bytes
    ASSERT_EQ(p.try_write(as_bytes(std::string(20, 'x'))), WriteStatus::ok);  // 32 bytes
    EXPECT_EQ(seg.header().messages, 2u);
    EXPECT_EQ(seg.header().bytes, 30u);
    EXPECT_EQ(seg.header().high_water, 24u);  // sampled at the first record (see the tests below)
    read_string(c);
    read_string(c);
    // A re-attached producer continues the counters and the position.
    p.close();
    auto p2 = RingProducer::attach(seg.bytes()).value();
    EXPECT_EQ(p2.tail(), 56u);
    ASSERT_EQ(p2.try_write(as_bytes(std::string(1, 'y'))), WriteStatus::ok);
    EXPECT_EQ(seg.header().messages, 3u);
    EXPECT_EQ(seg.header().bytes, 31u);
    EXPECT_EQ(read_string(c), "y");
}

TEST(Ring, high_water_of_a_ring_that_fills_up_is_exactly_its_fill) {
    Segment seg(1024);
    auto p = RingProducer::create(seg.bytes(), 1024, 100).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    const std::string msg(10, 'x');  // 24-byte records
    int written = 0;
    while (p.try_write(as_bytes(msg)) == WriteStatus::ok) {
        ++written;
    }
    EXPECT_EQ(written, 42);  // 42 * 24 = 1008 <= 1024 - 8 (the zeroed slot after tail)
    EXPECT_EQ(seg.header().high_water, 1008u);
    EXPECT_EQ(p.tail(), 1008u);
}

TEST(Ring, high_water_stays_low_while_the_consumer_keeps_up) {
    // The producer's cached head is only reloaded when the ring looks full, so the fill it
    // implies grows to the capacity on every lap: a high-water mark taken from it read
    // ~100% on any ring that had wrapped once. It is measured against the real head.
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 100).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    const std::string msg(40, 'x');   // 48-byte records
    for (int i = 0; i < 1000; ++i) {  // about 12 laps
        ASSERT_EQ(p.try_write(as_bytes(msg)), WriteStatus::ok) << i;
        ASSERT_EQ(read_string(c), msg) << i;
    }
    // One record at a time (with the padding before it at a wrap: under two records).
    EXPECT_GE(seg.header().high_water, 48u);
    EXPECT_LT(seg.header().high_water, 96u);
    // A backlog is seen: 40 records (1920 bytes) written before the consumer reads them,
    // then it keeps up again. Samples are at most capacity / 16 = 256 bytes apart.
    for (int i = 0; i < 40; ++i) {
        ASSERT_EQ(p.try_write(as_bytes(msg)), WriteStatus::ok) << i;
    }
    for (int i = 0; i < 40; ++i) {
        ASSERT_EQ(read_string(c), msg) << i;
    }
    for (int i = 0; i < 500; ++i) {
        ASSERT_EQ(p.try_write(as_bytes(msg)), WriteStatus::ok) << i;
        ASSERT_EQ(read_string(c), msg) << i;
    }
    EXPECT_GE(seg.header().high_water, 1920u - 256u);
    EXPECT_LE(seg.header().high_water, 1920u);
}

// ---- Corrupt and hostile segments -------------------------------------------------------

TEST(Ring, attach_rejects_bad_magic) {
    Segment seg(1024);
    ASSERT_TRUE(xproc::format_ring(seg.bytes(), 1024, 100).has_value());
    seg.header().magic ^= 1;
    auto c = RingConsumer::attach(seg.bytes());
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().kind, ErrorKind::corrupt);
    EXPECT_NE(c.error().message().find("not an xproc ring"), std::string::npos) << c.error().message();
    EXPECT_FALSE(RingProducer::attach(seg.bytes()).has_value());
}

TEST(Ring, attach_rejects_wrong_version_and_prints_both) {
    Segment seg(1024);
    ASSERT_TRUE(xproc::format_ring(seg.bytes(), 1024, 100).has_value());
    seg.header().version = 7;
    auto c = RingConsumer::attach(seg.bytes());
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().kind, ErrorKind::corrupt);
    const std::string msg = c.error().message();
    EXPECT_NE(msg.find("version 7"), std::string::npos) << msg;
    EXPECT_NE(msg.find("version " + std::to_string(xproc::ring::RING_LAYOUT_VERSION)), std::string::npos)
        << msg;
}

TEST(Ring, attach_reports_version_zero_as_not_ready) {
    Segment seg(1024);  // zeroed, like a freshly truncated segment
    auto c = RingConsumer::attach(seg.bytes());
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().errno_value, EAGAIN);
    EXPECT_NE(c.error().message().find("not formatted yet"), std::string::npos) << c.error().message();
}

TEST(Ring, attach_rejects_inconsistent_geometry) {
    auto attach_error = [](auto&& mutate) {
        Segment seg(1024);
        EXPECT_TRUE(xproc::format_ring(seg.bytes(), 1024, 100).has_value());
        mutate(seg.header());
        auto c = RingConsumer::attach(seg.bytes());
        EXPECT_FALSE(c.has_value());
        return c ? ErrorKind::os : c.error().kind;
    };
    EXPECT_EQ(attach_error([](RingHeader& h) { h.header_size = 512; }), ErrorKind::corrupt);
    EXPECT_EQ(attach_error([](RingHeader& h) { h.capacity = 1000; }), ErrorKind::corrupt);
    EXPECT_EQ(attach_error([](RingHeader& h) { h.capacity = 2048; }), ErrorKind::corrupt);  // past memory
    EXPECT_EQ(attach_error([](RingHeader& h) { h.capacity = std::uint64_t{1} << 63; }), ErrorKind::corrupt);
    EXPECT_EQ(attach_error([](RingHeader& h) { h.max_record = 0; }), ErrorKind::corrupt);
    EXPECT_EQ(attach_error([](RingHeader& h) { h.max_record = 1000; }), ErrorKind::corrupt);
    EXPECT_EQ(attach_error([](RingHeader& h) { h.kind = 99; }), ErrorKind::corrupt);
    EXPECT_EQ(attach_error([](RingHeader& h) { h.head = 64; }), ErrorKind::corrupt);    // head > tail
    EXPECT_EQ(attach_error([](RingHeader& h) { h.tail = 2048; }), ErrorKind::corrupt);  // > capacity ahead
    EXPECT_EQ(attach_error([](RingHeader& h) { h.tail = 12; }), ErrorKind::corrupt);    // not aligned
    // A segment smaller than a header is not a ring.
    Segment tiny(64);
    auto c = RingConsumer::attach(tiny.bytes().first(512));
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().kind, ErrorKind::corrupt);
}

TEST(Ring, mpsc_read_rejects_tail_going_backwards) {
    Segment seg(1024);
    auto c = RingConsumer::create(seg.bytes(), 1024, 100, RingKind::mpsc).value();
    auto p = RingProducer::attach(seg.bytes()).value();
    ASSERT_EQ(p.try_write(as_bytes(std::string("a"))), WriteStatus::ok);
    ASSERT_EQ(p.try_write(as_bytes(std::string("b"))), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "a");
    EXPECT_EQ(read_string(c), "b");
    seg.header().tail = 16;  // behind what the consumer has already seen
    std::vector<std::byte> buf(100);
    auto r = c.try_read(buf);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
    EXPECT_NE(r.error().message().find("backwards"), std::string::npos) << r.error().message();
}

TEST(Ring, mpsc_read_rejects_tail_more_than_capacity_ahead) {
    Segment seg(1024);
    auto c = RingConsumer::create(seg.bytes(), 1024, 100, RingKind::mpsc).value();
    seg.header().tail = 1024 + 8;
    std::vector<std::byte> buf(100);
    auto r = c.try_read(buf);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
    seg.header().tail = 20;  // not 8-aligned
    auto n = c.poll([](std::span<const std::byte>) {}, 10);
    ASSERT_FALSE(n.has_value());
    EXPECT_EQ(n.error().kind, ErrorKind::corrupt);
}

TEST(Ring, spsc_consumer_reads_committed_headers_and_ignores_tail) {
    Segment seg(1024);
    auto p = RingProducer::create(seg.bytes(), 1024, 100).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    ASSERT_EQ(p.try_write(as_bytes(std::string("a"))), WriteStatus::ok);
    seg.header().tail = 12;  // hostile or stale: the SPSC consumer does not use it
    EXPECT_EQ(read_string(c), "a");
    EXPECT_EQ(read_string(c), "<empty>");  // the zeroed slot after the last record
    ASSERT_EQ(p.try_write(as_bytes(std::string("b"))), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "b");
}

TEST(Ring, spsc_poll_rejects_committed_records_all_the_way_around) {
    // The producer always leaves a zeroed header slot; a ring committed all the way
    // round (a hostile writer) would have the consumer read a lap twice.
    Segment seg(1024);
    auto c = RingConsumer::create(seg.bytes(), 1024, 100).value();
    for (std::uint64_t index = 0; index < 1024; index += 16) {
        put_record_header(seg, index, 8, 1);
    }
    std::size_t delivered = 0;
    auto n = c.poll([&](std::span<const std::byte>) { ++delivered; }, 1000);
    ASSERT_FALSE(n.has_value());
    EXPECT_EQ(n.error().kind, ErrorKind::corrupt);
    EXPECT_NE(n.error().message().find("more than the capacity past head"), std::string::npos)
        << n.error().message();
    EXPECT_EQ(delivered, 64u);
}

TEST(Ring, read_rejects_bad_record_headers) {
    struct Case {
        const char* name;
        std::uint64_t index;
        std::uint32_t length;
        std::uint16_t type;
        std::uint64_t tail;
    };
    const Case cases[] = {
        {"longer than max_record", 0, 101, 1, 1024},
        {"huge length", 0, 0xffffffffu, 1, 1024},
        {"unknown type", 0, 4, 9, 16},
        {"end of stream with payload", 0, 8, 3, 16},
        {"padding not ending at the end", 0, 8, 2, 1024},
        {"crossing the end", 1000, 80, 1, 0},
    };
    for (const Case& k : cases) {
        Segment seg(1024);
        auto c = RingConsumer::create(seg.bytes(), 1024, 100).value();
        if (k.index != 0) {
            // Move both positions to k.index first (as if a lap had been read).
            seg.header().zeroed = 1024 + k.index;
            seg.header().head = 1024 + k.index;
            seg.header().tail = 1024 + k.index;
            c.close();
            c = RingConsumer::attach(seg.bytes()).value();
            seg.header().tail = 1024 + k.index + 24;
        } else {
            seg.header().tail = k.tail;
        }
        put_record_header(seg, k.index, k.length, k.type);
        std::vector<std::byte> buf(200);
        auto r = c.try_read(buf);
        ASSERT_FALSE(r.has_value()) << k.name;
        EXPECT_EQ(r.error().kind, ErrorKind::corrupt) << k.name;
        auto n = c.poll([](std::span<const std::byte>) {}, 10);
        ASSERT_FALSE(n.has_value()) << k.name;
        EXPECT_EQ(n.error().kind, ErrorKind::corrupt) << k.name;
    }
}

TEST(Ring, producer_treats_a_hostile_zeroed_position_as_full) {
    Segment seg(1024);
    auto p = RingProducer::create(seg.bytes(), 1024, 100).value();
    const std::vector<std::byte> msg(100, std::byte{1});
    for (int i = 0; i < 9; ++i) {
        ASSERT_EQ(p.try_write(msg), WriteStatus::ok);  // 112-byte records: 9 fit in 1024
    }
    ASSERT_EQ(p.try_write(msg), WriteStatus::full);
    // zeroed (the producer's limit) ahead of tail: would mean free space that does not exist.
    seg.header().zeroed = seg.header().head = p.tail() + 4096;
    EXPECT_EQ(p.try_write(msg), WriteStatus::full);
    seg.header().zeroed = seg.header().head = std::uint64_t{1} << 63;
    EXPECT_EQ(p.try_write(msg), WriteStatus::full);
}

TEST(Ring, random_bytes_are_errors_never_crashes) {
    std::mt19937_64 rng(12345);
    std::size_t errors = 0;
    for (int iter = 0; iter < 2000; ++iter) {
        Segment seg(1024);
        auto span = seg.bytes();
        if (iter % 2 == 0) {
            // Entirely random segment, with a plausible version half the time.
            for (auto& b : span) {
                b = static_cast<std::byte>(rng());
            }
            if (iter % 4 == 0) {
                seg.header().magic = xproc::ring::RING_MAGIC;
                seg.header().version = xproc::ring::RING_LAYOUT_VERSION;
                seg.header().header_size = sizeof(RingHeader);
            }
        } else {
            // A valid header over a random data area with random positions.
            ASSERT_TRUE(xproc::format_ring(span, 1024, 64 + rng() % 400).has_value());
            for (std::size_t i = sizeof(RingHeader); i < span.size(); ++i) {
                span[i] = static_cast<std::byte>(rng() % 4 == 0 ? rng() % 4 : rng());
            }
            const std::uint64_t head = (rng() % (1u << 20)) * 8;
            seg.header().zeroed = rng() % 4 == 0 ? head - (rng() % 8) * 8 : head;
            seg.header().head = head;
            seg.header().tail = head + (rng() % 130) * 8;
        }
        auto c = RingConsumer::attach(span);
        if (!c) {
            ++errors;
            continue;
        }
        std::vector<std::byte> buf(1 + rng() % 600);
        for (int reads = 0; reads < 300; ++reads) {
            if (reads % 2 == 0) {
                auto r = c->try_read(buf);
                if (!r) {
                    EXPECT_EQ(r.error().kind, ErrorKind::corrupt);
                    ++errors;
                    break;
                }
                if (r->status == ReadStatus::empty || r->status == ReadStatus::too_small) {
                    break;
                }
            } else {
                std::uint64_t sum = 0;
                auto n = c->poll(
                    [&](std::span<const std::byte> m) {
                        for (std::byte b : m) {
                            sum += static_cast<std::uint8_t>(b);
                        }
                    },
                    3);
                if (!n) {
                    EXPECT_EQ(n.error().kind, ErrorKind::corrupt);
                    ++errors;
                    break;
                }
                if (*n == 0 && !c->saw_end_of_stream()) {
                    break;
                }
            }
        }
    }
    EXPECT_GT(errors, 1000u);  // nearly every random segment is refused; none crashed
}

// ---- Two threads ------------------------------------------------------------------------

std::uint64_t mix(std::uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/// The message with sequence number `seq`: random size in 1..max; the first 8 bytes (when
/// there is room) carry the sequence number, the rest a pattern derived from it; the
/// last byte (when there is room after the sequence number) a checksum of the others.
std::size_t make_message(std::uint64_t seq, std::uint32_t max, std::byte* out) {
    const std::size_t size = 1 + mix(seq) % max;
    std::uint64_t state = mix(seq ^ 0x9e3779b97f4a7c15ULL);
    std::uint8_t sum = 0;
    for (std::size_t i = 0; i < size; ++i) {
        std::uint8_t b;
        if (i < 8) {
            b = static_cast<std::uint8_t>(seq >> (8 * i));
        } else if (i + 1 == size) {
            b = sum;
        } else {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            b = static_cast<std::uint8_t>(state >> 56);
        }
        sum = static_cast<std::uint8_t>(sum + b);
        out[i] = static_cast<std::byte>(b);
    }
    return size;
}

#if defined(__SANITIZE_THREAD__)
constexpr std::uint64_t STRESS_MESSAGES = 300'000;  // TSan is ~10x slower on this path
#elif defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t STRESS_MESSAGES = 1'000'000;
#else
constexpr std::uint64_t STRESS_MESSAGES = 3'000'000;
#endif

TEST(Ring, two_threads_move_millions_of_records_without_loss_reorder_or_corruption) {
    constexpr std::uint64_t CAPACITY = 64 * 1024;
    constexpr std::uint32_t MAX = 512;
    Segment seg(CAPACITY);
    auto producer = RingProducer::create(seg.bytes(), CAPACITY, MAX).value();
    auto consumer = RingConsumer::attach(seg.bytes()).value();
    std::atomic<int> ready{0};
    std::atomic<bool> failed{false};
    std::string failure;

    const auto start = std::chrono::steady_clock::now();
    std::thread prod([&] {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        std::vector<std::byte> msg(MAX);
        for (std::uint64_t seq = 0; seq < STRESS_MESSAGES && !failed.load(std::memory_order_relaxed);) {
            if (seq % 2 == 0) {
                // Zero-copy: claim the maximum, write in place, commit the real size.
                const xproc::Claim c = producer.claim(MAX);
                if (c.status != WriteStatus::ok) {
                    std::this_thread::yield();  // no blocking yet; be fair on a loaded 2-CPU machine
                    continue;
                }
                producer.commit(make_message(seq, MAX, c.buffer.data()));
            } else {
                const std::size_t n = make_message(seq, MAX, msg.data());
                if (producer.try_write(std::span(msg.data(), n)) != WriteStatus::ok) {
                    std::this_thread::yield();
                    continue;
                }
            }
            ++seq;
        }
        while (producer.try_write_end_of_stream() != WriteStatus::ok && !failed.load()) {
            std::this_thread::yield();
        }
    });

    std::uint64_t expected = 0;
    std::vector<std::byte> want(MAX);
    std::vector<std::byte> buf(MAX);
    auto check = [&](std::span<const std::byte> m) {
        const std::size_t n = make_message(expected, MAX, want.data());
        if (m.size() != n || std::memcmp(m.data(), want.data(), n) != 0) {
            if (!failed.exchange(true)) {
                failure = "message " + std::to_string(expected) + ": size " + std::to_string(m.size()) +
                          " (want " + std::to_string(n) + ") or contents differ";
            }
        }
        ++expected;
    };
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    std::uint64_t polls = 0;
    while (!consumer.saw_end_of_stream() && !failed.load()) {
        if (++polls % 2 == 0) {
            auto n = consumer.poll(check, 64);
            if (!n) {
                failed = true;
                failure = n.error().message();
            } else if (*n == 0) {
                std::this_thread::yield();
            }
        } else {
            auto r = consumer.try_read(buf);
            if (!r) {
                failed = true;
                failure = r.error().message();
            } else if (r->status == ReadStatus::ok) {
                check(std::span(buf.data(), r->length));
            } else if (r->status == ReadStatus::empty) {
                std::this_thread::yield();
            } else if (r->status == ReadStatus::too_small) {
                failed = true;
                failure = "too_small with a max_record buffer";
            }
        }
    }
    prod.join();
    const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_FALSE(failed.load()) << failure;
    EXPECT_EQ(expected, STRESS_MESSAGES);
    EXPECT_EQ(seg.header().messages, STRESS_MESSAGES);
    EXPECT_EQ(consumer.head(), producer.tail());
    EXPECT_LE(seg.header().high_water, CAPACITY);
    std::printf("%llu messages in %.2f s (%.1f M msgs/s)\n", static_cast<unsigned long long>(expected),
                elapsed, static_cast<double>(expected) / elapsed / 1e6);
}

// ---- Blocking, roles, liveness ----------------------------------------------------------

AttachOptions fast_liveness(xproc::WaitPolicy policy = xproc::WaitPolicy::adaptive,
                            std::chrono::milliseconds interval = 20ms) {
    AttachOptions o;
    o.wait.policy = policy;
    o.wait.liveness_interval = interval;
    return o;
}

TEST(Ring, blocking_read_waits_for_a_write_from_another_thread) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    std::thread writer([&] {
        std::this_thread::sleep_for(50ms);
        EXPECT_EQ(p.write(as_bytes("late"), xproc::WAIT_FOREVER), WriteStatus::ok);
    });
    std::vector<std::byte> buf(64);
    auto r = c.read(buf, xproc::WAIT_FOREVER);
    writer.join();
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_EQ(r->status, ReadStatus::ok);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), r->length), "late");
    EXPECT_GE(seg.header().empty_waits, 1u);
}

TEST(Ring, timed_read_on_an_empty_ring_returns_empty_after_the_timeout) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    std::vector<std::byte> buf(64);
    const auto start = std::chrono::steady_clock::now();
    auto r = c.read(buf, 100ms);
    const auto waited = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, ReadStatus::empty);
    EXPECT_GE(waited, 100ms);
    EXPECT_LT(waited, 2s);
    // Timeout 0 never blocks.
    auto now = c.read(buf, xproc::NO_WAIT);
    ASSERT_TRUE(now.has_value());
    EXPECT_EQ(now->status, ReadStatus::empty);
}

/// What a process did while it slept: its futex waits with a timeout, and its
/// membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) calls (the sleeper's fence).
struct SleepCalls {
    int timed_futex_waits = 0;
    int global_membarriers = 0;
    int exit_status = -1;
};

/// Runs `body` in a child traced with PTRACE_SYSCALL and counts its SleepCalls (the
/// child's exit status is `body`'s result: 0 when it returned true).
SleepCalls count_sleep_calls(const std::function<bool()>& body) {
    SleepCalls calls;
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0 || ::raise(SIGSTOP) != 0) {
            ::_exit(2);
        }
        ::_exit(body() ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
        ADD_FAILURE() << "the traced child did not stop: " << std::strerror(errno);
        return calls;
    }
    ::ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
    long signal = 0;
    while (::ptrace(PTRACE_SYSCALL, pid, nullptr, signal) == 0 && ::waitpid(pid, &status, 0) == pid) {
        signal = 0;
        if (WIFEXITED(status)) {
            calls.exit_status = WEXITSTATUS(status);
            break;
        }
        if (!WIFSTOPPED(status)) {
            break;  // killed
        }
        if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
            signal = WSTOPSIG(status);  // a signal of its own: delivered
            continue;
        }
        __ptrace_syscall_info info{};
        if (::ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof info, &info) <= 0 ||
            info.op != PTRACE_SYSCALL_INFO_ENTRY) {
            continue;
        }
        const auto& args = info.entry.args;
        if (info.entry.nr == SYS_futex && (args[1] & FUTEX_CMD_MASK) == FUTEX_WAIT && args[3] != 0) {
            ++calls.timed_futex_waits;
        } else if (info.entry.nr == SYS_membarrier && args[0] == MEMBARRIER_CMD_GLOBAL_EXPEDITED) {
            ++calls.global_membarriers;
        }
    }
    return calls;
}

bool global_membarrier_available() {
    const long mask = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    return mask > 0 && (mask & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0;
}

// A sleeper that wakes only to check its peer does not fence again while the word still
// holds its announcement (nobody else sleeps in it): one membarrier per wait, however
// many liveness wake-ups. Where several sleepers share the word (MPSC producers), each
// sleep fences. Liveness every 5 ms (doubling up to 20 ms) over 300 ms: a dozen sleeps.
TEST(Ring, an_idle_sleeper_fences_once_per_wait_not_at_every_liveness_wake_up) {
    if (!global_membarrier_available()) {
        GTEST_SKIP() << "membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) is not available";
    }
    const SleepCalls consumer = count_sleep_calls([] {
        Segment seg(4096);
        auto p = RingProducer::create(seg.bytes(), 4096, 256);
        auto c = RingConsumer::attach(seg.bytes(), fast_liveness(xproc::WaitPolicy::sleep, 5ms));
        std::vector<std::byte> buf(64);
        if (!p || !c) {
            return false;
        }
        auto r = c->read(buf, 300ms);
        return r && r->status == ReadStatus::empty;
    });
    EXPECT_EQ(consumer.exit_status, 0);
    EXPECT_GE(consumer.timed_futex_waits, 5);
    EXPECT_EQ(consumer.global_membarriers, 1) << consumer.timed_futex_waits << " sleeps";

    const auto full_ring_waits = [](RingKind kind) {
        return count_sleep_calls([kind] {
            Segment seg(256);
            auto p = RingProducer::create(seg.bytes(), 256, 100, kind,
                                          fast_liveness(xproc::WaitPolicy::sleep, 5ms));
            auto c = RingConsumer::attach(seg.bytes());
            if (!p || !c) {
                return false;
            }
            const std::string msg(100, 'x');
            while (p->write(as_bytes(msg)) == WriteStatus::ok) {
            }
            return p->write(as_bytes(msg), 300ms) == WriteStatus::full;
        });
    };
    const SleepCalls spsc = full_ring_waits(RingKind::spsc);
    EXPECT_EQ(spsc.exit_status, 0);
    EXPECT_GE(spsc.timed_futex_waits, 5);
    EXPECT_EQ(spsc.global_membarriers, 1) << spsc.timed_futex_waits << " sleeps";

    const SleepCalls mpsc = full_ring_waits(RingKind::mpsc);
    EXPECT_EQ(mpsc.exit_status, 0);
    EXPECT_GE(mpsc.timed_futex_waits, 5);
    EXPECT_GE(mpsc.global_membarriers, mpsc.timed_futex_waits);
}

TEST(Ring, blocking_write_waits_for_room_until_the_consumer_reads) {
    Segment seg(256);
    auto p = RingProducer::create(seg.bytes(), 256, 100).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    const std::string msg(56, 'm');  // 64-byte records: three fill the ring (and its 8-byte gap)
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(p.write(as_bytes(msg)), WriteStatus::ok) << i;
    }
    EXPECT_EQ(p.write(as_bytes(msg)), WriteStatus::full);
    EXPECT_EQ(p.write(as_bytes(msg), 30ms), WriteStatus::full);  // timed out
    std::thread reader([&] {
        std::this_thread::sleep_for(50ms);
        EXPECT_EQ(read_string(c).size(), 56u);
    });
    EXPECT_EQ(p.write(as_bytes(msg), xproc::WAIT_FOREVER), WriteStatus::ok);
    reader.join();
    EXPECT_GE(seg.header().full_waits, 2u);
    EXPECT_EQ(seg.header().dropped, 1u);  // the timed-out write
}

TEST(Ring, each_wait_policy_moves_a_stream_through_a_small_ring) {
    for (auto policy : {xproc::WaitPolicy::adaptive, xproc::WaitPolicy::busy, xproc::WaitPolicy::sleep}) {
        constexpr std::uint64_t CAPACITY = 1024;
        constexpr std::uint64_t COUNT = 20'000;
        Segment seg(CAPACITY);
        AttachOptions o;
        o.wait.policy = policy;
        o.wait.spin = 2us;
        auto p = RingProducer::create(seg.bytes(), CAPACITY, 64, RingKind::spsc, o).value();
        auto c = RingConsumer::attach(seg.bytes(), o).value();
        std::thread writer([&] {
            for (std::uint64_t i = 0; i < COUNT; ++i) {
                ASSERT_EQ(p.write(std::as_bytes(std::span(&i, 1)), 10s), WriteStatus::ok);
            }
            ASSERT_EQ(p.write_end_of_stream(10s), WriteStatus::ok);
        });
        std::uint64_t expected = 0;
        bool ok = true;
        while (ok) {
            auto st = c.wait(10s);
            ASSERT_TRUE(st.has_value()) << st.error().message();
            ASSERT_EQ(*st, ReadStatus::ok);
            auto n = c.poll(
                [&](std::span<const std::byte> m) {
                    std::uint64_t v = 0;
                    ASSERT_EQ(m.size(), sizeof v);
                    std::memcpy(&v, m.data(), sizeof v);
                    ASSERT_EQ(v, expected);
                    ++expected;
                },
                32);
            ASSERT_TRUE(n.has_value());
            ok = !c.saw_end_of_stream();
        }
        writer.join();
        EXPECT_EQ(expected, COUNT) << "policy " << static_cast<int>(policy);
    }
}

TEST(Ring, a_role_held_by_a_live_process_is_refused_with_its_pid) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    auto second = RingProducer::attach(seg.bytes());
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().errno_value, EBUSY);
    EXPECT_NE(second.error().message().find("held by pid " + std::to_string(::getpid())), std::string::npos)
        << second.error().message();
    auto c = RingConsumer::attach(seg.bytes()).value();
    auto c2 = RingConsumer::attach(seg.bytes());
    ASSERT_FALSE(c2.has_value());
    EXPECT_NE(c2.error().message().find("consumer role is held by pid"), std::string::npos);
    // Without taking a role, attaching is allowed (inspection, tests).
    AttachOptions no_role;
    no_role.take_role = false;
    EXPECT_TRUE(RingConsumer::attach(seg.bytes(), no_role).has_value());
    // A role given back is free again.
    p.close();
    EXPECT_EQ(seg.header().producer_pid, 0);
    EXPECT_TRUE(RingProducer::attach(seg.bytes()).has_value());
}

TEST(Ring, a_role_held_by_a_dead_process_is_taken_over) {
    Segment seg(4096);
    ASSERT_TRUE(xproc::format_ring(seg.bytes(), 4096, 256).has_value());
    seg.header().producer_pid = vanished_pid();
    seg.header().producer_start_time = 12345;
    seg.header().consumer_pid = vanished_pid();
    auto p = RingProducer::attach(seg.bytes());
    ASSERT_TRUE(p.has_value()) << p.error().message();
    EXPECT_EQ(seg.header().producer_pid, ::getpid());
    auto c = RingConsumer::attach(seg.bytes());
    ASSERT_TRUE(c.has_value()) << c.error().message();
    EXPECT_EQ(seg.header().consumer_pid, ::getpid());
}

TEST(Ring, a_long_sleep_checks_the_peer_less_and_less_often) {
    // Each liveness check wakes the sleeper (its voluntary context switches count them):
    // 20 ms doubling to 80 ms over one second is about 14 checks; at a fixed 20 ms, 50.
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 64).value();  // alive: this process
    auto c = RingConsumer::attach(seg.bytes(), fast_liveness(xproc::WaitPolicy::sleep)).value();
    struct rusage before {};
    ASSERT_EQ(::getrusage(RUSAGE_THREAD, &before), 0);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(c.wait(1s).value(), ReadStatus::empty);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);
    struct rusage after {};
    ASSERT_EQ(::getrusage(RUSAGE_THREAD, &after), 0);
    const long wakes = after.ru_nvcsw - before.ru_nvcsw;
    EXPECT_GE(wakes, 5);
    EXPECT_LE(wakes, 25);
}

/// read(2) calls this process has made so far (syscr in /proc/self/io).
std::uint64_t read_calls() {
    std::ifstream io("/proc/self/io");
    std::string key;
    std::uint64_t value = 0;
    while (io >> key >> value) {
        if (key == "syscr:") {
            return value;
        }
    }
    ADD_FAILURE() << "no syscr in /proc/self/io";
    return 0;
}

TEST(Ring, after_attach_a_liveness_check_only_polls_the_peers_pidfd) {
    // Identifying a peer (pidfd_open, then its start time from /proc/PID/stat) costs
    // about 0.3 ms of system calls: attach does it, so that an idle waiter's checks are
    // one poll(2) each and read nothing.
    for (const RingKind kind : {RingKind::spsc, RingKind::mpsc}) {
        SCOPED_TRACE(kind == RingKind::spsc ? "spsc" : "mpsc");
        Segment seg(4096);
        ASSERT_TRUE(xproc::format_ring(seg.bytes(), 4096, 64, kind).has_value());
        auto p = RingProducer::attach(seg.bytes()).value();  // alive: this process
        auto c = RingConsumer::attach(seg.bytes(), fast_liveness(xproc::WaitPolicy::sleep)).value();
        const std::uint64_t one_look = [] {
            const std::uint64_t first = read_calls();
            return read_calls() - first;
        }();
        const std::uint64_t before = read_calls();
        for (int i = 0; i < 4; ++i) {
            std::this_thread::sleep_for(25ms);  // past the rate limit (half the 20 ms interval)
            EXPECT_EQ(c.producer_state(), PeerState::alive);
        }
        EXPECT_EQ(read_calls() - before, one_look);
    }
}

TEST(Ring, a_producer_that_attaches_after_the_consumer_is_seen_alive_at_once) {
    // xring sub on an mpsc ring ends at an end-of-stream record only when no producer is
    // alive: a stale "none" from the consumer's attach would end it early.
    for (const RingKind kind : {RingKind::spsc, RingKind::mpsc}) {
        SCOPED_TRACE(kind == RingKind::spsc ? "spsc" : "mpsc");
        Segment seg(4096);
        ASSERT_TRUE(xproc::format_ring(seg.bytes(), 4096, 64, kind).has_value());
        AttachOptions o;
        o.wait.liveness_interval = 10s;  // no re-check in this test's time
        auto c = RingConsumer::attach(seg.bytes(), o).value();
        EXPECT_EQ(c.producer_state(), PeerState::none);
        auto p = RingProducer::attach(seg.bytes()).value();
        EXPECT_EQ(c.producer_state(), PeerState::alive);
    }
}

TEST(Ring, a_consumer_waiting_on_a_dead_producer_gets_peer_gone_after_draining) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    ASSERT_EQ(p.write(as_bytes("last words")), WriteStatus::ok);
    auto c = RingConsumer::attach(seg.bytes(), fast_liveness()).value();
    // The producer "dies": its role now names a process that is gone.
    seg.header().producer_pid = vanished_pid();
    EXPECT_EQ(c.producer_state(), PeerState::dead);
    std::vector<std::byte> buf(64);
    auto r = c.read(buf, 5s);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, ReadStatus::ok);  // what it committed is not lost
    const auto start = std::chrono::steady_clock::now();
    r = c.read(buf, 5s);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, ReadStatus::peer_gone);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_EQ(c.read(buf, xproc::NO_WAIT)->status, ReadStatus::peer_gone);
}

TEST(Ring, the_first_empty_try_read_after_a_dead_producers_last_message_reports_peer_gone) {
    // The first empty poll after a message takes a short path (the liveness check alone):
    // it must still tell a dead producer from a live one, and honour `follow`.
    for (const bool follow : {false, true}) {
        SCOPED_TRACE(follow ? "follow" : "no follow");
        Segment seg(4096);
        auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
        ASSERT_EQ(p.write(as_bytes("one")), WriteStatus::ok);
        ASSERT_EQ(p.write(as_bytes("two")), WriteStatus::ok);
        AttachOptions o = fast_liveness();
        o.follow = follow;
        auto c = RingConsumer::attach(seg.bytes(), o).value();
        std::vector<std::byte> buf(64);
        ASSERT_EQ(c.try_read(buf)->status, ReadStatus::ok);
        EXPECT_EQ(c.try_read(buf)->status, ReadStatus::ok);
        EXPECT_EQ(c.try_read(buf)->status, ReadStatus::empty);  // alive: nothing yet
        ASSERT_EQ(p.write(as_bytes("three")), WriteStatus::ok);
        seg.header().producer_pid = vanished_pid();  // the producer "dies"
        c.close();
        c = RingConsumer::attach(seg.bytes(), o).value();  // no cached verdict
        ASSERT_EQ(c.try_read(buf)->status, ReadStatus::ok);
        EXPECT_EQ(c.try_read(buf)->status, follow ? ReadStatus::empty : ReadStatus::peer_gone);
    }
}

TEST(RingDeathTest, reading_through_a_moved_from_consumer_is_an_assertion_not_a_crash) {
    // The inline fast path of read() must leave a moved-from consumer to the slow path's
    // assertion (a message naming the condition, then abort), not dereference null.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    ASSERT_EQ(p.write(as_bytes("x")), WriteStatus::ok);
    auto c = RingConsumer::attach(seg.bytes()).value();
    RingConsumer taken = std::move(c);
    std::vector<std::byte> buf(8);
    EXPECT_DEATH((void)c.try_read(buf), "m_header != nullptr");  // NOLINT(bugprone-use-after-move)
    EXPECT_DEATH((void)c.poll([](std::span<const std::byte>) {}, 1), "m_header != nullptr");
    EXPECT_EQ(taken.try_read(buf)->status, ReadStatus::ok);
}

TEST(Ring, a_busy_try_read_loop_sees_a_dead_producer_and_reads_what_arrives_between_empty_polls) {
    // try_read() answers most empty polls inline and checks liveness on some: a loop of them
    // must still report a dead producer, and never miss a record that arrives meanwhile.
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    auto c = RingConsumer::attach(seg.bytes(), fast_liveness()).value();
    std::vector<std::byte> buf(64);
    for (int round = 0; round < 40; ++round) {
        for (int empty = 0; empty < round; ++empty) {
            EXPECT_EQ(c.try_read(buf)->status, ReadStatus::empty);
        }
        ASSERT_EQ(p.write(as_bytes("m" + std::to_string(round))), WriteStatus::ok);
        auto r = c.try_read(buf);
        ASSERT_TRUE(r.has_value());
        ASSERT_EQ(r->status, ReadStatus::ok) << "round " << round;
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), r->length),
                  "m" + std::to_string(round));
    }
    seg.header().producer_pid = vanished_pid();
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t polls = 0;
    ReadStatus last = ReadStatus::empty;
    while (last == ReadStatus::empty && std::chrono::steady_clock::now() - start < 5s) {
        auto r = c.try_read(buf);
        ASSERT_TRUE(r.has_value());
        last = r->status;
        ++polls;
    }
    EXPECT_EQ(last, ReadStatus::peer_gone) << "after " << polls << " polls";
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST(Ring, a_following_consumer_keeps_waiting_when_the_producer_died) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    AttachOptions o = fast_liveness();
    o.follow = true;
    auto c = RingConsumer::attach(seg.bytes(), o).value();
    seg.header().producer_pid = vanished_pid();
    std::vector<std::byte> buf(64);
    auto r = c.read(buf, 100ms);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, ReadStatus::empty);
}

TEST(Ring, a_producer_that_closed_cleanly_has_left_and_is_not_gone) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    auto c = RingConsumer::attach(seg.bytes(), fast_liveness()).value();
    p.close();
    EXPECT_EQ(c.producer_state(), PeerState::none);
    std::vector<std::byte> buf(64);
    auto r = c.read(buf, 100ms);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, ReadStatus::empty);
    // The next producer continues where the first one stopped.
    auto p2 = RingProducer::attach(seg.bytes()).value();
    ASSERT_EQ(p2.write(as_bytes("next")), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "next");
}

TEST(Ring, a_producer_blocked_on_a_full_ring_gets_peer_gone_when_the_consumer_died) {
    Segment seg(256);
    auto p = RingProducer::create(seg.bytes(), 256, 100, RingKind::spsc, fast_liveness()).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    const std::string msg(100, 'm');
    ASSERT_EQ(p.write(as_bytes(msg)), WriteStatus::ok);
    ASSERT_EQ(p.write(as_bytes(msg)), WriteStatus::ok);
    seg.header().consumer_pid = vanished_pid();
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(p.write(as_bytes(msg), 5s), WriteStatus::peer_gone);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_EQ(p.consumer_state(), PeerState::dead);
}

TEST(Ring, doorbell_fd_becomes_readable_when_the_producer_commits) {
    Segment seg(4096);
    auto p = RingProducer::create(seg.bytes(), 4096, 256).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    auto fd = c.doorbell_fd();
    ASSERT_TRUE(fd.has_value()) << fd.error().message();
    auto armed = c.arm_doorbell();
    ASSERT_TRUE(armed.has_value());
    EXPECT_FALSE(*armed);  // empty: armed
    struct pollfd pfd = {*fd, POLLIN, 0};
    EXPECT_EQ(::poll(&pfd, 1, 0), 0);
    ASSERT_EQ(p.write(as_bytes("ding")), WriteStatus::ok);
    EXPECT_EQ(::poll(&pfd, 1, 1000), 1);
    c.clear_doorbell();
    EXPECT_EQ(::poll(&pfd, 1, 0), 0);
    EXPECT_EQ(read_string(c), "ding");
    // Data already there: arming says so instead of sleeping.
    ASSERT_EQ(p.write(as_bytes("dong")), WriteStatus::ok);
    EXPECT_TRUE(c.arm_doorbell().value());
    c.clear_doorbell();
    EXPECT_EQ(read_string(c), "dong");
    // Not armed: commits do not ring it.
    ASSERT_EQ(p.write(as_bytes("quiet")), WriteStatus::ok);
    EXPECT_EQ(::poll(&pfd, 1, 0), 0);
}

// ---- MPSC -------------------------------------------------------------------------------

TEST(Ring, mpsc_producers_each_take_a_slot_and_interleave_whole_records) {
    Segment seg(4096);
    ASSERT_TRUE(xproc::format_ring(seg.bytes(), 4096, 256, RingKind::mpsc).has_value());
    auto a = RingProducer::attach(seg.bytes()).value();
    auto b = RingProducer::attach(seg.bytes()).value();  // many producers: no EBUSY
    auto c = RingConsumer::attach(seg.bytes()).value();
    EXPECT_EQ(seg.header().slot[0].pid, ::getpid());
    EXPECT_EQ(seg.header().slot[1].pid, ::getpid());
    ASSERT_EQ(a.write(as_bytes("a1")), WriteStatus::ok);
    ASSERT_EQ(b.write(as_bytes("b1")), WriteStatus::ok);
    ASSERT_EQ(a.write(as_bytes("a2")), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "a1");
    EXPECT_EQ(read_string(c), "b1");
    EXPECT_EQ(read_string(c), "a2");
    EXPECT_EQ(read_string(c), "<empty>");
    EXPECT_EQ(seg.header().messages, 3u);
    // Consumed space is zeroed, so a later claim there starts uncommitted: up to head
    // while the next record was committed (32), then only whole lines while the consumer
    // waits at head (48), and all of it when it closes.
    EXPECT_EQ(seg.header().zeroed, 32u);
    c.close();
    EXPECT_EQ(seg.header().zeroed, 48u);
    for (std::size_t i = 0; i < 48; ++i) {
        EXPECT_EQ(seg.data()[i], std::byte{0}) << i;
    }
}

TEST(Ring, mpsc_consumer_stops_at_an_uncommitted_record_and_resumes_after_commit) {
    Segment seg(4096);
    ASSERT_TRUE(xproc::format_ring(seg.bytes(), 4096, 256, RingKind::mpsc).has_value());
    auto a = RingProducer::attach(seg.bytes()).value();
    auto b = RingProducer::attach(seg.bytes()).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    const xproc::Claim first = a.claim(10);  // claimed first, committed last
    ASSERT_EQ(first.status, WriteStatus::ok);
    ASSERT_EQ(b.write(as_bytes("second")), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "<empty>");  // in order: the first record is not ready
    EXPECT_EQ(c.poll([](std::span<const std::byte>) {}, 10).value(), 0u);
    std::memcpy(first.buffer.data(), "first", 5);
    a.commit(5);
    EXPECT_EQ(read_string(c), "first");
    EXPECT_EQ(read_string(c), "second");
}

TEST(Ring, mpsc_abort_and_short_commit_leave_skipped_space_the_consumer_ignores) {
    Segment seg(4096);
    ASSERT_TRUE(xproc::format_ring(seg.bytes(), 4096, 256, RingKind::mpsc).has_value());
    auto a = RingProducer::attach(seg.bytes()).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    ASSERT_EQ(a.claim(100).status, WriteStatus::ok);
    a.abort();
    const xproc::Claim cl = a.claim(200);
    ASSERT_EQ(cl.status, WriteStatus::ok);
    std::memcpy(cl.buffer.data(), "short", 5);
    a.commit(5);
    ASSERT_EQ(a.write(as_bytes("after")), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "short");
    EXPECT_EQ(read_string(c), "after");
    EXPECT_EQ(read_string(c), "<empty>");
    EXPECT_EQ(c.head(), seg.header().tail);
    auto problems = xproc::check_ring(seg.bytes());
    ASSERT_TRUE(problems.has_value());
    EXPECT_TRUE(problems->empty());
}

TEST(Ring, spsc_producer_that_attaches_continues_after_the_last_committed_record) {
    Segment seg(1024);
    AttachOptions no_role;
    no_role.take_role = false;
    auto first = RingProducer::create(seg.bytes(), 1024, 100, RingKind::spsc, no_role).value();
    auto c = RingConsumer::attach(seg.bytes()).value();
    ASSERT_EQ(first.try_write(as_bytes(std::string("one"))), WriteStatus::ok);
    ASSERT_EQ(first.try_write(as_bytes(std::string("two"))), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "one");
    const std::uint64_t end = first.tail();
    // As if the producer stored tail for a third record and died before committing it:
    // the header slot at `end` is still zero.
    seg.header().tail = end + 24;
    auto second = RingProducer::attach(seg.bytes(), no_role).value();
    EXPECT_EQ(second.tail(), end);
    EXPECT_EQ(seg.header().tail, end);
    ASSERT_EQ(second.try_write(as_bytes(std::string("three"))), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "two");
    EXPECT_EQ(read_string(c), "three");
    EXPECT_EQ(read_string(c), "<empty>");
    auto problems = xproc::check_ring(seg.bytes());
    ASSERT_TRUE(problems.has_value());
    EXPECT_TRUE(problems->empty());
    // A stale header in the slot at tail would be taken for a record: check says so, and a
    // producer attaching walks on only over records that are valid.
    put_record_header(seg, second.tail() & 1023, 8, 1);
    problems = xproc::check_ring(seg.bytes());
    ASSERT_TRUE(problems.has_value());
    ASSERT_EQ(problems->size(), 1u);
    EXPECT_NE(problems->front().find("is not zero"), std::string::npos) << problems->front();
    put_record_header(seg, second.tail() & 1023, 4000, 1);
    auto third = RingProducer::attach(seg.bytes(), no_role);
    ASSERT_FALSE(third.has_value());
    EXPECT_EQ(third.error().kind, ErrorKind::corrupt);
}

TEST(Ring, spsc_producer_that_died_inside_a_batch_is_taken_over_without_its_unpublished_records) {
    // Shared memory: the batch is written by a child that dies without flushing.
    const std::uint64_t cap = 1024;
    const std::size_t size = xproc::ring_segment_size(cap);
    void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    const std::span<std::byte> bytes(static_cast<std::byte*>(mem), size);
    auto c = RingConsumer::create(bytes, cap, 100).value();
    const pid_t child = ::fork();
    if (child == 0) {
        auto p = RingProducer::attach(bytes);
        if (!p) {
            ::_exit(2);
        }
        for (const char* text : {"dead-one", "dead-two", "dead-333"}) {
            const xproc::Claim cl = p->claim(8);
            std::memcpy(cl.buffer.data(), text, 8);
            p->commit_batched(8);
        }
        ::_exit(0);  // no flush, no close: the first header is never stored
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(read_string(c), "<peer_gone>");  // nothing of the batch, and its writer is dead
    // The role holder is dead: a new producer takes over where the consumer can see the
    // end, not at the tail the dead one stored, and its records take the same places.
    auto p = RingProducer::attach(bytes);
    ASSERT_TRUE(p.has_value()) << p.error().message();
    EXPECT_EQ(p->tail(), 0u);
    ASSERT_EQ(p->try_write(as_bytes(std::string("new-one1"))), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "new-one1");
    EXPECT_EQ(read_string(c), "<empty>");  // not the dead producer's "dead-two"
    ASSERT_EQ(p->try_write(as_bytes(std::string("2"))), WriteStatus::ok);
    ASSERT_EQ(p->try_write(as_bytes(std::string("new-3"))), WriteStatus::ok);
    EXPECT_EQ(read_string(c), "2");
    EXPECT_EQ(read_string(c), "new-3");
    EXPECT_EQ(read_string(c), "<empty>");
    auto problems = xproc::check_ring(bytes);
    ASSERT_TRUE(problems.has_value());
    EXPECT_TRUE(problems->empty()) << problems->front();
    p->close();
    c.close();
    ::munmap(mem, size);
}

TEST(Ring, mpsc_record_claimed_by_a_dead_producer_is_skipped_within_the_liveness_interval) {
    Segment seg(4096);
    ASSERT_TRUE(xproc::format_ring(seg.bytes(), 4096, 256, RingKind::mpsc).has_value());
    auto live = RingProducer::attach(seg.bytes()).value();
    auto c = RingConsumer::attach(seg.bytes(), fast_liveness()).value();
    auto doomed = RingProducer::attach(seg.bytes()).value();
    const xproc::Claim half = doomed.claim(100);  // claimed, half written, never committed
    ASSERT_EQ(half.status, WriteStatus::ok);
    std::memset(half.buffer.data(), 0xab, 50);
    ASSERT_EQ(live.write(as_bytes("survivor")), WriteStatus::ok);
    // The claimant "dies": its slot names a process that is gone.
    int doomed_slot = -1;
    for (int i = 0; i < 48; ++i) {
        if (seg.header().slot[i].claim_size != 0) {
            doomed_slot = i;
        }
    }
    ASSERT_GE(doomed_slot, 0);
    seg.header().slot[doomed_slot].pid = vanished_pid();
    std::vector<std::byte> buf(256);
    const auto start = std::chrono::steady_clock::now();
    auto r = c.read(buf, 5s);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_EQ(r->status, ReadStatus::ok);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), r->length), "survivor");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_EQ(seg.header().skipped, 1u);
    EXPECT_EQ(seg.header().slot[doomed_slot].claim_size, 0u);
    // The dead slot can be reused now that its claim is resolved.
    EXPECT_TRUE(RingProducer::attach(seg.bytes()).has_value());
}

TEST(Ring, mpsc_stale_claim_of_a_dead_producer_never_touches_an_empty_ring) {
    Segment seg(4096);
    ASSERT_TRUE(xproc::format_ring(seg.bytes(), 4096, 256, RingKind::mpsc).has_value());
    auto c = RingConsumer::attach(seg.bytes(), fast_liveness()).value();
    // A producer recorded a claim at position 0 and died before its CAS: tail never moved.
    seg.header().slot[5].pid = vanished_pid();
    seg.header().slot[5].position = 0;
    seg.header().slot[5].claim_size = 64;
    std::vector<std::byte> buf(256);
    auto r = c.read(buf, 100ms);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(r->status, ReadStatus::peer_gone);  // its only producer is dead, nothing to read
    EXPECT_EQ(seg.header().skipped, 0u);
    EXPECT_EQ(seg.header().head, 0u);
    for (std::size_t i = 0; i < 64; ++i) {
        EXPECT_EQ(seg.data()[i], std::byte{0}) << i;
    }
}

TEST(Ring, mpsc_dead_claim_across_the_end_of_the_area_is_skipped_in_two_parts) {
    Segment seg(1024);
    ASSERT_TRUE(xproc::format_ring(seg.bytes(), 1024, 256, RingKind::mpsc).has_value());
    auto live = RingProducer::attach(seg.bytes()).value();
    auto c = RingConsumer::attach(seg.bytes(), fast_liveness()).value();
    // Move everything to 1000: 24 bytes before the end.
    seg.header().zeroed = 1000;
    seg.header().head = 1000;
    seg.header().tail = 1000;
    c.close();
    c = RingConsumer::attach(seg.bytes(), fast_liveness()).value();
    // A producer claimed 24 bytes of padding + a 40-byte record and died before writing
    // anything (no padding record either).
    seg.header().slot[7].pid = vanished_pid();
    seg.header().slot[7].position = 1000;
    seg.header().slot[7].claim_size = 64;
    seg.header().tail = 1064;
    ASSERT_EQ(live.write(as_bytes("after")), WriteStatus::ok);
    std::vector<std::byte> buf(256);
    auto r = c.read(buf, 5s);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_EQ(r->status, ReadStatus::ok);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), r->length), "after");
    EXPECT_EQ(seg.header().skipped, 1u);
}

TEST(Ring, mpsc_four_threads_deliver_every_record_in_per_producer_order) {
    constexpr std::uint64_t CAPACITY = 16 * 1024;
#if defined(__SANITIZE_THREAD__)
    constexpr std::uint64_t PER_PRODUCER = 20'000;
#else
    constexpr std::uint64_t PER_PRODUCER = 200'000;
#endif
    constexpr int PRODUCERS = 4;
    Segment seg(CAPACITY);
    ASSERT_TRUE(xproc::format_ring(seg.bytes(), CAPACITY, 64, RingKind::mpsc).has_value());
    auto c = RingConsumer::attach(seg.bytes()).value();
    std::vector<std::thread> threads;
    for (int t = 0; t < PRODUCERS; ++t) {
        threads.emplace_back([&, t] {
            auto p = RingProducer::attach(seg.bytes()).value();
            for (std::uint64_t i = 0; i < PER_PRODUCER; ++i) {
                const std::uint64_t msg[2] = {static_cast<std::uint64_t>(t), i};
                // Alternate the copy and the zero-copy paths.
                if (i % 2 == 0) {
                    ASSERT_EQ(p.write(std::as_bytes(std::span(msg)), 10s), WriteStatus::ok);
                } else {
                    const xproc::Claim cl = p.claim(sizeof msg, 10s);
                    ASSERT_EQ(cl.status, WriteStatus::ok);
                    std::memcpy(cl.buffer.data(), msg, sizeof msg);
                    p.commit(sizeof msg);
                }
            }
        });
    }
    std::uint64_t next[PRODUCERS] = {};
    std::uint64_t total = 0;
    while (total < PER_PRODUCER * PRODUCERS) {
        auto st = c.wait(10s);
        ASSERT_TRUE(st.has_value()) << st.error().message();
        ASSERT_EQ(*st, ReadStatus::ok);
        auto n = c.poll(
            [&](std::span<const std::byte> m) {
                std::uint64_t msg[2];
                ASSERT_EQ(m.size(), sizeof msg);
                std::memcpy(msg, m.data(), sizeof msg);
                ASSERT_LT(msg[0], static_cast<std::uint64_t>(PRODUCERS));
                ASSERT_EQ(msg[1], next[msg[0]]) << "producer " << msg[0];
                ++next[msg[0]];
                ++total;
            },
            64);
        ASSERT_TRUE(n.has_value()) << n.error().message();
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_EQ(seg.header().messages, PER_PRODUCER * PRODUCERS);
    EXPECT_EQ(seg.header().skipped, 0u);
}

// ---- Broadcast --------------------------------------------------------------------------

TEST(Ring, broadcast_readers_each_see_every_message_from_when_they_joined) {
    Segment seg(4096);
    auto w = RingProducer::create(seg.bytes(), 4096, 256, RingKind::broadcast).value();
    ASSERT_EQ(w.write(as_bytes("before")), WriteStatus::ok);  // nobody listening
    auto r1 = RingConsumer::attach(seg.bytes()).value();
    auto r2 = RingConsumer::attach(seg.bytes()).value();  // readers are not exclusive
    ASSERT_EQ(w.write(as_bytes("one")), WriteStatus::ok);
    ASSERT_EQ(w.write(as_bytes("two")), WriteStatus::ok);
    EXPECT_EQ(read_string(r1), "one");
    EXPECT_EQ(read_string(r1), "two");
    EXPECT_EQ(read_string(r1), "<empty>");
    std::vector<std::string> got;
    ASSERT_TRUE(r2.poll(
                      [&](std::span<const std::byte> m) {
                          got.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
                      },
                      10)
                    .has_value());
    EXPECT_EQ(got, (std::vector<std::string>{"one", "two"}));
}

TEST(Ring, broadcast_writer_never_waits_and_a_lapped_reader_is_told_and_resumes) {
    Segment seg(1024);
    auto w = RingProducer::create(seg.bytes(), 1024, 100, RingKind::broadcast).value();
    auto r = RingConsumer::attach(seg.bytes()).value();
    const std::string msg(40, 'x');  // 48-byte records
    for (int i = 0; i < 100; ++i) {  // ~4.7 laps
        ASSERT_EQ(w.write(as_bytes(msg)), WriteStatus::ok);
    }
    std::vector<std::byte> buf(128);
    auto res = r.read(buf);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, ReadStatus::lapped);
    EXPECT_EQ(res->lost, w.tail());  // 100 records of 48 bytes and the padding at each wrap
    EXPECT_GT(res->lost, 100u * 48u);
    EXPECT_EQ(seg.header().lapped, 1u);
    ASSERT_EQ(w.write(as_bytes("fresh")), WriteStatus::ok);
    EXPECT_EQ(read_string(r), "fresh");
}

TEST(Ring, broadcast_wait_reports_a_lapped_reader_as_ready_not_corrupt) {
    Segment seg(1024);
    auto w = RingProducer::create(seg.bytes(), 1024, 100, RingKind::broadcast).value();
    auto r = RingConsumer::attach(seg.bytes()).value();
    for (int i = 0; i < 100; ++i) {
        ASSERT_EQ(w.write(as_bytes(std::string(40, 'x'))), WriteStatus::ok);
    }
    auto st = r.wait(1s);
    ASSERT_TRUE(st.has_value()) << st.error().message();
    EXPECT_EQ(*st, ReadStatus::ok);
    std::vector<std::byte> buf(128);
    EXPECT_EQ(r.read(buf)->status, ReadStatus::lapped);
}

TEST(Ring, broadcast_reader_never_resumes_at_an_unaligned_tail_after_a_lap) {
    Segment seg(1024);
    auto w = RingProducer::create(seg.bytes(), 1024, 100, RingKind::broadcast).value();
    auto r = RingConsumer::attach(seg.bytes()).value();
    seg.header().tail = 1024 + 1020;  // more than a lap ahead, and off the 8-byte grid
    std::vector<std::byte> buf(128);
    auto res = r.read(buf);
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error().kind, ErrorKind::corrupt);
}

TEST(Ring, broadcast_reader_detects_being_overwritten_while_reading) {
    Segment seg(1024);
    auto w = RingProducer::create(seg.bytes(), 1024, 100, RingKind::broadcast).value();
    auto r = RingConsumer::attach(seg.bytes()).value();
    ASSERT_EQ(w.write(as_bytes("old")), WriteStatus::ok);
    // The writer announces it is about to overwrite the reader's record (write_limit one
    // lap past it) without having published a new tail yet.
    seg.header().write_limit = r.head() + 1024 + 8;
    std::vector<std::byte> buf(128);
    auto res = r.read(buf);
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->status, ReadStatus::lapped);
}

TEST(Ring, broadcast_three_threads_read_a_stream_in_order) {
    constexpr std::uint64_t CAPACITY = 1 << 20;
#if defined(__SANITIZE_THREAD__)
    constexpr std::uint64_t COUNT = 5'000;  // no lapping under TSan: see the note below
#else
    constexpr std::uint64_t COUNT = 20'000;
#endif
    // The ring holds the whole stream, so no reader is lapped: a lapped reader copies bytes
    // the writer is overwriting, a seqlock race ThreadSanitizer would (rightly) report.
    static_assert(COUNT * 16 < CAPACITY);
    Segment seg(CAPACITY);
    auto w = RingProducer::create(seg.bytes(), CAPACITY, 64, RingKind::broadcast).value();
    std::atomic<int> joined{0};
    std::vector<std::thread> readers;
    std::atomic<bool> failed{false};
    for (int t = 0; t < 3; ++t) {
        readers.emplace_back([&] {
            auto r = RingConsumer::attach(seg.bytes()).value();
            joined.fetch_add(1);
            std::uint64_t expected = 0;
            std::vector<std::byte> buf(64);
            while (true) {
                auto res = r.read(buf, 10s);
                if (!res || (res->status != ReadStatus::ok && res->status != ReadStatus::end_of_stream)) {
                    failed = true;
                    return;
                }
                if (res->status == ReadStatus::end_of_stream) {
                    break;
                }
                std::uint64_t v = 0;
                std::memcpy(&v, buf.data(), sizeof v);
                if (v != expected) {
                    failed = true;
                    return;
                }
                ++expected;
            }
            if (expected != COUNT) {
                failed = true;
            }
        });
    }
    while (joined.load() < 3) {
        std::this_thread::yield();
    }
    for (std::uint64_t i = 0; i < COUNT; ++i) {
        ASSERT_EQ(w.write(std::as_bytes(std::span(&i, 1))), WriteStatus::ok);
    }
    ASSERT_EQ(w.write_end_of_stream(), WriteStatus::ok);
    for (auto& th : readers) {
        th.join();
    }
    EXPECT_FALSE(failed.load());
}

}  // namespace
