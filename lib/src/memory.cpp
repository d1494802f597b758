// SPDX-License-Identifier: MIT
#include "xproc/memory.hpp"

#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "xproc/access.hpp"
#include "xproc/maps.hpp"

namespace xproc {

namespace {

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

/// "7f00-7f10 ---p [heap]": the mapping as a maps line shows it.
std::string describe(const Mapping& m) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%" PRIx64 "-%" PRIx64 " ", m.start, m.end);
    std::string out = buf;
    out += m.perms.text();
    if (!m.name.empty()) {
        out += ' ';
        out += m.name;
    }
    return out;
}

}  // namespace

std::string_view to_string(MemoryPath path) noexcept {
    switch (path) {
        case MemoryPath::none:
            return "none";
        case MemoryPath::vm_syscall:
            return "process_vm_readv";
        case MemoryPath::proc_mem:
            return "/proc/PID/mem";
        case MemoryPath::ptrace:
            return "ptrace";
    }
    return "?";
}

Result<RemoteMemory> RemoteMemory::open(pid_t pid, MemoryOptions options) {
    auto process = Process::open(pid);
    if (!process) {
        return fail(std::move(process.error()));
    }
    return open(std::move(*process), std::move(options));
}

Result<RemoteMemory> RemoteMemory::open(Process&& process, MemoryOptions options) {
    if (options.max_per_call == 0 || options.max_iovecs == 0) {
        return fail(Error::make(ErrorKind::invalid_argument, "RemoteMemory::open",
                                "max_per_call and max_iovecs must be positive", process.pid()));
    }
    options.max_per_call = std::min(options.max_per_call, MAX_BYTES_PER_CALL);
    options.max_iovecs = std::min<std::size_t>(options.max_iovecs, IOV_MAX);
    return RemoteMemory(std::move(process), std::move(options));
}

Error RemoteMemory::incomplete_error(std::string_view what, std::uint64_t address, std::size_t size,
                                     const Transfer& t) const {
    Error e =
        Error::make(ErrorKind::os, std::string(what) + "(" + hex(address) + ", " + std::to_string(size) + ")",
                    t.stop_reason, pid());
    e.errno_value = t.stop_errno != 0 ? t.stop_errno : EFAULT;
    e.with_address(t.stop_address);
    if (t.bytes != 0) {
        e.detail = "only " + std::to_string(t.bytes) + " of " + std::to_string(size) + " bytes: " + e.detail;
    }
    return e;
}

/// One read or write: the state of the path choice while it runs.
struct RemoteMemory::Engine {
    RemoteMemory& self;
    Direction dir;
    std::optional<MemoryMap> maps;  // read on the first fault, at most once per call
    bool maps_tried = false;
    std::optional<bool> stopped_under_us;  // checked at most once per call

    enum class Step : std::uint8_t { progressed, failed, fatal };

    pid_t pid() const noexcept { return self.pid(); }
    bool reading() const noexcept { return dir == Direction::read; }
    const char* vm_name() const noexcept { return reading() ? "process_vm_readv" : "process_vm_writev"; }

    std::string op(const char* name, std::uint64_t addr, std::size_t len) const {
        return std::string(name) + "(" + hex(addr) + ", " + std::to_string(len) + ")";
    }

    /// The error for ESRCH or a vanished address space: the process exited (or, if it is still
    /// there, it is a kernel thread, which has no user memory).
    Error exited(std::uint64_t addr, std::size_t len) const {
        if (self.m_process.alive()) {
            if (auto st = self.m_process.stat(); st && st->is_kernel_thread()) {
                Error k = Error::make(ErrorKind::kernel_thread, op(vm_name(), addr, len),
                                      "a kernel thread has no user memory", pid());
                k.errno_value = ESRCH;
                return std::move(k).with_address(addr);
            }
        }
        Error e =
            Error::make(ErrorKind::no_such_process, op(vm_name(), addr, len),
                        "the process exited during the " + std::string(reading() ? "read" : "write"), pid());
        e.errno_value = ESRCH;
        return std::move(e).with_address(addr);
    }

