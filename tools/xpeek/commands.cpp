// SPDX-License-Identifier: MIT
// The command table, and the commands other than x: set, find, dump, info, help, quit.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

#include "link_map.hpp"
#include "session.hpp"
#include "text.hpp"
#include "xproc/maps.hpp"
#include "xproc/process.hpp"
#include "xproc/scan.hpp"

namespace xpeek {
namespace {

constexpr std::string_view X_DETAILS =
    "Examine memory, gdb's x command.\n"
    "FMT is a repeat count, a format letter and a size letter, each optional:\n"
    "  formats: x hex, z zero-padded hex, d signed decimal, u unsigned decimal,\n"
    "           o octal, t binary, c char, a address, f float, s string\n"
    "  sizes:   b byte, h halfword (2), w word (4), g giant (8)\n"
    "The format and size are remembered: \"x ADDR\" reuses them, and \"x\" alone\n"
    "continues after the last address examined (an empty line does the same).\n"
    "A negative count examines the units before ADDR.\n"
    "ADDRESS is an expression: 0x7f.., 4096, a symbol (its address; &sym too),\n"
    "sym+16, (sym+8)*2, $sp+8, $pc ... (a register attaches to the process with ptrace).";

constexpr std::string_view SET_DETAILS =
    "set {TYPE}ADDRESS = VALUE writes VALUE as a TYPE at ADDRESS, as gdb does.\n"
    "TYPE: char, short, int, long, long long, their unsigned forms (unsigned char, ...),\n"
    "      int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t, float, double.\n"
    "VALUE: 42, -7, 0x2a, 'T', '\\n', 1.5 (converted to TYPE; integers are truncated to its width).\n"
    "Also: set print elements N|unlimited, set print repeats N|unlimited (strings in x/s).";

constexpr std::string_view FIND_DETAILS =
    "Search memory for a sequence of values, as gdb's find.\n"
    "  find [/SIZE-CHAR] [/MAX-COUNT] START, END, VALUE1 [, VALUE2 ...]   (END included)\n"
    "  find [/SIZE-CHAR] [/MAX-COUNT] START, +LENGTH, VALUE1 [, VALUE2 ...]\n"
    "  find [/SIZE-CHAR] [/MAX-COUNT] -all VALUE1 [, VALUE2 ...]           (every readable mapping)\n"
    "SIZE-CHAR b h w g sizes every value; without it a value has its C type's size\n"
    "(42 is an int: 4 bytes, 0x100000000 a long: 8, 'c' a char: 1, 1.5 a double: 8).\n"
    "\"strings\" are searched without their terminating NUL (gdb includes it).\n"
    "Prints each match as ADDRESS <sym+off>, then \"N patterns found.\" or \"Pattern not found.\".";

constexpr std::string_view DUMP_DETAILS =
    "dump memory FILE START END writes the bytes [START, END) to FILE, as gdb does\n"
    "(\"dump binary memory\" is the same). START and END are expressions without spaces.\n"
    "A range that cannot be read completely leaves no file. A progress bar is drawn on\n"
    "stderr when it is a terminal and the range is over 64 MiB.";

constexpr std::string_view INFO_DETAILS =
    "info registers [REG|GROUP...]  registers of the selected thread; groups: general (the default),\n"
    "                     float, sse, vector, system, all (info all-registers: x87, mxcsr, ymm/xmm)\n"
    "info threads         every thread: number, LWP, name, where it is\n"
    "info breakpoints     breakpoints and watchpoints, with hit counts\n"
    "info proc mappings   the target's mappings, in gdb's table\n"
    "info symbol ADDR     which symbol ADDR is in: \"main + 4 in section .text of /bin/prog\"\n"
    "info address SYM     where a symbol is: \"Symbol \\\"main\\\" is at 0x... in a file compiled without "
    "debugging.\"";

const Command COMMANDS[] = {
    {"x", {}, &Session::cmd_examine, "x/FMT ADDRESS", "Examine memory: x/FMT ADDRESS.", X_DETAILS},
    {"set",
     {},
     &Session::cmd_set,
     "set {TYPE}ADDRESS = VALUE",
     "Write a value of a C type into memory.",
     SET_DETAILS},
    {"find",
     {},
     &Session::cmd_find,
     "find [/SIZE] [/N] START, +LEN|END, VAL...",
     "Search memory for a sequence of bytes.",
     FIND_DETAILS},
    {"dump",
     {},
     &Session::cmd_dump,
     "dump memory FILE START END",
     "Dump target memory to a file.",
     DUMP_DETAILS},
    {"info",
     {"i"},
     &Session::cmd_info,
     "info registers | threads | breakpoints | proc mappings | symbol ADDR | address SYM",
     "Show things about the target.",
     INFO_DETAILS},
    {"print",
     {"p", "inspect"},
     &Session::cmd_print,
     "print[/FMT] EXPRESSION",
     "Print the value of an expression ($REG, symbols, arithmetic).",
     "print $rip, p/x $rsp, p $eflags, p $xmm0, p sym+8, p 6*7. FMT: x d u o t c a f z.\n"
     "Values are numbered $1, $2... and can be used again as $N ($ is the last one, $$ the one\n"
     "before, $$N the Nth before); they keep their type ($pc + 1 is still a code pointer)."},
    {"attach",
     {},
     &Session::cmd_attach,
     "attach PID",
     "Attach to a process (ptrace seize; all its threads stop).",
     "Seizes every thread of PID (PTRACE_SEIZE, never PTRACE_ATTACH) and stops them.\n"
     "Commands that need registers (info registers, bt, break, stepi...) attach to the\n"
     "process given on the command line on first use."},
    {"detach",
     {},
     &Session::cmd_detach,
     "detach",
     "Detach from the process: breakpoints removed, threads resumed.",
     "Removes every breakpoint and watchpoint (original bytes back, debug registers cleared)\n"
     "and lets every thread run again; a process that was stopped (state T) before we\n"
     "attached stays stopped. quit, end of input, SIGTERM and SIGHUP do the same."},
    {"kill",
     {},
     &Session::cmd_kill,
     "kill",
     "Kill the process (SIGKILL).",
     "Sends SIGKILL to the attached process and waits for its end."},
    {"continue",
     {"c", "cont", "fg"},
     &Session::cmd_continue,
     "continue [N]",
     "Resume every thread until a breakpoint, a signal or Ctrl-C.",
     "With N, the breakpoint the thread stopped at is ignored N-1 more times.\n"
     "Ctrl-C stops the target again and returns to the prompt."},
    {"stepi",
     {"si"},
     &Session::cmd_stepi,
     "stepi [N]",
     "Step one machine instruction (N times) in the selected thread.",
     "Only the selected thread moves; the others stay stopped."},
    {"nexti",
     {"ni"},
     &Session::cmd_nexti,
     "nexti [N]",
     "Step one instruction, stepping over calls.",
     "A call runs to its return (all threads run meanwhile, as in continue)."},
    {"finish",
     {"fin"},
     &Session::cmd_finish,
     "finish",
     "Run until the selected frame returns.",
     "Runs every thread until the current function returns to its caller in this thread."},
    {"signal",
     {},
     &Session::cmd_signal,
     "signal SIG",
     "Continue, giving a signal (SIGUSR1, USR1, 10; 0 for none) to the selected thread.",
     "Resumes like continue; the selected thread receives SIG (its pending one is replaced)."},
    {"break",
     {"b", "br", "brea"},
     &Session::cmd_break,
     "break FUNCTION | *ADDRESS",
     "Set a breakpoint (hardware debug register first, int3 when the four are used).",
     "break FUNCTION stops after the prologue gdb would skip (endbr64, push %rbp; mov %rsp,%rbp);\n"
     "break *ADDRESS stops at that instruction. Hardware breakpoints change nothing in memory."},
    {"tbreak",
     {},
     &Session::cmd_tbreak,
     "tbreak FUNCTION | *ADDRESS",
     "Set a temporary breakpoint (deleted when hit).",
     "As break; deleted after its first hit."},
    {"hbreak",
     {},
     &Session::cmd_hbreak,
     "hbreak FUNCTION | *ADDRESS",
     "Set a hardware-assisted breakpoint (fails when no debug register is free).",
     "As break, but never an int3."},
    {"watch",
     {},
     &Session::cmd_watch,
     "watch SYMBOL | *(TYPE *)ADDRESS | {TYPE}ADDRESS",
     "Stop when a location is written (hardware watchpoint).",
     "The watched size is the symbol's size, or TYPE's: 1, 2, 4 or 8 bytes, aligned."},
    {"rwatch",
     {},
     &Session::cmd_rwatch,
     "rwatch SYMBOL | *(TYPE *)ADDRESS | {TYPE}ADDRESS",
     "Stop when a location is read (hardware read watchpoint).",
     "x86 cannot watch reads alone: an access that leaves the value unchanged is taken as a read."},
    {"awatch",
     {},
     &Session::cmd_awatch,
     "awatch SYMBOL | *(TYPE *)ADDRESS | {TYPE}ADDRESS",
     "Stop when a location is read or written (access watchpoint).",
     "As watch, for reads and writes."},
    {"delete",
     {"d"},
     &Session::cmd_delete,
     "delete [N...]",
     "Delete breakpoints (all when no number is given).",
     "delete N M removes breakpoints or watchpoints N and M; delete alone removes all."},
    {"ignore",
     {},
     &Session::cmd_ignore,
     "ignore N COUNT",
     "Set the ignore count of breakpoint N: its next COUNT hits do not stop.",
     "Hits while ignored are still counted (info breakpoints). ignore N 0 stops at the next hit."},
    {"backtrace",
     {"bt", "where"},
     &Session::cmd_backtrace,
     "backtrace [N]",
     "Print the selected thread's stack (N innermost frames).",
     "Frames come from libunwind (DWARF CFI, frame pointers as fallback), names from the\n"
     "symbol tables: #N  0xPC in function () from /lib/..."},
    {"thread",
     {"t"},
     &Session::cmd_thread,
     "thread [N] | thread apply all COMMAND",
     "Select thread N, or run a command in every thread.",
     "thread N selects gdb's thread N (see info threads); thread apply all bt prints every stack."},
    {"echo",
     {},
     &Session::cmd_echo,
     "echo TEXT",
     "Print a constant string.",
     "Prints TEXT as it is, with C escapes (\\n for a newline, \\t, \\\\, \\033...) and no\n"
     "newline of its own, as gdb's echo: scripts use it to label their output."},
    {"source",
     {},
     &Session::cmd_source,
     "source FILE",
     "Read commands from a file.",
     "Runs FILE's commands, one per line (# starts a comment); stops at the first that fails.\n"
     "xpeek -x FILE does the same from the command line."},
    {"help",
     {"h"},
     &Session::cmd_help,
     "help [COMMAND]",
     "Print list of commands.",
     "help alone lists the commands; help COMMAND explains one."},
    {"quit",
     {"q", "exit"},
     &Session::cmd_quit,
     "quit",
     "Exit xpeek.",
     "Exits. When attached, first detaches: breakpoints removed, the target runs on."},
};

/// Little-endian bytes of the low `size` bytes of v.
void put_bits(std::vector<std::byte>& out, std::uint64_t v, unsigned size) {
    for (unsigned i = 0; i < size; ++i) {
        out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
    }
}

std::int64_t value_as_long(const Value& v) {
    if (v.kind == Value::Kind::floating) {
        if (std::isnan(v.floating)) {
            return 0;
        }
        return static_cast<std::int64_t>(v.floating);
    }
    return v.integer;
}

}  // namespace

std::span<const Command> command_table() {
    return COMMANDS;
}

bool Session::cmd_quit(std::string_view) {
    m_quit = true;
    return true;
}

bool Session::cmd_echo(std::string_view args) {
    std::string out;
    while (!args.empty()) {
        if (args.front() != '\\') {
            out += args.front();
            args.remove_prefix(1);
            continue;
        }
        if (args.size() == 1) {
            break;  // gdb: a final backslash only protects the spaces before it
        }
        if (const auto c = parse_char_escape(args)) {
            out += static_cast<char>(*c);
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return true;
}

bool Session::cmd_source(std::string_view args) {
    const std::string path(trim(args));
    if (path.empty()) {
        return error("source command requires file name of file to source.");
    }
    FILE* f = std::fopen(path.c_str(), "re");
    if (f == nullptr) {
        return error(path + ": " + std::strerror(errno) + ".");
    }
    char* line = nullptr;
    std::size_t cap = 0;
    bool ok = true;
    ssize_t n;
    const bool from_tty = m_from_tty;
    m_from_tty = false;  // gdb sources a file with from_tty 0
    while (ok && !m_quit && (n = getline(&line, &cap, f)) >= 0) {
        std::string_view s(line, static_cast<std::size_t>(n));
        ok = execute(s);
    }
    m_from_tty = from_tty;
    std::free(line);
    std::fclose(f);
    return ok;
}

bool Session::cmd_help(std::string_view args) {
    args = trim(args);
    if (args.empty()) {
        std::printf("List of commands:\n\n");
        for (const Command& c : command_table()) {
            std::printf("%.*s -- %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                        static_cast<int>(c.summary.size()), c.summary.data());
        }
        std::printf(
            "\nType \"help\" followed by command name for full documentation.\n"
            "Command name abbreviations are allowed if unambiguous.\n");
        return true;
    }
    std::string_view word = args.substr(0, args.find_first_of(" /"));
    for (const Command& c : command_table()) {
        bool match = c.name == word || c.name.starts_with(word);
        for (const std::string_view a : c.aliases) {
            match = match || a == word;
        }
        if (match) {
            std::printf("Usage: %.*s\n%.*s\n", static_cast<int>(c.usage.size()), c.usage.data(),
                        static_cast<int>(c.details.size()), c.details.data());
            return true;
        }
    }
    return error("Undefined command: \"" + std::string(word) + "\".  Try \"help\".");
}

// ---------------------------------------------------------------------------
// set

bool Session::cmd_set(std::string_view args) {
    args = trim(args);
    std::string_view rest = args;
    std::string_view first = next_word(rest);
    if (first == "var" || first == "variable") {
        args = rest;
        first = {};
    }
    if (!args.empty() && args.front() == '{') {
        return set_memory(args);
    }
    if (!args.empty() && args.front() == '$') {
        return set_dollar(args);
    }
    if (first == "print" || first == "p" || first == "pr") {
        return set_print(rest);
    }
    // gdb settings that scripts set and that mean nothing here.
    for (const std::string_view ignored : {"pagination", "confirm", "width", "height", "verbose", "logging",
                                           "style", "auto-load", "debuginfod"}) {
        if (first == ignored) {
            return true;
        }
    }
    if (args.empty()) {
        return error("Argument required (expression to compute).");
    }
    return error(
        "set: only set {TYPE}ADDRESS = VALUE (xpeek has no debug info, so no variables or types), "
        "and set print elements|repeats.");
}

bool Session::set_print(std::string_view args) {
    const std::string_view what = next_word(args);
    const std::string_view value = next_word(args);
    unsigned* target = nullptr;
    if (what == "elements" || what == "elem") {
        target = &m_print.print_max;
    } else if (what == "repeats") {
        target = &m_print.repeat_threshold;
    } else {
        return error("Undefined set print command: \"" + std::string(what) + "\".  Try \"help set\".");
    }
    if (value == "unlimited" || value == "0") {
        *target = ~0u;
        return true;
    }
    const std::string text(value);  // strtoul's end pointer points into it
    char* end = nullptr;
    const unsigned long n = std::strtoul(text.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || n > 0xffffffffUL) {
        return error("integer " + std::string(value) + " out of range");
    }
    *target = static_cast<unsigned>(n);
    return true;
}

bool Session::set_memory(std::string_view args) {
    const std::size_t close = args.find('}');
    if (close == std::string_view::npos) {
        return error("A syntax error in expression, near `" + std::string(args) + "'.");
    }
    const std::string_view type_text = args.substr(1, close - 1);
    const std::optional<CType> type = find_ctype(type_text);
    if (!type) {
        return error("No symbol \"" + std::string(trim(type_text)) + "\" in current context.");
    }
    const std::string_view rest = args.substr(close + 1);
    // The '=' that separates the address from the value (outside any quotes).
    std::size_t eq = std::string_view::npos;
    char quote = 0;
    for (std::size_t i = 0; i < rest.size(); ++i) {
        const char c = rest[i];
        if (quote != 0) {
            if (c == '\\') {
                ++i;
            } else if (c == quote) {
                quote = 0;
            }
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '=') {
            eq = i;
            break;
        }
    }
    if (eq == std::string_view::npos) {
        return error("set {TYPE}ADDRESS = VALUE: missing \"= VALUE\".");
    }
    if (!need_process()) {
        return false;
    }
    auto addr = eval(rest.substr(0, eq));
    if (!addr) {
        return error(addr.error());
    }
    auto value = eval(rest.substr(eq + 1));
    if (!value) {
        return error(value.error());
    }
    if (value->kind == Value::Kind::string) {
        return error("Invalid cast.");
    }
    std::vector<std::byte> bytes;
    if (type->is_float) {
        const double d =
            value->kind == Value::Kind::floating
                ? value->floating
                : (value->is_unsigned ? static_cast<double>(static_cast<std::uint64_t>(value->integer))
                                      : static_cast<double>(value->integer));
        if (type->size == 4) {
            const float f = static_cast<float>(d);
            std::uint32_t u;
            std::memcpy(&u, &f, sizeof u);
            put_bits(bytes, u, 4);
        } else {
            std::uint64_t u;
            std::memcpy(&u, &d, sizeof u);
            put_bits(bytes, u, 8);
        }
    } else {
        put_bits(bytes, static_cast<std::uint64_t>(value_as_long(*value)), type->size);
    }
    const std::uint64_t a = addr->as_address();
    auto t = m_memory->write(a, bytes);
    if (!t) {
        return fatal_error(t.error());
    }
    if (!t->complete()) {
        return memory_error(t->stop_address, t->stop_reason);
    }
    m_window.clear();
    return true;
}

// ---------------------------------------------------------------------------
// find

bool Session::cmd_find(std::string_view args) {
    char size = '\0';
    std::size_t max_count = 0;
    std::string_view s = trim(args);
    if (s.empty()) {
        return error("Missing search parameters.");
    }
    while (!s.empty() && s.front() == '/') {
        s.remove_prefix(1);
        while (!s.empty() && s.front() != '/' && std::isspace(static_cast<unsigned char>(s.front())) == 0) {
            if (std::isdigit(static_cast<unsigned char>(s.front())) != 0) {
                std::size_t n = 0;
                while (!s.empty() && std::isdigit(static_cast<unsigned char>(s.front())) != 0) {
                    n = n * 10 + static_cast<std::size_t>(s.front() - '0');
                    s.remove_prefix(1);
                }
                max_count = n;
                continue;
            }
            const char c = s.front();
            if (c != 'b' && c != 'h' && c != 'w' && c != 'g') {
                return error("Invalid size granularity.");
            }
            size = c;
            s.remove_prefix(1);
        }
        s = trim(s);
    }
    if (!need_process()) {
        return false;
    }
    xproc::ScanOptions options;
    std::uint64_t start = 0;
    std::uint64_t length = 0;
    const bool all = s.starts_with("-all") && (s.size() == 4 || s[4] == ' ' || s[4] == '\t' || s[4] == ',');
    if (all) {
        s = trim(s.substr(4));
        if (!s.empty() && s.front() == ',') {
            s = trim(s.substr(1));
        }
    } else {
        auto v = evaluate_to_comma(s, *this);
        if (!v) {
            return error(v.error());
        }
        start = v->as_address();
        if (!s.empty() && s.front() == ',') {
            s.remove_prefix(1);
        }
        s = trim(s);
        if (s.empty()) {
            return error("Argument required (expression to compute).");
        }
        if (s.front() == '+') {
            s.remove_prefix(1);
            auto len = evaluate_to_comma(s, *this);
            if (!len) {
                return error(len.error());
            }
            const std::int64_t l = value_as_long(*len);
            if (l == 0) {
                // gdb then searches nothing, and says so.
                std::printf("Empty search range.\nPattern not found.\n");
                return true;
            }
            if (l < 0) {
                return error("Invalid length.");
            }
            if (start + static_cast<std::uint64_t>(l) - 1 < start) {
                return error("Search space too large.");
            }
            length = static_cast<std::uint64_t>(l);
        } else {
            auto end = evaluate_to_comma(s, *this);
            if (!end) {
                return error(end.error());
            }
            const std::uint64_t e = end->as_address();
            if (start > e) {
                return error("Invalid search space, end precedes start.");
            }
            length = e - start + 1;
            if (length == 0) {
                return error("Overflow in address range computation, choose smaller range.");
            }
        }
        if (!s.empty() && s.front() == ',') {
            s.remove_prefix(1);
        }
    }
    // The pattern.
    std::vector<std::byte> pattern;
    s = trim(s);
    while (!s.empty()) {
        auto v = evaluate_to_comma(s, *this);
        if (!v) {
            return error(v.error());
        }
        if (v->kind == Value::Kind::string) {
            for (const char c : v->text) {
                pattern.push_back(static_cast<std::byte>(c));
            }
        } else if (size != '\0') {
            put_bits(pattern, static_cast<std::uint64_t>(value_as_long(*v)),
                     static_cast<unsigned>(unit_bytes(size)));
        } else if (v->kind == Value::Kind::floating) {
            if (v->size == 4) {
                const auto f = static_cast<float>(v->floating);
                std::uint32_t u;
                std::memcpy(&u, &f, sizeof u);
                put_bits(pattern, u, 4);
            } else {
                std::uint64_t u;
                std::memcpy(&u, &v->floating, sizeof u);
                put_bits(pattern, u, 8);
            }
        } else {
            put_bits(pattern, static_cast<std::uint64_t>(v->integer), v->size);
        }
        if (!s.empty() && s.front() == ',') {
            s.remove_prefix(1);
        }
        s = trim(s);
    }
    if (pattern.empty()) {
        return error("Missing search pattern.");
    }
    if (!all) {
        if (length < pattern.size()) {
            return error("Search space too small to contain pattern.");
        }
        const std::uint64_t end = start + length;
        options.range = std::make_pair(start, end < start ? ~std::uint64_t{0} : end);
    }
    options.max_matches = max_count;
    auto result = xproc::find_bytes(*m_memory, pattern, options);
    if (!result) {
        return fatal_error(result.error());
    }
    const Labeler lab = labeler();
    for (const std::uint64_t a : result->addresses) {
        std::printf("%s\n", format_address(a, lab).c_str());
    }
    const std::size_t found = result->addresses.size();
    if (found == 0) {
        std::printf("Pattern not found.\n");
    } else {
        std::printf("%zu pattern%s found.\n", found, found > 1 ? "s" : "");
    }
    if (found > 0) {
        m_next_address = result->addresses.back();  // gdb's $_
    }
    // gdb halts at the first unreadable byte ("Unable to access N bytes of target memory");
    // xpeek searches every readable part of the range and says what it skipped.
    if (!all) {
        std::uint64_t readable = 0;
        if (auto map = xproc::read_maps(m_memory->process())) {
            const std::uint64_t end = start + length;
            for (const xproc::Mapping& m : *map) {
                const std::uint64_t lo = std::max(m.start, start);
                const std::uint64_t hi = std::min(m.end, end);
                if (m.perms.read && lo < hi) {
                    readable += hi - lo;
                }
            }
        }
        if (readable < length) {
            warning(std::to_string(length - readable) + " of the " + std::to_string(length) +
                    " bytes searched are not in readable mappings; they were skipped.");
        }
    }
    if (result->stats.unreadable_bytes > 0) {
        warning(std::to_string(result->stats.unreadable_bytes) +
                " bytes of readable mappings could not be read; they were skipped.");
    }
    return true;
}

// ---------------------------------------------------------------------------
// dump

bool Session::cmd_dump(std::string_view args) {
    std::string_view rest = args;
    std::string_view what = next_word(rest);
    if (what == "binary") {
        what = next_word(rest);
    }
    if (what != "memory") {
        return error(
            "dump: only \"dump memory FILE START END\" (and \"dump binary memory ...\") are supported.");
    }
    // gdb's scan_filename: a quoted name may hold spaces.
    std::string file;
    rest = trim(rest);
    if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
        const char q = rest.front();
        const std::size_t close = rest.find(q, 1);
        if (close == std::string_view::npos) {
            return error("Unterminated quoted string.");
        }
        file = std::string(rest.substr(1, close - 1));
        rest = trim(rest.substr(close + 1));
    } else {
        file = std::string(next_word(rest));
    }
    if (file.empty()) {
        return error("Missing filename.");
    }
    const std::string_view lo_text = next_word(rest);
    const std::string_view hi_text = next_word(rest);
    if (lo_text.empty()) {
        return error("Missing start address.");
    }
    if (hi_text.empty()) {
        return error("Missing stop address.");
    }
    if (!need_process()) {
        return false;
    }
    auto lo = eval(lo_text);
    if (!lo) {
        return error(lo.error());
    }
    auto hi = eval(hi_text);
    if (!hi) {
        return error(hi.error());
    }
    const std::uint64_t start = lo->as_address();
    const std::uint64_t end = hi->as_address();
    if (end <= start) {
        return error("Invalid memory address range (start >= end).");
    }
    // gdb reads everything before it opens the file, so a failed dump leaves no file (and an
    // existing one untouched). Streaming instead (bounded memory), xpeek writes a temporary
    // file next to FILE and renames it at the end. A device or FIFO (/dev/null, a pipe) is
    // written directly and never removed.
    struct stat st {};
    const bool special = ::stat(file.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
    const std::string temp = special ? file : file + ".xpeek-" + std::to_string(::getpid());
    const int fd =
        ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (special ? 0 : O_EXCL), 0666);
    if (fd < 0) {
        return error(file + ": " + std::strerror(errno) + ".");
    }
    const std::uint64_t total = end - start;
    const bool progress = isatty(STDERR_FILENO) != 0 && total > (64ull << 20);
    constexpr std::size_t CHUNK = 4 << 20;
    std::vector<std::byte> buf(static_cast<std::size_t>(std::min<std::uint64_t>(CHUNK, total)));
    std::uint64_t done = 0;
    bool ok = true;
    int last_percent = -1;
    while (done < total) {
        if (g_interrupted != 0) {
            ok = error("Quit");
            break;
        }
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), total - done));
        auto t = m_memory->read(start + done, std::span(buf.data(), n));
        if (!t) {
            ok = fatal_error(t.error());
            break;
        }
        std::size_t off = 0;
        while (off < t->bytes) {
            const ssize_t w = ::write(fd, buf.data() + off, t->bytes - off);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                ok = error(file + ": " + std::strerror(errno) + ".");
                break;
            }
            off += static_cast<std::size_t>(w);
        }
        if (!ok) {
            break;
        }
        done += t->bytes;
        if (!t->complete()) {
            if (progress) {
                std::fputs("\n", stderr);
            }
            ok = memory_error(t->stop_address, t->stop_reason);
            break;
        }
        if (progress) {
            const int percent = static_cast<int>(done * 100 / total);
            if (percent != last_percent) {
                last_percent = percent;
                const int bar = percent * 40 / 100;
                std::fprintf(stderr, "\r[%.*s%*s] %3d%% %" PRIu64 "/%" PRIu64 " MiB", bar,
                             "========================================", 40 - bar, "", percent, done >> 20,
                             total >> 20);
                std::fflush(stderr);
            }
        }
    }
    if (progress && ok) {
        std::fputs("\n", stderr);
    }
    if (::close(fd) != 0 && ok) {
        ok = error(file + ": " + std::strerror(errno) + ".");
    }
    if (!special) {
        if (ok && ::rename(temp.c_str(), file.c_str()) != 0) {
            ok = error(file + ": " + std::strerror(errno) + ".");
        }
        if (!ok) {
            ::unlink(temp.c_str());
        }
    }
    return ok;
}

