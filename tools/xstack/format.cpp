// SPDX-License-Identifier: MIT
// xstack's output formats.
//
// Text: eu-stack's (elfutils 0.188, src/stack.c), line for line:
//   "PID %d - process", "TID %d:", then per frame "#%-2u 0x%016lx", with -a "%4s" of "- 1"
//   (a caller, looked up at pc - 1) or "" (an activation), " NAME" when named, with -m
//   " - MODULE". xstack's -o adds "+0xOFFSET" to the name.
//
// JSON (documented in man/xstack.1): one array of processes. Addresses are hex strings (a
// 64-bit value does not fit a JSON double), as in xpmap --json.

#include "format.hpp"

#include <cinttypes>
#include <cstdio>
#include <string_view>

namespace xstack {
namespace {

void append_hex(std::string& out, std::uint64_t v, int width) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%0*" PRIx64, width, v);
    out += buf;
}

/// The length of the well-formed UTF-8 sequence at s[i], or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80                 ? 1
                          : c >= 0xc2 && c <= 0xdf ? 2
                          : c >= 0xe0 && c <= 0xef ? 3
                          : c >= 0xf0 && c <= 0xf4 ? 4
                                                   : 0;
    if (n == 0 || i + n > s.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < n; ++k) {
        if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/// A JSON string. Bytes that are not UTF-8 (a path can hold any) become U+FFFD.
void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
            ++i;
        } else if (const std::size_t n = utf8_length(s, i); n > 0) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out += "\\ufffd";
            ++i;
        }
    }
    out += '"';
}

}  // namespace

void append_text(std::string& out, const ProcessStack& process, const TextOptions& options) {
    char buf[64];
    if (!options.one_thread) {
        std::snprintf(buf, sizeof buf, "PID %d - process\n", static_cast<int>(process.pid));
        out += buf;
    }
    for (const ThreadStack& thread : process.threads) {
        std::snprintf(buf, sizeof buf, "TID %d:\n", static_cast<int>(thread.tid));
        out += buf;
        for (const ShownFrame& shown : thread.frames) {
            const xproc::Frame& f = shown.frame;
            std::snprintf(buf, sizeof buf, "#%-2u ", f.index);
            out += buf;
            append_hex(out, f.pc, 16);
            if (options.activation) {
                out += shown.activation ? "    " : " - 1";
            }
            if (shown.named && !options.quiet) {
                out += ' ';
                out += f.symbol;
                if (options.offsets) {
                    out += '+';
                    append_hex(out, f.offset, 0);
                }
            }
            if (options.module && !f.module.empty()) {
                out += " - ";
                out += f.module;
            }
            out += '\n';
        }
    }
}

void append_json(std::string& out, const std::vector<ProcessStack>& processes) {
    out += "[";
    bool first_process = true;
    for (const ProcessStack& p : processes) {
        out += first_process ? "\n" : ",\n";
        first_process = false;
        out += "  {\"pid\": " + std::to_string(p.pid) +
               ", \"stopped_ns\": " + std::to_string(p.stopped_for.count()) +
               ", \"was_stopped\": " + (p.was_stopped ? "true" : "false") + ", \"threads\": [";
        bool first_thread = true;
        for (const ThreadStack& t : p.threads) {
            out += first_thread ? "\n" : ",\n";
            first_thread = false;
            out += "    {\"tid\": " + std::to_string(t.tid) + ", \"name\": ";
            append_json_string(out, t.name);
            out += ", \"truncated\": ";
            out += t.truncated ? "true" : "false";
            out += ", \"error\": ";
            if (t.error.empty()) {
                out += "null";
            } else {
                append_json_string(out, t.error);
            }
            out += ", \"frames\": [";
            bool first_frame = true;
            for (const ShownFrame& shown : t.frames) {
                const xproc::Frame& f = shown.frame;
                out += first_frame ? "\n" : ",\n";
                first_frame = false;
                out += "      {\"index\": " + std::to_string(f.index) + ", \"pc\": \"";
                append_hex(out, f.pc, 0);
                out += "\", \"sp\": \"";
                append_hex(out, f.sp, 0);
                out += "\", \"module\": ";
                append_json_string(out, f.module);
                out += ", \"symbol\": ";
                append_json_string(out, f.symbol);
                out += ", \"offset\": " + std::to_string(f.offset);
                out += ", \"guessed\": ";
                out += f.guessed ? "true" : "false";
                out += ", \"signal_frame\": ";
                out += f.signal_frame ? "true" : "false";
                out += "}";
            }
            out += first_frame ? "]}" : "\n    ]}";
        }
        out += first_thread ? "]}" : "\n  ]}";
    }
    out += first_process ? "]\n" : "\n]\n";
}

}  // namespace xstack
