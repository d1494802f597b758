// SPDX-License-Identifier: MIT
#include "xproc/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "xproc/access.hpp"

namespace xproc {

namespace {

/// "/proc/42/stat": the path a reader of an error message can retype.
std::string proc_path(pid_t pid, std::string_view name) {
    std::string path = "/proc/" + std::to_string(pid);
    if (!name.empty()) {
        path += '/';
        path += name;
    }
    return path;
}

/// Parses an unsigned or signed decimal integer that must fill `text` exactly.
template <typename T>
bool parse_int(std::string_view text, T& out, int base = 10) noexcept {
    if (text.empty()) {
        return false;
    }
    const char* first = text.data();
    const char* last = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(first, last, out, base);
    return ec == std::errc() && ptr == last;
}

/// Splits off the next space-separated token of `rest`.
std::string_view next_token(std::string_view& rest) noexcept {
    const std::size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) {
        rest = {};
        return {};
    }
    rest.remove_prefix(start);
    const std::size_t end = rest.find(' ');
    const std::string_view token = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    return token;
}

Error parse_error(std::string_view file, std::string detail) {
    return Error::make(ErrorKind::parse, "parse(" + std::string(file) + ")", std::move(detail));
}

/// ESRCH and ENOENT from a /proc read both mean "the process went away".
bool is_gone_errno(int err) noexcept {
    return err == ESRCH || err == ENOENT;
}

/// Turns an EACCES/EPERM from /proc into an error that says which ptrace rule refused.
Error explain_refusal(Error e, pid_t pid) {
    if (e.kind == ErrorKind::permission && pid > 0) {
        const AccessVerdict verdict = explain_access(pid, AccessMode::read);
        return verdict.to_error(std::move(e.operation), pid, e.errno_value);
    }
    return e;
}

}  // namespace

// ---------------------------------------------------------------------------
// Pure parsers

Result<ProcStat> parse_proc_stat(std::string_view text) {
    // "PID (COMM) S PPID ...": COMM may contain anything, including ") ", so
    // the fields resume after the LAST ')'.
    const std::size_t open = text.find(" (");
    const std::size_t close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open + 2) {
        return fail(parse_error("stat", "no \"PID (COMM)\" prefix"));
    }
    ProcStat st;
    if (!parse_int(text.substr(0, open), st.pid) || st.pid < 0) {
        return fail(parse_error("stat", "bad pid \"" + std::string(text.substr(0, open)) + "\""));
    }
    st.comm.assign(text.substr(open + 2, close - open - 2));

    std::string_view rest = text.substr(close + 1);
    // Field numbers as in proc(5): 1 is the pid, 2 the comm, 3 the state.
    int field = 3;
    auto bad = [&](std::string_view token) {
        return fail(
            parse_error("stat", "field " + std::to_string(field) + " is \"" + std::string(token) + "\""));
    };
    for (; field <= 28; ++field) {
        const std::string_view token = next_token(rest);
        if (token.empty()) {
            return fail(parse_error("stat", "only " + std::to_string(field - 1) + " fields, need 28"));
        }
        bool ok = true;
        switch (field) {
            case 3:
                ok = token.size() == 1;
                st.state = token[0];
                break;
            case 4:
                ok = parse_int(token, st.ppid);
                break;
            case 5:
                ok = parse_int(token, st.pgrp);
                break;
            case 6:
                ok = parse_int(token, st.session);
                break;
            case 9:
                ok = parse_int(token, st.flags);
                break;
            case 14:
                ok = parse_int(token, st.utime_ticks);
                break;
            case 15:
                ok = parse_int(token, st.stime_ticks);
                break;
            case 20:
                ok = parse_int(token, st.num_threads);
                break;
            case 22:
                ok = parse_int(token, st.start_time_ticks);
                break;
            case 23:
                ok = parse_int(token, st.vsize);
                break;
            case 24:
                ok = parse_int(token, st.rss_pages);
                break;
            case 28:
                ok = parse_int(token, st.start_stack);
                break;
            default:
                break;  // fields xproc does not use are skipped unchecked
        }
        if (!ok) {
            return bad(token);
        }
    }
    return st;
}

