// SPDX-License-Identifier: MIT
#pragma once
/// @file session.hpp
/// One xpeek session: the target process (its memory and symbols), gdb's
/// examine state (last format, size, count, next address), the print settings,
/// and the command table every command goes through.
///
/// Output discipline (gdb's): results go to stdout, errors to stderr, one line
/// each; stdout is flushed before an error is written so that a terminal shows
/// them in order. A command reports failure by returning false; `--batch` turns
/// the last command's outcome into the exit status.

#include <sys/types.h>
#include <csignal>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "expression.hpp"
#include "format.hpp"
#include "xproc/memory.hpp"
#include "xproc/symbols.hpp"
#include "xproc/tracer.hpp"
#include "xproc/unwind.hpp"

namespace xpeek {

class Session;

/// A command: gdb's name, aliases, its handler and its help. Issue 5 adds rows
/// (break, continue, bt, info registers...) to `command_table()`.
struct Command {
    std::string_view name;
    std::vector<std::string_view> aliases;  ///< exact alternative names ("q" for quit)
    bool (Session::*handler)(std::string_view args);
    std::string_view usage;    ///< first line of `help CMD` and the line of `help`
    std::string_view summary;  ///< one line for `help`
    std::string_view details;  ///< the rest of `help CMD`
};

/// Every command, in the order `help` lists them.
std::span<const Command> command_table();

/// Set by SIGINT while a command runs (gdb's QUIT): long commands stop at the next item, a
/// running target is interrupted.
extern volatile std::sig_atomic_t g_interrupted;
/// Set to SIGTERM or SIGHUP when one arrives: xpeek detaches cleanly and exits.
extern volatile std::sig_atomic_t g_terminate;

/// Bytes read from the target around the items being examined (one read per window, not one
/// per item), remembering why a read stopped.
class MemoryWindow {
  public:
    /// Pointer to `n` bytes at `address`, or nullptr (then `stop_reason()` says why, or
    /// `fatal()` holds an error that ends the command: process gone, access refused).
    const std::byte* get(xproc::RemoteMemory& memory, std::uint64_t address, std::size_t n);
    const std::string& stop_reason() const noexcept { return m_stop_reason; }
    const std::optional<xproc::Error>& fatal() const noexcept { return m_fatal; }
    void clear() noexcept { m_valid = 0; }
    /// Breakpoints whose int3 bytes are hidden from what `get` returns (nullptr: none).
    void set_patches(const xproc::Breakpoints* patches) noexcept {
        m_patches = patches;
        m_valid = 0;
    }

  private:
    static constexpr std::size_t WINDOW = 64 * 1024;
    std::vector<std::byte> m_buffer;
    std::uint64_t m_base = 0;
    std::size_t m_valid = 0;
    std::string m_stop_reason;
    std::optional<xproc::Error> m_fatal;
    const xproc::Breakpoints* m_patches = nullptr;
};

class Session final : public Scope {
  public:
    Session() = default;
    /// Detaches (breakpoints removed, threads resumed) if still attached.
    ~Session() override;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    /// Opens the target: pins the process and loads its symbols. The error is one line.
    bool open(pid_t pid, std::string& error);
    bool has_process() const noexcept { return m_memory.has_value(); }
    pid_t pid() const noexcept { return m_pid; }

    /// Runs one command line; false when it failed (its message was printed).
    bool execute(std::string_view line);
    /// The command an empty line repeats in interactive mode (gdb: `x` continues).
    std::string repeat_line() const { return m_repeat; }
    bool quit_requested() const noexcept { return m_quit; }
    /// gdb's from_tty: true for commands typed (or read from stdin), false for -ex commands
    /// with -batch and for `source` files. Only a few messages depend on it
    /// ("(More stack frames follow...)").
    void set_from_tty(bool from_tty) noexcept { m_from_tty = from_tty; }

    // Scope
    std::optional<std::uint64_t> symbol_address(std::string_view name) override;
    std::expected<Value, std::string> register_value(std::string_view name) override;

    // Command handlers (the table in commands.cpp points at these).
    bool cmd_examine(std::string_view args);
    bool cmd_set(std::string_view args);
    bool cmd_find(std::string_view args);
    bool cmd_dump(std::string_view args);
    bool cmd_info(std::string_view args);
    bool cmd_help(std::string_view args);
    bool cmd_quit(std::string_view args);
    bool cmd_source(std::string_view args);
    bool cmd_echo(std::string_view args);
    bool cmd_print(std::string_view args);

    // ptrace control (control.cpp)
    bool cmd_attach(std::string_view args);
    bool cmd_detach(std::string_view args);
    bool cmd_kill(std::string_view args);
    bool cmd_continue(std::string_view args);
    bool cmd_stepi(std::string_view args);
    bool cmd_nexti(std::string_view args);
    bool cmd_finish(std::string_view args);
    bool cmd_signal(std::string_view args);
    bool cmd_break(std::string_view args);
    bool cmd_tbreak(std::string_view args);
    bool cmd_hbreak(std::string_view args);
    bool cmd_watch(std::string_view args);
    bool cmd_rwatch(std::string_view args);
    bool cmd_awatch(std::string_view args);
    bool cmd_delete(std::string_view args);
    bool cmd_ignore(std::string_view args);
    bool cmd_backtrace(std::string_view args);
    bool cmd_thread(std::string_view args);

