// SPDX-License-Identifier: MIT
// xpmap against procps-ng's pmap (Debian 12: 4.0.2), on real processes frozen
// with SIGSTOP: stdout and exit status must be byte for byte the same for every
// pmap option, on a C target with every kind of mapping (tests/targets/zoo.c), a
// multi-threaded one, dash, bash and python3. Then xpmap's own errors, --json,
// --sort, --top and --by-file, checked against the library's numbers.
//
// The one tolerated difference: Pss, Pss_Dirty, SwapPss and the Shared_*/Private_*
// split of a page depend on how many processes map it at that instant, and pmap
// and xpmap themselves map (different parts of) libc and friends while they run.
// In -X/-XX/-c output those columns are compared as "a number"; every other byte
// must match, including the alignment of every row.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "child.hpp"
#include "xproc/maps.hpp"
#include "xproc/process.hpp"

namespace {

namespace fs = std::filesystem;
using xproc::test::Child;
using xproc::test::run;
using xproc::test::RunResult;
using xproc::test::target_path;
using xproc::test::tool_path;
using xproc::test::vanished_pid;

const std::string PMAP = "/usr/bin/pmap";

std::string xpmap() {
    return tool_path("xpmap");
}

bool have_pmap() {
    return access(PMAP.c_str(), X_OK) == 0;
}

#define REQUIRE_PMAP()                                            \
    do {                                                          \
        if (!have_pmap()) {                                       \
            GTEST_SKIP() << PMAP << " (procps) is not installed"; \
        }                                                         \
    } while (false)

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) {
            nl = text.size();
        }
        lines.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return lines;
}

std::vector<std::string> split_words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string w;
    while (in >> w) {
        out.push_back(w);
    }
    return out;
}

/// Runs `tool` with `args`, with extra environment variables through env(1).
RunResult run_tool(const std::string& tool, const std::vector<std::string>& args,
                   const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv;
    if (!env.empty()) {
        argv.push_back("/usr/bin/env");
        argv.insert(argv.end(), env.begin(), env.end());
    }
    argv.push_back(tool);
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& a : v) {
        s += (s.empty() ? "" : " ") + (a.empty() ? std::string("''") : a);
    }
    return s;
}

// ---------------------------------------------------------------------------
// Comparing pmap's output with xpmap's

/// Fields whose value depends on who else maps a page at the moment of reading.
bool volatile_field(std::string_view name) {
    return name.starts_with("Pss") || name == "SwapPss" || name.starts_with("Shared_") ||
           name.starts_with("Private_");
}

bool smaps_format(const std::vector<std::string>& options) {
    for (const auto& o : options) {
        if (o.starts_with("-X") || o == "-c" || o == "-C" || o.starts_with("--read-rc")) {
            return true;
        }
    }
    return false;
}

/// The -X/-XX/-c column heading of pmap with these options (run without -q).
std::vector<std::string> smaps_heading(const std::vector<std::string>& options,
                                       const std::vector<std::string>& pids,
                                       const std::vector<std::string>& env) {
    std::vector<std::string> args;
    for (const auto& o : options) {
        if (o != "-q") {
            args.push_back(o);
        }
    }
    args.insert(args.end(), pids.begin(), pids.end());
    const RunResult r = run_tool(PMAP, args, env);
    for (const std::string& line : lines_of(r.out)) {
        const auto words = split_words(line);
        if (!words.empty() && words.front() == "Address") {
            return words;
        }
    }
    return {};
}

struct Token {
    std::size_t begin;
    std::size_t end;
    std::string_view text;
};

std::vector<Token> tokens_of(std::string_view line, std::size_t max_tokens) {
    std::vector<Token> out;
    std::size_t i = 0;
    while (i < line.size() && out.size() < max_tokens) {
        while (i < line.size() && line[i] == ' ') {
            ++i;
        }
        if (i >= line.size()) {
            break;
        }
        std::size_t j = i;
        while (j < line.size() && line[j] != ' ') {
            ++j;
        }
        out.push_back({i, j, line.substr(i, j - i)});
        i = j;
    }
    return out;
}

/// Compares one -X/-XX/-c line; `heading` is pmap's column heading. Returns "" or why not.
std::string compare_smaps_line(const std::string& p, const std::string& x,
                               const std::vector<std::string>& heading) {
    if (p == x) {
        return {};
    }
    static const std::set<std::string, std::less<>> FIXED = {"Address", "Perm", "Offset", "Device", "Inode"};
    std::vector<std::string> fields;  // numeric columns, in order
    std::size_t fixed = 0;
    for (const auto& h : heading) {
        if (FIXED.count(h) != 0) {
            ++fixed;
        } else if (h != "VmFlags" && h != "Mapping") {
            fields.push_back(h);
        }
    }
    // Which line is it? Rows start with the address; the footer with '=' or a total.
    const auto pt = tokens_of(p, 1);
    if (pt.empty()) {
        return "line differs";
    }
    std::size_t skip = fixed;
    const bool footer =
        pt[0].text.find_first_not_of('=') == std::string_view::npos || (p.size() >= 3 && p.ends_with("KB "));
    const bool heading_line = pt[0].text == "Address";
    if (footer) {
        skip = 0;
    } else if (!heading_line && p.find(":   ") != std::string::npos && p.find(":   ") < 12) {
        return "process header line differs";
    }
    const std::size_t n = skip + fields.size();
    const auto ptok = tokens_of(p, n);
    const auto xtok = tokens_of(x, n);
    if (ptok.size() != xtok.size()) {
        return "number of columns differs";
    }
    std::string pm = p, xm = x;  // lines with the volatile cells masked
    for (std::size_t i = 0; i < ptok.size(); ++i) {
        const bool is_volatile = i >= skip && i - skip < fields.size() && volatile_field(fields[i - skip]);
        if (is_volatile) {
            const bool numeric = [&] {
                for (const auto* t : {&ptok[i], &xtok[i]}) {
                    if (t->text.find_first_not_of("0123456789") != std::string_view::npos &&
                        t->text.find_first_not_of('=') != std::string_view::npos && !heading_line) {
                        return false;
                    }
                }
                return true;
            }();
            if (!numeric) {
                return "volatile column " + fields[i - skip] + " is not a number";
            }
            // The whole right-aligned cell, padding included: from the end of the previous token.
            const std::size_t pb = i == 0 ? 0 : ptok[i - 1].end;
            const std::size_t xb = i == 0 ? 0 : xtok[i - 1].end;
            std::fill(pm.begin() + static_cast<std::ptrdiff_t>(pb),
                      pm.begin() + static_cast<std::ptrdiff_t>(ptok[i].end), '#');
            std::fill(xm.begin() + static_cast<std::ptrdiff_t>(xb),
                      xm.begin() + static_cast<std::ptrdiff_t>(xtok[i].end), '#');
        } else if (ptok[i].text != xtok[i].text) {
            return "column " + std::to_string(i) + " differs";
        }
    }
    // The rest of the line (VmFlags, name) must match exactly.
    const std::size_t prest = ptok.empty() ? 0 : ptok.back().end;
    const std::size_t xrest = xtok.empty() ? 0 : xtok.back().end;
    if (p.substr(prest) != x.substr(xrest)) {
        return "end of line (VmFlags, name) differs";
    }
    // Same widths: then the masked lines must be identical (same alignment).
    if (p.size() == x.size() && pm != xm) {
        return "alignment differs";
    }
    return {};
}

