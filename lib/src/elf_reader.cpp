// SPDX-License-Identifier: MIT
// xproc's own ELF64 reader: just what symbolization needs (header, program headers,
// section headers, .symtab/.dynsym with their string tables, .gnu.version, the
// NT_GNU_BUILD_ID note). No dependency (libelf/LLVM would be far bigger than the
// few hundred lines needed, and neither promises to survive hostile input).
//
// The input is untrusted: a module file may be truncated, corrupt or crafted. Every
// offset, size, count and index read from it is checked against the image size
// (with overflow-safe arithmetic) before it is used; anything inconsistent is an
// ErrorKind::parse error naming the field, never an out-of-bounds read.
//
// Both byte orders are read (fields are assembled byte by byte); ELFCLASS32 is
// not supported.
#include "elf_reader.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <mutex>

#include "xproc/fd.hpp"
#include "xproc/symbols.hpp"

namespace xproc {

namespace {

std::atomic<std::uint64_t> g_parse_count{0};

// ELF constants (elf.h spelled out: only these few are needed).
constexpr std::uint8_t ELFCLASS32 = 1;
constexpr std::uint8_t ELFCLASS64 = 2;
constexpr std::uint8_t ELFDATA2LSB = 1;
constexpr std::uint8_t ELFDATA2MSB = 2;
constexpr std::size_t EHDR_SIZE = 64;
constexpr std::size_t PHDR_SIZE = 56;
constexpr std::size_t SHDR_SIZE = 64;
constexpr std::size_t SYM_SIZE = 24;
constexpr std::uint32_t PT_LOAD = 1;
constexpr std::uint32_t PT_DYNAMIC = 2;
constexpr std::uint32_t PT_NOTE = 4;
constexpr std::uint32_t SHT_SYMTAB = 2;
constexpr std::uint32_t SHT_NOTE = 7;
constexpr std::uint32_t SHT_NOBITS = 8;
constexpr std::uint32_t SHT_DYNSYM = 11;
constexpr std::uint32_t SHT_SYMTAB_SHNDX = 18;
constexpr std::uint32_t SHT_GNU_VERSYM = 0x6fffffff;
constexpr std::uint64_t SHF_ALLOC = 0x2;
constexpr std::uint64_t SHF_EXECINSTR = 0x4;
constexpr std::uint16_t SHN_UNDEF = 0;
constexpr std::uint16_t SHN_LORESERVE = 0xff00;
constexpr std::uint16_t SHN_XINDEX = 0xffff;
constexpr std::uint16_t PN_XNUM = 0xffff;
constexpr std::uint8_t STT_NOTYPE = 0;
constexpr std::uint8_t STT_OBJECT = 1;
constexpr std::uint8_t STT_FUNC = 2;
constexpr std::uint8_t STT_GNU_IFUNC = 10;
constexpr std::uint32_t NT_GNU_BUILD_ID = 3;
constexpr std::uint16_t VERSYM_HIDDEN = 0x8000;

/// Bounds-checked, byte-order-aware view of an image.
class Image {
  public:
    Image(std::span<const std::byte> bytes, bool big_endian) noexcept : m_bytes(bytes), m_big(big_endian) {}

    std::size_t size() const noexcept { return m_bytes.size(); }
    /// [off, off + len) lies inside the image (no overflow).
    bool contains(std::uint64_t off, std::uint64_t len) const noexcept {
        return off <= m_bytes.size() && len <= m_bytes.size() - off;
    }
    /// Unsigned field of N bytes at `off`; the caller checked contains(off, N).
    template <std::size_t N>
    std::uint64_t field(std::uint64_t off) const noexcept {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < N; ++i) {
            const auto b = static_cast<std::uint64_t>(m_bytes[static_cast<std::size_t>(off) + i]);
            v |= m_big ? b << (8 * (N - 1 - i)) : b << (8 * i);
        }
        return v;
    }
    std::uint16_t u16(std::uint64_t off) const noexcept { return static_cast<std::uint16_t>(field<2>(off)); }
    std::uint32_t u32(std::uint64_t off) const noexcept { return static_cast<std::uint32_t>(field<4>(off)); }
    std::uint64_t u64(std::uint64_t off) const noexcept { return field<8>(off); }
    const char* chars(std::uint64_t off) const noexcept {
        return reinterpret_cast<const char*>(m_bytes.data()) + off;
    }

