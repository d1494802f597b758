// SPDX-License-Identifier: MIT
// xshm, the built tool, against real segments and real processes
// (tests/targets/shm_holder.c): every subcommand, its output, its exit status,
// and its bad input: one line on stderr, exit 1 for errors, 2 for usage errors,
// no crash, and nothing left in /dev/shm. hexdump output is compared with
// util-linux's `hexdump -C` byte for byte.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "child.hpp"
#include "shm_name.hpp"
#include "xproc/shm.hpp"

namespace {

namespace fs = std::filesystem;
using xproc::test::run;
using xproc::test::RunResult;
using xproc::test::target_path;
using xproc::test::tool_path;
using xproc::test::vanished_pid;

std::string xshm() {
    return tool_path("xshm");
}

RunResult run_xshm(const std::vector<std::string>& args, const std::string& stdin_data = {}) {
    std::vector<std::string> argv = {xshm()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, stdin_data);
}

/// Runs xshm through setpriv(1) with `setpriv_args` (another uid, fewer capabilities).
RunResult run_xshm_as(const std::vector<std::string>& setpriv_args, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/setpriv"};
    argv.insert(argv.end(), setpriv_args.begin(), setpriv_args.end());
    argv.push_back(xshm());
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

bool have(const char* path) {
    return ::access(path, X_OK) == 0;
}

std::string describe(const std::vector<std::string>& args, const RunResult& r) {
    std::string s = "xshm";
    for (const auto& a : args) {
        s += " '" + a + "'";
    }
    return s + " -> exit " + std::to_string(r.exit_code) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

/// stderr is exactly one line starting with "xshm: ".
bool one_error_line(const RunResult& r) {
    return r.err.starts_with("xshm: ") && r.err.size() > 7 && r.err.back() == '\n' &&
           std::count(r.err.begin(), r.err.end(), '\n') == 1;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

using xproc::test::ShmName;

/// Creates `name` with `content` (mode 0600) through the library.
void make_segment(const ShmName& name, const std::string& content, mode_t mode = 0600) {
    auto shm = xproc::SharedMemory::create(name.str(), content.size(), mode);
    ASSERT_TRUE(shm) << shm.error().message();
    if (!content.empty()) {
        std::memcpy(shm->data(), content.data(), content.size());
    }
}

std::string read_whole(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

/// The content shm_holder writes into a memfd/anon/private mapping of `size` bytes.
std::string holder_pattern(std::size_t size) {
    std::string p(size, '\0');
    const std::string text = "xshm test pattern\n";
    p.replace(0, std::min(size, text.size()), text.substr(0, std::min(size, text.size())));
    for (std::size_t i = 0; i < 256 && 4096 + i < size; ++i) {
        p[4096 + i] = static_cast<char>(i);
    }
    return p;
}

/// A running shm_holder: its pid and the address it printed. Killed and reaped
/// by the destructor.
class Holder {
  public:
    Holder(const std::string& kind, const std::string& arg) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            ADD_FAILURE() << "pipe2: " << std::strerror(errno);
            return;
        }
        const std::string path = target_path("shm_holder");
        m_pid = ::fork();
        if (m_pid == 0) {
            ::dup2(fds[1], STDOUT_FILENO);
            ::execl(path.c_str(), path.c_str(), kind.c_str(), arg.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(fds[1]);
        FILE* out = ::fdopen(fds[0], "r");
        char line[64];
        if (std::fgets(line, sizeof line, out) != nullptr) {
            m_address = std::strtoull(line, nullptr, 16);
            m_ready = std::fgets(line, sizeof line, out) != nullptr && std::string(line) == "ready\n";
        }
        std::fclose(out);
        if (!m_ready) {
            ADD_FAILURE() << "shm_holder " << kind << " " << arg << " did not start";
        }
    }
    ~Holder() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            int status = 0;
            while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
    }
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;

    bool ready() const { return m_ready; }
    pid_t pid() const { return m_pid; }
    std::uint64_t address() const { return m_address; }
    std::string pid_text() const { return std::to_string(m_pid); }
    /// The address plus `delta`, as hex with 0x.
    std::string address_text(std::uint64_t delta = 0) const {
        char buf[32];
        std::snprintf(buf, sizeof buf, "0x%" PRIx64, m_address + delta);
        return buf;
    }

  private:
    pid_t m_pid = -1;
    std::uint64_t m_address = 0;
    bool m_ready = false;
};

/// A temporary file path, removed at the end of the test.
class TempPath {
  public:
    explicit TempPath(const std::string& suffix)
        : m_path((fs::temp_directory_path() / ("xproc-test-" + std::to_string(::getpid()) + "-" + suffix))
                     .string()) {
        fs::remove(m_path);
    }
    ~TempPath() {
        std::error_code ec;
        fs::remove(m_path, ec);
    }
    TempPath(const TempPath&) = delete;
    TempPath& operator=(const TempPath&) = delete;
    const std::string& str() const { return m_path; }

  private:
    std::string m_path;
};

/// One table row of `xshm ls` whose first column is `name`, split into words ("" if none).
std::vector<std::string> ls_row(const std::string& ls_out, const std::string& name) {
    std::istringstream in(ls_out);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::vector<std::string> row;
        std::string w;
        while (words >> w) {
            row.push_back(w);
        }
        if (!row.empty() && row.front() == name) {
            return row;
        }
    }
    return {};
}

}  // namespace

// --- usage ------------------------------------------------------------------------

TEST(Xshm, version_and_help_exit_zero) {
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{"--version"}, {"-V"}, {"--help"}, {"-h"}}) {
        const RunResult r = run_xshm(args);
        EXPECT_EQ(r.exit_code, 0) << describe(args, r);
        EXPECT_EQ(r.err, "") << describe(args, r);
    }
    EXPECT_TRUE(run_xshm({"--version"}).out.starts_with("xshm from xproc "));
    for (const std::string sub : {"ls", "create", "rm", "cat", "hexdump", "who", "attach"}) {
        const RunResult r = run_xshm({sub, "--help"});
        EXPECT_EQ(r.exit_code, 0) << describe({sub, "--help"}, r);
        EXPECT_TRUE(contains(r.out, "Usage: xshm " + sub)) << r.out;
        EXPECT_EQ(r.err, "");
    }
}

