// SPDX-License-Identifier: MIT
#pragma once
/// @file channel.hpp
/// `Channel<T>`: a named ring that carries values of one trivially copyable type T, each
/// message exactly `sizeof(T)` bytes. A typed layer over RingSegment (ring_segment.hpp):
/// same protocol, roles, waiting and liveness, without byte spans.
///
///   struct Tick { std::uint64_t seq; double price; };
///
///   auto ch = xproc::Channel<Tick>::create("/ticks", 1024).value();   // 1024 messages
///   auto tx = ch.sender().value();
///   tx.send(Tick{1, 101.5}, std::chrono::seconds(1));
///   tx.send_end_of_stream(xproc::WAIT_FOREVER);
///
///   auto ch2 = xproc::Channel<Tick>::open("/ticks").value();          // another process
///   auto rx = ch2.receiver().value();
///   for (;;) {
///       auto r = rx.receive(xproc::WAIT_FOREVER).value();
///       if (r.status != xproc::ReadStatus::ok) break;  // end_of_stream, peer_gone
///       use(*r.value);
///   }
///
/// T is copied as its bytes: it must be trivially copyable, and it should hold no
/// pointers or handles (they mean nothing in another process). Both sides must agree on
/// T; the ring records only the message size, so a message whose length is not
/// sizeof(T) is reported as corrupt (and dropped), never copied past T's bounds.
///
/// Endpoints (Sender, Receiver) point into the Channel's mapping: they must not outlive
/// the Channel they came from. Move-only; one thread at a time per endpoint.

#include <sys/types.h>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "xproc/error.hpp"
#include "xproc/ring.hpp"
#include "xproc/ring_segment.hpp"

namespace xproc {

/// Result of `Channel<T>::Receiver::receive`.
template <typename T>
struct Received {
    /// ok (a value), empty (nothing within the timeout), end_of_stream (the sender's
    /// mark, consumed), peer_gone (the sender died and everything was read), lapped
    /// (broadcast ring only: messages were lost).
    ReadStatus status = ReadStatus::empty;
    std::optional<T> value;  ///< set exactly when status == ok
};

template <typename T>
class Channel {
    static_assert(std::is_trivially_copyable_v<T>,
                  "Channel<T> copies T as bytes between processes: T must be trivially copyable");
    static_assert(sizeof(T) <= ring_max_record_for(ring::RING_MAX_CAPACITY),
                  "T is larger than the largest ring record");

  public:
    class Sender;
    class Receiver;

    /// Creates ring `name` (O_EXCL, `mode`, an SPSC ring) whose records are sizeof(T)
    /// bytes, with room for at least `capacity` messages at once (the data area is
    /// rounded up to a power of two, so capacity() may be larger).
    /// Errors: as RingSegment::create (os/EEXIST when the name exists, invalid_argument
    /// for a bad name, capacity 0 or too large).
    static Result<Channel> create(std::string_view name, std::size_t capacity, mode_t mode = 0600) {
        const std::uint64_t record = ring::record_size(sizeof(T));
        // One record more than asked: the padding at the wrap point and the SPSC gap
        // together waste at most one; and the bytes a waiting consumer may leave unzeroed
        // before its position (see capacity()).
        if (capacity == 0 || capacity > (ring::RING_MAX_CAPACITY - ZERO_LAG) / record - 1) {
            return fail(Error::make(ErrorKind::invalid_argument, "channel create(" + std::string(name) + ")",
                                    "capacity of " + std::to_string(capacity) + " messages of " +
                                        std::to_string(sizeof(T)) + " bytes is out of range"));
        }
        RingConfig config;
        config.capacity = (capacity + 1) * record + ZERO_LAG;
        config.max_record = static_cast<std::uint32_t>(sizeof(T));
        config.mode = mode;
        auto segment = RingSegment::create(name, config);
        if (!segment) {
            return fail(std::move(segment.error()));
        }
        return Channel(std::move(*segment));
    }

    /// Opens existing ring `name` (of any kind; made by create() or another program).
    /// Errors: as RingSegment::open (os/ENOENT, permission, os/EPROTO when not a ring),
    /// invalid_argument when the ring's max_record is smaller than sizeof(T).
    static Result<Channel> open(std::string_view name, bool allow_foreign_owner = false) {
        auto segment = RingSegment::open(name, ShmAccess::read_write, allow_foreign_owner);
        if (!segment) {
            return fail(std::move(segment.error()));
        }
        if (segment->max_record() < sizeof(T)) {
            return fail(Error::make(ErrorKind::invalid_argument, "channel open(" + std::string(name) + ")",
                                    "the ring's max_record " + std::to_string(segment->max_record()) +
                                        " is smaller than the " + std::to_string(sizeof(T)) +
                                        "-byte message type"));
        }
        return Channel(std::move(*segment));
    }

    /// shm_unlink(name): processes that have it open keep using it.
    static Result<void> remove(std::string_view name) { return RingSegment::remove(name); }