    void note(std::size_t n) const {
        if (self.m_options.on_call) {
            self.m_options.on_call(n);
        }
    }

    /// The mapping holding `addr`, nullptr if none (or if the map cannot be read).
    const Mapping* mapping_at(std::uint64_t addr) {
        if (!maps_tried) {
            maps_tried = true;
            if (auto m = read_maps(self.m_process)) {
                maps = std::move(*m);
            }
        }
        if (!maps) {
            return nullptr;
        }
        const auto& v = maps->mappings();
        auto it = std::upper_bound(v.begin(), v.end(), addr,
                                   [](std::uint64_t a, const Mapping& m) { return a < m.start; });
        if (it == v.begin()) {
            return nullptr;
        }
        --it;
        return addr < it->end ? &*it : nullptr;
    }

    /// Why the access at `addr` stopped, in words.
    std::string reason(std::uint64_t addr, int err) {
        const Mapping* m = mapping_at(addr);
        if (m == nullptr) {
            if (maps) {
                return "unmapped (no mapping at " + hex(addr) + ")";
            }
            return std::string(strerrorname_np(err) ? strerrorname_np(err) : "error") + " at " + hex(addr);
        }
        const Permissions& p = m->perms;
        if (!p.read && !p.write && !p.exec) {
            return "PROT_NONE mapping " + describe(*m);
        }
        if (!reading() && !p.write) {
            return "read-only mapping " + describe(*m);
        }
        if (reading() && !p.read) {
            return "unreadable mapping " + describe(*m);
        }
        return "mapping " + describe(*m) + " not accessible at " + hex(addr) +
               " (beyond the end of its file, or I/O memory)";
    }

    void stop(Transfer& t, std::uint64_t addr, int err, std::string why) const {
        t.stop_address = addr;
        t.stop_errno = err;
        t.stop_reason = std::move(why);
    }

    Step try_vm(std::uint64_t addr, std::byte* buf, std::size_t len, Transfer& t, int& err) {
        struct iovec local = {buf, len};
        struct iovec remote = {reinterpret_cast<void*>(addr), len};
        const ssize_t n = detail::retry_eintr([&] {
            return reading() ? ::process_vm_readv(pid(), &local, 1, &remote, 1, 0)
                             : ::process_vm_writev(pid(), &local, 1, &remote, 1, 0);
        });
        if (t.path == MemoryPath::none) {
            t.path = MemoryPath::vm_syscall;
        }
        if (n > 0) {
            t.bytes += static_cast<std::size_t>(n);
            t.path = MemoryPath::vm_syscall;
            note(static_cast<std::size_t>(n));
            return Step::progressed;
        }
        err = n == 0 ? EFAULT : errno;
        return err == ESRCH ? Step::fatal : Step::failed;
    }

