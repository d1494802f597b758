// SPDX-License-Identifier: MIT
#include "commands.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "format.hpp"
#include "xproc/error.hpp"
#include "xproc/message_queue.hpp"  // MQ_MAGIC only
#include "xproc/process.hpp"
#include "xproc/ring/layout.hpp"  // RING_MAGIC only
#include "xproc/shm.hpp"

namespace xshm {

namespace {

constexpr std::size_t CHUNK = std::size_t{1} << 20;
constexpr std::uint64_t ATTACH_PREVIEW = 256;  // bytes `attach` dumps when given no action

/// One line on stderr, whatever bytes a name or argument in it holds.
int report(const xproc::Error& e) {
    std::fprintf(stderr, "xshm: %s\n", printable(e.message()).c_str());
    return EXIT_ERROR;
}

int usage(const std::string& message) {
    std::fprintf(stderr, "xshm: %s\n", printable(message).c_str());
    return EXIT_USAGE;
}

/// Flushes `out`; a write error (a full disk, a closed pipe) is an error.
int finish(Output& out, int status = EXIT_OK) {
    out.flush();
    if (out.error() != 0) {
        report(xproc::Error::from_errno(out.error(), "write(standard output)"));
        return EXIT_ERROR;
    }
    return status;
}

std::string user_name(uid_t uid) {
    passwd pw{};
    passwd* found = nullptr;
    char buf[4096];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) {
        return found->pw_name;
    }
    return std::to_string(uid);
}

std::string group_name(gid_t gid) {
    group gr{};
    group* found = nullptr;
    char buf[4096];
    if (::getgrgid_r(gid, &gr, buf, sizeof buf, &found) == 0 && found != nullptr) {
        return found->gr_name;
    }
    return std::to_string(gid);
}

/// The command name of `pid`, or "?" when it exited or cannot be read.
std::string comm_of(pid_t pid) {
    auto proc = xproc::Process::open(pid);
    if (!proc) {
        return "?";
    }
    auto comm = proc->comm();
    return comm ? *comm : "?";
}

/// The first 8 bytes of segment `name` as a little-endian u64 (the xproc magics), read
/// through a read-only descriptor (never maps it); 0 when unreadable or shorter.
std::uint64_t segment_magic(const std::string& name) {
    auto fd = xproc::open_segment_fd(name);
    if (!fd) {
        return 0;
    }
    std::byte head[16];
    auto n = xproc::read_at(fd->get(), 0, head, name);
    if (!n || *n < 8) {
        return 0;
    }
    std::uint64_t magic = 0;  // little-endian, whatever the host's order
    for (int i = 7; i >= 0; --i) {
        magic = magic << 8 | static_cast<std::uint8_t>(head[i]);
    }
    return magic;
}

/// "no" for an ordinary name; for a temporary name of SharedMemory::create_temporary,
/// "creating" while its creator (the PID in the name) lives, "stale" once it is gone.
std::string_view temporary_state(const std::string& name) {
    pid_t creator = 0;
    if (!xproc::SharedMemory::is_temporary_name(name, &creator)) {
        return "no";
    }
    return ::kill(creator, 0) == 0 || errno != ESRCH ? "creating" : "stale";
}

std::string pid_list(const std::vector<pid_t>& pids) {
    if (pids.empty()) {
        return "-";
    }
    std::string s;
    for (const pid_t pid : pids) {
        s += s.empty() ? "" : ",";
        s += std::to_string(pid);
    }
    return s;
}

/// Reads `length` bytes of `fd` from `offset` in chunks, handing each to `sink`;
/// stops early at end of file. Returns the bytes read.
xproc::Result<std::uint64_t> copy_range(int fd, std::uint64_t offset, std::uint64_t length,
                                        const std::string& what,
                                        const std::function<void(std::span<const std::byte>)>& sink) {
    std::vector<std::byte> buf(static_cast<std::size_t>(std::min<std::uint64_t>(length, CHUNK)));
    std::uint64_t done = 0;
    while (done < length) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length - done, buf.size()));
        auto n = xproc::read_at(fd, offset + done, std::span(buf.data(), want), what);
        if (!n) {
            return std::unexpected(std::move(n.error()));
        }
        if (*n == 0) {
            break;
        }
        sink(std::span<const std::byte>(buf.data(), *n));
        done += *n;
        if (*n < want) {
            break;
        }
    }
    return done;
}

