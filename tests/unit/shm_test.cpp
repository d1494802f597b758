// SPDX-License-Identifier: MIT
#include "xproc/shm.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "child.hpp"
#include "shm_name.hpp"
#include "xproc/maps.hpp"
#include "xproc/message_queue.hpp"
#include "xproc/process.hpp"
#include "xproc/ring_segment.hpp"

namespace {

using xproc::ErrorKind;
using xproc::SharedMemory;
using xproc::ShmAccess;

using xproc::test::ShmName;

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

TEST(SharedMemory, creating_a_ring_or_queue_ignores_temporary_names_left_by_a_dead_process_with_our_pid) {
    // A creator killed between creating its temporary name and renaming it leaves the
    // name behind; a later process that gets the same pid must still be able to create
    // (this failed in CI as "ring create(...): File exists"). The child plants such names
    // for its own pid, in the old "/.xproc-new-PID-N" form and in the current one's prefix.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const std::string pid = std::to_string(::getpid());
        std::vector<std::string> stale;
        for (int n = 0; n < 4; ++n) {
            stale.push_back("/.xproc-new-" + pid + "-" + std::to_string(n));
        }
        for (const auto& name : stale) {
            const int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
            if (fd < 0) {
                ::_exit(10);
            }
            ::close(fd);
        }
        const std::string ring = "/xproc-test-" + pid + "-stale-ring";
        const std::string queue = "/xproc-test-" + pid + "-stale-queue";
        int status = 0;
        if (!xproc::RingSegment::create(ring)) {
            status = 11;
        }
        try {
            xproc::message_queue q(boost::interprocess::create_only, queue.c_str(), 4, 16);
        } catch (const boost::interprocess::interprocess_exception&) {
            status = status == 0 ? 12 : status;
        }
        // Nothing else of ours is left under a temporary name.
        for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
            const std::string f = "/" + entry.path().filename().string();
            if (f.rfind("/.xproc-new-" + pid + "-", 0) == 0 &&
                std::find(stale.begin(), stale.end(), f) == stale.end()) {
                status = status == 0 ? 13 : status;
            }
        }
        for (const auto& name : stale) {
            ::shm_unlink(name.c_str());
        }
        ::shm_unlink(ring.c_str());
        xproc::message_queue::remove(queue.c_str());
        ::_exit(status);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10: planting failed, 11: ring create failed, 12: queue create "
                                         "failed, 13: a temporary name was left";
}

namespace {
/// Creates `name` (mode 0600) and sets its modification time `age` in the past.
bool plant(const std::string& name, std::chrono::seconds age) {
    const int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
        return false;
    }
    timespec times[2];
    ::clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= age.count();
    times[1] = times[0];
    const bool ok = ::futimens(fd, times) == 0;
    ::close(fd);
    return ok;
}
bool shm_exists(const std::string& name) {
    return std::filesystem::exists("/dev/shm" + name);
}
}  // namespace

TEST(SharedMemory, temporary_names_are_recognised_with_their_creator) {
    pid_t creator = 0;
    EXPECT_TRUE(SharedMemory::is_temporary_name("/.xproc-new-1234-0-00ff00ff00ff00ff", &creator));
    EXPECT_EQ(creator, 1234);
    EXPECT_TRUE(SharedMemory::is_temporary_name(".xproc-new-77-3", &creator));  // the old form
    EXPECT_EQ(creator, 77);
    for (const char* name : {"/.xproc-new-", "/.xproc-new-12", "/.xproc-new--1-2", "/.xproc-new-0-1",
                             "/.xproc-new-12a-1", "/.xproc-new-99999999999-1", "/xproc-new-12-1", "/ring"}) {
        EXPECT_FALSE(SharedMemory::is_temporary_name(name)) << name;
    }
}