    /// Opens /proc/PID/mem through the pinned /proc/PID directory (never a reused pid).
    int mem_fd(int& err) {
        RemoteMemory& m = self;
        if (!m.m_mem_fd && m.m_mem_open_errno == 0) {
            int fd = detail::retry_eintr(
                [&] { return ::openat(m.m_process.proc_dir(), "mem", O_RDWR | O_CLOEXEC); });
            bool writable = fd >= 0;
            if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
                fd = detail::retry_eintr(
                    [&] { return ::openat(m.m_process.proc_dir(), "mem", O_RDONLY | O_CLOEXEC); });
            }
            if (fd < 0) {
                const int e = errno;
                if (e == ENOENT || e == ESRCH) {
                    err = ESRCH;
                    return -1;
                }
                m.m_mem_open_errno = e;
            } else {
                m.m_mem_fd.reset(fd);
                m.m_mem_writable = writable;
            }
        }
        if (!m.m_mem_fd) {
            err = m.m_mem_open_errno;
            return -1;
        }
        if (!reading() && !m.m_mem_writable) {
            err = EACCES;
            return -1;
        }
        return m.m_mem_fd.get();
    }

    Step try_proc_mem(std::uint64_t addr, std::byte* buf, std::size_t len, Transfer& t, int& err) {
        const int fd = mem_fd(err);
        if (fd < 0) {
            return err == ESRCH ? Step::fatal : Step::failed;
        }
        const ssize_t n = detail::retry_eintr([&] {
            return reading() ? ::pread(fd, buf, len, static_cast<off_t>(addr))
                             : ::pwrite(fd, buf, len, static_cast<off_t>(addr));
        });
        if (t.path == MemoryPath::none || t.bytes == 0) {
            t.path = MemoryPath::proc_mem;
        }
        if (n > 0) {
            t.bytes += static_cast<std::size_t>(n);
            t.path = MemoryPath::proc_mem;
            note(static_cast<std::size_t>(n));
            return Step::progressed;
        }
        if (n == 0) {
            // mem_rw() returns 0 only when the address space is gone: the process exited.
            err = ESRCH;
            return Step::fatal;
        }
        err = errno;
        return Step::failed;
    }

    bool target_stopped_under_us() {
        if (!stopped_under_us) {
            bool yes = false;
            if (auto ids = self.m_process.ids(); ids && ids->tracer_pid == ::gettid()) {
                auto st = self.m_process.stat();
                yes = st && st->state == 't';
            }
            stopped_under_us = yes;
        }
        return *stopped_under_us;
    }

    Step try_ptrace(std::uint64_t addr, std::byte* buf, std::size_t len, Transfer& t, int& err) {
        constexpr std::size_t W = sizeof(long);
        std::size_t done = 0;
        if (t.bytes == 0) {
            t.path = MemoryPath::ptrace;
        }
        while (done < len) {
            const std::uint64_t a = addr + done;
            const std::uint64_t word_addr = a & ~static_cast<std::uint64_t>(W - 1);
            const std::size_t off = static_cast<std::size_t>(a - word_addr);
            const std::size_t n = std::min(W - off, len - done);
            errno = 0;
            long word = ::ptrace(PTRACE_PEEKDATA, pid(), reinterpret_cast<void*>(word_addr), nullptr);
            if (errno != 0) {
                err = errno;
                break;
            }
            if (reading()) {
                std::memcpy(buf + done, reinterpret_cast<const std::byte*>(&word) + off, n);
            } else {
                std::memcpy(reinterpret_cast<std::byte*>(&word) + off, buf + done, n);
                if (::ptrace(PTRACE_POKEDATA, pid(), reinterpret_cast<void*>(word_addr),
                             reinterpret_cast<void*>(word)) != 0) {
                    err = errno;
                    break;
                }
            }
            done += n;
        }
        if (done == 0) {
            return Step::failed;
        }
        t.bytes += done;
        t.path = MemoryPath::ptrace;
        note(done);
        return Step::progressed;
    }

    /// Moves t.requested bytes between `buf` and `address`, continuing from t.bytes.
    Result<void> run(std::uint64_t address, std::byte* buf, Transfer& t) {
        const MemoryOptions& o = self.m_options;
        if (o.force_path && o.path == MemoryPath::ptrace && !target_stopped_under_us()) {
            return fail(Error::make(ErrorKind::invalid_argument, op("PTRACE_PEEKDATA", address, t.requested),
                                    "the ptrace path needs the target in a ptrace-stop under this thread "
                                    "(TracerPid == our tid, state t)",
                                    pid())
                            .with_address(address));
        }
        if (o.force_path && o.path == MemoryPath::none) {
            return fail(
                Error::make(ErrorKind::invalid_argument, "RemoteMemory", "force_path without a path", pid()));
        }
        while (t.bytes < t.requested) {
            const std::uint64_t addr = address + t.bytes;
            if (addr >= KERNEL_ADDRESS_START || addr < address) {
                stop(t, addr, EFAULT, "kernel address");
                return {};
            }
            const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(
                {t.requested - t.bytes, KERNEL_ADDRESS_START - addr, o.max_per_call}));
            std::byte* const p = buf + t.bytes;
            int err = 0;
            int vm_err = 0;
            Step s = Step::failed;

            const bool vm_ok =
                o.force_path ? o.path == MemoryPath::vm_syscall : self.m_vm_unavailable_errno == 0;
            std::size_t fallback_len = len;
            if (vm_ok) {
                s = try_vm(addr, p, len, t, vm_err);
                if (s == Step::progressed) {
                    continue;
                }
                if (s == Step::fatal) {
                    return fail(exited(addr, len));
                }
                err = vm_err;
                if (o.force_path) {
                    // no fallback: the end of the loop reports it
                } else if (err == EPERM || err == ENOSYS) {
                    // Refused for the whole process (ptrace rules, or no cross-memory attach):
                    // do not ask again.
                    self.m_vm_unavailable_errno = err;
                } else {
                    const Mapping* m = mapping_at(addr);
                    if (m == nullptr && maps) {
                        stop(t, addr, err, reason(addr, err));
                        return {};
                    }
                    if (m != nullptr) {
                        // Fall back for this mapping only; the next mapping tries the fast path again.
                        fallback_len = static_cast<std::size_t>(std::min<std::uint64_t>(len, m->end - addr));
                    }
                }
            }
            int mem_err = 0;
            const bool mem_ok = o.force_path ? o.path == MemoryPath::proc_mem : o.allow_proc_mem;
            if (mem_ok) {
                s = try_proc_mem(addr, p, fallback_len, t, mem_err);
                if (s == Step::progressed) {
                    continue;
                }
                if (s == Step::fatal) {
                    return fail(exited(addr, len));
                }
                err = mem_err;
            }
            int pt_err = 0;
            const bool pt_ok =
                o.force_path ? o.path == MemoryPath::ptrace : o.allow_ptrace && target_stopped_under_us();
            if (pt_ok) {
                s = try_ptrace(addr, p, fallback_len, t, pt_err);
                if (s == Step::progressed) {
                    continue;
                }
                if (pt_err == ESRCH && !self.m_process.alive()) {
                    return fail(exited(addr, len));
                }
                err = pt_err;
            }
            if (err == 0) {
                err = self.m_vm_unavailable_errno != 0 ? self.m_vm_unavailable_errno : EFAULT;
            }
            // Nothing could be attempted: every allowed path refused access to the process.
            const bool vm_refused = !vm_ok || vm_err == EPERM || vm_err == ENOSYS;
            const bool mem_refused = !mem_ok || mem_err == EACCES || mem_err == EPERM;
            const bool any_permission = vm_err == EPERM || (!vm_ok && self.m_vm_unavailable_errno == EPERM) ||
                                        mem_err == EACCES || mem_err == EPERM;
            if (vm_refused && mem_refused && !pt_ok && any_permission && t.bytes == 0) {
                if (!self.m_process.alive()) {
                    return fail(exited(addr, len));
                }
                const AccessVerdict verdict = explain_access(pid(), AccessMode::attach);
                Error e = verdict.to_error(op(vm_name(), addr, len), pid(), EPERM);
                return fail(std::move(e).with_address(addr));
            }
            stop(t, addr, err, reason(addr, err));
            return {};
        }
        return {};
    }
};

