// SPDX-License-Identifier: MIT
// SymbolTable against real processes (tests/targets/sym_target.c and its -no-pie and
// stripped builds), checked against the addresses the target prints about itself
// and against gdb (`info symbol`, `info address`) attached to the same process; and
// the ELF reader against truncated and corrupted files.
#include "xproc/symbols.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"

namespace {

using xproc::ElfSymbols;
using xproc::SymbolTable;
using xproc::test::target_path;

namespace fs = std::filesystem;

/// A running target whose stdout we read line by line: the addresses it prints
/// ("NAME 0xADDR") until "ready". Killed and reaped by the destructor.
/// (test::Child's reader skips the lines before "ready", which are the point here.)
struct Target {
    pid_t child_pid = -1;
    FILE* out = nullptr;
    std::map<std::string, std::uint64_t> printed;

    explicit Target(const std::vector<std::string>& argv) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            ADD_FAILURE() << "pipe2: " << std::strerror(errno);
            return;
        }
        child_pid = fork();
        if (child_pid == 0) {
            dup2(fds[1], STDOUT_FILENO);
            std::vector<char*> args;
            for (const auto& a : argv) {
                args.push_back(const_cast<char*>(a.c_str()));
            }
            args.push_back(nullptr);
            execvp(args[0], args.data());
            _exit(127);
        }
        close(fds[1]);
        out = fdopen(fds[0], "r");
        char line[256];
        while (out != nullptr && std::fgets(line, sizeof line, out) != nullptr) {
            std::string s(line);
            while (!s.empty() && s.back() == '\n') {
                s.pop_back();
            }
            if (s == "ready") {
                break;
            }
            const auto space = s.find(' ');
            if (space != std::string::npos) {
                printed[s.substr(0, space)] = std::stoull(s.substr(space + 1), nullptr, 16);
            }
        }
    }
    Target(const Target&) = delete;
    Target& operator=(const Target&) = delete;
    ~Target() {
        if (child_pid > 0) {
            kill(child_pid, SIGKILL);
            int status = 0;
            while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
        if (out != nullptr) {
            std::fclose(out);
        }
    }
    pid_t pid() const { return child_pid; }
    std::uint64_t at(const std::string& name) const {
        const auto it = printed.find(name);
        EXPECT_NE(it, printed.end()) << "target did not print " << name;
        return it == printed.end() ? 0 : it->second;
    }
};

/// Runs gdb attached to `pid` with the given commands; returns its output lines that
/// answer `info symbol` / `info address` (one per command, in order).
std::vector<std::string> gdb_answers(pid_t pid, const std::vector<std::string>& commands) {
    // One stream: gdb prints found symbols on stdout and "No symbol ..." on stderr,
    // and the answers must stay in command order.
    std::string script = "exec gdb -batch -nx -p " + std::to_string(pid);
    for (const std::string& c : commands) {
        script += " -ex '" + c + "'";
    }
    script += " 2>&1";
    const auto r = xproc::test::run({"sh", "-c", script});
    std::vector<std::string> lines;
    std::string line;
    for (const char c : r.out + "\n") {
        if (c != '\n') {
            line.push_back(c);
            continue;
        }
        if (line.find(" in section ") != std::string::npos || line.rfind("Symbol \"", 0) == 0 ||
            line.rfind("No symbol", 0) == 0) {
            lines.push_back(line);
        }
        line.clear();
    }
    EXPECT_EQ(lines.size(), commands.size()) << "gdb output:\n" << r.out << r.err;
    return lines;
}

/// gdb's `info symbol` line ("NAME + OFF in section SEC of PATH") as "NAME+OFF SEC",
/// "" when it found nothing. (No std::regex: GCC 12 warns inside it under ASan.)
std::string gdb_symbol_form(const std::string& line) {
    const auto in = line.find(" in section ");
    if (in == std::string::npos) {
        return "";
    }
    std::string left = line.substr(0, in);
    std::string offset = "0";
    if (const auto plus = left.find(" + "); plus != std::string::npos) {
        offset = left.substr(plus + 3);
        left.resize(plus);
    }
    std::string section = line.substr(in + 12);
    section = section.substr(0, section.find(' '));
    return left + "+" + offset + " " + section;
}

std::string our_symbol_form(const SymbolTable& t, std::uint64_t address) {
    const auto r = t.resolve(address);
    if (!r) {
        return "";
    }
    return xproc::gdb_display_name(r->symbol) + "+" + std::to_string(r->offset) + " " +
           std::string(r->section);
}

/// The address in gdb's `info address` line, nullopt when it has none.
std::optional<std::uint64_t> gdb_address(const std::string& line) {
    const auto at = line.find("0x");
    if (line.rfind("Symbol \"", 0) != 0 || at == std::string::npos) {
        return std::nullopt;
    }
    return std::stoull(line.substr(at), nullptr, 16);
}

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

