// SPDX-License-Identifier: MIT
// ring_consumer: creates a Channel<Tick> (a named shared-memory ring carrying one
// trivially copyable type) and prints what ring_producer, another process, sends it,
// until the producer's end-of-stream mark. Then it removes the ring's name.
//
//   ring_consumer /ticks &        # prints "ready" once the ring exists
//   ring_producer /ticks 1000
//
// Build against an installed xproc:
//   c++ -std=c++23 ring_consumer.cpp $(pkg-config --cflags --libs xproc)

#include <xproc/channel.hpp>

#include <cinttypes>
#include <cstdio>

#include "tick.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: ring_consumer /NAME\n");
        return 2;
    }
    const char* name = argv[1];

    // Room for 4096 ticks in flight; the name must not exist yet (O_EXCL, mode 0600).
    auto channel = xproc::Channel<Tick>::create(name, 4096);
    if (!channel) {
        std::fprintf(stderr, "ring_consumer: %s\n", channel.error().message().c_str());
        return 1;
    }
    auto ticks = channel->receiver();
    if (!ticks) {
        std::fprintf(stderr, "ring_consumer: %s\n", ticks.error().message().c_str());
        (void)xproc::Channel<Tick>::remove(name);
        return 1;
    }
    std::printf("ready\n");
    std::fflush(stdout);

    std::uint64_t received = 0;
    std::int64_t turnover = 0;
    int status = 0;
    for (;;) {
        // Sleeps (spin, then futex) until a tick, end of stream, or a dead producer.
        auto r = ticks->receive(xproc::WAIT_FOREVER);
        if (!r) {  // corrupt segment, or a message that is not a Tick
            std::fprintf(stderr, "ring_consumer: %s\n", r.error().message().c_str());
            status = 1;
            break;
        }
        if (r->status == xproc::ReadStatus::end_of_stream) {
            break;
        }
        if (r->status == xproc::ReadStatus::peer_gone) {
            std::fprintf(stderr, "ring_consumer: the producer died after %" PRIu64 " ticks\n", received);
            status = 1;
            break;
        }
        const Tick& t = *r->value;
        if (t.seq != received) {
            std::fprintf(stderr, "ring_consumer: tick %" PRIu64 " arrived as %" PRIu64 "\n", received, t.seq);
            status = 1;
            break;
        }
        if (received < 3) {
            std::printf("tick %" PRIu64 ": %.8s %" PRIu32 " @ %" PRId64 "\n", t.seq, t.symbol, t.size,
                        t.price);
        }
        turnover += t.price * t.size;
        ++received;
    }
    std::printf("received %" PRIu64 " messages, in order, turnover %" PRId64 "\n", received, turnover);
    (void)xproc::Channel<Tick>::remove(name);  // the mapping stays valid until we exit
    return status;
}
