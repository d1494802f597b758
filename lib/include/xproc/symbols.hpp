// SPDX-License-Identifier: MIT
#pragma once
/// @file symbols.hpp
/// Address ↔ symbol for every ELF module mapped in a process (main executable,
/// shared libraries, the vdso), with each module's load bias.
///
/// Symbols come from `.symtab` when the file has one, else from the `.symtab` of
/// its separate debug file (found by build-id, as gdb does) when installed, else
/// from `.dynsym`. Files
/// are opened through `/proc/PID/map_files/START-END` (the very file that is
/// mapped, even when deleted or in another mount namespace; needs CAP_SYS_ADMIN)
/// or else `/proc/PID/root/PATH` (the target's own root, so containers resolve);
/// the vdso is read from the target's memory. ELF files are parsed by xproc's own
/// bounds-checked reader: a truncated or hostile file is an error, never a crash.
///
/// Parsed modules are cached process-wide (thread safe), keyed by the file's
/// identity (device, inode, size, mtime) and by its GNU build-id, so a second
/// `SymbolTable::load` of a process with the same libraries parses nothing.
/// After loading, `resolve` and `lookup` are binary searches with no I/O.
///
/// Usage:
/// @code
///   auto table = xproc::SymbolTable::load(pid);
///   if (auto r = table->resolve(pc)) { print(r->symbol, r->offset, r->module); }
///   std::optional<std::uint64_t> a = table->lookup("malloc");
/// @endcode

#include <sys/types.h>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xproc/error.hpp"

namespace xproc {

class Process;
class ElfSymbols;

/// How `SymbolTable::load` opens module files.
struct SymbolLoadOptions {
    /// Try /proc/PID/map_files/START-END first (the mapped file itself: works for
    /// deleted files; needs CAP_SYS_ADMIN). When false or refused, open
    /// /proc/PID/root/PATH (the target's root: right for other mount namespaces),
    /// checking that its inode is the mapped one.
    bool allow_map_files = true;
    /// For a module without .symtab, use the separate debug file that has its build-id,
    /// DEBUG_DIRECTORY/.build-id/XX/YYYY.debug, as gdb does (Debian's -dbg packages, or
    /// debuginfod's downloads placed there). Looked up on this machine, like gdb.
    bool use_debug_files = true;
    std::string debug_directory = "/usr/lib/debug";
};

/// One symbol at its runtime address (link-time value + the module's load bias).
/// `name` stays valid as long as the SymbolTable that returned it.
struct Symbol {
    std::string_view name;
    std::uint64_t address = 0;  ///< runtime address
    std::uint64_t size = 0;     ///< st_size (0 for labels such as _end)
    bool is_function = false;   ///< STT_FUNC or STT_GNU_IFUNC
};

/// What `SymbolTable::resolve` found for an address: `symbol + offset`.
/// The views stay valid as long as the SymbolTable that returned it.
struct ResolvedAddress {
    std::string_view symbol;
    std::uint64_t offset = 0;  ///< address - symbol's runtime address
    std::string_view module;   ///< path of the module (as in maps, without " (deleted)"), "[vdso]"
    /// True when the symbol's [address, address + size) covers the address; false
    /// when it is the nearest preceding symbol (a zero-sized label, or a sized
    /// symbol the address lies past).
    bool exact_size_match = false;
    std::string_view section;          ///< ELF section containing the address (".text", ".bss"), "" if none
    std::uint64_t symbol_address = 0;  ///< runtime address of the symbol
    std::uint64_t symbol_size = 0;
    bool is_function = false;
    bool main_executable = false;  ///< the module is the process's executable
};

/// The symbols of all ELF modules mapped in one process at the time of `load`.
///
/// Immutable after `load`: every const member is thread safe. Movable and copyable;
/// the views it hands out (names, module paths) stay valid while this table, or the
/// table it was moved into, lives.
class SymbolTable {
  public:
    /// One ELF module mapped in the process.
    struct Module {
        std::string path;  ///< as in maps, without " (deleted)"; "[vdso]" for the vdso
        /// Runtime range: from its first mapping to the end of its last PT_LOAD in memory
        /// (so the anonymous mapping holding .bss is part of it).
        std::uint64_t start = 0;
        std::uint64_t end = 0;
        std::uint64_t load_bias = 0;  ///< runtime address - link-time address (0 for non-PIE executables)
        std::string build_id;         ///< NT_GNU_BUILD_ID as lowercase hex, "" when absent
        bool has_symtab = false;  ///< symbols came from a .symtab, its own or its debug file's (else .dynsym)
        // Additions beyond the issue-4 API:
        bool main_executable = false;  ///< the file /proc/PID/exe refers to
        bool vdso = false;             ///< the kernel's vdso, read from the target's memory
        bool deleted = false;          ///< maps said " (deleted)"
        std::size_t symbol_count = 0;  ///< symbols usable for resolve/lookup
        /// Why the module's symbols could not be loaded ("" when they were); such a module
        /// is listed with its range but resolves nothing.
        std::string problem;
        /// How the file was opened: "map_files", "root", "memory" (vdso), "" when it failed.
        std::string opened_via;
        /// The separate debug file whose .symtab supplied the symbols, "" when none was used.
        std::string debug_file;
    };