const SymbolTable::Module* main_module(const SymbolTable& t) {
    for (const auto& m : t.modules()) {
        if (m.main_executable) {
            return &m;
        }
    }
    return nullptr;
}

const SymbolTable::Module* module_named(const SymbolTable& t, std::string_view part) {
    for (const auto& m : t.modules()) {
        if (m.path.find(part) != std::string::npos) {
            return &m;
        }
    }
    return nullptr;
}

/// Every printed address resolves to its own name at offset 0, and every name
/// (except `unexported`) looks up to its printed address.
void expect_self_consistent(const SymbolTable& t, const Target& target, const std::string& unexported = "") {
    for (const auto& [name, address] : target.printed) {
        if (name == unexported) {
            continue;
        }
        const auto r = t.resolve(address);
        ASSERT_TRUE(r.has_value()) << name << " at " << hex(address);
        EXPECT_EQ(r->symbol, name) << hex(address);
        EXPECT_EQ(r->offset, 0u) << name;
        EXPECT_TRUE(r->exact_size_match) << name;
        EXPECT_TRUE(r->main_executable) << name;
        EXPECT_EQ(t.lookup(name), std::optional<std::uint64_t>(address)) << name;
        // Inside the symbol: symbol + offset.
        if (r->symbol_size > 1) {
            const auto inner = t.resolve(address + 1);
            ASSERT_TRUE(inner.has_value());
            EXPECT_EQ(inner->symbol, name);
            EXPECT_EQ(inner->offset, 1u);
        }
    }
}

class SymbolsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (geteuid() != 0) {
            GTEST_SKIP() << "needs root (map_files, gdb attach, mount namespaces)";
        }
    }
};

TEST_F(SymbolsTest, resolves_pie_executable_symbols_to_printed_addresses) {
    Target target({target_path("sym_target")});
    ASSERT_EQ(target.printed.size(), 7u);
    auto t = SymbolTable::load(target.pid());
    ASSERT_TRUE(t.has_value()) << t.error().message();
    const auto* exe = main_module(*t);
    ASSERT_NE(exe, nullptr);
    EXPECT_TRUE(exe->has_symtab);
    EXPECT_EQ(exe->opened_via, "map_files");
    EXPECT_EQ(exe->build_id.size(), 40u);  // sha1
    EXPECT_EQ(exe->load_bias, exe->start) << "PIE: first PT_LOAD at vaddr 0, mapped at the module start";
    EXPECT_NE(exe->load_bias, 0u);
    EXPECT_TRUE(exe->problem.empty()) << exe->problem;
    EXPECT_EQ(t->module_of(target.at("sym_buffer")), exe) << ".bss belongs to the module";
    expect_self_consistent(*t, target);
    // A local symbol is found too (.symtab has it).
    EXPECT_EQ(t->lookup("sym_static_func"), target.at("sym_static_func"));
    EXPECT_FALSE(t->lookup("no_such_symbol_anywhere").has_value());
    EXPECT_FALSE(t->resolve(0x10).has_value()) << "no module there";
    // Modules: in address order, disjoint, each with its symbols.
    ASSERT_GE(t->modules().size(), 4u);  // executable, libc, ld.so, vdso
    for (std::size_t i = 0; i < t->modules().size(); ++i) {
        const auto& m = t->modules()[i];
        EXPECT_TRUE(m.problem.empty()) << m.path << ": " << m.problem;
        EXPECT_LT(m.start, m.end) << m.path;
        EXPECT_GT(m.symbol_count, 0u) << m.path;
        if (i > 0) {
            EXPECT_LE(t->modules()[i - 1].end, m.start) << m.path;
        }
    }
    EXPECT_NE(module_named(*t, "ld-linux"), nullptr);
}

