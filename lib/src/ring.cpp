// SPDX-License-Identifier: MIT
#include "xproc/ring.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <new>
#include <string>

#include "futex.hpp"
#include "ring_internal.hpp"
#include "shared_field.hpp"
#include "xproc/process.hpp"

namespace xproc {

using ring::RecordHeader;
using ring::RecordType;
using ring::RingHeader;

namespace {

using detail::positions_text;
using detail::positions_valid;
using detail::shared;

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

/// Geometry and positions of a validated segment.
struct Attached {
    RingHeader* header;
    std::byte* data;
    RingKind kind;
    std::uint64_t capacity;
    std::uint32_t max_record;
    std::uint64_t zeroed;
    std::uint64_t head;
    std::uint64_t tail;
};

Result<Attached> attach_segment(std::span<std::byte> memory, const char* op = "ring attach") {
    if (auto ok = check_memory(memory, op); !ok) {
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
    if (header->kind != static_cast<std::uint32_t>(RingKind::spsc) &&
        header->kind != static_cast<std::uint32_t>(RingKind::mpsc) &&
        header->kind != static_cast<std::uint32_t>(RingKind::broadcast)) {
        return fail(corrupt("unknown ring kind " + std::to_string(header->kind)));
    }
    // acquire: pairs with the other side's release store of its position (commit / release).
    const std::uint64_t zeroed = shared(header->zeroed).load(std::memory_order_acquire);
    const std::uint64_t head = shared(header->head).load(std::memory_order_acquire);
    const std::uint64_t tail = shared(header->tail).load(std::memory_order_acquire);
    const bool broadcast = header->kind == static_cast<std::uint32_t>(RingKind::broadcast);
    // Broadcast has no shared head (readers keep their own): only tail's alignment is checkable.
    if (broadcast ? tail % ring::RING_RECORD_ALIGN != 0 : !positions_valid(zeroed, head, tail, capacity)) {
        return fail(corrupt(positions_text(zeroed, head, tail) + " are inconsistent with capacity " +
                            std::to_string(capacity)));
    }
    return Attached{header,
                    memory.data() + sizeof(RingHeader),
                    static_cast<RingKind>(header->kind),
                    capacity,
                    max_record,
                    zeroed,
                    head,
                    tail};
}

// ---------------------------------------------------------------------------------------
// Waiting: futex words, fences, clocks

using Clock = std::chrono::steady_clock;

using detail::cpu_relax;
using detail::fast_fence_available;
using detail::futex_wait;
using detail::futex_wake_all;
using detail::header_word;
using detail::pack;
using detail::publish_fence;
using detail::sleeper_fence;

/// CLOCK_MONOTONIC at tick resolution: a few nanoseconds (no TSC read), good enough to
/// rate-limit liveness checks made by non-blocking calls that find the ring full or empty.
std::chrono::steady_clock::time_point coarse_now() noexcept {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) +
                                                 std::chrono::nanoseconds(ts.tv_nsec));
}

using detail::self_start_time;

/// The state of (pid, start_time), as peer_state(); when `pinned` is given and the process
/// is alive with that start time, its pidfd is kept there for later cheap checks.
PeerState identify_peer(pid_t pid, std::uint64_t start_time, std::optional<Process>* pinned) noexcept {
    if (pid <= 0) {
        return PeerState::none;
    }
    auto proc = Process::open(pid);
    if (!proc) {
        // ESRCH: gone. Anything else (EPERM cannot happen for pidfd_open): assume alive
        // rather than take over a role that may be held.
        return proc.error().kind == ErrorKind::no_such_process ? PeerState::dead : PeerState::alive;
    }
    if (!proc->alive()) {
        return PeerState::dead;  // exited: a zombie waiting to be reaped
    }
    if (start_time != 0) {
        auto st = proc->start_time();
        if (st && *st != start_time) {
            return PeerState::dead;  // the pid was reused by another process
        }
        if (!st && st.error().kind == ErrorKind::no_such_process) {
            return PeerState::dead;
        }
        if (st && pinned != nullptr) {
            pinned->emplace(std::move(*proc));  // verified: this pidfd is that process
        }
    }
    return PeerState::alive;
}

/// Liveness of the holder of a role, cached in `watch` (a pidfd once identified) and
/// re-checked at most twice per `interval`.
PeerState check_peer(detail::PeerWatch& watch, pid_t pid, std::uint64_t start_time,
                     std::chrono::nanoseconds interval) noexcept {
    if (pid <= 0) {
        watch = {};
        return PeerState::none;
    }
    const auto now = coarse_now();
    if (watch.pid != pid || (start_time != 0 && watch.start_time != start_time)) {
        watch = {};
        watch.pid = pid;
        watch.start_time = start_time;
        // With a known start time the pidfd is kept: it pins the pid, so later checks
        // only poll it.
        watch.state = identify_peer(pid, start_time, start_time != 0 ? &watch.process : nullptr);
        watch.next_check = now + interval / 2;
        return watch.state;
    }
    if (watch.state == PeerState::alive && now >= watch.next_check) {
        watch.next_check = now + interval / 2;
        if (watch.process) {
            if (!watch.process->alive()) {
                watch.state = PeerState::dead;
            }
        } else {
            watch.state = peer_state(pid, start_time);
        }
    }
    return watch.state;
}

/// State of a single role. A holder that closes cleanly clears its start time, then its
/// pid: a reader caught between the two may see a pid whose process has exited, so a
/// `dead` verdict stands only if the pid is still there when read again.
PeerState role_state(detail::PeerWatch& watch, std::int32_t& pid_field, std::uint64_t& start_field,
                     std::chrono::nanoseconds interval) noexcept {
    for (;;) {
        // acquire: pairs with the holder's release store of its start time in take_role.
        const pid_t pid = shared(pid_field).load(std::memory_order_acquire);
        const std::uint64_t start = shared(start_field).load(std::memory_order_acquire);
        const PeerState state = check_peer(watch, pid, start, interval);
        if (state != PeerState::dead) {
            return state;
        }
        const pid_t again = shared(pid_field).load(std::memory_order_acquire);
        const std::uint64_t start_again = shared(start_field).load(std::memory_order_acquire);
        if (again == pid && (start_again == start || start_again == 0)) {
            return state;
        }
        watch = {};  // the role changed hands meanwhile: judge the new holder
    }
}

/// Takes a single role (producer_pid / consumer_pid pair) in the header.
/// Takes a single role (SPSC producer or consumer, broadcast writer). Returns whether it was
/// taken over from a holder that died (rather than free, or left cleanly).
Result<bool> take_role(std::int32_t& pid_field, std::uint64_t& start_field, const char* role) {
    const pid_t me = ::getpid();
    const std::uint64_t start = self_start_time();
    for (;;) {
        std::int32_t holder = shared(pid_field).load(std::memory_order_acquire);
        if (holder != 0) {
            // acquire: pairs with the holder's release store of its start time.
            const std::uint64_t holder_start = shared(start_field).load(std::memory_order_acquire);
            const PeerState state = holder == me ? PeerState::alive : peer_state(holder, holder_start);
            if (state == PeerState::alive) {
                Error e = Error::from_errno(EBUSY, std::string("ring attach as ") + role, holder);
                e.detail = std::string("the ") + role + " role is held by pid " + std::to_string(holder) +
                           (holder == me ? " (this process)" : "");
                return fail(std::move(e).with_hint("a ring has one " + std::string(role) +
                                                   "; stop that process, or use an mpsc/broadcast ring"));
            }
        }
        // acq_rel: on success our claim is ordered after the holder's state we checked.
        if (shared(pid_field).compare_exchange_strong(holder, me, std::memory_order_acq_rel)) {
            // release: pairs with the acquire load of the start time above (next opener).
            shared(start_field).store(start, std::memory_order_release);
            return holder != 0;
        }
    }
}

void leave_role(std::int32_t& pid_field, std::uint64_t& start_field) noexcept {
    std::int32_t me = ::getpid();
    // relaxed: the start time is only meaningful with a non-zero pid.
    shared(start_field).store(0, std::memory_order_relaxed);
    // release: our last writes to the ring happen before anyone sees the role free.
    shared(pid_field).compare_exchange_strong(me, 0, std::memory_order_release, std::memory_order_relaxed);
}

/// Takes a peer slot: a free one, or one whose holder is dead and (MPSC) whose claim was
/// resolved. Returns its index.
Result<int> take_slot(RingHeader* header, std::uint64_t head_now, const char* role) {
    const pid_t me = ::getpid();
    const std::uint64_t start = self_start_time();
    for (int pass = 0; pass < 2; ++pass) {
        for (int i = 0; i < static_cast<int>(ring::RING_SLOTS); ++i) {
            ring::PeerSlot& slot = header->slot[i];
            std::int32_t holder = shared(slot.pid).load(std::memory_order_acquire);
            if (pass == 0 && holder != 0) {
                continue;
            }
            if (holder != 0) {
                const std::uint64_t holder_start = shared(slot.start_time).load(std::memory_order_acquire);
                if (holder == me || peer_state(holder, holder_start) != PeerState::dead) {
                    continue;
                }
                // relaxed: the claim fields are checked again by the consumer before use.
                const std::uint64_t claim = shared(slot.claim_size).load(std::memory_order_relaxed);
                const std::uint64_t pos = shared(slot.position).load(std::memory_order_relaxed);
                if (claim != 0 && pos + claim > head_now) {
                    continue;  // the consumer still needs this claim to skip the record
                }
            }
            if (shared(slot.pid).compare_exchange_strong(holder, me, std::memory_order_acq_rel)) {
                // relaxed: ordered before the release store of start_time below.
                shared(slot.claim_size).store(0, std::memory_order_relaxed);
                shared(slot.position).store(0, std::memory_order_relaxed);
                shared(slot.messages).store(0, std::memory_order_relaxed);
                shared(slot.lapped).store(0, std::memory_order_relaxed);
                // release: pairs with the acquire load of start_time by liveness checks.
                shared(slot.start_time).store(start, std::memory_order_release);
                return i;
            }
        }
    }
    return fail(
        Error::from_errno(ENOSPC, std::string("ring attach as ") + role)
            .with_hint("all " + std::to_string(ring::RING_SLOTS) + " peer slots are held by live processes"));
}

void leave_slot(RingHeader* header, int index) noexcept {
    ring::PeerSlot& slot = header->slot[index];
    std::int32_t me = ::getpid();
    shared(slot.start_time).store(0, std::memory_order_relaxed);
    // release: our record commits happen before the slot is seen free.
    shared(slot.pid).compare_exchange_strong(me, 0, std::memory_order_release, std::memory_order_relaxed);
}

/// A deadline from a Timeout; `forever` when negative.
struct Deadline {
    bool forever = false;
    Clock::time_point at{};