TEST(SharedMemory, stale_temporary_names_of_dead_creators_are_removed_and_no_others) {
    const std::string dead = std::to_string(xproc::test::vanished_pid());
    const std::string alive = std::to_string(::getpid());
    const std::string old_dead = "/.xproc-new-" + dead + "-0-test0000000000a";
    const std::string young_dead = "/.xproc-new-" + dead + "-1-test0000000000b";
    const std::string old_alive = "/.xproc-new-" + alive + "-2-test0000000000c";
    const std::string old_dead_foreign = "/.xproc-new-" + dead + "-3-test0000000000d";
    ShmName unrelated("not-temporary");
    ASSERT_TRUE(plant(old_dead, std::chrono::seconds{120}));
    ASSERT_TRUE(plant(young_dead, std::chrono::seconds{0}));
    ASSERT_TRUE(plant(old_alive, std::chrono::seconds{120}));
    ASSERT_TRUE(plant(unrelated.str(), std::chrono::seconds{120}));
    ASSERT_TRUE(plant(old_dead_foreign, std::chrono::seconds{120}));
    ASSERT_EQ(::chown(("/dev/shm" + old_dead_foreign).c_str(), 65534, 65534), 0);  // tests run as root

    const std::vector<std::string> removed = SharedMemory::remove_stale_temporaries(std::chrono::seconds{60});
    const auto was_removed = [&](const std::string& n) {
        return std::find(removed.begin(), removed.end(), n) != removed.end();
    };
    // Another test process creating a ring meanwhile may have swept it first (ctest -j):
    // what counts is that it is gone.
    EXPECT_FALSE(shm_exists(old_dead)) << (was_removed(old_dead) ? "removed by us" : "not in our list");
    for (const std::string& kept : {young_dead, old_alive, unrelated.str(), old_dead_foreign}) {
        EXPECT_FALSE(was_removed(kept)) << kept;
        EXPECT_TRUE(shm_exists(kept)) << kept;
    }
    for (const std::string& n : {old_dead, young_dead, old_alive, old_dead_foreign}) {
        ::shm_unlink(n.c_str());
    }
}

TEST(SharedMemory, creating_a_ring_removes_stale_temporary_names) {
    // create_temporary sweeps once per process: a fresh child does the creation.
    const std::string dead = std::to_string(xproc::test::vanished_pid());
    const std::string stale = "/.xproc-new-" + dead + "-0-test0000000000e";
    ASSERT_TRUE(plant(stale, std::chrono::seconds{3600}));
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const std::string ring = "/xproc-test-" + std::to_string(::getpid()) + "-sweep-ring";
        const bool ok = static_cast<bool>(xproc::RingSegment::create(ring));
        ::shm_unlink(ring.c_str());
        ::_exit(ok ? 0 : 11);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_FALSE(shm_exists(stale));
    ::shm_unlink(stale.c_str());
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

// --- SharedMemory::from_process ------------------------------------------------

namespace {

using xproc::ShmVia;

/// In a child: writes the address `p` as hex and a newline to `out`.
bool report_address(int out, const void* p) {
    char buf[32];
    const int n = std::snprintf(buf, sizeof buf, "%" PRIxPTR "\n", reinterpret_cast<std::uintptr_t>(p));
    return ::write(out, buf, static_cast<std::size_t>(n)) == n;
}

/// The address a child reported with report_address (0 if it reported something else).
std::uint64_t read_address(Forked& child) {
    const std::string text = child.read_some();
    if (text.empty() || text.back() != '\n') {
        ADD_FAILURE() << "child said: " << text;
        return 0;
    }
    return std::stoull(text, nullptr, 16);
}

/// In a child: a MAP_SHARED mapping of a new memfd of `file_size` bytes, `map_size`
/// bytes long from file offset `offset`; each page of the file starts with "page N".
/// Keeps the descriptor unless `close_fd`.
void* memfd_mapping(std::size_t file_size, std::size_t map_size, off_t offset = 0, bool close_fd = false) {
    const int fd = ::memfd_create("xproc-test-from-process", MFD_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(file_size)) != 0) {
        return nullptr;
    }
    for (std::size_t page = 0; page * 4096 < file_size; ++page) {
        const std::string text = "page " + std::to_string(page);
        if (::pwrite(fd, text.data(), text.size(), static_cast<off_t>(page * 4096)) !=
            static_cast<ssize_t>(text.size())) {
            return nullptr;
        }
    }
    void* p = ::mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
    if (close_fd) {
        ::close(fd);
    }
    return p == MAP_FAILED ? nullptr : p;
}

/// A child that maps something with `make`, reports its address and waits to be killed.
Forked holding(const std::function<void*()>& make) {
    return Forked([make](int out) -> std::string {
        void* p = make();
        if (p == nullptr || !report_address(out, p)) {
            return std::string("mapping failed: ") + std::strerror(errno);
        }
        ::pause();
        return "ok";
    });
}

/// Permissions of our own mapping that contains `p`, e.g. "r--s" ("" if none).
std::string local_perms(const void* p) {
    auto map = xproc::read_maps(::getpid());
    EXPECT_TRUE(map) << map.error().message();
    if (!map) {
        return {};
    }
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    for (const xproc::Mapping& m : *map) {
        if (m.start <= a && a < m.end) {
            return std::string(m.perms.text());
        }
    }
    return {};
}

/// In a child: clears the capabilities in `drop` (bit numbers) from the effective,
/// permitted and inheritable sets (everything when `drop` is ~0); "" on success.
std::string drop_capabilities(std::uint64_t drop) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capget, &header, data) != 0) {
        return std::string("capget: ") + std::strerror(errno);
    }
    for (int i = 0; i < 2; ++i) {
        const auto keep = static_cast<std::uint32_t>(~(drop >> (32 * i)));
        data[i].effective &= keep;
        data[i].permitted &= keep;
        data[i].inheritable &= keep;
    }
    if (::syscall(SYS_capset, &header, data) != 0) {
        return std::string("capset: ") + std::strerror(errno);
    }
    return {};
}

