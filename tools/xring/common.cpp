// SPDX-License-Identifier: MIT
#include "common.hpp"

#include <signal.h>
#include <unistd.h>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <thread>

namespace xring {

namespace {

std::atomic<int> g_signal{0};

extern "C" void on_signal(int signo) {
    int expected = 0;
    // Keep the first signal: it decides the exit status.
    g_signal.compare_exchange_strong(expected, signo);
}

std::string quoted(std::string_view s) {
    return "'" + std::string(s) + "'";
}

bool is_digits(std::string_view s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

std::string ring_name(std::string_view arg) {
    if (arg.empty()) {
        usage_error("empty ring name; give NAME or /NAME");
    }
    std::string name = arg.front() == '/' ? std::string(arg) : "/" + std::string(arg);
    if (auto ok = xproc::SharedMemory::validate_name(name); !ok) {
        const xproc::Error& e = ok.error();
        usage_error("bad ring name " + quoted(arg) + ": " + e.detail + "; " + e.hint);
    }
    return name;
}

std::uint64_t parse_size(std::string_view text, std::string_view option) {
    const auto bad = [&](const std::string& why) -> std::uint64_t {
        usage_error(std::string(option) + ": " + quoted(text) + " " + why +
                    " (a byte count such as 4096, 64K, 16M or 1G)");
    };
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
        ++digits;
    }
    if (digits == 0) {
        return bad("is not a size");
    }
    std::uint64_t value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
    if (ec != std::errc() || ptr != text.data() + digits) {
        return bad("is too large");
    }
    std::string suffix;
    for (const char c : text.substr(digits)) {
        suffix += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    unsigned shift = 0;
    if (!suffix.empty() && suffix != "b") {
        const std::string_view units = "kmgt";
        const std::size_t unit = units.find(suffix.front());
        const std::string_view rest = std::string_view(suffix).substr(1);
        if (unit == std::string_view::npos || (!rest.empty() && rest != "b" && rest != "ib")) {
            return bad("has an unknown suffix");
        }
        shift = 10 * static_cast<unsigned>(unit + 1);
    }
    if (shift != 0 && value > (~std::uint64_t{0} >> shift)) {
        return bad("is too large");
    }
    return value << shift;
}

std::uint64_t parse_count(std::string_view text, std::string_view option) {
    std::uint64_t value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (!is_digits(text) || ec != std::errc() || ptr != text.data() + text.size()) {
        usage_error(std::string(option) + ": " + quoted(text) + " is not a count (a whole number)");
    }
    return value;
}

std::chrono::nanoseconds parse_seconds(std::string_view text, std::string_view option) {
    double value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(value) ||
        value <= 0 || value > 1e9) {
        usage_error(std::string(option) + ": " + quoted(text) +
                    " is not a number of seconds (greater than 0, such as 2 or 0.5)");
    }
    return std::chrono::nanoseconds(static_cast<std::int64_t>(value * 1e9));
}

mode_t parse_mode(std::string_view text, std::string_view option) {
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 8);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value > 07777) {
        usage_error(std::string(option) + ": " + quoted(text) +
                    " is not an octal mode (such as 0600 or 660)");
    }
    return static_cast<mode_t>(value);
}

xproc::RingKind parse_kind(std::string_view text) {
    if (text == "spsc") {
        return xproc::RingKind::spsc;
    }
    if (text == "mpsc") {
        return xproc::RingKind::mpsc;
    }
    if (text == "broadcast") {
        return xproc::RingKind::broadcast;
    }
    usage_error("--kind: unknown ring kind " + quoted(text) + " (spsc, mpsc or broadcast)");
}

std::string_view kind_name(xproc::RingKind kind) noexcept {
    switch (kind) {
        case xproc::RingKind::spsc:
            return "spsc";
        case xproc::RingKind::mpsc:
            return "mpsc";
        case xproc::RingKind::broadcast:
            return "broadcast";
    }
    return "unknown";
}

