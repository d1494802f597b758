// SPDX-License-Identifier: MIT
#pragma once
// Test helper: start a real program as a child, wait until it says it is ready,
// freeze/thaw it, and always kill and reap it (even when the test fails).

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace xproc::test {

/// Full path of a target program built from tests/targets/NAME.c(pp).
inline std::string target_path(const std::string& name) {
    return std::string(XPROC_TARGETS_DIR) + "/" + name;
}
/// Full path of a built tool (build/tools/NAME/NAME).
inline std::string tool_path(const std::string& name) {
    return std::string(XPROC_TOOLS_DIR) + "/" + name + "/" + name;
}

/// A child process. The child's stdout is a pipe: `wait_for_line()` reads lines from it
/// (a target prints "ready" once set up). The destructor kills (SIGKILL) and reaps it.
class Child {
  public:
    Child() = default;
    /// argv[0] is the program path; env is inherited. `stdin_null` gives it /dev/null.
    explicit Child(std::vector<std::string> argv) { start(std::move(argv)); }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    Child(Child&& o) noexcept : m_pid(o.m_pid), m_out(o.m_out) {
        o.m_pid = -1;
        o.m_out = nullptr;
    }
    ~Child() { kill_and_reap(); }

    void start(std::vector<std::string> argv) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            ADD_FAILURE() << "pipe2: " << std::strerror(errno);
            return;
        }
        const pid_t pid = fork();
        if (pid < 0) {
            ADD_FAILURE() << "fork: " << std::strerror(errno);
            return;
        }
        if (pid == 0) {
            dup2(fds[1], STDOUT_FILENO);
            std::vector<char*> args;
            for (auto& a : argv) {
                args.push_back(a.data());
            }
            args.push_back(nullptr);
            execvp(args[0], args.data());
            std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
            _exit(127);
        }
        close(fds[1]);
        m_pid = pid;
        m_out = fdopen(fds[0], "r");
        // Unbuffered: poll() on the fd then tells exactly whether a line can be read, so the
        // reads below can time out instead of hanging a test.
        setvbuf(m_out, nullptr, _IONBF, 0);
    }

    /// Waits until the child's stdout is readable; false after `timeout_ms`.
    bool readable(int timeout_ms) {
        pollfd pfd{fileno(m_out), POLLIN, 0};
        int r;
        while ((r = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR) {
        }
        return r > 0;
    }

    pid_t pid() const { return m_pid; }

    /// Reads stdout lines until one equals `want` (default "ready"); false on EOF.
    bool wait_for_line(const std::string& want = "ready") {
        if (m_out == nullptr) {
            return false;
        }
        char* line = nullptr;
        size_t cap = 0;
        bool found = false;
        for (;;) {
            if (!readable(LINE_TIMEOUT_MS)) {
                ADD_FAILURE() << "no line \"" << want << "\" from the child within " << LINE_TIMEOUT_MS
                              << " ms";
                break;
            }
            const ssize_t n = getline(&line, &cap, m_out);
            if (n < 0) {
                break;
            }
            std::string s(line, static_cast<size_t>(n));
            while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
                s.pop_back();
            }
            if (s == want) {
                found = true;
                break;
            }
        }
        std::free(line);
        return found;
    }

    /// Reads stdout lines until one starts with `prefix`; that line (without the newline), or
    /// nullopt on EOF.
    std::optional<std::string> read_line_prefix(const std::string& prefix) {
        if (m_out == nullptr) {
            return std::nullopt;
        }
        char* line = nullptr;
        size_t cap = 0;
        std::optional<std::string> found;
        for (;;) {
            if (!readable(LINE_TIMEOUT_MS)) {
                ADD_FAILURE() << "no line starting \"" << prefix << "\" from the child within "
                              << LINE_TIMEOUT_MS << " ms";
                break;
            }
            const ssize_t n = getline(&line, &cap, m_out);
            if (n < 0) {
                break;
            }
            std::string s(line, static_cast<size_t>(n));
            while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
                s.pop_back();
            }
            if (s.starts_with(prefix)) {
                found = std::move(s);
                break;
            }
        }
        std::free(line);
        return found;
    }
    bool wait_for_line_prefix(const std::string& prefix) { return read_line_prefix(prefix).has_value(); }

    /// Stops the child with SIGSTOP and waits until it is really stopped.
    bool freeze() {
        if (::kill(m_pid, SIGSTOP) != 0) {
            return false;
        }
        int status = 0;
        return waitpid(m_pid, &status, WUNTRACED) == m_pid && WIFSTOPPED(status);
    }
    bool thaw() { return ::kill(m_pid, SIGCONT) == 0; }

    /// Kills with SIGKILL and reaps; returns the wait status (or -1).
    int kill_and_reap() {
        int status = -1;
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            while (waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
            }
            m_pid = -1;
        }
        if (m_out != nullptr) {
            std::fclose(m_out);
            m_out = nullptr;
        }
        return status;
    }

    /// How long a read of one line waits (the targets print within milliseconds).
    static constexpr int LINE_TIMEOUT_MS = 20000;

  private:
    pid_t m_pid = -1;
    FILE* m_out = nullptr;
};

