// SPDX-License-Identifier: MIT
// Hostile segments: random bytes, records whose lengths run past the end, positions that go
// backwards, header fields changed at random by another process while we read and write.
// The library must answer with statuses or Error{corrupt} (os/EAGAIN for a version of 0),
// never crash or touch memory outside the segment (the ASan/UBSan pass checks the latter:
// the in-process segments are heap blocks with redzones around them).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "stress_records.hpp"
#include "stress_support.hpp"
#include "xproc/ring.hpp"
#include "xproc/shm.hpp"

namespace {

using namespace std::chrono_literals;
using xproc::AttachOptions;
using xproc::ErrorKind;
using xproc::ReadStatus;
using xproc::RingConsumer;
using xproc::RingKind;
using xproc::RingProducer;
using xproc::WriteStatus;
using xproc::ring::RecordHeader;
using xproc::ring::RecordType;
using xproc::ring::RingHeader;
using xproc::stress::Clock;
using xproc::stress::scaled;

/// A 128-byte aligned heap block of exactly `bytes` bytes (rounded to 128).
class Memory {
  public:
    explicit Memory(std::size_t bytes) : m_lines((bytes + 127) / 128) {}
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

/// Every test must leave no child process behind.
class RingHostile : public testing::Test {
  protected:
    void TearDown() override { xproc::stress::expect_no_children(); }
};

/// What the operations answered.
struct Tally {
    std::uint64_t ok = 0;
    std::uint64_t corrupt = 0;
    std::uint64_t not_ready = 0;
    std::uint64_t attached = 0;
};

/// An error a hostile segment may produce: corrupt, or os/EAGAIN (version 0: not ready).
void expect_hostile_error(const xproc::Error& e, const char* op, Tally& tally) {
    if (e.kind == ErrorKind::os && e.errno_value == EAGAIN) {
        ++tally.not_ready;
        return;
    }
    ++tally.corrupt;
    EXPECT_EQ(e.kind, ErrorKind::corrupt) << op << ": " << e.message();
}

AttachOptions no_role() {
    AttachOptions o;
    o.take_role = false;
    o.wait.liveness_interval = 1ms;
    return o;
}

/// Runs a random mix of consumer and producer operations and inspections on `mem` for
/// `steps` steps; every answer must be a status or a hostile-segment error.
void exercise(std::span<std::byte> mem, std::mt19937_64& rng, int steps, Tally& tally) {
    std::optional<RingConsumer> c;
    std::optional<RingProducer> p;
    std::vector<std::byte> buffer(1 + rng() % 2048);
    volatile std::uint64_t sink = 0;
    // Counts an answer; false for an error (which must be a hostile-segment error).
    auto answered = [&](const auto& result, const char* op) {
        if (result) {
            ++tally.ok;
            return true;
        }
        expect_hostile_error(result.error(), op, tally);
        return false;
    };
    for (int step = 0; step < steps; ++step) {
        if (!c || rng() % 16 == 0) {
            c.reset();
            if (auto r = RingConsumer::attach(mem, no_role())) {
                c.emplace(std::move(*r));
                ++tally.attached;
            } else {
                expect_hostile_error(r.error(), "consumer attach", tally);
            }
        }
        if (!p || rng() % 16 == 0) {
            p.reset();
            if (auto r = RingProducer::attach(mem, no_role())) {
                p.emplace(std::move(*r));
            } else {
                expect_hostile_error(r.error(), "producer attach", tally);
            }
        }
        switch (rng() % 7) {
            case 0:
                if (c) {
                    auto n = c->poll(
                        [&](std::span<const std::byte> m) {
                            std::uint64_t s = 0;
                            for (const std::byte b : m) {  // every byte handed out is readable
                                s += static_cast<std::uint8_t>(b);
                            }
                            sink = sink + s;
                        },
                        1 + rng() % 8);
                    if (!answered(n, "poll")) {
                        c.reset();
                    }
                }
                break;
            case 1:
                if (c) {
                    auto r = c->read(std::span<std::byte>(buffer.data(), 1 + rng() % buffer.size()),
                                     xproc::NO_WAIT);
                    if (!answered(r, "read")) {
                        c.reset();
                    }
                }
                break;
            case 2:
                if (c) {
                    auto r = c->wait(xproc::NO_WAIT);
                    if (!answered(r, "wait")) {
                        c.reset();
                    }
                }
                break;
            case 3: {
                answered(xproc::check_ring(mem), "check_ring");
                break;
            }
            case 4: {
                answered(xproc::snapshot_ring(mem), "snapshot_ring");
                break;
            }
            case 5:
                if (p) {
                    const std::size_t len = rng() % (std::size_t{p->max_record()} + 2);
                    std::vector<std::byte> msg(len, std::byte{0x42});
                    (void)p->try_write(msg);
                    ++tally.ok;
                }
                break;
            case 6:
                if (p) {
                    const std::size_t len = rng() % (std::size_t{p->max_record()} + 1);
                    const xproc::Claim cl = p->claim(len);
                    if (cl.status == WriteStatus::ok) {
                        std::memset(cl.buffer.data(), 0x24, cl.buffer.size());  // every claimed byte is ours
                        if (rng() % 4 == 0) {
                            p->abort();
                        } else {
                            p->commit(rng() % (len + 1));
                        }
                    }
                    ++tally.ok;
                }
                break;
        }
    }
}

std::uint64_t random_capacity(std::mt19937_64& rng) {
    return std::uint64_t{64} << (rng() % 8);  // 64 .. 8192
}

RingKind random_kind(std::mt19937_64& rng) {
    return static_cast<RingKind>(1 + rng() % 3);
}

TEST_F(RingHostile, random_segments_give_statuses_or_corrupt_never_a_crash) {
    const int iterations = static_cast<int>(scaled(6'000, 1'500));
    std::mt19937_64 rng(20240611);
    Tally tally;
    for (int iter = 0; iter < iterations; ++iter) {
        const std::uint64_t capacity = random_capacity(rng);
        // Sometimes a little less memory than the header claims (a truncated segment).
        const std::size_t size = xproc::ring_segment_size(capacity) - (rng() % 8 == 0 ? 128 : 0);
        Memory mem(size);
        auto bytes = mem.bytes();
        switch (iter % 3) {
            case 0:
                // Random bytes; most of the time with an identity that passes the first checks.
                for (auto& b : bytes) {
                    b = static_cast<std::byte>(rng());
                }
                if (rng() % 4 != 0) {
                    mem.header().magic = xproc::ring::RING_MAGIC;
                    mem.header().version = xproc::ring::RING_LAYOUT_VERSION;
                    mem.header().header_size = sizeof(RingHeader);
                    mem.header().capacity = rng() % 2 ? capacity : std::uint64_t{1} << (rng() % 64);
                    mem.header().kind = static_cast<std::uint32_t>(rng() % 2 ? 1 + rng() % 3 : rng());
                    mem.header().max_record = static_cast<std::uint32_t>(rng() % (capacity / 2));
                }
                break;
            case 1: {
                // A valid header over random records, positions and peer slots.
                const RingKind kind = random_kind(rng);
                const std::uint64_t max = 1 + rng() % (capacity / 2 - 8);
                if (!xproc::format_ring(bytes, capacity, static_cast<std::uint32_t>(max), kind)) {
                    continue;  // the truncated memory is refused at format time
                }
                for (std::size_t i = sizeof(RingHeader); i < bytes.size(); ++i) {
                    // Small values are record types and plausible lengths.
                    bytes[i] = static_cast<std::byte>(rng() % 3 == 0 ? rng() % 5 : rng());
                }
                const std::uint64_t head = (rng() % 2 ? rng() % 4096 : rng() >> 4) * 8;
                mem.header().head = head;
                mem.header().zeroed = rng() % 4 == 0 ? head - (rng() % 16) * 8 : head;
                mem.header().tail = head + (rng() % (capacity / 8 + 4)) * 8 + (rng() % 16 == 0 ? 4 : 0);
                mem.header().write_limit = mem.header().tail + (rng() % 3) * capacity;
                for (int s = 0; s < 4; ++s) {
                    auto& slot = mem.header().slot[rng() % xproc::ring::RING_SLOTS];
                    slot.pid = static_cast<std::int32_t>(rng() % 3 == 0 ? ::getpid() : rng() % 4194304);
                    slot.position = head + (rng() % 64) * 8 - 256;
                    slot.claim_size = (rng() % 64) * 8 + (rng() % 8 == 0 ? 3 : 0);
                }
                break;
            }
            case 2: {
                // A real ring with records, then a few bytes flipped anywhere.
                const RingKind kind = random_kind(rng);
                const std::uint64_t max = 1 + rng() % (capacity / 2 - 8);
                if (!xproc::format_ring(bytes, capacity, static_cast<std::uint32_t>(max), kind)) {
                    continue;
                }
                if (auto p = RingProducer::attach(bytes, no_role())) {
                    std::vector<std::byte> msg(max, std::byte{0x61});
                    for (int i = 0; i < 64; ++i) {
                        (void)p->try_write(std::span<const std::byte>(msg.data(), rng() % (max + 1)));
                    }
                }
                for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0; --flips) {
                    const std::size_t at = rng() % 2 ? rng() % 1024 : rng() % bytes.size();
                    bytes[at] = static_cast<std::byte>(rng());
                }
                break;
            }
        }
        exercise(bytes, rng, 40, tally);
        if (testing::Test::HasFailure()) {
            break;
        }
    }
    std::printf(
        "[   stats  ] %d hostile segments: %llu attaches, %llu ok answers, %llu corrupt, %llu not ready\n",
        iterations, static_cast<unsigned long long>(tally.attached),
        static_cast<unsigned long long>(tally.ok), static_cast<unsigned long long>(tally.corrupt),
        static_cast<unsigned long long>(tally.not_ready));
    EXPECT_GT(tally.corrupt, 0u);
    EXPECT_GT(tally.attached, 0u);
}

/// A segment followed by a guard line of a known pattern: writes past the end of the data
/// area show even without ASan.
class GuardedMemory {
  public:
    static constexpr std::byte PATTERN{0xee};
    explicit GuardedMemory(std::uint64_t capacity)
        : m_lines((xproc::ring_segment_size(capacity) + 127) / 128 + 1) {
        std::memset(m_lines.back().b, static_cast<int>(PATTERN), 128);
    }
    std::span<std::byte> bytes() {
        return {reinterpret_cast<std::byte*>(m_lines.data()), (m_lines.size() - 1) * 128};
    }
    RingHeader& header() { return *reinterpret_cast<RingHeader*>(m_lines.data()); }
    /// The first byte of the guard that was overwritten, or -1.
    int guard_damage() const {
        for (int i = 0; i < 128; ++i) {
            if (m_lines.back().b[i] != PATTERN) {
                return i;
            }
        }
        return -1;
    }

