// SPDX-License-Identifier: MIT
// The C API of xproc/ring.h: every errno of every function, against real processes
// (forked peers killed with SIGKILL), and a million messages between two processes.
#include "xproc/ring.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "shm_name.hpp"
#include "xproc/ring/layout.hpp"
#include "xproc/ring_segment.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using RingName = xproc::test::ShmName;

struct RingCloser {
    void operator()(xproc_ring* r) const { xproc_ring_close(r); }
};
using Ring = std::unique_ptr<xproc_ring, RingCloser>;

/// A forked child running `body`; two pipes let it say "ready" and wait for "go".
/// The destructor kills (SIGKILL) and reaps it if it still runs.
class Forked {
  public:
    /// What the child's body gets.
    struct Side {
        int ready_fd;
        int go_fd;
        void ready() const {
            const char b = 'r';
            (void)!::write(ready_fd, &b, 1);
        }
        void wait_go() const {
            char b;
            (void)!::read(go_fd, &b, 1);
        }
    };

    template <typename Body>
    explicit Forked(Body&& body) {
        int up[2], down[2];
        if (::pipe2(up, O_CLOEXEC) != 0 || ::pipe2(down, O_CLOEXEC) != 0) {
            ADD_FAILURE() << "pipe2: " << std::strerror(errno);
            return;
        }
        m_pid = ::fork();
        if (m_pid == 0) {
            ::close(up[0]);
            ::close(down[1]);
            const int code = body(Side{up[1], down[0]});
            ::_exit(code);
        }
        ::close(up[1]);
        ::close(down[0]);
        m_ready = up[0];
        m_go = down[1];
    }
    Forked(const Forked&) = delete;
    Forked& operator=(const Forked&) = delete;
    ~Forked() {
        kill9();
        ::close(m_ready);
        ::close(m_go);
    }

    pid_t pid() const { return m_pid; }
    /// Waits until the child said ready (false on timeout or if it exited first).
    bool ready(int timeout_ms = 10000) const {
        struct pollfd p = {m_ready, POLLIN, 0};
        char b;
        return ::poll(&p, 1, timeout_ms) == 1 && ::read(m_ready, &b, 1) == 1;
    }
    void go() const {
        const char b = 'g';
        (void)!::write(m_go, &b, 1);
    }
    /// Waits for the child to exit; returns its exit code (128 + signal if killed).
    int wait() {
        int status = 0;
        while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
        }
        m_pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    /// SIGKILL, and waits until it is dead; with `reap` false it stays a zombie until the
    /// destructor.
    void kill9(bool reap = true) {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            if (reap) {
                wait();
            } else {
                siginfo_t info{};
                while (::waitid(P_PID, static_cast<id_t>(m_pid), &info, WEXITED | WNOWAIT) < 0 &&
                       errno == EINTR) {
                }
            }
        }
    }

  private:
    pid_t m_pid = -1;
    int m_ready = -1;
    int m_go = -1;
};

std::chrono::milliseconds elapsed_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

std::string last_error() {
    return xproc_ring_last_error();
}

Ring create(const RingName& name, size_t capacity, int role) {
    Ring r(xproc_ring_create(name.c_str(), capacity, 0600, role));
    EXPECT_NE(r, nullptr) << last_error();
    return r;
}

Ring open_ring(const RingName& name, int role) {
    Ring r(xproc_ring_open(name.c_str(), role));
    EXPECT_NE(r, nullptr) << last_error();
    return r;
}

int send_str(xproc_ring* r, const std::string& s, int timeout_ms = 0) {
    return xproc_ring_send(r, s.data(), s.size(), timeout_ms);
}

std::string recv_str(xproc_ring* r, int timeout_ms = 0) {
    char buf[4096];
    const ssize_t n = xproc_ring_recv(r, buf, sizeof buf, timeout_ms);
    if (n < 0) {
        return "<errno " + std::to_string(errno) + ">";
    }
    return std::string(buf, static_cast<std::size_t>(n));
}

/// Fills the ring until not even an empty message fits; returns how many messages it took.
int fill(xproc_ring* r) {
    const std::string msg(100, 'f');
    int n = 0;
    while (send_str(r, msg) == 0) {
        ++n;
    }
    while (xproc_ring_send(r, "", 0, 0) == 0) {
        ++n;
    }
    return n;
}