/// The state letter of /proc/PID/stat, or of thread `tid`'s /proc/PID/task/TID/stat
/// (R, S, T, t, Z...); '?' when unreadable.
inline char state_of(pid_t pid, pid_t tid = 0) {
    const std::string path =
        "/proc/" + std::to_string(pid) + (tid > 0 ? "/task/" + std::to_string(tid) : "") + "/stat";
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t close = text.rfind(')');
    return close == std::string::npos || close + 2 >= text.size() ? '?' : text[close + 2];
}

/// TracerPid of /proc/PID/status (0: not traced), -1 when unreadable.
inline pid_t tracer_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("TracerPid:")) {
            return static_cast<pid_t>(std::strtol(line.c_str() + 10, nullptr, 10));
        }
    }
    return -1;
}

/// Waits (up to 5 s) until the main thread of `pid` sleeps (state S) in system call `nr`
/// (/proc/PID/syscall; x86-64 pause is 34). A target that prints "ready" before it parks
/// can otherwise be seen a few instructions early. False on timeout.
inline bool wait_in_syscall(pid_t pid, int nr) {
    const std::string path = "/proc/" + std::to_string(pid) + "/syscall";
    for (int i = 0; i < 5000; ++i) {
        std::ifstream in(path);
        std::string first;
        if (in >> first && first == std::to_string(nr) && state_of(pid) == 'S') {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

/// A pid that no process has: a child we started, let exit and reaped.
inline pid_t vanished_pid() {
    const pid_t pid = fork();
    if (pid == 0) {
        _exit(0);
    }
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    return pid;
}

/// Result of running a command to completion.
struct RunResult {
    int exit_code = -1;  ///< exit status, or 128+signal if killed by a signal
    std::string out;
    std::string err;
};

/// Runs argv (no shell), capturing stdout and stderr, waiting for it to exit.
/// `stdin_data`, if not empty, is written to its stdin (else stdin is /dev/null).
inline RunResult run(const std::vector<std::string>& argv, const std::string& stdin_data = {}) {
    RunResult r;
    int out[2], err[2], in[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe2: " << std::strerror(errno);
        return r;
    }
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        std::vector<char*> args;
        for (auto& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        execvp(args[0], args.data());
        std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    std::signal(SIGPIPE, SIG_IGN);  // a child that exits early must not kill the test
    // Feed stdin and drain both outputs together so no pipe fills up and blocks.
    std::size_t written = 0;
    if (stdin_data.empty()) {
        close(in[1]);
        in[1] = -1;
    }
    struct pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
    int open_outputs = 2;
    char buf[65536];
    while (open_outputs > 0 || fds[2].fd >= 0) {
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                const ssize_t n = read(fds[i].fd, buf, sizeof buf);
                if (n <= 0) {
                    close(fds[i].fd);
                    fds[i].fd = -1;
                    --open_outputs;
                } else {
                    (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
                }
            }
        }
        if (fds[2].fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            const ssize_t n = write(fds[2].fd, stdin_data.data() + written, stdin_data.size() - written);
            if (n > 0) {
                written += static_cast<std::size_t>(n);
            }
            if (n <= 0 || written == stdin_data.size()) {
                close(fds[2].fd);
                fds[2].fd = -1;
            }
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

}  // namespace xproc::test
