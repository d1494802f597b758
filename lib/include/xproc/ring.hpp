// SPDX-License-Identifier: MIT
#pragma once
/// @file ring.hpp
/// The IPC core: lock-free rings of variable-length records over a block of memory
/// (normally a shared-memory segment mapped by several processes): one-to-one (SPSC),
/// many-to-one (MPSC, CAS claim) and one-to-many broadcast. The format and the protocol
/// of each kind are in `xproc/ring/layout.hpp`.
///
/// This layer does not obtain memory (see ring_segment.hpp for named segments). The caller
/// provides a `std::span<std::byte>` whose start is aligned to 128 bytes and that holds
/// `ring_segment_size(capacity)` bytes.
///
/// Waiting: calls take a Timeout (0 = return at once, WAIT_FOREVER). A waiter spins for a
/// while, then announces that it sleeps in a futex word of the segment and sleeps; the
/// other side wakes it only when that word says so, so no system call is made while both
/// sides keep up. The publish path needs no full fence: a side about to sleep issues
/// membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) instead (with a full fence on both sides as
/// the fallback when membarrier is not available). A sleeper wakes after
/// `liveness_interval` to check that its peer is alive, then at doubling intervals (up to
/// four times `liveness_interval`) while it keeps sleeping: a dead peer is reported as
/// `peer_gone`, never a hang.
///
/// Producer:
/// ```
/// auto p = RingProducer::create(memory, 1 << 20, 4096).value();
/// if (auto c = p.claim(100); c.status == WriteStatus::ok) {
///     std::memcpy(c.buffer.data(), msg, 100);
///     p.commit(100);
/// }
/// ```
/// Consumer (another thread or process, same memory):
/// ```
/// auto c = RingConsumer::attach(memory).value();
/// auto n = c.poll([](std::span<const std::byte> msg) { use(msg); }, 64);
/// ```
///
/// The segment is untrusted: every value either side reads from it is validated, and a
/// segment that fails validation gives `Error{kind=corrupt}`, never an out-of-bounds access.

#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "xproc/detail/fence.hpp"
#include "xproc/error.hpp"
#include "xproc/fd.hpp"
#include "xproc/process.hpp"
#include "xproc/ring/layout.hpp"

