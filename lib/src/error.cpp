// SPDX-License-Identifier: MIT
#include "xproc/error.hpp"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace xproc {

std::string_view to_string(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::os:
            return "os";
        case ErrorKind::no_such_process:
            return "no_such_process";
        case ErrorKind::zombie:
            return "zombie";
        case ErrorKind::kernel_thread:
            return "kernel_thread";
        case ErrorKind::permission:
            return "permission";
        case ErrorKind::invalid_argument:
            return "invalid_argument";
        case ErrorKind::parse:
            return "parse";
        case ErrorKind::corrupt:
            return "corrupt";
        case ErrorKind::not_supported:
            return "not_supported";
    }
    return "unknown";
}

Error Error::from_errno(int err, std::string operation, pid_t pid) {
    Error e;
    e.errno_value = err;
    e.operation = std::move(operation);
    e.pid = pid;
    switch (err) {
        case ESRCH:
            e.kind = ErrorKind::no_such_process;
            break;
        case EACCES:
        case EPERM:
            e.kind = ErrorKind::permission;
            break;
        case EINVAL:
            e.kind = ErrorKind::invalid_argument;
            break;
        case ENOSYS:
        case EOPNOTSUPP:
            e.kind = ErrorKind::not_supported;
            break;
        default:
            e.kind = ErrorKind::os;
            break;
    }
    return e;
}

Error Error::make(ErrorKind kind, std::string operation, std::string detail, pid_t pid) {
    Error e;
    e.kind = kind;
    e.operation = std::move(operation);
    e.detail = std::move(detail);
    e.pid = pid;
    return e;
}

std::string_view Error::errno_name() const noexcept {
    if (errno_value == 0) {
        return {};
    }
    // strerrorname_np is glibc ≥ 2.32 (Debian 12 has 2.36).
    const char* name = strerrorname_np(errno_value);
    return name != nullptr ? std::string_view(name) : std::string_view();
}

std::string Error::message() const {
    std::string out = operation.empty() ? std::string(to_string(kind)) : operation;
    if (pid != 0 || has_address) {
        out += " [";
        if (pid != 0) {
            out += "pid " + std::to_string(pid);
        }
        if (has_address) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "0x%" PRIx64, address);
            out += pid != 0 ? ", " : "";
            out += buf;
        }
        out += "]";
    }
    out += ": ";
    if (!detail.empty()) {
        out += detail;
        if (errno_value != 0) {
            out += " (";
            out += std::strerror(errno_value);
            out += ")";
        }
    } else if (errno_value != 0) {
        out += std::strerror(errno_value);
        if (const auto name = errno_name(); !name.empty()) {
            out += " (";
            out += name;
            out += ")";
        }
    } else {
        out += to_string(kind);
    }
    if (!hint.empty()) {
        out += "; ";
        out += hint;
    }
    return out;
}

namespace detail {
void assert_fail(const char* cond, const char* file, int line, const char* func) noexcept {
    std::fprintf(stderr, "xproc: assertion failed: %s (%s:%d in %s)\n", cond, file, line, func);
    std::abort();
}
}  // namespace detail

}  // namespace xproc
