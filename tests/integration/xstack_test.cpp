// SPDX-License-Identifier: MIT
// xstack against gdb (Debian 12: 13.1) and eu-stack (elfutils 0.188) on real processes:
// tests/targets/stack_target.c and its variants (frame pointers or not, PIE or not, .symtab or
// .dynsym only), threads parked in distinct call chains in libc system calls.
//
//  - gdb: per thread, the same pcs and the same function names, frame by frame, as far as gdb
//    goes (gdb stops after main and at the thread's outermost frame; xstack goes on like
//    eu-stack). Both tools see minimal symbols only: the target runs from a copy without debug
//    information, gdb gets no separate debug files, xstack gets --debuginfo-path "". gdb's
//    "??" is xstack's address-only line.
//  - eu-stack: the same line shapes, the same threads in the same order, frame numbering, and
//    the same pcs.
//  - every option, the JSON fields, and the errors: exact one-line messages, exit status, and
//    the target never left stopped (or left stopped when it was stopped before).

#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "child.hpp"
#include "stripped_target.hpp"

namespace {

namespace fs = std::filesystem;
using xproc::test::run;
using xproc::test::RunResult;
using xproc::test::state_of;
using xproc::test::StrippedTarget;
using xproc::test::tool_path;
using xproc::test::tracer_of;
using xproc::test::vanished_pid;
using xproc::test::wait_in_syscall;

const std::string GDB = "/usr/bin/gdb";
const std::string EU_STACK = "/usr/bin/eu-stack";

#define REQUIRE_TOOL(path)                                 \
    do {                                                   \
        if (access((path).c_str(), X_OK) != 0) {           \
            GTEST_SKIP() << (path) << " is not installed"; \
        }                                                  \
    } while (false)

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        lines.push_back(line);
    }
    return lines;
}

bool is_stopped(pid_t pid) {
    const char s = state_of(pid);
    return s == 't' || s == 'T';
}

/// /proc/PID/task, in the kernel's (readdir) order.
std::vector<pid_t> tasks_of(pid_t pid) {
    std::vector<pid_t> tids;
    for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
        tids.push_back(static_cast<pid_t>(std::stol(e.path().filename().string())));
    }
    return tids;
}

// ---------------------------------------------------------------------------------------------
// The target

const std::vector<std::string> VARIANTS = {"stack_target", "stack_target_nofp", "stack_target_fp",
                                           "stack_target_nopie", "stack_target_stripped"};

/// A running stack_target variant, from a copy without debug information (gdb would otherwise
/// name frames from DWARF and add inlined frames; xstack and eu-stack without -i do neither).
class StackTarget : public StrippedTarget {
  public:
    explicit StackTarget(const std::string& variant = "stack_target", int threads = 8)
        : StrippedTarget(variant, {"--threads", std::to_string(threads)}) {
        // The main thread prints "ready" before it reaches main_idle → pause(): wait until it
        // sleeps in pause (x86-64 system call 34), so that every tool sees the same stacks.
        if (ready()) {
            (void)wait_in_syscall(pid(), 34);
        }
    }
    std::string spid() const { return std::to_string(pid()); }
};

