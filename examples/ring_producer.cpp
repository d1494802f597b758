// SPDX-License-Identifier: MIT
// ring_producer: opens the Channel<Tick> that ring_consumer created and sends COUNT
// ticks, then an end-of-stream mark. A full ring makes it wait; a consumer that dies
// makes it stop with an error instead of waiting forever.
//
//   ring_consumer /ticks &
//   ring_producer /ticks 1000
//
// Build against an installed xproc:
//   c++ -std=c++23 ring_producer.cpp $(pkg-config --cflags --libs xproc)

#include <xproc/channel.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "tick.hpp"

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: ring_producer /NAME [COUNT]\n");
        return 2;
    }
    const char* name = argv[1];
    const std::uint64_t count = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10;

    // The consumer may not have created the ring yet: retry for a while.
    auto channel = xproc::Channel<Tick>::open(name);
    for (int i = 0; !channel && channel.error().errno_value == ENOENT && i < 100; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        channel = xproc::Channel<Tick>::open(name);
    }
    if (!channel) {
        std::fprintf(stderr, "ring_producer: %s\n", channel.error().message().c_str());
        return 1;
    }
    auto out = channel->sender();  // refused while another live process is the producer
    if (!out) {
        std::fprintf(stderr, "ring_producer: %s\n", out.error().message().c_str());
        return 1;
    }

    for (std::uint64_t seq = 0; seq < count; ++seq) {
        const Tick tick{seq,
                        1'000'000 + static_cast<std::int64_t>(seq % 100) * 25,
                        static_cast<std::uint32_t>(100 + seq % 7),
                        {'X', 'P', 'R', 'C'}};
        // Waits while the ring is full; peer_gone if the consumer died meanwhile.
        const xproc::WriteStatus s = out->send(tick, xproc::WAIT_FOREVER);
        if (s != xproc::WriteStatus::ok) {
            std::fprintf(stderr, "ring_producer: tick %llu: %s\n", static_cast<unsigned long long>(seq),
                         std::string(xproc::to_string(s)).c_str());
            return 1;
        }
    }
    if (out->send_end_of_stream(xproc::WAIT_FOREVER) != xproc::WriteStatus::ok) {
        std::fprintf(stderr, "ring_producer: the consumer is gone\n");
        return 1;
    }
    std::printf("sent %llu messages\n", static_cast<unsigned long long>(count));
    return 0;
}