/// Compares resolve/lookup with gdb attached to a running `binary`: `info symbol`
/// for addresses inside functions and variables of the executable, libc and the
/// vdso, and in the ELF header (no section); `info address` for names.
void compare_with_gdb(const std::string& binary) {
    if (access("/usr/bin/gdb", X_OK) != 0) {
        GTEST_SKIP() << "gdb is not installed";
    }
    Target target({target_path(binary)});
    ASSERT_EQ(target.printed.size(), 7u);
    auto t = SymbolTable::load(target.pid());
    ASSERT_TRUE(t.has_value()) << t.error().message();
    const auto* exe = main_module(*t);
    ASSERT_NE(exe, nullptr);
    const std::uint64_t func = target.at("sym_global_func");
    const std::uint64_t counter = target.at("sym_counter");
    const std::uint64_t buffer = target.at("sym_buffer");
    const auto malloc_address = t->lookup("malloc");
    const auto vdso_gettime = t->lookup("__vdso_clock_gettime");
    ASSERT_TRUE(malloc_address.has_value());
    ASSERT_TRUE(vdso_gettime.has_value());
    std::vector<std::uint64_t> addresses = {
        func,
        func + 5,
        buffer + 100,
        counter + 4,
        counter + 3000,
        target.at("main") + 17,
        target.at("sym_static_func") + 3,
        target.at("sym_table") + 8,
        *malloc_address + 9,
        *vdso_gettime,
        *vdso_gettime + 1,
        exe->start + 0x10,  // the ELF header: in no section
    };
    // gdb's synthetic symbols: "puts@plt" in .plt, "puts@got.plt" in .got.plt.
    auto file = ElfSymbols::open(target_path(binary).c_str());
    ASSERT_TRUE(file.has_value()) << file.error().message();
    for (const auto& sec : (*file)->sections()) {
        if (sec.name == ".plt" && sec.size >= 48) {
            addresses.push_back(exe->load_bias + sec.address + 16 + 4);  // after PLT0, first entry
        }
        if (sec.name == ".got.plt" && sec.size >= 32) {
            addresses.push_back(exe->load_bias + sec.address + 24 + 2);  // after 3 reserved slots
        }
    }
    const std::vector<std::string> names = {"malloc",
                                            "sym_counter",
                                            "sym_static_func",
                                            "__vdso_clock_gettime",
                                            "__libc_start_call_main",
                                            "free",
                                            "sym_buffer",
                                            "main"};
    std::vector<std::string> commands;
    for (const std::uint64_t a : addresses) {
        commands.push_back("info symbol " + hex(a));
    }
    for (const std::string& n : names) {
        commands.push_back("info address " + n);
    }
    const auto answers = gdb_answers(target.pid(), commands);
    ASSERT_EQ(answers.size(), commands.size());
    int matched = 0;
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        const std::string gdb = gdb_symbol_form(answers[i]);
        const std::string ours = our_symbol_form(*t, addresses[i]);
        const auto r = t->resolve(addresses[i]);
        if (gdb.empty() && r && !r->exact_size_match) {
            // Past the end of the preceding sized symbol: gdb's `info symbol` says
            // "No symbol matches"; we give the nearest preceding symbol, as its x labels do.
            continue;
        }
        EXPECT_EQ(ours, gdb) << binary << ": " << commands[i] << " -> gdb: " << answers[i];
        matched += gdb.empty() ? 0 : 1;
    }
    EXPECT_GE(matched, 11) << "most addresses must have a gdb answer to compare with";
    for (std::size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(t->lookup(names[i]), gdb_address(answers[addresses.size() + i]))
            << binary << ": " << names[i] << " -> gdb: " << answers[addresses.size() + i];
    }
}

TEST_F(SymbolsTest, pie_agrees_with_gdb) {
    compare_with_gdb("sym_target");
}

TEST_F(SymbolsTest, non_pie_agrees_with_gdb) {
    compare_with_gdb("sym_target_nopie");
}

TEST_F(SymbolsTest, stripped_agrees_with_gdb) {
    compare_with_gdb("sym_target_stripped");
}

TEST_F(SymbolsTest, resolves_non_pie_executable_with_zero_bias) {
    Target target({target_path("sym_target_nopie")});
    ASSERT_EQ(target.printed.size(), 7u);
    auto t = SymbolTable::load(target.pid());
    ASSERT_TRUE(t.has_value()) << t.error().message();
    const auto* exe = main_module(*t);
    ASSERT_NE(exe, nullptr);
    EXPECT_EQ(exe->load_bias, 0u);
    EXPECT_TRUE(exe->has_symtab);
    expect_self_consistent(*t, target);
}

TEST_F(SymbolsTest, stripped_executable_uses_dynsym) {
    Target target({target_path("sym_target_stripped")});
    ASSERT_EQ(target.printed.size(), 7u);
    auto t = SymbolTable::load(target.pid());
    ASSERT_TRUE(t.has_value()) << t.error().message();
    const auto* exe = main_module(*t);
    ASSERT_NE(exe, nullptr);
    EXPECT_FALSE(exe->has_symtab);
    EXPECT_GT(exe->symbol_count, 0u);
    // Globals are exported (-rdynamic); the static function and variable are not.
    for (const char* name : {"sym_global_func", "sym_counter", "sym_buffer", "sym_table", "main"}) {
        EXPECT_EQ(t->lookup(name), target.at(name)) << name;
        const auto r = t->resolve(target.at(name) + 1);
        ASSERT_TRUE(r.has_value()) << name;
        EXPECT_EQ(r->symbol, name);
        EXPECT_EQ(r->offset, 1u);
    }
    EXPECT_FALSE(t->lookup("sym_static_func").has_value());
    const auto r = t->resolve(target.at("sym_static_func"));
    EXPECT_TRUE(!r.has_value() || r->symbol != "sym_static_func" || !r->exact_size_match);
}

