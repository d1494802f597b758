// SPDX-License-Identifier: MIT
#include "xproc/shm.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
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
      m_created(other.m_created),
      m_map_offset(other.m_map_offset),
      m_origin(std::exchange(other.m_origin, std::nullopt)) {}

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
        m_map_offset = other.m_map_offset;
        m_origin = std::exchange(other.m_origin, std::nullopt);
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
    const std::string what = m_origin         ? m_origin->name
                             : m_name.empty() ? std::string("anonymous segment")
                                              : m_name;
    const auto mode = m_access == ShmAccess::read_only ? bip::read_only : bip::read_write;
    const bip::map_options_t flags = m_options.populate ? MAP_POPULATE : bip::default_map_options;
    try {
        // mapped_region maps from the page that holds m_map_offset and points
        // get_address() at that byte, so an unaligned offset is handled too.
        m_region = std::make_unique<Region>(Region{bip::mapped_region(
            FdMappable{m_fd.get()}, mode, static_cast<bip::offset_t>(m_map_offset), m_size, nullptr, flags)});
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

namespace {
constexpr std::string_view TEMPORARY_PREFIX = ".xproc-new-";
}

bool SharedMemory::is_temporary_name(std::string_view name, pid_t* creator) noexcept {
    if (name.starts_with('/')) {
        name.remove_prefix(1);
    }
    if (!name.starts_with(TEMPORARY_PREFIX)) {
        return false;
    }
    name.remove_prefix(TEMPORARY_PREFIX.size());
    const std::size_t dash = name.find('-');
    if (dash == 0 || dash == std::string_view::npos || dash > 10) {
        return false;
    }
    std::uint64_t pid = 0;
    for (const char c : name.substr(0, dash)) {
        if (c < '0' || c > '9') {
            return false;
        }
        pid = pid * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (pid == 0 || pid > static_cast<std::uint64_t>(std::numeric_limits<pid_t>::max())) {
        return false;
    }
    if (creator != nullptr) {
        *creator = static_cast<pid_t>(pid);
    }
    return true;
}

std::vector<std::string> SharedMemory::remove_stale_temporaries(std::chrono::seconds min_age) {
    std::vector<std::string> removed;
    auto dir_fd = open_fd(SHM_DIR, O_RDONLY | O_DIRECTORY);
    if (!dir_fd) {
        return removed;
    }
    DIR* dir = ::fdopendir(dir_fd->get());
    if (dir == nullptr) {
        return removed;
    }
    dir_fd->release();  // owned by dir now
    const auto now = std::chrono::system_clock::now();
    const uid_t me = ::geteuid();
    while (const dirent* entry = ::readdir(dir)) {
        pid_t creator = 0;
        if (!is_temporary_name(entry->d_name, &creator)) {
            continue;
        }
        struct stat st {};
        if (::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            st.st_uid != me) {
            continue;
        }
        const auto changed = std::chrono::system_clock::time_point{
            std::chrono::seconds{st.st_mtim.tv_sec} +
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::nanoseconds{st.st_mtim.tv_nsec})};
        if (now - changed < min_age) {
            continue;
        }
        // ESRCH: no such process. EPERM means it exists (someone else's): leave it.
        if (::kill(creator, 0) == 0 || errno != ESRCH) {
            continue;
        }
        const std::string name = "/" + std::string(entry->d_name);
        if (::shm_unlink(name.c_str()) == 0) {
            removed.push_back(name);
        }
    }
    ::closedir(dir);
    return removed;
}

Result<SharedMemory> SharedMemory::create_temporary(std::size_t size, mode_t mode, const Options& options) {
    static std::atomic<unsigned> counter{0};
    // Names of creators that died before their rename would stay until reboot: sweep them
    // once per process (a directory scan; creation is not a hot path, but is repeated).
    static std::once_flag swept;
    std::call_once(swept, [] { remove_stale_temporaries(); });
    Result<SharedMemory> last = fail(Error::make(ErrorKind::os, "shm create (temporary name)", "no attempt"));
    for (int attempt = 0; attempt < 16; ++attempt) {
        std::uint64_t random = 0;
        if (::getrandom(&random, sizeof random, 0) != static_cast<ssize_t>(sizeof random)) {
            random = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        }
        char suffix[20];
        std::snprintf(suffix, sizeof suffix, "%016" PRIx64, random);
        const std::string name = "/.xproc-new-" + std::to_string(::getpid()) + "-" +
                                 std::to_string(counter.fetch_add(1, std::memory_order_relaxed)) + "-" +
                                 suffix;
        last = create(name, size, mode, options);
        if (last || last.error().errno_value != EEXIST) {
            return last;
        }
    }
    return last;
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

Result<void> SharedMemory::rename(std::string_view new_name) {
    if (auto ok = validate_name(new_name); !ok) {
        return fail(std::move(ok.error()));
    }
    if (m_name.empty()) {
        return fail(Error::make(ErrorKind::invalid_argument, op("rename", std::string(new_name)),
                                "an anonymous segment has no name to change"));
    }
    const std::string from = std::string(SHM_DIR) + m_name;
    const std::string to = std::string(SHM_DIR) + std::string(new_name);
    // RENAME_NOREPLACE: like O_EXCL, never replace someone's segment.
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
        const int err = errno;
        return fail(Error::from_errno(err, op("rename", m_name + " to " + std::string(new_name))));
    }
    m_name = std::string(new_name);
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
    if (m_origin) {
        return fail(Error::make(ErrorKind::invalid_argument, op("resize", m_origin->name),
                                "the segment is another process's mapping (from_process)")
                        .with_hint("only its owner may resize the file; map it again afterwards"));
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

// --- reading a segment without mapping it -------------------------------------

Result<UniqueFd> open_segment_fd(std::string_view name, ShmAccess access) {
    if (auto ok = SharedMemory::validate_name(name); !ok) {
        return fail(std::move(ok.error()));
    }
    const std::string n(name);
    // O_NONBLOCK: a FIFO planted in /dev/shm must not block the open. glibc's
    // shm_open adds O_NOFOLLOW and O_CLOEXEC.
    const int flags = (access == ShmAccess::read_only ? O_RDONLY : O_RDWR) | O_NONBLOCK;
    const int fd = detail::retry_eintr([&] { return ::shm_open(n.c_str(), flags, 0); });
    if (fd < 0) {
        const int err = errno;
        Error e = Error::from_errno(err, op("shm_open", n));
        if (err == EACCES) {
            e.hint = access_hint(n);
        } else if (err == ELOOP) {
            e.detail = "is a symbolic link, which is not followed";
        }
        return fail(std::move(e));
    }
    UniqueFd owner(fd);
    auto st = stat_fd(fd, n);
    if (!st) {
        return fail(std::move(st.error()));
    }
    if (!S_ISREG(st->st_mode)) {
        return fail(Error::make(ErrorKind::invalid_argument, op("shm_open", n),
                                "is not a regular file, so not a shared-memory segment"));
    }
    // Reads of a segment are plain reads of a tmpfs file: blocking is irrelevant,
    // but keep the descriptor's flags ordinary for whoever uses it next.
    if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
        const int err = errno;
        return fail(Error::from_errno(err, op("fcntl(F_SETFL)", n)));
    }
    return owner;
}

Result<std::size_t> read_at(int fd, std::uint64_t offset, std::span<std::byte> out, std::string_view what) {
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = detail::retry_eintr([&] {
            return ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        });
        if (n < 0) {
            const int err = errno;
            return fail(Error::from_errno(err, "pread(" + std::string(what) + ", " +
                                                   std::to_string(offset + done) + ", " +
                                                   std::to_string(out.size() - done) + ")"));
        }
        if (n == 0) {
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    return done;
}

// --- from_process -----------------------------------------------------------

std::string_view to_string(ShmVia via) noexcept {
    switch (via) {
        case ShmVia::map_files:
            return "map_files";
        case ShmVia::pidfd_getfd:
            return "pidfd_getfd";
        case ShmVia::path:
            return "path";
    }
    return "unknown";
}

std::byte* SharedMemory::local(std::uint64_t remote_address) const noexcept {
    if (!m_origin || m_data == nullptr || remote_address < m_origin->start ||
        remote_address - m_origin->start >= m_size) {
        return nullptr;
    }
    return data() + (remote_address - m_origin->start);
}

namespace {

constexpr unsigned CAP_SYS_ADMIN_BIT = 21;
constexpr unsigned CAP_CHECKPOINT_RESTORE_BIT = 40;  // Linux 5.9

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%" PRIx64, v);
    return buf;
}

/// "START-END", as /proc/PID/maps and the names in map_files write a range.
std::string range_of(const Mapping& m) {
    return hex(m.start) + "-" + hex(m.end);
}

/// "START-END NAME" (or "START-END" for an unnamed mapping).
std::string describe(const Mapping& m) {
    std::string s = range_of(m);
    if (!m.name.empty()) {
        s += ' ';
        s += m.name;
    }
    return s;
}

std::string errno_text(int err) {
    std::string s = std::strerror(err);
    if (const char* name = strerrorname_np(err); name != nullptr) {
        s += " (";
        s += name;
        s += ')';
    }
    return s;
}

/// Shared memory no descriptor or path can reach: shared anonymous memory (the
/// kernel's internal /dev/zero or hugetlb file), System V segments.
bool is_shared_anonymous(const Mapping& m) {
    if (m.kind == MappingKind::anon_shmem) {
        return true;
    }
    if (m.kind != MappingKind::file || !m.deleted) {
        return false;
    }
    const std::string_view path = m.path();
    return path == "/dev/zero" || path == "/anon_hugepage" || path.starts_with("/SYSV");
}

bool same_file(const struct stat& st, const Mapping& m) {
    return S_ISREG(st.st_mode) && st.st_ino == m.inode && ::major(st.st_dev) == m.dev_major &&
           ::minor(st.st_dev) == m.dev_minor;
}

/// What the calling thread holds that map_files cares about.
struct MapFilesRights {
    bool sys_admin = false;
    bool checkpoint_restore = false;
    bool initial_user_namespace = true;  ///< capabilities in a child namespace do not count
    std::string exe;                     ///< our executable, for the setcap hint
    bool any() const noexcept { return (sys_admin || checkpoint_restore) && initial_user_namespace; }
};

MapFilesRights map_files_rights() {
    MapFilesRights r;
    if (auto text = read_file("/proc/thread-self/status")) {
        if (auto ids = parse_proc_ids(*text)) {
            r.sys_admin = (ids->cap_eff >> CAP_SYS_ADMIN_BIT & 1) != 0;
            r.checkpoint_restore = (ids->cap_eff >> CAP_CHECKPOINT_RESTORE_BIT & 1) != 0;
        }
    }
    // The initial user namespace maps every uid to itself: "0 0 4294967295".
    if (auto map = read_file("/proc/self/uid_map")) {
        unsigned long long inside = 1, outside = 1, count = 0;
        r.initial_user_namespace =
            std::sscanf(map->c_str(), "%llu %llu %llu", &inside, &outside, &count) == 3 && inside == 0 &&
            outside == 0 && count == 4294967295ULL;
    }
    char exe[PATH_MAX];
    if (const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1); n > 0) {
        r.exe.assign(exe, static_cast<std::size_t>(n));
    }
    return r;
}

/// One way of obtaining the mapping's file: the descriptor, or why not.
struct Way {
    UniqueFd fd;
    int target_fd = -1;  ///< pidfd_getfd: the target's descriptor number
    bool fatal = false;  ///< the mapping or the process is gone: trying other ways is pointless
    ErrorKind kind = ErrorKind::os;
    int err = 0;       ///< errno of the refusal, 0 if none
    std::string what;  ///< what was tried: "/proc/42/map_files/7f..-7f..", "pidfd_getfd(fd 5)"
    std::string why;   ///< the cause in words (without the errno), "" when the errno says it all
    std::string hint;  ///< what would allow it, "" if nothing simple

    /// "what: why" (the errno apart, for an Error that carries it).
    std::string alone() const { return why.empty() ? what : what + ": " + why; }
    /// "what: strerror (ENAME): why", for a list of several refusals.
    std::string clause() const {
        std::string s = what;
        if (err != 0) {
            s += ": " + errno_text(err);
        }
        if (!why.empty()) {
            s += ": " + why;
        }
        return s;
    }
};

Way refused(ErrorKind kind, int err, std::string what, std::string why, std::string hint = {}) {
    Way w;
    w.kind = kind;
    w.err = err;
    w.what = std::move(what);
    w.why = std::move(why);
    w.hint = std::move(hint);
    return w;
}

Way fatal(Way w) {
    w.fatal = true;
    return w;
}

/// /proc/PID/map_files/START-END: the kernel's own link to the mapped file.
/// Lookup needs PTRACE_MODE_READ over the target, following the link
/// CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the initial user namespace.
Way by_map_files(const Process& proc, const Mapping& m, int flags, const MapFilesRights& rights) {
    const std::string entry = "map_files/" + range_of(m);
    const std::string shown = "/proc/" + std::to_string(proc.pid()) + "/" + entry;
    // stat first (it follows the link too, with the same checks): never open
    // something that is not a regular file, a device's open may have effects.
    struct stat st {};
    int err = 0;
    if (::fstatat(proc.proc_dir(), entry.c_str(), &st, 0) != 0) {
        err = errno;
    } else if (st.st_ino != m.inode) {
        // Only the inode: the device maps prints can differ from stat's (btrfs subvolumes).
        return fatal(refused(ErrorKind::os, 0, shown,
                             "now leads to inode " + std::to_string(st.st_ino) + ", not " +
                                 std::to_string(m.inode) + ": the mapping was replaced since maps was read"));
    } else if (!S_ISREG(st.st_mode)) {
        return fatal(refused(ErrorKind::not_supported, 0, shown,
                             "is not a regular file (a device or kernel object): mapping it again could have "
                             "side effects"));
    } else {
        const int fd = detail::retry_eintr([&] { return ::openat(proc.proc_dir(), entry.c_str(), flags); });
        if (fd >= 0) {
            Way w;
            w.fd.reset(fd);
            struct stat now {};
            if (::fstat(fd, &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
                return fatal(refused(ErrorKind::os, 0, shown,
                                     "changed while it was opened (the mapping was replaced)"));
            }
            return w;
        }
        err = errno;
    }
    if (err == ENOENT || err == ESRCH) {
        return fatal(refused(err == ESRCH ? ErrorKind::no_such_process : ErrorKind::os, err, shown,
                             "the mapping is gone (the process unmapped or replaced it, or exited)"));
    }
    if (err == EPERM || err == EACCES) {
        if (!rights.any()) {
            const std::string lacks =
                rights.sys_admin || rights.checkpoint_restore
                    ? "we have them only in a child user namespace, which does not count"
                    : "we have neither";
            const std::string exe = rights.exe.empty() ? std::string("<tool>") : rights.exe;
            return refused(ErrorKind::permission, err, shown,
                           "opening it needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the initial user "
                           "namespace, and " +
                               lacks,
                           "run as root, or grant the tool CAP_CHECKPOINT_RESTORE (Linux 5.9+): `sudo setcap "
                           "cap_checkpoint_restore+ep " +
                               exe + "`");
        }
        // We hold the capability: the lookup's PTRACE_MODE_READ check (or the
        // directory's owner-only mode) refused.
        const AccessVerdict verdict = explain_access(proc.pid(), AccessMode::read);
        if (!verdict.allowed() && verdict.rule != AccessRule::undetermined) {
            return refused(ErrorKind::permission, err, shown, verdict.reason, verdict.how_to_allow);
        }
        return refused(ErrorKind::permission, err, shown,
                       "refused although we hold CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE and no ptrace rule "
                       "refuses: the file's own mode may refuse the access asked for, or a security module "
                       "(SELinux, AppArmor, Landlock)");
    }
    return refused(Error::from_errno(err, "").kind, err, shown, "");
}

/// The access mode `fd` was opened with allows `flags`' access mode.
bool access_ok(int fd, int flags) {
    const int have = ::fcntl(fd, F_GETFL) & O_ACCMODE;
    const int want = flags & O_ACCMODE;
    return have == O_RDWR || have == want;
}

/// Finds a descriptor of the target on the mapping's file (same device and
/// inode, /proc/PID/fd) and duplicates it with pidfd_getfd (PTRACE_MODE_ATTACH).
Way by_pidfd_getfd(const Process& proc, const Mapping& m, int flags) {
    const pid_t pid = proc.pid();
    const std::string listing = "pidfd_getfd: listing /proc/" + std::to_string(pid) + "/fd";
    auto dir_fd = open_fd_at(proc.proc_dir(), "fd", O_RDONLY | O_DIRECTORY, pid);
    if (!dir_fd) {
        const int err = dir_fd.error().errno_value;
        if (err == EACCES || err == EPERM) {
            // pidfd_getfd would need ptrace-attach rights anyway: explain those.
            const AccessVerdict verdict = explain_access(pid, AccessMode::attach);
            if (!verdict.allowed() && verdict.rule != AccessRule::undetermined) {
                return refused(ErrorKind::permission, err, listing, verdict.reason, verdict.how_to_allow);
            }
        }
        if (err == ESRCH || err == ENOENT) {
            return fatal(refused(ErrorKind::no_such_process, err, listing, "the process exited"));
        }
        return refused(dir_fd.error().kind, err, listing, "");
    }
    DIR* dir = ::fdopendir(dir_fd->get());
    if (dir == nullptr) {
        const int err = errno;
        return refused(ErrorKind::os, err, listing, "");
    }
    dir_fd->release();  // owned by dir now
    std::vector<int> candidates;
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] == '.') {
            continue;
        }
        struct stat st {};
        if (::fstatat(::dirfd(dir), entry->d_name, &st, 0) == 0 && same_file(st, m)) {
            candidates.push_back(std::atoi(entry->d_name));
        }
    }
    ::closedir(dir);
    if (candidates.empty()) {
        return refused(ErrorKind::invalid_argument, 0, "pidfd_getfd",
                       "no descriptor of process " + std::to_string(pid) +
                           " refers to the file (it was closed after mmap)",
                       "have the process keep the descriptor open, or send it over a Unix socket "
                       "(send_fd/receive_fd)");
    }
    std::sort(candidates.begin(), candidates.end());
    Way last = refused(ErrorKind::os, 0, "pidfd_getfd", "every descriptor on the file was closed meanwhile");
    for (const int target_fd : candidates) {
        const std::string what = "pidfd_getfd(fd " + std::to_string(target_fd) + ")";
        auto taken = take_fd(proc.pidfd(), target_fd, pid);
        if (!taken) {
            Error& e = taken.error();
            if (e.errno_value == EBADF) {
                continue;  // closed since we listed it
            }
            return refused(e.kind, e.errno_value, what, e.detail, e.hint);
        }
        struct stat st {};
        if (::fstat(taken->get(), &st) != 0 || !same_file(st, m)) {
            continue;  // the number now names another file
        }
        Way w;
        w.target_fd = target_fd;
        if (access_ok(taken->get(), flags)) {
            w.fd = std::move(*taken);
            return w;
        }
        // The target opened it with another access mode: open the same file
        // afresh, which checks the file's own mode for the access we want.
        const std::string self = "/proc/self/fd/" + std::to_string(taken->get());
        const int fd = detail::retry_eintr([&] { return ::open(self.c_str(), flags); });
        if (fd < 0) {
            const int err = errno;
            last = refused(Error::from_errno(err, "").kind, err, what,
                           std::string("the descriptor is not open for ") +
                               ((flags & O_ACCMODE) == O_RDWR ? "reading and writing" : "reading") +
                               " and the file could not be opened afresh that way");
            continue;
        }
        w.fd.reset(fd);
        return w;
    }
    return last;
}

