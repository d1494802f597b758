// SPDX-License-Identifier: MIT
// Permission model of ring segments: a segment of another user is refused, with a message
// naming the segment, its owner and what would allow it. Needs root (to create a segment as
// root and drop to another uid in a child); skipped otherwise.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>

#include "stress_support.hpp"
#include "xproc/ring.hpp"
#include "xproc/ring_segment.hpp"

namespace {

using xproc::ErrorKind;
using xproc::RingConfig;
using xproc::RingSegment;
using xproc::ShmAccess;
using xproc::stress::ShmName;

constexpr uid_t NOBODY = 65534;

/// What a child reported.
struct Report {
    bool ran = false;  ///< the child dropped privileges and sent a report
    std::string text;
};

/// Runs `fn` in a child that has dropped every privilege to uid/gid NOBODY (no
/// supplementary groups); returns the string it produced. Bounded: the child is killed
/// after 20 s.
Report as_nobody(const std::function<std::string()>& fn) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe2: " << std::strerror(errno);
        return {};
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        ADD_FAILURE() << "fork: " << std::strerror(errno);
        return {};
    }
    if (pid == 0) {
        ::close(fds[0]);
        std::string out;
        if (::setgroups(0, nullptr) != 0 || ::setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
            ::setresuid(NOBODY, NOBODY, NOBODY) != 0) {
            out = std::string("DROP ") + std::strerror(errno);
        } else if (::geteuid() != NOBODY) {
            out = "DROP still uid " + std::to_string(::geteuid());
        } else {
            out = "OK " + fn();
        }
        (void)!::write(fds[1], out.data(), out.size());
        ::_exit(0);
    }
    ::close(fds[1]);
    Report report;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        struct pollfd pfd = {fds[0], POLLIN, 0};
        if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
            ADD_FAILURE() << "the unprivileged child did not answer within 20 s";
            break;
        }
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        report.text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    ::kill(pid, SIGKILL);  // no-op when it has exited
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (report.text.starts_with("OK ")) {
        report.ran = true;
        report.text.erase(0, 3);
    } else {
        ADD_FAILURE() << "dropping privileges failed: " << report.text;
    }
    return report;
}

/// "kind=K errno=E message" of a failed result, "opened" of a success.
template <typename T>
std::string describe(const xproc::Result<T>& r) {
    if (r) {
        return "opened";
    }
    return "kind=" + std::string(xproc::to_string(r.error().kind)) +
           " errno=" + std::to_string(r.error().errno_value) + " " + r.error().message();
}

class RingPermission : public testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root: creates a segment as root and opens it as uid " << NOBODY;
        }
    }
    void TearDown() override { xproc::stress::expect_no_children(); }
};

TEST_F(RingPermission, a_0600_ring_of_root_is_refused_to_another_uid_naming_segment_owner_and_remedy) {
    ShmName name("perm-0600");
    RingConfig config;
    config.capacity = 4096;
    ASSERT_EQ(config.mode, 0600u);  // the default
    auto seg = RingSegment::create(name.str(), config);
    ASSERT_TRUE(seg.has_value()) << seg.error().message();
    const Report report = as_nobody([&] { return describe(RingSegment::open(name.str())); });
    ASSERT_TRUE(report.ran);
    const std::string& m = report.text;
    // shm_open(O_RDWR) itself is refused: EACCES, kind permission.
    EXPECT_TRUE(m.starts_with("kind=permission errno=" + std::to_string(EACCES) + " ")) << m;
    EXPECT_NE(m.find(name.str()), std::string::npos) << "names the segment: " << m;
    EXPECT_NE(m.find("owned by uid 0"), std::string::npos) << "names the owner: " << m;
    EXPECT_NE(m.find("mode 0600"), std::string::npos) << "names the mode: " << m;
    EXPECT_NE(m.find("we are uid " + std::to_string(NOBODY)), std::string::npos) << m;
    EXPECT_NE(m.find("run as its owner"), std::string::npos) << "says what would allow it: " << m;
    EXPECT_NE(m.find("mode that admits us"), std::string::npos) << m;
    // Read-only is refused the same way.
    const Report ro =
        as_nobody([&] { return describe(RingSegment::open(name.str(), ShmAccess::read_only)); });
    ASSERT_TRUE(ro.ran);
    EXPECT_TRUE(ro.text.starts_with("kind=permission errno=" + std::to_string(EACCES) + " ")) << ro.text;
}

TEST_F(RingPermission, a_foreign_ring_that_its_mode_admits_is_still_refused_unless_allowed) {
    ShmName name("perm-0666");
    RingConfig config;
    config.capacity = 4096;
    config.mode = 0666;
    auto seg = RingSegment::create(name.str(), config);
    ASSERT_TRUE(seg.has_value()) << seg.error().message();
    const Report refused = as_nobody([&] { return describe(RingSegment::open(name.str())); });
    ASSERT_TRUE(refused.ran);
    const std::string& m = refused.text;
    // The kernel allowed the open; the ownership rule refuses (no errno: not a system call).
    EXPECT_TRUE(m.starts_with("kind=permission errno=0 ")) << m;
    EXPECT_NE(m.find(name.str()), std::string::npos) << m;
    EXPECT_NE(m.find("owned by uid 0, not by our uid " + std::to_string(NOBODY)), std::string::npos) << m;
    EXPECT_NE(m.find("allow_foreign_owner"), std::string::npos) << "says what would allow it: " << m;
    // Asked for, it opens, and the other user can take the consumer role.
    const Report allowed = as_nobody([&] {
        auto s = RingSegment::open(name.str(), ShmAccess::read_write, /*allow_foreign_owner=*/true);
        if (!s) {
            return describe(s);
        }
        return describe(s->consumer());
    });
    ASSERT_TRUE(allowed.ran);
    EXPECT_EQ(allowed.text, "opened");
}

}  // namespace
