// SPDX-License-Identifier: MIT
#include "command.hpp"

#include <langinfo.h>
#include <strings.h>

namespace xpmap {
namespace {

/// procps reads at most this many bytes of /proc/PID/cmdline (its 128 KiB buffer, less the NUL).
constexpr std::size_t MAX_CMDLINE = 128 * 1024 - 1;

/// The 8-bit rule: control bytes become '.', bytes >= 0x80 become '?'.
void escape_8bit(char* p, char* end) {
    for (; p != end; ++p) {
        const auto c = static_cast<unsigned char>(*p);
        if (c < 0x20 || c == 0x7f) {
            *p = '.';
        } else if (c >= 0x80) {
            *p = '?';
        }
    }
}

/// Length of the UTF-8 sequence a lead byte starts, or 0 when it cannot start one.
int utf8_length(unsigned char c) {
    if (c < 0x80) {
        return 1;
    }
    if (c < 0xc2) {
        return 0;
    }
    if (c < 0xe0) {
        return 2;
    }
    if (c < 0xf0) {
        return 3;
    }
    if (c < 0xf5) {
        return 4;
    }
    return 0;
}

}  // namespace

bool locale_is_utf8() {
    const char* codeset = nl_langinfo(CODESET);
    return codeset != nullptr && strcasecmp(codeset, "UTF-8") == 0;
}

void escape_in_place(std::string& s, bool utf8) {
    char* p = s.data();
    char* const end = p + s.size();
    if (!utf8) {
        escape_8bit(p, end);
        return;
    }
    while (p < end) {
        const auto c = static_cast<unsigned char>(*p);
        const int n = utf8_length(c);
        if (n == 0 || n > end - p) {
            escape_8bit(p, end);
            return;
        }
        if (c < 0x20 || c == 0x7f) {
            *p = '?';
        }
        p += n;
    }
}

std::string pmap_command(const std::vector<std::string>& argv, std::string_view comm, char state, bool utf8) {
    if (argv.empty()) {
        std::string out = "[";
        std::string name(comm);
        escape_in_place(name, utf8);
        out += name;
        out += ']';
        if (state == 'Z') {
            out += " <defunct>";
        }
        return out;
    }
    std::string raw;
    for (const std::string& arg : argv) {
        if (raw.size() >= MAX_CMDLINE) {
            break;
        }
        raw += arg;
        raw += '\0';
    }
    if (raw.size() > MAX_CMDLINE) {
        raw.resize(MAX_CMDLINE);
    }
    while (!raw.empty() && raw.back() == '\0') {
        raw.pop_back();
    }
    for (char& c : raw) {
        if (c == '\0' || c == '\n') {
            c = ' ';
        }
    }
    escape_in_place(raw, utf8);
    if (raw.empty()) {
        return "?";
    }
    return raw;
}

}  // namespace xpmap