namespace {

/// Bulk reads: the kernel's process_vm_readv pins and copies page by page, so one thread
/// moves about half of what memcpy does (bench/memory_bench); parts read by several
/// threads at once add up. Only for reads large enough that starting threads (tens of
/// microseconds) does not matter.
constexpr std::size_t PARALLEL_READ_MIN = std::size_t{32} << 20;
constexpr std::size_t PARALLEL_READ_PART_MIN = std::size_t{16} << 20;
constexpr unsigned PARALLEL_READ_MAX_THREADS = 4;
/// Bytes per process_vm_readv call of a part: 1 MiB measured best (bench/memory_bench: 256 KiB
/// to 64 MiB tried; whole parts in one call were slowest).
constexpr std::size_t PARALLEL_READ_CALL = std::size_t{1} << 20;

/// Reads [address, address + len) into `out` with process_vm_readv, `max_per_call` bytes at
/// most per call; returns the bytes read before the first failure.
std::size_t read_part(pid_t pid, std::uint64_t address, std::byte* out, std::size_t len,
                      std::size_t max_per_call) noexcept {
    std::size_t done = 0;
    while (done < len) {
        const std::size_t n = std::min(len - done, max_per_call);
        struct iovec local = {out + done, n};
        struct iovec remote = {reinterpret_cast<void*>(address + done), n};
        const ssize_t got =
            detail::retry_eintr([&] { return ::process_vm_readv(pid, &local, 1, &remote, 1, 0); });
        if (got <= 0) {
            break;
        }
        done += static_cast<std::size_t>(got);
    }
    return done;
}

}  // namespace

