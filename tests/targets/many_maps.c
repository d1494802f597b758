/* A target with many distinct mappings, for tests and for bench/xpmap_bench.
 *
 *   many_maps N
 *
 * Adds N one-page mappings to the process (on top of the ~25 any C program has), prints
 * "ready" and then pauses until killed. The mappings lie side by side in one reserved range
 * and repeat a pattern of four kinds, chosen so that no two neighbours can be merged into one
 * VMA by the kernel:
 *
 *   anonymous r--p   written before mprotect(PROT_READ), so it has Rss and Private_Dirty
 *   anonymous rw-p   written, so it has Rss and Private_Dirty
 *   anonymous r--p   (as the first)
 *   file      r--p   the first page of this program's own executable, read, so it has Rss
 *
 * Nothing is raised: N must fit under vm.max_map_count (65530 by default), so N is limited to
 * 65000 and the program checks the limit of the machine it runs on. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { MAX_MAPPINGS = 65000, BASELINE_MAPPINGS = 64 /* what libc, ld.so, stack, vdso... need, generously */ };

static long max_map_count(void) {
    FILE* f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = 65530;
    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1) {
            v = 65530;
        }
        fclose(f);
    }
    return v;
}

int main(int argc, char** argv) {
    char* end = NULL;
    const long n = argc > 1 ? strtol(argv[1], &end, 10) : 1000;
    if (argc > 1 && (end == argv[1] || *end != '\0')) {
        fprintf(stderr, "usage: many_maps [N]   (N mappings, default 1000)\n");
        return 2;
    }
    const long limit = max_map_count() - BASELINE_MAPPINGS;
    if (n < 0 || n > MAX_MAPPINGS || n > limit) {
        fprintf(stderr, "many_maps: N=%ld out of range (0..%ld: vm.max_map_count is %ld)\n", n,
                limit < MAX_MAPPINGS ? limit : MAX_MAPPINGS, max_map_count());
        return 2;
    }
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);

    const int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (exe < 0) {
        perror("many_maps: open /proc/self/exe");
        return 1;
    }

    /* One reservation, then every page of it replaced in place with MAP_FIXED: the mappings
     * are neighbours in a known order, and no PROT_NONE remnant adds to the count. */
    char* base = n > 0 ? mmap(NULL, (size_t)n * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : NULL;
    if (base == MAP_FAILED) {
        perror("many_maps: mmap reservation");
        return 1;
    }
    volatile char sink = 0;
    for (long i = 0; i < n; ++i) {
        char* at = base + (size_t)i * page;
        void* p;
        switch (i % 4) {
            case 1:
                p = mmap(at, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
                if (p != MAP_FAILED) {
                    memset(p, (int)(i & 0xff), page);
                }
                break;
            case 3:
                p = mmap(at, page, PROT_READ, MAP_PRIVATE | MAP_FIXED, exe, 0);
                if (p != MAP_FAILED) {
                    sink = *(volatile char*)p;
                }
                break;
            default:
                p = mmap(at, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
                if (p != MAP_FAILED) {
                    memset(p, (int)(i & 0xff), page);
                    if (mprotect(p, page, PROT_READ) != 0) {
                        perror("many_maps: mprotect");
                        return 1;
                    }
                }
                break;
        }
        if (p == MAP_FAILED) {
            const int err = errno;
            fprintf(stderr, "many_maps: mmap #%ld: %s\n", i, strerror(err));
            return 1;
        }
    }
    (void)sink;
    close(exe);

    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
    }
}