/// Runs pmap and xpmap with `options` on `pids` and compares them. Returns "" when
/// equivalent, else a description of the first difference.
std::string compare_with_pmap(const std::vector<std::string>& options, const std::vector<std::string>& pids,
                              const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = options;
    args.insert(args.end(), pids.begin(), pids.end());
    const RunResult p = run_tool(PMAP, args, env);
    const RunResult x = run_tool(xpmap(), args, env);
    const std::string what = "[" + join(args) + "]: ";
    if (p.exit_code != x.exit_code) {
        return what + "exit status pmap " + std::to_string(p.exit_code) + ", xpmap " +
               std::to_string(x.exit_code) + " (xpmap stderr: " + x.err + ")";
    }
    if (p.out == x.out) {
        return {};
    }
    const auto pl = lines_of(p.out);
    const auto xl = lines_of(x.out);
    auto first_diff = [&](const std::string& why, std::size_t i) {
        return what + why + " at line " + std::to_string(i + 1) +
               "\n  pmap:  " + (i < pl.size() ? pl[i].substr(0, 300) : "<none>") +
               "\n  xpmap: " + (i < xl.size() ? xl[i].substr(0, 300) : "<none>");
    };
    if (!smaps_format(options) || pl.size() != xl.size() ||
        (p.out.back() == '\n') != (x.out.back() == '\n')) {
        for (std::size_t i = 0; i < std::max(pl.size(), xl.size()); ++i) {
            if (i >= pl.size() || i >= xl.size() || pl[i] != xl[i]) {
                return first_diff("output differs", i);
            }
        }
        return what + "output differs";
    }
    const auto heading = smaps_heading(options, pids, env);
    for (std::size_t i = 0; i < pl.size(); ++i) {
        const std::string why = compare_smaps_line(pl[i], xl[i], heading);
        if (!why.empty()) {
            return first_diff(why, i);
        }
    }
    return {};
}

// ---------------------------------------------------------------------------
// Targets

/// tests/targets/zoo with its scratch directory and POSIX shm name, all removed
/// (and the process killed) when it goes out of scope.
class Zoo {
  public:
    explicit Zoo(int nmaps = 3000, const std::string& extra_arg = {}) {
        char dir[] = "/tmp/xpmap zoo XXXXXX";
        if (mkdtemp(dir) == nullptr) {
            ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
            return;
        }
        m_dir = dir;
        m_shm = "/xproc-test-" + std::to_string(getpid()) + "-zoo-" + std::to_string(s_count++);
        std::vector<std::string> argv = {target_path("zoo"), m_dir, m_shm, std::to_string(nmaps)};
        if (!extra_arg.empty()) {
            argv.push_back(extra_arg);
        }
        m_child.start(argv);
        m_ready = m_child.wait_for_line() && m_child.freeze();
    }
    ~Zoo() {
        m_child.kill_and_reap();
        if (!m_shm.empty()) {
            shm_unlink(m_shm.c_str());
        }
        if (!m_dir.empty()) {
            std::error_code ec;
            fs::remove_all(m_dir, ec);
        }
    }
    Zoo(const Zoo&) = delete;
    Zoo& operator=(const Zoo&) = delete;

    bool ready() const { return m_ready; }
    pid_t pid() const { return m_child.pid(); }
    std::string pid_text() const { return std::to_string(pid()); }

  private:
    static inline int s_count = 0;
    std::string m_dir;
    std::string m_shm;
    Child m_child;
    bool m_ready = false;
};

/// A frozen child started from argv (it must print "ready").
struct Frozen {
    explicit Frozen(std::vector<std::string> argv) {
        child.start(std::move(argv));
        ready = child.wait_for_line() && child.freeze();
    }
    std::string pid_text() const { return std::to_string(child.pid()); }
    Child child;
    bool ready = false;
};

std::string python3() {
    if (access("/usr/bin/python3", X_OK) == 0) {
        return "/usr/bin/python3";
    }
    return "python3";  // from PATH
}

/// A few addresses of the target's map for -A: the starts of mappings 1/4, 1/2, 3/4 in.
std::vector<std::uint64_t> addresses_of(pid_t pid) {
    std::vector<std::uint64_t> out;
    auto map = xproc::read_maps(pid);
    if (!map || map->size() < 8) {
        return out;
    }
    for (std::size_t q = 1; q <= 3; ++q) {
        out.push_back((*map)[map->size() * q / 4].start);
    }
    return out;
}

std::string hex(std::uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(v));
    return buf;
}

/// Every pmap option, alone and with -q and -p.
const std::vector<std::vector<std::string>> EVERY_FORMAT = {
    {},           {"-x"},        {"-X"},
    {"-XX"},      {"-d"},        {"-q"},
    {"-x", "-q"}, {"-X", "-q"},  {"-XX", "-q"},
    {"-d", "-q"}, {"-p"},        {"-x", "-p"},
    {"-X", "-p"}, {"-XX", "-p"}, {"-d", "-p"},
    {"-p", "-q"}, {"-X", "-X"},  {"--extended"},
    {"--device"}, {"--quiet"},   {"--show-path", "-x"},
};

void expect_same_as_pmap_for_every_format(const std::vector<std::string>& pids,
                                          const std::vector<std::string>& env = {}) {
    for (const auto& options : EVERY_FORMAT) {
        EXPECT_EQ(compare_with_pmap(options, pids, env), "");
    }
}

// ---------------------------------------------------------------------------
// Byte for byte against pmap

TEST(XpmapVsPmap, zoo_every_format) {
    REQUIRE_PMAP();
    Zoo zoo;
    ASSERT_TRUE(zoo.ready());
    expect_same_as_pmap_for_every_format({zoo.pid_text()});
}