    bool attached() const noexcept { return m_att != nullptr; }
    /// Ends the session's hold on the target: removes breakpoints, resumes, detaches.
    /// `why` ("SIGTERM", "end of input") is printed on stderr when something was detached.
    void release(const char* why);

  private:
    bool need_process();
    /// gdb's error(): flush stdout, print `message` on stderr.
    bool error(const std::string& message);
    void warning(const std::string& message);
    /// What gdb prints only for a command typed (from_tty): "Continuing.", "Attaching to
    /// process N"...; nothing for -ex commands under --batch.
    void announce(const std::string& text);
    bool memory_error(std::uint64_t address, const std::string& reason);
    bool fatal_error(const xproc::Error& e);
    std::string label(std::uint64_t address) const;
    Labeler labeler() const;
    std::expected<Value, std::string> eval(std::string_view text) { return evaluate(text, *this); }

    bool examine_strings(char size, long long count, std::uint64_t address);
    bool set_print(std::string_view args);
    bool set_memory(std::string_view args);
    bool info_proc(std::string_view args);
    bool info_symbol(std::string_view args);
    bool info_address(std::string_view args);
    bool info_registers(std::string_view args, bool all);
    bool info_threads(std::string_view args);
    bool info_breakpoints(std::string_view args);
    bool info_watchpoints(std::string_view args);
    bool list_breakpoints(std::string_view args, bool watchpoints_only);

    // control.cpp
    struct UserBreakpoint {
        int number = 0;    ///< gdb's number, shown to the user
        int lib_id = 0;    ///< Breakpoints id
        std::string what;  ///< the expression of a watchpoint
        std::uint64_t address = 0;
        bool hardware_requested = false;
    };
    bool ensure_attached();
    bool attach_to(pid_t pid, bool show_where);
    void drop_attachment();
    bool need_attached_stopped();
    /// Resumes all threads (`signal` for the current one) and waits for the next stop, which
    /// is reported; Ctrl-C interrupts. False if the process is gone or an error occurred.
    bool resume_and_report(std::optional<int> signal);
    /// Runs until thread `tid` reaches `address` with sp above `above_sp` (finish, nexti).
    bool run_to(pid_t tid, std::uint64_t address, std::uint64_t above_sp);
    void report_stop(const xproc::StopEvent& ev);
    bool report_exit(const xproc::StopEvent& ev);
    void note_threads();
    int thread_number(pid_t tid);
    std::string target_id(pid_t tid);
    std::string thread_name(pid_t tid);
    /// "0x... in func () from /lib/..", gdb's frame description without debug info.
    std::string location(std::uint64_t pc, bool caller);
    std::string library_suffix(std::uint64_t pc);
    std::string frame_text(const xproc::Frame& f);
    bool print_backtrace(pid_t tid, long limit);
    bool add_breakpoint(std::string_view args, bool temporary, bool hardware);
    bool add_watchpoint(std::string_view args, int type);
    std::optional<std::uint64_t> breakpoint_address(std::string_view location, std::string& err);
    const UserBreakpoint* user_breakpoint_of(int lib_id) const;
    /// $NAME for a register name (is_register_name): its value as gdb types it; a name this
    /// CPU lacks (ymm0 without AVX) is a convenience variable.
    std::expected<Value, std::string> register_as_value(std::string_view name);
    /// Value number `n` of the history ($N), or `n` back from the last ($$N, `back`); 0 is the
    /// last. `text` is N as written, for the error.
    std::expected<Value, std::string> history_value(std::size_t n, bool back, const std::string& text);
    /// $NAME for a convenience variable: its value, or a void when never set.
    std::expected<Value, std::string> convenience_value(std::string_view name);

    std::unique_ptr<xproc::Attachment> m_att;
    std::optional<xproc::Unwinder> m_unwinder;
    std::vector<pid_t> m_thread_numbers;  ///< gdb's thread N is m_thread_numbers[N-1]
    pid_t m_current = 0;                  ///< the selected thread
    std::vector<UserBreakpoint> m_user_bps;
    int m_next_bp = 1;
    std::vector<Value> m_history;                             ///< print's $1, $2...
    std::map<std::string, Value, std::less<>> m_convenience;  ///< set $name = value
    bool m_was_stopped_at_attach = false;
    bool set_dollar(std::string_view args);
    /// A value as `print[/FMT]` shows it (FMT 0: its natural format); an error for a format
    /// xpeek does not support on that value.
    std::expected<std::string, std::string> format_value(const Value& v, char fmt);

    pid_t m_pid = 0;
    std::optional<xproc::RemoteMemory> m_memory;
    std::optional<xproc::SymbolTable> m_symbols;
    std::optional<std::map<std::uint64_t, std::string>>
        m_link_names;  ///< see link_map.hpp; read on first use
    MemoryWindow m_window;
    PrintSettings m_print;

    // gdb's examine state (printcmd.c: last_format, last_size, last_count, next_address).
    char m_last_format = 0;
    char m_last_size = 'w';
    long long m_last_count = 0;
    std::optional<std::uint64_t> m_next_address;

    std::string m_repeat;
    bool m_quit = false;
    bool m_from_tty = true;
};

}  // namespace xpeek
