// SPDX-License-Identifier: MIT
#pragma once
// Waiting on shared memory, for the ring (ring.cpp) and the message queue (message_queue.cpp):
// futex words shared between processes, and the Dekker-style fences between a side that
// publishes and a side that announces it is going to sleep (membarrier when available, so the
// publisher needs no full fence). Internal: not installed.

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

#include "xproc/detail/fence.hpp"

namespace xproc::detail {

inline long futex(std::uint32_t* word, int op, std::uint32_t value, const struct timespec* timeout) noexcept {
    // No FUTEX_PRIVATE_FLAG: the word is in memory shared between processes.
    return ::syscall(SYS_futex, word, op, value, timeout, nullptr, 0);
}

inline void futex_wake_all(std::uint32_t* word) noexcept {
    futex(word, FUTEX_WAKE, INT_MAX, nullptr);
}

/// Sleeps while *word == expected, at most `slice`.
inline void futex_wait(std::uint32_t* word, std::uint32_t expected, std::chrono::nanoseconds slice) noexcept {
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(slice.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(slice.count() % 1'000'000'000);
    futex(word, FUTEX_WAIT, expected, &ts);  // EAGAIN, EINTR, ETIMEDOUT: the caller rechecks
}

/// Registers this process for membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) once; true when
/// a side about to sleep can use it, so the publishing sides need no full fence.
inline bool fast_fence_available() noexcept {
    static const bool available = [] {
        const long mask = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
        if (mask < 0 || (mask & MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0) {
            return false;
        }
        return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
    }();
    return available;
}

/// The side about to sleep, between announcing it in the wait word and re-checking the
/// position: a full fence here, and a barrier on every CPU running a publisher.
inline void sleeper_fence() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (fast_fence_available()) {
        ::syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
    }
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

/// Asks for the cache line at `p` in a writable (exclusive) state ahead of a store, so that
/// the store does not wait for the line to come from another CPU and then for the other
/// copies to be invalidated. PREFETCHW; a no-op on CPUs without it (same encoding as a NOP).
inline void prefetch_for_write(const void* p) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
    __builtin_prefetch(p, 1, 3);
#endif
}

}  // namespace xproc::detail