namespace xproc {

using ring::RingKind;

/// Outcome of a write or a claim that is not an error.
enum class WriteStatus : std::uint8_t {
    ok,         ///< written / claimed
    full,       ///< no room within the timeout (at once for timeout 0); retry later
    too_large,  ///< the message is larger than the ring's max_record: it never fits
    peer_gone,  ///< the consumer died without closing (detected while waiting for room)
};

/// Outcome of a read that is not an error.
enum class ReadStatus : std::uint8_t {
    ok,             ///< a message was copied; `length` bytes
    empty,          ///< nothing to read within the timeout (at once for timeout 0)
    too_small,      ///< the buffer is smaller than the next message (`length`); it stays in the ring
    end_of_stream,  ///< the producer wrote end-of-stream (consumed; later messages may follow)
    peer_gone,      ///< the ring is drained and its producer died without closing
    lapped,         ///< broadcast: the writer overwrote unread messages; `lost` bytes skipped
};

std::string_view to_string(WriteStatus status) noexcept;
std::string_view to_string(ReadStatus status) noexcept;

/// Result of `RingConsumer::try_read` / `read`.
struct ReadResult {
    ReadStatus status = ReadStatus::empty;
    std::size_t length = 0;  ///< bytes copied (ok) or needed (too_small)
    std::uint64_t lost = 0;  ///< lapped: bytes of the data area skipped
};

/// Result of `RingProducer::claim`: on `ok`, `buffer` is where to write the payload.
struct Claim {
    WriteStatus status = WriteStatus::full;
    std::span<std::byte> buffer;
};

/// Result of `RingProducer::emplace`: how many records were written and published; when
/// none was, `status` says why, as claim() would (full, too_large, peer_gone).
struct Emplaced {
    WriteStatus status = WriteStatus::ok;
    std::size_t count = 0;
};

/// How long a blocking call may wait: zero never blocks, a negative value waits forever.
using Timeout = std::chrono::nanoseconds;
inline constexpr Timeout NO_WAIT{0};
inline constexpr Timeout WAIT_FOREVER{-1};

/// How a side waits for room or data.
enum class WaitPolicy : std::uint8_t {
    adaptive,  ///< spin for `spin` then sleep in futex(2): fast while busy, no CPU while idle
    busy,      ///< spin (with a pause instruction) until the timeout; lowest latency, burns a CPU
    sleep,     ///< sleep in futex(2) at once
};

struct WaitOptions {
    WaitPolicy policy = WaitPolicy::adaptive;
    /// adaptive: how long to spin before sleeping.
    std::chrono::nanoseconds spin = std::chrono::microseconds(50);
    /// A sleeping waiter wakes after this long to check that its peer is alive, then at
    /// doubling intervals up to 4 times this while it keeps sleeping. Each check wakes a
    /// sleeper (about 100 us of CPU on a VM): 2 in the first idle second, then 1 a second.
    std::chrono::nanoseconds liveness_interval = std::chrono::milliseconds(250);
};

/// Options of RingProducer::attach / RingConsumer::attach.
struct AttachOptions {
    /// Take the role in the segment (record our pid and start time): exclusive for an SPSC
    /// producer or consumer, a peer slot for an MPSC producer or a broadcast reader. A role
    /// held by a live process is refused (os/EBUSY naming its pid); a dead holder's role is
    /// taken over. Without it, liveness of the other side cannot be checked by it.
    bool take_role = true;
    WaitOptions wait;
    /// Consumer: keep waiting when the producer died (for a new producer to attach)
    /// instead of reporting peer_gone.
    bool follow = false;
};

/// Who holds a role, as seen in the segment.
enum class PeerState : std::uint8_t {
    none,   ///< nobody holds it (never had, or the holder closed cleanly)
    alive,  ///< held by a running process
    dead,   ///< held by a process that exited without closing (or whose pid was reused)
};
std::string_view to_string(PeerState state) noexcept;

struct PeerInfo {
    pid_t pid = 0;
    std::uint64_t start_time = 0;
    PeerState state = PeerState::none;
    std::uint64_t position = 0;  ///< broadcast reader: read position; MPSC producer: claim start
    std::uint64_t messages = 0;  ///< MPSC producer: written; broadcast reader: read
    std::uint64_t lapped = 0;    ///< broadcast reader
};

/// Is the process (pid, start_time) still running? Zombies and reused pids are dead;
/// pid 0 is `none`. A start_time of 0 (not written yet) matches any.
PeerState peer_state(pid_t pid, std::uint64_t start_time) noexcept;

/// A consistent-enough snapshot of a ring for `xring stat` (fields are read one by one).
struct RingSnapshot {
    RingKind kind = RingKind::spsc;
    std::uint64_t capacity = 0;
    std::uint32_t max_record = 0;
    pid_t creator_pid = 0;
    std::uint64_t zeroed = 0;  ///< SPSC/MPSC: the consumer has zeroed the area before it
    std::uint64_t head = 0;
    std::uint64_t tail = 0;
    std::uint32_t consumer_waiting = 0;
    std::uint32_t producer_waiting = 0;
    PeerInfo producer;            ///< SPSC producer / broadcast writer
    PeerInfo consumer;            ///< SPSC / MPSC consumer
    std::vector<PeerInfo> slots;  ///< MPSC producers / broadcast readers (held slots only)
    std::uint64_t messages = 0, bytes = 0, full_waits = 0, producer_wakeups = 0, high_water = 0, dropped = 0;
    std::uint64_t empty_waits = 0, consumer_wakeups = 0, skipped = 0, lapped = 0;
};

/// Reads the header of a segment without taking a role (validated like attach).
Result<RingSnapshot> snapshot_ring(std::span<const std::byte> memory);

/// Checks a whole segment offline: header, positions, and every record between head and
/// tail (types, lengths, padding at the end of the area, MPSC uncommitted records).
/// Returns a list of problems, empty when the segment is sound; an error only when the
/// memory is not a ring at all (corrupt with the reason).
Result<std::vector<std::string>> check_ring(std::span<const std::byte> memory);

/// Bytes a segment needs for a data area of `capacity` bytes (header + data).
constexpr std::size_t ring_segment_size(std::uint64_t capacity) noexcept {
    return sizeof(ring::RingHeader) + static_cast<std::size_t>(capacity);
}

/// Formats `memory` as an empty ring: writes the whole header, `version` last with release
/// (an opener that sees version 0 treats the segment as not ready yet).
/// `capacity` must be a power of two in [RING_MIN_CAPACITY, RING_MAX_CAPACITY];
/// `max_record` >= 1 and `record_size(max_record) <= capacity / 2` (so any record fits
/// in an empty ring whatever the wrap point).
/// Errors: invalid_argument (sizes, alignment of memory, kind).
/// Not thread safe: nobody may use the memory while it is being formatted.
Result<void> format_ring(std::span<std::byte> memory, std::uint64_t capacity, std::uint32_t max_record,
                         RingKind kind = RingKind::spsc);

namespace detail {
/// A peer we may have to wait for: identity from the segment, pinned by a pidfd once seen.
struct PeerWatch {
    pid_t pid = 0;
    std::uint64_t start_time = 0;
    std::optional<Process> process;  ///< pinned after its start time matched
    PeerState state = PeerState::none;
    /// Before this, `state` is reused without a system call (non-blocking calls that find
    /// the ring full or empty ask often).
    std::chrono::steady_clock::time_point next_check{};
};
/// The 8-byte record header at `index` of a data area, for the atomic commit and its poll.
inline std::atomic_ref<std::uint64_t> header_word(std::byte* data, std::uint64_t index) noexcept {
    return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(data + index));
}
/// A record header as that word.
inline std::uint64_t pack(const ring::RecordHeader& rec) noexcept {
    return std::bit_cast<std::uint64_t>(rec);
}
/// Hides `value` from the optimizer, which then cannot replace it with an equal
/// expression (emits no instruction).
inline void opaque(std::uint64_t& value) noexcept {
    asm("" : "+r"(value));
}
/// In a branch: keeps the compiler from turning the branch into a conditional move, whose
/// result depends on both inputs (emits no instruction).
inline void branch_not_select() noexcept {
    asm volatile("" ::: "memory");
}
/// Whether the 64-byte line of a data area that holds `index` is all zero: what a slipping
/// side probes (the area ahead of a producer is zero until it writes there; what a
/// consumer frees it zeroes). relaxed: a hint; records are read with acquire.
inline bool line_is_zero(std::byte* data, std::uint64_t index) noexcept {
    const std::uint64_t line = index & ~std::uint64_t{63};
    std::uint64_t any = 0;
    for (std::uint64_t i = 0; i < 64; i += 8) {
        any |= header_word(data, line + i).load(std::memory_order_relaxed);
    }
    return any == 0;
}
/// The copy API's memcpy of a payload, inline up to 256 bytes in 16-byte moves (the last
/// one overlapping the one before): a call to the C library's memcpy with a size known only
/// at run time cost a 64-byte message about 5 ns, a third of its time (measured: 64 M
/// against 100 M msgs/s). Never touches a byte outside [dst, dst + n).
inline void copy_payload(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
    if (n >= 16 && n <= 256) [[likely]] {
        for (std::size_t i = 0; i + 16 < n; i += 16) {
            std::memcpy(dst + i, src + i, 16);
        }
        std::memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 8 && n < 16) {
        std::memcpy(dst, src, 8);
        std::memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n != 0) {
        std::memcpy(dst, src, n);
    }
}
/// set_slip()'s state, the same on both sides. A look that found the peer too close (the
/// ring empty for a consumer, full for a producer) arms it; while armed, each look first
/// asks defer() whether the peer is far enough yet.
struct Slip {
    std::uint64_t bytes = 0;      ///< the distance asked for; 0 = off
    std::uint32_t max_looks = 0;  ///< most looks deferred in a row
    std::uint32_t waited = 0;     ///< looks deferred since armed
    bool armed = false;

    void arm() noexcept { armed = bytes != 0; }
    /// A look while armed: true to defer it (not `far_enough`, looks left); else disarms.
    bool defer(bool far_enough) noexcept {
        if (!far_enough && ++waited < max_looks) {
            return true;
        }
        armed = false;
        waited = 0;
        return false;
    }
};
}  // namespace detail

/// The writing side of a ring: the SPSC producer, one of the MPSC producers, or the
/// broadcast writer (which never waits: it overwrites what slow readers have not read).
/// Move-only. Not thread safe: one thread at a time uses a producer; several MPSC
/// producers (in any processes or threads) each use their own RingProducer.
class RingProducer {
  public:
    /// format_ring() then attach().
    static Result<RingProducer> create(std::span<std::byte> memory, std::uint64_t capacity,
                                       std::uint32_t max_record, RingKind kind = RingKind::spsc,
                                       const AttachOptions& options = {});
    /// Attaches to a formatted ring (see RingConsumer::attach for the validation) and, with
    /// options.take_role, takes the producer role (SPSC/broadcast) or a producer slot (MPSC).
    /// Errors: corrupt (not a ring, wrong version, bad sizes or positions), os/EAGAIN
    /// (version 0: not ready yet), os/EBUSY (role held by a live process; the message names
    /// its pid) or os/ENOSPC (no free MPSC slot), invalid_argument (alignment).
    static Result<RingProducer> attach(std::span<std::byte> memory, const AttachOptions& options = {});

    RingProducer(RingProducer&& other) noexcept { *this = std::move(other); }
    RingProducer& operator=(RingProducer&& other) noexcept;
    RingProducer(const RingProducer&) = delete;
    RingProducer& operator=(const RingProducer&) = delete;
    /// Leaves the role (see close()).
    ~RingProducer();

