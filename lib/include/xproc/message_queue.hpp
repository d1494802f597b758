// SPDX-License-Identifier: MIT
#pragma once
/// @file message_queue.hpp
/// `xproc::message_queue`: a drop-in for Boost 1.74's `boost::interprocess::message_queue`
/// on a lock-free core. Change the type name, keep the code:
///
///   namespace bip = boost::interprocess;
///   // using message_queue = bip::message_queue;     // before
///   using message_queue = xproc::message_queue;       // after
///   bip::message_queue::remove("q");                  // (either remove works on either name)
///   message_queue mq(bip::create_only, "q", 100, 64);
///   mq.send("hi", 2, 0);
///
/// Same constructors (Boost's own `create_only`, `open_or_create`, `open_only` tags), the
/// same calls and the same exceptions (`boost::interprocess::interprocess_exception`) in
/// the same situations: a message larger than `get_max_msg_size()` or a receive buffer
/// smaller than it throws `size_error`; `create_only` on an existing name throws
/// `already_exists_error`; `open_only` on a missing name `not_found_error`; a refused
/// open `security_error`. Deadlines are `boost::posix_time::ptime` in UTC
/// (`microsec_clock::universal_time()`), as Boost takes them; `pos_infin` waits forever.
/// This header includes Boost.Interprocess headers (it is a Boost drop-in); the rest of
/// xproc's public headers do not. Only Boost's headers are needed, no Boost library.
///
/// Differences from Boost, all deliberate:
/// - Priorities: at most MQ_LANES (16) distinct priority values over the life of a queue
///   (any unsigned values). Each value is bound to a lane the first time it is sent; a
///   17th distinct value throws `interprocess_exception` with `out_of_resource_error`.
/// - The segment is not Boost's: a Boost program and an xproc program cannot share one
///   queue (both must switch). The name is a POSIX shm name like Boost's ("q" or "/q").
/// - Opening validates the segment (magic, layout version, geometry, owner uid): a
///   segment that is not an xproc queue throws `corrupted_error` (another layout version
///   too, with both versions in what()); one still being created is waited for (1 s).
/// - A sender or receiver killed at any instruction never blocks the others (no mutex
///   exists); see "Dead peers" below.
/// - Like Boost, a queue of another user is opened when its mode allows (the creator chose
///   the permissions); the owner uid recorded in its header must match the file's owner
///   (else `security_error`).
/// - get_num_msg() counts messages being sent or received too (a snapshot).
/// - A process that forks with a raw clone(2) (no pthread_atfork handlers) keeps the
///   parent's cached pid: use fork().
///
/// Thread safety: every call may be made concurrently from any threads and processes.
/// The object holds the mapping, immutable geometry and a cache of one position.
///
/// Segment (all offsets in bytes; positions are 64-bit and only increase):
/// ```
///    0 +---------------------------------------------------------------+
///      | identity, written once by the creator, `version` last:        |
///      | magic "XPROCMQ1" | version | header_size | max_num_msg |        |
///      | max_msg_size | slot_size | lane_capacity | lanes | owner_uid | |
///      | creator pid + start time | total_size                         |
///  128 +---------------------------------------------------------------+
///      | count: messages reserved or stored in lanes 1..15             |
///  256 +---------------------------------------------------------------+
///      | futex words: recv_word, recv_waiters, send_word, send_waiters |
///  384 +---------------------------------------------------------------+
///      | counters: skipped (dead senders), lost (dead receivers),      |
///      | recounted (capacity reservations recovered)                   |
///  512 +---------------------------------------------------------------+
///      | lane tags: u64[16], priority + 1 (0 = lane unused)            |
///  640 +---------------------------------------------------------------+
///      | lane 0: enqueue_pos (own 128-byte line), dequeue_pos (own)    |
///      | ... lanes 1..15                                               |
/// 4736 +===============================================================+ header_size
///      | lane 0 cells [lane_capacity], lane 1 cells, ... lane 15 cells |
///      +---------------------------------------------------------------+
///
/// Cell (slot_size bytes = 32 + max_msg_size rounded up to 64: a cell starts on a cache
/// line, so a sender writing one cell never shares a line with a receiver reading the
/// previous one):
///  +0  u64 seq         Vyukov sequence, stored as (seq - cell index) so that a
///                      zero-filled lane is a valid empty lane; bit 63 = SKIPPED
///  +8  u64 claim       who claimed the cell for its current turn:
///                      (position & 2^41-1) << 22 | pid, bit 63 set for a receiver
///  +16 u64 start_time  the claimant's start time (clock ticks since boot)
///  +24 u32 length      payload bytes (validated <= max_msg_size on receipt)
///  +28 u32 reserved
///  +32 payload[max_msg_size]
/// ```
///
/// Protocol. One bounded MPMC queue (Dmitry Vyukov's, per-cell sequence numbers and a CAS
/// on the lane's enqueue/dequeue position) per lane; lane_capacity = bit_ceil(max_num_msg)
/// cells each. A lane is bound to a priority by a CAS of its tag from 0, in index order;
/// lanes are never unbound. A receiver takes from the non-empty lane with the highest
/// priority (FIFO within a lane).
///
/// Capacity (at most max_num_msg messages in all lanes, as in Boost). Messages in lane 0
/// (the first priority used; for most programs the only one) are counted by its positions,
/// enqueue_pos - dequeue_pos, so a queue with one priority has no shared counter on its hot
/// path; messages in lanes 1..15 by `count`:
/// - lane 0 sender: c = count; admits position p if (p + 1 - dequeue_pos) + c <= max
///   (dequeue_pos cached in the object, reloaded when it says full); CAS enqueue_pos; loads
///   count again: if it changed and p no longer fits, it gives the cell up (publishes it
///   SKIPPED) and reports full.
/// - other senders: count += 1, then admit if count + (lane 0's enqueue - dequeue) <= max,
///   else count -= 1 and report full; the receiver of such a message does count -= 1 after
///   it released the cell.
/// Both sides make an RMW then a seq_cst load of what the other one changes, so at least one
/// of two racing senders sees the other (spurious "full" possible, excess impossible).
///
///   sender:   admit (above) -> CAS lane.enqueue_pos p -> p+1
///             -> claim = p|pid, start_time -> copy payload -> CAS seq p -> p+1 (release)
///   receiver: seq == p+1 (acquire) -> CAS lane.dequeue_pos p -> p+1 -> claim = p|pid|R
///             -> copy payload -> CAS seq p+1 -> p+cap (release) -> (lanes 1..15) count -= 1
///
/// Prefetch: a lane-0 sender, after claiming position p, asks for the cell of p + 16 with
/// PREFETCHW (when its cached dequeue position says no receiver is near it).
///
/// Waiting: blocking calls poll every 300 ns for up to 100 us (yielding the CPU every few
/// polls; between polls they touch no shared memory, so the side being waited for keeps its
/// cache lines), then
/// sleep on a futex word (no mutex): a waiter increments recv_waiters/send_waiters, makes a
/// full fence plus membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) when available (as the ring),
/// re-checks, and sleeps on recv_word/send_word; the other side, after its CAS and a fence
/// (a compiler fence when membarrier is available), bumps the word and wakes only when
/// waiters are announced. Sleeps are sliced (MQ_LIVENESS_INTERVAL) so that a waiter also
/// recovers cells left by dead peers.
///
/// Dead peers (a process killed at any instruction):
/// - a sender killed after claiming a cell and before publishing it leaves the cell's seq
///   at p: the lane is stuck at that cell. A receiver that finds the head cell unpublished
///   while enqueue_pos > p reads its claim; if the claim is for p and its pid + start
///   time is dead, or no claim for p was written for MQ_ANONYMOUS_CLAIM_TIMEOUT (the
///   sender died in the two instructions between its CAS and its claim store), it
///   marks the cell SKIPPED with a CAS of seq p -> p+1|SKIPPED: the message is dropped,
///   its capacity returned and `skipped` counted. A sender that was only stopped
///   that long finds its publishing CAS failed and sends again.
/// - a receiver killed after claiming a cell and before releasing it leaves seq at p+1: a
///   sender that finds that cell still occupied checks the claim the same way and
///   releases it (CAS p+1 -> p+cap), returning the capacity and counting it in `lost`.
///   This happens when a sender reaches that cell again, one lap later (lane_capacity
///   messages of that lane).
/// - a sender to lanes 1..15 killed between reserving a unit of count and claiming a cell
///   (a few instructions) leaks that unit; a sender that finds the queue full with no
///   progress for a whole MQ_LIVENESS_INTERVAL recounts (count = messages in lanes 1..15)
///   and counts the correction in `recounted`. (Lane 0 has no such window.)
/// - "no claim written for MQ_ANONYMOUS_CLAIM_TIMEOUT" is measured by each message_queue
///   object, from the first time any of its calls saw that cell without a claim for its
///   position, across calls: a loop of short timed_receive or try_receive calls recovers
///   the cell as one long receive would (a cell is only looked at after a call has slept
///   once, or on a try_ call's second look).
/// A waiter registered in recv_waiters/send_waiters that dies leaves the count raised:
/// the other side then makes a futex_wake call per message (slower, still correct).
///
/// Shared memory is untrusted: geometry is validated at open and kept in this object (the
/// segment's copy is never re-read); lengths read from cells are checked against
/// max_msg_size (a bad one is skipped and counted as corrupt, never copied).

