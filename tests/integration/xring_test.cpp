// SPDX-License-Identifier: MIT
// xring, the built tool, in real processes: create/rm, pub | sub of lines and of binary
// chunks, the order in which the sides start, --count, end of stream, the death of either
// side (kill -9) and the take-over of its role, exclusive roles, signals (a clean leave,
// exit 128+N), a closed stdout, broadcast laps, stat (text, --json, --watch) and check on
// sound and corrupted segments, of rings and of xproc::message_queue segments, and bad input for every
// subcommand: one line on stderr, exit 1 for errors, 2 for usage, 3 for a dead peer, no crash, nothing left
// in /dev/shm.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "child.hpp"
#include "shm_name.hpp"
#include "xproc/message_queue.hpp"
#include "xproc/ring/layout.hpp"

namespace {

using namespace std::chrono_literals;
using xproc::test::run;
using xproc::test::RunResult;
using xproc::test::tool_path;
using Clock = std::chrono::steady_clock;

std::string xring() {
    return tool_path("xring");
}

RunResult run_xring(const std::vector<std::string>& args, const std::string& stdin_data = {}) {
    std::vector<std::string> argv = {xring()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, stdin_data);
}

std::string describe(const std::vector<std::string>& args, const RunResult& r) {
    std::string s = "xring";
    for (const auto& a : args) {
        s += " '" + a + "'";
    }
    return s + " -> exit " + std::to_string(r.exit_code) + "\nstdout: " + r.out.substr(0, 2000) +
           "\nstderr: " + r.err;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

/// stderr is exactly one line starting with "xring".
bool one_error_line(const std::string& err) {
    return err.starts_with("xring") && err.size() > 8 && err.back() == '\n' &&
           std::count(err.begin(), err.end(), '\n') == 1;
}

/// A ring name unique to this run, `/xproc-test-<pid>-xring-<tag>`, removed before and after.
struct RingName : xproc::test::ShmName {
    explicit RingName(const std::string& tag) : ShmName("xring-" + tag) {}
};

/// Waits until `pred` holds or `timeout` passes; returns the last value of `pred`.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms) {
    const auto end = Clock::now() + timeout;
    while (Clock::now() < end) {
        if (pred()) {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

/// An in-memory file (memfd) a child reads from or writes to.
class MemFile {
  public:
    MemFile() : m_fd(::memfd_create("xring-test", MFD_CLOEXEC)) {}
    ~MemFile() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
    }
    MemFile(const MemFile&) = delete;
    MemFile& operator=(const MemFile&) = delete;
    int fd() const { return m_fd; }
    void set(const std::string& data) {
        EXPECT_EQ(::ftruncate(m_fd, 0), 0);
        std::size_t done = 0;
        while (done < data.size()) {
            const ssize_t n =
                ::pwrite(m_fd, data.data() + done, data.size() - done, static_cast<off_t>(done));
            ASSERT_GT(n, 0);
            done += static_cast<std::size_t>(n);
        }
        ::lseek(m_fd, 0, SEEK_SET);
    }
    std::string get() const {
        std::string out;
        char buf[65536];
        off_t off = 0;
        for (;;) {
            const ssize_t n = ::pread(m_fd, buf, sizeof buf, off);
            if (n <= 0) {
                break;
            }
            out.append(buf, static_cast<std::size_t>(n));
            off += n;
        }
        return out;
    }

  private:
    int m_fd;
};

/// A running xring. stdin: /dev/null, a memfd holding `input`, or a pipe we write to;
/// stdout and stderr go to memfds (or stdout to a pipe we read). Killed (SIGKILL) and
/// reaped by the destructor.
class Proc {
  public:
    enum class In { null, data, pipe };
    enum class Out { file, pipe };

    explicit Proc(const std::vector<std::string>& args, In in = In::null, const std::string& input = {},
                  Out out = Out::file) {
        if (in == In::data) {
            m_in_file.set(input);
        }
        int in_pipe[2] = {-1, -1};
        int out_pipe[2] = {-1, -1};
        if (in == In::pipe) {
            EXPECT_EQ(::pipe2(in_pipe, O_CLOEXEC), 0);
        }
        if (out == Out::pipe) {
            EXPECT_EQ(::pipe2(out_pipe, O_CLOEXEC), 0);
        }
        std::vector<std::string> argv = {xring()};
        argv.insert(argv.end(), args.begin(), args.end());
        m_pid = ::fork();
        if (m_pid == 0) {
            const int in_fd = in == In::null   ? ::open("/dev/null", O_RDONLY)
                              : in == In::data ? m_in_file.fd()
                                               : in_pipe[0];
            ::dup2(in_fd, STDIN_FILENO);
            ::dup2(out == Out::pipe ? out_pipe[1] : m_out.fd(), STDOUT_FILENO);
            ::dup2(m_err.fd(), STDERR_FILENO);
            std::vector<char*> cargs;
            for (auto& a : argv) {
                cargs.push_back(a.data());
            }
            cargs.push_back(nullptr);
            ::signal(SIGPIPE, SIG_DFL);
            ::execv(cargs[0], cargs.data());
            _exit(127);
        }
        if (in == In::pipe) {
            ::close(in_pipe[0]);
            m_stdin = in_pipe[1];
        }
        if (out == Out::pipe) {
            ::close(out_pipe[1]);
            m_stdout = out_pipe[0];
        }
    }
    ~Proc() {
        close_stdin();
        close_stdout();
        kill(SIGKILL);
        wait(10s);
    }
    Proc(const Proc&) = delete;
    Proc& operator=(const Proc&) = delete;

    pid_t pid() const { return m_pid; }
    void write(std::string_view data) {
        ::signal(SIGPIPE, SIG_IGN);
        while (!data.empty()) {
            const ssize_t n = ::write(m_stdin, data.data(), data.size());
            if (n < 0 && errno == EINTR) {
                continue;
            }
            ASSERT_GT(n, 0) << std::strerror(errno);
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    void close_stdin() {
        if (m_stdin >= 0) {
            ::close(m_stdin);
            m_stdin = -1;
        }
    }
    /// Out::pipe: reads one line (without its newline), waiting up to `timeout`.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout = 5000ms) {
        std::string line;
        const auto end = Clock::now() + timeout;
        while (Clock::now() < end) {
            struct pollfd pfd {
                m_stdout, POLLIN, 0
            };
            if (::poll(&pfd, 1, 50) != 1) {
                continue;
            }
            char c;
            if (::read(m_stdout, &c, 1) != 1) {
                return std::nullopt;
            }
            if (c == '\n') {
                return line;
            }
            line += c;
        }
        return std::nullopt;
    }
    void close_stdout() {
        if (m_stdout >= 0) {
            ::close(m_stdout);
            m_stdout = -1;
        }
    }
    void kill(int signo) {
        if (m_pid > 0 && !m_status) {
            ::kill(m_pid, signo);
        }
    }
    /// The exit status (128 + signal when killed), or nullopt while it still runs after `timeout`.
    std::optional<int> wait(std::chrono::milliseconds timeout) {
        const auto end = Clock::now() + timeout;
        while (!m_status && m_pid > 0) {
            int status = 0;
            const pid_t r = ::waitpid(m_pid, &status, WNOHANG);
            if (r == m_pid) {
                m_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                break;
            }
            if (r < 0 && errno != EINTR) {
                break;
            }
            if (Clock::now() >= end) {
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        return m_status;
    }
    bool running() { return !wait(0ms).has_value(); }
    std::string out() const { return m_out.get(); }
    std::string err() const { return m_err.get(); }

  private:
    MemFile m_in_file;
    MemFile m_out;
    MemFile m_err;
    pid_t m_pid = -1;
    int m_stdin = -1;
    int m_stdout = -1;
    std::optional<int> m_status;
};

/// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15).
std::uint64_t cpu_ticks(pid_t pid) {
    std::string stat;
    if (FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r")) {
        char buf[1024];
        const std::size_t n = std::fread(buf, 1, sizeof buf, f);
        stat.assign(buf, n);
        std::fclose(f);
    }
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos) {
        return 0;
    }
    std::vector<std::string> fields;  // from field 3 (state) on
    std::size_t pos = paren + 2;
    while (pos < stat.size()) {
        const std::size_t sp = stat.find(' ', pos);
        fields.push_back(stat.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos));
        pos = sp == std::string::npos ? stat.size() : sp + 1;
    }
    return fields.size() > 12 ? std::stoull(fields[11]) + std::stoull(fields[12]) : 0;
}

// ---------------------------------------------------------------------------------------
// A small JSON reader for `stat --json`.

struct Json;
using JsonObject = std::map<std::string, Json, std::less<>>;
using JsonArray = std::vector<Json>;
struct Json {
    std::variant<std::nullptr_t, bool, double, std::string, JsonArray, JsonObject> v;
    bool is_null() const { return std::holds_alternative<std::nullptr_t>(v); }
    double num() const { return std::get<double>(v); }
    const std::string& str() const { return std::get<std::string>(v); }
    const JsonArray& arr() const { return std::get<JsonArray>(v); }
    const JsonObject& obj() const { return std::get<JsonObject>(v); }
    const Json& operator[](std::string_view key) const {
        static const Json missing;
        const auto& o = obj();
        const auto it = o.find(key);
        return it == o.end() ? missing : it->second;
    }
    bool has(std::string_view key) const { return obj().count(key) != 0; }
};

class JsonParser {
  public:
    explicit JsonParser(std::string_view s) : m_s(s) {}
    std::optional<Json> document() {
        auto j = value();
        skip();
        if (!j || m_i != m_s.size()) {
            return std::nullopt;
        }
        return j;
    }

  private:
    void skip() {
        while (m_i < m_s.size() &&
               (m_s[m_i] == ' ' || m_s[m_i] == '\n' || m_s[m_i] == '\t' || m_s[m_i] == '\r')) {
            ++m_i;
        }
    }
    bool literal(std::string_view word) {
        if (m_s.substr(m_i, word.size()) == word) {
            m_i += word.size();
            return true;
        }
        return false;
    }
    std::optional<Json> value() {
        skip();
        if (m_i >= m_s.size()) {
            return std::nullopt;
        }
        const char c = m_s[m_i];
        if (c == '{') {
            ++m_i;
            JsonObject o;
            skip();
            if (m_i < m_s.size() && m_s[m_i] == '}') {
                ++m_i;
                return Json{o};
            }
            for (;;) {
                skip();
                std::string key;
                if (m_i >= m_s.size() || m_s[m_i] != '"' || !string(key)) {
                    return std::nullopt;
                }
                skip();
                if (m_i >= m_s.size() || m_s[m_i++] != ':') {
                    return std::nullopt;
                }
                auto v = value();
                if (!v) {
                    return std::nullopt;
                }
                o.emplace(std::move(key), std::move(*v));
                skip();
                if (m_i < m_s.size() && m_s[m_i] == ',') {
                    ++m_i;
                    continue;
                }
                if (m_i < m_s.size() && m_s[m_i] == '}') {
                    ++m_i;
                    return Json{o};
                }
                return std::nullopt;
            }
        }
        if (c == '[') {
            ++m_i;
            JsonArray a;
            skip();
            if (m_i < m_s.size() && m_s[m_i] == ']') {
                ++m_i;
                return Json{a};
            }
            for (;;) {
                auto v = value();
                if (!v) {
                    return std::nullopt;
                }
                a.push_back(std::move(*v));
                skip();
                if (m_i < m_s.size() && m_s[m_i] == ',') {
                    ++m_i;
                    continue;
                }
                if (m_i < m_s.size() && m_s[m_i] == ']') {
                    ++m_i;
                    return Json{a};
                }
                return std::nullopt;
            }
        }
        if (c == '"') {
            std::string s;
            if (!string(s)) {
                return std::nullopt;
            }
            return Json{s};
        }
        if (literal("true")) {
            return Json{true};
        }
        if (literal("false")) {
            return Json{false};
        }
        if (literal("null")) {
            return Json{nullptr};
        }
        const std::size_t start = m_i;
        while (m_i < m_s.size() && std::strchr("+-0123456789.eE", m_s[m_i]) != nullptr) {
            ++m_i;
        }
        if (start == m_i) {
            return std::nullopt;
        }
        return Json{std::stod(std::string(m_s.substr(start, m_i - start)))};
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
                    out += static_cast<char>(std::stoi(std::string(m_s.substr(m_i, 4)), nullptr, 16));
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

Json stat_json(const RingName& ring) {
    const RunResult r = run_xring({"stat", ring.str(), "--json"});
    EXPECT_EQ(r.exit_code, 0) << describe({"stat", ring.str(), "--json"}, r);
    auto j = JsonParser(r.out).document();
    EXPECT_TRUE(j.has_value()) << "invalid JSON: " << r.out;
    return j ? *j : Json{JsonObject{}};
}

void create(const RingName& ring, std::vector<std::string> options = {}) {
    std::vector<std::string> args = {"create", ring.str()};
    args.insert(args.end(), options.begin(), options.end());
    const RunResult r = run_xring(args);
    ASSERT_EQ(r.exit_code, 0) << describe(args, r);
    ASSERT_TRUE(ring.exists());
}

std::string numbered_lines(std::size_t count, std::size_t from = 1) {
    std::string s;
    for (std::size_t i = from; i < from + count; ++i) {
        s += std::to_string(i) + "\n";
    }
    return s;
}

/// A line of `stat`'s text output.
std::string stat_line(const std::string& key, const std::string& value) {
    return "\n  " + key + std::string(19 - key.size(), ' ') + value + "\n";
}

/// The state of a role in `stat --json`.
std::string role_state(const RingName& ring, const char* role) {
    const Json j = stat_json(ring);
    return j.has(role) && !j[role].is_null() ? j[role]["state"].str() : "?";
}

// ---------------------------------------------------------------------------------------
// create / rm

TEST(XringCreate, creates_with_the_options_given_and_rm_removes_it) {
    RingName ring("create");
    create(ring, {"--capacity", "3000", "--max-record", "100", "--mode", "640", "--kind", "mpsc"});
    struct stat st {};
    ASSERT_EQ(::stat(ring.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    const Json j = stat_json(ring);
    EXPECT_EQ(j["kind"].str(), "mpsc");
    EXPECT_EQ(j["capacity"].num(), 4096);  // rounded up to a power of two
    EXPECT_EQ(j["max_record"].num(), 100);
    EXPECT_EQ(j["creator_pid"].num() > 0, true);

    const RunResult again = run_xring({"create", ring.bare()});
    EXPECT_EQ(again.exit_code, 1) << describe({"create"}, again);
    EXPECT_TRUE(one_error_line(again.err)) << again.err;
    EXPECT_TRUE(contains(again.err, ring.str()) && contains(again.err, "already exists")) << again.err;

    const RunResult rm = run_xring({"rm", ring.bare()});  // without the slash
    EXPECT_EQ(rm.exit_code, 0) << describe({"rm"}, rm);
    EXPECT_FALSE(ring.exists());
    const RunResult rm2 = run_xring({"rm", ring.str()});
    EXPECT_EQ(rm2.exit_code, 1);
    EXPECT_TRUE(one_error_line(rm2.err)) << rm2.err;
    EXPECT_TRUE(contains(rm2.err, "does not exist")) << rm2.err;
}

TEST(XringCreate, sizes_take_suffixes_and_the_defaults_are_sane) {
    RingName a("sizes-a");
    RingName b("sizes-b");
    create(a, {"--capacity", "64K"});
    create(b);
    const Json ja = stat_json(a);
    EXPECT_EQ(ja["capacity"].num(), 65536);
    EXPECT_EQ(ja["max_record"].num(), 32768 - 8);  // a record of half the capacity
    EXPECT_EQ(ja["kind"].str(), "spsc");
    const Json jb = stat_json(b);
    EXPECT_EQ(jb["capacity"].num(), 1 << 20);
    struct stat st {};
    ASSERT_EQ(::stat(b.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    const RunResult rm = run_xring({"rm", a.str(), b.bare()});
    EXPECT_EQ(rm.exit_code, 0) << rm.err;
    EXPECT_FALSE(a.exists());
    EXPECT_FALSE(b.exists());
}

TEST(XringCreate, rm_refuses_a_segment_that_is_not_a_ring) {
    RingName plain("rm-plain");
    {
        const int fd = ::shm_open(plain.str().c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, 8192), 0);
        ::close(fd);
    }
    const RunResult r = run_xring({"rm", plain.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(one_error_line(r.err)) << r.err;
    EXPECT_TRUE(contains(r.err, "not an xproc ring")) << r.err;
    EXPECT_TRUE(plain.exists());
}

// ---------------------------------------------------------------------------------------
// pub | sub

TEST(XringPubSub, a_hundred_thousand_lines_through_a_pipe_arrive_exactly) {
    RingName ring("lines");
    create(ring, {"--capacity", "64K"});
    std::string input;
    std::mt19937 rng(42);
    for (int i = 0; i < 100'000; ++i) {
        // Varied lengths (empty lines too) so that records wrap at every offset.
        const std::size_t len = rng() % 40;
        input += std::to_string(i) + ":" + std::string(len, static_cast<char>('a' + i % 26)) + "\n";
        if (i % 1000 == 0) {
            input += "\n";
        }
    }
    Proc sub({"sub", ring.str()});
    Proc pub({"pub", ring.str()}, Proc::In::pipe);
    std::thread feeder([&] {
        pub.write(input);
        pub.close_stdin();
    });
    feeder.join();
    ASSERT_EQ(pub.wait(30s), 0) << pub.err();
    ASSERT_EQ(sub.wait(30s), 0) << sub.err();
    EXPECT_EQ(sub.out().size(), input.size());
    EXPECT_TRUE(sub.out() == input) << "output differs";
    EXPECT_EQ(sub.err(), "");
    EXPECT_EQ(pub.err(), "");
    const Json j = stat_json(ring);
    EXPECT_EQ(j["messages"].num(), 100'000 + 100);
    EXPECT_EQ(j["fill_bytes"].num(), 0);
    EXPECT_EQ(j["producer"]["state"].str(), "none");  // both left cleanly
    EXPECT_EQ(j["consumer"]["state"].str(), "none");
    const RunResult check = run_xring({"check", ring.str()});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

TEST(XringPubSub, a_last_line_without_newline_is_a_message) {
    RingName ring("lastline");
    create(ring);
    const RunResult pub = run_xring({"pub", ring.str()}, "a\n\nb\nc");
    ASSERT_EQ(pub.exit_code, 0) << pub.err;
    const RunResult sub = run_xring({"sub", ring.str()});
    EXPECT_EQ(sub.exit_code, 0) << sub.err;
    EXPECT_EQ(sub.out, "a\n\nb\nc\n");
}

TEST(XringPubSub, chunked_binary_data_round_trips_with_raw) {
    RingName ring("binary");
    create(ring, {"--capacity", "64K"});
    std::string data(3 * 1024 * 1024 + 123, '\0');
    std::mt19937_64 rng(7);
    for (char& c : data) {
        c = static_cast<char>(rng());
    }
    Proc sub({"sub", ring.str(), "--raw"});
    Proc pub({"pub", ring.str(), "--chunk", "4K"}, Proc::In::data, data);
    ASSERT_EQ(pub.wait(30s), 0) << pub.err();
    ASSERT_EQ(sub.wait(30s), 0) << sub.err();
    const std::string out = sub.out();
    EXPECT_EQ(out.size(), data.size());
    EXPECT_TRUE(out == data) << "binary output differs";
    const Json j = stat_json(ring);
    EXPECT_EQ(j["messages"].num(), (data.size() + 4095) / 4096);  // fixed chunks, a shorter last one
    EXPECT_EQ(j["bytes"].num(), data.size());
}

TEST(XringPubSub, sub_started_before_pub_waits_then_gets_everything) {
    RingName ring("sub-first");
    create(ring);
    Proc sub({"sub", ring.str()});
    ASSERT_TRUE(eventually([&] { return role_state(ring, "consumer") == "alive"; }));
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(sub.running()) << "sub did not wait for a producer: " << sub.err();
    const std::string input = numbered_lines(1000);
    const RunResult pub = run_xring({"pub", ring.str()}, input);
    EXPECT_EQ(pub.exit_code, 0) << pub.err;
    ASSERT_EQ(sub.wait(10s), 0) << sub.err();
    EXPECT_EQ(sub.out(), input);
}

TEST(XringPubSub, pub_started_before_sub_fills_the_ring_and_waits) {
    RingName ring("pub-first");
    create(ring, {"--capacity", "4K"});
    const std::string input = numbered_lines(5000);  // 5000 records of 16 bytes: 20 rings' worth
    Proc pub({"pub", ring.str()}, Proc::In::data, input);
    ASSERT_TRUE(eventually([&] { return stat_json(ring)["fill_bytes"].num() >= 4096 - 16; }))
        << "the ring did not fill up";
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(pub.running()) << "pub did not wait for room: " << pub.err();
    const Json j = stat_json(ring);
    EXPECT_EQ(j["producer"]["state"].str(), "alive");
    EXPECT_EQ(j["producer"]["pid"].num(), pub.pid());
    EXPECT_EQ(j["consumer"]["state"].str(), "none");
    EXPECT_GE(j["full_waits"].num(), 1);
    EXPECT_GT(j["fill_percent"].num(), 99.0);
    const RunResult sub = run_xring({"sub", ring.str()});
    EXPECT_EQ(sub.exit_code, 0) << sub.err;
    EXPECT_EQ(sub.out, input);
    EXPECT_EQ(pub.wait(10s), 0) << pub.err();
}

TEST(XringPubSub, count_exits_after_n_messages_and_leaves_the_rest) {
    RingName ring("count");
    create(ring);
    ASSERT_EQ(run_xring({"pub", ring.str()}, numbered_lines(10)).exit_code, 0);
    const RunResult first = run_xring({"sub", ring.str(), "--count", "3"});
    EXPECT_EQ(first.exit_code, 0) << first.err;
    EXPECT_EQ(first.out, "1\n2\n3\n");
    const RunResult rest = run_xring({"sub", ring.str()});
    EXPECT_EQ(rest.exit_code, 0) << rest.err;
    EXPECT_EQ(rest.out, numbered_lines(7, 4));
}

TEST(XringPubSub, empty_input_is_just_the_end_of_the_stream) {
    RingName ring("empty-input");
    create(ring);
    const RunResult pub = run_xring({"pub", ring.str()});
    EXPECT_EQ(pub.exit_code, 0) << pub.err;
    const Json j = stat_json(ring);
    EXPECT_EQ(j["messages"].num(), 0);
    EXPECT_EQ(j["fill_bytes"].num(), 8);  // the end-of-stream record
    const RunResult sub = run_xring({"sub", ring.str()});
    EXPECT_EQ(sub.exit_code, 0) << sub.err;
    EXPECT_EQ(sub.out, "");
}

TEST(XringPubSub, a_line_longer_than_max_record_is_refused_with_what_to_do) {
    RingName ring("toolong");
    create(ring, {"--max-record", "100"});
    const RunResult pub = run_xring({"pub", ring.str()}, "short\n" + std::string(300, 'x') + "\nnever\n");
    EXPECT_EQ(pub.exit_code, 1) << pub.err;
    EXPECT_TRUE(one_error_line(pub.err)) << pub.err;
    EXPECT_TRUE(contains(pub.err, "line 2") && contains(pub.err, "max record (100 bytes)") &&
                contains(pub.err, "--max-record"))
        << pub.err;
    const RunResult sub = run_xring({"sub", ring.str(), "--count", "1"});
    EXPECT_EQ(sub.out, "short\n");
    const RunResult chunk = run_xring({"pub", ring.str(), "--chunk", "200"}, "data");
    EXPECT_EQ(chunk.exit_code, 2) << chunk.err;
    EXPECT_TRUE(one_error_line(chunk.err)) << chunk.err;
}

TEST(XringPubSub, pub_create_makes_the_ring_and_reuses_an_existing_one) {
    RingName ring("pub-create");
    const RunResult first =
        run_xring({"pub", ring.bare(), "--create", "--capacity", "8K", "--kind", "spsc"}, "one\n");
    EXPECT_EQ(first.exit_code, 0) << first.err;
    ASSERT_TRUE(ring.exists());
    EXPECT_EQ(stat_json(ring)["capacity"].num(), 8192);
    const RunResult second = run_xring({"pub", ring.str(), "--create", "--capacity", "1M"}, "two\n");
    EXPECT_EQ(second.exit_code, 0) << second.err;
    EXPECT_EQ(stat_json(ring)["capacity"].num(), 8192);  // used as it is
    // Each pub ended its stream: one sub per stream.
    const RunResult sub1 = run_xring({"sub", ring.str()});
    EXPECT_EQ(sub1.exit_code, 0) << sub1.err;
    EXPECT_EQ(sub1.out, "one\n");
    const RunResult sub2 = run_xring({"sub", ring.str()});
    EXPECT_EQ(sub2.exit_code, 0) << sub2.err;
    EXPECT_EQ(sub2.out, "two\n");
}

TEST(XringPubSub, mpsc_ring_takes_lines_from_two_producers_and_ends_with_the_last) {
    RingName ring("mpsc");
    create(ring, {"--kind", "mpsc", "--capacity", "8K"});
    Proc sub({"sub", ring.str()});
    Proc pa({"pub", ring.str()}, Proc::In::pipe);
    Proc pb({"pub", ring.str()}, Proc::In::pipe);
    ASSERT_TRUE(eventually([&] { return stat_json(ring)["peers"].arr().size() == 2; }));
    std::string a, b;
    for (int i = 0; i < 2000; ++i) {
        a += "a" + std::to_string(i) + "\n";
        b += "b" + std::to_string(i) + "\n";
    }
    std::thread ta([&] {
        pa.write(a);
        pa.close_stdin();
    });
    pb.write(b.substr(0, b.size() / 2));
    ta.join();
    EXPECT_EQ(pa.wait(20s), 0) << pa.err();
    // One producer's end of stream does not end the sub while another one is attached.
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(sub.running()) << sub.err();
    pb.write(b.substr(b.size() / 2));
    pb.close_stdin();
    EXPECT_EQ(pb.wait(20s), 0) << pb.err();
    ASSERT_EQ(sub.wait(20s), 0) << sub.err();
    // Each producer's lines arrive in its order; together, all of them.
    std::vector<std::string> from_a, from_b;
    std::string line;
    for (const char c : sub.out()) {
        if (c != '\n') {
            line += c;
            continue;
        }
        (line[0] == 'a' ? from_a : from_b).push_back(line);
        line.clear();
    }
    ASSERT_EQ(from_a.size(), 2000u);
    ASSERT_EQ(from_b.size(), 2000u);
    for (int i = 0; i < 2000; ++i) {
        EXPECT_EQ(from_a[static_cast<std::size_t>(i)], "a" + std::to_string(i));
        EXPECT_EQ(from_b[static_cast<std::size_t>(i)], "b" + std::to_string(i));
    }
    const RunResult check = run_xring({"check", ring.str()});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

// ---------------------------------------------------------------------------------------
// Peers: death, take-over, exclusive roles

TEST(XringPeers, pub_exits_3_naming_the_consumer_when_it_is_killed) {
    RingName ring("sub-killed");
    create(ring, {"--capacity", "4K"});
    Proc sub({"sub", ring.str()});
    ASSERT_TRUE(eventually([&] { return role_state(ring, "consumer") == "alive"; }));
    // Stop the reader so that the ring fills and pub blocks, then kill it.
    ASSERT_EQ(::kill(sub.pid(), SIGSTOP), 0);
    Proc pub({"pub", ring.str()}, Proc::In::data, numbered_lines(20'000));
    ASSERT_TRUE(eventually([&] { return stat_json(ring)["fill_percent"].num() > 99; }));
    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(pub.running()) << pub.err();
    sub.kill(SIGKILL);
    ASSERT_EQ(sub.wait(5s), 128 + SIGKILL);
    const auto start = Clock::now();
    const auto status = pub.wait(5s);
    ASSERT_TRUE(status.has_value()) << "pub hangs after its consumer died";
    EXPECT_EQ(*status, 3) << pub.err();
    EXPECT_LT(Clock::now() - start, 3s);
    EXPECT_TRUE(one_error_line(pub.err())) << pub.err();
    EXPECT_TRUE(contains(pub.err(), "consumer (pid " + std::to_string(sub.pid()) + ") died")) << pub.err();
    EXPECT_EQ(role_state(ring, "consumer"), "dead");
    EXPECT_EQ(role_state(ring, "producer"), "none");  // pub left cleanly
}

TEST(XringPeers, sub_exits_3_naming_the_producer_when_it_is_killed) {
    RingName ring("pub-killed");
    create(ring);
    Proc pub({"pub", ring.str()}, Proc::In::pipe);
    pub.write("one\ntwo\n");
    Proc sub({"sub", ring.str()});
    ASSERT_TRUE(eventually([&] { return sub.out() == "one\ntwo\n"; })) << sub.out();
    pub.kill(SIGKILL);
    ASSERT_EQ(pub.wait(5s), 128 + SIGKILL);
    const auto status = sub.wait(5s);
    ASSERT_TRUE(status.has_value()) << "sub hangs after its producer died";
    EXPECT_EQ(*status, 3) << sub.err();
    EXPECT_TRUE(one_error_line(sub.err())) << sub.err();
    EXPECT_TRUE(contains(sub.err(), "producer (pid " + std::to_string(pub.pid()) + ") died")) << sub.err();
    EXPECT_TRUE(contains(sub.err(), "--follow")) << sub.err();
    EXPECT_EQ(sub.out(), "one\ntwo\n");
}

TEST(XringPeers, sub_follow_outlives_a_dead_producer_and_reads_the_next_one) {
    RingName ring("follow");
    create(ring);
    Proc pub({"pub", ring.str()}, Proc::In::pipe);
    pub.write("before\n");
    Proc sub({"sub", ring.str(), "--follow"});
    ASSERT_TRUE(eventually([&] { return sub.out() == "before\n"; })) << sub.out();
    pub.kill(SIGKILL);
    ASSERT_EQ(pub.wait(5s), 128 + SIGKILL);
    std::this_thread::sleep_for(700ms);  // several liveness intervals
    EXPECT_TRUE(sub.running()) << "sub --follow exited: " << sub.err();
    EXPECT_EQ(role_state(ring, "producer"), "dead");
    const RunResult next = run_xring({"pub", ring.str()}, "after\n");  // takes the dead producer's role
    EXPECT_EQ(next.exit_code, 0) << next.err;
    ASSERT_EQ(sub.wait(5s), 0) << sub.err();
    EXPECT_EQ(sub.out(), "before\nafter\n");
    EXPECT_EQ(sub.err(), "");
}

TEST(XringPeers, a_second_consumer_or_producer_is_refused_naming_the_holder) {
    RingName ring("exclusive");
    create(ring);
    Proc sub({"sub", ring.str()});
    Proc pub({"pub", ring.str()}, Proc::In::pipe);
    ASSERT_TRUE(eventually(
        [&] { return role_state(ring, "consumer") == "alive" && role_state(ring, "producer") == "alive"; }));
    const RunResult sub2 = run_xring({"sub", ring.str()});
    EXPECT_EQ(sub2.exit_code, 1) << sub2.err;
    EXPECT_TRUE(one_error_line(sub2.err)) << sub2.err;
    EXPECT_TRUE(contains(sub2.err, "held by pid " + std::to_string(sub.pid()))) << sub2.err;
    const RunResult pub2 = run_xring({"pub", ring.str()}, "x\n");
    EXPECT_EQ(pub2.exit_code, 1) << pub2.err;
    EXPECT_TRUE(one_error_line(pub2.err)) << pub2.err;
    EXPECT_TRUE(contains(pub2.err, "held by pid " + std::to_string(pub.pid()))) << pub2.err;
    // The refused ones changed nothing.
    pub.write("still\n");
    pub.close_stdin();
    EXPECT_EQ(pub.wait(5s), 0) << pub.err();
    EXPECT_EQ(sub.wait(5s), 0) << sub.err();
    EXPECT_EQ(sub.out(), "still\n");
}

TEST(XringPeers, the_role_of_a_killed_sub_is_taken_over) {
    RingName ring("takeover");
    create(ring);
    Proc sub({"sub", ring.str()});
    ASSERT_TRUE(eventually([&] { return role_state(ring, "consumer") == "alive"; }));
    sub.kill(SIGKILL);
    ASSERT_EQ(sub.wait(5s), 128 + SIGKILL);
    EXPECT_EQ(role_state(ring, "consumer"), "dead");
    ASSERT_EQ(run_xring({"pub", ring.str()}, "hello\n").exit_code, 0);
    const RunResult sub2 = run_xring({"sub", ring.str()});
    EXPECT_EQ(sub2.exit_code, 0) << sub2.err;
    EXPECT_EQ(sub2.out, "hello\n");
}

// ---------------------------------------------------------------------------------------
// Signals and a closed stdout

TEST(XringSignals, sigterm_and_sigint_leave_the_role_cleanly) {
    RingName ring("signals");
    create(ring, {"--capacity", "4K"});
    {
        Proc sub({"sub", ring.str()});
        ASSERT_TRUE(eventually([&] { return role_state(ring, "consumer") == "alive"; }));
        sub.kill(SIGTERM);
        EXPECT_EQ(sub.wait(3s), 128 + SIGTERM) << sub.err();
        EXPECT_EQ(sub.err(), "");
        EXPECT_EQ(role_state(ring, "consumer"), "none");
    }
    {
        // pub blocked on a full ring.
        Proc pub({"pub", ring.str()}, Proc::In::data, numbered_lines(10000));
        ASSERT_TRUE(eventually([&] { return stat_json(ring)["fill_percent"].num() > 99; }));
        pub.kill(SIGINT);
        EXPECT_EQ(pub.wait(3s), 128 + SIGINT) << pub.err();
        EXPECT_EQ(role_state(ring, "producer"), "none");
    }
    {
        // pub blocked reading its input.
        Proc pub({"pub", ring.str()}, Proc::In::pipe);
        ASSERT_TRUE(eventually([&] { return role_state(ring, "producer") == "alive"; }));
        pub.kill(SIGTERM);
        EXPECT_EQ(pub.wait(3s), 128 + SIGTERM) << pub.err();
        EXPECT_EQ(role_state(ring, "producer"), "none");
    }
}

TEST(XringSignals, sub_into_a_closed_pipe_exits_quietly) {
    RingName ring("sigpipe");
    create(ring);
    Proc pub({"pub", ring.str()}, Proc::In::pipe);  // the stream stays open: sub would wait forever
    pub.write("first\nsecond\n");
    Proc sub({"sub", ring.str()}, Proc::In::null, {}, Proc::Out::pipe);
    EXPECT_EQ(sub.read_line(), "first");
    sub.close_stdout();  // as `head -1` does
    const auto status = sub.wait(3s);
    ASSERT_TRUE(status.has_value()) << "sub did not notice its reader left";
    EXPECT_EQ(*status, 0);
    EXPECT_EQ(sub.err(), "");
    EXPECT_EQ(role_state(ring, "consumer"), "none");
    // And while messages flow.
    RingName busy("sigpipe-busy");
    create(busy, {"--capacity", "4K"});
    Proc sub2({"sub", busy.str()}, Proc::In::null, {}, Proc::Out::pipe);
    Proc pub2({"pub", busy.str()}, Proc::In::data, numbered_lines(200'000));
    EXPECT_EQ(sub2.read_line(), "1");
    sub2.close_stdout();
    EXPECT_EQ(sub2.wait(3s), 0);
    EXPECT_EQ(sub2.err(), "");
    EXPECT_EQ(role_state(busy, "consumer"), "none");
}

// ---------------------------------------------------------------------------------------
// Broadcast

TEST(XringBroadcast, a_lapped_reader_warns_with_the_bytes_lost_and_continues) {
    RingName ring("broadcast");
    create(ring, {"--kind", "broadcast", "--capacity", "4K"});
    Proc sub({"sub", ring.str()});
    ASSERT_TRUE(eventually([&] { return stat_json(ring)["peers"].arr().size() == 1; }));
    Proc pub({"pub", ring.str()}, Proc::In::pipe);
    pub.write("first\n");
    ASSERT_TRUE(eventually([&] { return sub.out() == "first\n"; })) << sub.out();
    ASSERT_EQ(::kill(sub.pid(), SIGSTOP), 0);
    pub.write(numbered_lines(3000));  // ~48 KiB of records through a 4 KiB ring: the reader is lapped
    ASSERT_TRUE(eventually([&] { return stat_json(ring)["messages"].num() == 3001; }));
    ASSERT_EQ(::kill(sub.pid(), SIGCONT), 0);
    ASSERT_TRUE(eventually([&] { return contains(sub.err(), "lapped"); })) << sub.err();
    EXPECT_TRUE(one_error_line(sub.err())) << sub.err();
    EXPECT_TRUE(contains(sub.err(), "bytes")) << sub.err();
    EXPECT_TRUE(sub.running());
    // Lapped and idle: it sleeps, it does not spin.
    const std::uint64_t cpu_before = cpu_ticks(sub.pid());
    std::this_thread::sleep_for(500ms);
    EXPECT_LT(cpu_ticks(sub.pid()) - cpu_before, 10u) << "an idle lapped reader burns CPU";
    pub.write("last\n");
    pub.close_stdin();
    EXPECT_EQ(pub.wait(5s), 0) << pub.err();
    ASSERT_EQ(sub.wait(5s), 0) << sub.err();
    EXPECT_TRUE(sub.out().starts_with("first\n")) << sub.out().substr(0, 100);
    EXPECT_TRUE(sub.out().ends_with("\nlast\n")) << sub.out();
    EXPECT_GE(stat_json(ring)["lapped"].num(), 1);
    const RunResult check = run_xring({"check", ring.str()});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

// A broadcast ring never moves `head` (readers keep their own positions): attaching must
// not take "tail more than a capacity past head" for corruption.
TEST(XringBroadcast, a_reader_and_a_writer_attach_to_a_ring_that_has_wrapped) {
    RingName ring("broadcast-wrapped");
    create(ring, {"--kind", "broadcast", "--capacity", "4K"});
    ASSERT_EQ(run_xring({"pub", ring.str()}, numbered_lines(1000)).exit_code, 0);  // 16 KB: wrapped
    Proc sub({"sub", ring.str()});
    ASSERT_TRUE(eventually([&] { return stat_json(ring)["peers"].arr().size() == 1 || !sub.running(); }));
    ASSERT_TRUE(sub.running()) << sub.err();
    const RunResult pub = run_xring({"pub", ring.str()}, "again\n");
    EXPECT_EQ(pub.exit_code, 0) << pub.err;
    EXPECT_EQ(sub.wait(5s), 0) << sub.err();
    EXPECT_EQ(sub.out(), "again\n");
}

// ---------------------------------------------------------------------------------------
// stat

TEST(XringStat, text_and_json_show_positions_fill_counters_and_peers) {
    RingName ring("stat");
    create(ring, {"--capacity", "64K"});
    Proc pub({"pub", ring.str()}, Proc::In::pipe);  // the stream stays open
    pub.write(numbered_lines(100));
    Proc sub({"sub", ring.str()});
    ASSERT_TRUE(eventually([&] {
        return stat_json(ring)["messages"].num() == 100 && stat_json(ring)["fill_bytes"].num() == 0;
    }));
    const RunResult text = run_xring({"stat", ring.bare()});
    EXPECT_EQ(text.exit_code, 0) << text.err;
    for (const char* key : {"kind", "capacity", "max record", "head", "tail", "fill", "high-water",
                            "messages", "bytes", "full waits", "empty waits", "producer wake-ups",
                            "consumer wake-ups", "dropped", "skipped", "lapped", "producer", "consumer"}) {
        EXPECT_TRUE(contains(text.out, std::string("\n  ") + key + " ")) << key << "\n" << text.out;
    }
    EXPECT_TRUE(contains(text.out, stat_line("consumer", "pid " + std::to_string(sub.pid()) + " (alive)")))
        << text.out;
    EXPECT_TRUE(contains(text.out, stat_line("producer", "pid " + std::to_string(pub.pid()) + " (alive)")))
        << text.out;
    EXPECT_TRUE(contains(text.out, stat_line("messages", "100"))) << text.out;

    const Json j = stat_json(ring);
    EXPECT_EQ(j["ring"].str(), ring.str());
    EXPECT_EQ(j["kind"].str(), "spsc");
    EXPECT_EQ(j["capacity"].num(), 65536);
    EXPECT_EQ(j["messages"].num(), 100);
    EXPECT_EQ(j["bytes"].num(), numbered_lines(100).size() - 100);
    EXPECT_EQ(j["head"].num(), j["tail"].num());
    EXPECT_EQ(j["tail"].num(), 100 * 16);  // 100 records of 16 bytes
    EXPECT_EQ(j["fill_percent"].num(), 0);
    EXPECT_GT(j["high_water"].num(), 0);
    EXPECT_EQ(j["consumer"]["pid"].num(), sub.pid());
    EXPECT_EQ(j["consumer"]["state"].str(), "alive");
    EXPECT_EQ(j["producer"]["pid"].num(), pub.pid());
    EXPECT_EQ(j["producer"]["state"].str(), "alive");
    EXPECT_TRUE(j["rates"].is_null());
    for (const char* key : {"full_waits", "empty_waits", "producer_wakeups", "consumer_wakeups", "dropped",
                            "skipped", "lapped", "time", "creator_pid", "max_record"}) {
        EXPECT_TRUE(j.has(key)) << key;
    }
    sub.kill(SIGKILL);
    ASSERT_TRUE(sub.wait(5s).has_value());
    EXPECT_EQ(role_state(ring, "consumer"), "dead");
}

TEST(XringStat, watch_samples_with_rates) {
    RingName ring("watch");
    create(ring, {"--capacity", "4K"});
    Proc pub({"pub", ring.str()}, Proc::In::pipe);
    Proc sub({"sub", ring.str()});
    std::atomic<bool> stop{false};
    std::thread feeder([&] {
        for (int i = 0; !stop; ++i) {
            pub.write(std::to_string(i) + "\n");
            std::this_thread::sleep_for(1ms);
        }
    });
    const RunResult r = run_xring({"stat", ring.str(), "--watch", "0.3", "--samples", "3", "--json"});
    stop = true;
    feeder.join();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<Json> samples;
    std::size_t pos = 0;
    while (pos < r.out.size()) {
        const std::size_t nl = r.out.find('\n', pos);
        auto j = JsonParser(std::string_view(r.out).substr(pos, nl - pos)).document();
        ASSERT_TRUE(j.has_value()) << r.out;
        samples.push_back(*j);
        pos = nl + 1;
    }
    ASSERT_EQ(samples.size(), 3u);
    EXPECT_TRUE(samples[0]["rates"].is_null());
    for (std::size_t i = 1; i < 3; ++i) {
        ASSERT_FALSE(samples[i]["rates"].is_null());
        EXPECT_NEAR(samples[i]["rates"]["seconds"].num(), 0.3, 0.2);
        EXPECT_GT(samples[i]["rates"]["messages_per_second"].num(), 10);
        EXPECT_GT(samples[i]["rates"]["bytes_per_second"].num(), 10);
    }
    EXPECT_GT(samples[2]["messages"].num(), samples[0]["messages"].num());
    // Text: a block per sample, the rate from the second one.
    const RunResult text = run_xring({"stat", ring.str(), "--watch", "0.1", "--samples", "2"});
    EXPECT_EQ(text.exit_code, 0) << text.err;
    EXPECT_TRUE(contains(text.out, "\n\nring " + ring.str() + "\n")) << text.out;
    EXPECT_TRUE(contains(text.out, "  rate ")) << text.out;
    // An interrupted watch ends normally. Interrupt it only once it has printed a sample:
    // its handler is in place by then (a fixed sleep raced a slow start under ASan).
    Proc watch({"stat", ring.str(), "--watch", "0.1"}, Proc::In::null, {}, Proc::Out::pipe);
    ASSERT_TRUE(watch.read_line(10s).has_value());
    watch.kill(SIGINT);
    EXPECT_EQ(watch.wait(3s), 0);
}

// ---------------------------------------------------------------------------------------
// check

void corrupt(const RingName& ring, std::uint64_t offset, const void* bytes, std::size_t n) {
    const int fd = ::open(ring.path().c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(::pwrite(fd, bytes, n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
    ::close(fd);
}

void corrupt_u64(const RingName& ring, std::uint64_t offset, std::uint64_t value) {
    corrupt(ring, offset, &value, sizeof value);
}

constexpr std::uint64_t DATA = sizeof(xproc::ring::RingHeader);

TEST(XringCheck, a_sound_ring_passes) {
    RingName ring("check-sound");
    create(ring, {"--capacity", "4K"});
    ASSERT_EQ(run_xring({"pub", ring.str()}, numbered_lines(100)).exit_code, 0);  // 100 x 16 bytes < 4K
    const RunResult r = run_xring({"check", ring.bare()});
    EXPECT_EQ(r.exit_code, 0) << describe({"check"}, r);
    EXPECT_EQ(r.out, "ring " + ring.str() + ": sound\n");
    EXPECT_EQ(r.err, "");
}

TEST(XringCheck, garbage_in_the_records_is_reported_precisely) {
    RingName ring("check-records");
    create(ring, {"--capacity", "4K", "--max-record", "100"});
    ASSERT_EQ(run_xring({"pub", ring.str()}, numbered_lines(10)).exit_code, 0);
    // Record 3 (16 bytes each): an unknown type.
    const std::uint32_t bad_header[2] = {5, 0x77};
    corrupt(ring, DATA + 3 * 16, bad_header, sizeof bad_header);
    RunResult r = run_xring({"check", ring.str()});
    EXPECT_EQ(r.exit_code, 1) << describe({"check"}, r);
    EXPECT_TRUE(
        contains(r.out, "record 3 at position 48 (index 48, type 119, length 5): unknown record type"))
        << r.out;
    EXPECT_TRUE(one_error_line(r.err)) << r.err;
    EXPECT_TRUE(contains(r.err, "1 problem")) << r.err;
    // A data record longer than max_record.
    const std::uint32_t long_header[2] = {5000, 1};
    corrupt(ring, DATA + 3 * 16, long_header, sizeof long_header);
    r = run_xring({"check", ring.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.out, "record 3 at position 48") &&
                contains(r.out, "record longer than max_record (max_record 100,"))
        << r.out;
    // Random bytes over the whole data area: a problem, never a crash.
    std::string noise(4096, '\0');
    std::mt19937 rng(3);
    for (char& c : noise) {
        c = static_cast<char>(rng());
    }
    corrupt(ring, DATA, noise.data(), noise.size());
    r = run_xring({"check", ring.str()});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "record 0 at position 0")) << r.out;
    // sub on that ring: one line, corrupt, no crash.
    const RunResult sub = run_xring({"sub", ring.str()});
    EXPECT_EQ(sub.exit_code, 1) << sub.err;
    EXPECT_TRUE(one_error_line(sub.err)) << sub.err;
    EXPECT_TRUE(contains(sub.err, "corrupt") && contains(sub.err, "xring check")) << sub.err;
}

TEST(XringCheck, garbage_in_the_header_positions_and_fields_is_reported_precisely) {
    RingName ring("check-header");
    create(ring, {"--capacity", "4K"});
    ASSERT_EQ(run_xring({"pub", ring.str()}, numbered_lines(10)).exit_code, 0);
    const std::uint64_t head_at = offsetof(xproc::ring::RingHeader, head);
    const std::uint64_t tail_at = offsetof(xproc::ring::RingHeader, tail);
    corrupt_u64(ring, head_at, 4096);  // past tail (168)
    RunResult r = run_xring({"check", ring.str()});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "positions: head 4096 is past tail 168")) << r.out;
    corrupt_u64(ring, head_at, 0);
    corrupt_u64(ring, tail_at, 12);
    r = run_xring({"check", ring.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.out, "not both multiples of 8")) << r.out;
    corrupt_u64(ring, tail_at, 1 << 20);
    r = run_xring({"check", ring.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.out, "more than the capacity (4096) ahead of head 0")) << r.out;
    // stat and sub refuse it with one line.
    for (const char* cmd : {"stat", "sub", "pub"}) {
        const RunResult s = run_xring({cmd, ring.str()});
        EXPECT_EQ(s.exit_code, 1) << cmd << ": " << s.err;
        EXPECT_TRUE(one_error_line(s.err)) << s.err;
        EXPECT_TRUE(contains(s.err, "corrupt") && contains(s.err, ring.str())) << s.err;
    }
    // Several bad header fields: each on its own line.
    corrupt_u64(ring, tail_at, 168);
    const std::uint32_t kind = 9;
    corrupt(ring, offsetof(xproc::ring::RingHeader, kind), &kind, sizeof kind);
    const std::uint32_t header_size = 100;
    corrupt(ring, offsetof(xproc::ring::RingHeader, header_size), &header_size, sizeof header_size);
    const std::int32_t pid = -5;
    corrupt(ring, offsetof(xproc::ring::RingHeader, consumer_pid), &pid, sizeof pid);
    r = run_xring({"check", ring.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.out, "ring " + ring.str() + ": header: header_size is 100, expected 4096\n"))
        << r.out;
    EXPECT_TRUE(contains(r.out, "header: unknown ring kind 9")) << r.out;
    EXPECT_TRUE(contains(r.out, "roles: consumer pid -5 is negative")) << r.out;
    EXPECT_TRUE(contains(r.err, "3 problems")) << r.err;
    corrupt_u64(ring, offsetof(xproc::ring::RingHeader, capacity), 1000);
    r = run_xring({"check", ring.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.out, "header: capacity 1000 is not a power of two")) << r.out;
}

TEST(XringCheck, not_a_ring_and_another_version_are_errors) {
    RingName plain("check-plain");
    {
        const int fd = ::shm_open(plain.str().c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        ASSERT_GE(fd, 0);
        std::string junk(10000, 'j');
        ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
        ::close(fd);
    }
    RunResult r = run_xring({"check", plain.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(one_error_line(r.err)) << r.err;
    EXPECT_TRUE(contains(r.err, plain.str() + " is not an xproc ring")) << r.err;
    EXPECT_EQ(r.out, "");

    RingName ring("check-version");
    create(ring, {"--capacity", "4K"});
    const std::uint32_t version = 99;
    corrupt(ring, offsetof(xproc::ring::RingHeader, version), &version, sizeof version);
    for (const char* cmd : {"check", "stat", "sub"}) {
        r = run_xring({cmd, ring.str()});
        EXPECT_EQ(r.exit_code, 1) << cmd;
        EXPECT_TRUE(one_error_line(r.err)) << r.err;
        EXPECT_TRUE(contains(r.err, "layout version 99")) << cmd << ": " << r.err;
    }
}

// ---------------------------------------------------------------------------------------
// stat / check of an xproc::message_queue

/// A queue of 20 messages of up to 128 bytes: priority 3 x4 (lane 0), 7 x2 (lane 1), 0 x1
/// (lane 2) sent, then one received (priority 7): 6 messages left.
std::unique_ptr<xproc::message_queue> make_queue(const RingName& name) {
    auto q = std::make_unique<xproc::message_queue>(boost::interprocess::create_only, name.c_str(), 20, 128);
    for (const unsigned priority : {3u, 7u, 3u, 0u, 3u, 7u, 3u}) {
        q->send("job", 3, priority);
    }
    char buf[128];
    std::size_t got = 0;
    unsigned priority = 0;
    EXPECT_TRUE(q->try_receive(buf, sizeof buf, got, priority));
    EXPECT_EQ(priority, 7u);
    return q;
}

TEST(XringQueue, stat_shows_a_message_queue_per_priority_in_text_and_json) {
    RingName name("mq-stat");
    const auto queue = make_queue(name);
    ASSERT_EQ(queue->get_num_msg(), 6u);
    const RunResult text = run_xring({"stat", name.bare()});
    EXPECT_EQ(text.exit_code, 0) << describe({"stat"}, text);
    EXPECT_EQ(text.err, "");
    EXPECT_TRUE(text.out.starts_with("message queue " + name.str() + "\n")) << text.out;
    const std::uint64_t slot = xproc::mq::mq_slot_size(128);
    for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"kind", "message queue (xproc::message_queue, many-to-many)"},
             {"max messages", "20"},
             {"max message size", "128 bytes"},
             {"lanes bound", "3 of " + std::to_string(xproc::mq::MQ_LANES)},
             {"messages", "6 (30.0%)"},
             {"lane 1", "priority 7: 1 message (enqueue 2, dequeue 1)"},
             {"lane 0", "priority 3: 4 messages (enqueue 4, dequeue 0)"},
             {"lane 2", "priority 0: 1 message (enqueue 1, dequeue 0)"},
             {"received", "1 (messages taken since creation, skipped ones too)"},
             {"waiting receivers", "0 (asleep on an empty queue)"},
             {"waiting senders", "0 (asleep on a full queue)"},
             {"skipped", "0 (messages dropped: their sender died before publishing)"},
             {"lost", "0 (messages lost: their receiver died while taking them)"},
             {"recounted", "0 (capacity reserved by dead senders, recovered)"},
             {"corrupt", "0 (messages with an invalid length, dropped)"},
             {"creator", "pid " + std::to_string(::getpid()) + " (alive)"},
         }) {
        EXPECT_TRUE(contains(text.out, stat_line(key, value))) << key << "\n" << text.out;
    }
    EXPECT_TRUE(
        contains(text.out, "\n  slot size          " + std::to_string(slot) + " bytes (32 per lane, "))
        << text.out;
    // Highest priority first, as receivers take them.
    EXPECT_LT(text.out.find("priority 7:"), text.out.find("priority 3:"));
    EXPECT_LT(text.out.find("priority 3:"), text.out.find("priority 0:"));
    EXPECT_FALSE(contains(text.out, "  rate ")) << text.out;

    const RunResult r = run_xring({"stat", "--json", name.str()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto doc = JsonParser(r.out).document();
    ASSERT_TRUE(doc.has_value()) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
    const Json& j = *doc;
    EXPECT_EQ(j["queue"].str(), name.str());
    EXPECT_EQ(j["kind"].str(), "message_queue");
    EXPECT_EQ(j["max_num_msg"].num(), 20);
    EXPECT_EQ(j["max_msg_size"].num(), 128);
    EXPECT_EQ(j["slot_size"].num(), static_cast<double>(slot));
    EXPECT_EQ(j["lane_capacity"].num(), 32);
    EXPECT_EQ(j["total_size"].num(),
              static_cast<double>(sizeof(xproc::mq::MqHeader) + xproc::mq::MQ_LANES * 32 * slot));
    EXPECT_EQ(j["lanes_bound"].num(), 3);
    EXPECT_EQ(j["messages"].num(), 6);
    EXPECT_EQ(j["fill_percent"].num(), 30);
    EXPECT_EQ(j["count"].num(), 2);  // lanes 1..15
    EXPECT_EQ(j["received"].num(), 1);
    const JsonArray& lanes = j["lanes"].arr();
    ASSERT_EQ(lanes.size(), 3u);
    const double expected[3][5] = {{1, 7, 1, 2, 1}, {0, 3, 4, 4, 0}, {2, 0, 1, 1, 0}};
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(lanes[i]["lane"].num(), expected[i][0]) << i;
        EXPECT_EQ(lanes[i]["priority"].num(), expected[i][1]) << i;
        EXPECT_EQ(lanes[i]["messages"].num(), expected[i][2]) << i;
        EXPECT_EQ(lanes[i]["enqueue"].num(), expected[i][3]) << i;
        EXPECT_EQ(lanes[i]["dequeue"].num(), expected[i][4]) << i;
    }
    for (const char* key : {"recv_waiters", "send_waiters", "skipped", "lost", "recounted", "corrupt"}) {
        EXPECT_EQ(j[key].num(), 0) << key;
    }
    EXPECT_EQ(j["creator_pid"].num(), ::getpid());
    EXPECT_EQ(j["creator"]["pid"].num(), ::getpid());
    EXPECT_EQ(j["creator"]["state"].str(), "alive");
    EXPECT_TRUE(j["rates"].is_null());
    EXPECT_TRUE(j.has("time"));

    const RunResult check = run_xring({"check", name.str()});
    EXPECT_EQ(check.exit_code, 0) << describe({"check"}, check);
    EXPECT_EQ(check.out, "message queue " + name.str() + ": sound\n");
    EXPECT_EQ(check.err, "");
}

TEST(XringQueue, watch_gives_the_receive_rate) {
    RingName name("mq-watch");
    const auto queue = make_queue(name);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> received{0};
    std::thread traffic([&] {
        char buf[128];
        std::size_t got = 0;
        unsigned priority = 0;
        while (!stop) {
            queue->send("x", 1, 3);
            if (queue->try_receive(buf, sizeof buf, got, priority)) {
                ++received;
            }
            std::this_thread::sleep_for(1ms);
        }
    });
    const RunResult r = run_xring({"stat", name.str(), "--watch", "0.3", "--samples", "2", "--json"});
    const RunResult text = run_xring({"stat", name.str(), "--watch", "0.1", "--samples", "2"});
    stop = true;
    traffic.join();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::size_t nl = r.out.find('\n');
    ASSERT_NE(nl, std::string::npos) << r.out;
    auto first = JsonParser(std::string_view(r.out).substr(0, nl)).document();
    auto second = JsonParser(std::string_view(r.out).substr(nl + 1)).document();
    ASSERT_TRUE(first.has_value() && second.has_value()) << r.out;
    EXPECT_TRUE((*first)["rates"].is_null());
    ASSERT_FALSE((*second)["rates"].is_null()) << r.out;
    EXPECT_NEAR((*second)["rates"]["seconds"].num(), 0.3, 0.2);
    EXPECT_GT((*second)["rates"]["messages_per_second"].num(), 10) << r.out;
    EXPECT_GT((*second)["received"].num(), (*first)["received"].num());
    EXPECT_GT(received.load(), 10u);
    EXPECT_EQ(text.exit_code, 0) << text.err;
    EXPECT_TRUE(contains(text.out, "\n\nmessage queue " + name.str() + "\n")) << text.out;
    EXPECT_TRUE(contains(text.out, "  rate               ")) << text.out;
    EXPECT_TRUE(contains(text.out, " msg/s received (over ")) << text.out;
}

TEST(XringQueue, a_corrupted_queue_is_refused_by_stat_and_its_problems_listed_by_check) {
    RingName name("mq-corrupt");
    const auto queue = make_queue(name);
    using xproc::mq::MqHeader;
    // Lane 1 (priority 7): dequeue position past its enqueue position (2).
    corrupt_u64(name,
                offsetof(MqHeader, lane) + 1 * sizeof(xproc::mq::LanePositions) +
                    offsetof(xproc::mq::LanePositions, dequeue_pos),
                9);
    RunResult r = run_xring({"check", name.str()});
    EXPECT_EQ(r.exit_code, 1) << describe({"check"}, r);
    EXPECT_EQ(r.out, "message queue " + name.str() +
                         ": lane 1 (priority 7): dequeue position 9 is past enqueue position 2\n");
    EXPECT_TRUE(one_error_line(r.err)) << r.err;
    EXPECT_TRUE(contains(r.err, "xring: message queue " + name.str() + ": 1 problem found")) << r.err;
    // stat still reads it (a snapshot): that lane shows no message.
    r = run_xring({"stat", name.str()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, stat_line("lane 1", "priority 7: 0 messages (enqueue 2, dequeue 9)")))
        << r.out;
    corrupt_u64(name,
                offsetof(MqHeader, lane) + 1 * sizeof(xproc::mq::LanePositions) +
                    offsetof(xproc::mq::LanePositions, dequeue_pos),
                1);

    // A published message longer than max_msg_size (lane 0, position 2).
    const std::uint64_t slot = xproc::mq::mq_slot_size(128);
    const std::uint32_t length = 5000;
    corrupt(name, sizeof(MqHeader) + 2 * slot + offsetof(xproc::mq::MqCell, length), &length, sizeof length);
    r = run_xring({"check", name.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out,
              "message queue " + name.str() +
                  ": lane 0 (priority 3) position 2 (cell 2): published message of 5000 bytes, more than "
                  "max_msg_size 128 (a receiver drops it as corrupt)\n");

    // Bad geometry: stat refuses it in one line, check lists it.
    corrupt_u64(name, offsetof(MqHeader, slot_size), 7);
    for (const char* cmd : {"stat", "sub"}) {
        r = run_xring({cmd, name.str()});
        EXPECT_EQ(r.exit_code, 1) << cmd;
        EXPECT_TRUE(one_error_line(r.err)) << r.err;
    }
    r = run_xring({"stat", "--json", name.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(one_error_line(r.err)) << r.err;
    EXPECT_TRUE(
        contains(r.err, "xring: message queue " + name.str() +
                            " is corrupt: inconsistent geometry: slot_size 7 does not match max_msg_size "
                            "128 (expected " +
                            std::to_string(slot) + ")"))
        << r.err;
    EXPECT_TRUE(contains(r.err, "`xring check " + name.str() + "`")) << r.err;
    r = run_xring({"check", name.str()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "message queue " + name.str() +
                         ": header: slot_size 7 does not match max_msg_size 128 (expected " +
                         std::to_string(slot) + ")\n");
    EXPECT_TRUE(contains(r.err, "1 problem found")) << r.err;

    // Another layout version: an error for both.
    const std::uint32_t version = 99;
    corrupt(name, offsetof(MqHeader, version), &version, sizeof version);
    for (const char* cmd : {"stat", "check"}) {
        r = run_xring({cmd, name.str()});
        EXPECT_EQ(r.exit_code, 1) << cmd;
        EXPECT_TRUE(one_error_line(r.err)) << r.err;
        EXPECT_TRUE(contains(r.err, "message queue " + name.str() +
                                        ": message queue layout version 99, this "
                                        "library reads version " +
                                        std::to_string(xproc::mq::MQ_LAYOUT_VERSION)))
            << cmd << ": " << r.err;
        EXPECT_EQ(r.out, "");
    }
}

// ---------------------------------------------------------------------------------------
// Bad input, help

TEST(XringErrors, bad_input_gives_one_line_the_right_status_and_leaves_nothing) {
    RingName missing("missing");
    RingName plain("plain");
    RingName made("made");
    {
        const int fd = ::shm_open(plain.str().c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, 100), 0);
        ::close(fd);
    }
    struct Case {
        std::vector<std::string> args;
        int status;
        std::string says;
    };
    const std::vector<Case> cases = {
        {{"sub", missing.str()}, 1, missing.str() + " does not exist"},
        {{"pub", missing.str()}, 1, missing.str() + " does not exist"},
        {{"stat", missing.str()}, 1, missing.str() + " does not exist"},
        {{"check", missing.str()}, 1, missing.str() + " does not exist"},
        {{"rm", missing.str()}, 1, missing.str() + " does not exist"},
        {{"sub", plain.str()}, 1, plain.str() + " is not an xproc ring"},
        {{"pub", plain.str()}, 1, plain.str() + " is not an xproc ring"},
        {{"stat", plain.str()}, 1, plain.str() + " is not an xproc ring"},
        {{"check", plain.str()}, 1, plain.str() + " is not an xproc ring"},
        {{"create", made.str(), "--capacity", "lots"}, 2, "--capacity"},
        {{"create", made.str(), "--capacity", "12X"}, 2, "--capacity"},
        {{"create", made.str(), "--capacity", "99999999999999999999"}, 2, "--capacity"},
        {{"create", made.str(), "--capacity", "2T"}, 2, "--capacity"},
        {{"create", made.str(), "--max-record", "1M", "--capacity", "1M"}, 2, "--max-record"},
        {{"create", made.str(), "--max-record", "0"}, 2, "--max-record"},
        {{"create", made.str(), "--mode", "0999"}, 2, "--mode"},
        {{"create", made.str(), "--kind", "spmc"}, 2, "spmc"},
        {{"create", "a/b"}, 2, "bad ring name"},
        {{"create", ""}, 2, "ring name"},
        {{"create"}, 2, "NAME"},
        {{"create", made.str(), "--bogus"}, 2, "--bogus"},
        {{"sub", made.str(), "--count", "x"}, 2, "--count"},
        {{"sub", made.str(), "--count", "0"}, 2, "--count"},
        {{"pub", made.str(), "--chunk", "0"}, 2, "--chunk"},
        {{"pub", made.str(), "--chunk", "-5"}, 2, "--chunk"},
        {{"pub", made.str(), "--timeout", "soon"}, 2, "--timeout"},
        {{"pub", made.str(), "--kind", "mpsc"}, 2, "--create"},
        {{"pub", made.str(), "--create", "--kind", "nope"}, 2, "nope"},
        {{"pub", made.str(), "--create", "--capacity", "4K", "--chunk", "4K"}, 2, "--chunk"},
        {{"stat", made.str(), "--watch", "-1"}, 2, "--watch"},
        {{"stat", made.str(), "--samples", "2"}, 2, "--watch"},
        {{"frobnicate"}, 2, "unknown command"},
        {{}, 2, "command is required"},
    };
    for (const Case& c : cases) {
        const RunResult r = run_xring(c.args);
        EXPECT_EQ(r.exit_code, c.status) << describe(c.args, r);
        EXPECT_TRUE(one_error_line(r.err)) << describe(c.args, r);
        EXPECT_TRUE(contains(r.err, c.says)) << describe(c.args, r);
        EXPECT_EQ(r.out, "") << describe(c.args, r);
        EXPECT_FALSE(missing.exists()) << describe(c.args, r);
        EXPECT_FALSE(made.exists()) << describe(c.args, r);
    }
    EXPECT_TRUE(plain.exists());
}

TEST(XringErrors, another_users_ring_is_refused_with_the_reason) {
    if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0) {
        GTEST_SKIP() << "needs root and setpriv(1) to run as another user";
    }
    RingName ring("foreign");
    create(ring);
    const RunResult r = run({"/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                             xring(), "stat", ring.str()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(one_error_line(r.err)) << r.err;
    EXPECT_TRUE(contains(r.err, ring.str()) && contains(r.err, "Permission denied")) << r.err;
}

TEST(XringBench, quick_json_report_measures_the_transports_asked_for) {
    // The zero-copy API (claim/commit, poll) and the adaptive waits (and their idle
    // measurement) take other paths through the harness than ring_copy.
    const std::set<std::string> transports = {"pipe", "ring_copy", "ring_zero_copy",
                                              "ring_zero_copy_adaptive"};
    std::vector<std::string> args = {"bench", "--quick", "--json"};
    for (const std::string& t : transports) {
        args.insert(args.end(), {"--transport", t});
    }
    const RunResult r = run_xring(args);
    EXPECT_EQ(r.exit_code, 0) << describe(args, r);
    auto j = JsonParser(r.out).document();
    ASSERT_TRUE(j.has_value()) << r.out.substr(0, 2000);
    std::set<std::string> seen;
    for (const Json& m : (*j)["measurements"].arr()) {
        seen.insert(m["transport"].str());
        EXPECT_EQ(m["status"].str(), "ok") << m["transport"].str() << ": " << m["reason"].str();
    }
    EXPECT_EQ(seen, transports);
    // One round: a ratio is that of the two cases' runs.
    for (const Json& r : (*j)["ratios"].arr()) {
        EXPECT_TRUE(r["rounds"].arr().empty()) << r["name"].str();
        if (!r["value"].is_null()) {
            EXPECT_DOUBLE_EQ(r["value"].num(), r["best_of"].num()) << r["name"].str();
        }
    }
    const RunResult bad = run_xring({"bench", "--transport", "carrier_pigeon"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_TRUE(one_error_line(bad.err)) << bad.err;
}

TEST(XringBench, repeat_runs_every_case_that_many_times_and_rejects_zero) {
    const std::vector<std::string> args = {"bench",       "--quick", "--json",      "--throughput-only",
                                           "--repeat",    "3",       "--size",      "64",
                                           "--transport", "pipe",    "--transport", "ring_copy"};
    const RunResult r = run_xring(args);
    EXPECT_EQ(r.exit_code, 0) << describe(args, r);
    auto j = JsonParser(r.out).document();
    ASSERT_TRUE(j.has_value()) << r.out.substr(0, 2000);
    // Pinned both ways (the default, with two CPUs), each of the 3 rounds runs a case twice.
    const double per_round = (*j)["options"]["pinning"].str() == "both" ? 2 : 1;
    std::size_t measured = 0;
    for (const Json& m : (*j)["measurements"].arr()) {
        EXPECT_EQ(m["status"].str(), "ok") << m["transport"].str() << ": " << m["reason"].str();
        EXPECT_EQ(m["runs"].num(), 3 * per_round) << m["transport"].str();
        ++measured;
    }
    EXPECT_EQ(measured, 2u);
    // A ratio is the median of the ratios within each round, which are listed; the ratio of
    // the best runs is there too. The two cases' messages per second in a round are not in
    // the report, but the median has to be one of the three rounds' values.
    bool found = false;
    for (const Json& r : (*j)["ratios"].arr()) {
        if (r["name"].str() != "ring_copy_vs_pipe") {
            EXPECT_TRUE(r["rounds"].arr().empty()) << r["name"].str();
            continue;
        }
        found = true;
        ASSERT_EQ(r["rounds"].arr().size(), 3u);
        std::vector<double> rounds;
        for (const Json& v : r["rounds"].arr()) {
            EXPECT_GT(v.num(), 0);
            rounds.push_back(v.num());
        }
        std::sort(rounds.begin(), rounds.end());
        EXPECT_DOUBLE_EQ(r["value"].num(), rounds[1]);
        EXPECT_GT(r["best_of"].num(), 0);
    }
    EXPECT_TRUE(found);
    const RunResult zero = run_xring({"bench", "--repeat", "0"});
    EXPECT_EQ(zero.exit_code, 2);
    EXPECT_TRUE(one_error_line(zero.err) && contains(zero.err, "--repeat")) << zero.err;
}

/// The CPUs this process may run on.
std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (CPU_ISSET(cpu, &set)) {
                cpus.push_back(cpu);
            }
        }
    }
    return cpus;
}

TEST(XringBench, pin_runs_the_sides_where_asked_and_refuses_cpus_it_cannot_use) {
    const std::vector<int> cpus = allowed_cpus();
    if (cpus.size() < 2) {
        GTEST_SKIP() << "needs two CPUs";
    }
    const std::string first = std::to_string(cpus[0]);
    const std::string second = std::to_string(cpus[1]);
    const auto measure = [](std::vector<std::string> extra) {
        std::vector<std::string> args = {"bench",  "--quick", "--json",      "--throughput-only",
                                         "--size", "64",      "--transport", "ring_copy"};
        args.insert(args.end(), extra.begin(), extra.end());
        const RunResult r = run_xring(args);
        EXPECT_EQ(r.exit_code, 0) << describe(args, r);
        auto j = JsonParser(r.out).document();
        EXPECT_TRUE(j.has_value()) << r.out.substr(0, 2000);
        return j.value_or(Json{});
    };
    // One way, reversed: A (the producer) on the second CPU. The harness fails a run whose
    // sides did not end on the CPUs asked for (sched_getcpu), so "ok" means they did.
    {
        const Json j = measure({"--pin", "one", "--cpu", second + "," + first});
        EXPECT_EQ(j["options"]["pinning"].str(), "one");
        const Json& m = j["measurements"].arr().at(0);
        EXPECT_EQ(m["status"].str(), "ok") << m["reason"].str();
        EXPECT_EQ(m["runs"].num(), 1);
        EXPECT_EQ(m["a_cpu"].num(), cpus[1]);
        EXPECT_EQ(m["b_cpu"].num(), cpus[0]);
    }
    // The default: both ways on the first two CPUs, two runs, the kept one's placement.
    {
        const Json j = measure({});
        EXPECT_EQ(j["options"]["pinning"].str(), "both");
        const Json& m = j["measurements"].arr().at(0);
        EXPECT_EQ(m["status"].str(), "ok") << m["reason"].str();
        EXPECT_EQ(m["runs"].num(), 2);
        const std::set<double> placement{m["a_cpu"].num(), m["b_cpu"].num()};
        EXPECT_EQ(placement, (std::set<double>{static_cast<double>(cpus[0]), static_cast<double>(cpus[1])}));
    }
    {
        const Json j = measure({"--pin", "none"});
        EXPECT_EQ(j["options"]["pinning"].str(), "none");
        EXPECT_EQ(j["measurements"].arr().at(0)["a_cpu"].num(), -1);
    }
    // A CPU outside our affinity mask, the same CPU twice, an unknown mode: usage errors.
    int outside = 0;
    while (std::find(cpus.begin(), cpus.end(), outside) != cpus.end()) {
        ++outside;
    }
    const RunResult foreign = run_xring({"bench", "--cpu", first + "," + std::to_string(outside)});
    EXPECT_EQ(foreign.exit_code, 2);
    EXPECT_TRUE(one_error_line(foreign.err) && contains(foreign.err, "--cpu") &&
                contains(foreign.err, "may not run on CPU " + std::to_string(outside)))
        << foreign.err;
    const RunResult twice = run_xring({"bench", "--cpu", first + "," + first});
    EXPECT_EQ(twice.exit_code, 2);
    EXPECT_TRUE(one_error_line(twice.err) && contains(twice.err, "both sides on CPU " + first)) << twice.err;
    const RunResult mode = run_xring({"bench", "--pin", "sideways"});
    EXPECT_EQ(mode.exit_code, 2);
    EXPECT_TRUE(one_error_line(mode.err) && contains(mode.err, "--pin")) << mode.err;
}

TEST(XringHelp, help_and_version_for_every_command) {
    const RunResult top = run_xring({"--help"});
    EXPECT_EQ(top.exit_code, 0);
    for (const char* cmd : {"create", "rm", "pub", "sub", "stat", "check", "bench"}) {
        EXPECT_TRUE(contains(top.out, cmd)) << cmd;
        const RunResult h = run_xring({cmd, "--help"});
        EXPECT_EQ(h.exit_code, 0) << cmd;
        EXPECT_TRUE(contains(h.out, "NAME") || std::string(cmd) == "bench") << h.out;
    }
    const RunResult sub = run_xring({"sub", "--help"});
    for (const char* opt : {"--raw", "--count", "--follow"}) {
        EXPECT_TRUE(contains(sub.out, opt)) << opt;
    }
    const RunResult v = run_xring({"--version"});
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_TRUE(v.out.starts_with("xring from xproc ")) << v.out;
}

}  // namespace