constexpr std::uint64_t MAP_FILES_CAPS = (std::uint64_t{1} << 21) | (std::uint64_t{1} << 40);
constexpr std::uint64_t ALL_CAPS = ~std::uint64_t{0};

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST(SharedMemoryFromProcess, maps_a_memfd_mapping_and_sees_the_childs_writes_live) {
    int go[2];
    ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
    xproc::UniqueFd go_read(go[0]), go_write(go[1]);
    Forked child([&](int out) -> std::string {
        auto* p = static_cast<char*>(memfd_mapping(3 * 4096, 3 * 4096));
        if (p == nullptr || !report_address(out, p)) {
            return "mapping failed";
        }
        char byte = 0;
        if (::read(go_read.get(), &byte, 1) != 1) {
            return "no go";
        }
        std::memcpy(p + 4096 + 8, "written after", 13);
        if (::write(out, "done\n", 5) != 5) {
            return "write";
        }
        ::pause();
        return "ok";
    });
    const std::uint64_t addr = read_address(child);
    ASSERT_NE(addr, 0u);

    auto shm = SharedMemory::from_process(child.pid(), addr + 4096 + 10);  // any address inside
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_EQ(shm->size(), 3u * 4096);
    EXPECT_EQ(shm->access(), ShmAccess::read_only);
    EXPECT_TRUE(shm->is_anonymous());
    EXPECT_FALSE(shm->created());
    const xproc::ShmOrigin* origin = shm->origin();
    ASSERT_NE(origin, nullptr);
    EXPECT_EQ(origin->pid, child.pid());
    EXPECT_EQ(origin->start, addr);
    EXPECT_EQ(origin->end, addr + 3 * 4096);
    EXPECT_EQ(origin->file_offset, 0u);
    EXPECT_EQ(origin->file_size, 3u * 4096);
    EXPECT_FALSE(origin->truncated);
    EXPECT_EQ(origin->perms, "rw-s");
    EXPECT_EQ(origin->name, "/memfd:xproc-test-from-process (deleted)");
    if (::geteuid() == 0) {
        EXPECT_EQ(origin->via, ShmVia::map_files);
        EXPECT_EQ(origin->target_fd, -1);
        EXPECT_EQ(origin->fallback_note, "");
    }
    EXPECT_EQ(std::memcmp(shm->data(), "page 0", 6), 0);
    EXPECT_EQ(std::memcmp(shm->local(addr + 2 * 4096), "page 2", 6), 0);
    EXPECT_EQ(shm->local(addr), shm->data());
    EXPECT_EQ(shm->local(addr - 1), nullptr);
    EXPECT_EQ(shm->local(addr + 3 * 4096), nullptr);

    // The same pages, not a copy: a write the child makes now shows here.
    ASSERT_EQ(::write(go_write.get(), "g", 1), 1);
    ASSERT_EQ(child.read_some(), "done\n");
    EXPECT_EQ(std::memcmp(shm->local(addr + 4096 + 8), "written after", 13), 0);
}