TEST(XpmapVsPmap, zoo_in_utf8_and_c_locales) {
    REQUIRE_PMAP();
    // An argument with a tab, a newline, UTF-8 and invalid UTF-8: the header line escapes them.
    Zoo zoo(100, "a\tb\nc \xc3\xa9 \xe4\xb8\xad \xff\x01z");
    ASSERT_TRUE(zoo.ready());
    for (const char* locale : {"LC_ALL=C.UTF-8", "LC_ALL=C"}) {
        for (const auto& options : std::vector<std::vector<std::string>>{{}, {"-x", "-p"}, {"-X"}, {"-d"}}) {
            EXPECT_EQ(compare_with_pmap(options, {zoo.pid_text()}, {locale}), "") << locale;
        }
    }
}

TEST(XpmapVsPmap, threads_and_thread_ids) {
    REQUIRE_PMAP();
    Frozen t({target_path("threads"), "4"});
    ASSERT_TRUE(t.ready);
    auto proc = xproc::Process::open(t.child.pid());
    ASSERT_TRUE(proc);
    auto tids = proc->threads();
    ASSERT_TRUE(tids);
    ASSERT_EQ(tids->size(), 5u);
    expect_same_as_pmap_for_every_format({t.pid_text()});
    // A thread id shows its process, as in pmap.
    std::vector<std::string> all;
    for (const pid_t tid : *tids) {
        all.push_back(std::to_string(tid));
    }
    for (const auto& options : std::vector<std::vector<std::string>>{{}, {"-x"}, {"-X"}}) {
        EXPECT_EQ(compare_with_pmap(options, all), "");
    }
}

TEST(XpmapVsPmap, dash_shell) {
    REQUIRE_PMAP();
    // The shell stops itself: no child process to leave behind.
    Frozen sh({"/bin/sh", "-c", "echo ready; kill -STOP $$; echo resumed"});
    ASSERT_TRUE(sh.ready);
    expect_same_as_pmap_for_every_format({sh.pid_text()});
}

TEST(XpmapVsPmap, bash_shell) {
    REQUIRE_PMAP();
    if (access("/bin/bash", X_OK) != 0) {
        GTEST_SKIP() << "no /bin/bash";
    }
    Frozen bash({"/bin/bash", "-c", "echo ready; kill -STOP $$; echo resumed"});
    ASSERT_TRUE(bash.ready);
    expect_same_as_pmap_for_every_format({bash.pid_text()});
}

TEST(XpmapVsPmap, python3) {
    REQUIRE_PMAP();
    Frozen py({python3(), "-c", "import time; print('ready', flush=True); time.sleep(1000)"});
    if (!py.ready) {
        GTEST_SKIP() << "python3 did not start";
    }
    expect_same_as_pmap_for_every_format({py.pid_text()});
}

