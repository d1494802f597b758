// SPDX-License-Identifier: MIT
#pragma once
/// @file fence.hpp
/// Internal: the publishing side's fence of the futex handshake, inline in ring.hpp's fast
/// paths and used by the library's waiting code (lib/src/futex.hpp).

#include <atomic>

namespace xproc::detail {

/// The publishing side, between its release store (a record header, a position) and its
/// load of the other side's wait word: the store-load pair of the Dekker handshake. With
/// membarrier() available (`fast`), the side about to sleep issues it and so orders our
/// store and load for it: only the compiler must not swap them. Otherwise a full fence.
inline void publish_fence(bool fast) noexcept {
    if (fast) {
        std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
}

}  // namespace xproc::detail
