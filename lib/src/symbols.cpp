// SPDX-License-Identifier: MIT
#include "xproc/symbols.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "elf_reader.hpp"
#include "xproc/fd.hpp"
#include "xproc/maps.hpp"
#include "xproc/process.hpp"

// Modules are found in /proc/PID/maps: a run of consecutive mappings of one file
// (same device, inode and name) with at least one executable mapping is one
// module, plus the [vdso]. Its load bias comes from its lowest mapping: the
// PT_LOAD holding that mapping's file offset says which link-time address the
// mapping's start corresponds to. Its range extends to the end of its last PT_LOAD
// in memory, so the anonymous mapping holding .bss belongs to it.

namespace xproc {

namespace {

// ---------------------------------------------------------------------------
// Process-wide cache of parsed modules.

/// Identity of an opened file: the same key means the same bytes (unless the file
/// was rewritten in place within one mtime tick, which linkers and package
/// managers do not do: they write a new file and rename it).
struct FileKey {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    std::int64_t mtime_sec = 0;
    std::int64_t mtime_nsec = 0;
    auto operator<=>(const FileKey&) const = default;
};

/// Bound on entries per map: a tool that symbolizes many processes over a long
/// time must not grow without limit. Past it the map is emptied (tables still in
/// use stay alive through their SymbolTables' shared_ptrs).
constexpr std::size_t CACHE_LIMIT = 1024;

class ModuleCache {
  public:
    std::shared_ptr<const ElfSymbols> by_file(const FileKey& key) {
        const std::lock_guard lock(m_mutex);
        const auto it = m_by_file.find(key);
        return it == m_by_file.end() ? nullptr : it->second;
    }
    std::shared_ptr<const ElfSymbols> by_build_id(const std::string& key) {
        const std::lock_guard lock(m_mutex);
        const auto it = m_by_build_id.find(key);
        return it == m_by_build_id.end() ? nullptr : it->second;
    }
    /// Records `elf` under the given keys; returns the table to use (an equal one
    /// another thread stored first, so both share it).
    std::shared_ptr<const ElfSymbols> insert(const FileKey* file, const std::string& build_key,
                                             std::shared_ptr<const ElfSymbols> elf) {
        const std::lock_guard lock(m_mutex);
        if (m_by_file.size() >= CACHE_LIMIT) {
            m_by_file.clear();
        }
        if (m_by_build_id.size() >= CACHE_LIMIT) {
            m_by_build_id.clear();
        }
        if (!build_key.empty()) {
            elf = m_by_build_id.emplace(build_key, elf).first->second;
        }
        if (file != nullptr) {
            m_by_file.insert_or_assign(*file, elf);
        }
        return elf;
    }
    void clear() {
        const std::lock_guard lock(m_mutex);
        m_by_file.clear();
        m_by_build_id.clear();
    }

