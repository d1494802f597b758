// SPDX-License-Identifier: MIT
// xproc::message_queue: the protocol is described (with diagrams) in message_queue.hpp.
#include "xproc/message_queue.hpp"

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/errors.hpp>

#include "futex.hpp"
#include "shared_field.hpp"
#include "xproc/process.hpp"
#include "xproc/ring.hpp"  // peer_state()
#include "xproc/shm.hpp"

namespace xproc {

namespace bip = boost::interprocess;
using mq::MqCell;
using mq::MqHeader;

namespace {

using Clock = std::chrono::steady_clock;

using detail::cpu_relax;
using detail::fast_fence_available;
using detail::futex_wait;
using detail::futex_wake_all;
using detail::prefetch_for_write;
using detail::sleeper_fence;

/// A lane-0 sender prefetches, for writing, the cell it will claim PREFETCH_AHEAD messages
/// later (its first PREFETCH_LINES cache lines), so that its stores do not wait for lines a
/// receiver last touched. Measured with bench/mq_bench (64 B, 1:1): without the prefetch the
/// sender's stores to each cell wait for it to come from the receiver's CPU.
constexpr std::uint64_t PREFETCH_AHEAD = 16;
constexpr std::uint64_t PREFETCH_LINES = 4;
/// A waiter that finds nothing pauses this long before it looks again, instead of reading
/// the cell the other side is writing (which pulls its cache line back and forth on every
/// message); meanwhile the other side moves on by a few messages, taken in one go after.
constexpr std::chrono::nanoseconds POLL_PAUSE{300};

using detail::self_pid;
using detail::self_start_time;
using detail::shared;

/// The claim word of a cell for position `pos` by us.
std::uint64_t claim_tag(std::uint64_t pos, bool receiver) noexcept {
    constexpr std::uint64_t pos_mask = (std::uint64_t{1} << mq::MQ_CLAIM_POS_BITS) - 1;
    return ((pos & pos_mask) << mq::MQ_CLAIM_PID_BITS) | static_cast<std::uint64_t>(self_pid()) |
           (receiver ? mq::MQ_CLAIM_RECEIVER : 0);
}

using mq::mq_claim_matches;

[[noreturn]] void throw_error(bip::error_code_t code, const std::string& what) {
    throw bip::interprocess_exception(bip::error_info(code), what.c_str());
}

/// An xproc Error as Boost would have reported the same failure: errno translated.
[[noreturn]] void throw_from(const Error& e) {
    if (e.errno_value != 0) {
        throw bip::interprocess_exception(bip::error_info(e.errno_value), e.message().c_str());
    }
    const bip::error_code_t code = e.kind == ErrorKind::permission ? bip::security_error
                                   : e.kind == ErrorKind::corrupt  ? bip::corrupted_error
                                                                   : bip::other_error;
    throw_error(code, e.message());
}

std::string shm_name(const char* name) {
    std::string n = name == nullptr ? std::string() : std::string(name);
    if (n.empty() || n[0] != '/') {
        n.insert(n.begin(), '/');  // as Boost: "q" is the POSIX name "/q"
    }
    return n;
}

using mq::mq_segment_size;

}  // namespace

/// Per object: for each lane and side, the last cell seen claimed (its position passed by
/// enqueue_pos or dequeue_pos) with no claim record for that position, and when it was
/// first seen so. Kept across calls, so that a loop of short calls measures the timeout as
/// one long call would. Positions only grow, so an entry never matches a later cell.
struct mq::UnclaimedCells {
    struct Entry {
        std::uint64_t pos = UINT64_MAX;
        Clock::time_point since{};
    };
    std::mutex mutex;                // the calls of several threads may share the object
    Entry entry[2][mq::MQ_LANES]{};  // [receiver claim][lane]

    /// When this object first saw cell `pos` of `lane` without a claim for it.
    Clock::time_point first_seen(bool receiver, std::uint32_t lane, std::uint64_t pos) {
        const std::lock_guard lock(mutex);
        Entry& e = entry[receiver ? 1 : 0][lane];
        if (e.pos != pos) {
            e.pos = pos;
            e.since = Clock::now();
        }
        return e.since;
    }
};

namespace {

// ---------------------------------------------------------------------------------------
// The queue over a validated segment. Geometry comes from this process's copies.

struct Queue {
    MqHeader* h;
    std::byte* cells;
    std::uint64_t max_num_msg;
    std::uint64_t max_msg_size;
    std::uint64_t slot_size;
    std::uint64_t cap;                       // lane capacity, a power of two
    std::atomic<std::uint64_t>* deq0_cache;  // this object's lower bound of lane 0's dequeue_pos
    mq::UnclaimedCells* unclaimed;           // this object's record of cells with no claim
    bool fast_fence;                         // registered for membarrier: publish without mfence