TEST(SharedMemoryFromProcess, is_read_only_by_default_and_writes_when_asked) {
    int go[2];
    ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
    xproc::UniqueFd go_read(go[0]), go_write(go[1]);
    Forked child([&](int out) -> std::string {
        auto* p = static_cast<char*>(memfd_mapping(4096, 4096));
        if (p == nullptr || !report_address(out, p)) {
            return "mapping failed";
        }
        char byte = 0;
        if (::read(go_read.get(), &byte, 1) != 1) {
            return "no go";
        }
        return std::memcmp(p + 100, "from the parent", 15) == 0 ? "ok" : "the parent's write is not seen";
    });
    const std::uint64_t addr = read_address(child);
    ASSERT_NE(addr, 0u);

    auto ro = SharedMemory::from_process(child.pid(), addr);
    ASSERT_TRUE(ro) << ro.error().message();
    EXPECT_EQ(ro->access(), ShmAccess::read_only);
    EXPECT_EQ(local_perms(ro->data()), "r--s");
    EXPECT_FALSE(ro->resize(8192));

    auto rw = SharedMemory::from_process(child.pid(), addr, ShmAccess::read_write);
    ASSERT_TRUE(rw) << rw.error().message();
    EXPECT_EQ(local_perms(rw->data()), "rw-s");
    std::memcpy(rw->data() + 100, "from the parent", 15);
    EXPECT_EQ(std::memcmp(ro->data() + 100, "from the parent", 15), 0);
    ASSERT_EQ(::write(go_write.get(), "g", 1), 1);
    EXPECT_EQ(child.result(), "ok");
}

TEST(SharedMemoryFromProcess, maps_a_posix_shm_mapping) {
    ShmName name("from-process");
    Forked child = holding([&]() -> void* {
        auto shm = SharedMemory::create(name, 8192);
        if (!shm) {
            return nullptr;
        }
        std::memcpy(shm->data() + 4096, "posix segment", 13);
        void* p = shm->data();
        new SharedMemory(std::move(*shm));  // kept mapped until the child is killed
        return p;
    });
    const std::uint64_t addr = read_address(child);
    ASSERT_NE(addr, 0u);
    auto shm = SharedMemory::from_process(child.pid(), addr + 4096);
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_EQ(shm->origin()->name, "/dev/shm" + name.str());
    EXPECT_EQ(shm->size(), 8192u);
    EXPECT_EQ(std::memcmp(shm->local(addr + 4096), "posix segment", 13), 0);
}

TEST(SharedMemoryFromProcess, maps_shared_anonymous_memory) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "shared anonymous memory is reachable only through map_files (CAP_SYS_ADMIN)";
    }
    Forked child = holding([]() -> void* {
        void* p = ::mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            return nullptr;
        }
        std::memcpy(static_cast<char*>(p) + 4096, "anonymous", 9);
        return p;
    });
    const std::uint64_t addr = read_address(child);
    ASSERT_NE(addr, 0u);
    auto shm = SharedMemory::from_process(child.pid(), addr);
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_EQ(shm->origin()->name, "/dev/zero (deleted)");
    EXPECT_EQ(shm->origin()->via, ShmVia::map_files);
    EXPECT_EQ(shm->size(), 2u * 4096);
    EXPECT_EQ(std::memcmp(shm->data() + 4096, "anonymous", 9), 0);
}

