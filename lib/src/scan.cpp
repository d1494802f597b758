// SPDX-License-Identifier: MIT
#include "xproc/scan.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "xproc/maps.hpp"

namespace xproc {

namespace {

struct Region {
    std::uint64_t start;
    std::uint64_t end;
};

// PAGEMAP_SCAN (Linux 6.7, include/uapi/linux/fs.h), declared here for older headers.
struct PageRegion {
    std::uint64_t start;
    std::uint64_t end;
    std::uint64_t categories;
};
struct PmScanArg {
    std::uint64_t size;
    std::uint64_t flags;
    std::uint64_t start;
    std::uint64_t end;
    std::uint64_t walk_end;
    std::uint64_t vec;
    std::uint64_t vec_len;
    std::uint64_t max_pages;
    std::uint64_t category_inverted;
    std::uint64_t category_mask;
    std::uint64_t category_anyof_mask;
    std::uint64_t return_mask;
};
constexpr unsigned long PAGEMAP_SCAN_IOCTL = _IOWR('f', 16, PmScanArg);
constexpr std::uint64_t PAGE_IS_PRESENT = 1u << 3;
constexpr std::uint64_t PAGE_IS_SWAPPED = 1u << 4;
constexpr std::uint64_t PAGE_IS_PFNZERO = 1u << 5;
/// Private anonymous mappings at least this big are asked which pages exist before being read.
constexpr std::uint64_t SPARSE_CHECK_MIN = 8u << 20;

/// The pages of [start, end) that hold data (present or swapped), as ranges; nullopt when the
/// kernel cannot say (no PAGEMAP_SCAN before Linux 6.7, or pagemap refused).
std::optional<std::vector<Region>> present_ranges(int pagemap_fd, std::uint64_t start, std::uint64_t end) {
    std::vector<Region> out;
    std::vector<PageRegion> vec(512);
    std::uint64_t at = start;
    while (at < end) {
        PmScanArg arg{};
        arg.size = sizeof arg;
        arg.start = at;
        arg.end = end;
        arg.vec = reinterpret_cast<std::uint64_t>(vec.data());
        arg.vec_len = vec.size();
        // Present or swapped, and not the shared zero page (what reading untouched memory maps).
        arg.category_inverted = PAGE_IS_PFNZERO;
        arg.category_mask = PAGE_IS_PFNZERO;
        arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
        arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
        const int n = detail::retry_eintr([&] { return ::ioctl(pagemap_fd, PAGEMAP_SCAN_IOCTL, &arg); });
        if (n < 0) {
            return std::nullopt;
        }
        for (int i = 0; i < n; ++i) {
            if (!out.empty() && out.back().end == vec[static_cast<std::size_t>(i)].start) {
                out.back().end = vec[static_cast<std::size_t>(i)].end;
            } else {
                out.push_back({vec[static_cast<std::size_t>(i)].start, vec[static_cast<std::size_t>(i)].end});
            }
        }
        if (arg.walk_end <= at) {
            break;
        }
        at = arg.walk_end;
    }
    return out;
}

/// What to read: the readable mappings (writable ones only, if asked), clipped to the requested
/// range, adjacent ones merged so that a pattern straddling two mappings is found. In a large
/// private anonymous mapping, pages that were never touched hold zeros and are not read unless
/// the pattern is all zeros: only the pages that exist, each range widened by `reach` bytes on
/// both sides so that a match running into the zeros around them is still found.
Result<std::vector<Region>> readable_regions(RemoteMemory& memory, const ScanOptions& options,
                                             std::size_t reach, bool zero_pattern,
                                             std::uint64_t& absent_bytes) {
    auto maps = read_maps(memory.process());
    if (!maps) {
        return fail(std::move(maps.error()));
    }
    std::uint64_t lo = 0;
    std::uint64_t hi = KERNEL_ADDRESS_START;
    if (options.range) {
        lo = options.range->first;
        hi = std::min(options.range->second, hi);
    }
    UniqueFd pagemap;
    bool pagemap_tried = false;
    std::vector<Region> pieces;
    // Appends [a, b), merged with the previous piece when they touch (a never precedes it).
    auto add = [&pieces](std::uint64_t a, std::uint64_t b) {
        if (!pieces.empty() && pieces.back().end >= a) {
            pieces.back().end = std::max(pieces.back().end, b);
        } else {
            pieces.push_back({a, b});
        }
    };
    for (const Mapping& m : *maps) {
        // [vvar] is I/O memory that process_vm_readv refuses; [vsyscall] lies in the kernel half.
        if (!m.perms.read || m.kind == MappingKind::vvar || m.kind == MappingKind::vsyscall) {
            continue;
        }
        if (options.writable_only && !m.perms.write) {
            continue;
        }
        const std::uint64_t start = std::max(m.start, lo);
        const std::uint64_t end = std::min(m.end, hi);
        if (start >= end) {
            continue;
        }
        const bool private_anonymous = !m.perms.shared && m.inode == 0 &&
                                       (m.kind == MappingKind::anonymous || m.kind == MappingKind::heap ||
                                        m.kind == MappingKind::stack || m.kind == MappingKind::anon_named);
        if (private_anonymous && !zero_pattern && end - start >= SPARSE_CHECK_MIN) {
            if (!pagemap_tried) {
                pagemap_tried = true;
                const int fd = ::openat(memory.process().proc_dir(), "pagemap", O_RDONLY | O_CLOEXEC);
                pagemap.reset(fd);
            }
            if (pagemap) {
                if (auto present = present_ranges(pagemap.get(), start & ~std::uint64_t{4095}, end)) {
                    // The pages that exist, widened by `reach`, plus `reach` bytes at both ends of
                    // the mapping (a match may run from the zeros into a neighbouring mapping).
                    std::vector<Region> mine = {{start, std::min(end, start + reach)},
                                                {end - std::min<std::uint64_t>(end - start, reach), end}};
                    for (const Region& r : *present) {
                        const std::uint64_t a = std::max(start, r.start > reach ? r.start - reach : 0);
                        const std::uint64_t b = std::min(end, r.end + reach);
                        if (a < b) {
                            mine.push_back({a, b});
                        }
                    }
                    std::sort(mine.begin(), mine.end(),
                              [](const Region& x, const Region& y) { return x.start < y.start; });
                    std::uint64_t kept = 0;
                    std::vector<Region> merged;
                    for (const Region& r : mine) {
                        if (r.start >= r.end) {
                            continue;
                        }
                        if (!merged.empty() && merged.back().end >= r.start) {
                            merged.back().end = std::max(merged.back().end, r.end);
                        } else {
                            merged.push_back(r);
                        }
                    }
                    for (const Region& r : merged) {
                        kept += r.end - r.start;
                        add(r.start, r.end);
                    }
                    absent_bytes += (end - start) - kept;
                    continue;
                }
            }
        }
        add(start, end);
    }
    return pieces;
}

/// How likely a byte is to be common in memory (lower = more common): zero fills most of
/// it, then 0xff, then small text; searching for the rarest byte of a pattern with memchr
/// skips the most.
int rarity(std::uint8_t b) noexcept {
    if (b == 0x00) {
        return 0;
    }
    if (b == 0xff) {
        return 1;
    }
    if ((b >= 'a' && b <= 'z') || b == ' ' || b < 0x10) {
        return 2;
    }
    return 3;
}

/// Finds `pattern` in one buffer whose first byte sits at remote address `base`.
class Searcher {
  public:
    Searcher(std::span<const std::byte> pattern, std::size_t alignment) noexcept
        : m_pattern(pattern), m_alignment(alignment) {
        int best = -1;
        for (std::size_t i = 0; i < pattern.size(); ++i) {
            const int r = rarity(static_cast<std::uint8_t>(pattern[i]));
            if (r > best) {
                best = r;
                m_key_index = i;
            }
        }
        m_key = static_cast<unsigned char>(pattern[m_key_index]);
    }

