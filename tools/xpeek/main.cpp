// SPDX-License-Identifier: MIT
// xpeek: the memory half of a mini debugger, with gdb's commands and output.
//
//   xpeek PID | xpeek -p PID                     interactive (line editing, history)
//   xpeek --batch -ex CMD [-ex CMD...] PID        run the commands and exit
//   xpeek --why PID                               can I read its memory? which rule decides
//
// gdb's single-dash long options (-batch, -ex, -eval-command, -pid, -x, -q, -nx) are
// rewritten to CLI11's double-dash forms before parsing (gdb_style_arguments).
//
// Exit status: 0 success; 1 when the process cannot be opened, on a usage error, or in
// --batch when the last command failed (as gdb -batch); 128+N after signal N (SIGTERM,
// SIGHUP), once the target is detached. Memory commands never stop the target; ptrace
// commands attach (PTRACE_SEIZE) and every way out detaches.
// See man/xpeek.1.

#include <unistd.h>
#include <cerrno>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "repl.hpp"
#include "session.hpp"
#include "xproc/access.hpp"

#ifndef XPROC_VERSION
#define XPROC_VERSION "unknown"
#endif

namespace {

[[noreturn]] void die(std::string_view message) {
    std::fflush(stdout);
    std::fprintf(stderr, "xpeek: %.*s\n", static_cast<int>(message.size()), message.data());
    std::exit(EXIT_FAILURE);
}

/// gdb spells its long options with one dash (-batch, -ex CMD, -eval-command=CMD); CLI11
/// reads "-ex" as "-e x". Rewrites them to "--batch", "--ex=CMD"... Values are attached with
/// '=' so that a command starting with '-' ("x/-4xw $sp") is never taken for an option.
std::vector<std::string> gdb_style_arguments(int argc, char** argv) {
    struct Alias {
        std::string_view gdb;
        std::string_view ours;
        bool takes_value;
    };
    static constexpr Alias ALIASES[] = {
        {"batch", "--batch", false},     {"ex", "--ex", true},
        {"eval-command", "--ex", true},  {"p", "--pid", true},
        {"pid", "--pid", true},          {"why", "--why", true},
        {"x", "--command", true},        {"command", "--command", true},
        {"q", "--quiet", false},         {"quiet", "--quiet", false},
        {"silent", "--quiet", false},    {"nx", "--quiet", false},
        {"n", "--quiet", false},         {"nh", "--quiet", false},
        {"help", "--help", false},       {"h", "--help", false},
        {"version", "--version", false}, {"v", "--version", false},
    };
    std::vector<std::string> out{argv[0]};
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--") {
            for (; i < argc; ++i) {
                out.emplace_back(argv[i]);
            }
            break;
        }
        if (arg.size() < 2 || arg[0] != '-') {
            out.emplace_back(arg);
            continue;
        }
        // One or two dashes, gdb accepts both.
        std::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
        std::optional<std::string_view> inline_value;
        if (const std::size_t eq = body.find('='); eq != std::string_view::npos) {
            inline_value = body.substr(eq + 1);
            body = body.substr(0, eq);
        }
        const Alias* alias = nullptr;
        for (const Alias& a : ALIASES) {
            if (a.gdb == body) {
                alias = &a;
            }
        }
        if (alias == nullptr) {
            out.emplace_back(arg);  // CLI11 reports it
            continue;
        }
        if (!alias->takes_value) {
            out.emplace_back(alias->ours);
            continue;
        }
        std::string value;
        if (inline_value) {
            value = *inline_value;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            die("option '" + std::string(arg) + "' requires an argument");
        }
        if (alias->ours == "--command") {
            // gdb's -x FILE: run the file's commands, in command-line order with -ex.
            out.push_back("--ex=source " + value);
        } else {
            out.push_back(std::string(alias->ours) + "=" + value);
        }
    }
    return out;
}

pid_t parse_pid(const std::string& text) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || v < 1 || v > 0x7fffffffL) {
        die(text + ": not a process id (a number from 1 to 2147483647)");
    }
    return static_cast<pid_t>(v);
}

void on_sigint(int) {
    xpeek::g_interrupted = 1;
}

void on_terminate(int sig) {
    xpeek::g_terminate = sig;
}

