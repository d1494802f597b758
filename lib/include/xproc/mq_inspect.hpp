// SPDX-License-Identifier: MIT
#pragma once
/// @file mq_inspect.hpp
/// Reading an `xproc::message_queue` segment without taking part in it: the identity test
/// (`is_message_queue`), a snapshot of its header (`snapshot_message_queue`, for
/// `xring stat`) and an offline check of the whole segment (`check_message_queue`, for
/// `xring check`). The segment's layout is in message_queue.hpp; this header does not
/// include it (nor Boost): it gives plain values.
///
/// The segment is untrusted: every field is read once (std::atomic_ref, relaxed: a
/// snapshot, fields one by one, never as a whole), validated as message_queue's open
/// validates it, and only those copies decide which memory is read. Nothing is written.
///
/// Thread safety: the functions may run while other processes use the queue; what they
/// return is then a snapshot that may mix moments (a live queue can show a transient
/// problem in check_message_queue, such as a cell being written).

#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "xproc/error.hpp"
#include "xproc/ring.hpp"  // PeerInfo, PeerState

namespace xproc {

/// One lane bound to a priority, as a snapshot.
struct MqLaneSnapshot {
    std::uint32_t index = 0;        ///< lane index (lanes are bound in index order)
    std::uint64_t priority = 0;     ///< the lane's tag - 1 (an unsigned int in a sound queue)
    std::uint64_t enqueue_pos = 0;  ///< positions claimed by senders so far
    std::uint64_t dequeue_pos = 0;  ///< positions claimed by receivers so far
    std::uint64_t messages = 0;     ///< enqueue_pos - dequeue_pos (0 if dequeue_pos is ahead)
};

/// A snapshot of a message queue's header (fields are read one by one).
struct MqSnapshot {
    std::uint32_t version = 0;  ///< layout version (== MQ_LAYOUT_VERSION)
    std::uint64_t max_num_msg = 0;
    std::uint64_t max_msg_size = 0;
    std::uint64_t slot_size = 0;      ///< bytes per cell
    std::uint64_t lane_capacity = 0;  ///< cells per lane
    std::uint32_t lane_count = 0;     ///< lanes in the layout (MQ_LANES)
    std::uint64_t total_size = 0;     ///< bytes the queue uses (header + cells)
    std::uint32_t owner_uid = 0;
    PeerInfo creator;  ///< pid, start time and whether it still runs
    /// The header's `count`: messages reserved or stored in lanes 1..15.
    std::uint64_t count = 0;
    /// Messages stored or being sent, as get_num_msg() counts them: lane 0 by its
    /// positions plus `count`, at most max_num_msg.
    std::uint64_t messages = 0;
    /// Lanes bound to a priority, in index order, up to the first free one (the lanes
    /// receivers look at).
    std::vector<MqLaneSnapshot> lanes;
    std::uint32_t recv_waiters = 0;  ///< receivers announced asleep
    std::uint32_t send_waiters = 0;  ///< senders announced asleep
    std::uint64_t skipped = 0;       ///< cells given up by receivers (dead or stuck senders)
    std::uint64_t lost = 0;          ///< cells released by senders for dead receivers
    std::uint64_t recounted = 0;     ///< capacity units recovered by a recount
    std::uint64_t corrupt = 0;       ///< cells with an invalid length, dropped
    /// Sum of the dequeue positions of the bound lanes: messages taken since creation
    /// (including skipped cells), for a receive rate between two snapshots.
    std::uint64_t dequeued = 0;
};

/// Whether `segment` starts with the message queue magic "XPROCMQ1" (mq::MQ_MAGIC), of any
/// layout version. False for a segment shorter than the magic.
bool is_message_queue(std::span<const std::byte> segment) noexcept;

/// Reads the header of a queue segment, validated as message_queue's open validates it.
/// `segment` must be aligned to 128 bytes (a mapping is). Errors:
/// - corrupt: too small, no magic, another layout version (both versions in the detail),
///   inconsistent geometry (which field, and the values);
/// - os/EAGAIN: layout version 0, the queue is still being created;
/// - invalid_argument: `segment` not aligned.
Result<MqSnapshot> snapshot_message_queue(std::span<const std::byte> segment);

/// Checks a whole queue segment offline: the geometry, the lane tags (bound in index order,
/// no duplicate priority), every lane's positions, `count`, and every cell of every bound
/// lane (its sequence against the lane's positions, the length of a published message,
/// claims held by processes that died). Returns the list of problems, empty when the
/// segment is sound; an error only when the memory is not a queue this library can read
/// (the errors of snapshot_message_queue other than geometry, which is a problem here).
Result<std::vector<std::string>> check_message_queue(std::span<const std::byte> segment);

}  // namespace xproc
