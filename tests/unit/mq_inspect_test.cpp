// SPDX-License-Identifier: MIT
// snapshot_message_queue / check_message_queue on a real queue's segment, and on copies of
// it (in memory) with one field broken at a time: every broken rule is an error naming the
// field (snapshot) or a problem naming it (check), never a wrong number or a crash.
#include "xproc/mq_inspect.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "xproc/message_queue.hpp"
#include "xproc/shm.hpp"

namespace {

namespace bip = boost::interprocess;
using xproc::mq::MqCell;
using xproc::mq::MqHeader;

/// A queue name unique to this run, removed before and after the test.
struct QueueName {
    std::string name;
    explicit QueueName(const std::string& what)
        : name("/xproc-test-" + std::to_string(::getpid()) + "-" + what) {
        xproc::message_queue::remove(name.c_str());
    }
    ~QueueName() { xproc::message_queue::remove(name.c_str()); }
};

/// A 128-byte aligned copy of a segment, to break at will.
class Copy {
  public:
    explicit Copy(std::span<const std::byte> from)
        : m_size(from.size()),
          m_data(static_cast<std::byte*>(std::aligned_alloc(128, (from.size() + 127) / 128 * 128))) {
        std::memcpy(m_data.get(), from.data(), from.size());
    }
    std::span<const std::byte> span() const { return {m_data.get(), m_size}; }
    std::span<const std::byte> first(std::size_t n) const { return {m_data.get(), n}; }
    MqHeader& header() { return *reinterpret_cast<MqHeader*>(m_data.get()); }
    MqCell& cell(std::uint32_t lane, std::uint64_t pos) {
        const MqHeader& h = header();
        const std::uint64_t index = lane * h.lane_capacity + (pos & (h.lane_capacity - 1));
        return *reinterpret_cast<MqCell*>(m_data.get() + sizeof(MqHeader) + index * h.slot_size);
    }

  private:
    struct Free {
        void operator()(std::byte* p) const { std::free(p); }
    };
    std::size_t m_size;
    std::unique_ptr<std::byte, Free> m_data;
};

bool has(const std::vector<std::string>& problems, const std::string& text) {
    for (const std::string& p : problems) {
        if (p == text) {
            return true;
        }
    }
    return false;
}

std::string all(const std::vector<std::string>& problems) {
    std::string s;
    for (const std::string& p : problems) {
        s += p + "\n";
    }
    return s;
}

/// A queue of 10 messages of up to 64 bytes with priority 5 (lane 0) x3, 1 (lane 1) x2 and
/// 9 (lane 2) x1 sent, then one received (priority 9): 5 messages left.
class MqInspect : public ::testing::Test {
  protected:
    void SetUp() override {
        m_queue = std::make_unique<xproc::message_queue>(bip::create_only, m_name.name.c_str(), 10, 64);
        for (const unsigned priority : {5u, 5u, 1u, 5u, 1u, 9u}) {
            m_queue->send("hello", 5, priority);
        }
        char buf[64];
        std::size_t got = 0;
        unsigned priority = 0;
        ASSERT_TRUE(m_queue->try_receive(buf, sizeof buf, got, priority));
        ASSERT_EQ(priority, 9u);
        auto shm = xproc::SharedMemory::open(m_name.name, xproc::ShmAccess::read_only);
        ASSERT_TRUE(shm.has_value()) << shm.error().message();
        m_shm = std::make_unique<xproc::SharedMemory>(std::move(*shm));
    }
    std::span<const std::byte> segment() const { return {m_shm->data(), m_shm->size()}; }