    /// Reserves room for a payload of up to `max_len` bytes and returns where to write it,
    /// waiting up to `timeout` for room (policy from AttachOptions::wait). Nothing is
    /// visible to the consumer until commit(). At most one claim is outstanding (claiming
    /// again before commit/abort is a programming error).
    /// `full` when there is no room within the timeout; `too_large` when max_len >
    /// max_record; `peer_gone` when the consumer died while we waited.
    Claim claim(std::size_t max_len, Timeout timeout = NO_WAIT) noexcept {
        // Fast path (inline): SPSC, room in the cached view, no wrap. Everything else,
        // including every error and assertion, goes through claim_slow().
        if (m_kind == RingKind::spsc && !m_claimed && max_len <= m_max_record) {
            const std::uint64_t size = ring::record_size(max_len);
            const std::uint64_t index = m_tail & m_mask;
            if (size <= m_capacity - index &&
                m_tail - m_cached_zeroed <= m_capacity - size - ring::RING_SPSC_GAP) [[likely]] {
                m_claim_pos = m_tail;
                m_claim_len = max_len;
                m_claimed = true;
                return {WriteStatus::ok,
                        std::span<std::byte>(m_data + index + sizeof(ring::RecordHeader), max_len)};
            }
        }
        return claim_slow(max_len, timeout);
    }
    /// Publishes the claimed record (and any batched before it) with `length` <= the
    /// claimed size bytes of payload.
    void commit(std::size_t length) noexcept {
        if (complete_fast(length)) [[likely]] {
            if (m_holding) {
                publish_tail();  // the batch's held header goes out with this record
            } else {
                publish_counters();  // the record's header is out (commit_spsc)
            }
            return;
        }
        complete(length, true);
    }
    /// Completes the claimed record without publishing it yet: the batch API. The consumer
    /// sees batched records at the next commit(), flush(), end of stream or close(), or
    /// when a claim finds the ring full, all at once (SPSC: the header of the batch's first
    /// record is held back and stored last; broadcast: one store of tail; MPSC: the same as
    /// commit, each record is committed on its own).
    void commit_batched(std::size_t length) noexcept {
        if (complete_fast(length, true)) [[likely]] {
            m_unpublished = true;
            return;
        }
        complete(length, false);
    }
    /// Publishes the records completed by commit_batched().
    void flush() noexcept;
    /// The zero-copy batch form for streams: builds up to `limit` records in place and
    /// publishes them together (as commit_batched() then flush()). For each record,
    /// `writer(std::span<std::byte> buffer)` gets `max_len` bytes and returns the payload
    /// length it wrote (at most `max_len`). Only the first record may wait for room, up to
    /// `timeout`; the call stops early when the ring has no room for another `max_len`.
    /// No claim may be outstanding; records left by commit_batched() go out with these.
    /// An SPSC producer keeps its position in registers from one record to the next, where
    /// claim() and commit() keep it in this object, which the writer's stores may alias (3-4
    /// ns a 64-byte record against about 1 ns, measured). If `writer` throws, the records
    /// it completed are published, the one it was writing is dropped, and the exception
    /// propagates.
    template <typename Writer>
    Emplaced emplace(std::size_t max_len, Writer&& writer, std::size_t limit, Timeout timeout = NO_WAIT);
    /// Throughput mode for an SPSC producer, the mirror of RingConsumer::set_slip(): once a
    /// claim has found the ring full, the next claims report full (or keep spinning)
    /// without reading the consumer's position, until the consumer has freed `bytes` more
    /// than the claim needs (they look at one line of the data area that far ahead, which
    /// the consumer zeroes when it frees it), or for at most `max_calls` looks. A producer
    /// that re-reads the position at every try takes the line the consumer stores it in
    /// after every message, and once the consumer is the slower side this holds the pair
    /// there. A blocking claim defers only while it spins. 0 bytes turns it off (the
    /// default); `bytes` is capped at half the capacity. Ignored by MPSC producers and
    /// broadcast writers.
    void set_slip(std::uint64_t bytes, std::uint32_t max_calls = 256) noexcept {
        m_slip = {m_kind == RingKind::spsc ? std::min(bytes, m_capacity / 2) : 0, max_calls};
    }
    /// Drops the outstanding claim; nothing is published (MPSC: the space becomes a padding
    /// record, since other producers may have claimed after it).
    void abort() noexcept;

    /// Copies `message` into the ring as one record, waiting up to `timeout` for room.
    WriteStatus write(std::span<const std::byte> message, Timeout timeout = NO_WAIT) noexcept {
        const Claim c = claim(message.size(), timeout);
        if (c.status == WriteStatus::ok) [[likely]] {
            detail::copy_payload(c.buffer.data(), message.data(), message.size());
            commit(message.size());
            return WriteStatus::ok;
        }
        return write_failed(c.status, timeout);
    }
    WriteStatus try_write(std::span<const std::byte> message) noexcept { return write(message, NO_WAIT); }
    /// Writes an end-of-stream record (the consumer's read reports end_of_stream, poll stops
    /// its batch after it).
    WriteStatus write_end_of_stream(Timeout timeout = NO_WAIT) noexcept;
    WriteStatus try_write_end_of_stream() noexcept { return write_end_of_stream(NO_WAIT); }

    /// State of the consumer role (SPSC/MPSC; `none` for broadcast).
    PeerState consumer_state() noexcept;

    /// Leaves the role cleanly: a consumer waiting on us then waits for a new producer
    /// instead of reporting peer_gone. An outstanding claim is aborted. Idempotent.
    void close() noexcept;

    RingKind kind() const noexcept { return m_kind; }
    std::uint64_t capacity() const noexcept { return m_capacity; }
    std::uint32_t max_record() const noexcept { return m_max_record; }
    /// Position after our last committed record.
    std::uint64_t tail() const noexcept { return m_tail; }