    /// Appends matches to `out` until `limit` addresses are held; returns false when it stopped
    /// because of the limit (limit 0 = none).
    bool search(const std::byte* buf, std::size_t len, std::uint64_t base, std::vector<std::uint64_t>& out,
                std::size_t limit) const {
        const std::size_t m = m_pattern.size();
        if (len < m) {
            return true;
        }
        const unsigned char* const data = reinterpret_cast<const unsigned char*>(buf);
        const unsigned char* const pat = reinterpret_cast<const unsigned char*>(m_pattern.data());
        // Candidate starts are [0, len - m]; the key byte of a candidate at s is at s + key.
        const unsigned char* p = data + m_key_index;
        const unsigned char* const last = data + (len - m) + m_key_index;  // inclusive
        while (p <= last) {
            p = static_cast<const unsigned char*>(
                std::memchr(p, m_key, static_cast<std::size_t>(last - p) + 1));
            if (p == nullptr) {
                break;
            }
            const unsigned char* s = p - m_key_index;
            const std::uint64_t addr = base + static_cast<std::uint64_t>(s - data);
            if ((m_alignment == 1 || addr % m_alignment == 0) && std::memcmp(s, pat, m) == 0) {
                out.push_back(addr);
                if (limit != 0 && out.size() >= limit) {
                    return false;
                }
            }
            ++p;
        }
        return true;
    }

