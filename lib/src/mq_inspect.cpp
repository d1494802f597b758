// SPDX-License-Identifier: MIT
// Reading an xproc::message_queue segment without taking part in it: snapshot_message_queue
// (for `xring stat`) and check_message_queue (for `xring check`). The layout and the
// protocol are in message_queue.hpp; the validation mirrors message_queue's open.
#include "xproc/mq_inspect.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include "shared_field.hpp"
#include "xproc/message_queue.hpp"

namespace xproc {

using mq::MqCell;
using mq::MqHeader;

namespace {

using detail::snapshot;

Error corrupt(std::string detail) {
    return Error::make(ErrorKind::corrupt, "message queue inspect", std::move(detail));
}

using mq::mq_claim_matches;
using mq::mq_claim_pid;

using mq::mq_segment_size;

/// The identity and geometry fields of a header, each read once: another process may change
/// the segment while we look, so every decision and every memory access uses these copies.
struct Identity {
    std::uint32_t version;
    std::uint32_t header_size;
    std::uint64_t max_num_msg;
    std::uint64_t max_msg_size;
    std::uint64_t slot_size;
    std::uint64_t lane_capacity;
    std::uint32_t lanes;
    std::uint32_t owner_uid;
    std::int32_t creator_pid;
    std::uint32_t flags;
    std::uint64_t creator_start_time;
    std::uint64_t total_size;
};

/// Errors for "not a queue at all" (too small, no magic), "not ready" (version 0) and
/// "another layout version"; otherwise the identity, geometry not yet judged.
Result<Identity> identity_of(std::span<const std::byte> segment) {
    if (segment.size() < sizeof(MqHeader)) {
        return fail(corrupt("segment of " + std::to_string(segment.size()) +
                            " bytes is smaller than a message queue header (" +
                            std::to_string(sizeof(MqHeader)) + " bytes)"));
    }
    if (reinterpret_cast<std::uintptr_t>(segment.data()) % alignof(MqHeader) != 0) {
        return fail(Error::make(ErrorKind::invalid_argument, "message queue inspect",
                                "memory must be " + std::to_string(alignof(MqHeader)) + "-byte aligned"));
    }
    const auto& h = *reinterpret_cast<const MqHeader*>(segment.data());
    if (snapshot(h.magic) != mq::MQ_MAGIC) {
        return fail(corrupt("not an xproc message queue (no XPROCMQ1 magic at offset 0)"));
    }
    Identity id{};
    // acquire: pairs with the creator's release store of version; the identity fields read
    // below were written before it.
    id.version = std::atomic_ref<const std::uint32_t>(h.version).load(std::memory_order_acquire);
    if (id.version == 0) {
        return fail(Error::from_errno(EAGAIN, "message queue inspect")
                        .with_hint("the queue is being created; retry shortly"));
    }
    if (id.version != mq::MQ_LAYOUT_VERSION) {
        return fail(corrupt("message queue layout version " + std::to_string(id.version) +
                            ", this library reads version " + std::to_string(mq::MQ_LAYOUT_VERSION)));
    }
    id.header_size = snapshot(h.header_size);
    id.max_num_msg = snapshot(h.max_num_msg);
    id.max_msg_size = snapshot(h.max_msg_size);
    id.slot_size = snapshot(h.slot_size);
    id.lane_capacity = snapshot(h.lane_capacity);
    id.lanes = snapshot(h.lanes);
    id.owner_uid = snapshot(h.owner_uid);
    id.creator_pid = snapshot(h.creator_pid);
    id.flags = snapshot(h.flags);
    id.creator_start_time = snapshot(h.creator_start_time);
    id.total_size = snapshot(h.total_size);
    return id;
}

/// The geometry rules of message_queue's open, one problem per rule broken (in the order
/// open tests them: later rules are only judged on what the earlier ones admitted).
std::vector<std::string> geometry_problems(const Identity& id, std::size_t segment_bytes) {
    std::vector<std::string> problems;
    if (id.header_size != sizeof(MqHeader)) {
        problems.push_back("header_size is " + std::to_string(id.header_size) + ", expected " +
                           std::to_string(sizeof(MqHeader)));
    }
    if (id.lanes != mq::MQ_LANES) {
        problems.push_back("lanes is " + std::to_string(id.lanes) + ", expected " +
                           std::to_string(mq::MQ_LANES));
    }
    const bool num_ok = id.max_num_msg <= mq::MQ_MAX_NUM_MSG;
    if (!num_ok) {
        problems.push_back("max_num_msg " + std::to_string(id.max_num_msg) + " is beyond the limit " +
                           std::to_string(mq::MQ_MAX_NUM_MSG));
    }
    const bool size_ok = id.max_msg_size <= mq::MQ_MAX_MSG_SIZE;
    if (!size_ok) {
        problems.push_back("max_msg_size " + std::to_string(id.max_msg_size) + " is beyond the limit " +
                           std::to_string(mq::MQ_MAX_MSG_SIZE));
    }
    if (size_ok && id.slot_size != mq::mq_slot_size(id.max_msg_size)) {
        problems.push_back("slot_size " + std::to_string(id.slot_size) + " does not match max_msg_size " +
                           std::to_string(id.max_msg_size) + " (expected " +
                           std::to_string(mq::mq_slot_size(id.max_msg_size)) + ")");
    }
    const std::uint64_t expected_cap = num_ok ? std::bit_ceil(std::max<std::uint64_t>(id.max_num_msg, 1)) : 0;
    if (num_ok && id.lane_capacity != expected_cap) {
        problems.push_back("lane_capacity " + std::to_string(id.lane_capacity) +
                           " does not match max_num_msg " + std::to_string(id.max_num_msg) + " (expected " +
                           std::to_string(expected_cap) + ")");
    }
    if (problems.empty()) {
        const std::uint64_t expected_total = mq_segment_size(id.lane_capacity, id.slot_size);
        if (id.total_size != expected_total || id.total_size == 0) {
            problems.push_back("total_size " + std::to_string(id.total_size) +
                               " does not match the geometry" + " (expected " +
                               std::to_string(expected_total) + ")");
        } else if (id.total_size > segment_bytes) {
            problems.push_back("total_size " + std::to_string(id.total_size) + " runs past the end of the " +
                               std::to_string(segment_bytes) + "-byte segment");
        }
    }
    return problems;
}

std::string geometry_text(const Identity& id, std::size_t segment_bytes) {
    return "max_num_msg " + std::to_string(id.max_num_msg) + ", max_msg_size " +
           std::to_string(id.max_msg_size) + ", slot_size " + std::to_string(id.slot_size) +
           ", lane_capacity " + std::to_string(id.lane_capacity) + ", total " +
           std::to_string(id.total_size) + ", segment " + std::to_string(segment_bytes);
}

/// Identity plus the geometry rules: what snapshot_message_queue accepts.
Result<Identity> header_of(std::span<const std::byte> segment) {
    auto ir = identity_of(segment);
    if (!ir) {
        return ir;
    }
    if (const auto problems = geometry_problems(*ir, segment.size()); !problems.empty()) {
        return fail(corrupt("inconsistent geometry: " + problems.front() + " (" +
                            geometry_text(*ir, segment.size()) + ")"));
    }
    return ir;
}

PeerInfo peer_info(pid_t pid, std::uint64_t start) {
    PeerInfo p;
    p.pid = pid;
    p.start_time = start;
    p.state = peer_state(pid, start);
    return p;
}

}  // namespace

bool is_message_queue(std::span<const std::byte> segment) noexcept {
    if (segment.size() < sizeof(std::uint64_t)) {
        return false;
    }
    std::uint64_t magic = 0;
    std::memcpy(&magic, segment.data(), sizeof magic);  // written once, before the name exists
    return magic == mq::MQ_MAGIC;
}

Result<MqSnapshot> snapshot_message_queue(std::span<const std::byte> segment) {
    auto hr = header_of(segment);
    if (!hr) {
        return fail(std::move(hr.error()));
    }
    const Identity& id = *hr;
    const auto& h = *reinterpret_cast<const MqHeader*>(segment.data());
    MqSnapshot s;
    s.version = id.version;
    s.max_num_msg = id.max_num_msg;
    s.max_msg_size = id.max_msg_size;
    s.slot_size = id.slot_size;
    s.lane_capacity = id.lane_capacity;
    s.lane_count = id.lanes;
    s.total_size = id.total_size;
    s.owner_uid = id.owner_uid;
    s.creator = peer_info(id.creator_pid, id.creator_start_time);
    // Dequeue before enqueue (as get_num_msg): positions only grow, so a sound lane never
    // shows a negative backlog.
    const std::uint64_t d0 = snapshot(h.lane[0].dequeue_pos);
    const std::uint64_t e0 = snapshot(h.lane[0].enqueue_pos);
    s.count = snapshot(h.count);
    s.messages = std::min(s.count + (e0 > d0 ? e0 - d0 : 0), id.max_num_msg);
    for (std::uint32_t i = 0; i < mq::MQ_LANES; ++i) {
        const std::uint64_t tag = snapshot(h.lane_tag[i]);
        if (tag == 0) {
            break;  // lanes are bound in index order; receivers stop here too
        }
        MqLaneSnapshot lane;
        lane.index = i;
        lane.priority = tag - 1;
        lane.dequeue_pos = snapshot(h.lane[i].dequeue_pos);
        lane.enqueue_pos = snapshot(h.lane[i].enqueue_pos);
        lane.messages = lane.enqueue_pos > lane.dequeue_pos ? lane.enqueue_pos - lane.dequeue_pos : 0;
        s.dequeued += lane.dequeue_pos;
        s.lanes.push_back(lane);
    }
    s.recv_waiters = snapshot(h.recv_waiters);
    s.send_waiters = snapshot(h.send_waiters);
    s.skipped = snapshot(h.skipped);
    s.lost = snapshot(h.lost);
    s.recounted = snapshot(h.recounted);
    s.corrupt = snapshot(h.corrupt);
    return s;
}

namespace {

/// At most this many cell problems are listed per lane (random bytes would give millions).
constexpr std::size_t MAX_CELL_PROBLEMS = 8;

struct LaneView {
    std::uint32_t index;
    std::uint64_t priority;
    std::uint64_t dequeue_pos;
    std::uint64_t enqueue_pos;
};

std::string lane_name(const LaneView& lane) {
    return "lane " + std::to_string(lane.index) + " (priority " + std::to_string(lane.priority) + ")";
}

/// Every cell of one lane against the lane's positions: the window [dequeue, enqueue) holds
/// messages being sent (seq == pos) or published (seq == pos + 1); the other cells are free
/// for their next turn (seq == pos) or still being received from the previous one
/// (seq == pos - capacity + 1).
void check_cells(const MqHeader& h, const std::byte* cells, const Identity& id, const LaneView& lane,
                 std::vector<std::string>& problems) {
    const std::uint64_t cap = id.lane_capacity;
    std::size_t reported = 0;
    std::uint64_t unreported = 0;
    auto report = [&](std::uint64_t pos, const std::string& what) {
        // A live queue moves while we look: a lane whose positions changed is not judged.
        if (snapshot(h.lane[lane.index].dequeue_pos) != lane.dequeue_pos ||
            snapshot(h.lane[lane.index].enqueue_pos) != lane.enqueue_pos) {
            return;
        }
        if (reported == MAX_CELL_PROBLEMS) {
            ++unreported;
            return;
        }
        ++reported;
        problems.push_back(lane_name(lane) + " position " + std::to_string(pos) + " (cell " +
                           std::to_string(pos & (cap - 1)) + "): " + what);
    };
    for (std::uint64_t k = 0; k < cap; ++k) {
        const std::uint64_t pos = lane.dequeue_pos + k;
        const std::uint64_t index = std::uint64_t{lane.index} * cap + (pos & (cap - 1));
        const auto& c = *reinterpret_cast<const MqCell*>(cells + index * id.slot_size);
        // acquire: pairs with the release CAS that published (sender) or released
        // (receiver) the cell: the length and claim read after it are that turn's.
        const std::uint64_t stored =
            std::atomic_ref<const std::uint64_t>(c.seq).load(std::memory_order_acquire);
        const bool skipped = (stored & mq::MQ_SEQ_SKIPPED) != 0;
        const std::uint64_t seq = (stored & ~mq::MQ_SEQ_SKIPPED) + (pos & (cap - 1));
        const std::uint64_t claim = snapshot(c.claim);
        const auto dead = [&](std::uint64_t turn, bool receiver) {
            return mq_claim_matches(claim, turn, receiver) &&
                   peer_state(mq_claim_pid(claim), snapshot(c.start_time)) == PeerState::dead;
        };
        if (pos < lane.enqueue_pos) {
            if (seq == pos + 1) {
                const std::uint32_t length = snapshot(c.length);
                if (!skipped && length > id.max_msg_size) {
                    report(pos, "published message of " + std::to_string(length) +
                                    " bytes, more than max_msg_size " + std::to_string(id.max_msg_size) +
                                    " (a receiver drops it as corrupt)");
                }
            } else if (seq == pos && !skipped) {
                if (dead(pos, false)) {
                    report(pos, "claimed by sender pid " + std::to_string(mq_claim_pid(claim)) +
                                    ", which died before publishing it (a receiver skips it)");
                }
            } else {
                report(pos, "sequence " + std::to_string(seq) + (skipped ? " (skipped)" : "") +
                                " does not fit a message in the lane (expected " + std::to_string(pos) +
                                " being sent or " + std::to_string(pos + 1) + " published)");
            }
            continue;
        }
        if (seq == pos && !skipped) {
            continue;  // free for its next turn
        }
        if (pos >= cap && seq == pos - cap + 1) {
            if (dead(pos - cap, true)) {
                report(pos - cap,
                       "claimed by receiver pid " + std::to_string(mq_claim_pid(claim)) +
                           ", which died while receiving it (a sender releases it, counted as lost)");
            }
            continue;
        }
        report(pos, "sequence " + std::to_string(seq) + (skipped ? " (skipped)" : "") +
                        " does not fit a free cell (expected " + std::to_string(pos) +
                        (pos >= cap ? ", or " + std::to_string(pos - cap + 1) + " being received"
                                    : std::string()) +
                        ")");
    }
    if (unreported != 0) {
        problems.push_back(lane_name(lane) + ": " + std::to_string(unreported) + " more cell" +
                           (unreported == 1 ? "" : "s") + " with problems not listed");
    }
}

}  // namespace

Result<std::vector<std::string>> check_message_queue(std::span<const std::byte> segment) {
    // Only what makes the memory "not a queue at all" (or unreadable by this version) is an
    // error; every other inconsistency is a problem in the list.
    auto ir = identity_of(segment);
    if (!ir) {
        return fail(std::move(ir.error()));
    }
    const Identity& id = *ir;
    const auto& h = *reinterpret_cast<const MqHeader*>(segment.data());
    std::vector<std::string> problems;
    for (const std::string& p : geometry_problems(id, segment.size())) {
        problems.push_back("header: " + p);
    }
    const bool walkable = problems.empty();
    if (id.flags != 0) {
        problems.push_back("header: flags is " + std::to_string(id.flags) + ", expected 0");
    }
    if (id.creator_pid < 0) {
        problems.push_back("header: creator pid " + std::to_string(id.creator_pid) + " is negative");
    }
    if (const std::uint64_t count = snapshot(h.count); count > id.max_num_msg) {
        problems.push_back("count: " + std::to_string(count) + " messages counted in lanes 1.." +
                           std::to_string(mq::MQ_LANES - 1) + ", more than max_num_msg " +
                           std::to_string(id.max_num_msg));
    }

    // Lane tags: bound in index order, one lane per priority; free lanes unused.
    std::vector<LaneView> bound;
    int first_free = -1;
    for (std::uint32_t i = 0; i < mq::MQ_LANES; ++i) {
        const std::uint64_t tag = snapshot(h.lane_tag[i]);
        LaneView lane{i, tag - 1, snapshot(h.lane[i].dequeue_pos), snapshot(h.lane[i].enqueue_pos)};
        const std::string where = "lane " + std::to_string(i) + ": ";
        if (tag == 0) {
            if (first_free < 0) {
                first_free = static_cast<int>(i);
            }
            if (lane.dequeue_pos != 0 || lane.enqueue_pos != 0) {
                problems.push_back(where + "free (no priority) but its positions are enqueue " +
                                   std::to_string(lane.enqueue_pos) + ", dequeue " +
                                   std::to_string(lane.dequeue_pos));
            }
            continue;
        }
        if (tag - 1 > UINT_MAX) {
            problems.push_back(where + "tag " + std::to_string(tag) + " is not an unsigned int priority + 1");
        }
        if (first_free >= 0) {
            problems.push_back(where + "bound to priority " + std::to_string(tag - 1) +
                               " after the free lane " + std::to_string(first_free) +
                               " (receivers never look at it)");
        }
        for (const LaneView& other : bound) {
            if (other.priority == lane.priority) {
                problems.push_back(where + "priority " + std::to_string(lane.priority) +
                                   " is also bound to lane " + std::to_string(other.index));
            }
        }
        bound.push_back(lane);
    }

    for (const LaneView& lane : bound) {
        const std::string where = lane_name(lane) + ": ";
        if (lane.dequeue_pos > lane.enqueue_pos) {
            problems.push_back(where + "dequeue position " + std::to_string(lane.dequeue_pos) +
                               " is past enqueue position " + std::to_string(lane.enqueue_pos));
            continue;
        }
        if (walkable && lane.enqueue_pos - lane.dequeue_pos > id.lane_capacity) {
            problems.push_back(where + std::to_string(lane.enqueue_pos - lane.dequeue_pos) +
                               " messages (enqueue " + std::to_string(lane.enqueue_pos) + ", dequeue " +
                               std::to_string(lane.dequeue_pos) + "), more than the lane capacity " +
                               std::to_string(id.lane_capacity));
            continue;
        }
        if (walkable) {
            check_cells(h, segment.data() + sizeof(MqHeader), id, lane, problems);
        }
    }
    return problems;
}

}  // namespace xproc