  private:
    RingProducer() noexcept = default;
    /// Claims `size` bytes of data area (a whole record), inserting padding at wrap.
    /// Returns false when full (never for broadcast).
    bool reserve(std::uint64_t size) noexcept;
    /// SPSC: the position after the last committed record (walking the headers from head),
    /// where this producer continues. Errors: a damaged record on the way.
    Result<std::uint64_t> find_end() noexcept;
    bool reserve_mpsc(std::uint64_t size) noexcept;
    void publish(std::uint64_t length, ring::RecordType type, bool now = true) noexcept;
    /// Broadcast: stores tail (release). All kinds: stores the counters, then wakes a
    /// sleeping consumer.
    void publish_tail() noexcept;
    void complete(std::size_t length, bool now) noexcept;
    /// write() could not claim: counts a drop (a wait that timed out or found the
    /// consumer gone) and returns the status.
    WriteStatus write_failed(WriteStatus status, Timeout timeout) noexcept;
    Claim claim_slow(std::size_t max_len, Timeout timeout) noexcept;
    /// SPSC fast path of complete(): commits the claimed record (not announced yet).
    bool complete_fast(std::size_t length, bool batched = false) noexcept {
        if (m_kind != RingKind::spsc || !m_claimed || length > m_claim_len) {
            return false;
        }
        m_claimed = false;
        if (length < m_claim_len) [[unlikely]] {
            mark_dirty(m_claim_pos + ring::record_size(m_claim_len));
        }
        commit_spsc(length, ring::RecordType::data, batched);
        ++m_messages;
        m_bytes += length;
        maybe_sample_fill();
        return true;
    }
    /// SPSC: commits the record at m_claim_pos (its payload is written): stores tail (so
    /// head <= tail for any observer that loads head first), then the header with release,
    /// the commit the consumer polls for. `batched`: the header of a batch's first record
    /// is kept in m_held_* and stored by publish_tail() after tail; the consumer cannot pass
    /// it, so the records after it, written now, become visible together with it. The
    /// header slot after the record must be zero (the consumer's "nothing yet" there): the
    /// consumer zeroed it when it released that space, unless we (or a producer before us)
    /// may have written there since: then it is zeroed here.
    void commit_spsc(std::uint64_t length, ring::RecordType type, bool batched = false) noexcept {
        const std::uint64_t end = m_claim_pos + ring::record_size(length);
        if (end < m_dirty_to) [[unlikely]] {
            zero_slot(end);  // ordered before the consumer's view of it by the release store below
        }
        m_tail = end;
        const std::uint64_t word =
            detail::pack({static_cast<std::uint32_t>(length), static_cast<std::uint16_t>(type), 0});
        if (batched && !m_holding) {
            // The batch's first header: stored by publish_tail(), after tail.
            m_holding = true;
            m_held_pos = m_claim_pos;
            m_held_word = word;
        } else if (batched) {
            // relaxed: behind the held header, published by its release store.
            detail::header_word(m_data, m_claim_pos & m_mask).store(word, std::memory_order_relaxed);
        } else {
            std::atomic_ref<std::uint64_t>(m_header->tail).store(end, std::memory_order_relaxed);
            // release: pairs with the consumer's acquire load of the header word in
            // available(); the payload, the zeroed next slot and tail are visible to it.
            // (Behind a held header, the consumer sees it only after that one.)
            detail::header_word(m_data, m_claim_pos & m_mask).store(word, std::memory_order_release);
        }
    }
    /// SPSC: we may have written payload bytes up to `end` that no record covers (a commit
    /// shorter than its claim, an abort): header slots before it are zeroed at commit.
    void mark_dirty(std::uint64_t end) noexcept { m_dirty_to = std::max(m_dirty_to, end); }
    /// SPSC, before `end` < m_dirty_to is published as the end of our records: zeroes the
    /// header slot there, which may hold payload bytes of ours. Only if needed: a store
    /// would take the line from the consumer polling it. relaxed: nobody else writes there
    /// (the consumer zeroed it before releasing it); the release store of a header that
    /// publishes the record before it orders it.
    void zero_slot(std::uint64_t end) noexcept {
        const auto slot = detail::header_word(m_data, end & m_mask);
        if (slot.load(std::memory_order_relaxed) != 0) {
            slot.store(0, std::memory_order_relaxed);
        }
    }
    /// emplace()'s SPSC loop: records while the cached view has room before the wrap.
    template <typename Writer>
    std::size_t emplace_spsc(std::size_t max_len, Writer& writer, std::size_t limit);
    /// emplace_spsc()'s end, also when the writer threw: takes over its position and counts,
    /// holds the batch's first header (if none is held yet) and marks a dropped record's
    /// space dirty. Publishing is left to flush().
    void emplaced(std::uint64_t tail, std::uint64_t dirty_to, std::size_t count, std::uint64_t bytes,
                  std::uint64_t first_pos, std::uint64_t first_word) noexcept {
        if (count != 0) {
            if (!m_holding) {
                m_holding = true;
                m_held_pos = first_pos;
                m_held_word = first_word;
            }
            m_unpublished = true;
            m_messages += count;
            m_bytes += bytes;
        }
        m_tail = tail;
        m_dirty_to = dirty_to;
        if (tail < m_dirty_to) {
            zero_slot(tail);  // published by the held header's release store (flush())
        }
        maybe_sample_fill();
    }
    /// SPSC high-water mark: our cached zeroed only bounds the fill from above (it is
    /// reloaded when the ring looks full), so a possible new high is checked against the
    /// real head, at most FILL_SAMPLES_PER_LAP times per lap of the ring.
    void maybe_sample_fill() noexcept {
        if (m_tail >= m_next_fill_sample && m_tail - m_cached_zeroed > m_high_water) [[unlikely]] {
            sample_fill();
        }
    }
    void sample_fill() noexcept;
    /// Raises the high-water mark (ours and the segment's) to `used` bytes if higher.
    void raise_high_water(std::uint64_t used) noexcept;
    static constexpr std::uint64_t FILL_SAMPLES_PER_LAP = 16;
    /// Blocks until reserve(size) succeeds, the timeout passes or the consumer is gone.
    WriteStatus reserve_waiting(std::uint64_t size, Timeout timeout) noexcept;
    /// Publishing's last step (all kinds): stores the counters, then wakes a sleeping consumer.
    void publish_counters() noexcept {
        m_unpublished = false;
        // relaxed: statistics written only by the producer; readers need no ordering with data.
        std::atomic_ref<std::uint64_t>(m_header->messages).store(m_messages, std::memory_order_relaxed);
        std::atomic_ref<std::uint64_t>(m_header->bytes).store(m_bytes, std::memory_order_relaxed);
        wake_consumer();
    }
    /// After publishing: wakes a consumer that announced it sleeps (the check is one load of
    /// a line the consumer writes only to sleep).
    void wake_consumer() noexcept {
        detail::publish_fence(m_fast_fence);
        // relaxed: ordered after our publication by the fence above (and the sleeper's barrier).
        if (std::atomic_ref<std::uint32_t>(m_header->consumer_waiting).load(std::memory_order_relaxed) != 0)
            [[unlikely]] {
            wake_sleeping_consumer();
        }
    }
    /// Wakes the consumers sleeping on consumer_waiting (futex, doorbell; the word said so).
    void wake_sleeping_consumer() noexcept;
    void ring_doorbell() noexcept;
    void count_commit(std::uint64_t length) noexcept;