TEST_F(SymbolsTest, lookup_follows_the_dynamic_linker_order_like_gdb) {
    // A preloaded library defining malloc comes before libc in the link_map list
    // (whatever their addresses), so gdb's `info address malloc`, and lookup(), name it.
    const char* preload = "/lib/x86_64-linux-gnu/libc_malloc_debug.so.0";
    if (access(preload, R_OK) != 0 || access("/usr/bin/gdb", X_OK) != 0) {
        GTEST_SKIP() << preload << " or gdb is not installed";
    }
    Target target({"env", std::string("LD_PRELOAD=") + preload, target_path("sym_target")});
    if (target.printed.empty()) {
        // An ASan-built target refuses to start unless its runtime comes first.
        GTEST_SKIP() << "sym_target does not run with LD_PRELOAD here (sanitizer build?)";
    }
    ASSERT_EQ(target.printed.size(), 7u);
    auto t = SymbolTable::load(target.pid());
    ASSERT_TRUE(t.has_value()) << t.error().message();
    const auto* debug_lib = module_named(*t, "libc_malloc_debug");
    ASSERT_NE(debug_lib, nullptr);
    const auto malloc_address = t->lookup("malloc");
    ASSERT_TRUE(malloc_address.has_value());
    EXPECT_EQ(t->module_of(*malloc_address), debug_lib);
    EXPECT_GE(t->lookup_all("malloc").size(), 2u) << "libc's malloc is listed after it";
    const auto answers = gdb_answers(target.pid(), {"info address malloc", "info address free"});
    ASSERT_EQ(answers.size(), 2u);
    EXPECT_EQ(t->lookup("malloc"), gdb_address(answers[0])) << answers[0];
    EXPECT_EQ(t->lookup("free"), gdb_address(answers[1])) << answers[1];
}

TEST_F(SymbolsTest, resolves_libc_and_vdso_symbols) {
    Target target({target_path("sym_target")});
    auto t = SymbolTable::load(target.pid());
    ASSERT_TRUE(t.has_value()) << t.error().message();
    const auto* libc = module_named(*t, "libc.so");
    ASSERT_NE(libc, nullptr);
    EXPECT_TRUE(libc->problem.empty()) << libc->problem;
    EXPECT_FALSE(libc->build_id.empty());
    EXPECT_GT(libc->symbol_count, 1000u);
    // libc's malloc (lookup() may prefer another module's: libasan's under ASan, as gdb does).
    const auto libc_malloc = [](const SymbolTable& table, const SymbolTable::Module& m) {
        std::optional<std::uint64_t> found;
        for (const xproc::Symbol& s : table.lookup_all("malloc")) {
            if (s.address >= m.start && s.address < m.end && !found) {
                found = s.address;
            }
        }
        return found;
    };
    const auto malloc_address = libc_malloc(*t, *libc);
    ASSERT_TRUE(malloc_address.has_value());
    EXPECT_GE(t->lookup_all("malloc").size(), 1u);
    const auto r = t->resolve(*malloc_address + 3);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->symbol, "malloc");
    EXPECT_EQ(r->offset, 3u);
    EXPECT_EQ(r->module, libc->path);
    EXPECT_FALSE(r->main_executable);
    // __libc_start_call_main is a local symbol: only in .symtab. Debian's libc has
    // only .dynsym; its .symtab is in libc6-dbg's /usr/lib/debug/.build-id file.
    EXPECT_EQ(t->lookup("__libc_start_call_main").has_value(), libc->has_symtab);
    if (!libc->debug_file.empty()) {
        EXPECT_TRUE(libc->has_symtab);
        auto plain = SymbolTable::load(target.pid(), {.use_debug_files = false});
        ASSERT_TRUE(plain.has_value());
        const auto* plain_libc = module_named(*plain, "libc.so");
        ASSERT_NE(plain_libc, nullptr);
        EXPECT_TRUE(plain_libc->debug_file.empty());
        EXPECT_EQ(libc_malloc(*plain, *plain_libc), malloc_address) << ".dynsym and .symtab agree";
        if (!plain_libc->has_symtab) {
            EXPECT_FALSE(plain->lookup("__libc_start_call_main").has_value());
        }
    }

    const SymbolTable::Module* vdso = nullptr;
    for (const auto& m : t->modules()) {
        if (m.vdso) {
            vdso = &m;
        }
    }
    ASSERT_NE(vdso, nullptr);
    EXPECT_EQ(vdso->path, "[vdso]");
    EXPECT_EQ(vdso->opened_via, "memory");
    const auto gettime = t->lookup("__vdso_clock_gettime");
    ASSERT_TRUE(gettime.has_value());
    EXPECT_GE(*gettime, vdso->start);
    EXPECT_LT(*gettime, vdso->end);
    const auto v = t->resolve(*gettime + 2);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->module, "[vdso]");
    EXPECT_EQ(v->offset, 2u);
    // Both names are at that address; gdb picks the last in name order, as we do.
    EXPECT_EQ(v->symbol, "clock_gettime");
}

