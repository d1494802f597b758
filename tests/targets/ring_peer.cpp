// SPDX-License-Identifier: MIT
// A ring peer driven by argv, for the cross-process ring tests (tests/stress/):
//
//   ring_peer MODE NAME [key=value...]
//
//   produce      writes `count` records (producer `id`) to the SPSC or MPSC ring NAME
//                (api=claim: claim/commit, sometimes claiming more than it commits;
//                api=copy: write)
//   consume      reads `producers` x `count` records and checks each one: length, sequence
//                number per producer, checksum (api=poll: wait + poll; api=read: read)
//   bwrite       broadcast writer of `count` records then end-of-stream; it does not let the
//                readers whose pids are listed in `fast=PID,PID` fall a lap behind (a
//                test-level flow control: the ring's writer itself never waits)
//   bread        broadcast reader (speed=fast: must see every record in order;
//                speed=slow: sleeps now and then, must be lapped, and between laps sees
//                records in order with valid checksums)
//   half         commits `count` records, then claims a max_record record, writes half of
//                it, prints "ready" and waits to be killed
//   hold         takes role=producer|consumer, prints "ready" and waits to be killed
//   write-close  writes `count` records, closes the producer cleanly, prints "closed", exits
//
// Common keys: id=0 count=0 seed=1 api spin_us=50 liveness_ms=100 timeout_ms=10000 min=1
// (shortest record), slip=0 (set_slip bytes of the consumer or SPSC producer), sync=1 (after "ready", wait
// for SIGUSR1 before starting, so the test releases every peer together). Prints "ready" once attached, then
// one final line: "done key=value..." (exit 0) or "FAIL reason" (exit 1). A watchdog (alarm) ends a peer that
// runs for more than `watchdog_s` (default 300) seconds: nothing hangs.
#include <signal.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "../stress/stress_records.hpp"
#include "xproc/ring.hpp"
#include "xproc/ring_segment.hpp"

namespace {

using namespace std::chrono_literals;
using xproc::stress::check_record;
using xproc::stress::fill_record;
using xproc::stress::record_length;
using xproc::stress::record_producer;

using Clock = std::chrono::steady_clock;

std::map<std::string, std::string> g_args;

std::uint64_t arg(const char* key, std::uint64_t fallback = 0) {
    auto it = g_args.find(key);
    return it == g_args.end() ? fallback : std::strtoull(it->second.c_str(), nullptr, 0);
}

std::string text_arg(const char* key, const char* fallback) {
    auto it = g_args.find(key);
    return it == g_args.end() ? std::string(fallback) : it->second;
}

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* format, ...) {
    std::printf("FAIL ");
    va_list ap;
    va_start(ap, format);
    std::vprintf(format, ap);
    va_end(ap);
    std::printf("\n");
    std::fflush(stdout);
    std::_Exit(1);
}

void say(const char* line) {
    std::printf("%s\n", line);
    std::fflush(stdout);
}