    ring::RingHeader* m_header = nullptr;
    std::byte* m_data = nullptr;
    RingKind m_kind = RingKind::spsc;
    std::uint64_t m_capacity = 0;
    std::uint64_t m_mask = 0;
    std::uint32_t m_max_record = 0;
    std::uint64_t m_tail = 0;           ///< SPSC/broadcast: our position (the segment's copy is only written)
    std::uint64_t m_cached_zeroed = 0;  ///< last `zeroed` we read (our limit - capacity); reloaded when full
    std::uint64_t m_claim_pos = 0;      ///< where the claimed record's header goes
    std::uint64_t m_claim_len = 0;      ///< payload bytes claimed
    std::uint64_t m_claim_start = 0;    ///< MPSC: start of our claim (padding included)
    bool m_claimed = false;
    bool m_unpublished = false;  ///< records completed by commit_batched() but not published yet
    detail::Slip m_slip;         ///< set_slip(); armed when a claim found the ring full
    /// Slip, once armed: true when the line `bytes` past what a record of `size` needs
    /// reads zero (the consumer freed it) or the looks ran out.
    bool slip_allows(std::uint64_t size) noexcept;
    bool m_role = false;           ///< we hold the producer role / a slot
    int m_slot = -1;               ///< MPSC: our slot index
    bool m_fast_fence = false;     ///< membarrier available: no full fence on the publish path
    std::uint64_t m_messages = 0;  ///< our copies of the producer counters (SPSC/broadcast)
    std::uint64_t m_bytes = 0;
    std::uint64_t m_high_water = 0;
    std::uint64_t m_next_fill_sample = 0;  ///< SPSC: tail from which sample_fill() may read head again
    std::uint64_t m_dirty_to = 0;          ///< SPSC: before this, header slots after tail may not be zero
    bool m_holding = false;                ///< SPSC: a batch's first header is held back (m_held_*)
    std::uint64_t m_held_pos = 0;
    std::uint64_t m_held_word = 0;
    WaitOptions m_wait;
    detail::PeerWatch m_consumer;  ///< liveness of the consumer
    UniqueFd m_doorbell;           ///< write end of the consumer's doorbell pipe, opened through /proc
    pid_t m_doorbell_pid = 0;      ///< whose pipe m_doorbell is
    int m_doorbell_fd = -1;        ///< its fd number in that process
};

/// The reading side of a ring: the SPSC or MPSC consumer, or one broadcast reader.
/// Move-only. Not thread safe: one thread at a time uses a consumer.
class RingConsumer {
  public:
    /// format_ring() then attach().
    static Result<RingConsumer> create(std::span<std::byte> memory, std::uint64_t capacity,
                                       std::uint32_t max_record, RingKind kind = RingKind::spsc,
                                       const AttachOptions& options = {});
    /// Attaches to a formatted ring. Checks, in order: the memory holds a header and is
    /// 128-byte aligned; version != 0 (else os/EAGAIN: not ready); magic; version ==
    /// RING_LAYOUT_VERSION (the error prints both); header_size; capacity a power of two
    /// in range and header + capacity within `memory`; max_record; kind; zeroed <= head <=
    /// tail <= zeroed + capacity, all multiples of 8. With options.take_role takes the
    /// consumer role (SPSC/MPSC) or a reader slot (broadcast; a reader starts at the current
    /// tail). SPSC/MPSC: zeroes what a consumer that died while releasing left unzeroed
    /// (zeroed < head), as release does.
    /// Errors: corrupt, invalid_argument (alignment), os/EAGAIN, os/EBUSY (role held by a
    /// live process, named), os/ENOSPC (no free reader slot).
    static Result<RingConsumer> attach(std::span<std::byte> memory, const AttachOptions& options = {});

    RingConsumer(RingConsumer&& other) noexcept { *this = std::move(other); }
    RingConsumer& operator=(RingConsumer&& other) noexcept;
    RingConsumer(const RingConsumer&) = delete;
    RingConsumer& operator=(const RingConsumer&) = delete;
    ~RingConsumer();

    /// Calls `handler(std::span<const std::byte>)` for up to `limit` messages, in order,
    /// then releases the whole batch (stores head, zeroes the batch, stores zeroed). Does not
    /// wait (see wait()).
    /// SPSC/MPSC read in place: the span is valid only during the call, and the bytes live
    /// in shared memory (a hostile producer could change them while the handler reads).
    /// Broadcast copies each message first and checks it was not overwritten meanwhile.
    /// Stops early after an end-of-stream record (see saw_end_of_stream()) or when a
    /// broadcast reader finds it was lapped (see lapped()). If the handler throws, nothing
    /// of the batch is released (SPSC/MPSC: the messages will be delivered again).
    /// Returns the number of messages delivered; corrupt when the segment fails validation
    /// (the messages of the batch before the bad record are delivered but not released).
    template <typename Handler>
    Result<std::size_t> poll(Handler&& handler, std::size_t limit);

    /// Throughput mode, "temporal slipping" (after FastForward, Giacomoni et al., 2008).
    /// Once poll(), read() or wait() has found the ring empty (this consumer caught up with
    /// the producer), the next calls report nothing until the producer has written `bytes`
    /// past head (they look at one line that far ahead, not at the records the producer is
    /// writing), or for at most `max_calls` looks; then they read as usual.
    /// A consumer that keeps up with a streaming producer reads the cache line the producer
    /// is writing, over and over, and each read stalls the producer; once the producer is
    /// the slower side this holds the pair there (measured: 30-60 M msgs/s of 64 bytes
    /// where the same loop makes 100-250 M when the consumer lags). Staying a few KiB behind
    /// breaks that. The price is latency: a message that arrives alone waits out up to
    /// `max_calls` looks. A blocking read() or wait() defers only while it spins, never in
    /// its sleep or at its deadline. 0 bytes turns it off (the default); `bytes` is capped
    /// at half the capacity. SPSC and MPSC; ignored by a broadcast reader. For streams, not
    /// for request/response traffic.
    /// An SPSC consumer that slips also frees room in steps of a quarter of `bytes` (see
    /// set_release_step(); a later call of that sets another step).
    void set_slip(std::uint64_t bytes, std::uint32_t max_calls = 256) noexcept {
        m_slip = {m_kind == RingKind::broadcast ? 0 : std::min(bytes, m_capacity / 2), max_calls};
        set_release_step(m_slip.bytes / 4);
    }

    /// Frees room in steps (SPSC): poll() and read() store head after what they read, but
    /// zero it and tell the producer (store zeroed) only once `bytes` have been read since
    /// the last time, when a call finds nothing to read, before wait() or arm_doorbell(),
    /// or at once when a producer sleeps for room. Freeing after every call passes the
    /// line of `zeroed`, and the lines just read (which the consumer must own to zero),
    /// between the two sides at every call:
    /// - streams: a producer retrying on a full ring then keeps the consumer the slower
    ///   side (measured: 30 or 70 M msgs/s of 64 bytes against 95-105 M in steps);
    /// - request/response: a reply sent right after a call waits, on x86, until the lines
    ///   it zeroed are owned (zeroing them at the next call, which finds nothing until the
    ///   next request, takes that off the round trip).
    /// The price: a producer may find the ring full with up to `bytes` read but not freed
    /// while this consumer keeps reading, or does something else between two calls.
    /// 0 frees after every call (the default); capped at an eighth of the capacity.
    /// Ignored by MPSC consumers and broadcast readers.
    void set_release_step(std::uint64_t bytes) noexcept {
        m_release_step = m_kind == RingKind::spsc ? std::min(bytes, ring::release_step_max(m_capacity)) : 0;
    }

