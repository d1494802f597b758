// SPDX-License-Identifier: MIT
#pragma once
// Internal to libxproc: shared between ring_inspect.cpp and ring_segment.cpp.

#include <cstddef>
#include <span>

#include "xproc/error.hpp"

namespace xproc::detail {

/// The checks snapshot_ring() makes before it reads anything else: identity, geometry and
/// (except broadcast) positions. Unlike snapshot_ring(), it does not look at the peers, so
/// it makes no system call.
Result<void> check_ring_header(std::span<const std::byte> memory);

}  // namespace xproc::detail
