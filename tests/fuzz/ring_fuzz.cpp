// SPDX-License-Identifier: MIT
// libFuzzer target for a ring segment seen by its consumer (and a producer, and the
// inspection functions): the segment's memory is untrusted.
//
// The input is a program:
//   - geometry: kind, capacity (64..4096), max_record, whether the memory is truncated;
//   - header fields (positions, write_limit, identity fields, up to 4 peer slots) set over a
//     freshly formatted ring, each either a plausible or a raw value;
//   - the data area's bytes;
//   - then operations: poll, read, wait(NO_WAIT), check_ring, snapshot_ring, producer
//     try_write and claim/commit/abort, changing a header field or data bytes between
//     operations (positions going backwards, records rewritten under the reader), attaching
//     again.
// Every answer must be a status or Error{corrupt} (os/EAGAIN for version 0); every span
// handed to a handler must lie inside the data area; ASan (the segment is a heap block of
// exactly its size) catches any access outside the segment.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "xproc/ring.hpp"

namespace {

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            std::fprintf(stderr, "ring_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
            std::abort();                                                                     \
        }                                                                                     \
    } while (false)

using xproc::ring::RingHeader;

volatile std::uint64_t g_sink;
pid_t g_dead_pid = 0;

void check_error(const xproc::Error& e) {
    if (e.kind == xproc::ErrorKind::os && e.errno_value == EAGAIN) {
        return;
    }
    if (e.kind != xproc::ErrorKind::corrupt) {
        std::fprintf(stderr, "ring_fuzz: unexpected error: %s\n", e.message().c_str());
        std::abort();
    }
}

template <typename T>
bool answered(const xproc::Result<T>& r) {
    if (!r) {
        check_error(r.error());
        return false;
    }
    return true;
}

/// A pid for a peer slot or role: none, us (alive), a dead process, or anything.
std::int32_t fuzz_pid(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
            return 0;
        case 1:
            return static_cast<std::int32_t>(::getpid());
        case 2:
            return g_dead_pid;
        default:
            return in.ConsumeIntegral<std::int32_t>();
    }
}

/// A position: near `base` (a multiple of 8 or not), or anything.
std::uint64_t fuzz_position(FuzzedDataProvider& in, std::uint64_t base, std::uint64_t capacity) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
            return base + in.ConsumeIntegralInRange<std::uint64_t>(0, capacity / 8 + 2) * 8;
        case 1:
            return base - in.ConsumeIntegralInRange<std::uint64_t>(0, capacity / 8 + 2) * 8;
        case 2:
            return base + in.ConsumeIntegralInRange<std::uint64_t>(0, 2 * capacity);
        default:
            return in.ConsumeIntegral<std::uint64_t>();
    }
}