    MqCell* cell(std::uint32_t lane, std::uint64_t pos) const noexcept {
        const std::uint64_t index = lane * cap + (pos & (cap - 1));
        return reinterpret_cast<MqCell*>(cells + index * slot_size);
    }
    std::byte* payload(MqCell* c) const noexcept { return reinterpret_cast<std::byte*>(c) + sizeof(MqCell); }

    /// The cell's seq decoded (stored relative to its index; see the header) and its skip bit.
    struct Seq {
        std::uint64_t value;
        bool skipped;
    };
    Seq load_seq(MqCell* c, std::uint64_t pos) const noexcept {
        // acquire: pairs with the release CAS that published (sender) or released (receiver)
        // the cell: its payload, length and claim are visible after it.
        const std::uint64_t stored = shared(c->seq).load(std::memory_order_acquire);
        return {(stored & ~mq::MQ_SEQ_SKIPPED) + (pos & (cap - 1)), (stored & mq::MQ_SEQ_SKIPPED) != 0};
    }
    std::uint64_t encode(std::uint64_t seq, std::uint64_t pos, bool skipped = false) const noexcept {
        return (seq - (pos & (cap - 1))) | (skipped ? mq::MQ_SEQ_SKIPPED : 0);
    }
    bool cas_seq(MqCell* c, std::uint64_t pos, std::uint64_t from, bool from_skipped, std::uint64_t to,
                 bool to_skipped) const noexcept {
        std::uint64_t expected = encode(from, pos, from_skipped);
        // acq_rel: release publishes what we wrote into the cell (pairs with load_seq's
        // acquire); acquire orders our reuse after the previous owner's writes.
        return shared(c->seq).compare_exchange_strong(expected, encode(to, pos, to_skipped),
                                                      std::memory_order_acq_rel, std::memory_order_relaxed);
    }

    // --- capacity units -------------------------------------------------------------
    /// Messages in lane 0 (claimed positions not yet claimed by receivers): the first
    /// bound lane is accounted by its positions, not by `count` (see the header).
    /// seq_cst loads: pair with reserve_other()'s RMW on count (the Dekker pair).
    std::uint64_t lane0_occupancy() const noexcept {
        const std::uint64_t d = shared(h->lane[0].dequeue_pos).load(std::memory_order_seq_cst);
        const std::uint64_t e = shared(h->lane[0].enqueue_pos).load(std::memory_order_seq_cst);
        return e > d ? e - d : 0;
    }
    /// A capacity unit for a message to a lane other than lane 0.
    bool reserve_other() const noexcept {
        // seq_cst: our increment, then the load of lane 0's positions; a lane-0 sender does
        // its CAS of enqueue_pos, then loads count. One of us sees the other.
        const std::uint64_t before = shared(h->count).fetch_add(1, std::memory_order_seq_cst);
        if (before + 1 + lane0_occupancy() <= max_num_msg) {
            return true;
        }
        unreserve();
        return false;
    }
    void unreserve() const noexcept {
        // relaxed: count only bounds how many cells are in use; cell contents are ordered by
        // the seq CAS. Saturating: a recount may have taken this unit back already.
        const std::uint64_t before = shared(h->count).fetch_sub(1, std::memory_order_relaxed);
        if (before == 0) {
            shared(h->count).fetch_add(1, std::memory_order_relaxed);
        }
    }
    /// Whether a lane-0 message at position `pos` fits, with `count` other messages.
    /// Reloads lane 0's dequeue position only when the cached one says no.
    bool lane0_fits(std::uint64_t pos, std::uint64_t count) const noexcept {
        if (count >= max_num_msg) {
            return false;
        }
        // relaxed: a private cache of a value that only grows (stale is conservative).
        std::uint64_t d = deq0_cache->load(std::memory_order_relaxed);
        if (pos + 1 - std::min(d, pos + 1) + count <= max_num_msg) {
            return true;
        }
        d = shared(h->lane[0].dequeue_pos).load(std::memory_order_seq_cst);
        deq0_cache->store(d, std::memory_order_relaxed);
        return pos + 1 - std::min(d, pos + 1) + count <= max_num_msg;
    }

    /// A lane-0 sender, having claimed `pos`: ask for the cell it will most likely claim a
    /// few messages later, while receivers are (by our cached dequeue position) far from it.
    void prefetch_ahead(std::uint64_t pos) const noexcept {
        const std::uint64_t ahead = pos + PREFETCH_AHEAD;
        // relaxed: a private cache (stale is conservative: no prefetch).
        if (ahead >= deq0_cache->load(std::memory_order_relaxed) + cap) {
            return;  // receivers may be reading that cell: leave it to them
        }
        auto* c = reinterpret_cast<const std::byte*>(cell(0, ahead));
        const std::uint64_t lines = std::min(slot_size / 64, PREFETCH_LINES);
        for (std::uint64_t i = 0; i < lines; ++i) {
            prefetch_for_write(c + i * 64);
        }
    }

