// SPDX-License-Identifier: MIT
// Backtraces through libunwind's remote API with accessors backed by xproc (see unwind.hpp).
// The snapshot (stop, copy, resume) is in stack_snapshot.cpp.
#include "xproc/unwind.hpp"

#include <elf.h>
#include <libunwind.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>

#include "xproc/memory.hpp"
#include "xproc/tracer.hpp"

// Exported by libunwind-x86_64 (PROTECTED in dwarf/Gfind_proc_info-lsb.c) but not declared in
// its public headers: searches an .eh_frame_hdr binary-search table (REMOTE_TABLE format,
// read through our access_mem) for `ip` and decodes the FDE it points to.
extern "C" int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip, unw_dyn_info_t* di,
                                                  unw_proc_info_t* pi, int need_unwind_info, void* arg);

namespace xproc {

namespace {

constexpr std::uint64_t CACHE_PAGE = 4096;
// Pages fetched per cache miss: unwind tables and FDEs of one module are read in runs, and
// one 32 KiB process_vm_readv costs little more than a 4 KiB one.
constexpr std::size_t READ_AHEAD_PAGES = 8;

struct CachedPage {
    std::uint32_t valid = 0;  // readable bytes from the page's start (0: unreadable)
    std::array<std::byte, CACHE_PAGE> bytes;
};

// .eh_frame_hdr (LSB): version, eh_frame_ptr encoding, fde_count encoding, table encoding.
constexpr std::uint8_t DW_EH_PE_omit = 0xff;
constexpr std::uint8_t DW_EH_PE_datarel_sdata4 = 0x3b;

// Size of a value in DWARF EH pointer encoding `enc` (low nibble), 0 if unsupported.
std::size_t encoded_size(std::uint8_t enc) {
    switch (enc & 0x0f) {
        case 0x00:  // absptr
        case 0x04:  // udata8
        case 0x0c:  // sdata8
            return 8;
        case 0x03:  // udata4
        case 0x0b:  // sdata4
            return 4;
        case 0x02:  // udata2
        case 0x0a:  // sdata2
            return 2;
        default:
            return 0;
    }
}

}  // namespace

namespace detail {

// The state of one Unwinder, reached by libunwind's accessors through their `arg`.
struct UnwindState {
    pid_t pid = 0;
    const SymbolTable* symbols = nullptr;
    RemoteMemory memory;
    unw_addr_space_t space = nullptr;

    std::unordered_map<std::uint64_t, std::unique_ptr<CachedPage>> pages;
    std::uint64_t last_page_address = ~std::uint64_t{0};
    const CachedPage* last_page = nullptr;

    // Per module (keyed by its start): the table for dwarf_search_unwind_table, or nullopt
    // when the module has none we can use.
    std::unordered_map<std::uint64_t, std::optional<unw_dyn_info_t>> tables;

    // The unwind in progress.
    const Registers* regs = nullptr;
    const ThreadSnapshot* snapshot = nullptr;
    bool step_without_info = false;

    explicit UnwindState(RemoteMemory mem) : memory(std::move(mem)) {}
    UnwindState(const UnwindState&) = delete;
    UnwindState& operator=(const UnwindState&) = delete;
    ~UnwindState() {
        if (space != nullptr) {
            unw_destroy_addr_space(space);
        }
    }

    const CachedPage* page(std::uint64_t address) {
        if (address == last_page_address) {
            return last_page;
        }
        auto it = pages.find(address);
        if (it == pages.end()) {
            fetch(address);
            it = pages.find(address);
        }
        last_page_address = address;
        last_page = it->second.get();
        return last_page;
    }

