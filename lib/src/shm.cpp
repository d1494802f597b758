// SPDX-License-Identifier: MIT
#include "xproc/shm.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <utility>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include "xproc/access.hpp"
#include "xproc/maps.hpp"
#include "xproc/process.hpp"

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

namespace bip = boost::interprocess;

namespace xproc {

namespace {

constexpr const char* SHM_DIR = "/dev/shm";
constexpr std::string_view SHM_PREFIX = "/dev/shm/";

/// Turns a Boost.Interprocess exception into an Error: its native error is the
/// errno of the failed call; without one, Boost's own text is the detail.
Error from_boost(const bip::interprocess_exception& e, std::string operation) {
    if (const int native = e.get_native_error(); native != 0) {
        return Error::from_errno(native, std::move(operation));
    }
    return Error::make(ErrorKind::os, std::move(operation), e.what());
}

std::string op(std::string_view call, std::string_view name) {
    std::string s(call);
    s += '(';
    s += name;
    s += ')';
    return s;
}

/// Adapts a plain descriptor to Boost's MemoryMappable concept, so a memfd or
/// a received descriptor maps through the same mapped_region as a named segment.
struct FdMappable {
    int fd;
    bip::mapping_handle_t get_mapping_handle() const {
        return bip::ipcdetail::mapping_handle_from_file_handle(fd);
    }
};

enum class NamedOpen : std::uint8_t { create, open };

/// shm_open through Boost; returns our own close-on-exec duplicate of its
/// descriptor (Boost's object closes its own when it goes out of scope).
Result<UniqueFd> open_named(const std::string& name, NamedOpen how, ShmAccess access, mode_t mode) {
    const auto bmode = access == ShmAccess::read_only ? bip::read_only : bip::read_write;
    try {
        auto object = how == NamedOpen::create
                          ? bip::shared_memory_object(bip::create_only, name.c_str(), bmode,
                                                      bip::permissions(static_cast<unsigned>(mode)))
                          : bip::shared_memory_object(bip::open_only, name.c_str(), bmode);
        const int fd = ::fcntl(object.get_mapping_handle().handle, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            const int err = errno;
            return fail(Error::from_errno(err, op("fcntl(F_DUPFD_CLOEXEC) shm", name)));
        }
        return UniqueFd(fd);
    } catch (const bip::interprocess_exception& e) {
        return fail(
            from_boost(e, op(how == NamedOpen::create ? "shm_open(O_CREAT|O_EXCL)" : "shm_open", name)));
    }
}

Result<struct stat> stat_fd(int fd, std::string_view what) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        return fail(Error::from_errno(err, op("fstat", what)));
    }
    return st;
}

Result<void> check_owner(const struct stat& st, const std::string& name) {
    const uid_t me = ::geteuid();
    if (st.st_uid == me) {
        return {};
    }
    return fail(Error::make(ErrorKind::permission, op("open shared memory", name),
                            "segment is owned by uid " + std::to_string(st.st_uid) + ", not by our uid " +
                                std::to_string(me))
                    .with_hint("a segment of another user may be changed or removed under us; pass "
                               "allow_foreign_owner = true to SharedMemory::open to accept it"));
}

/// Why shm_open refused with EACCES: the segment's owner and mode against our ids.
std::string access_hint(const std::string& name) {
    struct stat st {};
    const std::string path = std::string(SHM_DIR) + name;
    if (::stat(path.c_str(), &st) != 0) {
        return {};
    }
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return "the segment is owned by uid " + std::to_string(st.st_uid) + " gid " + std::to_string(st.st_gid) +
           " with mode " + mode + " and we are uid " + std::to_string(::geteuid()) + " gid " +
           std::to_string(::getegid()) + "; run as its owner, or have it created with a mode that admits us";
}

Result<void> truncate_fd(int fd, std::size_t size, std::string_view what) {
    if (detail::retry_eintr([&] { return ::ftruncate(fd, static_cast<off_t>(size)); }) != 0) {
        const int err = errno;
        return fail(Error::from_errno(err, op("ftruncate", std::string(what) + ", " + std::to_string(size))));
    }
    return {};
}

/// The selected value of /sys/kernel/mm/transparent_hugepage/shmem_enabled
/// ("always", "never", ...), or "" when unknown.
std::string shmem_thp_mode() {
    auto text = read_file("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
    if (!text) {
        return {};
    }
    const auto open = text->find('[');
    const auto close = text->find(']', open);
    if (open == std::string::npos || close == std::string::npos) {
        return {};
    }
    return text->substr(open + 1, close - open - 1);
}

void append_note(std::string& note, const std::string& what) {
    if (!note.empty()) {
        note += "; ";
    }
    note += what;
}

}  // namespace

