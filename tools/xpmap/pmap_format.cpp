// SPDX-License-Identifier: MIT
// pmap's output formats, byte for byte as procps-ng 4.0.2 (Debian 12) prints them.
//
// Everything here was checked against /usr/bin/pmap on real processes. pmap's
// behaviours that are easy to get wrong (the tests cover each):
//
//  * default, -x and -d read the maps file line by line with fgets() into a
//    1024-byte buffer. A line longer than 1023 bytes (a path of more than about
//    950 bytes) is therefore seen as several "lines": the continuation is parsed
//    with sscanf("%lx-%lx %31s ...") too, which (a) sets the start address to
//    0xffffffffffffffff when the continuation starts with hex digits (strtoul
//    overflow), (b) keeps the previous line's values when it does not parse at
//    all, and prints one more row either way, named after the last '/' of the
//    continuation (or "[ anon ]"); a continuation that starts with an upper-case
//    letter is taken for an smaps "Key: value" line and skipped. Its size does not
//    count in the totals (the permissions were already rewritten to "xxx--").
//    With -x, the row is printed when the "Swap:" line is read, with the name
//    pointer still pointing into the line buffer: after a continuation, the name
//    shows whatever the buffer holds by then (e.g. "Swap:   0 kB" and a newline).
//    xpmap takes a fast path for ordinary lines and replays the whole procedure,
//    buffer and all, for over-long ones (see ClassicFormatter::replay()).
//  * Names: the text after the last '/' of the whole line (-p: from the first
//    '/'), unprintable bytes (isprint(), current locale) shown as '?'; no '/':
//    "  [ stack ]" when /proc/PID/stat's startstack lies in [start, end] (both
//    ends included), else "  [ anon ]" (so [heap], [vdso], [anon:x] are all
//    "[ anon ]"); SysV shm "  [ shmid=0x<inode> ]" (device 0:minor of pmap's own
//    test segment and "/SYSV" in the line).
//  * -A low[,high]: "-A low" means low,low. A mapping is skipped while
//    end-1 < low and reading stops at the first one with start > high. With -x
//    the RSS and Dirty totals still count the mappings skipped below low.
//  * -X, -XX, -c: pmap reads smaps twice (xpmap reads it once and makes two
//    passes): widths first (from every mapping; -A is ignored), then print. Columns are sized to max(header,
//    width of the total)
//    (-q: the widest value). The name is cut at 127 bytes and not sanitized.
//    The column list, their widths and their totals are kept from one PID to the
//    next: the second PID's totals include the first's.
//  * A process with no map (kernel thread, zombie) prints its header and an
//    empty table; with -X only the footer, and only when an earlier PID created
//    the column list.

#include "pmap_format.hpp"

#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