    // Reads READ_AHEAD_PAGES pages from `address` (a page start, not cached) in one call; the
    // first page is always entered, unreadable or not, so a bad address is not retried.
    void fetch(std::uint64_t address) {
        if (address >= KERNEL_ADDRESS_START) {
            pages.emplace(address, std::make_unique<CachedPage>());
            return;
        }
        std::size_t count =
            std::min<std::uint64_t>(READ_AHEAD_PAGES, (KERNEL_ADDRESS_START - address) / CACHE_PAGE);
        // Do not read ahead over pages already cached.
        for (std::size_t i = 1; i < count; ++i) {
            if (pages.contains(address + i * CACHE_PAGE)) {
                count = i;
                break;
            }
        }
        std::vector<std::byte> buffer(count * CACHE_PAGE);
        std::size_t got = 0;
        if (auto t = memory.read(address, std::span(buffer))) {
            got = t->bytes;
        }
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t start = i * CACHE_PAGE;
            const std::uint32_t valid =
                got > start ? static_cast<std::uint32_t>(std::min<std::size_t>(got - start, CACHE_PAGE)) : 0;
            if (i > 0 && valid == 0) {
                break;
            }
            auto p = std::make_unique<CachedPage>();
            p->valid = valid;
            std::memcpy(p->bytes.data(), buffer.data() + start, valid);
            pages.emplace(address + start, std::move(p));
        }
    }

    // Reads `size` bytes at `address`: from the snapshot's stack copy when inside it, else
    // through the page cache. False when any byte is unreadable.
    bool read(std::uint64_t address, void* out, std::size_t size) {
        if (snapshot != nullptr && address >= snapshot->stack_start &&
            address - snapshot->stack_start + size <= snapshot->stack.size()) {
            std::memcpy(out, snapshot->stack.data() + (address - snapshot->stack_start), size);
            return true;
        }
        auto* dst = static_cast<std::byte*>(out);
        while (size > 0) {
            const std::uint64_t base = address & ~(CACHE_PAGE - 1);
            const std::uint64_t offset = address - base;
            const CachedPage* p = page(base);
            const std::size_t take = std::min<std::size_t>(size, CACHE_PAGE - offset);
            if (p == nullptr || p->valid < offset + take) {
                return false;
            }
            std::memcpy(dst, p->bytes.data() + offset, take);
            dst += take;
            address += take;
            size -= take;
        }
        return true;
    }

    template <class T>
    std::optional<T> read_value(std::uint64_t address) {
        T value{};
        if (!read(address, &value, sizeof value)) {
            return std::nullopt;
        }
        return value;
    }