#include <sys/types.h>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/permissions.hpp>

namespace xproc {

class SharedMemory;

namespace mq {

/// "XPROCMQ1" read as a little-endian u64.
inline constexpr std::uint64_t MQ_MAGIC = 0x3151'4D43'4F52'5058ULL;
/// Layout version. Bump when any field of MqHeader or MqCell moves or changes meaning,
/// when the seq encoding (relative to the cell index, SKIPPED bit) or the claim encoding
/// changes, or when the lane count changes.
/// 2: cells aligned to 64 bytes (1: 8 bytes).
inline constexpr std::uint32_t MQ_LAYOUT_VERSION = 2;
/// Lanes, i.e. distinct priority values a queue can carry over its life.
inline constexpr std::uint32_t MQ_LANES = 16;
inline constexpr std::size_t MQ_LINE = 128;
/// Largest max_msg_size accepted (64 MiB), largest max_num_msg (2^24).
inline constexpr std::uint64_t MQ_MAX_MSG_SIZE = std::uint64_t{1} << 26;
inline constexpr std::uint64_t MQ_MAX_NUM_MSG = std::uint64_t{1} << 24;
/// Bit 63 of a cell's seq: the cell was given up (dead sender); it carries no message.
inline constexpr std::uint64_t MQ_SEQ_SKIPPED = std::uint64_t{1} << 63;
/// Bit 63 of a cell's claim: the claimant is a receiver.
inline constexpr std::uint64_t MQ_CLAIM_RECEIVER = std::uint64_t{1} << 63;
/// The claim word: (position & (2^MQ_CLAIM_POS_BITS - 1)) << MQ_CLAIM_PID_BITS | pid, with
/// MQ_CLAIM_RECEIVER for a receiver.
inline constexpr unsigned MQ_CLAIM_PID_BITS = 22;
inline constexpr unsigned MQ_CLAIM_POS_BITS = 41;
static_assert(MQ_CLAIM_PID_BITS + MQ_CLAIM_POS_BITS == 63);
/// Whether `claim` is a claim for `pos` by a receiver (`receiver`) or a sender.
constexpr bool mq_claim_matches(std::uint64_t claim, std::uint64_t pos, bool receiver) noexcept {
    constexpr std::uint64_t mask = (std::uint64_t{1} << MQ_CLAIM_POS_BITS) - 1;
    return ((claim >> MQ_CLAIM_PID_BITS) & mask) == (pos & mask) &&
           ((claim & MQ_CLAIM_RECEIVER) != 0) == receiver;
}
/// The claimant's pid.
constexpr std::int32_t mq_claim_pid(std::uint64_t claim) noexcept {
    return static_cast<std::int32_t>(claim & ((std::uint64_t{1} << MQ_CLAIM_PID_BITS) - 1));
}
/// How often a waiter wakes to look for dead peers' cells.
inline constexpr std::chrono::milliseconds MQ_LIVENESS_INTERVAL{100};
/// How long a cell may stay claimed with no claim record before its claimant is
/// presumed dead (killed between its CAS of the position and its claim store).
inline constexpr std::chrono::milliseconds MQ_ANONYMOUS_CLAIM_TIMEOUT{1000};

/// Cells a message_queue object saw claimed with no claim record, and since when (private
/// to message_queue.cpp).
struct UnclaimedCells;

struct alignas(MQ_LINE) LanePositions {
    std::uint64_t enqueue_pos;  ///< next position a sender claims (atomic, CAS)
    std::uint8_t reserved0[MQ_LINE - 8];
    std::uint64_t dequeue_pos;  ///< next position a receiver claims (atomic, CAS)
    std::uint8_t reserved1[MQ_LINE - 8];
};

/// Segment header at offset 0; see the diagram in this file.
struct alignas(MQ_LINE) MqHeader {
    // Line 0: identity, written once by the creator; `version` last, with release.
    std::uint64_t magic;          ///< MQ_MAGIC
    std::uint32_t version;        ///< MQ_LAYOUT_VERSION; 0 = not ready (atomic)
    std::uint32_t header_size;    ///< sizeof(MqHeader): cells start here
    std::uint64_t max_num_msg;    ///< capacity in messages
    std::uint64_t max_msg_size;   ///< largest payload
    std::uint64_t slot_size;      ///< bytes per cell: 32 + max_msg_size rounded up to 64
    std::uint64_t lane_capacity;  ///< cells per lane: bit_ceil(max(max_num_msg, 1))
    std::uint32_t lanes;          ///< MQ_LANES
    std::uint32_t owner_uid;      ///< effective uid of the creator (== the file's owner)
    std::int32_t creator_pid;
    std::uint32_t flags;  ///< 0
    std::uint64_t creator_start_time;
    std::uint64_t total_size;  ///< header_size + lanes * lane_capacity * slot_size
    std::uint8_t reserved0[48];
    // Line 1 (atomic).
    std::uint64_t count;  ///< messages reserved or stored, <= max_num_msg
    std::uint8_t reserved1[120];
    // Line 2: futex words and waiter counts (atomic).
    std::uint32_t recv_word;     ///< bumped after a publish when receivers wait
    std::uint32_t recv_waiters;  ///< receivers announced asleep (or about to)
    std::uint32_t send_word;     ///< bumped after a release when senders wait
    std::uint32_t send_waiters;
    std::uint8_t reserved2[112];
    // Line 3: recovery counters (atomic, relaxed).
    std::uint64_t skipped;    ///< cells given up by receivers (dead or stuck senders)
    std::uint64_t lost;       ///< cells released by senders for dead receivers (message lost)
    std::uint64_t recounted;  ///< capacity units recovered by a recount
    std::uint64_t corrupt;    ///< cells with an invalid length, dropped
    std::uint8_t reserved3[96];
    // Line 4: lane tags (atomic): priority + 1, 0 = free.
    std::uint64_t lane_tag[MQ_LANES];
    // Lines 5..: positions.
    LanePositions lane[MQ_LANES];
};

/// Header of one cell; the payload follows.
struct MqCell {
    std::uint64_t seq;
    std::uint64_t claim;
    std::uint64_t start_time;
    std::uint32_t length;
    std::uint32_t reserved;
};

static_assert(std::is_standard_layout_v<MqHeader> && std::is_trivially_copyable_v<MqHeader>);
static_assert(std::is_standard_layout_v<MqCell> && std::is_trivially_copyable_v<MqCell>);
static_assert(std::is_standard_layout_v<LanePositions> && std::is_trivially_copyable_v<LanePositions>);
static_assert(sizeof(LanePositions) == 256);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free);
static_assert(offsetof(MqHeader, magic) == 0);
static_assert(offsetof(MqHeader, version) == 8);
static_assert(offsetof(MqHeader, header_size) == 12);
static_assert(offsetof(MqHeader, max_num_msg) == 16);
static_assert(offsetof(MqHeader, max_msg_size) == 24);
static_assert(offsetof(MqHeader, slot_size) == 32);
static_assert(offsetof(MqHeader, lane_capacity) == 40);
static_assert(offsetof(MqHeader, lanes) == 48);
static_assert(offsetof(MqHeader, owner_uid) == 52);
static_assert(offsetof(MqHeader, creator_pid) == 56);
static_assert(offsetof(MqHeader, creator_start_time) == 64);
static_assert(offsetof(MqHeader, total_size) == 72);
static_assert(offsetof(MqHeader, count) == 128);
static_assert(offsetof(MqHeader, recv_word) == 256);
static_assert(offsetof(MqHeader, recv_waiters) == 260);
static_assert(offsetof(MqHeader, send_word) == 264);
static_assert(offsetof(MqHeader, send_waiters) == 268);
static_assert(offsetof(MqHeader, skipped) == 384);
static_assert(offsetof(MqHeader, lost) == 392);
static_assert(offsetof(MqHeader, recounted) == 400);
static_assert(offsetof(MqHeader, corrupt) == 408);
static_assert(offsetof(MqHeader, lane_tag) == 512);
static_assert(offsetof(MqHeader, lane) == 640);
static_assert(sizeof(MqHeader) == 640 + MQ_LANES * 256);
static_assert(sizeof(MqCell) == 32);
static_assert(offsetof(MqCell, seq) == 0);
static_assert(offsetof(MqCell, claim) == 8);
static_assert(offsetof(MqCell, start_time) == 16);
static_assert(offsetof(MqCell, length) == 24);

/// Bytes per cell for a given max_msg_size.
constexpr std::uint64_t mq_slot_size(std::uint64_t max_msg_size) noexcept {
    return (sizeof(MqCell) + max_msg_size + 63) & ~std::uint64_t{63};
}

/// Bytes of a whole queue segment (header, then MQ_LANES lanes of `lane_capacity` cells of
/// `slot_size` bytes), or 0 on overflow.
constexpr std::uint64_t mq_segment_size(std::uint64_t lane_capacity, std::uint64_t slot_size) noexcept {
    std::uint64_t cells = 0;
    std::uint64_t bytes = 0;
    if (__builtin_mul_overflow(lane_capacity, std::uint64_t{MQ_LANES}, &cells) ||
        __builtin_mul_overflow(cells, slot_size, &bytes) ||
        __builtin_add_overflow(bytes, sizeof(MqHeader), &bytes)) {
        return 0;
    }
    return bytes;
}

/// Recovery counters of a queue (see "Dead peers").
struct MqStats {
    std::uint64_t skipped = 0;
    std::uint64_t lost = 0;
    std::uint64_t recounted = 0;
    std::uint64_t corrupt = 0;
    std::uint32_t lanes_bound = 0;
};

}  // namespace mq

