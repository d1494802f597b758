// SPDX-License-Identifier: MIT
// Cross-process stress of the ring: producer and consumer PROCESSES (tests/targets/ring_peer)
// on a named segment, moving records of random sizes, each checked by the consumer
// (length, sequence number per producer, checksum): no loss, no reorder, no corruption.
// The ring is small (64 KiB) and the waits are adaptive with a short spin, so both sides
// fill/drain it and sleep in futex and wake each other many times.
//
// Suite RingStress is not run under ThreadSanitizer (TSan does not see across processes);
// the same scenarios with threads are RingThreads (ring_threads_test.cpp).
#include <gtest/gtest.h>

#include <signal.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "stress_records.hpp"
#include "stress_support.hpp"
#include "xproc/ring.hpp"
#include "xproc/ring_segment.hpp"

namespace {

using namespace std::chrono_literals;
using xproc::RingConfig;
using xproc::RingKind;
using xproc::RingSegment;
using xproc::stress::Clock;
using xproc::stress::num;
using xproc::stress::Peer;
using xproc::stress::scaled;
using xproc::stress::ShmName;

constexpr std::uint64_t CAPACITY = 64 * 1024;
/// Largest record: most records are 1..64 bytes, one in 64 anywhere up to this, one in
/// 1024 exactly this (see stress_records.hpp).
constexpr std::uint32_t MAX_RECORD = 1024;
/// A short spin so that waiting sides really sleep in futex(2) and are woken.
constexpr const char* SPIN = "spin_us=5";

#if defined(XPROC_STRESS_SANITIZED)
constexpr auto RUN_LIMIT = 150s;
#else
constexpr auto RUN_LIMIT = 200s;
#endif

/// Every test must leave no child process behind.
class RingStress : public testing::Test {
  protected:
    void TearDown() override { xproc::stress::expect_no_children(); }
};

std::string seed_arg() {
    const char* s = std::getenv("XPROC_STRESS_SEED");
    return std::string("seed=") + (s != nullptr && *s != '\0' ? s : "20240611");
}

RingSegment make_ring(const ShmName& name, RingKind kind) {
    RingConfig config;
    config.capacity = CAPACITY;
    config.max_record = MAX_RECORD;
    config.kind = kind;
    auto seg = RingSegment::create(name.str(), config);
    EXPECT_TRUE(seg.has_value()) << seg.error().message();
    return std::move(seg.value());
}

void report(const char* test, std::uint64_t records, double seconds, const xproc::RingSnapshot& s) {
    std::printf(
        "[   stats  ] %s: %llu records in %.2f s (%.1f M records/s); full_waits %llu empty_waits %llu "
        "producer_wakeups %llu consumer_wakeups %llu\n",
        test, static_cast<unsigned long long>(records), seconds, static_cast<double>(records) / seconds / 1e6,
        static_cast<unsigned long long>(s.full_waits), static_cast<unsigned long long>(s.empty_waits),
        static_cast<unsigned long long>(s.producer_wakeups),
        static_cast<unsigned long long>(s.consumer_wakeups));
    std::fflush(stdout);
    testing::Test::RecordProperty("records", std::to_string(records));
    testing::Test::RecordProperty("seconds", std::to_string(seconds));
}

/// One producer process and one consumer process on an SPSC ring.
/// `slip`: both sides' set_slip() bytes (0: off).
void run_spsc(const char* test, const char* produce_api, const char* consume_api, std::uint64_t count,
              std::uint64_t slip = 0) {
    ShmName name(test);
    RingSegment seg = make_ring(name, RingKind::spsc);
    const std::string n = "count=" + std::to_string(count);
    Peer consumer({"consume", name.str(), n, seed_arg(), std::string("api=") + consume_api, SPIN,
                   "slip=" + std::to_string(slip)});
    consumer.describe("consumer");
    ASSERT_TRUE(consumer.wait_for("ready")) << consumer.output();
    Peer producer({"produce", name.str(), n, seed_arg(), std::string("api=") + produce_api, SPIN,
                   "slip=" + std::to_string(slip)});
    producer.describe("producer");
    ASSERT_TRUE(producer.wait_for("ready")) << producer.output();
    const auto start = Clock::now();
    ASSERT_TRUE(consumer.signal(SIGUSR1));
    ASSERT_TRUE(producer.signal(SIGUSR1));
    const auto produced = producer.expect_done(RUN_LIMIT);
    const auto consumed = consumer.expect_done(RUN_LIMIT);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    ASSERT_FALSE(produced.empty());
    ASSERT_FALSE(consumed.empty());
    EXPECT_EQ(num(consumed, "records"), static_cast<double>(count));
    auto snap = xproc::snapshot_ring(seg.memory());
    ASSERT_TRUE(snap.has_value()) << snap.error().message();
    EXPECT_EQ(snap->messages, count);
    EXPECT_EQ(snap->head, snap->tail);
    EXPECT_EQ(snap->dropped, 0u);
    // Both sides had to wait (the ring is small), and sleepers were woken.
    EXPECT_GT(snap->full_waits, 0u);
    EXPECT_GT(snap->empty_waits, 0u);
    EXPECT_GT(snap->producer_wakeups + snap->consumer_wakeups, 0u);
    auto problems = xproc::check_ring(seg.memory());
    ASSERT_TRUE(problems.has_value()) << problems.error().message();
    EXPECT_TRUE(problems->empty()) << (*problems)[0];
    report(test, count, seconds, *snap);
}

TEST_F(RingStress, spsc_zero_copy_moves_100m_random_records_between_processes_intact) {
    run_spsc("spsc-zero-copy", "claim", "poll", scaled(100'000'000, 8'000'000));
}

TEST_F(RingStress, spsc_copy_api_moves_random_records_between_processes_intact) {
    run_spsc("spsc-copy", "copy", "read", scaled(30'000'000, 3'000'000));
}

/// The same with slipping sides (set_slip: the consumer stays up to 16 KiB behind once it
/// caught up, the producer re-reads a full ring only once 16 KiB more is free), through the
/// zero-copy and the copy API.
TEST_F(RingStress, spsc_slipping_sides_move_random_records_between_processes_intact) {
    run_spsc("spsc-slip-poll", "claim", "poll", scaled(20'000'000, 2'000'000), 16384);
    run_spsc("spsc-slip-read", "copy", "read", scaled(10'000'000, 1'000'000), 16384);
}

TEST_F(RingStress, mpsc_four_producer_processes_keep_per_producer_order_and_counts) {
    constexpr int PRODUCERS = 4;
    const std::uint64_t count = scaled(5'000'000, 500'000);  // per producer
    ShmName name("mpsc");
    RingSegment seg = make_ring(name, RingKind::mpsc);
    const std::string n = "count=" + std::to_string(count);
    Peer consumer({"consume", name.str(), n, "producers=4", seed_arg(), "api=poll", SPIN});
    consumer.describe("mpsc consumer");
    ASSERT_TRUE(consumer.wait_for("ready")) << consumer.output();
    std::vector<std::unique_ptr<Peer>> producers;
    for (int id = 0; id < PRODUCERS; ++id) {
        // Two use claim/commit (with shortened commits now and then), two the copy API.
        producers.push_back(std::make_unique<Peer>(
            std::vector<std::string>{"produce", name.str(), "id=" + std::to_string(id), n, seed_arg(),
                                     id % 2 == 0 ? "api=claim" : "api=copy", SPIN}));
        producers.back()->describe("mpsc producer " + std::to_string(id));
        ASSERT_TRUE(producers.back()->wait_for("ready")) << producers.back()->output();
    }
    const auto start = Clock::now();
    ASSERT_TRUE(consumer.signal(SIGUSR1));
    for (auto& p : producers) {
        ASSERT_TRUE(p->signal(SIGUSR1));
    }
    for (auto& p : producers) {
        EXPECT_FALSE(p->expect_done(RUN_LIMIT).empty());
    }
    const auto consumed = consumer.expect_done(RUN_LIMIT);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    ASSERT_FALSE(consumed.empty());
    EXPECT_EQ(num(consumed, "records"), static_cast<double>(count * PRODUCERS));
    auto snap = xproc::snapshot_ring(seg.memory());
    ASSERT_TRUE(snap.has_value()) << snap.error().message();
    EXPECT_EQ(snap->messages, count * PRODUCERS);
    EXPECT_EQ(snap->skipped, 0u);  // nobody died
    EXPECT_EQ(snap->head, snap->tail);
    EXPECT_GT(snap->full_waits, 0u);
    EXPECT_GT(snap->empty_waits, 0u);
    report("mpsc-4-producers", count * PRODUCERS, seconds, *snap);
}

/// One broadcast writer, two fast readers (one polls, one reads) and one slow reader that
/// naps now and then. The writer is paced by the fast readers only, so they see every
/// record in order; the slow one is lapped, told so, and sees intact records in order
/// between laps.
void run_broadcast(const char* test, std::uint64_t count) {
    ShmName name(test);
    RingSegment seg = make_ring(name, RingKind::broadcast);
    const std::string n = "count=" + std::to_string(count);
    Peer fast_poll({"bread", name.str(), n, seed_arg(), "speed=fast", "api=poll", SPIN});
    Peer fast_read({"bread", name.str(), n, seed_arg(), "speed=fast", "api=read", SPIN});
    Peer slow({"bread", name.str(), n, seed_arg(), "speed=slow", "api=poll", SPIN});
    fast_poll.describe("fast reader (poll)");
    fast_read.describe("fast reader (read)");
    slow.describe("slow reader");
    ASSERT_TRUE(fast_poll.wait_for("ready")) << fast_poll.output();
    ASSERT_TRUE(fast_read.wait_for("ready")) << fast_read.output();
    ASSERT_TRUE(slow.wait_for("ready")) << slow.output();
    Peer writer({"bwrite", name.str(), n, seed_arg(),
                 "fast=" + std::to_string(fast_poll.pid()) + "," + std::to_string(fast_read.pid()), SPIN});
    writer.describe("broadcast writer");
    ASSERT_TRUE(writer.wait_for("ready")) << writer.output();
    const auto start = Clock::now();
    ASSERT_TRUE(writer.signal(SIGUSR1));
    const auto wrote = writer.expect_done(RUN_LIMIT);
    const auto got_poll = fast_poll.expect_done(RUN_LIMIT);
    const auto got_read = fast_read.expect_done(RUN_LIMIT);
    const auto got_slow = slow.expect_done(RUN_LIMIT);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    ASSERT_FALSE(wrote.empty());
    EXPECT_EQ(num(got_poll, "records"), static_cast<double>(count));
    EXPECT_EQ(num(got_poll, "laps"), 0.0);
    EXPECT_EQ(num(got_read, "records"), static_cast<double>(count));
    EXPECT_EQ(num(got_read, "laps"), 0.0);
    ASSERT_FALSE(got_slow.empty());
    EXPECT_GT(num(got_slow, "laps"), 0.0) << "the slow reader was never lapped";
    EXPECT_GT(num(got_slow, "records"), 0.0);
    EXPECT_LT(num(got_slow, "records"), static_cast<double>(count));
    auto snap = xproc::snapshot_ring(seg.memory());
    ASSERT_TRUE(snap.has_value()) << snap.error().message();
    EXPECT_EQ(snap->messages, count);
    EXPECT_EQ(static_cast<double>(snap->lapped), num(got_slow, "laps"));
    std::printf(
        "[   stats  ] %s: slow reader saw %.0f records, %.0f laps (%.0f bytes lost), napped %.0f times; "
        "the writer waited for the fast readers %.0f times\n",
        test, num(got_slow, "records"), num(got_slow, "laps"), num(got_slow, "lost_bytes"),
        num(got_slow, "naps"), num(wrote, "throttled"));
    report(test, count, seconds, *snap);
}

TEST_F(RingStress, broadcast_fast_reader_processes_see_everything_and_a_slow_one_is_lapped_cleanly) {
    run_broadcast("broadcast", scaled(10'000'000, 1'000'000));
}

}  // namespace
