// SPDX-License-Identifier: MIT
#include "session.hpp"

#include <cctype>
#include <cinttypes>
#include <cstdio>

#include "text.hpp"
#include "xproc/breakpoints.hpp"
#include "xproc/process.hpp"

namespace xpeek {

volatile std::sig_atomic_t g_interrupted = 0;

const std::byte* MemoryWindow::get(xproc::RemoteMemory& memory, std::uint64_t address, std::size_t n) {
    if (m_valid >= n && address >= m_base && address - m_base <= m_valid - n) {
        return m_buffer.data() + (address - m_base);
    }
    m_buffer.resize(std::max(WINDOW, n));
    m_fatal.reset();
    m_stop_reason.clear();
    auto t = memory.read(address, m_buffer);
    if (!t) {
        m_valid = 0;
        m_fatal = std::move(t.error());
        return nullptr;
    }
    m_base = address;
    m_valid = t->bytes;
    if (m_patches != nullptr) {
        // Show the program's own bytes where breakpoints are inserted (gdb does the same).
        m_patches->unpatch(address, std::span<std::byte>(m_buffer.data(), m_valid));
    }
    if (t->bytes >= n) {
        return m_buffer.data();
    }
    m_stop_reason = t->stop_reason;
    return nullptr;
}

bool Session::open(pid_t pid, std::string& error) {
    auto mem = xproc::RemoteMemory::open(pid);
    if (!mem) {
        error = mem.error().message();
        return false;
    }
    // Fail now, with the access rule and its fix, rather than at the first command.
    std::byte probe[1];
    auto first = mem->read(0, probe);
    if (!first) {
        // Name what the user asked for, not the probe's address.
        xproc::Error e = std::move(first.error());
        e.operation = "read memory";
        e.has_address = false;
        error = e.message();
        return false;
    }
    m_pid = pid;
    m_memory.emplace(std::move(*mem));
    auto syms = xproc::SymbolTable::load(m_memory->process());
    if (syms) {
        m_symbols.emplace(std::move(*syms));
    } else {
        warning("no symbols: " + syms.error().message());
    }
    return true;
}

bool Session::need_process() {
    if (m_memory) {
        return true;
    }
    return error("No process: start xpeek with a PID (xpeek PID).");
}

bool Session::error(const std::string& message) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    return false;
}

void Session::warning(const std::string& message) {
    std::fflush(stdout);
    std::fprintf(stderr, "warning: %s\n", message.c_str());
    std::fflush(stderr);
}

void Session::announce(const std::string& text) {
    if (m_from_tty) {
        std::fputs(text.c_str(), stdout);
        std::fflush(stdout);
    }
}

bool Session::memory_error(std::uint64_t address, const std::string& reason) {
    std::string m = "Cannot access memory at address " + hex(address);
    if (!reason.empty()) {
        // "unmapped (no mapping at 0x10)" reads better inside parentheses as "unmapped: no mapping at 0x10".
        std::string r = reason;
        if (const std::size_t open = r.find(" ("); open != std::string::npos && r.back() == ')') {
            r = r.substr(0, open) + ": " + r.substr(open + 2, r.size() - open - 3);
        }
        m += " (" + r + ")";
    }
    return error(m);
}

bool Session::fatal_error(const xproc::Error& e) {
    return error(e.message());
}

std::string Session::label(std::uint64_t address) const {
    if (!m_symbols) {
        return {};
    }
    const auto r = m_symbols->resolve(address);
    // gdb's minimal-symbol rule: a sized symbol must cover the address; a zero-sized
    // label only names code (build_address_symbolic drops zero-sized data symbols).
    if (!r || r->section.empty() || !(r->exact_size_match || (r->symbol_size == 0 && r->is_function))) {
        return {};
    }
    std::string s = "<" + xproc::gdb_display_name(r->symbol);  // gdb's spelling: f.isra, f[cold]
    if (r->offset != 0) {
        s += "+" + std::to_string(static_cast<long long>(r->offset));
    }
    s += ">";
    return s;
}

Labeler Session::labeler() const {
    return [this](std::uint64_t a) { return label(a); };
}

std::optional<std::uint64_t> Session::symbol_address(std::string_view name) {
    if (!m_symbols) {
        return std::nullopt;
    }
    return m_symbols->lookup(name);
}

bool Session::execute(std::string_view line) {
    line = trim(line);
    if (line.empty() || line.front() == '#') {
        return true;
    }
    std::size_t n = 0;
    while (n < line.size() &&
           (std::isalnum(static_cast<unsigned char>(line[n])) != 0 || line[n] == '_' || line[n] == '-')) {
        ++n;
    }
    if (n == 0) {
        return error("Undefined command: \"" + std::string(line.substr(0, line.find(' '))) +
                     "\".  Try \"help\".");
    }
    const std::string_view word = line.substr(0, n);
    const std::string_view args = trim(line.substr(n));

    const Command* found = nullptr;
    std::vector<const Command*> prefixed;
    for (const Command& c : command_table()) {
        if (c.name == word) {
            found = &c;
            break;
        }
        for (const std::string_view a : c.aliases) {
            if (a == word) {
                found = &c;
            }
        }
        if (c.name.starts_with(word)) {
            prefixed.push_back(&c);
        }
    }
    if (found == nullptr && prefixed.size() == 1) {
        found = prefixed.front();
    }
    if (found == nullptr && prefixed.size() > 1) {
        std::string names;
        for (const Command* c : prefixed) {
            names += (names.empty() ? "" : ", ") + std::string(c->name);
        }
        return error("Ambiguous command \"" + std::string(word) + "\": " + names + ".");
    }
    if (found == nullptr) {
        return error("Undefined command: \"" + std::string(word) + "\".  Try \"help\".");
    }
    // An empty line repeats the command; a repeated x continues where it stopped.
    // Other commands are not repeated (gdb repeats few of them; a repeated set or dump would surprise).
    m_repeat = found->handler == &Session::cmd_examine ? std::string("x") : std::string();
    g_interrupted = 0;
    const bool ok = (this->*(found->handler))(args);
    std::fflush(stdout);
    return ok;
}

}  // namespace xpeek
