// SPDX-License-Identifier: MIT
// Channel<T>: typed messages over a named ring, between real processes.
#include "xproc/channel.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include "shm_name.hpp"

namespace {

using namespace std::chrono_literals;
using xproc::Channel;
using xproc::ErrorKind;
using xproc::PeerState;
using xproc::ReadStatus;
using xproc::WriteStatus;
using Clock = std::chrono::steady_clock;

using RingName = xproc::test::ShmName;

/// A forked child running `body(ready_fd)`; it writes a byte to ready_fd once set up.
/// The destructor kills (SIGKILL) and reaps it if it still runs.
class Forked {
  public:
    template <typename Body>
    explicit Forked(Body&& body) {
        int up[2];
        if (::pipe2(up, O_CLOEXEC) != 0) {
            ADD_FAILURE() << "pipe2: " << std::strerror(errno);
            return;
        }
        m_pid = ::fork();
        if (m_pid == 0) {
            ::close(up[0]);
            ::_exit(body(up[1]));
        }
        ::close(up[1]);
        m_ready = up[0];
    }
    Forked(const Forked&) = delete;
    Forked& operator=(const Forked&) = delete;
    ~Forked() {
        kill9();
        ::close(m_ready);
    }
    static void say_ready(int fd) {
        const char b = 'r';
        (void)!::write(fd, &b, 1);
    }
    bool ready(int timeout_ms = 10000) const {
        struct pollfd p = {m_ready, POLLIN, 0};
        char b;
        return ::poll(&p, 1, timeout_ms) == 1 && ::read(m_ready, &b, 1) == 1;
    }
    int wait() {
        int status = 0;
        while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
        }
        m_pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    void kill9() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            wait();
        }
    }

  private:
    pid_t m_pid = -1;
    int m_ready = -1;
};

struct Quote {
    std::uint64_t seq;
    double price;
    std::int32_t size;
    char symbol[12];
};
static_assert(sizeof(Quote) == 32);

bool operator==(const Quote& a, const Quote& b) {
    return a.seq == b.seq && a.price == b.price && a.size == b.size &&
           std::memcmp(a.symbol, b.symbol, sizeof a.symbol) == 0;
}

Quote quote(std::uint64_t seq) {
    Quote q{};
    q.seq = seq;
    q.price = 100.0 + static_cast<double>(seq % 1000) / 8.0;
    q.size = static_cast<std::int32_t>(seq * 7 % 5000);
    std::snprintf(q.symbol, sizeof q.symbol, "S%llu", static_cast<unsigned long long>(seq % 100000));
    return q;
}

TEST(Channel, values_sent_are_received_in_order_and_intact) {
    RingName name("chan-basic");
    auto ch = Channel<Quote>::create(name, 16);
    ASSERT_TRUE(ch) << ch.error().message();
    auto tx = ch->sender();
    auto rx = ch->receiver();
    ASSERT_TRUE(tx && rx);
    for (std::uint64_t i = 0; i < 10; ++i) {
        ASSERT_EQ(tx->send(quote(i)), WriteStatus::ok);
    }
    for (std::uint64_t i = 0; i < 10; ++i) {
        auto r = rx->receive();
        ASSERT_TRUE(r) << r.error().message();
        ASSERT_EQ(r->status, ReadStatus::ok);
        ASSERT_TRUE(r->value.has_value());
        EXPECT_EQ(*r->value, quote(i));
    }
    auto empty = rx->receive();
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->status, ReadStatus::empty);
    EXPECT_FALSE(empty->value.has_value());
}

TEST(Channel, a_channel_opened_by_name_talks_to_the_created_one) {
    RingName name("chan-open");
    auto created = Channel<std::uint64_t>::create(name, 8);
    ASSERT_TRUE(created) << created.error().message();
    auto opened = Channel<std::uint64_t>::open(name);
    ASSERT_TRUE(opened) << opened.error().message();
    EXPECT_EQ(opened->name(), name.str());
    auto tx = created->sender().value();
    auto rx = opened->receiver().value();
    ASSERT_EQ(tx.send(42), WriteStatus::ok);
    EXPECT_EQ(rx.receive().value().value, 42u);
}