struct SharedMemory::Region {
    bip::mapped_region region;
};

SharedMemory::SharedMemory() noexcept = default;
SharedMemory::~SharedMemory() {
    unmap();
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : m_name(std::move(other.m_name)),
      m_fd(std::move(other.m_fd)),
      m_region(std::move(other.m_region)),
      m_data(std::exchange(other.m_data, nullptr)),
      m_size(std::exchange(other.m_size, 0)),
      m_access(other.m_access),
      m_options(other.m_options),
      m_status(std::move(other.m_status)),
      m_created(other.m_created) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
    if (this != &other) {
        unmap();
        m_name = std::move(other.m_name);
        m_fd = std::move(other.m_fd);
        m_region = std::move(other.m_region);
        m_data = std::exchange(other.m_data, nullptr);
        m_size = std::exchange(other.m_size, 0);
        m_access = other.m_access;
        m_options = other.m_options;
        m_status = std::move(other.m_status);
        m_created = other.m_created;
    }
    return *this;
}

void SharedMemory::unmap() noexcept {
    m_region.reset();  // mapped_region's destructor munmaps (which also unlocks)
    m_data = nullptr;
}

Result<void> SharedMemory::map(const char* operation) {
    unmap();
    m_status = {};
    if (m_size == 0) {
        return {};
    }
    const std::string what = m_name.empty() ? std::string("anonymous segment") : m_name;
    const auto mode = m_access == ShmAccess::read_only ? bip::read_only : bip::read_write;
    const bip::map_options_t flags = m_options.populate ? MAP_POPULATE : bip::default_map_options;
    try {
        m_region = std::make_unique<Region>(
            Region{bip::mapped_region(FdMappable{m_fd.get()}, mode, 0, m_size, nullptr, flags)});
    } catch (const bip::interprocess_exception& e) {
        return fail(from_boost(e, op(operation, what + ", " + std::to_string(m_size) + " bytes")));
    } catch (const std::bad_alloc&) {
        return fail(Error::from_errno(ENOMEM, op(operation, what)));
    }
    m_data = m_region->region.get_address();
    m_status.populated = m_options.populate;
    if (m_options.lock) {
        if (::mlock(m_data, m_size) == 0) {
            m_status.locked = true;
        } else {
            const int err = errno;
            append_note(m_status.note, std::string("mlock failed: ") + std::strerror(err) +
                                           " (raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK)");
        }
    }
    if (m_options.huge_pages) {
        const std::string thp = shmem_thp_mode();
        if (thp == "never" || thp == "deny") {
            append_note(m_status.note, "huge pages not used: transparent_hugepage/shmem_enabled is " + thp);
        } else if (::madvise(m_data, m_size, MADV_HUGEPAGE) == 0) {
            m_status.huge_pages = true;
        } else {
            const int err = errno;
            append_note(m_status.note, std::string("madvise(MADV_HUGEPAGE) failed: ") + std::strerror(err));
        }
    }
    return {};
}

Result<void> SharedMemory::validate_name(std::string_view name) {
    const auto bad = [&](std::string why) {
        return fail(Error::make(ErrorKind::invalid_argument, op("shared memory name", name), std::move(why))
                        .with_hint("use \"/NAME\": one leading '/', no other '/', at most " +
                                   std::to_string(NAME_MAX) + " characters"));
    };
    if (name.empty() || name.front() != '/') {
        return bad("must start with '/'");
    }
    if (name.size() < 2) {
        return bad("is empty after the '/'");
    }
    if (name.find('/', 1) != std::string_view::npos) {
        return bad("contains a '/' after the first character");
    }
    if (name.find('\0') != std::string_view::npos) {
        return bad("contains a NUL character");
    }
    if (name == "/." || name == "/..") {
        return bad("is not a file name");
    }
    if (name.size() > NAME_MAX) {
        return bad("is " + std::to_string(name.size()) + " characters long, more than NAME_MAX (" +
                   std::to_string(NAME_MAX) + ")");
    }
    return {};
}

