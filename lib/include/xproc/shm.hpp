// SPDX-License-Identifier: MIT
#pragma once
/// @file shm.hpp
/// `SharedMemory`: POSIX shared-memory segments (create, open, resize, remove)
/// with an explicit mode and an ownership check, anonymous segments from
/// memfd_create that leave no name behind, passing and taking their
/// descriptors, and `list_segments()`: what /dev/shm holds and who uses it.
/// `SharedMemory::from_process()` maps another process's shared mapping (memfd,
/// POSIX shm, shared anonymous, System V) into ours, given an address inside it.
///
/// Named segments are created and opened with Boost.Interprocess
/// (`shared_memory_object`, `mapped_region`); Boost stays inside the library, a
/// consumer of this header needs none. Nothing here throws: every fallible call
/// returns `Result<T>`. Destructors unmap and close, they never unlink a name:
/// `SharedMemory::remove(name)` is the only call that does.
///
///   auto shm = xproc::SharedMemory::create("/my-ring", 1 << 20);   // O_EXCL, mode 0600
///   if (!shm) { std::cerr << shm.error().message() << '\n'; }
///   std::memcpy(shm->data(), "hi", 2);

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xproc/error.hpp"
#include "xproc/fd.hpp"

namespace xproc {

/// How a segment is opened and mapped.
enum class ShmAccess : std::uint8_t {
    read_only,   ///< PROT_READ; resize() is refused
    read_write,  ///< PROT_READ | PROT_WRITE
};

/// Mapping options. Each is best effort: the mapping succeeds without it and
/// `SharedMemory::status()` says what was applied and, if not, why.
struct ShmOptions {
    bool populate = false;    ///< MAP_POPULATE: fault every page in at map time
    bool lock = false;        ///< mlock(2) the mapping (RLIMIT_MEMLOCK / CAP_IPC_LOCK apply)
    bool huge_pages = false;  ///< madvise(MADV_HUGEPAGE); needs shmem THP (shmem_enabled not never/deny)
};

/// What the last mapping really got (see ShmOptions).
struct ShmMapStatus {
    bool populated = false;   ///< MAP_POPULATE was passed to mmap
    bool locked = false;      ///< mlock succeeded
    bool huge_pages = false;  ///< MADV_HUGEPAGE accepted and shmem THP enabled
    std::string note;         ///< why a requested option was not applied ("" when all were)
};

/// How `SharedMemory::from_process` obtained the file behind another process's mapping.
enum class ShmVia : std::uint8_t {
    map_files,    ///< opened /proc/PID/map_files/START-END (CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)
    pidfd_getfd,  ///< duplicated a descriptor of the target on the same file (ptrace-attach rights)
    path,         ///< opened the file by its path (the file's own permissions), same device and inode
};

/// "map_files", "pidfd_getfd", "path".
std::string_view to_string(ShmVia via) noexcept;

/// Where a segment made by `SharedMemory::from_process` comes from: the other
/// process's mapping as /proc/PID/maps showed it, and how its file was obtained.
struct ShmOrigin {
    pid_t pid = 0;            ///< the process whose mapping this is
    std::uint64_t start = 0;  ///< the remote mapping's first address
    std::uint64_t end = 0;    ///< one past its last address
    /// File offset of `start` (maps' offset column): `data()` is this byte of the file.
    std::uint64_t file_offset = 0;
    std::uint64_t file_size = 0;  ///< the file's size when it was mapped here
    std::uint32_t dev_major = 0;  ///< device and inode of the file (maps and fstat agree)
    std::uint32_t dev_minor = 0;
    std::uint64_t inode = 0;
    /// Maps' name column: "/dev/shm/ring", "/memfd:x (deleted)", "/dev/zero (deleted)".
    std::string name;
    std::string perms;  ///< maps' permissions, e.g. "rw-s"
    ShmVia via = ShmVia::map_files;
    int target_fd = -1;  ///< the target's descriptor duplicated (via pidfd_getfd), else -1
    /// Why the ways tried before `via` failed ("" when map_files worked at once).
    std::string fallback_note;
    /// The mapping reaches past the end of the file (the file is shorter than
    /// file_offset + (end - start)): only `size()` bytes, those the file backs, are mapped.
    bool truncated = false;
};

/// A shared-memory segment, mapped into this process.
///
/// Move-only owner of the descriptor and the mapping (the whole segment,
/// MAP_SHARED). A segment of size 0 has no mapping (`data()` is nullptr).
/// Not thread safe: share the memory, not the object.
class SharedMemory {
  public:
    using Options = ShmOptions;