/// After SIGTERM/SIGHUP: detach cleanly (breakpoints out, threads resumed), then exit as
/// the signal's default action would be reported by a shell (128 + signal).
int terminate_session(xpeek::Session& session) {
    const int sig = xpeek::g_terminate;
    session.release(sig == SIGHUP ? "SIGHUP" : "SIGTERM");
    return 128 + sig;
}

}  // namespace

int main(int argc, char** argv) {
    std::setlocale(LC_ALL, "");  // strings print in the locale's charset, as gdb's do

    bool batch = false;
    bool quiet = false;
    std::vector<std::string> commands;
    std::string pid_option;
    std::string why_option;
    std::vector<std::string> positionals;

    CLI::App app{"xpeek: examine and change another process's memory with gdb's commands", "xpeek"};
    app.set_version_flag("--version", std::string("xpeek from xproc ") + XPROC_VERSION);
    app.add_flag("--batch", batch, "run the -ex commands, then exit (status: the last command's)");
    app.add_option("--ex,--eval-command", commands, "a command to run (repeatable, in order)")
        ->allow_extra_args(false)
        ->take_all();
    app.add_option("-p,--pid", pid_option, "the process to examine");
    app.add_option("--why", why_option, "explain whether and why this process's memory can be read");
    app.add_flag("--quiet", quiet, "accepted for gdb compatibility (-q, -nx)");
    app.add_option("pid", positionals, "the process to examine");
    app.footer(
        "Commands: x/FMT ADDR, print, set {TYPE}ADDR = VAL, set $REG = VAL, find, dump memory,\n"
        "info registers|threads|breakpoints|watchpoints|proc mappings|symbol|address, bt,\n"
        "thread [N|apply all bt], break, tbreak, hbreak, watch, rwatch, awatch, delete, ignore,\n"
        "continue, stepi, nexti, finish, signal, attach, detach, kill, echo, source, help, quit.\n"
        "gdb's -batch, -ex, -p, -x also work. See xpeek(1).");

    std::vector<std::string> args = gdb_style_arguments(argc, argv);
    std::vector<char*> cargs;
    for (std::string& a : args) {
        cargs.push_back(a.data());
    }
    try {
        app.parse(static_cast<int>(cargs.size()), cargs.data());
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        die(e.what());
    }

    if (!why_option.empty()) {
        const pid_t pid = parse_pid(why_option);
        const xproc::AccessReport report = xproc::explain_access_all(pid, xproc::AccessMode::attach);
        std::fputs(report.text().c_str(), stdout);
        return report.verdict.allowed() ? EXIT_SUCCESS : EXIT_FAILURE;
    }

    std::optional<pid_t> pid;
    if (!pid_option.empty()) {
        pid = parse_pid(pid_option);
    }
    for (const std::string& p : positionals) {
        if (pid) {
            die("one process at a time: unexpected argument '" + p + "'");
        }
        pid = parse_pid(p);
    }

    xpeek::Session session;
    if (pid) {
        std::string error;
        if (!session.open(*pid, error)) {
            die(error);
        }
    }

    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    // SIGTERM and SIGHUP end xpeek, but only after it has detached: a target must never be
    // left stopped or with an int3 in its text. No SA_RESTART, so a blocked read returns.
    struct sigaction term {};
    term.sa_handler = on_terminate;
    sigemptyset(&term.sa_mask);
    sigaction(SIGTERM, &term, nullptr);
    sigaction(SIGHUP, &term, nullptr);
    // Writing to a closed terminal or pipe must not kill us before we detach.
    signal(SIGPIPE, SIG_IGN);

    bool last_ok = true;
    session.set_from_tty(!batch);  // gdb runs -ex commands with from_tty = !batch_flag
    for (const std::string& c : commands) {
        last_ok = session.execute(c);
        if (xpeek::g_terminate != 0) {
            return terminate_session(session);
        }
        if (session.quit_requested()) {
            session.release(nullptr);
            return last_ok ? EXIT_SUCCESS : EXIT_FAILURE;
        }
    }
    if (batch) {
        session.release(nullptr);
        return last_ok ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    // Interactive, as gdb: the status does not depend on the commands typed.
    session.set_from_tty(true);
    xpeek::run_interactive(session, quiet);
    if (xpeek::g_terminate != 0) {
        return terminate_session(session);
    }
    session.release(session.attached() && !session.quit_requested() ? "end of input" : nullptr);
    return EXIT_SUCCESS;
}