// ---- create --------------------------------------------------------------------------

TEST(RingC, created_ring_carries_messages_to_a_consumer_in_the_same_process) {
    RingName name("basic");
    Ring p = create(name, 4096, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    EXPECT_EQ(send_str(p.get(), "hello"), 0);
    EXPECT_EQ(send_str(p.get(), "world"), 0);
    EXPECT_EQ(recv_str(c.get()), "hello");
    EXPECT_EQ(recv_str(c.get()), "world");
}

TEST(RingC, create_rounds_capacity_up_to_a_power_of_two_and_reports_max_record) {
    RingName name("geometry");
    Ring p = create(name, 1000, XPROC_RING_PRODUCER);
    ASSERT_TRUE(p);
    EXPECT_EQ(xproc_ring_capacity(p.get()), 1024u);
    EXPECT_EQ(xproc_ring_max_record(p.get()), 1024u / 2 - 8);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(c);
    EXPECT_EQ(xproc_ring_capacity(c.get()), 1024u);
    EXPECT_EQ(xproc_ring_max_record(c.get()), 1024u / 2 - 8);
}

TEST(RingC, create_applies_the_mode_exactly_whatever_the_umask) {
    RingName name("mode");
    const mode_t old = ::umask(077);
    Ring p(xproc_ring_create(name.c_str(), 4096, 0644, XPROC_RING_PRODUCER));
    ::umask(old);
    ASSERT_TRUE(p) << last_error();
    struct stat st {};
    ASSERT_EQ(::stat(("/dev/shm" + name.str()).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST(RingC, create_of_an_existing_name_fails_with_EEXIST_and_leaves_it_alone) {
    RingName name("exists");
    Ring p = create(name, 4096, XPROC_RING_PRODUCER);
    ASSERT_TRUE(p);
    ASSERT_EQ(send_str(p.get(), "kept"), 0);
    errno = 0;
    EXPECT_EQ(Ring(xproc_ring_create(name.c_str(), 4096, 0600, XPROC_RING_CONSUMER)), nullptr);
    EXPECT_EQ(errno, EEXIST);
    EXPECT_NE(last_error().find(name.str()), std::string::npos) << last_error();
    // The existing ring was not touched (nor removed by the failed create).
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(c);
    EXPECT_EQ(recv_str(c.get()), "kept");
}

TEST(RingC, create_rejects_null_and_bad_names_bad_roles_and_bad_capacities_with_EINVAL) {
    RingName name("einval");
    struct Case {
        const char* what;
        const char* name;
        size_t capacity;
        int role;
    };
    const Case cases[] = {
        {"NULL name", nullptr, 4096, XPROC_RING_PRODUCER},
        {"name without a slash", "no-slash", 4096, XPROC_RING_PRODUCER},
        {"name with a second slash", "/a/b", 4096, XPROC_RING_PRODUCER},
        {"role 0", name.c_str(), 4096, 0},
        {"role 3", name.c_str(), 4096, XPROC_RING_PRODUCER | XPROC_RING_CONSUMER},
        {"capacity 0", name.c_str(), 0, XPROC_RING_PRODUCER},
        {"capacity above 1 TiB", name.c_str(), (size_t{1} << 40) + 1, XPROC_RING_PRODUCER},
    };
    for (const Case& c : cases) {
        errno = 0;
        EXPECT_EQ(Ring(xproc_ring_create(c.name, c.capacity, 0600, c.role)), nullptr) << c.what;
        EXPECT_EQ(errno, EINVAL) << c.what << ": " << last_error();
        EXPECT_NE(last_error(), "") << c.what;
    }
    struct stat st {};
    EXPECT_NE(::stat(("/dev/shm" + name.str()).c_str(), &st), 0) << "a failed create left the name behind";
}

// ---- open ----------------------------------------------------------------------------

TEST(RingC, open_of_a_missing_name_fails_with_ENOENT) {
    RingName name("missing");
    errno = 0;
    EXPECT_EQ(Ring(xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER)), nullptr);
    EXPECT_EQ(errno, ENOENT);
}

TEST(RingC, open_of_a_plain_shared_memory_segment_fails_with_EPROTO) {
    for (const off_t size : {off_t{0}, off_t{100}, off_t{65536}}) {
        RingName name("plain");
        const int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, size), 0);
        if (size >= 8) {
            ASSERT_EQ(::pwrite(fd, "not ring", 8, 0), 8);
        }
        ::close(fd);
        errno = 0;
        EXPECT_EQ(Ring(xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER)), nullptr) << size;
        EXPECT_EQ(errno, EPROTO) << size << ": " << last_error();
    }
}