/// Sets one header field chosen by the input.
void set_field(FuzzedDataProvider& in, RingHeader& h, std::uint64_t capacity) {
    auto u64 = [](std::uint64_t& f, std::uint64_t v) { std::atomic_ref<std::uint64_t>(f).store(v); };
    auto u32 = [](std::uint32_t& f, std::uint32_t v) { std::atomic_ref<std::uint32_t>(f).store(v); };
    const std::uint64_t tail = std::atomic_ref<std::uint64_t>(h.tail).load();
    switch (in.ConsumeIntegralInRange<int>(0, 13)) {
        case 0:
            u64(h.tail, fuzz_position(in, tail, capacity));
            break;
        case 1:
            u64(in.ConsumeBool() ? h.head : h.zeroed, fuzz_position(in, tail, capacity));
            break;
        case 2:
            u64(h.write_limit, fuzz_position(in, tail, capacity));
            break;
        case 3:
            u64(h.capacity, in.ConsumeBool() ? std::uint64_t{64} << in.ConsumeIntegralInRange<int>(0, 34)
                                             : in.ConsumeIntegral<std::uint64_t>());
            break;
        case 4:
            u32(h.max_record, in.ConsumeIntegral<std::uint32_t>());
            break;
        case 5:
            u32(h.kind, in.ConsumeIntegralInRange<std::uint32_t>(0, 4));
            break;
        case 6:
            u32(h.version, in.ConsumeIntegralInRange<std::uint32_t>(0, 3));
            break;
        case 7:
            u32(h.header_size, in.ConsumeIntegral<std::uint32_t>());
            break;
        case 8:
            u64(h.magic, in.ConsumeBool() ? xproc::ring::RING_MAGIC : in.ConsumeIntegral<std::uint64_t>());
            break;
        case 9:
        case 10:
        case 11: {
            xproc::ring::PeerSlot& slot = h.slot[in.ConsumeIntegralInRange<int>(0, 3)];
            std::atomic_ref<std::int32_t>(slot.pid).store(fuzz_pid(in));
            u64(slot.position, fuzz_position(in, std::atomic_ref<std::uint64_t>(h.head).load(), capacity));
            u64(slot.claim_size, in.ConsumeBool()
                                     ? in.ConsumeIntegralInRange<std::uint64_t>(0, capacity / 8 + 1) * 8
                                     : in.ConsumeIntegral<std::uint64_t>());
            break;
        }
        case 12:
            std::atomic_ref<std::int32_t>(h.producer_pid).store(fuzz_pid(in));
            std::atomic_ref<std::int32_t>(h.consumer_pid).store(fuzz_pid(in));
            break;
        default:
            // Only the futex bit: the doorbell bit with a fuzzed pid and fd would make the
            // producer write into a pipe of some process (see ring_doorbell).
            u32(h.consumer_waiting, in.ConsumeBool() ? xproc::ring::WAIT_SLEEPING : 0);
            u32(h.producer_waiting, in.ConsumeBool() ? xproc::ring::WAIT_SLEEPING : 0);
            break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // A pid that no process has: a child that exited and was reaped.
    g_dead_pid = ::fork();
    if (g_dead_pid == 0) {
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(g_dead_pid, &status, 0);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto kind = static_cast<xproc::RingKind>(in.ConsumeIntegralInRange<int>(1, 3));
    const std::uint64_t capacity = std::uint64_t{64} << in.ConsumeIntegralInRange<int>(0, 6);
    const auto max_record = static_cast<std::uint32_t>(
        in.ConsumeIntegralInRange<std::uint64_t>(1, capacity / 2 - sizeof(xproc::ring::RecordHeader)));
    const bool truncated = in.ConsumeIntegralInRange<int>(0, 15) == 0;
    // A truncated segment loses part of its data area (the header stays whole).
    const std::size_t cut = truncated ? in.ConsumeIntegralInRange<std::size_t>(1, capacity / 8 - 1) * 8 : 0;
    const std::size_t bytes = xproc::ring_segment_size(capacity) - cut;
    // Exactly the segment: ASan reports any byte read or written past it. A truncated
    // segment is a formatted one cut short (its header promises more than there is).
    void* raw = nullptr;
    FUZZ_CHECK(::posix_memalign(&raw, 128, bytes) == 0);
    auto* memory = static_cast<std::byte*>(raw);
    const std::span<std::byte> segment(memory, bytes);
    {
        const std::size_t full_size = xproc::ring_segment_size(capacity);
        void* full = nullptr;
        FUZZ_CHECK(::posix_memalign(&full, 128, full_size) == 0);
        std::memset(full, 0, full_size);
        FUZZ_CHECK(xproc::format_ring(std::span<std::byte>(static_cast<std::byte*>(full), full_size),
                                      capacity, max_record, kind)
                       .has_value());
        std::memcpy(memory, full, bytes);
        std::free(full);
    }
    auto& header = *reinterpret_cast<RingHeader*>(memory);
    std::byte* const area = memory + sizeof(RingHeader);
    const std::size_t area_size = bytes - sizeof(RingHeader);
    // Positions start anywhere; then some fields are set by the input.
    const std::uint64_t start = in.ConsumeBool() ? 0 : in.ConsumeIntegral<std::uint32_t>() * std::uint64_t{8};
    // zeroed: at head, or a little behind it (a consumer that died releasing).
    header.zeroed =
        start - std::min(start, in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<std::uint64_t>(0, 8) * 8);
    header.head = start;
    header.tail = start + in.ConsumeIntegralInRange<std::uint64_t>(0, capacity / 8) * 8;
    header.write_limit = header.tail;
    for (int fields = in.ConsumeIntegralInRange<int>(0, 6); fields > 0; --fields) {
        set_field(in, header, capacity);
    }
    {
        const std::vector<std::uint8_t> content = in.ConsumeBytes<std::uint8_t>(area_size);
        if (!content.empty()) {
            std::memcpy(area, content.data(), content.size());
        }
    }

    xproc::AttachOptions options;
    options.take_role = false;
    options.wait.liveness_interval = std::chrono::microseconds(1);
    std::optional<xproc::RingConsumer> consumer;
    std::optional<xproc::RingProducer> producer;
    auto attach = [&] {
        consumer.reset();
        producer.reset();
        if (auto c = xproc::RingConsumer::attach(segment, options); answered(c)) {
            consumer.emplace(std::move(*c));
        }
        if (auto p = xproc::RingProducer::attach(segment, options); answered(p)) {
            producer.emplace(std::move(*p));
        }
    };
    attach();
    std::vector<std::byte> buffer(4096);
    for (int ops = 0; ops < 64 && in.remaining_bytes() > 0; ++ops) {
        switch (in.ConsumeIntegralInRange<int>(0, 9)) {
            case 0:
                if (consumer) {
                    const std::uint64_t cap = consumer->capacity();
                    const bool in_place = consumer->kind() != xproc::RingKind::broadcast;
                    const std::uint32_t max = consumer->max_record();
                    auto n = consumer->poll(
                        [&](std::span<const std::byte> m) {
                            FUZZ_CHECK(m.size() <= max);
                            if (in_place) {
                                FUZZ_CHECK(m.data() >= area && m.data() + m.size() <= area + cap);
                            }
                            std::uint64_t sum = 0;
                            for (const std::byte b : m) {
                                sum += static_cast<std::uint8_t>(b);
                            }
                            g_sink = g_sink + sum;
                        },
                        in.ConsumeIntegralInRange<std::size_t>(1, 16));
                    answered(n);
                }
                break;
            case 1:
                if (consumer) {
                    const std::size_t want = in.ConsumeIntegralInRange<std::size_t>(0, buffer.size());
                    auto r = consumer->read(std::span<std::byte>(buffer.data(), want), xproc::NO_WAIT);
                    if (answered(r)) {
                        if (r->status == xproc::ReadStatus::ok) {
                            FUZZ_CHECK(r->length <= want);
                        }
                    }
                }
                break;
            case 2:
                if (consumer) {
                    answered(consumer->wait(xproc::NO_WAIT));
                }
                break;
            case 3:
                answered(xproc::check_ring(segment));
                break;
            case 4:
                answered(xproc::snapshot_ring(segment));
                break;
            case 5:
                if (producer) {
                    const std::size_t len =
                        in.ConsumeIntegralInRange<std::size_t>(0, std::size_t{max_record} + 8);
                    std::vector<std::byte> msg(len, std::byte{0x5a});
                    (void)producer->try_write(msg);
                }
                break;
            case 6:
                if (producer) {
                    const std::size_t len = in.ConsumeIntegralInRange<std::size_t>(0, producer->max_record());
                    const xproc::Claim c = producer->claim(len);
                    if (c.status == xproc::WriteStatus::ok) {
                        FUZZ_CHECK(c.buffer.size() == len);
                        FUZZ_CHECK(c.buffer.data() >= area &&
                                   c.buffer.data() + len <= area + producer->capacity());
                        std::memset(c.buffer.data(), 0xa5, len);
                        if (in.ConsumeBool()) {
                            producer->abort();
                        } else {
                            producer->commit(in.ConsumeIntegralInRange<std::size_t>(0, len));
                        }
                    }
                }
                break;
            case 7:
                set_field(in, header, capacity);
                break;
            case 8: {
                // Rewrite a few bytes of the data area (a record header under the reader).
                const std::size_t at =
                    in.ConsumeIntegralInRange<std::size_t>(0, area_size - 1) & ~std::size_t{7};
                const std::uint64_t word = in.ConsumeIntegral<std::uint64_t>();
                std::memcpy(area + at, &word, std::min<std::size_t>(8, area_size - at));
                break;
            }
            default:
                attach();
                break;
        }
    }
    consumer.reset();
    producer.reset();
    std::free(memory);
    return 0;
}
