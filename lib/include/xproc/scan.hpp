// SPDX-License-Identifier: MIT
#pragma once
/// @file scan.hpp
/// Search another process's memory for bytes, strings and values, and narrow a
/// previous result set (the scanmem workflow: find 100, let it change, rescan for 101).
///
/// Scans read in bulk: the readable mappings (adjacent ones merged, so a pattern that
/// straddles two mappings is found) are cut into pieces of `ScanOptions::chunk` bytes in
/// total, read by one `RemoteMemory::readv` (process_vm_readv with many iovecs), and
/// searched in place. Consecutive pieces of one region overlap by pattern.size() - 1 bytes,
/// so a match across a piece boundary is found, exactly once.
///
/// Never-touched memory is not read: in private anonymous mappings of 8 MiB or more, only the
/// pages that exist (present or swapped, not the shared zero page) are read, asked of the kernel
/// with ioctl(PAGEMAP_SCAN) on /proc/PID/pagemap (Linux >= 6.7; older kernels read it all).
/// The rest holds zeros, so this changes no result unless the pattern is all zeros, which
/// turns it off. Each kept range is widened by pattern.size() - 1 bytes on both sides so a
/// match running into the zeros is found. (A sanitizer's 14 TiB shadow mapping is then cheap.)

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "xproc/error.hpp"
#include "xproc/memory.hpp"

namespace xproc {

enum class ValueType : std::uint8_t { i8, i16, i32, i64, u8, u16, u32, u64, f32, f64 };

/// Width in bytes of a value of this type (1, 2, 4 or 8).
std::size_t width(ValueType type) noexcept;
/// "i8", "u32", "f64", ...
std::string_view to_string(ValueType type) noexcept;

struct ScanOptions {
    /// [start, end); default: all readable mappings. With a range, the readable mappings are
    /// clipped to it.
    std::optional<std::pair<std::uint64_t, std::uint64_t>> range;
    std::size_t alignment = 1;    ///< match only at addresses that are multiples of this (1 = every byte)
    std::size_t max_matches = 0;  ///< 0 = unlimited; when reached, `truncated` is set
    bool writable_only = false;   ///< only mappings with 'w' (where game values and heaps live)
    /// Bytes read per readv (bulk read size). 1 MiB: the piece just read is still in cache when
    /// it is searched; on the reference machine 8 MiB scanned 10-30% slower (bench/memory_bench).
    std::size_t chunk = 1 << 20;
};

struct ScanMatch {
    std::uint64_t address;
};

struct ScanStats {
    std::uint64_t bytes_scanned = 0;     ///< bytes read and searched
    std::uint64_t regions = 0;           ///< contiguous readable regions visited
    std::uint64_t unreadable_bytes = 0;  ///< bytes of those regions that could not be read
    /// Bytes of large private anonymous mappings that were never touched (no page, not swapped:
    /// zeros), skipped without reading (Linux >= 6.7, PAGEMAP_SCAN; not for an all-zero pattern).
    std::uint64_t absent_bytes = 0;
    double seconds = 0;  ///< wall time
};

struct ScanResult {
    std::vector<std::uint64_t> addresses;  ///< ascending
    ScanStats stats;
    bool truncated = false;  ///< max_matches was reached; more matches may exist
};

/// Every address where `pattern` occurs. Errors: invalid_argument for an empty pattern or an
/// alignment of 0; those of RemoteMemory (no_such_process, permission) and read_maps.
Result<ScanResult> find_bytes(RemoteMemory& memory, std::span<const std::byte> pattern,
                              const ScanOptions& options = {});
/// Every address where `text` occurs (its bytes, no terminating NUL).
Result<ScanResult> find_string(RemoteMemory& memory, std::string_view text, const ScanOptions& options = {});

using ScanValue = std::variant<std::int64_t, std::uint64_t, double>;
/// The bytes of `value` as a `type` in this machine's byte order. Integers must fit the
/// width (else invalid_argument; a negative value for an unsigned type is refused, as is a
/// non-integral double for an integer type); floats are the exact bit pattern of the value
/// converted to the type (as gdb's find does).
Result<std::vector<std::byte>> value_bytes(ValueType type, ScanValue value);
/// Every address holding `value` as a `type` (see value_bytes).
Result<ScanResult> find_value(RemoteMemory& memory, ValueType type, ScanValue value,
                              const ScanOptions& options = {});

/// Narrowing: keeps the addresses of `previous` whose bytes now equal `new_value`, reading
/// all candidates with one RemoteMemory::readv. Addresses that can no longer be read are
/// dropped (counted in stats.unreadable_bytes).
Result<ScanResult> rescan(RemoteMemory& memory, const ScanResult& previous,
                          std::span<const std::byte> new_value);

}  // namespace xproc
