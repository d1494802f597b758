// SPDX-License-Identifier: MIT
#include "xproc/fd.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>

namespace xproc {

void UniqueFd::reset(int fd) noexcept {
    const int old = std::exchange(m_fd, fd);
    if (old >= 0) {
        // No retry on EINTR: Linux always releases the descriptor.
        ::close(old);
    }
}

Result<UniqueFd> open_fd(const char* path, int flags, pid_t pid, mode_t mode) noexcept {
    return open_fd_at(AT_FDCWD, path, flags, pid, mode);
}

Result<UniqueFd> open_fd_at(int dir, const char* path, int flags, pid_t pid, mode_t mode) noexcept {
    const int fd = detail::retry_eintr([&] { return ::openat(dir, path, flags | O_CLOEXEC, mode); });
    if (fd < 0) {
        const int err = errno;
        return fail(Error::from_errno(err, std::string("open(") + path + ")", pid));
    }
    return UniqueFd(fd);
}

Result<void> read_all(int fd, std::string& out, std::string_view what, pid_t pid) noexcept {
    // /proc files return at most about a page per read(2), so this loops many
    // times: each round reads straight into the string's spare capacity without
    // zero-filling it (resize_and_overwrite), and the capacity grows geometrically.
    constexpr std::size_t CHUNK = 64 * 1024;
    for (;;) {
        const std::size_t used = out.size();
        if (out.capacity() - used < CHUNK) {
            out.reserve(std::max(out.capacity() * 2, used + CHUNK));
        }
        ssize_t n = 0;
        int err = 0;
        out.resize_and_overwrite(out.capacity(), [&](char* data, std::size_t cap) noexcept {
            n = detail::retry_eintr([&] { return ::read(fd, data + used, cap - used); });
            err = errno;
            return used + (n > 0 ? static_cast<std::size_t>(n) : 0);
        });
        if (n < 0) {
            return fail(Error::from_errno(err, "read(" + std::string(what) + ")", pid));
        }
        if (n == 0) {
            return {};
        }
    }
}

Result<void> read_all(int fd, detail::PageBuffer& out, std::string_view what, pid_t pid) noexcept {
    constexpr std::size_t CHUNK = 64 * 1024;
    for (;;) {
        if (!out.reserve_spare(CHUNK)) {
            return fail(Error::from_errno(ENOMEM, "read(" + std::string(what) + ")", pid));
        }
        const ssize_t n = detail::retry_eintr(
            [&] { return ::read(fd, out.data() + out.size(), out.capacity() - out.size()); });
        if (n < 0) {
            const int err = errno;
            return fail(Error::from_errno(err, "read(" + std::string(what) + ")", pid));
        }
        if (n == 0) {
            return {};
        }
        out.commit(static_cast<std::size_t>(n));
    }
}

Result<std::string> read_file_at(int dir, const char* name, std::string_view what, pid_t pid) noexcept {
    const int fd = detail::retry_eintr([&] { return ::openat(dir, name, O_RDONLY | O_CLOEXEC); });
    if (fd < 0) {
        const int err = errno;
        return fail(Error::from_errno(err, "open(" + std::string(what) + ")", pid));
    }
    const UniqueFd owner(fd);
    std::string out;
    if (auto r = read_all(fd, out, what, pid); !r) {
        return fail(std::move(r.error()));
    }
    return out;
}

Result<std::string> read_file(const char* path, pid_t pid) noexcept {
    return read_file_at(AT_FDCWD, path, path, pid);
}

}  // namespace xproc
