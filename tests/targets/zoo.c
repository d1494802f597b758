/* A target with every kind of mapping pmap has to name, for the xpmap tests.
 *
 * usage: zoo SCRATCH_DIR [POSIX_SHM_NAME [NMAPS]]
 *
 * SCRATCH_DIR must exist; zoo creates its files there and the caller removes the
 * directory (zoo is killed with SIGKILL, so it cannot clean up). POSIX_SHM_NAME
 * ("/name"), when given and not "-", is created with shm_open and left for the
 * caller to shm_unlink. NMAPS (default 3000) anonymous pages alternate between
 * read-write and read-only, which gives NMAPS separate mappings.
 *
 * Mappings made (each one touched so that RSS and Dirty are not all zero):
 *   - NMAPS alternating-protection anonymous mappings
 *   - named anonymous regions (PR_SET_VMA_ANON_NAME, one name containing '/')
 *   - a file that is deleted after mapping it ("... (deleted)")
 *   - a file whose path has spaces, one with a tab, a control byte and invalid
 *     UTF-8 in its name, one with a newline (the kernel prints it as "\012")
 *   - files with very long paths (maps lines of 1023 bytes, 1024 bytes, over
 *     1023 and over 2046 bytes, continuations starting with hex digits, '/',
 *     an upper-case letter, a first part with bytes to sanitize)
 *   - POSIX shared memory (shm_open), SysV shared memory (shmget/shmat, already
 *     IPC_RMID'ed so it vanishes with the process), a memfd, a MAP_SHARED
 *     anonymous mapping and a PROT_NONE guard
 * Then prints "ready" and sleeps until killed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static const size_t PAGE = 4096;

static void die(const char* what) {
    fprintf(stderr, "zoo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void touch(volatile char* p, size_t len, int write) {
    for (size_t off = 0; off < len; off += PAGE) {
        if (write) {
            p[off] = 1;
        } else {
            (void)p[off];
        }
    }
}

/* Creates `path` with `len` bytes and maps it; `flags` MAP_SHARED or MAP_PRIVATE. */
static char* map_file(const char* path, size_t len, int prot, int flags) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        die(path);
    }
    if (ftruncate(fd, (off_t)len) != 0) {
        die("ftruncate");
    }
    char* p = mmap(NULL, len, prot, flags, fd, 0);
    if (p == MAP_FAILED) {
        die("mmap file");
    }
    close(fd);
    touch(p, len, (prot & PROT_WRITE) != 0);
    return p;
}

static void name_anon(size_t pages, const char* name) {
    char* p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        die("mmap named");
    }
    touch(p, pages * PAGE, 1);
    /* Needs CONFIG_ANON_VMA_NAME (kernel >= 5.17); without it the region stays unnamed. */
    (void)prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, pages * PAGE, (unsigned long)name);
}

/* Creates the directories of `path` below `dir` (everything up to its last '/'). */
static void make_parents(const char* dir, char* path) {
    for (char* p = path + strlen(dir) + 1; *p != '\0'; ++p) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                die("mkdir long path");
            }
            *p = '/';
        }
    }
}

/* A path of exactly `total` bytes below `dir`, made of `fill` characters in
 * directories of at most 200 bytes. `mark` (when not 0) is put at byte 950 of
 * the path: in /proc/PID/maps the path starts at column 73, so byte 950 is the
 * first byte after the first 1023 bytes of the line, where procps pmap (which
 * reads lines with fgets into 1024 bytes) starts a new "line". `lead`, when not
 * NULL, is put right after `dir` (bytes that pmap would sanitize). */