/// A table: cells per row; the first row is the heading. Columns in
/// `right_aligned` are padded on the left. The last column is never padded.
void print_table(Output& out, const std::vector<std::vector<std::string>>& rows,
                 const std::vector<bool>& right_aligned) {
    std::vector<std::size_t> width(right_aligned.size(), 0);
    for (const auto& row : rows) {
        for (std::size_t i = 0; i < row.size(); ++i) {
            width[i] = std::max(width[i], row[i].size());
        }
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            const bool last = i + 1 == row.size();
            const std::size_t pad = width[i] - row[i].size();
            if (right_aligned[i]) {
                line.append(pad, ' ');
            }
            line += row[i];
            if (!right_aligned[i] && !last) {
                line.append(pad, ' ');
            }
            if (!last) {
                line += "  ";
            }
        }
        line += '\n';
        out.put(line);
    }
}

/// Whether we hold CAP_SYS_PTRACE (effective): what lets root read every process's maps and fds.
bool have_cap_sys_ptrace() {
    auto self = xproc::Process::open(::getpid());
    if (!self) {
        return false;
    }
    auto ids = self->ids();
    return ids && (ids->cap_eff >> CAP_SYS_PTRACE & 1) != 0;
}

void note_uninspected(std::size_t count) {
    if (count == 0) {
        return;
    }
    // With CAP_SYS_PTRACE no ptrace rule refuses reading maps and fds in our user namespace:
    // what is left is a security module or a sandbox, which running as root does not change.
    const char* advice =
        have_cap_sys_ptrace()
            ? "refused although we hold CAP_SYS_PTRACE: a security module or sandbox (Landlock, "
              "a BPF LSM, SELinux, AppArmor, another user namespace) hides it; see `dmesg`"
            : "run as root (or with CAP_SYS_PTRACE) to see every process";
    std::fprintf(stderr,
                 "xshm: note: %zu process%s could not be inspected (permission), so %s use of segments is "
                 "not shown; %s\n",
                 count, count == 1 ? "" : "es", count == 1 ? "its" : "their", advice);
}

/// fstat size of an open segment.
xproc::Result<std::uint64_t> size_of(int fd, const std::string& name) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        return std::unexpected(xproc::Error::from_errno(err, "fstat(" + name + ")"));
    }
    return static_cast<std::uint64_t>(st.st_size);
}

xproc::Error past_end(const std::string& operation, std::uint64_t offset, std::uint64_t size,
                      const std::string& what) {
    return xproc::Error::make(xproc::ErrorKind::invalid_argument, operation,
                              "offset " + std::to_string(offset) + " is past the end of " + what +
                                  ", which is " + std::to_string(size) + " bytes")
        .with_hint("give an offset from 0 to " + std::to_string(size));
}

}  // namespace

