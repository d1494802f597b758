// SPDX-License-Identifier: MIT
#include "xproc/fd.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>

namespace xproc {

void UniqueFd::reset(int fd) noexcept {
    const int old = std::exchange(m_fd, fd);
    if (old >= 0) {
        // No retry on EINTR: Linux always releases the descriptor.
        ::close(old);
    }
}

Result<UniqueFd> open_fd(const char* path, int flags, pid_t pid) noexcept {
    return open_fd_at(AT_FDCWD, path, flags, pid);
}

Result<UniqueFd> open_fd_at(int dir, const char* path, int flags, pid_t pid) noexcept {
    const int fd = detail::retry_eintr([&] { return ::openat(dir, path, flags | O_CLOEXEC); });
    if (fd < 0) {
        const int err = errno;
        return fail(Error::from_errno(err, std::string("open(") + path + ")", pid));
    }
    return UniqueFd(fd);
}

Result<void> read_all(int fd, std::string& out, std::string_view what, pid_t pid) noexcept {
    // Grow geometrically and read straight into the string's buffer: one
    // syscall per chunk, no intermediate copies.
    std::size_t chunk = 64 * 1024;
    for (;;) {
        const std::size_t used = out.size();
        if (out.capacity() - used < chunk) {
            out.reserve(used + chunk);
        }
        out.resize(out.capacity());
        const ssize_t n =
            detail::retry_eintr([&] { return ::read(fd, out.data() + used, out.size() - used); });
        if (n < 0) {
            const int err = errno;
            out.resize(used);
            return fail(Error::from_errno(err, "read(" + std::string(what) + ")", pid));
        }
        out.resize(used + static_cast<std::size_t>(n));
        if (n == 0) {
            return {};
        }
        if (chunk < 1024 * 1024) {
            chunk *= 2;
        }
    }
}

Result<std::string> read_file(const char* path, pid_t pid) noexcept {
    auto fd = open_fd(path, O_RDONLY, pid);
    if (!fd) {
        return fail(std::move(fd.error()));
    }
    std::string out;
    if (auto r = read_all(fd->get(), out, path, pid); !r) {
        return fail(std::move(r.error()));
    }
    return out;
}

}  // namespace xproc
