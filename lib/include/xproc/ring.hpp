// SPDX-License-Identifier: MIT
#pragma once
/// @file ring.hpp
/// The IPC core: a lock-free single-producer/single-consumer ring of variable-length
/// records over a block of memory (normally a shared-memory segment mapped by two
/// processes). The format is in `xproc/ring/layout.hpp`.
///
/// This layer does not obtain memory and never blocks: calls return `full`/`empty` at
/// once. The caller provides a `std::span<std::byte>` whose start is aligned to 128 bytes
/// and that holds `ring_segment_size(capacity)` bytes.
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

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "xproc/error.hpp"
#include "xproc/ring/layout.hpp"

namespace xproc {

using ring::RingKind;

/// Outcome of a write or a claim that is not an error.
enum class WriteStatus : std::uint8_t {
    ok,         ///< written / claimed
    full,       ///< not enough free space now; retry after the consumer has read
    too_large,  ///< the message is larger than the ring's max_record: it never fits
};

/// Outcome of a read that is not an error.
enum class ReadStatus : std::uint8_t {
    ok,             ///< a message was copied; `length` bytes
    empty,          ///< nothing to read now
    too_small,      ///< the buffer is smaller than the next message (`length`); it stays in the ring
    end_of_stream,  ///< the producer wrote end-of-stream (consumed; later messages may follow)
};

std::string_view to_string(WriteStatus status) noexcept;
std::string_view to_string(ReadStatus status) noexcept;

/// Result of `RingConsumer::try_read`.
struct ReadResult {
    ReadStatus status = ReadStatus::empty;
    std::size_t length = 0;  ///< bytes copied (ok) or needed (too_small)
};

/// Result of `RingProducer::claim`: on `ok`, `buffer` is where to write the payload.
struct Claim {
    WriteStatus status = WriteStatus::full;
    std::span<std::byte> buffer;
};

/// Bytes a segment needs for a data area of `capacity` bytes (header + data).
constexpr std::size_t ring_segment_size(std::uint64_t capacity) noexcept {
    return sizeof(ring::RingHeader) + static_cast<std::size_t>(capacity);
}

/// Formats `memory` as an empty ring: writes the whole header, `version` last with release
/// (an opener that sees version 0 treats the segment as not ready yet).
/// `capacity` must be a power of two in [RING_MIN_CAPACITY, RING_MAX_CAPACITY];
/// `max_record` >= 1 and `record_size(max_record) <= capacity / 2` (so any record fits
/// in an empty ring whatever the wrap point). Only RingKind::spsc is implemented.
/// Errors: invalid_argument (sizes, alignment of memory), not_supported (kind).
/// Not thread safe: nobody may use the memory while it is being formatted.
Result<void> format_ring(std::span<std::byte> memory, std::uint64_t capacity, std::uint32_t max_record,
                         RingKind kind = RingKind::spsc);

/// The writing side of an SPSC ring. Keeps its own copy of tail and a cached head.
/// Move-only. Not thread safe: one thread at a time uses a producer.
class RingProducer {
  public:
    /// format_ring() then attach().
    static Result<RingProducer> create(std::span<std::byte> memory, std::uint64_t capacity,
                                       std::uint32_t max_record, RingKind kind = RingKind::spsc);
    /// Attaches to a formatted ring (see RingConsumer::attach for the validation).
    /// Errors: corrupt (not a ring, wrong version, bad sizes or positions), os/EAGAIN
    /// (version 0: not ready yet), not_supported (another kind), invalid_argument (alignment).
    static Result<RingProducer> attach(std::span<std::byte> memory);

    RingProducer(RingProducer&& other) noexcept { *this = std::move(other); }
    RingProducer& operator=(RingProducer&& other) noexcept;
    RingProducer(const RingProducer&) = delete;
    RingProducer& operator=(const RingProducer&) = delete;
    ~RingProducer() = default;

    /// Reserves room for a payload of up to `max_len` bytes and returns where to write it.
    /// Nothing is visible to the consumer until commit(). At most one claim is outstanding
    /// (claiming again before commit/abort is a programming error).
    /// `full` when there is not enough free space now; `too_large` when max_len > max_record.
    Claim claim(std::size_t max_len) noexcept;
    /// Publishes the claimed record with `length` <= the claimed size bytes of payload.
    void commit(std::size_t length) noexcept;
    /// Drops the outstanding claim; nothing is published.
    void abort() noexcept;

    /// Copies `message` into the ring as one record.
    WriteStatus try_write(std::span<const std::byte> message) noexcept;
    /// Writes an end-of-stream record (the consumer's try_read reports end_of_stream,
    /// poll stops its batch after it).
    WriteStatus try_write_end_of_stream() noexcept;

    std::uint64_t capacity() const noexcept { return m_capacity; }
    std::uint32_t max_record() const noexcept { return m_max_record; }
    /// Position after the last committed record.
    std::uint64_t tail() const noexcept { return m_tail; }

