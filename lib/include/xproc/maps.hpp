// SPDX-License-Identifier: MIT
#pragma once
/// @file maps.hpp
/// Typed records for /proc/PID/maps, /proc/PID/smaps and /proc/PID/smaps_rollup.
///
/// A `MemoryMap` owns the raw text it was parsed from (read in large chunks, one
/// buffer); every `Mapping` and `SmapsField` refers into that buffer through
/// `std::string_view`s, so parsing does no per-line heap allocation. Views stay
/// valid for as long as the `MemoryMap` lives (moving it keeps them valid).
///
/// Usage:
/// @code
///   auto map = xproc::read_smaps(pid);
///   if (!map) { report(map.error()); }
///   for (const xproc::Mapping& m : *map) { use(m.start, m.path, m.smaps.rss_kb); }
/// @endcode

#include <sys/types.h>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xproc/detail/page_buffer.hpp"
#include "xproc/error.hpp"

namespace xproc {

class Process;

/// The four permission letters of a maps line ("r-xp").
struct Permissions {
    bool read = false;
    bool write = false;
    bool exec = false;
    bool shared = false;  ///< 's' (MAP_SHARED) instead of 'p'
    /// The kernel's four letters, e.g. "rw-p".
    std::string_view text() const noexcept;
};

/// What the name column of a maps line denotes.
enum class MappingKind : std::uint8_t {
    anonymous,   ///< no name at all
    file,        ///< a path (may end in " (deleted)", may contain spaces)
    heap,        ///< [heap]
    stack,       ///< [stack]
    vdso,        ///< [vdso]
    vvar,        ///< [vvar] (and [vvar_vclock])
    vsyscall,    ///< [vsyscall]
    anon_named,  ///< [anon:NAME] (prctl PR_SET_VMA_ANON_NAME)
    anon_shmem,  ///< [anon_shmem:NAME]
    pseudo,      ///< any other name that is not a path: [uprobes], anon_inode:[perf_event], ... (verbatim)
};

/// One numeric smaps line, in the order the kernel printed it. Kept by name so
/// fields a newer kernel adds survive without code changes.
struct SmapsField {
    std::string_view name;    ///< "Rss", "Pss_Dirty", "THPeligible", ...
    std::uint64_t value = 0;  ///< as printed; kB when `in_kb`
    bool in_kb = false;       ///< the line ended in " kB"
};

/// The well-known smaps fields, decoded (kB unless noted). Absent fields are 0;
/// `Mapping::fields` (or `Mapping::find_field`) says which of them the kernel printed.
struct SmapsCounters {
    std::uint64_t size_kb = 0;
    std::uint64_t kernel_page_size_kb = 0;
    std::uint64_t mmu_page_size_kb = 0;
    std::uint64_t rss_kb = 0;
    std::uint64_t pss_kb = 0;
    std::uint64_t pss_dirty_kb = 0;
    std::uint64_t pss_anon_kb = 0;   ///< smaps_rollup only
    std::uint64_t pss_file_kb = 0;   ///< smaps_rollup only
    std::uint64_t pss_shmem_kb = 0;  ///< smaps_rollup only
    std::uint64_t shared_clean_kb = 0;
    std::uint64_t shared_dirty_kb = 0;
    std::uint64_t private_clean_kb = 0;
    std::uint64_t private_dirty_kb = 0;
    std::uint64_t referenced_kb = 0;
    std::uint64_t anonymous_kb = 0;
    std::uint64_t ksm_kb = 0;
    std::uint64_t lazy_free_kb = 0;
    std::uint64_t anon_huge_pages_kb = 0;
    std::uint64_t shmem_pmd_mapped_kb = 0;
    std::uint64_t file_pmd_mapped_kb = 0;
    std::uint64_t shared_hugetlb_kb = 0;
    std::uint64_t private_hugetlb_kb = 0;
    std::uint64_t swap_kb = 0;
    std::uint64_t swap_pss_kb = 0;
    std::uint64_t locked_kb = 0;
    std::int32_t thp_eligible = -1;    ///< 0/1, -1 when absent
    std::int32_t protection_key = -1;  ///< -1 when absent
    std::string_view vm_flags;         ///< "rd wr mr mw me ac" (no trailing space), empty when absent

    std::uint64_t dirty_kb() const noexcept { return shared_dirty_kb + private_dirty_kb; }
};

/// One mapping (one VMA): a maps line plus, when read from smaps, its detail lines.
struct Mapping {
    std::uint64_t start = 0;  ///< first address
    std::uint64_t end = 0;    ///< one past the last address
    Permissions perms;
    std::uint64_t offset = 0;  ///< file offset in bytes
    std::uint32_t dev_major = 0;
    std::uint32_t dev_minor = 0;
    std::uint64_t inode = 0;
    /// Name column exactly as the kernel printed it, leading padding removed,
    /// including any " (deleted)" suffix; empty for anonymous mappings.
    std::string_view name;
    MappingKind kind = MappingKind::anonymous;
    bool deleted = false;  ///< a file mapping whose name ends in " (deleted)"
    /// Every numeric smaps line of this mapping in kernel order (empty for maps).
    std::span<const SmapsField> fields;
    SmapsCounters smaps;  ///< decoded fields (all zero for maps)

