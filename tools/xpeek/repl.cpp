// SPDX-License-Identifier: MIT
#include "repl.hpp"

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <editline/readline.h>

#include "session.hpp"

namespace xpeek {
namespace {

constexpr int HISTORY_SIZE = 1000;

std::string history_path() {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
        return {};
    }
    return std::string(home) + "/.xpeek_history";
}

/// Runs one line; an empty line repeats the last repeatable command (gdb: x continues).
bool run_line(Session& session, const std::string& line, std::string& repeat) {
    if (line.find_first_not_of(" \t") == std::string::npos) {
        if (repeat.empty()) {
            return true;
        }
        return session.execute(repeat);
    }
    const bool ok = session.execute(line);
    repeat = session.repeat_line();
    return ok;
}

}  // namespace

bool run_interactive(Session& session, bool quiet) {
    bool ok = true;
    std::string repeat;
    if (isatty(STDIN_FILENO) == 0) {
        // Commands from a pipe or file, as gdb reads them: no prompt, no history.
        char* line = nullptr;
        std::size_t cap = 0;
        ssize_t n;
        while (!session.quit_requested() && (n = getline(&line, &cap, stdin)) >= 0) {
            std::string s(line, static_cast<std::size_t>(n));
            while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
                s.pop_back();
            }
            ok = s.empty() ? ok : session.execute(s);
        }
        std::free(line);
        return ok;
    }
    if (!quiet && session.has_process()) {
        std::printf("xpeek: gdb's memory commands on process %d without stopping it. Type \"help\".\n",
                    static_cast<int>(session.pid()));
    } else if (!quiet) {
        std::printf("xpeek: no process (start xpeek with a PID to examine one). Type \"help\".\n");
    }
    const std::string history = history_path();
    using_history();
    stifle_history(HISTORY_SIZE);
    if (!history.empty()) {
        read_history(history.c_str());
    }
    while (!session.quit_requested()) {
        char* raw = readline("(xpeek) ");
        if (raw == nullptr) {
            std::printf("quit\n");
            break;
        }
        std::string line(raw);
        std::free(raw);
        if (line.find_first_not_of(" \t") != std::string::npos) {
            add_history(line.c_str());
        }
        ok = run_line(session, line, repeat);
    }
    if (!history.empty()) {
        write_history(history.c_str());
    }
    return ok;
}

}  // namespace xpeek
