// SPDX-License-Identifier: MIT
#include "xproc/ring_segment.hpp"

#include <unistd.h>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <string>

#include "ring_internal.hpp"

namespace xproc {

namespace {

const ring::RingHeader& header_of(const SharedMemory& shm) noexcept {
    return *reinterpret_cast<const ring::RingHeader*>(shm.data());
}

std::string shown(std::string_view name) {
    return std::string(name);
}

/// Validates a mapped segment as a ring; EPROTO for "not a ring / wrong version".
Result<void> validate(const SharedMemory& shm, std::string_view name) {
    const std::string op = "ring open(" + shown(name.empty() ? std::string_view("anonymous") : name) + ")";
    if (shm.size() < sizeof(ring::RingHeader)) {
        Error e = Error::from_errno(EPROTO, op);
        e.detail = "segment of " + std::to_string(shm.size()) + " bytes is too small to be an xproc ring";
        return fail(
            std::move(e).with_hint("is it a ring? `xshm ls` marks rings; create one with `xring create`"));
    }
    const auto& h = header_of(shm);
    if (h.magic != ring::RING_MAGIC) {
        Error e = Error::from_errno(EPROTO, op);
        e.detail = "not an xproc ring (no XPROCRNG magic at offset 0)";
        return fail(std::move(e).with_hint("create a ring with `xring create` or xproc_ring_create()"));
    }
    // acquire: pairs with the creator's release store of version in format_ring().
    const std::uint32_t version =
        std::atomic_ref<const std::uint32_t>(h.version).load(std::memory_order_acquire);
    if (version == 0) {
        return fail(Error::from_errno(EAGAIN, op).with_hint("the ring is being created; retry shortly"));
    }
    if (version != ring::RING_LAYOUT_VERSION) {
        Error e = Error::from_errno(EPROTO, op);
        e.detail = "ring layout version " + std::to_string(version) + ", this library reads version " +
                   std::to_string(ring::RING_LAYOUT_VERSION);
        return fail(std::move(e).with_hint("use the same xproc version on both sides"));
    }
    // The rest (geometry, positions) is checked again by every attach.
    auto checked = detail::check_ring_header(std::span<const std::byte>(shm.data(), shm.size()));
    if (!checked) {
        Error e = std::move(checked.error());
        e.operation = op;
        return fail(std::move(e));
    }
    return {};
}

}  // namespace

bool looks_like_ring(std::span<const std::byte> memory) noexcept {
    if (memory.size() < sizeof(std::uint64_t)) {
        return false;
    }
    std::uint64_t magic;
    std::memcpy(&magic, memory.data(), sizeof magic);
    return magic == ring::RING_MAGIC;
}

Result<RingSegment> RingSegment::create(std::string_view name, const RingConfig& config) {
    std::uint64_t capacity = std::max<std::uint64_t>(config.capacity, ring::RING_MIN_CAPACITY);
    if (capacity > ring::RING_MAX_CAPACITY) {
        return fail(Error::make(ErrorKind::invalid_argument, "ring create(" + shown(name) + ")",
                                "capacity " + std::to_string(config.capacity) + " exceeds " +
                                    std::to_string(ring::RING_MAX_CAPACITY)));
    }
    capacity = std::bit_ceil(capacity);
    const std::uint32_t max_record =
        config.max_record == 0 ? ring_max_record_for(capacity) : config.max_record;
    // Check the geometry before creating anything.
    if (ring::record_size(max_record) > capacity / 2) {
        return fail(Error::make(ErrorKind::invalid_argument, "ring create(" + shown(name) + ")",
                                "max record " + std::to_string(max_record) + " is too large for capacity " +
                                    std::to_string(capacity) + " (at most " +
                                    std::to_string(ring_max_record_for(capacity)) + ")")
                        .with_hint("raise the capacity to at least twice the largest message"));
    }
    if (auto ok = SharedMemory::validate_name(name); !ok) {
        return fail(std::move(ok.error()));
    }
    // Prepare the ring under a temporary name and rename it into place: an opener never
    // sees an empty or half-formatted segment under `name`.
    auto shm = SharedMemory::create_temporary(ring_segment_size(capacity), config.mode, config.shm);
    if (!shm) {
        Error e = std::move(shm.error());
        e.operation = "ring create(" + shown(name) + ")";
        return fail(std::move(e));
    }
    const std::string temporary = shm->name();
    auto formatted =
        format_ring(std::span<std::byte>(shm->data(), shm->size()), capacity, max_record, config.kind);
    if (!formatted) {
        (void)SharedMemory::remove(temporary);
        Error e = std::move(formatted.error());
        e.operation = "ring create(" + shown(name) + ")";
        return fail(std::move(e));
    }
    if (auto renamed = shm->rename(name); !renamed) {
        (void)SharedMemory::remove(temporary);
        Error e = std::move(renamed.error());
        e.operation = "ring create(" + shown(name) + ")";
        if (e.errno_value == EEXIST) {
            e.detail = "a segment with this name exists";
            e.hint = "remove it first (xring rm, xshm rm) or open it instead";
        }
        return fail(std::move(e));
    }
    return RingSegment(std::move(*shm));
}

Result<RingSegment> RingSegment::open(std::string_view name, ShmAccess access, bool allow_foreign_owner,
                                      const ShmOptions& shm_options) {
    auto shm = SharedMemory::open(name, access, allow_foreign_owner, shm_options);
    if (!shm) {
        return fail(std::move(shm.error()));
    }
    if (auto ok = validate(*shm, name); !ok) {
        return fail(std::move(ok.error()));
    }
    return RingSegment(std::move(*shm));
}

Result<RingSegment> RingSegment::adopt(SharedMemory shm) {
    if (auto ok = validate(shm, shm.name()); !ok) {
        return fail(std::move(ok.error()));
    }
    return RingSegment(std::move(shm));
}

RingKind RingSegment::kind() const noexcept {
    return static_cast<RingKind>(header_of(m_shm).kind);
}

std::uint64_t RingSegment::capacity() const noexcept {
    return header_of(m_shm).capacity;
}

std::uint32_t RingSegment::max_record() const noexcept {
    return header_of(m_shm).max_record;
}

}  // namespace xproc
