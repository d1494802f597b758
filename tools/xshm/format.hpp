// SPDX-License-Identifier: MIT
#pragma once
/// @file format.hpp
/// xshm's argument parsing (sizes, modes, pids, addresses, segment names) and
/// output formatting (an output buffer, `hexdump -C` lines, JSON strings, table
/// cells). Pure functions and small classes: no system calls but write(2).

#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace xshm {

/// A byte count: decimal, or hexadecimal with 0x, with an optional K, M, G or T
/// suffix (either case; powers of 1024). nullopt for anything else or on overflow.
std::optional<std::uint64_t> parse_size(std::string_view text);

/// Permission bits in octal ("600", "0640"), at most 07777.
std::optional<mode_t> parse_mode(std::string_view text);

/// A process id: decimal, 1 to 2147483647.
std::optional<pid_t> parse_pid(std::string_view text);

/// An address: hexadecimal with or without 0x, as /proc/PID/maps prints them.
std::optional<std::uint64_t> parse_address(std::string_view text);

/// A segment name as shm_open takes it: "/NAME" for "NAME" or "/NAME" (anything
/// else is left for the library to refuse with its reason).
std::string segment_name(std::string_view text);

/// `text` with every control byte (< 0x20, 0x7f) shown as '?', for a table cell.
std::string printable(std::string_view text);

/// "0600".
std::string octal_mode(mode_t mode);

/// "7f3a10000000" (lower-case hex, no 0x).
std::string hex(std::uint64_t value);

/// Writes all of `data` to `fd`, retrying short writes and EINTR; 0 or an errno.
int write_all(int fd, std::string_view data) noexcept;

/// Buffered standard output: formatted into a string, written in large pieces.
/// The first write error is kept and reported by the caller.
class Output {
  public:
    static constexpr std::size_t FLUSH_AT = std::size_t{1} << 16;

    explicit Output(int fd = 1) : m_fd(fd) {}
    Output(const Output&) = delete;
    Output& operator=(const Output&) = delete;
    ~Output() { flush(); }

    void put(std::string_view s) {
        m_data.append(s);
        if (m_data.size() >= FLUSH_AT) {
            flush();
        }
    }
    void put(char c) { put(std::string_view(&c, 1)); }
    void flush();
    /// 0, or the errno of the first write that failed.
    int error() const noexcept { return m_error; }

  private:
    int m_fd;
    std::string m_data;
    int m_error = 0;
};

/// The lines of `hexdump -C` (util-linux), fed in pieces: offset (8 hex digits
/// at least), 16 bytes in hex in two groups of 8, the printable ASCII between
/// '|'; a full line equal to the previous full line is shown once as "*"; the
/// last line is the offset just past the data.
class HexDump {
  public:
    /// `start` is the offset shown for the first byte.
    HexDump(Output& out, std::uint64_t start) : m_out(out), m_offset(start), m_start(start) {}

    void feed(std::span<const std::byte> bytes);
    /// Prints the pending partial line and the end offset (nothing at all when no
    /// byte was fed and `start` is 0, as hexdump prints nothing for an empty file).
    void finish();

  private:
    void line(const unsigned char* bytes, std::size_t n);

    Output& m_out;
    std::uint64_t m_offset;  // offset of the pending line
    std::uint64_t m_start;
    unsigned char m_pending[16] = {};
    std::size_t m_pending_size = 0;
    unsigned char m_previous[16] = {};
    bool m_has_previous = false;
    bool m_starred = false;
};

/// `s` as a JSON string literal with the quotes: valid UTF-8 is kept, control
/// characters are escaped, each byte that is not valid UTF-8 becomes U+FFFD.
std::string json_string(std::string_view s);

}  // namespace xshm
