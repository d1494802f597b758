// SPDX-License-Identifier: MIT
#pragma once
/// @file ipc_bench.hpp
/// The cross-process IPC benchmark harness (issue 3): xproc's ring next to the usual ways two
/// Linux processes exchange messages, and next to what the hardware allows, in one run.
/// Front ends: `bench/ring_bench` (Google Benchmark) and `xring bench`.
///
/// Every measurement runs between two processes forked for it: side A (the producer, or the
/// pinger) and side B (the consumer, or the echoer). The calling process only supervises: it
/// creates the transport's resources, starts both sides together (a pipe), waits for them with
/// a deadline, kills and reaps them on any failure, reads their results from a shared page and
/// removes every name it made. Nothing of a transport (an iceoryx runtime, a ZeroMQ context,
/// signal dispositions, CPU affinity) ever lives in the caller.
///
/// What is measured:
/// - throughput: A sends messages of `size` bytes as fast as the transport takes them, each
///   carrying its sequence number in its first and last 8 bytes; B checks every one (length,
///   order, no loss, no duplicate: a final stop message carries the count). Time is end to end:
///   from A's first send to B's receipt of the stop message (CLOCK_MONOTONIC, which both
///   processes share). Any error makes the measurement `failed`.
/// - ping-pong: A sends a message, B echoes it, A checks it and times the round trip; after a
///   warm-up, every round trip is a sample (median, p99, p99.9).
///
/// Usage:
/// ```
/// xproc::ipc_bench::Options options = quick ? xproc::ipc_bench::quick_options() : {};
/// xproc::ipc_bench::Session session(options);
/// xproc::ipc_bench::Report report = session.run_all(xproc::ipc_bench::default_cases(options));
/// xproc::ipc_bench::print_table(stdout, report);
/// return xproc::ipc_bench::succeeded(report) ? 0 : 1;
/// ```
///
/// Not thread safe: one Session runs one measurement at a time. The caller should not have
/// other threads forking at the same time (they would inherit the start pipe for a moment).

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xproc::ipc_bench {

/// The ways of moving messages that the harness knows.
enum class Transport : std::uint8_t {
    pipe,            ///< pipe(2): one write(2) per message; the reader reads up to 64 KiB at a time
    unix_stream,     ///< socketpair(AF_UNIX, SOCK_STREAM): like pipe
    unix_seqpacket,  ///< socketpair(AF_UNIX, SOCK_SEQPACKET): one send/recv per message
    posix_mq,        ///< mq_open(3): mq_send / mq_receive, msgsize = message size
    boost_mq,        ///< boost::interprocess::message_queue (mutex + condition in shared memory)
    zeromq,          ///< ZeroMQ over ipc:// (abstract socket): PUSH/PULL, PAIR for ping-pong
    iceoryx,         ///< iceoryx 2 untyped publisher/subscriber, zero-copy loan, busy polling; needs RouDi
    ring_copy,       ///< xproc ring, copy API: try_write / try_read
    ring_zero_copy,  ///< xproc ring, zero-copy API: claim/commit, poll(handler, 256)
    ring_copy_adaptive,       ///< ring_copy with the ring's adaptive waits (spin, then futex sleep)
    ring_zero_copy_adaptive,  ///< ring_zero_copy with the ring's adaptive waits
    atomic_ping_pong,   ///< reference: two processes bounce a counter in one cache line (ping-pong only)
    line_ping_pong,     ///< reference: a 56-byte message and its sequence in one line of an array, each
                        ///< way (ping-pong only, size 56: the least a message protocol can cost)
    cache_line_stream,  ///< reference: 64-byte lines with a per-line sequence, one consumer position
                        ///< (throughput only, size 64: the most any ring can move)
};

inline constexpr std::array<Transport, 14> ALL_TRANSPORTS{
    Transport::pipe,
    Transport::unix_stream,
    Transport::unix_seqpacket,
    Transport::posix_mq,
    Transport::boost_mq,
    Transport::zeromq,
    Transport::iceoryx,
    Transport::ring_copy,
    Transport::ring_zero_copy,
    Transport::ring_copy_adaptive,
    Transport::ring_zero_copy_adaptive,
    Transport::atomic_ping_pong,
    Transport::line_ping_pong,
    Transport::cache_line_stream,
};

/// What one measurement measures.
enum class Kind : std::uint8_t {
    throughput,  ///< messages per second, one way
    ping_pong,   ///< round-trip latency
    idle,        ///< adaptive rings only: CPU the consumer burns waiting on an idle ring, and its wake-up
};

/// How the plain ring transports (ring_copy, ring_zero_copy) wait for room or data; the
/// *_adaptive transports always use `adaptive`, so one run compares both.
enum class RingWait : std::uint8_t {
    busy,      ///< spin on try_write / try_read / claim / poll (NO_WAIT calls)
    blocking,  ///< the ring's blocking calls with WaitPolicy::sleep (futex at once)
    adaptive,  ///< the ring's blocking calls with WaitPolicy::adaptive (spin, then futex)
};

std::string_view to_string(Transport transport) noexcept;
std::string_view to_string(Kind kind) noexcept;
std::string_view to_string(RingWait wait) noexcept;
/// The inverse of to_string ("ring_copy" -> Transport::ring_copy); nullopt when unknown.
std::optional<Transport> parse_transport(std::string_view name) noexcept;
std::optional<RingWait> parse_ring_wait(std::string_view name) noexcept;

/// Where the two sides of a measurement run. On a VM the two vCPUs can differ in speed for
/// minutes at a time (measured here: a spin loop took 0.50 ns per iteration on one and 0.29
/// on the other, then both 0.31 a few minutes later), and the side that lands on the slower
/// one decides a throughput run (ring copy API: 23 M msgs/s with the producer there, 70 M
/// the other way round). Unpinned, every run draws its placement anew, so a ratio of two
/// cases compares two draws.
enum class Pinning : std::uint8_t {
    both_ways,  ///< each run made twice, A on the first CPU and B on the second, then swapped; the better
                ///< kept
    one_way,    ///< A on the first CPU, B on the second
    none,       ///< the kernel places the sides (and may move them)
};
std::string_view to_string(Pinning pinning) noexcept;
std::optional<Pinning> parse_pinning(std::string_view name) noexcept;
/// One line saying how the transport is used, for --help and the README.
std::string_view describe(Transport transport) noexcept;
/// False for the references that measure one kind only (atomic_ping_pong, line_ping_pong,
/// cache_line_stream).
bool supports(Transport transport, Kind kind) noexcept;
/// False when the harness was built without the library the transport needs (ZeroMQ, iceoryx).
bool compiled_in(Transport transport) noexcept;

/// Settings of a run. The defaults make a full run take about half a minute.
struct Options {
    std::vector<Transport> transports;                    ///< empty: all of ALL_TRANSPORTS
    std::vector<std::size_t> throughput_sizes{64, 1024};  ///< message sizes, 16 .. 4096 bytes
    /// Ping-pong message size. 56: with the ring's 8-byte record header a message fills one
    /// 64-byte cache line, as the bare atomic ping-pong's counter does; at 64 bytes a ring
    /// record spans two lines and each one-way trip moves both (measured ~2x the atomic).
    std::size_t ping_pong_size = 56;
    /// Throughput: send exactly this many messages; 0: send for `seconds`.
    std::uint64_t messages = 0;
    double seconds = 0.5;
    /// Ping-pong: timed round trips after `warmup_round_trips` untimed ones; a run stops early
    /// after `ping_pong_max_seconds` when at least 1,000 samples were taken.
    std::uint64_t round_trips = 50'000;
    std::uint64_t warmup_round_trips = 1'000;
    double ping_pong_max_seconds = 2.0;
    /// Idle: how long the consumer of an adaptive ring waits for the one message.
    double idle_seconds = 1.0;
    RingWait ring_wait = RingWait::busy;
    std::uint64_t ring_capacity = std::uint64_t{1} << 20;  ///< data area of each ring, a power of two
    std::uint32_t ring_max_record = 4096;
    /// Throughput runs: the ring producer's and consumer's set_slip() bytes (0: off).
    std::uint64_t ring_slip = 65536;
    /// Ping-pong: the ring consumers' set_release_step() bytes (0: free after every call).
    std::uint64_t ring_release_step = 65536;
    std::size_t stream_lines = 4096;  ///< cache_line_stream: lines in the array, a power of two
    /// How side A (producer/pinger) and side B (consumer/echoer) are pinned, and to which two
    /// CPUs (-1: the first two this process may run on; see resolve_pinning()).
    Pinning pinning = Pinning::both_ways;
    int a_cpu = -1;
    int b_cpu = -1;
    /// Measure each case this many times and keep the best run (highest msgs/s, lowest median
    /// RTT): other work on the machine only ever slows a run down. Every run must be correct:
    /// one failed run makes the measurement failed.
    unsigned repetitions = 1;
    /// A measurement whose sides have not finished this long after the start is killed and
    /// reported as failed. Setting up (connecting, RouDi discovery) has its own 20 s.
    double timeout_seconds = 60;
    /// The iceoryx daemon: a path, or a name looked up in PATH. Started (and stopped at the end)
    /// only when none runs already.
    std::string roudi = "iox-roudi";
    bool quick = false;  ///< set by quick_options(); only reported
};

/// Small runs for tests and `xring bench --quick`: the whole default case list in a few seconds.
Options quick_options();

/// Fills in the CPUs of a pinned run: unset ones (-1) become the first two CPUs of this
/// process's affinity mask (with fewer than two, pinning becomes none). Returns an error
/// text (naming --cpu and the CPUs allowed) when a CPU given is not one this process may
/// run on, or both are the same.
std::optional<std::string> resolve_pinning(Options& options);

/// One measurement to make.
struct Case {
    Transport transport = Transport::pipe;
    Kind kind = Kind::throughput;
    std::size_t size = 64;
    friend bool operator==(const Case&, const Case&) = default;
};

/// Throughput at every size, then ping-pong, for every selected transport that supports it
/// (the references only at the size they make sense for: 64 bytes).
std::vector<Case> default_cases(const Options& options);

enum class Status : std::uint8_t {
    ok,
    unavailable,  ///< not built in, or its daemon could not be started: `reason` says why
    failed,       ///< wrong data, a side died or timed out: `reason` says what happened
};
std::string_view to_string(Status status) noexcept;

/// The result of one measurement.
struct Measurement {
    Case what;
    Status status = Status::failed;
    std::string reason;  ///< unavailable/failed: why (one line)
    std::string note;    ///< ok or not: what the reader should know (e.g. a reduced mq depth)
    // Throughput.
    std::uint64_t messages = 0;  ///< data messages received and checked
    double seconds = 0;          ///< end to end, first send to last receipt
    double messages_per_second = 0;
    double megabytes_per_second = 0;  ///< payload, 10^6 bytes per second
    // Ping-pong (nanoseconds).
    std::uint64_t round_trips = 0;  ///< timed samples
    double rtt_min_ns = 0;
    double rtt_median_ns = 0;
    double rtt_p99_ns = 0;
    double rtt_p999_ns = 0;
    double rtt_max_ns = 0;
    double rtt_mean_ns = 0;
    // Idle (adaptive rings).
    double idle_cpu_us_per_s = 0;       ///< consumer CPU time per second of waiting, microseconds
    double wake_us = 0;                 ///< from the send after the idle period to its receipt
    std::uint64_t sequence_errors = 0;  ///< wrong length, order, loss or duplicate (any makes it failed)
    unsigned runs = 0;                  ///< runs made (Options::repetitions); the numbers are the best one's
    /// The CPUs sides A and B ran on in the run kept (-1: not pinned).
    int a_cpu = -1;
    int b_cpu = -1;
};

enum class Verdict : std::uint8_t { pass, miss, not_measured };
std::string_view to_string(Verdict verdict) noexcept;

/// A ratio of two measurements of the same run, with the goal of issue 3.
struct Ratio {
    std::string name;         ///< "ring_copy_vs_pipe"
    std::string description;  ///< "ring copy API vs pipe, msgs/s at 64 B"
    /// 0 when not measured. With two rounds or more (Options::repetitions), the median of
    /// `rounds`; else, or when a round lacks one of the cases, `best_of`.
    double value = 0;
    /// The ratio in each round, its two cases measured in that round (each at its better
    /// placement when pinned both ways). Empty with one round.
    std::vector<double> rounds;
    double best_of = 0;  ///< the ratio of the two cases' best runs over all rounds
    double goal = 0;
    bool at_least = true;  ///< pass when value >= goal (else when value <= goal)
    Verdict verdict = Verdict::not_measured;
};

/// The goal ratios: ring copy API vs pipe (>= 10x) and vs Boost message_queue (>= 5x),
/// zero-copy batch vs the cache-line stream (>= 0.70), ring ping-pong median vs the bare
/// atomic ping-pong (<= 1.3x), adaptive vs busy (>= 0.9), CPU per idle second (< 1 ms);
/// and line_ping_pong's against the same 1.3x (a reference: the floor of any message
/// protocol). `best`: each case's best run; `rounds`: every round's measurements (a case
/// absent from a round or not ok there leaves that ratio on `best`). With two rounds or
/// more a ratio is the median of its per-round ratios, the idle CPU the worst round's: on
/// a VM whose speed drifts over minutes, two cases' best runs can come from different
/// minutes, and a brief fast spell in one case's runs would decide the ratio alone.
std::vector<Ratio> compute_ratios(std::span<const Measurement> best,
                                  std::span<const std::vector<Measurement>> rounds = {});

/// Everything a front end prints.
struct Report {
    Options options;
    std::vector<Measurement> measurements;
    std::vector<Ratio> ratios;
    std::string roudi;        ///< how iceoryx's daemon was provided, or why it was not
    double load_before = -1;  ///< 1-minute load average before and after the run
    double load_after = -1;
    long cpus = 0;
    double clock_overhead_ns = 0;  ///< cost of one clock read, included in every RTT sample
};

/// True when no measurement failed (unavailable ones do not count).
bool succeeded(const Report& report) noexcept;

/// The human table: one row per transport and size (throughput and RTT side by side), the
/// ratios with PASS/MISS, and notes.
std::string format_table(const Report& report);
/// The same as one JSON object.
std::string format_json(const Report& report);
void print_table(std::FILE* out, const Report& report);
void print_json(std::FILE* out, const Report& report);

/// Runs measurements. Owns the iceoryx daemon it had to start (from the first iceoryx case
/// on) and stops it when destroyed. Move-only.
class Session {
  public:
    explicit Session(Options options = {});
    ~Session();
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    const Options& options() const noexcept;

    /// One measurement. Never throws for an OS or transport failure: the status says it.
    Measurement run(const Case& what);

    /// One measurement of `what`, whatever Options::repetitions says: one run, or with
    /// Pinning::both_ways two (one per placement, the better kept; the first placement
    /// alternates from call to call).
    Measurement run_once(const Case& what);

    /// Keeps in `best` the better of `best` and `m` (the first ok run, then the highest msgs/s
    /// or the lowest median RTT; for idle, the higher CPU cost, since its goal is a ceiling);
    /// a failed or unavailable `m` replaces it. Adds up the runs.
    static void keep_best(Measurement& best, Measurement m);

    /// Runs `cases` Options::repetitions times in interleaved rounds (every case once, then
    /// every case again: on a VM whose state drifts over minutes, back-to-back runs of one
    /// case would meet other conditions than the next case's), keeps each case's best run,
    /// calls `progress` for each case after the last round, and fills the rest of the report.
    Report run_all(std::span<const Case> cases, const std::function<void(const Measurement&)>& progress = {});

    /// How RouDi was provided so far ("" before the first iceoryx case).
    std::string roudi_status() const;

    /// Stops the RouDi this session started (the destructor does it too).
    void stop_roudi() noexcept;

    /// Builds a report from measurements made here (ratios, load, clock cost): each case's
    /// best run, and every round's runs (see compute_ratios).
    Report make_report(std::vector<Measurement> measurements,
                       std::span<const std::vector<Measurement>> rounds = {}) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

/// Session(options).run_all(default_cases(options), progress).
Report run_all(const Options& options, const std::function<void(const Measurement&)>& progress = {});

}  // namespace xproc::ipc_bench