  private:
    struct alignas(128) Line {
        std::byte b[128];
    };
    std::vector<Line> m_lines;
};

TEST_F(RingHostile, an_mpsc_producer_never_writes_past_the_data_area_for_an_unaligned_tail) {
    // The tail of an MPSC ring is read from the segment at every claim: a hostile value that
    // is not a multiple of 8, 3 bytes before the end of the area, must not make the producer
    // write an 8-byte padding header across the end.
    constexpr std::uint64_t CAP = 1024;
    GuardedMemory mem(CAP);
    ASSERT_TRUE(xproc::format_ring(mem.bytes(), CAP, 100, RingKind::mpsc).has_value());
    auto p = RingProducer::attach(mem.bytes(), no_role());
    ASSERT_TRUE(p.has_value()) << p.error().message();
    mem.header().zeroed = 1016;
    mem.header().head = 1016;
    mem.header().tail = 1021;
    const std::string msg = "eight by";
    const WriteStatus st = p->try_write(std::as_bytes(std::span(msg.data(), msg.size())));
    EXPECT_EQ(mem.guard_damage(), -1)
        << "the producer wrote past the data area (try_write: " << xproc::to_string(st) << ", tail now "
        << mem.header().tail << ")";
    EXPECT_NE(st, WriteStatus::ok) << "a claim at an unaligned position";
}

TEST_F(RingHostile, positions_changed_during_attach_are_validated_before_use) {
    // attach validates head and tail, then (to take over from a dead holder, or for a
    // broadcast reader to start at the tail) loads them again. Another process changing them
    // in between must not hand the producer or consumer an unvalidated position: an
    // unaligned one makes them read and write record headers across the end of the area.
    constexpr std::uint64_t CAP = 1024;
    const auto duration = std::chrono::milliseconds(scaled(1500, 1500));
    for (const RingKind kind : {RingKind::spsc, RingKind::mpsc, RingKind::broadcast}) {
        SCOPED_TRACE(static_cast<int>(kind));
        GuardedMemory mem(CAP);
        ASSERT_TRUE(xproc::format_ring(mem.bytes(), CAP, 200, kind).has_value());
        RingHeader& h = mem.header();
        h.zeroed = 1016;
        h.head = 1016;
        h.tail = 1016;
        std::atomic<bool> stop{false};
        std::thread flipper([&] {
            // Valid (aligned, head <= tail) and unaligned positions, alternately.
            for (std::uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
                std::atomic_ref<std::uint64_t>(h.tail).store(i % 2 ? 1021 : 1016, std::memory_order_relaxed);
                std::atomic_ref<std::uint64_t>(h.head).store(i % 2 ? 1013 : 1016, std::memory_order_relaxed);
                std::atomic_ref<std::uint64_t>(h.zeroed).store(i % 2 ? 1005 : 1016,
                                                               std::memory_order_relaxed);
            }
        });
        std::uint64_t attaches = 0;
        std::uint64_t bad_producer = 0;
        std::uint64_t bad_consumer = 0;
        const auto end = Clock::now() + duration;
        while (Clock::now() < end) {
            if (auto p = RingProducer::attach(mem.bytes(), no_role())) {
                ++attaches;
                bad_producer += p->tail() % 8 != 0;
            }
            if (auto c = RingConsumer::attach(mem.bytes(), no_role())) {
                ++attaches;
                bad_consumer += c->head() % 8 != 0;
            }
        }
        stop = true;
        flipper.join();
        EXPECT_GT(attaches, 0u);
        EXPECT_EQ(bad_producer, 0u) << "producers that started at an unaligned tail";
        EXPECT_EQ(bad_consumer, 0u) << "consumers that started at an unaligned position";
        EXPECT_EQ(mem.guard_damage(), -1);
    }
}

TEST_F(RingHostile, producers_never_write_outside_the_data_area_whatever_the_positions) {
    constexpr std::uint64_t CAP = 1024;
    std::mt19937_64 rng(4242);
    const int rounds = static_cast<int>(scaled(20'000, 4'000));
    for (const RingKind kind : {RingKind::spsc, RingKind::mpsc, RingKind::broadcast}) {
        SCOPED_TRACE(static_cast<int>(kind));
        GuardedMemory mem(CAP);
        ASSERT_TRUE(xproc::format_ring(mem.bytes(), CAP, 200, kind).has_value());
        std::optional<RingProducer> p;
        for (int round = 0; round < rounds; ++round) {
            if (!p || rng() % 8 == 0) {
                p.reset();
                if (auto r = RingProducer::attach(mem.bytes(), no_role())) {
                    p.emplace(std::move(*r));
                }
            }
            // Positions near the end of the area, aligned or not, consistent or not.
            const std::uint64_t base = (rng() % 64) * CAP;
            const std::uint64_t which = rng() % 3;
            std::uint64_t& field =
                which == 0 ? mem.header().tail : (which == 1 ? mem.header().head : mem.header().zeroed);
            field = base + CAP - rng() % 64;
            if (rng() % 2) {
                mem.header().head = mem.header().tail - (rng() % 16) * 8;
                mem.header().zeroed = mem.header().head - (rng() % 2) * 8;
            }
            if (!p) {
                continue;
            }
            const std::size_t len = rng() % 201;
            if (rng() % 2) {
                std::vector<std::byte> msg(len, std::byte{0x11});
                (void)p->try_write(msg);
            } else if (const xproc::Claim c = p->claim(len); c.status == WriteStatus::ok) {
                std::memset(c.buffer.data(), 0x22, c.buffer.size());
                p->commit(len / 2);
            }
            if (const int damage = mem.guard_damage(); damage != -1) {
                ADD_FAILURE() << "guard byte " << damage << " overwritten; round " << round << ", head "
                              << mem.header().head << " tail " << mem.header().tail;
                break;
            }
        }
    }
}

void put_header(Memory& mem, std::uint64_t index, std::uint32_t length, std::uint16_t type) {
    const RecordHeader h{length, type, 0};
    std::memcpy(mem.data() + index, &h, sizeof h);
}

TEST_F(RingHostile, record_lengths_and_types_that_break_the_format_are_corrupt) {
    constexpr std::uint64_t CAP = 1024;
    constexpr std::uint32_t MAX = 200;
    struct Case {
        const char* what;
        RingKind kind;
        std::uint64_t head;  // consumer position (records start here)
        std::uint64_t tail;
        std::uint64_t index;  // where the bad record header goes
        std::uint32_t length;
        std::uint16_t type;
    };
    const Case cases[] = {
        {"data longer than max_record", RingKind::spsc, 0, 512, 0, MAX + 1, 1},
        {"data of 4 GiB", RingKind::spsc, 0, 512, 0, 0xffffffffu, 1},
        {"data crossing the end of the area", RingKind::spsc, 1000, 1200, 1000 & (CAP - 1), 100, 1},
        {"padding not ending at the end", RingKind::spsc, 0, 512, 0, 100, 2},
        {"padding running past the end", RingKind::spsc, 960, 1104, 960, 1000, 2},
        {"end of stream with a payload", RingKind::spsc, 0, 64, 0, 8, 3},
        {"skipped record in an spsc ring", RingKind::spsc, 0, 64, 0, 8, 4},
        {"unknown type", RingKind::spsc, 0, 64, 0, 8, 9},
        {"mpsc data crossing the end", RingKind::mpsc, 1016, 1104, 1016, 16, 1},
        {"mpsc skipped past tail", RingKind::mpsc, 0, 64, 0, 500, 4},
        {"broadcast data past tail", RingKind::broadcast, 0, 64, 0, 100, 1},
        {"broadcast data longer than max", RingKind::broadcast, 0, 512, 0, 0x80000000u, 1},
    };
    for (const Case& k : cases) {
        SCOPED_TRACE(k.what);
        for (int api = 0; api < 3; ++api) {  // poll, read, wait
            Memory mem(xproc::ring_segment_size(CAP));
            ASSERT_TRUE(xproc::format_ring(mem.bytes(), CAP, MAX, k.kind).has_value());
            mem.header().zeroed = k.head;
            mem.header().head = k.head;
            mem.header().tail = k.kind == RingKind::broadcast ? k.head : k.tail;
            auto c = RingConsumer::attach(mem.bytes(), no_role());
            ASSERT_TRUE(c.has_value()) << c.error().message();
            if (k.kind == RingKind::broadcast) {
                mem.header().tail = k.tail;  // a reader starts at the tail: publish after it joined
            }
            put_header(mem, k.index, k.length, k.type);
            std::vector<std::byte> buf(4096);
            xproc::Result<int> outcome = 0;
            if (api == 0) {
                auto n =
                    c->poll([](std::span<const std::byte>) { ADD_FAILURE() << "delivered a bad record"; }, 8);
                outcome = n ? xproc::Result<int>(0) : xproc::fail(n.error());
            } else if (api == 1) {
                auto r = c->read(buf, xproc::NO_WAIT);
                outcome = r ? xproc::Result<int>(static_cast<int>(r->status)) : xproc::fail(r.error());
            } else {
                auto r = c->wait(xproc::NO_WAIT);
                if (r && *r == ReadStatus::ok) {
                    // Readiness may be decided before the record is looked at; the read must refuse it.
                    auto rr = c->read(buf, xproc::NO_WAIT);
                    outcome = rr ? xproc::Result<int>(static_cast<int>(rr->status)) : xproc::fail(rr.error());
                } else {
                    outcome = r ? xproc::Result<int>(static_cast<int>(*r)) : xproc::fail(r.error());
                }
            }
            ASSERT_FALSE(outcome.has_value()) << "api " << api << " answered status " << *outcome;
            EXPECT_EQ(outcome.error().kind, ErrorKind::corrupt) << outcome.error().message();
            // The offline check finds the problem too (SPSC/MPSC: it walks from head).
            if (k.kind != RingKind::broadcast) {
                auto problems = xproc::check_ring(mem.bytes());
                ASSERT_TRUE(problems.has_value()) << problems.error().message();
                EXPECT_FALSE(problems->empty());
            }
        }
    }
}

TEST_F(RingHostile,
       positions_that_go_backwards_or_jump_are_corrupt_for_the_consumer_and_full_for_the_producer) {
    constexpr std::uint64_t CAP = 1024;
    for (const RingKind kind : {RingKind::spsc, RingKind::mpsc}) {
        SCOPED_TRACE(kind == RingKind::spsc ? "spsc" : "mpsc");
        Memory mem(xproc::ring_segment_size(CAP));
        ASSERT_TRUE(xproc::format_ring(mem.bytes(), CAP, 100, kind).has_value());
        auto p = RingProducer::attach(mem.bytes(), no_role()).value();
        auto c = RingConsumer::attach(mem.bytes(), no_role()).value();
        const std::string msg(40, 'x');
        const auto bytes = std::as_bytes(std::span(msg.data(), msg.size()));
        for (int i = 0; i < 5; ++i) {
            ASSERT_EQ(p.try_write(bytes), WriteStatus::ok);
        }
        std::vector<std::byte> buf(128);
        ASSERT_EQ(c.read(buf)->status, ReadStatus::ok);
        ASSERT_EQ(c.read(buf)->status, ReadStatus::ok);
        const std::uint64_t tail = mem.header().tail;
        // Drain what is cached, then the tail goes backwards behind the consumer.
        while (c.read(buf).value().status == ReadStatus::ok) {
        }
        if (kind == RingKind::mpsc) {
            mem.header().tail = 8;
            auto r = c.read(buf);
            ASSERT_FALSE(r.has_value());
            EXPECT_EQ(r.error().kind, ErrorKind::corrupt) << r.error().message();
            auto w = c.wait(xproc::NO_WAIT);
            ASSERT_FALSE(w.has_value());
            EXPECT_EQ(w.error().kind, ErrorKind::corrupt);
            // The tail jumps more than a capacity ahead; then to an unaligned position.
            for (const std::uint64_t bad : {tail + CAP + 8, tail + 4}) {
                mem.header().tail = bad;
                auto n = c.poll([](std::span<const std::byte>) {}, 4);
                ASSERT_FALSE(n.has_value()) << bad;
                EXPECT_EQ(n.error().kind, ErrorKind::corrupt);
            }
        } else {
            // The SPSC consumer polls the header at its position and never reads tail: a
            // bad tail changes nothing for it (observers and an attaching producer check it).
            for (const std::uint64_t bad : {std::uint64_t{8}, tail + CAP + 8, tail + 4}) {
                mem.header().tail = bad;
                auto r = c.read(buf);
                ASSERT_TRUE(r.has_value()) << r.error().message();
                EXPECT_EQ(r->status, ReadStatus::empty);
            }
        }
        mem.header().tail = tail;
        // The producer fills the ring, so that its cached limit (zeroed) says full and it must
        // load it again. A zeroed position beyond the tail, or more than a capacity behind it,
        // says nothing about what is free: the producer treats the ring as full and writes
        // nothing.
        while (p.try_write(bytes) == WriteStatus::ok) {
        }
        const std::uint64_t full_tail = mem.header().tail;
        for (const std::uint64_t bad_head :
             {full_tail + 64, full_tail > CAP + 8 ? full_tail - CAP - 8 : std::uint64_t{1} << 63}) {
            mem.header().head = bad_head;
            mem.header().zeroed = bad_head;  // the producer's limit
            std::vector<std::byte> before(mem.bytes().begin() + sizeof(RingHeader), mem.bytes().end());
            for (int i = 0; i < 100; ++i) {
                EXPECT_NE(p.try_write(bytes), WriteStatus::ok) << "head " << bad_head;
            }
            EXPECT_TRUE(std::equal(before.begin(), before.end(), mem.bytes().begin() + sizeof(RingHeader)));
            // Such a head is refused at attach.
            auto again = RingConsumer::attach(mem.bytes(), no_role());
            ASSERT_FALSE(again.has_value());
            EXPECT_EQ(again.error().kind, ErrorKind::corrupt);
        }
    }
    // Broadcast: the tail moving behind a reader.
    Memory mem(xproc::ring_segment_size(CAP));
    auto w = RingProducer::create(mem.bytes(), CAP, 100, RingKind::broadcast, no_role()).value();
    auto r = RingConsumer::attach(mem.bytes(), no_role()).value();
    const std::string msg(40, 'x');
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(w.try_write(std::as_bytes(std::span(msg.data(), msg.size()))), WriteStatus::ok);
    }
    std::vector<std::byte> buf(128);
    ASSERT_EQ(r.read(buf)->status, ReadStatus::ok);
    ASSERT_EQ(r.read(buf)->status, ReadStatus::ok);
    mem.header().tail = 8;
    auto res = r.read(buf);
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error().kind, ErrorKind::corrupt) << res.error().message();
}