  private:
    std::span<const std::byte> m_pattern;
    std::size_t m_alignment;
    std::size_t m_key_index = 0;
    unsigned char m_key = 0;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class T>
std::vector<std::byte> bytes_of(T v) {
    std::vector<std::byte> out(sizeof(T));
    std::memcpy(out.data(), &v, sizeof(T));
    return out;
}

Error bad_value(ValueType type, std::string detail) {
    return Error::make(ErrorKind::invalid_argument, "value_bytes(" + std::string(to_string(type)) + ")",
                       std::move(detail));
}

}  // namespace

std::size_t width(ValueType type) noexcept {
    switch (type) {
        case ValueType::i8:
        case ValueType::u8:
            return 1;
        case ValueType::i16:
        case ValueType::u16:
            return 2;
        case ValueType::i32:
        case ValueType::u32:
        case ValueType::f32:
            return 4;
        case ValueType::i64:
        case ValueType::u64:
        case ValueType::f64:
            return 8;
    }
    return 0;
}

std::string_view to_string(ValueType type) noexcept {
    switch (type) {
        case ValueType::i8:
            return "i8";
        case ValueType::i16:
            return "i16";
        case ValueType::i32:
            return "i32";
        case ValueType::i64:
            return "i64";
        case ValueType::u8:
            return "u8";
        case ValueType::u16:
            return "u16";
        case ValueType::u32:
            return "u32";
        case ValueType::u64:
            return "u64";
        case ValueType::f32:
            return "f32";
        case ValueType::f64:
            return "f64";
    }
    return "?";
}

Result<std::vector<std::byte>> value_bytes(ValueType type, ScanValue value) {
    if (type == ValueType::f32 || type == ValueType::f64) {
        const double d = std::visit([](auto v) { return static_cast<double>(v); }, value);
        return type == ValueType::f32 ? bytes_of(static_cast<float>(d)) : bytes_of(d);
    }
    const bool is_signed =
        type == ValueType::i8 || type == ValueType::i16 || type == ValueType::i32 || type == ValueType::i64;
    const std::size_t bits = width(type) * 8;
    // The value as a sign and a magnitude, so one comparison serves every width.
    bool negative = false;
    std::uint64_t magnitude = 0;
    if (const auto* i = std::get_if<std::int64_t>(&value)) {
        negative = *i < 0;
        magnitude = negative ? 0 - static_cast<std::uint64_t>(*i) : static_cast<std::uint64_t>(*i);
    } else if (const auto* u = std::get_if<std::uint64_t>(&value)) {
        magnitude = *u;
    } else {
        const double d = std::get<double>(value);
        if (!std::isfinite(d) || std::trunc(d) != d) {
            return fail(bad_value(type, "not an integer: " + std::to_string(d)));
        }
        if (std::fabs(d) >= 18446744073709551616.0) {
            return fail(bad_value(type, "out of range: " + std::to_string(d)));
        }
        negative = d < 0;
        magnitude = static_cast<std::uint64_t>(std::fabs(d));
    }
    if (negative && !is_signed) {
        return fail(bad_value(type, "negative value for an unsigned type"));
    }
    const std::uint64_t max_positive =
        is_signed ? (std::uint64_t{1} << (bits - 1)) - 1
                  : (bits == 64 ? std::numeric_limits<std::uint64_t>::max() : (std::uint64_t{1} << bits) - 1);
    const std::uint64_t max_negative = std::uint64_t{1} << (bits - 1);  // magnitude of the minimum
    if ((!negative && magnitude > max_positive) || (negative && magnitude > max_negative)) {
        return fail(bad_value(type, "value does not fit in " + std::to_string(bits) + " bits"));
    }
    const std::uint64_t twos = negative ? 0 - magnitude : magnitude;
    switch (width(type)) {
        case 1:
            return bytes_of(static_cast<std::uint8_t>(twos));
        case 2:
            return bytes_of(static_cast<std::uint16_t>(twos));
        case 4:
            return bytes_of(static_cast<std::uint32_t>(twos));
        default:
            return bytes_of(twos);
    }
}

Result<ScanResult> find_bytes(RemoteMemory& memory, std::span<const std::byte> pattern,
                              const ScanOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    if (pattern.empty()) {
        return fail(Error::make(ErrorKind::invalid_argument, "find_bytes", "empty pattern", memory.pid()));
    }
    if (options.alignment == 0) {
        return fail(Error::make(ErrorKind::invalid_argument, "find_bytes", "alignment 0", memory.pid()));
    }
    const bool zero_pattern =
        std::all_of(pattern.begin(), pattern.end(), [](std::byte b) { return b == std::byte{0}; });
    std::uint64_t absent = 0;
    auto regions = readable_regions(memory, options, pattern.size() - 1, zero_pattern, absent);
    if (!regions) {
        return fail(std::move(regions.error()));
    }
    const std::size_t m = pattern.size();
    const std::size_t overlap = m - 1;
    // A piece must hold more than the overlap to make progress.
    const std::size_t chunk = std::max<std::size_t>(options.chunk, 2 * m + 4096);
    const std::size_t max_pieces = memory.options().max_iovecs;
    // Pieces shorter than this are not started at the end of a batch: the next batch takes them.
    const std::size_t min_piece = std::min<std::size_t>(chunk / 4, 64 << 10);

    ScanResult result;
    result.stats.absent_bytes = absent;
    Searcher searcher(pattern, options.alignment);
    std::vector<std::byte> buffer(chunk);
    struct Piece {
        std::uint64_t address;
        std::size_t length;
        std::size_t offset;  // in buffer
        std::size_t fresh;   // bytes at the start already read by the previous piece (the overlap)
    };
    std::vector<Piece> pieces;
    std::vector<RemoteMemory::Range> ranges;

    std::size_t ri = 0;
    std::uint64_t addr = regions->empty() ? 0 : (*regions)[0].start;
    std::size_t carried = 0;  // overlap bytes at the start of the next piece of the current region
    result.stats.regions = regions->size();
    while (ri < regions->size()) {
        pieces.clear();
        ranges.clear();
        std::size_t used = 0;
        while (ri < regions->size() && pieces.size() < max_pieces) {
            const Region& r = (*regions)[ri];
            const std::uint64_t rest = r.end - addr;
            const std::size_t avail = chunk - used;
            if (avail <= overlap || (avail < rest && avail < min_piece && used != 0)) {
                break;
            }
            const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(rest, avail));
            pieces.push_back({addr, len, used, carried});
            ranges.push_back({addr, std::span<std::byte>(buffer.data() + used, len)});
            used += len;
            if (len == rest) {
                ++ri;
                carried = 0;
                if (ri < regions->size()) {
                    addr = (*regions)[ri].start;
                }
            } else {
                addr += len - overlap;
                carried = overlap;
            }
        }
        auto transfers = memory.readv(ranges);
        if (!transfers) {
            return fail(std::move(transfers.error()));
        }
        for (std::size_t i = 0; i < pieces.size(); ++i) {
            const Piece& p = pieces[i];
            const std::size_t got = (*transfers)[i].bytes;
            const std::size_t counted = std::max(got, p.fresh);
            result.stats.bytes_scanned += counted - p.fresh;
            result.stats.unreadable_bytes += p.length - counted;
            if (!searcher.search(buffer.data() + p.offset, got, p.address, result.addresses,
                                 options.max_matches)) {
                result.truncated = true;
                result.stats.seconds = seconds_since(t0);
                return result;
            }
        }
    }
    result.stats.seconds = seconds_since(t0);
    return result;
}

Result<ScanResult> find_string(RemoteMemory& memory, std::string_view text, const ScanOptions& options) {
    return find_bytes(memory, std::as_bytes(std::span<const char>(text.data(), text.size())), options);
}

Result<ScanResult> find_value(RemoteMemory& memory, ValueType type, ScanValue value,
                              const ScanOptions& options) {
    auto bytes = value_bytes(type, value);
    if (!bytes) {
        return fail(std::move(bytes.error()));
    }
    return find_bytes(memory, *bytes, options);
}

Result<ScanResult> rescan(RemoteMemory& memory, const ScanResult& previous,
                          std::span<const std::byte> new_value) {
    const auto t0 = std::chrono::steady_clock::now();
    if (new_value.empty()) {
        return fail(Error::make(ErrorKind::invalid_argument, "rescan", "empty value", memory.pid()));
    }
    const std::size_t m = new_value.size();
    const std::size_t n = previous.addresses.size();
    std::vector<std::byte> buffer(n * m);
    std::vector<RemoteMemory::Range> ranges;
    ranges.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        ranges.push_back({previous.addresses[i], std::span<std::byte>(buffer.data() + i * m, m)});
    }
    auto transfers = memory.readv(ranges);
    if (!transfers) {
        return fail(std::move(transfers.error()));
    }
    ScanResult result;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t got = (*transfers)[i].bytes;
        result.stats.bytes_scanned += got;
        if (got != m) {
            result.stats.unreadable_bytes += m - got;
            continue;
        }
        if (std::memcmp(buffer.data() + i * m, new_value.data(), m) == 0) {
            result.addresses.push_back(previous.addresses[i]);
        }
    }
    result.stats.regions = n;
    result.stats.seconds = seconds_since(t0);
    return result;
}

}  // namespace xproc
