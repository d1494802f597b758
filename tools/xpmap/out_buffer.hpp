// SPDX-License-Identifier: MIT
#pragma once
/// @file out_buffer.hpp
/// `OutBuffer`: the whole output of xpmap is formatted into one growing buffer
/// and written with few write(2) calls. Hand-rolled number formatting: printf
/// and iostreams cost more than the kernel's smaps generation at 50,000 rows.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace xpmap {

/// Number of decimal digits of `v` (1 for 0), like procps' integer_width().
inline int decimal_width(std::uint64_t v) noexcept {
    int n = 1;
    while (v >= 10) {
        v /= 10;
        ++n;
    }
    return n;
}

/// Number of lower-case hex digits of `v` (1 for 0).
inline int hex_width(std::uint64_t v) noexcept {
    int n = 1;
    while (v >= 16) {
        v >>= 4;
        ++n;
    }
    return n;
}

/// Writes the decimal digits of `v` ending just before `end`; returns the first digit.
inline char* decimal_backwards(char* end, std::uint64_t v) noexcept {
    static constexpr char PAIRS[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char* p = end;
    while (v >= 100) {
        const unsigned i = static_cast<unsigned>(v % 100) * 2;
        v /= 100;
        *--p = PAIRS[i + 1];
        *--p = PAIRS[i];
    }
    if (v >= 10) {
        const unsigned i = static_cast<unsigned>(v) * 2;
        *--p = PAIRS[i + 1];
        *--p = PAIRS[i];
    } else {
        *--p = static_cast<char>('0' + v);
    }
    return p;
}

/// Writes all of `data` to `fd`, retrying short writes and EINTR. Returns 0 or an errno.
int write_all(int fd, std::string_view data) noexcept;

/// Append-only byte buffer with printf-like helpers that never allocate per call
/// beyond the buffer's own growth. With a sink, maybe_flush() writes it out once
/// it holds FLUSH_AT bytes, so a 50,000-row table goes out in a few large
/// write(2)s without ever being held whole.
class OutBuffer {
  public:
    static constexpr std::size_t FLUSH_AT = std::size_t{1} << 20;

    OutBuffer() { m_data.reserve(1 << 16); }

    /// Where maybe_flush() and flush() write (-1, the default: nowhere, the buffer grows).
    void set_sink(int fd) noexcept { m_sink = fd; }
    /// Writes the buffer to the sink once it is large. Call between rows, when
    /// what the buffer holds is final. The first write error is kept in error().
    void maybe_flush() {
        if (m_sink >= 0 && m_data.size() >= FLUSH_AT) {
            flush();
        }
    }
    /// Writes everything to the sink now.
    void flush() {
        if (m_sink >= 0 && !m_data.empty()) {
            if (const int err = write_all(m_sink, m_data); err != 0 && m_error == 0) {
                m_error = err;
            }
            m_data.clear();
        }
    }
    /// 0, or the errno of the first write that failed.
    int error() const noexcept { return m_error; }

    std::string_view view() const noexcept { return m_data; }
    std::size_t size() const noexcept { return m_data.size(); }
    bool empty() const noexcept { return m_data.empty(); }
    void clear() noexcept { m_data.clear(); }
    void reserve(std::size_t n) { m_data.reserve(n); }
    std::string& str() noexcept { return m_data; }

    void put(char c) { m_data.push_back(c); }
    void put(std::string_view s) { m_data.append(s); }
    void fill(char c, int n) {
        if (n > 0) {
            m_data.append(static_cast<std::size_t>(n), c);
        }
    }

    /// `s` right-aligned in `width` (printf "%*s"; longer strings are not cut).
    void right(std::string_view s, int width) {
        fill(' ', width - static_cast<int>(s.size()));
        put(s);
    }
    /// `s` left-aligned in `width` (printf "%-*s").
    void left(std::string_view s, int width) {
        put(s);
        fill(' ', width - static_cast<int>(s.size()));
    }

    /// Decimal, right-aligned in `width` with spaces (printf "%*llu").
    void dec(std::uint64_t v, int width = 0) {
        char tmp[24];
        char* end = tmp + sizeof tmp;
        char* p = decimal_backwards(end, v);
        fill(' ', width - static_cast<int>(end - p));
        m_data.append(p, static_cast<std::size_t>(end - p));
    }
    /// Signed decimal (for JSON values that may be -1).
    void sdec(std::int64_t v) {
        if (v < 0) {
            put('-');
            dec(static_cast<std::uint64_t>(0) - static_cast<std::uint64_t>(v));
        } else {
            dec(static_cast<std::uint64_t>(v));
        }
    }
    /// Lower-case hex, at least `min_digits` digits, zero-padded (printf "%0*llx").
    void hex(std::uint64_t v, int min_digits = 1) {
        char tmp[16];
        int n = 0;
        do {
            tmp[15 - n] = "0123456789abcdef"[v & 0xf];
            v >>= 4;
            ++n;
        } while (v != 0);
        fill('0', min_digits - n);
        m_data.append(tmp + 16 - n, static_cast<std::size_t>(n));
    }

  private:
    std::string m_data;
    int m_sink = -1;
    int m_error = 0;
};

}  // namespace xpmap