Result<SharedMemory> SharedMemory::create(std::string_view name, std::size_t size, mode_t mode,
                                          const Options& options) {
    if (auto ok = validate_name(name); !ok) {
        return fail(std::move(ok.error()));
    }
    SharedMemory shm;
    shm.m_name = std::string(name);
    shm.m_options = options;
    shm.m_access = ShmAccess::read_write;
    auto fd = open_named(shm.m_name, NamedOpen::create, ShmAccess::read_write, mode & 07777);
    if (!fd) {
        return fail(std::move(fd.error()));
    }
    shm.m_fd = std::move(*fd);
    shm.m_created = true;
    // From here on the name is ours: a failure removes it again.
    auto undo = [&](Error e) {
        ::shm_unlink(shm.m_name.c_str());
        return fail(std::move(e));
    };
    // shm_open applied the umask; set the mode the caller asked for, exactly.
    if (::fchmod(shm.m_fd.get(), mode & 07777) != 0) {
        const int err = errno;
        return undo(Error::from_errno(err, op("fchmod", shm.m_name)));
    }
    if (auto ok = truncate_fd(shm.m_fd.get(), size, shm.m_name); !ok) {
        return undo(std::move(ok.error()));
    }
    shm.m_size = size;
    if (auto ok = shm.map("mmap"); !ok) {
        return undo(std::move(ok.error()));
    }
    return shm;
}

Result<SharedMemory> SharedMemory::open(std::string_view name, ShmAccess access, bool allow_foreign_owner,
                                        const Options& options) {
    if (auto ok = validate_name(name); !ok) {
        return fail(std::move(ok.error()));
    }
    SharedMemory shm;
    shm.m_name = std::string(name);
    shm.m_options = options;
    shm.m_access = access;
    auto fd = open_named(shm.m_name, NamedOpen::open, access, 0);
    if (!fd) {
        if (fd.error().errno_value == EACCES) {
            fd.error().hint = access_hint(shm.m_name);
        }
        return fail(std::move(fd.error()));
    }
    shm.m_fd = std::move(*fd);
    // Checked on the descriptor we hold, so the answer is about the segment we map.
    auto st = stat_fd(shm.m_fd.get(), shm.m_name);
    if (!st) {
        return fail(std::move(st.error()));
    }
    if (!allow_foreign_owner) {
        if (auto ok = check_owner(*st, shm.m_name); !ok) {
            return fail(std::move(ok.error()));
        }
    }
    shm.m_size = static_cast<std::size_t>(st->st_size);
    if (auto ok = shm.map("mmap"); !ok) {
        return fail(std::move(ok.error()));
    }
    return shm;
}

Result<SharedMemory> SharedMemory::open_or_create(std::string_view name, std::size_t size, mode_t mode,
                                                  bool allow_foreign_owner, const Options& options) {
    // Create first: only O_EXCL tells us whether we made it. If it exists, open;
    // if it vanished in between, try again (bounded: the race needs another
    // process removing the name in a loop).
    for (int attempt = 0; attempt < 100; ++attempt) {
        auto created = create(name, size, mode, options);
        if (created || created.error().errno_value != EEXIST) {
            return created;
        }
        auto opened = open(name, ShmAccess::read_write, allow_foreign_owner, options);
        if (opened || opened.error().errno_value != ENOENT) {
            return opened;
        }
    }
    return fail(Error::make(ErrorKind::os, op("open_or_create shared memory", name),
                            "the name kept appearing and disappearing (100 attempts)"));
}

Result<SharedMemory> SharedMemory::anonymous(std::size_t size, std::string_view debug_name,
                                             bool allow_sealing, const Options& options) {
    const std::string label(debug_name);
    unsigned flags = MFD_CLOEXEC;
    if (allow_sealing) {
        flags |= MFD_ALLOW_SEALING;
    }
    const int fd = ::memfd_create(label.c_str(), flags);
    if (fd < 0) {
        const int err = errno;
        return fail(Error::from_errno(err, op("memfd_create", label)));
    }
    SharedMemory shm;
    shm.m_fd.reset(fd);
    shm.m_options = options;
    shm.m_access = ShmAccess::read_write;
    shm.m_created = true;
    if (auto ok = truncate_fd(fd, size, "memfd:" + label); !ok) {
        return fail(std::move(ok.error()));
    }
    shm.m_size = size;
    if (auto ok = shm.map("mmap"); !ok) {
        return fail(std::move(ok.error()));
    }
    return shm;
}

Result<SharedMemory> SharedMemory::from_fd(UniqueFd fd, ShmAccess access, const Options& options) {
    if (!fd.valid()) {
        return fail(Error::make(ErrorKind::invalid_argument, "SharedMemory::from_fd", "no descriptor"));
    }
    auto st = stat_fd(fd.get(), "fd " + std::to_string(fd.get()));
    if (!st) {
        return fail(std::move(st.error()));
    }
    SharedMemory shm;
    shm.m_fd = std::move(fd);
    shm.m_options = options;
    shm.m_access = access;
    shm.m_size = static_cast<std::size_t>(st->st_size);
    if (auto ok = shm.map("mmap"); !ok) {
        return fail(std::move(ok.error()));
    }
    return shm;
}

