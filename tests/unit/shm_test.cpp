// SPDX-License-Identifier: MIT
#include "xproc/shm.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <csignal>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "xproc/process.hpp"

namespace {

using xproc::ErrorKind;
using xproc::SharedMemory;
using xproc::ShmAccess;

/// A segment name unique to this run, `/xproc-test-<pid>-<suffix>`, removed
/// before and after the test (even when it fails).
class ShmName {
  public:
    explicit ShmName(const std::string& suffix)
        : m_name("/xproc-test-" + std::to_string(::getpid()) + "-" + suffix) {
        ::shm_unlink(m_name.c_str());
    }
    ~ShmName() { ::shm_unlink(m_name.c_str()); }
    ShmName(const ShmName&) = delete;
    ShmName& operator=(const ShmName&) = delete;
    const std::string& str() const { return m_name; }
    operator std::string_view() const { return m_name; }

  private:
    std::string m_name;
};

/// A forked child running `body`; its return value is written to a pipe the
/// parent reads with `result()`, and becomes the exit status (0 = "ok"). The
/// destructor kills and reaps it. `body` must not use gtest assertions.
class Forked {
  public:
    explicit Forked(const std::function<std::string(int ready_fd)>& body) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            ADD_FAILURE() << "pipe2: " << std::strerror(errno);
            return;
        }
        m_pid = ::fork();
        if (m_pid < 0) {
            ADD_FAILURE() << "fork: " << std::strerror(errno);
            return;
        }
        if (m_pid == 0) {
            ::close(fds[0]);
            const std::string out = body(fds[1]);
            const ssize_t n = ::write(fds[1], out.data(), out.size());
            ::_exit(n == static_cast<ssize_t>(out.size()) && out == "ok" ? 0 : 1);
        }
        ::close(fds[1]);
        m_out = fds[0];
    }
    ~Forked() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            reap();
        }
        if (m_out >= 0) {
            ::close(m_out);
        }
    }
    Forked(const Forked&) = delete;
    Forked& operator=(const Forked&) = delete;

    pid_t pid() const { return m_pid; }
    /// Reads one chunk the child wrote (a "ready" line or its final result).
    std::string read_some() {
        char buf[4096];
        const ssize_t n = ::read(m_out, buf, sizeof buf);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }
    /// Everything the child wrote until it exited, then reaps it.
    std::string result() {
        std::string all;
        char buf[4096];
        ssize_t n = 0;
        while ((n = ::read(m_out, buf, sizeof buf)) > 0) {
            all.append(buf, static_cast<std::size_t>(n));
        }
        reap();
        return all;
    }

  private:
    void reap() {
        int status = 0;
        while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
        }
        m_pid = -1;
    }
    pid_t m_pid = -1;
    int m_out = -1;
};

/// In a child: drop to uid/gid 65534 (nobody); "" on success.
std::string drop_privileges() {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) {
        return std::string("setresuid: ") + std::strerror(errno);
    }
    return {};
}

mode_t mode_of(int fd) {
    struct stat st {};
    EXPECT_EQ(::fstat(fd, &st), 0);
    return st.st_mode & 07777;
}

/// Restores the umask when the test ends.
class UmaskGuard {
  public:
    explicit UmaskGuard(mode_t m) : m_old(::umask(m)) {}
    ~UmaskGuard() { ::umask(m_old); }
    UmaskGuard(const UmaskGuard&) = delete;
    UmaskGuard& operator=(const UmaskGuard&) = delete;

  private:
    mode_t m_old;
};

}  // namespace