/// After "ready": waits for the test's SIGUSR1 (blocked in main) when sync=1.
void start_barrier() {
    say("ready");
    if (arg("sync", 1) == 0) {
        return;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    const struct timespec limit = {30, 0};
    if (sigtimedwait(&set, nullptr, &limit) != SIGUSR1) {
        fail("no start signal within 30 s");
    }
}

[[noreturn]] void wait_to_be_killed() {
    for (;;) {
        ::pause();
    }
}

xproc::AttachOptions options() {
    xproc::AttachOptions o;
    o.wait.spin = std::chrono::microseconds(arg("spin_us", 50));
    o.wait.liveness_interval = std::chrono::milliseconds(arg("liveness_ms", 100));
    return o;
}

xproc::Timeout op_timeout() {
    return std::chrono::milliseconds(arg("timeout_ms", 10000));
}

xproc::RingSegment open_segment(const std::string& name) {
    auto seg = xproc::RingSegment::open(name);
    if (!seg) {
        fail("open %s: %s", name.c_str(), seg.error().message().c_str());
    }
    return std::move(*seg);
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Writes records [0, count) of producer `id` with the chosen API.
void produce_records(xproc::RingProducer& p, std::uint32_t id, std::uint64_t count) {
    const std::uint64_t seed = arg("seed", 1);
    const std::size_t min = arg("min", 1);
    const bool zero_copy = text_arg("api", "claim") == "claim";
    const xproc::Timeout timeout = op_timeout();
    const std::uint32_t max = p.max_record();
    p.set_slip(arg("slip", 0));  // SPSC: re-read a full ring only once this much more is free
    std::uint64_t rng = xproc::stress::mix64(seed ^ (std::uint64_t{id} << 40) ^ 0x5eed);
    std::vector<std::byte> buffer(max);
    for (std::uint64_t seq = 0; seq < count; ++seq) {
        const std::size_t len = record_length(seed, id, seq, max, min);
        if (zero_copy) {
            // Now and then claim more than we commit (MPSC: the rest becomes a skipped filler).
            const std::size_t want = seq % 97 == 0 ? std::min<std::size_t>(max, len + 40) : len;
            const xproc::Claim c = p.claim(want, timeout);
            if (c.status != xproc::WriteStatus::ok) {
                fail("claim of record %" PRIu64 " (%zu bytes): %s", seq, want,
                     std::string(xproc::to_string(c.status)).c_str());
            }
            fill_record(id, seq, c.buffer.first(len), rng);
            p.commit(len);
        } else {
            fill_record(id, seq, std::span<std::byte>(buffer.data(), len), rng);
            const xproc::WriteStatus st = p.write(std::span<const std::byte>(buffer.data(), len), timeout);
            if (st != xproc::WriteStatus::ok) {
                fail("write of record %" PRIu64 " (%zu bytes): %s", seq, len,
                     std::string(xproc::to_string(st)).c_str());
            }
        }
    }
}

int produce(const std::string& name) {
    auto seg = open_segment(name);
    auto p = seg.producer(options());
    if (!p) {
        fail("attach producer: %s", p.error().message().c_str());
    }
    const auto id = static_cast<std::uint32_t>(arg("id"));
    const std::uint64_t count = arg("count");
    start_barrier();
    const auto start = Clock::now();
    produce_records(*p, id, count);
    p->close();
    std::printf("done records=%" PRIu64 " seconds=%.3f\n", count, seconds_since(start));
    return 0;
}

int consume(const std::string& name) {
    auto seg = open_segment(name);
    auto c = seg.consumer(options());
    if (!c) {
        fail("attach consumer: %s", c.error().message().c_str());
    }
    const auto producers = static_cast<std::uint32_t>(arg("producers", 1));
    const std::uint64_t count = arg("count");
    const std::uint64_t expected = producers * count;
    const bool zero_copy = text_arg("api", "poll") == "poll";
    c->set_slip(arg("slip", 0));  // stay this many bytes behind the producers once caught up
    const xproc::Timeout timeout = op_timeout();
    xproc::stress::StreamChecker checker(arg("seed", 1), producers, c->max_record(), arg("min", 1));
    auto check = [&](std::span<const std::byte> got) {
        if (!checker.check(got)) {
            fail("%s", checker.error());
        }
    };
    std::vector<std::byte> buffer(c->max_record());
    start_barrier();
    const auto start = Clock::now();
    while (checker.total() < expected) {
        if (zero_copy) {
            auto st = c->wait(timeout);
            if (!st) {
                fail("wait after %" PRIu64 " records: %s", checker.total(), st.error().message().c_str());
            }
            if (*st != xproc::ReadStatus::ok) {
                fail("wait after %" PRIu64 " records: %s", checker.total(),
                     std::string(xproc::to_string(*st)).c_str());
            }
            auto n = c->poll(check, 256);
            if (!n) {
                fail("poll after %" PRIu64 " records: %s", checker.total(), n.error().message().c_str());
            }
        } else {
            auto r = c->read(buffer, timeout);
            if (!r) {
                fail("read after %" PRIu64 " records: %s", checker.total(), r.error().message().c_str());
            }
            if (r->status != xproc::ReadStatus::ok) {
                fail("read after %" PRIu64 " records: %s", checker.total(),
                     std::string(xproc::to_string(r->status)).c_str());
            }
            check(std::span<const std::byte>(buffer.data(), r->length));
        }
    }
    const double elapsed = seconds_since(start);
    // Nothing more may arrive: every producer wrote exactly `count`.
    c->set_slip(0);
    auto extra = c->poll([&](std::span<const std::byte>) { fail("a record beyond the expected count"); }, 1);
    if (!extra) {
        fail("final poll: %s", extra.error().message().c_str());
    }
    std::printf("done records=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f\n", checker.total(), checker.bytes(),
                elapsed);
    return 0;
}

/// Broadcast writer: throttled on the fast readers' published positions (their peer slots).
int bwrite(const std::string& name) {
    auto seg = open_segment(name);
    auto p = seg.producer(options());
    if (!p) {
        fail("attach writer: %s", p.error().message().c_str());
    }
    auto* header = reinterpret_cast<xproc::ring::RingHeader*>(seg.memory().data());
    std::vector<int> fast_slots;
    {
        std::string list = text_arg("fast", "");
        std::vector<pid_t> pids;
        for (std::size_t pos = 0; pos < list.size();) {
            const std::size_t comma = std::min(list.find(',', pos), list.size());
            pids.push_back(
                static_cast<pid_t>(std::strtol(list.substr(pos, comma - pos).c_str(), nullptr, 10)));
            pos = comma + 1;
        }
        for (const pid_t pid : pids) {
            int found = -1;
            for (int i = 0; i < static_cast<int>(xproc::ring::RING_SLOTS); ++i) {
                if (std::atomic_ref<std::int32_t>(header->slot[i].pid).load() == pid) {
                    found = i;
                }
            }
            if (found < 0) {
                fail("fast reader %d holds no reader slot", static_cast<int>(pid));
            }
            fast_slots.push_back(found);
        }
    }
    const std::uint64_t count = arg("count");
    const std::uint64_t seed = arg("seed", 1);
    const std::uint32_t max = p->max_record();
    const std::uint64_t capacity = p->capacity();
    // A reader at `pos` is lapped once the writer may overwrite past pos + capacity; keep
    // two largest records of margin (a padding record and the next record).
    const std::uint64_t margin = 2 * xproc::ring::record_size(max);
    auto slowest_fast = [&] {
        std::uint64_t lowest = UINT64_MAX;
        for (const int i : fast_slots) {
            // relaxed: the reader stores its position after copying each record; on x86 its
            // loads of the record are not reordered after that store.
            lowest = std::min(
                lowest,
                std::atomic_ref<std::uint64_t>(header->slot[i].position).load(std::memory_order_relaxed));
        }
        return lowest;
    };
    std::uint64_t rng = xproc::stress::mix64(seed ^ 0xb0adca57);
    std::uint64_t throttled = 0;
    start_barrier();
    const auto start = Clock::now();
    for (std::uint64_t seq = 0; seq < count; ++seq) {
        const std::size_t len = record_length(seed, 0, seq, max, xproc::stress::TAGGED_MIN);
        if (!fast_slots.empty() && p->tail() + margin - slowest_fast() > capacity) {
            ++throttled;
            const auto deadline = Clock::now() + op_timeout();
            while (p->tail() + margin - slowest_fast() > capacity) {
                if (Clock::now() > deadline) {
                    fail("the fast readers did not move for %" PRIu64 " ms (record %" PRIu64 ")",
                         arg("timeout_ms", 10000), seq);
                }
                std::this_thread::yield();
            }
        }
        const xproc::Claim c = p->claim(len);
        if (c.status != xproc::WriteStatus::ok) {
            fail("broadcast claim: %s", std::string(xproc::to_string(c.status)).c_str());
        }
        fill_record(0, seq, c.buffer, rng);
        p->commit(len);
    }
    if (p->write_end_of_stream() != xproc::WriteStatus::ok) {
        fail("end of stream");
    }
    p->close();
    std::printf("done records=%" PRIu64 " throttled=%" PRIu64 " seconds=%.3f\n", count, throttled,
                seconds_since(start));
    return 0;
}

/// Broadcast reader: fast ones must see everything; the slow one is lapped and checks what
/// it sees between laps.
int bread(const std::string& name) {
    auto seg = open_segment(name);
    auto c = seg.consumer(options());
    if (!c) {
        fail("attach reader: %s", c.error().message().c_str());
    }
    const std::uint64_t count = arg("count");
    const std::uint64_t seed = arg("seed", 1);
    const bool slow = text_arg("speed", "fast") == "slow";
    const bool zero_copy = text_arg("api", "poll") == "poll";
    const std::uint32_t max = c->max_record();
    const xproc::Timeout timeout = op_timeout();
    std::uint64_t next = 0;        // sequence number expected next
    bool after_lap = false;        // the next record may jump forward
    std::uint64_t received = 0;    // records delivered
    std::uint64_t laps = 0;        // lapped reports
    std::uint64_t lost_bytes = 0;  // bytes skipped by laps
    std::uint64_t naps = 0;
    std::uint64_t nap_at = 512;
    std::uint64_t rng = xproc::stress::mix64(seed ^ static_cast<std::uint64_t>(::getpid()));
    // The slow reader naps (1..8 ms) every 512 records or so, half of the time in the middle
    // of a batch (the lap shows in poll/read), half of the time between batches, caught up
    // (the lap happens while it is not reading; wait() must cope with it).
    auto nap = [&] {
        rng = xproc::stress::mix64(rng);
        ++naps;
        nap_at = received + 256 + rng % 512;
        std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng % 7000));
    };
    auto on_record = [&](std::span<const std::byte> got) {
        std::uint64_t seq = next;
        if (after_lap) {
            if (!xproc::stress::tagged_seq(got, 0, seq)) {
                fail("record %" PRIu64 " after a lap: no valid tag (%zu bytes): garbage", received,
                     got.size());
            }
            if (seq < next) {
                fail("record with seq %" PRIu64 " after a lap, but %" PRIu64 " was already seen", seq, next);
            }
        }
        if (const char* why = check_record(seed, 0, seq, max, got, xproc::stress::TAGGED_MIN)) {
            fail("record %" PRIu64 " (expected seq %" PRIu64 ", %zu bytes): %s", received, seq, got.size(),
                 why);
        }
        after_lap = false;
        next = seq + 1;
        ++received;
        if (slow && received >= nap_at && naps % 2 == 0) {
            nap();
        }
    };
    auto lapped = [&](std::uint64_t lost) {
        if (!slow) {
            fail("fast reader lapped after %" PRIu64 " records (%" PRIu64 " bytes lost)", received, lost);
        }
        ++laps;
        lost_bytes += lost;
        after_lap = true;
    };
    std::vector<std::byte> buffer(max);
    say("ready");
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::seconds(arg("watchdog_s", 300));
    bool writer_seen = false;
    bool writer_left = false;  // lapped past the end of stream, and the writer has closed
    while (!c->saw_end_of_stream() && !writer_left) {
        if (Clock::now() > deadline) {
            fail("no end of stream after %" PRIu64 " records", received);
        }
        if (c->producer_state() == xproc::PeerState::alive) {
            writer_seen = true;
        }
        if (slow && received >= nap_at && naps % 2 == 1) {
            nap();
        }
        // A slow reader waits in short slices: a lap can take it past the end of stream,
        // after which only "the writer has left" ends the loop. Before the writer is seen
        // (it starts after the readers, and on a loaded machine a slice can pass before it
        // has attached) an empty slice only means waiting on (the watchdog bounds it).
        const xproc::Timeout slice = slow ? xproc::Timeout(200ms) : timeout;
        auto left = [&] { return slow && writer_seen && c->producer_state() == xproc::PeerState::none; };
        if (zero_copy) {
            auto st = c->wait(slice);
            if (!st) {
                fail("wait after %" PRIu64 " records, %" PRIu64 " laps: %s", received, laps,
                     st.error().message().c_str());
            }
            if (*st == xproc::ReadStatus::empty && (left() || (slow && !writer_seen))) {
                writer_left = left();
                continue;
            }
            if (*st != xproc::ReadStatus::ok) {
                fail("wait after %" PRIu64 " records: %s", received,
                     std::string(xproc::to_string(*st)).c_str());
            }
            auto n = c->poll(on_record, 256);
            if (!n) {
                fail("poll after %" PRIu64 " records: %s", received, n.error().message().c_str());
            }
            if (const std::uint64_t lost = c->take_lapped(); lost != 0) {
                lapped(lost);
            }
        } else {
            auto r = c->read(buffer, slice);
            if (!r) {
                fail("read after %" PRIu64 " records: %s", received, r.error().message().c_str());
            }
            if (r->status == xproc::ReadStatus::ok) {
                on_record(std::span<const std::byte>(buffer.data(), r->length));
            } else if (r->status == xproc::ReadStatus::lapped) {
                lapped(r->lost);
            } else if (r->status == xproc::ReadStatus::empty && (left() || (slow && !writer_seen))) {
                writer_left = left();
            } else if (r->status != xproc::ReadStatus::end_of_stream) {
                fail("read after %" PRIu64 " records: %s", received,
                     std::string(xproc::to_string(r->status)).c_str());
            }
        }
    }
    if (!slow && received != count) {
        fail("end of stream after %" PRIu64 " of %" PRIu64 " records", received, count);
    }
    std::printf("done records=%" PRIu64 " laps=%" PRIu64 " lost_bytes=%" PRIu64 " naps=%" PRIu64
                " last=%" PRIu64 " seconds=%.3f\n",
                received, laps, lost_bytes, naps, next, seconds_since(start));
    return 0;
}