  private:
    std::span<const std::byte> m_bytes;
    bool m_big;
};

struct SectionHeader {
    std::uint32_t name = 0, type = 0, link = 0, info = 0;
    std::uint64_t flags = 0, addr = 0, offset = 0, size = 0, entsize = 0;
};

struct ProgramHeader {
    std::uint32_t type = 0, flags = 0;
    std::uint64_t offset = 0, vaddr = 0, filesz = 0, memsz = 0, align = 0;
};

/// A string table: the bytes of one section, names looked up with bounds checks.
struct StringTable {
    std::uint64_t offset = 0, size = 0;
    /// The NUL-terminated string at `index`, or nullopt when index or terminator is outside.
    std::optional<std::string_view> at(const Image& img, std::uint64_t index) const noexcept {
        if (index >= size) {
            return std::nullopt;
        }
        const char* p = img.chars(offset + index);
        const void* nul = std::memchr(p, 0, static_cast<std::size_t>(size - index));
        if (nul == nullptr) {
            return std::nullopt;
        }
        return std::string_view(p, static_cast<std::size_t>(static_cast<const char*>(nul) - p));
    }
};

Error parse_error(std::string_view what, std::string detail) {
    return Error::make(ErrorKind::parse, "parse ELF " + std::string(what), std::move(detail));
}

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

std::uint64_t page_size() noexcept {
    static const std::uint64_t size = [] {
        const long p = sysconf(_SC_PAGESIZE);
        return p > 0 ? static_cast<std::uint64_t>(p) : 4096u;
    }();
    return size;
}

/// Header fields needed by everything else, validated.
struct Header {
    bool big = false;
    std::uint16_t type = 0;
    std::uint64_t phoff = 0, shoff = 0;
    std::uint64_t phnum = 0, shnum = 0;
    std::uint16_t phentsize = 0, shentsize = 0;
    std::uint32_t shstrndx = 0;
};

Result<Header> read_header(std::span<const std::byte> bytes, std::string_view what) {
    if (bytes.size() < 16 || std::memcmp(bytes.data(),
                                         "\x7f"
                                         "ELF",
                                         4) != 0) {
        return fail(parse_error(what, "not an ELF file (no \\x7fELF magic)"));
    }
    const auto cls = static_cast<std::uint8_t>(bytes[4]);
    const auto data = static_cast<std::uint8_t>(bytes[5]);
    if (cls == ELFCLASS32) {
        return fail(Error::make(ErrorKind::not_supported, "parse ELF " + std::string(what),
                                "32-bit ELF (ELFCLASS32) is not supported"));
    }
    if (cls != ELFCLASS64) {
        return fail(parse_error(what, "bad EI_CLASS " + std::to_string(cls)));
    }
    if (data != ELFDATA2LSB && data != ELFDATA2MSB) {
        return fail(parse_error(what, "bad EI_DATA " + std::to_string(data)));
    }
    if (bytes.size() < EHDR_SIZE) {
        return fail(parse_error(
            what, "truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the ELF header"));
    }
    const Image img(bytes, data == ELFDATA2MSB);
    Header h;
    h.big = data == ELFDATA2MSB;
    h.type = img.u16(16);
    h.phoff = img.u64(32);
    h.shoff = img.u64(40);
    h.phentsize = img.u16(54);
    h.phnum = img.u16(56);
    h.shentsize = img.u16(58);
    h.shnum = img.u16(60);
    h.shstrndx = img.u16(62);
    if (h.shoff != 0) {
        if (h.shentsize < SHDR_SIZE) {
            return fail(parse_error(what, "e_shentsize " + std::to_string(h.shentsize) + " < 64"));
        }
        // Extended numbering: section 0 holds the real counts (ELF gABI).
        if (h.shnum == 0 || h.shstrndx == SHN_XINDEX || h.phnum == PN_XNUM) {
            if (!img.contains(h.shoff, SHDR_SIZE)) {
                return fail(parse_error(what, "section header 0 at " + hex(h.shoff) + " is past the end"));
            }
            if (h.shnum == 0) {
                h.shnum = img.u64(h.shoff + 32);
            }
            if (h.shstrndx == SHN_XINDEX) {
                h.shstrndx = img.u32(h.shoff + 40);
            }
            if (h.phnum == PN_XNUM) {
                h.phnum = img.u32(h.shoff + 44);
            }
        }
        if (h.shnum > img.size() / h.shentsize || !img.contains(h.shoff, h.shnum * h.shentsize)) {
            return fail(parse_error(what, "section headers (" + std::to_string(h.shnum) + " at " +
                                              hex(h.shoff) + ") extend past the end of the file (" +
                                              std::to_string(img.size()) + " bytes)"));
        }
    } else {
        h.shnum = 0;
    }
    if (h.phnum != 0) {
        if (h.phentsize < PHDR_SIZE) {
            return fail(parse_error(what, "e_phentsize " + std::to_string(h.phentsize) + " < 56"));
        }
        if (h.phnum > img.size() / h.phentsize || !img.contains(h.phoff, h.phnum * h.phentsize)) {
            return fail(parse_error(what, "program headers (" + std::to_string(h.phnum) + " at " +
                                              hex(h.phoff) + ") extend past the end of the file (" +
                                              std::to_string(img.size()) + " bytes)"));
        }
    }
    return h;
}

std::vector<ProgramHeader> read_program_headers(const Image& img, const Header& h) {
    std::vector<ProgramHeader> out;
    out.reserve(static_cast<std::size_t>(h.phnum));
    for (std::uint64_t i = 0; i < h.phnum; ++i) {
        const std::uint64_t o = h.phoff + i * h.phentsize;
        ProgramHeader p;
        p.type = img.u32(o);
        p.flags = img.u32(o + 4);
        p.offset = img.u64(o + 8);
        p.vaddr = img.u64(o + 16);
        p.filesz = img.u64(o + 32);
        p.memsz = img.u64(o + 40);
        p.align = img.u64(o + 48);
        out.push_back(p);
    }
    return out;
}

std::vector<SectionHeader> read_section_headers(const Image& img, const Header& h) {
    std::vector<SectionHeader> out;
    out.reserve(static_cast<std::size_t>(h.shnum));
    for (std::uint64_t i = 0; i < h.shnum; ++i) {
        const std::uint64_t o = h.shoff + i * h.shentsize;
        SectionHeader s;
        s.name = img.u32(o);
        s.type = img.u32(o + 4);
        s.flags = img.u64(o + 8);
        s.addr = img.u64(o + 16);
        s.offset = img.u64(o + 24);
        s.size = img.u64(o + 32);
        s.link = img.u32(o + 40);
        s.info = img.u32(o + 44);
        s.entsize = img.u64(o + 56);
        out.push_back(s);
    }
    return out;
}

/// Scans notes in [off, off + size) for NT_GNU_BUILD_ID; "" when absent or malformed.
std::string scan_build_id(const Image& img, std::uint64_t off, std::uint64_t size, std::uint64_t align) {
    if (!img.contains(off, size)) {
        return {};
    }
    align = align == 8 ? 8 : 4;
    const auto pad = [align](std::uint64_t n) { return (n + align - 1) & ~(align - 1); };
    std::uint64_t pos = off;
    const std::uint64_t end = off + size;
    while (end - pos >= 12) {
        const std::uint64_t namesz = img.u32(pos);
        const std::uint64_t descsz = img.u32(pos + 4);
        const std::uint32_t type = img.u32(pos + 8);
        const std::uint64_t name_off = pos + 12;
        if (namesz > end - name_off) {
            return {};
        }
        const std::uint64_t desc_off = name_off + pad(namesz);
        if (desc_off > end || descsz > end - desc_off) {
            return {};
        }
        if (type == NT_GNU_BUILD_ID && namesz == 4 && std::memcmp(img.chars(name_off), "GNU", 4) == 0) {
            static constexpr char DIGITS[] = "0123456789abcdef";
            std::string id;
            id.reserve(static_cast<std::size_t>(descsz) * 2);
            for (std::uint64_t i = 0; i < descsz; ++i) {
                const auto b = static_cast<unsigned char>(img.chars(desc_off)[i]);
                id.push_back(DIGITS[b >> 4]);
                id.push_back(DIGITS[b & 15]);
            }
            return id;
        }
        const std::uint64_t next = desc_off + pad(descsz);
        if (next <= pos || next > end) {
            return {};
        }
        pos = next;
    }
    return {};
}

std::string find_build_id(const Image& img, const std::vector<ProgramHeader>& phdrs,
                          const std::vector<SectionHeader>& shdrs) {
    // At most this many note areas are scanned: a crafted file with thousands of notes
    // over one big region must not make this quadratic. Real files have a handful.
    constexpr int MAX_NOTE_AREAS = 16;
    int areas = 0;
    for (const ProgramHeader& p : phdrs) {
        if (p.type == PT_NOTE && areas++ < MAX_NOTE_AREAS) {
            if (std::string id = scan_build_id(img, p.offset, p.filesz, p.align); !id.empty()) {
                return id;
            }
        }
    }
    areas = 0;
    for (const SectionHeader& s : shdrs) {
        if (s.type == SHT_NOTE && areas++ < MAX_NOTE_AREAS) {
            if (std::string id = scan_build_id(img, s.offset, s.size, 4); !id.empty()) {
                return id;
            }
        }
    }
    return {};
}

/// A symbol during parsing: its name is an offset into the names arena being built.
struct RawEntry {
    ElfSymbols::Entry entry;
    std::size_t name_offset = 0;
    std::size_t name_size = 0;
};

/// gdb's synthetic symbols for x86-64 PLTs, which BFD and gdb add to every module:
/// "NAME@plt" (size 0) at each PLT entry that jumps through the GOT slot of NAME's
/// JUMP_SLOT/GLOB_DAT relocation (found by decoding the entry's `jmp *disp(%rip)`),
/// and "NAME@got.plt" (size 8) at each JUMP_SLOT slot. Lenient: anything that does
/// not check out (bounds, indices, names) is skipped, never an error.
template <typename AddName>
void add_plt_symbols(const Image& img, const std::vector<SectionHeader>& shdrs, const StringTable& shstr,
                     const std::vector<std::uint32_t>& section_map, std::vector<RawEntry>& raw,
                     AddName&& add_name) {
    constexpr std::uint16_t EM_X86_64 = 62;
    constexpr std::uint32_t SHT_RELA = 4;
    constexpr std::uint32_t R_X86_64_GLOB_DAT = 6;
    constexpr std::uint32_t R_X86_64_JUMP_SLOT = 7;
    constexpr std::size_t RELA_SIZE = 24;
    if (img.u16(18) != EM_X86_64) {
        return;
    }
    // GOT slot address -> (name, is JUMP_SLOT), from the relocations against .dynsym.
    struct Slot {
        std::uint64_t got;
        std::string_view name;
        bool jump_slot;
    };
    // Bounds on the work a crafted file can cause (many sections over one big region
    // would otherwise make this quadratic): real files have a few RELA sections.
    constexpr int MAX_RELA_SECTIONS = 16;
    int rela_sections = 0;
    std::vector<Slot> slots;
    for (const SectionHeader& rs : shdrs) {
        if (rs.type != SHT_RELA || rs.entsize < RELA_SIZE || !img.contains(rs.offset, rs.size) ||
            rs.link == 0 || rs.link >= shdrs.size() || rela_sections >= MAX_RELA_SECTIONS) {
            continue;
        }
        ++rela_sections;
        const SectionHeader& dynsym = shdrs[rs.link];
        if (dynsym.type != SHT_DYNSYM || dynsym.entsize < SYM_SIZE ||
            !img.contains(dynsym.offset, dynsym.size) || dynsym.link == 0 || dynsym.link >= shdrs.size() ||
            shdrs[dynsym.link].type == SHT_NOBITS ||
            !img.contains(shdrs[dynsym.link].offset, shdrs[dynsym.link].size)) {
            continue;
        }
        const StringTable strtab{shdrs[dynsym.link].offset, shdrs[dynsym.link].size};
        const std::uint64_t nsyms = dynsym.size / dynsym.entsize;
        for (std::uint64_t i = 0; i < rs.size / rs.entsize; ++i) {
            const std::uint64_t o = rs.offset + i * rs.entsize;
            const std::uint64_t info = img.u64(o + 8);
            const auto type = static_cast<std::uint32_t>(info & 0xffffffffu);
            const std::uint64_t sym = info >> 32;
            if ((type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) || sym == 0 || sym >= nsyms ||
                img.u64(o + 16) != 0) {
                continue;  // only plain "NAME" slots (BFD would append "+addend" otherwise)
            }
            const auto name = strtab.at(img, img.u32(dynsym.offset + sym * dynsym.entsize));
            if (!name || name->empty()) {
                continue;
            }
            slots.push_back({img.u64(o), *name, type == R_X86_64_JUMP_SLOT});
        }
    }
    if (slots.empty()) {
        return;
    }
    std::sort(slots.begin(), slots.end(), [](const Slot& a, const Slot& b) { return a.got < b.got; });
    const auto add = [&](std::string_view name, std::string_view suffix, std::uint64_t value,
                         std::uint64_t size, std::uint32_t elf_section, bool function) {
        RawEntry r;
        r.entry.value = value;
        r.entry.size = size;
        r.entry.section =
            elf_section < section_map.size() ? section_map[elf_section] : ElfSymbols::NO_SECTION;
        r.entry.binding = 1;
        r.entry.is_function = function;
        const std::string full = std::string(name) + std::string(suffix);
        r.name_size = full.size();
        r.name_offset = add_name(full);
        raw.push_back(r);
    };
    // The sections by name (the first of each name counts).
    std::size_t got_plt = 0, got = 0, plt_sections[3] = {0, 0, 0};
    constexpr std::string_view PLT_NAMES[3] = {".plt", ".plt.sec", ".plt.got"};
    for (std::size_t i = 1; i < shdrs.size(); ++i) {
        const std::string_view name = shstr.at(img, shdrs[i].name).value_or("");
        if (name == ".got.plt" && got_plt == 0) {
            got_plt = i;
        } else if (name == ".got" && got == 0) {
            got = i;
        }
        for (std::size_t k = 0; k < 3; ++k) {
            if (name == PLT_NAMES[k] && plt_sections[k] == 0) {
                plt_sections[k] = i;
            }
        }
    }
    // "NAME@got.plt" at each JUMP_SLOT slot in .got.plt (or .got, where -z now puts them).
    for (const Slot& slot : slots) {
        for (const std::size_t gi : {got_plt, got}) {
            if (slot.jump_slot && gi != 0 && slot.got - shdrs[gi].addr < shdrs[gi].size) {
                add(slot.name, "@got.plt", slot.got, 8, static_cast<std::uint32_t>(gi), false);
                break;
            }
        }
    }
    // "NAME@plt" at PLT entries: .plt, .plt.sec, .plt.got.
    for (const std::size_t si : plt_sections) {
        if (si == 0) {
            continue;
        }
        const SectionHeader& ps = shdrs[si];
        if (ps.type == SHT_NOBITS || !img.contains(ps.offset, ps.size) || ps.size > (64u << 20)) {
            continue;
        }
        const std::uint64_t entry = ps.entsize >= 8 && ps.entsize <= 64 ? ps.entsize : 16;
        for (std::uint64_t at = 0; at + 6 <= ps.size; ++at) {
            // jmp *disp32(%rip): ff 25 disp32 (bnd-prefixed or not).
            if (img.field<1>(ps.offset + at) != 0xff || img.field<1>(ps.offset + at + 1) != 0x25) {
                continue;
            }
            const auto disp = static_cast<std::int32_t>(img.u32(ps.offset + at + 2));
            const std::uint64_t got =
                ps.addr + at + 6 + static_cast<std::uint64_t>(static_cast<std::int64_t>(disp));
            const auto it = std::lower_bound(slots.begin(), slots.end(), got,
                                             [](const Slot& s, std::uint64_t g) { return s.got < g; });
            if (it == slots.end() || it->got != got) {
                continue;
            }
            add(it->name, "@plt", ps.addr + at - at % entry, 0, static_cast<std::uint32_t>(si), true);
            at += 5;
        }
    }
}

}  // namespace