std::size_t RemoteMemory::parallel_read_prefix(std::uint64_t address, std::span<std::byte> out) {
    const MemoryOptions& o = m_options;
    const bool vm_allowed = o.force_path ? o.path == MemoryPath::vm_syscall : m_vm_unavailable_errno == 0;
    if (out.size() < PARALLEL_READ_MIN || !vm_allowed || o.on_call || address >= KERNEL_ADDRESS_START ||
        KERNEL_ADDRESS_START - address < out.size()) {
        return 0;
    }
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    const auto threads = static_cast<unsigned>(
        std::min<std::size_t>({cpus, PARALLEL_READ_MAX_THREADS, out.size() / PARALLEL_READ_PART_MIN}));
    if (threads < 2) {
        return 0;
    }
    // Only a range that mappings cover end to end, all readable: a huge request that runs
    // into a hole (or a guess at a size) is read serially and stops there, and no helper
    // thread fills the caller's buffer beyond it.
    {
        auto maps = read_maps(m_process);
        if (!maps) {
            return 0;
        }
        std::uint64_t at = address;
        const std::uint64_t end = address + out.size();
        for (const Mapping& m : maps->mappings()) {
            if (m.end <= at) {
                continue;
            }
            if (m.start > at || !m.perms.read) {
                return 0;
            }
            at = m.end;
            if (at >= end) {
                break;
            }
        }
        if (at < end) {
            return 0;
        }
    }
    // Parts of equal size, page-aligned boundaries (the last part takes the rest).
    const std::size_t part = (out.size() / threads) & ~std::size_t{4095};
    std::vector<std::size_t> done(threads, 0);
    std::vector<std::thread> helpers;
    helpers.reserve(threads - 1);
    const pid_t target = m_process.pid();
    try {
        for (unsigned i = 1; i < threads; ++i) {
            const std::size_t off = i * part;
            const std::size_t len = i + 1 == threads ? out.size() - off : part;
            helpers.emplace_back([&, i, off, len] {
                done[i] = read_part(target, address + off, out.data() + off, len,
                                    std::min(o.max_per_call, PARALLEL_READ_CALL));
            });
        }
    } catch (const std::system_error&) {
        // No thread to be had: the parts started are joined below and the rest is read serially.
    }
    done[0] = read_part(target, address, out.data(), part, std::min(o.max_per_call, PARALLEL_READ_CALL));
    for (auto& h : helpers) {
        h.join();
    }
    // The prefix read without a failure; the caller reads on from its end serially, with
    // the fallbacks and the exact stop reason (parts after a short one are read again).
    std::size_t prefix = 0;
    for (unsigned i = 0; i < threads; ++i) {
        const std::size_t len = i + 1 == threads ? out.size() - i * part : part;
        const bool started = i == 0 || i - 1 < helpers.size();
        if (!started) {
            break;
        }
        prefix += done[i];
        if (done[i] != len) {
            break;
        }
    }
    return prefix;
}

Result<Transfer> RemoteMemory::read(std::uint64_t address, std::span<std::byte> out) {
    Transfer t;
    t.requested = out.size();
    t.bytes = parallel_read_prefix(address, out);
    if (t.bytes > 0) {
        t.path = MemoryPath::vm_syscall;
    }
    Engine engine{*this, Direction::read, {}, false, {}};
    if (auto r = engine.run(address, out.data(), t); !r) {
        return fail(std::move(r.error()));
    }
    if (!m_process.alive()) {
        return fail(engine.exited(address, out.size()));
    }
    return t;
}

