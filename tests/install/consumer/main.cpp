// Uses the installed headers and library: counts its own mappings, passes a value
// through a Channel<T>, and creates an Unwinder (so a static libxproc.a must bring
// libunwind along: find_dependency in xproc-config.cmake, Requires.private in xproc.pc).
#include <xproc/channel.hpp>
#include <xproc/maps.hpp>
#include <xproc/process.hpp>
#include <xproc/symbols.hpp>
#include <xproc/unwind.hpp>

#include <unistd.h>
#include <cstdio>
#include <string>

int main() {
    auto map = xproc::read_maps(getpid());
    auto self = xproc::Process::self();
    if (!map || !self) {
        std::fprintf(stderr, "consumer: %s\n", (!map ? map.error() : self.error()).message().c_str());
        return 1;
    }
    const std::string name = "/xproc-install-test-cpp-" + std::to_string(getpid());
    auto channel = xproc::Channel<long>::create(name, 4);
    (void)xproc::Channel<long>::remove(name);
    if (!channel) {
        std::fprintf(stderr, "consumer: %s\n", channel.error().message().c_str());
        return 1;
    }
    auto tx = channel->sender();
    auto rx = channel->receiver();
    if (!tx || !rx || tx->send(42) != xproc::WriteStatus::ok) {
        std::fprintf(stderr, "consumer: channel endpoints or send failed\n");
        return 1;
    }
    auto got = rx->receive();
    if (!got || got->value != 42) {
        std::fprintf(stderr, "consumer: channel receive failed\n");
        return 1;
    }
    auto symbols = xproc::SymbolTable::load(getpid());
    if (!symbols) {
        std::fprintf(stderr, "consumer: %s\n", symbols.error().message().c_str());
        return 1;
    }
    auto unwinder = xproc::Unwinder::create(getpid(), *symbols);
    if (!unwinder) {
        std::fprintf(stderr, "consumer: %s\n", unwinder.error().message().c_str());
        return 1;
    }
    std::printf("consumer ok: %zu mappings, a value through a channel\n", map->size());
    return map->empty() ? 1 : 0;
}