    // --- wake-ups ---------------------------------------------------------------------
    void wake(std::uint32_t& word, std::uint32_t& waiters) const noexcept {
        // seq_cst fence: orders our publish/release (a CAS) before the load of the waiter
        // count; pairs with the waiter's sleeper_fence() between its announcement and its
        // re-check. With membarrier the sleeper's barrier orders them for us: only keep the
        // compiler from swapping them.
        if (fast_fence) {
            std::atomic_signal_fence(std::memory_order_seq_cst);
        } else {
            std::atomic_thread_fence(std::memory_order_seq_cst);
        }
        if (shared(waiters).load(std::memory_order_relaxed) != 0) {
            shared(word).fetch_add(1, std::memory_order_release);  // release: pairs with the waiter's load
            futex_wake_all(&word);
        }
    }

    // --- lanes ------------------------------------------------------------------------
    /// The lane bound to `priority`, binding a free one; -1 when all are bound to others.
    int lane_for(unsigned priority) const noexcept {
        const std::uint64_t tag = std::uint64_t{priority} + 1;
        for (std::uint32_t i = 0; i < mq::MQ_LANES; ++i) {
            // acquire: pairs with the binding CAS (only the tag itself is published by it).
            std::uint64_t t = shared(h->lane_tag[i]).load(std::memory_order_acquire);
            if (t == tag) {
                return static_cast<int>(i);
            }
            if (t == 0) {
                if (shared(h->lane_tag[i]).compare_exchange_strong(t, tag, std::memory_order_acq_rel)) {
                    return static_cast<int>(i);
                }
                if (t == tag) {
                    return static_cast<int>(i);
                }
            }
        }
        return -1;
    }

    struct LaneRef {
        std::uint64_t tag;  // priority + 1
        std::uint32_t index;
    };
    /// Bound lanes, highest priority first. `out` is not initialised by the caller (this
    /// runs on every receive attempt).
    std::uint32_t lanes_by_priority(LaneRef (&out)[mq::MQ_LANES]) const noexcept {
        std::uint32_t n = 0;
        for (std::uint32_t i = 0; i < mq::MQ_LANES; ++i) {
            const std::uint64_t t = shared(h->lane_tag[i]).load(std::memory_order_acquire);
            if (t == 0) {
                break;  // lanes are bound in index order
            }
            // Insertion sort, descending: at most 16 entries.
            std::uint32_t j = n++;
            while (j > 0 && out[j - 1].tag < t) {
                out[j] = out[j - 1];
                --j;
            }
            out[j] = LaneRef{t, i};
        }
        return n;
    }

