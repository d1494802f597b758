/* Holds shared memory for the xshm tests, prints where, then sleeps until killed.
 *
 *   shm_holder memfd SIZE        a MAP_SHARED mapping of a memfd named "xshm-test" (fd kept)
 *   shm_holder anon SIZE         MAP_SHARED | MAP_ANONYMOUS
 *   shm_holder private SIZE      MAP_PRIVATE | MAP_ANONYMOUS
 *   shm_holder posix NAME        maps all of POSIX segment NAME read-write, keeps its fd
 *   shm_holder posix-fd NAME     only holds a descriptor of NAME, maps nothing
 *
 * memfd, anon and private are filled with the test pattern: "xshm test pattern\n"
 * at offset 0, bytes 0..255 at offset 4096 (when the size allows), zero elsewhere.
 * Prints the mapping's address as "0x..." (or "0x0" for posix-fd), then "ready". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void fill(unsigned char* p, size_t size) {
    static const char text[] = "xshm test pattern\n";
    memcpy(p, text, size < sizeof text - 1 ? size : sizeof text - 1);
    for (size_t i = 0; i < 256 && 4096 + i < size; ++i) {
        p[4096 + i] = (unsigned char)i;
    }
}

static int fail(const char* what) {
    perror(what);
    return 1;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: shm_holder memfd|anon|private SIZE | posix|posix-fd NAME\n");
        return 2;
    }
    const char* kind = argv[1];
    void* addr = NULL;
    if (strcmp(kind, "posix") == 0 || strcmp(kind, "posix-fd") == 0) {
        const int fd = shm_open(argv[2], O_RDWR, 0);
        if (fd < 0) {
            return fail("shm_open");
        }
        struct stat st;
        if (fstat(fd, &st) != 0) {
            return fail("fstat");
        }
        if (strcmp(kind, "posix") == 0 && st.st_size > 0) {
            addr = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (addr == MAP_FAILED) {
                return fail("mmap");
            }
        }
    } else {
        const size_t size = (size_t)strtoul(argv[2], NULL, 0);
        if (size == 0) {
            fprintf(stderr, "shm_holder: size must be positive\n");
            return 2;
        }
        if (strcmp(kind, "memfd") == 0) {
            const int fd = memfd_create("xshm-test", MFD_CLOEXEC);
            if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
                return fail("memfd_create");
            }
            addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        } else if (strcmp(kind, "anon") == 0) {
            addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        } else if (strcmp(kind, "private") == 0) {
            addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        } else {
            fprintf(stderr, "shm_holder: unknown kind %s\n", kind);
            return 2;
        }
        if (addr == MAP_FAILED) {
            return fail("mmap");
        }
        fill(addr, size);
    }
    printf("0x%lx\nready\n", (unsigned long)(uintptr_t)addr);
    fflush(stdout);
    for (;;) {
        pause();
    }
}