    /// Creates `name` with O_EXCL and exactly `mode` (applied with fchmod, so the
    /// umask does not change it), sizes it to `size` and maps it read-write.
    /// Errors: invalid_argument for a bad name (see validate_name), os with
    /// EEXIST when the name exists, permission, os for anything else. On any
    /// failure after the name was created, the name is removed again.
    static Result<SharedMemory> create(std::string_view name, std::size_t size, mode_t mode = 0600,
                                       const Options& options = {});

    /// Creates a segment under a fresh temporary name "/.xproc-new-PID-N-RANDOM" (to be
    /// renamed into place once formatted: see rename()), like create(). The random part
    /// makes a name left behind by a process that died before its rename (and whose pid
    /// we now have) harmless: a name that exists is skipped, not an error.
    static Result<SharedMemory> create_temporary(std::size_t size, mode_t mode = 0600,
                                                 const Options& options = {});

    /// Removes temporary names ("/.xproc-new-PID-...") left behind by creators that died
    /// before their rename: those whose PID no longer exists and that are at least
    /// `min_age` old (a live creator renames its name within microseconds; the age also
    /// covers a creator in another pid namespace that shares /dev/shm). Only names owned by
    /// our effective uid are touched. Returns the names removed; best effort (a name that
    /// vanishes meanwhile is skipped). create_temporary() calls it once per process.
    static std::vector<std::string> remove_stale_temporaries(
        std::chrono::seconds min_age = std::chrono::seconds{60});
    /// True when `name` ("/NAME" or "NAME") is a temporary name of create_temporary();
    /// `creator` receives the PID it carries.
    static bool is_temporary_name(std::string_view name, pid_t* creator = nullptr) noexcept;

    /// Opens an existing segment and maps all of it. A segment whose owner is not
    /// our effective uid is refused (kind permission, the owner's uid in the
    /// detail, how to allow it in the hint) unless `allow_foreign_owner`: someone
    /// else's segment may be hostile or may vanish under us.
    static Result<SharedMemory> open(std::string_view name, ShmAccess access = ShmAccess::read_write,
                                     bool allow_foreign_owner = false, const Options& options = {});

    /// Opens `name` if it exists (same ownership rule as open, size kept as it
    /// is), otherwise creates it like create(). `created()` says which happened.
    static Result<SharedMemory> open_or_create(std::string_view name, std::size_t size, mode_t mode = 0600,
                                               bool allow_foreign_owner = false, const Options& options = {});

    /// An anonymous segment from memfd_create(MFD_CLOEXEC): no name in /dev/shm,
    /// gone when the last descriptor and mapping are. `debug_name` shows in
    /// /proc/PID/maps as "/memfd:NAME (deleted)". `allow_sealing` adds
    /// MFD_ALLOW_SEALING so the owner may fcntl(F_ADD_SEALS) later.
    static Result<SharedMemory> anonymous(std::size_t size, std::string_view debug_name,
                                          bool allow_sealing = false, const Options& options = {});

    /// Maps a descriptor received from elsewhere (receive_fd, take_fd), whole
    /// (size from fstat). The result is anonymous: it has no name.
    static Result<SharedMemory> from_fd(UniqueFd fd, ShmAccess access = ShmAccess::read_write,
                                        const Options& options = {});