    QueueName m_name{"mq-inspect"};
    std::unique_ptr<xproc::message_queue> m_queue;
    std::unique_ptr<xproc::SharedMemory> m_shm;
};

TEST_F(MqInspect, snapshot_gives_geometry_lanes_counts_and_creator) {
    ASSERT_TRUE(xproc::is_message_queue(segment()));
    auto s = xproc::snapshot_message_queue(segment());
    ASSERT_TRUE(s.has_value()) << s.error().message();
    EXPECT_EQ(s->version, xproc::mq::MQ_LAYOUT_VERSION);
    EXPECT_EQ(s->max_num_msg, 10u);
    EXPECT_EQ(s->max_msg_size, 64u);
    EXPECT_EQ(s->slot_size, xproc::mq::mq_slot_size(64));
    EXPECT_EQ(s->lane_capacity, 16u);
    EXPECT_EQ(s->lane_count, xproc::mq::MQ_LANES);
    EXPECT_EQ(s->total_size, sizeof(MqHeader) + xproc::mq::MQ_LANES * 16 * xproc::mq::mq_slot_size(64));
    EXPECT_EQ(s->owner_uid, ::geteuid());
    EXPECT_EQ(s->creator.pid, ::getpid());
    EXPECT_EQ(s->creator.state, xproc::PeerState::alive);
    ASSERT_EQ(s->lanes.size(), 3u);
    const std::uint64_t expected[3][4] = {
        {5, 3, 0, 3}, {1, 2, 0, 2}, {9, 1, 1, 0}};  // priority, enq, deq, msgs
    for (std::uint32_t i = 0; i < 3; ++i) {
        EXPECT_EQ(s->lanes[i].index, i);
        EXPECT_EQ(s->lanes[i].priority, expected[i][0]) << i;
        EXPECT_EQ(s->lanes[i].enqueue_pos, expected[i][1]) << i;
        EXPECT_EQ(s->lanes[i].dequeue_pos, expected[i][2]) << i;
        EXPECT_EQ(s->lanes[i].messages, expected[i][3]) << i;
    }
    EXPECT_EQ(s->count, 2u);  // lanes 1..15: two messages of priority 1
    EXPECT_EQ(s->messages, 5u);
    EXPECT_EQ(s->messages, m_queue->get_num_msg());
    EXPECT_EQ(s->dequeued, 1u);
    EXPECT_EQ(s->recv_waiters, 0u);
    EXPECT_EQ(s->send_waiters, 0u);
    EXPECT_EQ(s->skipped + s->lost + s->recounted + s->corrupt, 0u);

    // Counters come from their own fields.
    Copy copy(segment());
    copy.header().skipped = 1;
    copy.header().lost = 2;
    copy.header().recounted = 3;
    copy.header().corrupt = 4;
    copy.header().recv_waiters = 5;
    copy.header().send_waiters = 6;
    s = xproc::snapshot_message_queue(copy.span());
    ASSERT_TRUE(s.has_value()) << s.error().message();
    EXPECT_EQ(s->skipped, 1u);
    EXPECT_EQ(s->lost, 2u);
    EXPECT_EQ(s->recounted, 3u);
    EXPECT_EQ(s->corrupt, 4u);
    EXPECT_EQ(s->recv_waiters, 5u);
    EXPECT_EQ(s->send_waiters, 6u);
}

TEST_F(MqInspect, a_sound_queue_has_no_problems_and_an_emptied_one_neither) {
    auto problems = xproc::check_message_queue(segment());
    ASSERT_TRUE(problems.has_value()) << problems.error().message();
    EXPECT_TRUE(problems->empty()) << all(*problems);
    char buf[64];
    std::size_t got = 0;
    unsigned priority = 0;
    while (m_queue->try_receive(buf, sizeof buf, got, priority)) {
    }
    const unsigned priorities[] = {5, 1, 9, 0};
    for (int i = 0; i < 80; ++i) {  // more than a lap (16 cells) of every lane
        m_queue->send("x", 1, priorities[i % 4]);
        ASSERT_TRUE(m_queue->try_receive(buf, sizeof buf, got, priority));
    }
    problems = xproc::check_message_queue(segment());
    ASSERT_TRUE(problems.has_value());
    EXPECT_TRUE(problems->empty()) << all(*problems);
    auto s = xproc::snapshot_message_queue(segment());
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->messages, 0u);
    EXPECT_EQ(s->dequeued, 6u + 80u);
    ASSERT_EQ(s->lanes.size(), 4u);  // priorities 5, 1, 9, then 0
    EXPECT_EQ(s->lanes[3].priority, 0u);
}