Result<void> SharedMemory::remove(std::string_view name) {
    if (auto ok = validate_name(name); !ok) {
        return fail(std::move(ok.error()));
    }
    // shm_unlink directly: Boost's remove() reports only a bool and loses errno.
    const std::string n(name);
    if (::shm_unlink(n.c_str()) != 0) {
        const int err = errno;
        return fail(Error::from_errno(err, op("shm_unlink", n)));
    }
    return {};
}

Result<void> SharedMemory::resize(std::size_t new_size) {
    const std::string what = m_name.empty() ? std::string("anonymous segment") : m_name;
    if (!m_fd.valid()) {
        return fail(Error::make(ErrorKind::invalid_argument, op("resize", what), "no segment (moved from)"));
    }
    if (m_access == ShmAccess::read_only) {
        return fail(
            Error::make(ErrorKind::invalid_argument, op("resize", what), "the segment is open read-only"));
    }
    if (auto ok = truncate_fd(m_fd.get(), new_size, what); !ok) {
        return fail(std::move(ok.error()));
    }
    m_size = new_size;
    return map("mmap");
}

// --- list_segments ----------------------------------------------------------

namespace {

struct Scan {
    std::map<std::string, std::size_t, std::less<>> by_path;  // "/dev/shm/NAME" → index
    ShmSegmentList list;
};

void add_pid(std::vector<pid_t>& pids, pid_t pid) {
    if (std::find(pids.begin(), pids.end(), pid) == pids.end()) {
        pids.push_back(pid);
    }
}

/// Index of the segment a /dev/shm path names when `inode` is its inode (an
/// unlinked and re-created name must not match the old file), else npos.
std::size_t find_segment(const Scan& scan, std::string_view path, std::uint64_t inode,
                         const std::vector<std::uint64_t>& inodes) {
    const auto it = scan.by_path.find(path);
    if (it == scan.by_path.end() || inodes[it->second] != inode) {
        return std::string::npos;
    }
    return it->second;
}

/// Scans /proc/PID/fd; false when it could not be read for lack of permission.
bool scan_fds(pid_t pid, Scan& scan, const std::vector<std::uint64_t>& inodes) {
    const std::string dir_path = "/proc/" + std::to_string(pid) + "/fd";
    auto dir_fd = open_fd(dir_path.c_str(), O_RDONLY | O_DIRECTORY, pid);
    if (!dir_fd) {
        return dir_fd.error().kind != ErrorKind::permission;
    }
    DIR* dir = ::fdopendir(dir_fd->get());
    if (dir == nullptr) {
        return true;
    }
    dir_fd->release();  // owned by dir now
    char target[PATH_MAX];
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] == '.') {
            continue;
        }
        const ssize_t n = ::readlinkat(::dirfd(dir), entry->d_name, target, sizeof target - 1);
        if (n <= 0) {
            continue;
        }
        const std::string_view link(target, static_cast<std::size_t>(n));
        if (!link.starts_with(SHM_PREFIX)) {
            continue;
        }
        struct stat st {};
        if (::fstatat(::dirfd(dir), entry->d_name, &st, 0) != 0) {
            continue;
        }
        if (const auto i = find_segment(scan, link, st.st_ino, inodes); i != std::string::npos) {
            add_pid(scan.list.segments[i].held_open_by, pid);
        }
    }
    ::closedir(dir);
    return true;
}

}  // namespace

