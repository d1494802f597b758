// SPDX-License-Identifier: MIT
#include "format.hpp"

#include <iconv.h>
#include <langinfo.h>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cwchar>
#include <cwctype>
#include <vector>

namespace xpeek {
namespace {

std::uint64_t load_unsigned(std::span<const std::byte> bytes) {
    std::uint64_t v = 0;
    for (std::size_t i = bytes.size(); i-- > 0;) {
        v = (v << 8) | std::to_integer<std::uint64_t>(bytes[i]);
    }
    return v;
}

std::int64_t sign_extend(std::uint64_t v, std::size_t n) {
    if (n >= 8) {
        return static_cast<std::int64_t>(v);
    }
    const unsigned bits = static_cast<unsigned>(n) * 8;
    const std::uint64_t sign = std::uint64_t{1} << (bits - 1);
    const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
    v &= mask;
    return static_cast<std::int64_t>((v ^ sign) - sign);
}

std::string printf_string(const char* fmt, auto... args) {
    char buf[128];
    const int n = std::snprintf(buf, sizeof buf, fmt, args...);
    return std::string(buf, n < 0 ? 0 : static_cast<std::size_t>(n));
}

// ---------------------------------------------------------------------------
// Characters: gdb's wchar_iterator (charset.c) and print_wchar (valprint.c)

enum class CharResult : std::uint8_t { ok, invalid, incomplete, eof };

/// One step of gdb's wchar_iterator: converts the next character with iconv.
struct ConvertedChar {
    CharResult result = CharResult::eof;
    wchar_t ch = 0;      // when ok (gdb keeps up to a few; one is what a char converts to)
    int num_chars = -1;  // -1 eof, 0 not converted, >0 converted
    const std::byte* buf = nullptr;
    std::size_t buflen = 0;
    unsigned repeat_count = 0;
};

class WcharIterator {
  public:
    WcharIterator(std::span<const std::byte> input, const std::string& charset, int width)
        : m_input(input.data()), m_bytes(input.size()), m_width(static_cast<std::size_t>(width)) {
        m_desc = iconv_open("WCHAR_T", charset.c_str());
    }
    ~WcharIterator() {
        if (m_desc != reinterpret_cast<iconv_t>(-1)) {
            iconv_close(m_desc);
        }
    }
    WcharIterator(const WcharIterator&) = delete;
    WcharIterator& operator=(const WcharIterator&) = delete;

    ConvertedChar next() {
        ConvertedChar c;
        if (m_desc == reinterpret_cast<iconv_t>(-1)) {
            // No converter for this charset: every unit is an escape.
            if (m_bytes == 0) {
                return c;
            }
            c.result = CharResult::invalid;
            c.num_chars = 0;
            c.buf = m_input;
            c.buflen = std::min(m_width, m_bytes);
            m_input += c.buflen;
            m_bytes -= c.buflen;
            return c;
        }
        while (m_bytes > 0) {
            // One output character at a time, as gdb does, so an invalid sequence is
            // reported reliably.
            wchar_t out[4];
            char* inptr = const_cast<char*>(reinterpret_cast<const char*>(m_input));
            char* outptr = reinterpret_cast<char*>(out);
            const std::byte* orig = m_input;
            const std::size_t orig_bytes = m_bytes;
            std::size_t out_avail = sizeof(wchar_t);
            const std::size_t r = iconv(m_desc, &inptr, &m_bytes, &outptr, &out_avail);
            m_input = reinterpret_cast<const std::byte*>(inptr);
            if (r == static_cast<std::size_t>(-1)) {
                const int err = errno;
                if ((err == EILSEQ || err == E2BIG) && out_avail < sizeof(wchar_t)) {
                    // converted one before stopping: return it
                } else if (err == EILSEQ) {
                    c.result = CharResult::invalid;
                    c.num_chars = 0;
                    c.buf = m_input;
                    c.buflen = std::min(m_width, m_bytes);
                    m_input += c.buflen;
                    m_bytes -= c.buflen;
                    return c;
                } else if (err == EINVAL) {
                    c.result = CharResult::incomplete;
                    c.num_chars = 0;
                    c.buf = m_input;
                    c.buflen = m_bytes;
                    m_bytes = 0;
                    return c;
                } else {
                    // E2BIG with nothing converted cannot happen for one wide character;
                    // treat anything else as one invalid unit.
                    c.result = CharResult::invalid;
                    c.num_chars = 0;
                    c.buf = m_input;
                    c.buflen = std::min(m_width, m_bytes);
                    m_input += c.buflen;
                    m_bytes -= c.buflen;
                    return c;
                }
            }
            if (out_avail == sizeof(wchar_t)) {
                // iconv consumed a shift sequence without output: keep going.
                if (m_bytes == orig_bytes) {
                    break;
                }
                continue;
            }
            c.result = CharResult::ok;
            c.num_chars = 1;
            c.ch = out[0];
            c.buf = orig;
            c.buflen = orig_bytes - m_bytes;
            return c;
        }
        return c;  // eof
    }

