// SPDX-License-Identifier: MIT
#pragma once
// Internal to libxproc: shared between ring.cpp, ring_inspect.cpp and ring_segment.cpp.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "xproc/error.hpp"
#include "xproc/ring/layout.hpp"

namespace xproc::detail {

/// The checks snapshot_ring() makes before it reads anything else: identity, geometry and
/// (except broadcast) positions. Unlike snapshot_ring(), it does not look at the peers, so
/// it makes no system call.
Result<void> check_ring_header(std::span<const std::byte> memory);

/// Positions as every attach accepts them (SPSC, MPSC): zeroed <= head <= tail <= zeroed +
/// capacity, all multiples of 8.
bool positions_valid(std::uint64_t zeroed, std::uint64_t head, std::uint64_t tail,
                     std::uint64_t capacity) noexcept;
/// "positions zeroed Z head H tail T", for the error that refuses them.
std::string positions_text(std::uint64_t zeroed, std::uint64_t head, std::uint64_t tail);

/// What is wrong with a committed record header at `index` of a `kind` ring (type and
/// length against the record kinds, and the end of the data area), or nullptr. An
/// uncommitted header (type 0) reads as an unknown type: callers deal with it first. Where
/// the record may end (tail, or capacity past head) is the caller's check. One rule set for
/// the consumer, the attaching producer and `xring check`.
const char* record_problem(const ring::RecordHeader& rec, std::uint64_t index, std::uint64_t capacity,
                           std::uint32_t max_record, ring::RingKind kind) noexcept;

}  // namespace xproc::detail
