// SPDX-License-Identifier: MIT
#pragma once
/// @file shm.hpp
/// `SharedMemory`: POSIX shared-memory segments (create, open, resize, remove)
/// with an explicit mode and an ownership check, anonymous segments from
/// memfd_create that leave no name behind, passing and taking their
/// descriptors, and `list_segments()`: what /dev/shm holds and who uses it.
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
#include <cstddef>
#include <cstdint>
#include <memory>
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

}  // namespace xproc