TEST(SharedMemory, create_maps_a_zeroed_segment_of_the_requested_size) {
    ShmName name("create");
    auto shm = SharedMemory::create(name, 8192);
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_EQ(shm->name(), name.str());
    EXPECT_EQ(shm->size(), 8192u);
    EXPECT_TRUE(shm->created());
    EXPECT_FALSE(shm->is_anonymous());
    ASSERT_NE(shm->data(), nullptr);
    EXPECT_TRUE(
        std::all_of(shm->data(), shm->data() + shm->size(), [](std::byte b) { return b == std::byte{0}; }));
    EXPECT_EQ(mode_of(shm->fd()), 0600u);
    EXPECT_EQ(::fcntl(shm->fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

TEST(SharedMemory, create_refuses_existing_name) {
    ShmName name("exclusive");
    auto first = SharedMemory::create(name, 4096);
    ASSERT_TRUE(first) << first.error().message();
    auto second = SharedMemory::create(name, 4096);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().kind, ErrorKind::os);
    EXPECT_EQ(second.error().errno_value, EEXIST);
    EXPECT_NE(second.error().message().find(name.str()), std::string::npos) << second.error().message();
    EXPECT_NE(second.error().message().find("EEXIST"), std::string::npos) << second.error().message();
}

TEST(SharedMemory, create_applies_mode_exactly_despite_umask) {
    UmaskGuard umask_guard(077);
    ShmName a("mode0640");
    auto shm = SharedMemory::create(a, 4096, 0640);
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_EQ(mode_of(shm->fd()), 0640u);

    ::umask(0);
    ShmName b("mode0600");
    auto other = SharedMemory::create(b, 4096);
    ASSERT_TRUE(other) << other.error().message();
    EXPECT_EQ(mode_of(other->fd()), 0600u);
}

TEST(SharedMemory, rejects_invalid_names_with_the_rule) {
    const std::vector<std::string> bad_names = {"", "noslash", "/", "/a/b", "/" + std::string(NAME_MAX, 'x')};
    for (const std::string& bad : bad_names) {
        auto shm = SharedMemory::create(bad, 4096);
        ASSERT_FALSE(shm) << bad;
        EXPECT_EQ(shm.error().kind, ErrorKind::invalid_argument) << bad;
        EXPECT_FALSE(shm.error().detail.empty());
        EXPECT_NE(shm.error().hint.find("one leading '/'"), std::string::npos);
    }
    EXPECT_NE(SharedMemory::validate_name("/a/b").error().message().find("contains a '/' after the first"),
              std::string::npos);
    EXPECT_TRUE(SharedMemory::validate_name(std::string("/") + std::string(NAME_MAX - 1, 'x')));
}

TEST(SharedMemory, data_written_through_one_mapping_is_seen_through_another) {
    ShmName name("share");
    auto writer = SharedMemory::create(name, 4096);
    ASSERT_TRUE(writer) << writer.error().message();
    auto reader = SharedMemory::open(name, ShmAccess::read_only);
    ASSERT_TRUE(reader) << reader.error().message();
    EXPECT_FALSE(reader->created());
    EXPECT_EQ(reader->size(), 4096u);
    EXPECT_NE(reader->data(), writer->data());
    std::memcpy(writer->data() + 100, "hello", 5);
    EXPECT_EQ(std::memcmp(reader->data() + 100, "hello", 5), 0);
}

TEST(SharedMemory, open_missing_name_fails_with_enoent) {
    ShmName name("missing");
    auto shm = SharedMemory::open(name);
    ASSERT_FALSE(shm);
    EXPECT_EQ(shm.error().errno_value, ENOENT);
    EXPECT_NE(shm.error().message().find("shm_open(" + name.str() + ")"), std::string::npos)
        << shm.error().message();
}

TEST(SharedMemory, open_or_create_creates_once_then_opens) {
    ShmName name("open-or-create");
    auto first = SharedMemory::open_or_create(name, 4096);
    ASSERT_TRUE(first) << first.error().message();
    EXPECT_TRUE(first->created());
    auto second = SharedMemory::open_or_create(name, 65536);
    ASSERT_TRUE(second) << second.error().message();
    EXPECT_FALSE(second->created());
    EXPECT_EQ(second->size(), 4096u);  // an existing segment keeps its size
}

TEST(SharedMemory, resize_grows_keeps_data_and_others_see_new_size) {
    ShmName name("resize");
    auto shm = SharedMemory::create(name, 4096);
    ASSERT_TRUE(shm) << shm.error().message();
    std::memcpy(shm->data(), "keep", 4);
    ASSERT_TRUE(shm->resize(3 * 4096));
    EXPECT_EQ(shm->size(), 3u * 4096);
    EXPECT_EQ(std::memcmp(shm->data(), "keep", 4), 0);
    shm->data()[3 * 4096 - 1] = std::byte{7};
    auto other = SharedMemory::open(name);
    ASSERT_TRUE(other) << other.error().message();
    EXPECT_EQ(other->size(), 3u * 4096);
    EXPECT_EQ(other->data()[3 * 4096 - 1], std::byte{7});
    ASSERT_TRUE(shm->resize(0));
    EXPECT_EQ(shm->data(), nullptr);
    EXPECT_EQ(shm->size(), 0u);
}

TEST(SharedMemory, resize_refused_when_read_only) {
    ShmName name("resize-ro");
    auto shm = SharedMemory::create(name, 4096);
    ASSERT_TRUE(shm) << shm.error().message();
    auto ro = SharedMemory::open(name, ShmAccess::read_only);
    ASSERT_TRUE(ro) << ro.error().message();
    auto r = ro->resize(8192);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::invalid_argument);
    EXPECT_NE(r.error().message().find("read-only"), std::string::npos);
}

TEST(SharedMemory, destructor_never_unlinks_and_remove_does) {
    ShmName name("remove");
    {
        auto shm = SharedMemory::create(name, 4096);
        ASSERT_TRUE(shm) << shm.error().message();
    }
    auto again = SharedMemory::open(name);
    ASSERT_TRUE(again) << again.error().message();
    ASSERT_TRUE(SharedMemory::remove(name));
    // The mapping outlives the name.
    again->data()[0] = std::byte{1};
    EXPECT_FALSE(SharedMemory::open(name));
    auto twice = SharedMemory::remove(name);
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.error().errno_value, ENOENT);
    EXPECT_NE(twice.error().message().find("shm_unlink(" + name.str() + ")"), std::string::npos);
}