int run_ls(const LsArgs& args) {
    auto list = xproc::list_segments();
    if (!list) {
        return report(list.error());
    }
    Output out;
    if (args.json) {
        std::string j = "{\"segments\": [";
        bool first = true;
        for (const xproc::ShmSegmentInfo& s : list->segments) {
            j += first ? "" : ", ";
            first = false;
            j += "{\"name\": " + json_string(s.name) + ", \"size\": " + std::to_string(s.size) +
                 ", \"uid\": " + std::to_string(s.uid) + ", \"owner\": " + json_string(user_name(s.uid)) +
                 ", \"gid\": " + std::to_string(s.gid) + ", \"group\": " + json_string(group_name(s.gid)) +
                 ", \"mode\": \"" + octal_mode(s.mode) +
                 "\", \"regular_file\": " + (s.regular_file ? "true" : "false") + ", \"mapped_by\": [";
            for (std::size_t i = 0; i < s.mapped_by.size(); ++i) {
                j += (i == 0 ? "" : ", ") + std::to_string(s.mapped_by[i]);
            }
            j += "], \"held_open_by\": [";
            for (std::size_t i = 0; i < s.held_open_by.size(); ++i) {
                j += (i == 0 ? "" : ", ") + std::to_string(s.held_open_by[i]);
            }
            const std::uint64_t magic = s.regular_file ? segment_magic(s.name) : 0;
            j += std::string("], \"xproc_ring\": ") + (magic == xproc::ring::RING_MAGIC ? "true" : "false") +
                 ", \"xproc_queue\": " + (magic == xproc::mq::MQ_MAGIC ? "true" : "false") +
                 ", \"xproc_temporary\": \"" + std::string(temporary_state(s.name)) + "\"}";
        }
        j += "], \"uninspected_processes\": " + std::to_string(list->uninspected_processes) + "}\n";
        out.put(j);
    } else {
        std::vector<std::vector<std::string>> rows = {
            {"NAME", "SIZE", "OWNER", "GROUP", "MODE", "MAPPED", "OPEN", "TYPE"}};
        for (const xproc::ShmSegmentInfo& s : list->segments) {
            std::string type = "-";
            if (!s.regular_file) {
                type = "not a file";
            } else if (const std::string_view temp = temporary_state(s.name); temp != "no") {
                // create_temporary's name: a ring or queue being formatted, or left by a
                // creator that died before renaming it (the next creation removes it).
                type = temp == "stale" ? "stale temporary" : "xproc temporary";
            } else if (const std::uint64_t magic = segment_magic(s.name); magic == xproc::ring::RING_MAGIC) {
                type = "xproc ring";
            } else if (magic == xproc::mq::MQ_MAGIC) {
                type = "xproc queue";  // xproc::message_queue (message_queue.hpp)
            }
            rows.push_back({printable(s.name), std::to_string(s.size), user_name(s.uid), group_name(s.gid),
                            octal_mode(s.mode), pid_list(s.mapped_by), pid_list(s.held_open_by), type});
        }
        print_table(out, rows, {false, true, false, false, false, false, false, false});
    }
    const int status = finish(out);
    note_uninspected(list->uninspected_processes);
    return status;
}

int run_create(const CreateArgs& args) {
    const auto size = parse_size(args.size);
    if (!size) {
        return usage(
            "create: '" + args.size +
            "' is not a size (a number of bytes, decimal or 0x-hexadecimal, with an optional K, M, G "
            "or T suffix)");
    }
    const auto mode = parse_mode(args.mode);
    if (!mode) {
        return usage("create: --mode '" + args.mode +
                     "' is not a mode (octal permission bits from 0 to 7777)");
    }
    if (*size > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
        return usage("create: " + args.size + " is larger than a file can be");
    }
    auto shm = xproc::SharedMemory::create(segment_name(args.name), static_cast<std::size_t>(*size), *mode);
    if (!shm) {
        return report(shm.error());
    }
    return EXIT_OK;
}

int run_rm(const std::vector<std::string>& names) {
    int status = EXIT_OK;
    for (const std::string& name : names) {
        if (auto ok = xproc::SharedMemory::remove(segment_name(name)); !ok) {
            status = report(ok.error());  // and go on with the others
        }
    }
    return status;
}

