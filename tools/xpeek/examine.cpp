// SPDX-License-Identifier: MIT
// x/NFU ADDR: gdb's examine command (printcmd.c: x_command, decode_format, do_examine).

#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "session.hpp"

namespace xpeek {
namespace {

struct Fmt {
    char format = 'x';
    char size = 'w';
    long long count = 1;
};

/// gdb's decode_format: [-][count][letters], letters being sizes b h w g or a format.
/// Returns an error message for letters gdb would reject when printing.
std::string decode_format(std::string_view& p, char oformat, char osize, Fmt& out) {
    char format = '?';
    char size = '?';
    long long count = 1;
    if (!p.empty() && p.front() == '-') {
        count = -1;
        p.remove_prefix(1);
    }
    if (!p.empty() && std::isdigit(static_cast<unsigned char>(p.front())) != 0) {
        long long n = 0;
        while (!p.empty() && std::isdigit(static_cast<unsigned char>(p.front())) != 0) {
            n = n * 10 + (p.front() - '0');
            if (n > 1'000'000'000'000LL) {
                return "Item count is too large.";
            }
            p.remove_prefix(1);
        }
        count *= n;
    }
    while (!p.empty()) {
        const char c = p.front();
        if (c == 'b' || c == 'h' || c == 'w' || c == 'g') {
            size = c;
        } else if (c == 'r' || c == 'm') {
            // raw / memory tags: nothing to do for plain memory
        } else if (c >= 'a' && c <= 'z') {
            format = c;
        } else {
            break;
        }
        p.remove_prefix(1);
    }
    while (!p.empty() && std::isspace(static_cast<unsigned char>(p.front())) != 0) {
        p.remove_prefix(1);
    }
    if (format == '?') {
        if (size == '?') {
            format = oformat;
            size = osize;
        } else {
            format = oformat == 'i' ? 'x' : oformat;
        }
    } else if (size == '?') {
        switch (format) {
            case 'a':
                size = 'g';  // pointer size on x86-64 and aarch64
                break;
            case 'f':
                size = (osize == 'w' || osize == 'g') ? osize : 'g';
                break;
            case 'c':
                size = 'b';
                break;
            case 's':
                size = '\0';
                break;
            default:
                size = osize;
        }
    }
    if (format == 'i') {
        return "format 'i' is not supported: xpeek does not disassemble (use gdb's x/i).";
    }
    if (std::string_view("xzduotcafs").find(format) == std::string_view::npos) {
        return "Undefined output format \"" + std::string(1, format) + "\".";
    }
    out.format = format;
    out.size = size;
    out.count = count;
    return {};
}

}  // namespace

bool Session::cmd_examine(std::string_view args) {
    Fmt fmt;
    fmt.format = m_last_format != 0 ? m_last_format : 'x';
    fmt.size = m_last_size;
    fmt.count = 1;
    if (args.empty() && m_last_count > 0) {
        fmt.count = m_last_count;
    }
    if (!args.empty() && args.front() == '/') {
        args.remove_prefix(1);
        if (std::string e = decode_format(args, m_last_format != 0 ? m_last_format : 'x', m_last_size, fmt);
            !e.empty()) {
            return error(e);
        }
    }
    m_last_count = fmt.count;
    if (!need_process()) {
        return false;
    }
    if (!args.empty()) {
        auto v = eval(args);
        if (!v) {
            return error(v.error());
        }
        if (v->kind == Value::Kind::string) {
            return error("Attempt to take contents of a non-pointer value.");
        }
        m_next_address = v->as_address();
    }
    if (!m_next_address) {
        return error("Argument required (starting display address).");
    }

    bool ok = true;
    if (fmt.format == 's') {
        ok = examine_strings(fmt.size, fmt.count, *m_next_address);
    } else {
        const std::size_t n = unit_bytes(fmt.size);
        long long count = fmt.count;
        std::uint64_t addr = *m_next_address;
        std::optional<std::uint64_t> rewound;
        if (count < 0) {
            count = -count;
            addr -= static_cast<std::uint64_t>(count) * n;
            rewound = addr;
        }
        const int per_line = items_per_line(fmt.format, fmt.size);
        const Labeler lab = labeler();
        m_window.clear();
        std::string line;
        while (count > 0 && ok) {
            line = format_address(addr, lab);
            line += ':';
            for (int i = per_line; i > 0 && count > 0; --i, --count) {
                line += '\t';
                m_next_address = addr + n;  // gdb moves on before the fetch
                const std::byte* p = m_window.get(*m_memory, addr, n);
                if (p == nullptr || g_interrupted != 0) {
                    std::fwrite(line.data(), 1, line.size(), stdout);
                    if (g_interrupted != 0) {
                        ok = error("Quit");
                    } else if (m_window.fatal()) {
                        ok = fatal_error(*m_window.fatal());
                    } else {
                        ok = memory_error(addr, m_window.stop_reason());
                    }
                    break;
                }
                line += format_scalar(std::span(p, n), fmt.format, fmt.size, lab);
                addr += n;
            }
            if (ok) {
                line += '\n';
                std::fwrite(line.data(), 1, line.size(), stdout);
            }
        }
        if (rewound && ok) {
            m_next_address = *rewound;
        }
    }
    if (ok) {
        // gdb remembers format and size only when the examine succeeds; strings leave size 'b'.
        m_last_size = fmt.format == 's' ? 'b' : fmt.size;
        m_last_format = fmt.format;
    }
    return ok;
}

bool Session::examine_strings(char size, long long count, std::uint64_t address) {
    if (count < 0) {
        return error("A negative count with format 's' is not supported.");
    }
    int width = 1;
    if (size == 'h') {
        width = 2;
    } else if (size == 'w') {
        width = 4;
    } else if (size == 'g') {
        warning("Unable to display strings with size 'g', using 'b' instead.");
    }
    const Charset charset = Charset::for_width(width);
    const Labeler lab = labeler();
    const auto w = static_cast<std::size_t>(width);
    std::uint64_t addr = address;
    std::vector<std::byte> units;
    bool failed = false;
    m_window.clear();
    for (; count > 0; --count) {
        if (g_interrupted != 0) {
            return error("Quit");
        }
        std::string line = format_address(addr, lab) + ":\t";
        // gdb's val_print_string: read up to print_max characters, stopping after a NUL.
        units.clear();
        bool err = false;
        std::string reason;
        const unsigned limit = m_print.print_max;
        while (units.size() / w < limit) {
            const std::uint64_t at = addr + units.size();
            const std::byte* p = m_window.get(*m_memory, at, w);
            if (p == nullptr) {
                if (m_window.fatal()) {
                    std::fwrite(line.data(), 1, line.size(), stdout);
                    return fatal_error(*m_window.fatal());
                }
                err = true;
                reason = m_window.stop_reason();
                break;
            }
            units.insert(units.end(), p, p + w);
            bool nul = true;
            for (std::size_t i = 0; i < w; ++i) {
                nul = nul && p[i] == std::byte{0};
            }
            if (nul) {
                break;
            }
        }
        const std::size_t bytes_read = units.size();
        bool found_nul = false;
        if (bytes_read >= w) {
            found_nul = true;
            for (std::size_t i = bytes_read - w; i < bytes_read; ++i) {
                found_nul = found_nul && units[i] == std::byte{0};
            }
        }
        bool force_ellipsis = false;
        if (!found_nul && !err) {
            // Peek at the next character: more text follows when it is readable and not NUL.
            const std::byte* p = m_window.get(*m_memory, addr + bytes_read, w);
            if (p != nullptr) {
                for (std::size_t i = 0; i < w; ++i) {
                    force_ellipsis = force_ellipsis || p[i] != std::byte{0};
                }
            }
        }
        if (!err || bytes_read > 0) {
            line += format_string(units, force_ellipsis, charset, m_print);
        }
        if (err) {
            // gdb prints the error inside the line and goes on.
            char buf[64];
            std::snprintf(buf, sizeof buf, "0x%" PRIx64, addr + bytes_read);
            line += "<error: Cannot access memory at address ";
            line += buf;
            line += '>';
        }
        line += '\n';
        std::fwrite(line.data(), 1, line.size(), stdout);
        if (err) {
            // The line is gdb's; the reason, and a failed status for --batch, are xpeek's.
            memory_error(addr + bytes_read, reason);
            failed = true;
        }
        addr += bytes_read;
        m_next_address = addr;
    }
    return !failed;
}

}  // namespace xpeek