/// Opens the mapping's path, when it still names the same file: the file's own
/// mode decides, no ptrace or capability rule applies.
Way by_path(const Mapping& m, int flags) {
    const std::string path(m.path());
    const std::string what = "open(" + path + ")";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int err = errno;
        return refused(Error::from_errno(err, "").kind, err, what, "");
    }
    if (!same_file(st, m)) {
        return refused(ErrorKind::os, 0, what, "the path now names another file than the one mapped");
    }
    const int fd = detail::retry_eintr([&] { return ::open(path.c_str(), flags | O_NOFOLLOW | O_NOCTTY); });
    if (fd < 0) {
        const int err = errno;
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return refused(
            Error::from_errno(err, "").kind, err, what,
            "the file is owned by uid " + std::to_string(st.st_uid) + " gid " + std::to_string(st.st_gid) +
                " with mode " + mode + " and we are uid " + std::to_string(::geteuid()) + " gid " +
                std::to_string(::getegid()),
            err == EACCES ? "run as the file's owner, or have it created with a mode that admits us" : "");
    }
    Way w;
    w.fd.reset(fd);
    struct stat now {};
    if (::fstat(fd, &now) != 0 || !same_file(now, m)) {
        return refused(ErrorKind::os, 0, what, "the file changed while it was opened");
    }
    return w;
}