/// A many-to-many, bounded, prioritised message queue in a named shared-memory segment,
/// with the interface of `boost::interprocess::message_queue` (see the file comment).
class message_queue {
  public:
    using size_type = std::size_t;

    /// Creates queue `name` for `max_num_msg` messages of up to `max_msg_size` bytes, with
    /// the permissions' mode (Boost's default: 0644). Throws interprocess_exception:
    /// already_exists_error when the name exists, size_error for sizes beyond
    /// MQ_MAX_NUM_MSG / MQ_MAX_MSG_SIZE, the errno's translation for other failures.
    message_queue(boost::interprocess::create_only_t, const char* name, size_type max_num_msg,
                  size_type max_msg_size,
                  const boost::interprocess::permissions& perm = boost::interprocess::permissions());
    /// Opens `name`, or creates it as above when it does not exist (the sizes are then
    /// ignored for an existing queue, as in Boost).
    message_queue(boost::interprocess::open_or_create_t, const char* name, size_type max_num_msg,
                  size_type max_msg_size,
                  const boost::interprocess::permissions& perm = boost::interprocess::permissions());
    /// Opens an existing queue. Throws not_found_error when it does not exist,
    /// corrupted_error when the segment is not an xproc queue of this layout version.
    message_queue(boost::interprocess::open_only_t, const char* name);