    /// Reads /proc/PID/maps and loads every ELF module's symbols (through the cache).
    /// Errors: the process cannot be pinned or its maps read (no_such_process,
    /// permission, ...). A module whose file cannot be opened or parsed is not an
    /// error: it is listed with `Module::problem` set.
    static Result<SymbolTable> load(pid_t pid, const SymbolLoadOptions& options = {});
    /// Same, for a pinned process.
    static Result<SymbolTable> load(const Process& proc, const SymbolLoadOptions& options = {});

    /// Address → `symbol + offset`, choosing like gdb's minimal symbols: within the
    /// module and section containing the address, the last symbol at or before it
    /// (at one address, names in strcmp order, the last wins), skipping zero-sized
    /// ones while a sized one precedes; a sized symbol covering the address wins,
    /// else the nearest preceding zero-sized label, else the nearest preceding sized
    /// symbol (`exact_size_match` false). nullopt when no module or symbol applies.
    std::optional<ResolvedAddress> resolve(std::uint64_t address) const;

    /// Name → runtime address, like gdb's minimal-symbol lookup: a global (or weak)
    /// symbol is preferred to a local one; within that, the main executable first,
    /// then the other modules in the dynamic linker's load order (its link_map list,
    /// read from the target's memory, which is gdb's order), or in map order for the
    /// modules not in that list (all of them in a static executable). Within one
    /// module, the default version of a versioned symbol comes before hidden ones.
    /// nullopt when no module has it.
    std::optional<std::uint64_t> lookup(std::string_view name) const;
    /// Every symbol called `name`, in the order `lookup` prefers them.
    std::vector<Symbol> lookup_all(std::string_view name) const;

    /// The modules, in map order.
    const std::vector<Module>& modules() const noexcept { return m_modules; }
    /// The module whose range contains `address`, or nullptr.
    const Module* module_of(std::uint64_t address) const noexcept;

    pid_t pid() const noexcept { return m_pid; }

  private:
    SymbolTable() = default;
    /// Calls visit(Symbol) for each symbol called `name` in lookup order, until it returns false.
    template <typename F>
    void for_each_named(std::string_view name, F&& visit) const;
    pid_t m_pid = 0;
    std::vector<Module> m_modules;
    std::vector<std::shared_ptr<const ElfSymbols>> m_elves;  // parallel to m_modules; null if not loaded
    std::vector<std::shared_ptr<const ElfSymbols>> m_debug;  // parallel: separate debug file, or null
    std::vector<std::size_t> m_lookup_order;  // module indices: main executable, then gdb's objfile order
};

/// The symbols of one ELF64 file (either byte order), at link-time addresses.
/// Immutable and shareable; built by a bounds-checked parser that treats the
/// input as hostile: every offset, size, count and index is checked.
class ElfSymbols {
  public:
    /// A symbol as the file defines it.
    struct Entry {
        std::string_view name;
        std::uint64_t value = 0;  ///< st_value (link-time address)
        std::uint64_t size = 0;
        std::uint32_t section = 0;  ///< index into sections(), or NO_SECTION
        std::uint8_t binding = 0;   ///< STB_LOCAL 0, STB_GLOBAL 1, STB_WEAK 2, STB_GNU_UNIQUE 10
        bool is_function = false;
        bool is_ifunc = false;  ///< STT_GNU_IFUNC
        /// A non-default version: hidden in .gnu.version (.dynsym), or "name@VER" rather
        /// than "name@@VER" in .symtab. Names are stored without the "@VER" part.
        bool hidden_version = false;
    };
    static constexpr std::uint32_t NO_SECTION = 0xffffffffu;
    /// An SHF_ALLOC section.
    struct Section {
        std::string_view name;
        std::uint64_t address = 0, size = 0;
        bool code = false;  ///< SHF_EXECINSTR
    };
    /// A PT_LOAD program header.
    struct Segment {
        std::uint64_t offset = 0, vaddr = 0, filesz = 0, memsz = 0;
        std::uint32_t flags = 0;
    };