/// Builds ElfSymbols (a friend: it fills the private members).
struct ElfParser {
    static Result<std::shared_ptr<const ElfSymbols>> parse(std::span<const std::byte> bytes,
                                                           std::string_view what);
};

Result<std::shared_ptr<const ElfSymbols>> ElfParser::parse(std::span<const std::byte> bytes,
                                                           std::string_view what) {
    g_parse_count.fetch_add(1, std::memory_order_relaxed);  // a statistic: no ordering needed
    auto header = read_header(bytes, what);
    if (!header) {
        return fail(std::move(header.error()));
    }
    const Header& h = *header;
    const Image img(bytes, h.big);
    const std::vector<ProgramHeader> phdrs = read_program_headers(img, h);
    const std::vector<SectionHeader> shdrs = read_section_headers(img, h);

    std::shared_ptr<ElfSymbols> out(new ElfSymbols());
    out->m_type = h.type;
    out->m_build_id = find_build_id(img, phdrs, shdrs);
    for (const ProgramHeader& p : phdrs) {
        if (p.type == PT_DYNAMIC && out->m_dynamic_size == 0) {
            out->m_dynamic_vaddr = p.vaddr;
            out->m_dynamic_size = p.memsz;
        }
        if (p.type == PT_LOAD) {
            if (p.filesz > p.memsz || p.vaddr + p.memsz < p.vaddr) {
                return fail(parse_error(what, "PT_LOAD at vaddr " + hex(p.vaddr) + " has filesz " +
                                                  hex(p.filesz) + " > memsz " + hex(p.memsz) +
                                                  " or wraps around"));
            }
            out->m_segments.push_back({p.offset, p.vaddr, p.filesz, p.memsz, p.flags});
        }
    }

    // Section names: lenient (a bad .shstrtab only loses the names).
    StringTable shstr;
    if (h.shstrndx < shdrs.size() && shdrs[h.shstrndx].type != SHT_NOBITS &&
        img.contains(shdrs[h.shstrndx].offset, shdrs[h.shstrndx].size)) {
        shstr = {shdrs[h.shstrndx].offset, shdrs[h.shstrndx].size};
    }

    std::vector<RawEntry> raw;
    std::string& names = out->m_names;
    const auto add_name = [&names](std::string_view s) {
        const std::size_t off = names.size();
        names.append(s);
        names.push_back('\0');
        return off;
    };

    // SHF_ALLOC sections, kept with their ELF index so symbols can refer to them.
    struct RawSection {
        std::uint32_t elf_index;
        std::size_t name_offset, name_size;
        std::uint64_t address, size;
        bool code;
    };
    std::vector<RawSection> raw_sections;
    for (std::size_t i = 1; i < shdrs.size(); ++i) {
        const SectionHeader& s = shdrs[i];
        if ((s.flags & SHF_ALLOC) == 0 || s.size == 0 || s.addr + s.size < s.addr) {
            continue;
        }
        const std::string_view name = shstr.at(img, s.name).value_or("");
        raw_sections.push_back({static_cast<std::uint32_t>(i), add_name(name), name.size(), s.addr, s.size,
                                (s.flags & SHF_EXECINSTR) != 0});
    }
    std::stable_sort(raw_sections.begin(), raw_sections.end(),
                     [](const RawSection& a, const RawSection& b) { return a.address < b.address; });
    std::vector<std::uint32_t> section_map(shdrs.size(), ElfSymbols::NO_SECTION);  // ELF index -> ours
    for (std::size_t i = 0; i < raw_sections.size(); ++i) {
        section_map[raw_sections[i].elf_index] = static_cast<std::uint32_t>(i);
    }

    // .symtab when present (it includes what .dynsym has), else .dynsym.
    std::size_t table = shdrs.size();
    for (std::size_t i = 1; i < shdrs.size(); ++i) {
        if (shdrs[i].type == SHT_SYMTAB) {
            table = i;
            out->m_has_symtab = true;
            break;
        }
    }
    if (table == shdrs.size()) {
        for (std::size_t i = 1; i < shdrs.size(); ++i) {
            if (shdrs[i].type == SHT_DYNSYM) {
                table = i;
                break;
            }
        }
    }
    if (table != shdrs.size()) {
        const SectionHeader& st = shdrs[table];
        const char* kind = st.type == SHT_SYMTAB ? ".symtab" : ".dynsym";
        if (st.entsize < SYM_SIZE) {
            return fail(parse_error(what, std::string(kind) + " has sh_entsize " +
                                              std::to_string(st.entsize) + " (a symbol is 24 bytes)"));
        }
        if (!img.contains(st.offset, st.size)) {
            return fail(parse_error(what, std::string(kind) + " (offset " + hex(st.offset) + ", size " +
                                              hex(st.size) + ") extends past the end of the file (" +
                                              std::to_string(img.size()) + " bytes)"));
        }
        if (st.link == 0 || st.link >= shdrs.size() || shdrs[st.link].type == SHT_NOBITS ||
            !img.contains(shdrs[st.link].offset, shdrs[st.link].size)) {
            return fail(parse_error(what, std::string(kind) + "'s string table (section " +
                                              std::to_string(st.link) +
                                              ") is missing or past the end of the file"));
        }
        const StringTable strtab{shdrs[st.link].offset, shdrs[st.link].size};
        const std::uint64_t count = st.size / st.entsize;

        // Optional side tables, used only when they are consistent.
        std::uint64_t versym_off = 0;
        bool have_versym = false;
        std::uint64_t shndx_off = 0;
        bool have_shndx = false;
        for (std::size_t i = 1; i < shdrs.size(); ++i) {
            const SectionHeader& s = shdrs[i];
            if (s.link != table) {
                continue;
            }
            if (s.type == SHT_GNU_VERSYM && st.type == SHT_DYNSYM && count <= s.size / 2 &&
                img.contains(s.offset, count * 2)) {
                versym_off = s.offset;
                have_versym = true;
            } else if (s.type == SHT_SYMTAB_SHNDX && count <= s.size / 4 &&
                       img.contains(s.offset, count * 4)) {
                shndx_off = s.offset;
                have_shndx = true;
            }
        }

        raw.reserve(static_cast<std::size_t>(count));
        for (std::uint64_t i = 1; i < count; ++i) {  // entry 0 is the null symbol
            const std::uint64_t o = st.offset + i * st.entsize;
            const std::uint32_t name_index = img.u32(o);
            const auto info = static_cast<std::uint8_t>(img.field<1>(o + 4));
            std::uint32_t shndx = img.u16(o + 6);
            const std::uint64_t value = img.u64(o + 8);
            const std::uint64_t size = img.u64(o + 16);
            const auto type = static_cast<std::uint8_t>(info & 0xf);
            const auto bind = static_cast<std::uint8_t>(info >> 4);
            if (type != STT_NOTYPE && type != STT_OBJECT && type != STT_FUNC && type != STT_GNU_IFUNC) {
                continue;  // section, file, TLS (not an address), common
            }
            if (shndx == SHN_XINDEX) {
                shndx = have_shndx ? img.u32(shndx_off + i * 4) : SHN_UNDEF;
            } else if (shndx == SHN_UNDEF || shndx >= SHN_LORESERVE) {
                continue;  // undefined, absolute (not relocated), common
            }
            if (shndx == SHN_UNDEF || name_index == 0) {
                continue;
            }
            const auto name = strtab.at(img, name_index);
            if (!name) {
                return fail(parse_error(what, std::string(kind) + " symbol " + std::to_string(i) +
                                                  ": name index " + std::to_string(name_index) +
                                                  " is outside its string table (" +
                                                  std::to_string(strtab.size) + " bytes) or unterminated"));
            }
            // Skip ARM/AArch64 mapping symbols ($x, $d, $t, $a, "$x.N"): not names of anything.
            if (name->empty() || ((*name)[0] == '$' && name->size() >= 2 &&
                                  std::string_view("xdta").find((*name)[1]) != std::string_view::npos &&
                                  (name->size() == 2 || (*name)[2] == '.'))) {
                continue;
            }
            // A versioned name in .symtab ("pthread_mutex_lock@@GLIBC_2.2.5", or with one
            // '@' for a non-default version) goes under its version-less name, as in
            // gdb (and as .dynsym, whose versions are in .gnu.version, has it).
            std::string_view plain = *name;
            bool hidden = have_versym && (img.u16(versym_off + i * 2) & VERSYM_HIDDEN) != 0;
            if (const auto at = plain.find('@');
                at != std::string_view::npos && at > 0 && plain.substr(at) != "@plt") {
                hidden = plain.substr(at, 2) != "@@";
                plain = plain.substr(0, at);
            }
            RawEntry r;
            r.entry.value = value;
            r.entry.size = size;
            r.entry.section = shndx < section_map.size() ? section_map[shndx] : ElfSymbols::NO_SECTION;
            r.entry.binding = bind;
            r.entry.is_function = type == STT_FUNC || type == STT_GNU_IFUNC;
            r.entry.is_ifunc = type == STT_GNU_IFUNC;
            r.entry.hidden_version = hidden;
            r.name_size = plain.size();
            r.name_offset = add_name(plain);
            raw.push_back(r);
        }
    }

    add_plt_symbols(img, shdrs, shstr, section_map, raw, add_name);

    // The arena is complete: views into it are stable from here on.
    const char* base = names.data();
    for (const RawSection& s : raw_sections) {
        out->m_sections.push_back(
            {std::string_view(base + s.name_offset, s.name_size), s.address, s.size, s.code});
    }
    out->m_symbols.reserve(raw.size());
    for (RawEntry& r : raw) {
        r.entry.name = std::string_view(base + r.name_offset, r.name_size);
        out->m_symbols.push_back(r.entry);
    }
    auto& syms = out->m_symbols;
    std::sort(syms.begin(), syms.end(), [](const ElfSymbols::Entry& a, const ElfSymbols::Entry& b) {
        if (a.value != b.value) {
            return a.value < b.value;
        }
        if (a.name != b.name) {
            return a.name < b.name;
        }
        if (a.section != b.section) {
            return a.section < b.section;
        }
        return a.hidden_version < b.hidden_version;  // so that unique() keeps the default version
    });
    // gdb compacts identical minimal symbols (same address, name, section): so do we.
    syms.erase(std::unique(syms.begin(), syms.end(),
                           [](const ElfSymbols::Entry& a, const ElfSymbols::Entry& b) {
                               return a.value == b.value && a.name == b.name && a.section == b.section;
                           }),
               syms.end());
    // The by-name index is built on the first `find` (backtraces only resolve addresses: libc's
    // debug file has ~10,000 symbols, and sorting them by name was most of xstack's run).
    return std::shared_ptr<const ElfSymbols>(std::move(out));
}

