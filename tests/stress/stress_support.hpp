// SPDX-License-Identifier: MIT
#pragma once
// Helpers of the cross-process ring tests: a peer process (tests/targets/ring_peer) whose
// every wait is bounded, a segment name removed even when the test fails, and a check that
// a test left no child behind.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "shm_name.hpp"
#include "xproc/ring_segment.hpp"

namespace xproc {
// gtest prints these by name instead of as "1-byte object <02>".
inline void PrintTo(ReadStatus s, std::ostream* os) {
    *os << to_string(s);
}
inline void PrintTo(WriteStatus s, std::ostream* os) {
    *os << to_string(s);
}
inline void PrintTo(PeerState s, std::ostream* os) {
    *os << to_string(s);
}
}  // namespace xproc

namespace xproc::stress {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// Full path of the peer program.
inline std::string ring_peer_path() {
    return std::string(XPROC_TARGETS_DIR) + "/ring_peer";
}

using xproc::test::ShmName;

/// A ring_peer process. Its stdout is a pipe read line by line with a timeout; its stderr
/// is ours. The destructor kills (SIGKILL) and reaps it.
class Peer {
  public:
    /// Starts `ring_peer ARGS...`.
    explicit Peer(const std::vector<std::string>& args) {
        std::vector<std::string> argv{ring_peer_path()};
        argv.insert(argv.end(), args.begin(), args.end());
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            ADD_FAILURE() << "pipe2: " << std::strerror(errno);
            return;
        }
        const pid_t pid = ::fork();
        if (pid < 0) {
            ADD_FAILURE() << "fork: " << std::strerror(errno);
            ::close(fds[0]);
            ::close(fds[1]);
            return;
        }
        if (pid == 0) {
            ::dup2(fds[1], STDOUT_FILENO);
            std::vector<char*> raw;
            for (auto& a : argv) {
                raw.push_back(a.data());
            }
            raw.push_back(nullptr);
            ::execv(raw[0], raw.data());
            std::fprintf(stderr, "exec %s: %s\n", raw[0], std::strerror(errno));
            ::_exit(127);
        }
        ::close(fds[1]);
        m_pid = pid;
        m_out = fds[0];
    }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;
    ~Peer() { kill_and_reap(); }

    pid_t pid() const { return m_pid; }