RunResult xstack(const std::vector<std::string>& args) {
    std::vector<std::string> argv{tool_path("xstack")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

// ---------------------------------------------------------------------------------------------
// Parsing eu-stack's format (xstack's and eu-stack's output)

struct TextFrame {
    unsigned index = 0;
    std::uint64_t pc = 0;
    std::string name;  ///< "" when the line has the address only
    std::string rest;  ///< everything after the address
};
struct TextThread {
    pid_t tid = 0;
    std::vector<TextFrame> frames;
};
struct TextProcess {
    pid_t pid = 0;
    std::vector<TextThread> threads;
};

/// Parses eu-stack's lines; every line must have one of its shapes.
std::vector<TextProcess> parse_stacks(const std::string& text) {
    static const std::regex pid_line(R"(^PID (\d+) - process$)");
    static const std::regex tid_line(R"(^TID (\d+):$)");
    static const std::regex frame_line(R"(^#(\d+) +0x([0-9a-f]{16})(.*)$)");
    std::vector<TextProcess> out;
    for (const std::string& line : lines_of(text)) {
        std::smatch m;
        if (std::regex_match(line, m, pid_line)) {
            out.push_back({static_cast<pid_t>(std::stol(m[1])), {}});
        } else if (std::regex_match(line, m, tid_line)) {
            if (out.empty()) {
                out.emplace_back();  // -1: no PID line
            }
            out.back().threads.push_back({static_cast<pid_t>(std::stol(m[1])), {}});
        } else if (std::regex_match(line, m, frame_line) && !out.empty() && !out.back().threads.empty()) {
            TextFrame f;
            f.index = static_cast<unsigned>(std::stoul(m[1]));
            // eu-stack's "#%-2u ": two columns for the number, then one space.
            EXPECT_EQ(line.find("0x"), 1 + std::max<std::size_t>(2, m[1].length()) + 1)
                << "frame number column: " << line;
            f.pc = std::strtoull(m[2].str().c_str(), nullptr, 16);
            f.rest = m[3];
            std::string r = f.rest;
            if (r.starts_with(" - 1") || r.starts_with("    ")) {
                r = r.substr(4);  // -a
            }
            if (r.starts_with(" ") && !r.starts_with(" - ")) {
                const std::size_t end = r.find(" - ", 1);
                f.name = r.substr(1, end == std::string::npos ? std::string::npos : end - 1);
            }
            out.back().threads.back().frames.push_back(std::move(f));
        } else {
            ADD_FAILURE() << "not an eu-stack line: '" << line << "'";
        }
    }
    return out;
}

const TextThread* find_thread(const TextProcess& p, pid_t tid) {
    for (const TextThread& t : p.threads) {
        if (t.tid == tid) {
            return &t;
        }
    }
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// gdb

struct GdbFrame {
    std::uint64_t pc = 0;  ///< 0 when gdb printed none (frame 0 at the start of a line)
    std::string name;      ///< "??", "<signal handler called>", or a function
};

/// `thread apply all bt` with minimal symbols only: tid -> frames.
std::map<pid_t, std::vector<GdbFrame>> gdb_backtraces(pid_t pid) {
    const RunResult r =
        run({GDB, "-nx", "-q", "-batch", "-iex", "set debug-file-directory /nonexistent", "-iex",
             "set debuginfod enabled off", "-iex", "set auto-load off", "-ex", "set pagination off", "-ex",
             "set width 0", "-p", std::to_string(pid), "-ex", "thread apply all bt"});
    static const std::regex thread_line(R"(^Thread \d+ \(.*\b(?:LWP|process) (\d+)\).*:$)");
    static const std::regex frame_line(R"(^#(\d+) +(?:0x([0-9a-f]+) in )?(\S+)(?: \(.*)?$)");
    std::map<pid_t, std::vector<GdbFrame>> out;
    std::vector<GdbFrame>* current = nullptr;
    for (const std::string& line : lines_of(r.out)) {
        std::smatch m;
        if (std::regex_match(line, m, thread_line)) {
            current = &out[static_cast<pid_t>(std::stol(m[1]))];
        } else if (current != nullptr && line.starts_with("#")) {
            GdbFrame f;
            if (line.find("<signal handler called>") != std::string::npos) {
                static const std::regex sig(R"(^#\d+ +(?:0x([0-9a-f]+) in )?<signal handler called>$)");
                std::smatch s;
                if (std::regex_match(line, s, sig) && s[1].matched) {
                    f.pc = std::strtoull(s[1].str().c_str(), nullptr, 16);
                }
                f.name = "<signal handler called>";
            } else if (std::regex_match(line, m, frame_line)) {
                f.pc = m[2].matched ? std::strtoull(m[2].str().c_str(), nullptr, 16) : 0;
                f.name = m[3];
            } else {
                ADD_FAILURE() << "unexpected gdb frame line: " << line;
                continue;
            }
            current->push_back(std::move(f));
        }
    }
    EXPECT_FALSE(out.empty()) << "gdb printed no thread:\n" << r.out << r.err;
    return out;
}

// ---------------------------------------------------------------------------------------------
// A small JSON reader for --json

struct Json {
    enum class Type { null, boolean, number, string, array, object } type = Type::null;
    bool boolean = false;
    std::string text;  ///< number as written, or the string
    std::vector<Json> array;
    std::vector<std::pair<std::string, Json>> object;

    bool has(std::string_view key) const {
        return std::any_of(object.begin(), object.end(), [&](const auto& kv) { return kv.first == key; });
    }
    const Json& operator[](std::string_view key) const {
        static const Json none;
        for (const auto& [k, v] : object) {
            if (k == key) {
                return v;
            }
        }
        return none;
    }
    std::int64_t i64() const { return std::strtoll(text.c_str(), nullptr, 10); }
};

class JsonParser {
  public:
    explicit JsonParser(std::string_view s) : m_s(s) {}
    std::optional<Json> document() {
        Json j;
        if (!value(j)) {
            return std::nullopt;
        }
        space();
        return m_i == m_s.size() ? std::optional<Json>(std::move(j)) : std::nullopt;
    }

  private:
    void space() {
        while (m_i < m_s.size() &&
               (m_s[m_i] == ' ' || m_s[m_i] == '\n' || m_s[m_i] == '\t' || m_s[m_i] == '\r')) {
            ++m_i;
        }
    }
    bool literal(std::string_view word) {
        if (m_s.substr(m_i, word.size()) != word) {
            return false;
        }
        m_i += word.size();
        return true;
    }
    bool value(Json& j) {
        space();
        if (m_i >= m_s.size()) {
            return false;
        }
        const char c = m_s[m_i];
        if (c == '{') {
            j.type = Json::Type::object;
            ++m_i;
            space();
            if (m_i < m_s.size() && m_s[m_i] == '}') {
                ++m_i;
                return true;
            }
            for (;;) {
                space();
                std::string key;
                if (m_i >= m_s.size() || m_s[m_i] != '"' || !string(key)) {
                    return false;
                }
                space();
                if (m_i >= m_s.size() || m_s[m_i++] != ':') {
                    return false;
                }
                Json v;
                if (!value(v)) {
                    return false;
                }
                j.object.emplace_back(std::move(key), std::move(v));
                space();
                if (m_i < m_s.size() && m_s[m_i] == ',') {
                    ++m_i;
                    continue;
                }
                return m_i < m_s.size() && m_s[m_i++] == '}';
            }
        }
        if (c == '[') {
            j.type = Json::Type::array;
            ++m_i;
            space();
            if (m_i < m_s.size() && m_s[m_i] == ']') {
                ++m_i;
                return true;
            }
            for (;;) {
                Json v;
                if (!value(v)) {
                    return false;
                }
                j.array.push_back(std::move(v));
                space();
                if (m_i < m_s.size() && m_s[m_i] == ',') {
                    ++m_i;
                    continue;
                }
                return m_i < m_s.size() && m_s[m_i++] == ']';
            }
        }
        if (c == '"') {
            j.type = Json::Type::string;
            return string(j.text);
        }
        if (literal("true") || literal("false")) {
            j.type = Json::Type::boolean;
            j.boolean = m_s[m_i - 1] == 'e' && m_s[m_i - 2] == 'u';
            return true;
        }
        if (literal("null")) {
            return true;
        }
        const std::size_t start = m_i;
        while (m_i < m_s.size() &&
               (std::isdigit(static_cast<unsigned char>(m_s[m_i])) || m_s[m_i] == '-' || m_s[m_i] == '.' ||
                m_s[m_i] == 'e' || m_s[m_i] == 'E' || m_s[m_i] == '+')) {
            ++m_i;
        }
        if (m_i == start) {
            return false;
        }
        j.type = Json::Type::number;
        j.text = std::string(m_s.substr(start, m_i - start));
        return true;
    }
    bool string(std::string& out) {
        ++m_i;
        while (m_i < m_s.size()) {
            const char c = m_s[m_i++];
            if (c == '"') {
                return true;
            }
            if (static_cast<unsigned char>(c) < 0x20) {
                return false;
            }
            if (c == '\\') {
                if (m_i >= m_s.size()) {
                    return false;
                }
                const char e = m_s[m_i++];
                if (e == 'u') {
                    if (m_i + 4 > m_s.size()) {
                        return false;
                    }
                    out += '?';  // the tests never need the code point
                    m_i += 4;
                } else {
                    out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
                }
                continue;
            }
            out += c;
        }
        return false;
    }

    std::string_view m_s;
    std::size_t m_i = 0;
};

// ---------------------------------------------------------------------------------------------
// The call chain each thread kind of stack_target.c sits in (innermost first).

/// The functions of stack_target's own chain expected in a thread's names, in order; empty for
/// the main thread's.
std::vector<std::string> expected_chain(const std::vector<std::string>& names) {
    static const std::vector<std::vector<std::string>> chains = {
        {"sleeper_level_b", "sleeper_level_a", "sleeper_main"},
        {"reader_level_b", "reader_level_a", "reader_main"},
        {"waiter_level_b", "waiter_level_a", "waiter_main"},
        {"poller_level_b", "poller_level_a", "poller_main"},
        {"signal_level", "signal_handler", "signal_main"},
        {"main_idle", "main"},
    };
    for (const auto& chain : chains) {
        if (std::find(names.begin(), names.end(), chain.back()) != names.end()) {
            return chain;
        }
    }
    return {};
}

/// `want` appears in `names` in this order (other frames may come between: the signal
/// trampoline and raise() sit between signal_handler and signal_main).
bool contains_in_order(const std::vector<std::string>& names, const std::vector<std::string>& want) {
    auto it = names.begin();
    for (const std::string& w : want) {
        it = std::find(it, names.end(), w);
        if (it == names.end()) {
            return false;
        }
        ++it;
    }
    return true;
}

std::vector<std::string> names_of(const TextThread& t) {
    std::vector<std::string> names;
    for (const TextFrame& f : t.frames) {
        names.push_back(f.name);
    }
    return names;
}

// ---------------------------------------------------------------------------------------------
// Against gdb and eu-stack, on every variant

class XstackVariant : public ::testing::TestWithParam<std::string> {};

TEST_P(XstackVariant, same_pcs_and_names_as_gdb_per_thread) {
    REQUIRE_TOOL(GDB);
    StackTarget t(GetParam());
    ASSERT_TRUE(t.ready());
    const RunResult x = xstack({"--debuginfo-path", "", t.spid()});
    ASSERT_EQ(x.exit_code, 0) << x.err;
    EXPECT_EQ(x.err, "");
    const auto procs = parse_stacks(x.out);
    ASSERT_EQ(procs.size(), 1u) << x.out;
    EXPECT_EQ(procs[0].pid, t.pid());
    EXPECT_EQ(procs[0].threads.size(), 9u) << x.out;

    const auto gdb = gdb_backtraces(t.pid());
    EXPECT_EQ(gdb.size(), procs[0].threads.size());
    for (const auto& [tid, gframes] : gdb) {
        SCOPED_TRACE("tid " + std::to_string(tid));
        const TextThread* xt = find_thread(procs[0], tid);
        ASSERT_NE(xt, nullptr) << "xstack does not show thread " << tid << "\n" << x.out;
        // gdb stops after main and at the outermost frame; xstack may go further, never less far.
        ASSERT_LE(gframes.size(), xt->frames.size()) << x.out;
        for (std::size_t i = 0; i < gframes.size(); ++i) {
            const GdbFrame& g = gframes[i];
            const TextFrame& f = xt->frames[i];
            if (g.pc != 0) {
                EXPECT_EQ(f.pc, g.pc) << "frame " << i;
            }
            if (g.name == "<signal handler called>") {
                continue;  // eu-stack and xstack name the trampoline (__restore_rt)
            }
            // GCC's partial-inlining clones ("f.part.0", e.g. ASan's __interceptor_read under the
            // sanitizer pass) are named by gdb after the function they came from (from DWARF).
            std::string name = f.name.empty() ? "??" : f.name;
            if (const auto part = name.find(".part.");
                part != std::string::npos && g.name == name.substr(0, part)) {
                name = g.name;
            }
            EXPECT_EQ(name, g.name) << "frame " << i << " pc " << std::hex << f.pc;
        }
        const auto chain = expected_chain(names_of(*xt));
        EXPECT_FALSE(chain.empty()) << "no stack_target call chain in thread " << tid;
        EXPECT_TRUE(contains_in_order(names_of(*xt), chain)) << x.out;
    }
    EXPECT_FALSE(is_stopped(t.pid())) << "the target was left stopped";
}

TEST_P(XstackVariant, same_structure_and_pcs_as_eu_stack) {
    REQUIRE_TOOL(EU_STACK);
    StackTarget t(GetParam());
    ASSERT_TRUE(t.ready());
    const RunResult e = run({EU_STACK, "-p", t.spid()});
    const RunResult x = xstack({t.spid()});
    ASSERT_EQ(x.exit_code, 0) << x.err;
    const auto ep = parse_stacks(e.out);
    const auto xp = parse_stacks(x.out);
    ASSERT_EQ(ep.size(), 1u) << e.out << e.err;
    ASSERT_EQ(xp.size(), 1u) << x.out;
    EXPECT_EQ(x.out.substr(0, x.out.find('\n')), e.out.substr(0, e.out.find('\n')));  // PID line
    ASSERT_EQ(xp[0].threads.size(), ep[0].threads.size());
    for (std::size_t i = 0; i < ep[0].threads.size(); ++i) {
        const TextThread& et = ep[0].threads[i];
        const TextThread& xt = xp[0].threads[i];
        EXPECT_EQ(xt.tid, et.tid) << "thread order differs at " << i;
        ASSERT_FALSE(xt.frames.empty());
        for (std::size_t k = 0; k < xt.frames.size(); ++k) {
            EXPECT_EQ(xt.frames[k].index, k);
        }
        // The same frames, as far as both go (eu-stack may stop one frame earlier or later at the
        // outermost frame, where unwind information ends).
        const std::size_t n = std::min(et.frames.size(), xt.frames.size());
        EXPECT_GE(n + 1, std::max(et.frames.size(), xt.frames.size())) << "tid " << xt.tid << "\neu-stack:\n"
                                                                       << e.out << "\nxstack:\n"
                                                                       << x.out;
        for (std::size_t k = 0; k < n; ++k) {
            EXPECT_EQ(xt.frames[k].pc, et.frames[k].pc) << "tid " << xt.tid << " frame " << k;
            // eu-stack prints an address alone exactly where it has no name; xstack may name a
            // frame eu-stack cannot only when both have a name.
            if (!et.frames[k].name.empty()) {
                EXPECT_FALSE(xt.frames[k].name.empty())
                    << "tid " << xt.tid << " frame " << k << ": eu-stack names it " << et.frames[k].name;
            }
        }
    }
    EXPECT_FALSE(is_stopped(t.pid()));
}

INSTANTIATE_TEST_SUITE_P(Variants, XstackVariant, ::testing::ValuesIn(VARIANTS),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------------------------------------
// Options

TEST(XstackOptions, max_frames_cuts_each_thread_and_says_so) {
    StackTarget t;
    ASSERT_TRUE(t.ready());
    const RunResult x = xstack({"-n", "2", t.spid()});
    EXPECT_EQ(x.exit_code, 0) << x.err;
    const auto p = parse_stacks(x.out);
    ASSERT_EQ(p.size(), 1u);
    ASSERT_EQ(p[0].threads.size(), 9u);
    for (const TextThread& th : p[0].threads) {
        EXPECT_EQ(th.frames.size(), 2u) << th.tid;
        EXPECT_NE(x.err.find("xstack: tid " + std::to_string(th.tid) +
                             ": shown max number of frames (2, use -n 0 for unlimited)\n"),
                  std::string::npos)
            << x.err;
    }
    const RunResult all = xstack({"-n", "0", t.spid()});
    EXPECT_EQ(all.exit_code, 0);
    EXPECT_EQ(all.err, "");
    const auto pa = parse_stacks(all.out);
    ASSERT_EQ(pa.size(), 1u);
    for (const TextThread& th : pa[0].threads) {
        EXPECT_GT(th.frames.size(), 3u) << th.tid;
    }
    const RunResult bad = xstack({"-n", "-3", t.spid()});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_TRUE(bad.err.starts_with("xstack: ")) << bad.err;
    EXPECT_EQ(lines_of(bad.err).size(), 1u) << bad.err;
}

TEST(XstackOptions, module_option_appends_the_module_path) {
    StackTarget t;
    ASSERT_TRUE(t.ready());
    const RunResult x = xstack({"-m", t.spid()});
    ASSERT_EQ(x.exit_code, 0) << x.err;
    const std::string exe = fs::canonical(t.exe()).string();
    bool saw_exe = false;
    bool saw_libc = false;
    for (const std::string& line : lines_of(x.out)) {
        if (!line.starts_with("#")) {
            continue;
        }
        const std::size_t dash = line.rfind(" - /");
        ASSERT_NE(dash, std::string::npos) << line;
        const std::string module = line.substr(dash + 3);
        saw_exe = saw_exe || module == exe;
        saw_libc = saw_libc || module.find("libc.so") != std::string::npos;
        if (line.find(" main_idle - ") != std::string::npos) {
            EXPECT_EQ(module, exe) << line;
        }
    }
    EXPECT_TRUE(saw_exe) << x.out;
    EXPECT_TRUE(saw_libc) << x.out;
}

TEST(XstackOptions, activation_option_marks_callers_as_eu_stack_does) {
    StackTarget t;
    ASSERT_TRUE(t.ready());
    const RunResult x = xstack({"-a", t.spid()});
    ASSERT_EQ(x.exit_code, 0) << x.err;
    const auto p = parse_stacks(x.out);
    ASSERT_EQ(p.size(), 1u);
    for (const TextThread& th : p[0].threads) {
        ASSERT_GE(th.frames.size(), 2u);
        EXPECT_TRUE(th.frames[0].rest.starts_with("     ")) << "frame 0: '" << th.frames[0].rest << "'";
        EXPECT_TRUE(th.frames[1].rest.starts_with(" - 1 ")) << "frame 1: '" << th.frames[1].rest << "'";
    }
    if (access(EU_STACK.c_str(), X_OK) == 0) {
        // The same column as eu-stack -a, frame by frame (names aside).
        const auto e = parse_stacks(run({EU_STACK, "-a", "-p", t.spid()}).out);
        ASSERT_EQ(e.size(), 1u);
        for (const TextThread& et : e[0].threads) {
            const TextThread* xt = find_thread(p[0], et.tid);
            ASSERT_NE(xt, nullptr);
            for (std::size_t k = 0; k < std::min(et.frames.size(), xt->frames.size()); ++k) {
                EXPECT_EQ(xt->frames[k].rest.substr(0, 4), et.frames[k].rest.substr(0, 4))
                    << "tid " << et.tid << " frame " << k;
            }
        }
    }
}

TEST(XstackOptions, offsets_quiet_and_one_thread) {
    StackTarget t;
    ASSERT_TRUE(t.ready());
    const RunResult o = xstack({"-o", t.spid()});
    ASSERT_EQ(o.exit_code, 0) << o.err;
    static const std::regex with_offset(R"(^#\d+ +0x[0-9a-f]{16}( \S+\+0x[0-9a-f]+)?$)");
    for (const std::string& line : lines_of(o.out)) {
        if (line.starts_with("#")) {
            EXPECT_TRUE(std::regex_match(line, with_offset)) << line;
        }
    }
    EXPECT_NE(o.out.find(" main_idle+0x"), std::string::npos) << o.out;

    const RunResult q = xstack({"-q", t.spid()});
    ASSERT_EQ(q.exit_code, 0) << q.err;
    static const std::regex bare(R"(^#\d+ +0x[0-9a-f]{16}$)");
    for (const std::string& line : lines_of(q.out)) {
        if (line.starts_with("#")) {
            EXPECT_TRUE(std::regex_match(line, bare)) << line;
        }
    }

    const RunResult one = xstack({"-1", t.spid()});
    ASSERT_EQ(one.exit_code, 0) << one.err;
    const auto lines = lines_of(one.out);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines[0], "TID " + t.spid() + ":");  // eu-stack -1: no PID line
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(), [](const auto& l) { return l.starts_with("TID "); }),
              1);
    EXPECT_NE(one.out.find(" main_idle\n"), std::string::npos) << one.out;
}

TEST(XstackOptions, json_has_every_field_and_matches_the_text) {
    StackTarget t;
    ASSERT_TRUE(t.ready());
    const RunResult j = xstack({"--json", t.spid()});
    ASSERT_EQ(j.exit_code, 0) << j.err;
    const auto doc = JsonParser(j.out).document();
    ASSERT_TRUE(doc.has_value()) << "invalid JSON:\n" << j.out;
    ASSERT_EQ(doc->type, Json::Type::array);
    ASSERT_EQ(doc->array.size(), 1u);
    const Json& p = doc->array[0];
    EXPECT_EQ(p["pid"].i64(), t.pid());
    EXPECT_EQ(p["stopped_ns"].type, Json::Type::number);
    EXPECT_GT(p["stopped_ns"].i64(), 0);
    EXPECT_LT(p["stopped_ns"].i64(), 5'000'000'000);
    EXPECT_EQ(p["was_stopped"].type, Json::Type::boolean);
    EXPECT_FALSE(p["was_stopped"].boolean);
    const auto tasks = tasks_of(t.pid());
    ASSERT_EQ(p["threads"].array.size(), tasks.size());

    const auto text = parse_stacks(xstack({t.spid()}).out);  // the stacks do not move
    ASSERT_EQ(text.size(), 1u);
    bool saw_signal_frame = false;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        const Json& th = p["threads"].array[i];
        EXPECT_EQ(th["tid"].i64(), tasks[i]);
        EXPECT_EQ(th["name"].type, Json::Type::string);
        EXPECT_FALSE(th["name"].text.empty());
        EXPECT_FALSE(th["truncated"].boolean);
        EXPECT_EQ(th["error"].type, Json::Type::null);
        const TextThread* tt = find_thread(text[0], tasks[i]);
        ASSERT_NE(tt, nullptr);
        const auto& frames = th["frames"].array;
        ASSERT_EQ(frames.size(), tt->frames.size());
        for (std::size_t k = 0; k < frames.size(); ++k) {
            const Json& f = frames[k];
            for (const char* key :
                 {"index", "pc", "sp", "module", "symbol", "offset", "guessed", "signal_frame"}) {
                EXPECT_TRUE(f.has(key)) << key;
            }
            EXPECT_EQ(f["index"].i64(), static_cast<std::int64_t>(k));
            ASSERT_TRUE(f["pc"].text.starts_with("0x")) << f["pc"].text;
            ASSERT_TRUE(f["sp"].text.starts_with("0x")) << f["sp"].text;
            EXPECT_EQ(std::strtoull(f["pc"].text.c_str(), nullptr, 16), tt->frames[k].pc);
            EXPECT_NE(std::strtoull(f["sp"].text.c_str(), nullptr, 16), 0u);
            EXPECT_EQ(f["guessed"].type, Json::Type::boolean);
            EXPECT_EQ(f["offset"].type, Json::Type::number);
            // The text names exactly the frames whose symbol is certain (or a label).
            if (!f["guessed"].boolean && !f["symbol"].text.empty()) {
                EXPECT_EQ(tt->frames[k].name, f["symbol"].text);
            }
            if (tt->frames[k].name.empty()) {
                EXPECT_TRUE(f["guessed"].boolean || f["symbol"].text.empty());
            }
            saw_signal_frame = saw_signal_frame || f["signal_frame"].boolean;
        }
    }
    EXPECT_TRUE(saw_signal_frame) << "the signal_main thread sits in a signal handler";
}

TEST(XstackOptions, threads_option_shows_only_those) {
    StackTarget t;
    ASSERT_TRUE(t.ready());
    const auto tasks = tasks_of(t.pid());
    ASSERT_GE(tasks.size(), 3u);
    const RunResult x =
        xstack({"--threads", std::to_string(tasks[2]) + "," + std::to_string(tasks[1]), t.spid()});
    ASSERT_EQ(x.exit_code, 0) << x.err;
    const auto p = parse_stacks(x.out);
    ASSERT_EQ(p.size(), 1u);
    ASSERT_EQ(p[0].threads.size(), 2u) << x.out;
    EXPECT_NE(find_thread(p[0], tasks[1]), nullptr);
    EXPECT_NE(find_thread(p[0], tasks[2]), nullptr);

    const pid_t gone = vanished_pid();
    const RunResult bad = xstack({"--threads", std::to_string(gone), t.spid()});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_EQ(bad.err,
              "xstack: --threads: " + std::to_string(gone) +
                  " is not a thread of the processes given (their threads are listed in /proc/PID/task)\n");
    const RunResult junk = xstack({"--threads", "12,x", t.spid()});
    EXPECT_EQ(junk.exit_code, 1);
    EXPECT_EQ(
        junk.err,
        "xstack: --threads: 'x' is not a thread id (expected TID[,TID...], numbers from 1 to 2147483647)\n");
    EXPECT_FALSE(is_stopped(t.pid()));
}

TEST(XstackOptions, verbose_prints_how_long_the_target_was_stopped) {
    StackTarget t;
    ASSERT_TRUE(t.ready());
    const RunResult x = xstack({"-v", t.spid()});
    ASSERT_EQ(x.exit_code, 0) << x.err;
    static const std::regex stopped(R"(^xstack: PID (\d+) stopped for (\d+\.\d\d) ms \(9 threads\)$)");
    const auto err = lines_of(x.err);
    ASSERT_EQ(err.size(), 1u) << x.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(err[0], m, stopped)) << err[0];
    EXPECT_EQ(std::stol(m[1]), t.pid());
    EXPECT_GT(std::stod(m[2]), 0.0);
    EXPECT_EQ(parse_stacks(x.out).size(), 1u);
}