/// Another process changes header fields and record headers at random, as fast as it can,
/// while this one produces, consumes, checks and snapshots the ring.
void run_mutated(RingKind kind, Clock::duration duration) {
    constexpr std::uint64_t CAP = 16 * 1024;
    constexpr std::uint32_t MAX = 512;
    auto shm = xproc::SharedMemory::anonymous(xproc::ring_segment_size(CAP), "ring-hostile");
    ASSERT_TRUE(shm.has_value()) << shm.error().message();
    const std::span<std::byte> bytes(shm->data(), shm->size());
    ASSERT_TRUE(xproc::format_ring(bytes, CAP, MAX, kind).has_value());
    auto* header = reinterpret_cast<RingHeader*>(bytes.data());
    // Positions far from 0: a position used without its mask lands far outside the mapping.
    constexpr std::uint64_t START = std::uint64_t{1} << 33;
    header->zeroed = START;
    header->head = START;
    header->tail = START;
    header->write_limit = START;
    const pid_t mutator = ::fork();
    ASSERT_GE(mutator, 0);
    if (mutator == 0) {
        std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()));
        const auto end = Clock::now() + duration;
        auto field64 = [](std::uint64_t& f) { return std::atomic_ref<std::uint64_t>(f); };
        auto field32 = [](std::uint32_t& f) { return std::atomic_ref<std::uint32_t>(f); };
        std::uint64_t n = 0;
        while ((++n & 255) != 0 || Clock::now() < end) {
            const std::uint64_t roll = rng() % 100;
            const std::uint64_t near = field64(header->tail).load(std::memory_order_relaxed);
            if (roll < 25) {
                // Capacity: valid, or larger than the segment.
                field64(header->capacity)
                    .store(rng() % 2 ? CAP : std::uint64_t{1} << (20 + rng() % 21),
                           std::memory_order_relaxed);
            } else if (roll < 40) {
                // Near the current tail (now and then not a multiple of 8), or anywhere.
                const std::uint64_t unaligned = rng() % 4 == 0 ? 1 + rng() % 7 : 0;
                field64(header->tail)
                    .store(
                        rng() % 2 ? (near & ~std::uint64_t{7}) + (rng() % 64) * 8 - 256 + unaligned : rng(),
                        std::memory_order_relaxed);
            } else if (roll < 50) {
                field64(rng() % 2 ? header->head : header->zeroed)
                    .store(rng() % 2 ? near - (rng() % 64) * 8 : rng(), std::memory_order_relaxed);
            } else if (roll < 55) {
                field64(header->write_limit).store(near + (rng() % 4) * CAP, std::memory_order_relaxed);
            } else if (roll < 70) {
                // A record header somewhere in the data area.
                const std::uint64_t index = (rng() % (CAP / 8)) * 8;
                const RecordHeader h{static_cast<std::uint32_t>(rng() % 2 ? rng() % 1100 : rng()),
                                     static_cast<std::uint16_t>(rng() % 6), 0};
                std::uint64_t word;
                std::memcpy(&word, &h, 8);
                std::atomic_ref<std::uint64_t>(
                    *reinterpret_cast<std::uint64_t*>(bytes.data() + sizeof(RingHeader) + index))
                    .store(word, std::memory_order_relaxed);
            } else if (roll < 80) {
                field32(header->max_record)
                    .store(rng() % 2 ? MAX : static_cast<std::uint32_t>(rng()), std::memory_order_relaxed);
                field32(header->kind)
                    .store(
                        rng() % 4 ? static_cast<std::uint32_t>(kind) : static_cast<std::uint32_t>(rng() % 5),
                        std::memory_order_relaxed);
            } else if (roll < 90) {
                auto& slot = header->slot[rng() % 4];
                std::atomic_ref<std::int32_t>(slot.pid).store(
                    rng() % 2 ? 0 : static_cast<std::int32_t>(rng() % 4194304), std::memory_order_relaxed);
                field64(slot.position).store(near - (rng() % 32) * 8, std::memory_order_relaxed);
                field64(slot.claim_size).store((rng() % 64) * 8, std::memory_order_relaxed);
            } else {
                // Back to a sane identity now and then, so that attaches succeed.
                field64(header->capacity).store(CAP, std::memory_order_relaxed);
                field32(header->max_record).store(MAX, std::memory_order_relaxed);
                field32(header->kind).store(static_cast<std::uint32_t>(kind), std::memory_order_relaxed);
                const std::uint64_t h =
                    field64(header->head).load(std::memory_order_relaxed) & ~std::uint64_t{7};
                field64(header->tail).store(h + (rng() % 16) * 8, std::memory_order_relaxed);
            }
        }
        ::_exit(0);
    }
    Tally tally;
    std::mt19937_64 rng(99);
    const auto end = Clock::now() + duration;
    int rounds = 0;
    while (Clock::now() < end && !testing::Test::HasFailure()) {
        exercise(bytes, rng, 64, tally);
        ++rounds;
    }
    int status = 0;
    EXPECT_EQ(::waitpid(mutator, &status, 0), mutator);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    std::printf(
        "[   stats  ] %d rounds against a mutating process: %llu attaches, %llu ok, %llu corrupt, %llu not "
        "ready\n",
        rounds, static_cast<unsigned long long>(tally.attached), static_cast<unsigned long long>(tally.ok),
        static_cast<unsigned long long>(tally.corrupt), static_cast<unsigned long long>(tally.not_ready));
    EXPECT_GT(tally.corrupt, 0u);
}

TEST_F(RingHostile, spsc_header_mutated_by_another_process_while_we_read_and_write) {
    run_mutated(RingKind::spsc, 3s);
}

TEST_F(RingHostile, mpsc_header_mutated_by_another_process_while_we_read_and_write) {
    run_mutated(RingKind::mpsc, 3s);
}

TEST_F(RingHostile, broadcast_header_mutated_by_another_process_while_we_read_and_write) {
    run_mutated(RingKind::broadcast, 3s);
}

}  // namespace
