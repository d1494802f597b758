// SPDX-License-Identifier: MIT
#pragma once
/// @file fd.hpp
/// `UniqueFd`: the move-only owner of a file descriptor, and small helpers that
/// open and read files the way the /proc parsers need them.

#include <sys/types.h>
#include <cerrno>
#include <cstddef>
#include <string>
#include <utility>

#include "xproc/detail/page_buffer.hpp"
#include "xproc/error.hpp"

namespace xproc {

/// Owns one file descriptor and closes it exactly once.
///
/// Closing never throws and never retries on EINTR (on Linux the descriptor is
/// released even when close(2) reports EINTR). Not thread safe; move-only.
class UniqueFd {
  public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : m_fd(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : m_fd(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset(other.release());
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return m_fd; }
    bool valid() const noexcept { return m_fd >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    /// Gives up ownership without closing.
    int release() noexcept { return std::exchange(m_fd, -1); }
    /// Closes the current descriptor (if any) and takes `fd`.
    void reset(int fd = -1) noexcept;

  private:
    int m_fd = -1;
};

/// open(2) with O_CLOEXEC added, EINTR retried. The error names the path; `pid`
/// only labels it. `mode` is the permission bits of a file that O_CREAT (or
/// O_TMPFILE) creates, less the umask as with open(2); ignored otherwise. It
/// comes last so that no existing `(path, flags, pid)` call changes meaning.
Result<UniqueFd> open_fd(const char* path, int flags, pid_t pid = 0, mode_t mode = 0) noexcept;
/// openat(2) relative to `dir`, same conventions.
Result<UniqueFd> open_fd_at(int dir, const char* path, int flags, pid_t pid = 0, mode_t mode = 0) noexcept;

/// Appends the whole content of `fd` (from its current offset) to `out`, reading
/// in large chunks. /proc files report size 0, so this reads until EOF.
/// `what` names the file in an error.
Result<void> read_all(int fd, std::string& out, std::string_view what, pid_t pid = 0) noexcept;

/// Same, into a PageBuffer: for large /proc texts (smaps), which this reads with
/// few page faults and no copying as it grows.
Result<void> read_all(int fd, detail::PageBuffer& out, std::string_view what, pid_t pid = 0) noexcept;

/// Reads the whole file `name` (relative to the directory fd `dir`, or AT_FDCWD)
/// into a string; `what` names it in errors: "open(/proc/42/stat)".
Result<std::string> read_file_at(int dir, const char* name, std::string_view what, pid_t pid = 0) noexcept;

/// Reads a whole (small or large) file into a string.
Result<std::string> read_file(const char* path, pid_t pid = 0) noexcept;

namespace detail {
/// Calls `f()` until it does not fail with EINTR; the one place EINTR is retried.
template <typename F>
auto retry_eintr(F&& f) noexcept(noexcept(f())) {
    for (;;) {
        auto r = f();
        if (r != -1 || errno != EINTR) {
            return r;
        }
    }
}
}  // namespace detail

}  // namespace xproc