  private:
    std::mutex m_mutex;
    std::map<FileKey, std::shared_ptr<const ElfSymbols>> m_by_file;
    std::map<std::string, std::shared_ptr<const ElfSymbols>> m_by_build_id;
};

ModuleCache& cache() {
    static ModuleCache instance;
    return instance;
}

/// Build-id cache key: the id alone is not enough, since a stripped copy keeps the
/// id of the file it was stripped from but has fewer symbols.
std::string build_key(const std::string& build_id, std::uint64_t size) {
    return build_id.empty() ? std::string() : build_id + "/" + std::to_string(size);
}

std::uint64_t page_round_up(std::uint64_t v) {
    const long p = sysconf(_SC_PAGESIZE);
    const std::uint64_t page = p > 0 ? static_cast<std::uint64_t>(p) : 4096u;
    return (v + page - 1) & ~(page - 1);
}

// ---------------------------------------------------------------------------
// Loading one module.

/// O_NONBLOCK: a FIFO put where a library was must not block the open.
constexpr int OPEN_FLAGS = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;

/// Opens `path` (absolute, in the target's mount namespace) under the target's root
/// /proc/PID/root. openat2's RESOLVE_IN_ROOT keeps every symlink and ".." inside that
/// root: a plain openat would follow an absolute symlink in the container to the
/// file of that name on the host. Falls back to openat on kernels before 5.6.
Result<UniqueFd> open_in_root(const Process& proc, const std::string& path) {
    auto root = open_fd_at(proc.proc_dir(), "root", O_PATH | O_DIRECTORY, proc.pid());
    if (!root) {
        return fail(std::move(root.error()));
    }
    open_how how{};
    how.flags = static_cast<std::uint64_t>(OPEN_FLAGS);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    const long fd = detail::retry_eintr(
        [&] { return syscall(SYS_openat2, root->get(), path.c_str(), &how, sizeof how); });
    if (fd >= 0) {
        return UniqueFd(static_cast<int>(fd));
    }
    const int err = errno;
    if (err != ENOSYS) {
        return fail(Error::from_errno(
            err, "openat2(/proc/" + std::to_string(proc.pid()) + "/root" + path + ")", proc.pid()));
    }
    return open_fd_at(root->get(), path.c_str() + (path.starts_with('/') ? 1 : 0), OPEN_FLAGS, proc.pid());
}

/// The symbols of the file behind a mapping, opened through the target's
/// map_files (the mapped file itself) or else through its root directory.
Result<std::shared_ptr<const ElfSymbols>> load_file_module(const Process& proc, const Mapping& first,
                                                           SymbolTable::Module& module,
                                                           const SymbolLoadOptions& options) {
    char entry[64];
    std::snprintf(entry, sizeof entry, "map_files/%llx-%llx", static_cast<unsigned long long>(first.start),
                  static_cast<unsigned long long>(first.end));
    auto fd = options.allow_map_files
                  ? open_fd_at(proc.proc_dir(), entry, OPEN_FLAGS, proc.pid())
                  : Result<UniqueFd>(fail(Error::make(ErrorKind::invalid_argument, "open map_files",
                                                      "not allowed by the caller")));
    std::string what;
    if (fd) {
        module.opened_via = "map_files";
        what = "/proc/" + std::to_string(proc.pid()) + "/" + entry + " (" + module.path + ")";
    } else {
        if (module.deleted) {
            // The name no longer leads to the mapped file: only map_files can open it.
            Error e = std::move(fd.error());
            e.detail = "the file was deleted and map_files could not open it" +
                       (e.detail.empty() ? std::string() : ": " + e.detail);
            e.hint = "opening /proc/PID/map_files/ needs CAP_SYS_ADMIN";
            return fail(std::move(e));
        }
        fd = open_in_root(proc, module.path);
        if (!fd) {
            return fail(std::move(fd.error()));
        }
        module.opened_via = "root";
        what = "/proc/" + std::to_string(proc.pid()) + "/root" + module.path;
    }
    struct stat st {};
    if (fstat(fd->get(), &st) != 0) {
        const int err = errno;
        return fail(Error::from_errno(err, "fstat(" + what + ")", proc.pid()));
    }
    // Through the root path, the name may now denote another file (a library
    // upgraded since the process mapped it): its symbols would be wrong.
    if (st.st_ino != first.inode) {
        return fail(Error::make(ErrorKind::invalid_argument, "open " + what,
                                "the file is inode " + std::to_string(st.st_ino) +
                                    ", the mapped one was inode " + std::to_string(first.inode) +
                                    " (replaced since it was mapped)",
                                proc.pid()));
    }
    const FileKey key{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
    if (auto hit = cache().by_file(key)) {
        return hit;
    }
    auto file = detail::MappedFile::map(fd->get(), what);
    if (!file) {
        return fail(std::move(file.error()));
    }
    const std::string bkey = build_key(detail::elf_build_id(file->bytes()), file->bytes().size());
    if (!bkey.empty()) {
        if (auto hit = cache().by_build_id(bkey)) {
            return cache().insert(&key, bkey, std::move(hit));
        }
    }
    auto elf = ElfSymbols::parse(file->bytes(), what);
    if (!elf) {
        return fail(std::move(elf.error()));
    }
    return cache().insert(&key, bkey, std::move(*elf));
}

/// The separate debug file for `build_id` (DIR/.build-id/XX/REST.debug) when it
/// exists, has a .symtab and carries the same build-id; nullptr otherwise.
std::shared_ptr<const ElfSymbols> load_debug_file(const std::string& build_id, const std::string& directory,
                                                  std::string& path) {
    if (build_id.size() < 4 || directory.empty()) {
        return nullptr;
    }
    path = directory + "/.build-id/" + build_id.substr(0, 2) + "/" + build_id.substr(2) + ".debug";
    auto fd = open_fd(path.c_str(), OPEN_FLAGS);
    if (!fd) {
        return nullptr;  // no debug file: the common case, not a problem
    }
    struct stat st {};
    if (fstat(fd->get(), &st) != 0) {
        return nullptr;
    }
    const FileKey key{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
    std::shared_ptr<const ElfSymbols> elf = cache().by_file(key);
    if (elf == nullptr) {
        auto parsed = ElfSymbols::parse_fd(fd->get(), path);
        if (!parsed) {
            return nullptr;
        }
        elf = cache().insert(&key, "", std::move(*parsed));
    }
    if (elf->build_id() != build_id || !elf->has_symtab()) {
        return nullptr;
    }
    return elf;
}

/// Reads `size` bytes of the target at `address`: process_vm_readv, else /proc/PID/mem.
Result<std::vector<std::byte>> read_remote(const Process& proc, std::uint64_t address, std::size_t size) {
    std::vector<std::byte> buf(size);
    iovec local{buf.data(), size};
    iovec remote{reinterpret_cast<void*>(address), size};
    const ssize_t n = process_vm_readv(proc.pid(), &local, 1, &remote, 1, 0);
    if (n == static_cast<ssize_t>(size)) {
        return buf;
    }
    const int vm_err = n < 0 ? errno : EIO;
    auto mem = open_fd_at(proc.proc_dir(), "mem", O_RDONLY, proc.pid());
    if (mem) {
        const ssize_t m = detail::retry_eintr(
            [&] { return pread(mem->get(), buf.data(), size, static_cast<off_t>(address)); });
        if (m == static_cast<ssize_t>(size)) {
            return buf;
        }
    }
    return fail(Error::from_errno(vm_err, "process_vm_readv", proc.pid()).with_address(address));
}

/// The modules in the order of the dynamic linker's link_map list (what gdb's
/// solib list follows), as indices into `modules`. Found through the executable's
/// DT_DEBUG entry → r_debug → link_map chain, all read from the target's memory and
/// treated as untrusted (bounded walk; an unreadable or odd list just ends it).
/// Empty when there is no list (static executable, not yet initialised).
std::vector<std::size_t> link_map_order(const Process& proc, const std::vector<SymbolTable::Module>& modules,
                                        const SymbolTable::Module& exe, const ElfSymbols& exe_elf) {
    std::vector<std::size_t> order;
    const auto [dyn_vaddr, dyn_size] = exe_elf.dynamic();
    if (dyn_size < 16 || dyn_size > (1u << 16)) {
        return order;
    }
    auto dyn = read_remote(proc, exe.load_bias + dyn_vaddr, static_cast<std::size_t>(dyn_size));
    if (!dyn) {
        return order;
    }
    constexpr std::int64_t DT_NULL = 0;
    constexpr std::int64_t DT_DEBUG = 21;
    std::uint64_t r_debug = 0;
    for (std::size_t off = 0; off + 16 <= dyn->size(); off += 16) {
        std::int64_t tag = 0;
        std::uint64_t val = 0;
        std::memcpy(&tag, dyn->data() + off, 8);  // the target runs on this machine: host byte order
        std::memcpy(&val, dyn->data() + off + 8, 8);
        if (tag == DT_NULL) {
            break;
        }
        if (tag == DT_DEBUG) {
            r_debug = val;
            break;
        }
    }
    if (r_debug == 0) {
        return order;
    }
    // struct r_debug { int r_version; struct link_map* r_map; ... }
    auto head = read_remote(proc, r_debug + 8, 8);
    if (!head) {
        return order;
    }
    std::uint64_t node = 0;
    std::memcpy(&node, head->data(), 8);
    // struct link_map { ElfW(Addr) l_addr; char* l_name; ElfW(Dyn)* l_ld; link_map *l_next, *l_prev; }
    std::vector<bool> seen(modules.size(), false);
    for (int steps = 0; node != 0 && steps < 4096; ++steps) {
        auto entry = read_remote(proc, node, 32);
        if (!entry) {
            break;
        }
        std::uint64_t l_ld = 0;
        std::memcpy(&l_ld, entry->data() + 16, 8);
        std::memcpy(&node, entry->data() + 24, 8);
        // The module is the one whose range holds its dynamic section.
        for (std::size_t i = 0; i < modules.size(); ++i) {
            if (!seen[i] && l_ld >= modules[i].start && l_ld < modules[i].end) {
                seen[i] = true;
                order.push_back(i);
                break;
            }
        }
    }
    return order;
}

/// The vdso's symbols, from the target's memory (the vdso is no file).
Result<std::shared_ptr<const ElfSymbols>> load_vdso_module(const Process& proc, const Mapping& m,
                                                           SymbolTable::Module& module) {
    auto bytes = read_remote(proc, m.start, static_cast<std::size_t>(m.size()));
    if (!bytes) {
        return fail(std::move(bytes.error()));
    }
    module.opened_via = "memory";
    const std::string bkey = build_key(detail::elf_build_id(*bytes), bytes->size());
    if (!bkey.empty()) {
        if (auto hit = cache().by_build_id(bkey)) {
            return hit;
        }
    }
    auto elf = ElfSymbols::parse(*bytes, "[vdso] of pid " + std::to_string(proc.pid()));
    if (!elf) {
        return fail(std::move(elf.error()));
    }
    return cache().insert(nullptr, bkey, std::move(*elf));
}

bool same_file(const Mapping& a, const Mapping& b) {
    return a.inode == b.inode && a.dev_major == b.dev_major && a.dev_minor == b.dev_minor && a.name == b.name;
}

Symbol to_symbol(const ElfSymbols::Entry& e, std::uint64_t bias) {
    return Symbol{e.name, e.value + bias, e.size, e.is_function};
}

}  // namespace

Result<SymbolTable> SymbolTable::load(pid_t pid, const SymbolLoadOptions& options) {
    auto proc = Process::open(pid);
    if (!proc) {
        return fail(std::move(proc.error()));
    }
    return load(*proc, options);
}

Result<SymbolTable> SymbolTable::load(const Process& proc, const SymbolLoadOptions& options) {
    auto maps = read_maps(proc);
    if (!maps) {
        return fail(std::move(maps.error()));
    }
    // Which file is the executable: /proc/PID/exe's inode (also right when the file
    // was deleted or lives in another mount namespace).
    struct stat exe {};
    const bool have_exe = fstatat(proc.proc_dir(), "exe", &exe, 0) == 0;

    SymbolTable table;
    table.m_pid = proc.pid();
    const std::vector<Mapping>& ms = maps->mappings();
    for (std::size_t i = 0; i < ms.size();) {
        const Mapping& first = ms[i];
        std::size_t j = i + 1;
        if (first.kind == MappingKind::file) {
            while (j < ms.size() && ms[j].kind == MappingKind::file && same_file(first, ms[j]) &&
                   ms[j].start >= ms[j - 1].end) {
                ++j;
            }
        } else if (first.kind != MappingKind::vdso) {
            i = j;
            continue;
        }
        const bool executable = std::any_of(ms.begin() + static_cast<std::ptrdiff_t>(i),
                                            ms.begin() + static_cast<std::ptrdiff_t>(j),
                                            [](const Mapping& m) { return m.perms.exec; });
        const Mapping& last = ms[j - 1];
        i = j;
        if (!executable) {
            continue;  // data files, locale archives, ...: not code modules
        }
        Module module;
        module.path = std::string(first.path());
        module.start = first.start;
        module.end = last.end;
        module.deleted = first.deleted;
        module.vdso = first.kind == MappingKind::vdso;
        module.main_executable = !module.vdso && have_exe && exe.st_ino == first.inode &&
                                 major(exe.st_dev) == first.dev_major && minor(exe.st_dev) == first.dev_minor;
        auto elf = module.vdso ? load_vdso_module(proc, first, module)
                               : load_file_module(proc, first, module, options);
        std::shared_ptr<const ElfSymbols> loaded;
        if (!elf) {
            module.problem = elf.error().message();
        } else if (auto bias = (*elf)->bias_for(first.start, first.offset); !bias) {
            module.problem =
                "no PT_LOAD of the file covers the mapped file offset " + std::to_string(first.offset);
        } else {
            loaded = std::move(*elf);
            module.load_bias = *bias;
            module.build_id = loaded->build_id();
            module.has_symtab = loaded->has_symtab();
            module.symbol_count = loaded->symbols().size();
            module.end = std::max(module.end, page_round_up(*bias + loaded->load_end()));
            // The bias comes from the module itself: a debug file's program headers
            // keep the addresses but not the file offsets.
            if (!loaded->has_symtab() && options.use_debug_files && !module.build_id.empty()) {
                std::string debug_path;
                if (auto debug = load_debug_file(module.build_id, options.debug_directory, debug_path)) {
                    module.debug_file = std::move(debug_path);
                    module.has_symtab = true;
                    module.symbol_count += debug->symbols().size();
                    table.m_debug.resize(table.m_modules.size() + 1);
                    table.m_debug.back() = std::move(debug);
                }
            }
        }
        table.m_modules.push_back(std::move(module));
        table.m_elves.push_back(std::move(loaded));
    }
    table.m_debug.resize(table.m_modules.size());
    // Without a readable /proc/PID/exe, take the first file module as gdb's "main".
    if (!have_exe) {
        for (Module& m : table.m_modules) {
            if (!m.vdso) {
                m.main_executable = true;
                break;
            }
        }
    }
    // Lookup order: the executable, then the link_map order, then any module not in
    // that list in map order.
    std::vector<bool> placed(table.m_modules.size(), false);
    const auto place = [&](std::size_t i) {
        if (!placed[i]) {
            placed[i] = true;
            table.m_lookup_order.push_back(i);
        }
    };
    for (std::size_t i = 0; i < table.m_modules.size(); ++i) {
        if (table.m_modules[i].main_executable) {
            place(i);
            if (table.m_elves[i] != nullptr) {
                for (const std::size_t j :
                     link_map_order(proc, table.m_modules, table.m_modules[i], *table.m_elves[i])) {
                    place(j);
                }
            }
        }
    }
    for (std::size_t i = 0; i < table.m_modules.size(); ++i) {
        place(i);
    }
    return table;
}

const SymbolTable::Module* SymbolTable::module_of(std::uint64_t address) const noexcept {
    auto it = std::upper_bound(m_modules.begin(), m_modules.end(), address,
                               [](std::uint64_t a, const Module& m) { return a < m.start; });
    while (it != m_modules.begin()) {
        --it;
        if (address >= it->start && address < it->end) {
            return &*it;
        }
        if (it->end <= address) {
            break;  // modules are in address order: earlier ones end earlier still
        }
    }
    return nullptr;
}

namespace {

/// The symbol one table gives for link-time address `v`.
struct Candidate {
    const ElfSymbols* elf = nullptr;
    const ElfSymbols::Entry* entry = nullptr;
    std::uint32_t section = ElfSymbols::NO_SECTION;
    bool exact = false;
};

/// gdb's lookup_minimal_symbol_by_pc_section on one table: from the last symbol at
/// or before the address (at one address, the last in name order), walk back within
/// the section containing it, remembering the first zero-sized symbol, until a sized
/// one. A sized symbol covering the address wins, else that zero-sized label, else
/// (where gdb gives up) the sized symbol the address lies past.
Candidate best_symbol(const ElfSymbols& elf, std::uint64_t v) {
    const auto& syms = elf.symbols();
    Candidate c;
    c.elf = &elf;
    c.section = elf.section_of(v);
    const std::uint64_t sec_start =
        c.section != ElfSymbols::NO_SECTION ? elf.sections()[c.section].address : 0;
    auto it = std::upper_bound(syms.begin(), syms.end(), v,
                               [](std::uint64_t a, const ElfSymbols::Entry& e) { return a < e.value; });
    // gdb's mst_text: a global (or weak) non-ifunc symbol in a code section.
    const auto is_text = [&elf](const ElfSymbols::Entry& e) {
        return e.binding != 0 && !e.is_ifunc && e.section != ElfSymbols::NO_SECTION &&
               elf.sections()[e.section].code;
    };
    const ElfSymbols::Entry* zero_sized = nullptr;
    const ElfSymbols::Entry* sized = nullptr;
    // Bounded: a crafted file with a million zero-sized symbols in one section must
    // not make each lookup linear. Real files never come near this.
    constexpr int MAX_WALK = 1 << 16;
    for (int steps = 0; it != syms.begin() && steps < MAX_WALK; ++steps) {
        --it;
        if (c.section != ElfSymbols::NO_SECTION) {
            if (it->value < sec_start) {
                break;  // symbols of this section start at or after its address
            }
            if (it->section != c.section) {
                continue;
            }
        }
        // gdb prefers an otherwise identical text symbol just before (a global
        // function over its local or ifunc alias: "f" over "f.localalias").
        if (it != syms.begin() && !is_text(*it)) {
            const auto prev = std::prev(it);
            if (is_text(*prev) && prev->value == it->value && prev->size == it->size &&
                prev->section == it->section) {
                it = prev;
            }
        }
        if (it->size == 0) {
            if (zero_sized == nullptr) {
                zero_sized = &*it;
            }
            continue;
        }
        sized = &*it;
        break;
    }
    if (sized != nullptr && v - sized->value < sized->size) {
        c.entry = sized;
        c.exact = true;
    } else if (zero_sized != nullptr) {
        c.entry = zero_sized;
    } else {
        c.entry = sized;
    }
    return c;
}

}  // namespace

std::optional<ResolvedAddress> SymbolTable::resolve(std::uint64_t address) const {
    const Module* module = module_of(address);
    if (module == nullptr) {
        return std::nullopt;
    }
    const auto index = static_cast<std::size_t>(module - m_modules.data());
    const ElfSymbols* elf = m_elves[index].get();
    if (elf == nullptr) {
        return std::nullopt;
    }
    const std::uint64_t v = address - module->load_bias;
    Candidate c = best_symbol(*elf, v);
    // With a separate debug file gdb has two objfiles for the module and takes the
    // debug file's symbol only when it lies strictly closer (higher) than the
    // module's own (.dynsym) one: at one address, the exported name wins.
    if (const ElfSymbols* debug = m_debug[index].get()) {
        const Candidate d = best_symbol(*debug, v);
        if (d.entry != nullptr && (c.entry == nullptr || (d.exact && !c.exact) ||
                                   (d.exact == c.exact && d.entry->value > c.entry->value))) {
            c = d;
        }
    }
    if (c.entry == nullptr) {
        return std::nullopt;
    }
    ResolvedAddress r;
    r.symbol = c.entry->name;
    r.offset = v - c.entry->value;
    r.module = module->path;
    r.exact_size_match = c.exact;
    r.section = c.section != ElfSymbols::NO_SECTION ? c.elf->sections()[c.section].name : std::string_view();
    r.symbol_address = c.entry->value + module->load_bias;
    r.symbol_size = c.entry->size;
    r.is_function = c.entry->is_function;
    r.main_executable = module->main_executable;
    return r;
}

template <typename F>
void SymbolTable::for_each_named(std::string_view name, F&& visit) const {
    // gdb's lookup_minimal_symbol: external (global/weak) symbols of every module
    // before file-local ones, modules in m_lookup_order (gdb's objfile order). Within
    // a module, its default symbol versions before hidden ones, and the module's own
    // table before its debug file's (which repeats most of it: repeats are skipped).
    std::vector<std::uint64_t> seen;  // addresses already given for this module
    for (const bool want_local : {false, true}) {
        for (const std::size_t i : m_lookup_order) {
            seen.clear();
            for (const bool want_hidden : {false, true}) {
                for (const ElfSymbols* elf : {m_elves[i].get(), m_debug[i].get()}) {
                    if (elf == nullptr) {
                        continue;
                    }
                    for (const std::uint32_t idx : elf->find(name)) {
                        const ElfSymbols::Entry& e = elf->symbols()[idx];
                        if ((e.binding == 0) != want_local || e.hidden_version != want_hidden ||
                            std::find(seen.begin(), seen.end(), e.value) != seen.end()) {
                            continue;
                        }
                        seen.push_back(e.value);
                        if (!visit(to_symbol(e, m_modules[i].load_bias))) {
                            return;
                        }
                    }
                }
            }
        }
    }
}

std::vector<Symbol> SymbolTable::lookup_all(std::string_view name) const {
    std::vector<Symbol> out;
    for_each_named(name, [&out](const Symbol& s) {
        out.push_back(s);
        return true;
    });
    return out;
}

std::optional<std::uint64_t> SymbolTable::lookup(std::string_view name) const {
    std::optional<std::uint64_t> found;
    for_each_named(name, [&found](const Symbol& s) {
        found = s.address;
        return false;
    });
    return found;
}

std::string gdb_display_name(std::string_view name) {
    // gdb's ada_decode gives up (and gdb shows the name as is) on a leading '_' or
    // '<' and on any character an encoded Ada name cannot have, uppercase included.
    if (name.empty() || name[0] == '_' || name[0] == '<') {
        return std::string(name);
    }
    for (const char c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@')) {
            return std::string(name);
        }
    }
    if (name.find("___") != std::string_view::npos) {
        return std::string(name);  // not an Ada encoding either ("array___copy__")
    }
    const auto all_of = [](std::string_view s, auto pred) {
        return !s.empty() && std::all_of(s.begin(), s.end(), pred);
    };
    const auto is_letter = [](char c) { return c >= 'a' && c <= 'z'; };
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    std::string_view base = name;
    std::string suffix;
    // A last ".letters" component is a clone suffix shown in brackets ("f.cold" → "f[cold]").
    if (const auto dot = base.rfind('.');
        dot != std::string_view::npos && dot > 0 && all_of(base.substr(dot + 1), is_letter)) {
        suffix = "[" + std::string(base.substr(dot + 1)) + "]";
        base = base.substr(0, dot);
    }
    // Then one trailing ".digits" (a clone number) is dropped.
    if (const auto dot = base.rfind('.');
        dot != std::string_view::npos && dot > 0 && all_of(base.substr(dot + 1), is_digit)) {
        base = base.substr(0, dot);
    }
    // Ada's "__" package separator reads as "." (not at the very end: "doc__" stays).
    std::string out;
    out.reserve(base.size() + suffix.size());
    for (std::size_t i = 0; i < base.size(); ++i) {
        if (base[i] == '_' && i + 2 < base.size() && base[i + 1] == '_') {
            out.push_back('.');
            ++i;
        } else {
            out.push_back(base[i]);
        }
    }
    return out + suffix;
}

void detail::clear_symbol_cache() noexcept {
    cache().clear();
}

}  // namespace xproc