TEST(RingC, open_of_a_ring_with_another_layout_version_fails_with_EPROTO_naming_both) {
    RingName name("version");
    {
        Ring p = create(name, 4096, XPROC_RING_PRODUCER);
        ASSERT_TRUE(p);
    }
    const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
    ASSERT_GE(fd, 0);
    const std::uint32_t other = xproc::ring::RING_LAYOUT_VERSION + 1;
    ASSERT_EQ(::pwrite(fd, &other, sizeof other, offsetof(xproc::ring::RingHeader, version)),
              static_cast<ssize_t>(sizeof other));
    ::close(fd);
    for (const int role : {XPROC_RING_PRODUCER, XPROC_RING_CONSUMER}) {
        errno = 0;
        EXPECT_EQ(Ring(xproc_ring_open(name.c_str(), role)), nullptr);
        EXPECT_EQ(errno, EPROTO);
        EXPECT_NE(last_error().find("version " + std::to_string(other)), std::string::npos) << last_error();
        EXPECT_NE(last_error().find(std::to_string(xproc::ring::RING_LAYOUT_VERSION)), std::string::npos)
            << last_error();
    }
}

TEST(RingC, open_as_a_second_consumer_fails_with_EBUSY_naming_the_holder) {
    RingName name("busy");
    Ring p = create(name, 4096, XPROC_RING_PRODUCER);
    ASSERT_TRUE(p);
    Forked child([&](const Forked::Side& side) {
        xproc_ring* c = xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER);
        if (c == nullptr) {
            return 1;
        }
        side.ready();
        side.wait_go();
        xproc_ring_close(c);
        return 0;
    });
    ASSERT_TRUE(child.ready());
    errno = 0;
    EXPECT_EQ(Ring(xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER)), nullptr);
    EXPECT_EQ(errno, EBUSY);
    EXPECT_NE(last_error().find("held by pid " + std::to_string(child.pid())), std::string::npos)
        << last_error();
    // A second producer likewise (held by this process).
    errno = 0;
    EXPECT_EQ(Ring(xproc_ring_open(name.c_str(), XPROC_RING_PRODUCER)), nullptr);
    EXPECT_EQ(errno, EBUSY);
    // Once the holder closed, the role is free.
    child.go();
    EXPECT_EQ(child.wait(), 0);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    EXPECT_TRUE(c);
}

TEST(RingC, open_takes_over_the_role_of_a_killed_consumer) {
    RingName name("takeover");
    Ring p = create(name, 4096, XPROC_RING_PRODUCER);
    ASSERT_TRUE(p);
    Forked child([&](const Forked::Side& side) {
        xproc_ring* c = xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER);
        side.ready();
        pause();
        xproc_ring_close(c);
        return 0;
    });
    ASSERT_TRUE(child.ready());
    child.kill9();
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    EXPECT_TRUE(c);
}

TEST(RingC, open_rejects_null_and_bad_names_and_bad_roles_with_EINVAL) {
    RingName name("open-einval");
    Ring p = create(name, 4096, XPROC_RING_PRODUCER);
    ASSERT_TRUE(p);
    errno = 0;
    EXPECT_EQ(Ring(xproc_ring_open(nullptr, XPROC_RING_CONSUMER)), nullptr);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(Ring(xproc_ring_open("no-slash", XPROC_RING_CONSUMER)), nullptr);
    EXPECT_EQ(errno, EINVAL);
    for (const int role : {0, 3, -1, 42}) {
        errno = 0;
        EXPECT_EQ(Ring(xproc_ring_open(name.c_str(), role)), nullptr) << role;
        EXPECT_EQ(errno, EINVAL) << role;
    }
}

TEST(RingC, open_of_another_users_ring_fails_with_EACCES) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to give the segment to another user";
    }
    RingName name("foreign");
    {
        Ring p(xproc_ring_create(name.c_str(), 4096, 0666, XPROC_RING_PRODUCER));
        ASSERT_TRUE(p) << last_error();
    }
    ASSERT_EQ(::chown(("/dev/shm" + name.str()).c_str(), 65534, 65534), 0);
    errno = 0;
    EXPECT_EQ(Ring(xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER)), nullptr);
    EXPECT_EQ(errno, EACCES);
    EXPECT_NE(last_error().find("65534"), std::string::npos) << last_error();
}