/// A temp directory removed at the end of the test.
struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/xproc-symbols-XXXXXX";
        const char* p = mkdtemp(tmpl);
        EXPECT_NE(p, nullptr);
        path = p != nullptr ? p : "/tmp";
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

TEST_F(SymbolsTest, resolves_deleted_executable_through_map_files) {
    TempDir dir;
    const fs::path copy = dir.path / "sym_target";
    fs::copy_file(target_path("sym_target"), copy);
    Target target({copy.string()});
    ASSERT_EQ(target.printed.size(), 7u);
    fs::remove(copy);
    auto t = SymbolTable::load(target.pid());
    ASSERT_TRUE(t.has_value()) << t.error().message();
    const auto* exe = main_module(*t);
    ASSERT_NE(exe, nullptr);
    EXPECT_TRUE(exe->deleted);
    EXPECT_EQ(exe->path, copy.string());
    EXPECT_EQ(exe->opened_via, "map_files");
    expect_self_consistent(*t, target);

    // Without map_files a deleted file cannot be opened: listed with a problem, no crash.
    auto no_map_files = SymbolTable::load(target.pid(), {.allow_map_files = false});
    ASSERT_TRUE(no_map_files.has_value());
    const auto* exe2 = main_module(*no_map_files);
    ASSERT_NE(exe2, nullptr);
    EXPECT_FALSE(exe2->problem.empty());
    EXPECT_FALSE(no_map_files->resolve(target.at("sym_global_func")).has_value());
}

TEST_F(SymbolsTest, resolves_target_in_another_mount_namespace) {
    TempDir dir;  // empty here; a tmpfs holding the target inside the namespace
    const std::string script = "mount -t tmpfs none " + dir.path.string() + " && cp " +
                               target_path("sym_target") + " " + dir.path.string() + "/ && exec " +
                               dir.path.string() + "/sym_target";
    Target target({"unshare", "--mount", "--propagation", "private", "sh", "-c", script});
    if (target.printed.empty()) {
        GTEST_SKIP() << "unshare --mount failed here";
    }
    ASSERT_FALSE(fs::exists(dir.path / "sym_target")) << "the tmpfs must not be visible outside";
    for (const bool map_files : {true, false}) {
        auto t = SymbolTable::load(target.pid(), {.allow_map_files = map_files});
        ASSERT_TRUE(t.has_value()) << t.error().message();
        const auto* exe = main_module(*t);
        ASSERT_NE(exe, nullptr);
        EXPECT_EQ(exe->opened_via, map_files ? "map_files" : "root");
        EXPECT_TRUE(exe->problem.empty()) << exe->problem;
        expect_self_consistent(*t, target);
    }
}

TEST_F(SymbolsTest, second_load_parses_nothing) {
    xproc::detail::clear_symbol_cache();
    Target target({target_path("sym_target")});
    const std::uint64_t before = xproc::detail::elf_parse_count();
    auto first = SymbolTable::load(target.pid());
    ASSERT_TRUE(first.has_value()) << first.error().message();
    const std::uint64_t after_first = xproc::detail::elf_parse_count();
    EXPECT_GE(after_first - before, 3u);  // executable, libc, ld.so, vdso
    auto second = SymbolTable::load(target.pid());
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(xproc::detail::elf_parse_count(), after_first);
    // Another process of the same program: same files, nothing parsed either.
    Target other({target_path("sym_target")});
    auto third = SymbolTable::load(other.pid());
    ASSERT_TRUE(third.has_value());
    EXPECT_EQ(xproc::detail::elf_parse_count(), after_first);
    EXPECT_EQ(third->lookup("sym_counter"), other.at("sym_counter"));
}