int run_cat(const std::string& raw_name) {
    const std::string name = segment_name(raw_name);
    auto fd = xproc::open_segment_fd(name);
    if (!fd) {
        return report(fd.error());
    }
    int write_error = 0;
    auto copied = copy_range(
        fd->get(), 0, std::numeric_limits<std::uint64_t>::max(), name, [&](std::span<const std::byte> bytes) {
            if (write_error == 0) {
                write_error =
                    write_all(STDOUT_FILENO,
                              std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
            }
        });
    if (!copied) {
        return report(copied.error());
    }
    if (write_error != 0) {
        return report(xproc::Error::from_errno(write_error, "write(standard output)"));
    }
    return EXIT_OK;
}

int run_hexdump(const HexdumpArgs& args) {
    std::uint64_t offset = 0;
    std::optional<std::uint64_t> length;
    if (args.offset) {
        const auto v = parse_size(*args.offset);
        if (!v) {
            return usage("hexdump: offset '" + *args.offset +
                         "' is not a number (decimal or 0x-hexadecimal, optional K, M, G or T suffix)");
        }
        offset = *v;
    }
    if (args.length) {
        length = parse_size(*args.length);
        if (!length) {
            return usage("hexdump: length '" + *args.length +
                         "' is not a number (decimal or 0x-hexadecimal, optional K, M, G or T suffix)");
        }
    }
    const std::string name = segment_name(args.name);
    auto fd = xproc::open_segment_fd(name);
    if (!fd) {
        return report(fd.error());
    }
    auto size = size_of(fd->get(), name);
    if (!size) {
        return report(size.error());
    }
    if (offset > *size) {
        return report(past_end("hexdump(" + name + ")", offset, *size, "the segment"));
    }
    if (length && *length == 0) {
        return EXIT_OK;  // hexdump -n 0 prints nothing
    }
    const std::uint64_t count = std::min(length.value_or(*size - offset), *size - offset);
    Output out;
    HexDump dump(out, offset);
    auto copied =
        copy_range(fd->get(), offset, count, name, [&](std::span<const std::byte> b) { dump.feed(b); });
    if (!copied) {
        out.flush();
        return report(copied.error());
    }
    dump.finish();
    return finish(out);
}

int run_who(const std::string& raw_name) {
    const std::string name = segment_name(raw_name);
    if (auto ok = xproc::SharedMemory::validate_name(name); !ok) {
        return report(ok.error());
    }
    auto list = xproc::list_segments();
    if (!list) {
        return report(list.error());
    }
    const auto it = std::find_if(list->segments.begin(), list->segments.end(),
                                 [&](const xproc::ShmSegmentInfo& s) { return s.name == name; });
    if (it == list->segments.end()) {
        return report(
            xproc::Error::make(xproc::ErrorKind::os, "who(" + name + ")", "no such segment in /dev/shm")
                .with_hint("`xshm ls` lists the segments"));
    }
    std::vector<pid_t> pids = it->mapped_by;
    pids.insert(pids.end(), it->held_open_by.begin(), it->held_open_by.end());
    std::sort(pids.begin(), pids.end());
    pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
    std::vector<std::vector<std::string>> rows = {{"PID", "COMMAND", "USE"}};
    for (const pid_t pid : pids) {
        const bool mapped = std::binary_search(it->mapped_by.begin(), it->mapped_by.end(), pid);
        const bool held = std::binary_search(it->held_open_by.begin(), it->held_open_by.end(), pid);
        rows.push_back({std::to_string(pid), printable(comm_of(pid)),
                        mapped && held ? "mapped, fd" : (mapped ? "mapped" : "fd")});
    }
    Output out;
    print_table(out, rows, {true, false, false});
    const int status = finish(out);
    note_uninspected(list->uninspected_processes);
    return status;
}

namespace {

/// Copies `length` bytes from `offset` of an attached mapping to `sink`: with
/// pread on its file (a truncation meanwhile shortens the copy instead of
/// raising SIGBUS), or from the mapping when the file cannot be read.
xproc::Result<std::uint64_t> copy_attached(const xproc::SharedMemory& shm, std::uint64_t offset,
                                           std::uint64_t length,
                                           const std::function<void(std::span<const std::byte>)>& sink) {
    const xproc::ShmOrigin& origin = *shm.origin();
    std::uint64_t done = 0;
    auto copied = copy_range(shm.fd(), origin.file_offset + offset, length, origin.name,
                             [&](std::span<const std::byte> bytes) {
                                 done += bytes.size();
                                 sink(bytes);
                             });
    if (copied) {
        return copied;
    }
    // Not readable with pread (some special file): the rest from the mapping.
    sink(std::span<const std::byte>(shm.data() + offset + done, static_cast<std::size_t>(length - done)));
    return length;
}

std::string via_text(const xproc::ShmOrigin& o) {
    switch (o.via) {
        case xproc::ShmVia::map_files:
            return "/proc/" + std::to_string(o.pid) + "/map_files/" + hex(o.start) + "-" + hex(o.end);
        case xproc::ShmVia::pidfd_getfd:
            return "pidfd_getfd: descriptor " + std::to_string(o.target_fd) + " of process " +
                   std::to_string(o.pid);
        case xproc::ShmVia::path:
            return "open(" + o.name + ")";
    }
    return {};
}

void print_origin(Output& out, const xproc::SharedMemory& shm) {
    const xproc::ShmOrigin& o = *shm.origin();
    char device[32];
    std::snprintf(device, sizeof device, "%02x:%02x", o.dev_major, o.dev_minor);
    const std::uint64_t mapping_size = o.end - o.start;
    std::string text;
    text += "process  " + std::to_string(o.pid) + " (" + printable(comm_of(o.pid)) + ")\n";
    text += "mapping  " + hex(o.start) + "-" + hex(o.end) + " " + o.perms + " " + printable(o.name) + "\n";
    text += "file     offset " + std::to_string(o.file_offset) + " of " + std::to_string(o.file_size) +
            " bytes, device " + device + ", inode " + std::to_string(o.inode) + "\n";
    text += "mapped   " + std::to_string(shm.size()) + " bytes";
    if (o.truncated) {
        text += " of the mapping's " + std::to_string(mapping_size) + " (the file ends there)";
    }
    text += std::string(shm.access() == xproc::ShmAccess::read_only ? ", read-only" : ", read-write");
    char local[32];
    std::snprintf(local, sizeof local, "%p", static_cast<void*>(shm.data()));
    text += std::string(", at ") + (shm.data() != nullptr ? local : "(nothing)") + " in xshm\n";
    text += "via      " + via_text(o) + "\n";
    if (!o.fallback_note.empty()) {
        text += "refused  " + printable(o.fallback_note) + "\n";
    }
    out.put(text);
}

}  // namespace

int run_attach(const AttachArgs& args) {
    const auto pid = parse_pid(args.pid);
    if (!pid) {
        return usage("attach: '" + args.pid +
                     "' is not a process id (a decimal number from 1 to 2147483647)");
    }
    const auto address = parse_address(args.address);
    if (!address) {
        return usage("attach: '" + args.address + "' is not an address (hexadecimal, with or without 0x)");
    }
    std::uint64_t dump_offset = 0;
    std::uint64_t dump_length = ATTACH_PREVIEW;
    const bool dump_asked = !args.hexdump.empty();
    if (dump_asked) {
        const auto off = parse_size(args.hexdump.at(0));
        const auto len = args.hexdump.size() > 1 ? parse_size(args.hexdump[1]) : std::nullopt;
        if (!off || !len) {
            return usage(
                "attach: --hexdump takes OFFSET LENGTH, two numbers (decimal or 0x-hexadecimal, optional "
                "K, M, G or T suffix)");
        }
        dump_offset = *off;
        dump_length = *len;
    }
    auto shm = xproc::SharedMemory::from_process(
        *pid, *address, args.write ? xproc::ShmAccess::read_write : xproc::ShmAccess::read_only);
    if (!shm) {
        return report(shm.error());
    }
    const std::uint64_t size = shm->size();

    if (args.out) {
        const bool to_stdout = *args.out == "-";
        xproc::UniqueFd file;
        if (!to_stdout) {
            auto opened = xproc::open_fd(args.out->c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0, 0666);
            if (!opened) {
                return report(opened.error());
            }
            file = std::move(*opened);
        }
        const int target = to_stdout ? STDOUT_FILENO : file.get();
        int write_error = 0;
        auto copied = copy_attached(*shm, 0, size, [&](std::span<const std::byte> bytes) {
            if (write_error == 0) {
                write_error = write_all(
                    target, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
            }
        });
        if (!copied) {
            return report(copied.error());
        }
        if (write_error != 0) {
            return report(xproc::Error::from_errno(
                write_error, "write(" + (to_stdout ? "standard output" : *args.out) + ")"));
        }
        return EXIT_OK;
    }

    Output out;
    if (!dump_asked) {
        print_origin(out, *shm);
        if (size > 0) {
            out.put('\n');
        }
    } else if (dump_offset > size) {
        return report(past_end("attach --hexdump", dump_offset, size, "what was mapped"));
    }
    if (dump_length > 0) {
        HexDump dump(out, dump_offset);
        auto copied = copy_attached(*shm, dump_offset, std::min(dump_length, size - dump_offset),
                                    [&](std::span<const std::byte> b) { dump.feed(b); });
        if (!copied) {
            out.flush();
            return report(copied.error());
        }
        dump.finish();
    }
    return finish(out);
}

}  // namespace xshm