    /// The next line of its stdout, or nullopt on end of file or after `timeout`.
    std::optional<std::string> next_line(Clock::duration timeout) {
        const auto deadline = Clock::now() + timeout;
        for (;;) {
            if (const auto nl = m_buffer.find('\n'); nl != std::string::npos) {
                std::string line = m_buffer.substr(0, nl);
                m_buffer.erase(0, nl + 1);
                m_lines.push_back(line);
                return line;
            }
            if (m_out < 0) {
                return std::nullopt;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) {
                return std::nullopt;
            }
            struct pollfd pfd = {m_out, POLLIN, 0};
            const int n = ::poll(&pfd, 1, static_cast<int>(left.count()) + 1);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                continue;  // the deadline check above ends the loop
            }
            char chunk[4096];
            const ssize_t got = ::read(m_out, chunk, sizeof chunk);
            if (got <= 0) {
                ::close(m_out);
                m_out = -1;
                if (!m_buffer.empty()) {
                    m_buffer += '\n';  // a last line without newline
                }
                continue;
            }
            m_buffer.append(chunk, static_cast<std::size_t>(got));
        }
    }

    /// Reads lines until one starts with `prefix` (returned) or one starts with "FAIL",
    /// end of file, or `timeout` (nullopt; the lines seen are in output()).
    std::optional<std::string> wait_for(const std::string& prefix, Clock::duration timeout = 30s) {
        const auto deadline = Clock::now() + timeout;
        for (;;) {
            auto line = next_line(deadline - Clock::now());
            if (!line || line->starts_with("FAIL")) {
                return std::nullopt;
            }
            if (line->starts_with(prefix)) {
                return line;
            }
        }
    }

    /// Every line read so far (for failure messages).
    std::string output() const {
        std::string all;
        for (const auto& l : m_lines) {
            all += l + "\n";
        }
        return all + m_buffer;
    }

    bool signal(int sig) const { return m_pid > 0 && ::kill(m_pid, sig) == 0; }

    /// Waits for it to exit by itself; the wait status, or nullopt after `timeout` (it keeps
    /// running: the destructor kills it).
    std::optional<int> wait_exit(Clock::duration timeout) {
        const auto deadline = Clock::now() + timeout;
        while (m_pid > 0) {
            int status = 0;
            const pid_t r = ::waitpid(m_pid, &status, WNOHANG);
            if (r == m_pid) {
                m_pid = -1;
                m_status = status;
                return status;
            }
            if (r < 0 && errno != EINTR) {
                return std::nullopt;
            }
            if (Clock::now() > deadline) {
                return std::nullopt;
            }
            std::this_thread::sleep_for(2ms);
        }
        return m_status;
    }

    /// Runs to completion within `timeout` with exit status 0 and a "done" line; returns that
    /// line's key=value pairs (empty on failure, with a gtest failure naming why).
    std::map<std::string, std::string> expect_done(Clock::duration timeout) {
        std::map<std::string, std::string> values;
        const auto deadline = Clock::now() + timeout;
        auto line = wait_for("done", timeout);
        const auto status = wait_exit(std::max<Clock::duration>(deadline - Clock::now(), 5s));
        if (!line || !status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
            ADD_FAILURE() << "peer " << m_description << " did not finish cleanly ("
                          << (!status                ? std::string("still running")
                              : WIFEXITED(*status)   ? "exit " + std::to_string(WEXITSTATUS(*status))
                              : WIFSIGNALED(*status) ? "signal " + std::to_string(WTERMSIG(*status))
                                                     : std::string("?"))
                          << "); its output:\n"
                          << output();
            return values;
        }
        for (std::size_t pos = line->find(' '); pos != std::string::npos;) {
            const std::size_t start = pos + 1;
            const std::size_t end = line->find(' ', start);
            const std::string kv = line->substr(start, end == std::string::npos ? end : end - start);
            if (const auto eq = kv.find('='); eq != std::string::npos) {
                values[kv.substr(0, eq)] = kv.substr(eq + 1);
            }
            pos = end;
        }
        return values;
    }

    void describe(std::string what) { m_description = std::move(what); }

    /// SIGKILL, then reap; returns the wait status (or -1 when already reaped).
    int kill_and_reap() {
        int status = -1;
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
            }
            m_pid = -1;
            m_status = status;
        }
        if (m_out >= 0) {
            ::close(m_out);
            m_out = -1;
        }
        return status;
    }

  private:
    pid_t m_pid = -1;
    int m_out = -1;
    int m_status = -1;
    std::string m_buffer;
    std::vector<std::string> m_lines;
    std::string m_description = "ring_peer";
};

/// Numeric value of key in a peer's "done" line (0 when missing).
inline double num(const std::map<std::string, std::string>& values, const std::string& key) {
    auto it = values.find(key);
    return it == values.end() ? 0.0 : std::strtod(it->second.c_str(), nullptr);
}

/// No child process is left (every one was reaped).
inline void expect_no_children() {
    int status = 0;
    const pid_t r = ::waitpid(-1, &status, WNOHANG);
    EXPECT_TRUE(r < 0 && errno == ECHILD) << "a child process was left behind (waitpid gave " << r << ")";
}

/// The scale of a run: `normal` records, fewer in sanitized builds, times XPROC_STRESS_SCALE
/// (a float, for long manual runs) when set.
inline std::uint64_t scaled(std::uint64_t normal, std::uint64_t sanitized) {
#if defined(XPROC_STRESS_SANITIZED)
    std::uint64_t n = sanitized;
    (void)normal;
#else
    std::uint64_t n = normal;
    (void)sanitized;
#endif
    if (const char* s = std::getenv("XPROC_STRESS_SCALE"); s != nullptr && *s != '\0') {
        n = static_cast<std::uint64_t>(static_cast<double>(n) * std::strtod(s, nullptr));
    }
    return n < 1 ? 1 : n;
}

}  // namespace xproc::stress
