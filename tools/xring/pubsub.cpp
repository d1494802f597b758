// SPDX-License-Identifier: MIT
// xring pub / xring sub: the ring between standard input and standard output.
//
// Both sides wait in slices of WAIT_SLICE so that a signal (recorded by a handler) is
// noticed quickly; on SIGINT/SIGTERM/SIGHUP they leave their role cleanly (the peer then
// sees "none", not "dead") by unwinding through the RingProducer/RingConsumer destructors.

#include "pubsub.hpp"

#include <poll.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace xring {

namespace {

using Clock = std::chrono::steady_clock;

std::string seconds_text(std::chrono::nanoseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g s", std::chrono::duration<double>(d).count());
    return buf;
}

/// Who holds the other role, for messages: "pid N", or "" when unknown.
std::string consumer_pid_text(const xproc::RingSegment& seg) {
    auto snap = xproc::snapshot_ring(seg.memory());
    if (snap && snap->consumer.pid != 0) {
        return "pid " + std::to_string(snap->consumer.pid);
    }
    return {};
}

std::string producer_pid_text(const xproc::RingSegment& seg) {
    auto snap = xproc::snapshot_ring(seg.memory());
    if (!snap) {
        return {};
    }
    if (snap->kind != xproc::RingKind::mpsc) {
        return snap->producer.pid != 0 ? "pid " + std::to_string(snap->producer.pid) : std::string();
    }
    std::string pids;
    for (const xproc::PeerInfo& p : snap->slots) {
        if (p.state == xproc::PeerState::dead) {
            pids += (pids.empty() ? "pid " : ", ") + std::to_string(p.pid);
        }
    }
    return pids;
}

[[noreturn]] void attach_failed(const std::string& name, const xproc::Error& e) {
    if (role_is_held(e)) {
        failure(error_line(name, e));
    }
    if (e.kind == xproc::ErrorKind::corrupt) {
        failure("ring " + name + " is corrupt: " + e.detail + "; run `xring check " + name + "` for details");
    }
    failure(error_line(name, e));
}

/// Both sides check their peer's liveness this often while they wait: shorter than a
/// wait slice, so that each slice includes a check.
xproc::AttachOptions attach_options(bool follow) {
    xproc::AttachOptions o;
    o.follow = follow;
    o.wait.liveness_interval = std::chrono::milliseconds(100);
    return o;
}

// ---------------------------------------------------------------------------------------
// pub

/// Waits up to WAIT_SLICE for `events` on `fd` after looking at the signal flag; true when
/// the descriptor is ready (or in error: the next read/write says which).
bool wait_for(int fd, short events) {
    check_signal();
    struct pollfd pfd {
        fd, events, 0
    };
    const int r = ::poll(&pfd, 1, static_cast<int>(WAIT_SLICE.count()));
    return r != 0 && !(r < 0 && errno == EINTR);
}

/// Standard input, read in blocks; waits in poll(2) slices so that signals are seen.
class Input {
  public:
    /// Reads up to `out.size()` bytes; 0 at end of input.
    std::size_t read_some(std::span<char> out) {
        for (;;) {
            // poll(2) with a timeout before read(2): a signal that arrives just before we
            // block is still seen within a slice.
            if (!wait_for(STDIN_FILENO, POLLIN)) {
                continue;
            }
            const ssize_t n = ::read(STDIN_FILENO, out.data(), out.size());
            if (n >= 0) {
                return static_cast<std::size_t>(n);
            }
            const int err = errno;
            if (err == EINTR || err == EAGAIN) {
                continue;
            }
            failure(std::string("cannot read standard input: ") + std::strerror(err));
        }
    }
    /// Fills `out` unless the input ends first; returns the bytes read.
    std::size_t read_full(std::span<char> out) {
        std::size_t got = 0;
        while (got < out.size()) {
            const std::size_t n = read_some(out.subspan(got));
            if (n == 0) {
                break;
            }
            got += n;
        }
        return got;
    }
};

class Publisher {
  public:
    Publisher(const PubOptions& options, xproc::RingSegment& seg, xproc::RingProducer& producer)
        : m_opt(options), m_seg(seg), m_producer(producer) {}

    void send(std::span<const char> message) {
        if (message.size() > m_producer.max_record()) {
            too_large();
        }
        const auto bytes = std::as_bytes(message);
        wait_for_room([&](xproc::Timeout slice) {
            const xproc::Claim c = m_producer.claim(bytes.size(), slice);
            if (c.status == xproc::WriteStatus::ok) {
                if (!bytes.empty()) {
                    std::memcpy(c.buffer.data(), bytes.data(), bytes.size());
                }
                m_producer.commit(bytes.size());
            }
            return c.status;
        });
        ++m_messages;
    }

    void end_of_stream() {
        wait_for_room([&](xproc::Timeout slice) { return m_producer.write_end_of_stream(slice); });
    }

