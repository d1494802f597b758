// SPDX-License-Identifier: MIT
#include "xproc/maps.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "xproc/access.hpp"
#include "xproc/fd.hpp"
#include "xproc/process.hpp"

// The parser reads the kernel's text in one pass over one buffer. The formats
// (fs/proc/task_mmu.c, show_map_vma / show_smap / show_smaps_rollup):
//
//   header: START-END PERM OFFSET MAJ:MIN INODE [padding NAME]
//           hex       rwxp hex    hex:hex dec    spaces up to column 73, then the name
//   detail: Name:   <spaces> N kB     (most smaps fields)
//           Name:   <spaces> N        (THPeligible, ProtectionKey)
//           VmFlags: rd wr mr ...     (flags, each followed by a space)
//
// Names never start with a space (a path starts with '/', the others with '['
// or a prefix such as "anon_inode:"), so all leading padding is dropped; trailing
// spaces belong to the name (a file may be called "a ").

namespace xproc {

namespace {

constexpr std::string_view DELETED_SUFFIX = " (deleted)";
constexpr std::string_view ANON_PREFIX = "[anon:";
constexpr std::string_view ANON_SHMEM_PREFIX = "[anon_shmem:";

/// Indexed by (read << 3 | write << 2 | exec << 1 | shared).
constexpr std::string_view PERMISSION_TEXT[16] = {
    "---p", "---s", "--xp", "--xs", "-w-p", "-w-s", "-wxp", "-wxs",
    "r--p", "r--s", "r-xp", "r-xs", "rw-p", "rw-s", "rwxp", "rwxs",
};

std::string_view source_name(MapsSource source) noexcept {
    switch (source) {
        case MapsSource::maps:
            return "maps";
        case MapsSource::smaps:
            return "smaps";
        case MapsSource::smaps_rollup:
            return "smaps_rollup";
    }
    return "maps";
}

// ---------------------------------------------------------------------------
// Character classes and numbers, by table: no locale, no strtoul.

constexpr unsigned char NOT_HEX = 0xff;

struct CharTables {
    unsigned char hex[256];
    bool name[256];  // characters of a smaps field name: [A-Za-z0-9_]
};

constexpr CharTables make_char_tables() {
    CharTables t{};
    for (int c = 0; c < 256; ++c) {
        t.hex[c] = NOT_HEX;
        t.name[c] = false;
    }
    for (int c = '0'; c <= '9'; ++c) {
        t.hex[c] = static_cast<unsigned char>(c - '0');
        t.name[c] = true;
    }
    for (int c = 'a'; c <= 'f'; ++c) {
        t.hex[c] = static_cast<unsigned char>(c - 'a' + 10);
    }
    for (int c = 'A'; c <= 'F'; ++c) {
        t.hex[c] = static_cast<unsigned char>(c - 'A' + 10);
    }
    for (int c = 'a'; c <= 'z'; ++c) {
        t.name[c] = true;
    }
    for (int c = 'A'; c <= 'Z'; ++c) {
        t.name[c] = true;
    }
    t.name[static_cast<unsigned char>('_')] = true;
    return t;
}

constexpr CharTables CHARS = make_char_tables();

inline unsigned char hex_value(char c) noexcept {
    return CHARS.hex[static_cast<unsigned char>(c)];
}
inline bool is_name_char(char c) noexcept {
    return CHARS.name[static_cast<unsigned char>(c)];
}
inline bool is_digit(char c) noexcept {
    return static_cast<unsigned char>(c - '0') < 10;
}

enum class Num : std::uint8_t { ok, missing, overflow };

/// Hexadecimal number at `p` (advanced past it). Leading zeros are fine; a value
/// above 64 bits is an overflow.
inline Num parse_hex(const char*& p, const char* end, std::uint64_t& out) noexcept {
    const char* const first = p;
    std::uint64_t v = 0;
    while (p < end) {
        const unsigned char d = hex_value(*p);
        if (d == NOT_HEX) {
            break;
        }
        if ((v >> 60) != 0) {
            return Num::overflow;
        }
        v = (v << 4) | d;
        ++p;
    }
    if (p == first) {
        return Num::missing;
    }
    out = v;
    return Num::ok;
}

/// Decimal number at `p` (advanced past it), overflow-checked.
inline Num parse_dec(const char*& p, const char* end, std::uint64_t& out) noexcept {
    const char* const first = p;
    std::uint64_t v = 0;
    while (p < end && is_digit(*p)) {
        if (__builtin_mul_overflow(v, 10u, &v) ||
            __builtin_add_overflow(v, static_cast<unsigned>(*p - '0'), &v)) {
            return Num::overflow;
        }
        ++p;
    }
    if (p == first) {
        return Num::missing;
    }
    out = v;
    return Num::ok;
}

/// Skips spaces, eight at a time where it can (smaps pads every value to a column).
inline const char* skip_spaces(const char* p, const char* end) noexcept {
    constexpr std::uint64_t EIGHT_SPACES = 0x2020202020202020ull;
    while (end - p >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, sizeof w);
        if (w != EIGHT_SPACES) {
            break;
        }
        p += 8;
    }
    while (p < end && *p == ' ') {
        ++p;
    }
    return p;
}

// ---------------------------------------------------------------------------
// Reservations.

/// Asks for transparent huge pages under a large, freshly reserved buffer: the
/// fields of a big smaps are tens of MB, and faulting them in 4 KiB at a time
/// costs more than parsing them. Advice only; failure changes nothing.
void advise_huge_pages(const void* data, std::size_t bytes) noexcept {
    constexpr std::uintptr_t HUGE_PAGE = 2u << 20;
    if (bytes < 4 * HUGE_PAGE) {
        return;
    }
    const auto begin = (reinterpret_cast<std::uintptr_t>(data) + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(HUGE_PAGE - 1);
    if (end > begin) {
        ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
    }
}

// ---------------------------------------------------------------------------
// Known smaps fields.

using Counter = std::uint64_t SmapsCounters::*;

enum class FieldType : std::uint8_t { unknown, kb, thp_eligible, protection_key, vm_flags };

struct KnownField {
    FieldType type = FieldType::unknown;
    Counter counter = nullptr;
};

inline bool is(std::string_view name, std::string_view known) noexcept {
    // Callers switch on the length first, so this is one memcmp.
    return std::memcmp(name.data(), known.data(), known.size()) == 0;
}

/// Maps a field name to the counter it fills; a switch on the length keeps this
/// to one or two comparisons per line.
KnownField known_field(std::string_view n) noexcept {
    using C = SmapsCounters;
    const auto kb = [](Counter c) { return KnownField{FieldType::kb, c}; };
    switch (n.size()) {
        case 3:
            if (is(n, "Rss")) {
                return kb(&C::rss_kb);
            }
            if (is(n, "Pss")) {
                return kb(&C::pss_kb);
            }
            if (is(n, "KSM")) {
                return kb(&C::ksm_kb);
            }
            break;
        case 4:
            if (is(n, "Size")) {
                return kb(&C::size_kb);
            }
            if (is(n, "Swap")) {
                return kb(&C::swap_kb);
            }
            break;
        case 6:
            if (is(n, "Locked")) {
                return kb(&C::locked_kb);
            }
            break;
        case 7:
            if (is(n, "SwapPss")) {
                return kb(&C::swap_pss_kb);
            }
            if (is(n, "VmFlags")) {
                return KnownField{FieldType::vm_flags, nullptr};
            }
            break;
        case 8:
            if (is(n, "LazyFree")) {
                return kb(&C::lazy_free_kb);
            }
            if (is(n, "Pss_Anon")) {
                return kb(&C::pss_anon_kb);
            }
            if (is(n, "Pss_File")) {
                return kb(&C::pss_file_kb);
            }
            break;
        case 9:
            if (is(n, "Anonymous")) {
                return kb(&C::anonymous_kb);
            }
            if (is(n, "Pss_Dirty")) {
                return kb(&C::pss_dirty_kb);
            }
            if (is(n, "Pss_Shmem")) {
                return kb(&C::pss_shmem_kb);
            }
            break;
        case 10:
            if (is(n, "Referenced")) {
                return kb(&C::referenced_kb);
            }
            break;
        case 11:
            if (is(n, "MMUPageSize")) {
                return kb(&C::mmu_page_size_kb);
            }
            if (is(n, "THPeligible")) {
                return KnownField{FieldType::thp_eligible, nullptr};
            }
            break;
        case 12:
            if (is(n, "Shared_Clean")) {
                return kb(&C::shared_clean_kb);
            }
            if (is(n, "Shared_Dirty")) {
                return kb(&C::shared_dirty_kb);
            }
            break;
        case 13:
            if (is(n, "Private_Clean")) {
                return kb(&C::private_clean_kb);
            }
            if (is(n, "Private_Dirty")) {
                return kb(&C::private_dirty_kb);
            }
            if (is(n, "AnonHugePages")) {
                return kb(&C::anon_huge_pages_kb);
            }
            if (is(n, "FilePmdMapped")) {
                return kb(&C::file_pmd_mapped_kb);
            }
            if (is(n, "ProtectionKey")) {
                return KnownField{FieldType::protection_key, nullptr};
            }
            break;
        case 14:
            if (is(n, "KernelPageSize")) {
                return kb(&C::kernel_page_size_kb);
            }
            if (is(n, "ShmemPmdMapped")) {
                return kb(&C::shmem_pmd_mapped_kb);
            }
            if (is(n, "Shared_Hugetlb")) {
                return kb(&C::shared_hugetlb_kb);
            }
            break;
        case 15:
            if (is(n, "Private_Hugetlb")) {
                return kb(&C::private_hugetlb_kb);
            }
            break;
        default:
            break;
    }
    return {};
}

// ---------------------------------------------------------------------------
// Name column.

void classify_name(Mapping& m) noexcept {
    const std::string_view name = m.name;
    if (name.empty()) {
        m.kind = MappingKind::anonymous;
        return;
    }
    if (name.front() == '/') {
        m.kind = MappingKind::file;
        m.deleted = name.ends_with(DELETED_SUFFIX);
        return;
    }
    m.kind = MappingKind::pseudo;
    if (name.front() != '[' || name.back() != ']' || name.size() < 2) {
        return;  // e.g. "anon_inode:[perf_event]": kept verbatim
    }
    const std::string_view inner = name.substr(1, name.size() - 2);
    if (inner == "heap") {
        m.kind = MappingKind::heap;
    } else if (inner == "stack" || inner.starts_with("stack:")) {  // [stack:TID]: kernels before 4.5
        m.kind = MappingKind::stack;
    } else if (inner == "vdso") {
        m.kind = MappingKind::vdso;
    } else if (inner == "vvar" || inner == "vvar_vclock") {
        m.kind = MappingKind::vvar;
    } else if (inner == "vsyscall") {
        m.kind = MappingKind::vsyscall;
    } else if (name.starts_with(ANON_PREFIX)) {
        m.kind = MappingKind::anon_named;
    } else if (name.starts_with(ANON_SHMEM_PREFIX)) {
        m.kind = MappingKind::anon_shmem;
    }
}

// ---------------------------------------------------------------------------
// The parser proper. Error messages are static strings; the Error (with its
// std::string members) is only built once, on failure.

const char* describe(Num n, const char* missing, const char* overflow) noexcept {
    return n == Num::overflow ? overflow : missing;
}

/// Parses one header line into `m`; returns nullptr or what is wrong.
const char* parse_header(std::string_view line, Mapping& m) noexcept {
    const char* p = line.data();
    const char* const end = p + line.size();
    Num n = parse_hex(p, end, m.start);
    if (n != Num::ok) {
        return describe(n, "expected a hexadecimal start address", "start address overflows 64 bits");
    }
    if (p == end || *p != '-') {
        return "expected '-' after the start address";
    }
    ++p;
    n = parse_hex(p, end, m.end);
    if (n != Num::ok) {
        return describe(n, "expected a hexadecimal end address", "end address overflows 64 bits");
    }
    if (m.end < m.start) {
        return "end address is below the start address";
    }
    if (end - p < 6 || p[0] != ' ' || p[5] != ' ') {
        return "expected ' PERM ' (four permission letters) after the address range";
    }
    const char r = p[1], w = p[2], x = p[3], s = p[4];
    if ((r != 'r' && r != '-') || (w != 'w' && w != '-') || (x != 'x' && x != '-') ||
        (s != 's' && s != 'p')) {
        return "bad permission letters (want [r-][w-][x-][sp])";
    }
    m.perms.read = r == 'r';
    m.perms.write = w == 'w';
    m.perms.exec = x == 'x';
    m.perms.shared = s == 's';
    p += 6;
    n = parse_hex(p, end, m.offset);
    if (n != Num::ok) {
        return describe(n, "expected a hexadecimal offset", "offset overflows 64 bits");
    }
    if (p == end || *p != ' ') {
        return "expected ' ' after the offset";
    }
    ++p;
    std::uint64_t major = 0;
    std::uint64_t minor = 0;
    n = parse_hex(p, end, major);
    if (n != Num::ok || major > UINT32_MAX) {
        return "expected a hexadecimal device major number";
    }
    if (p == end || *p != ':') {
        return "expected ':' between device major and minor";
    }
    ++p;
    n = parse_hex(p, end, minor);
    if (n != Num::ok || minor > UINT32_MAX) {
        return "expected a hexadecimal device minor number";
    }
    m.dev_major = static_cast<std::uint32_t>(major);
    m.dev_minor = static_cast<std::uint32_t>(minor);
    if (p == end || *p != ' ') {
        return "expected ' ' after the device";
    }
    ++p;
    n = parse_dec(p, end, m.inode);
    if (n != Num::ok) {
        return describe(n, "expected a decimal inode number", "inode overflows 64 bits");
    }
    if (p != end) {
        if (*p != ' ') {
            return "expected ' ' after the inode";
        }
        p = skip_spaces(p, end);
    }
    m.name = std::string_view(p, static_cast<std::size_t>(end - p));
    classify_name(m);
    return nullptr;
}

/// One detail line as the previous mapping had it at the same position. The
/// kernel prints the same fields in the same order for every mapping, so the
/// name of line k is almost always the name of line k of the previous block:
/// one memcmp replaces the character scan and the name lookup.
struct FieldSlot {
    std::string_view name;
    KnownField known;
};

/// Kernels print at most ~27 detail lines; lines past this many take the slow path.
constexpr std::size_t MAX_SLOTS = 48;

/// A "Name:" at `p` (advanced past the colon), or an empty view.
inline std::string_view scan_field_name(const char*& p, const char* end) noexcept {
    const char* q = p;
    while (q < end && is_name_char(*q)) {
        ++q;
    }
    if (q == p || q == end || *q != ':') {
        return {};
    }
    const std::string_view name(p, static_cast<std::size_t>(q - p));
    p = q + 1;
    return name;
}

/// `a[0, n)` == `b[0, n)` for a short field name, without a call: two overlapping
/// word loads cover 8 to 16 bytes. Both ranges must be readable for n bytes.
inline bool same_name(const char* a, const char* b, std::size_t n) noexcept {
    const auto load8 = [](const char* q) {
        std::uint64_t w;
        std::memcpy(&w, q, sizeof w);
        return w;
    };
    const auto load4 = [](const char* q) {
        std::uint32_t w;
        std::memcpy(&w, q, sizeof w);
        return w;
    };
    if (n >= 8 && n <= 16) {
        return load8(a) == load8(b) && load8(a + n - 8) == load8(b + n - 8);
    }
    if (n >= 4 && n < 8) {
        return load4(a) == load4(b) && load4(a + n - 4) == load4(b + n - 4);
    }
    return std::memcmp(a, b, n) == 0;
}

inline bool has_nul(const char* p, const char* end) noexcept {
    return std::memchr(p, '\0', static_cast<std::size_t>(end - p)) != nullptr;
}

inline const char* line_end_of(const char* p, const char* end) noexcept {
    const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
    return nl != nullptr ? static_cast<const char*>(nl) : end;
}

class Parser {
  public:
    Parser(std::string_view text, MapsSource source, std::vector<Mapping>& mappings,
           std::vector<SmapsField>& fields) noexcept
        : m_text(text), m_source(source), m_mappings(mappings), m_fields(fields) {}

    /// Runs over the whole text; on failure fills `line_no`, `line` and returns the message.
    const char* run(std::size_t& line_no, std::string_view& line);

  private:
    const char* parse_detail(const char*& p, std::string_view name, KnownField known) noexcept;
    void close_mapping() noexcept;
    void reserve();

    std::string_view m_text;
    MapsSource m_source;
    std::vector<Mapping>& m_mappings;
    std::vector<SmapsField>& m_fields;
    Mapping* m_current = nullptr;
    std::size_t m_field_begin = 0;
    std::size_t m_slot = 0;  // index of the next detail line within the current mapping
    FieldSlot m_slots[MAX_SLOTS];
};

void Parser::reserve() {
    // Kernel lines are at least ~25 bytes (a detail line) or ~45 (a header), and an
    // smaps block at least ~450: these bounds rarely over-reserve by more than 2x,
    // and what is never written costs no memory. Hand-made text with shorter
    // lines just makes the vectors grow.
    const std::size_t size = m_text.size();
    if (m_source == MapsSource::maps) {
        m_mappings.reserve(size / 40 + 16);
    } else {
        m_fields.reserve(size / 24 + 16);
        advise_huge_pages(m_fields.data(), m_fields.capacity() * sizeof(SmapsField));
        m_mappings.reserve(m_source == MapsSource::smaps_rollup ? 1 : size / 512 + 16);
    }
    advise_huge_pages(m_mappings.data(), m_mappings.capacity() * sizeof(Mapping));
}

const char* Parser::run(std::size_t& line_no, std::string_view& line) {
    reserve();
    const char* p = m_text.data();
    const char* const end = p + m_text.size();
    const char* line_start = p;
    const char* err = nullptr;
    line_no = 0;
    while (p < end) {
        ++line_no;
        line_start = p;
        if (*p == '\n') {
            err = "empty line";
            break;
        }
        // Fast path: the field the previous mapping had at this position.
        if (m_current != nullptr && m_slot < MAX_SLOTS) {
            const FieldSlot& slot = m_slots[m_slot];
            const std::size_t n = slot.name.size();
            if (n != 0 && static_cast<std::size_t>(end - p) > n && p[n] == ':' &&
                same_name(p, slot.name.data(), n)) {
                p += n + 1;
                ++m_slot;
                if ((err = parse_detail(p, slot.name, slot.known)) != nullptr) {
                    break;
                }
                continue;
            }
        }
        // A detail line starts with "Name:"; anything else must be a header.
        const char* q = p;
        if (const std::string_view name = scan_field_name(q, end); !name.empty()) {
            if (m_source == MapsSource::maps) {
                err = "smaps detail line in a maps file";
                break;
            }
            if (m_current == nullptr) {
                err = "detail line before any mapping header";
                break;
            }
            const KnownField known = known_field(name);
            if (m_slot < MAX_SLOTS) {
                m_slots[m_slot] = FieldSlot{name, known};
            }
            ++m_slot;
            p = q;
            if ((err = parse_detail(p, name, known)) != nullptr) {
                break;
            }
            continue;
        }
        if (m_source == MapsSource::smaps_rollup && !m_mappings.empty()) {
            err = "smaps_rollup has more than one header line";
            break;
        }
        close_mapping();
        const char* const le = line_end_of(p, end);
        Mapping& m = m_mappings.emplace_back();
        if ((err = parse_header(std::string_view(p, static_cast<std::size_t>(le - p)), m)) != nullptr) {
            break;
        }
        if (has_nul(m.name.data(), m.name.data() + m.name.size())) {
            err = "NUL byte in the name";
            break;
        }
        m_current = &m;
        m_field_begin = m_fields.size();
        m_slot = 0;
        p = le == end ? end : le + 1;
    }
    if (err != nullptr) {
        const char* const le = line_end_of(line_start, end);
        line = std::string_view(line_start, static_cast<std::size_t>(le - line_start));
        // Every byte is checked against what may stand there, so a NUL fails
        // somewhere on its line; say so rather than what was expected instead.
        if (has_nul(line_start, le)) {
            err = "NUL byte in the line";
        }
        return err;
    }
    close_mapping();
    // Now that m_fields has stopped growing, point each mapping at its fields;
    // they are contiguous and in mapping order.
    std::size_t offset = 0;
    for (Mapping& m : m_mappings) {
        const std::size_t count = m.fields.size();
        m.fields = std::span<const SmapsField>(m_fields.data() + offset, count);
        offset += count;
    }
    XPROC_ASSERT(offset == m_fields.size());
    return nullptr;
}

void Parser::close_mapping() noexcept {
    if (m_current != nullptr) {
        // Only the count is meaningful until run() sets the spans: m_fields may still move.
        m_current->fields =
            std::span<const SmapsField>(m_fields.data() + m_field_begin, m_fields.size() - m_field_begin);
        m_current = nullptr;
    }
}

/// Parses the value of a detail line; `p` is just past "Name:" and ends at the
/// start of the next line.
const char* Parser::parse_detail(const char*& p, std::string_view name, KnownField known) noexcept {
    const char* const end = m_text.data() + m_text.size();
    p = skip_spaces(p, end);
    if (known.type == FieldType::vm_flags ||
        (known.type == FieldType::unknown && (p == end || !is_digit(*p)))) {
        const char* const le = line_end_of(p, end);
        if (has_nul(p, le)) {
            return "NUL byte in the line";
        }
        if (known.type == FieldType::vm_flags) {
            const char* last = le;
            while (last > p && last[-1] == ' ') {
                --last;
            }
            m_current->smaps.vm_flags = std::string_view(p, static_cast<std::size_t>(last - p));
        }
        // else: a textual field of a newer kernel; not a number, so not a SmapsField.
        p = le == end ? end : le + 1;
        return nullptr;
    }
    std::uint64_t value = 0;
    const Num n = parse_dec(p, end, value);
    if (n != Num::ok) {
        return describe(n, "expected a decimal value", "value overflows 64 bits");
    }
    bool in_kb = false;
    if (p != end && *p == ' ') {
        if (end - p < 3 || p[1] != 'k' || p[2] != 'B') {
            return "unexpected text after the value (want nothing or \" kB\")";
        }
        p += 3;
        in_kb = true;
    }
    if (p != end) {
        if (*p != '\n') {
            return "unexpected text after the value (want nothing or \" kB\")";
        }
        ++p;
    }
    switch (known.type) {
        case FieldType::kb:
            if (!in_kb) {
                return "value lacks its \" kB\" unit";
            }
            m_current->smaps.*known.counter = value;
            break;
        case FieldType::thp_eligible:
        case FieldType::protection_key:
            if (in_kb) {
                return "value has an unexpected \" kB\" unit";
            }
            if (value > INT32_MAX) {
                return "value out of range";
            }
            (known.type == FieldType::thp_eligible ? m_current->smaps.thp_eligible
                                                   : m_current->smaps.protection_key) =
                static_cast<std::int32_t>(value);
            break;
        case FieldType::unknown:
        case FieldType::vm_flags:
            break;
    }
    m_fields.push_back(SmapsField{name, value, in_kb});
    return nullptr;
}

/// Up to 80 bytes of `line`, with control and non-ASCII bytes escaped.
std::string quote_line(std::string_view line) {
    constexpr std::size_t MAX = 80;
    std::string out = "\"";
    for (std::size_t i = 0; i < line.size() && i < MAX; ++i) {
        const auto c = static_cast<unsigned char>(line[i]);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += line.size() > MAX ? "\"..." : "\"";
    return out;
}

Result<MemoryMap> parse_labelled(detail::PageBuffer text, MapsSource source, std::string_view label,
                                 pid_t pid);

/// Reads `fd` to EOF into a page buffer (few faults, no copies: smaps of a big
/// process is tens of MB); `what` names it in errors.
Result<detail::PageBuffer> read_text(int fd, std::string_view what, pid_t pid) {
    detail::PageBuffer text;
    if (auto r = read_all(fd, text, what, pid); !r) {
        return fail(std::move(r.error()));
    }
    return text;
}

/// The error for a failed open/read or an empty map of `pid`, explained by the
/// access rules when one of them applies.
Error explain_failure(pid_t pid, std::string operation, int err, bool during_read) {
    const AccessVerdict verdict = explain_access(pid, AccessMode::read);
    if (verdict.rule == AccessRule::zombie || verdict.rule == AccessRule::kernel_thread) {
        return verdict.to_error(std::move(operation), pid, err);
    }
    const bool unexplained = verdict.allowed() || verdict.rule == AccessRule::undetermined;
    if (during_read && (err == ESRCH || err == 0) &&
        (unexplained || verdict.rule == AccessRule::no_such_process)) {
        // The file opened, so the process existed: it exited (and was reaped, or
        // its pid was even reused) before or while the kernel produced the text.
        Error e = Error::make(ErrorKind::no_such_process, std::move(operation),
                              "the process exited while being read", pid);
        e.errno_value = err;
        return e;
    }
    if (!unexplained) {
        return verdict.to_error(std::move(operation), pid, err);
    }
    Error e = Error::from_errno(err, std::move(operation), pid);
    if (verdict.rule == AccessRule::undetermined && !verdict.reason.empty()) {
        e.hint = "access could not be diagnosed: " + verdict.reason;
    }
    return e;
}

/// Reads a thread id's map by path (/proc/TID/maps): the fallback for ids that
/// pidfd_open refuses, hence unpinned and without the exit check.
Result<MemoryMap> read_proc(pid_t pid, MapsSource source) {
    const std::string_view file = source_name(source);
    std::string path = "/proc/" + std::to_string(pid) + "/";
    path += file;
    if (pid <= 0) {
        return fail(
            Error::make(ErrorKind::invalid_argument, "read(" + path + ")", "pid must be positive", pid));
    }
    auto fd = open_fd(path.c_str(), O_RDONLY, pid);
    if (!fd) {
        return fail(explain_failure(pid, "open(" + path + ")", fd.error().errno_value, false));
    }
    auto text = read_text(fd->get(), path, pid);
    if (!text) {
        return fail(explain_failure(pid, "read(" + path + ")", text.error().errno_value, true));
    }
    if (text->size() == 0) {
        // Opens fine and reads empty: a kernel thread, a zombie, or a process
        // that exited after the open. A live process always has mappings.
        return fail(explain_failure(pid, "read(" + path + ")", 0, true));
    }
    return parse_labelled(std::move(*text), source, path, pid);
}

/// Whether `proc` has its memory according to `st` (read just before): not
/// exited, neither a zombie nor dead, and an address space (kernel threads and
/// exiting processes past exit_mm() show vsize 0).
bool has_memory(const Process& proc, const ProcStat& st) noexcept {
    return proc.alive() && st.state != 'Z' && st.state != 'X' && st.vsize != 0;
}

/// explain_failure() for a pinned process: once it is reaped its pid may belong
/// to another process, so that is said without asking /proc about the pid.
Error explain_pinned_failure(const Process& proc, std::string operation, int err, bool during_read) {
    if (auto st = proc.stat(); !st && st.error().kind == ErrorKind::no_such_process) {
        Error e = std::move(st.error());
        e.operation = std::move(operation);
        if (during_read) {
            e.detail = "the process exited while being read";
        }
        return e;
    }
    return explain_failure(proc.pid(), std::move(operation), err, during_read);
}

Result<MemoryMap> read_pinned(const Process& proc, MapsSource source) {
    const pid_t pid = proc.pid();
    const std::string file(source_name(source));
    const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
    auto before = proc.stat();
    if (!before) {
        if (before.error().kind == ErrorKind::no_such_process) {
            before.error().operation = "open(" + path + ")";
        }
        return fail(std::move(before.error()));
    }
    const bool had_memory = has_memory(proc, *before);

    auto fd = open_fd_at(proc.proc_dir(), file.c_str(), O_RDONLY, pid);
    if (!fd) {
        return fail(explain_pinned_failure(proc, "open(" + path + ")", fd.error().errno_value, false));
    }
    auto text = read_text(fd->get(), path, pid);
    if (!text) {
        return fail(explain_pinned_failure(proc, "read(" + path + ")", text.error().errno_value, true));
    }
    if (had_memory) {
        // The kernel ends the file early, without an error, once the process has
        // released its memory, so what was read may be a part presented as the
        // whole. exit_mm() clears the task's mm (stat's vsize becomes 0) before
        // the mm stops answering reads: memory still there now means it answered
        // throughout the read.
        auto after = proc.stat();
        if (!after && after.error().kind != ErrorKind::no_such_process) {
            return fail(std::move(after.error()));
        }
        if (!after || !has_memory(proc, *after)) {
            Error e = Error::make(ErrorKind::no_such_process, "read(" + path + ")",
                                  "the process exited while being read", pid);
            e.errno_value = ESRCH;
            return fail(std::move(e));
        }
    }
    if (text->size() == 0) {
        // Opens fine and reads empty: a kernel thread or a zombie (a live
        // process always has mappings).
        return fail(explain_pinned_failure(proc, "read(" + path + ")", 0, true));
    }
    return parse_labelled(std::move(*text), source, path, pid);
}

/// The pid-based readers: pin the process, or read a thread id by path.
Result<MemoryMap> read_by_pid(pid_t pid, MapsSource source) {
    if (pid <= 0) {
        return fail(
            Error::make(ErrorKind::invalid_argument,
                        "read(/proc/" + std::to_string(pid) + "/" + std::string(source_name(source)) + ")",
                        "pid must be positive", pid));
    }
    auto proc = Process::open(pid);
    if (proc) {
        return read_pinned(*proc, source);
    }
    // pidfd_open refuses a thread id that is not a thread-group leader (EINVAL;
    // ENOENT since Linux 6.9), yet /proc/TID/maps shows its process's map.
    if (const int err = proc.error().errno_value; err == EINVAL || err == ENOENT) {
        return read_proc(pid, source);
    }
    return fail(std::move(proc.error()));
}

Result<MemoryMap> parse_labelled(detail::PageBuffer text, MapsSource source, std::string_view label,
                                 pid_t pid) {
    auto map = MemoryMap::parse(std::move(text), source);
    if (!map) {
        // "parse smaps line 12" -> "parse /proc/42/smaps line 12"
        Error& e = map.error();
        const std::string_view prefix = "parse ";
        const std::string_view src = source_name(source);
        if (e.operation.starts_with(prefix) && e.operation.compare(prefix.size(), src.size(), src) == 0) {
            e.operation.replace(prefix.size(), src.size(), label);
        }
        e.pid = pid;
    }
    return map;
}

}  // namespace

std::string_view Permissions::text() const noexcept {
    return PERMISSION_TEXT[(read ? 8 : 0) | (write ? 4 : 0) | (exec ? 2 : 0) | (shared ? 1 : 0)];
}

std::string_view Mapping::path() const noexcept {
    if (kind == MappingKind::file && deleted) {
        return name.substr(0, name.size() - DELETED_SUFFIX.size());
    }
    return name;
}

std::string_view Mapping::anon_name() const noexcept {
    if (kind == MappingKind::anon_named) {
        return name.substr(ANON_PREFIX.size(), name.size() - ANON_PREFIX.size() - 1);
    }
    if (kind == MappingKind::anon_shmem) {
        return name.substr(ANON_SHMEM_PREFIX.size(), name.size() - ANON_SHMEM_PREFIX.size() - 1);
    }
    return {};
}

const SmapsField* Mapping::find_field(std::string_view field_name) const noexcept {
    for (const SmapsField& f : fields) {
        if (f.name == field_name) {
            return &f;
        }
    }
    return nullptr;
}

Result<MemoryMap> MemoryMap::parse(std::string text, MapsSource source) {
    detail::PageBuffer buffer;
    if (!buffer.append(text)) {
        return fail(Error::from_errno(ENOMEM, "parse " + std::string(source_name(source))));
    }
    return parse(std::move(buffer), source);
}

Result<MemoryMap> MemoryMap::parse(detail::PageBuffer text, MapsSource source) {
    MemoryMap map;
    map.m_source = source;
    map.m_text = std::move(text);
    Parser parser(map.m_text.view(), source, map.m_mappings, map.m_fields);
    std::size_t line_no = 0;
    std::string_view line;
    if (const char* err = parser.run(line_no, line)) {
        return fail(
            Error::make(ErrorKind::parse,
                        "parse " + std::string(source_name(source)) + " line " + std::to_string(line_no),
                        std::string(err) + ": " + quote_line(line)));
    }
    return map;
}

Result<MemoryMap> read_maps(const Process& proc) {
    return read_pinned(proc, MapsSource::maps);
}

Result<MemoryMap> read_smaps(const Process& proc) {
    return read_pinned(proc, MapsSource::smaps);
}

Result<MemoryMap> read_smaps_rollup(const Process& proc) {
    return read_pinned(proc, MapsSource::smaps_rollup);
}

Result<MemoryMap> read_maps(pid_t pid) {
    return read_by_pid(pid, MapsSource::maps);
}

Result<MemoryMap> read_smaps(pid_t pid) {
    return read_by_pid(pid, MapsSource::smaps);
}

Result<MemoryMap> read_smaps_rollup(pid_t pid) {
    return read_by_pid(pid, MapsSource::smaps_rollup);
}

Result<MemoryMap> read_map_file(int fd, MapsSource source, pid_t pid) {
    const std::string what = std::string(source_name(source)) + " (fd " + std::to_string(fd) + ")";
    auto text = read_text(fd, what, pid);
    if (!text) {
        return fail(std::move(text.error()));
    }
    return parse_labelled(std::move(*text), source, what, pid);
}

}  // namespace xproc
