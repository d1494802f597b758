// SPDX-License-Identifier: MIT
// Target for the memory and scan tests: known values at known addresses, and the
// awkward places of an address space a remote read must handle.
//
//   mem_target [--info FILE] [--big MIB] [--sparse MIB] [--thp 0|1]
//
// Sets up, then prints "NAME 0xADDR [SIZE]" lines (also written to FILE if given, so a
// test can read them after "ready"), then "ready", then waits for signals:
//   value    int32 0x5eed1234; SIGUSR1 adds 1 to it, then prints "changed"
//   decoy    int32 0x5eed1234 that never changes
//   u64      0x1122334455667788      double  3.25 (f64)     float  -1.5 (f32)
//   needle   the string "XPROC-NEEDLE" (also written into the big buffer, see below)
//   holes    3 pages: page 0 filled with 0xA1, page 1 unmapped (a hole), page 2 filled with 0xA2
//   protnone 1 page PROT_NONE whose bytes were 0x5A before the mprotect
//   readonly 1 page PROT_READ filled with 0x77
//   big      a buffer (default 1 MiB) where byte i = i % 251, with the needle written at offsets
//            65531 (across a 64 KiB boundary), 1048579 and size-12 (when they fit); with
//            --thp 1 madvise(MADV_HUGEPAGE)d before it is filled (transparent huge pages)
//   sparse   (only with --sparse) MAP_NORESERVE anonymous, untouched (zeros) except a u64
//            0xC0FFEE0DDBA11 in its last 8 bytes
//   straddle 2 pages, rw-p then r--p (two mappings), 0x33 with the needle 5 bytes before the boundary
//   top      the last user page (0x7fffffffe000) mapped and filled with 0x7E, 0x0 if refused
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

volatile int32_t g_value = 0x5eed1234;
volatile int32_t g_decoy = 0x5eed1234;
volatile uint64_t g_u64 = 0x1122334455667788ull;
volatile double g_double = 3.25;
volatile float g_float = -1.5f;
char g_needle[16] = "XPROC-NEEDLE";

static volatile sig_atomic_t g_usr1 = 0;
static FILE* g_info = NULL;

static void on_usr1(int sig) {
    (void)sig;
    g_usr1 = 1;
}

static void say(const char* name, const volatile void* addr, size_t size) {
    printf("%s 0x%lx %zu\n", name, (unsigned long)(uintptr_t)addr, size);
    if (g_info) {
        fprintf(g_info, "%s 0x%lx %zu\n", name, (unsigned long)(uintptr_t)addr, size);
    }
}

static void* map(size_t size, int prot, int extra) {
    void* p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

int main(int argc, char** argv) {
    size_t big_mib = 1;
    size_t sparse_mib = 0;
    int thp = 0;
    const char* info_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--info") == 0) {
            info_path = argv[i + 1];
        } else if (strcmp(argv[i], "--big") == 0) {
            big_mib = strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--sparse") == 0) {
            sparse_mib = strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--thp") == 0) {
            thp = strcmp(argv[i + 1], "1") == 0;
        }
    }
    if (info_path) {
        g_info = fopen(info_path, "w");
        if (!g_info) {
            perror(info_path);
            return 1;
        }
    }
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    // SIGUSR1 is delivered only inside sigsuspend(): none is lost between check and wait.
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGUSR1);

    unsigned char* holes = map(3 * page, PROT_READ | PROT_WRITE, 0);
    memset(holes, 0xA1, page);
    memset(holes + 2 * page, 0xA2, page);

    unsigned char* protnone = map(page, PROT_READ | PROT_WRITE, 0);
    memset(protnone, 0x5A, page);
    mprotect(protnone, page, PROT_NONE);

    unsigned char* readonly = map(page, PROT_READ | PROT_WRITE, 0);
    memset(readonly, 0x77, page);
    mprotect(readonly, page, PROT_READ);

    const size_t big_size = big_mib << 20;
    unsigned char* big = map(big_size, PROT_READ | PROT_WRITE, 0);
    if (thp) {
        madvise(big, big_size, MADV_HUGEPAGE);
    }
    // byte i = i % 251: fill one period multiple, then double it (each copy keeps the phase).
    size_t filled = big_size < 251 * 4096 ? big_size : 251 * 4096;
    for (size_t i = 0; i < filled; ++i) {
        big[i] = (unsigned char)(i % 251);
    }
    while (filled < big_size) {
        const size_t n = filled < big_size - filled ? filled : big_size - filled;
        memcpy(big + filled, big, n);
        filled += n;
    }
    const size_t needle_len = strlen(g_needle);
    const size_t offsets[3] = {65531, 1048579, big_size - needle_len};
    for (int i = 0; i < 3; ++i) {
        if (offsets[i] + needle_len <= big_size && big_size >= 2 * needle_len) {
            memcpy(big + offsets[i], g_needle, needle_len);
        }
    }

    // Two adjacent mappings (rw-p then r--p: the kernel cannot merge them) with the needle
    // straddling the boundary, 5 bytes before it.
    unsigned char* straddle = map(2 * page, PROT_READ | PROT_WRITE, 0);
    memset(straddle, 0x33, 2 * page);
    memcpy(straddle + page - 5, g_needle, needle_len);
    mprotect(straddle + page, page, PROT_READ);

    unsigned char* sparse = NULL;
    const size_t sparse_size = sparse_mib << 20;
    if (sparse_size) {
        sparse = map(sparse_size, PROT_READ | PROT_WRITE, MAP_NORESERVE);
        // Read faults then map the huge zero page: reading it all stays cheap.
        madvise(sparse, sparse_size, MADV_HUGEPAGE);
        *(volatile uint64_t*)(sparse + sparse_size - 8) = 0xC0FFEE0DDBA11ull;
    }

    void* top = mmap((void*)0x7fffffffe000ull, page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (top == MAP_FAILED || top != (void*)0x7fffffffe000ull) {
        if (top != MAP_FAILED) {
            munmap(top, page);  // an old kernel took it as a hint
        }
        top = NULL;
    } else {
        memset(top, 0x7E, page);
    }

    // Punched last, so that no later mapping fills the hole.
    munmap(holes + page, page);

    say("value", &g_value, sizeof g_value);
    say("decoy", &g_decoy, sizeof g_decoy);
    say("u64", &g_u64, sizeof g_u64);
    say("double", &g_double, sizeof g_double);
    say("float", &g_float, sizeof g_float);
    say("needle", g_needle, needle_len);
    say("holes", holes, 3 * page);
    say("protnone", protnone, page);
    say("readonly", readonly, page);
    say("big", big, big_size);
    say("straddle", straddle, 2 * page);
    if (sparse) {
        say("sparse", sparse, sparse_size);
    }
    say("top", top, top ? page : 0);
    if (g_info) {
        fclose(g_info);
        g_info = NULL;
    }
    printf("ready\n");
    fflush(stdout);

    for (;;) {
        sigsuspend(&waitmask);
        if (g_usr1) {
            g_usr1 = 0;
            g_value = g_value + 1;
            printf("changed\n");
            fflush(stdout);
        }
    }
}