TEST(RingC, open_of_a_broadcast_ring_fails_with_EOPNOTSUPP) {
    RingName name("broadcast");
    xproc::RingConfig config;
    config.capacity = 4096;
    config.kind = xproc::RingKind::broadcast;
    auto seg = xproc::RingSegment::create(name.str(), config);
    ASSERT_TRUE(seg) << seg.error().message();
    errno = 0;
    EXPECT_EQ(Ring(xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER)), nullptr);
    EXPECT_EQ(errno, EOPNOTSUPP);
}

TEST(RingC, mpsc_ring_accepts_several_producers_and_one_consumer) {
    RingName name("mpsc");
    xproc::RingConfig config;
    config.capacity = 4096;
    config.kind = xproc::RingKind::mpsc;
    auto seg = xproc::RingSegment::create(name.str(), config);
    ASSERT_TRUE(seg) << seg.error().message();
    Ring p1 = open_ring(name, XPROC_RING_PRODUCER);
    Ring p2 = open_ring(name, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p1 && p2 && c);
    EXPECT_EQ(send_str(p1.get(), "one"), 0);
    EXPECT_EQ(send_str(p2.get(), "two"), 0);
    EXPECT_EQ(recv_str(c.get()), "one");
    EXPECT_EQ(recv_str(c.get()), "two");
}

// ---- send ----------------------------------------------------------------------------

TEST(RingC, send_to_a_full_ring_fails_at_once_with_EAGAIN_when_the_timeout_is_zero) {
    RingName name("full");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    EXPECT_GT(fill(p.get()), 0);
    const auto start = Clock::now();
    errno = 0;
    EXPECT_EQ(send_str(p.get(), "more"), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_LT(elapsed_since(start), 200ms);  // far below any timed wait
    EXPECT_NE(last_error().find("full"), std::string::npos) << last_error();
    // Room again after a read.
    EXPECT_EQ(recv_str(c.get()).size(), 100u);
    EXPECT_EQ(send_str(p.get(), "more"), 0);
}

TEST(RingC, send_to_a_full_ring_waits_the_timeout_then_fails_with_ETIMEDOUT) {
    RingName name("send-timeout");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    fill(p.get());
    const auto start = Clock::now();
    errno = 0;
    EXPECT_EQ(send_str(p.get(), "more", 300), -1);
    EXPECT_EQ(errno, ETIMEDOUT);
    const auto waited = elapsed_since(start);
    EXPECT_GE(waited, 300ms);
    EXPECT_LT(waited, 1500ms);
}

TEST(RingC, blocking_send_completes_when_a_consumer_process_makes_room) {
    RingName name("send-blocks");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    ASSERT_TRUE(p);
    const int n = fill(p.get());
    Forked child([&](const Forked::Side& side) {
        xproc_ring* c = xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER);
        side.ready();
        side.wait_go();
        usleep(150 * 1000);  // off the 100 ms liveness tick
        char buf[128];
        const ssize_t got = xproc_ring_recv(c, buf, sizeof buf, 0);
        xproc_ring_close(c);
        return got == 100 ? 0 : 1;
    });
    ASSERT_TRUE(child.ready());
    child.go();
    const auto start = Clock::now();
    EXPECT_EQ(send_str(p.get(), "after room", -1), 0) << last_error();
    EXPECT_GE(elapsed_since(start), 50ms);
    EXPECT_EQ(child.wait(), 0);
    EXPECT_GT(n, 0);
}

TEST(RingC, send_of_a_message_larger_than_max_record_fails_with_EMSGSIZE) {
    RingName name("too-large");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    const size_t max = xproc_ring_max_record(p.get());
    std::vector<char> big(max + 1, 'b');
    errno = 0;
    EXPECT_EQ(xproc_ring_send(p.get(), big.data(), big.size(), -1), -1);  // never waits for it
    EXPECT_EQ(errno, EMSGSIZE);
    EXPECT_NE(last_error().find(std::to_string(max)), std::string::npos) << last_error();
    EXPECT_EQ(xproc_ring_send(p.get(), big.data(), max, 0), 0) << last_error();
    std::vector<char> buf(max);
    EXPECT_EQ(xproc_ring_recv(c.get(), buf.data(), buf.size(), 0), static_cast<ssize_t>(max));
}