TEST(SharedMemoryFromProcess, maps_system_v_shared_memory) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "System V memory is reachable only through map_files (CAP_SYS_ADMIN)";
    }
    Forked child = holding([]() -> void* {
        const int id = ::shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        if (id < 0) {
            return nullptr;
        }
        void* p = ::shmat(id, nullptr, 0);
        ::shmctl(id, IPC_RMID, nullptr);  // gone with the last detach: nothing left behind
        if (p == reinterpret_cast<void*>(-1)) {
            return nullptr;
        }
        std::memcpy(p, "system v", 8);
        return p;
    });
    const std::uint64_t addr = read_address(child);
    ASSERT_NE(addr, 0u);
    auto shm = SharedMemory::from_process(child.pid(), addr);
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_TRUE(shm->origin()->name.starts_with("/SYSV")) << shm->origin()->name;
    EXPECT_EQ(std::memcmp(shm->data(), "system v", 8), 0);
}

TEST(SharedMemoryFromProcess, maps_the_file_region_at_the_mappings_offset) {
    // Pages 2 and 3 of a 4-page memfd.
    Forked child = holding([] { return memfd_mapping(4 * 4096, 2 * 4096, 2 * 4096); });
    const std::uint64_t addr = read_address(child);
    ASSERT_NE(addr, 0u);
    auto shm = SharedMemory::from_process(child.pid(), addr + 4096);
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_EQ(shm->origin()->file_offset, 2u * 4096);
    EXPECT_EQ(shm->origin()->file_size, 4u * 4096);
    EXPECT_EQ(shm->size(), 2u * 4096);
    EXPECT_EQ(std::memcmp(shm->data(), "page 2", 6), 0);
    EXPECT_EQ(std::memcmp(shm->local(addr + 4096), "page 3", 6), 0);
}

TEST(SharedMemoryFromProcess, maps_only_the_part_the_file_backs) {
    // A 3-page mapping of a 1-page file: the child would get SIGBUS past the first page.
    Forked child = holding([] { return memfd_mapping(4096, 3 * 4096); });
    const std::uint64_t addr = read_address(child);
    ASSERT_NE(addr, 0u);
    auto shm = SharedMemory::from_process(child.pid(), addr + 2 * 4096);
    ASSERT_TRUE(shm) << shm.error().message();
    EXPECT_TRUE(shm->origin()->truncated);
    EXPECT_EQ(shm->size(), 4096u);
    EXPECT_EQ(shm->origin()->end - shm->origin()->start, 3u * 4096);
    EXPECT_EQ(shm->local(addr + 2 * 4096), nullptr);
    EXPECT_EQ(std::memcmp(shm->data(), "page 0", 6), 0);
}

TEST(SharedMemoryFromProcess, refuses_a_private_mapping_and_says_why) {
    Forked child = holding([]() -> void* {
        if (memfd_mapping(4096, 4096) == nullptr) {  // a shared one too, for the hint
            return nullptr;
        }
        void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? nullptr : p;
    });
    const std::uint64_t addr = read_address(child);
    ASSERT_NE(addr, 0u);
    auto shm = SharedMemory::from_process(child.pid(), addr + 5);
    ASSERT_FALSE(shm);
    const xproc::Error& e = shm.error();
    EXPECT_EQ(e.kind, ErrorKind::invalid_argument);
    EXPECT_EQ(e.pid, child.pid());
    EXPECT_TRUE(e.has_address);
    EXPECT_EQ(e.address, addr + 5);
    const std::string msg = e.message();
    EXPECT_TRUE(contains(msg, "is private (rw-p, MAP_PRIVATE)")) << msg;
    EXPECT_TRUE(contains(msg, "copy-on-write")) << msg;
    EXPECT_TRUE(contains(msg, "only MAP_SHARED mappings")) << msg;
    EXPECT_TRUE(contains(msg, "/memfd:xproc-test-from-process (deleted)")) << msg;  // the shared one
}