TEST_F(SymbolsTest, concurrent_lookups_on_one_table) {
    Target target({target_path("sym_target")});
    auto t = SymbolTable::load(target.pid());
    ASSERT_TRUE(t.has_value());
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
            for (int k = 0; k < 2000; ++k) {
                for (const auto& [name, address] : target.printed) {
                    const auto r = t->resolve(address);
                    if (!r || r->symbol != name || t->lookup(name) != address) {
                        ++errors;
                    }
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_EQ(errors.load(), 0);
}

TEST(Symbols, gdb_display_name_matches_gdb) {
    // Each pair: an ELF name and what gdb 13's `info symbol` printed for it.
    const std::pair<const char*, const char*> cases[] = {
        {"alpha.0", "alpha"},
        {"beta.isra.0", "beta.isra"},
        {"gamma.part.1", "gamma.part"},
        {"delta.cold", "delta[cold]"},
        {"eps.constprop.12", "eps.constprop"},
        {"zeta.a.b", "zeta.a[b]"},
        {"eta.x1", "eta.x1"},
        {"theta.1.2", "theta.1"},
        {"lambda.isra.0.cold", "lambda.isra[cold]"},
        {"a.b.c.d", "a.b.c[d]"},
        {"a.1x", "a.1x"},
        {"a._b", "a._b"},
        {"a.b_c", "a.b_c"},
        {"a.5.cold", "a[cold]"},
        {"a.cold.1", "a.cold"},
        {"a.cold.cold", "a.cold[cold]"},
        {"_a.cold", "_a.cold"},
        {"_a.0", "_a.0"},
        {"a__b", "a.b"},
        {"A.cold", "A.cold"},
        {"aB.part.0", "aB.part.0"},
        {"a__b.0", "a.b"},
        {"str_to_mpn.part.0.constprop.0", "str_to_mpn.part.0.constprop"},
        {"round_and_return.cold", "round_and_return[cold]"},
        {"malloc", "malloc"},
        {"puts@plt", "puts@plt"},
        {"poll@got.plt", "poll@got[plt]"},
        {"sqlite3AuthContextPop@got.plt", "sqlite3AuthContextPop@got.plt"},
        {"getlimit__doc__", "getlimit.doc__"},
        {"array_array___copy__", "array_array___copy__"},
        {"select_epoll___enter____doc__", "select_epoll___enter____doc__"},
        {"__libc_start_call_main", "__libc_start_call_main"},
    };
    for (const auto& [elf, gdb] : cases) {
        EXPECT_EQ(xproc::gdb_display_name(elf), gdb) << elf;
    }
}

TEST(Symbols, load_of_vanished_pid_is_no_such_process) {
    auto t = SymbolTable::load(xproc::test::vanished_pid());
    ASSERT_FALSE(t.has_value());
    EXPECT_EQ(t.error().kind, xproc::ErrorKind::no_such_process);
}

// ---------------------------------------------------------------------------
// The ELF reader on hostile input.

std::vector<std::byte> file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> out(chars.size());
    std::memcpy(out.data(), chars.data(), chars.size());
    return out;
}

template <typename T>
T get(const std::vector<std::byte>& b, std::size_t off) {
    T v{};
    std::memcpy(&v, b.data() + off, sizeof v);
    return v;
}
template <typename T>
void put(std::vector<std::byte>& b, std::size_t off, T v) {
    std::memcpy(b.data() + off, &v, sizeof v);
}

/// Offset of the section header of the first section of `type` (host byte order = LE).
std::size_t section_header_of_type(const std::vector<std::byte>& b, std::uint32_t type) {
    const auto shoff = get<std::uint64_t>(b, 40);
    const auto shnum = get<std::uint16_t>(b, 60);
    for (std::size_t i = 0; i < shnum; ++i) {
        const std::size_t o = shoff + i * 64;
        if (get<std::uint32_t>(b, o + 4) == type) {
            return o;
        }
    }
    ADD_FAILURE() << "no section of type " << type;
    return 0;
}

xproc::Result<std::shared_ptr<const ElfSymbols>> parse(const std::vector<std::byte>& b) {
    return ElfSymbols::parse(b, "test image");
}

class ElfReaderTest : public ::testing::Test {
  protected:
    void SetUp() override {
        good = file_bytes(target_path("sym_target"));
        ASSERT_GT(good.size(), 4096u);
    }
    /// Writes `b` to a file and loads it through the file path API too.
    xproc::Result<std::shared_ptr<const ElfSymbols>> parse_file(const std::vector<std::byte>& b) {
        const fs::path p = dir.path / ("image-" + std::to_string(counter++));
        std::ofstream(p, std::ios::binary)
            .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
        return ElfSymbols::open(p.c_str());
    }
    std::vector<std::byte> good;
    TempDir dir;
    int counter = 0;
};

TEST_F(ElfReaderTest, parses_the_real_file) {
    auto e = parse_file(good);
    ASSERT_TRUE(e.has_value()) << e.error().message();
    EXPECT_TRUE((*e)->has_symtab());
    EXPECT_EQ((*e)->build_id().size(), 40u);
    EXPECT_EQ((*e)->find("sym_global_func").size(), 1u);
    EXPECT_EQ((*e)->find("sym_nothing").size(), 0u);
    EXPECT_FALSE((*e)->segments().empty());
}

TEST_F(ElfReaderTest, truncated_files_are_errors) {
    for (const std::size_t size : {std::size_t{0}, std::size_t{3}, std::size_t{16}, std::size_t{63}}) {
        std::vector<std::byte> b(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(size));
        EXPECT_FALSE(parse(b).has_value()) << size;
        EXPECT_FALSE(parse_file(b).has_value()) << size;
    }
    // Section headers sit at the end of the file: cutting it anywhere loses them.
    const auto shoff = get<std::uint64_t>(good, 40);
    for (std::size_t size = 64; size < good.size(); size += good.size() / 97 + 1) {
        std::vector<std::byte> b(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(size));
        const auto r = parse(b);
        if (size < shoff + 64) {
            EXPECT_FALSE(r.has_value()) << "cut at " << size;
        }
        if (!r) {
            EXPECT_EQ(r.error().kind, xproc::ErrorKind::parse);
        }
    }
}

TEST_F(ElfReaderTest, section_offset_past_eof_is_an_error) {
    auto b = good;
    const std::size_t symtab = section_header_of_type(b, 2);
    put<std::uint64_t>(b, symtab + 24, b.size() + 16);  // sh_offset
    auto r = parse_file(b);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message().find("past the end"), std::string::npos) << r.error().message();

    b = good;
    put<std::uint64_t>(b, symtab + 32, ~std::uint64_t{0} - 8);  // sh_size: overflows offset + size
    EXPECT_FALSE(parse(b).has_value());

    b = good;
    put<std::uint64_t>(b, 40, ~std::uint64_t{0} - 100);  // e_shoff
    EXPECT_FALSE(parse(b).has_value());

    b = good;
    put<std::uint16_t>(b, 60, 0xfff0);  // e_shnum
    EXPECT_FALSE(parse(b).has_value());

    b = good;
    put<std::uint64_t>(b, 32, b.size() - 8);  // e_phoff
    EXPECT_FALSE(parse(b).has_value());
}