  private:
    iconv_t m_desc = reinterpret_cast<iconv_t>(-1);
    const std::byte* m_input;
    std::size_t m_bytes;
    std::size_t m_width;
};

bool wchar_printable(wchar_t w) {
    return std::iswprint(static_cast<wint_t>(w)) || w == L'\a' || w == L'\b' || w == L'\f' || w == L'\n' ||
           w == L'\r' || w == L'\t' || w == L'\v';
}

void append_wide(std::string& out, wchar_t w) {
    char buf[MB_LEN_MAX];
    std::mbstate_t st{};
    const std::size_t n = std::wcrtomb(buf, w, &st);
    if (n == static_cast<std::size_t>(-1)) {
        out += '?';  // gdb's translit_char
        return;
    }
    out.append(buf, n);
}

/// gdb's print_wchar: `w` printable (or one of the C escapes) prints as itself, else the
/// original units print as octal (\ooo) or hex (\xNNNN) escapes. `printable` false means WEOF.
void print_wchar(std::string& out, bool printable, wchar_t w, const std::byte* orig, std::size_t orig_len,
                 std::size_t width, int quoter, bool& need_escape) {
    const bool was_need_escape = need_escape;
    need_escape = false;
    if (printable) {
        switch (w) {
            case L'\a':
                out += "\\a";
                return;
            case L'\b':
                out += "\\b";
                return;
            case L'\f':
                out += "\\f";
                return;
            case L'\n':
                out += "\\n";
                return;
            case L'\r':
                out += "\\r";
                return;
            case L'\t':
                out += "\\t";
                return;
            case L'\v':
                out += "\\v";
                return;
            default:
                break;
        }
        if (std::iswprint(static_cast<wint_t>(w)) &&
            !(was_need_escape && std::iswxdigit(static_cast<wint_t>(w)))) {
            if ((quoter != 0 && w == static_cast<wchar_t>(quoter)) || w == L'\\') {
                out += '\\';
            }
            append_wide(out, w);
            return;
        }
    }
    std::size_t i = 0;
    for (; i + width <= orig_len; i += width) {
        const std::uint64_t value = load_unsigned(std::span(orig + i, width));
        if (value <= 0777) {
            out += printf_string("\\%.3o", static_cast<unsigned>(value & 0777));
            need_escape = false;
        } else {
            out += printf_string("\\x%lx", static_cast<unsigned long>(value));
            need_escape = true;
        }
    }
    for (; i < orig_len; ++i) {
        out += printf_string("\\%.3o", std::to_integer<unsigned>(orig[i]) & 0xffu);
        need_escape = false;
    }
}

bool same_char(const ConvertedChar& a, const ConvertedChar& b) {
    if (a.num_chars != b.num_chars || a.result != b.result) {
        return false;
    }
    if (a.num_chars > 0) {
        return a.ch == b.ch;
    }
    if (a.num_chars == 0) {
        return a.buflen == b.buflen && std::memcmp(a.buf, b.buf, a.buflen) == 0;
    }
    return false;
}

/// gdb's count_next_character.
int count_next_character(WcharIterator& iter, std::vector<ConvertedChar>& vec) {
    if (vec.empty()) {
        vec.push_back(iter.next());
    }
    ConvertedChar* current = &vec.back();
    current->repeat_count = 1;
    if (current->num_chars == -1) {
        return -1;
    }
    ConvertedChar d;
    for (;;) {
        d = iter.next();
        if (same_char(*current, d)) {
            ++current->repeat_count;
        } else {
            break;
        }
    }
    const int repeat = static_cast<int>(current->repeat_count);
    vec.push_back(d);
    return repeat;
}

}  // namespace

std::size_t unit_bytes(char size) noexcept {
    switch (size) {
        case 'b':
            return 1;
        case 'h':
            return 2;
        case 'w':
            return 4;
        default:
            return 8;
    }
}

int items_per_line(char format, char size) noexcept {
    if (format == 's' || format == 'i') {
        return 1;
    }
    if (size == 'w') {
        return 4;
    }
    if (size == 'g') {
        return 2;
    }
    return 8;
}

std::string format_address(std::uint64_t address, const Labeler& label) {
    std::string s = printf_string("0x%" PRIx64, address);
    if (label) {
        const std::string l = label(address);
        if (!l.empty()) {
            s += ' ';
            s += l;
        }
    }
    return s;
}

std::string format_float(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    const char* sign = (bits >> 31) != 0 ? "-" : "";
    if (std::isnan(value)) {
        return printf_string("%snan(0x%lx)", sign, static_cast<unsigned long>(bits & 0x7fffffu));
    }
    if (std::isinf(value)) {
        return std::string(sign) + "inf";
    }
    return printf_string("%.9g", static_cast<double>(value));
}

std::string format_double(double value) {
    std::uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    const char* sign = (bits >> 63) != 0 ? "-" : "";
    if (std::isnan(value)) {
        // gdb's floatformat_mantissa: the top 20 mantissa bits with %lx, then 32 with %08lx.
        const std::uint64_t mant = bits & ((std::uint64_t{1} << 52) - 1);
        return printf_string("%snan(0x%lx%08lx)", sign, static_cast<unsigned long>(mant >> 32),
                             static_cast<unsigned long>(mant & 0xffffffffu));
    }
    if (std::isinf(value)) {
        return std::string(sign) + "inf";
    }
    return printf_string("%.17g", value);
}

std::string format_char(std::int64_t value) {
    // gdb converts to its (signed) char type, prints the number, then the character
    // through generic_emit_char with quoter '\''.
    const auto c = static_cast<signed char>(static_cast<std::uint8_t>(value & 0xff));
    std::string out = std::to_string(static_cast<int>(c));
    out += " '";
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
        // ASCII is itself in every charset gdb's auto charset can be: no converter needed.
        bool need_escape = false;
        const auto w = static_cast<wchar_t>(u);
        const std::byte b{u};
        print_wchar(out, wchar_printable(w), w, &b, 1, 1, '\'', need_escape);
        out += '\'';
        return out;
    }
    const std::byte byte{static_cast<std::uint8_t>(c)};
    const Charset cs = Charset::for_width(1);
    WcharIterator iter(std::span(&byte, 1), cs.name(), 1);
    bool need_escape = false;
    for (;;) {
        const ConvertedChar e = iter.next();
        if (e.num_chars < 0) {
            break;
        }
        const bool printable = e.num_chars > 0 && wchar_printable(e.ch);
        print_wchar(out, printable, e.ch, e.buf, e.buflen, 1, '\'', need_escape);
    }
    out += '\'';
    return out;
}