Result<ShmSegmentList> list_segments() {
    auto dir_fd = open_fd(SHM_DIR, O_RDONLY | O_DIRECTORY);
    if (!dir_fd) {
        return fail(std::move(dir_fd.error()));
    }
    DIR* dir = ::fdopendir(dir_fd->get());
    if (dir == nullptr) {
        const int err = errno;
        return fail(Error::from_errno(err, op("fdopendir", SHM_DIR)));
    }
    dir_fd->release();
    Scan scan;
    std::vector<std::pair<ShmSegmentInfo, std::uint64_t>> found;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string_view base = entry->d_name;
        if (base == "." || base == "..") {
            continue;
        }
        struct stat st {};
        if (::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            continue;  // removed while we listed
        }
        ShmSegmentInfo info;
        info.name = "/" + std::string(base);
        info.size = static_cast<std::uint64_t>(st.st_size);
        info.uid = st.st_uid;
        info.gid = st.st_gid;
        info.mode = st.st_mode & 07777;
        info.regular_file = S_ISREG(st.st_mode);
        found.emplace_back(std::move(info), st.st_ino);
    }
    ::closedir(dir);
    std::sort(found.begin(), found.end(),
              [](const auto& a, const auto& b) { return a.first.name < b.first.name; });
    std::vector<std::uint64_t> inodes;
    for (auto& [info, inode] : found) {
        scan.by_path.emplace(std::string(SHM_DIR) + info.name, scan.list.segments.size());
        scan.list.segments.push_back(std::move(info));
        inodes.push_back(inode);
    }

    auto pids = list_processes();
    if (!pids) {
        return fail(std::move(pids.error()));
    }
    for (const pid_t pid : *pids) {
        bool inspected = true;
        if (auto map = read_maps(pid)) {
            for (const Mapping& m : *map) {
                if (!m.path().starts_with(SHM_PREFIX)) {
                    continue;
                }
                if (const auto i = find_segment(scan, m.path(), m.inode, inodes); i != std::string::npos) {
                    add_pid(scan.list.segments[i].mapped_by, pid);
                }
            }
        } else if (map.error().kind == ErrorKind::permission) {
            inspected = false;
        }
        // Processes that exited, zombies and kernel threads map nothing: skipped.
        if (!scan_fds(pid, scan, inodes)) {
            inspected = false;
        }
        if (!inspected) {
            ++scan.list.uninspected_processes;
        }
    }
    // pids come ascending from list_processes, so each list is already sorted.
    return std::move(scan.list);
}

// --- passing descriptors ------------------------------------------------------

Result<void> send_fd(int socket, int fd) {
    char byte = 'F';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
    if (detail::retry_eintr([&] { return ::sendmsg(socket, &msg, MSG_NOSIGNAL); }) < 0) {
        const int err = errno;
        return fail(Error::from_errno(
            err, "sendmsg(socket " + std::to_string(socket) + ", SCM_RIGHTS fd " + std::to_string(fd) + ")"));
    }
    return {};
}

Result<UniqueFd> receive_fd(int socket) {
    const std::string what = "recvmsg(socket " + std::to_string(socket) + ", SCM_RIGHTS)";
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = detail::retry_eintr([&] { return ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC); });
    if (n < 0) {
        const int err = errno;
        return fail(Error::from_errno(err, what));
    }
    if (n == 0) {
        return fail(Error::make(ErrorKind::invalid_argument, what, "the peer closed the socket"));
    }
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
            cmsg->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
            return UniqueFd(fd);
        }
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
        return fail(Error::make(ErrorKind::os, what, "the descriptor was dropped (control data truncated)")
                        .with_hint("the process may have reached its descriptor limit (RLIMIT_NOFILE)"));
    }
    return fail(Error::make(ErrorKind::invalid_argument, what, "the message carried no descriptor"));
}

Result<UniqueFd> take_fd(int pidfd, int target_fd, pid_t pid) {
    const std::string what =
        "pidfd_getfd(pidfd " + std::to_string(pidfd) + ", fd " + std::to_string(target_fd) + ")";
    const long fd = ::syscall(SYS_pidfd_getfd, pidfd, target_fd, 0);
    if (fd >= 0) {
        return UniqueFd(static_cast<int>(fd));
    }
    const int err = errno;
    if (err == EPERM && pid > 0) {
        const AccessVerdict verdict = explain_access(pid, AccessMode::attach);
        if (!verdict.allowed() && verdict.rule != AccessRule::undetermined) {
            return fail(verdict.to_error(what, pid, err));
        }
    }
    Error e = Error::from_errno(err, what, pid);
    switch (err) {
        case EPERM:
            e.hint =
                "pidfd_getfd needs ptrace-attach rights over the target (PTRACE_MODE_ATTACH_REALCREDS): "
                "the same real uid and gid as all of the target's ids and a dumpable target, or "
                "CAP_SYS_PTRACE; "
                "Yama ptrace_scope may restrict it further";
            break;
        case EBADF:
            e.detail =
                "fd " + std::to_string(target_fd) + " is not open in the target (or the pidfd is invalid)";
            break;
        case ENOSYS:
            e.kind = ErrorKind::not_supported;
            e.hint = "pidfd_getfd needs Linux 5.6 or later";
            break;
        default:
            break;
    }
    return fail(std::move(e));
}

}  // namespace xproc