// ---------------------------------------------------------------------------
// info

bool Session::cmd_info(std::string_view args) {
    std::string_view rest = args;
    const std::string_view sub = next_word(rest);
    struct Sub {
        std::string_view name;
        bool (Session::*handler)(std::string_view);
    };
    static constexpr Sub SUBS[] = {
        {"proc", &Session::info_proc},
        {"symbol", &Session::info_symbol},
        {"address", &Session::info_address},
        {"threads", &Session::info_threads},
        {"breakpoints", &Session::info_breakpoints},
        {"watchpoints", &Session::info_watchpoints},
    };
    if (sub.empty()) {
        std::printf(
            "List of info subcommands:\n\n"
            "info address -- Describe where symbol SYM is stored.\n"
            "info breakpoints -- Status of breakpoints and watchpoints.\n"
            "info proc -- Show additional information about a process (info proc mappings).\n"
            "info registers -- List of registers and their contents (info all-registers: all).\n"
            "info symbol -- Describe what symbol is at location ADDR.\n"
            "info threads -- Display currently known threads.\n"
            "info watchpoints -- Status of specified watchpoints (all watchpoints if no argument).\n");
        return true;
    }
    if (sub == "all-registers") {
        return info_registers(rest, true);
    }
    if (sub == "registers" || sub.starts_with("reg") || sub == "r") {
        return info_registers(rest, false);
    }
    if (sub == "b" || sub == "br" || sub == "break") {
        return info_breakpoints(rest);
    }
    const Sub* found = nullptr;
    int matches = 0;
    for (const Sub& s : SUBS) {
        if (s.name == sub) {
            found = &s;
            matches = 1;
            break;
        }
        if (s.name.starts_with(sub)) {
            found = &s;
            ++matches;
        }
    }
    if (matches != 1) {
        return error("Undefined info command: \"" + std::string(sub) + "\".  Try \"help info\".");
    }
    return (this->*(found->handler))(rest);
}