    message_queue(const message_queue&) = delete;
    message_queue& operator=(const message_queue&) = delete;
    /// Unmaps; the queue stays until remove().
    ~message_queue();

    /// Sends, waiting while the queue is full. Throws size_error when
    /// buffer_size > get_max_msg_size(), out_of_resource_error for a priority beyond the
    /// lanes.
    void send(const void* buffer, size_type buffer_size, unsigned int priority);
    /// Sends if there is room now; false when full.
    bool try_send(const void* buffer, size_type buffer_size, unsigned int priority);
    /// Sends, waiting at most until abs_time (UTC); false when still full then.
    bool timed_send(const void* buffer, size_type buffer_size, unsigned int priority,
                    const boost::posix_time::ptime& abs_time);

    /// Receives the oldest message of the highest priority, waiting while empty. Throws
    /// size_error when buffer_size < get_max_msg_size().
    void receive(void* buffer, size_type buffer_size, size_type& recvd_size, unsigned int& priority);
    /// Receives if a message is there now; false when empty.
    bool try_receive(void* buffer, size_type buffer_size, size_type& recvd_size, unsigned int& priority);
    /// Receives, waiting at most until abs_time (UTC); false when still empty then.
    bool timed_receive(void* buffer, size_type buffer_size, size_type& recvd_size, unsigned int& priority,
                       const boost::posix_time::ptime& abs_time);

