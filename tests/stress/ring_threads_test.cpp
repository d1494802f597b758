// SPDX-License-Identifier: MIT
// The ring's many-to-one and broadcast scenarios with threads in one process, so that
// ThreadSanitizer can check them (RingStress does the same across processes, which TSan
// cannot see). Records are those of stress_records.hpp: random sizes, a sequence number
// per producer and a checksum, every one checked by the consumer.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "stress_records.hpp"
#include "stress_support.hpp"
#include "xproc/ring.hpp"

namespace {

using namespace std::chrono_literals;
using xproc::AttachOptions;
using xproc::ReadStatus;
using xproc::RingConsumer;
using xproc::RingKind;
using xproc::RingProducer;
using xproc::WriteStatus;
using xproc::stress::Clock;
using xproc::stress::scaled;

constexpr std::uint64_t SEED = 77;

/// A 128-byte aligned block of memory holding a ring (threads need no shared mapping).
class Memory {
  public:
    explicit Memory(std::uint64_t capacity) : m_lines((xproc::ring_segment_size(capacity) + 127) / 128) {}
    std::span<std::byte> bytes() {
        return {reinterpret_cast<std::byte*>(m_lines.data()), m_lines.size() * 128};
    }

  private:
    struct alignas(128) Line {
        std::byte b[128];
    };
    std::vector<Line> m_lines;
};

AttachOptions blocking() {
    AttachOptions o;
    o.wait.spin = std::chrono::microseconds(5);  // sleep soon: exercise futex sleeps and wake-ups
    o.wait.liveness_interval = 100ms;
    return o;
}

/// The first failure of any thread (threads must not ASSERT).
class Failures {
  public:
    void add(const std::string& what) {
        std::lock_guard lock(m_mutex);
        if (m_first.empty()) {
            m_first = what;
        }
        m_failed.store(true, std::memory_order_relaxed);
    }
    bool any() const { return m_failed.load(std::memory_order_relaxed); }
    std::string first() {
        std::lock_guard lock(m_mutex);
        return m_first;
    }