std::string format_scalar(std::span<const std::byte> bytes, char format, char size, const Labeler& label) {
    const std::size_t n = bytes.size();
    const std::uint64_t u = load_unsigned(bytes);
    const std::int64_t s = sign_extend(u, n);
    switch (format) {
        case 'x':
        case 'z':
            return printf_string("0x%0*" PRIx64, static_cast<int>(n * 2), u);
        case 'd':
            return printf_string("%" PRId64, s);
        case 'u':
            return printf_string("%" PRIu64, u);
        case 'o':
            return u == 0 ? std::string("0") : printf_string("0%" PRIo64, u);
        case 't': {
            std::string bits(n * 8, '0');
            for (std::size_t i = 0; i < n * 8; ++i) {
                if ((u >> i) & 1u) {
                    bits[n * 8 - 1 - i] = '1';
                }
            }
            return bits;
        }
        case 'c':
            return format_char(s);
        case 'a':
            // gdb unpacks the (signed) examine type: smaller sizes sign-extend.
            return format_address(static_cast<std::uint64_t>(s), label);
        case 'f':
            if (size == 'w') {
                float f;
                std::memcpy(&f, bytes.data(), sizeof f);
                return format_float(f);
            }
            if (size == 'g') {
                double d;
                std::memcpy(&d, bytes.data(), sizeof d);
                return format_double(d);
            }
            // No float of this size: gdb prints the (signed) integer.
            return printf_string("%" PRId64, s);
        default:
            return {};
    }
}