TEST(RingC, send_after_the_consumer_was_killed_fails_with_EPIPE_once_the_ring_is_full) {
    RingName name("send-epipe");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    ASSERT_TRUE(p);
    Forked child([&](const Forked::Side& side) {
        xproc_ring* c = xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER);
        side.ready();
        pause();
        xproc_ring_close(c);
        return 0;
    });
    ASSERT_TRUE(child.ready());
    child.kill9(false);  // a zombie counts as gone too
    // While there is room, messages are accepted (nobody checks the consumer then).
    fill(p.get());
    errno = 0;
    EXPECT_EQ(send_str(p.get(), "more", 0), -1);
    EXPECT_EQ(errno, EPIPE) << last_error();
    EXPECT_NE(last_error().find("consumer"), std::string::npos) << last_error();
    // A blocking send notices within the liveness interval instead of hanging.
    const auto start = Clock::now();
    errno = 0;
    EXPECT_EQ(send_str(p.get(), "more", -1), -1);
    EXPECT_EQ(errno, EPIPE);
    EXPECT_LT(elapsed_since(start), 2s);
    errno = 0;
    EXPECT_EQ(xproc_ring_send_eos(p.get(), 0), -1);
    EXPECT_EQ(errno, EPIPE);
}

TEST(RingC, send_rejects_a_null_ring_a_null_message_and_a_consumer_handle) {
    RingName name("send-einval");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    errno = 0;
    EXPECT_EQ(xproc_ring_send(nullptr, "x", 1, 0), -1);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(xproc_ring_send(p.get(), nullptr, 1, 0), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(xproc_ring_send(p.get(), nullptr, 0, 0), 0);  // an empty message needs no bytes
    errno = 0;
    EXPECT_EQ(xproc_ring_send(c.get(), "x", 1, 0), -1);
    EXPECT_EQ(errno, EBADF);
    errno = 0;
    EXPECT_EQ(xproc_ring_send_eos(nullptr, 0), -1);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(xproc_ring_send_eos(c.get(), 0), -1);
    EXPECT_EQ(errno, EBADF);
}

// ---- recv ----------------------------------------------------------------------------

TEST(RingC, recv_on_an_empty_ring_fails_at_once_with_EAGAIN_when_the_timeout_is_zero) {
    RingName name("empty");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    char buf[16];
    const auto start = Clock::now();
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), buf, sizeof buf, 0), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_LT(elapsed_since(start), 200ms);  // far below any timed wait
}

TEST(RingC, recv_on_an_empty_ring_waits_the_timeout_then_fails_with_ETIMEDOUT) {
    RingName name("recv-timeout");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    char buf[16];
    const auto start = Clock::now();
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), buf, sizeof buf, 300), -1);
    EXPECT_EQ(errno, ETIMEDOUT);
    const auto waited = elapsed_since(start);
    EXPECT_GE(waited, 300ms);
    EXPECT_LT(waited, 1500ms);
}

TEST(RingC, blocking_recv_returns_a_message_sent_later_by_a_producer_process) {
    RingName name("recv-blocks");
    Ring c = create(name, 1024, XPROC_RING_CONSUMER);
    ASSERT_TRUE(c);
    Forked child([&](const Forked::Side& side) {
        xproc_ring* p = xproc_ring_open(name.c_str(), XPROC_RING_PRODUCER);
        side.ready();
        usleep(150 * 1000);  // off the 100 ms liveness tick
        const int rc = xproc_ring_send(p, "late", 4, 0);
        xproc_ring_close(p);
        return rc == 0 ? 0 : 1;
    });
    ASSERT_TRUE(child.ready());
    const auto start = Clock::now();
    EXPECT_EQ(recv_str(c.get(), -1), "late");
    EXPECT_GE(elapsed_since(start), 50ms);
    EXPECT_EQ(child.wait(), 0);
}

TEST(RingC, recv_into_a_too_small_buffer_fails_with_EMSGSIZE_and_keeps_the_message) {
    RingName name("too-small");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    ASSERT_EQ(send_str(p.get(), "0123456789"), 0);
    char small[4];
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), small, sizeof small, 0), -1);
    EXPECT_EQ(errno, EMSGSIZE);
    EXPECT_NE(last_error().find("10 bytes"), std::string::npos) << last_error();
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), nullptr, 0, 0), -1);
    EXPECT_EQ(errno, EMSGSIZE);
    EXPECT_EQ(recv_str(c.get()), "0123456789");
}

