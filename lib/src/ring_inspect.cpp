// SPDX-License-Identifier: MIT
// Reading a ring without taking part in it: snapshot_ring (for `xring stat`) and
// check_ring (for `xring check`).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "ring_internal.hpp"
#include "shared_field.hpp"
#include "xproc/ring.hpp"

namespace xproc {

namespace {

using detail::snapshot;

Error corrupt(std::string detail) {
    return Error::make(ErrorKind::corrupt, "ring inspect", std::move(detail));
}

/// The identity and geometry fields of a header, each read once: another process may change
/// the segment while we look, so every decision and every memory access uses these copies.
struct Identity {
    std::uint32_t version;
    std::uint64_t magic;
    std::uint32_t header_size;
    std::uint64_t capacity;
    std::uint32_t max_record;
    std::uint32_t kind;
    std::uint32_t slots;
    std::int32_t creator_pid;
};

/// Checks the memory holds a header and reads its identity; errors for "not a ring at all"
/// (too small, no magic), "not ready" (version 0) and "another layout version".
Result<Identity> identity_of(std::span<const std::byte> memory) {
    if (memory.size() < sizeof(ring::RingHeader)) {
        return fail(corrupt("segment of " + std::to_string(memory.size()) +
                            " bytes is smaller than a ring header (" +
                            std::to_string(sizeof(ring::RingHeader)) + " bytes)"));
    }
    if (reinterpret_cast<std::uintptr_t>(memory.data()) % alignof(ring::RingHeader) != 0) {
        return fail(
            Error::make(ErrorKind::invalid_argument, "ring inspect", "memory must be 128-byte aligned"));
    }
    const auto& h = *reinterpret_cast<const ring::RingHeader*>(memory.data());
    Identity id{};
    // acquire: pairs with the creator's release store of version in format_ring(); the
    // identity fields read below were written before it.
    id.version = std::atomic_ref<const std::uint32_t>(h.version).load(std::memory_order_acquire);
    id.magic = snapshot(h.magic);
    id.header_size = snapshot(h.header_size);
    id.capacity = snapshot(h.capacity);
    id.max_record = snapshot(h.max_record);
    id.kind = snapshot(h.kind);
    id.slots = snapshot(h.slots);
    id.creator_pid = snapshot(h.creator_pid);
    if (id.magic != ring::RING_MAGIC) {
        return fail(corrupt("not an xproc ring (no XPROCRNG magic at offset 0)"));
    }
    if (id.version == 0) {
        return fail(
            Error::from_errno(EAGAIN, "ring inspect").with_hint("the ring is being created; retry shortly"));
    }
    if (id.version != ring::RING_LAYOUT_VERSION) {
        return fail(corrupt("ring layout version " + std::to_string(id.version) +
                            ", this library reads version " + std::to_string(ring::RING_LAYOUT_VERSION)));
    }
    return id;
}

/// The identity and geometry checks of attach, on a read-only view.
Result<Identity> header_of(std::span<const std::byte> memory) {
    auto ir = identity_of(memory);
    if (!ir) {
        return ir;
    }
    const Identity& id = *ir;
    if (id.header_size != sizeof(ring::RingHeader)) {
        return fail(corrupt("header_size " + std::to_string(id.header_size) + ", expected " +
                            std::to_string(sizeof(ring::RingHeader))));
    }
    const std::uint64_t cap = id.capacity;
    if (cap < ring::RING_MIN_CAPACITY || cap > ring::RING_MAX_CAPACITY || (cap & (cap - 1)) != 0) {
        return fail(corrupt("capacity " + std::to_string(cap) + " is not a power of two in range"));
    }
    if (memory.size() - sizeof(ring::RingHeader) < cap) {
        return fail(corrupt("capacity " + std::to_string(cap) + " runs past the end of the " +
                            std::to_string(memory.size()) + "-byte segment"));
    }
    if (id.max_record == 0 || ring::record_size(id.max_record) > cap / 2) {
        return fail(corrupt("max_record " + std::to_string(id.max_record) + " does not fit capacity " +
                            std::to_string(cap) + " / 2"));
    }
    if (id.kind < 1 || id.kind > 3) {
        return fail(corrupt("unknown ring kind " + std::to_string(id.kind)));
    }
    return id;
}

/// Positions as every attach accepts them (broadcast has no shared head to compare):
/// zeroed <= head <= tail <= zeroed + capacity, all 8-aligned.
Result<void> check_positions(RingKind kind, std::uint64_t zeroed, std::uint64_t head, std::uint64_t tail,
                             std::uint64_t capacity) {
    if (kind != RingKind::broadcast && !detail::positions_valid(zeroed, head, tail, capacity)) {
        return fail(corrupt(detail::positions_text(zeroed, head, tail) + " are inconsistent with capacity " +
                            std::to_string(capacity)));
    }
    return {};
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
    const auto& h = *reinterpret_cast<const ring::RingHeader*>(memory.data());
    RingSnapshot s;
    s.kind = static_cast<RingKind>(hr->kind);
    s.capacity = hr->capacity;
    s.max_record = hr->max_record;
    s.creator_pid = hr->creator_pid;
    s.zeroed = snapshot(h.zeroed);
    s.head = snapshot(h.head);
    s.tail = snapshot(h.tail);
    s.consumer_waiting = snapshot(h.consumer_waiting);
    s.producer_waiting = snapshot(h.producer_waiting);
    if (s.kind != RingKind::mpsc) {
        s.producer = peer_info(snapshot(h.producer_pid), snapshot(h.producer_start_time));
    }
    if (s.kind != RingKind::broadcast) {
        s.consumer = peer_info(snapshot(h.consumer_pid), snapshot(h.consumer_start_time));
    }
    for (const ring::PeerSlot& slot : h.slot) {
        const pid_t pid = snapshot(slot.pid);
        if (pid == 0) {
            continue;
        }
        PeerInfo p = peer_info(pid, snapshot(slot.start_time));
        p.position = snapshot(slot.position);
        p.messages = snapshot(slot.messages);
        p.lapped = snapshot(slot.lapped);
        s.slots.push_back(p);
    }
    s.messages = snapshot(h.messages);
    s.bytes = snapshot(h.bytes);
    s.full_waits = snapshot(h.full_waits);
    s.producer_wakeups = snapshot(h.producer_wakeups);
    s.high_water = snapshot(h.high_water);
    s.dropped = snapshot(h.dropped);
    s.empty_waits = snapshot(h.empty_waits);
    s.consumer_wakeups = snapshot(h.consumer_wakeups);
    s.skipped = snapshot(h.skipped);
    s.lapped = snapshot(h.lapped);
    if (auto ok = check_positions(s.kind, s.zeroed, s.head, s.tail, s.capacity); !ok) {
        return fail(std::move(ok.error()));
    }
    return s;
}

Result<void> detail::check_ring_header(std::span<const std::byte> memory) {
    auto hr = header_of(memory);
    if (!hr) {
        return fail(std::move(hr.error()));
    }
    const auto& h = *reinterpret_cast<const ring::RingHeader*>(memory.data());
    return check_positions(static_cast<RingKind>(hr->kind), snapshot(h.zeroed), snapshot(h.head),
                           snapshot(h.tail), hr->capacity);
}

namespace {

std::string hex32(std::uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", v);
    return buf;
}

/// The parts of the header check_ring can judge field by field. Returns false when the
/// data area cannot be located or walked (header_size, capacity): the walk is skipped.
bool check_header(const ring::RingHeader& h, const Identity& id, std::size_t memory_size,
                  std::vector<std::string>& problems) {
    bool walkable = true;
    if (id.header_size != sizeof(ring::RingHeader)) {
        problems.push_back("header: header_size is " + std::to_string(id.header_size) + ", expected " +
                           std::to_string(sizeof(ring::RingHeader)));
        walkable = false;
    }
    const std::uint64_t cap = id.capacity;
    if (cap < ring::RING_MIN_CAPACITY || cap > ring::RING_MAX_CAPACITY || (cap & (cap - 1)) != 0) {
        problems.push_back("header: capacity " + std::to_string(cap) + " is not a power of two in [" +
                           std::to_string(ring::RING_MIN_CAPACITY) + ", " +
                           std::to_string(ring::RING_MAX_CAPACITY) + "]");
        walkable = false;
    } else if (memory_size - sizeof(ring::RingHeader) < cap) {
        problems.push_back("header: capacity " + std::to_string(cap) + " runs past the end of the " +
                           std::to_string(memory_size) + "-byte segment (the data area ends at " +
                           std::to_string(sizeof(ring::RingHeader) + cap) + ")");
        walkable = false;
    } else if (id.max_record == 0 || ring::record_size(id.max_record) > cap / 2) {
        problems.push_back("header: max_record " + std::to_string(id.max_record) +
                           " must be >= 1 and its record at most capacity / 2 = " + std::to_string(cap / 2));
    }
    if (id.kind < 1 || id.kind > 3) {
        problems.push_back("header: unknown ring kind " + std::to_string(id.kind) +
                           " (1 spsc, 2 mpsc, 3 broadcast)");
        walkable = false;
    }
    if (id.slots != ring::RING_SLOTS) {
        problems.push_back("header: slots is " + std::to_string(id.slots) + ", expected " +
                           std::to_string(ring::RING_SLOTS));
    }
    if (const std::int32_t pid = snapshot(h.producer_pid); pid < 0) {
        problems.push_back("roles: producer pid " + std::to_string(pid) + " is negative");
    }
    if (const std::int32_t pid = snapshot(h.consumer_pid); pid < 0) {
        problems.push_back("roles: consumer pid " + std::to_string(pid) + " is negative");
    }
    constexpr std::uint32_t KNOWN_BITS = ring::WAIT_SLEEPING | ring::WAIT_DOORBELL;
    if (const std::uint32_t w = snapshot(h.consumer_waiting); (w & ~KNOWN_BITS) != 0) {
        problems.push_back("wait words: consumer_waiting " + hex32(w) + " has unknown bits");
    }
    if (const std::uint32_t w = snapshot(h.producer_waiting); (w & ~KNOWN_BITS) != 0) {
        problems.push_back("wait words: producer_waiting " + hex32(w) + " has unknown bits");
    }
    if (const std::int32_t fd = snapshot(h.doorbell_fd); fd < -1) {
        problems.push_back("wait words: doorbell_fd " + std::to_string(fd) +
                           " is neither -1 nor a descriptor");
    }
    if (walkable && id.kind == static_cast<std::uint32_t>(RingKind::spsc)) {
        if (const std::uint64_t hw = snapshot(h.high_water); hw > cap) {
            problems.push_back("counters: high_water " + std::to_string(hw) + " exceeds the capacity " +
                               std::to_string(cap));
        }
    }
    return walkable;
}

/// Peer slots: free, or held by a pid with a plausible claim / read position.
void check_slots(const ring::RingHeader& h, RingKind kind, std::uint64_t cap, std::uint64_t tail,
                 std::vector<std::string>& problems) {
    for (std::size_t i = 0; i < ring::RING_SLOTS; ++i) {
        const ring::PeerSlot& slot = h.slot[i];
        const std::int32_t pid = snapshot(slot.pid);
        const std::string where = "peer slot " + std::to_string(i) + " (pid " + std::to_string(pid) + "): ";
        if (pid < 0) {
            problems.push_back(where + "negative pid");
            continue;
        }
        if (pid == 0) {
            continue;
        }
        if (kind == RingKind::spsc) {
            problems.push_back(where +
                               "held in an spsc ring (slots are for mpsc producers and broadcast readers)");
            continue;
        }
        const std::uint64_t position = snapshot(slot.position);
        if (kind == RingKind::mpsc) {
            const std::uint64_t claim = snapshot(slot.claim_size);
            if (claim != 0 && (claim % ring::RING_RECORD_ALIGN != 0 || claim > cap)) {
                problems.push_back(where + "claim of " + std::to_string(claim) +
                                   " bytes is not a multiple of 8 within the capacity " +
                                   std::to_string(cap));
            } else if (claim != 0 && position % ring::RING_RECORD_ALIGN != 0) {
                problems.push_back(where + "claim position " + std::to_string(position) +
                                   " is not a multiple of 8");
            }
        } else if (position > tail || position % ring::RING_RECORD_ALIGN != 0) {
            problems.push_back(where + "read position " + std::to_string(position) +
                               (position > tail ? " is past tail " + std::to_string(tail)
                                                : std::string(" is not a multiple of 8")));
        }
    }
}

}  // namespace

Result<std::vector<std::string>> check_ring(std::span<const std::byte> memory) {
    // Only what makes the memory "not a ring at all" (or unreadable by this version) is an
    // error; every other inconsistency is a problem in the list.
    auto ir = identity_of(memory);
    if (!ir) {
        return fail(std::move(ir.error()));
    }
    const Identity& id = *ir;
    const auto& h = *reinterpret_cast<const ring::RingHeader*>(memory.data());
    std::vector<std::string> problems;
    const bool walkable = check_header(h, id, memory.size(), problems);
    const auto kind = static_cast<RingKind>(id.kind);
    const std::uint64_t cap = id.capacity;
    const std::uint64_t tail = snapshot(h.tail);
    if (kind == RingKind::spsc || kind == RingKind::mpsc || kind == RingKind::broadcast) {
        check_slots(h, kind, cap, tail, problems);
    }
    if (!walkable) {
        return problems;
    }
    const std::uint64_t mask = cap - 1;
    const std::byte* data = memory.data() + sizeof(ring::RingHeader);
    std::uint64_t pos = snapshot(h.head);
    if (kind == RingKind::broadcast) {
        // Readers keep their own positions (head is unused): check the records between the
        // oldest reader position that was not overwritten and tail. The writer may be
        // overwriting up to write_limit - capacity.
        const std::uint64_t limit = snapshot(h.write_limit);
        if (limit < tail || limit - tail > cap) {
            problems.push_back("positions: write_limit " + std::to_string(limit) + " is not within " +
                               std::to_string(cap) + " bytes after tail " + std::to_string(tail));
            return problems;
        }
        pos = tail;
        for (const ring::PeerSlot& slot : h.slot) {
            const std::uint64_t p = snapshot(slot.position);
            if (snapshot(slot.pid) > 0 && p <= tail && limit - p <= cap && p % 8 == 0 && p < pos) {
                pos = p;
            }
        }
    }
    if (pos % 8 != 0 || tail % 8 != 0) {
        problems.push_back("positions: head " + std::to_string(pos) + " tail " + std::to_string(tail) +
                           " are not both multiples of 8");
        return problems;
    }
    if (pos > tail) {
        problems.push_back("positions: head " + std::to_string(pos) + " is past tail " +
                           std::to_string(tail));
        return problems;
    }
    if (tail - pos > cap) {
        problems.push_back("positions: tail " + std::to_string(tail) + " is more than the capacity (" +
                           std::to_string(cap) + ") ahead of head " + std::to_string(pos));
        return problems;
    }
    const std::uint64_t zeroed = snapshot(h.zeroed);
    if (kind != RingKind::broadcast) {
        if (zeroed % 8 != 0 || zeroed > pos || tail - zeroed > cap) {
            problems.push_back("positions: zeroed " + std::to_string(zeroed) +
                               " is not an 8-aligned position at or before head " + std::to_string(pos) +
                               " and within the capacity (" + std::to_string(cap) + ") of tail " +
                               std::to_string(tail));
            return problems;
        }
        // An attached consumer may leave the start of the line that holds head unzeroed; an
        // attached SPSC consumer that frees room in steps, less than a step.
        const bool stepping = kind == RingKind::spsc && snapshot(h.consumer_pid) > 0;
        if (zeroed < ring::zero_line_start(pos) &&
            (!stepping || pos - zeroed >= std::max(ring::release_step_max(cap), ring::RING_ZERO_LINE))) {
            problems.push_back("positions: the consumer released up to head " + std::to_string(pos) +
                               " but zeroed only up to " + std::to_string(zeroed) +
                               " (it died releasing; the next consumer finishes when it attaches)");
        }
    }
    std::uint64_t records = 0;
    while (pos < tail) {
        const std::uint64_t index = pos & mask;
        ring::RecordHeader rec;
        std::memcpy(&rec, data + index, sizeof rec);
        const std::uint64_t size = ring::record_size(rec.length);
        auto where = [&] {
            return "record " + std::to_string(records) + " at position " + std::to_string(pos) + " (index " +
                   std::to_string(index) + ", type " + std::to_string(rec.type) + ", length " +
                   std::to_string(rec.length) + "): ";
        };
        std::string bad;
        if (rec.type == static_cast<std::uint16_t>(ring::RecordType::uncommitted)) {
            if (kind != RingKind::broadcast) {
                problems.push_back(where() + "uncommitted (a producer is writing it, or died doing so)");
                return problems;  // its length is unknown: cannot walk further
            }
            bad = "type 0 in a broadcast ring";
        } else if (const char* problem = detail::record_problem(rec, index, cap, id.max_record, kind)) {
            bad = std::string(problem) + " (max_record " + std::to_string(id.max_record) + ", capacity " +
                  std::to_string(cap) + ")";
        }
        if (bad.empty() && rec.flags != 0) {
            bad = "flags " + std::to_string(rec.flags) + " (must be 0)";
        }
        if (bad.empty() && size > tail - pos) {
            bad = "extends past tail " + std::to_string(tail);
        }
        if (!bad.empty()) {
            problems.push_back(where() + bad + "; the records after it cannot be found");
            return problems;
        }
        pos += size;
        ++records;
    }
    if (kind == RingKind::spsc) {
        // The producer keeps the header slot at tail zero: the consumer polls it.
        if (tail - zeroed > cap - ring::RING_SPSC_GAP) {
            problems.push_back("positions: tail " + std::to_string(tail) + " leaves less than " +
                               std::to_string(ring::RING_SPSC_GAP) + " bytes free after zeroed " +
                               std::to_string(zeroed) + " (the producer keeps a zeroed header slot)");
        } else {
            ring::RecordHeader next;
            std::memcpy(&next, data + (tail & mask), sizeof next);
            if (next.type != static_cast<std::uint16_t>(ring::RecordType::uncommitted)) {
                problems.push_back("the header slot at tail " + std::to_string(tail) + " (index " +
                                   std::to_string(tail & mask) + ") is not zero (type " +
                                   std::to_string(next.type) + ", length " + std::to_string(next.length) +
                                   "): a consumer would take stale bytes for a record");
            }
        }
    }
    return problems;
}

}  // namespace xproc