Result<Transfer> RemoteMemory::write(std::uint64_t address, std::span<const std::byte> in) {
    Transfer t;
    t.requested = in.size();
    Engine engine{*this, Direction::write, {}, false, {}};
    // The engine moves bytes both ways through one pointer; a write only reads from it.
    if (auto r = engine.run(address, const_cast<std::byte*>(in.data()), t); !r) {
        return fail(std::move(r.error()));
    }
    if (!m_process.alive()) {
        return fail(engine.exited(address, in.size()));
    }
    return t;
}

Result<std::vector<Transfer>> RemoteMemory::readv(std::span<const Range> ranges) {
    std::vector<Transfer> out(ranges.size());
    Engine engine{*this, Direction::read, {}, false, {}};
    const std::size_t max_iov = m_options.max_iovecs;
    std::vector<struct iovec> local;
    std::vector<struct iovec> remote;
    local.reserve(std::min(max_iov, ranges.size()));
    remote.reserve(std::min(max_iov, ranges.size()));

    auto single = [&](std::size_t i) -> Result<void> {
        return engine.run(ranges[i].address, ranges[i].out.data(), out[i]);
    };

    std::size_t i = 0;
    while (i < ranges.size()) {
        out[i].requested = ranges[i].out.size();
        const bool batch_ok = m_vm_unavailable_errno == 0 &&
                              (!m_options.force_path || m_options.path == MemoryPath::vm_syscall);
        if (!batch_ok) {
            if (auto r = single(i); !r) {
                return fail(std::move(r.error()));
            }
            ++i;
            continue;
        }
        // Gather whole ranges (user space, within the per-call limit) into one call.
        local.clear();
        remote.clear();
        std::size_t total = 0;
        std::size_t j = i;
        for (; j < ranges.size() && local.size() < max_iov; ++j) {
            const Range& r = ranges[j];
            out[j].requested = r.out.size();
            const std::size_t n = r.out.size();
            if (n == 0) {
                continue;
            }
            if (r.address >= KERNEL_ADDRESS_START || KERNEL_ADDRESS_START - r.address < n ||
                total + n > m_options.max_per_call) {
                break;
            }
            local.push_back({r.out.data(), n});
            remote.push_back({reinterpret_cast<void*>(r.address), n});
            total += n;
        }
        if (local.empty()) {
            if (j == i) {
                // The first range cannot be batched (too big, kernel half): on its own.
                if (auto r = single(i); !r) {
                    return fail(std::move(r.error()));
                }
                ++i;
            } else {
                i = j;  // only empty ranges: complete
            }
            continue;
        }
        const ssize_t n = detail::retry_eintr([&] {
            return ::process_vm_readv(pid(), local.data(), local.size(), remote.data(), remote.size(), 0);
        });
        if (n < 0) {
            const int err = errno;
            if (err == ESRCH) {
                return fail(engine.exited(ranges[i].address, ranges[i].out.size()));
            }
            // EFAULT on the first byte, or EPERM/ENOSYS: let the single path decide.
            std::size_t k = i;
            while (k < j && ranges[k].out.empty()) {
                ++k;
            }
            for (std::size_t z = i; z < k; ++z) {
                out[z].path = MemoryPath::vm_syscall;
            }
            if (k < j) {
                if (auto r = single(k); !r) {
                    return fail(std::move(r.error()));
                }
            }
            i = k + 1;
            continue;
        }
        if (n > 0 && m_options.on_call) {
            m_options.on_call(static_cast<std::size_t>(n));
        }
        // Hand out the n bytes in order; the range where the call stopped finishes on its own.
        std::size_t left = static_cast<std::size_t>(n);
        std::size_t k = i;
        for (; k < j; ++k) {
            Transfer& t = out[k];
            const std::size_t want = ranges[k].out.size();
            t.path = MemoryPath::vm_syscall;
            if (left >= want) {
                t.bytes = want;
                left -= want;
                continue;
            }
            t.bytes = left;
            left = 0;
            if (auto r = single(k); !r) {
                return fail(std::move(r.error()));
            }
            ++k;
            break;
        }
        i = k;
    }
    if (!m_process.alive()) {
        return fail(engine.exited(ranges.empty() ? 0 : ranges.front().address, 0));
    }
    return out;
}

}  // namespace xproc
