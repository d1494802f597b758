// SPDX-License-Identifier: MIT
#pragma once
/// @file ring_segment.hpp
/// A ring in a named POSIX shared-memory segment: what `xring`, the C API and most
/// programs use. `RingSegment` owns the mapping; producers and consumers attach to it
/// (see ring.hpp) and must not outlive it.
///
///   xproc::RingConfig config;
///   config.capacity = 1 << 20;
///   auto seg = xproc::RingSegment::create("/prices", config).value();
///   auto out = seg.producer().value();
///   out.write(xproc::as_bytes("hello"), std::chrono::seconds(1));
///
///   auto seg2 = xproc::RingSegment::open("/prices").value();       // another process
///   auto in = seg2.consumer().value();
///   std::array<std::byte, 4096> buf;
///   auto r = in.read(buf, xproc::WAIT_FOREVER).value();
///
/// Segments are created O_EXCL with mode 0600 by default; opening a segment owned by
/// another user is refused unless `allow_foreign_owner`.

#include <sys/types.h>
#include <cstdint>
#include <span>
#include <string_view>

#include "xproc/error.hpp"
#include "xproc/ring.hpp"
#include "xproc/shm.hpp"

namespace xproc {

struct RingConfig {
    /// Bytes in the data area; rounded up to a power of two (at least RING_MIN_CAPACITY).
    std::uint64_t capacity = std::uint64_t{1} << 20;
    /// Largest message; 0 = the largest the capacity allows (a record of capacity / 2).
    std::uint32_t max_record = 0;
    RingKind kind = RingKind::spsc;
    mode_t mode = 0600;
    ShmOptions shm;
};

/// Largest payload whose record fits in capacity / 2.
constexpr std::uint32_t ring_max_record_for(std::uint64_t capacity) noexcept {
    const std::uint64_t max = capacity / 2 - sizeof(ring::RecordHeader);
    return max > 0xffffffffu ? 0xffffffffu : static_cast<std::uint32_t>(max);
}

class RingSegment {
  public:
    /// Creates `name` (O_EXCL, config.mode) sized for the ring and formats it.
    /// Errors: as SharedMemory::create (EEXIST when the name exists), invalid_argument for
    /// the geometry. The name is removed again if formatting fails.
    static Result<RingSegment> create(std::string_view name, const RingConfig& config = {});
    /// Opens an existing ring. Errors: as SharedMemory::open (permission for another
    /// user's segment unless allow_foreign_owner), os/EPROTO when it is not an xproc ring
    /// or has another layout version (the detail says which), corrupt for bad geometry,
    /// os/EAGAIN while its creator has not finished formatting it.
    static Result<RingSegment> open(std::string_view name, ShmAccess access = ShmAccess::read_write,
                                    bool allow_foreign_owner = false, const ShmOptions& shm = {});
    /// Wraps an already mapped segment (e.g. SharedMemory::anonymous or from_fd) after
    /// validating it like open().
    static Result<RingSegment> adopt(SharedMemory shm);
    /// shm_unlink(name): existing mappings stay valid.
    static Result<void> remove(std::string_view name) { return SharedMemory::remove(name); }

    /// Takes the producer role (see RingProducer::attach).
    Result<RingProducer> producer(const AttachOptions& options = {}) {
        return RingProducer::attach(memory(), options);
    }
    /// Takes the consumer role or a broadcast reader slot (see RingConsumer::attach).
    Result<RingConsumer> consumer(const AttachOptions& options = {}) {
        return RingConsumer::attach(memory(), options);
    }

    std::span<std::byte> memory() const noexcept { return {m_shm.data(), m_shm.size()}; }
    const SharedMemory& shm() const noexcept { return m_shm; }
    const std::string& name() const noexcept { return m_shm.name(); }
    RingKind kind() const noexcept;
    std::uint64_t capacity() const noexcept;
    std::uint32_t max_record() const noexcept;

  private:
    explicit RingSegment(SharedMemory shm) noexcept : m_shm(std::move(shm)) {}
    SharedMemory m_shm;
};

/// Whether `memory` starts with an xproc ring header of any version (the magic only).
bool looks_like_ring(std::span<const std::byte> memory) noexcept;

}  // namespace xproc