    // Locates the .eh_frame_hdr of `module` from its ELF and program headers in memory.
    std::optional<unw_dyn_info_t> build_table(const SymbolTable::Module& module) {
        const auto ehdr = read_value<Elf64_Ehdr>(module.start);
        if (!ehdr || std::memcmp(ehdr->e_ident, ELFMAG, SELFMAG) != 0 ||
            ehdr->e_ident[EI_CLASS] != ELFCLASS64 || ehdr->e_phentsize != sizeof(Elf64_Phdr) ||
            ehdr->e_phnum == 0 || ehdr->e_phnum > 512) {
            return std::nullopt;
        }
        std::vector<Elf64_Phdr> phdrs(ehdr->e_phnum);
        if (!read(module.start + ehdr->e_phoff, phdrs.data(), phdrs.size() * sizeof(Elf64_Phdr))) {
            return std::nullopt;
        }
        std::uint64_t hdr_vaddr = 0;
        bool have_hdr = false;
        std::uint64_t text_start = ~std::uint64_t{0}, text_end = 0;
        for (const Elf64_Phdr& ph : phdrs) {
            if (ph.p_type == PT_GNU_EH_FRAME) {
                hdr_vaddr = ph.p_vaddr;
                have_hdr = true;
            } else if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) != 0) {
                text_start = std::min(text_start, ph.p_vaddr);
                text_end = std::max(text_end, ph.p_vaddr + ph.p_memsz);
            }
        }
        if (!have_hdr || text_start >= text_end) {
            return std::nullopt;
        }
        const std::uint64_t hdr = module.load_bias + hdr_vaddr;
        std::array<std::uint8_t, 4> head{};
        if (!read(hdr, head.data(), head.size())) {
            return std::nullopt;
        }
        const std::uint8_t version = head[0], ptr_enc = head[1], count_enc = head[2], table_enc = head[3];
        const std::size_t ptr_size = encoded_size(ptr_enc), count_size = encoded_size(count_enc);
        if (version != 1 || table_enc != DW_EH_PE_datarel_sdata4 || count_enc == DW_EH_PE_omit ||
            ptr_size == 0 || count_size == 0) {
            return std::nullopt;
        }
        std::uint64_t fde_count = 0;
        const std::uint64_t count_address = hdr + 4 + ptr_size;
        if (count_size == 8) {
            fde_count = read_value<std::uint64_t>(count_address).value_or(0);
        } else if (count_size == 4) {
            fde_count = read_value<std::uint32_t>(count_address).value_or(0);
        } else {
            fde_count = read_value<std::uint16_t>(count_address).value_or(0);
        }
        if (fde_count == 0 || fde_count > (1u << 24)) {
            return std::nullopt;
        }
        unw_dyn_info_t di{};
        di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
        di.start_ip = module.load_bias + text_start;
        di.end_ip = module.load_bias + text_end;
        di.gp = 0;
        di.u.rti.name_ptr = 0;
        di.u.rti.segbase = hdr;
        // Table entries are two int32s (initial location, FDE address, both hdr-relative);
        // libunwind wants the length in words.
        di.u.rti.table_len = fde_count * 8 / sizeof(unw_word_t);
        di.u.rti.table_data = count_address + count_size;
        return di;
    }

    const unw_dyn_info_t* table_for(std::uint64_t ip) {
        const SymbolTable::Module* module = symbols->module_of(ip);
        if (module == nullptr) {
            return nullptr;
        }
        auto it = tables.find(module->start);
        if (it == tables.end()) {
            it = tables.emplace(module->start, build_table(*module)).first;
        }
        return it->second ? &*it->second : nullptr;
    }

    // The x86-64 Linux signal trampoline (glibc's __restore_rt, which the kernel makes the
    // handler return to): `mov $15, %rax; syscall` (rt_sigreturn). gdb's amd64_linux_sigtramp_p
    // tests the same bytes. (Debian's libunwind 1.6 unw_is_signal_frame answers for the frame
    // after the trampoline, once unw_step went through it, so it is not used.)
    bool is_sigreturn(std::uint64_t ip) {
        static constexpr std::array<std::uint8_t, 9> RT_SIGRETURN = {0x48, 0xc7, 0xc0, 0x0f, 0x00,
                                                                     0x00, 0x00, 0x0f, 0x05};
        std::array<std::uint8_t, 9> code{};
        return read(ip, code.data(), code.size()) && code == RT_SIGRETURN;
    }

    Result<std::vector<Frame>> run(const Registers& r, const ThreadSnapshot* snap, std::size_t max_frames);
    void name(Frame& frame, std::uint64_t lookup) const;
};

}  // namespace detail

struct Unwinder::Impl : detail::UnwindState {
    using UnwindState::UnwindState;
};

namespace {

detail::UnwindState* self_of(void* arg) {
    return static_cast<detail::UnwindState*>(arg);
}

int find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t* pi, int need_unwind_info, void* arg) {
    auto* self = self_of(arg);
    const unw_dyn_info_t* table = self->table_for(ip);
    if (table == nullptr || ip < table->start_ip || ip >= table->end_ip) {
        self->step_without_info = true;
        return -UNW_ENOINFO;
    }
    unw_dyn_info_t di = *table;
    const int ret = _Ux86_64_dwarf_search_unwind_table(as, ip, &di, pi, need_unwind_info, arg);
    if (ret == -UNW_ENOINFO) {
        self->step_without_info = true;
    }
    return ret;
}

// Unwind info from the REMOTE_TABLE search is UNW_INFO_FORMAT_TABLE, which libunwind frees
// itself (dwarf put_unwind_info); this is only called for dynamic info, which we never give.
void put_unwind_info(unw_addr_space_t, unw_proc_info_t*, void*) {}