bool Session::info_proc(std::string_view args) {
    const std::string_view what = trim(args);
    if (!what.empty() && !std::string_view("mappings").starts_with(what)) {
        return error("info proc: only \"info proc mappings\" is supported.");
    }
    if (!need_process()) {
        return false;
    }
    if (what.empty()) {
        std::printf("process %d\n", static_cast<int>(m_pid));
        auto argv = m_memory->process().cmdline();
        if (argv && !argv->empty()) {
            std::string line;
            for (const std::string& a : *argv) {
                line += (line.empty() ? "" : " ") + a;
            }
            std::printf("cmdline = '%s'\n", line.c_str());
        }
        if (auto exe = m_memory->process().exe()) {
            std::printf("exe = '%s'\n", exe->c_str());
        }
        return true;
    }
    auto map = xproc::read_maps(m_memory->process());
    if (!map) {
        return fatal_error(map.error());
    }
    std::printf("process %d\n", static_cast<int>(m_pid));
    std::printf("Mapped address spaces:\n\n");
    std::printf("  %18s %18s %10s %10s  %s %s\n", "Start Addr", "  End Addr", "      Size", "    Offset",
                "Perms ", "objfile");
    for (const xproc::Mapping& m : *map) {
        const std::string_view perms = m.perms.text();
        std::printf("  %18s %18s %10s %10s  %-5.*s  %.*s\n", hex(m.start).c_str(), hex(m.end).c_str(),
                    hex(m.end - m.start).c_str(), hex(m.offset).c_str(), static_cast<int>(perms.size()),
                    perms.data(), static_cast<int>(m.name.size()), m.name.data());
    }
    return true;
}