Result<std::shared_ptr<const ElfSymbols>> ElfSymbols::parse(std::span<const std::byte> image,
                                                            std::string_view what) {
    return ElfParser::parse(image, what);
}

Result<detail::MappedFile> detail::MappedFile::map(int fd, std::string_view what) {
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        const int err = errno;
        return fail(Error::from_errno(err, "fstat(" + std::string(what) + ")"));
    }
    if (!S_ISREG(st.st_mode)) {
        return fail(parse_error(what, "not a regular file"));
    }
    MappedFile f;
    f.m_stat = st;
    if (st.st_size == 0) {
        return f;
    }
    void* p = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        const int err = errno;
        return fail(Error::from_errno(err, "mmap(" + std::string(what) + ")"));
    }
    f.m_data = p;
    f.m_size = static_cast<std::size_t>(st.st_size);
    return f;
}

detail::MappedFile::~MappedFile() {
    if (m_data != nullptr) {
        munmap(m_data, m_size);
    }
}

Result<std::shared_ptr<const ElfSymbols>> ElfSymbols::parse_fd(int fd, std::string_view what) {
    auto file = detail::MappedFile::map(fd, what);
    if (!file) {
        return fail(std::move(file.error()));
    }
    return parse(file->bytes(), what);
}

Result<std::shared_ptr<const ElfSymbols>> ElfSymbols::open(const char* path) {
    auto fd = open_fd(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);  // a FIFO must not block
    if (!fd) {
        return fail(std::move(fd.error()));
    }
    return parse_fd(fd->get(), path);
}