    std::uint64_t size() const noexcept { return end - start; }
    /// The path without the " (deleted)" suffix (file mappings), else `name`.
    std::string_view path() const noexcept;
    /// The NAME of [anon:NAME] / [anon_shmem:NAME], else empty.
    std::string_view anon_name() const noexcept;
    /// The first smaps field called `field_name` ("Pss_Dirty"), or nullptr when the
    /// kernel did not print it. Linear in the number of fields.
    const SmapsField* find_field(std::string_view field_name) const noexcept;
};

/// Which file a MemoryMap came from.
enum class MapsSource : std::uint8_t { maps, smaps, smaps_rollup };

/// A parsed memory map. Move-only: its mappings point into the text it owns.
class MemoryMap {
  public:
    using const_iterator = std::vector<Mapping>::const_iterator;

    MemoryMap() = default;
    MemoryMap(MemoryMap&&) noexcept = default;
    MemoryMap& operator=(MemoryMap&&) noexcept = default;
    MemoryMap(const MemoryMap&) = delete;
    MemoryMap& operator=(const MemoryMap&) = delete;

    /// Parses `text` (takes ownership) as the given source. A malformed line is
    /// an `ErrorKind::parse` error whose operation names the 1-based line
    /// ("parse smaps line 12") and whose detail says what is wrong, quoting the
    /// line; never a crash. Empty text is an empty map. In smaps, a line
    /// "Name: text" whose name is unknown and whose value is not a number (a
    /// textual field of a newer kernel) is skipped; numeric unknown lines are kept
    /// in `Mapping::fields`. Thread safe (no shared state).
    static Result<MemoryMap> parse(std::string text, MapsSource source);
    /// Same, for text already in a page buffer (what the readers use: no copy).
    static Result<MemoryMap> parse(detail::PageBuffer text, MapsSource source);

    MapsSource source() const noexcept { return m_source; }
    const std::vector<Mapping>& mappings() const noexcept { return m_mappings; }
    const_iterator begin() const noexcept { return m_mappings.begin(); }
    const_iterator end() const noexcept { return m_mappings.end(); }
    std::size_t size() const noexcept { return m_mappings.size(); }
    bool empty() const noexcept { return m_mappings.empty(); }
    const Mapping& operator[](std::size_t i) const noexcept { return m_mappings[i]; }
    /// The raw text parsed.
    std::string_view text() const noexcept { return m_text.view(); }

  private:
    detail::PageBuffer m_text;  // its own mapping: views survive moves
    std::vector<Mapping> m_mappings;
    std::vector<SmapsField> m_fields;
    MapsSource m_source = MapsSource::maps;
};

/// Reads and parses /proc/PID/maps of a pinned process, through its /proc
/// directory (`Process::proc_dir()`), so a reused pid is never read.
///
/// Complete or an error: when a process exits, the kernel just ends its maps
/// early, without an error. So when the process had memory before the read,
/// this checks afterwards that it still has it (not exited, state not Z/X,
/// vsize not 0: exit_mm() clears what stat shows as vsize before the memory
/// stops answering reads); if it does not, the result is
/// `ErrorKind::no_such_process` with detail "the process exited while being
/// read", never a partial map. A process that was already a zombie or is a
/// kernel thread has no map: `ErrorKind::zombie` / `ErrorKind::kernel_thread`.
/// One that was reaped gives no_such_process. A refusal explains which rule
/// applied (see access.hpp). Thread safe if `proc` is not used concurrently.
Result<MemoryMap> read_maps(const Process& proc);
/// Reads and parses /proc/PID/smaps of a pinned process (same guarantees).
Result<MemoryMap> read_smaps(const Process& proc);
/// Reads /proc/PID/smaps_rollup of a pinned process (same guarantees): one
/// `Mapping` whose range covers the whole address space and whose counters are
/// the process totals.
Result<MemoryMap> read_smaps_rollup(const Process& proc);

/// Reads and parses /proc/PID/maps: `Process::open(pid)`, then the overload
/// above, with all its guarantees. An id pidfd_open refuses as a thread that is
/// not a thread-group leader is read by path, as /proc/TID/maps (its process's
/// map), without the exit check: pin `thread_group_of(tid)` for that. On a
/// refusal, the error explains why (see access.hpp): no such process, zombie,
/// kernel thread, or which rule.
Result<MemoryMap> read_maps(pid_t pid);
/// Reads and parses /proc/PID/smaps (same conventions).
Result<MemoryMap> read_smaps(pid_t pid);
/// Reads /proc/PID/smaps_rollup (same conventions).
Result<MemoryMap> read_smaps_rollup(pid_t pid);

/// Reads any of the three from an already-open descriptor (for a pinned process
/// or a saved file); `pid` only labels errors.
Result<MemoryMap> read_map_file(int fd, MapsSource source, pid_t pid = 0);

}  // namespace xproc
