// SPDX-License-Identifier: MIT
#pragma once
// xstack's output: eu-stack's text format and xstack's JSON.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "xproc/unwind.hpp"

namespace xstack {

/// One frame as shown: the library's frame and whether its name is printed.
struct ShownFrame {
    xproc::Frame frame;
    /// False when the symbol is only a guess gdb and eu-stack would not make (the pc lies
    /// past the end of the nearest preceding sized symbol) or there is no symbol: the text
    /// output then prints the address alone, as eu-stack does (gdb prints "??").
    bool named = false;
    /// The pc was used as is to find the symbol (frame 0, signal frames and the frame a
    /// signal interrupted); callers are looked up at pc - 1 (eu-stack's activation, -a).
    bool activation = false;
};

struct ThreadStack {
    pid_t tid = 0;
    std::string name;  ///< /proc/PID/task/TID/comm
    std::vector<ShownFrame> frames;
    bool truncated = false;  ///< -n cut the backtrace short
    std::string error;       ///< why the backtrace stopped early ("" when it did not)
};

struct ProcessStack {
    pid_t pid = 0;
    std::chrono::nanoseconds stopped_for{0};
    bool was_stopped = false;  ///< group-stopped before xstack came (and left stopped)
    std::vector<ThreadStack> threads;
};

struct TextOptions {
    bool module = false;      ///< -m: " - /path/of/module"
    bool activation = false;  ///< -a: eu-stack's "    " / " - 1" column
    bool offsets = false;     ///< -o: "name+0x12"
    bool quiet = false;       ///< -q: addresses only
    bool one_thread = false;  ///< -1: no "PID" line (eu-stack's -1)
};

/// Appends eu-stack's lines for one process:
///   PID 1234 - process
///   TID 1234:
///   #0  0x00007f3a12345678 clock_nanosleep
void append_text(std::string& out, const ProcessStack& process, const TextOptions& options);

/// Appends the JSON document for all processes (an array; see man/xstack.1).
void append_json(std::string& out, const std::vector<ProcessStack>& processes);

}  // namespace xstack
