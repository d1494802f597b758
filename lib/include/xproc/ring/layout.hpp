// SPDX-License-Identifier: MIT
#pragma once
/// @file ring/layout.hpp
/// The shared-memory format of an xproc ring: segment header and record header.
///
/// This is an ABI shared between processes (and library versions): every field has a
/// pinned offset, checked here by static_assert and in tests/unit/ring_test.cpp. The
/// structs hold plain integers; shared fields are accessed through `std::atomic_ref`
/// (which keeps the structs trivially copyable and standard layout). No pointers are
/// stored, only positions and sizes.
///
/// Segment (offsets in bytes; each header line is 128 bytes so that the two sides never
/// write the same line on the hot path):
/// ```
///    0 +-------------------------------------------------------------+
///      | identity (written once by the creator, `version` last)      |
///      | magic "XPROCRNG" | version | header_size | capacity |        |
///      | max_record | kind | creator pid | creator start time | slots |
///  128 +-------------------------------------------------------------+
///      | tail, write_limit, dirty_to (producer-owned; MPSC: CAS tail)|
///  256 +-------------------------------------------------------------+
///      | head, zeroed   (consumer-owned positions)                   |
///  384 +-------------------------------------------------------------+
///      | wait words: consumer_waiting, producer_waiting (futex),     |
///      | doorbell_fd                                                 |
///  512 +-------------------------------------------------------------+
///      | roles: producer pid + start time, consumer pid + start time |
///  640 +-------------------------------------------------------------+
///      | producer counters: messages, bytes, full waits, wake-ups,   |
///      | high-water mark, dropped                                    |
///  768 +-------------------------------------------------------------+
///      | consumer counters: empty waits, wake-ups, skipped, lapped   |
///  896 +-------------------------------------------------------------+
///      | reserved (zero)                                             |
/// 1024 +-------------------------------------------------------------+
///      | 48 peer slots of 64 bytes: MPSC producers (pid, start time, |
///      | outstanding claim) or broadcast readers (pid, start time,   |
///      | read position, lapped count)                                |
/// 4096 +=============================================================+ header_size
///      | data area: `capacity` bytes (a power of two) of records     |
///      +-------------------------------------------------------------+
/// ```
///
/// Positions (`zeroed`, `head`, `tail`) are 64-bit byte counts that only increase; the
/// index of a position in the data area is `position & (capacity - 1)`. `tail - head`
/// bytes are readable (SPSC) or claimed (MPSC). All positions are multiples of 8.
///
/// Free space (SPSC, MPSC): the consumer zeroes what it has consumed, so that a header
/// slot the producer has not written since reads as 0 ("not committed"), and says so with
/// `zeroed`: the data area before `zeroed` is free and zero, and producers write no
/// further than `zeroed + capacity`. Releasing a batch: store `head` (where a consumer
/// taking over resumes), zero the batch, store `zeroed` (release). `zeroed <= head`. While
/// the header slot at `head` is not committed, a producer may be writing the cache line
/// that holds it, and the consumer zeroes only up to the start of that line: `zeroed` then
/// lags `head` by less than RING_ZERO_LINE bytes, and the rest is zeroed by the next
/// release or when the consumer closes. (The consumer zeroes up to `head` where the lag
/// could keep the largest record, with its padding, from fitting a drained ring.) An SPSC
/// consumer that frees room in steps (RingConsumer::set_release_step, also set by
/// set_slip) stores `head` after each call and the rest once per step: `zeroed` then lags
/// `head` by less than release_step_max(capacity) until a call finds nothing to read,
/// waits or closes. A larger gap,
/// or any gap of more than a line with no consumer attached, means a consumer died between
/// the two stores; the next consumer zeroes `[zeroed, head)` when it attaches.
///
/// Record (8-byte aligned, never split across the end of the data area):
/// ```
///  +0  u32 length   payload bytes (not counting this header or alignment)
///  +4  u16 type     RecordType: data, padding, end_of_stream, skipped; 0 = not committed
///  +6  u16 flags    0
///  +8  payload[length], then zero to 7 bytes up to the next multiple of 8
/// ```
/// When a record does not fit between its position and the end of the data area, the
/// producer writes a padding record covering exactly the rest of the area (its `length`
/// is the bytes after its header, possibly 0) and the record starts at index 0.
///
/// Kinds:
/// - spsc: each record is committed by an 8-byte release store of its header, and the
///   consumer polls the header at `head`, not `tail`: while both sides keep up, one cache
///   line moves per message instead of two (the record's and tail's). To tell a fresh
///   header from a stale one of the previous lap, the header slot after the last committed
///   record is always zero, so the producer keeps 8 bytes free (`tail - zeroed <=
///   capacity - 8`). format_ring zeroes the area and the consumer's zeroing keeps it so;
///   the producer zeroes that slot itself only where it may have written before: after a
///   commit shorter than its claim or an abort (up to `dirty_to`, which it stores when it
///   closes, for the next producer), and during its whole first lap when it takes over
///   from a producer that died (whose unpublished batch or half-written record may lie
///   anywhere ahead). It stores `tail` before each commit, so
///   `head <= tail` for anyone who loads head first. A batch (commit_batched) holds back
///   the header of its first record and stores it last, so the consumer sees the batch at
///   once. A producer that attaches finds the real end by walking the committed records
///   from head (a dead producer's unpublished batch lies behind an uncommitted header and
///   is overwritten). The consumer stores `head` and `zeroed` after reading a batch.
/// - mpsc: producers claim space with a CAS on `tail` (after recording the claim in their
///   slot), write the record header with type 0, the payload, then store the header's
///   8 bytes with the real type (release): the per-record commit. The consumer reads up to
///   the first uncommitted record and releases it as above (the zeroing is what keeps a
///   stale header from being taken for a committed one). A record whose claimant died is
///   skipped using the claim recorded in the dead producer's slot.
/// - broadcast: one writer that never waits; before writing over `[p, q)` it stores
///   `write_limit = q` then a release fence. Readers keep their own positions; a reader
///   at `pos` has been lapped when `write_limit - capacity > pos`, checked after copying
///   a record (acquire fence, then load write_limit), and resumes at `tail`.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace xproc::ring {

