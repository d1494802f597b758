// SPDX-License-Identifier: MIT
#pragma once
// Fields of a segment shared with other processes, and who we are in them: atomic access to
// a plain field (the layouts are standard-layout structs, so their fields are accessed through
// std::atomic_ref), and our pid and start time as the ring and the message queue record them
// for liveness checks. Internal: not installed.

#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "xproc/process.hpp"

namespace xproc::detail {

/// Atomic access to a field of shared memory.
template <typename T>
std::atomic_ref<T> shared(T& field) noexcept {
    return std::atomic_ref<T>(field);
}

/// A relaxed read of a field another process may change: for snapshots (inspection,
/// statistics), read field by field, never as a whole.
template <typename T>
T snapshot(const T& field) noexcept {
    return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}

/// Our pid, cached: getpid(2) is a system call on every call since glibc 2.25, and the
/// message queue's hot path stores it into every cell it claims. A fork() child resets the
/// cache (pthread_atfork; a raw clone(2) keeps the parent's value).
inline pid_t self_pid() noexcept {
    static std::atomic<pid_t> cached{0};
    // relaxed: a per-process value; the atfork handler runs in the child before it returns.
    pid_t pid = cached.load(std::memory_order_relaxed);
    if (pid == 0) {
        static const bool registered = [] {
            ::pthread_atfork(nullptr, nullptr, [] { cached.store(0, std::memory_order_relaxed); });
            return true;
        }();
        (void)registered;
        pid = ::getpid();
        cached.store(pid, std::memory_order_relaxed);
    }
    return pid;
}

/// Our start time (clock ticks since boot, 0 if unknown), cached per process: a child
/// forked after the parent asked has its own.
inline std::uint64_t self_start_time() noexcept {
    // One atomic word: pid (pid_max <= 2^22) in the top 22 bits, the start time in clock
    // ticks (2^42 ticks at 100 Hz: over a thousand years) below.
    constexpr int PID_SHIFT = 42;
    constexpr std::uint64_t START_MASK = (std::uint64_t{1} << PID_SHIFT) - 1;
    static std::atomic<std::uint64_t> cache{0};
    const auto me = static_cast<std::uint64_t>(self_pid());
    const std::uint64_t cached = cache.load(std::memory_order_relaxed);  // relaxed: one self-contained word
    if ((cached >> PID_SHIFT) == me) {
        return cached & START_MASK;
    }
    std::uint64_t start = 0;
    if (auto self = Process::self()) {
        if (auto st = self->start_time()) {
            start = *st & START_MASK;
        }
    }
    cache.store((me << PID_SHIFT) | start, std::memory_order_relaxed);
    return start;
}

}  // namespace xproc::detail