    /// Maps into this process the shared mapping of process `pid` that contains
    /// `address` (a MAP_SHARED mapping of a memfd, a POSIX shm segment, any
    /// regular file, shared anonymous memory or System V shared memory): the same
    /// pages, so each side sees the other's writes. Read-only unless `access` is
    /// read_write. The mapping is found in /proc/PID/maps; its file is obtained, in
    /// this order, by opening /proc/PID/map_files/START-END (the kernel requires
    /// CAP_SYS_ADMIN, or since Linux 5.9 CAP_CHECKPOINT_RESTORE, in the initial
    /// user namespace), by pidfd_getfd(2) on a descriptor of the target that
    /// refers to the same file (same device and inode; needs ptrace-attach rights,
    /// see access.hpp), or by opening its path when it still names the same file.
    /// Shared anonymous and System V memory have no descriptor or path: only
    /// map_files reaches them. The file region the mapping shows is mapped here:
    /// from its file offset, for its length (less, `origin()->truncated`, when the
    /// file is shorter). `origin()` says where it came from and `local()`
    /// translates a remote address. The segment is anonymous (no name) and cannot
    /// be resized.
    ///
    /// Errors (operation "from_process(START-END NAME)", with pid and address):
    /// invalid_argument for an address outside every mapping (the hint lists the
    /// shared ones) or inside a private mapping (MAP_PRIVATE pages are the
    /// process's own copy-on-write copies: they cannot be shared);
    /// not_supported for a mapping of something other than a regular file
    /// (a device, an anon_inode); no_such_process, zombie, or permission when
    /// the map cannot be read; permission when every way was refused, the detail
    /// naming each refusal (the capability for map_files, the ptrace rule for
    /// pidfd_getfd, the file's mode for the path) and the hint what would allow one;
    /// errno_value is the refusal's errno when one way applied (shared anonymous
    /// memory: map_files only), 0 when several did (each clause names its errno).
    /// The mapping is read from /proc at the time of the call: if the process
    /// unmaps or replaces it meanwhile, the result is an error, never another file
    /// (the device and inode are checked on the descriptor obtained).
    /// Thread safe (no shared state); the returned object is not.
    static Result<SharedMemory> from_process(pid_t pid, std::uint64_t address,
                                             ShmAccess access = ShmAccess::read_only,
                                             const Options& options = {});

    /// shm_unlink(name). Existing mappings stay valid. Errors name the segment.
    static Result<void> remove(std::string_view name);

    /// A valid segment name: starts with '/', has no other '/', 2..NAME_MAX
    /// characters (with the slash). Returns invalid_argument saying which rule failed.
    static Result<void> validate_name(std::string_view name);

    SharedMemory(SharedMemory&& other) noexcept;
    SharedMemory& operator=(SharedMemory&& other) noexcept;
    SharedMemory(const SharedMemory&) = delete;
    SharedMemory& operator=(const SharedMemory&) = delete;
    ~SharedMemory();

    /// Renames the segment (renameat2 in /dev/shm with RENAME_NOREPLACE: an existing
    /// name is never replaced, EEXIST). Prepare a segment under a temporary name, then
    /// rename it: openers never see it half-initialised. Mappings stay valid.
    Result<void> rename(std::string_view new_name);

    /// Changes the segment's size (ftruncate) and remaps it: `data()` may move,
    /// pointers into the old mapping are invalid afterwards. Other processes keep
    /// their mapping at its old size. Refused for a read-only segment.
    Result<void> resize(std::size_t new_size);

    /// "/name", or "" for an anonymous segment.
    const std::string& name() const noexcept { return m_name; }
    std::size_t size() const noexcept { return m_size; }
    std::byte* data() const noexcept { return static_cast<std::byte*>(m_data); }
    int fd() const noexcept { return m_fd.get(); }
    ShmAccess access() const noexcept { return m_access; }
    bool is_anonymous() const noexcept { return m_name.empty(); }
    /// True when create/anonymous made the segment, or open_or_create created it.
    bool created() const noexcept { return m_created; }
    /// What the mapping options really achieved.
    const ShmMapStatus& status() const noexcept { return m_status; }
    /// For a segment made by from_process: the remote mapping and how it was
    /// obtained; nullptr for every other segment.
    const ShmOrigin* origin() const noexcept { return m_origin ? &*m_origin : nullptr; }
    /// For a segment made by from_process: the local address of the byte that
    /// `remote_address` shows in the origin process, or nullptr when that address
    /// is outside the part mapped here ([start, start + size())) or this segment
    /// was not made by from_process.
    std::byte* local(std::uint64_t remote_address) const noexcept;