/// "XPROCRNG" read as a little-endian u64.
inline constexpr std::uint64_t RING_MAGIC = 0x474E5243'4F525058ULL;

/// Layout version of the segment and record formats.
/// Bump when any field of RingHeader or RecordHeader moves, changes size or meaning, when
/// a RecordType value or a RingKind value changes meaning, or when the record alignment or
/// the wrap rule (padding record) changes. Adding a use for a reserved field that old
/// readers may ignore (it stays 0 for them) does not need a bump.
/// History: 2 added the peer slots; 3 made SPSC commit per record header (the consumer
/// polls the header at head, not tail) with the zeroed slot after tail. (3 was first
/// tried and withdrawn in November 2026, when zeroing the slot on the commit path and
/// per-record visibility of batches cost more than they gained; the format is the same.)
/// 4 moved the zeroing of consumed space from the SPSC producer (which zeroed ahead of
/// its records) to the consumer, for both SPSC and MPSC, and added `zeroed`: producers
/// now take their free space from it, not from `head`.
inline constexpr std::uint32_t RING_LAYOUT_VERSION = 4;

/// Peer slots after the fixed header lines.
inline constexpr std::uint32_t RING_SLOTS = 48;
/// Size of one header line; a fixed ABI value, not hardware_destructive_interference_size.
inline constexpr std::size_t RING_LINE = 128;
/// Records start at multiples of this.
inline constexpr std::size_t RING_RECORD_ALIGN = 8;
/// Smallest data area a ring accepts.
inline constexpr std::uint64_t RING_MIN_CAPACITY = 64;
/// SPSC: bytes the producer keeps free after its last record (the zeroed next header).
inline constexpr std::uint64_t RING_SPSC_GAP = 8;
/// SPSC/MPSC: an attached consumer's `zeroed` may lag `head` by less than this (see above).
inline constexpr std::uint64_t RING_ZERO_LINE = 64;
/// Start of the RING_ZERO_LINE-byte line that holds `position`: an attached consumer's
/// `zeroed` is at least this for its `head`.
constexpr std::uint64_t zero_line_start(std::uint64_t position) noexcept {
    return position & ~(RING_ZERO_LINE - 1);
}
/// SPSC: the largest step of a consumer that frees room in steps (set_release_step caps
/// it here): the most bytes it keeps read but not zeroed.
constexpr std::uint64_t release_step_max(std::uint64_t capacity) noexcept {
    return capacity / 8;
}
/// Largest data area a ring accepts (1 TiB).
inline constexpr std::uint64_t RING_MAX_CAPACITY = std::uint64_t{1} << 40;

/// Which protocol a segment speaks.
enum class RingKind : std::uint32_t {
    spsc = 1,       ///< one producer, one consumer
    mpsc = 2,       ///< many producers (CAS claim), one consumer
    broadcast = 3,  ///< one producer, many readers that may be lapped
};

/// Type of a record in the data area.
enum class RecordType : std::uint16_t {
    data = 1,           ///< a message
    uncommitted = 0,    ///< SPSC, MPSC: not committed yet (being written, or the free slot after tail)
    padding = 2,        ///< fills the end of the data area at wrap-around; skipped by readers
    end_of_stream = 3,  ///< the producer has no more messages (length 0)
    skipped = 4,        ///< MPSC: space given up (an aborted or shortened claim, a dead producer's)
};