static void long_path(char* out, size_t cap, const char* dir, size_t total, char fill, char mark,
                      const char* lead) {
    size_t n = (size_t)snprintf(out, cap, "%s/%s", dir, lead != NULL ? lead : "");
    size_t since_slash = lead != NULL ? strlen(lead) : 0;
    while (n < total && n + 1 < cap) {
        char c = fill;
        if (since_slash == 200 && n + 1 < total) {
            c = '/';
        }
        if (n == 950 && mark != 0) {
            c = mark;
        }
        if (n + 1 == total && c == '/') {
            c = fill;
        }
        since_slash = c == '/' ? 0 : since_slash + 1;
        out[n++] = c;
    }
    out[n] = '\0';
    make_parents(dir, out);
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: zoo SCRATCH_DIR [POSIX_SHM_NAME [NMAPS]]\n");
        return 2;
    }
    const char* dir = argv[1];
    const char* shm_name = argc > 2 ? argv[2] : "-";
    long nmaps = argc > 3 ? strtol(argv[3], NULL, 10) : 3000;
    char path[8192];

    /* Alternating protections: one region, every other page made read-only. */
    if (nmaps > 0) {
        size_t len = (size_t)nmaps * PAGE;
        char* base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) {
            die("mmap many");
        }
        for (long i = 0; i < nmaps; i += 3) {
            base[(size_t)i * PAGE] = 1;
        }
        for (long i = 1; i < nmaps; i += 2) {
            if (mprotect(base + (size_t)i * PAGE, PAGE, PROT_READ) != 0) {
                die("mprotect");
            }
        }
    }

    name_anon(3, "zoo-named");
    name_anon(2, "zoo name/with slash");

    snprintf(path, sizeof path, "%s/deleted.bin", dir);
    map_file(path, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED);
    unlink(path);

    snprintf(path, sizeof path, "%s/file with spaces.bin", dir);
    map_file(path, 3 * PAGE, PROT_READ, MAP_PRIVATE);
    snprintf(path, sizeof path, "%s/ctl\tname\x01\xc3\xa9\xff.bin", dir);
    map_file(path, PAGE, PROT_READ, MAP_PRIVATE);
    snprintf(path, sizeof path, "%s/new\nline.bin", dir);
    map_file(path, PAGE, PROT_READ, MAP_SHARED);

    /* Lines longer than pmap's 1023-byte line buffer, each continuation of a
     * different shape: hex digits, a lone newline, '/', an upper-case letter. */
    long_path(path, sizeof path, dir, 1100, 'a', 0, NULL);
    map_file(path, PAGE, PROT_READ, MAP_PRIVATE);
    long_path(path, sizeof path, dir, 2300, 'b', 0, NULL);
    map_file(path, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    long_path(path, sizeof path, dir, 949, 'c', 0, NULL);
    map_file(path, PAGE, PROT_READ, MAP_PRIVATE);
    long_path(path, sizeof path, dir, 950, 'd', 0, NULL);
    map_file(path, PAGE, PROT_READ, MAP_PRIVATE);
    long_path(path, sizeof path, dir, 1500, 'g', '/', NULL);
    map_file(path, PAGE, PROT_READ, MAP_PRIVATE);
    long_path(path, sizeof path, dir, 1500, 'h', 'Q', NULL);
    map_file(path, PAGE, PROT_READ, MAP_PRIVATE);
    long_path(path, sizeof path, dir, 1200, 'i', 0, "lead\t\xc3\xa9\x01");
    map_file(path, PAGE, PROT_READ, MAP_PRIVATE);
    /* Just over the 127 bytes that pmap -X keeps of a name. */
    snprintf(path, sizeof path, "%s/%0140d.bin", dir, 7);
    map_file(path, PAGE, PROT_READ, MAP_PRIVATE);

    if (strcmp(shm_name, "-") != 0) {
        int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0) {
            die("shm_open");
        }
        if (ftruncate(fd, 16 * PAGE) != 0) {
            die("ftruncate shm");
        }
        char* p = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            die("mmap shm");
        }
        close(fd);
        touch(p, 8 * PAGE, 1);
    }

    int shmid = shmget(IPC_PRIVATE, 8 * PAGE, IPC_CREAT | 0600);
    if (shmid < 0) {
        die("shmget");
    }
    char* sysv = shmat(shmid, NULL, 0);
    if (sysv == (void*)-1) {
        die("shmat");
    }
    shmctl(shmid, IPC_RMID, NULL); /* destroyed when we detach, i.e. when killed */
    touch(sysv, 4 * PAGE, 1);

    int mfd = memfd_create("zoo-memfd", 0);
    if (mfd < 0) {
        die("memfd_create");
    }
    if (ftruncate(mfd, 5 * PAGE) != 0) {
        die("ftruncate memfd");
    }
    char* m = mmap(NULL, 5 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (m == MAP_FAILED) {
        die("mmap memfd");
    }
    touch(m, 5 * PAGE, 1);

    char* shared_anon = mmap(NULL, 6 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared_anon == MAP_FAILED) {
        die("mmap shared anon");
    }
    touch(shared_anon, 6 * PAGE, 1);
    if (mmap(NULL, 7 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) {
        die("mmap guard");
    }

    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
    }
}