TEST_F(ElfReaderTest, symbol_name_index_out_of_bounds_is_an_error) {
    auto b = good;
    const std::size_t symtab = section_header_of_type(b, 2);
    const auto sym_off = get<std::uint64_t>(b, symtab + 24);
    // Symbol 1 (after the null one): a name index far past its string table.
    put<std::uint32_t>(b, sym_off + 24, 0x7fffffff);
    // Give it a type that is kept (FUNC, global) and a section, so it is not skipped.
    b[sym_off + 24 + 4] = std::byte{0x12};
    put<std::uint16_t>(b, sym_off + 24 + 6, 1);
    auto r = parse_file(b);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message().find("name index"), std::string::npos) << r.error().message();

    // The string table's link pointing nowhere.
    b = good;
    put<std::uint32_t>(b, symtab + 40, 0xffff);
    EXPECT_FALSE(parse(b).has_value());
}

TEST_F(ElfReaderTest, zero_sh_entsize_is_an_error) {
    auto b = good;
    const std::size_t symtab = section_header_of_type(b, 2);
    put<std::uint64_t>(b, symtab + 56, 0);
    auto r = parse_file(b);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message().find("sh_entsize"), std::string::npos) << r.error().message();
}

TEST_F(ElfReaderTest, other_garbage_is_an_error_not_a_crash) {
    auto b = good;
    b[4] = std::byte{1};  // ELFCLASS32
    auto r = parse(b);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, xproc::ErrorKind::not_supported);
    b = good;
    b[0] = std::byte{0};
    EXPECT_FALSE(parse(b).has_value());
    // Random corruption of the headers and the tables: any result, but no crash (run
    // under ASan this also proves no out-of-bounds read).
    std::mt19937_64 rng(12345);
    const std::size_t symtab = section_header_of_type(good, 2);
    const auto sym_off = get<std::uint64_t>(good, symtab + 24);
    const auto shoff = get<std::uint64_t>(good, 40);
    for (int i = 0; i < 3000; ++i) {
        b = good;
        for (int k = 0; k < 4; ++k) {
            std::size_t at = 0;
            switch (rng() % 3) {
                case 0:
                    at = rng() % 64;
                    break;
                case 1:
                    at = shoff + rng() % (good.size() - shoff);
                    break;
                default:
                    at = sym_off + rng() % 512;
                    break;
            }
            b[at] = static_cast<std::byte>(rng());
        }
        const auto e = parse(b);
        if (e) {
            for (const auto& s : (*e)->symbols()) {
                EXPECT_LE(s.name.size(), b.size());
            }
        }
    }
}

