// SPDX-License-Identifier: MIT
#include "repl.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
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

constexpr const char* PROMPT = "(xpeek) ";

/// State of the line handler (libedit's callback takes no user pointer).
struct LineState {
    Session* session = nullptr;
    std::string* repeat = nullptr;
    bool eof = false;
    bool ok = true;
} g_line;

void on_line(char* raw) {
    if (raw == nullptr) {
        g_line.eof = true;
        return;
    }
    std::string line(raw);
    std::free(raw);
    if (line.find_first_not_of(" \t") != std::string::npos) {
        add_history(line.c_str());
    }
    // The prompt is taken down while the command runs (it may print, and run the target).
    rl_callback_handler_remove();
    g_line.ok = run_line(*g_line.session, line, *g_line.repeat);
    if (!g_line.session->quit_requested() && g_terminate == 0) {
        rl_callback_handler_install(PROMPT, on_line);
    }
}

}  // namespace

bool run_interactive(Session& session, bool quiet) {
    bool ok = true;
    std::string repeat;
    if (isatty(STDIN_FILENO) == 0) {
        // Commands from a pipe or file, as gdb reads them: no prompt, no history. We wait in
        // poll(), so SIGTERM and SIGHUP are noticed even while no input comes.
        std::string buffer;
        bool eof = false;
        while (!session.quit_requested() && g_terminate == 0) {
            const std::size_t nl = buffer.find('\n');
            if (nl != std::string::npos || (eof && !buffer.empty())) {
                std::string s = buffer.substr(0, nl == std::string::npos ? buffer.size() : nl);
                buffer.erase(0, nl == std::string::npos ? buffer.size() : nl + 1);
                while (!s.empty() && s.back() == '\r') {
                    s.pop_back();
                }
                ok = s.empty() ? ok : session.execute(s);
                continue;
            }
            if (eof) {
                break;
            }
            pollfd pfd{STDIN_FILENO, POLLIN, 0};
            if (::poll(&pfd, 1, 200) <= 0) {
                continue;
            }
            char chunk[4096];
            const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
            if (n > 0) {
                buffer.append(chunk, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                eof = true;
            }
        }
        return ok;
    }
    if (!quiet && session.has_process()) {
        std::printf(
            "xpeek: process %d. Memory commands (x, find, set, dump) leave it running; break, bt,\n"
            "info registers, stepi... attach with ptrace and stop it until continue or detach. Type "
            "\"help\".\n",
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
    // libedit's callback interface: we wait in poll(), so SIGTERM, SIGHUP and Ctrl-C are seen
    // at once (readline() would restart its read), and libedit installs no signal handlers.
    g_line.session = &session;
    g_line.repeat = &repeat;
    g_line.eof = false;
    rl_catch_signals = 0;
    rl_callback_handler_install(PROMPT, on_line);
    while (!session.quit_requested() && !g_line.eof && g_terminate == 0) {
        pollfd pfd{STDIN_FILENO, POLLIN, 0};
        const int r = ::poll(&pfd, 1, 200);
        if (g_terminate != 0) {
            break;
        }
        if (r < 0 && errno == EINTR && g_interrupted != 0) {
            // Ctrl-C at the prompt: gdb prints "Quit" and a fresh prompt.
            // Taking the handler down and putting it back gives libedit a clean new line (redrawing
            // in place left it echoing every key with its own prompt).
            g_interrupted = 0;
            rl_callback_handler_remove();
            std::printf("\nQuit\n");
            std::fflush(stdout);
            rl_callback_handler_install(PROMPT, on_line);
            continue;
        }
        if (r > 0) {
            rl_callback_read_char();
        }
    }
    rl_callback_handler_remove();
    if (g_line.eof) {
        std::printf("quit\n");
    }
    ok = g_line.ok;
    if (!history.empty()) {
        write_history(history.c_str());
    }
    return ok;
}

}  // namespace xpeek