    /// Waits up to `timeout` until a record is readable: ok; empty when the timeout passed;
    /// peer_gone when nothing is left to read and the producer (MPSC: every producer that
    /// held a slot) died without closing, unless AttachOptions::follow. Also skips an MPSC
    /// record left uncommitted by a dead producer (counted in `skipped`). Errors: corrupt.
    Result<ReadStatus> wait(Timeout timeout) noexcept;

    /// Copies the next message into `buffer`, waiting up to `timeout` for one. A message
    /// larger than `buffer` stays in the ring (too_small, with its length). Errors: corrupt.
    Result<ReadResult> read(std::span<std::byte> buffer, Timeout timeout = NO_WAIT) noexcept {
        // Fast path (inline): an SPSC data record that fits and passes every check, and the
        // cheap empty polls of a busy try_read() loop. The rest goes through read_slow()
        // (which also asserts that this consumer was not moved from).
        if (m_slip.armed) [[unlikely]] {
            if (timeout != NO_WAIT) {
                return read_slow(buffer, timeout);  // wait() slips while it spins
            }
            if (!slip_allows()) {
                release_held();
                return ReadResult{ReadStatus::empty, 0, 0};
            }
        }
        if (m_kind == RingKind::spsc && m_data != nullptr) {
            const std::uint64_t index = m_head & m_mask;
            // acquire: pairs with the producer's release store of the header word.
            const auto rec = std::bit_cast<ring::RecordHeader>(
                detail::header_word(m_data, index).load(std::memory_order_acquire));
            const std::uint64_t size = ring::record_size(rec.length);
            if (rec.type == static_cast<std::uint16_t>(ring::RecordType::data) &&
                rec.length <= buffer.size() && rec.length <= m_max_record && size <= m_capacity - index)
                [[likely]] {
                detail::copy_payload(buffer.data(), m_data + index + sizeof(ring::RecordHeader), rec.length);
                m_head += size;
                m_empty_polls = 0;
                release_read();
                return ReadResult{ReadStatus::ok, rec.length, 0};
            }
            if (rec.type == static_cast<std::uint16_t>(ring::RecordType::uncommitted) && timeout == NO_WAIT &&
                m_empty_polls % EMPTY_POLLS_PER_CHECK != 0) {
                // See read_slow(): the liveness check runs on every EMPTY_POLLS_PER_CHECK-th.
                ++m_empty_polls;
                m_slip.arm();
                release_held();
                return ReadResult{ReadStatus::empty, 0, 0};
            }
        }
        return read_slow(buffer, timeout);
    }
    Result<ReadResult> try_read(std::span<std::byte> buffer) noexcept { return read(buffer, NO_WAIT); }

    /// For epoll: a descriptor that becomes readable when the producer commits while the
    /// doorbell is armed. Created on first call (a pipe; the producer opens its write end
    /// through /proc/PID/fd, which needs the same uid or CAP_SYS_PTRACE).
    /// Loop: drain with poll(); if arm_doorbell() returns false, epoll_wait; then
    /// clear_doorbell() and drain again.
    Result<int> doorbell_fd() noexcept;
    /// Announces that we wait on the doorbell. Returns true when data arrived meanwhile
    /// (do not sleep: drain again), false when it is armed.
    Result<bool> arm_doorbell() noexcept;
    /// Empties the doorbell pipe and disarms it.
    void clear_doorbell() noexcept;

    /// State of the producer role (SPSC/broadcast) or, for MPSC, `alive` if any producer
    /// slot holder is alive, `dead` if one is dead and none alive, else `none`.
    PeerState producer_state() noexcept;

    /// Leaves the role cleanly. Idempotent.
    void close() noexcept;

    /// True once an end-of-stream record has been read (by poll or read).
    bool saw_end_of_stream() const noexcept { return m_end_of_stream; }
    /// Broadcast: bytes lost to being lapped since the last call, then reset.
    std::uint64_t take_lapped() noexcept { return std::exchange(m_lapped_bytes, 0); }

    RingKind kind() const noexcept { return m_kind; }
    std::uint64_t capacity() const noexcept { return m_capacity; }
    std::uint32_t max_record() const noexcept { return m_max_record; }
    /// Position of the first message not yet released.
    std::uint64_t head() const noexcept { return m_head; }

  private:
    /// One validated record at a position.
    struct Record {
        ring::RecordType type;
        std::uint32_t length;
        std::uint64_t size;  ///< bytes it occupies, header included
        std::byte* payload;
    };

