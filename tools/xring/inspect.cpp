// SPDX-License-Identifier: MIT
// xring stat / xring check, of rings and of xproc::message_queue segments (told apart by
// their magic).

#include "inspect.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "common.hpp"
#include "xproc/mq_inspect.hpp"
#include "xproc/ring_segment.hpp"
#include "xproc/shm.hpp"

namespace xring {

namespace {

using xproc::PeerInfo;
using xproc::PeerState;
using xproc::RingKind;
using xproc::RingSnapshot;

std::uint64_t fill_of(const RingSnapshot& s) {
    if (s.kind != RingKind::broadcast) {
        return s.tail - s.head;
    }
    // Broadcast readers keep their own positions: the backlog of the slowest one.
    std::uint64_t fill = 0;
    for (const PeerInfo& p : s.slots) {
        if (p.position <= s.tail) {
            fill = std::max(fill, std::min(s.tail - p.position, s.capacity));
        }
    }
    return fill;
}

double percent(std::uint64_t part, std::uint64_t whole) {
    return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

std::string peer_text(const PeerInfo& p) {
    if (p.pid == 0) {
        return "none";
    }
    return "pid " + std::to_string(p.pid) + " (" + std::string(xproc::to_string(p.state)) + ")";
}

std::string asleep_text(const RingSnapshot& s) {
    std::string out;
    auto add = [&](const char* what) { out += (out.empty() ? "" : ", ") + std::string(what); };
    if ((s.consumer_waiting & xproc::ring::WAIT_SLEEPING) != 0) {
        add(s.kind == RingKind::broadcast ? "readers (futex)" : "consumer (futex)");
    }
    if ((s.consumer_waiting & xproc::ring::WAIT_DOORBELL) != 0) {
        add("consumer (doorbell)");
    }
    if ((s.producer_waiting & xproc::ring::WAIT_SLEEPING) != 0) {
        add(s.kind == RingKind::mpsc ? "producers (futex)" : "producer (futex)");
    }
    return out.empty() ? "nobody" : out;
}

void line(std::string& out, std::string_view key, const std::string& value) {
    out += "  ";
    out += key;
    out.append(key.size() < 19 ? 19 - key.size() : 1, ' ');
    out += value;
    out += '\n';
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string json_number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
}

std::string json_peer(const PeerInfo& p) {
    return "{\"pid\": " + std::to_string(p.pid) + ", \"state\": \"" + std::string(xproc::to_string(p.state)) +
           "\"}";
}

}  // namespace

std::string format_stat_text(const std::string& name, const RingSnapshot& s, const Rates* rates) {
    std::string out = "ring " + name + "\n";
    const std::uint64_t fill = fill_of(s);
    line(out, "kind", std::string(kind_name(s.kind)));
    line(out, "capacity",
         std::to_string(s.capacity) + " bytes (" + human_bytes(static_cast<double>(s.capacity)) + ")");
    line(out, "max record", std::to_string(s.max_record) + " bytes");
    line(out, "creator", "pid " + std::to_string(s.creator_pid));
    line(out, "head", s.kind == RingKind::broadcast ? "- (each reader has its own)" : std::to_string(s.head));
    line(out, "tail", std::to_string(s.tail));
    line(out, "fill",
         std::to_string(fill) + " bytes (" + fmt("%.1f", percent(fill, s.capacity)) + "%)" +
             (s.kind == RingKind::broadcast ? " behind the slowest reader" : ""));
    if (s.kind == RingKind::spsc) {
        line(out, "high-water",
             std::to_string(s.high_water) + " bytes (" + fmt("%.1f", percent(s.high_water, s.capacity)) +
                 "%)");
    }
    line(out, "messages", std::to_string(s.messages));
    line(out, "bytes", std::to_string(s.bytes) + " (" + human_bytes(static_cast<double>(s.bytes)) + ")");
    if (rates != nullptr) {
        line(out, "rate",
             fmt("%.0f", rates->messages_per_second) + " msg/s, " + human_bytes(rates->bytes_per_second) +
                 "/s (over " + fmt("%.2f", rates->seconds) + " s)");
    }
    line(out, "full waits", std::to_string(s.full_waits) + " (producer waited for room)");
    line(out, "empty waits", std::to_string(s.empty_waits) + " (consumer waited for data)");
    line(out, "producer wake-ups", std::to_string(s.producer_wakeups) + " (of a sleeping consumer)");
    line(out, "consumer wake-ups", std::to_string(s.consumer_wakeups) + " (of a sleeping producer)");
    line(out, "dropped", std::to_string(s.dropped) + " (messages a producer gave up on)");
    line(out, "skipped", std::to_string(s.skipped) + " (records left half-written by a dead producer)");
    line(out, "lapped", std::to_string(s.lapped) + " (times a broadcast reader was overrun)");
    line(out, "asleep", asleep_text(s));
    if (s.kind != RingKind::mpsc) {
        line(out, s.kind == RingKind::broadcast ? "writer" : "producer", peer_text(s.producer));
    }
    if (s.kind != RingKind::broadcast) {
        line(out, "consumer", peer_text(s.consumer));
    }
    if (s.kind != RingKind::spsc) {
        const char* role = s.kind == RingKind::mpsc ? "producer" : "reader";
        if (s.slots.empty()) {
            line(out, s.kind == RingKind::mpsc ? "producers" : "readers", "none");
        }
        for (const PeerInfo& p : s.slots) {
            std::string v = peer_text(p) + ", " + std::to_string(p.messages) + " messages";
            if (s.kind == RingKind::broadcast) {
                v += ", position " + std::to_string(p.position);
                if (p.position <= s.tail) {
                    v += " (" + std::to_string(s.tail - p.position) + " bytes behind)";
                }
                v += ", lapped " + std::to_string(p.lapped) + " times";
            }
            line(out, role, v);
        }
    }
    return out;
}

std::string format_stat_json(const std::string& name, const RingSnapshot& s, const Rates* rates,
                             double unix_time) {
    const std::uint64_t fill = fill_of(s);
    std::string o = "{";
    auto num = [&](const char* key, std::uint64_t v) {
        o += "\"" + std::string(key) + "\": " + std::to_string(v) + ", ";
    };
    o += "\"ring\": " + json_string(name) + ", ";
    o += "\"time\": " + json_number(unix_time) + ", ";
    o += "\"kind\": \"" + std::string(kind_name(s.kind)) + "\", ";
    num("capacity", s.capacity);
    num("max_record", s.max_record);
    num("creator_pid", static_cast<std::uint64_t>(s.creator_pid));
    if (s.kind == RingKind::broadcast) {
        o += "\"head\": null, ";
    } else {
        num("head", s.head);
    }
    num("tail", s.tail);
    num("fill_bytes", fill);
    o += "\"fill_percent\": " + json_number(percent(fill, s.capacity)) + ", ";
    num("high_water", s.high_water);
    num("messages", s.messages);
    num("bytes", s.bytes);
    num("full_waits", s.full_waits);
    num("empty_waits", s.empty_waits);
    num("producer_wakeups", s.producer_wakeups);
    num("consumer_wakeups", s.consumer_wakeups);
    num("dropped", s.dropped);
    num("skipped", s.skipped);
    num("lapped", s.lapped);
    o += "\"consumer_asleep\": " +
         std::string((s.consumer_waiting & xproc::ring::WAIT_SLEEPING) != 0 ? "true" : "false") + ", ";
    o += "\"producer_asleep\": " +
         std::string((s.producer_waiting & xproc::ring::WAIT_SLEEPING) != 0 ? "true" : "false") + ", ";
    o += "\"producer\": " + (s.kind == RingKind::mpsc ? std::string("null") : json_peer(s.producer)) + ", ";
    o += "\"consumer\": " + (s.kind == RingKind::broadcast ? std::string("null") : json_peer(s.consumer)) +
         ", ";
    o += "\"peers\": [";
    bool first = true;
    for (const PeerInfo& p : s.slots) {
        o += first ? "" : ", ";
        first = false;
        o += "{\"role\": \"" + std::string(s.kind == RingKind::mpsc ? "producer" : "reader") +
             "\", \"pid\": " + std::to_string(p.pid) + ", \"state\": \"" +
             std::string(xproc::to_string(p.state)) + "\", \"messages\": " + std::to_string(p.messages);
        if (s.kind == RingKind::broadcast) {
            o += ", \"position\": " + std::to_string(p.position) +
                 ", \"behind\": " + std::to_string(p.position <= s.tail ? s.tail - p.position : 0) +
                 ", \"lapped\": " + std::to_string(p.lapped);
        }
        o += "}";
    }
    o += "], \"rates\": ";
    if (rates == nullptr) {
        o += "null";
    } else {
        o += "{\"seconds\": " + json_number(rates->seconds) +
             ", \"messages_per_second\": " + json_number(rates->messages_per_second) +
             ", \"bytes_per_second\": " + json_number(rates->bytes_per_second) + "}";
    }
    o += "}\n";
    return o;
}

namespace {

std::string plural(std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

/// Bound lanes in the order receivers take from them: highest priority first.
std::vector<xproc::MqLaneSnapshot> by_priority(const xproc::MqSnapshot& s) {
    std::vector<xproc::MqLaneSnapshot> lanes = s.lanes;
    std::stable_sort(lanes.begin(), lanes.end(),
                     [](const auto& a, const auto& b) { return a.priority > b.priority; });
    return lanes;
}

std::string format_queue_text(const std::string& name, const xproc::MqSnapshot& s, const Rates* rates) {
    std::string out = "message queue " + name + "\n";
    line(out, "kind", "message queue (xproc::message_queue, many-to-many)");
    line(out, "max messages", std::to_string(s.max_num_msg));
    line(out, "max message size", std::to_string(s.max_msg_size) + " bytes");
    line(out, "slot size",
         std::to_string(s.slot_size) + " bytes (" + std::to_string(s.lane_capacity) + " per lane, " +
             human_bytes(static_cast<double>(s.total_size)) + " in all)");
    line(out, "lanes bound", std::to_string(s.lanes.size()) + " of " + std::to_string(s.lane_count));
    line(out, "messages",
         std::to_string(s.messages) + " (" + fmt("%.1f", percent(s.messages, s.max_num_msg)) + "%)");
    for (const xproc::MqLaneSnapshot& lane : by_priority(s)) {
        line(out, "lane " + std::to_string(lane.index),
             "priority " + std::to_string(lane.priority) + ": " +
                 plural(lane.messages, "message", "messages") + " (enqueue " +
                 std::to_string(lane.enqueue_pos) + ", dequeue " + std::to_string(lane.dequeue_pos) + ")");
    }
    line(out, "received", std::to_string(s.dequeued) + " (messages taken since creation, skipped ones too)");
    if (rates != nullptr) {
        line(out, "rate",
             fmt("%.0f", rates->messages_per_second) + " msg/s received (over " +
                 fmt("%.2f", rates->seconds) + " s)");
    }
    line(out, "waiting receivers", std::to_string(s.recv_waiters) + " (asleep on an empty queue)");
    line(out, "waiting senders", std::to_string(s.send_waiters) + " (asleep on a full queue)");
    line(out, "skipped",
         std::to_string(s.skipped) + " (messages dropped: their sender died before publishing)");
    line(out, "lost", std::to_string(s.lost) + " (messages lost: their receiver died while taking them)");
    line(out, "recounted", std::to_string(s.recounted) + " (capacity reserved by dead senders, recovered)");
    line(out, "corrupt", std::to_string(s.corrupt) + " (messages with an invalid length, dropped)");
    line(out, "creator", peer_text(s.creator));
    return out;
}

std::string format_queue_json(const std::string& name, const xproc::MqSnapshot& s, const Rates* rates,
                              double unix_time) {
    std::string o = "{";
    auto num = [&](const char* key, std::uint64_t v) {
        o += "\"" + std::string(key) + "\": " + std::to_string(v) + ", ";
    };
    o += "\"queue\": " + json_string(name) + ", ";
    o += "\"time\": " + json_number(unix_time) + ", ";
    o += "\"kind\": \"message_queue\", ";
    num("max_num_msg", s.max_num_msg);
    num("max_msg_size", s.max_msg_size);
    num("slot_size", s.slot_size);
    num("lane_capacity", s.lane_capacity);
    num("total_size", s.total_size);
    num("lanes_bound", s.lanes.size());
    num("messages", s.messages);
    o += "\"fill_percent\": " + json_number(percent(s.messages, s.max_num_msg)) + ", ";
    num("count", s.count);
    o += "\"lanes\": [";
    bool first = true;
    for (const xproc::MqLaneSnapshot& lane : by_priority(s)) {
        o += first ? "" : ", ";
        first = false;
        o += "{\"lane\": " + std::to_string(lane.index) + ", \"priority\": " + std::to_string(lane.priority) +
             ", \"messages\": " + std::to_string(lane.messages) +
             ", \"enqueue\": " + std::to_string(lane.enqueue_pos) +
             ", \"dequeue\": " + std::to_string(lane.dequeue_pos) + "}";
    }
    o += "], ";
    num("received", s.dequeued);
    num("recv_waiters", s.recv_waiters);
    num("send_waiters", s.send_waiters);
    num("skipped", s.skipped);
    num("lost", s.lost);
    num("recounted", s.recounted);
    num("corrupt", s.corrupt);
    o += "\"creator_pid\": " + std::to_string(s.creator.pid) + ", ";
    o += "\"creator\": " + json_peer(s.creator) + ", ";
    o += "\"rates\": ";
    if (rates == nullptr) {
        o += "null";
    } else {
        o += "{\"seconds\": " + json_number(rates->seconds) +
             ", \"messages_per_second\": " + json_number(rates->messages_per_second) + "}";
    }
    o += "}\n";
    return o;
}

/// The loop of `stat`: `take()` returns a snapshot (or ends the command with a Failure),
/// `rate(previous, current, rates)` fills the rates between two, `text(snapshot, rates)` and
/// `json(snapshot, rates, unix_time)` format one sample.
template <typename Take, typename Rate, typename Text, typename Json>
int sample_loop(const StatOptions& options, Take take, Rate rate, Text text_of, Json json_of) {
    using Clock = std::chrono::steady_clock;
    using Snapshot = decltype(take());
    std::optional<Snapshot> previous;
    Clock::time_point previous_at{};
    for (std::uint64_t sample = 1;; ++sample) {
        Snapshot snap = take();
        const Clock::time_point now = Clock::now();
        Rates rates;
        const bool have_rates = previous.has_value();
        if (have_rates) {
            rates.seconds = std::chrono::duration<double>(now - previous_at).count();
            if (rates.seconds > 0) {
                rate(*previous, snap, rates);
            }
        }
        std::string text;
        if (options.json) {
            struct timespec ts {};
            ::clock_gettime(CLOCK_REALTIME, &ts);
            text = json_of(snap, have_rates ? &rates : nullptr,
                           static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9);
        } else {
            if (sample > 1) {
                text += "\n";
            }
            text += text_of(snap, have_rates ? &rates : nullptr);
        }
        if (std::fputs(text.c_str(), stdout) < 0 || std::fflush(stdout) != 0) {
            if (errno == EPIPE) {
                throw QuietExit{EXIT_OK};
            }
            failure("cannot write standard output: " + std::string(std::strerror(errno)));
        }
        if (!options.watch || (options.samples != 0 && sample >= options.samples)) {
            return EXIT_OK;
        }
        previous = std::move(snap);
        previous_at = now;
        // Sleep in slices; Ctrl-C ends a watch normally.
        const Clock::time_point next = now + *options.watch;
        while (Clock::now() < next) {
            if (pending_signal() != 0) {
                return EXIT_OK;
            }
            std::this_thread::sleep_for(std::min<Clock::duration>(WAIT_SLICE, next - Clock::now()));
        }
        if (pending_signal() != 0) {
            return EXIT_OK;
        }
    }
}

double delta(std::uint64_t a, std::uint64_t b) {
    return a >= b ? static_cast<double>(a - b) : 0.0;
}

/// Opens `name` read-only when it is a message queue; nullopt for anything else (a ring,
/// another segment, or an open that failed: the ring path then reports it as usual).
std::optional<xproc::SharedMemory> open_if_queue(const std::string& name) {
    auto shm = xproc::SharedMemory::open(name, xproc::ShmAccess::read_only);
    if (!shm || !xproc::is_message_queue(std::span<const std::byte>(shm->data(), shm->size()))) {
        return std::nullopt;
    }
    return std::move(*shm);
}

/// The one-line failures rings and queues share: `what` ("ring", "message queue") `name` is
/// still being created (layout version 0: removed with `rm_command`), or has a layout version
/// this xproc does not read (to `verb` with the version that created it). Returns otherwise.
void fail_if_not_ready_or_other_version(const std::string& what, const std::string& name,
                                        const xproc::Error& e, const std::string& rm_command,
                                        const std::string& verb) {
    if (e.errno_value == EAGAIN) {
        failure(
            what + " " + name +
            " is still being created (layout version 0); retry, or if its creator died, remove it with `" +
            rm_command + " " + name + "`");
    }
    if (e.detail.find("layout version") != std::string::npos) {
        failure(what + " " + name + ": " + e.detail + "; " + verb +
                " it with the xproc version that created it");
    }
}

/// The one-line failure for an error of snapshot_message_queue / check_message_queue.
[[noreturn]] void queue_failed(const std::string& name, const xproc::Error& e) {
    fail_if_not_ready_or_other_version("message queue", name, e, "xshm rm", "inspect");
    if (e.kind == xproc::ErrorKind::corrupt) {
        failure("message queue " + name + " is corrupt: " + e.detail + "; run `xring check " + name +
                "` for details");
    }
    failure("message queue " + name + ": " + e.message());
}

xproc::MqSnapshot take_queue_snapshot(const std::string& name, const xproc::SharedMemory& shm) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
        auto snap = xproc::snapshot_message_queue(std::span<const std::byte>(shm.data(), shm.size()));
        if (snap) {
            return std::move(*snap);
        }
        // Version 0: the creator is formatting it (normally under a temporary name): wait a little.
        if (snap.error().errno_value == EAGAIN && std::chrono::steady_clock::now() < give_up) {
            check_signal();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
        }
        queue_failed(name, snap.error());
    }
}

int run_queue_stat(const StatOptions& options, const xproc::SharedMemory& shm) {
    return sample_loop(
        options, [&] { return take_queue_snapshot(options.name, shm); },
        [](const xproc::MqSnapshot& before, const xproc::MqSnapshot& now, Rates& rates) {
            rates.messages_per_second = delta(now.dequeued, before.dequeued) / rates.seconds;
        },
        [&](const xproc::MqSnapshot& s, const Rates* rates) {
            return format_queue_text(options.name, s, rates);
        },
        [&](const xproc::MqSnapshot& s, const Rates* rates, double unix_time) {
            return format_queue_json(options.name, s, rates, unix_time);
        });
}

/// The end of `xring check`: "KIND NAME: sound", or one line per problem on stdout and a
/// summary with `advice` on stderr (exit status 1).
int report_problems(const char* kind, const std::string& name, const std::vector<std::string>& problems,
                    const std::string& advice) {
    if (problems.empty()) {
        std::printf("%s %s: sound\n", kind, name.c_str());
        return EXIT_OK;
    }
    for (const std::string& p : problems) {
        std::printf("%s %s: %s\n", kind, name.c_str(), p.c_str());
    }
    std::fflush(stdout);
    std::fprintf(stderr, "xring: %s %s: %zu problem%s found; %s\n", kind, name.c_str(), problems.size(),
                 problems.size() == 1 ? "" : "s", advice.c_str());
    return EXIT_ERROR;
}

int run_queue_check(const std::string& name, const xproc::SharedMemory& shm) {
    auto problems = xproc::check_message_queue(std::span<const std::byte>(shm.data(), shm.size()));
    if (!problems) {
        queue_failed(name, problems.error());
    }
    return report_problems("message queue", name, *problems,
                           "claims of dead peers are recovered by the queue's next senders and receivers, "
                           "anything else: remove it (`xshm rm " +
                               name + "`) and create it again");
}

}  // namespace

int run_stat(const StatOptions& options) {
    if (auto queue = open_if_queue(options.name)) {
        return run_queue_stat(options, *queue);
    }
    const xproc::RingSegment seg = open_ring(options.name, xproc::ShmAccess::read_only);
    return sample_loop(
        options,
        [&] {
            auto snap = xproc::snapshot_ring(seg.memory());
            if (!snap) {
                failure("ring " + options.name + " is corrupt: " + snap.error().detail +
                        "; run `xring check " + options.name + "` for details");
            }
            return std::move(*snap);
        },
        [](const RingSnapshot& before, const RingSnapshot& now, Rates& rates) {
            rates.messages_per_second = delta(now.messages, before.messages) / rates.seconds;
            rates.bytes_per_second = delta(now.bytes, before.bytes) / rates.seconds;
        },
        [&](const RingSnapshot& s, const Rates* rates) { return format_stat_text(options.name, s, rates); },
        [&](const RingSnapshot& s, const Rates* rates, double unix_time) {
            return format_stat_json(options.name, s, rates, unix_time);
        });
}

int run_check(const std::string& name) {
    auto shm = xproc::SharedMemory::open(name, xproc::ShmAccess::read_only);
    if (!shm) {
        const xproc::Error& e = shm.error();
        if (e.errno_value == ENOENT) {
            failure("ring " + name + " does not exist (no /dev/shm" + name + ")");
        }
        failure(error_line(name, e));
    }
    if (xproc::is_message_queue(std::span<const std::byte>(shm->data(), shm->size()))) {
        return run_queue_check(name, *shm);
    }
    auto problems = xproc::check_ring(std::span<const std::byte>(shm->data(), shm->size()));
    if (!problems) {
        const xproc::Error& e = problems.error();
        fail_if_not_ready_or_other_version("ring", name, e, "xring rm", "check");
        failure(name + " is not an xproc ring (" + not_a_ring_reason(e.detail) + ")");
    }
    return report_problems("ring", name, *problems,
                           "do not use it: remove it (`xring rm " + name + "`) and create it again");
}

}  // namespace xring