TEST(RingC, recv_after_the_producer_was_killed_drains_its_messages_then_fails_with_EPIPE) {
    RingName name("recv-epipe");
    Ring c = create(name, 4096, XPROC_RING_CONSUMER);
    ASSERT_TRUE(c);
    Forked child([&](const Forked::Side& side) {
        xproc_ring* p = xproc_ring_open(name.c_str(), XPROC_RING_PRODUCER);
        for (const char* m : {"a", "b", "c"}) {
            if (xproc_ring_send(p, m, 1, 0) != 0) {
                return 1;
            }
        }
        side.ready();
        pause();
        return 0;
    });
    ASSERT_TRUE(child.ready());
    child.kill9();
    EXPECT_EQ(recv_str(c.get(), -1), "a");
    EXPECT_EQ(recv_str(c.get(), -1), "b");
    EXPECT_EQ(recv_str(c.get(), 0), "c");
    char buf[16];
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), buf, sizeof buf, 0), -1);
    EXPECT_EQ(errno, EPIPE) << last_error();
    const auto start = Clock::now();
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), buf, sizeof buf, -1), -1);  // does not hang
    EXPECT_EQ(errno, EPIPE);
    EXPECT_LT(elapsed_since(start), 2s);
}

TEST(RingC, recv_of_a_producer_that_closed_cleanly_times_out_instead_of_EPIPE) {
    RingName name("closed");
    Ring c = create(name, 1024, XPROC_RING_CONSUMER);
    ASSERT_TRUE(c);
    {
        Ring p = open_ring(name, XPROC_RING_PRODUCER);
        ASSERT_EQ(send_str(p.get(), "bye"), 0);
    }
    EXPECT_EQ(recv_str(c.get()), "bye");
    char buf[16];
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), buf, sizeof buf, 200), -1);
    EXPECT_EQ(errno, ETIMEDOUT);
    // A new producer carries on.
    Ring p2 = open_ring(name, XPROC_RING_PRODUCER);
    ASSERT_EQ(send_str(p2.get(), "again"), 0);
    EXPECT_EQ(recv_str(c.get()), "again");
}

TEST(RingC, recv_reports_end_of_stream_with_ENODATA_and_messages_after_it_follow) {
    RingName name("eos");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    ASSERT_EQ(send_str(p.get(), "last"), 0);
    ASSERT_EQ(xproc_ring_send_eos(p.get(), 0), 0);
    ASSERT_EQ(send_str(p.get(), "next stream"), 0);
    EXPECT_EQ(recv_str(c.get()), "last");
    char buf[16];
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), buf, sizeof buf, -1), -1);
    EXPECT_EQ(errno, ENODATA);
    EXPECT_EQ(recv_str(c.get()), "next stream");
}

TEST(RingC, a_zero_length_message_is_received_as_length_zero_not_as_end_of_stream) {
    RingName name("zero");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    ASSERT_EQ(xproc_ring_send(p.get(), "", 0, 0), 0);
    char buf[16];
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), buf, sizeof buf, 0), 0);
    EXPECT_EQ(errno, 0);
    ASSERT_EQ(xproc_ring_send(p.get(), nullptr, 0, 0), 0);
    EXPECT_EQ(xproc_ring_recv(c.get(), nullptr, 0, 0), 0);  // fits in a zero-byte buffer
}

TEST(RingC, recv_rejects_a_null_ring_a_null_buffer_and_a_producer_handle) {
    RingName name("recv-einval");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    char buf[16];
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(nullptr, buf, sizeof buf, 0), -1);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), nullptr, 16, 0), -1);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(p.get(), buf, sizeof buf, 0), -1);
    EXPECT_EQ(errno, EBADF);
}