std::string detail::elf_build_id(std::span<const std::byte> bytes) {
    auto header = read_header(bytes, "");
    if (!header) {
        return {};
    }
    const Image img(bytes, header->big);
    return find_build_id(img, read_program_headers(img, *header), read_section_headers(img, *header));
}

std::span<const std::uint32_t> ElfSymbols::find(std::string_view name) const noexcept {
    std::call_once(m_by_name_once, [this] {
        m_by_name.resize(m_symbols.size());
        for (std::size_t i = 0; i < m_symbols.size(); ++i) {
            m_by_name[i] = static_cast<std::uint32_t>(i);
        }
        std::stable_sort(m_by_name.begin(), m_by_name.end(), [this](std::uint32_t a, std::uint32_t b) {
            return m_symbols[a].name < m_symbols[b].name;
        });
    });
    const auto [lo, hi] =
        std::equal_range(m_by_name.begin(), m_by_name.end(), name, [this](const auto& a, const auto& b) {
            constexpr bool a_is_index = std::is_same_v<std::decay_t<decltype(a)>, std::uint32_t>;
            if constexpr (a_is_index) {
                return m_symbols[a].name < b;
            } else {
                return a < m_symbols[b].name;
            }
        });
    return {lo, hi};
}

std::uint32_t ElfSymbols::section_of(std::uint64_t vaddr) const noexcept {
    auto it = std::upper_bound(m_sections.begin(), m_sections.end(), vaddr,
                               [](std::uint64_t v, const Section& s) { return v < s.address; });
    // Sections do not overlap in a sane file; look back a little in case they do.
    for (int steps = 0; it != m_sections.begin() && steps < 4; ++steps) {
        --it;
        if (vaddr - it->address < it->size) {
            return static_cast<std::uint32_t>(it - m_sections.begin());
        }
    }
    return NO_SECTION;
}