namespace xpmap {
namespace {

constexpr std::size_t LINE_BUFFER = 1024;  // pmap's mapbuf; fgets reads 1023 bytes at most
constexpr std::size_t NAME_COLUMN = 72;    // the kernel pads maps lines to this before the name
constexpr std::size_t MAP_DESC_MAX = 127;  // -X keeps this much of a name (%127[^\n])
constexpr std::size_t VMFLAGS_MAX = 127;   // -X keeps this much of VmFlags (%127[a-z ])

std::size_t at_least(int digits, int min) {
    return static_cast<std::size_t>(std::max(digits, min));
}

std::size_t prefix_length(const xproc::Mapping& m) {
    return at_least(hex_width(m.start), 8) + 1 + at_least(hex_width(m.end), 8) + 1 + 4 + 1 +
           at_least(hex_width(m.offset), 8) + 1 + at_least(hex_width(m.dev_major), 2) + 1 +
           at_least(hex_width(m.dev_minor), 2) + 1 + static_cast<std::size_t>(decimal_width(m.inode)) + 1;
}

/// isprint() of every byte in the current locale, looked up once (isprint is a call).
struct PrintableTable {
    bool printable[256];
    PrintableTable() {
        for (int c = 0; c < 256; ++c) {
            printable[c] = std::isprint(c) != 0;
        }
    }
};

const PrintableTable& printable_table() {
    static const PrintableTable table;
    return table;
}

bool has_unprintable(std::string_view s) {
    const bool* printable = printable_table().printable;
    for (const char c : s) {
        if (!printable[static_cast<unsigned char>(c)]) {
            return true;
        }
    }
    return false;
}

void sanitize(char* p) {
    const bool* printable = printable_table().printable;
    for (; *p != '\0'; ++p) {
        if (!printable[static_cast<unsigned char>(*p)]) {
            *p = '?';
        }
    }
}

/// The kernel's smaps detail line for `f`: "Rss:" padded to 16, value in 8, " kB".
std::string kernel_smaps_line(const xproc::SmapsField& f) {
    OutBuffer b;
    b.put(f.name);
    b.put(':');
    b.fill(' ', 16 - static_cast<int>(f.name.size()) - 1);
    b.dec(f.value, 8);
    if (f.in_kb) {
        b.put(" kB");
    }
    b.put('\n');
    return std::move(b.str());
}

constexpr std::string_view ANON = "  [ anon ]";
constexpr std::string_view STACK = "  [ stack ]";

}  // namespace

std::size_t kernel_maps_line_length(const xproc::Mapping& m) noexcept {
    std::size_t n = prefix_length(m);
    if (!m.name.empty()) {
        n = std::max(n, NAME_COLUMN) + 1 + m.name.size();
    }
    return n + 1;
}

std::string kernel_maps_line(const xproc::Mapping& m) {
    OutBuffer b;
    b.hex(m.start, 8);
    b.put('-');
    b.hex(m.end, 8);
    b.put(' ');
    b.put(m.perms.text());
    b.put(' ');
    b.hex(m.offset, 8);
    b.put(' ');
    b.hex(m.dev_major, 2);
    b.put(':');
    b.hex(m.dev_minor, 2);
    b.put(' ');
    b.dec(m.inode);
    b.put(' ');
    if (!m.name.empty()) {
        b.fill(' ', static_cast<int>(NAME_COLUMN) - static_cast<int>(b.size()));
        b.put(' ');
        b.put(m.name);
    }
    b.put('\n');
    return std::move(b.str());
}

// ---------------------------------------------------------------------------
// SysV shared memory

unsigned ShmMinor::get() {
    if (m_known) {
        return m_minor;
    }
    m_known = true;
    // As pmap: a 42-byte private segment, attached read-only, then our own map.
    const int id = shmget(IPC_PRIVATE, 42, IPC_CREAT | 0666);
    if (id == -1) {
        return m_minor;
    }
    void* addr = shmat(id, nullptr, SHM_RDONLY);
    if (addr != reinterpret_cast<void*>(-1)) {
        if (auto self = xproc::read_maps(getpid())) {
            const auto where = reinterpret_cast<std::uintptr_t>(addr);
            for (const xproc::Mapping& m : *self) {
                if (m.start <= where && m.dev_major == 0 && m.perms.shared &&
                    m.name.find("/SYSV") != std::string_view::npos) {
                    m_minor = m.dev_minor;
                    break;
                }
            }
        }
        shmdt(addr);
    }
    shmctl(id, IPC_RMID, nullptr);
    return m_minor;
}

// ---------------------------------------------------------------------------
// default, -x, -d

namespace {

enum class Step : std::uint8_t { next, stop };

/// pmap's one_proc(): the variables it keeps from one line to the next, and the
/// rows it prints.
class ClassicFormatter {
  public:
    /// `apply_range`: pmap's own procedure (-A, over-long lines); false for --sort/--top.
    ClassicFormatter(const Options& options, ShmMinor& shm, OutBuffer& out, std::uint64_t start_stack,
                     bool apply_range)
        : m_opt(options), m_shm(shm), m_out(out), m_start_stack(start_stack), m_apply_range(apply_range) {}

    void header();
    /// One mapping; `stop` when pmap would stop reading (past the -A range).
    Step mapping(const xproc::Mapping& m, bool has_swap);
    void footer();

  private:
    /// Fast path: a maps line that fits pmap's buffer, decoded by the library.
    Step whole_line(const xproc::Mapping& m, bool has_swap);
    /// Slow path: the line (and, for -x, its smaps lines up to Swap) fed through
    /// pmap's procedure exactly, one buffer-full at a time.
    Step replay(const xproc::Mapping& m);
    Step replay_buffer();
    /// pmap's mapping_name() on a (sanitized) line or name.
    std::string_view name_of(std::string_view line, unsigned long addr, unsigned long len);
    void account(unsigned long diff);
    void row(std::string_view name);
    void extended_row(std::string_view name);