template <typename T>
void check_capacity_holds(const std::string& suffix, std::size_t asked) {
    RingName name(suffix);
    auto ch = Channel<T>::create(name, asked);
    ASSERT_TRUE(ch) << ch.error().message();
    EXPECT_GE(ch->capacity(), asked);
    auto tx = ch->sender().value();
    auto rx = ch->receiver().value();
    // Several times round the ring, so that the wrap point falls at different fill levels.
    for (std::size_t round = 0; round < 4; ++round) {
        for (std::size_t i = 0; i < ch->capacity(); ++i) {
            ASSERT_EQ(tx.send(T{}), WriteStatus::ok) << "message " << i << " of " << ch->capacity();
        }
        const std::size_t some = std::min(ch->capacity(), ch->capacity() / 2 + round);
        for (std::size_t i = 0; i < some; ++i) {
            ASSERT_EQ(rx.receive().value().status, ReadStatus::ok);
        }
        for (std::size_t i = 0; i < some; ++i) {
            ASSERT_EQ(tx.send(T{}), WriteStatus::ok);
        }
        while (rx.receive().value().status == ReadStatus::ok) {
        }
    }
}

TEST(Channel, capacity_is_at_least_what_was_asked_and_that_many_sends_never_block) {
    check_capacity_holds<std::uint8_t>("cap-1", 1);
    check_capacity_holds<std::uint8_t>("cap-2", 100);
    check_capacity_holds<Quote>("cap-3", 1);
    check_capacity_holds<Quote>("cap-4", 10);
    check_capacity_holds<Quote>("cap-5", 1000);
    check_capacity_holds<std::array<char, 100>>("cap-6", 7);
    check_capacity_holds<std::array<char, 100>>("cap-7", 33);
}

TEST(Channel, a_full_channel_reports_full_and_a_timed_send_waits_for_the_timeout) {
    RingName name("chan-full");
    auto ch = Channel<Quote>::create(name, 4).value();
    auto tx = ch.sender().value();
    auto rx = ch.receiver().value();
    WriteStatus s = WriteStatus::ok;
    std::size_t sent = 0;
    while ((s = tx.try_send(quote(sent))) == WriteStatus::ok) {
        ++sent;
    }
    EXPECT_EQ(s, WriteStatus::full);
    EXPECT_GE(sent, 4u);
    const auto start = Clock::now();
    EXPECT_EQ(tx.send(quote(sent), 200ms), WriteStatus::full);
    EXPECT_GE(Clock::now() - start, 200ms);
    // Room for one more is certain once fewer than capacity() are in flight (a full ring
    // may hold more, and the next record may need the wrap padding on top).
    while (sent >= ch.capacity()) {
        ASSERT_EQ(rx.receive().value().status, ReadStatus::ok);
        --sent;
    }
    EXPECT_EQ(tx.send(quote(sent), 200ms), WriteStatus::ok);
}

TEST(Channel, a_timed_receive_on_an_empty_channel_returns_empty_after_the_timeout) {
    RingName name("chan-empty");
    auto ch = Channel<std::uint32_t>::create(name, 4).value();
    auto tx = ch.sender().value();
    auto rx = ch.receiver().value();
    const auto start = Clock::now();
    auto r = rx.receive(200ms);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, ReadStatus::empty);
    const auto waited = Clock::now() - start;
    EXPECT_GE(waited, 200ms);
    EXPECT_LT(waited, 1500ms);
}

TEST(Channel, create_refuses_an_existing_name_and_zero_or_huge_capacities) {
    RingName name("chan-create");
    auto first = Channel<std::uint64_t>::create(name, 8);
    ASSERT_TRUE(first);
    auto again = Channel<std::uint64_t>::create(name, 8);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().errno_value, EEXIST);
    RingName other("chan-create-bad");
    auto zero = Channel<std::uint64_t>::create(other, 0);
    ASSERT_FALSE(zero);
    EXPECT_EQ(zero.error().kind, ErrorKind::invalid_argument);
    auto huge = Channel<std::uint64_t>::create(other, std::size_t{1} << 62);
    ASSERT_FALSE(huge);
    EXPECT_EQ(huge.error().kind, ErrorKind::invalid_argument);
}

