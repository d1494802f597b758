// SPDX-License-Identifier: MIT
#include "format.hpp"

#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <limits>

namespace xshm {

namespace {

/// Parses all of `text` as an unsigned number in `base`; nullopt if any character is left.
std::optional<std::uint64_t> whole_number(std::string_view text, int base) {
    if (text.empty()) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (ec != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

bool has_hex_prefix(std::string_view text) {
    return text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
    unsigned shift = 0;
    if (!text.empty()) {
        switch (text.back()) {
            case 'k':
            case 'K':
                shift = 10;
                break;
            case 'm':
            case 'M':
                shift = 20;
                break;
            case 'g':
            case 'G':
                shift = 30;
                break;
            case 't':
            case 'T':
                shift = 40;
                break;
            default:
                break;
        }
    }
    if (shift != 0) {
        text.remove_suffix(1);
    }
    const auto value = has_hex_prefix(text) ? whole_number(text.substr(2), 16) : whole_number(text, 10);
    if (!value || (shift != 0 && *value > (std::numeric_limits<std::uint64_t>::max() >> shift))) {
        return std::nullopt;
    }
    return *value << shift;
}

std::optional<mode_t> parse_mode(std::string_view text) {
    const auto value = whole_number(text, 8);
    if (!value || *value > 07777) {
        return std::nullopt;
    }
    return static_cast<mode_t>(*value);
}

std::optional<pid_t> parse_pid(std::string_view text) {
    const auto value = whole_number(text, 10);
    if (!value || *value < 1 || *value > static_cast<std::uint64_t>(std::numeric_limits<pid_t>::max())) {
        return std::nullopt;
    }
    return static_cast<pid_t>(*value);
}

std::optional<std::uint64_t> parse_address(std::string_view text) {
    if (has_hex_prefix(text)) {
        text.remove_prefix(2);
    }
    return whole_number(text, 16);
}

std::string segment_name(std::string_view text) {
    if (text.empty() || text.front() == '/') {
        return std::string(text);
    }
    return "/" + std::string(text);
}

std::string printable(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            c = '?';
        }
    }
    return out;
}

std::string octal_mode(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

std::string hex(std::uint64_t value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%" PRIx64, value);
    return buf;
}

int write_all(int fd, std::string_view data) noexcept {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

void Output::flush() {
    if (!m_data.empty()) {
        if (const int err = write_all(m_fd, m_data); err != 0 && m_error == 0) {
            m_error = err;
        }
        m_data.clear();
    }
}

void HexDump::line(const unsigned char* bytes, std::size_t n) {
    static constexpr char DIGITS[] = "0123456789abcdef";
    char buf[96];
    int len = std::snprintf(buf, sizeof buf, "%08" PRIx64 "  ", m_offset);
    std::string text(buf, static_cast<std::size_t>(len));
    for (std::size_t i = 0; i < 16; ++i) {
        if (i < n) {
            text += DIGITS[bytes[i] >> 4];
            text += DIGITS[bytes[i] & 0xf];
            text += ' ';
        } else {
            text += "   ";
        }
        if (i == 7) {
            text += ' ';
        }
    }
    text += " |";
    for (std::size_t i = 0; i < n; ++i) {
        text += bytes[i] >= 0x20 && bytes[i] < 0x7f ? static_cast<char>(bytes[i]) : '.';
    }
    text += "|\n";
    m_out.put(text);
}

void HexDump::feed(std::span<const std::byte> bytes) {
    for (const std::byte b : bytes) {
        m_pending[m_pending_size++] = static_cast<unsigned char>(b);
        if (m_pending_size < 16) {
            continue;
        }
        // A full line equal to the previous full line: one "*" for the whole run.
        if (m_has_previous && std::equal(m_pending, m_pending + 16, m_previous)) {
            if (!m_starred) {
                m_out.put("*\n");
                m_starred = true;
            }
        } else {
            line(m_pending, 16);
            std::copy(m_pending, m_pending + 16, m_previous);
            m_has_previous = true;
            m_starred = false;
        }
        m_offset += 16;
        m_pending_size = 0;
    }
}

void HexDump::finish() {
    if (m_pending_size > 0) {
        line(m_pending, m_pending_size);  // a partial line is never collapsed
        m_offset += m_pending_size;
        m_pending_size = 0;
    }
    if (m_offset == 0 && m_start == 0) {
        return;
    }
    char buf[24];
    const int len = std::snprintf(buf, sizeof buf, "%08" PRIx64 "\n", m_offset);
    m_out.put(std::string_view(buf, static_cast<std::size_t>(len)));
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                default:
                    if (c < 0x20 || c == 0x7f) {
                        char buf[8];
                        std::snprintf(buf, sizeof buf, "\\u%04x", c);
                        out += buf;
                    } else {
                        out += static_cast<char>(c);
                    }
            }
            ++i;
            continue;
        }
        // A UTF-8 sequence: its length from the lead byte, then continuation bytes
        // and the ranges that exclude overlong forms and surrogates.
        std::size_t n = 0;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        }
        bool valid = n != 0 && i + n <= s.size();
        for (std::size_t k = 1; valid && k < n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            valid = k == 1 ? (cc >= lo && cc <= hi) : (cc >= 0x80 && cc <= 0xbf);
        }
        if (valid) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out += "\xef\xbf\xbd";  // U+FFFD
            ++i;
        }
    }
    out += '"';
    return out;
}

}  // namespace xshm