int get_dyn_info_list_addr(unw_addr_space_t, unw_word_t*, void*) {
    return -UNW_ENOINFO;
}

int access_mem(unw_addr_space_t, unw_word_t address, unw_word_t* value, int write, void* arg) {
    if (write != 0) {
        return -UNW_EINVAL;
    }
    return self_of(arg)->read(address, value, sizeof *value) ? 0 : -UNW_EINVAL;
}

int access_reg(unw_addr_space_t, unw_regnum_t reg, unw_word_t* value, int write, void* arg) {
    if (write != 0) {
        return -UNW_EINVAL;
    }
    const GeneralRegisters& gp = self_of(arg)->regs->gp;
    switch (reg) {
        case UNW_X86_64_RAX:
            *value = gp.rax;
            break;
        case UNW_X86_64_RDX:
            *value = gp.rdx;
            break;
        case UNW_X86_64_RCX:
            *value = gp.rcx;
            break;
        case UNW_X86_64_RBX:
            *value = gp.rbx;
            break;
        case UNW_X86_64_RSI:
            *value = gp.rsi;
            break;
        case UNW_X86_64_RDI:
            *value = gp.rdi;
            break;
        case UNW_X86_64_RBP:
            *value = gp.rbp;
            break;
        case UNW_X86_64_RSP:
            *value = gp.rsp;
            break;
        case UNW_X86_64_R8:
            *value = gp.r8;
            break;
        case UNW_X86_64_R9:
            *value = gp.r9;
            break;
        case UNW_X86_64_R10:
            *value = gp.r10;
            break;
        case UNW_X86_64_R11:
            *value = gp.r11;
            break;
        case UNW_X86_64_R12:
            *value = gp.r12;
            break;
        case UNW_X86_64_R13:
            *value = gp.r13;
            break;
        case UNW_X86_64_R14:
            *value = gp.r14;
            break;
        case UNW_X86_64_R15:
            *value = gp.r15;
            break;
        case UNW_X86_64_RIP:
            *value = gp.rip;
            break;
        default:
            return -UNW_EBADREG;
    }
    return 0;
}

int access_fpreg(unw_addr_space_t, unw_regnum_t, unw_fpreg_t*, int, void*) {
    return -UNW_EBADREG;
}

int resume(unw_addr_space_t, unw_cursor_t*, void*) {
    return -UNW_EINVAL;
}

// Names come from the SymbolTable (Debian's libunwind 1.6 names some functions wrongly).
int get_proc_name(unw_addr_space_t, unw_word_t, char*, std::size_t, unw_word_t*, void*) {
    return -UNW_EINVAL;
}

unw_accessors_t g_accessors = {
    .find_proc_info = find_proc_info,
    .put_unwind_info = put_unwind_info,
    .get_dyn_info_list_addr = get_dyn_info_list_addr,
    .access_mem = access_mem,
    .access_reg = access_reg,
    .access_fpreg = access_fpreg,
    .resume = resume,
    .get_proc_name = get_proc_name,
};

}  // namespace

void detail::UnwindState::name(Frame& frame, std::uint64_t lookup) const {
    if (const SymbolTable::Module* m = symbols->module_of(frame.pc)) {
        frame.module = m->path;
    }
    const auto r = symbols->resolve(lookup);
    if (!r) {
        frame.guessed = true;
        return;
    }
    frame.symbol = gdb_display_name(r->symbol);
    frame.offset = frame.pc - r->symbol_address;
    frame.guessed = !r->exact_size_match;
    if (frame.module.empty()) {
        frame.module = std::string(r->module);
    }
}