TEST(XstackOptions, several_processes_in_order) {
    StackTarget a;
    StackTarget b("stack_target_fp", 2);
    ASSERT_TRUE(a.ready() && b.ready());
    const RunResult x = xstack({a.spid(), "-p", b.spid()});
    ASSERT_EQ(x.exit_code, 0) << x.err;
    const auto p = parse_stacks(x.out);
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[0].pid, a.pid());
    EXPECT_EQ(p[1].pid, b.pid());
    EXPECT_EQ(p[1].threads.size(), 3u);
}

TEST(XstackOptions, help_and_version) {
    const RunResult h = xstack({"--help"});
    EXPECT_EQ(h.exit_code, 0);
    for (const char* opt : {"-n", "--module", "--activation", "--json", "--threads", "--verbose"}) {
        EXPECT_NE(h.out.find(opt), std::string::npos) << opt << "\n" << h.out;
    }
    const RunResult v = xstack({"--version"});
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_TRUE(v.out.starts_with("xstack from xproc ")) << v.out;
}

// ---------------------------------------------------------------------------------------------
// Errors: one line each, exit status 1, and the target left as it was

TEST(XstackErrors, non_numeric_pid) {
    const RunResult x = xstack({"12ab"});
    EXPECT_EQ(x.exit_code, 1);
    EXPECT_EQ(x.out, "");
    EXPECT_EQ(x.err, "xstack: '12ab' is not a process id (expected a number from 1 to 2147483647)\n");
    const RunResult none = xstack({});
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_EQ(none.err, "xstack: no process id given (usage: xstack [options] PID...; see xstack --help)\n");
}

