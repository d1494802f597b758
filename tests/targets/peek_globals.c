/* Target for xpeek's tests: globals of every width and kind, at known values,
 * for comparing xpeek's x/, find, set and info output with gdb's.
 *
 * Built WITHOUT debug information (the tests strip it if the build type adds
 * -g), so gdb sees only ELF (minimal) symbols, as xpeek does.
 *
 * Usage: peek_globals [BIG_MIB [INFO_FILE]]. Prints, one per line, on stdout and
 * (when given) into INFO_FILE:
 *   pid N
 *   prot_none 0xADDR      a PROT_NONE page
 *   hole_edge 0xADDR      the last 16 bytes of a readable page followed by an unmapped one
 *   big 0xADDR SIZE       a large zero-filled anonymous mapping (argv[1] MiB, default 1)
 *   ready
 * then sleeps until killed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define KEEP __attribute__((used))

/* Defined first, so placed last in .data (GCC lays .data out in reverse order): keeps
 * x/17xg of the integers below inside this file's own symbols. */
KEEP char xp_pad_end[256] = {1};

/* Integers of every width, negative ones included. */
KEEP int8_t xp_i8 = -5;
KEEP uint8_t xp_u8 = 200;
KEEP int16_t xp_i16 = -1234;
KEEP uint16_t xp_u16 = 65000;
KEEP int32_t xp_i32 = -123456;
KEEP uint32_t xp_u32 = 4000000000u;
KEEP int64_t xp_i64 = -1234567890123LL;
KEEP uint64_t xp_u64 = 18446744073709551615ull;
KEEP int xp_small[4] = {-5, 17, 65536, 2147483647};
KEEP int8_t xp_i8s[12] = {-128, -1, 0, 1, 2, 3, 64, 127, 'A', 'z', '\n', '\t'};
KEEP int16_t xp_i16s[10] = {-32768, -1, 0, 1, 255, 256, 4660, 32767, 10, -10};
KEEP int64_t xp_i64s[5] = {INT64_MIN, -1, 0, 1, INT64_MAX};
KEEP uint32_t xp_needle = 0xdeadbeefu;
KEEP uint32_t xp_needles[3] = {0xdeadbeefu, 1u, 0xdeadbeefu};
KEEP int32_t xp_set_target = 99;

/* Bytes 0..255 in order (initialized, so in .data: .bss also holds the executable's
 * copy of stdout, whose versioned name gdb and xpeek label differently). */
#define R4(i) (i), (i) + 1, (i) + 2, (i) + 3
#define R16(i) R4(i), R4((i) + 4), R4((i) + 8), R4((i) + 12)
#define R64(i) R16(i), R16((i) + 16), R16((i) + 32), R16((i) + 48)
KEEP unsigned char xp_bytes[256] = {R64(0), R64(64), R64(128), R64(192)};

/* Strings: plain, escapes, non-ASCII (UTF-8), repeats, long. */
KEEP char xp_str[] = "hello, world";
KEEP char xp_escapes[] = "tab\there\nnl \"q\" \\ bs\b ff\f cr\r vt\v bell\a esc\033 del\177 hi\200\377";
KEEP char xp_utf8[] = "h\xc3\xa9llo \xe2\x9c\x93 \xce\xb1\xce\xb2";
KEEP char xp_repeats[] = "aaaaaaaaaaaaaaaaaaaabbbcccccccccccxyz";
KEEP char xp_haystack[] = "..needle..needle..";
KEEP char xp_long[300];
KEEP char xp_empty[] = "";
KEEP char xp_after_empty[] = "after";

/* Floating point, special values included. Filled in main (the NaN payload and -0). */
KEEP float xp_floats[10];
KEEP double xp_doubles[10];

static void fill(void) {
    for (int i = 0; i < 299; ++i) {
        xp_long[i] = (char)('a' + i % 26);
    }
    union {
        uint32_t u;
        float f;
    } nanf_payload = {0x7fc00000u | 0x400000u >> 1};
    union {
        uint32_t u;
        float f;
    } nanf_quiet = {0x7fc00000u};
    const float f[10] = {1.5f,     0.1f,      1e-10f, 3.4028234663852886e+38f, nanf_quiet.f,
                         INFINITY, -INFINITY, -0.0f,  nanf_payload.f,          -2.5e-3f};
    for (int i = 0; i < 10; ++i) {
        xp_floats[i] = f[i];
    }
    union {
        uint64_t u;
        double d;
    } nan_payload = {0x7ff8000000000000ull | 0x1234ull};
    const double d[10] = {1.5,   0.1,       1e-10, 3.4028234663852886e+38, NAN,
                          1e300, -INFINITY, -0.0,  nan_payload.d,          123456789.125};
    for (int i = 0; i < 10; ++i) {
        xp_doubles[i] = d[i];
    }
}

int main(int argc, char** argv) {
    const long big_mib = argc > 1 ? strtol(argv[1], NULL, 10) : 1;
    const long page = sysconf(_SC_PAGESIZE);
    fill();

    char* none = mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* Two pages, the second unmapped: a readable page that ends at a hole. */
    char* two = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const size_t big_size = (size_t)big_mib << 20;
    char* big = mmap(NULL, big_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (none == MAP_FAILED || two == MAP_FAILED || big == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    munmap(two + page, (size_t)page);
    for (long i = 0; i < page; ++i) {
        two[i] = (char)(0x40 + i % 16);
    }

    FILE* outs[2] = {stdout, argc > 2 ? fopen(argv[2], "w") : NULL};
    for (int i = 0; i < 2; ++i) {
        if (outs[i] == NULL) {
            continue;
        }
        fprintf(outs[i], "pid %d\n", (int)getpid());
        fprintf(outs[i], "prot_none %p\n", (void*)none);
        fprintf(outs[i], "hole_edge %p\n", (void*)(two + page - 16));
        fprintf(outs[i], "big %p %zu\n", (void*)big, big_size);
        fflush(outs[i]);
    }
    if (outs[1] != NULL) {
        fclose(outs[1]);
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
    }
}
