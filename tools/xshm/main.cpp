// SPDX-License-Identifier: MIT
// xshm: list, create, inspect and remove POSIX shared-memory segments, show
// which processes use them, and map another process's shared mapping. A thin
// layer over xproc/shm.hpp. See man/xshm.1.
//
// Exit status: 0 done; 1 an error (one line on stderr, "xshm: <message>"); 2 a
// usage error (unknown command or option, missing or malformed argument).

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "format.hpp"

#ifndef XPROC_VERSION
#define XPROC_VERSION "unknown"
#endif

int main(int argc, char** argv) {
    using namespace xshm;
    CLI::App app{
        "List, create, inspect and remove POSIX shared-memory segments (/dev/shm), show which processes use "
        "them, and map another process's shared mapping.",
        "xshm"};
    app.set_version_flag("-V,--version", std::string("xshm from xproc ") + XPROC_VERSION,
                         "print the version and exit");
    app.require_subcommand(1, 1);
    app.footer("Names may be given with or without the leading '/'. See xshm(1).");

    LsArgs ls_args;
    auto* ls = app.add_subcommand("ls",
                                  "list the segments in /dev/shm: size, owner, mode, the processes that "
                                  "map them or hold them open, and which are xproc rings");
    ls->add_flag("--json", ls_args.json, "one JSON document instead of a table");

    CreateArgs create_args;
    auto* create =
        app.add_subcommand("create", "create a segment (exclusively: an existing name is an error)");
    create->add_option("NAME", create_args.name, "segment name")->required()->type_name("");
    create->add_option("SIZE", create_args.size, "size in bytes, with an optional K, M, G or T suffix")
        ->required()
        ->type_name("");
    create->add_option("-m,--mode", create_args.mode, "permission bits in octal (default 0600)")
        ->type_name("OCTAL");

    std::vector<std::string> rm_names;
    auto* rm = app.add_subcommand("rm", "remove segments (each one; mappings that exist stay valid)");
    rm->add_option("NAME", rm_names, "segment names")->required()->type_name("");

    std::string cat_name;
    auto* cat = app.add_subcommand("cat", "write a segment's bytes to standard output");
    cat->add_option("NAME", cat_name, "segment name")->required()->type_name("");

    HexdumpArgs hexdump_args;
    std::string hexdump_offset, hexdump_length;
    auto* hexdump = app.add_subcommand("hexdump", "show a segment's bytes as `hexdump -C` does");
    hexdump->add_option("NAME", hexdump_args.name, "segment name")->required()->type_name("");
    auto* offset_opt =
        hexdump->add_option("OFFSET", hexdump_offset, "first byte to show (default 0)")->type_name("");
    auto* length_opt =
        hexdump->add_option("LENGTH", hexdump_length, "how many bytes (default: to the end)")->type_name("");

    std::string who_name;
    auto* who = app.add_subcommand("who", "list the processes that map a segment or hold it open");
    who->add_option("NAME", who_name, "segment name")->required()->type_name("");

    AttachArgs attach_args;
    std::string attach_out;
    auto* attach = app.add_subcommand(
        "attach", "map the shared mapping of process PID that contains ADDR into xshm, and show or save it");
    attach->add_option("PID", attach_args.pid, "process id")->required()->type_name("");
    attach->add_option("ADDR", attach_args.address, "an address inside the mapping, hexadecimal")
        ->required()
        ->type_name("");
    attach->add_flag("-w,--write", attach_args.write, "map it read-write (default: read-only)");
    auto* dump_opt = attach
                         ->add_option("--hexdump", attach_args.hexdump,
                                      "show LENGTH bytes from OFFSET of the mapping, as `hexdump -C` does")
                         ->expected(2)
                         ->type_name("OFFSET LENGTH");
    auto* out_opt =
        attach->add_option("-o,--out", attach_out, "write the mapping's bytes to FILE ('-': stdout)")
            ->type_name("FILE");
    dump_opt->excludes(out_opt);

    // CLI11 reports an unknown command as a missing one: name it.
    const auto is_command = [&](const char* word) {
        for (const CLI::App* sub : app.get_subcommands({})) {
            if (sub->get_name() == word) {
                return true;
            }
        }
        return false;
    };
    if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
        std::fprintf(
            stderr,
            "xshm: '%s' is not an xshm command (ls, create, rm, cat, hexdump, who, attach; see 'xshm "
            "--help')\n",
            printable(argv[1]).c_str());
        return EXIT_USAGE;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
            return app.exit(e);  // --help, --version: printed on stdout
        }
        std::string where = "xshm";
        if (const auto subs = app.get_subcommands(); !subs.empty()) {
            where += " " + subs.front()->get_name();
        }
        std::fprintf(stderr, "xshm: %s (see '%s --help')\n", printable(e.what()).c_str(), where.c_str());
        return EXIT_USAGE;
    }

    if (ls->parsed()) {
        return run_ls(ls_args);
    }
    if (create->parsed()) {
        return run_create(create_args);
    }
    if (rm->parsed()) {
        return run_rm(rm_names);
    }
    if (cat->parsed()) {
        return run_cat(cat_name);
    }
    if (hexdump->parsed()) {
        if (offset_opt->count() > 0) {
            hexdump_args.offset = hexdump_offset;
        }
        if (length_opt->count() > 0) {
            hexdump_args.length = hexdump_length;
        }
        return run_hexdump(hexdump_args);
    }
    if (who->parsed()) {
        return run_who(who_name);
    }
    if (attach->parsed()) {
        if (out_opt->count() > 0) {
            attach_args.out = attach_out;
        }
        return run_attach(attach_args);
    }
    return EXIT_USAGE;  // require_subcommand makes this unreachable
}