TEST(RingC, recv_of_a_corrupt_record_fails_with_EBADMSG_instead_of_reading_out_of_bounds) {
    RingName name("corrupt");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    ASSERT_EQ(send_str(p.get(), "honest"), 0);
    // A hostile writer rewrites the record's length to something huge.
    const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
    ASSERT_GE(fd, 0);
    const std::uint32_t huge = 0x7fffffff;
    ASSERT_EQ(::pwrite(fd, &huge, sizeof huge, sizeof(xproc::ring::RingHeader)),
              static_cast<ssize_t>(sizeof huge));
    ::close(fd);
    char buf[64];
    errno = 0;
    EXPECT_EQ(xproc_ring_recv(c.get(), buf, sizeof buf, 0), -1);
    EXPECT_EQ(errno, EBADMSG);
    EXPECT_NE(last_error().find("max_record"), std::string::npos) << last_error();
}

// ---- close, unlink, last_error, getters --------------------------------------------------

TEST(RingC, unlink_removes_the_name_while_open_handles_keep_working) {
    RingName name("unlink");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    EXPECT_EQ(xproc_ring_unlink(name.c_str()), 0);
    errno = 0;
    EXPECT_EQ(Ring(xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER)), nullptr);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(send_str(p.get(), "still"), 0);
    EXPECT_EQ(recv_str(c.get()), "still");
}

TEST(RingC, unlink_fails_with_ENOENT_for_a_missing_name_and_EINVAL_for_a_bad_one) {
    RingName name("unlink-missing");
    errno = 0;
    EXPECT_EQ(xproc_ring_unlink(name.c_str()), -1);
    EXPECT_EQ(errno, ENOENT);
    errno = 0;
    EXPECT_EQ(xproc_ring_unlink(nullptr), -1);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(xproc_ring_unlink("no-slash"), -1);
    EXPECT_EQ(errno, EINVAL);
}

TEST(RingC, close_accepts_null_and_gives_the_role_back) {
    xproc_ring_close(nullptr);
    RingName name("close");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    ASSERT_TRUE(p);
    xproc_ring* c = xproc_ring_open(name.c_str(), XPROC_RING_CONSUMER);
    ASSERT_NE(c, nullptr);
    xproc_ring_close(c);
    Ring again = open_ring(name, XPROC_RING_CONSUMER);
    EXPECT_TRUE(again);
}

TEST(RingC, last_error_explains_the_latest_failure_and_success_leaves_it_and_errno_alone) {
    RingName name("last-error");
    Ring p = create(name, 1024, XPROC_RING_PRODUCER);
    ASSERT_TRUE(p);
    ASSERT_EQ(Ring(xproc_ring_open(name.c_str(), XPROC_RING_PRODUCER)), nullptr);
    const std::string message = last_error();
    EXPECT_NE(message.find("producer role is held by pid " + std::to_string(::getpid())), std::string::npos)
        << message;
    errno = 12345;
    EXPECT_EQ(send_str(p.get(), "ok"), 0);
    EXPECT_EQ(errno, 12345);
    EXPECT_EQ(last_error(), message);
}

TEST(RingC, getters_of_a_null_ring_return_zero_with_EINVAL) {
    errno = 0;
    EXPECT_EQ(xproc_ring_capacity(nullptr), 0u);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(xproc_ring_max_record(nullptr), 0u);
    EXPECT_EQ(errno, EINVAL);
    xproc_ring_clear(nullptr);  // ignored
}

// ---- doorbell --------------------------------------------------------------------------

TEST(RingC, fd_becomes_readable_when_a_producer_process_sends_while_armed) {
    RingName name("doorbell");
    Ring c = create(name, 4096, XPROC_RING_CONSUMER);
    ASSERT_TRUE(c);
    const int fd = xproc_ring_fd(c.get());
    ASSERT_GE(fd, 0) << last_error();
    EXPECT_EQ(xproc_ring_fd(c.get()), fd);  // the same descriptor every time
    ASSERT_EQ(xproc_ring_arm(c.get()), 0);  // empty: armed
    Forked child([&](const Forked::Side& side) {
        xproc_ring* p = xproc_ring_open(name.c_str(), XPROC_RING_PRODUCER);
        side.ready();
        side.wait_go();
        const int rc = xproc_ring_send(p, "ding", 4, 0);
        side.wait_go();
        xproc_ring_close(p);
        return rc == 0 ? 0 : 1;
    });
    ASSERT_TRUE(child.ready());
    struct pollfd pfd = {fd, POLLIN, 0};
    EXPECT_EQ(::poll(&pfd, 1, 100), 0);
    child.go();
    EXPECT_EQ(::poll(&pfd, 1, 5000), 1);
    xproc_ring_clear(c.get());
    EXPECT_EQ(::poll(&pfd, 1, 0), 0);
    EXPECT_EQ(recv_str(c.get()), "ding");
    child.go();
    EXPECT_EQ(child.wait(), 0);
}