TEST(Channel, open_refuses_a_ring_whose_records_are_smaller_than_T) {
    RingName name("chan-small-ring");
    xproc::RingConfig config;
    config.capacity = 4096;
    config.max_record = 4;
    ASSERT_TRUE(xproc::RingSegment::create(name, config));
    auto ch = Channel<std::uint64_t>::open(name);
    ASSERT_FALSE(ch);
    EXPECT_EQ(ch.error().kind, ErrorKind::invalid_argument);
    EXPECT_NE(ch.error().message().find("max_record 4"), std::string::npos) << ch.error().message();
    EXPECT_TRUE(Channel<std::uint32_t>::open(name));
}

TEST(Channel, open_of_a_missing_name_or_a_non_ring_fails) {
    RingName name("chan-missing");
    auto missing = Channel<int>::open(name);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().errno_value, ENOENT);
    auto shm = xproc::SharedMemory::create(name, 8192);
    ASSERT_TRUE(shm);
    auto plain = Channel<int>::open(name);
    ASSERT_FALSE(plain);
    EXPECT_EQ(plain.error().errno_value, EPROTO);
}

/// A ring with room for longer records, written to with the untyped producer.
struct RawWriter {
    explicit RawWriter(const RingName& name) {
        xproc::RingConfig config;
        config.capacity = 4096;
        config.max_record = 64;
        segment.emplace(xproc::RingSegment::create(name, config).value());
        producer.emplace(segment->producer().value());
    }
    void write(std::size_t length, unsigned char fill) {
        std::array<unsigned char, 64> bytes;
        bytes.fill(fill);
        ASSERT_EQ(producer->write(std::as_bytes(std::span(bytes.data(), length))), WriteStatus::ok);
    }
    std::optional<xproc::RingSegment> segment;
    std::optional<xproc::RingProducer> producer;
};

TEST(Channel, a_message_shorter_than_T_is_corrupt_and_dropped) {
    RingName name("chan-short");
    RawWriter raw(name);
    raw.write(3, 0xab);
    raw.write(8, 0x01);
    auto ch = Channel<std::uint64_t>::open(name).value();
    auto rx = ch.receiver().value();
    auto bad = rx.receive();
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, ErrorKind::corrupt);
    EXPECT_NE(bad.error().message().find("message of 3 bytes, expected 8"), std::string::npos)
        << bad.error().message();
    auto good = rx.receive();
    ASSERT_TRUE(good) << good.error().message();
    EXPECT_EQ(good->value, 0x0101010101010101u);
}

TEST(Channel, a_message_longer_than_T_is_corrupt_dropped_and_never_copied_past_T) {
    RingName name("chan-long");
    RawWriter raw(name);
    raw.write(64, 0xee);
    raw.write(16, 0xee);
    raw.write(8, 0x02);
    auto ch = Channel<std::uint64_t>::open(name).value();
    auto rx = ch.receiver().value();
    for (const std::size_t length : {64u, 16u}) {
        auto bad = rx.receive();
        ASSERT_FALSE(bad);
        EXPECT_EQ(bad.error().kind, ErrorKind::corrupt);
        EXPECT_NE(bad.error().message().find("message of " + std::to_string(length) + " bytes"),
                  std::string::npos)
            << bad.error().message();
    }
    auto good = rx.receive();
    ASSERT_TRUE(good) << good.error().message();
    EXPECT_EQ(good->value, 0x0202020202020202u);
    EXPECT_EQ(rx.receive().value().status, ReadStatus::empty);
}

TEST(Channel, end_of_stream_is_reported_and_values_after_it_follow) {
    RingName name("chan-eos");
    auto ch = Channel<std::uint16_t>::create(name, 8).value();
    auto tx = ch.sender().value();
    auto rx = ch.receiver().value();
    ASSERT_EQ(tx.send(1), WriteStatus::ok);
    ASSERT_EQ(tx.send_end_of_stream(), WriteStatus::ok);
    ASSERT_EQ(tx.send(2), WriteStatus::ok);
    EXPECT_EQ(rx.receive().value().value, 1);
    auto eos = rx.receive().value();
    EXPECT_EQ(eos.status, ReadStatus::end_of_stream);
    EXPECT_FALSE(eos.value.has_value());
    EXPECT_EQ(rx.receive().value().value, 2);
}

TEST(Channel, a_second_receiver_is_refused_while_the_first_is_alive) {
    RingName name("chan-busy");
    auto ch = Channel<int>::create(name, 8).value();
    auto rx = ch.receiver().value();
    auto second = ch.receiver();
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message().find("held by pid " + std::to_string(::getpid())), std::string::npos)
        << second.error().message();
    rx.close();
    EXPECT_TRUE(ch.receiver());
}