TEST(XpmapVsPmap, several_pids_kernel_thread_zombie_and_missing) {
    REQUIRE_PMAP();
    Zoo zoo(500);
    ASSERT_TRUE(zoo.ready());
    Frozen t({target_path("threads"), "2"});
    ASSERT_TRUE(t.ready);
    const pid_t zombie = fork();
    if (zombie == 0) {
        _exit(0);
    }
    ASSERT_GT(zombie, 0);
    // Wait until it is a zombie (state Z), without reaping it.
    for (int i = 0; i < 200; ++i) {
        auto p = xproc::Process::open(zombie);
        if (p && p->stat() && p->stat()->state == 'Z') {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const std::string missing = std::to_string(vanished_pid());
    // pmap -X carries column widths and totals from one PID to the next: order matters.
    const std::vector<std::vector<std::string>> pid_lists = {
        {zoo.pid_text(), t.pid_text()},
        {t.pid_text(), "2", zoo.pid_text()},
        {"2", std::to_string(zombie), t.pid_text()},
        {zoo.pid_text(), missing, t.pid_text(), zoo.pid_text()},
        {missing},
        {"2"},
    };
    for (const auto& pids : pid_lists) {
        for (const auto& options : std::vector<std::vector<std::string>>{
                 {}, {"-x"}, {"-X"}, {"-XX"}, {"-d"}, {"-X", "-q"}, {"-x", "-q"}}) {
            EXPECT_EQ(compare_with_pmap(options, pids), "");
        }
    }
    int status = 0;
    waitpid(zombie, &status, 0);
}

TEST(XpmapVsPmap, address_ranges) {
    REQUIRE_PMAP();
    Zoo zoo(300);
    ASSERT_TRUE(zoo.ready());
    const auto a = addresses_of(zoo.pid());
    ASSERT_EQ(a.size(), 3u);
    const std::vector<std::string> ranges = {
        hex(a[1]),                                  // -A low: low,low
        hex(a[0]) + "," + hex(a[2]),                // low,high
        "," + hex(a[1]),                            // ,high
        hex(a[1]) + ",",                            // low,
        hex(a[1] + 1) + "," + hex(a[1] + 2),        // inside one mapping
        "0x" + hex(a[0]) + "," + "0x" + hex(a[2]),  // 0x prefixes (strtoul)
        "0",
        "ffffffffffffffff",
        "",
        ",",
    };
    for (const auto& range : ranges) {
        for (const auto& options : std::vector<std::vector<std::string>>{
                 {}, {"-x"}, {"-d"}, {"-X"}, {"-XX", "-q"}, {"-x", "-q"}, {"-p"}}) {
            std::vector<std::string> o = options;
            o.push_back("-A");
            o.push_back(range);
            EXPECT_EQ(compare_with_pmap(o, {zoo.pid_text()}), "");
        }
    }
    // Several -A, long form, glued value, bad values.
    for (const auto& o : std::vector<std::vector<std::string>>{
             {"-A", hex(a[0]), "-A", "," + hex(a[2])},
             {"--range=" + hex(a[0]) + "," + hex(a[2])},
             {"--range", hex(a[0])},
             {"-A" + hex(a[0]) + "," + hex(a[2]), "-x"},
             {"-A", "xyz"},
             {"-A", "1,2,3"},
             {"-A", "12 "},
         }) {
        EXPECT_EQ(compare_with_pmap(o, {zoo.pid_text()}), "");
    }
}

/// A temporary directory for rc files, removed at the end.
struct TempDir {
    TempDir() {
        char d[] = "/tmp/xpmap-test-XXXXXX";
        path = mkdtemp(d) != nullptr ? d : "";
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return path + "/" + name; }
    std::string path;
};

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(XpmapVsPmap, rc_files_create_and_read) {
    REQUIRE_PMAP();
    TempDir home_p, home_x, tmp;
    ASSERT_FALSE(home_p.path.empty());
    // -n writes ~/.pmaprc: the same file, and the same refusal the second time.
    for (int round = 0; round < 2; ++round) {
        const RunResult p = run_tool(PMAP, {"-n"}, {"HOME=" + home_p.path});
        const RunResult x = run_tool(xpmap(), {"-n"}, {"HOME=" + home_x.path});
        EXPECT_EQ(p.exit_code, x.exit_code) << "round " << round;
        EXPECT_EQ(p.exit_code, round == 0 ? 0 : 1);
        EXPECT_EQ(p.out, x.out);
    }
    EXPECT_EQ(read_text(home_p.file(".pmaprc")), read_text(home_x.file(".pmaprc")));
    // -N FILE
    for (int round = 0; round < 2; ++round) {
        const RunResult p = run_tool(PMAP, {"-N", tmp.file("p.rc")});
        const RunResult x = run_tool(xpmap(), {"-N", tmp.file("x.rc")});
        EXPECT_EQ(p.exit_code, x.exit_code);
        EXPECT_EQ(p.out, x.out);
    }
    EXPECT_EQ(read_text(tmp.file("p.rc")), read_text(tmp.file("x.rc")));
    EXPECT_FALSE(read_text(tmp.file("x.rc")).empty());
    EXPECT_EQ(compare_with_pmap({"-N", tmp.path + "/no/such/dir/x.rc"}, {}), "");
    EXPECT_EQ(compare_with_pmap({"-N", tmp.file("y.rc"), "1"}, {}), "");  // pid with -N
    EXPECT_EQ(compare_with_pmap({"-n", "-q"}, {}), "");
    EXPECT_EQ(compare_with_pmap({"-n", "-p"}, {}), "");
    EXPECT_EQ(compare_with_pmap({"-n", "-N", tmp.file("z.rc")}, {}), "");
    EXPECT_EQ(compare_with_pmap({"-n"}, {}, {"-u", "HOME"}), "");

    Zoo zoo(200);
    ASSERT_TRUE(zoo.ready());
    const std::string tmpl = read_text(tmp.file("p.rc"));
    auto enable = [&](std::string text, const std::vector<std::string>& names) {
        for (const auto& n : names) {
            const std::string commented = "#" + n + "\n";
            const auto at = text.find(commented);
            if (at != std::string::npos) {
                text.replace(at, commented.size(), n + "\n");
            }
        }
        return text;
    };
    const std::vector<std::string> rcs = {
        tmpl,                                      // nothing enabled
        enable(tmpl, {"Perm", "Rss", "Mapping"}),  // a few columns
        enable(tmpl,
               {"Perm",      "Offset",        "Device",       "Inode",          "Size",          "Rss",
                "Pss",       "Shared_Clean",  "Shared_Dirty", "Private_Clean",  "Private_Dirty", "Referenced",
                "Anonymous", "AnonHugePages", "Swap",         "KernelPageSize", "MMUPageSize",   "Locked",
                "VmFlags",   "Mapping",       "ShowPath"}),
        enable(tmpl, {"Size", "VmFlags", "Mapping", "ShowPath"}),
        "[Fields Display]\nTHPeligible\nProtectionKey\n  Rss # comment\nSize "
        "Rss\n[Mapping]\nShowPath\nShowPath\n",
        "Rss\n[Unknown]\nSize\n[Fields Display] junk\nInode\nMapping\n[Mapping]\nShowPath\n",
    };
    for (std::size_t i = 0; i < rcs.size(); ++i) {
        write_file(tmp.file("rc" + std::to_string(i)), rcs[i]);
        write_file(home_p.file(".pmaprc"), rcs[i]);
        for (const auto& extra :
             std::vector<std::vector<std::string>>{{}, {"-q"}, {"-p"}, {"-A", "0,7fffffffffff"}}) {
            std::vector<std::string> o = {"-C", tmp.file("rc" + std::to_string(i))};
            o.insert(o.end(), extra.begin(), extra.end());
            EXPECT_EQ(compare_with_pmap(o, {zoo.pid_text()}), "") << "rc " << i;
            std::vector<std::string> c = {"-c"};
            c.insert(c.end(), extra.begin(), extra.end());
            EXPECT_EQ(compare_with_pmap(c, {zoo.pid_text()}, {"HOME=" + home_p.path}), "") << "rc " << i;
        }
    }
    EXPECT_EQ(compare_with_pmap({"-C", tmp.file("missing.rc")}, {zoo.pid_text()}), "");
    EXPECT_EQ(compare_with_pmap({"-c"}, {zoo.pid_text()}, {"HOME=" + tmp.path}), "");  // no ~/.pmaprc
    EXPECT_EQ(compare_with_pmap({"-c", "-C", tmp.file("rc1")}, {zoo.pid_text()}), "");
    EXPECT_EQ(compare_with_pmap({"-c", "-X"}, {zoo.pid_text()}), "");
}

TEST(XpmapVsPmap, command_line_errors_and_pid_forms) {
    REQUIRE_PMAP();
    Frozen t({target_path("threads"), "1"});
    ASSERT_TRUE(t.ready);
    const std::string pid = t.pid_text();
    const std::string missing = std::to_string(vanished_pid());
    const std::vector<std::vector<std::string>> cases = {
        {},
        {"-x"},
        {"-k", pid},
        {"--bogus", pid},
        {"-x", "-d", pid},
        {"-x", "-X", pid},
        {"-XXX", pid},
        {"-xq", pid},
        {"-qx", pid},
        {"-x", "-x", pid},
        {pid, "-x"},
        {"--", pid},
        {"--", "-x", pid},
        {"--ext", pid},
        {"--read", pid},
        {"--quiet", "--device", pid},
        {"-A"},
        {"-A", "zz"},
        {"-k", "-h"},
        {"abc"},
        {"0"},
        {"-1"},
        {"+1"},
        {"1x"},
        {"08"},
        {"2147483648"},
        {"99999999999999999999"},
        {"0x" + hex(static_cast<std::uint64_t>(t.child.pid()))},
        {"/proc/" + pid},
        {"/proc/" + pid + "/"},
        {"/proc/abc"},
        {"/proc/abc", pid},
        {pid, "abc"},
        {missing},
        {pid, missing},
        {missing, pid},
        {pid, pid},
        {"2147483647"},
    };
    for (const auto& args : cases) {
        EXPECT_EQ(compare_with_pmap(args, {}), "");
    }
}

TEST(XpmapVsPmap, help_and_version) {
    REQUIRE_PMAP();
    // -h: pmap's text with xpmap's name, plus xpmap's own options.
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"-h"}, {"--help"}, {"-x", "-h"}, {"-h", "-k"}}) {
        const RunResult p = run_tool(PMAP, args);
        const RunResult x = run_tool(xpmap(), args);
        EXPECT_EQ(p.exit_code, 0);
        EXPECT_EQ(x.exit_code, 0);
        std::string expected = p.out;
        for (std::size_t at; (at = expected.find("pmap")) != std::string::npos;) {
            expected.replace(at, 4, "\x01");
        }
        for (std::size_t at; (at = expected.find('\x01')) != std::string::npos;) {
            expected.replace(at, 1, "xpmap");
        }
        std::string got;
        for (const std::string& line : lines_of(x.out)) {
            const bool ours =
                line.starts_with("     --") || line.starts_with("                             (");
            if (!ours) {
                got += line + "\n";
            }
        }
        EXPECT_EQ(got, expected);
        EXPECT_NE(x.out.find("--json"), std::string::npos);
    }
    // -V: the exit status is pmap's; the text names xpmap and xproc, not procps.
    const RunResult p = run_tool(PMAP, {"-V"});
    const RunResult x = run_tool(xpmap(), {"-V"});
    EXPECT_EQ(p.exit_code, x.exit_code);
    EXPECT_EQ(x.out.rfind("xpmap from xproc ", 0), 0u) << x.out;
}

