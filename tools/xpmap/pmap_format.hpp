// SPDX-License-Identifier: MIT
#pragma once
/// @file pmap_format.hpp
/// pmap's four output formats (default, -x, -d, -X/-XX/-c), byte for byte as
/// procps-ng 4.0.2 prints them, including its quirks (see the comments in
/// pmap_format.cpp and the man page, section "Compatibility").

#include <sys/types.h>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "options.hpp"
#include "out_buffer.hpp"
#include "xproc/maps.hpp"

namespace xpmap {

/// One process to print: what the library read, reduced to what the formats need.
struct ProcessData {
    pid_t pid = 0;                  ///< shown in the header (the thread-group id)
    std::string command;            ///< header text, see command.hpp
    std::uint64_t start_stack = 0;  ///< /proc/PID/stat startstack: decides "[ stack ]"
    /// The mappings to print, in order: every mapping in address order, or (with
    /// --sort/--top) the ones selected, already range-filtered, sorted and cut.
    std::vector<const xproc::Mapping*> rows;
};

/// The device minor of SysV shared memory mappings, found the way pmap finds it:
/// by attaching a private segment of our own and looking at our own map. Done at
/// most once, and only when a mapping could be one (major 0, "/SYSV" in its name).
class ShmMinor {
  public:
    unsigned get();

  private:
    bool m_known = false;
    unsigned m_minor = ~0u;
};

/// Formats processes in pmap's formats. One instance serves every PID of a run:
/// like pmap, the -X columns' widths and totals carry over from one PID to the next.
class PmapFormatter {
  public:
    explicit PmapFormatter(const Options& options);
    ~PmapFormatter();
    PmapFormatter(const PmapFormatter&) = delete;
    PmapFormatter& operator=(const PmapFormatter&) = delete;

    /// "PID:   command\n", printed before the map is read (as pmap does).
    static void header(OutBuffer& out, const ProcessData& process);
    /// The table of one process (everything after the header line).
    void body(OutBuffer& out, const ProcessData& process);

    /// The smaps fields -X shows (every field but AnonHugePages, KernelPageSize,
    /// MMUPageSize, Shared_*/Private_* and VmFlags), as pmap decides it.
    static bool shown_by_X(std::string_view field) noexcept;

  private:
    struct Columns;  // the -X/-XX/-c column list (carried across PIDs)
    void classic(OutBuffer& out, const ProcessData& process);
    void extended(OutBuffer& out, const ProcessData& process);
    bool enabled(std::string_view column) const noexcept;

    const Options& m_options;
    ShmMinor m_shm;
    Columns* m_columns;
};

/// The text the kernel prints for `m` in /proc/PID/maps, with its newline.
std::string kernel_maps_line(const xproc::Mapping& m);
/// Its length, without building it.
std::size_t kernel_maps_line_length(const xproc::Mapping& m) noexcept;

}  // namespace xpmap