TEST(XstackErrors, no_such_process) {
    const pid_t gone = vanished_pid();
    const RunResult x = xstack({std::to_string(gone)});
    EXPECT_EQ(x.exit_code, 1);
    EXPECT_EQ(x.out, "");
    EXPECT_EQ(x.err, "xstack: PID " + std::to_string(gone) +
                         ": no such process (it has exited, or the number is wrong: see ps -e)\n");
}

TEST(XstackErrors, zombie) {
    const pid_t z = fork();
    ASSERT_GE(z, 0);
    if (z == 0) {
        _exit(0);
    }
    while (state_of(z) != 'Z') {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const RunResult x = xstack({std::to_string(z)});
    EXPECT_EQ(x.exit_code, 1);
    EXPECT_EQ(x.out, "");
    EXPECT_EQ(x.err, "xstack: PID " + std::to_string(z) +
                         " is a zombie: it has exited and has no threads left to show (its parent, PID " +
                         std::to_string(getpid()) + ", has not reaped it yet)\n");
    int status = 0;
    EXPECT_EQ(waitpid(z, &status, 0), z);
}

TEST(XstackErrors, own_pid) {
    // The shell execs xstack with its own pid: xstack is asked to trace itself.
    const RunResult x = run({"/bin/sh", "-c", "exec \"$0\" $$", tool_path("xstack")});
    EXPECT_EQ(x.exit_code, 1);
    EXPECT_EQ(x.out, "");
    static const std::regex self(
        R"(^xstack: PID \d+ is xstack itself: a process cannot stop and trace itself \(run xstack from another process\)\n$)");
    EXPECT_TRUE(std::regex_match(x.err, self)) << x.err;
}

TEST(XstackErrors, good_processes_are_printed_and_the_status_is_1) {
    StackTarget t;
    ASSERT_TRUE(t.ready());
    const pid_t gone = vanished_pid();
    const RunResult x = xstack({std::to_string(gone), t.spid()});
    EXPECT_EQ(x.exit_code, 1);
    const auto p = parse_stacks(x.out);
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].pid, t.pid());
    EXPECT_EQ(lines_of(x.err).size(), 1u) << x.err;
    EXPECT_NE(x.err.find("no such process"), std::string::npos);
    EXPECT_FALSE(is_stopped(t.pid()));
}

