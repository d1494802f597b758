// SPDX-License-Identifier: MIT
// xring: create a ring, publish standard input to it, subscribe to standard output, show
// live statistics, check a segment (stat and check also read xproc::message_queue
// segments), benchmark. A thin layer over RingSegment,
// RingProducer and RingConsumer (xproc/ring_segment.hpp). See man/xring.1.
//
// Exit status: 0 success; 1 an error (one line on stderr: `xring: <message>`); 2 bad
// usage; 3 the peer died without closing (pub: the consumer; sub: the producer);
// 128 + N when pub/sub were stopped by signal N (SIGINT 130, SIGTERM 143) after leaving
// their role cleanly.

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench.hpp"
#include "common.hpp"
#include "inspect.hpp"
#include "pubsub.hpp"

#ifndef XPROC_VERSION
#define XPROC_VERSION "unknown"
#endif

namespace xring {
namespace {

int run_create(const std::string& arg, const CreateOptions& options) {
    const std::string name = ring_name(arg);
    const xproc::RingConfig config = ring_config(options);
    create_ring(name, config, false);
    return EXIT_OK;
}

int run_rm(const std::vector<std::string>& args) {
    int status = EXIT_OK;
    std::vector<std::string> names;
    for (const std::string& arg : args) {
        names.push_back(ring_name(arg));  // all names are checked before anything is removed
    }
    for (const std::string& name : names) {
        // Only rings: a typo must not remove someone else's segment.
        auto shm = xproc::SharedMemory::open(name, xproc::ShmAccess::read_only, true);
        if (!shm) {
            const xproc::Error& e = shm.error();
            std::fprintf(stderr, "xring: %s\n",
                         e.errno_value == ENOENT ? ("ring " + name + " does not exist").c_str()
                                                 : error_line(name, e).c_str());
            status = EXIT_ERROR;
            continue;
        }
        if (!xproc::looks_like_ring(std::span<const std::byte>(shm->data(), shm->size()))) {
            std::fprintf(
                stderr,
                "xring: %s is not an xproc ring; not removed (use `xshm rm %s` to remove any segment)\n",
                name.c_str(), name.c_str());
            status = EXIT_ERROR;
            continue;
        }
        if (auto ok = xproc::RingSegment::remove(name); !ok) {
            std::fprintf(stderr, "xring: %s\n", error_line(name, ok.error()).c_str());
            status = EXIT_ERROR;
        }
    }
    return status;
}

}  // namespace
}  // namespace xring