TEST(SharedMemoryFromProcess, refuses_an_unmapped_address_and_lists_shared_mappings) {
    Forked child = holding([] { return memfd_mapping(4096, 4096); });
    const std::uint64_t addr = read_address(child);
    ASSERT_NE(addr, 0u);
    auto shm = SharedMemory::from_process(child.pid(), 0x1000);  // below mmap_min_addr: never mapped
    ASSERT_FALSE(shm);
    EXPECT_EQ(shm.error().kind, ErrorKind::invalid_argument);
    const std::string msg = shm.error().message();
    EXPECT_TRUE(contains(msg, "from_process [pid " + std::to_string(child.pid()) +
                                  ", 0x1000]: the address is "
                                  "not inside any mapping of process " +
                                  std::to_string(child.pid())))
        << msg;
    EXPECT_TRUE(contains(msg, "pick an address inside one of its shared mappings: ")) << msg;
    EXPECT_TRUE(contains(msg, "/memfd:xproc-test-from-process (deleted)")) << msg;
}

TEST(SharedMemoryFromProcess, reports_a_process_that_does_not_exist) {
    const pid_t gone = xproc::test::vanished_pid();
    auto shm = SharedMemory::from_process(gone, 0x10000);
    ASSERT_FALSE(shm);
    EXPECT_EQ(shm.error().kind, ErrorKind::no_such_process) << shm.error().message();
    auto bad = SharedMemory::from_process(0, 0x10000);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, ErrorKind::invalid_argument);
}

TEST(SharedMemoryFromProcess, without_map_files_capability_takes_the_descriptor_with_pidfd_getfd) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to hold and drop CAP_SYS_ADMIN";
    }
    Forked target = holding([] { return memfd_mapping(4096, 4096); });
    const std::uint64_t addr = read_address(target);
    ASSERT_NE(addr, 0u);
    const pid_t pid = target.pid();
    Forked caller([&](int) -> std::string {
        if (auto err = drop_capabilities(MAP_FILES_CAPS); !err.empty()) {
            return err;
        }
        auto shm = SharedMemory::from_process(pid, addr);
        if (!shm) {
            return shm.error().message();
        }
        const xproc::ShmOrigin& o = *shm->origin();
        if (o.via != ShmVia::pidfd_getfd || o.target_fd < 0) {
            return "via " + std::string(xproc::to_string(o.via));
        }
        if (!contains(o.fallback_note, "/proc/" + std::to_string(pid) + "/map_files/") ||
            !contains(o.fallback_note, "needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE")) {
            return "note: " + o.fallback_note;
        }
        return std::memcmp(shm->data(), "page 0", 6) == 0 ? "ok" : "wrong data";
    });
    EXPECT_EQ(caller.result(), "ok");
}

TEST(SharedMemoryFromProcess, without_map_files_capability_shared_anonymous_memory_is_refused) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to hold and drop CAP_SYS_ADMIN";
    }
    Forked target = holding([]() -> void* {
        void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? nullptr : p;
    });
    const std::uint64_t addr = read_address(target);
    ASSERT_NE(addr, 0u);
    const pid_t pid = target.pid();
    Forked caller([&](int) -> std::string {
        if (auto err = drop_capabilities(MAP_FILES_CAPS); !err.empty()) {
            return err;
        }
        auto shm = SharedMemory::from_process(pid, addr);
        if (shm) {
            return "mapped without CAP_SYS_ADMIN";
        }
        const xproc::Error& e = shm.error();
        if (e.kind != ErrorKind::permission || e.errno_value != EPERM) {
            return "wrong kind or errno: " + e.message();
        }
        return e.message();
    });
    const std::string msg = caller.result();
    char range[64];
    std::snprintf(range, sizeof range, "%" PRIx64 "-%" PRIx64, addr, addr + 4096);
    EXPECT_EQ(msg,
              "from_process(" + std::string(range) + " /dev/zero (deleted)) [pid " + std::to_string(pid) +
                  ", 0x" + std::string(range).substr(0, std::string(range).find('-')) + "]: /proc/" +
                  std::to_string(pid) + "/map_files/" + range +
                  ": opening it needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the initial user "
                  "namespace, and we have neither; shared anonymous and System V memory has no descriptor "
                  "or path another process could use, so /proc/PID/map_files is the only way to it "
                  "(Operation not permitted); run as root, or grant the tool CAP_CHECKPOINT_RESTORE "
                  "(Linux 5.9+): `sudo setcap cap_checkpoint_restore+ep " +
                  std::string(std::filesystem::canonical("/proc/self/exe")) + "`");
}