// ---------------------------------------------------------------------------
// Errors

/// Exactly one line on stderr, starting "xpmap: ".
void expect_one_error_line(const RunResult& r, const std::string& must_contain) {
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("xpmap: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(must_contain), std::string::npos) << r.err;
}

TEST(XpmapErrors, missing_pid_exits_42_with_one_line) {
    const std::string missing = std::to_string(vanished_pid());
    for (const auto& options : std::vector<std::vector<std::string>>{{}, {"-x"}, {"-X"}, {"--json"}}) {
        std::vector<std::string> args = options;
        args.push_back(missing);
        const RunResult r = run_tool(xpmap(), args);
        EXPECT_EQ(r.exit_code, 42);
        EXPECT_EQ(r.out, "");
        expect_one_error_line(r, "xpmap: " + missing + ": ");
    }
}

TEST(XpmapErrors, bad_pid_arguments_exit_1_with_one_line) {
    for (const std::string arg : {"abc", "0", "2147483648", "12x", "-5"}) {
        const RunResult r = run_tool(xpmap(), {"-x", arg});
        EXPECT_EQ(r.exit_code, 1) << arg;
        EXPECT_EQ(r.out, "");
        expect_one_error_line(r, "xpmap: ");
    }
    const RunResult none = run_tool(xpmap(), {});
    EXPECT_EQ(none.exit_code, 1);
    expect_one_error_line(none, "no process id");
}

TEST(XpmapErrors, kernel_thread_and_zombie_have_empty_tables) {
    // pid 2 is kthreadd on Linux.
    const RunResult k = run_tool(xpmap(), {"2"});
    EXPECT_EQ(k.exit_code, 0);
    EXPECT_EQ(k.out, "2:   [kthreadd]\n total                0K\n");
    EXPECT_EQ(k.err, "");
    const pid_t zombie = fork();
    if (zombie == 0) {
        _exit(0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const RunResult z = run_tool(xpmap(), {"-x", std::to_string(zombie)});
    int status = 0;
    waitpid(zombie, &status, 0);
    EXPECT_EQ(z.exit_code, 0);
    EXPECT_NE(z.out.find("] <defunct>\n"), std::string::npos) << z.out;
    EXPECT_NE(z.out.find("total kB               0       0       0\n"), std::string::npos) << z.out;
}

TEST(XpmapErrors, permission_refused_names_the_rule) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root to run the tools as another user";
    }
    if (access("/usr/bin/setpriv", X_OK) != 0) {
        GTEST_SKIP() << "needs setpriv(1)";
    }
    Frozen t({target_path("threads"), "1"});  // ours: root's
    ASSERT_TRUE(t.ready);
    const std::vector<std::string> as_nobody = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                                "--clear-groups"};
    for (const auto& options : std::vector<std::vector<std::string>>{{}, {"-x"}, {"-X"}}) {
        std::vector<std::string> x = as_nobody;
        x.push_back(xpmap());
        x.insert(x.end(), options.begin(), options.end());
        x.push_back(t.pid_text());
        const RunResult rx = run(x);
        EXPECT_EQ(rx.exit_code, 1);
        // The header line only, as pmap prints it before failing to open the map.
        EXPECT_EQ(rx.out, t.pid_text() + ":   " + target_path("threads") + " 1\n");
        expect_one_error_line(rx, "xpmap: " + t.pid_text() + ": ");
        EXPECT_NE(rx.err.find("Permission denied"), std::string::npos) << rx.err;
        EXPECT_NE(rx.err.find("; "), std::string::npos) << "no hint: " << rx.err;
        if (have_pmap()) {
            std::vector<std::string> p = as_nobody;
            p.push_back(PMAP);
            p.insert(p.end(), options.begin(), options.end());
            p.push_back(t.pid_text());
            const RunResult rp = run(p);
            EXPECT_EQ(rp.exit_code, rx.exit_code);
            EXPECT_EQ(rp.out, rx.out);
        }
    }
}

TEST(XpmapErrors, process_exiting_while_read_is_never_a_partial_table) {
    // A big map takes a while to read; kill the target at various moments of the
    // read. Whatever happens, a table printed with exit status 0 is complete, and
    // a failure prints at most the header line and one error line.
    constexpr int N = 20000;
    for (int delay_ms : {0, 5, 15, 30, 60, 120}) {
        Child target({target_path("many_maps"), std::to_string(N)});
        ASSERT_TRUE(target.wait_for_line());
        ASSERT_TRUE(target.freeze());
        auto map = xproc::read_maps(target.pid());
        ASSERT_TRUE(map);
        const std::size_t rows = map->size();
        const std::string pid = std::to_string(target.pid());
        std::thread killer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
            target.kill_and_reap();
        });
        const RunResult r = run_tool(xpmap(), {"-x", pid});
        killer.join();
        const auto lines = lines_of(r.out);
        if (r.exit_code == 0 && !lines.empty() && lines[0].rfind(pid + ":   [", 0) == 0) {
            // Killed before xpmap looked, not yet reaped: a process that has released its
            // memory (a zombie, "[comm] <defunct>", or one still exiting, "[comm]": unmapping
            // 20,000 maps takes milliseconds) has no mappings and no command line, and pmap
            // prints its empty table with status 0 as well (seen under ASan and in CI).
            EXPECT_EQ(lines.size(), 4u) << r.out;
            EXPECT_EQ(lines.back().rfind("total kB", 0), 0u);
        } else if (r.exit_code == 0) {
            ASSERT_EQ(lines.size(), rows + 4)
                << "delay " << delay_ms;  // header, heading, rows, 2 footer lines
            EXPECT_EQ(lines.back().rfind("total kB", 0), 0u);
        } else {
            EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 42) << r.exit_code;
            EXPECT_LE(lines.size(), 1u) << "delay " << delay_ms;
            expect_one_error_line(r, "xpmap: " + pid + ": ");
        }
    }
}