/// One peer slot: an MPSC producer or a broadcast reader. A slot is free while pid is 0;
/// a process takes one with a CAS of pid from 0 (or from a dead holder's pid).
struct PeerSlot {
    std::int32_t pid;          ///< holder (atomic); 0 = free
    std::uint32_t state;       ///< reserved, 0
    std::uint64_t start_time;  ///< holder's start time (clock ticks since boot)
    std::uint64_t position;    ///< MPSC: start of the outstanding claim; broadcast: read position
    std::uint64_t claim_size;  ///< MPSC: bytes claimed (padding included), 0 = none; broadcast: 0
    std::uint64_t messages;    ///< messages this peer wrote (MPSC) or read (broadcast)
    std::uint64_t lapped;      ///< broadcast: times this reader was lapped
    std::uint8_t reserved[16];
};

/// Segment header; lives at offset 0 of the segment. See the diagram above.
struct alignas(RING_LINE) RingHeader {
    // Line 0: identity. Written once by the creator; `version` last, with release.
    std::uint64_t magic;               ///< RING_MAGIC
    std::uint32_t version;             ///< RING_LAYOUT_VERSION; 0 = not ready (atomic)
    std::uint32_t header_size;         ///< sizeof(RingHeader): the data area starts here
    std::uint64_t capacity;            ///< bytes in the data area, a power of two
    std::uint32_t max_record;          ///< largest payload accepted, in bytes
    std::uint32_t kind;                ///< RingKind
    std::int32_t creator_pid;          ///< pid of the process that formatted the segment
    std::uint32_t flags;               ///< reserved, 0
    std::uint64_t creator_start_time;  ///< its start time (clock ticks since boot), 0 if unknown
    std::uint32_t slots;               ///< RING_SLOTS
    std::uint32_t reserved0a;
    std::uint8_t reserved0[72];

    // Line 1: written only by the producer (MPSC: by CAS among producers) (atomic).
    std::uint64_t tail;         ///< position after the last committed (MPSC: claimed) record
    std::uint64_t write_limit;  ///< broadcast: end of what the writer may be overwriting
    /// SPSC: a producer may have written bytes no committed record covers (a claim it
    /// aborted or shortened) from tail up to here; stored when it closes, 0 after format.
    std::uint64_t dirty_to;
    std::uint8_t reserved1[104];

    // Line 2: written only by the consumer (atomic).
    std::uint64_t head;    ///< position of the first record not yet released
    std::uint64_t zeroed;  ///< SPSC/MPSC: the area before it is free and zero (producers' limit)
    std::uint8_t reserved2[112];

    // Line 3: wait words (atomic; 32-bit for futex(2)). Bits: WAIT_SLEEPING, WAIT_DOORBELL.
    std::uint32_t consumer_waiting;  ///< futex word: consumers (readers) waiting for data
    std::uint32_t producer_waiting;  ///< futex word: producers waiting for space
    std::int32_t doorbell_fd;        ///< consumer's doorbell pipe (write end), valid with WAIT_DOORBELL
    std::uint32_t reserved3a;
    std::uint8_t reserved3[112];

    // Line 4: roles (atomic). Who holds each single role, for liveness checks; 0 = nobody.
    std::int32_t producer_pid;  ///< SPSC producer or broadcast writer
    std::uint32_t reserved4a;
    std::uint64_t producer_start_time;
    std::int32_t consumer_pid;  ///< SPSC or MPSC consumer
    std::uint32_t reserved4b;
    std::uint64_t consumer_start_time;
    std::uint8_t reserved4[96];

    // Line 5: counters written by producers (atomic, relaxed; MPSC: fetch_add).
    std::uint64_t messages;          ///< data records committed
    std::uint64_t bytes;             ///< payload bytes committed
    std::uint64_t full_waits;        ///< times a producer waited for space
    std::uint64_t producer_wakeups;  ///< times a producer woke a sleeping consumer
    /// SPSC: most bytes in use the producer measured against head: whenever the ring looks
    /// full (exact then), and up to 16 times a lap when its cached head allows a new high.
    std::uint64_t high_water;
    std::uint64_t dropped;  ///< messages a producer gave up on (timed out, peer gone)
    std::uint8_t reserved5[80];

    // Line 6: counters written by consumers (atomic, relaxed; broadcast: fetch_add).
    std::uint64_t empty_waits;       ///< times a consumer waited for data
    std::uint64_t consumer_wakeups;  ///< times a consumer woke a sleeping producer
    std::uint64_t skipped;           ///< records skipped (left half-written by a dead producer)
    std::uint64_t lapped;            ///< broadcast: times a reader was lapped
    std::uint8_t reserved6[96];

