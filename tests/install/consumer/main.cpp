// Uses the installed headers and library: counts its own mappings.
#include <xproc/maps.hpp>
#include <xproc/process.hpp>

#include <unistd.h>
#include <cstdio>

int main() {
    auto map = xproc::read_maps(getpid());
    auto self = xproc::Process::self();
    if (!map || !self) {
        std::fprintf(stderr, "consumer: %s\n", (!map ? map.error() : self.error()).message().c_str());
        return 1;
    }
    std::printf("consumer ok: %zu mappings\n", map->size());
    return map->empty() ? 1 : 0;
}