    /// Takes the producer role (see RingProducer::attach: refused, naming the holder's
    /// pid, while a live process holds it; a dead holder's role is taken over).
    Result<Sender> sender(const AttachOptions& options = {}) {
        auto p = m_segment.producer(options);
        if (!p) {
            return fail(std::move(p.error()));
        }
        return Sender(std::move(*p));
    }

    /// Takes the consumer role (or a broadcast reader slot).
    Result<Receiver> receiver(const AttachOptions& options = {}) {
        auto c = m_segment.consumer(options);
        if (!c) {
            return fail(std::move(c.error()));
        }
        return Receiver(std::move(*c));
    }

    /// Most bytes before its position that a consumer waiting at head leaves unzeroed
    /// (and so not yet free) for a while: the rest of the line it reads.
    static constexpr std::uint64_t ZERO_LAG = ring::RING_ZERO_LINE - ring::RING_RECORD_ALIGN;

    /// Messages that fit at once whatever the wrap point (at least what create() asked).
    std::size_t capacity() const noexcept {
        const std::uint64_t record = ring::record_size(sizeof(T));
        const std::uint64_t area = m_segment.capacity();
        // A padding record at the wrap point wastes at most record - 8 bytes, and an SPSC
        // producer keeps RING_SPSC_GAP (8) bytes free: one record's worth in all. A consumer
        // waiting for the next record may not have zeroed the start of its line yet.
        return static_cast<std::size_t>((area - record - ZERO_LAG) / record);
    }
    const std::string& name() const noexcept { return m_segment.name(); }
    RingSegment& segment() noexcept { return m_segment; }

    /// The sending side. Not thread safe; move-only.
    class Sender {
      public:
        /// Copies `value` into the ring, waiting up to `timeout` for room: ok, full (no
        /// room in time), peer_gone (the receiver died; seen while the ring is full).
        WriteStatus send(const T& value, Timeout timeout = NO_WAIT) noexcept {
            return m_producer.write(std::as_bytes(std::span<const T, 1>(&value, 1)), timeout);
        }
        WriteStatus try_send(const T& value) noexcept { return send(value, NO_WAIT); }
        /// Tells the receiver there is no more (its receive() reports end_of_stream).
        WriteStatus send_end_of_stream(Timeout timeout = NO_WAIT) noexcept {
            return m_producer.write_end_of_stream(timeout);
        }
        /// Liveness of the receiving side.
        PeerState receiver_state() noexcept { return m_producer.consumer_state(); }
        /// Gives up the role (a receiver then waits for a new sender). Idempotent.
        void close() noexcept { m_producer.close(); }
        /// The untyped producer underneath (statistics, claim/commit).
        RingProducer& ring() noexcept { return m_producer; }

      private:
        friend class Channel;
        explicit Sender(RingProducer producer) noexcept : m_producer(std::move(producer)) {}
        RingProducer m_producer;
    };

    /// The receiving side. Not thread safe; move-only.
    class Receiver {
      public:
        /// Takes the next value, waiting up to `timeout` for one. Errors: corrupt when the
        /// segment fails validation or the message is not sizeof(T) bytes long (such a
        /// message is dropped; the next receive() goes on with the one after it).
        Result<Received<T>> receive(Timeout timeout = NO_WAIT) noexcept {
            std::array<std::byte, sizeof(T)> bytes;
            auto r = m_consumer.read(bytes, timeout);
            if (!r) {
                return fail(std::move(r.error()));
            }
            switch (r->status) {
                case ReadStatus::ok:
                    if (r->length != sizeof(T)) {
                        return fail(wrong_size(r->length));
                    }
                    return Received<T>{ReadStatus::ok, std::bit_cast<T>(bytes)};
                case ReadStatus::too_small: {
                    // Longer than T: it stays in the ring after read(); drop it so that one
                    // bad message does not block the channel.
                    const std::size_t length = r->length;
                    auto dropped = m_consumer.poll([](std::span<const std::byte>) {}, 1);
                    if (!dropped) {
                        return fail(std::move(dropped.error()));
                    }
                    return fail(wrong_size(length));
                }
                default:
                    return Received<T>{r->status, std::nullopt};
            }
        }
        Result<Received<T>> try_receive() noexcept { return receive(NO_WAIT); }
        /// Liveness of the sending side.
        PeerState sender_state() noexcept { return m_consumer.producer_state(); }
        /// Gives up the role. Idempotent.
        void close() noexcept { m_consumer.close(); }
        /// The untyped consumer underneath (doorbell_fd for epoll, statistics).
        RingConsumer& ring() noexcept { return m_consumer; }

      private:
        friend class Channel;
        explicit Receiver(RingConsumer consumer) noexcept : m_consumer(std::move(consumer)) {}
        static Error wrong_size(std::size_t length) {
            return Error::make(ErrorKind::corrupt, "channel receive",
                               "message of " + std::to_string(length) + " bytes, expected " +
                                   std::to_string(sizeof(T)) + " (sizeof T); dropped")
                .with_hint("both sides of a Channel<T> must use the same T");
        }
        RingConsumer m_consumer;
    };

  private:
    explicit Channel(RingSegment segment) noexcept : m_segment(std::move(segment)) {}
    RingSegment m_segment;
};

}  // namespace xproc
