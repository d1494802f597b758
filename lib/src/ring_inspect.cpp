// SPDX-License-Identifier: MIT
// Reading a ring without taking part in it: snapshot_ring (for `xring stat`) and
// check_ring (for `xring check`).
#include <atomic>
#include <cstring>
#include <string>

#include "xproc/ring.hpp"

namespace xproc {

namespace {

template <typename T>
T load(const T& field) noexcept {
    // relaxed: a statistics snapshot; fields are read one by one, not as a whole.
    return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}

Error corrupt(std::string detail) {
    return Error::make(ErrorKind::corrupt, "ring inspect", std::move(detail));
}

/// The identity and geometry checks of attach, on a read-only view.
Result<const ring::RingHeader*> header_of(std::span<const std::byte> memory) {
    if (memory.size() < sizeof(ring::RingHeader)) {
        return fail(corrupt("segment of " + std::to_string(memory.size()) +
                            " bytes is smaller than a ring header (" +
                            std::to_string(sizeof(ring::RingHeader)) + " bytes)"));
    }
    if (reinterpret_cast<std::uintptr_t>(memory.data()) % alignof(ring::RingHeader) != 0) {
        return fail(
            Error::make(ErrorKind::invalid_argument, "ring inspect", "memory must be 128-byte aligned"));
    }
    const auto* h = reinterpret_cast<const ring::RingHeader*>(memory.data());
    if (h->magic != ring::RING_MAGIC) {
        return fail(corrupt("not an xproc ring (no XPROCRNG magic at offset 0)"));
    }
    const std::uint32_t version =
        std::atomic_ref<const std::uint32_t>(h->version).load(std::memory_order_acquire);
    if (version == 0) {
        return fail(
            Error::from_errno(EAGAIN, "ring inspect").with_hint("the ring is being created; retry shortly"));
    }
    if (version != ring::RING_LAYOUT_VERSION) {
        return fail(corrupt("ring layout version " + std::to_string(version) +
                            ", this library reads version " + std::to_string(ring::RING_LAYOUT_VERSION)));
    }
    if (h->header_size != sizeof(ring::RingHeader)) {
        return fail(corrupt("header_size " + std::to_string(h->header_size) + ", expected " +
                            std::to_string(sizeof(ring::RingHeader))));
    }
    const std::uint64_t cap = h->capacity;
    if (cap < ring::RING_MIN_CAPACITY || cap > ring::RING_MAX_CAPACITY || (cap & (cap - 1)) != 0) {
        return fail(corrupt("capacity " + std::to_string(cap) + " is not a power of two in range"));
    }
    if (memory.size() - sizeof(ring::RingHeader) < cap) {
        return fail(corrupt("capacity " + std::to_string(cap) + " runs past the end of the " +
                            std::to_string(memory.size()) + "-byte segment"));
    }
    if (h->max_record == 0 || ring::record_size(h->max_record) > cap / 2) {
        return fail(corrupt("max_record " + std::to_string(h->max_record) + " does not fit capacity " +
                            std::to_string(cap) + " / 2"));
    }
    if (h->kind < 1 || h->kind > 3) {
        return fail(corrupt("unknown ring kind " + std::to_string(h->kind)));
    }
    return h;
}

PeerInfo peer_info(pid_t pid, std::uint64_t start) {
    PeerInfo p;
    p.pid = pid;
    p.start_time = start;
    p.state = peer_state(pid, start);
    return p;
}

}  // namespace

Result<RingSnapshot> snapshot_ring(std::span<const std::byte> memory) {
    auto hr = header_of(memory);
    if (!hr) {
        return fail(std::move(hr.error()));
    }
    const ring::RingHeader& h = **hr;
    RingSnapshot s;
    s.kind = static_cast<RingKind>(h.kind);
    s.capacity = h.capacity;
    s.max_record = h.max_record;
    s.creator_pid = h.creator_pid;
    s.head = load(h.head);
    s.tail = load(h.tail);
    s.consumer_waiting = load(h.consumer_waiting);
    s.producer_waiting = load(h.producer_waiting);
    if (s.kind != RingKind::mpsc) {
        s.producer = peer_info(load(h.producer_pid), load(h.producer_start_time));
    }
    if (s.kind != RingKind::broadcast) {
        s.consumer = peer_info(load(h.consumer_pid), load(h.consumer_start_time));
    }
    for (const ring::PeerSlot& slot : h.slot) {
        const pid_t pid = load(slot.pid);
        if (pid == 0) {
            continue;
        }
        PeerInfo p = peer_info(pid, load(slot.start_time));
        p.position = load(slot.position);
        p.messages = load(slot.messages);
        p.lapped = load(slot.lapped);
        s.slots.push_back(p);
    }
    s.messages = load(h.messages);
    s.bytes = load(h.bytes);
    s.full_waits = load(h.full_waits);
    s.producer_wakeups = load(h.producer_wakeups);
    s.high_water = load(h.high_water);
    s.dropped = load(h.dropped);
    s.empty_waits = load(h.empty_waits);
    s.consumer_wakeups = load(h.consumer_wakeups);
    s.skipped = load(h.skipped);
    s.lapped = load(h.lapped);
    if (s.kind != RingKind::broadcast &&
        (s.head > s.tail || s.tail - s.head > s.capacity || s.head % 8 != 0 || s.tail % 8 != 0)) {
        return fail(corrupt("positions head " + std::to_string(s.head) + " tail " + std::to_string(s.tail) +
                            " are inconsistent with capacity " + std::to_string(s.capacity)));
    }
    return s;
}

Result<std::vector<std::string>> check_ring(std::span<const std::byte> memory) {
    auto hr = header_of(memory);
    if (!hr) {
        return fail(std::move(hr.error()));
    }
    const ring::RingHeader& h = **hr;
    std::vector<std::string> problems;
    const auto kind = static_cast<RingKind>(h.kind);
    const std::uint64_t cap = h.capacity;
    const std::uint64_t mask = cap - 1;
    const std::byte* data = memory.data() + sizeof(ring::RingHeader);
    const std::uint64_t tail = load(h.tail);
    std::uint64_t pos = load(h.head);
    if (kind == RingKind::broadcast) {
        // Readers keep their own positions: check the last capacity bytes' worth that are
        // still whole, starting from the oldest reader position that was not lapped.
        pos = tail;
        for (const ring::PeerSlot& slot : h.slot) {
            const std::uint64_t p = load(slot.position);
            if (load(slot.pid) != 0 && p <= tail && tail - p <= cap && p < pos) {
                pos = p;
            }
        }
    }
    if (pos > tail) {
        problems.push_back("head " + std::to_string(pos) + " is past tail " + std::to_string(tail));
        return problems;
    }
    if (tail - pos > cap) {
        problems.push_back("tail " + std::to_string(tail) + " is more than the capacity (" +
                           std::to_string(cap) + ") ahead of head " + std::to_string(pos));
        return problems;
    }
    if (pos % 8 != 0 || tail % 8 != 0) {
        problems.push_back("positions head " + std::to_string(pos) + " tail " + std::to_string(tail) +
                           " are not multiples of 8");
        return problems;
    }
    std::uint64_t records = 0;
    while (pos < tail) {
        const std::uint64_t index = pos & mask;
        ring::RecordHeader rec;
        std::memcpy(&rec, data + index, sizeof rec);
        const std::uint64_t size = ring::record_size(rec.length);
        const std::uint64_t to_end = cap - index;
        auto where = [&] {
            return "record " + std::to_string(records) + " at position " + std::to_string(pos) + " (index " +
                   std::to_string(index) + ", type " + std::to_string(rec.type) + ", length " +
                   std::to_string(rec.length) + "): ";
        };
        std::string bad;
        switch (static_cast<ring::RecordType>(rec.type)) {
            case ring::RecordType::uncommitted:
                if (kind != RingKind::mpsc) {
                    bad = "type 0 outside an mpsc ring";
                } else {
                    problems.push_back(where() + "uncommitted (a producer is writing it, or died doing so)");
                    return problems;  // its length is unknown: cannot walk further
                }
                break;
            case ring::RecordType::data:
                if (rec.length > h.max_record) {
                    bad = "longer than max_record " + std::to_string(h.max_record);
                }
                break;
            case ring::RecordType::padding:
                if (size != to_end) {
                    bad = "padding that does not end at the end of the data area";
                }
                break;
            case ring::RecordType::end_of_stream:
                if (rec.length != 0) {
                    bad = "end-of-stream record with a payload";
                }
                break;
            case ring::RecordType::skipped:
                if (kind != RingKind::mpsc) {
                    bad = "skipped record outside an mpsc ring";
                }
                break;
            default:
                bad = "unknown record type";
        }
        if (bad.empty() && size > to_end) {
            bad = "crosses the end of the data area";
        }
        if (bad.empty() && size > tail - pos) {
            bad = "extends past tail " + std::to_string(tail);
        }
        if (!bad.empty()) {
            problems.push_back(where() + bad);
            return problems;
        }
        pos += size;
        ++records;
    }
    for (const ring::PeerSlot& slot : h.slot) {
        if (load(slot.pid) < 0) {
            problems.push_back("peer slot with negative pid " + std::to_string(load(slot.pid)));
        }
    }
    return problems;
}

}  // namespace xproc