    [[noreturn]] void too_large() {
        const std::string what = m_opt.chunk != 0 ? "a chunk" : "line " + std::to_string(m_messages + 1);
        failure(
            "ring " + m_opt.name + ": " + what + " is longer than the ring's max record (" +
            std::to_string(m_producer.max_record()) + " bytes); " + std::to_string(m_messages) +
            " messages were sent, the rest was not; create the ring with a larger --max-record" +
            (m_opt.chunk != 0 ? ", or use a smaller --chunk" : ", or send the data in pieces with --chunk"));
    }

  private:
    /// Calls `attempt(slice)` until it succeeds, a signal arrives, the consumer dies or
    /// the per-message timeout passes.
    template <typename Attempt>
    void wait_for_room(Attempt&& attempt) {
        const Clock::time_point start = Clock::now();
        for (;;) {
            check_signal();
            xproc::Timeout slice = WAIT_SLICE;
            if (m_opt.timeout) {
                const auto left = *m_opt.timeout - (Clock::now() - start);
                if (left <= xproc::Timeout::zero()) {
                    timed_out();
                }
                slice = std::min<xproc::Timeout>(slice, left);
            }
            xproc::WriteStatus status = attempt(slice);
            if (status == xproc::WriteStatus::full && m_producer.consumer_state() == xproc::PeerState::dead) {
                // Our slice may end before the library's own liveness check: ask once more
                // without waiting, which reports a dead consumer of a full ring.
                status = attempt(xproc::NO_WAIT);
            }
            switch (status) {
                case xproc::WriteStatus::ok:
                    return;
                case xproc::WriteStatus::full:
                    continue;
                case xproc::WriteStatus::too_large:
                    too_large();
                case xproc::WriteStatus::peer_gone: {
                    const std::string pid = consumer_pid_text(m_seg);
                    throw Failure(EXIT_PEER_GONE,
                                  "ring " + m_opt.name + ": the consumer" +
                                      (pid.empty() ? "" : " (" + pid + ")") + " died without closing; " +
                                      std::to_string(m_messages) +
                                      " messages were sent, the rest of the input was not; start a new "
                                      "`xring sub " +
                                      m_opt.name + "` to read what is in the ring");
                }
            }
        }
    }

    [[noreturn]] void timed_out() {
        const std::string pid = consumer_pid_text(m_seg);
        failure("ring " + m_opt.name + ": no room for message " + std::to_string(m_messages + 1) +
                " within " + seconds_text(*m_opt.timeout) + " (the ring is full; its consumer" +
                (pid.empty() ? " is missing" : ", " + pid + ", is not reading fast enough") +
                "); the rest of the input was not sent; start `xring sub " + m_opt.name +
                "` or raise --timeout");
    }

    const PubOptions& m_opt;
    xproc::RingSegment& m_seg;
    xproc::RingProducer& m_producer;
    std::uint64_t m_messages = 0;
};

void publish_lines(Publisher& pub, std::uint32_t max_record) {
    Input in;
    std::vector<char> block(256 * 1024);
    std::string pending;  // a line that spans blocks
    for (;;) {
        const std::size_t n = in.read_some(block);
        if (n == 0) {
            break;
        }
        std::span<const char> data(block.data(), n);
        while (!data.empty()) {
            const void* nl = std::memchr(data.data(), '\n', data.size());
            if (nl == nullptr) {
                if (pending.size() + data.size() > max_record) {
                    pub.too_large();
                }
                pending.append(data.data(), data.size());
                break;
            }
            const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - data.data());
            if (pending.empty()) {
                pub.send(data.first(len));
            } else {
                if (pending.size() + len > max_record) {
                    pub.too_large();
                }
                pending.append(data.data(), len);
                pub.send(pending);
                pending.clear();
            }
            data = data.subspan(len + 1);
        }
    }
    if (!pending.empty()) {
        pub.send(pending);  // a last line without a newline
    }
}

void publish_chunks(Publisher& pub, std::uint64_t chunk) {
    Input in;
    std::vector<char> block(static_cast<std::size_t>(chunk));
    for (;;) {
        const std::size_t n = in.read_full(block);
        if (n == 0) {
            break;
        }
        pub.send(std::span<const char>(block.data(), n));
        if (n < block.size()) {
            break;
        }
    }
}

// ---------------------------------------------------------------------------------------
// sub

/// Standard output with a buffer; a closed pipe (EPIPE) ends the command quietly.
class Output {
  public:
    Output() { m_buf.reserve(FLUSH_AT + 4096); }
    void append(std::span<const std::byte> message, bool newline) {
        m_buf.append(reinterpret_cast<const char*>(message.data()), message.size());
        if (newline) {
            m_buf.push_back('\n');
        }
    }
    bool full() const noexcept { return m_buf.size() >= FLUSH_AT; }
    void flush() {
        std::size_t done = 0;
        while (done < m_buf.size()) {
            if (!wait_for(STDOUT_FILENO, POLLOUT)) {
                continue;  // a reader that does not read: keep looking at signals
            }
            const ssize_t n = ::write(STDOUT_FILENO, m_buf.data() + done, m_buf.size() - done);
            if (n >= 0) {
                done += static_cast<std::size_t>(n);
                continue;
            }
            const int err = errno;
            if (err == EINTR || err == EAGAIN) {
                continue;
            }
            if (err == EPIPE) {
                throw QuietExit{EXIT_OK};  // `xring sub ring | head -1`: the reader has all it wants
            }
            failure(std::string("cannot write standard output: ") + std::strerror(err));
        }
        m_buf.clear();
    }

