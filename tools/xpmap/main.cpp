// SPDX-License-Identifier: MIT
// xpmap: the memory map of processes, a drop-in for procps-ng 4.0.2's pmap
// (same options, same stdout byte for byte, same exit status) plus --json,
// --sort, --by-file and --top. See man/xpmap.1.
//
// Exit status (pmap's): 0 all good; 1 bad usage, or a process whose map could
// not be read (its header line is printed, the error goes to stderr); 42 added
// (bitwise or) when some PID does not exist; so 43 = both.

#include <unistd.h>
#include <cerrno>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "by_file.hpp"
#include "command.hpp"
#include "json.hpp"
#include "options.hpp"
#include "out_buffer.hpp"
#include "pmap_format.hpp"
#include "rc_file.hpp"
#include "rows.hpp"
#include "xproc/maps.hpp"
#include "xproc/process.hpp"

#ifndef XPROC_VERSION
#define XPROC_VERSION "unknown"
#endif

namespace xpmap {

int write_all(int fd, std::string_view data) noexcept {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

namespace {

constexpr int EXIT_MISSING = 42;  // pmap: some PID was not found

/// Exit with a one-line message on stderr (pmap's usage errors exit 1).
[[noreturn]] void die(std::string_view message) {
    std::fprintf(stderr, "xpmap: %.*s\n", static_cast<int>(message.size()), message.data());
    std::exit(EXIT_FAILURE);
}

std::string program_name(const char* argv0) {
    const char* slash = std::strrchr(argv0, '/');
    return slash != nullptr ? slash + 1 : argv0;
}

/// pmap's usage text (program name included, as pmap prints its own name), with
/// xpmap's own options after pmap's.
std::string help_text(const std::string& name) {
    std::string h;
    h += "\nUsage:\n";
    h += " " + name + " [options] PID [PID ...]\n";
    h += "\nOptions:\n";
    h += " -x, --extended              show details\n";
    h += " -X                          show even more details\n";
    h += "            WARNING: format changes according to /proc/PID/smaps\n";
    h += " -XX                         show everything the kernel provides\n";
    h += " -c, --read-rc               read the default rc\n";
    h += " -C, --read-rc-from=<file>   read the rc from file\n";
    h += " -n, --create-rc             create new default rc\n";
    h += " -N, --create-rc-to=<file>   create new rc to file\n";
    h += "            NOTE: pid arguments are not allowed with -n, -N\n";
    h += " -d, --device                show the device format\n";
    h += " -q, --quiet                 do not display header and footer\n";
    h += " -p, --show-path             show path in the mapping\n";
    h += " -A, --range=<low>[,<high>]  limit results to the given range\n";
    h += "     --json                  one JSON object per process, sizes in bytes\n";
    h += "     --by-file               totals per file or pseudo-path, largest first\n";
    h += "     --sort=<key>            order rows by rss, pss, size, swap, dirty\n";
    h += "                             (largest first) or address\n";
    h += "     --top=<n>               show the first n rows only\n";
    h += "\n";
    h += " -h, --help     display this help and exit\n";
    h += " -V, --version  output version information and exit\n";
    h += "\nFor more details see xpmap(1).\n";
    return h;
}

/// The long options, for getopt_long's unambiguous abbreviations (--ext, --quiet=...).
constexpr std::string_view LONG_OPTIONS[] = {
    "extended",  "device",       "quiet",     "range", "help", "version", "read-rc", "read-rc-from",
    "create-rc", "create-rc-to", "show-path", "json",  "sort", "by-file", "top",
};

/// Expands "--abbrev[=value]" to the one long option it abbreviates, as getopt_long
/// does (an exact name wins; more than one candidate is an error).
std::vector<std::string> expand_abbreviations(int argc, char** argv) {
    std::vector<std::string> out;
    bool options_done = false;
    for (int i = 0; i < argc; ++i) {
        std::string arg = argv[i];
        if (i == 0 || options_done || !arg.starts_with("--") || arg.size() == 2) {
            options_done = options_done || (i > 0 && arg == "--");
            out.push_back(std::move(arg));
            continue;
        }
        const std::size_t eq = arg.find('=');
        const std::string_view given =
            std::string_view(arg).substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        std::vector<std::string_view> candidates;
        bool exact = false;
        for (const std::string_view name : LONG_OPTIONS) {
            if (name == given) {
                exact = true;
            } else if (name.starts_with(given)) {
                candidates.push_back(name);
            }
        }
        if (!exact && candidates.size() > 1) {
            die("option '--" + std::string(given) + "' is ambiguous");
        }
        if (!exact && candidates.size() == 1) {
            arg = "--" + std::string(candidates.front()) + (eq == std::string::npos ? "" : arg.substr(eq));
        }
        if (eq != std::string::npos && eq + 1 == arg.size()) {
            // "--range=": an empty value, which CLI11 would take from the next argument.
            arg.pop_back();
            out.push_back(std::move(arg));
            out.emplace_back();
            continue;
        }
        out.push_back(std::move(arg));
    }
    return out;
}

/// pmap's -A: "low[,high]", hex; "low" alone means low,low; an empty part keeps
/// the previous value (so several -A combine as in pmap).
void parse_range(const std::string& text, Options& opt) {
    std::string low = text;
    std::string high = text;
    if (const std::size_t comma = text.find(','); comma != std::string::npos) {
        low = text.substr(0, comma);
        high = text.substr(comma + 1);
    }
    bool bad = false;
    auto parse = [&](const std::string& part, std::uint64_t& value) {
        if (part.empty()) {
            return;
        }
        char* end = nullptr;
        value = std::strtoul(part.c_str(), &end, 16);
        bad = bad || *end != '\0';
    };
    parse(low, opt.range_low);
    parse(high, opt.range_high);
    if (bad) {
        die("failed to parse argument: '" + text + "'");
    }
    opt.has_range = true;
}

std::optional<SortKey> sort_key(const std::string& name) {
    static constexpr std::pair<std::string_view, SortKey> KEYS[] = {
        {"rss", SortKey::rss},   {"pss", SortKey::pss},     {"size", SortKey::size},
        {"swap", SortKey::swap}, {"dirty", SortKey::dirty}, {"address", SortKey::address},
    };
    for (const auto& [k, v] : KEYS) {
        if (k == name) {
            return v;
        }
    }
    return std::nullopt;
}

/// pmap's PID arguments: "N" or "/proc/N", N decimal, 0x-hex or 0-octal, 1..2^31-1.
/// "/proc/<not a digit>" is skipped, as pmap skips it.
std::vector<pid_t> parse_pids(const std::vector<std::string>& args) {
    std::vector<pid_t> pids;
    for (const std::string& arg : args) {
        const char* walk = arg.c_str();
        if (arg.starts_with("/proc/")) {
            walk += 6;
            if (*walk < '0' || *walk > '9') {
                std::fprintf(stderr, "xpmap: %s: not a process directory; ignored\n", arg.c_str());
                continue;
            }
        }
        if (*walk < '0' || *walk > '9') {
            die(arg + ": not a process id (a number from 1 to 2147483647)");
        }
        char* end = nullptr;
        errno = 0;
        const unsigned long pid = std::strtoul(walk, &end, 0);
        if (pid < 1 || pid > 0x7fffffffUL || *end != '\0') {
            die(arg + ": not a process id (a number from 1 to 2147483647)");
        }
        pids.push_back(static_cast<pid_t>(pid));
    }
    if (pids.empty()) {
        die("no process id given");
    }
    return pids;
}

class Runner {
  public:
    explicit Runner(const Options& options) : m_opt(options), m_pmap(options), m_utf8(locale_is_utf8()) {
        m_out.set_sink(STDOUT_FILENO);
    }

    void run(pid_t pid);
    int status() const { return m_status | (m_missing ? EXIT_MISSING : 0); }
    void flush();

  private:
    void report(pid_t pid, xproc::Error error);
    bool needs_smaps() const {
        const Format f = m_opt.format;
        return f == Format::extended || f == Format::smaps || f == Format::json || f == Format::by_file ||
               sort_needs_smaps(m_opt.sort);
    }

    const Options& m_opt;
    PmapFormatter m_pmap;
    const bool m_utf8;
    OutBuffer m_out;
    int m_status = 0;
    bool m_missing = false;
};

void Runner::flush() {
    m_out.flush();
    if (const int err = m_out.error(); err != 0) {
        std::fprintf(stderr, "xpmap: write error: %s\n", std::strerror(err));
        std::exit(EXIT_FAILURE);
    }
}

void Runner::report(pid_t pid, xproc::Error error) {
    flush();        // keep stdout and stderr in order on a terminal
    error.pid = 0;  // the line starts with the pid already
    std::fprintf(stderr, "xpmap: %d: %s\n", static_cast<int>(pid), error.message().c_str());
}

void Runner::run(pid_t pid) {
    auto proc = xproc::Process::open(pid);
    // pidfd_open refuses a thread that is not the thread-group leader: ENOENT
    // (Linux >= 6.9) or EINVAL (before).
    const auto not_a_leader = [](const xproc::Error& e) {
        return e.errno_value == ENOENT || e.errno_value == EINVAL;
    };
    if (!proc && not_a_leader(proc.error())) {
        // A thread id: pmap shows (and reads) its process.
        if (const auto tgid = xproc::thread_group_of(pid)) {
            proc = xproc::Process::open(*tgid);
        }
    }
    if (!proc) {
        if (proc.error().kind == xproc::ErrorKind::no_such_process || not_a_leader(proc.error())) {
            m_missing = true;
        } else {
            m_status |= EXIT_FAILURE;
        }
        report(pid, std::move(proc.error()));
        return;
    }
    const pid_t shown = proc->pid();
    auto stat = proc->stat();
    if (!stat) {
        // Gone before we could say anything about it: pmap does not list it either.
        if (stat.error().kind == xproc::ErrorKind::no_such_process) {
            m_missing = true;
        } else {
            m_status |= EXIT_FAILURE;
        }
        report(pid, std::move(stat.error()));
        return;
    }
    // pmap shows what it can: an unreadable cmdline is an empty one.
    auto argv = proc->cmdline();
    std::vector<std::string> args = argv ? std::move(*argv) : std::vector<std::string>{};
    std::string comm;
    if (args.empty() || m_opt.format == Format::json) {
        auto c = proc->comm();
        comm = c ? std::move(*c) : stat->comm;
    }

    ProcessData data;
    data.pid = shown;
    data.start_stack = stat->start_stack;
    if (m_opt.format != Format::json) {
        data.command = pmap_command(args, comm, stat->state, m_utf8);
        PmapFormatter::header(m_out, data);
    }

    // Complete or an error: the library reports a process that exits during the
    // read as no_such_process rather than return the part the kernel gave.
    auto map = needs_smaps() ? xproc::read_smaps(*proc) : xproc::read_maps(*proc);
    xproc::MemoryMap empty;
    const xproc::MemoryMap* mm = nullptr;
    if (map) {
        mm = &*map;
    } else if (map.error().kind == xproc::ErrorKind::kernel_thread ||
               map.error().kind == xproc::ErrorKind::zombie) {
        mm = &empty;  // no memory map: pmap prints an empty table
    } else {
        m_status |= EXIT_FAILURE;
        report(shown, std::move(map.error()));
        return;
    }
    data.rows = select_rows(*mm, m_opt);

    switch (m_opt.format) {
        case Format::json: {
            JsonProcess j;
            j.pid = shown;
            j.argv = std::move(args);
            j.comm = std::move(comm);
            j.rows = std::move(data.rows);
            write_json(m_out, j);
            break;
        }
        case Format::by_file:
            write_by_file(m_out, data.rows, m_opt);
            break;
        default:
            m_pmap.body(m_out, data);
            break;
    }
    flush();
}

}  // namespace
}  // namespace xpmap

int main(int argc, char** argv) {
    using namespace xpmap;
    std::setlocale(LC_ALL, "");  // as pmap: names are sanitized by the locale's isprint()
    const std::string name = program_name(argv[0]);
    if (argc < 2) {
        die("no process id given (see " + name + " --help)");
    }

    Options opt;
    bool x = false, d = false, c = false, n = false, json = false, by_file = false;
    std::string read_rc_from, create_rc_to, sort_name;
    long long top = 0;
    std::vector<std::string> pid_args;

    CLI::App app{"xpmap"};
    app.set_help_flag();  // pmap's -h/--help and -V/--version, handled in command-line order below
    app.allow_extras(false);
    app.positionals_at_end(false);
    auto no_earlier_error = [&app] {
        if (app.remaining_size() > 0) {
            die("unrecognized option '" + app.remaining().front() + "'");
        }
    };
    app.add_flag("-x,--extended", x);
    app.add_flag("-X", opt.x_count);
    app.add_flag("-d,--device", d);
    app.add_flag("-q,--quiet", opt.quiet);
    app.add_flag("-p,--show-path", opt.show_path);
    app.add_flag("-c,--read-rc", c);
    app.add_flag("-n,--create-rc", n);
    app.add_option("-C,--read-rc-from", read_rc_from)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_option("-N,--create-rc-to", create_rc_to)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    // Each -A is applied when it is seen: a bad one stops before a later -h would print help.
    app.add_option_function<std::string>("-A,--range", [&](const std::string& v) { parse_range(v, opt); })
        ->trigger_on_parse()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_flag_callback("-h,--help",
                          [&] {
                              no_earlier_error();
                              std::fputs(help_text(name).c_str(), stdout);
                              std::exit(EXIT_SUCCESS);
                          })
        ->trigger_on_parse();
    app.add_flag_callback("-V,--version",
                          [&] {
                              no_earlier_error();
                              std::printf("%s from xproc %s\n", name.c_str(), XPROC_VERSION);
                              std::exit(EXIT_SUCCESS);
                          })
        ->trigger_on_parse();
    app.add_flag("--json", json);
    app.add_flag("--by-file", by_file);
    app.add_option("--sort", sort_name)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_option("--top", top)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_option("pid", pid_args);

    std::vector<std::string> args = expand_abbreviations(argc, argv);
    std::vector<char*> cargs;
    for (std::string& a : args) {
        cargs.push_back(a.data());
    }
    try {
        app.parse(static_cast<int>(cargs.size()), cargs.data());
    } catch (const CLI::ParseError& e) {
        die(e.what());
    }
    const bool C = app.count("-C") > 0;
    const bool N = app.count("-N") > 0;
    if (app.count("--sort") > 0) {
        const auto key = sort_key(sort_name);
        if (!key) {
            die("--sort: unknown key '" + sort_name + "' (rss, pss, size, swap, dirty, address)");
        }
        opt.sort = *key;
    }
    if (app.count("--top") > 0) {
        if (top < 0) {
            die("--top: " + std::to_string(top) + " is not a number of rows");
        }
        opt.top = static_cast<std::size_t>(top);
    }

    // pmap's checks, in pmap's order.
    if (int(c) + int(C) + int(d) + int(n) + int(N) + int(x) + int(opt.x_count > 0) + int(json) +
            int(by_file) >
        1) {
        die("options -c, -C, -d, -n, -N, -x, -X, --json, --by-file are mutually exclusive");
    }
    if ((n || N) && (opt.quiet || opt.show_path)) {
        die("options -p, -q are mutually exclusive with -n, -N");
    }
    if ((n || N) && !pid_args.empty()) {
        die("too many arguments");
    }
    if (N) {
        if (!create_rc_file(create_rc_to)) {
            die("couldn't create the rc file");
        }
        std::fprintf(stderr, "xpmap: rc file successfully created, feel free to edit the content\n");
        return EXIT_SUCCESS;
    }
    if (n) {
        const std::string path = default_rc_path();
        if (path.empty()) {
            return EXIT_FAILURE;
        }
        if (!create_rc_file(path)) {
            die("couldn't create ~/.pmaprc");
        }
        std::fprintf(stderr, "xpmap: ~/.pmaprc file successfully created, feel free to edit the content\n");
        return EXIT_SUCCESS;
    }
    if (pid_args.empty()) {
        die("argument missing");
    }
    if (c || C) {
        const std::string path = C ? read_rc_from : default_rc_path();
        if (!C && path.empty()) {
            return EXIT_FAILURE;  // default_rc_path() said why
        }
        if (!read_rc_file(path, opt.enabled_fields, opt.show_path)) {
            die(C ? "couldn't read the rc file" : "couldn't read ~/.pmaprc");
        }
        opt.rc_fields = true;
    }

    if (json) {
        opt.format = Format::json;
    } else if (by_file) {
        opt.format = Format::by_file;
    } else if (opt.x_count > 0 || opt.rc_fields) {
        opt.format = Format::smaps;
    } else if (x) {
        opt.format = Format::extended;
    } else if (d) {
        opt.format = Format::device;
    }
    opt.pid_args = std::move(pid_args);

    const std::vector<pid_t> pids = parse_pids(opt.pid_args);
    Runner runner(opt);
    for (const pid_t pid : pids) {
        runner.run(pid);
    }
    runner.flush();
    return runner.status();
}