TEST(SharedMemoryFromProcess, without_map_files_capability_a_closed_memfd_is_refused) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to hold and drop CAP_SYS_ADMIN";
    }
    Forked target = holding([] { return memfd_mapping(4096, 4096, 0, true); });
    const std::uint64_t addr = read_address(target);
    ASSERT_NE(addr, 0u);
    const pid_t pid = target.pid();
    Forked caller([&](int) -> std::string {
        if (auto err = drop_capabilities(MAP_FILES_CAPS); !err.empty()) {
            return err;
        }
        auto shm = SharedMemory::from_process(pid, addr);
        if (shm) {
            return "mapped without CAP_SYS_ADMIN";
        }
        return std::string(xproc::to_string(shm.error().kind)) + " " +
               std::to_string(shm.error().errno_value) + ": " + shm.error().message();
    });
    const std::string msg = caller.result();
    EXPECT_TRUE(msg.starts_with("permission 0: from_process(")) << msg;
    EXPECT_TRUE(contains(msg, "map_files/")) << msg;
    EXPECT_TRUE(contains(msg,
                         ": Operation not permitted (EPERM): opening it needs CAP_SYS_ADMIN or "
                         "CAP_CHECKPOINT_RESTORE"))
        << msg;
    EXPECT_TRUE(contains(msg, "; pidfd_getfd: no descriptor of process " + std::to_string(pid) +
                                  " refers to the file (it was closed after mmap)"))
        << msg;
    EXPECT_TRUE(contains(msg, "cap_checkpoint_restore+ep")) << msg;
    EXPECT_TRUE(contains(msg, "; or have the process keep the descriptor open")) << msg;
}

TEST(SharedMemoryFromProcess, same_unprivileged_user_gets_it_through_pidfd_getfd) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to switch to another uid";
    }
    Forked target = holding([]() -> void* {
        if (!drop_privileges().empty() || ::prctl(PR_SET_DUMPABLE, 1) != 0) {
            return nullptr;
        }
        return memfd_mapping(4096, 4096);
    });
    const std::uint64_t addr = read_address(target);
    ASSERT_NE(addr, 0u);
    const pid_t pid = target.pid();
    Forked caller([&](int) -> std::string {
        if (auto err = drop_privileges(); !err.empty()) {
            return err;
        }
        auto shm = SharedMemory::from_process(pid, addr);
        if (!shm) {
            return shm.error().message();
        }
        if (shm->origin()->via != ShmVia::pidfd_getfd) {
            return "via " + std::string(xproc::to_string(shm->origin()->via));
        }
        return std::memcmp(shm->data(), "page 0", 6) == 0 ? "ok" : "wrong data";
    });
    EXPECT_EQ(caller.result(), "ok");
}

TEST(SharedMemoryFromProcess, another_users_process_is_refused_with_the_ptrace_rule) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to switch to another uid";
    }
    // A root target; the caller drops to nobody: reading the map is refused already.
    Forked target = holding([] { return memfd_mapping(4096, 4096); });
    const std::uint64_t addr = read_address(target);
    ASSERT_NE(addr, 0u);
    const pid_t pid = target.pid();
    Forked caller([&](int) -> std::string {
        if (auto err = drop_privileges(); !err.empty()) {
            return err;
        }
        auto shm = SharedMemory::from_process(pid, addr);
        if (shm) {
            return "mapped a root process's memory as nobody";
        }
        const xproc::Error& e = shm.error();
        if (e.kind != ErrorKind::permission || e.errno_value != EACCES || e.pid != pid || !e.has_address) {
            return "wrong error: " + e.message();
        }
        return e.message();
    });
    const std::string msg = caller.result();
    EXPECT_TRUE(
        msg.starts_with("open(/proc/" + std::to_string(pid) + "/maps) [pid " + std::to_string(pid) + ", 0x"))
        << msg;
    EXPECT_TRUE(contains(msg, "runs as uid 0")) << msg;
    EXPECT_TRUE(contains(msg, "you are uid 65534 without CAP_SYS_PTRACE")) << msg;
}