int half(const std::string& name) {
    auto seg = open_segment(name);
    auto p = seg.producer(options());
    if (!p) {
        fail("attach producer: %s", p.error().message().c_str());
    }
    const auto id = static_cast<std::uint32_t>(arg("id"));
    produce_records(*p, id, arg("count"));
    const xproc::Claim c = p->claim(p->max_record(), op_timeout());
    if (c.status != xproc::WriteStatus::ok) {
        fail("claim: %s", std::string(xproc::to_string(c.status)).c_str());
    }
    std::memset(c.buffer.data(), 0xab, c.buffer.size() / 2);
    say("ready");
    wait_to_be_killed();
}

int hold(const std::string& name) {
    auto seg = open_segment(name);
    const std::string role = text_arg("role", "producer");
    if (role == "producer") {
        auto p = seg.producer(options());
        if (!p) {
            fail("attach producer: %s", p.error().message().c_str());
        }
        say("ready");
        wait_to_be_killed();
    }
    auto c = seg.consumer(options());
    if (!c) {
        fail("attach consumer: %s", c.error().message().c_str());
    }
    say("ready");
    wait_to_be_killed();
}

int write_close(const std::string& name) {
    auto seg = open_segment(name);
    auto p = seg.producer(options());
    if (!p) {
        fail("attach producer: %s", p.error().message().c_str());
    }
    produce_records(*p, static_cast<std::uint32_t>(arg("id")), arg("count"));
    p->close();
    say("closed");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr,
                     "usage: %s produce|consume|bwrite|bread|half|hold|write-close NAME [key=value...]\n",
                     argv[0]);
        return 2;
    }
    for (int i = 3; i < argc; ++i) {
        const char* eq = std::strchr(argv[i], '=');
        if (eq == nullptr) {
            std::fprintf(stderr, "ring_peer: argument '%s' is not key=value\n", argv[i]);
            return 2;
        }
        g_args[std::string(argv[i], static_cast<std::size_t>(eq - argv[i]))] = eq + 1;
    }
    // The start signal is taken with sigtimedwait: block it before anyone can send it.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    ::alarm(static_cast<unsigned>(arg("watchdog_s", 300)));
    const std::string mode = argv[1];
    const std::string name = argv[2];
    if (mode == "produce") {
        return produce(name);
    }
    if (mode == "consume") {
        return consume(name);
    }
    if (mode == "bwrite") {
        return bwrite(name);
    }
    if (mode == "bread") {
        return bread(name);
    }
    if (mode == "half") {
        return half(name);
    }
    if (mode == "hold") {
        return hold(name);
    }
    if (mode == "write-close") {
        return write_close(name);
    }
    std::fprintf(stderr, "ring_peer: unknown mode '%s'\n", mode.c_str());
    return 2;
}