    RingConsumer() noexcept = default;
    /// Whether a record is readable at `pos`: SPSC: its header is committed; MPSC and
    /// broadcast: pos is before tail (reloaded when the cached copy says empty). Errors:
    /// corrupt tail.
    Result<bool> available(std::uint64_t pos) noexcept {
        if (m_kind == RingKind::spsc) {
            // The record's own header says whether it is committed; tail is not read.
            // acquire: pairs with the producer's release store of the header word in
            // commit_spsc(); the payload is visible once the type is.
            const std::uint64_t word =
                detail::header_word(m_data, pos & m_mask).load(std::memory_order_acquire);
            return std::bit_cast<ring::RecordHeader>(word).type !=
                   static_cast<std::uint16_t>(ring::RecordType::uncommitted);
        }
        if (pos != m_cached_tail) [[likely]] {
            return true;
        }
        return refresh_tail(pos);
    }
    /// available()'s slow path (MPSC, broadcast): reloads and validates tail.
    Result<bool> refresh_tail(std::uint64_t pos) noexcept;
    /// Reads and validates the record header at `pos` (known to be available). An
    /// uncommitted record reads as `uncommitted` (not an error). SPSC records must end
    /// within capacity of head.
    Result<Record> record_at(std::uint64_t pos) const noexcept {
        // Fast path (inline): an SPSC data record that passes every check.
        if (m_kind == RingKind::spsc) {
            const std::uint64_t index = pos & m_mask;
            ring::RecordHeader rec;
            std::memcpy(&rec, m_data + index, sizeof rec);
            const std::uint64_t size = ring::record_size(rec.length);
            if (rec.type == static_cast<std::uint16_t>(ring::RecordType::data) &&
                rec.length <= m_max_record && size <= m_capacity - index && size <= m_head + m_capacity - pos)
                [[likely]] {
                return Record{ring::RecordType::data, rec.length, size,
                              m_data + index + sizeof(ring::RecordHeader)};
            }
        }
        return record_at_slow(pos);
    }
    Result<Record> record_at_slow(std::uint64_t pos) const noexcept;
    /// Releases what we have read (SPSC, MPSC): stores head (where a consumer taking over
    /// resumes), zeroes the released bytes, so that a header slot there reads as "not
    /// committed" until a producer writes it, then stores zeroed (release), the producers'
    /// limit; then wakes a producer that announced it sleeps (the check is one load of a line
    /// it writes only to sleep).
    /// While the record at head is not committed yet, a producer may be writing it into the
    /// cache line that holds head: we then zero only up to that line and leave the rest
    /// (less than RING_ZERO_LINE bytes) to the next release or to close(). Zeroing the
    /// line would take it from the producer in the middle of its record, several line
    /// transfers per message when the consumer keeps up. Where that lag could keep the
    /// largest record from fitting a drained ring, we zero up to head (lag_may_block()).
    void release() noexcept {
        m_held = false;
        // release: pairs with the acquire loads of head by a consumer or producer that
        // attaches (and by observers): the records before it have been read.
        std::atomic_ref<std::uint64_t>(m_header->head).store(m_head, std::memory_order_release);
        // Head before the zeroing in program order: if we die in between, the next consumer
        // resumes at head and zeroes [zeroed, head) itself; never the other way round
        // (zeroed records before head, read as "nothing yet").
        std::atomic_signal_fence(std::memory_order_seq_cst);
        std::uint64_t to = m_head;
        // relaxed: only a hint (the producer may commit right after); the record is read
        // with acquire when we get to it.
        if (detail::header_word(m_data, m_head & m_mask).load(std::memory_order_relaxed) == 0 &&
            !lag_may_block()) {
            to = std::max(m_zeroed, ring::zero_line_start(m_head));
            if (to == m_zeroed) {
                return;  // no new whole line: the producers' limit stays
            }
        }
        zero_up_to(to);
    }
    /// After poll() or read() took records: release(), or, for a consumer that frees room
    /// in steps (set_release_step()), only the store of head while less than a step has
    /// been read since the last release and no producer sleeps for room. relaxed: a
    /// producer announcing its sleep right now is seen at the next call, or woken by the
    /// release() that every report of an empty ring and every wait makes first
    /// (release_held()).
    void release_read() noexcept {
        if (m_head - m_zeroed < m_release_step &&
            std::atomic_ref<std::uint32_t>(m_header->producer_waiting).load(std::memory_order_relaxed) == 0) {
            // release: as in release().
            std::atomic_ref<std::uint64_t>(m_header->head).store(m_head, std::memory_order_release);
            m_held = true;
            return;
        }
        release();
    }
    /// Frees what release_read() held back: before we report the ring empty or wait, so
    /// that a producer waiting for room never waits on us.
    void release_held() noexcept {
        if (m_held) [[unlikely]] {
            release();
        }
    }
    /// Slip (see set_slip()), once armed: true when the producer has written the line
    /// `bytes` ahead of head or the looks ran out (then reads go on as usual). Not `tail`,
    /// which the producer stores at every commit: polling it would take that line instead.
    bool slip_allows() noexcept {
        return !m_slip.defer(!detail::line_is_zero(m_data, (m_head + m_slip.bytes) & m_mask));
    }
    /// Zeroes [m_zeroed, to), stores zeroed = to and wakes a sleeping producer.
    void zero_up_to(std::uint64_t to) noexcept {
        const std::uint64_t index = m_zeroed & m_mask;
        if (to - m_zeroed <= m_capacity - index) [[likely]] {
            std::memset(m_data + index, 0, static_cast<std::size_t>(to - m_zeroed));
        } else {
            zero_wrapped(to);
        }
        m_zeroed = to;
        // release: pairs with the producers' acquire load of zeroed; our reads of the
        // released records and the zeroing happen before they write there.
        std::atomic_ref<std::uint64_t>(m_header->zeroed).store(to, std::memory_order_release);
        detail::publish_fence(m_fast_fence);
        // relaxed: ordered after the store of zeroed by the fence above (and the sleeper's barrier).
        if (std::atomic_ref<std::uint32_t>(m_header->producer_waiting).load(std::memory_order_relaxed) != 0)
            [[unlikely]] {
            wake_sleeping_producer();
        }
    }
    /// True if leaving [line start, head) unzeroed could keep a producer from fitting the
    /// largest record (with the padding to the end of the area it may need, and SPSC's
    /// zeroed header slot) into a ring we have drained to head.
    bool lag_may_block() const noexcept {
        const std::uint64_t to_end = m_capacity - (m_head & m_mask);
        const std::uint64_t largest = ring::record_size(m_max_record);
        const std::uint64_t need = largest <= to_end ? largest : to_end + largest;
        return (m_head - ring::zero_line_start(m_head)) + need + ring::RING_SPSC_GAP > m_capacity;
    }
    /// Zeroes [m_zeroed, to) where it wraps past the end of the data area.
    void zero_wrapped(std::uint64_t to) noexcept;
    /// Wakes the producers sleeping on producer_waiting (the word said so).
    void wake_sleeping_producer() noexcept;
    Result<ReadResult> read_slow(std::span<std::byte> buffer, Timeout timeout) noexcept;
    /// Broadcast: copies the record at m_head into m_scratch, or reports lapped.
    Result<ReadResult> read_broadcast(std::span<std::byte> buffer, bool into_scratch) noexcept;
    /// MPSC: the record at m_head is uncommitted; skip it if its claimant is dead.
    Result<bool> skip_dead_claim() noexcept;
    /// MPSC: alive if any slot holder is alive, dead if one is dead and none alive.
    PeerState mpsc_producers_state() noexcept;
    /// Non-blocking readiness: ok / empty.
    Result<ReadStatus> ready_now() noexcept;

    ring::RingHeader* m_header = nullptr;
    std::byte* m_data = nullptr;
    RingKind m_kind = RingKind::spsc;
    std::uint64_t m_capacity = 0;
    std::uint64_t m_mask = 0;
    std::uint32_t m_max_record = 0;
    std::uint64_t m_head = 0;         ///< our position (the segment's copy is only written)
    std::uint64_t m_zeroed = 0;       ///< how far we have zeroed (the segment's copy is only written)
    std::uint64_t m_cached_tail = 0;  ///< MPSC: last tail we read; reloaded only when it says empty
    bool m_end_of_stream = false;
    bool m_role = false;
    bool m_follow = false;
    bool m_fast_fence = false;
    int m_slot = -1;  ///< broadcast: our reader slot
    std::uint64_t m_lapped_bytes = 0;
    std::uint64_t m_read_messages = 0;  ///< broadcast: our count
    std::uint32_t m_empty_polls = 0;    ///< read(NO_WAIT) calls that found nothing since the last message
    detail::Slip m_slip;                ///< set_slip(); armed when a look found the ring empty
    std::uint64_t m_release_step = 0;   ///< set_release_step(): poll()/read() free room in steps of this
    bool m_held = false;                ///< poll()/read() moved head past what was freed (release_read())
    static constexpr std::uint32_t EMPTY_POLLS_PER_CHECK = 16;
    WaitOptions m_wait;
    detail::PeerWatch m_producer;  ///< liveness of the producer (SPSC/broadcast)
    /// MPSC: liveness of each slot's holder (index = slot; RING_SLOTS of them).
    std::vector<detail::PeerWatch> m_slot_watch;
    std::vector<std::byte> m_scratch;  ///< broadcast: a copy of the message being delivered
    UniqueFd m_doorbell_read;
    UniqueFd m_doorbell_write;
};