bool Session::info_symbol(std::string_view args) {
    args = trim(args);
    if (args.empty()) {
        return error("Argument required (address).");
    }
    if (!need_process()) {
        return false;
    }
    auto v = eval(args);
    if (!v) {
        return error(v.error());
    }
    const std::uint64_t addr = v->as_address();
    std::optional<xproc::ResolvedAddress> r;
    if (m_symbols) {
        r = m_symbols->resolve(addr);
    }
    // gdb's lookup_minimal_symbol_by_pc_section: a sized symbol must cover the address.
    if (!r || r->section.empty() || !(r->exact_size_match || r->symbol_size == 0)) {
        std::printf("No symbol matches %.*s.\n", static_cast<int>(args.size()), args.data());
        return true;
    }
    std::string loc = xproc::gdb_display_name(r->symbol);  // gdb's spelling: f.isra, f[cold]
    if (r->offset != 0) {
        loc += " + " + std::to_string(r->offset);
    }
    // Several modules are always loaded in a live process, so gdb always names the module;
    // the vdso has no file: gdb calls it "system-supplied DSO at START".
    // A library goes by the dynamic linker's name for it, as in gdb.
    std::string module(r->module);
    if (const auto* m = m_symbols->module_of(addr); m != nullptr && m->vdso) {
        module = "system-supplied DSO at " + hex(m->start);
    } else if (m != nullptr && !m->main_executable) {
        if (!m_link_names) {
            m_link_names = read_link_map(*m_memory, *m_symbols);
        }
        if (const auto it = m_link_names->find(m->load_bias); it != m_link_names->end()) {
            module = it->second;
        }
    }
    std::printf("%s in section %.*s of %s\n", loc.c_str(), static_cast<int>(r->section.size()),
                r->section.data(), module.c_str());
    return true;
}

bool Session::info_address(std::string_view args) {
    args = trim(args);
    if (args.empty()) {
        return error("Argument required.");
    }
    if (!need_process()) {
        return false;
    }
    const auto addr = symbol_address(args);
    if (!addr) {
        return error("No symbol \"" + std::string(args) + "\" in current context.");
    }
    std::printf("Symbol \"%.*s\" is at %s in a file compiled without debugging.\n",
                static_cast<int>(args.size()), args.data(), hex(*addr).c_str());
    return true;
}

}  // namespace xpeek