/// The shared mappings of `map`, for a hint: "A-B NAME, C-D NAME (and N more)".
std::string shared_mappings(const MemoryMap& map) {
    constexpr std::size_t SHOWN = 4;
    std::string s;
    std::size_t count = 0;
    for (const Mapping& m : map) {
        if (!m.perms.shared) {
            continue;
        }
        if (count < SHOWN) {
            s += count == 0 ? "" : ", ";
            s += describe(m);
        }
        ++count;
    }
    if (count > SHOWN) {
        s += " (and " + std::to_string(count - SHOWN) + " more)";
    }
    return s;
}

}  // namespace

Result<SharedMemory> SharedMemory::from_process(pid_t pid, std::uint64_t address, ShmAccess access,
                                                const Options& options) {
    if (pid <= 0) {
        return fail(Error::make(ErrorKind::invalid_argument, "from_process",
                                "pid " + std::to_string(pid) + " is not a process id (it must be positive)")
                        .with_address(address));
    }
    auto proc = Process::open(pid);
    if (!proc && (proc.error().errno_value == EINVAL || proc.error().errno_value == ENOENT)) {
        // A thread id (pidfd_open takes thread-group leaders only): its process's memory.
        if (const auto tgid = thread_group_of(pid); tgid && *tgid != pid) {
            proc = Process::open(*tgid);
        }
    }
    if (!proc) {
        return fail(std::move(proc.error().with_address(address)));
    }
    const pid_t target = proc->pid();
    auto map = read_maps(*proc);
    if (!map) {
        return fail(std::move(map.error().with_address(address)));
    }
    const auto it = std::find_if(map->begin(), map->end(),
                                 [&](const Mapping& m) { return m.start <= address && address < m.end; });
    if (it == map->end()) {
        const std::string shared = shared_mappings(*map);
        return fail(
            Error::make(ErrorKind::invalid_argument, "from_process",
                        "the address is not inside any mapping of process " + std::to_string(target), target)
                .with_address(address)
                .with_hint(shared.empty() ? "process " + std::to_string(target) +
                                                " has no shared mapping (MAP_SHARED) at all"
                                          : "pick an address inside one of its shared mappings: " + shared));
    }
    const Mapping& m = *it;
    const std::string operation = "from_process(" + describe(m) + ")";
    const auto error = [&](ErrorKind kind, std::string detail, std::string hint = {}, int err = 0) {
        Error e = Error::make(kind, operation, std::move(detail), target).with_address(address);
        e.errno_value = err;
        e.hint = std::move(hint);
        return fail(std::move(e));
    };
    if (!m.perms.shared) {
        const std::string shared = shared_mappings(*map);
        return error(
            ErrorKind::invalid_argument,
            "the mapping is private (" + std::string(m.perms.text()) +
                ", MAP_PRIVATE): its pages are the process's own copy-on-write copies, which no other "
                "process can map",
            "only MAP_SHARED mappings (permissions ending in 's') can be shared" +
                (shared.empty() ? std::string(", and process " + std::to_string(target) + " has none")
                                : "; its shared mappings: " + shared) +
                "; to copy a private mapping's bytes, read them with process_vm_readv(2) or /proc/PID/mem "
                "(ptrace-attach rights)");
    }
    if (m.kind != MappingKind::file && m.kind != MappingKind::anon_shmem) {
        return error(ErrorKind::not_supported,
                     "the mapping is not backed by a file but by a kernel object or device (" +
                         std::string(m.name.empty() ? "no name" : m.name) +
                         "): mapping it again could have side effects",
                     "from_process maps shared memory: memfd, POSIX and System V shm, shared anonymous "
                     "memory, regular files");
    }

    const int flags = (access == ShmAccess::read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    const MapFilesRights rights = map_files_rights();
    std::vector<Way> failed;
    Way got = by_map_files(*proc, m, flags, rights);
    ShmVia via = ShmVia::map_files;
    if (!got.fd.valid() && !got.fatal && !is_shared_anonymous(m)) {
        failed.push_back(std::move(got));
        got = by_pidfd_getfd(*proc, m, flags);
        via = ShmVia::pidfd_getfd;
        if (!got.fd.valid() && !got.fatal && m.kind == MappingKind::file && !m.deleted &&
            m.path().starts_with('/')) {
            failed.push_back(std::move(got));
            got = by_path(m, flags);
            via = ShmVia::path;
        }
    }
    if (!got.fd.valid()) {
        const bool anonymous = is_shared_anonymous(m) && !got.fatal;
        failed.push_back(std::move(got));
        if (failed.size() == 1 || failed.back().fatal) {
            // One refusal, or the mapping or process is gone: the Error carries its errno.
            Way& w = failed.back();
            std::string detail = w.alone();
            if (anonymous) {
                detail +=
                    "; shared anonymous and System V memory has no descriptor or path another process could "
                    "use, so /proc/PID/map_files is the only way to it";
            }
            return error(w.kind, std::move(detail), std::move(w.hint), w.err);
        }
        // Several refusals: each clause names its own errno, errno_value stays 0.
        ErrorKind kind = failed.back().kind;
        std::string detail;
        std::string hint;
        for (const Way& w : failed) {
            if (w.kind == ErrorKind::permission) {
                kind = ErrorKind::permission;
            }
            detail += detail.empty() ? "" : "; ";
            detail += w.clause();
            if (!w.hint.empty() && hint.find(w.hint) == std::string::npos) {
                hint += hint.empty() ? "" : "; or ";
                hint += w.hint;
            }
        }
        return error(kind, std::move(detail), std::move(hint));
    }

    auto st = stat_fd(got.fd.get(), m.name);
    if (!st) {
        return fail(std::move(st.error().with_address(address)));
    }
    ShmOrigin origin;
    origin.pid = target;
    origin.start = m.start;
    origin.end = m.end;
    origin.file_offset = m.offset;
    origin.file_size = static_cast<std::uint64_t>(st->st_size);
    origin.dev_major = m.dev_major;
    origin.dev_minor = m.dev_minor;
    origin.inode = m.inode;
    origin.name = std::string(m.name);
    origin.perms = std::string(m.perms.text());
    origin.via = via;
    origin.target_fd = got.target_fd;
    for (const Way& w : failed) {
        origin.fallback_note += origin.fallback_note.empty() ? "" : "; ";
        origin.fallback_note += w.clause();
    }
    // Only the part of the mapping the file backs: past the end of the file a
    // mapping's pages raise SIGBUS, in the target as here.
    const std::uint64_t backed = origin.file_size > m.offset ? origin.file_size - m.offset : 0;
    const std::uint64_t length = std::min<std::uint64_t>(m.size(), backed);
    origin.truncated = length < m.size();

    SharedMemory shm;
    shm.m_fd = std::move(got.fd);
    shm.m_access = access;
    shm.m_options = options;
    shm.m_map_offset = m.offset;
    shm.m_size = static_cast<std::size_t>(length);
    shm.m_origin = std::move(origin);
    if (auto ok = shm.map("mmap"); !ok) {
        Error& e = ok.error();
        e.pid = target;
        e.with_address(address);
        if (access == ShmAccess::read_write && e.errno_value == EPERM) {
            const int seals = ::fcntl(shm.m_fd.get(), F_GET_SEALS);
            if (seals > 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0) {
                e.hint =
                    "the memfd is sealed against writing (F_SEAL_WRITE or F_SEAL_FUTURE_WRITE): map it "
                    "read-only";
            }
        }
        return fail(std::move(e));
    }
    return shm;
}

}  // namespace xproc