  private:
    RingProducer() noexcept = default;
    /// Claims `size` bytes of data area (a whole record), inserting padding at wrap.
    /// Returns false when full.
    bool reserve(std::uint64_t size) noexcept;
    void publish(std::uint64_t length, ring::RecordType type) noexcept;

    ring::RingHeader* m_header = nullptr;
    std::byte* m_data = nullptr;
    std::uint64_t m_capacity = 0;
    std::uint64_t m_mask = 0;
    std::uint32_t m_max_record = 0;
    std::uint64_t m_tail = 0;         ///< our position (the segment's copy is only written)
    std::uint64_t m_cached_head = 0;  ///< last head we read; reloaded only when it says full
    std::uint64_t m_claim_pos = 0;    ///< where the claimed record's header goes
    std::uint64_t m_claim_len = 0;    ///< payload bytes claimed
    bool m_claimed = false;
    std::uint64_t m_messages = 0;  ///< our copies of the producer counters
    std::uint64_t m_bytes = 0;
    std::uint64_t m_high_water = 0;
};

/// The reading side of an SPSC ring. Keeps its own copy of head and a cached tail.
/// Move-only. Not thread safe: one thread at a time uses a consumer.
class RingConsumer {
  public:
    /// format_ring() then attach().
    static Result<RingConsumer> create(std::span<std::byte> memory, std::uint64_t capacity,
                                       std::uint32_t max_record, RingKind kind = RingKind::spsc);
    /// Attaches to a formatted ring. Checks, in order: the memory holds a header and is
    /// 128-byte aligned; version != 0 (else os/EAGAIN: not ready); magic; version ==
    /// RING_LAYOUT_VERSION (the error prints both); header_size; capacity a power of two
    /// in range and header + capacity within `memory`; max_record; kind; head <= tail <=
    /// head + capacity, both multiples of 8. Errors: corrupt, not_supported (kind),
    /// invalid_argument (alignment), os/EAGAIN.
    static Result<RingConsumer> attach(std::span<std::byte> memory);

    RingConsumer(RingConsumer&& other) noexcept { *this = std::move(other); }
    RingConsumer& operator=(RingConsumer&& other) noexcept;
    RingConsumer(const RingConsumer&) = delete;
    RingConsumer& operator=(const RingConsumer&) = delete;
    ~RingConsumer() = default;

    /// Calls `handler(std::span<const std::byte>)` for up to `limit` messages, in order,
    /// reading them in place, then releases the whole batch with one store of head.
    /// Stops early after an end-of-stream record (see saw_end_of_stream()). The span is
    /// valid only during the call; the bytes live in shared memory, so a hostile producer
    /// could change them while the handler reads. If the handler throws, nothing of the
    /// batch is released (the messages will be delivered again).
    /// Returns the number of messages delivered; corrupt when the segment fails validation
    /// (the messages of the batch before the bad record are delivered but not released).
    template <typename Handler>
    Result<std::size_t> poll(Handler&& handler, std::size_t limit);

    /// Copies the next message into `buffer`. A message larger than `buffer` stays in the
    /// ring (too_small, with its length). Errors: corrupt.
    Result<ReadResult> try_read(std::span<std::byte> buffer) noexcept;

    /// True once an end-of-stream record has been read (by poll or try_read).
    bool saw_end_of_stream() const noexcept { return m_end_of_stream; }

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
    /// Ensures a record is readable at `pos`: returns false when empty (reloading tail
    /// when the cached copy says empty). Errors: corrupt tail.
    Result<bool> available(std::uint64_t pos) noexcept;
    /// Reads and validates the record header at `pos` (known to be before tail).
    Result<Record> record_at(std::uint64_t pos) const noexcept;
    /// Publishes m_head (release).
    void release() noexcept;

    ring::RingHeader* m_header = nullptr;
    std::byte* m_data = nullptr;
    std::uint64_t m_capacity = 0;
    std::uint64_t m_mask = 0;
    std::uint32_t m_max_record = 0;
    std::uint64_t m_head = 0;         ///< our position (the segment's copy is only written)
    std::uint64_t m_cached_tail = 0;  ///< last tail we read; reloaded only when it says empty
    bool m_end_of_stream = false;
};

template <typename Handler>
Result<std::size_t> RingConsumer::poll(Handler&& handler, std::size_t limit) {
    std::size_t delivered = 0;
    std::uint64_t pos = m_head;
    while (delivered < limit) {
        auto ready = available(pos);
        if (!ready) {
            return fail(std::move(ready.error()));
        }
        if (!*ready) {
            break;
        }
        auto rec = record_at(pos);
        if (!rec) {
            return fail(std::move(rec.error()));
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
    if (pos != m_head) {
        m_head = pos;
        release();
    }
    return delivered;
}

}  // namespace xproc