template <typename Writer>
Emplaced RingProducer::emplace(std::size_t max_len, Writer&& writer, std::size_t limit, Timeout timeout) {
    XPROC_ASSERT(m_header != nullptr);
    XPROC_ASSERT(!m_claimed);
    // Whatever happens (the writer may throw), what was written is published.
    struct FlushAtExit {
        RingProducer& producer;
        ~FlushAtExit() { producer.flush(); }
    } flush_at_exit{*this};
    Emplaced result;
    while (result.count < limit) {
        if (m_kind == RingKind::spsc && max_len <= m_max_record) {
            result.count += emplace_spsc(max_len, writer, limit - result.count);
            if (result.count == limit) {
                break;
            }
        }
        // One record the general way: padding at the wrap, a fresh look at the consumer's
        // position, the wait for the first record, and the MPSC and broadcast kinds.
        const Claim c = claim(max_len, result.count == 0 ? timeout : NO_WAIT);
        if (c.status != WriteStatus::ok) {
            if (result.count == 0) {
                result.status = c.status;
            }
            break;
        }
        struct AbortIfThrown {
            RingProducer* producer;
            ~AbortIfThrown() {
                if (producer != nullptr) {
                    producer->abort();
                }
            }
        } abort_if_thrown{this};
        const std::size_t length = writer(c.buffer);
        abort_if_thrown.producer = nullptr;
        XPROC_ASSERT(length <= max_len);
        commit_batched(length);
        ++result.count;
    }
    return result;
}

template <typename Writer>
std::size_t RingProducer::emplace_spsc(std::size_t max_len, Writer& writer, std::size_t limit) {
    // The loop's state in locals: the writer's stores through std::byte may alias members.
    struct State {
        RingProducer& producer;
        std::uint64_t tail;
        std::uint64_t dirty_to;
        std::size_t count = 0;
        std::uint64_t bytes = 0;
        std::uint64_t first_pos = 0;
        std::uint64_t first_word = 0;
        std::uint64_t open_end = 0;  ///< end of the space of the record being written, while it is
        ~State() {
            producer.emplaced(tail, std::max(dirty_to, open_end), count, bytes, first_pos, first_word);
        }
    } st{*this, m_tail, m_dirty_to};
    const std::uint64_t max_size = ring::record_size(max_len);
    // Room in our cached view of the consumer's position, up to the end of the area (the
    // wrap, with its padding, is claim()'s).
    const std::uint64_t end =
        std::min(m_cached_zeroed + m_capacity - ring::RING_SPSC_GAP, (m_tail & ~m_mask) + m_capacity);
    std::byte* const data = m_data;
    const std::uint64_t mask = m_mask;
    const bool hold = !m_holding;
    while (st.count < limit && st.tail + max_size <= end) {
        const std::uint64_t index = st.tail & mask;
        st.open_end = st.tail + max_size;
        const std::size_t length =
            writer(std::span<std::byte>(data + index + sizeof(ring::RecordHeader), max_len));
        st.open_end = 0;
        XPROC_ASSERT(length <= max_len);
        const std::uint64_t word = detail::pack(
            {static_cast<std::uint32_t>(length), static_cast<std::uint16_t>(ring::RecordType::data), 0});
        if (hold && st.count == 0) {
            // The batch's first header: stored last, by flush() (see commit_batched()).
            st.first_pos = st.tail;
            st.first_word = word;
        } else {
            // relaxed: behind the held header, published by its release store.
            detail::header_word(data, index).store(word, std::memory_order_relaxed);
        }
        if (length < max_len) [[unlikely]] {
            st.dirty_to = std::max(st.dirty_to, st.tail + max_size);  // the writer may have written there
        }
        st.tail += ring::record_size(length);
        st.bytes += length;
        ++st.count;
    }
    return st.count;
}

template <typename Handler>
Result<std::size_t> RingConsumer::poll(Handler&& handler, std::size_t limit) {
    XPROC_ASSERT(m_header != nullptr);
    std::size_t delivered = 0;
    if (m_kind == RingKind::broadcast) {
        while (delivered < limit) {
            auto r = read_broadcast({}, true);
            if (!r) {
                return fail(std::move(r.error()));
            }
            if (r->status == ReadStatus::ok) {
                handler(std::span<const std::byte>(m_scratch.data(), r->length));
                ++delivered;
                continue;
            }
            break;  // empty, end_of_stream, lapped
        }
        return delivered;
    }
    if (m_slip.armed && !slip_allows()) [[unlikely]] {
        release_held();
        return delivered;
    }
    const std::uint64_t start = m_head;
    std::uint64_t pos = m_head;
    bool slow = m_kind != RingKind::spsc;
    // The next record's position, guessed as this one's plus the size of the one before:
    // computed from `pos + size`, each header's address would wait for the load of the
    // header before it, one cache miss after another (64-byte records: 25% slower in a
    // stand-alone loop, 20% more consumer time per record). A wrong guess costs a branch.
    std::uint64_t step = 0;
    while (!slow && delivered < limit) {
        // SPSC data records that pass every check: one acquire load of each header (it pairs
        // with the producer's release store of it). Anything else goes to the loop below.
        const std::uint64_t index = pos & m_mask;
        std::uint64_t next = pos + step;
        detail::opaque(next);  // so that the compiler does not rewrite it as pos + size
        const auto rec = std::bit_cast<ring::RecordHeader>(
            detail::header_word(m_data, index).load(std::memory_order_acquire));
        const std::uint64_t size = ring::record_size(rec.length);
        if (rec.type == static_cast<std::uint16_t>(ring::RecordType::data) && rec.length <= m_max_record &&
            size <= m_capacity - index && size <= start + m_capacity - pos) [[likely]] {
            if (size != step) [[unlikely]] {
                detail::branch_not_select();  // a select would make `next` wait for the load again
                next = pos + size;
                step = size;
            }
            pos = next;
            handler(std::span<const std::byte>(m_data + index + sizeof(ring::RecordHeader), rec.length));
            ++delivered;
            continue;
        }
        slow = rec.type != static_cast<std::uint16_t>(ring::RecordType::uncommitted);
        if (!slow) {
            m_slip.arm();
        }
        break;
    }
    while (slow && delivered < limit) {
        auto ready = available(pos);
        if (!ready) {
            return fail(std::move(ready.error()));
        }
        if (!*ready) {
            m_slip.arm();
            break;
        }
        auto rec = record_at(pos);
        if (!rec) {
            return fail(std::move(rec.error()));
        }
        if (rec->type == ring::RecordType::uncommitted) {
            m_slip.arm();
            break;
        }
        pos += rec->size;
        if (rec->type == ring::RecordType::data) {
            handler(std::span<const std::byte>(rec->payload, rec->length));
            ++delivered;
        } else if (rec->type == ring::RecordType::end_of_stream) {
            m_end_of_stream = true;
            break;
        }
    }
    if (pos != start) {
        m_head = pos;
        release_read();  // all of it at the next call that finds nothing, at the latest
    } else {
        release_held();
    }
    return delivered;
}

}  // namespace xproc
