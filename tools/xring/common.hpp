// SPDX-License-Identifier: MIT
#pragma once
/// @file common.hpp
/// What every xring subcommand shares: exit statuses, the one-line error, ring names,
/// number parsing, signal flags and opening a ring with errors that say what to do.

#include <chrono>
#include <csignal>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "xproc/error.hpp"
#include "xproc/ring_segment.hpp"

namespace xring {

/// Exit statuses (see man/xring.1).
inline constexpr int EXIT_OK = 0;
inline constexpr int EXIT_ERROR = 1;          ///< the operation failed
inline constexpr int EXIT_USAGE = 2;          ///< bad command line or argument value
inline constexpr int EXIT_PEER_GONE = 3;      ///< the other side died without closing
inline constexpr int EXIT_SIGNAL_BASE = 128;  ///< + the signal that stopped pub/sub

/// A failure that ends the command: main() prints `xring: <message>` and exits with
/// `status`. Thrown (not std::exit) so that destructors close ring roles on the way out.
class Failure : public std::runtime_error {
  public:
    Failure(int status, const std::string& message) : std::runtime_error(message), m_status(status) {}
    int status() const noexcept { return m_status; }

  private:
    int m_status;
};

/// Ends the command quietly with `status` (a signal, a closed stdout).
struct QuietExit {
    int status;
};

[[noreturn]] inline void usage_error(const std::string& message) {
    throw Failure(EXIT_USAGE, message);
}
[[noreturn]] inline void failure(const std::string& message) {
    throw Failure(EXIT_ERROR, message);
}

/// "/name" from "name" or "/name".
std::string ring_name(std::string_view arg);

/// A byte count: decimal digits with an optional K, M, G or T suffix (powers of 1024,
/// optionally followed by "iB" or "B"). Usage error naming `option` when malformed.
std::uint64_t parse_size(std::string_view text, std::string_view option);
/// A non-negative count. Usage error when malformed.
std::uint64_t parse_count(std::string_view text, std::string_view option);
/// Seconds, decimal fraction allowed ("0.5"), > 0. Usage error when malformed.
std::chrono::nanoseconds parse_seconds(std::string_view text, std::string_view option);
/// An octal file mode up to 07777.
mode_t parse_mode(std::string_view text, std::string_view option);
/// spsc, mpsc or broadcast.
xproc::RingKind parse_kind(std::string_view text);
std::string_view kind_name(xproc::RingKind kind) noexcept;

/// "1.5 MiB" style for people; exact bytes stay in the numbers printed next to it.
std::string human_bytes(double bytes);

/// The one line for a library error about ring `name`: the library's message, prefixed
/// with the name unless the message already names it.
std::string error_line(const std::string& name, const xproc::Error& error);

/// The reason in a library "not an xproc ring (REASON)" detail.
std::string not_a_ring_reason(std::string detail);

/// Whether an attach error means "the role is held by a live process".
bool role_is_held(const xproc::Error& error) noexcept;

/// Opens ring `name`, turning every library error into a Failure that says what is
/// wrong and how to fix it: missing ring, not a ring (EPROTO), another layout version,
/// permission, still being created (retried for up to two seconds first).
xproc::RingSegment open_ring(const std::string& name, xproc::ShmAccess access = xproc::ShmAccess::read_write);

/// Options of `xring create` (and `pub --create`).
struct CreateOptions {
    std::string capacity = "1M";
    std::string max_record;  ///< "" = the largest the capacity allows
    std::string mode = "0600";
    std::string kind = "spsc";
};

/// Validates create options (usage errors) and turns them into a RingConfig.
xproc::RingConfig ring_config(const CreateOptions& options);

/// Creates ring `name`; `exists_ok` opens it instead when it already exists (pub --create).
/// Failures name the ring, the cause and a fix.
xproc::RingSegment create_ring(const std::string& name, const xproc::RingConfig& config, bool exists_ok);

// ---------------------------------------------------------------------------------------
// Signals

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that only record the signal (no
/// SA_RESTART: a blocking read returns EINTR), and ignores SIGPIPE (writes report EPIPE).
void install_signal_handlers();
/// The first signal received since install_signal_handlers(), or 0.
int pending_signal() noexcept;
/// Throws QuietExit{128 + signal} when a signal arrived.
void check_signal();

/// How long a wait slice of pub/sub lasts: the longest a signal goes unnoticed.
inline constexpr std::chrono::milliseconds WAIT_SLICE{150};

}  // namespace xring