    // --- dead peers ---------------------------------------------------------------------
    /// Whether the claimant of cell `c` of `lane` for `pos` is dead: its claim names a dead
    /// pid + start time, or no claim for `pos` was seen for MQ_ANONYMOUS_CLAIM_TIMEOUT.
    bool claimant_dead(MqCell* c, std::uint32_t lane, std::uint64_t pos, bool receiver) const {
        // acquire: pairs with the claimant's release store of claim (start_time before it).
        const std::uint64_t claim = shared(c->claim).load(std::memory_order_acquire);
        if (!mq_claim_matches(claim, pos, receiver)) {
            return Clock::now() - unclaimed->first_seen(receiver, lane, pos) >=
                   mq::MQ_ANONYMOUS_CLAIM_TIMEOUT;
        }
        const pid_t pid = mq::mq_claim_pid(claim);
        const std::uint64_t start = shared(c->start_time).load(std::memory_order_relaxed);
        if (pid == self_pid()) {
            return false;
        }
        return peer_state(pid, start) == PeerState::dead;
    }
};

enum class Try : std::uint8_t { ok, empty_or_full, retry, full_backoff };

/// One receive attempt over all lanes, highest priority first. `recover`: look at
/// unpublished head cells and skip those of dead senders.
Try try_receive_once(const Queue& q, void* buffer, std::size_t& recvd, unsigned& priority, bool recover) {
    Queue::LaneRef lanes[mq::MQ_LANES];
    const std::uint32_t n = q.lanes_by_priority(lanes);
    for (std::uint32_t k = 0; k < n; ++k) {
        const std::uint32_t lane = lanes[k].index;
        std::uint64_t& dequeue_pos = q.h->lane[lane].dequeue_pos;
        // relaxed: a hint; the cell's seq (acquire) decides.
        std::uint64_t pos = shared(dequeue_pos).load(std::memory_order_relaxed);
        for (;;) {
            MqCell* c = q.cell(lane, pos);
            const auto seq = q.load_seq(c, pos);
            if (seq.value == pos + 1) {
                // relaxed CAS: the cell's contents were acquired by load_seq above.
                if (!shared(dequeue_pos).compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    continue;
                }
                if (seq.skipped) {
                    if (q.cas_seq(c, pos, pos + 1, true, pos + q.cap, false)) {
                        if (lane != 0) {
                            q.unreserve();
                        }
                        q.wake(q.h->send_word, q.h->send_waiters);
                    }
                    pos = shared(dequeue_pos).load(std::memory_order_relaxed);
                    continue;
                }
                shared(c->start_time).store(self_start_time(), std::memory_order_relaxed);
                // release: pairs with a sender's acquire load of claim (dead-receiver check).
                shared(c->claim).store(claim_tag(pos, true), std::memory_order_release);
                const std::uint32_t length = shared(c->length).load(std::memory_order_relaxed);
                const bool valid = length <= q.max_msg_size;
                if (valid) {
                    std::memcpy(buffer, q.payload(c), length);
                }
                if (!q.cas_seq(c, pos, pos + 1, false, pos + q.cap, false)) {
                    // A sender presumed us dead and released the cell (we were stopped
                    // longer than MQ_ANONYMOUS_CLAIM_TIMEOUT): the copy may be torn.
                    pos = shared(dequeue_pos).load(std::memory_order_relaxed);
                    continue;
                }
                if (lane != 0) {
                    q.unreserve();
                }
                q.wake(q.h->send_word, q.h->send_waiters);
                if (!valid) {
                    shared(q.h->corrupt).fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
                    pos = shared(dequeue_pos).load(std::memory_order_relaxed);
                    continue;
                }
                recvd = length;
                priority = static_cast<unsigned>(lanes[k].tag - 1);
                return Try::ok;
            }
            if (seq.value == pos) {
                // Empty, or a sender claimed this cell and has not published it yet.
                // relaxed: a hint whether a claim exists; the cell's claim word decides.
                const std::uint64_t enq = shared(q.h->lane[lane].enqueue_pos).load(std::memory_order_relaxed);
                if (recover && enq > pos) {
                    if (q.claimant_dead(c, lane, pos, false) &&
                        q.cas_seq(c, pos, pos, false, pos + 1, true)) {
                        shared(q.h->skipped).fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
                        continue;  // now skippable: take it (and go on) above
                    }
                }
                break;  // next lane
            }
            if (seq.value < pos) {
                break;  // a stale view (the previous turn is being released): treat as empty
            }
            pos = shared(dequeue_pos).load(std::memory_order_relaxed);  // others moved on
        }
    }
    return Try::empty_or_full;
}

/// Puts a message into `lane`, a capacity unit being held. retry: the claimed cell was
/// given up by a receiver that presumed us dead (the unit is gone with it).
Try enqueue(const Queue& q, std::uint32_t lane, const void* buffer, std::size_t size, bool recover,
            bool patient) {
    std::uint64_t& enqueue_pos = q.h->lane[lane].enqueue_pos;
    std::uint64_t pos = shared(enqueue_pos).load(std::memory_order_relaxed);
    unsigned waits = 0;
    for (;;) {
        MqCell* c = q.cell(lane, pos);
        const auto seq = q.load_seq(c, pos);
        if (seq.value == pos && !seq.skipped) {
            std::uint64_t count = 0;
            if (lane == 0) {
                // seq_cst: see reserve_other().
                count = shared(q.h->count).load(std::memory_order_seq_cst);
                if (!q.lane0_fits(pos, count)) {
                    return Try::empty_or_full;
                }
            }
            // Lane 0, seq_cst: our claim, then our re-load of count (see reserve_other()).
            // Otherwise relaxed: the cell's release by its last receiver was acquired by load_seq.
            if (!shared(enqueue_pos)
                     .compare_exchange_weak(pos, pos + 1,
                                            lane == 0 ? std::memory_order_seq_cst : std::memory_order_relaxed,
                                            std::memory_order_relaxed)) {
                continue;
            }
            bool backoff = false;
            if (lane == 0) {
                const std::uint64_t again = shared(q.h->count).load(std::memory_order_seq_cst);
                backoff = again != count && !q.lane0_fits(pos, again);
                q.prefetch_ahead(pos);
            }
            shared(c->start_time).store(self_start_time(), std::memory_order_relaxed);
            // release: pairs with a receiver's acquire load of claim (dead-sender check).
            shared(c->claim).store(claim_tag(pos, false), std::memory_order_release);
            if (backoff) {
                // A message for another lane took the last unit meanwhile: give the cell up
                // (receivers skip it) and report full.
                q.cas_seq(c, pos, pos, false, pos + 1, true);
                q.wake(q.h->recv_word, q.h->recv_waiters);
                return Try::full_backoff;
            }
            std::memcpy(q.payload(c), buffer, size);
            shared(c->length).store(static_cast<std::uint32_t>(size), std::memory_order_relaxed);
            if (!q.cas_seq(c, pos, pos, false, pos + 1, false)) {
                return Try::retry;
            }
            q.wake(q.h->recv_word, q.h->recv_waiters);
            return Try::ok;
        }
        if (seq.value < pos || (seq.value == pos && seq.skipped)) {
            // The cell still holds the previous turn (pos - cap): a message being received,
            // or one not yet published. Transient, unless its receiver died. Lane 0 may also
            // be full (its capacity is checked here, not by count).
            if (lane == 0 && !q.lane0_fits(pos, shared(q.h->count).load(std::memory_order_seq_cst))) {
                return Try::empty_or_full;
            }
            const std::uint64_t prev = pos - q.cap;
            const bool check = (recover && waits == 0) || waits % 1024 == 1023;
            if (check && seq.value == prev + 1 &&
                shared(q.h->lane[lane].dequeue_pos).load(std::memory_order_relaxed) > prev) {
                if (q.claimant_dead(c, lane, prev, true) &&
                    q.cas_seq(c, prev, prev + 1, seq.skipped, pos, false)) {
                    shared(q.h->lost).fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
                    if (lane != 0) {
                        q.unreserve();
                    }
                    continue;
                }
            }
            // Counted for a patient (blocking) sender too: the dead-receiver check above
            // runs every 1024 waits, and nothing else would ever reach it.
            if (++waits > 2000 && !patient) {
                return Try::empty_or_full;
            }
            if (waits % 64 == 63) {
                sched_yield();
            } else {
                cpu_relax();
            }
            pos = shared(enqueue_pos).load(std::memory_order_relaxed);
            continue;
        }
        pos = shared(enqueue_pos).load(std::memory_order_relaxed);  // others moved on
    }
}

/// Sum of messages in the lanes (enqueue - dequeue), for the leaked-unit recount.
std::uint64_t lane_occupancy(const Queue& q) noexcept {
    std::uint64_t total = 0;
    for (std::uint32_t i = 1; i < mq::MQ_LANES; ++i) {
        // relaxed: a snapshot compared against an earlier one.
        const std::uint64_t d = shared(q.h->lane[i].dequeue_pos).load(std::memory_order_relaxed);
        const std::uint64_t e = shared(q.h->lane[i].enqueue_pos).load(std::memory_order_relaxed);
        total += e > d ? e - d : 0;
    }
    return total;
}

/// Waits on `word` until `attempt()` succeeds or the deadline passes. `on_slice()` runs
/// after every sleep slice (recovery of dead peers' cells).
/// Waiting, before the futex: poll every POLL_PAUSE for up to SPIN, yielding the CPU every
/// YIELD_EVERY polls (about 1 us). Measured on 2 loaded cores (bench/mq_bench): yielding
/// matters (the peer often shares our CPU); sleeping at once makes every message a futex
/// round trip (0.8 M msg/s).
constexpr std::chrono::microseconds SPIN{100};
constexpr unsigned YIELD_EVERY = 4;
template <typename Attempt, typename Slice>
bool wait_for(std::uint32_t& word, std::uint32_t& waiters, bool forever, Clock::time_point deadline,
              Attempt&& attempt, Slice&& on_slice) {
    // Poll for a while, yielding often (on a loaded machine the peer may need our CPU), then
    // sleep: a futex round trip costs more than most waits while both sides are busy.
    const auto spin_end = Clock::now() + SPIN;
    for (unsigned i = 1;; ++i) {
        if (attempt()) {
            return true;
        }
        const auto until = Clock::now() + POLL_PAUSE;
        do {
            for (int k = 0; k < 8; ++k) {
                cpu_relax();
            }
        } while (Clock::now() < until);
        if (i % YIELD_EVERY == 0) {
            sched_yield();
        }
        if (i % 16 == 0) {
            const auto now = Clock::now();
            if (now >= spin_end || (!forever && now >= deadline)) {
                break;
            }
        }
    }
    for (;;) {
        // acquire: pairs with the waker's release increment.
        const std::uint32_t seen = shared(word).load(std::memory_order_acquire);
        shared(waiters).fetch_add(1, std::memory_order_relaxed);
        // seq_cst: our announcement before our re-check; pairs with the fence in Queue::wake
        // (membarrier: with the publishers' compiler fences).
        sleeper_fence();
        if (attempt()) {
            shared(waiters).fetch_sub(1, std::memory_order_relaxed);
            return true;
        }
        const auto now = Clock::now();
        if (!forever && now >= deadline) {
            shared(waiters).fetch_sub(1, std::memory_order_relaxed);
            return attempt();
        }
        auto slice = std::chrono::nanoseconds(mq::MQ_LIVENESS_INTERVAL);
        if (!forever) {
            slice = std::min<std::chrono::nanoseconds>(slice, deadline - now);
        }
        futex_wait(&word, seen, std::max(slice, std::chrono::nanoseconds(1000)));
        shared(waiters).fetch_sub(1, std::memory_order_relaxed);
        on_slice();
    }
}

}  // namespace

template <>
Queue message_queue::view<Queue>() const noexcept {
    return Queue{reinterpret_cast<MqHeader*>(m_data),
                 m_data + sizeof(MqHeader),
                 m_max_num_msg,
                 m_max_msg_size,
                 m_slot_size,
                 m_lane_capacity,
                 &m_deq0_cache,
                 m_unclaimed.get(),
                 m_fast_fence};
}

// ---------------------------------------------------------------------------------------
// Construction

message_queue::message_queue(bip::create_only_t, const char* name, size_type max_num_msg,
                             size_type max_msg_size, const bip::permissions& perm) {
    open_or_create(0, name, max_num_msg, max_msg_size, perm.get_permissions());
}

message_queue::message_queue(bip::open_or_create_t, const char* name, size_type max_num_msg,
                             size_type max_msg_size, const bip::permissions& perm) {
    open_or_create(1, name, max_num_msg, max_msg_size, perm.get_permissions());
}

message_queue::message_queue(bip::open_only_t, const char* name) {
    open_or_create(2, name, 0, 0, 0);
}

message_queue::~message_queue() = default;

void message_queue::open_or_create(int mode, const char* name_arg, size_type max_num_msg,
                                   size_type max_msg_size, unsigned perm) {
    const std::string name = shm_name(name_arg);
    const std::string op = "message_queue(" + name + ")";
    for (int attempt = 0;; ++attempt) {
        if (mode != 0) {
            // Open: allowed whoever owns it, as Boost (the creator chose its permissions);
            // the owner recorded in the header must be the file's owner.
            auto shm = SharedMemory::open(name, ShmAccess::read_write, /*allow_foreign_owner=*/true);
            if (shm) {
                m_shm = std::make_unique<SharedMemory>(std::move(*shm));
                break;
            }
            if (shm.error().errno_value != ENOENT || mode == 2) {
                throw_from(shm.error());
            }
        }
        // Create: format under a temporary name, then rename into place (an opener never
        // sees a half-formatted queue).
        if (max_num_msg > mq::MQ_MAX_NUM_MSG || max_msg_size > mq::MQ_MAX_MSG_SIZE) {
            throw_error(bip::size_error, op + ": max_num_msg " + std::to_string(max_num_msg) +
                                             " / max_msg_size " + std::to_string(max_msg_size) +
                                             " beyond the limits " + std::to_string(mq::MQ_MAX_NUM_MSG) +
                                             " / " + std::to_string(mq::MQ_MAX_MSG_SIZE));
        }
        if (auto ok = SharedMemory::validate_name(name); !ok) {
            throw_error(bip::invalid_argument, ok.error().message());
        }
        const std::uint64_t cap = std::bit_ceil(std::max<std::uint64_t>(max_num_msg, 1));
        const std::uint64_t slot = mq::mq_slot_size(max_msg_size);
        const std::uint64_t total = mq_segment_size(cap, slot);
        auto shm = SharedMemory::create_temporary(total, static_cast<mode_t>(perm & 07777));
        if (!shm) {
            throw_from(shm.error());
        }
        const std::string temporary = shm->name();
        auto* h = reinterpret_cast<MqHeader*>(shm->data());  // zero-filled by ftruncate
        h->magic = mq::MQ_MAGIC;
        h->header_size = sizeof(MqHeader);
        h->max_num_msg = max_num_msg;
        h->max_msg_size = max_msg_size;
        h->slot_size = slot;
        h->lane_capacity = cap;
        h->lanes = mq::MQ_LANES;
        h->owner_uid = static_cast<std::uint32_t>(::geteuid());
        h->creator_pid = ::getpid();
        h->creator_start_time = self_start_time();
        h->total_size = total;
        // release: the identity above is visible to whoever reads version with acquire.
        shared(h->version).store(mq::MQ_LAYOUT_VERSION, std::memory_order_release);
        if (auto renamed = shm->rename(name); !renamed) {
            (void)SharedMemory::remove(temporary);
            if (renamed.error().errno_value == EEXIST && mode == 1 && attempt < 8) {
                continue;  // created by someone else meanwhile: open theirs
            }
            throw_from(renamed.error());
        }
        m_shm = std::make_unique<SharedMemory>(std::move(*shm));
        break;
    }

    // Validate (an opened segment is untrusted; a created one passes trivially).
    const std::size_t size = m_shm->size();
    if (size < sizeof(MqHeader)) {
        throw_error(bip::corrupted_error, op + ": segment of " + std::to_string(size) +
                                              " bytes is too small to be an xproc message queue");
    }
    auto* h = reinterpret_cast<MqHeader*>(m_shm->data());
    if (h->magic != mq::MQ_MAGIC) {
        throw_error(bip::corrupted_error, op + ": not an xproc message queue (no XPROCMQ1 magic)");
    }
    std::uint32_t version = 0;
    for (int i = 0; i < 1000; ++i) {
        // acquire: pairs with the creator's release store of version.
        version = shared(h->version).load(std::memory_order_acquire);
        if (version != 0) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (version != mq::MQ_LAYOUT_VERSION) {
        throw_error(bip::corrupted_error, op + ": message queue layout version " + std::to_string(version) +
                                              ", this library reads version " +
                                              std::to_string(mq::MQ_LAYOUT_VERSION));
    }
    const std::uint64_t max_num = h->max_num_msg;
    const std::uint64_t max_size = h->max_msg_size;
    const std::uint64_t cap = h->lane_capacity;
    const std::uint64_t slot = h->slot_size;
    const std::uint64_t total = h->total_size;
    const bool geometry_ok = h->header_size == sizeof(MqHeader) && h->lanes == mq::MQ_LANES &&
                             max_num <= mq::MQ_MAX_NUM_MSG && max_size <= mq::MQ_MAX_MSG_SIZE &&
                             slot == mq::mq_slot_size(max_size) &&
                             cap == std::bit_ceil(std::max<std::uint64_t>(max_num, 1)) &&
                             total == mq_segment_size(cap, slot) && total != 0 && total <= size;
    if (!geometry_ok) {
        throw_error(bip::corrupted_error,
                    op + ": inconsistent geometry (max_num_msg " + std::to_string(max_num) +
                        ", max_msg_size " + std::to_string(max_size) + ", slot_size " + std::to_string(slot) +
                        ", lane_capacity " + std::to_string(cap) + ", total " + std::to_string(total) +
                        ", segment " + std::to_string(size) + ")");
    }
    struct stat st {};
    if (::fstat(m_shm->fd(), &st) != 0 || st.st_uid != h->owner_uid) {
        throw_error(bip::security_error, op + ": header names owner uid " + std::to_string(h->owner_uid) +
                                             ", the segment belongs to uid " + std::to_string(st.st_uid));
    }
    m_data = m_shm->data();
    m_unclaimed = std::make_unique<mq::UnclaimedCells>();
    m_fast_fence = fast_fence_available();
    m_max_num_msg = max_num;
    m_max_msg_size = max_size;
    m_slot_size = slot;
    m_lane_capacity = cap;
}

// ---------------------------------------------------------------------------------------
// Operations

message_queue::Deadline message_queue::to_deadline(const boost::posix_time::ptime& abs_time) {
    const auto now = Clock::now();
    if (abs_time.is_special()) {
        return now;  // not_a_date_time, -infinity: already passed (+infinity is handled by the callers)
    }
    const auto left = abs_time - boost::posix_time::microsec_clock::universal_time();
    return now + std::chrono::microseconds(left.total_microseconds());
}

bool message_queue::do_send(Block block, const void* buffer, size_type size, unsigned priority,
                            Deadline deadline) {
    if (size > m_max_msg_size) {
        throw bip::interprocess_exception(bip::size_error);
    }
    const Queue q = view<Queue>();
    const int lane = q.lane_for(priority);
    if (lane < 0) {
        throw_error(bip::out_of_resource_error, "xproc::message_queue: priority " + std::to_string(priority) +
                                                    " would be the " + std::to_string(mq::MQ_LANES + 1) +
                                                    "th distinct priority of this queue (at most " +
                                                    std::to_string(mq::MQ_LANES) + ")");
    }
    bool recover = false;
    auto attempt = [&]() -> bool {
        for (;;) {
            // Lane 0 is accounted by its positions (inside enqueue), the others by count.
            if (lane != 0 && !q.reserve_other()) {
                return false;
            }
            const Try t = enqueue(q, static_cast<std::uint32_t>(lane), buffer, size, recover,
                                  block != Block::non_blocking);
            if (t == Try::ok) {
                return true;
            }
            if (t == Try::empty_or_full || t == Try::full_backoff) {
                if (lane != 0 && t == Try::empty_or_full) {
                    q.unreserve();
                }
                return false;
            }
            // retry: our cell was given up (and its unit returned); send again.
        }
    };
    if (attempt()) {
        return true;
    }
    if (block == Block::non_blocking) {
        recover = true;  // a dead receiver may hold the cell we need
        return attempt();
    }
    std::uint64_t last_count = UINT64_MAX;
    std::uint64_t last_occupancy = UINT64_MAX;
    return wait_for(q.h->send_word, q.h->send_waiters, block == Block::blocking, deadline, attempt, [&] {
        recover = true;
        // Leaked units (a sender killed between reserving and claiming): when nothing
        // moved for a whole slice and the lanes hold fewer messages than counted, recount.
        const std::uint64_t c = shared(q.h->count).load(std::memory_order_relaxed);
        const std::uint64_t occ = lane_occupancy(q);
        if (c == last_count && occ == last_occupancy && occ < c) {
            std::uint64_t expected = c;
            if (shared(q.h->count).compare_exchange_strong(expected, occ, std::memory_order_relaxed)) {
                shared(q.h->recounted).fetch_add(c - occ, std::memory_order_relaxed);  // relaxed: statistics
            }
        }
        last_count = c;
        last_occupancy = occ;
    });
}

bool message_queue::do_receive(Block block, void* buffer, size_type size, size_type& recvd,
                               unsigned& priority, Deadline deadline) {
    if (size < m_max_msg_size) {
        throw bip::interprocess_exception(bip::size_error);
    }
    const Queue q = view<Queue>();
    bool recover = false;
    auto attempt = [&]() -> bool { return try_receive_once(q, buffer, recvd, priority, recover) == Try::ok; };
    if (attempt()) {
        return true;
    }
    if (block == Block::non_blocking) {
        recover = true;  // a dead sender's unpublished cell may hide messages behind it
        return attempt();
    }
    return wait_for(q.h->recv_word, q.h->recv_waiters, block == Block::blocking, deadline, attempt,
                    [&] { recover = true; });
}

void message_queue::send(const void* buffer, size_type buffer_size, unsigned int priority) {
    do_send(Block::blocking, buffer, buffer_size, priority, {});
}

bool message_queue::try_send(const void* buffer, size_type buffer_size, unsigned int priority) {
    return do_send(Block::non_blocking, buffer, buffer_size, priority, {});
}

bool message_queue::timed_send(const void* buffer, size_type buffer_size, unsigned int priority,
                               const boost::posix_time::ptime& abs_time) {
    if (abs_time.is_pos_infinity()) {
        send(buffer, buffer_size, priority);
        return true;
    }
    return do_send(Block::timed, buffer, buffer_size, priority, to_deadline(abs_time));
}

void message_queue::receive(void* buffer, size_type buffer_size, size_type& recvd_size,
                            unsigned int& priority) {
    do_receive(Block::blocking, buffer, buffer_size, recvd_size, priority, {});
}

bool message_queue::try_receive(void* buffer, size_type buffer_size, size_type& recvd_size,
                                unsigned int& priority) {
    return do_receive(Block::non_blocking, buffer, buffer_size, recvd_size, priority, {});
}

bool message_queue::timed_receive(void* buffer, size_type buffer_size, size_type& recvd_size,
                                  unsigned int& priority, const boost::posix_time::ptime& abs_time) {
    if (abs_time.is_pos_infinity()) {
        receive(buffer, buffer_size, recvd_size, priority);
        return true;
    }
    return do_receive(Block::timed, buffer, buffer_size, recvd_size, priority, to_deadline(abs_time));
}

message_queue::size_type message_queue::get_num_msg() const noexcept {
    auto* h = reinterpret_cast<MqHeader*>(m_data);
    // relaxed: a snapshot. Lane 0 by its positions (dequeue first: never negative), the
    // other lanes by count.
    const std::uint64_t d = shared(h->lane[0].dequeue_pos).load(std::memory_order_relaxed);
    const std::uint64_t e = shared(h->lane[0].enqueue_pos).load(std::memory_order_relaxed);
    const std::uint64_t c = shared(h->count).load(std::memory_order_relaxed) + (e > d ? e - d : 0);
    return static_cast<size_type>(std::min(c, m_max_num_msg));
}

bool message_queue::remove(const char* name) {
    return SharedMemory::remove(shm_name(name)).has_value();
}

mq::MqStats message_queue::stats() const noexcept {
    auto* h = reinterpret_cast<MqHeader*>(m_data);
    mq::MqStats s;
    // relaxed: statistics.
    s.skipped = shared(h->skipped).load(std::memory_order_relaxed);
    s.lost = shared(h->lost).load(std::memory_order_relaxed);
    s.recounted = shared(h->recounted).load(std::memory_order_relaxed);
    s.corrupt = shared(h->corrupt).load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < mq::MQ_LANES; ++i) {
        if (shared(h->lane_tag[i]).load(std::memory_order_relaxed) != 0) {
            ++s.lanes_bound;
        }
    }
    return s;
}

}  // namespace xproc