    size_type get_max_msg() const noexcept { return m_max_num_msg; }
    size_type get_max_msg_size() const noexcept { return m_max_msg_size; }
    /// Messages stored or being sent (a snapshot).
    size_type get_num_msg() const noexcept;

    /// Removes the name (shm_unlink). Existing users keep their mapping. False on error.
    static bool remove(const char* name);

    /// xproc extension: the recovery counters.
    mq::MqStats stats() const noexcept;

  private:
    enum class Block : std::uint8_t { non_blocking, blocking, timed };
    using Deadline = std::chrono::steady_clock::time_point;

    void open_or_create(int mode, const char* name, size_type max_num_msg, size_type max_msg_size,
                        unsigned perm);
    bool do_send(Block block, const void* buffer, size_type size, unsigned priority, Deadline deadline);
    bool do_receive(Block block, void* buffer, size_type size, size_type& recvd, unsigned& priority,
                    Deadline deadline);
    static Deadline to_deadline(const boost::posix_time::ptime& abs_time);
    /// The view of the segment that send and receive work on (defined in message_queue.cpp).
    template <typename View>
    View view() const noexcept;

    std::unique_ptr<SharedMemory> m_shm;
    std::byte* m_data = nullptr;  // the segment (header, then cells)
    std::uint64_t m_max_num_msg = 0;
    std::uint64_t m_max_msg_size = 0;
    std::uint64_t m_slot_size = 0;
    std::uint64_t m_lane_capacity = 0;
    /// A lower bound of lane 0's dequeue position (it only grows), reloaded when it says full.
    mutable std::atomic<std::uint64_t> m_deq0_cache{0};
    std::unique_ptr<mq::UnclaimedCells> m_unclaimed;  // shared by the calls of all threads using this object
    bool m_fast_fence = false;  // membarrier registered: wake-ups need no mfence (see the ring)
};

}  // namespace xproc