// ---------------------------------------------------------------------------
// --json

/// A small JSON parser for the tests: strict (RFC 8259), strings must be valid UTF-8.
struct Json {
    enum class Type { null, boolean, number, string, array, object } type = Type::null;
    bool boolean = false;
    std::string text;  // number as written, or the decoded string
    std::vector<Json> array;
    std::vector<std::pair<std::string, Json>> object;

    const Json* find(std::string_view key) const {
        for (const auto& [k, v] : object) {
            if (k == key) {
                return &v;
            }
        }
        return nullptr;
    }
    const Json& operator[](std::string_view key) const {
        static const Json none;
        const Json* j = find(key);
        return j != nullptr ? *j : none;
    }
    std::uint64_t u64() const { return std::strtoull(text.c_str(), nullptr, 10); }
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
               (m_s[m_i] == ' ' || m_s[m_i] == '\t' || m_s[m_i] == '\n' || m_s[m_i] == '\r')) {
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
                Json key;
                if (m_i >= m_s.size() || m_s[m_i] != '"' || !string(key.text)) {
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
                j.object.emplace_back(std::move(key.text), std::move(v));
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
        if (literal("true")) {
            j.type = Json::Type::boolean;
            j.boolean = true;
            return true;
        }
        if (literal("false")) {
            j.type = Json::Type::boolean;
            return true;
        }
        if (literal("null")) {
            return true;
        }
        const std::size_t start = m_i;
        if (m_i < m_s.size() && m_s[m_i] == '-') {
            ++m_i;
        }
        while (m_i < m_s.size() && std::strchr("0123456789.eE+-", m_s[m_i]) != nullptr) {
            ++m_i;
        }
        if (m_i == start) {
            return false;
        }
        j.type = Json::Type::number;
        j.text = std::string(m_s.substr(start, m_i - start));
        return true;
    }
    static void utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        }
    }
    bool hex4(std::uint32_t& v) {
        if (m_i + 4 > m_s.size()) {
            return false;
        }
        v = 0;
        for (int k = 0; k < 4; ++k) {
            const char h = m_s[m_i++];
            v <<= 4;
            if (h >= '0' && h <= '9') {
                v |= static_cast<std::uint32_t>(h - '0');
            } else if (h >= 'a' && h <= 'f') {
                v |= static_cast<std::uint32_t>(h - 'a' + 10);
            } else if (h >= 'A' && h <= 'F') {
                v |= static_cast<std::uint32_t>(h - 'A' + 10);
            } else {
                return false;
            }
        }
        return true;
    }
    bool string(std::string& out) {
        ++m_i;  // the quote
        while (m_i < m_s.size()) {
            const auto c = static_cast<unsigned char>(m_s[m_i]);
            if (c == '"') {
                ++m_i;
                return true;
            }
            if (c < 0x20) {
                return false;  // raw control character
            }
            if (c == '\\') {
                if (++m_i >= m_s.size()) {
                    return false;
                }
                const char e = m_s[m_i++];
                switch (e) {
                    case '"':
                        out += '"';
                        break;
                    case '\\':
                        out += '\\';
                        break;
                    case '/':
                        out += '/';
                        break;
                    case 'b':
                        out += '\b';
                        break;
                    case 'f':
                        out += '\f';
                        break;
                    case 'n':
                        out += '\n';
                        break;
                    case 'r':
                        out += '\r';
                        break;
                    case 't':
                        out += '\t';
                        break;
                    case 'u': {
                        std::uint32_t cp = 0;
                        if (!hex4(cp) || (cp >= 0xd800 && cp <= 0xdfff)) {
                            return false;  // xpmap never needs surrogates below U+10000
                        }
                        utf8(out, cp);
                        break;
                    }
                    default:
                        return false;
                }
                continue;
            }
            // Raw UTF-8: must be well formed.
            std::size_t n = c < 0x80                 ? 1
                            : c >= 0xc2 && c <= 0xdf ? 2
                            : c >= 0xe0 && c <= 0xef ? 3
                            : c >= 0xf0 && c <= 0xf4 ? 4
                                                     : 0;
            if (n == 0 || m_i + n > m_s.size()) {
                return false;
            }
            for (std::size_t k = 1; k < n; ++k) {
                if ((static_cast<unsigned char>(m_s[m_i + k]) & 0xc0) != 0x80) {
                    return false;
                }
            }
            out.append(m_s.substr(m_i, n));
            m_i += n;
        }
        return false;
    }

    std::string_view m_s;
    std::size_t m_i = 0;
};

std::vector<Json> parse_json_lines(const std::string& out) {
    std::vector<Json> docs;
    for (const std::string& line : lines_of(out)) {
        auto j = JsonParser(line).document();
        EXPECT_TRUE(j.has_value()) << "invalid JSON: " << line.substr(0, 300);
        if (j) {
            docs.push_back(std::move(*j));
        }
    }
    return docs;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80                 ? 1
                        : c >= 0xc2 && c <= 0xdf ? 2
                        : c >= 0xe0 && c <= 0xef ? 3
                        : c >= 0xf0 && c <= 0xf4 ? 4
                                                 : 0;
        if (n == 0 || i + n > s.size()) {
            return false;
        }
        for (std::size_t k = 1; k < n; ++k) {
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) {
                return false;
            }
        }
        i += n;
    }
    return true;
}

std::string hex_address(std::uint64_t v) {
    return "0x" + hex(v);
}