TEST(Xshm, usage_errors_exit_2_with_one_line) {
    const std::vector<std::vector<std::string>> cases = {
        {},
        {"bogus"},
        {"--bogus"},
        {"ls", "--bogus"},
        {"ls", "extra"},
        {"create"},
        {"create", "x"},
        {"rm"},
        {"cat"},
        {"hexdump"},
        {"hexdump", "x", "1", "2", "3"},
        {"who"},
        {"attach"},
        {"attach", "1"},
        {"attach", "1", "0x1000", "--hexdump", "0"},
        {"attach", "1", "0x1000", "--hexdump", "0", "16", "--out", "/dev/null"},
    };
    for (const auto& args : cases) {
        const RunResult r = run_xshm(args);
        EXPECT_EQ(r.exit_code, 2) << describe(args, r);
        EXPECT_TRUE(one_error_line(r)) << describe(args, r);
        EXPECT_EQ(r.out, "") << describe(args, r);
    }
    EXPECT_TRUE(contains(run_xshm({"bogus"}).err, "'bogus' is not an xshm command"));
}

// --- create -----------------------------------------------------------------------

TEST(Xshm, create_makes_a_segment_with_the_size_and_mode) {
    ShmName name("create");
    const RunResult r = run_xshm({"create", name.bare(), "64K", "--mode", "0640"});
    ASSERT_EQ(r.exit_code, 0) << describe({}, r);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "");
    struct stat st {};
    ASSERT_EQ(::stat(name.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 65536);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST(Xshm, create_accepts_sizes_with_suffixes_and_a_leading_slash) {
    const std::vector<std::pair<std::string, off_t>> sizes = {
        {"0", 0}, {"4096", 4096}, {"0x1000", 4096}, {"2k", 2048}, {"1M", 1 << 20}, {"1G", off_t{1} << 30}};
    int i = 0;
    for (const auto& [text, want] : sizes) {
        ShmName name("size" + std::to_string(i++));
        const RunResult r = run_xshm({"create", name.str(), text});
        ASSERT_EQ(r.exit_code, 0) << describe({"create", name.str(), text}, r);
        struct stat st {};
        ASSERT_EQ(::stat(name.path().c_str(), &st), 0);
        EXPECT_EQ(st.st_size, want) << text;
        EXPECT_EQ(st.st_mode & 07777, 0600u);  // the default
    }
}

TEST(Xshm, create_rejects_bad_sizes_and_modes_and_leaves_nothing) {
    ShmName name("bad-create");
    for (const std::string size :
         {"", "12Q", "-1", "1.5M", "K", "0x", "99999999999999999999", "20000000000T", "1MB"}) {
        const RunResult r = run_xshm({"create", name.bare(), size});
        EXPECT_EQ(r.exit_code, 2) << describe({"create", name.bare(), size}, r);
        EXPECT_TRUE(one_error_line(r)) << r.err;
        EXPECT_FALSE(name.exists()) << size;
    }
    for (const std::string mode : {"999", "abc", "17777", "", "-1"}) {
        const RunResult r = run_xshm({"create", name.bare(), "4096", "--mode", mode});
        EXPECT_EQ(r.exit_code, 2) << describe({"create", name.bare(), "4096", "--mode", mode}, r);
        EXPECT_TRUE(one_error_line(r)) << r.err;
        EXPECT_FALSE(name.exists()) << mode;
    }
}

TEST(Xshm, create_refuses_an_existing_name_and_keeps_it) {
    ShmName name("exists");
    make_segment(name, "keep me");
    const RunResult r = run_xshm({"create", name.bare(), "1M"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(one_error_line(r)) << r.err;
    EXPECT_TRUE(contains(r.err, name.str())) << r.err;
    EXPECT_TRUE(contains(r.err, "EEXIST")) << r.err;
    EXPECT_EQ(read_whole(name.path()), "keep me");
}

TEST(Xshm, create_refuses_an_invalid_name_with_the_rule) {
    const RunResult r = run_xshm({"create", "a/b", "4096"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(one_error_line(r)) << r.err;
    EXPECT_TRUE(contains(r.err, "contains a '/' after the first character")) << r.err;
}

// --- ls ---------------------------------------------------------------------------

TEST(Xshm, ls_lists_size_owner_mode_and_the_processes_using_it) {
    ShmName name("ls");
    make_segment(name, std::string(8192, 'x'), 0640);
    Holder mapper("posix", name.str());
    Holder fd_only("posix-fd", name.str());
    ASSERT_TRUE(mapper.ready() && fd_only.ready());
    const RunResult r = run_xshm({"ls"});
    ASSERT_EQ(r.exit_code, 0) << describe({"ls"}, r);
    EXPECT_TRUE(r.out.starts_with("NAME ")) << r.out;
    const std::vector<std::string> row = ls_row(r.out, name.str());
    ASSERT_EQ(row.size(), 8u) << r.out;
    EXPECT_EQ(row[1], "8192");
    EXPECT_EQ(row[2], ::geteuid() == 0 ? "root" : row[2]);
    EXPECT_EQ(row[4], "0640");
    EXPECT_EQ(row[5], mapper.pid_text());  // MAPPED
    const std::string open_by = std::min(mapper.pid(), fd_only.pid()) == mapper.pid()
                                    ? mapper.pid_text() + "," + fd_only.pid_text()
                                    : fd_only.pid_text() + "," + mapper.pid_text();
    EXPECT_EQ(row[6], open_by);  // OPEN
    EXPECT_EQ(row[7], "-");      // TYPE
}

TEST(Xshm, ls_says_what_would_show_the_processes_it_could_not_inspect) {
    if (::geteuid() != 0 || !have("/usr/bin/setpriv")) {
        GTEST_SKIP() << "needs root and setpriv(1)";
    }
    Holder root_process("memfd", "4096");  // a root process nobody may inspect
    ASSERT_TRUE(root_process.ready());
    const RunResult nobody = run_xshm_as({"--reuid=65534", "--regid=65534", "--clear-groups"}, {"ls"});
    EXPECT_EQ(nobody.exit_code, 0) << describe({"ls as nobody"}, nobody);
    EXPECT_TRUE(one_error_line(nobody)) << nobody.err;
    EXPECT_TRUE(nobody.err.starts_with("xshm: note: ")) << nobody.err;
    EXPECT_TRUE(contains(nobody.err,
                         " processes could not be inspected (permission), so their use of segments "
                         "is not shown; run as root (or with CAP_SYS_PTRACE) to see every process\n"))
        << nobody.err;
    // As root, what still hides a process is a security module or a sandbox (this VM's init is
    // one such): the note, when there is one, must not tell root to run as root.
    const RunResult root = run_xshm({"ls"});
    EXPECT_EQ(root.exit_code, 0) << describe({"ls"}, root);
    EXPECT_FALSE(contains(root.err, "run as root")) << root.err;
    if (!root.err.empty()) {
        EXPECT_TRUE(
            contains(root.err, "refused although we hold CAP_SYS_PTRACE: a security module or sandbox"))
            << root.err;
    }
}

TEST(Xshm, ls_marks_xproc_rings_by_their_magic) {
    ShmName ring("ring");
    ShmName plain("not-ring");
    ShmName tiny("tiny");
    make_segment(ring, std::string("XPROCRNG") + std::string(1016, '\0'));
    make_segment(plain, std::string("XPROCRNX") + std::string(1016, '\0'));
    make_segment(tiny, "XPR");
    const RunResult r = run_xshm({"ls"});
    ASSERT_EQ(r.exit_code, 0) << describe({"ls"}, r);
    const auto ring_row = ls_row(r.out, ring.str());
    ASSERT_EQ(ring_row.size(), 9u) << r.out;  // "xproc ring" is two words
    EXPECT_EQ(ring_row[7] + " " + ring_row[8], "xproc ring");
    EXPECT_EQ(ls_row(r.out, plain.str()).back(), "-");
    EXPECT_EQ(ls_row(r.out, tiny.str()).back(), "-");

    const RunResult j = run_xshm({"ls", "--json"});
    ASSERT_EQ(j.exit_code, 0);
    EXPECT_TRUE(contains(j.out, "{\"name\": \"" + ring.str() + "\", \"size\": 1024, ")) << j.out;
    const auto after = [&](const ShmName& n) { return j.out.substr(j.out.find("\"" + n.str() + "\"")); };
    EXPECT_TRUE(after(ring).find("\"xproc_ring\": true") < after(ring).find('}'));
    EXPECT_TRUE(after(plain).find("\"xproc_ring\": false") < after(plain).find('}'));
}

TEST(Xshm, ls_marks_temporary_names_and_stale_ones) {
    // create_temporary's names: one whose creator lives (us), one whose creator is gone.
    const std::string creating = "/.xproc-new-" + std::to_string(::getpid()) + "-0-lstest000000000a";
    const std::string stale =
        "/.xproc-new-" + std::to_string(xproc::test::vanished_pid()) + "-0-lstest000000000b";
    for (const std::string& n : {creating, stale}) {
        const int fd = ::shm_open(n.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        ASSERT_GE(fd, 0) << n;
        ::close(fd);
    }
    const RunResult r = run_xshm({"ls"});
    const RunResult j = run_xshm({"ls", "--json"});
    ::shm_unlink(creating.c_str());
    ::shm_unlink(stale.c_str());
    ASSERT_EQ(r.exit_code, 0) << describe({"ls"}, r);
    const auto creating_row = ls_row(r.out, creating);
    const auto stale_row = ls_row(r.out, stale);
    ASSERT_EQ(creating_row.size(), 9u) << r.out;
    ASSERT_EQ(stale_row.size(), 9u) << r.out;
    EXPECT_EQ(creating_row[7] + " " + creating_row[8], "xproc temporary");
    EXPECT_EQ(stale_row[7] + " " + stale_row[8], "stale temporary");
    ASSERT_EQ(j.exit_code, 0);
    const auto after = [&](const std::string& n) { return j.out.substr(j.out.find("\"" + n + "\"")); };
    EXPECT_TRUE(after(creating).find("\"xproc_temporary\": \"creating\"") < after(creating).find('}'))
        << j.out;
    EXPECT_TRUE(after(stale).find("\"xproc_temporary\": \"stale\"") < after(stale).find('}')) << j.out;
}

TEST(Xshm, ls_json_is_valid_json_with_every_field) {
    if (!have("/usr/bin/python3")) {
        GTEST_SKIP() << "python3 is not installed";
    }
    ShmName name("json");
    make_segment(name, std::string(100, 'j'), 0604);
    Holder mapper("posix", name.str());
    ASSERT_TRUE(mapper.ready());
    const RunResult r = run_xshm({"ls", "--json"});
    ASSERT_EQ(r.exit_code, 0) << describe({"ls", "--json"}, r);
    const std::string script =
        "import json, sys\n"
        "d = json.load(sys.stdin)\n"
        "s = [x for x in d['segments'] if x['name'] == sys.argv[1]][0]\n"
        "assert s['size'] == 100 and s['mode'] == '0604' and s['regular_file'] is True, s\n"
        "assert s['mapped_by'] == [int(sys.argv[2])] and int(sys.argv[2]) in s['held_open_by'], s\n"
        "assert s['xproc_ring'] is False and isinstance(s['owner'], str) and isinstance(s['gid'], int), s\n"
        "assert isinstance(d['uninspected_processes'], int)\n"
        "print('valid')\n";
    const RunResult check = run({"/usr/bin/python3", "-c", script, name.str(), mapper.pid_text()}, r.out);
    EXPECT_EQ(check.out, "valid\n") << check.err << "\n" << r.out;
}

// --- rm ---------------------------------------------------------------------------

TEST(Xshm, rm_removes_every_name_and_reports_each_failure) {
    ShmName a("rm-a");
    ShmName b("rm-b");
    ShmName missing("rm-missing");
    make_segment(a, "a");
    make_segment(b, "b");
    const RunResult r = run_xshm({"rm", a.bare(), missing.str(), b.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(one_error_line(r)) << r.err;
    EXPECT_TRUE(contains(r.err, "shm_unlink(" + missing.str() + "): No such file or directory (ENOENT)"))
        << r.err;
    EXPECT_FALSE(a.exists());
    EXPECT_FALSE(b.exists());

    make_segment(a, "a");
    const RunResult ok = run_xshm({"rm", a.str()});
    EXPECT_EQ(ok.exit_code, 0) << describe({"rm", a.str()}, ok);
    EXPECT_EQ(ok.err, "");
    EXPECT_FALSE(a.exists());
}

// --- cat --------------------------------------------------------------------------

TEST(Xshm, cat_writes_the_raw_bytes) {
    ShmName name("cat");
    std::string content;
    for (int i = 0; i < 3 * 256 + 7; ++i) {
        content += static_cast<char>(i & 0xff);
    }
    make_segment(name, content);
    const RunResult r = run_xshm({"cat", name.bare()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out, content);

    ShmName empty("cat-empty");
    make_segment(empty, "");
    const RunResult e = run_xshm({"cat", empty.str()});
    EXPECT_EQ(e.exit_code, 0) << e.err;
    EXPECT_EQ(e.out, "");
}

TEST(Xshm, cat_of_a_missing_or_unusual_name_fails_with_one_line) {
    ShmName missing("cat-missing");
    const RunResult r = run_xshm({"cat", missing.bare()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(one_error_line(r)) << r.err;
    EXPECT_TRUE(contains(r.err, "shm_open(" + missing.str() + "): No such file or directory (ENOENT)"))
        << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(missing.exists());

    // A FIFO in /dev/shm must not block the tool, and is not a segment.
    ShmName fifo("cat-fifo");
    ASSERT_EQ(::mkfifo(fifo.path().c_str(), 0600), 0);
    const RunResult f = run_xshm({"cat", fifo.str()});
    EXPECT_EQ(f.exit_code, 1);
    EXPECT_TRUE(one_error_line(f)) << f.err;
    EXPECT_TRUE(contains(f.err, "is not a regular file")) << f.err;

    const RunResult bad = run_xshm({"cat", "a/b"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_TRUE(one_error_line(bad)) << bad.err;
}

// --- hexdump ----------------------------------------------------------------------

TEST(Xshm, hexdump_matches_hexdump_C) {
    if (!have("/usr/bin/hexdump")) {
        GTEST_SKIP() << "hexdump (util-linux/bsdextrautils) is not installed";
    }
    ShmName name("hexdump");
    // Text, a long run of zeros (collapsed to '*'), every byte value, a repeated
    // non-zero line, and a partial last line.
    std::string content = "hello, shared memory\n";
    content += std::string(200, '\0');
    for (int i = 0; i < 256; ++i) {
        content += static_cast<char>(i);
    }
    content += std::string(48, 'A') + "end";
    make_segment(name, content);
    const std::string size = std::to_string(content.size());
    const std::vector<std::vector<std::string>> ranges = {
        {},           {"0"},        {"5"},  {"5", "100"}, {"0x10", "1K"},
        {"21", "16"}, {"100", "1"}, {size}, {"0", "0"},   {"3", "0"}};
    for (const auto& range : ranges) {
        std::vector<std::string> args = {"hexdump", name.bare()};
        args.insert(args.end(), range.begin(), range.end());
        const RunResult ours = run_xshm(args);
        std::vector<std::string> theirs_args = {"/usr/bin/hexdump", "-C"};
        if (!range.empty()) {
            theirs_args.push_back("-s");
            theirs_args.push_back(std::to_string(std::strtoull(range[0].c_str(), nullptr, 0)));
        }
        if (range.size() > 1) {
            theirs_args.push_back("-n");
            theirs_args.push_back(range[1] == "1K" ? "1024" : range[1]);
        }
        theirs_args.push_back(name.path());
        const RunResult theirs = run(theirs_args);
        EXPECT_EQ(ours.exit_code, 0) << describe(args, ours);
        EXPECT_EQ(ours.out, theirs.out) << describe(args, ours);
    }
}

TEST(Xshm, hexdump_of_an_empty_segment_prints_nothing) {
    ShmName name("hexdump-empty");
    make_segment(name, "");
    const RunResult r = run_xshm({"hexdump", name.str()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "");
}

TEST(Xshm, hexdump_offset_past_the_end_is_an_error) {
    ShmName name("hexdump-past");
    make_segment(name, std::string(100, 'x'));
    const RunResult r = run_xshm({"hexdump", name.str(), "101", "4"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(one_error_line(r)) << r.err;
    EXPECT_TRUE(contains(r.err, "hexdump(" + name.str() +
                                    "): offset 101 is past the end of the segment, which "
                                    "is 100 bytes"))
        << r.err;
    EXPECT_EQ(r.out, "");
}

TEST(Xshm, hexdump_bad_numbers_and_missing_names_fail) {
    ShmName name("hexdump-bad");
    make_segment(name, "x");
    for (const std::vector<std::string>& range :
         std::vector<std::vector<std::string>>{{"abc"}, {"-1"}, {"1", "zz"}, {"99999999999999999999999"}}) {
        std::vector<std::string> args = {"hexdump", name.str()};
        args.insert(args.end(), range.begin(), range.end());
        const RunResult r = run_xshm(args);
        EXPECT_EQ(r.exit_code, 2) << describe(args, r);
        EXPECT_TRUE(one_error_line(r)) << r.err;
    }
    ShmName missing("hexdump-missing");
    const RunResult r = run_xshm({"hexdump", missing.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(one_error_line(r)) << r.err;
    EXPECT_TRUE(contains(r.err, "ENOENT")) << r.err;
}

// --- who --------------------------------------------------------------------------

TEST(Xshm, who_lists_the_processes_with_their_command_and_use) {
    ShmName name("who");
    make_segment(name, std::string(4096, 'w'));
    Holder mapper("posix", name.str());
    Holder fd_only("posix-fd", name.str());
    ASSERT_TRUE(mapper.ready() && fd_only.ready());
    const RunResult r = run_xshm({"who", name.bare()});
    ASSERT_EQ(r.exit_code, 0) << describe({"who"}, r);
    std::istringstream in(r.out);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) {
        lines.push_back(line);
    }
    ASSERT_EQ(lines.size(), 3u) << r.out;
    EXPECT_TRUE(contains(lines[0], "PID") && contains(lines[0], "COMMAND") && contains(lines[0], "USE"));
    const auto row_of = [&](pid_t pid) {
        for (const auto& l : lines) {
            std::istringstream w(l);
            std::string first;
            w >> first;
            if (first == std::to_string(pid)) {
                return l;
            }
        }
        return std::string();
    };
    EXPECT_TRUE(contains(row_of(mapper.pid()), "shm_holder")) << r.out;
    EXPECT_TRUE(row_of(mapper.pid()).ends_with("mapped, fd")) << r.out;
    EXPECT_TRUE(contains(row_of(fd_only.pid()), "shm_holder")) << r.out;
    EXPECT_TRUE(row_of(fd_only.pid()).ends_with("  fd")) << r.out;
}

TEST(Xshm, who_of_a_missing_segment_fails_with_one_line) {
    ShmName missing("who-missing");
    const RunResult r = run_xshm({"who", missing.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(one_error_line(r)) << r.err;
    EXPECT_TRUE(contains(r.err, "who(" + missing.str() + "): no such segment in /dev/shm")) << r.err;
    EXPECT_EQ(r.out, "");
}

// --- attach -----------------------------------------------------------------------

TEST(Xshm, attach_shows_what_it_mapped_and_the_first_256_bytes) {
    Holder holder("memfd", "12288");
    ASSERT_TRUE(holder.ready());
    const RunResult r = run_xshm({"attach", holder.pid_text(), holder.address_text(100)});
    ASSERT_EQ(r.exit_code, 0) << describe({"attach"}, r);
    EXPECT_EQ(r.err, "");
    char range[64];
    std::snprintf(range, sizeof range, "%" PRIx64 "-%" PRIx64, holder.address(), holder.address() + 12288);
    EXPECT_TRUE(r.out.starts_with("process  " + holder.pid_text() + " (shm_holder)\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "\nmapping  " + std::string(range) + " rw-s /memfd:xshm-test (deleted)\n"))
        << r.out;
    EXPECT_TRUE(contains(r.out, "\nfile     offset 0 of 12288 bytes, device ")) << r.out;
    EXPECT_TRUE(contains(r.out, "\nmapped   12288 bytes, read-only, at 0x")) << r.out;
    if (::geteuid() == 0) {
        EXPECT_TRUE(contains(r.out, "\nvia      /proc/" + holder.pid_text() + "/map_files/" + range + "\n"))
            << r.out;
    }
    EXPECT_TRUE(
        contains(r.out,
                 "\n\n00000000  78 73 68 6d 20 74 65 73  74 20 70 61 74 74 65 72  |xshm test patter|\n"
                 "00000010  6e 0a 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |n...............|\n"
                 "00000020  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
                 "*\n"
                 "00000100\n"))
        << r.out;
    EXPECT_TRUE(r.out.ends_with("*\n00000100\n")) << r.out;
}

TEST(Xshm, attach_hexdump_and_out_give_the_mappings_bytes) {
    Holder holder("memfd", "8192");
    ASSERT_TRUE(holder.ready());
    TempPath file("attach-out");
    const RunResult saved =
        run_xshm({"attach", holder.pid_text(), holder.address_text(), "--out", file.str()});
    ASSERT_EQ(saved.exit_code, 0) << describe({"attach --out"}, saved);
    EXPECT_EQ(saved.out, "");
    EXPECT_EQ(read_whole(file.str()), holder_pattern(8192));

    const RunResult to_stdout = run_xshm({"attach", holder.pid_text(), holder.address_text(), "-o", "-"});
    ASSERT_EQ(to_stdout.exit_code, 0) << to_stdout.err;
    EXPECT_EQ(to_stdout.out, holder_pattern(8192));

    if (!have("/usr/bin/hexdump")) {
        GTEST_SKIP() << "hexdump is not installed";
    }
    for (const auto& [off, len] : std::vector<std::pair<std::string, std::string>>{
             {"4096", "256"}, {"4000", "300"}, {"8000", "1000"}, {"0", "8192"}, {"8192", "16"}}) {
        const RunResult ours =
            run_xshm({"attach", holder.pid_text(), holder.address_text(4096), "--hexdump", off, len});
        const RunResult theirs = run({"/usr/bin/hexdump", "-C", "-s", off, "-n", len, file.str()});
        EXPECT_EQ(ours.exit_code, 0) << ours.err;
        EXPECT_EQ(ours.out, theirs.out) << off << " " << len;
    }
}

TEST(Xshm, attach_maps_shared_anonymous_memory_and_read_write_on_request) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "shared anonymous memory needs CAP_SYS_ADMIN (map_files)";
    }
    Holder holder("anon", "4096");
    ASSERT_TRUE(holder.ready());
    const RunResult r = run_xshm({"attach", holder.pid_text(), holder.address_text(), "--write"});
    ASSERT_EQ(r.exit_code, 0) << describe({"attach --write"}, r);
    EXPECT_TRUE(contains(r.out, " rw-s /dev/zero (deleted)\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "\nmapped   4096 bytes, read-write, at 0x")) << r.out;
}

TEST(Xshm, attach_without_map_files_capability_uses_pidfd_getfd) {
    if (::geteuid() != 0 || !have("/usr/bin/setpriv")) {
        GTEST_SKIP() << "needs root and setpriv(1)";
    }
    Holder holder("memfd", "4096");
    ASSERT_TRUE(holder.ready());
    const RunResult r = run_xshm_as({"--bounding-set=-sys_admin,-checkpoint_restore"},
                                    {"attach", holder.pid_text(), holder.address_text()});
    ASSERT_EQ(r.exit_code, 0) << describe({"attach (no CAP_SYS_ADMIN)"}, r);
    EXPECT_TRUE(contains(r.out, "\nvia      pidfd_getfd: descriptor ")) << r.out;
    EXPECT_TRUE(contains(r.out, "\nrefused  /proc/" + holder.pid_text() + "/map_files/")) << r.out;
    EXPECT_TRUE(contains(r.out, "needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE")) << r.out;

    Holder anon("anon", "4096");
    ASSERT_TRUE(anon.ready());
    const RunResult refused = run_xshm_as({"--bounding-set=-sys_admin,-checkpoint_restore"},
                                          {"attach", anon.pid_text(), anon.address_text()});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_TRUE(one_error_line(refused)) << refused.err;
    EXPECT_TRUE(contains(refused.err,
                         "so /proc/PID/map_files is the only way to it (Operation not permitted); "
                         "run as root, or grant the tool CAP_CHECKPOINT_RESTORE"))
        << refused.err;
    EXPECT_EQ(refused.out, "");
}

TEST(Xshm, attach_as_another_user_is_refused_with_the_rule) {
    if (::geteuid() != 0 || !have("/usr/bin/setpriv")) {
        GTEST_SKIP() << "needs root and setpriv(1)";
    }
    Holder holder("memfd", "4096");
    ASSERT_TRUE(holder.ready());
    const RunResult r = run_xshm_as({"--reuid=65534", "--regid=65534", "--clear-groups"},
                                    {"attach", holder.pid_text(), holder.address_text()});
    EXPECT_EQ(r.exit_code, 1) << describe({"attach as nobody"}, r);
    EXPECT_TRUE(one_error_line(r)) << r.err;
    EXPECT_TRUE(r.err.starts_with("xshm: open(/proc/" + holder.pid_text() + "/maps) [pid " +
                                  holder.pid_text() + ", " + holder.address_text() + "]: process " +
                                  holder.pid_text() + " (shm_holder) runs as uid 0"))
        << r.err;
    EXPECT_TRUE(contains(r.err, "you are uid 65534 without CAP_SYS_PTRACE")) << r.err;
    EXPECT_EQ(r.out, "");
}

TEST(Xshm, attach_bad_input_never_crashes) {
    Holder shared("memfd", "4096");
    Holder priv("private", "4096");
    ASSERT_TRUE(shared.ready() && priv.ready());
    const pid_t gone = vanished_pid();
    struct Case {
        std::vector<std::string> args;
        int status;
        std::string says;
    };
    const std::vector<Case> cases = {
        {{"attach", "abc", "0x1000"}, 2, "'abc' is not a process id"},
        {{"attach", "0", "0x1000"}, 2, "'0' is not a process id"},
        {{"attach", "-5", "0x1000"}, 2, ""},
        {{"attach", "99999999999", "0x1000"}, 2, "is not a process id"},
        {{"attach", shared.pid_text(), "zz"}, 2, "'zz' is not an address"},
        {{"attach", shared.pid_text(), "0x"}, 2, "is not an address"},
        {{"attach", shared.pid_text(), "12345678901234567890"}, 2, "is not an address"},
        {{"attach", shared.pid_text(), shared.address_text(), "--hexdump", "x", "1"}, 2, "--hexdump takes"},
        {{"attach", std::to_string(gone), "0x1000"}, 1, "No such process"},
        {{"attach", shared.pid_text(), "0x1000"}, 1, "the address is not inside any mapping of process"},
        {{"attach", shared.pid_text(), "ffffffffffffffff"}, 1, "not inside any mapping"},
        {{"attach", priv.pid_text(), priv.address_text()}, 1, "the mapping is private (rw-p, MAP_PRIVATE)"},
        {{"attach", shared.pid_text(), shared.address_text(), "--hexdump", "4097", "1"},
         1,
         "offset 4097 is past the end of what was mapped, which is 4096 bytes"},
        {{"attach", shared.pid_text(), shared.address_text(), "--out", "/nonexistent-dir/file"},
         1,
         "open(/nonexistent-dir/file)"},
    };
    for (const Case& c : cases) {
        const RunResult r = run_xshm(c.args);
        EXPECT_EQ(r.exit_code, c.status) << describe(c.args, r);
        EXPECT_TRUE(one_error_line(r)) << describe(c.args, r);
        EXPECT_TRUE(contains(r.err, c.says)) << describe(c.args, r);
        EXPECT_EQ(r.out, "") << describe(c.args, r);
    }
}