  private:
    struct Region;  // the Boost mapped_region, kept out of this header

    SharedMemory() noexcept;
    /// Maps m_fd for m_size bytes (no mapping for size 0), replacing any mapping.
    Result<void> map(const char* operation);
    void unmap() noexcept;

    std::string m_name;
    UniqueFd m_fd;
    std::unique_ptr<Region> m_region;
    void* m_data = nullptr;
    std::size_t m_size = 0;
    ShmAccess m_access = ShmAccess::read_write;
    Options m_options;
    ShmMapStatus m_status;
    bool m_created = false;
    std::uint64_t m_map_offset = 0;     // file offset mapped at data() (from_process), else 0
    std::optional<ShmOrigin> m_origin;  // set by from_process
};

/// One entry of /dev/shm and the processes that use it.
struct ShmSegmentInfo {
    std::string name;  ///< "/NAME" (as shm_open takes it)
    std::uint64_t size = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    mode_t mode = 0;                  ///< permission bits (st_mode & 07777)
    bool regular_file = true;         ///< false for anything else found in /dev/shm (directories...)
    std::vector<pid_t> mapped_by;     ///< processes with a mapping of it (/proc/PID/maps), ascending
    std::vector<pid_t> held_open_by;  ///< processes with a descriptor on it (/proc/PID/fd), ascending
};

/// Everything in /dev/shm, by name.
struct ShmSegmentList {
    std::vector<ShmSegmentInfo> segments;  ///< sorted by name
    /// Processes whose maps or fd directory could not be read (permission):
    /// their use of segments is unknown ("N processes could not be inspected").
    std::size_t uninspected_processes = 0;
};

/// Lists /dev/shm with size, owner, mode, and the processes that map each
/// segment or hold it open. Processes that exit during the scan and kernel
/// threads are skipped; unreadable ones are counted, not reported as errors.
/// Fails only when /dev/shm itself or /proc cannot be listed.
Result<ShmSegmentList> list_segments();

/// Sends `fd` over the connected Unix socket `socket` (SCM_RIGHTS, one data byte).
Result<void> send_fd(int socket, int fd);
/// Receives one descriptor sent by send_fd (close-on-exec set). Errors: os on
/// failure, invalid_argument if the peer closed or sent no descriptor.
Result<UniqueFd> receive_fd(int socket);

/// Duplicates descriptor `target_fd` of the process behind `pidfd` into ours
/// (pidfd_getfd(2), Linux 5.6). The kernel requires PTRACE_MODE_ATTACH over
/// the target; on EPERM the error explains that rule, and when `pid` is given
/// (it only labels the error) names the exact rule that refused (access.hpp).
Result<UniqueFd> take_fd(int pidfd, int target_fd, pid_t pid = 0);

/// Opens segment `name` without mapping it, for reading (or writing) it with
/// pread(2)/pwrite(2), which a concurrent truncation by another process cannot
/// turn into SIGBUS as a mapping access can. O_NONBLOCK and no O_CREAT: a FIFO
/// someone put in /dev/shm does not block the open; anything but a regular file
/// is refused (invalid_argument). No ownership check. Errors name the segment;
/// EACCES says who owns it with which mode.
Result<UniqueFd> open_segment_fd(std::string_view name, ShmAccess access = ShmAccess::read_only);

/// pread(2) from `fd` at `offset` until `out` is full or the file ends; returns
/// the bytes read (fewer than out.size() only at end of file). EINTR retried;
/// `what` names the file in an error.
Result<std::size_t> read_at(int fd, std::uint64_t offset, std::span<std::byte> out, std::string_view what);

}  // namespace xproc
