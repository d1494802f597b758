// SPDX-License-Identifier: MIT
// snapshot_stacks (unwind.hpp): stop all threads, copy registers and live stacks, resume.
// Everything that can be done while the target runs (maps, names, buffers) is done before
// stopping or after resuming, so the stop lasts only for the ptrace calls and one readv.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "xproc/maps.hpp"
#include "xproc/memory.hpp"
#include "xproc/tracer.hpp"
#include "xproc/unwind.hpp"

namespace xproc {

namespace {

// The red zone below sp (x86-64 System V ABI): leaf functions keep data there.
constexpr std::uint64_t RED_ZONE = 128;

std::string thread_name(pid_t pid, pid_t tid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return {};
    }
    char buf[64];
    ssize_t n;
    do {
        n = ::read(fd, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    std::string name(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!name.empty() && name.back() == '\n') {
        name.pop_back();
    }
    return name;
}

// [start, end) of the writable mappings, sorted: a thread's stack ends where its mapping does.
using Ranges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

Ranges stack_ranges(pid_t pid) {
    Ranges out;
    auto maps = read_maps(pid);
    if (!maps) {
        return out;  // without them, reads stop at the first unmapped page
    }
    for (const Mapping& m : *maps) {
        if (m.perms.write) {
            out.emplace_back(m.start, m.end);
        }
    }
    return out;
}

std::uint64_t mapping_end(const Ranges& ranges, std::uint64_t address) {
    auto it = std::upper_bound(ranges.begin(), ranges.end(), address,
                               [](std::uint64_t a, const auto& r) { return a < r.first; });
    if (it == ranges.begin()) {
        return 0;
    }
    --it;
    return address < it->second ? it->second : 0;
}

struct Plan {
    pid_t tid = 0;
    bool have_regs = false;
};

Result<StackSnapshot> take(Attachment& att, const SnapshotOptions& options, bool detach_after) {
    using Clock = std::chrono::steady_clock;
    StackSnapshot snap;
    snap.pid = att.pid();
    snap.was_stopped = att.was_stopped();

    // Before stopping: which threads, their names, where their stacks end.
    std::vector<Plan> plan;
    for (const TracedThread& t : att.threads()) {
        if (!options.threads.empty() &&
            std::find(options.threads.begin(), options.threads.end(), t.tid) == options.threads.end()) {
            continue;
        }
        plan.push_back({t.tid, false});
    }
    const Ranges ranges = stack_ranges(att.pid());
    snap.threads.resize(plan.size());
    for (std::size_t i = 0; i < plan.size(); ++i) {
        snap.threads[i].tid = plan[i].tid;
        snap.threads[i].name = thread_name(att.pid(), plan[i].tid);
    }
    std::vector<pid_t> running_before;  // resumed afterwards (the others stay stopped)
    for (const TracedThread& t : att.threads()) {
        if (!t.stopped) {
            running_before.push_back(t.tid);
        }
    }
    std::vector<RemoteMemory::Range> reads;
    reads.reserve(plan.size());

    // --- stopped from here ---
    const auto t0 = Clock::now();
    if (auto r = att.stop_all(); !r) {
        return fail(std::move(r.error()));
    }
    for (std::size_t i = 0; i < plan.size(); ++i) {
        auto regs = att.registers(plan[i].tid, false);  // the unwinder needs the general set only
        if (!regs) {
            continue;  // the thread exited meanwhile
        }
        plan[i].have_regs = true;
        ThreadSnapshot& t = snap.threads[i];
        t.regs = *regs;
        const std::uint64_t sp = t.regs.sp();
        const std::uint64_t start = sp >= RED_ZONE ? sp - RED_ZONE : 0;
        std::uint64_t end = sp + options.max_stack_bytes;
        if (const std::uint64_t limit = mapping_end(ranges, sp); limit != 0) {
            end = std::min(end, limit);
        }
        end = std::min(end, KERNEL_ADDRESS_START);
        if (end <= start) {
            continue;
        }
        t.stack_start = start;
        t.stack.resize(end - start);
        reads.push_back({start, std::span(t.stack)});
    }
    auto transfers = att.memory().readv(reads);
    Result<void> resumed;
    if (detach_after) {
        resumed = att.detach();
    } else {
        for (const pid_t tid : running_before) {
            if (auto r = att.resume(tid); !r && resumed && att.thread(tid) != nullptr) {
                resumed = fail(std::move(r.error()));
            }
        }
    }
    snap.stopped_for = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0);
    // --- running again ---

    if (!transfers) {
        return fail(std::move(transfers.error()));
    }
    if (!resumed) {
        return fail(std::move(resumed.error()));
    }
    std::size_t k = 0;
    std::vector<ThreadSnapshot> kept;
    kept.reserve(snap.threads.size());
    for (std::size_t i = 0; i < plan.size(); ++i) {
        ThreadSnapshot& t = snap.threads[i];
        if (!plan[i].have_regs) {
            continue;
        }
        if (!t.stack.empty()) {
            t.stack.resize((*transfers)[k].bytes);
            ++k;
        }
        kept.push_back(std::move(t));
    }
    snap.threads = std::move(kept);
    return snap;
}

}  // namespace

Result<StackSnapshot> snapshot_stacks(pid_t pid, const SnapshotOptions& options) {
    auto att = Attachment::seize(pid);
    if (!att) {
        return fail(std::move(att.error()));
    }
    return take(**att, options, true);
}

Result<StackSnapshot> snapshot_stacks(Attachment& att, const SnapshotOptions& options) {
    return take(att, options, false);
}

}  // namespace xproc
