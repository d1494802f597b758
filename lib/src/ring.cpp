// SPDX-License-Identifier: MIT
#include "xproc/ring.hpp"

#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "xproc/process.hpp"

namespace xproc {

using ring::RecordHeader;
using ring::RecordType;
using ring::RingHeader;

namespace {

template <typename T>
std::atomic_ref<T> shared(T& field) noexcept {
    return std::atomic_ref<T>(field);
}

std::string hex(std::uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

bool is_power_of_two(std::uint64_t v) noexcept {
    return v != 0 && (v & (v - 1)) == 0;
}

Error corrupt(std::string detail) {
    return Error::make(ErrorKind::corrupt, "ring attach", std::move(detail));
}

Error corrupt_read(std::string detail) {
    return Error::make(ErrorKind::corrupt, "ring read", std::move(detail));
}

Result<void> check_memory(std::span<std::byte> memory, const char* op) {
    if (reinterpret_cast<std::uintptr_t>(memory.data()) % alignof(RingHeader) != 0) {
        return fail(Error::make(ErrorKind::invalid_argument, op,
                                "memory must start on a 128-byte boundary (mmap gives page alignment)"));
    }
    return {};
}

Result<void> check_geometry(std::uint64_t capacity, std::uint64_t max_record, std::size_t memory_size,
                            ErrorKind kind, const char* op) {
    if (!is_power_of_two(capacity) || capacity < ring::RING_MIN_CAPACITY ||
        capacity > ring::RING_MAX_CAPACITY) {
        return fail(Error::make(kind, op,
                                "capacity " + std::to_string(capacity) + " is not a power of two in [" +
                                    std::to_string(ring::RING_MIN_CAPACITY) + ", " +
                                    std::to_string(ring::RING_MAX_CAPACITY) + "]"));
    }
    if (max_record == 0 || ring::record_size(max_record) > capacity / 2) {
        return fail(Error::make(kind, op,
                                "max_record " + std::to_string(max_record) +
                                    " must be >= 1 and its record (header + payload, 8-aligned) at most "
                                    "capacity / 2 = " +
                                    std::to_string(capacity / 2)));
    }
    if (memory_size < sizeof(RingHeader) || memory_size - sizeof(RingHeader) < capacity) {
        return fail(Error::make(kind, op,
                                "memory of " + std::to_string(memory_size) + " bytes cannot hold the " +
                                    std::to_string(sizeof(RingHeader)) + "-byte header and a " +
                                    std::to_string(capacity) + "-byte data area"));
    }
    return {};
}

/// Positions read from the segment: head <= tail <= head + capacity, both 8-aligned.
bool positions_valid(std::uint64_t head, std::uint64_t tail, std::uint64_t capacity) noexcept {
    return head <= tail && tail - head <= capacity && head % ring::RING_RECORD_ALIGN == 0 &&
           tail % ring::RING_RECORD_ALIGN == 0;
}

/// Geometry and positions of a validated segment.
struct Attached {
    RingHeader* header;
    std::byte* data;
    std::uint64_t capacity;
    std::uint32_t max_record;
    std::uint64_t head;
    std::uint64_t tail;
};

Result<Attached> attach_segment(std::span<std::byte> memory) {
    if (auto ok = check_memory(memory, "ring attach"); !ok) {
        return fail(std::move(ok.error()));
    }
    if (memory.size() < sizeof(RingHeader)) {
        return fail(corrupt("segment of " + std::to_string(memory.size()) +
                            " bytes is smaller than a ring header (" + std::to_string(sizeof(RingHeader)) +
                            " bytes)"));
    }
    auto* header = reinterpret_cast<RingHeader*>(memory.data());
    // acquire: pairs with the release store of version in format_ring(); the identity
    // fields read below were written before it.
    const std::uint32_t version = shared(header->version).load(std::memory_order_acquire);
    if (version == 0) {
        return fail(Error::from_errno(EAGAIN, "ring attach")
                        .with_hint("the segment is not formatted yet (version 0); retry shortly"));
    }
    if (header->magic != ring::RING_MAGIC) {
        return fail(corrupt("not an xproc ring: magic " + hex(header->magic) + ", expected " +
                            hex(ring::RING_MAGIC) + " (\"XPROCRNG\")"));
    }
    if (version != ring::RING_LAYOUT_VERSION) {
        return fail(corrupt("ring layout version " + std::to_string(version) +
                            ", this library reads layout version " +
                            std::to_string(ring::RING_LAYOUT_VERSION))
                        .with_hint("use the same xproc version on both sides"));
    }
    if (header->header_size != sizeof(RingHeader)) {
        return fail(corrupt("header_size " + std::to_string(header->header_size) + ", expected " +
                            std::to_string(sizeof(RingHeader))));
    }
    const std::uint64_t capacity = header->capacity;
    const std::uint32_t max_record = header->max_record;
    if (auto ok = check_geometry(capacity, max_record, memory.size(), ErrorKind::corrupt, "ring attach");
        !ok) {
        return fail(std::move(ok.error()));
    }
    if (header->kind != static_cast<std::uint32_t>(RingKind::spsc)) {
        if (header->kind == static_cast<std::uint32_t>(RingKind::mpsc) ||
            header->kind == static_cast<std::uint32_t>(RingKind::broadcast)) {
            return fail(Error::make(ErrorKind::not_supported, "ring attach",
                                    "ring kind " + std::to_string(header->kind) + " is not implemented yet"));
        }
        return fail(corrupt("unknown ring kind " + std::to_string(header->kind)));
    }
    // acquire: pairs with the other side's release store of its position (commit / release).
    const std::uint64_t head = shared(header->head).load(std::memory_order_acquire);
    const std::uint64_t tail = shared(header->tail).load(std::memory_order_acquire);
    if (!positions_valid(head, tail, capacity)) {
        return fail(corrupt("positions head " + std::to_string(head) + " tail " + std::to_string(tail) +
                            " are inconsistent with capacity " + std::to_string(capacity)));
    }
    return Attached{header, memory.data() + sizeof(RingHeader), capacity, max_record, head, tail};
}

}  // namespace

std::string_view to_string(WriteStatus status) noexcept {
    switch (status) {
        case WriteStatus::ok:
            return "ok";
        case WriteStatus::full:
            return "full";
        case WriteStatus::too_large:
            return "too_large";
    }
    return "unknown";
}

std::string_view to_string(ReadStatus status) noexcept {
    switch (status) {
        case ReadStatus::ok:
            return "ok";
        case ReadStatus::empty:
            return "empty";
        case ReadStatus::too_small:
            return "too_small";
        case ReadStatus::end_of_stream:
            return "end_of_stream";
    }
    return "unknown";
}

Result<void> format_ring(std::span<std::byte> memory, std::uint64_t capacity, std::uint32_t max_record,
                         RingKind kind) {
    if (auto ok = check_memory(memory, "ring create"); !ok) {
        return ok;
    }
    if (auto ok =
            check_geometry(capacity, max_record, memory.size(), ErrorKind::invalid_argument, "ring create");
        !ok) {
        return ok;
    }
    if (kind != RingKind::spsc) {
        return fail(
            Error::make(ErrorKind::not_supported, "ring create", "only RingKind::spsc is implemented"));
    }
    auto* header = reinterpret_cast<RingHeader*>(memory.data());
    // relaxed: an opener that loaded the old version (acquire) before this store may still
    // read the old header; that is the caller's problem (format only memory nobody uses).
    shared(header->version).store(0, std::memory_order_relaxed);
    // Zero everything after version (so reserved fields, positions and counters start at 0).
    std::memset(reinterpret_cast<unsigned char*>(header) + offsetof(RingHeader, header_size), 0,
                sizeof(RingHeader) - offsetof(RingHeader, header_size));
    header->magic = ring::RING_MAGIC;
    header->header_size = sizeof(RingHeader);
    header->capacity = capacity;
    header->max_record = max_record;
    header->kind = static_cast<std::uint32_t>(kind);
    header->creator_pid = static_cast<std::int32_t>(::getpid());
    header->creator_start_time = 0;
    if (auto self = Process::self()) {
        if (auto start = self->start_time()) {
            header->creator_start_time = *start;
        }
    }
    // release: pairs with the acquire load of version in attach; every field above is
    // visible to an opener that sees the new version.
    shared(header->version).store(ring::RING_LAYOUT_VERSION, std::memory_order_release);
    return {};
}

// ---------------------------------------------------------------------------------------
// Producer

Result<RingProducer> RingProducer::create(std::span<std::byte> memory, std::uint64_t capacity,
                                          std::uint32_t max_record, RingKind kind) {
    if (auto ok = format_ring(memory, capacity, max_record, kind); !ok) {
        return fail(std::move(ok.error()));
    }
    return attach(memory);
}

Result<RingProducer> RingProducer::attach(std::span<std::byte> memory) {
    auto seg = attach_segment(memory);
    if (!seg) {
        return fail(std::move(seg.error()));
    }
    RingProducer p;
    p.m_header = seg->header;
    p.m_data = seg->data;
    p.m_capacity = seg->capacity;
    p.m_mask = seg->capacity - 1;
    p.m_max_record = seg->max_record;
    p.m_tail = seg->tail;
    p.m_cached_head = seg->head;
    // relaxed: counters are statistics, written only by the producer; nothing is ordered by them.
    p.m_messages = shared(seg->header->messages).load(std::memory_order_relaxed);
    p.m_bytes = shared(seg->header->bytes).load(std::memory_order_relaxed);
    p.m_high_water = shared(seg->header->high_water).load(std::memory_order_relaxed);
    return p;
}

RingProducer& RingProducer::operator=(RingProducer&& other) noexcept {
    m_header = std::exchange(other.m_header, nullptr);
    m_data = std::exchange(other.m_data, nullptr);
    m_capacity = std::exchange(other.m_capacity, 0);
    m_mask = std::exchange(other.m_mask, 0);
    m_max_record = std::exchange(other.m_max_record, 0);
    m_tail = other.m_tail;
    m_cached_head = other.m_cached_head;
    m_claim_pos = other.m_claim_pos;
    m_claim_len = other.m_claim_len;
    m_claimed = std::exchange(other.m_claimed, false);
    m_messages = other.m_messages;
    m_bytes = other.m_bytes;
    m_high_water = other.m_high_water;
    return *this;
}

bool RingProducer::reserve(std::uint64_t size) noexcept {
    const std::uint64_t index = m_tail & m_mask;
    const std::uint64_t to_end = m_capacity - index;
    const std::uint64_t padding = size <= to_end ? 0 : to_end;
    const std::uint64_t need = padding + size;
    // Free space is capacity - (tail - head). A head outside [tail - capacity, tail] (a
    // corrupt or hostile consumer) makes the unsigned difference exceed capacity and
    // reads as full: we never write outside the area we own.
    if (m_tail - m_cached_head > m_capacity - need) {
        // acquire: pairs with the consumer's release store of head in release(); its reads
        // of the records before head are done before we overwrite them.
        m_cached_head = shared(m_header->head).load(std::memory_order_acquire);
        if (m_tail - m_cached_head > m_capacity || m_tail - m_cached_head > m_capacity - need) {
            return false;
        }
    }
    if (padding != 0) {
        const RecordHeader pad{static_cast<std::uint32_t>(to_end - sizeof(RecordHeader)),
                               static_cast<std::uint16_t>(RecordType::padding), 0};
        std::memcpy(m_data + index, &pad, sizeof pad);
    }
    m_claim_pos = m_tail + padding;
    return true;
}

void RingProducer::publish(std::uint64_t length, RecordType type) noexcept {
    const RecordHeader rec{static_cast<std::uint32_t>(length), static_cast<std::uint16_t>(type), 0};
    std::memcpy(m_data + (m_claim_pos & m_mask), &rec, sizeof rec);
    m_tail = m_claim_pos + ring::record_size(length);
    // release: pairs with the consumer's acquire load of tail in available(); the padding,
    // record header and payload written above are visible to it.
    shared(m_header->tail).store(m_tail, std::memory_order_release);
}

Claim RingProducer::claim(std::size_t max_len) noexcept {
    XPROC_ASSERT(m_header != nullptr);
    XPROC_ASSERT(!m_claimed);
    if (max_len > m_max_record) {
        return {WriteStatus::too_large, {}};
    }
    if (!reserve(ring::record_size(max_len))) {
        return {WriteStatus::full, {}};
    }
    m_claimed = true;
    m_claim_len = max_len;
    return {WriteStatus::ok,
            std::span<std::byte>(m_data + (m_claim_pos & m_mask) + sizeof(RecordHeader), max_len)};
}

void RingProducer::commit(std::size_t length) noexcept {
    XPROC_ASSERT(m_claimed);
    XPROC_ASSERT(length <= m_claim_len);
    m_claimed = false;
    publish(length, RecordType::data);
    ++m_messages;
    m_bytes += length;
    const std::uint64_t used = m_tail - m_cached_head;  // an upper bound: head may have moved on
    // relaxed: statistics written only by the producer; readers need no ordering with data.
    shared(m_header->messages).store(m_messages, std::memory_order_relaxed);
    shared(m_header->bytes).store(m_bytes, std::memory_order_relaxed);
    if (used > m_high_water) {
        m_high_water = used;
        // relaxed: as above.
        shared(m_header->high_water).store(m_high_water, std::memory_order_relaxed);
    }
}

void RingProducer::abort() noexcept {
    XPROC_ASSERT(m_claimed);
    // A padding record written by reserve() is not published: tail did not move.
    m_claimed = false;
}

WriteStatus RingProducer::try_write(std::span<const std::byte> message) noexcept {
    const Claim c = claim(message.size());
    if (c.status != WriteStatus::ok) {
        return c.status;
    }
    if (!message.empty()) {
        std::memcpy(c.buffer.data(), message.data(), message.size());
    }
    commit(message.size());
    return WriteStatus::ok;
}

WriteStatus RingProducer::try_write_end_of_stream() noexcept {
    XPROC_ASSERT(m_header != nullptr);
    XPROC_ASSERT(!m_claimed);
    if (!reserve(ring::record_size(0))) {
        return WriteStatus::full;
    }
    publish(0, RecordType::end_of_stream);
    return WriteStatus::ok;
}

// ---------------------------------------------------------------------------------------
// Consumer

Result<RingConsumer> RingConsumer::create(std::span<std::byte> memory, std::uint64_t capacity,
                                          std::uint32_t max_record, RingKind kind) {
    if (auto ok = format_ring(memory, capacity, max_record, kind); !ok) {
        return fail(std::move(ok.error()));
    }
    return attach(memory);
}

Result<RingConsumer> RingConsumer::attach(std::span<std::byte> memory) {
    auto seg = attach_segment(memory);
    if (!seg) {
        return fail(std::move(seg.error()));
    }
    RingConsumer c;
    c.m_header = seg->header;
    c.m_data = seg->data;
    c.m_capacity = seg->capacity;
    c.m_mask = seg->capacity - 1;
    c.m_max_record = seg->max_record;
    c.m_head = seg->head;
    c.m_cached_tail = seg->tail;
    return c;
}

RingConsumer& RingConsumer::operator=(RingConsumer&& other) noexcept {
    m_header = std::exchange(other.m_header, nullptr);
    m_data = std::exchange(other.m_data, nullptr);
    m_capacity = std::exchange(other.m_capacity, 0);
    m_mask = std::exchange(other.m_mask, 0);
    m_max_record = std::exchange(other.m_max_record, 0);
    m_head = other.m_head;
    m_cached_tail = other.m_cached_tail;
    m_end_of_stream = other.m_end_of_stream;
    return *this;
}

Result<bool> RingConsumer::available(std::uint64_t pos) noexcept {
    XPROC_ASSERT(m_header != nullptr);
    if (pos != m_cached_tail) {
        return true;
    }
    // acquire: pairs with the producer's release store of tail in publish(); the records
    // before tail are fully written when we read them.
    const std::uint64_t tail = shared(m_header->tail).load(std::memory_order_acquire);
    if (tail < m_cached_tail) {
        return fail(corrupt_read("tail went backwards from " + std::to_string(m_cached_tail) + " to " +
                                 std::to_string(tail)));
    }
    if (tail - m_head > m_capacity || tail % ring::RING_RECORD_ALIGN != 0) {
        return fail(corrupt_read("tail " + std::to_string(tail) + " is not an 8-aligned position within " +
                                 std::to_string(m_capacity) + " bytes of head " + std::to_string(m_head)));
    }
    m_cached_tail = tail;
    return tail != pos;
}

Result<RingConsumer::Record> RingConsumer::record_at(std::uint64_t pos) const noexcept {
    // Invariants kept by available(): pos and m_cached_tail are 8-aligned, pos < m_cached_tail,
    // so a whole record header lies before tail and before the end of the area.
    const std::uint64_t index = pos & m_mask;
    RecordHeader rec;
    std::memcpy(&rec, m_data + index, sizeof rec);
    const std::uint64_t size = ring::record_size(rec.length);
    const std::uint64_t to_end = m_capacity - index;
    const std::uint64_t readable = m_cached_tail - pos;
    auto bad = [&](const char* what) {
        return fail(corrupt_read(std::string(what) + " at position " + std::to_string(pos) + " (type " +
                                 std::to_string(rec.type) + ", length " + std::to_string(rec.length) + ")"));
    };
    switch (static_cast<RecordType>(rec.type)) {
        case RecordType::data:
            if (rec.length > m_max_record) {
                return bad("record longer than max_record");
            }
            break;
        case RecordType::padding:
            if (size != to_end) {
                return bad("padding record that does not end at the end of the data area");
            }
            break;
        case RecordType::end_of_stream:
            if (rec.length != 0) {
                return bad("end-of-stream record with a payload");
            }
            break;
        default:
            return bad("unknown record type");
    }
    if (size > to_end) {
        return bad("record crossing the end of the data area");
    }
    if (size > readable) {
        return bad("record extending past tail");
    }
    return Record{static_cast<RecordType>(rec.type), rec.length, size, m_data + index + sizeof(RecordHeader)};
}

void RingConsumer::release() noexcept {
    // release: pairs with the producer's acquire load of head in reserve(); our reads of
    // the released records happen before it overwrites them.
    shared(m_header->head).store(m_head, std::memory_order_release);
}

Result<ReadResult> RingConsumer::try_read(std::span<std::byte> buffer) noexcept {
    for (;;) {
        auto ready = available(m_head);
        if (!ready) {
            return fail(std::move(ready.error()));
        }
        if (!*ready) {
            return ReadResult{ReadStatus::empty, 0};
        }
        auto rec = record_at(m_head);
        if (!rec) {
            return fail(std::move(rec.error()));
        }
        switch (rec->type) {
            case RecordType::padding:
                m_head += rec->size;
                release();
                continue;
            case RecordType::end_of_stream:
                m_head += rec->size;
                release();
                m_end_of_stream = true;
                return ReadResult{ReadStatus::end_of_stream, 0};
            case RecordType::data:
                break;
        }
        if (rec->length > buffer.size()) {
            return ReadResult{ReadStatus::too_small, rec->length};
        }
        if (rec->length != 0) {
            std::memcpy(buffer.data(), rec->payload, rec->length);
        }
        m_head += rec->size;
        release();
        return ReadResult{ReadStatus::ok, rec->length};
    }
}

}  // namespace xproc
