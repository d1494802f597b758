// SPDX-License-Identifier: MIT
#pragma once
/// @file error.hpp
/// Error values for every fallible xproc call.
///
/// The library never throws on operating-system errors. A fallible call returns
/// `Result<T>` (`std::expected<T, Error>`); the `Error` keeps what was attempted
/// (the operation), on what (pid, address, path), the saved errno and, when it is
/// known, a hint saying what would make the call succeed.

#include <sys/types.h>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace xproc {

/// Broad classes of failure; callers branch on these, people read `Error::message()`.
enum class ErrorKind : std::uint8_t {
    os,                ///< a system call failed; `errno_value` says why
    no_such_process,   ///< the pid does not exist (or exited while we looked)
    zombie,            ///< the process exited but was not reaped: it has no memory left
    kernel_thread,     ///< a kernel thread: it has no user memory map
    permission,        ///< a kernel permission rule refused; `hint` says which and how to allow it
    invalid_argument,  ///< the caller passed something unusable
    parse,             ///< a kernel file had a shape we do not understand
    corrupt,           ///< shared memory that fails validation
    not_supported,     ///< this kernel/machine lacks the feature
};

/// Name of a kind, e.g. "permission".
std::string_view to_string(ErrorKind kind) noexcept;

/// One failure, with enough context to act on it.
///
/// Renders as one line, for example
/// `open(/proc/42/smaps) [pid 42]: Permission denied (EACCES); ...hint...`.
struct Error {
    ErrorKind kind = ErrorKind::os;
    int errno_value = 0;        ///< saved errno, 0 when not from a system call
    std::string operation;      ///< what was attempted: "open(/proc/42/maps)", "parse smaps line 12"
    pid_t pid = 0;              ///< the process concerned, 0 if none
    std::uint64_t address = 0;  ///< remote address concerned, when has_address
    bool has_address = false;
    std::string detail;  ///< the cause in words, when errno does not say it
    std::string hint;    ///< what would allow the operation (permission rule, fix)

    /// Error from a failed system call; kind is derived from the errno (ESRCH → no_such_process,
    /// EACCES/EPERM → permission, EINVAL → invalid_argument, else os).
    static Error from_errno(int err, std::string operation, pid_t pid = 0);
    /// Error of the given kind without an errno.
    static Error make(ErrorKind kind, std::string operation, std::string detail, pid_t pid = 0);

    Error& with_address(std::uint64_t addr) & {
        address = addr;
        has_address = true;
        return *this;
    }
    Error&& with_address(std::uint64_t addr) && { return std::move(with_address(addr)); }
    Error& with_hint(std::string h) & {
        hint = std::move(h);
        return *this;
    }
    Error&& with_hint(std::string h) && { return std::move(with_hint(std::move(h))); }

    /// The errno's symbolic name ("EACCES"), or "" when errno_value is 0 or unknown.
    std::string_view errno_name() const noexcept;

    /// One line: `operation [pid N, 0xADDR]: cause (ENAME); hint`.
    std::string message() const;
};

template <typename T>
using Result = std::expected<T, Error>;

/// Shorthand for returning an error: `return fail(Error::from_errno(...));`
inline std::unexpected<Error> fail(Error e) {
    return std::unexpected<Error>(std::move(e));
}

}  // namespace xproc

/// A check on a programming error that stays on in release builds: prints the
/// condition and location to stderr and aborts.
#define XPROC_ASSERT(cond)                                                     \
    do {                                                                       \
        if (!(cond)) [[unlikely]] {                                            \
            ::xproc::detail::assert_fail(#cond, __FILE__, __LINE__, __func__); \
        }                                                                      \
    } while (false)

namespace xproc::detail {
[[noreturn]] void assert_fail(const char* cond, const char* file, int line, const char* func) noexcept;
}  // namespace xproc::detail