  private:
    std::mutex m_mutex;
    std::string m_first;
    std::atomic<bool> m_failed{false};
};

/// Writes records [0, count) of producer `id`; zero-copy or copy API.
void produce(RingProducer& p, std::uint32_t id, std::uint64_t count, bool zero_copy, Failures& failures,
             std::size_t min_length = 1) {
    std::uint64_t rng = xproc::stress::mix64(SEED ^ (std::uint64_t{id} << 40));
    std::vector<std::byte> buffer(p.max_record());
    for (std::uint64_t seq = 0; seq < count && !failures.any(); ++seq) {
        const std::size_t len = xproc::stress::record_length(SEED, id, seq, p.max_record(), min_length);
        if (zero_copy) {
            const std::size_t want = seq % 97 == 0 ? std::min<std::size_t>(p.max_record(), len + 40) : len;
            const xproc::Claim c = p.claim(want, 10s);
            if (c.status != WriteStatus::ok) {
                failures.add("producer " + std::to_string(id) + " claim of record " + std::to_string(seq) +
                             ": " + std::string(xproc::to_string(c.status)));
                return;
            }
            xproc::stress::fill_record(id, seq, c.buffer.first(len), rng);
            p.commit(len);
        } else {
            xproc::stress::fill_record(id, seq, std::span<std::byte>(buffer.data(), len), rng);
            const WriteStatus st = p.write(std::span<const std::byte>(buffer.data(), len), 10s);
            if (st != WriteStatus::ok) {
                failures.add("producer " + std::to_string(id) + " write of record " + std::to_string(seq) +
                             ": " + std::string(xproc::to_string(st)));
                return;
            }
        }
    }
}

TEST(RingThreads, mpsc_four_producer_threads_keep_per_producer_order_and_counts) {
    constexpr std::uint64_t CAPACITY = 64 * 1024;
    constexpr std::uint32_t MAX = 1024;
    constexpr std::uint32_t PRODUCERS = 4;
#if defined(XPROC_STRESS_TSAN)
    const std::uint64_t count = scaled(0, 40'000);
#else
    const std::uint64_t count = scaled(2'000'000, 200'000);
#endif
    Memory mem(CAPACITY);
    ASSERT_TRUE(xproc::format_ring(mem.bytes(), CAPACITY, MAX, RingKind::mpsc).has_value());
    auto c = RingConsumer::attach(mem.bytes(), blocking());
    ASSERT_TRUE(c.has_value()) << c.error().message();
    Failures failures;
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (std::uint32_t id = 0; id < PRODUCERS; ++id) {
        threads.emplace_back([&, id] {
            auto p = RingProducer::attach(mem.bytes(), blocking());
            if (!p) {
                failures.add("attach producer: " + p.error().message());
                return;
            }
            while (!go.load(std::memory_order_acquire)) {
                std::this_thread::yield();
            }
            produce(*p, id, count, id % 2 == 0, failures);
        });
    }
    xproc::stress::StreamChecker checker(SEED, PRODUCERS, MAX);
    const auto start = Clock::now();
    go.store(true, std::memory_order_release);
    while (checker.total() < count * PRODUCERS && !failures.any()) {
        auto st = c->wait(10s);
        if (!st || *st != ReadStatus::ok) {
            failures.add("consumer wait after " + std::to_string(checker.total()) +
                         " records: " + (st ? std::string(xproc::to_string(*st)) : st.error().message()));
            break;
        }
        auto n = c->poll(
            [&](std::span<const std::byte> got) {
                if (!checker.check(got)) {
                    failures.add(checker.error());
                }
            },
            256);
        if (!n) {
            failures.add("poll: " + n.error().message());
        }
    }
    for (auto& t : threads) {
        t.join();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    ASSERT_FALSE(failures.any()) << failures.first();
    EXPECT_EQ(checker.total(), count * PRODUCERS);
    for (std::uint32_t id = 0; id < PRODUCERS; ++id) {
        EXPECT_EQ(checker.next(id), count) << "producer " << id;
    }
    auto snap = xproc::snapshot_ring(mem.bytes());
    ASSERT_TRUE(snap.has_value());
    EXPECT_EQ(snap->messages, count * PRODUCERS);
    EXPECT_EQ(snap->skipped, 0u);
    std::printf(
        "[   stats  ] mpsc 4 threads: %llu records in %.2f s; full_waits %llu empty_waits %llu wakeups "
        "%llu/%llu\n",
        static_cast<unsigned long long>(checker.total()), seconds,
        static_cast<unsigned long long>(snap->full_waits), static_cast<unsigned long long>(snap->empty_waits),
        static_cast<unsigned long long>(snap->producer_wakeups),
        static_cast<unsigned long long>(snap->consumer_wakeups));
}

/// What a broadcast reader thread saw.
struct ReaderResult {
    std::uint64_t received = 0;
    std::uint64_t laps = 0;
    std::uint64_t naps = 0;
};

TEST(RingThreads, broadcast_three_reader_threads_fast_ones_see_everything_slow_one_lapped_cleanly) {
    constexpr std::uint64_t CAPACITY = 64 * 1024;
    constexpr std::uint32_t MAX = 1024;
    constexpr std::size_t MIN = xproc::stress::TAGGED_MIN;  // every record names its sequence number
    constexpr int READERS = 3;                              // 0 and 1 fast, 2 slow
#if defined(XPROC_STRESS_TSAN)
    // Under TSan the writer waits for the slow reader too: it is never lapped. Lapping is a
    // benign seqlock race (the reader copies bytes the writer is overwriting, then finds
    // out from write_limit and discards them) that TSan would report as a data race.
    constexpr bool LAPPING = false;
    const std::uint64_t count = scaled(0, 100'000);
#else
    constexpr bool LAPPING = true;
    const std::uint64_t count = scaled(3'000'000, 300'000);
#endif
    Memory mem(CAPACITY);
    auto w = RingProducer::create(mem.bytes(), CAPACITY, MAX, RingKind::broadcast, blocking());
    ASSERT_TRUE(w.has_value()) << w.error().message();
    Failures failures;
    // Flow control of the test (the ring's writer never waits): each reader publishes the
    // position it has finished reading; the writer does not overwrite past the slowest
    // paced reader's position. release/acquire: the reader's copies of the records happen
    // before the writer overwrites them.
    std::atomic<std::uint64_t> progress[READERS];
    std::atomic<int> attached{0};
    for (auto& p : progress) {
        p.store(0);
    }
    ReaderResult results[READERS];
    std::vector<std::thread> readers;
    for (int r = 0; r < READERS; ++r) {
        readers.emplace_back([&, r] {
            const bool slow = r == 2;
            auto c = RingConsumer::attach(mem.bytes(), blocking());
            if (!c) {
                failures.add("attach reader: " + c.error().message());
                attached.fetch_add(1);
                return;
            }
            attached.fetch_add(1);
            ReaderResult& res = results[r];
            std::uint64_t next = 0;
            bool after_lap = false;
            std::uint64_t rng = xproc::stress::mix64(SEED + static_cast<std::uint64_t>(r));
            std::uint64_t nap_at = 512;
            auto nap = [&] {
                rng = xproc::stress::mix64(rng);
                ++res.naps;
                nap_at = res.received + 256 + rng % 512;
                std::this_thread::sleep_for(std::chrono::microseconds(500 + rng % 3000));
            };
            auto on_record = [&](std::span<const std::byte> got) {
                std::uint64_t seq = next;
                if (after_lap && !xproc::stress::tagged_seq(got, 0, seq)) {
                    failures.add("reader " + std::to_string(r) + ": garbage after a lap");
                    return;
                }
                if (seq < next) {
                    failures.add("reader " + std::to_string(r) + ": went back to seq " + std::to_string(seq));
                    return;
                }
                if (const char* why = xproc::stress::check_record(SEED, 0, seq, MAX, got, MIN)) {
                    failures.add("reader " + std::to_string(r) + " record " + std::to_string(res.received) +
                                 " (expected seq " + std::to_string(seq) + "): " + why);
                    return;
                }
                after_lap = false;
                next = seq + 1;
                ++res.received;
                if (slow && res.received >= nap_at && res.naps % 2 == 0) {
                    nap();  // in the middle of a batch
                }
            };
            bool writer_seen = false;
            const auto deadline = Clock::now() + 120s;
            while (!c->saw_end_of_stream() && !failures.any()) {
                if (Clock::now() > deadline) {
                    failures.add("reader " + std::to_string(r) + ": no end of stream");
                    break;
                }
                if (c->producer_state() == xproc::PeerState::alive) {
                    writer_seen = true;
                }
                if (slow && res.received >= nap_at && res.naps % 2 == 1) {
                    nap();  // caught up, between batches
                }
                auto st = c->wait(slow ? xproc::Timeout(200ms) : xproc::Timeout(10s));
                if (!st) {
                    failures.add("reader " + std::to_string(r) + " wait after " +
                                 std::to_string(res.received) + " records, " + std::to_string(res.laps) +
                                 " laps: " + st.error().message());
                    break;
                }
                if (*st == ReadStatus::empty && slow && writer_seen &&
                    c->producer_state() == xproc::PeerState::none) {
                    break;  // lapped past the end of stream and the writer has closed
                }
                if (*st != ReadStatus::ok) {
                    failures.add("reader " + std::to_string(r) +
                                 " wait: " + std::string(xproc::to_string(*st)));
                    break;
                }
                auto n = c->poll(on_record, 64);
                if (!n) {
                    failures.add("reader " + std::to_string(r) + " poll: " + n.error().message());
                    break;
                }
                if (c->take_lapped() != 0) {
                    if (!slow || !LAPPING) {
                        failures.add("reader " + std::to_string(r) + " was lapped");
                        break;
                    }
                    ++res.laps;
                    after_lap = true;
                }
                progress[r].store(c->head(), std::memory_order_release);
            }
            progress[r].store(UINT64_MAX / 2, std::memory_order_release);  // done: do not pace on it
        });
    }
    while (attached.load() < READERS) {
        std::this_thread::yield();
    }
    const int paced = LAPPING ? 2 : 3;
    const std::uint64_t margin = 2 * xproc::ring::record_size(MAX);
    std::uint64_t rng = xproc::stress::mix64(SEED);
    const auto start = Clock::now();
    for (std::uint64_t seq = 0; seq < count && !failures.any(); ++seq) {
        const std::size_t len = xproc::stress::record_length(SEED, 0, seq, MAX, MIN);
        const auto deadline = Clock::now() + 10s;
        for (;;) {
            std::uint64_t lowest = UINT64_MAX;
            for (int r = 0; r < paced; ++r) {
                lowest = std::min(lowest, progress[r].load(std::memory_order_acquire));
            }
            if (w->tail() + margin <= lowest + CAPACITY || failures.any()) {
                break;
            }
            if (Clock::now() > deadline) {
                failures.add("the paced readers did not move for 10 s");
                break;
            }
            std::this_thread::yield();
        }
        const xproc::Claim c = w->claim(len);
        ASSERT_EQ(c.status, WriteStatus::ok);
        xproc::stress::fill_record(0, seq, c.buffer, rng);
        w->commit(len);
    }
    EXPECT_EQ(w->write_end_of_stream(), WriteStatus::ok);
    w->close();
    for (auto& t : readers) {
        t.join();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    ASSERT_FALSE(failures.any()) << failures.first();
    EXPECT_EQ(results[0].received, count);
    EXPECT_EQ(results[1].received, count);
    if (LAPPING) {
        EXPECT_GT(results[2].laps, 0u) << "the slow reader was never lapped";
        EXPECT_LT(results[2].received, count);
    } else {
        EXPECT_EQ(results[2].received, count);
    }
    std::printf(
        "[   stats  ] broadcast 3 threads: %llu records in %.2f s; slow reader: %llu records, %llu laps, "
        "%llu naps\n",
        static_cast<unsigned long long>(count), seconds, static_cast<unsigned long long>(results[2].received),
        static_cast<unsigned long long>(results[2].laps), static_cast<unsigned long long>(results[2].naps));
}

}  // namespace
