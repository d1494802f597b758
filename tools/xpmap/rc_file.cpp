// SPDX-License-Identifier: MIT
#include "rc_file.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "out_buffer.hpp"
#include "xproc/fd.hpp"

namespace xpmap {
namespace {

constexpr std::size_t MAX_LINE = 1024;

void warn(const char* what, int line) {
    std::fprintf(stderr, "xpmap: %s - line %d\n", what, line);
}

bool blank(char c) {
    return c == ' ' || c == '\t';
}

/// The first blank-separated word of `s`, and whether a second word that is not
/// a comment follows it.
std::string_view first_word(std::string_view s, bool& trailing_junk) {
    std::size_t b = 0;
    while (b < s.size() && blank(s[b])) {
        ++b;
    }
    std::size_t e = b;
    while (e < s.size() && !blank(s[e])) {
        ++e;
    }
    std::size_t t = e;
    while (t < s.size() && blank(s[t])) {
        ++t;
    }
    trailing_junk = t < s.size() && s[t] != '#';
    return s.substr(b, e - b);
}

enum class Section : std::uint8_t { none, unsupported, fields, mapping };

}  // namespace

const char* rc_template() noexcept {
    return "# pmap's Config File\n"
           "\n"
           "# All the entries are case sensitive.\n"
           "# Unsupported entries are ignored!\n"
           "\n"
           "[Fields Display]\n"
           "\n"
           "# To enable a field uncomment its entry\n"
           "\n"
           "#Perm\n"
           "#Offset\n"
           "#Device\n"
           "#Inode\n"
           "#Size\n"
           "#Rss\n"
           "#Pss\n"
           "#Shared_Clean\n"
           "#Shared_Dirty\n"
           "#Private_Clean\n"
           "#Private_Dirty\n"
           "#Referenced\n"
           "#Anonymous\n"
           "#AnonHugePages\n"
           "#Swap\n"
           "#KernelPageSize\n"
           "#MMUPageSize\n"
           "#Locked\n"
           "#VmFlags\n"
           "#Mapping\n"
           "\n"
           "\n"
           "[Mapping]\n"
           "\n"
           "# to show paths in the mapping column uncomment the following line\n"
           "#ShowPath\n"
           "\n";
}

bool read_rc_file(const std::string& path, std::vector<std::string>& enabled_fields, bool& show_path) {
    auto text = xproc::read_file(path.c_str());
    if (!text) {
        return false;
    }
    std::string_view rest = *text;
    Section section = Section::none;
    int line_no = 0;
    while (!rest.empty()) {
        ++line_no;
        std::size_t nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
        if (line.size() >= MAX_LINE) {
            // pmap reads 1024 bytes of a line and ignores the rest of it.
            warn("config line too long", line_no);
            line = line.substr(0, MAX_LINE);
        }
        while (!line.empty() && blank(line.front())) {
            line.remove_prefix(1);
        }
        if (line.empty() || line.front() == '#') {
            continue;
        }
        if (line.front() == '[') {
            constexpr std::string_view FIELDS = "[Fields Display]";
            constexpr std::string_view MAPPING = "[Mapping]";
            if (line.starts_with(FIELDS)) {
                line.remove_prefix(FIELDS.size());
                section = Section::fields;
            } else if (line.starts_with(MAPPING)) {
                line.remove_prefix(MAPPING.size());
                section = Section::mapping;
            } else {
                const std::size_t close = line.find(']');
                if (close != std::string_view::npos) {
                    section = Section::unsupported;
                    warn("unsupported section found in the config", line_no);
                    line.remove_prefix(close + 1);
                } else {
                    warn("syntax error found in the config", line_no);
                    line = {};
                }
            }
            while (!line.empty() && blank(line.front())) {
                line.remove_prefix(1);
            }
            if (line.empty() || line.front() == '#') {
                continue;
            }
            warn("syntax error found in the config", line_no);
        }
        bool junk = false;
        switch (section) {
            case Section::fields: {
                const std::string_view word = first_word(line, junk);
                if (!word.empty()) {
                    if (junk) {
                        warn("syntax error found in the config", line_no);
                    }
                    // pmap keeps 31 bytes of a name.
                    enabled_fields.emplace_back(word.substr(0, 31));
                }
                break;
            }
            case Section::mapping: {
                const std::string_view word = first_word(line, junk);
                if (!word.empty()) {
                    if (junk) {
                        warn("syntax error found in the config", line_no);
                    }
                    if (word == "ShowPath") {
                        show_path = !show_path;
                    }
                }
                break;
            }
            case Section::unsupported:
                break;
            case Section::none:
                warn("syntax error found in the config", line_no);
                break;
        }
    }
    return true;
}

bool create_rc_file(const std::string& path) {
    // As pmap: an existing file (anything that opens for reading) is never overwritten.
    if (auto existing = xproc::open_fd(path.c_str(), O_RDONLY)) {
        std::fprintf(stderr, "xpmap: the file already exists - delete or rename it first\n");
        return false;
    }
    // fopen(path, "w") in pmap: mode 0666 less the umask.
    auto fd = xproc::open_fd(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, /*pid=*/0, 0666);
    if (!fd) {
        return false;
    }
    return write_all(fd->get(), rc_template()) == 0;
}

std::string default_rc_path() {
    const char* home = std::getenv("HOME");
    if (home == nullptr) {
        std::fprintf(stderr, "xpmap: HOME variable undefined\n");
        return {};
    }
    return std::string(home) + "/.pmaprc";
}

}  // namespace xpmap