TEST_F(MqInspect, identity_errors_not_a_queue_not_ready_another_version_too_small_misaligned) {
    Copy copy(segment());
    copy.header().magic ^= 1;
    EXPECT_FALSE(xproc::is_message_queue(copy.span()));
    auto s = xproc::snapshot_message_queue(copy.span());
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().kind, xproc::ErrorKind::corrupt);
    EXPECT_EQ(s.error().detail, "not an xproc message queue (no XPROCMQ1 magic at offset 0)");
    EXPECT_FALSE(xproc::check_message_queue(copy.span()).has_value());
    copy.header().magic = xproc::mq::MQ_MAGIC;

    copy.header().version = 0;
    s = xproc::snapshot_message_queue(copy.span());
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().errno_value, EAGAIN);
    EXPECT_EQ(xproc::check_message_queue(copy.span()).error().errno_value, EAGAIN);

    copy.header().version = 99;
    s = xproc::snapshot_message_queue(copy.span());
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().kind, xproc::ErrorKind::corrupt);
    EXPECT_EQ(s.error().detail, "message queue layout version 99, this library reads version " +
                                    std::to_string(xproc::mq::MQ_LAYOUT_VERSION));
    copy.header().version = xproc::mq::MQ_LAYOUT_VERSION;

    s = xproc::snapshot_message_queue(copy.first(sizeof(MqHeader) - 1));
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().kind, xproc::ErrorKind::corrupt);
    EXPECT_NE(s.error().detail.find("smaller than a message queue header"), std::string::npos);
    EXPECT_FALSE(xproc::is_message_queue(copy.first(7)));

    s = xproc::snapshot_message_queue(copy.span().subspan(8));
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().kind, xproc::ErrorKind::invalid_argument);
}

TEST_F(MqInspect, bad_geometry_is_an_error_in_snapshot_and_a_problem_in_check) {
    struct Case {
        void (*breaks)(MqHeader&);
        std::string problem;
    };
    const std::uint64_t slot = xproc::mq::mq_slot_size(64);
    const std::uint64_t total = sizeof(MqHeader) + xproc::mq::MQ_LANES * 16 * slot;
    const std::vector<Case> cases = {
        {[](MqHeader& h) { h.header_size = 100; },
         "header_size is 100, expected " + std::to_string(sizeof(MqHeader))},
        {[](MqHeader& h) { h.lanes = 3; }, "lanes is 3, expected " + std::to_string(xproc::mq::MQ_LANES)},
        {[](MqHeader& h) { h.slot_size += 8; }, "slot_size " + std::to_string(slot + 8) +
                                                    " does not match max_msg_size 64 (expected " +
                                                    std::to_string(slot) + ")"},
        {[](MqHeader& h) { h.lane_capacity = 32; },
         "lane_capacity 32 does not match max_num_msg 10 (expected 16)"},
        {[](MqHeader& h) { h.max_num_msg = 20; },
         "lane_capacity 16 does not match max_num_msg 20 (expected 32)"},
        {[](MqHeader& h) { h.max_num_msg = ~std::uint64_t{0}; },
         "max_num_msg 18446744073709551615 is beyond the limit " + std::to_string(xproc::mq::MQ_MAX_NUM_MSG)},
        {[](MqHeader& h) { h.total_size += 1; }, "total_size " + std::to_string(total + 1) +
                                                     " does not match the geometry (expected " +
                                                     std::to_string(total) + ")"},
    };
    for (const Case& c : cases) {
        Copy copy(segment());
        c.breaks(copy.header());
        auto s = xproc::snapshot_message_queue(copy.span());
        ASSERT_FALSE(s.has_value()) << c.problem;
        EXPECT_EQ(s.error().kind, xproc::ErrorKind::corrupt);
        EXPECT_TRUE(s.error().detail.starts_with("inconsistent geometry: " + c.problem + " (max_num_msg "))
            << s.error().detail;
        auto problems = xproc::check_message_queue(copy.span());
        ASSERT_TRUE(problems.has_value()) << problems.error().message();
        EXPECT_TRUE(has(*problems, "header: " + c.problem)) << all(*problems);
    }
    // A segment shorter than the queue it describes.
    Copy copy(segment());
    auto s = xproc::snapshot_message_queue(copy.first(static_cast<std::size_t>(total) - 128));
    ASSERT_FALSE(s.has_value());
    EXPECT_NE(s.error().detail.find("total_size " + std::to_string(total) + " runs past the end of the " +
                                    std::to_string(total - 128) + "-byte segment"),
              std::string::npos)
        << s.error().detail;
}