Result<ProcIds> parse_proc_ids(std::string_view status_text) {
    ProcIds ids;
    enum : unsigned { HAVE_UID = 1, HAVE_GID = 2, HAVE_CAP_EFF = 4, HAVE_CAP_PRM = 8, HAVE_TRACER = 16 };
    unsigned have = 0;
    std::string_view rest = status_text;
    int line_no = 0;
    while (!rest.empty()) {
        const std::size_t nl = rest.find('\n');
        const std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
        ++line_no;

        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            continue;
        }
        const std::string_view key = line.substr(0, colon);
        std::string_view value = line.substr(colon + 1);
        // Values are tab-separated; treat tabs and spaces alike.
        auto token = [&value]() -> std::string_view {
            const std::size_t start = value.find_first_not_of(" \t");
            if (start == std::string_view::npos) {
                value = {};
                return {};
            }
            value.remove_prefix(start);
            const std::size_t end = value.find_first_of(" \t");
            const std::string_view t = value.substr(0, end);
            value.remove_prefix(end == std::string_view::npos ? value.size() : end);
            return t;
        };
        auto bad = [&] {
            return fail(
                parse_error("status", "line " + std::to_string(line_no) + " \"" + std::string(line) + "\""));
        };
        if (key == "Uid" || key == "Gid") {
            std::uint32_t v[4];
            for (auto& x : v) {
                if (!parse_int(token(), x)) {
                    return bad();
                }
            }
            if (key == "Uid") {
                ids.ruid = v[0];
                ids.euid = v[1];
                ids.suid = v[2];
                ids.fsuid = v[3];
                have |= HAVE_UID;
            } else {
                ids.rgid = v[0];
                ids.egid = v[1];
                ids.sgid = v[2];
                ids.fsgid = v[3];
                have |= HAVE_GID;
            }
        } else if (key == "CapEff") {
            if (!parse_int(token(), ids.cap_eff, 16)) {
                return bad();
            }
            have |= HAVE_CAP_EFF;
        } else if (key == "CapPrm") {
            if (!parse_int(token(), ids.cap_prm, 16)) {
                return bad();
            }
            have |= HAVE_CAP_PRM;
        } else if (key == "Tgid") {
            if (!parse_int(token(), ids.tgid) || ids.tgid <= 0) {
                return bad();
            }
        } else if (key == "TracerPid") {
            if (!parse_int(token(), ids.tracer_pid) || ids.tracer_pid < 0) {
                return bad();
            }
            have |= HAVE_TRACER;
        } else if (key == "NoNewPrivs") {
            int v = 0;
            if (!parse_int(token(), v)) {
                return bad();
            }
            ids.no_new_privs = v != 0;
        }
    }
    // NoNewPrivs is optional (Linux >= 4.10), and so is Tgid, for status texts cut down
    // to the ids (tests, fuzzing); the rest is in every kernel xproc runs on.
    constexpr unsigned REQUIRED = HAVE_UID | HAVE_GID | HAVE_CAP_EFF | HAVE_CAP_PRM | HAVE_TRACER;
    if ((have & REQUIRED) != REQUIRED) {
        std::string missing;
        const std::pair<unsigned, const char*> names[] = {{HAVE_UID, "Uid"},
                                                          {HAVE_GID, "Gid"},
                                                          {HAVE_CAP_EFF, "CapEff"},
                                                          {HAVE_CAP_PRM, "CapPrm"},
                                                          {HAVE_TRACER, "TracerPid"}};
        for (const auto& [bit, name] : names) {
            if ((have & bit) == 0) {
                missing += missing.empty() ? "" : ", ";
                missing += name;
            }
        }
        return fail(parse_error("status", "missing " + missing));
    }
    return ids;
}

// ---------------------------------------------------------------------------
// Process