int main(int argc, char** argv) {
    using namespace xring;
    CLI::App app{"xring: create, publish to, subscribe to, inspect and benchmark xproc shared-memory rings",
                 "xring"};
    app.set_version_flag("--version", std::string("xring from xproc ") + XPROC_VERSION);
    app.require_subcommand(1);
    app.footer("Exit status: 0 ok, 1 error, 2 usage, 3 peer died, 128+N stopped by signal N. See xring(1).");

    // create
    std::string create_name;
    CreateOptions create_options;
    CLI::App* create = app.add_subcommand("create", "Create a ring (a POSIX shared-memory segment)");
    create->add_option("NAME", create_name, "Ring name, with or without the leading '/'")
        ->type_name("")
        ->required();
    auto add_create_options = [](CLI::App* cmd, CreateOptions& o) {
        cmd->add_option("--capacity", o.capacity,
                        "Data area in bytes, rounded up to a power of two (K/M/G suffixes)")
            ->type_name("BYTES")
            ->capture_default_str();
        cmd->add_option("--max-record", o.max_record,
                        "Largest message in bytes (default and maximum: a record of half the capacity)")
            ->type_name("BYTES");
        cmd->add_option("--mode", o.mode, "Permission bits, octal")
            ->type_name("OCTAL")
            ->capture_default_str();
        cmd->add_option("--kind", o.kind, "spsc, mpsc (many producers) or broadcast (many readers)")
            ->type_name("KIND")
            ->capture_default_str();
    };
    add_create_options(create, create_options);

    // rm
    std::vector<std::string> rm_names;
    CLI::App* rm = app.add_subcommand("rm", "Remove rings (processes that use them keep their mapping)");
    rm->add_option("NAME", rm_names, "Ring names")->type_name("")->required();

    // pub
    PubOptions pub_options;
    std::string pub_name, pub_chunk, pub_timeout;
    CLI::App* pub = app.add_subcommand("pub", "Publish standard input to a ring: one message per line");
    pub->add_option("NAME", pub_name, "Ring name")->type_name("")->required();
    pub->add_option("--chunk", pub_chunk,
                    "Binary data: messages of this many bytes (the last may be shorter)")
        ->type_name("BYTES");
    pub->add_option("--timeout", pub_timeout, "Give up when a message finds no room for this many seconds")
        ->type_name("SECS");
    pub->add_flag("--create", pub_options.create,
                  "Create the ring if it does not exist (with the options below)");
    add_create_options(pub, pub_options.create_options);

    // sub
    SubOptions sub_options;
    std::string sub_name, sub_count;
    CLI::App* sub =
        app.add_subcommand("sub", "Subscribe to a ring: messages to standard output, one per line");
    sub->add_option("NAME", sub_name, "Ring name")->type_name("")->required();
    sub->add_flag("--raw", sub_options.raw, "Write messages as they are, without a newline after each");
    sub->add_option("--count", sub_count, "Exit after this many messages")->type_name("N");
    sub->add_flag("--follow", sub_options.follow,
                  "When the producer dies, wait for a new one instead of exiting 3");

    // stat
    StatOptions stat_options;
    std::string stat_name, stat_watch, stat_samples;
    CLI::App* stat = app.add_subcommand(
        "stat", "Show a ring's (or an xproc::message_queue's) positions, fill, counters and peers");
    stat->add_option("NAME", stat_name, "Ring or message queue name")->type_name("")->required();
    stat->add_option("--watch", stat_watch, "Sample every this many seconds, with rates, until interrupted")
        ->type_name("SECS");
    stat->add_option("--samples", stat_samples, "With --watch: stop after this many samples")->type_name("N");
    stat->add_flag("--json", stat_options.json, "One JSON object per sample, on one line");

    // check
    std::string check_name;
    CLI::App* check = app.add_subcommand(
        "check", "Validate a ring (or xproc::message_queue) segment offline and list every problem found");
    check->add_option("NAME", check_name, "Ring or message queue name")->type_name("")->required();

    // bench
    BenchOptions bench_options;
    CLI::App* bench =
        app.add_subcommand("bench", "Measure the ring against pipes, sockets and message queues");
    bench->add_flag("--quick", bench_options.quick, "A short run (a few seconds)");
    bench->add_flag("--json", bench_options.json, "The report as one JSON object");
    bench
        ->add_option("--transport", bench_options.transports,
                     "Only these transports (repeatable: pipe, unix_stream, ring_copy, ...)")
        ->type_name("NAME");
    bench
        ->add_option("--messages", bench_options.messages,
                     "Throughput: send exactly N messages per run instead of running for a time")
        ->type_name("N")
        ->check(CLI::PositiveNumber);
    bench
        ->add_option("--size", bench_options.sizes,
                     "Throughput message sizes in bytes (repeatable; 16..4096)")
        ->type_name("BYTES")
        ->check(CLI::Range(16, 4096));
    bench
        ->add_option("--ping-size", bench_options.ping_size,
                     "Ping-pong message size in bytes (16..4096; default 56: with the ring's 8-byte "
                     "record header, one cache line)")
        ->type_name("BYTES")
        ->check(CLI::Range(16, 4096));
    bench->add_flag("--throughput-only", bench_options.throughput_only,
                    "Only the throughput runs (no ping-pong, no idle measurement)");
    bench
        ->add_option("--repeat", bench_options.repeat,
                     "Measure everything K times in interleaved rounds: each case's best run, each "
                     "goal ratio the median of the rounds' ratios")
        ->type_name("K")
        ->check(CLI::Range(1, 100));
    bench
        ->add_option("--pin", bench_options.pin,
                     "Where the two sides run: both (each run made twice, A on the first CPU and B on the "
                     "second, then swapped; the better kept), one (that way only), none (the kernel decides)")
        ->type_name("MODE")
        ->check(CLI::IsMember({"both", "one", "none"}));
    bench
        ->add_option("--cpu", bench_options.cpus,
                     "The two CPUs --pin uses (default: the first two this process may run on)")
        ->type_name("A,B")
        ->delimiter(',')
        ->expected(2)
        ->check(CLI::NonNegativeNumber);

    // CLI11 would report an unknown command as a missing one.
    if (argc > 1 && argv[1][0] != '-') {
        bool known = false;
        for (const CLI::App* cmd : app.get_subcommands({})) {
            known = known || cmd->get_name() == argv[1];
        }
        if (!known) {
            std::fprintf(stderr,
                         "xring: unknown command '%s': create, rm, pub, sub, stat, check or bench (see xring "
                         "--help)\n",
                         argv[1]);
            return EXIT_USAGE;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const std::string kind = e.get_name();
        if (kind == "CallForHelp" || kind == "CallForAllHelp" || kind == "CallForVersion") {
            return app.exit(e);
        }
        std::string message = e.what();
        if (kind == "RequiredError" && message.find("subcommand") != std::string::npos) {
            message = argc > 1 && argv[1][0] == '-'
                          ? "unknown option '" + std::string(argv[1]) + "'; a command comes first"
                          : "a command is required: create, rm, pub, sub, stat, check or bench";
        }
        std::string command = "xring";
        for (const CLI::App* cmd : app.get_subcommands()) {
            command += " " + cmd->get_name();
        }
        std::fprintf(stderr, "%s: %s (see %s --help)\n", command.c_str(), message.c_str(), command.c_str());
        return EXIT_USAGE;
    }

    try {
        if (*create) {
            return run_create(create_name, create_options);
        }
        if (*rm) {
            return run_rm(rm_names);
        }
        if (*pub) {
            pub_options.name = ring_name(pub_name);
            if (!pub_chunk.empty()) {
                pub_options.chunk = parse_size(pub_chunk, "--chunk");
                if (pub_options.chunk == 0) {
                    usage_error("--chunk: must be at least 1 byte");
                }
            }
            if (!pub_timeout.empty()) {
                pub_options.timeout = parse_seconds(pub_timeout, "--timeout");
            }
            if (!pub_options.create) {
                for (const char* o : {"--capacity", "--max-record", "--mode", "--kind"}) {
                    if (pub->count(o) != 0) {
                        usage_error(std::string(o) + " applies only with --create");
                    }
                }
            } else {
                (void)ring_config(pub_options.create_options);  // usage errors before anything is created
            }
            install_signal_handlers();
            return run_pub(pub_options);
        }
        if (*sub) {
            sub_options.name = ring_name(sub_name);
            if (!sub_count.empty()) {
                sub_options.count = parse_count(sub_count, "--count");
                if (sub_options.count == 0) {
                    usage_error("--count: must be at least 1");
                }
            }
            install_signal_handlers();
            return run_sub(sub_options);
        }
        if (*stat) {
            stat_options.name = ring_name(stat_name);
            if (!stat_watch.empty()) {
                stat_options.watch = parse_seconds(stat_watch, "--watch");
            }
            if (!stat_samples.empty()) {
                if (!stat_options.watch) {
                    usage_error("--samples applies only with --watch");
                }
                stat_options.samples = parse_count(stat_samples, "--samples");
            }
            install_signal_handlers();
            return run_stat(stat_options);
        }
        if (*check) {
            return run_check(ring_name(check_name));
        }
        if (*bench) {
            install_signal_handlers();
            return run_bench(bench_options);
        }
    } catch (const Failure& f) {
        std::fflush(stdout);
        std::fprintf(stderr, "xring: %s\n", f.what());
        return f.status();
    } catch (const QuietExit& q) {
        return q.status;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "xring: out of memory\n");
        return EXIT_ERROR;
    }
    return EXIT_USAGE;
}
