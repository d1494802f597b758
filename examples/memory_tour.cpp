// SPDX-License-Identifier: MIT
// memory_tour: read your own memory map with xproc and print the five mappings
// that hold the most resident memory. With --wait it then stays alive (printing
// its pid) so a tool such as `xpmap -x PID` can look at it; `make demo` does that.
//
// Build against an installed xproc:
//   c++ -std=c++23 memory_tour.cpp $(pkg-config --cflags --libs xproc)

#include <xproc/maps.hpp>

#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

// Globals for `make demo` to read from outside with xpeek (info address, x, find).
extern "C" {
[[gnu::used]] int tour_answer = 42;
[[gnu::used]] char tour_motto[] = "memory seen from outside";
}

int main(int argc, char** argv) {
    const bool wait = argc > 1 && std::strcmp(argv[1], "--wait") == 0;

    // Something worth looking at: 8 MiB of touched heap and a named anonymous region.
    std::vector<char> heap(8 << 20, 'x');
    const std::size_t region_size = 4 << 20;
    void* region = mmap(nullptr, region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
        std::perror("memory_tour: mmap");
        return 1;
    }
    std::memset(region, 1, region_size);
    // Named regions show as [anon:tour-cache] in /proc/PID/maps (Linux 5.17+); best effort.
    prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, reinterpret_cast<unsigned long>(region), region_size,
          "tour-cache");

    auto map = xproc::read_smaps(getpid());
    if (!map) {
        std::fprintf(stderr, "memory_tour: %s\n", map.error().message().c_str());
        return 1;
    }
    std::vector<const xproc::Mapping*> rows;
    std::uint64_t rss_kb = 0;
    for (const xproc::Mapping& m : *map) {
        rows.push_back(&m);
        rss_kb += m.smaps.rss_kb;
    }
    std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->smaps.rss_kb > b->smaps.rss_kb; });

    std::printf("pid %d: %zu mappings, %llu kB resident; largest:\n", getpid(), map->size(),
                static_cast<unsigned long long>(rss_kb));
    for (std::size_t i = 0; i < rows.size() && i < 5; ++i) {
        const xproc::Mapping& m = *rows[i];
        const std::string_view name = m.name.empty() ? std::string_view("[anonymous]") : m.name;
        std::printf("  %012llx %8llu kB rss  %.*s  %.*s\n", static_cast<unsigned long long>(m.start),
                    static_cast<unsigned long long>(m.smaps.rss_kb), 4, m.perms.text().data(),
                    static_cast<int>(name.size()), name.data());
    }
    std::fflush(stdout);

    if (wait) {
        std::printf("ready\n");
        std::fflush(stdout);
        pause();  // until killed
    }
    munmap(region, region_size);
    return 0;
}