Result<std::vector<Frame>> detail::UnwindState::run(const Registers& r, const ThreadSnapshot* snap,
                                                    std::size_t max_frames) {
    regs = &r;
    snapshot = snap;
    struct Reset {
        UnwindState* impl;
        ~Reset() {
            impl->regs = nullptr;
            impl->snapshot = nullptr;
        }
    } reset{this};

    std::vector<Frame> frames;
    unw_cursor_t cursor;
    const int init = unw_init_remote(&cursor, space, this);
    if (init < 0) {
        return fail(Error::make(ErrorKind::os, "unw_init_remote(tid " + std::to_string(r.tid) + ")",
                                unw_strerror(init), pid));
    }
    bool callee_is_signal = false;
    bool found_without_info = false;
    // Bounds a corrupt stack whose frames keep the same sp (pc alternating between values).
    constexpr std::size_t HARD_FRAME_LIMIT = 1u << 16;
    max_frames = std::min(max_frames, HARD_FRAME_LIMIT);
    while (frames.size() < max_frames) {
        unw_word_t ip = 0, sp = 0;
        if (unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0 || unw_get_reg(&cursor, UNW_REG_SP, &sp) < 0) {
            break;
        }
        if (!frames.empty() && ip == 0) {
            break;
        }
        if (!frames.empty()) {
            const Frame& callee = frames.back();
            // A caller's frame lies above its callee's (the stack grows down); the same pc and
            // sp twice would loop forever.
            if (sp < callee.sp || (sp == callee.sp && ip == callee.pc)) {
                break;
            }
            frames.back().cfa = sp;
        }
        Frame frame;
        frame.index = static_cast<unsigned>(frames.size());
        frame.pc = ip;
        frame.sp = sp;
        frame.from_frame_pointer = found_without_info;
        frame.signal_frame = is_sigreturn(ip);
        // A caller's pc is a return address, just past the call: name the call, pc - 1, as
        // gdb does (get_frame_address_in_block) when the frame and its callee are both
        // ordinary frames. Frame 0, the signal trampoline and the frame a signal interrupted
        // are named by their pc, the next instruction to run.
        name(frame, (frames.empty() || frame.signal_frame || callee_is_signal) ? ip : ip - 1);
        callee_is_signal = frame.signal_frame;
        frames.push_back(std::move(frame));

        step_without_info = false;
        if (unw_step(&cursor) <= 0) {
            break;
        }
        found_without_info = step_without_info;
    }
    return frames;
}

Result<Unwinder> Unwinder::create(pid_t pid, const SymbolTable& symbols) {
    auto memory = RemoteMemory::open(pid);
    if (!memory) {
        return fail(std::move(memory.error()));
    }
    auto impl = std::make_unique<Impl>(std::move(*memory));
    impl->pid = pid;
    impl->symbols = &symbols;
    impl->space = unw_create_addr_space(&g_accessors, 0);
    if (impl->space == nullptr) {
        return fail(Error::make(ErrorKind::os, "unw_create_addr_space",
                                "libunwind could not create an address space", pid));
    }
    // One Unwinder is used from one thread (documented): libunwind may keep the register
    // rules it computed per pc for the whole address space.
    unw_set_caching_policy(impl->space, UNW_CACHE_GLOBAL);
    return Unwinder(std::move(impl));
}

Unwinder::Unwinder(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Unwinder::Unwinder(Unwinder&&) noexcept = default;
Unwinder& Unwinder::operator=(Unwinder&&) noexcept = default;
Unwinder::~Unwinder() = default;

Result<std::vector<Frame>> Unwinder::backtrace(Attachment& att, pid_t tid, std::size_t max_frames) {
    auto regs = att.registers(tid);
    if (!regs) {
        return fail(std::move(regs.error()));
    }
    return m_impl->run(*regs, nullptr, max_frames);
}

Result<std::vector<Frame>> Unwinder::backtrace(const ThreadSnapshot& thread, std::size_t max_frames) {
    return m_impl->run(thread.regs, &thread, max_frames);
}

Result<std::vector<Frame>> Unwinder::backtrace(const Registers& regs, std::size_t max_frames) {
    return m_impl->run(regs, nullptr, max_frames);
}

void Unwinder::invalidate() {
    m_impl->pages.clear();
    m_impl->last_page_address = ~std::uint64_t{0};
    m_impl->last_page = nullptr;
    unw_flush_cache(m_impl->space, 0, 0);
}

}  // namespace xproc