TEST(SharedMemory, moved_from_object_owns_nothing) {
    ShmName name("move");
    auto shm = SharedMemory::create(name, 4096);
    ASSERT_TRUE(shm) << shm.error().message();
    std::byte* data = shm->data();
    SharedMemory moved = std::move(*shm);
    EXPECT_EQ(moved.data(), data);
    EXPECT_EQ(shm->data(), nullptr);  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_FALSE(shm->resize(8192));
    moved.data()[0] = std::byte{1};
}

TEST(SharedMemory, options_say_what_was_applied) {
    ShmName name("options");
    SharedMemory::Options options;
    options.populate = true;
    options.lock = true;
    options.huge_pages = true;
    auto shm = SharedMemory::create(name, 1 << 20, 0600, options);
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_TRUE(shm->status().populated);
    // Best effort: each option is either applied or explained.
    EXPECT_TRUE(shm->status().locked || shm->status().note.find("mlock") != std::string::npos)
        << shm->status().note;
    EXPECT_TRUE(shm->status().huge_pages || shm->status().note.find("huge") != std::string::npos)
        << shm->status().note;
    if (::geteuid() == 0) {
        EXPECT_TRUE(shm->status().locked) << shm->status().note;
    }
}

TEST(SharedMemory, foreign_owner_refused_unless_allowed) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to create a segment another uid can open";
    }
    ShmName name("foreign");
    auto shm = SharedMemory::create(name, 4096, 0666);
    ASSERT_TRUE(shm) << shm.error().message();
    Forked child([&](int) -> std::string {
        if (auto err = drop_privileges(); !err.empty()) {
            return err;
        }
        auto refused = SharedMemory::open(name);
        if (refused) {
            return "open of a root-owned segment succeeded";
        }
        if (refused.error().kind != ErrorKind::permission || refused.error().errno_value != 0) {
            return "wrong error: " + refused.error().message();
        }
        const std::string msg = refused.error().message();
        if (msg.find("owned by uid 0, not by our uid 65534") == std::string::npos ||
            msg.find("allow_foreign_owner = true") == std::string::npos ||
            msg.find(name.str()) == std::string::npos) {
            return "unclear message: " + msg;
        }
        auto allowed = SharedMemory::open(name, ShmAccess::read_write, true);
        if (!allowed) {
            return "allowed open failed: " + allowed.error().message();
        }
        std::memcpy(allowed->data(), "nobody", 6);
        return "ok";
    });
    EXPECT_EQ(child.result(), "ok");
    EXPECT_EQ(std::memcmp(shm->data(), "nobody", 6), 0);
}

