// SPDX-License-Identifier: MIT
// ring_epoll: a ring consumer inside an epoll(7) event loop. It waits on the ring's
// doorbell descriptor together with a timerfd (a once-a-second tick that also notices a
// producer that died: a dead process rings no doorbell) and a signalfd (SIGINT and
// SIGTERM stop it cleanly). The producer is a child process that sends COUNT messages
// in bursts, then an end-of-stream mark.
//
//   ring_epoll [COUNT]
//
// Build against an installed xproc:
//   c++ -std=c++23 ring_epoll.cpp $(pkg-config --cflags --libs xproc)

#include <xproc/ring_segment.hpp>

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <thread>

namespace {

/// The child: opens the ring by name and sends `count` messages in bursts of 50.
int produce(const std::string& name, int count) {
    auto segment = xproc::RingSegment::open(name);
    if (!segment) {
        std::fprintf(stderr, "producer: %s\n", segment.error().message().c_str());
        return 1;
    }
    auto out = segment->producer();
    if (!out) {
        std::fprintf(stderr, "producer: %s\n", out.error().message().c_str());
        return 1;
    }
    for (int i = 0; i < count; ++i) {
        if (i % 50 == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the consumer goes idle
        }
        const std::string msg = "message " + std::to_string(i);
        if (out->write(std::as_bytes(std::span(msg)), xproc::WAIT_FOREVER) != xproc::WriteStatus::ok) {
            return 1;
        }
    }
    return out->write_end_of_stream(xproc::WAIT_FOREVER) == xproc::WriteStatus::ok ? 0 : 1;
}

void die(const char* what, const xproc::Error& e) {
    std::fprintf(stderr, "ring_epoll: %s: %s\n", what, e.message().c_str());
    std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
    const int count = argc > 1 ? std::atoi(argv[1]) : 500;
    const std::string name = "/xproc-epoll-" + std::to_string(getpid());

    xproc::RingConfig config;
    config.capacity = 64 * 1024;  // bytes of messages in flight
    auto segment = xproc::RingSegment::create(name, config);
    if (!segment) {
        die("create", segment.error());
    }
    auto in = segment->consumer();
    if (!in) {
        (void)xproc::RingSegment::remove(name);
        die("consumer", in.error());
    }

    const pid_t child = fork();
    if (child == 0) {
        _exit(produce(name, count));
    }

    // The three event sources.
    auto doorbell = in->doorbell_fd();  // owned by the consumer; do not close it
    if (!doorbell) {
        die("doorbell", doorbell.error());
    }
    const int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    const itimerspec every_second{{1, 0}, {1, 0}};
    timerfd_settime(timer, 0, &every_second, nullptr);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    const int signals = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);

    const int ep = epoll_create1(EPOLL_CLOEXEC);
    for (const int fd : {*doorbell, timer, signals}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }

    int received = 0, wakeups = 0, ticks = 0;
    bool in_order = true;
    auto handle = [&](std::span<const std::byte> msg) {
        const std::string_view text(reinterpret_cast<const char*>(msg.data()), msg.size());
        in_order = in_order && text == "message " + std::to_string(received);
        ++received;
    };
    const char* ending = nullptr;
    while (ending == nullptr) {
        // 1. Drain everything that is there (zero-copy, in batches of up to 64).
        for (;;) {
            auto n = in->poll(handle, 64);
            if (!n) {
                die("poll", n.error());
            }
            if (*n == 0) {
                break;
            }
        }
        if (in->saw_end_of_stream()) {
            ending = "end of stream";
            break;
        }
        // 2. Arm the doorbell; if something arrived meanwhile, drain again instead of sleeping.
        auto armed = in->arm_doorbell();
        if (!armed) {
            die("arm", armed.error());
        }
        if (*armed) {
            continue;
        }
        // 3. Sleep until the doorbell, the timer or a signal.
        epoll_event events[3];
        const int n = epoll_wait(ep, events, 3, -1);
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == *doorbell) {
                in->clear_doorbell();
                ++wakeups;
            } else if (fd == timer) {
                std::uint64_t expirations;
                (void)!read(timer, &expirations, sizeof expirations);
                ++ticks;
                // A producer that died rings no doorbell: ask the ring (does not block).
                auto state = in->wait(xproc::NO_WAIT);
                if (state && *state == xproc::ReadStatus::peer_gone) {
                    ending = "the producer died";
                }
            } else if (fd == signals) {
                ending = "stopped by a signal";
            }
        }
    }

    int status = 0;
    waitpid(child, &status, 0);
    const int exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::printf(
        "received %d messages%s in %d doorbell wake-ups, %d timer ticks; %s, producer exit status %d\n",
        received, in_order ? " in order" : " OUT OF ORDER", wakeups, ticks, ending, exit_status);
    close(ep);
    close(signals);
    close(timer);
    (void)xproc::RingSegment::remove(name);
    const bool ok =
        in_order && received == count && std::string_view(ending) == "end of stream" && exit_status == 0;
    return ok ? 0 : 1;
}