    // Line 7: reserved.
    std::uint8_t reserved7[128];

    // 1024..4095: peer slots.
    PeerSlot slot[RING_SLOTS];
};

/// Bits of the wait words.
inline constexpr std::uint32_t WAIT_SLEEPING = 1;  ///< a waiter sleeps in futex(FUTEX_WAIT) on the word
inline constexpr std::uint32_t WAIT_DOORBELL = 2;  ///< the consumer waits on its doorbell pipe (epoll)

/// Header of one record in the data area.
struct RecordHeader {
    std::uint32_t length;  ///< payload bytes
    std::uint16_t type;    ///< RecordType
    std::uint16_t flags;   ///< 0
};

/// Bytes a record with `length` payload bytes takes in the data area.
constexpr std::uint64_t record_size(std::uint64_t length) noexcept {
    return sizeof(RecordHeader) + ((length + RING_RECORD_ALIGN - 1) & ~std::uint64_t{RING_RECORD_ALIGN - 1});
}

static_assert(std::is_standard_layout_v<RingHeader>);
static_assert(std::is_trivially_copyable_v<RingHeader>);
static_assert(std::is_standard_layout_v<PeerSlot>);
static_assert(std::is_trivially_copyable_v<PeerSlot>);
static_assert(sizeof(PeerSlot) == 64);
static_assert(offsetof(PeerSlot, pid) == 0);
static_assert(offsetof(PeerSlot, start_time) == 8);
static_assert(offsetof(PeerSlot, position) == 16);
static_assert(offsetof(PeerSlot, claim_size) == 24);
static_assert(offsetof(PeerSlot, messages) == 32);
static_assert(offsetof(PeerSlot, lapped) == 40);
static_assert(sizeof(RingHeader) == 4096);
static_assert(alignof(RingHeader) == RING_LINE);
static_assert(offsetof(RingHeader, magic) == 0);
static_assert(offsetof(RingHeader, version) == 8);
static_assert(offsetof(RingHeader, header_size) == 12);
static_assert(offsetof(RingHeader, capacity) == 16);
static_assert(offsetof(RingHeader, max_record) == 24);
static_assert(offsetof(RingHeader, kind) == 28);
static_assert(offsetof(RingHeader, creator_pid) == 32);
static_assert(offsetof(RingHeader, flags) == 36);
static_assert(offsetof(RingHeader, creator_start_time) == 40);
static_assert(offsetof(RingHeader, slots) == 48);
static_assert(offsetof(RingHeader, tail) == 128);
static_assert(offsetof(RingHeader, write_limit) == 136);
static_assert(offsetof(RingHeader, dirty_to) == 144);
static_assert(offsetof(RingHeader, head) == 256);
static_assert(offsetof(RingHeader, zeroed) == 264);
static_assert(offsetof(RingHeader, consumer_waiting) == 384);
static_assert(offsetof(RingHeader, producer_waiting) == 388);
static_assert(offsetof(RingHeader, doorbell_fd) == 392);
static_assert(offsetof(RingHeader, producer_pid) == 512);
static_assert(offsetof(RingHeader, producer_start_time) == 520);
static_assert(offsetof(RingHeader, consumer_pid) == 528);
static_assert(offsetof(RingHeader, consumer_start_time) == 536);
static_assert(offsetof(RingHeader, messages) == 640);
static_assert(offsetof(RingHeader, bytes) == 648);
static_assert(offsetof(RingHeader, full_waits) == 656);
static_assert(offsetof(RingHeader, producer_wakeups) == 664);
static_assert(offsetof(RingHeader, high_water) == 672);
static_assert(offsetof(RingHeader, dropped) == 680);
static_assert(offsetof(RingHeader, empty_waits) == 768);
static_assert(offsetof(RingHeader, consumer_wakeups) == 776);
static_assert(offsetof(RingHeader, skipped) == 784);
static_assert(offsetof(RingHeader, lapped) == 792);
static_assert(offsetof(RingHeader, reserved7) == 896);
static_assert(offsetof(RingHeader, slot) == 1024);

static_assert(std::is_standard_layout_v<RecordHeader>);
static_assert(std::is_trivially_copyable_v<RecordHeader>);
static_assert(sizeof(RecordHeader) == 8);
static_assert(offsetof(RecordHeader, length) == 0);
static_assert(offsetof(RecordHeader, type) == 4);
static_assert(offsetof(RecordHeader, flags) == 6);

// Every shared field is accessed through std::atomic_ref; it must be lock-free (so it works
// between processes) and the fields must be aligned as atomic_ref requires.
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::int32_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint64_t>::required_alignment <= 8);
static_assert(std::atomic_ref<std::uint32_t>::required_alignment <= 4);

}  // namespace xproc::ring