    explicit Deadline(Timeout timeout) {
        if (timeout < Timeout::zero()) {
            forever = true;
        } else {
            at = Clock::now() + timeout;
        }
    }
    bool passed(Clock::time_point now) const noexcept { return !forever && now >= at; }
    std::chrono::nanoseconds left(Clock::time_point now) const noexcept {
        return forever ? std::chrono::nanoseconds::max() : std::chrono::nanoseconds(at - now);
    }
};

enum class WaitOutcome : std::uint8_t { ready, timed_out, peer_gone };

/// Adds one to a counter in the segment. relaxed: statistics. A counter only one process
/// writes takes a plain load and store: an atomic read-modify-write costs ~10 ns, paid on
/// every wait while both sides are busy.
void count(std::uint64_t& field, bool many_writers) noexcept {
    if (many_writers) {
        shared(field).fetch_add(1, std::memory_order_relaxed);
    } else {
        shared(field).store(shared(field).load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
}

/// Polls of the condition before a wait first reads the clock (~30 ns here, more than a
/// message takes to arrive while both sides are busy).
constexpr unsigned QUICK_SPINS = 64;

/// A waiter that keeps sleeping checks its peer at most this many times less often.
constexpr int LIVENESS_BACKOFF = 4;

/// The wait loop shared by both sides: `ready()` re-checks the condition, `gone()` checks
/// the peer (called at most every liveness_interval), `word` is the wait word to
/// announce sleeping in. Returns once ready, timed out, or the peer is gone.
/// Each check wakes a sleeper, which costs more CPU on a VM than anything else an idle
/// waiter does (about 100 us here), so a long sleep checks less and less often: the
/// interval doubles after each check, up to LIVENESS_BACKOFF times liveness_interval.
/// `spinning`, when given, is true on entry and set to false before the last look at a
/// deadline and before the first sleep (a slipping consumer defers only while it spins).
/// `sole_sleeper`: nobody but us announces sleeping in `word` (the SPSC producer, the
/// SPSC/MPSC consumer); see the sleep loop.
template <typename Ready, typename Gone>
WaitOutcome wait_loop(const WaitOptions& options, Timeout timeout, std::uint32_t* word, bool sole_sleeper,
                      Ready&& ready, Gone&& gone, bool* spinning = nullptr) {
    const auto stop_spinning = [spinning] {
        if (spinning != nullptr) {
            *spinning = false;
        }
    };
    if (options.policy != WaitPolicy::sleep &&
        (timeout < Timeout::zero() || timeout >= std::chrono::microseconds(10))) {
        for (unsigned i = 0; i < QUICK_SPINS; ++i) {
            if (ready()) {
                return WaitOutcome::ready;
            }
            cpu_relax();
        }
    }
    const Deadline deadline(timeout);
    Clock::time_point now = Clock::now();
    Clock::time_point next_check = now + options.liveness_interval;
    if (options.policy != WaitPolicy::sleep) {
        const Clock::time_point spin_end =
            options.policy == WaitPolicy::busy ? Clock::time_point::max() : now + options.spin;
        for (unsigned i = 1;; ++i) {
            if (ready()) {
                return WaitOutcome::ready;
            }
            cpu_relax();
            if (i % 64 == 0) {
                now = Clock::now();
                if (deadline.passed(now)) {
                    stop_spinning();
                    if (gone()) {
                        return WaitOutcome::peer_gone;
                    }
                    return ready() ? WaitOutcome::ready : WaitOutcome::timed_out;
                }
                if (now >= next_check) {
                    next_check = now + options.liveness_interval;
                    if (gone()) {
                        return WaitOutcome::peer_gone;
                    }
                }
                if (now >= spin_end) {
                    break;
                }
            }
        }
    }
    stop_spinning();
    std::chrono::nanoseconds interval = options.liveness_interval;
    const std::chrono::nanoseconds longest = interval <= std::chrono::nanoseconds::max() / LIVENESS_BACKOFF
                                                 ? interval * LIVENESS_BACKOFF
                                                 : interval;
    bool fenced = false;
    for (;;) {
        // relaxed: only we set the bit (sole_sleeper) and only a waker clears it, so a bit
        // still set is the announcement we fenced before our last sleep. It has been
        // visible to every publisher since that fence: a publish after it wakes us, one
        // before it is seen by the re-check below. So a sleeper that wakes only to check
        // its peer (every liveness interval while idle) does not fence again: the
        // membarrier interrupts every CPU running a process registered for it, and cost
        // 0-60 us of CPU here on top of the wake-up's 65-115 us (more when the other CPU
        // was busy).
        std::uint32_t announced = shared(*word).load(std::memory_order_relaxed);
        if (!fenced || !sole_sleeper || (announced & ring::WAIT_SLEEPING) == 0) {
            // seq_cst: the announcement must be ordered before our re-check of the
            // position (sleeper_fence adds the barrier on the publishers' CPUs).
            announced = shared(*word).fetch_or(ring::WAIT_SLEEPING) | ring::WAIT_SLEEPING;
            sleeper_fence();
            fenced = true;
        }
        if (ready()) {
            return WaitOutcome::ready;
        }
        now = Clock::now();
        if (now >= next_check) {
            interval = interval <= longest / 2 ? interval * 2 : longest;
            next_check = now + interval;
            if (gone()) {
                return WaitOutcome::peer_gone;
            }
            if (ready()) {  // gone() may have made progress (skipped a dead record, reserved)
                return WaitOutcome::ready;
            }
        }
        if (deadline.passed(now)) {
            // Callers that wait in slices shorter than the liveness interval must still
            // learn that the peer died (the check is rate-limited, not skipped).
            // gone() may have made progress (reserved room, skipped a record): re-check.
            if (gone()) {
                return WaitOutcome::peer_gone;
            }
            return ready() ? WaitOutcome::ready : WaitOutcome::timed_out;
        }
        const auto slice = std::min<std::chrono::nanoseconds>(deadline.left(now), next_check - now);
        futex_wait(word, announced, std::max(slice, std::chrono::nanoseconds(1000)));
        if (ready()) {
            return WaitOutcome::ready;
        }
    }
}

/// Clears a wait word and wakes whoever announced sleeping in it. Returns the old bits.
std::uint32_t wake(std::uint32_t* word) noexcept {
    // acq_rel: an RMW so that two wakers do not both miss the bits.
    const std::uint32_t bits = shared(*word).exchange(0, std::memory_order_acq_rel);
    if ((bits & ring::WAIT_SLEEPING) != 0) {
        futex_wake_all(word);
    }
    return bits;
}

}  // namespace

bool detail::positions_valid(std::uint64_t zeroed, std::uint64_t head, std::uint64_t tail,
                             std::uint64_t capacity) noexcept {
    return zeroed <= head && head <= tail && tail - zeroed <= capacity &&
           zeroed % ring::RING_RECORD_ALIGN == 0 && head % ring::RING_RECORD_ALIGN == 0 &&
           tail % ring::RING_RECORD_ALIGN == 0;
}

std::string detail::positions_text(std::uint64_t zeroed, std::uint64_t head, std::uint64_t tail) {
    return "positions zeroed " + std::to_string(zeroed) + " head " + std::to_string(head) + " tail " +
           std::to_string(tail);
}

const char* detail::record_problem(const RecordHeader& rec, std::uint64_t index, std::uint64_t capacity,
                                   std::uint32_t max_record, RingKind kind) noexcept {
    const std::uint64_t size = ring::record_size(rec.length);
    switch (static_cast<RecordType>(rec.type)) {
        case RecordType::data:
            if (rec.length > max_record) {
                return "record longer than max_record";
            }
            break;
        case RecordType::padding:
            if (size != capacity - index) {
                return "padding record that does not end at the end of the data area";
            }
            break;
        case RecordType::end_of_stream:
            if (rec.length != 0) {
                return "end-of-stream record with a payload";
            }
            break;
        case RecordType::skipped:
            if (kind != RingKind::mpsc) {
                return "skipped record outside an mpsc ring";
            }
            break;
        default:
            return "unknown record type";
    }
    if (size > capacity - index) {
        return "record crossing the end of the data area";
    }
    return nullptr;
}

std::string_view to_string(WriteStatus status) noexcept {
    switch (status) {
        case WriteStatus::ok:
            return "ok";
        case WriteStatus::full:
            return "full";
        case WriteStatus::too_large:
            return "too_large";
        case WriteStatus::peer_gone:
            return "peer_gone";
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
        case ReadStatus::peer_gone:
            return "peer_gone";
        case ReadStatus::lapped:
            return "lapped";
    }
    return "unknown";
}

std::string_view to_string(PeerState state) noexcept {
    switch (state) {
        case PeerState::none:
            return "none";
        case PeerState::alive:
            return "alive";
        case PeerState::dead:
            return "dead";
    }
    return "unknown";
}

PeerState peer_state(pid_t pid, std::uint64_t start_time) noexcept {
    return identify_peer(pid, start_time, nullptr);
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
    if (kind != RingKind::spsc && kind != RingKind::mpsc && kind != RingKind::broadcast) {
        return fail(Error::make(ErrorKind::invalid_argument, "ring create",
                                "unknown ring kind " + std::to_string(static_cast<unsigned>(kind))));
    }
    auto* header = reinterpret_cast<RingHeader*>(memory.data());
    // relaxed: an opener that loaded the old version (acquire) before this store may still
    // read the old header; that is the caller's problem (format only memory nobody uses).
    shared(header->version).store(0, std::memory_order_relaxed);
    // Zero everything after version (so reserved fields, positions, slots and counters
    // start at 0).
    std::memset(reinterpret_cast<unsigned char*>(header) + offsetof(RingHeader, header_size), 0,
                sizeof(RingHeader) - offsetof(RingHeader, header_size));
    if (kind != RingKind::broadcast) {
        // SPSC and MPSC tell committed records by a non-zero type: the area starts zeroed,
        // and then the consumer zeroes what it releases (dirty_to = 0: nothing left behind).
        std::memset(memory.data() + sizeof(RingHeader), 0, static_cast<std::size_t>(capacity));
    }
    header->magic = ring::RING_MAGIC;
    header->header_size = sizeof(RingHeader);
    header->capacity = capacity;
    header->max_record = max_record;
    header->kind = static_cast<std::uint32_t>(kind);
    header->slots = ring::RING_SLOTS;
    header->creator_pid = static_cast<std::int32_t>(::getpid());
    header->creator_start_time = self_start_time();
    header->doorbell_fd = -1;
    // release: pairs with the acquire load of version in attach; every field above is
    // visible to an opener that sees the new version.
    shared(header->version).store(ring::RING_LAYOUT_VERSION, std::memory_order_release);
    return {};
}

// ---------------------------------------------------------------------------------------
// Producer

Result<RingProducer> RingProducer::create(std::span<std::byte> memory, std::uint64_t capacity,
                                          std::uint32_t max_record, RingKind kind,
                                          const AttachOptions& options) {
    if (auto ok = format_ring(memory, capacity, max_record, kind); !ok) {
        return fail(std::move(ok.error()));
    }
    return attach(memory, options);
}

Result<RingProducer> RingProducer::attach(std::span<std::byte> memory, const AttachOptions& options) {
    auto seg = attach_segment(memory);
    if (!seg) {
        return fail(std::move(seg.error()));
    }
    RingProducer p;
    p.m_header = seg->header;
    p.m_data = seg->data;
    p.m_kind = seg->kind;
    p.m_capacity = seg->capacity;
    p.m_mask = seg->capacity - 1;
    p.m_max_record = seg->max_record;
    p.m_tail = seg->tail;
    p.m_cached_zeroed = seg->zeroed;
    p.m_wait = options.wait;
    p.m_fast_fence = fast_fence_available();
    // Whether the previous producer may have left bytes we do not know of (it died, or we
    // hold no role and cannot tell).
    bool unknown_predecessor = !options.take_role;
    if (options.take_role) {
        if (p.m_kind == RingKind::mpsc) {
            auto slot = take_slot(p.m_header, seg->head, "producer");
            if (!slot) {
                return fail(std::move(slot.error()));
            }
            p.m_slot = *slot;
        } else {
            auto took_over = take_role(p.m_header->producer_pid, p.m_header->producer_start_time, "producer");
            if (!took_over) {
                return fail(std::move(took_over.error()));
            }
            unknown_predecessor = *took_over;
        }
        p.m_role = true;
    }
    if (p.m_kind == RingKind::spsc) {
        // The segment's tail may be one record ahead of the commits (a producer that died
        // between storing tail and committing): the real end is the first uncommitted
        // header after head.
        auto end = p.find_end();
        if (!end) {
            return fail(std::move(end.error()));
        }
        p.m_tail = *end;
        if (unknown_predecessor) {
            // A dead producer's half-written record or unpublished batch may lie anywhere
            // we write in our first lap (find_end() stopped at the first uncommitted header).
            p.m_dirty_to = *end + p.m_capacity;
        } else {
            // What the last producer said it left when it closed (0 after format_ring).
            // relaxed: published by its release of the role, which we acquired.
            const std::uint64_t left = shared(p.m_header->dirty_to).load(std::memory_order_relaxed);
            p.m_dirty_to = left <= *end ? *end : std::min(left, *end + p.m_capacity);
        }
        // relaxed: only observers read tail; the consumer polls headers.
        shared(p.m_header->tail).store(p.m_tail, std::memory_order_relaxed);
    } else if (p.m_kind != RingKind::mpsc) {
        // Broadcast (the one kind left here): the tail may have moved between validation
        // and taking the role (a previous holder that died is no longer writing).
        // acquire: pairs with its release store of tail.
        p.m_tail = shared(p.m_header->tail).load(std::memory_order_acquire);
        // Validated again: the segment may have changed since attach_segment() looked.
        if (p.m_tail % ring::RING_RECORD_ALIGN != 0) {
            return fail(
                corrupt("tail " + std::to_string(p.m_tail) + " changed to an unaligned value during attach"));
        }
        // A writer that died mid-record left write_limit past tail; start clean there.
        shared(p.m_header->write_limit).store(p.m_tail, std::memory_order_relaxed);
    }
    // relaxed: counters are statistics, written only by the producer; nothing is ordered by them.
    p.m_messages = shared(p.m_header->messages).load(std::memory_order_relaxed);
    p.m_bytes = shared(p.m_header->bytes).load(std::memory_order_relaxed);
    p.m_high_water = shared(p.m_header->high_water).load(std::memory_order_relaxed);
    // Identify the consumer now (a pidfd and its start time, about 0.3 ms of system calls),
    // not in the first wait: later checks only poll the pidfd.
    (void)p.consumer_state();
    return p;
}

RingProducer& RingProducer::operator=(RingProducer&& other) noexcept {
    if (this == &other) {
        return *this;
    }
    close();
    m_header = std::exchange(other.m_header, nullptr);
    m_data = std::exchange(other.m_data, nullptr);
    m_kind = other.m_kind;
    m_capacity = std::exchange(other.m_capacity, 0);
    m_mask = std::exchange(other.m_mask, 0);
    m_max_record = std::exchange(other.m_max_record, 0);
    m_tail = other.m_tail;
    m_cached_zeroed = other.m_cached_zeroed;
    m_claim_pos = other.m_claim_pos;
    m_claim_len = other.m_claim_len;
    m_claim_start = other.m_claim_start;
    m_claimed = std::exchange(other.m_claimed, false);
    m_unpublished = std::exchange(other.m_unpublished, false);
    m_role = std::exchange(other.m_role, false);
    m_slot = std::exchange(other.m_slot, -1);
    m_fast_fence = other.m_fast_fence;
    m_messages = other.m_messages;
    m_bytes = other.m_bytes;
    m_high_water = other.m_high_water;
    m_next_fill_sample = other.m_next_fill_sample;
    m_dirty_to = other.m_dirty_to;
    m_holding = std::exchange(other.m_holding, false);
    m_held_pos = other.m_held_pos;
    m_held_word = other.m_held_word;
    m_slip = other.m_slip;
    m_wait = other.m_wait;
    m_consumer = std::move(other.m_consumer);
    m_doorbell = std::move(other.m_doorbell);
    m_doorbell_pid = other.m_doorbell_pid;
    m_doorbell_fd = other.m_doorbell_fd;
    return *this;
}

RingProducer::~RingProducer() {
    close();
}

Result<std::uint64_t> RingProducer::find_end() noexcept {
    // acquire: pairs with the consumer's release stores of zeroed and head; and with the
    // commits (release stores of the header words) read below.
    const std::uint64_t zeroed = shared(m_header->zeroed).load(std::memory_order_acquire);
    const std::uint64_t head = shared(m_header->head).load(std::memory_order_acquire);
    if (head % ring::RING_RECORD_ALIGN != 0 || zeroed % ring::RING_RECORD_ALIGN != 0 || zeroed > head ||
        head - zeroed > m_capacity) {
        return fail(corrupt("positions zeroed " + std::to_string(zeroed) + " head " + std::to_string(head) +
                            " are not 8-aligned positions with zeroed <= head <= zeroed + capacity"));
    }
    m_cached_zeroed = zeroed;
    std::uint64_t pos = head;
    while (pos - head <= m_capacity - ring::RING_SPSC_GAP) {
        const std::uint64_t index = pos & m_mask;
        const auto rec =
            std::bit_cast<RecordHeader>(header_word(m_data, index).load(std::memory_order_acquire));
        if (rec.type == static_cast<std::uint16_t>(RecordType::uncommitted)) {
            return pos;
        }
        if (const char* problem = detail::record_problem(rec, index, m_capacity, m_max_record, m_kind)) {
            return fail(corrupt(std::string(problem) + " at position " + std::to_string(pos) + " (type " +
                                std::to_string(rec.type) + ", length " + std::to_string(rec.length) +
                                "): cannot find the end of the ring"));
        }
        pos += ring::record_size(rec.length);
    }
    return fail(corrupt("no free header slot within capacity " + std::to_string(m_capacity) + " after head " +
                        std::to_string(head) + ": cannot find the end of the ring"));
}

void RingProducer::close() noexcept {
    if (m_header == nullptr) {
        return;
    }
    if (m_claimed) {
        abort();
    }
    flush();
    if (m_kind == RingKind::spsc) {
        // For the next producer: what we wrote after tail that no record covers.
        // relaxed: published by the release of the role below.
        shared(m_header->dirty_to).store(m_dirty_to, std::memory_order_relaxed);
    }
    if (m_role) {
        if (m_kind == RingKind::mpsc) {
            leave_slot(m_header, m_slot);
        } else {
            leave_role(m_header->producer_pid, m_header->producer_start_time);
        }
        m_role = false;
        m_slot = -1;
        // A consumer sleeping on us re-checks the role and keeps waiting for a new producer.
        wake(&m_header->consumer_waiting);
    }
    m_header = nullptr;
    m_data = nullptr;
}

bool RingProducer::reserve(std::uint64_t size) noexcept {
    const std::uint64_t index = m_tail & m_mask;
    const std::uint64_t to_end = m_capacity - index;
    const std::uint64_t padding = size <= to_end ? 0 : to_end;
    const std::uint64_t need = padding + size;
    if (m_kind == RingKind::broadcast) {
        // The writer never waits. Tell readers what we are about to overwrite before
        // touching it. relaxed + release fence: a reader that sees any byte we write
        // next (acquire fence on its side) also sees this limit.
        shared(m_header->write_limit).store(m_tail + need, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
    } else if (m_tail - m_cached_zeroed > m_capacity - need - ring::RING_SPSC_GAP) {
        // Free space is capacity - (tail - zeroed), less the gap: the zeroed header slot
        // after our last record. A zeroed outside [tail - capacity, tail] (a corrupt or
        // hostile consumer) makes the unsigned difference exceed capacity and reads as
        // full: we never write outside the area we own. (need + gap <= capacity: need <
        // 2 * record_size(max_record) <= capacity, both multiples of 8.)
        // acquire: pairs with the consumer's release store of zeroed in release(); its
        // reads and zeroing of the records before it are done before we overwrite them.
        m_cached_zeroed = shared(m_header->zeroed).load(std::memory_order_acquire);
        const std::uint64_t used = m_tail - m_cached_zeroed;
        if (m_kind == RingKind::spsc) {
            // A fill measured against the real head: exact when full. relaxed: statistics.
            const std::uint64_t fill = m_tail - shared(m_header->head).load(std::memory_order_relaxed);
            if (fill <= used) {
                raise_high_water(fill);
            }
        }
        if (used > m_capacity || used > m_capacity - need - ring::RING_SPSC_GAP) {
            return false;
        }
    }
    m_claim_pos = m_tail;
    if (padding != 0) {
        if (m_kind == RingKind::spsc) {
            // Committed now, like any record (the consumer may skip it at once): the record
            // itself starts at index 0.
            commit_spsc(to_end - sizeof(RecordHeader), RecordType::padding);
            m_claim_pos = m_tail;
        } else {
            const RecordHeader pad{static_cast<std::uint32_t>(to_end - sizeof(RecordHeader)),
                                   static_cast<std::uint16_t>(RecordType::padding), 0};
            std::memcpy(m_data + index, &pad, sizeof pad);
            m_claim_pos = m_tail + padding;
        }
    }
    return true;
}

bool RingProducer::reserve_mpsc(std::uint64_t size) noexcept {
    ring::PeerSlot* slot = m_slot >= 0 ? &m_header->slot[m_slot] : nullptr;
    // relaxed: a stale tail only makes the CAS fail.
    std::uint64_t t = shared(m_header->tail).load(std::memory_order_relaxed);
    for (;;) {
        if (t % ring::RING_RECORD_ALIGN != 0) {
            return false;  // a corrupt tail: never claim from it (the caller times out)
        }
        const std::uint64_t index = t & m_mask;
        const std::uint64_t to_end = m_capacity - index;
        const std::uint64_t padding = size <= to_end ? 0 : to_end;
        const std::uint64_t need = padding + size;
        if (t - m_cached_zeroed > m_capacity - need) {
            // acquire: pairs with the consumer's release store of zeroed; it has read and
            // zeroed the records before it.
            m_cached_zeroed = shared(m_header->zeroed).load(std::memory_order_acquire);
            if (t - m_cached_zeroed > m_capacity || t - m_cached_zeroed > m_capacity - need) {
                // Maybe full, maybe our tail is stale: only full if the tail is current.
                const std::uint64_t now = shared(m_header->tail).load(std::memory_order_relaxed);
                if (now == t) {
                    return false;
                }
                t = now;
                continue;
            }
        }
        if (slot != nullptr) {
            // Record the claim before it exists, so a consumer can skip it if we die right
            // after the CAS. relaxed: published by the release CAS below.
            shared(slot->position).store(t, std::memory_order_relaxed);
            shared(slot->claim_size).store(need, std::memory_order_relaxed);
        }
        // release: the slot's claim is visible to a consumer that sees the new tail.
        if (shared(m_header->tail)
                .compare_exchange_weak(t, t + need, std::memory_order_release, std::memory_order_relaxed)) {
            if (padding != 0) {
                const RecordHeader pad{static_cast<std::uint32_t>(to_end - sizeof(RecordHeader)),
                                       static_cast<std::uint16_t>(RecordType::padding), 0};
                // release: the consumer's acquire load of the header word sees a whole record.
                header_word(m_data, index).store(pack(pad), std::memory_order_release);
            }
            m_claim_start = t;
            m_claim_pos = t + padding;
            m_tail = t + need;
            return true;
        }
    }
}

void RingProducer::publish(std::uint64_t length, RecordType type, bool now) noexcept {
    const RecordHeader rec{static_cast<std::uint32_t>(length), static_cast<std::uint16_t>(type), 0};
    if (m_kind == RingKind::mpsc) {
        // The per-record commit. release: pairs with the consumer's acquire load of the
        // header word; the payload written before is visible to it.
        header_word(m_data, m_claim_pos & m_mask).store(pack(rec), std::memory_order_release);
        if (m_slot >= 0) {
            // relaxed: a consumer that reads the slot sees either the claim (and then the
            // committed header) or no claim; both are handled.
            shared(m_header->slot[m_slot].claim_size).store(0, std::memory_order_relaxed);
        }
        wake_consumer();
        return;
    }
    if (m_kind == RingKind::spsc) {
        commit_spsc(length, type);
    } else {
        std::memcpy(m_data + (m_claim_pos & m_mask), &rec, sizeof rec);
        m_tail = m_claim_pos + ring::record_size(length);
    }
    if (now) {
        publish_tail();
    } else {
        m_unpublished = true;
    }
}

void RingProducer::publish_tail() noexcept {
    m_unpublished = false;
    if (m_holding) {
        m_holding = false;
        // relaxed: published by the release store below (head <= tail for observers).
        shared(m_header->tail).store(m_tail, std::memory_order_relaxed);
        // release: pairs with the consumer's acquire load of the header word; the records
        // of the batch after this one, committed before, become visible with it.
        header_word(m_data, m_held_pos & m_mask).store(m_held_word, std::memory_order_release);
    }
    if (m_kind == RingKind::broadcast) {
        // release: pairs with the readers' acquire load of tail; the padding, record
        // headers and payloads written before are visible to them. (SPSC committed each
        // record's header, and stored tail, in commit_spsc().)
        shared(m_header->tail).store(m_tail, std::memory_order_release);
    }
    publish_counters();
}

void RingProducer::flush() noexcept {
    if (m_unpublished) {
        publish_tail();
    }
}

void RingProducer::wake_sleeping_consumer() noexcept {
    const std::uint32_t bits = wake(&m_header->consumer_waiting);
    if ((bits & ring::WAIT_DOORBELL) != 0) {
        ring_doorbell();
    }
    if (bits != 0) {
        // relaxed: statistics.
        shared(m_header->producer_wakeups).fetch_add(1, std::memory_order_relaxed);
    }
}

void RingProducer::ring_doorbell() noexcept {
    // acquire: pairs with the consumer's release store of doorbell_fd before arming.
    const pid_t pid = shared(m_header->consumer_pid).load(std::memory_order_acquire);
    const int fd = shared(m_header->doorbell_fd).load(std::memory_order_acquire);
    if (pid <= 0 || fd < 0) {
        return;
    }
    if (!m_doorbell || pid != m_doorbell_pid || fd != m_doorbell_fd) {
        m_doorbell.reset();
        const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
        const int opened = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (opened < 0) {
            return;  // the consumer also wakes on its own liveness interval
        }
        struct stat st;
        if (::fstat(opened, &st) != 0 || !S_ISFIFO(st.st_mode)) {
            ::close(opened);
            return;
        }
        m_doorbell = UniqueFd(opened);
        m_doorbell_pid = pid;
        m_doorbell_fd = fd;
    }
    const char byte = 1;
    [[maybe_unused]] const ssize_t n = ::write(m_doorbell.get(), &byte, 1);  // EAGAIN: already rung
}

void RingProducer::count_commit(std::uint64_t length) noexcept {
    if (m_kind == RingKind::mpsc) {
        // relaxed: statistics shared by all producers.
        shared(m_header->messages).fetch_add(1, std::memory_order_relaxed);
        shared(m_header->bytes).fetch_add(length, std::memory_order_relaxed);
        if (m_slot >= 0) {
            ring::PeerSlot& slot = m_header->slot[m_slot];
            shared(slot.messages)
                .store(shared(slot.messages).load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        }
        return;
    }
    // Kept here; publish_tail() stores them in the segment with the tail.
    ++m_messages;
    m_bytes += length;
    if (m_kind == RingKind::spsc) {
        maybe_sample_fill();
    }
}

PeerState RingProducer::consumer_state() noexcept {
    if (m_header == nullptr || m_kind == RingKind::broadcast) {
        return PeerState::none;
    }
    return role_state(m_consumer, m_header->consumer_pid, m_header->consumer_start_time,
                      m_wait.liveness_interval);
}

bool RingProducer::slip_allows(std::uint64_t size) noexcept {
    // Ahead of us, up to a lap, lie records the consumer has not freed yet; it zeroes what
    // it frees. Room itself is decided by reserve()'s acquire load of zeroed.
    return !m_slip.defer(
        detail::line_is_zero(m_data, (m_tail + size + ring::RING_SPSC_GAP + m_slip.bytes) & m_mask));
}

WriteStatus RingProducer::reserve_waiting(std::uint64_t size, Timeout timeout) noexcept {
    auto try_reserve = [&] { return m_kind == RingKind::mpsc ? reserve_mpsc(size) : reserve(size); };
    const bool deferred = m_slip.armed && !slip_allows(size);
    if (!deferred && try_reserve()) {
        return WriteStatus::ok;
    }
    // Full: records committed in a batch must be visible before anyone waits on them.
    flush();
    if (timeout == NO_WAIT) {
        if (deferred) {
            return WriteStatus::full;  // the checks below run when the deferral ends
        }
        m_slip.arm();
        // A full ring whose consumer died is reported at once (rate-limited by the pidfd poll).
        if (consumer_state() != PeerState::dead) {
            return WriteStatus::full;
        }
        return try_reserve() ? WriteStatus::ok : WriteStatus::peer_gone;
    }
    count(m_header->full_waits, m_kind == RingKind::mpsc);
    // Slip: defer only while spinning (wait_loop clears `spinning` before it sleeps).
    m_slip.arm();
    bool spinning = m_wait.policy != WaitPolicy::sleep;
    bool got = false;
    const WaitOutcome outcome = wait_loop(
        m_wait, timeout, &m_header->producer_waiting, m_kind == RingKind::spsc,
        [&] {
            if (m_slip.armed) [[unlikely]] {
                if (spinning && !slip_allows(size)) {
                    return false;
                }
                m_slip.armed = false;
            }
            got = got || try_reserve();
            if (!got) {
                m_slip.arm();
            }
            return got;
        },
        [&] {
            if (consumer_state() != PeerState::dead) {
                return false;
            }
            // The consumer may have made room just before it died or left: use it.
            got = got || try_reserve();
            return !got;
        },
        &spinning);
    m_slip.armed = false;
    switch (outcome) {
        case WaitOutcome::ready:
            return WriteStatus::ok;
        case WaitOutcome::timed_out:
            return WriteStatus::full;
        case WaitOutcome::peer_gone:
            return WriteStatus::peer_gone;
    }
    return WriteStatus::full;
}

Claim RingProducer::claim_slow(std::size_t max_len, Timeout timeout) noexcept {
    XPROC_ASSERT(m_header != nullptr);
    XPROC_ASSERT(!m_claimed);
    if (max_len > m_max_record) {
        return {WriteStatus::too_large, {}};
    }
    const WriteStatus status = reserve_waiting(ring::record_size(max_len), timeout);
    if (status != WriteStatus::ok) {
        return {status, {}};
    }
    m_claimed = true;
    m_claim_len = max_len;
    return {WriteStatus::ok,
            std::span<std::byte>(m_data + (m_claim_pos & m_mask) + sizeof(RecordHeader), max_len)};
}

void RingProducer::sample_fill() noexcept {
    m_next_fill_sample = m_tail + std::max<std::uint64_t>(m_capacity / FILL_SAMPLES_PER_LAP, 8);
    // acquire: as in reserve(); a fresher zeroed also frees room for the claim fast path.
    const std::uint64_t zeroed = shared(m_header->zeroed).load(std::memory_order_acquire);
    // relaxed: statistics.
    const std::uint64_t head = shared(m_header->head).load(std::memory_order_relaxed);
    if (zeroed - m_cached_zeroed > m_tail - m_cached_zeroed || head - zeroed > m_tail - zeroed) {
        return;  // not cached zeroed <= zeroed <= head <= tail: positions that went backwards or past tail
    }
    m_cached_zeroed = zeroed;
    // At its commit our last record was in use, even if the consumer has taken it since.
    raise_high_water(std::max(m_tail - head, m_tail - m_claim_pos));
}

void RingProducer::raise_high_water(std::uint64_t used) noexcept {
    if (used > m_high_water) {
        m_high_water = used;
        // relaxed: statistics.
        shared(m_header->high_water).store(m_high_water, std::memory_order_relaxed);
    }
}

void RingProducer::complete(std::size_t length, bool now) noexcept {
    XPROC_ASSERT(m_claimed);
    XPROC_ASSERT(length <= m_claim_len);
    m_claimed = false;
    if (m_kind == RingKind::mpsc && ring::record_size(length) != ring::record_size(m_claim_len)) {
        // Other producers may have claimed after us, so the claim keeps its size: the data
        // record, then a `skipped` filler for the unused rest.
        const std::uint64_t used = ring::record_size(length);
        const std::uint64_t rest = ring::record_size(m_claim_len) - used;
        const RecordHeader filler{static_cast<std::uint32_t>(rest - sizeof(RecordHeader)),
                                  static_cast<std::uint16_t>(RecordType::skipped), 0};
        // release: committed before (and independently of) the data record.
        header_word(m_data, (m_claim_pos + used) & m_mask).store(pack(filler), std::memory_order_release);
    }
    if (m_kind == RingKind::spsc && length < m_claim_len) {
        mark_dirty(m_claim_pos + ring::record_size(m_claim_len));
    }
    // Counted first: publish_tail() stores the counters with the tail.
    m_tail = m_kind == RingKind::mpsc ? m_tail : m_claim_pos + ring::record_size(length);
    count_commit(length);
    publish(length, RecordType::data, now);
}

void RingProducer::abort() noexcept {
    XPROC_ASSERT(m_claimed);
    m_claimed = false;
    if (m_kind == RingKind::mpsc) {
        // Others may have claimed after us: the space must be committed as something.
        const RecordHeader filler{
            static_cast<std::uint32_t>(ring::record_size(m_claim_len) - sizeof(RecordHeader)),
            static_cast<std::uint16_t>(RecordType::skipped), 0};
        header_word(m_data, m_claim_pos & m_mask).store(pack(filler), std::memory_order_release);
        if (m_slot >= 0) {
            shared(m_header->slot[m_slot].claim_size).store(0, std::memory_order_relaxed);
        }
        wake_consumer();
    }
    // SPSC: a padding record written by reserve() stays committed (tail is past it); the
    // payload written into the claim stays too, so the header slots there are zeroed at
    // the commits that reach them.
    if (m_kind == RingKind::spsc) {
        mark_dirty(m_claim_pos + ring::record_size(m_claim_len));
    }
    // Broadcast: a padding record written by reserve() is not published: tail did not move.
}

WriteStatus RingProducer::write_failed(WriteStatus status, Timeout timeout) noexcept {
    if (status != WriteStatus::too_large && timeout != NO_WAIT) {
        // relaxed: statistics.
        shared(m_header->dropped).fetch_add(1, std::memory_order_relaxed);
    }
    return status;
}

WriteStatus RingProducer::write_end_of_stream(Timeout timeout) noexcept {
    XPROC_ASSERT(m_header != nullptr);
    XPROC_ASSERT(!m_claimed);
    const WriteStatus status = reserve_waiting(ring::record_size(0), timeout);
    if (status != WriteStatus::ok) {
        return status;
    }
    publish(0, RecordType::end_of_stream);
    return WriteStatus::ok;
}

// ---------------------------------------------------------------------------------------
// Consumer

Result<RingConsumer> RingConsumer::create(std::span<std::byte> memory, std::uint64_t capacity,
                                          std::uint32_t max_record, RingKind kind,
                                          const AttachOptions& options) {
    if (auto ok = format_ring(memory, capacity, max_record, kind); !ok) {
        return fail(std::move(ok.error()));
    }
    return attach(memory, options);
}

Result<RingConsumer> RingConsumer::attach(std::span<std::byte> memory, const AttachOptions& options) {
    auto seg = attach_segment(memory);
    if (!seg) {
        return fail(std::move(seg.error()));
    }
    RingConsumer c;
    c.m_header = seg->header;
    c.m_data = seg->data;
    c.m_kind = seg->kind;
    c.m_capacity = seg->capacity;
    c.m_mask = seg->capacity - 1;
    c.m_max_record = seg->max_record;
    c.m_wait = options.wait;
    c.m_follow = options.follow;
    c.m_fast_fence = fast_fence_available();
    if (options.take_role) {
        if (c.m_kind == RingKind::broadcast) {
            auto slot = take_slot(c.m_header, 0, "reader");
            if (!slot) {
                return fail(std::move(slot.error()));
            }
            c.m_slot = *slot;
        } else if (auto ok = take_role(c.m_header->consumer_pid, c.m_header->consumer_start_time, "consumer");
                   !ok) {
            return fail(std::move(ok.error()));
        }
        c.m_role = true;
    }
    if (c.m_kind == RingKind::broadcast) {
        // A reader starts with the next message. acquire: pairs with the writer's release
        // store of tail.
        c.m_head = shared(c.m_header->tail).load(std::memory_order_acquire);
        c.m_cached_tail = c.m_head;
        if (c.m_head % ring::RING_RECORD_ALIGN != 0) {
            return fail(
                corrupt("tail " + std::to_string(c.m_head) + " changed to an unaligned value during attach"));
        }
        c.m_scratch.resize(c.m_max_record);
        if (c.m_slot >= 0) {
            shared(c.m_header->slot[c.m_slot].position).store(c.m_head, std::memory_order_relaxed);
        }
    } else {
        // acquire: pairs with the previous consumer's release stores of zeroed and head (if
        // it died or left between validation and now).
        const std::uint64_t zeroed = shared(c.m_header->zeroed).load(std::memory_order_acquire);
        const std::uint64_t head = shared(c.m_header->head).load(std::memory_order_acquire);
        // Validated again: the segment may have changed since attach_segment() looked.
        const std::uint64_t tail = shared(c.m_header->tail).load(std::memory_order_acquire);
        if (!positions_valid(zeroed, head, tail, c.m_capacity)) {
            // (Our positions stay 0: close() has nothing to zero.)
            return fail(corrupt(positions_text(zeroed, head, tail) +
                                " changed to inconsistent values during attach"));
        }
        c.m_head = head;
        c.m_cached_tail = head;
        c.m_zeroed = zeroed;
        if (zeroed != c.m_head) {
            // A consumer died before zeroing all it had read: finish its release.
            c.zero_up_to(c.m_head);
        }
    }
    if (c.m_kind == RingKind::mpsc) {
        c.m_slot_watch.resize(ring::RING_SLOTS);
    }
    // Identify the producer(s) now (a pidfd and its start time, about 0.3 ms of system
    // calls), not in the first wait: later checks only poll the pidfd.
    (void)c.producer_state();
    return c;
}

RingConsumer& RingConsumer::operator=(RingConsumer&& other) noexcept {
    if (this == &other) {
        return *this;
    }
    close();
    m_header = std::exchange(other.m_header, nullptr);
    m_data = std::exchange(other.m_data, nullptr);
    m_kind = other.m_kind;
    m_capacity = std::exchange(other.m_capacity, 0);
    m_mask = std::exchange(other.m_mask, 0);
    m_max_record = std::exchange(other.m_max_record, 0);
    m_head = other.m_head;
    m_zeroed = other.m_zeroed;
    m_cached_tail = other.m_cached_tail;
    m_end_of_stream = other.m_end_of_stream;
    m_role = std::exchange(other.m_role, false);
    m_follow = other.m_follow;
    m_fast_fence = other.m_fast_fence;
    m_slot = std::exchange(other.m_slot, -1);
    m_lapped_bytes = other.m_lapped_bytes;
    m_read_messages = other.m_read_messages;
    m_empty_polls = other.m_empty_polls;
    m_slip = other.m_slip;
    m_release_step = other.m_release_step;
    m_held = other.m_held;
    m_wait = other.m_wait;
    m_producer = std::move(other.m_producer);
    m_slot_watch = std::move(other.m_slot_watch);
    m_scratch = std::move(other.m_scratch);
    m_doorbell_read = std::move(other.m_doorbell_read);
    m_doorbell_write = std::move(other.m_doorbell_write);
    return *this;
}

RingConsumer::~RingConsumer() {
    close();
}

void RingConsumer::close() noexcept {
    if (m_header == nullptr) {
        return;
    }
    if (m_doorbell_write) {
        // relaxed: the doorbell fd is only used with WAIT_DOORBELL set, cleared here first.
        shared(m_header->consumer_waiting).fetch_and(~ring::WAIT_DOORBELL, std::memory_order_relaxed);
        shared(m_header->doorbell_fd).store(-1, std::memory_order_relaxed);
    }
    if (m_kind != RingKind::broadcast && m_zeroed != m_head) {
        // The part of a line release() left for the next release: the next consumer starts
        // with zeroed == head (a gap means that one died).
        zero_up_to(m_head);
    }
    if (m_role) {
        if (m_kind == RingKind::broadcast) {
            leave_slot(m_header, m_slot);
        } else {
            leave_role(m_header->consumer_pid, m_header->consumer_start_time);
        }
        m_role = false;
        m_slot = -1;
        // Producers sleeping on a full ring re-check and keep waiting for a new consumer.
        wake(&m_header->producer_waiting);
    }
    m_header = nullptr;
    m_data = nullptr;
}

Result<bool> RingConsumer::refresh_tail(std::uint64_t pos) noexcept {
    XPROC_ASSERT(m_header != nullptr);
    // acquire: pairs with the producer's release store of tail in publish() (MPSC: the
    // release CAS of a claim); SPSC records before tail are fully written.
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
    if (tail == pos) {
        // Empty: while we poll tail, also fetch the line the next record header will be
        // in, so that when the producer publishes, both misses overlap instead of the
        // record's line being fetched only after the new tail was seen.
        __builtin_prefetch(m_data + (pos & m_mask));
        return false;
    }
    return true;
}

Result<RingConsumer::Record> RingConsumer::record_at_slow(std::uint64_t pos) const noexcept {
    // Invariants kept by available(): pos is 8-aligned (so a whole record header lies
    // before the end of the area); MPSC: pos < m_cached_tail, both 8-aligned.
    const std::uint64_t index = pos & m_mask;
    RecordHeader rec;
    if (m_kind != RingKind::broadcast) {
        // acquire: pairs with the producer's release store of the header word (its commit).
        rec = std::bit_cast<RecordHeader>(header_word(m_data, index).load(std::memory_order_acquire));
        if (rec.type == static_cast<std::uint16_t>(RecordType::uncommitted)) {
            return Record{RecordType::uncommitted, 0, 0, nullptr};
        }
    } else {
        std::memcpy(&rec, m_data + index, sizeof rec);
    }
    const std::uint64_t size = ring::record_size(rec.length);
    // SPSC: a record ends within capacity of head (the producer never writes further).
    const std::uint64_t readable = m_kind == RingKind::spsc ? m_head + m_capacity - pos : m_cached_tail - pos;
    auto bad = [&](const char* what) {
        return fail(corrupt_read(std::string(what) + " at position " + std::to_string(pos) + " (type " +
                                 std::to_string(rec.type) + ", length " + std::to_string(rec.length) + ")"));
    };
    if (const char* problem = detail::record_problem(rec, index, m_capacity, m_max_record, m_kind)) {
        return bad(problem);
    }
    if (size > readable) {
        return bad(m_kind == RingKind::spsc ? "record extending more than the capacity past head"
                                            : "record extending past tail");
    }
    return Record{static_cast<RecordType>(rec.type), rec.length, size, m_data + index + sizeof(RecordHeader)};
}

void RingConsumer::zero_wrapped(std::uint64_t to) noexcept {
    const std::uint64_t begin = m_zeroed & m_mask;
    const std::uint64_t length = to - m_zeroed;
    const std::uint64_t first = std::min(length, m_capacity - begin);
    std::memset(m_data + begin, 0, first);
    if (length > first) {
        std::memset(m_data, 0, length - first);
    }
}

void RingConsumer::wake_sleeping_producer() noexcept {
    if (wake(&m_header->producer_waiting) != 0) {
        // relaxed: statistics.
        shared(m_header->consumer_wakeups).fetch_add(1, std::memory_order_relaxed);
    }
}

PeerState RingConsumer::producer_state() noexcept {
    if (m_header == nullptr) {
        return PeerState::none;
    }
    if (m_kind != RingKind::mpsc) {
        return role_state(m_producer, m_header->producer_pid, m_header->producer_start_time,
                          m_wait.liveness_interval);
    }
    // Only "alive" is kept for a while: none or dead can end the moment a producer takes a
    // slot, and scanning the slots costs no system call unless a holder is alive.
    const auto now = coarse_now();
    if (m_producer.state == PeerState::alive && now < m_producer.next_check) {
        return m_producer.state;
    }
    m_producer.next_check = now + m_wait.liveness_interval / 2;
    m_producer.state = mpsc_producers_state();
    return m_producer.state;
}

PeerState RingConsumer::mpsc_producers_state() noexcept {
    PeerState result = PeerState::none;
    for (std::size_t i = 0; i < ring::RING_SLOTS; ++i) {
        const ring::PeerSlot& slot = m_header->slot[i];
        const pid_t pid = shared(const_cast<std::int32_t&>(slot.pid)).load(std::memory_order_acquire);
        if (pid == 0) {
            m_slot_watch[i] = {};  // closes the pidfd of a holder that left
            continue;
        }
        const std::uint64_t start =
            shared(const_cast<std::uint64_t&>(slot.start_time)).load(std::memory_order_acquire);
        // One watch per slot: a holder is identified once, then its pidfd is polled.
        // (Interval 0: no rate limit of its own; producer_state() has one.)
        const PeerState state = check_peer(m_slot_watch[i], pid, start, std::chrono::nanoseconds(0));
        if (state == PeerState::alive) {
            return PeerState::alive;
        }
        result = state;
    }
    return result;
}

Result<bool> RingConsumer::skip_dead_claim() noexcept {
    // Only an uncommitted record at head can be a dead producer's.
    auto ready = available(m_head);
    if (!ready) {
        return fail(std::move(ready.error()));
    }
    if (!*ready) {
        return false;
    }
    auto rec = record_at(m_head);
    if (!rec) {
        return fail(std::move(rec.error()));
    }
    if (rec->type != RecordType::uncommitted) {
        return false;
    }
    // Find who claimed it; skip it only when every slot claiming it is dead (a live
    // claimant will commit). Slot fields come from the segment: validated before use.
    const std::uint64_t head = m_head;
    std::uint64_t end = 0;
    int dead_slot = -1;
    for (int i = 0; i < static_cast<int>(ring::RING_SLOTS); ++i) {
        ring::PeerSlot& slot = m_header->slot[i];
        // acquire: pairs with the release CAS of tail that published the claim.
        const pid_t pid = shared(slot.pid).load(std::memory_order_acquire);
        const std::uint64_t size = shared(slot.claim_size).load(std::memory_order_relaxed);
        const std::uint64_t pos = shared(slot.position).load(std::memory_order_relaxed);
        if (pid == 0 || size == 0 || pos > head || pos + size <= head) {
            continue;
        }
        const std::uint64_t start = shared(slot.start_time).load(std::memory_order_acquire);
        if (peer_state(pid, start) != PeerState::dead) {
            return false;
        }
        if (size % ring::RING_RECORD_ALIGN != 0 || size > m_capacity || pos + size > m_cached_tail) {
            continue;  // a stale or damaged claim: not usable
        }
        end = pos + size;
        dead_slot = i;
    }
    if (dead_slot < 0) {
        return false;
    }
    // The claim may cross the end of the area (the claimant died before writing its
    // padding record): fill up to the end first; the rest is skipped on the next call.
    const std::uint64_t to_end = m_capacity - (head & m_mask);
    const std::uint64_t size = std::min(end - head, to_end);
    const RecordHeader filler{static_cast<std::uint32_t>(size - sizeof(RecordHeader)),
                              static_cast<std::uint16_t>(RecordType::skipped), 0};
    // release: the filler is read back by our own acquire load in record_at().
    header_word(m_data, head & m_mask).store(pack(filler), std::memory_order_release);
    if (head + size == end) {
        // relaxed: only the consumer reads a dead slot's claim.
        shared(m_header->slot[dead_slot].claim_size).store(0, std::memory_order_relaxed);
        // relaxed: statistics.
        shared(m_header->skipped).fetch_add(1, std::memory_order_relaxed);
    }
    return true;
}

Result<ReadStatus> RingConsumer::ready_now() noexcept {
    if (m_kind == RingKind::broadcast) {
        // Readers may be lapped: any tail other than our position means something to
        // report (a message, or that we were lapped). acquire: pairs with the writer's
        // release store of tail.
        return shared(m_header->tail).load(std::memory_order_acquire) != m_head ? ReadStatus::ok
                                                                                : ReadStatus::empty;
    }
    for (;;) {
        auto ready = available(m_head);
        if (!ready) {
            return fail(std::move(ready.error()));
        }
        if (!*ready) {
            return ReadStatus::empty;
        }
        auto rec = record_at(m_head);
        if (!rec) {
            return fail(std::move(rec.error()));
        }
        if (rec->type == RecordType::data || rec->type == RecordType::end_of_stream) {
            return ReadStatus::ok;
        }
        if (rec->type == RecordType::uncommitted) {
            return ReadStatus::empty;
        }
        // Padding and skipped records: consume them here so readiness means a message.
        m_head += rec->size;
        release();
    }
}

Result<ReadStatus> RingConsumer::wait(Timeout timeout) noexcept {
    XPROC_ASSERT(m_header != nullptr);
    release_held();  // a producer may be waiting for that room
    std::optional<Error> error;
    // Slip (set_slip()): defer only while spinning (wait_loop clears `spinning` before it
    // sleeps or gives up): a sleeper must see every committed record.
    bool spinning = m_wait.policy != WaitPolicy::sleep;
    auto ready = [&] {
        if (m_slip.armed) [[unlikely]] {
            if (spinning && !slip_allows()) {
                return false;
            }
            m_slip.armed = false;
        }
        auto r = ready_now();
        if (!r) {
            error = std::move(r.error());
            return true;
        }
        return *r == ReadStatus::ok;
    };
    // Gone: the producer is dead and nothing is left; MPSC: also skip dead claims.
    auto gone = [&] {
        if (m_kind == RingKind::mpsc) {
            auto skipped = skip_dead_claim();
            if (!skipped) {
                error = std::move(skipped.error());
                return true;
            }
            if (*skipped) {
                return false;  // the next ready() check sees the filler and moves on
            }
        }
        if (m_follow) {
            return false;
        }
        if (producer_state() != PeerState::dead) {
            return false;
        }
        // Dead: report it only once everything it committed has been read.
        auto r = ready_now();
        if (!r) {
            error = std::move(r.error());
            return true;
        }
        return *r == ReadStatus::empty;
    };
    if (ready()) {
        if (error) {
            return fail(std::move(*error));
        }
        return ReadStatus::ok;
    }
    if (timeout == NO_WAIT) {
        const bool is_gone = gone();
        if (error) {
            return fail(std::move(*error));
        }
        if (is_gone) {
            return ReadStatus::peer_gone;
        }
        return ready() ? ReadStatus::ok : ReadStatus::empty;
    }
    count(m_header->empty_waits, m_kind == RingKind::broadcast);
    const WaitOutcome outcome = wait_loop(m_wait, timeout, &m_header->consumer_waiting,
                                          m_kind != RingKind::broadcast, ready, gone, &spinning);
    if (error) {
        return fail(std::move(*error));
    }
    switch (outcome) {
        case WaitOutcome::ready:
            return ReadStatus::ok;
        case WaitOutcome::timed_out:
            return ReadStatus::empty;
        case WaitOutcome::peer_gone:
            return ReadStatus::peer_gone;
    }
    return ReadStatus::empty;
}

Result<ReadResult> RingConsumer::read_broadcast(std::span<std::byte> buffer, bool into_scratch) noexcept {
    const std::uint64_t pos = m_head;
    // acquire: pairs with the writer's release store of tail; records before it are whole
    // unless the writer has lapped us since (checked below).
    const std::uint64_t tail = shared(m_header->tail).load(std::memory_order_acquire);
    auto lapped = [&]() -> Result<ReadResult> {
        const std::uint64_t now = shared(m_header->tail).load(std::memory_order_acquire);
        if (now < pos || now % ring::RING_RECORD_ALIGN != 0) {
            // Resuming at a bad tail would read headers off the record grid (and off the end).
            return fail(corrupt_read("broadcast tail " + std::to_string(now) +
                                     " is not an 8-aligned position after reader position " +
                                     std::to_string(pos)));
        }
        const std::uint64_t lost = now - pos;
        m_head = now;
        m_lapped_bytes += lost;
        shared(m_header->lapped).fetch_add(1, std::memory_order_relaxed);
        if (m_slot >= 0) {
            ring::PeerSlot& slot = m_header->slot[m_slot];
            shared(slot.lapped)
                .store(shared(slot.lapped).load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            shared(slot.position).store(m_head, std::memory_order_relaxed);
        }
        return ReadResult{ReadStatus::lapped, 0, lost};
    };
    auto overwritten = [&] {
        // acquire: pairs with the writer's release fence after storing write_limit; if we
        // read any byte it wrote over our record, we see its limit.
        std::atomic_thread_fence(std::memory_order_acquire);
        return shared(m_header->write_limit).load(std::memory_order_relaxed) > pos + m_capacity;
    };
    if (tail == pos) {
        return ReadResult{ReadStatus::empty, 0, 0};
    }
    if (tail < pos || tail - pos > m_capacity || tail % ring::RING_RECORD_ALIGN != 0) {
        if (tail > pos) {
            return lapped();
        }
        return fail(corrupt_read("broadcast tail " + std::to_string(tail) + " is behind reader position " +
                                 std::to_string(pos)));
    }
    m_cached_tail = tail;
    auto rec = record_at(pos);
    if (!rec) {
        if (overwritten()) {
            return lapped();
        }
        return fail(std::move(rec.error()));
    }
    ReadResult result{ReadStatus::ok, rec->length, 0};
    if (rec->type == RecordType::data) {
        std::span<std::byte> dest = into_scratch ? std::span<std::byte>(m_scratch) : buffer;
        if (rec->length > dest.size()) {
            if (overwritten()) {
                return lapped();
            }
            return ReadResult{ReadStatus::too_small, rec->length, 0};
        }
        if (rec->length != 0) {
            std::memcpy(dest.data(), rec->payload, rec->length);
        }
    }
    if (overwritten()) {
        return lapped();
    }
    m_head = pos + rec->size;
    if (rec->type == RecordType::padding) {
        return read_broadcast(buffer, into_scratch);
    }
    if (rec->type == RecordType::end_of_stream) {
        m_end_of_stream = true;
        result = ReadResult{ReadStatus::end_of_stream, 0, 0};
    } else {
        ++m_read_messages;
    }
    if (m_slot >= 0) {
        // relaxed: statistics for `xring stat`.
        ring::PeerSlot& slot = m_header->slot[m_slot];
        shared(slot.position).store(m_head, std::memory_order_relaxed);
        shared(slot.messages).store(m_read_messages, std::memory_order_relaxed);
    }
    return result;
}

Result<ReadResult> RingConsumer::read_slow(std::span<std::byte> buffer, Timeout timeout) noexcept {
    XPROC_ASSERT(m_header != nullptr);
    release_held();  // we may report empty or wait below
    if (m_slip.armed && timeout != NO_WAIT) {
        // Slip (set_slip()): wait() stays behind the producer while it spins, then we read.
        auto waited = wait(timeout);
        if (!waited) {
            return fail(std::move(waited.error()));
        }
        if (*waited != ReadStatus::ok) {
            return ReadResult{*waited, 0, 0};
        }
    }
    for (;;) {
        if (m_kind == RingKind::broadcast) {
            auto r = read_broadcast(buffer, false);
            if (!r || r->status != ReadStatus::empty) {
                m_empty_polls = 0;
                return r;
            }
        } else {
            auto ready = available(m_head);
            if (!ready) {
                return fail(std::move(ready.error()));
            }
            if (*ready) {
                auto rec = record_at(m_head);
                if (!rec) {
                    return fail(std::move(rec.error()));
                }
                switch (rec->type) {
                    case RecordType::uncommitted:
                        break;  // wait below
                    case RecordType::padding:
                    case RecordType::skipped:
                        m_head += rec->size;
                        release();
                        continue;
                    case RecordType::end_of_stream:
                        m_head += rec->size;
                        release();
                        m_end_of_stream = true;
                        return ReadResult{ReadStatus::end_of_stream, 0, 0};
                    case RecordType::data:
                        if (rec->length > buffer.size()) {
                            return ReadResult{ReadStatus::too_small, rec->length, 0};
                        }
                        if (rec->length != 0) {
                            std::memcpy(buffer.data(), rec->payload, rec->length);
                        }
                        m_head += rec->size;
                        release();
                        m_empty_polls = 0;
                        return ReadResult{ReadStatus::ok, rec->length, 0};
                }
            }
        }
        if (timeout == NO_WAIT && (m_empty_polls++ % EMPTY_POLLS_PER_CHECK) != 0) {
            // A busy caller polls try_read() in a loop: the liveness check (wait() reads
            // the clock and the role line) runs on the first empty poll after a message
            // and on every EMPTY_POLLS_PER_CHECK-th after it, so an empty poll stays cheap.
            m_slip.arm();
            return ReadResult{ReadStatus::empty, 0, 0};
        }
        m_slip.arm();  // we found the ring empty: wait() slips
        if (timeout == NO_WAIT && m_kind == RingKind::spsc &&
            (m_follow || producer_state() != PeerState::dead)) {
            // The liveness check alone: all that wait(NO_WAIT) would add for an SPSC ring
            // whose producer lives is a second look, and its general path made the first
            // empty poll after every message cost 30-70 ns instead of ~10 (measured), paid
            // by a request/response peer while the next request may be arriving.
            return ReadResult{ReadStatus::empty, 0, 0};
        }
        auto waited = wait(timeout);
        if (!waited) {
            return fail(std::move(waited.error()));
        }
        if (*waited != ReadStatus::ok) {
            return ReadResult{*waited, 0, 0};
        }
        if (timeout == NO_WAIT && m_kind != RingKind::broadcast) {
            // ready after all (a producer committed meanwhile): loop once more, then return.
            timeout = Timeout(1);
        }
    }
}

Result<int> RingConsumer::doorbell_fd() noexcept {
    XPROC_ASSERT(m_header != nullptr);
    if (m_kind == RingKind::broadcast) {
        return fail(Error::make(ErrorKind::not_supported, "ring doorbell",
                                "a broadcast ring has no doorbell (readers wait in futex)"));
    }
    if (!m_doorbell_read) {
        int fds[2];
        if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
            return fail(Error::from_errno(errno, "pipe2 (ring doorbell)"));
        }
        m_doorbell_read = UniqueFd(fds[0]);
        m_doorbell_write = UniqueFd(fds[1]);
        // release: pairs with the producer's acquire load before opening /proc/PID/fd/N.
        shared(m_header->doorbell_fd).store(fds[1], std::memory_order_release);
    }
    return m_doorbell_read.get();
}

Result<bool> RingConsumer::arm_doorbell() noexcept {
    release_held();  // before we may sleep in epoll
    if (auto fd = doorbell_fd(); !fd) {
        return fail(std::move(fd.error()));
    }
    // seq_cst: announce before re-checking, as for a futex sleep.
    shared(m_header->consumer_waiting).fetch_or(ring::WAIT_DOORBELL);
    sleeper_fence();
    auto r = ready_now();
    if (!r) {
        return fail(std::move(r.error()));
    }
    return *r == ReadStatus::ok;
}

void RingConsumer::clear_doorbell() noexcept {
    if (!m_doorbell_read) {
        return;
    }
    char buf[64];
    while (::read(m_doorbell_read.get(), buf, sizeof buf) > 0) {
    }
    // relaxed: a stale armed bit only costs the producer one extra (harmless) doorbell write.
    shared(m_header->consumer_waiting).fetch_and(~ring::WAIT_DOORBELL, std::memory_order_relaxed);
}

}  // namespace xproc