TEST(SharedMemoryFromProcess, refusal_names_the_capability_and_the_ptrace_attach_rule) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to switch ids";
    }
    // The target is root without capabilities; the caller's filesystem uid is 0
    // (it may read the map) but its real uid is 65534 (it may not attach), and it
    // has no capabilities (no map_files).
    Forked target = holding([]() -> void* {
        if (!drop_capabilities(ALL_CAPS).empty()) {
            return nullptr;
        }
        return memfd_mapping(4096, 4096);
    });
    const std::uint64_t addr = read_address(target);
    ASSERT_NE(addr, 0u);
    const pid_t pid = target.pid();
    Forked caller([&](int) -> std::string {
        if (::setresuid(65534, 0, 0) != 0) {
            return std::string("setresuid: ") + std::strerror(errno);
        }
        if (auto err = drop_capabilities(ALL_CAPS); !err.empty()) {
            return err;
        }
        auto shm = SharedMemory::from_process(pid, addr);
        if (shm) {
            return "mapped without the rights";
        }
        return std::string(xproc::to_string(shm.error().kind)) + ": " + shm.error().message();
    });
    const std::string msg = caller.result();
    EXPECT_TRUE(msg.starts_with("permission: from_process(")) << msg;
    EXPECT_TRUE(contains(msg, "map_files/")) << msg;
    EXPECT_TRUE(contains(msg,
                         "(EPERM): opening it needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the "
                         "initial user namespace, and we have neither; pidfd_getfd(fd "))
        << msg;
    // access.hpp's uid rule, in attach mode (real uid).
    EXPECT_TRUE(contains(msg, "runs as uid 0")) << msg;
    EXPECT_TRUE(contains(msg, "65534")) << msg;
    EXPECT_TRUE(contains(msg, "CAP_SYS_PTRACE")) << msg;
    EXPECT_TRUE(contains(msg, "cap_checkpoint_restore+ep")) << msg;
}

TEST(SharedMemoryFromProcess, falls_back_to_the_path_when_the_file_still_has_one) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to switch ids";
    }
    ShmName name("from-process-path");
    Forked target = holding([&]() -> void* {
        if (!drop_capabilities(ALL_CAPS).empty()) {
            return nullptr;
        }
        auto shm = SharedMemory::create(name, 4096, 0600);
        if (!shm) {
            return nullptr;
        }
        std::memcpy(shm->data(), "by path", 7);
        void* p = shm->data();
        new SharedMemory(std::move(*shm));  // kept mapped until the child is killed
        return p;
    });
    const std::uint64_t addr = read_address(target);
    ASSERT_NE(addr, 0u);
    const pid_t pid = target.pid();
    Forked caller([&](int) -> std::string {
        if (::setresuid(65534, 0, 0) != 0) {
            return std::string("setresuid: ") + std::strerror(errno);
        }
        if (auto err = drop_capabilities(ALL_CAPS); !err.empty()) {
            return err;
        }
        auto shm = SharedMemory::from_process(pid, addr);
        if (!shm) {
            return shm.error().message();
        }
        if (shm->origin()->via != ShmVia::path) {
            return "via " + std::string(xproc::to_string(shm->origin()->via));
        }
        if (!contains(shm->origin()->fallback_note, "pidfd_getfd(fd ")) {
            return "note: " + shm->origin()->fallback_note;
        }
        return std::memcmp(shm->data(), "by path", 7) == 0 ? "ok" : "wrong data";
    });
    EXPECT_EQ(caller.result(), "ok");
}