TEST(SharedMemory, mode_0600_refused_to_another_uid_with_clear_message) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to switch to another uid";
    }
    ShmName name("private");
    auto shm = SharedMemory::create(name, 4096);
    ASSERT_TRUE(shm) << shm.error().message();
    Forked child([&](int) -> std::string {
        if (auto err = drop_privileges(); !err.empty()) {
            return err;
        }
        auto refused = SharedMemory::open(name, ShmAccess::read_only, true);
        if (refused) {
            return "open of a 0600 root segment succeeded";
        }
        const std::string msg = refused.error().message();
        if (refused.error().kind != ErrorKind::permission || refused.error().errno_value != EACCES ||
            msg.find(name.str()) == std::string::npos || msg.find("EACCES") == std::string::npos ||
            msg.find("owned by uid 0 gid 0 with mode 0600 and we are uid 65534") == std::string::npos) {
            return "unexpected error: " + msg;
        }
        return "ok";
    });
    EXPECT_EQ(child.result(), "ok");
}

TEST(SharedMemory, list_segments_shows_mappers_and_fd_holders) {
    ShmName name("list");
    auto shm = SharedMemory::create(name, 12288, 0640);
    ASSERT_TRUE(shm) << shm.error().message();
    // The child unmaps the inherited mapping and keeps only a descriptor.
    std::byte* data = shm->data();
    const std::size_t size = shm->size();
    Forked child([&](int out) -> std::string {
        ::munmap(data, size);
        const int fd = ::shm_open(name.str().c_str(), O_RDONLY, 0);
        if (fd < 0 || ::write(out, "ready", 5) != 5) {
            return "shm_open failed";
        }
        ::pause();
        return "ok";
    });
    ASSERT_EQ(child.read_some(), "ready");

    auto list = xproc::list_segments();
    ASSERT_TRUE(list) << list.error().message();
    const auto it = std::find_if(list->segments.begin(), list->segments.end(),
                                 [&](const xproc::ShmSegmentInfo& s) { return s.name == name.str(); });
    ASSERT_NE(it, list->segments.end());
    EXPECT_EQ(it->size, 12288u);
    EXPECT_EQ(it->uid, ::geteuid());
    EXPECT_EQ(it->gid, ::getegid());
    EXPECT_EQ(it->mode, 0640u);
    EXPECT_TRUE(it->regular_file);
    const auto has = [](const std::vector<pid_t>& v, pid_t p) {
        return std::find(v.begin(), v.end(), p) != v.end();
    };
    EXPECT_TRUE(has(it->mapped_by, ::getpid()));
    EXPECT_TRUE(has(it->held_open_by, ::getpid()));
    EXPECT_TRUE(has(it->held_open_by, child.pid()));
    EXPECT_FALSE(has(it->mapped_by, child.pid()));
    EXPECT_TRUE(std::is_sorted(it->held_open_by.begin(), it->held_open_by.end()));
    EXPECT_TRUE(std::is_sorted(list->segments.begin(), list->segments.end(),
                               [](const auto& a, const auto& b) { return a.name < b.name; }));
    // Even root may be refused some processes (e.g. a non-dumpable init in a VM): they are counted.
    auto pids = xproc::list_processes();
    ASSERT_TRUE(pids);
    EXPECT_LT(list->uninspected_processes, pids->size());
}