    const Options& m_opt;
    ShmMinor& m_shm;
    OutBuffer& m_out;
    const std::uint64_t m_start_stack;
    const bool m_apply_range;

    // pmap's variables, named as in pmap.
    unsigned long m_start = 0;
    unsigned long m_end = 0;
    char m_perms[32] = {};
    unsigned long long m_file_offset = 0;
    unsigned long long m_inode = 0;
    unsigned m_dev_major = 0;
    unsigned m_dev_minor = 0;
    unsigned long m_diff = 0;
    unsigned long m_total_shared = 0;
    unsigned long m_total_private_readonly = 0;
    unsigned long m_total_private_writeable = 0;
    unsigned long long m_rss = 0;
    unsigned long long m_private_dirty = 0;
    unsigned long long m_shared_dirty = 0;
    unsigned long long m_total_rss = 0;
    unsigned long long m_total_private_dirty = 0;
    unsigned long long m_total_shared_dirty = 0;
    // -x: the name chosen at the maps line, printed at the Swap line ("cp2").
    enum class Cp2 : std::uint8_t { none, view, in_buffer } m_cp2 = Cp2::none;
    std::string_view m_cp2_view;
    std::size_t m_cp2_offset = 0;
    char m_shmbuf[64] = {};
    std::string m_scratch;
    char m_mapbuf[LINE_BUFFER] = {};
};

void ClassicFormatter::header() {
    if (m_opt.quiet) {
        return;
    }
    if (m_opt.format == Format::extended) {
        m_out.put("Address           Kbytes     RSS   Dirty Mode  Mapping\n");
    } else if (m_opt.format == Format::device) {
        m_out.put("Address           Kbytes Mode  Offset           Device    Mapping\n");
    }
}

void ClassicFormatter::footer() {
    if (m_opt.quiet) {
        return;
    }
    const unsigned long mapped = m_total_shared + m_total_private_writeable + m_total_private_readonly;
    if (m_opt.format == Format::extended) {
        m_out.put("---------------- ------- ------- ------- \n");
        m_out.put("total kB         ");
        m_out.dec(mapped >> 10, 7);
        m_out.put(' ');
        m_out.dec(m_total_rss, 7);
        m_out.put(' ');
        m_out.dec(m_total_shared_dirty + m_total_private_dirty, 7);
        m_out.put('\n');
    } else if (m_opt.format == Format::device) {
        m_out.put("mapped: ");
        m_out.dec(mapped >> 10);
        m_out.put("K    writeable/private: ");
        m_out.dec(m_total_private_writeable >> 10);
        m_out.put("K    shared: ");
        m_out.dec(m_total_shared >> 10);
        m_out.put("K\n");
    } else {
        m_out.put(" total ");
        m_out.dec(mapped >> 10, 16);
        m_out.put("K\n");
    }
}

std::string_view ClassicFormatter::name_of(std::string_view line, unsigned long addr, unsigned long len) {
    if (m_dev_major == 0 && line.find("/SYSV") != std::string_view::npos && m_dev_minor == m_shm.get()) {
        std::snprintf(m_shmbuf, sizeof m_shmbuf, "  [ shmid=0x%llx ]", m_inode);
        return m_shmbuf;
    }
    const std::size_t last = line.rfind('/');
    if (last != std::string_view::npos) {
        if (m_opt.show_path) {
            return line.substr(line.find('/'));
        }
        return last + 1 < line.size() ? line.substr(last + 1) : line.substr(last);
    }
    if (m_start_stack >= addr && m_start_stack <= addr + len) {
        return STACK;
    }
    return ANON;
}

void ClassicFormatter::account(unsigned long diff) {
    if (m_perms[3] == 's') {
        m_total_shared += diff;
    }
    if (m_perms[3] == 'p') {
        m_perms[3] = '-';
        if (m_perms[1] == 'w') {
            m_total_private_writeable += diff;
        } else {
            m_total_private_readonly += diff;
        }
    }
    m_perms[4] = '-';
    m_perms[5] = '\0';
}

void ClassicFormatter::row(std::string_view name) {
    const std::string_view perms(m_perms);
    if (m_opt.format == Format::device) {
        // "%0*lx %*lu %*s %0*llx %03x:%05x %s\n"
        m_out.hex(m_start, 16);
        m_out.put(' ');
        m_out.dec(m_diff >> 10, 7);
        m_out.put(' ');
        m_out.right(perms, 5);
        m_out.put(' ');
        m_out.hex(m_file_offset, 16);
        m_out.put(' ');
        m_out.hex(m_dev_major, 3);
        m_out.put(':');
        m_out.hex(m_dev_minor, 5);
    } else {
        // "%016lx %6luK %s"
        m_out.hex(m_start, 16);
        m_out.put(' ');
        m_out.dec(m_diff >> 10, 6);
        m_out.put("K ");
        m_out.put(perms);
    }
    m_out.put(' ');
    m_out.put(name);
    m_out.put('\n');
}

void ClassicFormatter::extended_row(std::string_view name) {
    // "%0*lx %*lu %*llu %*llu %*s %s\n"
    m_out.hex(m_start, 16);
    m_out.put(' ');
    m_out.dec(m_diff >> 10, 7);
    m_out.put(' ');
    m_out.dec(m_rss, 7);
    m_out.put(' ');
    m_out.dec(m_private_dirty + m_shared_dirty, 7);
    m_out.put(' ');
    m_out.right(std::string_view(m_perms), 5);
    m_out.put(' ');
    m_out.put(name);
    m_out.put('\n');
}

Step ClassicFormatter::mapping(const xproc::Mapping& m, bool has_swap) {
    // The name starts at column 73, or a little later after a very long prefix (at
    // most 88 bytes): a name of 900 bytes or less always fits the buffer. With
    // --sort/--top there is no pmap output to match: every row shows its mapping.
    if (m_apply_range && m.name.size() > 900 && kernel_maps_line_length(m) > LINE_BUFFER - 1) {
        return replay(m);
    }
    return whole_line(m, has_swap);
}

Step ClassicFormatter::whole_line(const xproc::Mapping& m, bool has_swap) {
    m_start = m.start;
    m_end = m.end;
    const std::string_view perms = m.perms.text();
    std::memcpy(m_perms, perms.data(), perms.size());
    m_perms[perms.size()] = '\0';
    m_file_offset = m.offset;
    m_dev_major = m.dev_major;
    m_dev_minor = m.dev_minor;
    m_inode = m.inode;

    bool in_range = true;
    if (m_apply_range) {
        if (m_end - 1 < m_opt.range_low) {
            in_range = false;
        } else if (m_opt.range_high < m_start) {
            return Step::stop;
        }
    }
    if (in_range) {
        std::string_view line = m.name;
        if (has_unprintable(line)) {
            m_scratch.assign(line);
            sanitize(m_scratch.data());
            line = m_scratch;
        }
        m_diff = m_end - m_start;
        account(m_diff);
        const std::string_view name = name_of(line, m_start, m_diff);
        if (m_opt.format == Format::extended) {
            m_cp2 = Cp2::view;
            m_cp2_view = name;
        } else {
            row(name);
        }
    }
    if (m_opt.format == Format::extended) {
        // The Rss, Shared_Dirty and Private_Dirty lines, then Swap prints the row.
        m_rss = m.smaps.rss_kb;
        m_total_rss += m_rss;
        m_shared_dirty = m.smaps.shared_dirty_kb;
        m_total_shared_dirty += m_shared_dirty;
        m_private_dirty = m.smaps.private_dirty_kb;
        m_total_private_dirty += m_private_dirty;
        if (has_swap) {
            if (m_cp2 != Cp2::none) {
                extended_row(m_cp2_view);
            }
            m_rss = m_shared_dirty = m_private_dirty = 0;
            m_diff = m_end = 0;
            m_perms[0] = '\0';
            m_cp2 = Cp2::none;
        }
    }
    return Step::next;
}

Step ClassicFormatter::replay(const xproc::Mapping& m) {
    const std::string line = kernel_maps_line(m);
    // fgets(mapbuf, 1024): 1023 bytes at a time, the last piece with the newline.
    for (std::size_t pos = 0; pos < line.size(); pos += LINE_BUFFER - 1) {
        const std::size_t n = std::min(line.size() - pos, LINE_BUFFER - 1);
        std::memcpy(m_mapbuf, line.data() + pos, n);
        m_mapbuf[n] = '\0';
        if (replay_buffer() == Step::stop) {
            return Step::stop;
        }
    }
    if (m_opt.format == Format::extended) {
        for (const xproc::SmapsField& f : m.fields) {
            const std::string detail = kernel_smaps_line(f);
            const std::size_t n = std::min(detail.size(), LINE_BUFFER - 1);
            std::memcpy(m_mapbuf, detail.data(), n);
            m_mapbuf[n] = '\0';
            replay_buffer();
            if (f.name == "Swap") {
                break;
            }
        }
    }
    return Step::next;
}

Step ClassicFormatter::replay_buffer() {
    char* const buf = m_mapbuf;
    if (buf[0] >= 'A' && buf[0] <= 'Z') {
        char key[21];
        unsigned long long value = 0;
        if (std::sscanf(buf, "%20[^:]: %llu", key, &value) == 2) {
            const std::string_view k(key);
            if (k == "Rss") {
                m_rss = value;
                m_total_rss += value;
            } else if (k == "Shared_Dirty") {
                m_shared_dirty = value;
                m_total_shared_dirty += value;
            } else if (k == "Private_Dirty") {
                m_private_dirty = value;
                m_total_private_dirty += value;
            } else if (k == "Swap") {
                if (m_cp2 == Cp2::view) {
                    extended_row(m_cp2_view);
                } else if (m_cp2 == Cp2::in_buffer) {
                    // The name still points into the buffer, which now holds other text.
                    extended_row(std::string_view(buf + m_cp2_offset));
                }
                m_rss = m_shared_dirty = m_private_dirty = 0;
                m_diff = m_end = 0;
                m_perms[0] = '\0';
                m_cp2 = Cp2::none;
            }
        }
        return Step::next;
    }
    std::sscanf(buf, "%lx-%lx %31s %llx %x:%x %llu", &m_start, &m_end, m_perms, &m_file_offset, &m_dev_major,
                &m_dev_minor, &m_inode);
    if (m_apply_range) {
        if (m_end - 1 < m_opt.range_low) {
            return Step::next;
        }
        if (m_opt.range_high < m_start) {
            return Step::stop;
        }
    }
    if (char* nl = std::strchr(buf, '\n')) {
        *nl = '\0';
    }
    sanitize(buf);
    m_diff = m_end - m_start;
    account(m_diff);
    const std::string_view name = name_of(std::string_view(buf), m_start, m_diff);
    if (m_opt.format == Format::extended) {
        if (name.data() >= buf && name.data() < buf + LINE_BUFFER) {
            m_cp2 = Cp2::in_buffer;
            m_cp2_offset = static_cast<std::size_t>(name.data() - buf);
        } else {
            m_cp2 = Cp2::view;
            m_cp2_view = name;
        }
        return Step::next;
    }
    row(name);
    return Step::next;
}

}  // namespace

// ---------------------------------------------------------------------------
// -X, -XX, -c

/// pmap's list of smaps columns: built from the first mapping it sees and kept,
/// with widths and totals, for every later PID of the run.
struct PmapFormatter::Columns {
    struct Column {
        std::string name;
        int width = 0;
        std::uint64_t total = 0;
        std::uint64_t value = 0;  // last value read (a mapping lacking the field shows it)
    };
    std::vector<Column> list;
    // Which positions of a mapping's field list are columns: cached for the
    // kernel's field order, checked on every mapping.
    std::vector<std::string> seen_names;
    std::vector<int> column_of;  // -1: not shown
};

PmapFormatter::PmapFormatter(const Options& options) : m_options(options), m_columns(new Columns) {}

PmapFormatter::~PmapFormatter() {
    delete m_columns;
}

bool PmapFormatter::shown_by_X(std::string_view field) noexcept {
    return field != "AnonHugePages" && field != "KernelPageSize" && field != "MMUPageSize" &&
           field != "Shared_Dirty" && field != "Private_Dirty" && field != "Shared_Clean" &&
           field != "Private_Clean" && field != "VmFlags";
}

bool PmapFormatter::enabled(std::string_view column) const noexcept {
    if (m_options.x_count == 1) {
        return shown_by_X(column);
    }
    if (m_options.rc_fields) {
        return std::find(m_options.enabled_fields.begin(), m_options.enabled_fields.end(), column) !=
               m_options.enabled_fields.end();
    }
    return true;
}

void PmapFormatter::header(OutBuffer& out, const ProcessData& process) {
    out.dec(static_cast<std::uint64_t>(process.pid));
    out.put(":   ");
    out.put(process.command);
    out.put('\n');
}

void PmapFormatter::body(OutBuffer& out, const ProcessData& process) {
    if (m_options.format == Format::smaps) {
        extended(out, process);
    } else {
        classic(out, process);
    }
}

void PmapFormatter::classic(OutBuffer& out, const ProcessData& process) {
    ClassicFormatter f(m_options, m_shm, out, process.start_stack, !m_options.reorders());
    // Rows are printed at the "Swap:" line of each mapping: none without one.
    bool has_swap = false;
    if (m_options.format == Format::extended && !process.rows.empty()) {
        has_swap = process.rows.front()->find_field("Swap") != nullptr;
    }
    f.header();
    for (const xproc::Mapping* m : process.rows) {
        if (f.mapping(*m, has_swap) == Step::stop) {
            break;
        }
        out.maybe_flush();
    }
    f.footer();
}

namespace {

std::string_view vm_flags_shown(std::string_view flags) {
    // "%127[a-z ]": letters and spaces only, at most 127 of them.
    std::size_t n = 0;
    while (n < flags.size() && n < VMFLAGS_MAX && ((flags[n] >= 'a' && flags[n] <= 'z') || flags[n] == ' ')) {
        ++n;
    }
    return flags.substr(0, n);
}

/// printf("%*s", width, <hex of v, at least min digits>)
void right_hex(OutBuffer& out, std::uint64_t v, int min_digits, int width) {
    out.fill(' ', width - std::max(hex_width(v), min_digits));
    out.hex(v, min_digits);
}

void right_dev(OutBuffer& out, const xproc::Mapping& m, int width) {
    const int len = std::max(hex_width(m.dev_major), 2) + 1 + std::max(hex_width(m.dev_minor), 2);
    out.fill(' ', width - len);
    out.hex(m.dev_major, 2);
    out.put(':');
    out.hex(m.dev_minor, 2);
}

/// pmap's justify_print(): the heading right- or left-aligned, then a space.
int justify(OutBuffer& out, std::string_view text, int width, bool right) {
    width = std::max(width, static_cast<int>(text.size()));
    if (right) {
        out.right(text, width);
    } else {
        out.left(text, width);
    }
    out.put(' ');
    return width;
}

}  // namespace

void PmapFormatter::extended(OutBuffer& out, const ProcessData& process) {
    Columns& cols = *m_columns;
    const bool quiet = m_options.quiet;
    const bool show_perm = enabled("Perm");
    const bool show_offset = enabled("Offset");
    const bool show_device = enabled("Device");
    const bool show_inode = enabled("Inode");
    const bool show_vmflags = enabled("VmFlags");
    const bool show_mapping = enabled("Mapping");

    // Maps a mapping's fields to columns; creates columns while the list is built.
    auto layout = [&](const xproc::Mapping& m) -> const std::vector<int>& {
        bool same = cols.seen_names.size() == m.fields.size();
        for (std::size_t i = 0; same && i < m.fields.size(); ++i) {
            same = cols.seen_names[i] == m.fields[i].name;
        }
        if (same) {
            return cols.column_of;
        }
        cols.seen_names.clear();
        cols.column_of.clear();
        std::size_t next = 0;
        for (const xproc::SmapsField& f : m.fields) {
            cols.seen_names.emplace_back(f.name);
            if (!enabled(f.name)) {
                cols.column_of.push_back(-1);
                continue;
            }
            if (next == cols.list.size()) {
                cols.list.push_back({std::string(f.name), quiet ? 0 : static_cast<int>(f.name.size()), 0, 0});
            }
            // pmap stops with "inconsistent detail field" here; the kernel never does that.
            cols.column_of.push_back(static_cast<int>(next));
            ++next;
        }
        return cols.column_of;
    };

    // Pass 1: widths (and totals) from every row.
    int w_start = 0, w_perm = 0, w_offset = 0, w_dev = 0, w_inode = 0, w_vmflags = 0;
    bool has_vmflags = false;
    std::vector<std::string_view> row_vmflags(process.rows.size());
    for (std::size_t r = 0; r < process.rows.size(); ++r) {
        const xproc::Mapping& m = *process.rows[r];
        w_start = std::max(w_start, std::max(hex_width(m.start), 8));
        w_perm = std::max(w_perm, 4);
        w_offset = std::max(w_offset, std::max(hex_width(m.offset), 8));
        w_dev =
            std::max(w_dev, std::max(hex_width(m.dev_major), 2) + 1 + std::max(hex_width(m.dev_minor), 2));
        w_inode = std::max(w_inode, decimal_width(m.inode));
        const std::vector<int>& column_of = layout(m);
        for (std::size_t i = 0; i < m.fields.size(); ++i) {
            if (column_of[i] < 0) {
                continue;
            }
            Columns::Column& c = cols.list[static_cast<std::size_t>(column_of[i])];
            c.total += m.fields[i].value;
            if (quiet) {
                c.width = std::max(c.width, decimal_width(m.fields[i].value));
            }
        }
        if (!m.smaps.vm_flags.empty()) {
            has_vmflags = true;
            row_vmflags[r] = vm_flags_shown(m.smaps.vm_flags);
            w_vmflags = std::max(w_vmflags, static_cast<int>(row_vmflags[r].size()));
        }
    }
    if (!quiet && !process.rows.empty()) {
        for (Columns::Column& c : cols.list) {
            c.width = std::max(c.width, decimal_width(c.total));
        }
    }

    // Pass 2: the heading (at the first row) and the rows.
    if (!quiet && !process.rows.empty()) {
        w_start = justify(out, "Address", w_start, true);
        if (show_perm) {
            w_perm = justify(out, "Perm", w_perm, true);
        }
        if (show_offset) {
            w_offset = justify(out, "Offset", w_offset, true);
        }
        if (show_device) {
            w_dev = justify(out, "Device", w_dev, true);
        }
        if (show_inode) {
            w_inode = justify(out, "Inode", w_inode, true);
        }
        for (const Columns::Column& c : cols.list) {
            justify(out, c.name, c.width, true);
        }
        if (has_vmflags && show_vmflags) {
            w_vmflags = justify(out, "VmFlags", w_vmflags, true);
        }
        out.put(show_mapping ? "Mapping\n" : "\n");
    }
    std::string_view vmflags;
    for (std::size_t r = 0; r < process.rows.size(); ++r) {
        const xproc::Mapping& m = *process.rows[r];
        right_hex(out, m.start, 8, w_start);
        if (show_perm) {
            out.put(' ');
            out.right(m.perms.text(), w_perm);
        }
        if (show_offset) {
            out.put(' ');
            right_hex(out, m.offset, 8, w_offset);
        }
        if (show_device) {
            out.put(' ');
            right_dev(out, m, w_dev);
        }
        if (show_inode) {
            out.put(' ');
            out.dec(m.inode, w_inode);
        }
        const std::vector<int>& column_of = layout(m);
        for (std::size_t i = 0; i < m.fields.size(); ++i) {
            if (column_of[i] >= 0) {
                cols.list[static_cast<std::size_t>(column_of[i])].value = m.fields[i].value;
            }
        }
        for (const Columns::Column& c : cols.list) {
            out.put(' ');
            out.dec(c.value, c.width);
        }
        if (!m.smaps.vm_flags.empty()) {
            vmflags = row_vmflags[r];
        }
        if (has_vmflags && show_vmflags) {
            out.put(' ');
            out.right(vmflags, w_vmflags);
        }
        if (show_mapping) {
            std::string_view desc = m.name.substr(0, MAP_DESC_MAX);
            if (!m_options.show_path) {
                const std::size_t slash = desc.rfind('/');
                if (slash != std::string_view::npos) {
                    desc.remove_prefix(slash + 1);
                }
            }
            out.put(' ');
            out.put(desc);
        }
        out.put('\n');
        out.maybe_flush();
    }

    // Footer: totals, which pmap 4.0.2 never resets between PIDs.
    if (!quiet && !cols.list.empty()) {
        int gap = w_start + 1;
        gap += show_perm ? w_perm + 1 : 0;
        gap += show_offset ? w_offset + 1 : 0;
        gap += show_device ? w_dev + 1 : 0;
        gap += show_inode ? w_inode + 1 : 0;
        out.fill(' ', gap);
        for (const Columns::Column& c : cols.list) {
            out.fill('=', c.width);
            out.put(' ');
        }
        out.put('\n');
        out.fill(' ', gap);
        for (const Columns::Column& c : cols.list) {
            out.dec(c.total, c.width);
            out.put(' ');
        }
        out.put("KB \n");
    }
}

}  // namespace xpmap
