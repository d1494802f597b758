// SPDX-License-Identifier: MIT
// message_queue_switch: a program written for boost::interprocess::message_queue, moved to
// xproc's lock-free drop-in by changing one line (the alias below). A sender and a receiver
// process exchange COUNT numbered messages in two priorities; the receiver checks them.
//
//   message_queue_switch 1000          # xproc (this build)
//   c++ -std=c++23 -DUSE_BOOST message_queue_switch.cpp ...   # the same program on Boost
//
// Build against an installed xproc:
//   c++ -std=c++23 message_queue_switch.cpp $(pkg-config --cflags --libs xproc)

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <boost/interprocess/ipc/message_queue.hpp>
#include <xproc/message_queue.hpp>

namespace bip = boost::interprocess;

#ifdef USE_BOOST
using message_queue = bip::message_queue;
#else
using message_queue = xproc::message_queue;  // the one-line switch
#endif

int main(int argc, char** argv) {
    const unsigned count = argc > 1 ? static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10)) : 1000;
    const std::string name = "xproc-example-mq-" + std::to_string(::getpid());
    message_queue::remove(name.c_str());
    try {
        message_queue mq(bip::create_only, name.c_str(), 100, sizeof(unsigned));
        const pid_t child = ::fork();
        if (child == 0) {  // the sender: odd numbers urgent (priority 1)
            message_queue out(bip::open_only, name.c_str());
            for (unsigned i = 0; i < count; ++i) {
                out.send(&i, sizeof i, i % 2);
            }
            ::_exit(0);
        }
        unsigned received = 0;
        unsigned next[2] = {0, 1};  // FIFO within each priority
        bool ok = true;
        while (received < count) {
            unsigned value = 0;
            message_queue::size_type size = 0;
            unsigned priority = 0;
            mq.receive(&value, sizeof value, size, priority);
            ok = ok && size == sizeof value && priority == value % 2 && value == next[priority];
            next[priority] += 2;
            ++received;
        }
        int status = 0;
        ::waitpid(child, &status, 0);
        message_queue::remove(name.c_str());
        std::printf("received %u messages in order per priority: %s\n", received, ok ? "ok" : "WRONG");
        return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
    } catch (const bip::interprocess_exception& e) {
        message_queue::remove(name.c_str());
        std::fprintf(stderr, "message_queue_switch: %s\n", e.what());
        return 1;
    }
}