    /// Ends quietly when the reader of our pipe went away: while idle we write nothing, so
    /// EPIPE alone would not tell us (`xring sub ring | head -1` on a quiet ring).
    void check_reader() {
        struct pollfd pfd {
            STDOUT_FILENO, 0, 0
        };
        if (::poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR) != 0) {
            throw QuietExit{EXIT_OK};
        }
    }

  private:
    static constexpr std::size_t FLUSH_AT = 64 * 1024;
    std::string m_buf;
};

}  // namespace

int run_pub(const PubOptions& options) {
    std::optional<xproc::RingSegment> seg;
    if (options.create) {
        seg.emplace(create_ring(options.name, ring_config(options.create_options), true));
    } else {
        seg.emplace(open_ring(options.name));
    }
    if (options.chunk > seg->max_record()) {
        if (seg->shm().created()) {
            (void)xproc::RingSegment::remove(options.name);  // bad usage leaves nothing behind
        }
        usage_error("--chunk: " + std::to_string(options.chunk) +
                    " bytes is larger than the max record of ring " + options.name + " (" +
                    std::to_string(seg->max_record()) + " bytes)");
    }
    auto producer = seg->producer(attach_options(false));
    if (!producer) {
        attach_failed(options.name, producer.error());
    }
    Publisher pub(options, *seg, *producer);
    if (options.chunk != 0) {
        publish_chunks(pub, options.chunk);
    } else {
        publish_lines(pub, seg->max_record());
    }
    pub.end_of_stream();
    producer->close();
    return EXIT_OK;
}

int run_sub(const SubOptions& options) {
    xproc::RingSegment seg = open_ring(options.name);
    auto consumer = seg.consumer(attach_options(options.follow));
    if (!consumer) {
        attach_failed(options.name, consumer.error());
    }
    xproc::RingConsumer& in = *consumer;
    const bool broadcast = in.kind() == xproc::RingKind::broadcast;
    const bool mpsc = in.kind() == xproc::RingKind::mpsc;
    Output out;
    std::uint64_t got = 0;
    constexpr std::size_t BATCH = 256;
    auto handler = [&](std::span<const std::byte> message) { out.append(message, !options.raw); };
    const auto warn_lapped = [&] {
        if (const std::uint64_t lost = in.take_lapped(); lost != 0) {
            out.flush();
            std::fprintf(stderr,
                         "xring: ring %s: warning: lapped by the writer, %llu bytes of messages lost "
                         "(this reader is too slow for the ring's capacity)\n",
                         options.name.c_str(), static_cast<unsigned long long>(lost));
            return true;
        }
        return false;
    };
    const auto producer_gone = [&] {
        out.flush();
        const std::string pid = producer_pid_text(seg);
        throw Failure(EXIT_PEER_GONE, "ring " + options.name + ": the producer" +
                                          (pid.empty() ? "" : " (" + pid + ")") +
                                          " died without closing the stream; " + std::to_string(got) +
                                          " messages were read; use --follow to wait for a new producer");
    };
    for (;;) {
        check_signal();
        std::size_t limit = BATCH;
        if (options.count != 0) {
            limit = static_cast<std::size_t>(std::min<std::uint64_t>(BATCH, options.count - got));
        }
        auto n = in.poll(handler, limit);
        if (!n) {
            out.flush();
            failure("ring " + options.name + " is corrupt: " + n.error().detail + "; run `xring check " +
                    options.name + "` for details");
        }
        got += *n;
        const bool lapped = broadcast && warn_lapped();
        if (options.count != 0 && got >= options.count) {
            out.flush();
            return EXIT_OK;
        }
        if (in.saw_end_of_stream()) {
            // SPSC/broadcast: the stream ended. MPSC: each producer ends its own stream; the
            // whole stream ends when no producer is left and everything was read.
            if (!mpsc || (*n == 0 && in.producer_state() != xproc::PeerState::alive)) {
                out.flush();
                return EXIT_OK;
            }
        }
        if (*n > 0 || lapped) {
            if (out.full()) {
                out.flush();
            }
            continue;
        }
        out.flush();
        auto status = in.wait(WAIT_SLICE);
        if (!status) {
            failure("ring " + options.name + " is corrupt: " + status.error().detail + "; run `xring check " +
                    options.name + "` for details");
        }
        switch (*status) {
            case xproc::ReadStatus::peer_gone:
                producer_gone();  // throws
                break;
            case xproc::ReadStatus::ok:
                break;
            default:
                out.check_reader();
                if (!options.follow && in.producer_state() == xproc::PeerState::dead) {
                    // Our slice may end before the library's own liveness check: ask once
                    // more without waiting, which reports a dead producer of a drained ring.
                    auto now = in.wait(xproc::NO_WAIT);
                    if (now && *now == xproc::ReadStatus::peer_gone) {
                        producer_gone();
                    }
                }
                break;
        }
    }
}

}  // namespace xring