TEST(Channel, a_receiver_gets_peer_gone_after_the_sender_process_was_killed) {
    RingName name("chan-sender-killed");
    auto ch = Channel<std::uint64_t>::create(name, 8).value();
    auto rx = ch.receiver().value();
    Forked child([&](int ready) {
        auto other = Channel<std::uint64_t>::open(name);
        if (!other) {
            return 1;
        }
        auto tx = other->sender();
        if (!tx || tx->send(7) != WriteStatus::ok) {
            return 2;
        }
        Forked::say_ready(ready);
        pause();
        return 0;
    });
    ASSERT_TRUE(child.ready());
    EXPECT_EQ(rx.sender_state(), PeerState::alive);
    child.kill9();
    EXPECT_EQ(rx.receive(xproc::WAIT_FOREVER).value().value, 7u);  // what it sent is not lost
    const auto start = Clock::now();
    auto r = rx.receive(xproc::WAIT_FOREVER);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, ReadStatus::peer_gone);
    EXPECT_LT(Clock::now() - start, 2s);
    EXPECT_EQ(rx.sender_state(), PeerState::dead);
}

TEST(Channel, a_sender_gets_peer_gone_when_the_receiver_process_was_killed_and_the_ring_is_full) {
    RingName name("chan-receiver-killed");
    auto ch = Channel<Quote>::create(name, 4).value();
    auto tx = ch.sender().value();
    Forked child([&](int ready) {
        auto other = Channel<Quote>::open(name);
        if (!other) {
            return 1;
        }
        auto rx = other->receiver();
        if (!rx) {
            return 2;
        }
        Forked::say_ready(ready);
        pause();
        return 0;
    });
    ASSERT_TRUE(child.ready());
    child.kill9();
    std::uint64_t seq = 0;
    while (tx.try_send(quote(seq)) == WriteStatus::ok) {
        ++seq;
    }
    EXPECT_EQ(tx.try_send(quote(seq)), WriteStatus::peer_gone);
    EXPECT_EQ(tx.send(quote(seq), xproc::WAIT_FOREVER), WriteStatus::peer_gone);
    EXPECT_EQ(tx.receiver_state(), PeerState::dead);
}

TEST(Channel, two_processes_move_a_million_values_in_order_with_checksums) {
    constexpr std::uint64_t COUNT = 1'000'000;
    struct Sample {
        std::uint64_t seq;
        std::uint64_t value;
        std::uint64_t checksum;
    };
    auto checksum = [](std::uint64_t seq, std::uint64_t value) {
        return (seq * 0x9e3779b97f4a7c15ull) ^ (value + 0x632be59bd9b4e019ull);
    };
    RingName name("chan-million");
    auto ch = Channel<Sample>::create(name, 1024).value();
    auto rx = ch.receiver().value();
    Forked producer([&](int ready) {
        auto other = Channel<Sample>::open(name);
        if (!other) {
            return 1;
        }
        auto tx = other->sender();
        if (!tx) {
            return 2;
        }
        Forked::say_ready(ready);
        for (std::uint64_t seq = 0; seq < COUNT; ++seq) {
            const std::uint64_t value = seq * seq + 3;
            if (tx->send(Sample{seq, value, checksum(seq, value)}, xproc::WAIT_FOREVER) != WriteStatus::ok) {
                return 3;
            }
        }
        return tx->send_end_of_stream(xproc::WAIT_FOREVER) == WriteStatus::ok ? 0 : 4;
    });
    ASSERT_TRUE(producer.ready());
    std::uint64_t expected = 0;
    std::uint64_t bad = 0;
    for (;;) {
        auto r = rx.receive(10s);
        ASSERT_TRUE(r) << r.error().message();
        if (r->status != ReadStatus::ok) {
            EXPECT_EQ(r->status, ReadStatus::end_of_stream);
            break;
        }
        const Sample& s = *r->value;
        if (s.seq != expected || s.checksum != checksum(s.seq, s.value) || s.value != s.seq * s.seq + 3) {
            if (++bad < 5) {
                ADD_FAILURE() << "value " << expected << " arrived as seq " << s.seq;
            }
        }
        ++expected;
    }
    EXPECT_EQ(expected, COUNT);
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(producer.wait(), 0);
}

}  // namespace