Charset Charset::for_width(int width) {
    Charset c;
    c.m_width = width;
    if (width == 2) {
        c.m_name = "UTF-16LE";
    } else if (width == 4) {
        c.m_name = "UTF-32LE";
    } else {
        const char* codeset = nl_langinfo(CODESET);
        c.m_name = codeset != nullptr && *codeset != '\0' ? codeset : "ASCII";
        c.m_width = 1;
    }
    return c;
}

std::string format_string(std::span<const std::byte> units, bool force_ellipses, const Charset& charset,
                          const PrintSettings& settings) {
    const std::size_t width = static_cast<std::size_t>(charset.width());
    std::string out;
    if (width == 2) {
        out += 'u';
    } else if (width == 4) {
        out += 'U';
    }
    std::size_t length = units.size() / width;
    // C style: a trailing NUL is not printed (unless the string was cut short).
    if (!force_ellipses && length > 0 && load_unsigned(units.subspan((length - 1) * width, width)) == 0) {
        --length;
    }
    if (length == 0) {
        out += "\"\"";
        return out;
    }
    WcharIterator iter(units.first(length * width), charset.name(), static_cast<int>(width));
    std::vector<ConvertedChar> chars;
    unsigned printed = 0;
    while (printed < settings.print_max) {
        const int r = count_next_character(iter, chars);
        if (r < 0) {
            break;
        }
        printed += static_cast<unsigned>(r);
    }
    ConvertedChar& last = chars.back();
    const bool finished = last.result == CharResult::eof && last.num_chars == -1;
    last.result = CharResult::eof;
    last.num_chars = -1;

    // gdb's print_converted_chars_to_obstack state machine.
    enum class State : std::uint8_t { start, single, repeat, incomplete, finish };
    State state = State::start;
    State prev = State::start;
    const char quote = '"';
    bool need_escape = false;
    std::size_t idx = 0;
    const ConvertedChar* elem = nullptr;
    // Before a repeat block or an incomplete sequence: close an open string, then a comma
    // unless it is the first element.
    auto separate = [&] {
        if (prev == State::single) {
            out += quote;
        }
        if (prev != State::start) {
            out += ", ";
        }
    };
    for (;;) {
        switch (state) {
            case State::start:
                break;
            case State::single:
                if (prev != State::single) {
                    if (prev != State::start) {
                        out += ", ";
                    }
                    out += quote;
                }
                for (unsigned j = 0; j < elem->repeat_count; ++j) {
                    const bool ok = elem->result == CharResult::ok;
                    print_wchar(out, ok && wchar_printable(elem->ch), elem->ch, elem->buf, elem->buflen,
                                width, quote, need_escape);
                }
                break;
            case State::repeat:
                separate();
                out += '\'';
                print_wchar(out, elem->result == CharResult::ok && wchar_printable(elem->ch), elem->ch,
                            elem->buf, elem->buflen, width, quote, need_escape);
                out += '\'';
                out += " <repeats " + std::to_string(elem->repeat_count) + " times>";
                break;
            case State::incomplete:
                separate();
                out += "<incomplete sequence ";
                print_wchar(out, false, 0, elem->buf, elem->buflen, width, 0, need_escape);
                out += '>';
                state = State::finish;
                break;
            case State::finish:
                if (prev == State::single) {
                    out += quote;
                }
                if (force_ellipses || !finished) {
                    out += "...";
                }
                return out;
        }
        prev = state;
        if (state != State::finish) {
            elem = &chars[idx++];
            switch (elem->result) {
                case CharResult::ok:
                case CharResult::invalid:
                    state = elem->repeat_count > settings.repeat_threshold ? State::repeat : State::single;
                    break;
                case CharResult::incomplete:
                    state = State::incomplete;
                    break;
                case CharResult::eof:
                    state = State::finish;
                    break;
            }
        }
    }
}

}  // namespace xpeek