TEST(SharedMemory, anonymous_segment_has_no_name_and_shows_as_memfd) {
    auto shm = SharedMemory::anonymous(4096, "xproc-test-anon");
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_TRUE(shm->is_anonymous());
    EXPECT_EQ(shm->name(), "");
    EXPECT_EQ(::fcntl(shm->fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    EXPECT_EQ(::fcntl(shm->fd(), F_GET_SEALS), F_SEAL_SEAL);  // sealing not allowed by default
    auto sealable = SharedMemory::anonymous(4096, "xproc-test-seal", true);
    ASSERT_TRUE(sealable) << sealable.error().message();
    EXPECT_EQ(::fcntl(sealable->fd(), F_ADD_SEALS, F_SEAL_SHRINK), 0);
    auto maps = xproc::read_file("/proc/self/maps");
    ASSERT_TRUE(maps);
    EXPECT_NE(maps->find("/memfd:xproc-test-anon"), std::string::npos);
}

TEST(SharedMemory, memfd_passed_over_socketpair_is_written_by_child) {
    auto shm = SharedMemory::anonymous(4096, "xproc-test-pass");
    ASSERT_TRUE(shm) << shm.error().message();
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    xproc::UniqueFd parent_end(sv[0]);
    xproc::UniqueFd child_end(sv[1]);
    Forked child([&](int) -> std::string {
        auto fd = xproc::receive_fd(child_end.get());
        if (!fd) {
            return fd.error().message();
        }
        if (fd->get() == shm->fd()) {
            return "received the inherited descriptor number";
        }
        auto mapped = SharedMemory::from_fd(std::move(*fd));
        if (!mapped) {
            return mapped.error().message();
        }
        if (mapped->size() != 4096) {
            return "wrong size " + std::to_string(mapped->size());
        }
        std::memcpy(mapped->data(), "from child", 10);
        return "ok";
    });
    ASSERT_TRUE(xproc::send_fd(parent_end.get(), shm->fd()));
    EXPECT_EQ(child.result(), "ok");
    EXPECT_EQ(std::memcmp(shm->data(), "from child", 10), 0);
}

TEST(SharedMemory, receive_fd_reports_a_closed_peer) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    xproc::UniqueFd a(sv[0]);
    ::close(sv[1]);
    auto fd = xproc::receive_fd(a.get());
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error().kind, ErrorKind::invalid_argument);
    EXPECT_NE(fd.error().message().find("peer closed"), std::string::npos);
}

TEST(SharedMemory, take_fd_takes_a_memfd_from_a_child) {
    Forked child([&](int out) -> std::string {
        auto shm = SharedMemory::anonymous(4096, "xproc-test-take");
        if (!shm) {
            return shm.error().message();
        }
        std::memcpy(shm->data(), "taken", 5);
        const std::string fd = std::to_string(shm->fd());
        if (::write(out, fd.data(), fd.size()) != static_cast<ssize_t>(fd.size())) {
            return "write";
        }
        ::pause();
        return "ok";
    });
    const int target_fd = std::stoi(child.read_some());
    auto proc = xproc::Process::open(child.pid());
    ASSERT_TRUE(proc) << proc.error().message();
    auto fd = xproc::take_fd(proc->pidfd(), target_fd, child.pid());
    ASSERT_TRUE(fd) << fd.error().message();
    auto shm = SharedMemory::from_fd(std::move(*fd), ShmAccess::read_only);
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_EQ(std::memcmp(shm->data(), "taken", 5), 0);

    auto missing = xproc::take_fd(proc->pidfd(), 999, child.pid());
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().errno_value, EBADF);
    EXPECT_NE(missing.error().message().find("fd 999 is not open"), std::string::npos);
}

TEST(SharedMemory, take_fd_refusal_explains_the_ptrace_rule) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to switch to another uid";
    }
    // The target stays root; the taker drops to nobody.
    Forked target([&](int out) -> std::string {
        if (::write(out, "ready", 5) != 5) {
            return "write";
        }
        ::pause();
        return "ok";
    });
    ASSERT_EQ(target.read_some(), "ready");
    const pid_t target_pid = target.pid();
    Forked taker([&](int) -> std::string {
        auto proc = xproc::Process::open(target_pid);
        if (!proc) {
            return proc.error().message();
        }
        if (auto err = drop_privileges(); !err.empty()) {
            return err;
        }
        auto fd = xproc::take_fd(proc->pidfd(), 0, target_pid);
        if (fd) {
            return "pidfd_getfd from a root process succeeded";
        }
        const std::string msg = fd.error().message();
        if (fd.error().kind != ErrorKind::permission || fd.error().hint.empty() ||
            msg.find("pidfd_getfd") == std::string::npos) {
            return "unclear error: " + msg;
        }
        auto bare = xproc::take_fd(proc->pidfd(), 0);  // no pid: the generic rule
        if (bare || bare.error().hint.find("PTRACE_MODE_ATTACH") == std::string::npos) {
            return "generic hint missing";
        }
        return "ok";
    });
    EXPECT_EQ(taker.result(), "ok");
}
