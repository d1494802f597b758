// SPDX-License-Identifier: MIT
// open_fd / open_fd_at: O_CLOEXEC, the mode of created files, errors naming the path.

#include "xproc/fd.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdlib>
#include <string>

namespace {

/// A fresh directory, removed with its files at the end of the test.
struct TempDir {
    std::string path;
    TempDir() {
        char templ[] = "/tmp/xproc-test-fd-XXXXXX";
        const char* made = mkdtemp(templ);
        EXPECT_NE(made, nullptr);
        path = made != nullptr ? made : "";
    }
    ~TempDir() {
        for (const char* name : {"created", "at"}) {
            unlink((path + "/" + name).c_str());
        }
        rmdir(path.c_str());
    }
};

/// Sets the umask for one scope.
struct Umask {
    mode_t old;
    explicit Umask(mode_t m) : old(umask(m)) {}
    ~Umask() { umask(old); }
};

mode_t mode_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

TEST(OpenFd, creates_with_the_given_mode_less_the_umask) {
    TempDir dir;
    const Umask mask(022);
    const std::string path = dir.path + "/created";
    auto fd = xproc::open_fd(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0, 0666);
    ASSERT_TRUE(fd) << fd.error().message();
    EXPECT_EQ(mode_of(path), 0644u);
    EXPECT_NE(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);

    auto dir_fd = xproc::open_fd(dir.path.c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_TRUE(dir_fd) << dir_fd.error().message();
    auto at = xproc::open_fd_at(dir_fd->get(), "at", O_WRONLY | O_CREAT | O_EXCL, 0, 0600);
    ASSERT_TRUE(at) << at.error().message();
    EXPECT_EQ(mode_of(dir.path + "/at"), 0600u);
}

TEST(OpenFd, error_names_the_path_and_the_pid) {
    auto fd = xproc::open_fd("/nonexistent/xproc-test", O_RDONLY, 42);
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error().errno_value, ENOENT);
    EXPECT_EQ(fd.error().pid, 42);
    EXPECT_NE(fd.error().operation.find("/nonexistent/xproc-test"), std::string::npos);
}

}  // namespace