std::string human_bytes(double bytes) {
    static constexpr const char* UNITS[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    std::size_t unit = 0;
    while (bytes >= 1024 && unit + 1 < std::size(UNITS)) {
        bytes /= 1024;
        ++unit;
    }
    char buf[32];
    if (unit == 0) {
        std::snprintf(buf, sizeof buf, "%.0f %s", bytes, UNITS[unit]);
    } else {
        std::snprintf(buf, sizeof buf, "%.1f %s", bytes, UNITS[unit]);
    }
    return buf;
}

std::string error_line(const std::string& name, const xproc::Error& error) {
    std::string message = error.message();
    if (message.find(name) != std::string::npos) {
        return message;
    }
    return "ring " + name + ": " + message;
}

bool role_is_held(const xproc::Error& error) noexcept {
    // The library documents os/EBUSY; it also names the holder's pid.
    return error.errno_value == EBUSY ||
           (error.kind == xproc::ErrorKind::os && error.errno_value == 0 && error.pid != 0 &&
            error.detail.find(" role is held by pid ") != std::string::npos);
}

std::string not_a_ring_reason(std::string detail) {
    // The library says "not an xproc ring (REASON)"; the caller says "NAME is not an xproc ring".
    constexpr std::string_view PREFIX = "not an xproc ring (";
    if (detail.starts_with(PREFIX) && detail.ends_with(")")) {
        return detail.substr(PREFIX.size(), detail.size() - PREFIX.size() - 1);
    }
    return detail;
}

namespace {

[[noreturn]] void open_failed(const std::string& name, const xproc::Error& e) {
    if (e.kind == xproc::ErrorKind::invalid_argument) {
        usage_error(error_line(name, e));
    }
    if (e.errno_value == ENOENT) {
        failure("ring " + name + " does not exist; create it with `xring create " + name +
                "` (or pass --create to pub)");
    }
    if (e.errno_value == EPROTO) {
        if (e.detail.find("layout version") != std::string::npos) {
            failure("ring " + name + ": " + e.detail +
                    "; use the xproc version that created it, or remove it (`xring rm " + name +
                    "`) and create it again");
        }
        failure(name + " is not an xproc ring (" + not_a_ring_reason(e.detail) +
                "); pick another name, or see what it is with `xshm ls`");
    }
    if (e.errno_value == EAGAIN) {
        failure("ring " + name +
                " is still being created (its header is not ready); retry, or if its creator died, remove it "
                "with `xring rm " +
                name + "` and create it again");
    }
    if (e.kind == xproc::ErrorKind::corrupt) {
        failure("ring " + name + " is corrupt: " + e.detail + "; run `xring check " + name + "` for details");
    }
    failure(error_line(name, e));
}

}  // namespace

xproc::RingSegment open_ring(const std::string& name, xproc::ShmAccess access) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
        auto seg = xproc::RingSegment::open(name, access);
        if (seg) {
            return std::move(*seg);
        }
        if (seg.error().errno_value == EAGAIN && std::chrono::steady_clock::now() < give_up) {
            check_signal();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
        }
        open_failed(name, seg.error());
    }
}

xproc::RingConfig ring_config(const CreateOptions& options) {
    xproc::RingConfig config;
    const std::uint64_t capacity = parse_size(options.capacity, "--capacity");
    if (capacity < xproc::ring::RING_MIN_CAPACITY || capacity > xproc::ring::RING_MAX_CAPACITY) {
        usage_error("--capacity: " + std::to_string(capacity) + " bytes is outside [" +
                    std::to_string(xproc::ring::RING_MIN_CAPACITY) + ", 1T]");
    }
    config.capacity = std::bit_ceil(capacity);
    const std::uint32_t largest = xproc::ring_max_record_for(config.capacity);
    if (!options.max_record.empty()) {
        const std::uint64_t max_record = parse_size(options.max_record, "--max-record");
        if (max_record == 0 || max_record > largest) {
            usage_error("--max-record: " + std::to_string(max_record) + " bytes does not fit a ring of " +
                        std::to_string(config.capacity) + " bytes (from 1 to " + std::to_string(largest) +
                        "); raise --capacity to at least twice the largest message");
        }
        config.max_record = static_cast<std::uint32_t>(max_record);
    }
    config.mode = parse_mode(options.mode, "--mode");
    config.kind = parse_kind(options.kind);
    return config;
}

xproc::RingSegment create_ring(const std::string& name, const xproc::RingConfig& config, bool exists_ok) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        auto seg = xproc::RingSegment::create(name, config);
        if (seg) {
            return std::move(*seg);
        }
        const xproc::Error& e = seg.error();
        if (e.errno_value == EEXIST) {
            if (!exists_ok) {
                failure("ring " + name + " already exists; remove it first with `xring rm " + name +
                        "`, or use it as it is");
            }
            auto opened = xproc::RingSegment::open(name);
            if (opened) {
                return std::move(*opened);
            }
            if (opened.error().errno_value != ENOENT) {
                return open_ring(name);  // the errors of a plain open (and its EAGAIN retries)
            }
            continue;  // removed in between: create again
        }
        if (e.kind == xproc::ErrorKind::invalid_argument) {
            usage_error(error_line(name, e));
        }
        failure("cannot create ring " + name + ": " + e.message());
    }
    failure("cannot create ring " + name + ": the name kept appearing and disappearing");
}

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocked read(2) returns EINTR and we look at the flag
    for (const int signo : {SIGINT, SIGTERM, SIGHUP}) {
        ::sigaction(signo, &sa, nullptr);
    }
    ::signal(SIGPIPE, SIG_IGN);
}

int pending_signal() noexcept {
    return g_signal.load(std::memory_order_relaxed);
}

void check_signal() {
    if (const int signo = pending_signal(); signo != 0) {
        throw QuietExit{EXIT_SIGNAL_BASE + signo};
    }
}

}  // namespace xring