TEST(RingC, arm_returns_one_when_a_message_is_already_waiting) {
    RingName name("arm");
    Ring p = create(name, 4096, XPROC_RING_PRODUCER);
    Ring c = open_ring(name, XPROC_RING_CONSUMER);
    ASSERT_TRUE(p && c);
    ASSERT_EQ(send_str(p.get(), "waiting"), 0);
    EXPECT_EQ(xproc_ring_arm(c.get()), 1);
    xproc_ring_clear(c.get());
    EXPECT_EQ(recv_str(c.get()), "waiting");
    EXPECT_EQ(xproc_ring_arm(c.get()), 0);
    ASSERT_EQ(xproc_ring_send_eos(p.get(), 0), 0);
    EXPECT_EQ(xproc_ring_arm(c.get()), 1);  // an end-of-stream mark wakes too
}

TEST(RingC, fd_arm_and_clear_refuse_a_producer_handle_with_EBADF) {
    RingName name("fd-producer");
    Ring p = create(name, 4096, XPROC_RING_PRODUCER);
    ASSERT_TRUE(p);
    errno = 0;
    EXPECT_EQ(xproc_ring_fd(p.get()), -1);
    EXPECT_EQ(errno, EBADF);
    errno = 0;
    EXPECT_EQ(xproc_ring_arm(p.get()), -1);
    EXPECT_EQ(errno, EBADF);
    errno = 0;
    EXPECT_EQ(xproc_ring_fd(nullptr), -1);
    EXPECT_EQ(errno, EINVAL);
    xproc_ring_clear(p.get());  // ignored
}

// ---- two processes, many messages -----------------------------------------------------------

/// Message `seq`: seq (8 bytes), checksum (8 bytes), then seq % 41 payload bytes.
std::size_t make_message(std::uint64_t seq, unsigned char* out) {
    const std::size_t payload = seq % 41;
    std::uint64_t sum = 1469598103934665603ull ^ seq;
    for (std::size_t i = 0; i < payload; ++i) {
        out[16 + i] = static_cast<unsigned char>(seq * 131 + i);
        sum = (sum ^ out[16 + i]) * 1099511628211ull;
    }
    std::memcpy(out, &seq, 8);
    std::memcpy(out + 8, &sum, 8);
    return 16 + payload;
}

TEST(RingC, two_processes_exchange_a_million_messages_in_order_without_corruption) {
    constexpr std::uint64_t COUNT = 1'000'000;
    RingName name("million");
    Ring c = create(name, 64 * 1024, XPROC_RING_CONSUMER);
    ASSERT_TRUE(c);
    Forked producer([&](const Forked::Side& side) {
        xproc_ring* p = xproc_ring_open(name.c_str(), XPROC_RING_PRODUCER);
        if (p == nullptr) {
            return 2;
        }
        side.ready();
        side.wait_go();
        unsigned char msg[64];
        for (std::uint64_t seq = 0; seq < COUNT; ++seq) {
            const std::size_t len = make_message(seq, msg);
            if (xproc_ring_send(p, msg, len, -1) != 0) {
                return 3;
            }
        }
        const int rc = xproc_ring_send_eos(p, -1);
        xproc_ring_close(p);
        return rc == 0 ? 0 : 4;
    });
    ASSERT_TRUE(producer.ready());
    producer.go();
    unsigned char buf[64], want[64];
    std::uint64_t received = 0;
    std::uint64_t bad = 0;
    for (;;) {
        const ssize_t n = xproc_ring_recv(c.get(), buf, sizeof buf, 10000);
        if (n < 0) {
            EXPECT_EQ(errno, ENODATA) << last_error();
            break;
        }
        const std::size_t len = make_message(received, want);
        if (static_cast<std::size_t>(n) != len || std::memcmp(buf, want, len) != 0) {
            if (++bad < 5) {
                ADD_FAILURE() << "message " << received << " differs (length " << n << ", expected " << len
                              << ")";
            }
        }
        ++received;
    }
    EXPECT_EQ(received, COUNT);
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(producer.wait(), 0);
}

}  // namespace