TEST_F(MqInspect, check_names_broken_positions_tags_counts_and_cells) {
    Copy copy(segment());
    MqHeader& h = copy.header();
    h.lane[1].dequeue_pos = 7;               // past enqueue (2)
    h.lane[0].enqueue_pos = 40;              // 40 messages in a lane of 16
    h.count = 11;                            // > max_num_msg 10
    h.lane_tag[2] = h.lane_tag[1];           // priority 1 twice
    h.lane_tag[5] = 42;                      // after the free lane 3
    h.lane[4].enqueue_pos = 1;               // a free lane with a position
    h.lane_tag[6] = std::uint64_t{1} << 40;  // not an unsigned priority
    auto problems = xproc::check_message_queue(copy.span());
    ASSERT_TRUE(problems.has_value());
    const std::vector<std::string> expected = {
        "count: 11 messages counted in lanes 1..15, more than max_num_msg 10",
        "lane 2: priority 1 is also bound to lane 1",
        "lane 4: free (no priority) but its positions are enqueue 1, dequeue 0",
        "lane 5: bound to priority 41 after the free lane 3 (receivers never look at it)",
        "lane 6: tag 1099511627776 is not an unsigned int priority + 1",
        "lane 6: bound to priority 1099511627775 after the free lane 3 (receivers never look at it)",
        "lane 0 (priority 5): 40 messages (enqueue 40, dequeue 0), more than the lane capacity 16",
        "lane 1 (priority 1): dequeue position 7 is past enqueue position 2",
    };
    for (const std::string& p : expected) {
        EXPECT_TRUE(has(*problems, p)) << p << "\n--- got:\n" << all(*problems);
    }
    // Lane 2 (priority 1 again: its cells are sound) and the lanes after the gap add nothing else.
    EXPECT_EQ(problems->size(), expected.size()) << all(*problems);
    // The snapshot reads on: lanes up to the first free one, dequeue past enqueue as 0.
    auto s = xproc::snapshot_message_queue(copy.span());
    ASSERT_TRUE(s.has_value()) << s.error().message();
    ASSERT_EQ(s->lanes.size(), 3u);
    EXPECT_EQ(s->lanes[1].messages, 0u);
    EXPECT_EQ(s->messages, 10u);  // clamped to max_num_msg, as get_num_msg
}

TEST_F(MqInspect, check_names_a_long_message_a_bad_sequence_and_a_dead_sender) {
    Copy copy(segment());
    copy.cell(0, 1).length = 1000;  // published, priority 5
    // Lane 1 (priority 1) holds positions 0 and 1; its free cell 5 claims a future turn.
    copy.cell(1, 5).seq = 77;
    // Lane 0 position 3: claimed by a sender that died before publishing (its seq is 3,
    // still the value of a free cell, stored relative to the cell index as 0).
    const pid_t child = ::fork();
    if (child == 0) {
        _exit(0);
    }
    ASSERT_GT(child, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    copy.header().lane[0].enqueue_pos = 4;
    copy.cell(0, 3).claim = (std::uint64_t{3} << 22) | static_cast<std::uint64_t>(child);
    copy.cell(0, 3).start_time = 0;
    auto problems = xproc::check_message_queue(copy.span());
    ASSERT_TRUE(problems.has_value());
    const std::vector<std::string> expected = {
        "lane 0 (priority 5) position 1 (cell 1): published message of 1000 bytes, more than max_msg_size 64 "
        "(a "
        "receiver drops it as corrupt)",
        "lane 0 (priority 5) position 3 (cell 3): claimed by sender pid " + std::to_string(child) +
            ", which died before publishing it (a receiver skips it)",
        "lane 1 (priority 1) position 5 (cell 5): sequence 82 does not fit a free cell (expected 5)",
    };
    EXPECT_EQ(*problems, expected) << all(*problems);
}

}  // namespace