TEST_F(ElfReaderTest, many_sections_over_one_region_parse_quickly) {
    // 60000 section headers, all notes / relocations / ".plt" spanning the whole file:
    // bounded work, not sections x size.
    auto b = good;
    const std::size_t shoff = b.size();
    const std::size_t count = 60000;
    b.resize(shoff + count * 64);
    const auto shstrndx = get<std::uint16_t>(good, 62);
    const auto old_shoff = get<std::uint64_t>(good, 40);
    // sh_name of ".plt", so the PLT decoder sees every one of them.
    std::uint32_t plt_name = 0;
    const auto strtab_off = get<std::uint64_t>(good, old_shoff + shstrndx * 64 + 24);
    for (std::size_t i = 0; i < get<std::uint16_t>(good, 60); ++i) {
        const auto n = get<std::uint32_t>(good, old_shoff + i * 64);
        if (std::strcmp(reinterpret_cast<const char*>(good.data() + strtab_off + n), ".plt") == 0) {
            plt_name = n;
        }
    }
    ASSERT_NE(plt_name, 0u);
    for (std::size_t i = 1; i < count; ++i) {
        const std::size_t o = shoff + i * 64;
        const std::uint32_t types[3] = {7 /*NOTE*/, 4 /*RELA*/, 1 /*PROGBITS*/};
        put<std::uint32_t>(b, o, plt_name);
        put<std::uint32_t>(b, o + 4, types[i % 3]);
        put<std::uint64_t>(b, o + 8, 0x6);  // SHF_ALLOC | SHF_EXECINSTR
        put<std::uint64_t>(b, o + 24, 0);   // sh_offset
        put<std::uint64_t>(b, o + 32, shoff);
        put<std::uint32_t>(b, o + 40, static_cast<std::uint32_t>(i));  // sh_link: itself
        put<std::uint64_t>(b, o + 56, 24);
    }
    // Keep the real .shstrtab reachable at its old index.
    std::memcpy(b.data() + shoff + shstrndx * 64, good.data() + old_shoff + shstrndx * 64, 64);
    put<std::uint64_t>(b, 40, shoff);
    put<std::uint16_t>(b, 60, static_cast<std::uint16_t>(count));
    const auto start = std::chrono::steady_clock::now();
    (void)parse(b);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(ElfReaderTest, fifo_and_directory_are_errors_without_blocking) {
    const fs::path fifo = dir.path / "fifo";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_FALSE(ElfSymbols::open(fifo.c_str()).has_value());
    EXPECT_FALSE(ElfSymbols::open(dir.path.c_str()).has_value());
    EXPECT_FALSE(ElfSymbols::open((dir.path / "missing").c_str()).has_value());
}

TEST_F(ElfReaderTest, big_endian_header_is_read_in_its_byte_order) {
    // A minimal big-endian ELF64: header + one PT_LOAD + a build-id note.
    std::vector<std::byte> b(64 + 56 * 2 + 32);
    const auto be16 = [&](std::size_t off, std::uint16_t v) {
        b[off] = std::byte(v >> 8);
        b[off + 1] = std::byte(v & 0xff);
    };
    const auto be32 = [&](std::size_t off, std::uint32_t v) {
        for (int i = 0; i < 4; ++i) {
            b[off + i] = std::byte((v >> (24 - 8 * i)) & 0xff);
        }
    };
    const auto be64 = [&](std::size_t off, std::uint64_t v) {
        for (int i = 0; i < 8; ++i) {
            b[off + i] = std::byte((v >> (56 - 8 * i)) & 0xff);
        }
    };
    std::memcpy(b.data(),
                "\x7f"
                "ELF\x02\x02\x01",
                7);
    be16(16, 3);             // ET_DYN
    be64(32, 64);            // e_phoff
    be16(54, 56);            // e_phentsize
    be16(56, 2);             // e_phnum
    be32(64, 1);             // PT_LOAD
    be64(64 + 16, 0x10000);  // p_vaddr
    be64(64 + 32, 0x100);    // p_filesz
    be64(64 + 40, 0x2000);   // p_memsz
    const std::size_t note = 64 + 112;
    be32(120, 4);         // PT_NOTE
    be64(120 + 8, note);  // p_offset
    be64(120 + 32, 32);   // p_filesz
    be32(note, 4);        // namesz
    be32(note + 4, 12);   // descsz
    be32(note + 8, 3);    // NT_GNU_BUILD_ID
    std::memcpy(b.data() + note + 12, "GNU", 4);
    for (int i = 0; i < 12; ++i) {
        b[note + 16 + i] = std::byte(0xa0 + i);
    }
    auto e = parse(b);
    ASSERT_TRUE(e.has_value()) << e.error().message();
    EXPECT_EQ((*e)->build_id(), "a0a1a2a3a4a5a6a7a8a9aaab");
    ASSERT_EQ((*e)->segments().size(), 1u);
    EXPECT_EQ((*e)->segments()[0].vaddr, 0x10000u);
    EXPECT_EQ((*e)->bias_for(0x7f0000000000, 0), std::optional<std::uint64_t>(0x7f0000000000 - 0x10000));
    EXPECT_EQ((*e)->load_end(), 0x12000u);
}

}  // namespace
