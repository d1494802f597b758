// SPDX-License-Identifier: MIT
// xpeek against gdb (/usr/bin/gdb, Debian 12: 13.1) on a real process
// (tests/targets/peek_globals.c, run from a copy stripped of debug information so
// that gdb, like xpeek, sees minimal symbols only). Every x/FMT combination,
// strings, floats, find, set, info and the error cases are run through both tools
// and their stdout compared line by line; then xpeek's own behaviour: exit status
// in --batch, the reason after "Cannot access memory", bounded memory on huge
// counts, a target that exits during a read, and that the target is never left
// stopped.
//
// gdb's output of a command is taken between two `echo` markers, which drops its
// attach chatter ("[Thread debugging using libthread_db enabled]", the frame line)
// and its detach line.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"
#include "stripped_target.hpp"

namespace {

namespace fs = std::filesystem;
using xproc::test::run;
using xproc::test::RunResult;
using xproc::test::StrippedTarget;
using xproc::test::tool_path;
using xproc::test::vanished_pid;

const std::string GDB = "/usr/bin/gdb";
const std::string BEGIN = "@@xpeek-test-begin@@";
const std::string END = "@@xpeek-test-end@@";

#define REQUIRE_GDB()                                   \
    do {                                                \
        if (access(GDB.c_str(), X_OK) != 0) {           \
            GTEST_SKIP() << GDB << " is not installed"; \
        }                                               \
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

std::string hex(std::uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

/// A running peek_globals, from a copy without debug information.
class Target : public StrippedTarget {
  public:
    explicit Target(long big_mib = 1) : StrippedTarget("peek_globals") {
        const std::string info = (dir() / "info").string();
        start({std::to_string(big_mib), info});
        std::ifstream in(info);
        std::string key;
        while (in >> key) {
            std::string value;
            in >> value;
            m_info[key] = std::strtoull(value.c_str(), nullptr, 0);
            if (key == "big") {
                in >> m_big_size;
            }
        }
    }

    std::uint64_t at(const std::string& key) const { return m_info.at(key); }
    std::uint64_t big_size() const { return m_big_size; }

    /// The process state letter from /proc/PID/stat (R, S, T, t, Z...).
    char state() const {
        std::ifstream in("/proc/" + std::to_string(pid()) + "/stat");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::size_t close = text.rfind(')');
        return close == std::string::npos || close + 2 >= text.size() ? '?' : text[close + 2];
    }

  private:
    std::map<std::string, std::uint64_t> m_info;
    std::uint64_t m_big_size = 0;
};

RunResult xpeek(pid_t pid, const std::vector<std::string>& commands, const std::string& locale = "C.UTF-8") {
    std::vector<std::string> argv{"/usr/bin/env", "LC_ALL=" + locale, tool_path("xpeek"), "--batch"};
    for (const auto& c : commands) {
        argv.push_back("-ex");
        argv.push_back(c);
    }
    argv.push_back(std::to_string(pid));
    return run(argv);
}

/// gdb's stdout for `commands` (between the markers) and its exit status.
RunResult gdb(pid_t pid, const std::vector<std::string>& commands, const std::string& locale = "C.UTF-8") {
    std::vector<std::string> argv{"/usr/bin/env",
                                  "LC_ALL=" + locale,
                                  GDB,
                                  "-nx",
                                  "-q",
                                  "-batch",
                                  "-p",
                                  std::to_string(pid),
                                  "-ex",
                                  "set pagination off",
                                  "-ex",
                                  "set confirm off",
                                  "-ex",
                                  "echo " + BEGIN + "\\n"};
    for (const auto& c : commands) {
        argv.push_back("-ex");
        argv.push_back(c);
    }
    argv.push_back("-ex");
    argv.push_back("echo " + END + "\\n");
    RunResult r = run(argv);
    const std::size_t b = r.out.find(BEGIN + "\n");
    const std::size_t e = r.out.rfind(END);
    if (b != std::string::npos && e != std::string::npos && e >= b) {
        r.out = r.out.substr(b + BEGIN.size() + 1, e - b - BEGIN.size() - 1);
    } else {
        ADD_FAILURE() << "gdb output without markers:\n" << r.out << r.err;
    }
    return r;
}

/// gdb's exit status for commands (without the closing echo, which would always succeed).
int gdb_status(pid_t pid, const std::vector<std::string>& commands) {
    std::vector<std::string> argv{
        GDB, "-nx", "-q", "-batch", "-p", std::to_string(pid), "-ex", "set pagination off"};
    for (const auto& c : commands) {
        argv.push_back("-ex");
        argv.push_back(c);
    }
    return run(argv).exit_code;
}

/// Runs `commands` through both and expects the same stdout, line by line.
void expect_same_as_gdb(Target& t, const std::vector<std::string>& commands,
                        const std::string& locale = "C.UTF-8") {
    const RunResult g = gdb(t.pid(), commands, locale);
    const RunResult x = xpeek(t.pid(), commands, locale);
    const auto gl = lines_of(g.out);
    const auto xl = lines_of(x.out);
    for (std::size_t i = 0; i < std::max(gl.size(), xl.size()); ++i) {
        const std::string gline = i < gl.size() ? gl[i] : "<none>";
        const std::string xline = i < xl.size() ? xl[i] : "<none>";
        if (gline != xline) {
            ADD_FAILURE() << "line " << i + 1 << " differs (locale " << locale << ")\n  gdb:   " << gline
                          << "\n  xpeek: " << xline << "\nxpeek stderr: " << x.err;
            return;
        }
    }
    EXPECT_EQ(t.state(), 'S') << "the target was left stopped";
}

// ---------------------------------------------------------------------------
// x/FMT against gdb

TEST(XpeekVsGdb, every_format_size_and_count) {
    REQUIRE_GDB();
    Target t;
    std::vector<std::string> cmds;
    for (const char* var : {"xp_i8", "xp_u8", "xp_i16s", "xp_u32", "xp_i64s", "xp_bytes", "xp_small"}) {
        for (const char f : std::string("xzduotcaf")) {
            for (const char s : std::string("bhwg")) {
                for (const int n : {1, 3, 9, 17}) {
                    cmds.push_back("x/" + std::to_string(n) + f + s + " &" + var);
                }
            }
        }
    }
    expect_same_as_gdb(t, cmds);
}

TEST(XpeekVsGdb, default_sizes_and_remembered_format) {
    REQUIRE_GDB();
    Target t;
    expect_same_as_gdb(t, {"x &xp_small",
                           "x/4 &xp_small",
                           "x",
                           "x/d &xp_small",
                           "x",
                           "x/c &xp_str",
                           "x/3",
                           "x/a &xp_small",
                           "x/f &xp_doubles",
                           "x/2xw &xp_floats",
                           "x/3f &xp_floats",
                           "x/s &xp_str",
                           "x/x &xp_small",
                           "x/2 &xp_small",
                           "x/-3xw &xp_needles",
                           "x",
                           "x/0xw &xp_small",
                           "x/3dh &xp_i16s",
                           "x/2xg main",
                           "x/4xb main+3",
                           "x/2a &xp_bytes"});
}

TEST(XpeekVsGdb, floats_and_special_values) {
    REQUIRE_GDB();
    Target t;
    expect_same_as_gdb(t, {"x/10fw &xp_floats", "x/10fg &xp_doubles", "x/3fb &xp_floats", "x/3fh &xp_floats",
                           "x/4xw &xp_floats", "x/f &xp_floats", "x/10ag &xp_doubles"});
}

TEST(XpeekVsGdb, strings_utf8_locale) {
    REQUIRE_GDB();
    Target t;
    const std::vector<std::string> cmds{"x/s &xp_str",
                                        "x/s &xp_escapes",
                                        "x/s &xp_utf8",
                                        "x/s &xp_repeats",
                                        "x/3s &xp_haystack",
                                        "x/s &xp_long",
                                        "x/s",
                                        "x/2s &xp_bytes",
                                        "x/s",
                                        "x/2s &xp_empty",
                                        "x/sh &xp_str",
                                        "x/sw &xp_str",
                                        "x/sh &xp_utf8",
                                        "x/sw &xp_bytes",
                                        "x/20cb &xp_escapes",
                                        "set print elements 20",
                                        "x/s &xp_long",
                                        "set print repeats 3",
                                        "x/s &xp_repeats",
                                        "x/s &xp_bytes",
                                        "set print elements unlimited",
                                        "x/s &xp_long",
                                        "x/s &xp_bytes"};
    expect_same_as_gdb(t, cmds);
}

TEST(XpeekVsGdb, strings_c_locale) {
    REQUIRE_GDB();
    Target t;
    expect_same_as_gdb(
        t, {"x/s &xp_escapes", "x/s &xp_utf8", "x/2s &xp_bytes", "x/12cb &xp_utf8", "x/sh &xp_utf8"}, "C");
}

TEST(XpeekVsGdb, labels_inside_and_past_symbols) {
    REQUIRE_GDB();
    Target t;
    // xp_i8s is 12 bytes: gdb labels xp_i8s+8 but nothing at xp_i8s+12 (past its size).
    expect_same_as_gdb(
        t, {"x/24xb &xp_i8s", "x/3xg &xp_i16s", "x/2xw " + hex(t.at("hole_edge")), "x/3ag &xp_i64s"});
}

// Known difference, kept visible: the executable's copy of a library variable is called
// "stdout@GLIBC_2.2.5" in its .symtab; gdb keeps that name (label and lookup of "stdout"),
// SymbolTable drops the version. Enable when symbols.cpp keeps single-'@' versions.
TEST(XpeekVsGdb, DISABLED_versioned_copy_relocation_label) {
    REQUIRE_GDB();
    Target t;
    const RunResult g = gdb(t.pid(), {"info address stdout"});
    const std::size_t at = g.out.find(" is at ");
    ASSERT_NE(at, std::string::npos) << g.out;
    const std::string addr = g.out.substr(at + 7, g.out.find(' ', at + 7) - at - 7);
    expect_same_as_gdb(t, {"info address stdout", "x/2ag " + addr, "info symbol " + addr});
}

TEST(XpeekVsGdb, info_symbol_address_and_mappings) {
    REQUIRE_GDB();
    Target t;
    expect_same_as_gdb(t,
                       {"info symbol &xp_small", "info symbol (long)&xp_small + 4", "info symbol main",
                        "info symbol 0x10", "info symbol " + hex(t.at("hole_edge")), "info address xp_small",
                        "info address main", "info address xp_bytes", "info proc mappings",
                        // libraries go by the dynamic linker's name (/lib/...), as in gdb
                        "info symbol pause", "info symbol (long)pause + 2", "info symbol &_r_debug"});
    // The vdso: gdb names it "system-supplied DSO at 0x...".
    const RunResult v = xpeek(t.pid(), {"info address __vdso_clock_gettime"});
    ASSERT_EQ(v.exit_code, 0) << v.err;
    const std::string vdso_fn =
        v.out.substr(v.out.find(" is at ") + 7, v.out.find(" in a file") - v.out.find(" is at ") - 7);
    expect_same_as_gdb(t, {"info symbol " + vdso_fn, "info symbol " + vdso_fn + "+3", "x/2xw " + vdso_fn});
}

TEST(XpeekVsGdb, find) {
    REQUIRE_GDB();
    Target t;
    // gdb cannot do arithmetic on symbols without debug info: give it plain numbers.
    const RunResult a =
        xpeek(t.pid(), {"info address xp_haystack", "info address xp_i16s", "info address xp_needle",
                        "info address xp_small", "info address xp_i64s"});
    ASSERT_EQ(a.exit_code, 0) << a.err;
    std::map<std::string, std::string> addr;
    for (const std::string& line : lines_of(a.out)) {
        const std::size_t q = line.find('"', 8);
        const std::size_t at = line.find(" is at ");
        ASSERT_NE(at, std::string::npos) << line;
        addr[line.substr(8, q - 8)] = line.substr(at + 7, line.find(' ', at + 7) - at - 7);
    }
    const std::string hay = addr["xp_haystack"];
    expect_same_as_gdb(t, {
                              "find /b " + hay + ", +18, 'n', 'e', 'e'",
                              "find " + hay + ", +18, 'n'",
                              "find /b1 " + hay + ", +18, 'n'",
                              "find /h " + addr["xp_i16s"] + ", +20, -1",
                              "find /h " + addr["xp_i16s"] + ", " + addr["xp_i16s"] + "+3, -1",
                              "find /w " + addr["xp_needle"] + ", +4, 0xdeadbeef",
                              "find " + addr["xp_needle"] + "-16, +32, 0xdeadbeef",
                              "find /2w " + addr["xp_needle"] + "-16, +32, 0xdeadbeef",
                              "find /g " + addr["xp_i64s"] + ", +40, -1",
                              "find " + addr["xp_i64s"] + ", +40, 0x7fffffffffffffff",
                              "find " + addr["xp_small"] + ", +16, 17, 65536",
                              "find " + addr["xp_small"] + ", +0, 1",
                              "find /b " + hay + ", +18, 'x'",
                          });
    // Strings: xpeek searches without the NUL; gdb with {char[N]} does the same.
    const RunResult x = xpeek(t.pid(), {"find &xp_haystack, +18, \"needle\""});
    const RunResult g = gdb(t.pid(), {"find /b " + hay + ", +18, 'n','e','e','d','l','e'"});
    EXPECT_EQ(x.out, g.out);
    EXPECT_NE(x.out.find("2 patterns found."), std::string::npos) << x.out;
    // find -all: every readable mapping; xp_needle and xp_needles[0], [2] hold 0xdeadbeef.
    const RunResult all = xpeek(t.pid(), {"find /w -all 0xdeadbeef"});
    EXPECT_EQ(all.exit_code, 0) << all.err;
    EXPECT_NE(all.out.find(" <xp_needle>\n"), std::string::npos) << all.out;
    EXPECT_NE(all.out.find(" <xp_needles>\n"), std::string::npos) << all.out;
    EXPECT_NE(all.out.find(" <xp_needles+8>\n"), std::string::npos) << all.out;
    EXPECT_EQ(t.state(), 'S');
}

TEST(XpeekVsGdb, set_then_read_back_with_gdb) {
    REQUIRE_GDB();
    Target t;
    const RunResult w = xpeek(
        t.pid(), {"set {int}&xp_small = -7", "set {char}&xp_str = 'T'", "set {char}(&xp_str + 1) = '\\n'",
                  "set {short}&xp_i16s = 0x1234", "set {long long}&xp_i64 = -9876543210",
                  "set {unsigned char}&xp_u8 = 300", "set {float}&xp_floats = -2.5",
                  "set {double}&xp_doubles = 1e-300", "set {int8_t}&xp_i8 = -100",
                  "set {uint64_t}&xp_u64 = 0x1122334455667788", "set {unsigned int}&xp_u32 = 1.9"});
    ASSERT_EQ(w.exit_code, 0) << w.err;
    const RunResult g =
        gdb(t.pid(), {"x/dw &xp_small", "x/s &xp_str", "x/xh &xp_i16s", "x/dg &xp_i64", "x/ub &xp_u8",
                      "x/fw &xp_floats", "x/fg &xp_doubles", "x/db &xp_i8", "x/xg &xp_u64", "x/uw &xp_u32"});
    const auto l = lines_of(g.out);
    ASSERT_EQ(l.size(), 10u) << g.out;
    EXPECT_NE(l[0].find(":\t-7"), std::string::npos) << l[0];
    EXPECT_NE(l[1].find(":\t\"T\\nllo, world\""), std::string::npos) << l[1];
    EXPECT_NE(l[2].find(":\t0x1234"), std::string::npos) << l[2];
    EXPECT_NE(l[3].find(":\t-9876543210"), std::string::npos) << l[3];
    EXPECT_NE(l[4].find(":\t44"), std::string::npos) << l[4];
    EXPECT_NE(l[5].find(":\t-2.5"), std::string::npos) << l[5];
    EXPECT_NE(l[6].find(":\t1e-300"), std::string::npos) << l[6];
    EXPECT_NE(l[7].find(":\t-100"), std::string::npos) << l[7];
    EXPECT_NE(l[8].find(":\t0x1122334455667788"), std::string::npos) << l[8];
    EXPECT_NE(l[9].find(":\t1"), std::string::npos) << l[9];
    // The same through xpeek.
    EXPECT_EQ(xpeek(t.pid(), {"x/dw &xp_small"}).out, lines_of(g.out)[0] + "\n");
    EXPECT_EQ(t.state(), 'S');
}

TEST(XpeekVsGdb, dump_memory_same_bytes) {
    REQUIRE_GDB();
    Target t;
    const std::string ours = (t.dir() / "ours.bin").string();
    const std::string theirs = (t.dir() / "theirs.bin").string();
    const std::string lo = hex(t.at("hole_edge") - 4096 + 16);
    const std::string hi = hex(t.at("hole_edge") + 16);
    const RunResult x = xpeek(t.pid(), {"dump memory " + ours + " " + lo + " " + hi});
    ASSERT_EQ(x.exit_code, 0) << x.err;
    gdb(t.pid(), {"dump memory " + theirs + " " + lo + " " + hi});
    std::ifstream a(ours, std::ios::binary), b(theirs, std::ios::binary);
    const std::string da((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
    const std::string db((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
    EXPECT_EQ(da.size(), 4096u);
    EXPECT_EQ(da, db);
    // Into the hole: an error, and no file (gdb leaves none either).
    const std::string bad = (t.dir() / "bad.bin").string();
    const RunResult e = xpeek(t.pid(), {"dump memory " + bad + " " + lo + " " + hex(t.at("hole_edge") + 32)});
    EXPECT_EQ(e.exit_code, 1);
    EXPECT_NE(e.err.find("Cannot access memory at address " + hex(t.at("hole_edge") + 16)), std::string::npos)
        << e.err;
    EXPECT_FALSE(fs::exists(bad));
    EXPECT_EQ(t.state(), 'S');
}

// ---------------------------------------------------------------------------
// Errors

TEST(XpeekErrors, unreadable_addresses_like_gdb_with_the_reason) {
    REQUIRE_GDB();
    Target t;
    const std::string edge = hex(t.at("hole_edge"));
    const std::vector<std::vector<std::string>> cases = {
        {"x/4xw 0x10"},
        {"x/4xb " + hex(t.at("prot_none"))},  // gdb (and xpeek, through /proc/PID/mem) read PROT_NONE
        {"x/2xg 0xffffffffff600000"},         // vsyscall
        {"x/2xg 0xffff880000000000"},         // kernel half
        {"x/40xb " + edge},                   // runs into the hole
        {"x/3xg " + hex(t.at("hole_edge") + 12)},
        {"x/3s " + edge},
        {"x/s 0x10"},
    };
    for (const auto& c : cases) {
        expect_same_as_gdb(t, c);
        const RunResult x = xpeek(t.pid(), c);
        const int g = gdb_status(t.pid(), c);
        if (c[0].starts_with("x/4xb " + hex(t.at("prot_none")))) {
            EXPECT_EQ(x.exit_code, 0) << x.err;
        } else {
            EXPECT_EQ(x.exit_code, 1) << c[0];
            EXPECT_NE(x.err.find("Cannot access memory at address 0x"), std::string::npos) << x.err;
            EXPECT_NE(x.err.find(" ("), std::string::npos) << "no reason: " << x.err;
        }
        if (!c[0].starts_with("x/3s") && !c[0].starts_with("x/s")) {
            EXPECT_EQ(x.exit_code, g) << c[0];  // gdb's x/s reports the error inside the line and succeeds
        }
    }
    const RunResult unmapped = xpeek(t.pid(), {"x/xw 0x10"});
    EXPECT_EQ(unmapped.err, "Cannot access memory at address 0x10 (unmapped: no mapping at 0x10)\n");
    const RunResult kernel = xpeek(t.pid(), {"x/xg 0xffff880000000000"});
    EXPECT_NE(kernel.err.find("kernel address"), std::string::npos) << kernel.err;
}

// An address-space limit proves the memory is bounded; a sanitizer runtime cannot start
// under one (it reserves terabytes of shadow), so there the limit is left out.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool LIMIT_ADDRESS_SPACE = false;
#else
constexpr bool LIMIT_ADDRESS_SPACE = true;
#endif

/// xpeek with `args`, under a 256 MiB address-space limit where possible.
static std::vector<std::string> limited_xpeek(std::vector<std::string> args) {
    args.insert(args.begin(), tool_path("xpeek"));
    if (LIMIT_ADDRESS_SPACE) {
        args.insert(args.begin(), {"prlimit", "--as=268435456"});
    }
    return args;
}

TEST(XpeekErrors, huge_count_stops_at_the_first_unreadable_address_with_bounded_memory) {
    REQUIRE_GDB();
    Target t;
    const std::vector<std::string> cmd{"x/100000000xb " + hex(t.at("hole_edge"))};
    expect_same_as_gdb(t, cmd);
    // 256 MiB of address space is plenty for xpeek's 64 KiB window, far too little for the count.
    const RunResult x = run(limited_xpeek({"--batch", "-ex", cmd[0], std::to_string(t.pid())}));
    EXPECT_EQ(x.exit_code, 1) << x.err;
    EXPECT_EQ(lines_of(x.out).size(), 3u) << x.out;
    EXPECT_NE(x.err.find("Cannot access memory at address " + hex(t.at("hole_edge") + 16)), std::string::npos)
        << x.err;
    // Over a whole 4 MiB mapping: every byte, then the end of the mapping.
    Target big(4);
    const RunResult b = run(
        limited_xpeek({"--batch", "-ex", "x/100000000xg " + hex(big.at("big")), std::to_string(big.pid())}));
    EXPECT_GE(lines_of(b.out).size(), (4u << 20) / 16);
    EXPECT_EQ(big.state(), 'S');
}

TEST(XpeekErrors, target_that_exits_during_a_read) {
    Target t(1024);  // 1 GiB to dump: long enough to be killed in the middle
    const std::string out = (t.dir() / "dump.bin").string();
    const pid_t pid = t.pid();
    std::thread killer([&t] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        t.child().kill_and_reap();
    });
    const RunResult x =
        run({tool_path("xpeek"), "--batch", "-ex",
             "dump memory " + out + " " + hex(t.at("big")) + " " + hex(t.at("big") + t.big_size()),
             std::to_string(pid)});
    killer.join();
    // Either it finished first, or it says the process went away; never a crash.
    EXPECT_TRUE(x.exit_code == 0 || x.exit_code == 1) << x.exit_code << " " << x.err;
    if (x.exit_code == 1) {
        // One error line; killed while xpeek was still starting, a "warning: no symbols"
        // line (the maps vanished under the symbol loader) may come first.
        std::size_t errors = 0;
        for (const std::string& line : lines_of(x.err)) {
            errors += line.starts_with("warning: ") ? 0 : 1;
        }
        EXPECT_EQ(errors, 1u) << x.err;
        EXPECT_NE(x.err.find("No such process"), std::string::npos) << x.err;
        EXPECT_FALSE(fs::exists(out));
    }
    // And an x after it is gone: one line, status 1.
    const RunResult after = run({tool_path("xpeek"), "--batch", "-ex", "x/xw 0x10", std::to_string(pid)});
    EXPECT_EQ(after.exit_code, 1);
    EXPECT_EQ(lines_of(after.err).size(), 1u) << after.err;
}

TEST(XpeekErrors, missing_pid_bad_command_bad_expression) {
    REQUIRE_GDB();
    Target t;
    const pid_t gone = vanished_pid();
    const RunResult missing = run({tool_path("xpeek"), "--batch", "-ex", "x/xw 0", std::to_string(gone)});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(lines_of(missing.err).size(), 1u) << missing.err;
    EXPECT_TRUE(missing.err.starts_with("xpeek: ")) << missing.err;
    EXPECT_EQ(missing.out, "");

    // gdb's own messages, word for word.
    for (const std::string& bad :
         {std::string("foo"), std::string("x/xw nosuch"), std::string("info address nosuch"),
          std::string("find &xp_small"), std::string("find /q &xp_small, +4, 1"), std::string("x/xw 1 +")}) {
        const RunResult x = xpeek(t.pid(), {bad});
        std::vector<std::string> argv{GDB, "-nx", "-q", "-batch", "-p", std::to_string(t.pid()), "-ex", bad};
        const RunResult g = run(argv);
        EXPECT_EQ(x.exit_code, 1) << bad;
        EXPECT_EQ(g.exit_code, 1) << bad;
        ASSERT_EQ(lines_of(x.err).size(), 1u) << x.err;
        EXPECT_NE(g.err.find(x.err), std::string::npos) << "gdb: " << g.err << "xpeek: " << x.err;
    }
    // Registers attach (issue 5); an unknown $name is an error, and the target runs on.
    const RunResult reg = xpeek(t.pid(), {"x/xg $sp"});
    EXPECT_EQ(reg.exit_code, 0) << reg.err;
    // -batch, as gdb: no "Attaching to process N", but the frame it stopped in.
    EXPECT_EQ(reg.out.find("Attaching to process"), std::string::npos) << reg.out;
    EXPECT_TRUE(reg.out.starts_with("0x")) << reg.out;
    const RunResult noreg = xpeek(t.pid(), {"x/xw $nosuch"});
    EXPECT_EQ(noreg.exit_code, 1);
    EXPECT_EQ(noreg.err, "$nosuch is void (not a register and never set).\n");
    const RunResult insn = xpeek(t.pid(), {"x/2i main"});
    EXPECT_EQ(insn.exit_code, 1);
    EXPECT_NE(insn.err.find("format 'i' is not supported"), std::string::npos) << insn.err;
    EXPECT_EQ(t.state(), 'S');
}

TEST(XpeekErrors, refused_read_names_the_rule_and_the_fix) {
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
        GTEST_SKIP() << "needs root and setpriv(1) to drop to uid 65534";
    }
    Target t;  // runs as root: uid 65534 may not read it
    const RunResult x =
        run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", tool_path("xpeek"),
             "--batch", "-ex", "x/xw &xp_small", std::to_string(t.pid())});
    EXPECT_EQ(x.exit_code, 1);
    EXPECT_EQ(x.out, "");
    ASSERT_EQ(lines_of(x.err).size(), 1u) << x.err;
    EXPECT_TRUE(x.err.starts_with("xpeek: ")) << x.err;
    EXPECT_NE(x.err.find("CAP_SYS_PTRACE"), std::string::npos) << x.err;  // the rule
    EXPECT_NE(x.err.find("setcap"), std::string::npos) << x.err;          // and the fix
    const RunResult why = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               tool_path("xpeek"), "--why", std::to_string(t.pid())});
    EXPECT_EQ(why.exit_code, 1);
    EXPECT_NE(why.out.find("REFUSES"), std::string::npos) << why.out;
    EXPECT_NE(why.out.find("uid_mismatch"), std::string::npos) << why.out;
    EXPECT_EQ(t.state(), 'S');
}

TEST(XpeekCommandLine, batch_status_is_the_last_commands) {
    REQUIRE_GDB();
    Target t;
    for (const auto& cmds : std::vector<std::vector<std::string>>{{"x/xw 0x10", "x/xw &xp_small"},
                                                                  {"x/xw &xp_small", "x/xw 0x10"},
                                                                  {"foo", "info address main"},
                                                                  {"info address main", "foo"}}) {
        EXPECT_EQ(xpeek(t.pid(), cmds).exit_code, gdb_status(t.pid(), cmds)) << cmds[0] << "; " << cmds[1];
    }
}

TEST(XpeekCommandLine, gdb_spellings_of_the_options) {
    Target t;
    const std::string pid = std::to_string(t.pid());
    const std::string want = xpeek(t.pid(), {"x/2dw &xp_small"}).out;
    ASSERT_NE(want, "");
    EXPECT_EQ(run({tool_path("xpeek"), "-batch", "-ex", "x/2dw &xp_small", "-p", pid}).out, want);
    EXPECT_EQ(run({tool_path("xpeek"), "--batch", "--eval-command=x/2dw &xp_small", pid}).out, want);
    EXPECT_EQ(run({tool_path("xpeek"), "-batch", "-eval-command", "x/2dw &xp_small", "-pid", pid}).out, want);
    EXPECT_EQ(run({tool_path("xpeek"), "-q", "-nx", "-batch", "--ex", "x/2dw &xp_small", pid}).out, want);
    // A command that starts with '-' is a value, not an option.
    EXPECT_EQ(run({tool_path("xpeek"), "-batch", "-ex", "x/-2dw (long)&xp_small+8", "-p", pid}).out, want);
    // -x FILE runs a command file, in order with -ex.
    const std::string file = (t.dir() / "cmds").string();
    std::ofstream(file) << "# a comment\nx/dw &xp_small\n";
    const RunResult r = run({tool_path("xpeek"), "-batch", "-x", file, "-ex", "x/dw (long)&xp_small+4", pid});
    EXPECT_EQ(r.out, xpeek(t.pid(), {"x/dw &xp_small", "x/dw (long)&xp_small+4"}).out);
    // Commands from a pipe in interactive mode.
    const RunResult piped = run({tool_path("xpeek"), "-q", pid}, "x/2dw &xp_small\nquit\n");
    EXPECT_EQ(piped.out, want);
    EXPECT_EQ(piped.exit_code, 0);
    // --version, -h, --why.
    EXPECT_EQ(run({tool_path("xpeek"), "--version"}).exit_code, 0);
    EXPECT_NE(run({tool_path("xpeek"), "-h"}).out.find("--batch"), std::string::npos);
    const RunResult why = run({tool_path("xpeek"), "--why", pid});
    EXPECT_EQ(why.exit_code, 0) << why.err;
    EXPECT_NE(why.out.find("Verdict: allowed"), std::string::npos) << why.out;
    const RunResult why_gone = run({tool_path("xpeek"), "--why", std::to_string(vanished_pid())});
    EXPECT_EQ(why_gone.exit_code, 1);
    EXPECT_NE(why_gone.out.find("no_such_process"), std::string::npos) << why_gone.out;
    // Usage errors: one line.
    const RunResult bad = run({tool_path("xpeek"), "--batch", "notapid"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_EQ(lines_of(bad.err).size(), 1u) << bad.err;
    EXPECT_EQ(t.state(), 'S');
}

TEST(XpeekCommandLine, help_lists_every_command) {
    const RunResult h = run({tool_path("xpeek"), "--batch", "-ex", "help"});
    EXPECT_EQ(h.exit_code, 0);
    for (const char* c : {"x --", "set --", "find --", "dump --", "info --", "help --", "quit --"}) {
        EXPECT_NE(h.out.find(c), std::string::npos) << c;
    }
    const RunResult hx = run({tool_path("xpeek"), "--batch", "-ex", "help x"});
    EXPECT_NE(hx.out.find("Usage: x/FMT ADDRESS"), std::string::npos) << hx.out;
    const RunResult none = run({tool_path("xpeek"), "--batch", "-ex", "x/xw 0"});
    EXPECT_EQ(none.exit_code, 1);
}

}  // namespace