TEST(XpmapJson, matches_the_library_and_is_valid_json) {
    Zoo zoo(1000, "arg with \"quotes\" and \\ and \t");
    ASSERT_TRUE(zoo.ready());
    Frozen t({target_path("threads"), "2"});
    ASSERT_TRUE(t.ready);
    const RunResult r = run_tool(xpmap(), {"--json", zoo.pid_text(), "2", t.pid_text()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto docs = parse_json_lines(r.out);
    ASSERT_EQ(docs.size(), 3u);

    // The kernel thread: no mappings.
    EXPECT_EQ(docs[1]["pid"].u64(), 2u);
    EXPECT_EQ(docs[1]["cmdline"].array.size(), 0u);
    EXPECT_EQ(docs[1]["comm"].text, "kthreadd");
    EXPECT_EQ(docs[1]["mappings"].array.size(), 0u);
    EXPECT_EQ(docs[1]["totals"]["mappings"].u64(), 0u);

    const Json& z = docs[0];
    EXPECT_EQ(z["pid"].u64(), static_cast<std::uint64_t>(zoo.pid()));
    ASSERT_EQ(z["cmdline"].array.size(), 5u);
    EXPECT_EQ(z["cmdline"].array[0].text, target_path("zoo"));
    EXPECT_EQ(z["cmdline"].array[4].text, "arg with \"quotes\" and \\ and \t");
    EXPECT_EQ(z["comm"].text, "zoo");

    auto map = xproc::read_smaps(zoo.pid());
    ASSERT_TRUE(map);
    const auto& mappings = z["mappings"].array;
    ASSERT_EQ(mappings.size(), map->size());
    std::uint64_t rss = 0, size = 0, dirty = 0;
    bool saw_control = false, saw_invalid = false;
    for (std::size_t i = 0; i < mappings.size(); ++i) {
        const Json& j = mappings[i];
        const xproc::Mapping& m = (*map)[i];
        ASSERT_EQ(j["start"].text, hex_address(m.start)) << i;
        EXPECT_EQ(j["end"].text, hex_address(m.end));
        EXPECT_EQ(j["perms"].text, std::string(m.perms.text()));
        EXPECT_EQ(j["offset"].u64(), m.offset);
        EXPECT_EQ(j["inode"].u64(), m.inode);
        EXPECT_EQ(j["size"].u64(), m.size());
        EXPECT_EQ(j["deleted"].boolean, m.deleted);
        // Stable fields, in bytes (Pss and the shared/private split are not stable).
        EXPECT_EQ(j["rss"].u64(), m.smaps.rss_kb * 1024);
        EXPECT_EQ(j["anonymous"].u64(), m.smaps.anonymous_kb * 1024);
        EXPECT_EQ(j["swap"].u64(), m.smaps.swap_kb * 1024);
        EXPECT_EQ(j["locked"].u64(), m.smaps.locked_kb * 1024);
        EXPECT_EQ(j["shared_dirty"].u64() + j["private_dirty"].u64(), m.smaps.dirty_kb() * 1024);
        EXPECT_EQ(j["kernel_page_size"].u64(), m.smaps.kernel_page_size_kb * 1024);
        EXPECT_EQ(j["thp_eligible"].type, m.smaps.thp_eligible < 0 ? Json::Type::null : Json::Type::boolean);
        std::string flags;
        for (const Json& f : j["vm_flags"].array) {
            flags += (flags.empty() ? "" : " ") + f.text;
        }
        EXPECT_EQ(flags, std::string(m.smaps.vm_flags));
        for (const char* key :
             {"pss", "pss_dirty", "shared_clean", "private_clean", "referenced", "ksm", "lazy_free",
              "anon_huge_pages", "shmem_pmd_mapped", "file_pmd_mapped", "shared_hugetlb", "private_hugetlb",
              "swap_pss", "mmu_page_size", "protection_key", "kind", "device", "name"}) {
            EXPECT_NE(j.find(key), nullptr) << key;
        }
        // Names: valid UTF-8 kept byte for byte; anything else is replaced.
        if (valid_utf8(m.name)) {
            EXPECT_EQ(j["name"].text, std::string(m.name));
        } else {
            saw_invalid = true;
            EXPECT_NE(j["name"].text.find("\xef\xbf\xbd"), std::string::npos);
        }
        saw_control = saw_control || m.name.find('\t') != std::string_view::npos;
        rss += j["rss"].u64();
        size += j["size"].u64();
        dirty += j["shared_dirty"].u64() + j["private_dirty"].u64();
    }
    EXPECT_TRUE(saw_control);
    EXPECT_TRUE(saw_invalid);
    EXPECT_EQ(z["totals"]["mappings"].u64(), map->size());
    EXPECT_EQ(z["totals"]["rss"].u64(), rss);
    EXPECT_EQ(z["totals"]["size"].u64(), size);
    EXPECT_EQ(z["totals"]["shared_dirty"].u64() + z["totals"]["private_dirty"].u64(), dirty);

    // -A and --sort/--top select and order the mappings.
    const auto a = addresses_of(zoo.pid());
    ASSERT_EQ(a.size(), 3u);
    const RunResult ranged = run_tool(xpmap(), {"--json", "-A", hex(a[0]) + "," + hex(a[2]), zoo.pid_text()});
    const auto rd = parse_json_lines(ranged.out);
    ASSERT_EQ(rd.size(), 1u);
    ASSERT_FALSE(rd[0]["mappings"].array.empty());
    for (const Json& j : rd[0]["mappings"].array) {
        const std::uint64_t s = std::strtoull(j["start"].text.c_str() + 2, nullptr, 16);
        const std::uint64_t e = std::strtoull(j["end"].text.c_str() + 2, nullptr, 16);
        EXPECT_TRUE(e - 1 >= a[0] && s <= a[2]);
    }
    const RunResult top = run_tool(xpmap(), {"--json", "--sort=rss", "--top=7", zoo.pid_text()});
    const auto td = parse_json_lines(top.out);
    ASSERT_EQ(td.size(), 1u);
    ASSERT_EQ(td[0]["mappings"].array.size(), 7u);
    for (std::size_t i = 1; i < 7; ++i) {
        EXPECT_GE(td[0]["mappings"].array[i - 1]["rss"].u64(), td[0]["mappings"].array[i]["rss"].u64());
    }
}

TEST(XpmapJson, failures_print_no_object) {
    const std::string missing = std::to_string(vanished_pid());
    const RunResult r = run_tool(xpmap(), {"--json", "2", missing});
    EXPECT_EQ(r.exit_code, 42);
    EXPECT_EQ(parse_json_lines(r.out).size(), 1u);
    expect_one_error_line(r, missing);
}

// ---------------------------------------------------------------------------
// --sort, --top, --by-file

struct XRow {
    std::uint64_t address, kbytes, rss, dirty;
    std::string rest;
};

/// The rows of `xpmap -x -q` output.
std::vector<XRow> x_rows(const std::string& out) {
    std::vector<XRow> rows;
    for (const std::string& line : lines_of(out)) {
        if (line.find(":   ") != std::string::npos && line.find(":   ") < 12) {
            continue;  // the process header
        }
        std::istringstream in(line);
        XRow r{};
        std::string addr;
        in >> addr >> r.kbytes >> r.rss >> r.dirty;
        r.address = std::strtoull(addr.c_str(), nullptr, 16);
        std::getline(in, r.rest);
        rows.push_back(r);
    }
    return rows;
}

TEST(XpmapSort, sorts_rows_of_every_format_and_top_cuts) {
    Zoo zoo(600);
    ASSERT_TRUE(zoo.ready());
    const std::string pid = zoo.pid_text();
    const RunResult plain = run_tool(xpmap(), {"-x", "-q", pid});
    ASSERT_EQ(plain.exit_code, 0);
    auto map = xproc::read_maps(zoo.pid());
    ASSERT_TRUE(map);
    std::vector<XRow> base;  // one row per mapping, in address order
    for (const xproc::Mapping& m : *map) {
        base.push_back({m.start, m.size() >> 10, 0, 0, {}});
    }
    ASSERT_GT(base.size(), 600u);

    // By address: the same as without --sort, byte for byte, headers and totals
    // included (on a target without over-long names, which pmap shows oddly and
    // sorted output shows as they are).
    Frozen t({target_path("threads"), "2"});
    ASSERT_TRUE(t.ready);
    for (const auto& options : std::vector<std::vector<std::string>>{{}, {"-x"}, {"-d"}, {"-q"}}) {
        std::vector<std::string> a = options, b = options;
        a.push_back(t.pid_text());
        b.push_back("--sort=address");
        b.push_back(t.pid_text());
        const RunResult ra = run_tool(xpmap(), a);
        const RunResult rb = run_tool(xpmap(), b);
        EXPECT_EQ(ra.exit_code, 0);
        EXPECT_EQ(ra.out, rb.out) << join(options);
    }
    // By rss, by dirty, by size: non-increasing, and the same rows as before.
    for (const auto& [key, column] :
         std::vector<std::pair<std::string, int>>{{"rss", 2}, {"dirty", 3}, {"size", 1}}) {
        const RunResult r = run_tool(xpmap(), {"-x", "-q", "--sort=" + key, pid});
        ASSERT_EQ(r.exit_code, 0);
        const auto rows = x_rows(r.out);
        ASSERT_EQ(rows.size(), base.size()) << key;
        auto value = [column](const XRow& row) {
            return column == 1 ? row.kbytes : column == 2 ? row.rss : row.dirty;
        };
        for (std::size_t i = 1; i < rows.size(); ++i) {
            ASSERT_GE(value(rows[i - 1]), value(rows[i])) << key << " row " << i;
        }
        std::multiset<std::uint64_t> before, after;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            before.insert(base[i].address);
            after.insert(rows[i].address);
        }
        EXPECT_EQ(before, after) << key;
        // --top N: the first N of the same order, and totals over those rows.
        const RunResult t = run_tool(xpmap(), {"-x", "--sort=" + key, "--top", "5", pid});
        const auto tl = lines_of(t.out);
        ASSERT_EQ(tl.size(), 1u + 1 + 5 + 2) << t.out;
        std::uint64_t kb = 0, rss = 0, dirty = 0;
        for (std::size_t i = 0; i < 5; ++i) {
            kb += rows[i].kbytes;
            rss += rows[i].rss;
            dirty += rows[i].dirty;
        }
        char total[128];
        std::snprintf(total, sizeof total, "total kB         %7llu %7llu %7llu",
                      static_cast<unsigned long long>(kb), static_cast<unsigned long long>(rss),
                      static_cast<unsigned long long>(dirty));
        EXPECT_EQ(tl.back(), total) << key;
    }
    // --sort=pss / swap are accepted; a bad key is an error.
    EXPECT_EQ(run_tool(xpmap(), {"--sort=pss", pid}).exit_code, 0);
    EXPECT_EQ(run_tool(xpmap(), {"-d", "--sort=swap", pid}).exit_code, 0);
    const RunResult bad = run_tool(xpmap(), {"--sort=color", pid});
    EXPECT_EQ(bad.exit_code, 1);
    expect_one_error_line(bad, "--sort");
    // --top 0 prints the header and an empty table.
    EXPECT_EQ(run_tool(xpmap(), {"--top=0", pid}).out,
              lines_of(plain.out).front() + "\n total                0K\n");
}

TEST(XpmapByFile, groups_match_the_library) {
    Zoo zoo(400);
    ASSERT_TRUE(zoo.ready());
    auto map = xproc::read_smaps(zoo.pid());
    ASSERT_TRUE(map);
    struct Sum {
        std::uint64_t kb = 0, rss = 0, dirty = 0, swap = 0, count = 0;
    };
    std::map<std::string, Sum> expected;  // by printed name (unprintable bytes as '?')
    for (const xproc::Mapping& m : *map) {
        std::string name = m.name.empty() ? "[anon]" : std::string(m.name);
        for (char& c : name) {
            if (!std::isprint(static_cast<unsigned char>(c))) {
                c = '?';
            }
        }
        Sum& s = expected[name];
        s.kb += m.size() >> 10;
        s.rss += m.smaps.rss_kb;
        s.dirty += m.smaps.dirty_kb();
        s.swap += m.smaps.swap_kb;
        ++s.count;
    }
    const RunResult r = run_tool(xpmap(), {"--by-file", zoo.pid_text()}, {"LC_ALL=C"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto lines = lines_of(r.out);
    ASSERT_GE(lines.size(), 5u);
    EXPECT_EQ(split_words(lines[1]),
              (std::vector<std::string>{"Kbytes", "RSS", "PSS", "Dirty", "Swap", "Count", "Mapping"}));
    const std::size_t name_at = lines[1].find("Mapping");
    std::uint64_t previous = ~std::uint64_t{0}, mappings = 0;
    std::set<std::string> seen;
    for (std::size_t i = 2; i + 2 < lines.size(); ++i) {
        std::istringstream in(lines[i].substr(0, name_at));
        Sum got;
        std::uint64_t pss = 0;
        in >> got.kb >> got.rss >> pss >> got.dirty >> got.swap >> got.count;
        const std::string name = lines[i].substr(name_at);
        seen.insert(name);
        ASSERT_EQ(expected.count(name), 1u) << name;
        const Sum& want = expected[name];
        // Groups are per file (device, inode) and name; zoo's names are unique per file.
        EXPECT_EQ(got.kb, want.kb) << name;
        EXPECT_EQ(got.rss, want.rss) << name;
        EXPECT_EQ(got.dirty, want.dirty) << name;
        EXPECT_EQ(got.count, want.count) << name;
        EXPECT_LE(got.kb, previous) << "largest first";
        previous = got.kb;
        mappings += got.count;
    }
    EXPECT_EQ(seen.size(), expected.size());
    EXPECT_EQ(mappings, map->size());
    EXPECT_EQ(split_words(lines.back()).back(), "total");
    EXPECT_EQ(split_words(lines.back())[5], std::to_string(map->size()));
    // --top and -q
    const RunResult top = run_tool(xpmap(), {"--by-file", "-q", "--sort=rss", "--top=3", zoo.pid_text()});
    EXPECT_EQ(lines_of(top.out).size(), 4u);
}

}  // namespace