Result<Process> Process::open(pid_t pid) {
    if (pid <= 0) {
        return fail(Error::make(ErrorKind::invalid_argument, "Process::open(" + std::to_string(pid) + ")",
                                "a pid must be positive"));
    }
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
        const int err = errno;
        Error e = Error::from_errno(err, "pidfd_open(" + std::to_string(pid) + ")", pid);
        if (err == EINVAL) {
            e.detail = "not a process id (a thread id that is not a thread-group leader?)";
        }
        return fail(std::move(e));
    }
    UniqueFd pidfd_owner(pidfd);

    const std::string dir_path = proc_path(pid, {});
    const int dir =
        detail::retry_eintr([&] { return ::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (dir < 0) {
        const int err = errno;
        return fail(Error::from_errno(is_gone_errno(err) ? ESRCH : err, "open(" + dir_path + ")", pid));
    }
    Process process(pid, std::move(pidfd_owner), UniqueFd(dir));
    // The pid could have been reaped and reused between pidfd_open and open:
    // if the pidfd's process still holds the pid now, /proc/PID is that process.
    if (auto live = process.still_alive(("open(" + dir_path + ")").c_str()); !live) {
        return fail(std::move(live.error()));
    }
    return process;
}

Result<Process> Process::self() {
    return open(::getpid());
}

bool Process::alive() const noexcept {
    // A pidfd becomes readable when the process exits.
    struct pollfd pfd = {m_pidfd.get(), POLLIN, 0};
    const int n = detail::retry_eintr([&] { return ::poll(&pfd, 1, 0); });
    return n == 0;
}

Result<void> Process::still_alive(const char* what) const {
    // Signal 0 through the pidfd reaches the pinned process as long as it has not
    // been reaped (a zombie still holds its pid, so nothing can reuse it). EPERM
    // means it exists but we may not signal it, which is just as good here.
    const long r = syscall(SYS_pidfd_send_signal, m_pidfd.get(), 0, nullptr, 0);
    if (r == 0) {
        return {};
    }
    const int err = errno;
    if (err == EPERM) {
        return {};
    }
    Error e = Error::from_errno(err, what, m_pid);
    if (err == ESRCH) {
        e.detail = "process " + std::to_string(m_pid) + " exited and was reaped";
    }
    return fail(std::move(e));
}

Result<std::string> Process::read_entry(const char* name) const {
    const std::string path = proc_path(m_pid, name);
    auto text = read_file_at(m_proc_dir.get(), name, path, m_pid);
    // A vanished process shows as ENOENT/ESRCH or an early EOF: say so, not "file not found".
    const std::string op = text ? "read(" + path + ")" : text.error().operation;
    if (auto live = still_alive(op.c_str()); !live) {
        return fail(std::move(live.error()));
    }
    if (!text) {
        return fail(explain_refusal(std::move(text.error()), m_pid));
    }
    return text;
}

Result<ProcStat> Process::stat() const {
    auto text = read_entry("stat");
    if (!text) {
        return fail(std::move(text.error()));
    }
    auto st = parse_proc_stat(*text);
    if (!st) {
        st.error().operation = "parse(" + proc_path(m_pid, "stat") + ")";
        st.error().pid = m_pid;
    }
    return st;
}

Result<ProcIds> Process::ids() const {
    auto text = read_entry("status");
    if (!text) {
        return fail(std::move(text.error()));
    }
    auto ids = parse_proc_ids(*text);
    if (!ids) {
        ids.error().operation = "parse(" + proc_path(m_pid, "status") + ")";
        ids.error().pid = m_pid;
    }
    return ids;
}

Result<std::string> Process::comm() const {
    auto text = read_entry("comm");
    if (!text) {
        return fail(std::move(text.error()));
    }
    if (!text->empty() && text->back() == '\n') {
        text->pop_back();
    }
    return text;
}

Result<std::vector<std::string>> Process::cmdline() const {
    auto text = read_entry("cmdline");
    if (!text) {
        return fail(std::move(text.error()));
    }
    // Arguments are NUL-terminated; the last one may lack its NUL when the
    // process rewrote its argv area.
    std::vector<std::string> args;
    std::string_view rest = *text;
    while (!rest.empty()) {
        const std::size_t nul = rest.find('\0');
        args.emplace_back(rest.substr(0, nul));
        rest.remove_prefix(nul == std::string_view::npos ? rest.size() : nul + 1);
    }
    return args;
}

Result<std::string> Process::exe() const {
    std::string target(256, '\0');
    for (;;) {
        const ssize_t n = ::readlinkat(m_proc_dir.get(), "exe", target.data(), target.size());
        if (n < 0) {
            const int err = errno;
            const std::string op = "readlink(" + proc_path(m_pid, "exe") + ")";
            if (auto live = still_alive(op.c_str()); !live) {
                return fail(std::move(live.error()));
            }
            if (err == ENOENT) {
                return std::string();  // kernel threads and zombies have no executable
            }
            Error e = explain_refusal(Error::from_errno(err, op, m_pid), m_pid);
            if (e.kind == ErrorKind::kernel_thread || e.kind == ErrorKind::zombie) {
                return std::string();  // refused, but there is no executable to show anyway
            }
            return fail(std::move(e));
        }
        if (static_cast<std::size_t>(n) < target.size()) {
            target.resize(static_cast<std::size_t>(n));
            break;
        }
        target.resize(target.size() * 2);  // may have been truncated: retry larger
    }
    if (auto live = still_alive(("readlink(" + proc_path(m_pid, "exe") + ")").c_str()); !live) {
        return fail(std::move(live.error()));
    }
    return target;
}

namespace {

/// Numeric names of a directory (/proc or /proc/PID/task), ascending. `dir_fd`
/// is consumed.
Result<std::vector<pid_t>> numeric_entries(UniqueFd dir_fd, const std::string& what, pid_t pid) {
    struct CloseDir {
        void operator()(DIR* d) const noexcept { ::closedir(d); }
    };
    std::unique_ptr<DIR, CloseDir> dir(::fdopendir(dir_fd.get()));
    if (!dir) {
        const int err = errno;
        return fail(Error::from_errno(err, "fdopendir(" + what + ")", pid));
    }
    dir_fd.release();  // owned by `dir` now
    std::vector<pid_t> ids;
    for (;;) {
        errno = 0;
        const dirent* entry = ::readdir(dir.get());
        if (entry == nullptr) {
            if (const int err = errno; err != 0) {
                return fail(
                    Error::from_errno(is_gone_errno(err) ? ESRCH : err, "readdir(" + what + ")", pid));
            }
            break;
        }
        pid_t id = 0;
        if (entry->d_name[0] >= '1' && entry->d_name[0] <= '9' && parse_int(entry->d_name, id)) {
            ids.push_back(id);
        }
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

}  // namespace

Result<std::vector<pid_t>> Process::threads() const {
    const int fd = detail::retry_eintr(
        [&] { return ::openat(m_proc_dir.get(), "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) {
        const int err = errno;
        const std::string op = "open(" + proc_path(m_pid, "task") + ")";
        if (auto live = still_alive(op.c_str()); !live) {
            return fail(std::move(live.error()));
        }
        return fail(explain_refusal(Error::from_errno(err, op, m_pid), m_pid));
    }
    auto tids = numeric_entries(UniqueFd(fd), proc_path(m_pid, "task"), m_pid);
    if (auto live = still_alive(("readdir(" + proc_path(m_pid, "task") + ")").c_str()); !live) {
        return fail(std::move(live.error()));
    }
    return tids;
}

Result<std::uint64_t> Process::start_time() const {
    auto st = stat();
    if (!st) {
        return fail(std::move(st.error()));
    }
    return st->start_time_ticks;
}

Result<pid_t> thread_group_of(pid_t tid) {
    const std::string path = proc_path(tid, "status");
    if (tid <= 0) {
        return fail(Error::make(ErrorKind::invalid_argument, "thread_group_of(" + std::to_string(tid) + ")",
                                "a thread id must be positive"));
    }
    auto text = read_file(path.c_str(), tid);
    if (!text) {
        Error& e = text.error();
        if (is_gone_errno(e.errno_value)) {
            // /proc/TID is absent: no thread has that id (any more).
            e = Error::from_errno(ESRCH, std::move(e.operation), tid);
        }
        return fail(std::move(e));
    }
    auto ids = parse_proc_ids(*text);
    if (!ids || ids->tgid <= 0) {
        Error e = ids ? parse_error("status", "no Tgid line") : std::move(ids.error());
        e.operation = "parse(" + path + ")";
        e.pid = tid;
        return fail(std::move(e));
    }
    return ids->tgid;
}

Result<std::vector<pid_t>> list_processes() {
    auto dir = open_fd("/proc", O_RDONLY | O_DIRECTORY);
    if (!dir) {
        return fail(std::move(dir.error()));
    }
    return numeric_entries(std::move(*dir), "/proc", 0);
}

}  // namespace xproc