    /// Parses an ELF image held in memory. `what` names it in errors. Errors:
    /// `parse` (not ELF, truncated, an offset/size/index out of bounds),
    /// `not_supported` (ELFCLASS32).
    static Result<std::shared_ptr<const ElfSymbols>> parse(std::span<const std::byte> image,
                                                           std::string_view what);
    /// Maps the file open at `fd` read-only and parses it.
    static Result<std::shared_ptr<const ElfSymbols>> parse_fd(int fd, std::string_view what);
    /// Opens and parses a file.
    static Result<std::shared_ptr<const ElfSymbols>> open(const char* path);

    /// Defined, named FUNC/OBJECT/NOTYPE/IFUNC symbols of .symtab, else .dynsym (no
    /// section, file, TLS or absolute symbols; "@VER" removed from names), plus on
    /// x86-64 gdb's synthetic "NAME@plt" / "NAME@got.plt"; sorted by (value, name).
    const std::vector<Entry>& symbols() const noexcept { return m_symbols; }
    const std::vector<Section>& sections() const noexcept { return m_sections; }
    const std::vector<Segment>& segments() const noexcept { return m_segments; }
    const std::string& build_id() const noexcept { return m_build_id; }
    bool has_symtab() const noexcept { return m_has_symtab; }
    std::uint16_t type() const noexcept { return m_type; }  ///< ET_EXEC 2, ET_DYN 3

    /// Indices into symbols() of the entries called `name` (binary search).
    std::span<const std::uint32_t> find(std::string_view name) const noexcept;
    /// Index of the SHF_ALLOC section containing link-time `vaddr`, or NO_SECTION.
    std::uint32_t section_of(std::uint64_t vaddr) const noexcept;
    /// Load bias of a mapping that starts at `start` and maps file offset `offset`:
    /// start - (vaddr of that file offset in the PT_LOAD that contains it).
    std::optional<std::uint64_t> bias_for(std::uint64_t start, std::uint64_t offset) const noexcept;
    /// One past the highest link-time address of any PT_LOAD (p_vaddr + p_memsz).
    std::uint64_t load_end() const noexcept;
    /// PT_DYNAMIC's link-time address and size in memory, {0, 0} when there is none.
    std::pair<std::uint64_t, std::uint64_t> dynamic() const noexcept {
        return {m_dynamic_vaddr, m_dynamic_size};
    }

  private:
    friend struct ElfParser;
    ElfSymbols() = default;
    std::string m_names;  // every symbol/section name, NUL-separated; Entry names point here
    std::vector<Entry> m_symbols;
    // Indices into m_symbols sorted by name, built by the first find() (thread safe).
    mutable std::vector<std::uint32_t> m_by_name;
    mutable std::once_flag m_by_name_once;
    std::vector<Section> m_sections;  // sorted by address
    std::vector<Segment> m_segments;
    std::string m_build_id;
    std::uint64_t m_dynamic_vaddr = 0, m_dynamic_size = 0;
    bool m_has_symtab = false;
    std::uint16_t m_type = 0;
};

/// The name gdb displays for minimal symbol `name` (in `info symbol`, `<sym+off>`
/// labels). gdb runs ELF names through its Ada decoder, which rewrites names that are
/// all lowercase and do not start with '_': GCC clone suffixes ("f.isra.0" → "f.isra",
/// "f.part.0.cold" → "f.part[cold]"), "__" → "." ("a__b" → "a.b"). This reproduces
/// those rules (checked against gdb 13); other names come back unchanged. resolve()
/// and lookup() use the real ELF names.
std::string gdb_display_name(std::string_view name);

namespace detail {
/// How many ELF symbol tables this process has parsed (ElfSymbols::parse calls that
/// succeeded or failed). For tests: a cached second load leaves it unchanged.
std::uint64_t elf_parse_count() noexcept;
/// Empties the process-wide module cache (tests).
void clear_symbol_cache() noexcept;
}  // namespace detail

}  // namespace xproc