/// Runs xstack as uid/gid 65534 (setresgid/setresuid in a forked child, then exec).
RunResult xstack_as_nobody(const std::vector<std::string>& args) {
    RunResult r;
    int err[2];
    int out[2];
    if (pipe2(err, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe2";
        return r;
    }
    const std::string exe = tool_path("xstack");
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0) {
            _exit(3);
        }
        std::vector<char*> argv{const_cast<char*>(exe.c_str())};
        for (const std::string& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        execv(exe.c_str(), argv.data());
        _exit(127);
    }
    close(err[1]);
    close(out[1]);
    char buf[4096];
    for (int fd : {out[0], err[0]}) {
        for (;;) {
            const ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }
            (fd == out[0] ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
        }
        close(fd);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

TEST(XstackErrors, permission_refusal_names_the_rule_and_the_fix) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root to drop privileges to uid 65534";
    }
    StackTarget t;  // root-owned
    ASSERT_TRUE(t.ready());
    const RunResult x = xstack_as_nobody({t.spid()});
    ASSERT_NE(x.exit_code, 3) << "could not drop privileges";
    ASSERT_NE(x.exit_code, 127) << "could not exec xstack as uid 65534";
    EXPECT_EQ(x.exit_code, 1);
    EXPECT_EQ(x.out, "");
    ASSERT_EQ(lines_of(x.err).size(), 1u) << x.err;
    EXPECT_TRUE(x.err.starts_with("xstack: ")) << x.err;
    EXPECT_NE(x.err.find("runs as uid 0"), std::string::npos) << x.err;  // the rule
    EXPECT_NE(x.err.find("you are uid 65534"), std::string::npos) << x.err;
    EXPECT_NE(x.err.find("CAP_SYS_PTRACE"), std::string::npos) << x.err;
    EXPECT_NE(x.err.find("setcap"), std::string::npos) << x.err;  // and the fix
    EXPECT_FALSE(is_stopped(t.pid()));
    EXPECT_EQ(tracer_of(t.pid()), 0);
}

