// SPDX-License-Identifier: MIT
// Faults between real processes: a peer killed with SIGKILL in the middle of its work, a
// dead role taken over, a live one refused, a clean close. Every wait is bounded, every
// child is reaped (checked after each test).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "stress_records.hpp"
#include "stress_support.hpp"
#include "xproc/ring.hpp"
#include "xproc/ring_segment.hpp"

namespace {

using namespace std::chrono_literals;
using xproc::AttachOptions;
using xproc::ErrorKind;
using xproc::PeerState;
using xproc::ReadStatus;
using xproc::RingConfig;
using xproc::RingConsumer;
using xproc::RingKind;
using xproc::RingSegment;
using xproc::WriteStatus;
using xproc::stress::Clock;
using xproc::stress::Peer;
using xproc::stress::ShmName;
using xproc::stress::StreamChecker;

constexpr std::uint64_t CAPACITY = 64 * 1024;
constexpr std::uint32_t MAX_RECORD = 1024;
constexpr std::uint64_t SEED = 1;  // ring_peer's default seed
constexpr auto LIVENESS = 50ms;
/// How late a death may be noticed: one liveness interval, plus slack for a loaded machine
/// (CI runs tests in parallel, sanitizers slow everything down).
constexpr auto NOTICE_LIMIT = 1s;

class RingFault : public testing::Test {
  protected:
    void TearDown() override { xproc::stress::expect_no_children(); }
};

RingSegment make_ring(const ShmName& name, RingKind kind) {
    RingConfig config;
    config.capacity = CAPACITY;
    config.max_record = MAX_RECORD;
    config.kind = kind;
    auto seg = RingSegment::create(name.str(), config);
    EXPECT_TRUE(seg.has_value()) << seg.error().message();
    return std::move(seg.value());
}

AttachOptions fast_liveness() {
    AttachOptions o;
    o.wait.liveness_interval = LIVENESS;
    return o;
}

double ms(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

/// Sends SIGKILL to `pid` after `delay`, from another thread; the test reaps it later.
class DelayedKill {
  public:
    DelayedKill(pid_t pid, Clock::duration delay)
        : m_thread([this, pid, delay] {
              std::this_thread::sleep_for(delay);
              m_when.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
              ::kill(pid, SIGKILL);
          }) {}
    ~DelayedKill() { join(); }
    /// When the signal was sent (joins first).
    Clock::time_point when() {
        join();
        return Clock::time_point(Clock::duration(m_when.load(std::memory_order_acquire)));
    }

  private:
    void join() {
        if (m_thread.joinable()) {
            m_thread.join();
        }
    }
    std::atomic<Clock::rep> m_when{0};
    std::thread m_thread;
};

/// Reads with wait + poll until `want` records passed `checker` or wait says something
/// else than ok; returns that status (ok when `want` was reached).
ReadStatus drain(RingConsumer& c, StreamChecker& checker, std::uint64_t want, xproc::Timeout timeout) {
    while (checker.total() < want) {
        auto st = c.wait(timeout);
        EXPECT_TRUE(st.has_value()) << st.error().message();
        if (!st || *st != ReadStatus::ok) {
            return st ? *st : ReadStatus::empty;
        }
        auto n = c.poll(
            [&](std::span<const std::byte> got) { EXPECT_TRUE(checker.check(got)) << checker.error(); },
            want - checker.total());
        EXPECT_TRUE(n.has_value()) << n.error().message();
        if (!n) {
            return ReadStatus::empty;
        }
    }
    return ReadStatus::ok;
}

TEST_F(RingFault, producer_killed_mid_claim_is_reported_to_a_waiting_consumer_within_the_liveness_interval) {
    ShmName name("kill-producer-waiting");
    RingSegment seg = make_ring(name, RingKind::spsc);
    auto c = seg.consumer(fast_liveness());
    ASSERT_TRUE(c.has_value()) << c.error().message();
    // It commits 500 records, claims a max_record record, writes half of it and stops.
    Peer producer({"half", name.str(), "count=500"});
    ASSERT_TRUE(producer.wait_for("ready")) << producer.output();
    StreamChecker checker(SEED, 1, MAX_RECORD);
    ASSERT_EQ(drain(*c, checker, 500, 5s), ReadStatus::ok);
    EXPECT_EQ(c->producer_state(), PeerState::alive);
    // Killed while we wait (not reaped: a zombie is dead too).
    DelayedKill kill(producer.pid(), 100ms);
    auto st = c->wait(10s);
    const auto noticed = Clock::now();
    ASSERT_TRUE(st.has_value()) << st.error().message();
    EXPECT_EQ(*st, ReadStatus::peer_gone);
    const auto late = noticed - kill.when();
    EXPECT_LT(late, NOTICE_LIMIT) << ms(late) << " ms";
    std::printf("[   stats  ] producer death noticed %.1f ms after SIGKILL (liveness interval %lld ms)\n",
                ms(late), static_cast<long long>(LIVENESS.count()));
    producer.kill_and_reap();
    EXPECT_EQ(c->producer_state(), PeerState::dead);
    // The half-written record was never published.
    std::vector<std::byte> buf(MAX_RECORD);
    auto r = c->read(buf, xproc::NO_WAIT);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, ReadStatus::peer_gone);
    auto problems = xproc::check_ring(seg.memory());
    ASSERT_TRUE(problems.has_value());
    EXPECT_TRUE(problems->empty()) << (*problems)[0];
}

TEST_F(RingFault, records_committed_before_the_producer_was_killed_are_all_delivered_then_peer_gone) {
    ShmName name("kill-producer-committed");
    RingSegment seg = make_ring(name, RingKind::spsc);
    auto c = seg.consumer(fast_liveness());
    ASSERT_TRUE(c.has_value()) << c.error().message();
    Peer producer({"half", name.str(), "count=800"});
    ASSERT_TRUE(producer.wait_for("ready")) << producer.output();
    StreamChecker checker(SEED, 1, MAX_RECORD);
    ASSERT_EQ(drain(*c, checker, 300, 5s), ReadStatus::ok);
    producer.kill_and_reap();  // dead and reaped before we read the rest
    const auto killed = Clock::now();
    EXPECT_EQ(drain(*c, checker, 800, 5s), ReadStatus::ok);
    EXPECT_EQ(checker.total(), 800u);
    auto st = c->wait(10s);
    ASSERT_TRUE(st.has_value()) << st.error().message();
    EXPECT_EQ(*st, ReadStatus::peer_gone);
    EXPECT_LT(Clock::now() - killed, NOTICE_LIMIT);
}

TEST_F(RingFault, consumer_killed_while_the_producer_blocks_on_a_full_ring_is_peer_gone) {
    ShmName name("kill-consumer");
    RingSegment seg = make_ring(name, RingKind::spsc);
    Peer consumer({"hold", name.str(), "role=consumer"});  // attached, never reads
    ASSERT_TRUE(consumer.wait_for("ready")) << consumer.output();
    auto p = seg.producer(fast_liveness());
    ASSERT_TRUE(p.has_value()) << p.error().message();
    EXPECT_EQ(p->consumer_state(), PeerState::alive);
    const std::vector<std::byte> msg(1000, std::byte{0x5a});
    int written = 0;
    while (p->try_write(msg) == WriteStatus::ok) {
        ++written;
    }
    EXPECT_GT(written, 50);
    DelayedKill kill(consumer.pid(), 100ms);
    const WriteStatus st = p->write(msg, 10s);
    const auto noticed = Clock::now();
    EXPECT_EQ(st, WriteStatus::peer_gone);
    const auto late = noticed - kill.when();
    EXPECT_LT(late, NOTICE_LIMIT) << ms(late) << " ms";
    std::printf("[   stats  ] consumer death noticed %.1f ms after SIGKILL\n", ms(late));
    consumer.kill_and_reap();
    EXPECT_EQ(p->consumer_state(), PeerState::dead);
    EXPECT_EQ(p->try_write(msg), WriteStatus::peer_gone);
}

TEST_F(RingFault, mpsc_producer_killed_mid_record_is_skipped_and_the_live_producer_loses_nothing) {
    ShmName name("kill-mpsc");
    RingSegment seg = make_ring(name, RingKind::mpsc);
    auto c = seg.consumer(fast_liveness());
    ASSERT_TRUE(c.has_value()) << c.error().message();
    // Producer 1 commits 300 records, then claims a record and dies half-way through it.
    Peer doomed({"half", name.str(), "id=1", "count=300"});
    ASSERT_TRUE(doomed.wait_for("ready")) << doomed.output();
    // Producer 0 keeps writing: its records queue up behind the uncommitted one and fill the
    // ring, so it blocks until the dead record is skipped.
    constexpr std::uint64_t LIVE = 100'000;
    Peer live(
        {"produce", name.str(), "id=0", "count=" + std::to_string(LIVE), "api=claim", "liveness_ms=50"});
    live.describe("live mpsc producer");
    ASSERT_TRUE(live.wait_for("ready")) << live.output();
    ASSERT_TRUE(live.signal(SIGUSR1));
    StreamChecker checker(SEED, 2, MAX_RECORD);
    // Everything the doomed producer committed, then nothing: the consumer is held by the
    // uncommitted record of a producer that is still alive.
    EXPECT_EQ(drain(*c, checker, LIVE + 300, 300ms), ReadStatus::empty);
    EXPECT_EQ(checker.next(1), 300u);
    EXPECT_EQ(checker.next(0), 0u);
    auto before = xproc::snapshot_ring(seg.memory());
    ASSERT_TRUE(before.has_value());
    EXPECT_EQ(before->skipped, 0u);
    doomed.kill_and_reap();
    const auto killed = Clock::now();
    auto st = c->wait(10s);
    const auto resumed = Clock::now();
    ASSERT_TRUE(st.has_value()) << st.error().message();
    ASSERT_EQ(*st, ReadStatus::ok);
    EXPECT_LT(resumed - killed, NOTICE_LIMIT) << ms(resumed - killed) << " ms";
    std::printf("[   stats  ] dead mpsc claim skipped %.1f ms after SIGKILL\n", ms(resumed - killed));
    EXPECT_EQ(drain(*c, checker, LIVE + 300, 10s), ReadStatus::ok);
    EXPECT_EQ(checker.next(0), LIVE);
    EXPECT_EQ(checker.next(1), 300u);
    EXPECT_FALSE(live.expect_done(30s).empty());
    auto snap = xproc::snapshot_ring(seg.memory());
    ASSERT_TRUE(snap.has_value());
    EXPECT_EQ(snap->skipped, 1u);
    EXPECT_EQ(snap->messages, LIVE + 300);
    EXPECT_EQ(snap->head, snap->tail);
}

TEST_F(RingFault, a_new_process_takes_over_a_dead_spsc_producer_role_and_continues_the_stream) {
    ShmName name("takeover");
    RingSegment seg = make_ring(name, RingKind::spsc);
    auto c = seg.consumer(fast_liveness());
    ASSERT_TRUE(c.has_value()) << c.error().message();
    Peer first({"half", name.str(), "id=0", "count=100"});
    ASSERT_TRUE(first.wait_for("ready")) << first.output();
    const pid_t first_pid = first.pid();
    first.kill_and_reap();
    auto snap = xproc::snapshot_ring(seg.memory());
    ASSERT_TRUE(snap.has_value());
    EXPECT_EQ(snap->producer.pid, first_pid);
    EXPECT_EQ(snap->producer.state, PeerState::dead);
    // The role of the dead producer is taken over by a new process (id 1: its own sequence).
    Peer second({"write-close", name.str(), "id=1", "count=100"});
    second.describe("second producer");
    ASSERT_TRUE(second.wait_for("closed")) << second.output();
    const auto status = second.wait_exit(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    // Everything the first one committed, then everything of the second, in that order.
    StreamChecker checker(SEED, 2, MAX_RECORD);
    std::uint64_t second_before_first_done = 0;
    while (checker.total() < 200) {
        auto n = c->poll(
            [&](std::span<const std::byte> got) {
                EXPECT_TRUE(checker.check(got)) << checker.error();
                if (xproc::stress::record_producer(got) == 1 && checker.next(0) < 100) {
                    ++second_before_first_done;
                }
            },
            64);
        ASSERT_TRUE(n.has_value()) << n.error().message();
        if (*n == 0) {
            break;
        }
    }
    EXPECT_EQ(checker.next(0), 100u);
    EXPECT_EQ(checker.next(1), 100u);
    EXPECT_EQ(second_before_first_done, 0u);
}

TEST_F(RingFault, a_role_held_by_a_live_process_is_refused_with_ebusy_naming_its_pid) {
    ShmName name("busy");
    RingSegment seg = make_ring(name, RingKind::spsc);
    Peer producer({"hold", name.str(), "role=producer"});
    Peer consumer({"hold", name.str(), "role=consumer"});
    ASSERT_TRUE(producer.wait_for("ready")) << producer.output();
    ASSERT_TRUE(consumer.wait_for("ready")) << consumer.output();
    struct Case {
        const char* role;
        pid_t holder;
        xproc::Result<void> attempt;
    };
    auto as_void = [](auto&& r) -> xproc::Result<void> {
        if (!r) {
            return xproc::fail(std::move(r.error()));
        }
        return {};
    };
    Case cases[] = {{"producer", producer.pid(), as_void(seg.producer())},
                    {"consumer", consumer.pid(), as_void(seg.consumer())}};
    for (auto& k : cases) {
        ASSERT_FALSE(k.attempt.has_value()) << k.role << " role taken from a live holder";
        const xproc::Error& e = k.attempt.error();
        EXPECT_EQ(e.kind, ErrorKind::os) << k.role;
        // ring.hpp: "os/EBUSY (role held by a live process; the message names its pid)".
        EXPECT_EQ(e.errno_value, EBUSY) << k.role << ": " << e.message();
        EXPECT_EQ(e.pid, k.holder) << k.role;
        EXPECT_NE(e.message().find("held by pid " + std::to_string(k.holder)), std::string::npos)
            << e.message();
    }
    // Another process is refused the same way.
    Peer intruder({"write-close", name.str(), "count=1"});
    EXPECT_FALSE(intruder.wait_for("closed", 10s));
    EXPECT_NE(intruder.output().find("held by pid " + std::to_string(producer.pid())), std::string::npos)
        << intruder.output();
    const auto status = intruder.wait_exit(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
}

TEST_F(RingFault, a_producer_that_closed_cleanly_has_left_and_the_consumer_keeps_waiting) {
    ShmName name("left");
    RingSegment seg = make_ring(name, RingKind::spsc);
    auto c = seg.consumer(fast_liveness());
    ASSERT_TRUE(c.has_value()) << c.error().message();
    Peer first({"write-close", name.str(), "id=0", "count=200"});
    ASSERT_TRUE(first.wait_for("closed")) << first.output();
    const auto status = first.wait_exit(10s);  // gone entirely, after closing
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    StreamChecker checker(SEED, 2, MAX_RECORD);
    EXPECT_EQ(drain(*c, checker, 200, 5s), ReadStatus::ok);
    EXPECT_EQ(c->producer_state(), PeerState::none);
    // Several liveness intervals: still waiting for a producer, not peer_gone.
    const auto start = Clock::now();
    auto st = c->wait(8 * LIVENESS);
    ASSERT_TRUE(st.has_value()) << st.error().message();
    EXPECT_EQ(*st, ReadStatus::empty);
    EXPECT_GE(Clock::now() - start, 8 * LIVENESS);
    // The next producer is read from where the first stopped.
    Peer second({"write-close", name.str(), "id=1", "count=50"});
    ASSERT_TRUE(second.wait_for("closed")) << second.output();
    EXPECT_EQ(drain(*c, checker, 250, 5s), ReadStatus::ok);
    EXPECT_EQ(checker.next(1), 50u);
    EXPECT_TRUE(second.wait_exit(10s).has_value());
}

/// fork() after the ring was created (a server that prepares its ring, then forks a worker):
/// the child is a process of its own and must be seen as alive while it runs.
TEST_F(RingFault, a_producer_forked_after_the_ring_was_created_is_alive_not_dead) {
    ShmName name("forked");
    RingSegment seg = make_ring(name, RingKind::spsc);
    auto c = seg.consumer(fast_liveness());
    ASSERT_TRUE(c.has_value()) << c.error().message();
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(ready[0]);
        auto p = seg.producer();
        const char ok =
            p.has_value() && p->write(std::as_bytes(std::span("hello", 5))) == WriteStatus::ok ? 1 : 0;
        (void)!::write(ready[1], &ok, 1);
        ::pause();  // holds the role until killed
        ::_exit(0);
    }
    ::close(ready[1]);
    char ok = 0;
    EXPECT_EQ(::read(ready[0], &ok, 1), 1);
    ::close(ready[0]);
    EXPECT_EQ(ok, 1);
    std::vector<std::byte> buf(64);
    auto r = c->read(buf, 5s);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, ReadStatus::ok);
    // Alive: its start time is its own, not the parent's (which created the ring).
    EXPECT_EQ(c->producer_state(), PeerState::alive);
    auto st = c->wait(6 * LIVENESS);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(*st, ReadStatus::empty);  // not peer_gone
    auto snap = xproc::snapshot_ring(seg.memory());
    ASSERT_TRUE(snap.has_value());
    EXPECT_EQ(snap->producer.pid, child);
    EXPECT_EQ(snap->producer.state, PeerState::alive);
    // So its role is not up for grabs: a second producer on an SPSC ring would corrupt it.
    auto second = seg.producer();
    EXPECT_FALSE(second.has_value()) << "took the producer role from a live process";
    if (second) {
        second->close();
    }
    ::kill(child, SIGKILL);
    int status = 0;
    EXPECT_EQ(::waitpid(child, &status, 0), child);
}

}  // namespace