std::optional<std::uint64_t> ElfSymbols::bias_for(std::uint64_t start, std::uint64_t offset) const noexcept {
    const std::uint64_t page_mask = ~(page_size() - 1);
    const Segment* best = nullptr;
    for (const Segment& s : m_segments) {
        const std::uint64_t first = s.offset & page_mask;
        // The mapping of this segment starts at the page holding p_offset and covers p_filesz.
        if (offset < first || offset >= s.offset + std::max<std::uint64_t>(s.filesz, 1)) {
            continue;
        }
        if (best == nullptr || (first == offset && (best->offset & page_mask) != offset)) {
            best = &s;
        }
    }
    if (best == nullptr) {
        return std::nullopt;
    }
    // The file offset `offset` holds link-time address p_vaddr - (p_offset - offset).
    const std::uint64_t vaddr = best->vaddr - best->offset + offset;
    return start - vaddr;
}

std::uint64_t ElfSymbols::load_end() const noexcept {
    std::uint64_t end = 0;
    for (const Segment& s : m_segments) {
        end = std::max(end, s.vaddr + s.memsz);
    }
    return end;
}

std::uint64_t detail::elf_parse_count() noexcept {
    return g_parse_count.load(std::memory_order_relaxed);  // a statistic: no ordering needed
}

}  // namespace xproc