TEST(XstackErrors, already_traced_by_gdb) {
    REQUIRE_TOOL(GDB);
    StackTarget t;
    ASSERT_TRUE(t.ready());
    // gdb attaches, then sleeps in a shell command while holding the attachment.
    std::atomic<pid_t> gdb_pid{0};
    RunResult g;
    std::thread gdb_thread([&] {
        // run() forks; its child is gdb. Find it as the target's tracer below.
        g = run({GDB, "-nx", "-q", "-batch", "-iex", "set debug-file-directory /nonexistent", "-iex",
                 "set debuginfod enabled off", "-p", t.spid(), "-ex", "shell sleep 3"});
        gdb_pid = -1;
    });
    pid_t tracer = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while ((tracer = tracer_of(t.pid())) == 0 && std::chrono::steady_clock::now() < deadline &&
           gdb_pid.load() == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_GT(tracer, 0) << "gdb did not attach";
    {
        std::ifstream comm("/proc/" + std::to_string(tracer) + "/comm");
        std::string name;
        std::getline(comm, name);
        EXPECT_EQ(name, "gdb");
    }
    const RunResult x = xstack({t.spid()});
    EXPECT_EQ(x.exit_code, 1);
    EXPECT_EQ(x.out, "");
    EXPECT_EQ(lines_of(x.err).size(), 1u) << x.err;
    EXPECT_TRUE(x.err.starts_with("xstack: ")) << x.err;
    EXPECT_NE(x.err.find("already traced by PID " + std::to_string(tracer) + " (gdb)"), std::string::npos)
        << x.err;
    gdb_thread.join();
    EXPECT_EQ(tracer_of(t.pid()), 0);
    // gdb detached: the target runs again.
    for (int i = 0; i < 200 && is_stopped(t.pid()); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_FALSE(is_stopped(t.pid())) << "state " << state_of(t.pid());
}

// ---------------------------------------------------------------------------------------------
// The target's run state is kept

TEST(XstackState, a_stopped_target_stays_stopped) {
    StackTarget t;
    ASSERT_TRUE(t.ready());
    ASSERT_TRUE(t.child().freeze());
    ASSERT_EQ(state_of(t.pid()), 'T');
    const RunResult x = xstack({"-v", t.spid()});
    EXPECT_EQ(x.exit_code, 0) << x.err;
    EXPECT_EQ(parse_stacks(x.out).size(), 1u);
    EXPECT_NE(x.err.find("already stopped before xstack: left stopped"), std::string::npos) << x.err;
    EXPECT_EQ(state_of(t.pid()), 'T') << "the stopped target was resumed";
    const RunResult j = xstack({"--json", t.spid()});
    const auto doc = JsonParser(j.out).document();
    ASSERT_TRUE(doc.has_value()) << j.out;
    ASSERT_EQ(doc->array.size(), 1u);
    EXPECT_TRUE(doc->array[0]["was_stopped"].boolean);
    EXPECT_EQ(state_of(t.pid()), 'T');
    ASSERT_TRUE(t.child().thaw());
    for (int i = 0; i < 200 && is_stopped(t.pid()); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_FALSE(is_stopped(t.pid()));
}

TEST(XstackState, a_running_target_keeps_running) {
    StackTarget t;
    ASSERT_TRUE(t.ready());
    for (int i = 0; i < 5; ++i) {
        const RunResult x = xstack({t.spid()});
        EXPECT_EQ(x.exit_code, 0) << x.err;
        EXPECT_FALSE(is_stopped(t.pid())) << "state " << state_of(t.pid());
        EXPECT_EQ(tracer_of(t.pid()), 0);
    }
}

}  // namespace
