// SPDX-License-Identifier: MIT
// Makes the process whose /proc files are the samples in this folder. Not built
// by CMake; run by hand (see README.md):
//
//   cc -O1 -o /tmp/capture tests/unit/samples/capture.c && /tmp/capture tests/unit/samples
//
// It creates one mapping of every kind the parser tells apart, stops itself
// (SIGSTOP) so its maps cannot change between the three reads, and a forked
// helper copies /proc/PID/{maps,smaps,smaps_rollup} into the output folder.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static void* map_file(const char* path, int unlink_it) {
    const int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 8192) != 0) {
        perror(path);
        exit(1);
    }
    void* p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap file");
        exit(1);
    }
    close(fd);
    if (unlink_it) {
        unlink(path);
    }
    return p;
}

static void copy(pid_t pid, const char* file, const char* out_dir) {
    char src[64], dst[4096];
    snprintf(src, sizeof src, "/proc/%d/%s", (int)pid, file);
    snprintf(dst, sizeof dst, "%s/%s", out_dir, file);
    const int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) {
        perror(src);
        exit(1);
    }
    static char buf[1 << 20];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            perror(dst);
            exit(1);
        }
    }
    close(in);
    close(out);
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    const long page = sysconf(_SC_PAGESIZE);

    // [anon:xproc sample] (names may contain spaces) and [anon_shmem:xproc-shmem].
    char* named = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(named, 1, 2 * page);  // some Rss, some untouched
    if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, named, 4 * page, "xproc sample") != 0) {
        perror("prctl(PR_SET_VMA_ANON_NAME) (kernel without CONFIG_ANON_VMA_NAME?)");
    }
    char* shmem = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(shmem, 2, page);
    if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, shmem, 2 * page, "xproc-shmem") != 0) {
        perror("prctl(PR_SET_VMA_ANON_NAME) on shared memory");
    }
    // Unnamed shared anonymous memory shows as "/dev/zero (deleted)".
    char* zero = mmap(NULL, page, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    (void)zero;

    // Files: a path with spaces, a deleted one, and a name with a newline (printed as \012).
    mkdir("/tmp/xproc sample dir", 0700);
    map_file("/tmp/xproc sample dir/kept file.bin", 0);
    map_file("/tmp/xproc sample dir/deleted file.bin", 1);
    map_file("/tmp/xproc sample dir/new\nline", 0);

    // memfd: "/memfd:xproc-memfd (deleted)".
    const int mfd = memfd_create("xproc-memfd", MFD_CLOEXEC);
    if (mfd < 0 || ftruncate(mfd, page) != 0) {
        perror("memfd");
        return 1;
    }
    char* mem = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    mem[0] = 1;

    // SysV shared memory: "/SYSV00000000 (deleted)" (IPC_PRIVATE key), removed at once.
    const int shmid = shmget(IPC_PRIVATE, (size_t)page, IPC_CREAT | 0600);
    if (shmid >= 0) {
        char* sysv = shmat(shmid, NULL, 0);
        sysv[0] = 1;
        shmctl(shmid, IPC_RMID, NULL);
    }

    // Heap, and an inaccessible guard mapping.
    char* heap = malloc(64 * 1024);
    memset(heap, 3, 64 * 1024);
    mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    const pid_t self = getpid();
    const pid_t helper = fork();
    if (helper == 0) {
        // Wait until the parent is stopped, then copy its files.
        for (;;) {
            char path[64], state = 0;
            snprintf(path, sizeof path, "/proc/%d/stat", (int)self);
            FILE* f = fopen(path, "r");
            if (f != NULL && fscanf(f, "%*d (%*[^)]) %c", &state) == 1 && state == 'T') {
                fclose(f);
                break;
            }
            if (f != NULL) {
                fclose(f);
            }
            usleep(1000);
        }
        copy(self, "maps", argv[1]);
        copy(self, "smaps", argv[1]);
        copy(self, "smaps_rollup", argv[1]);
        kill(self, SIGCONT);
        _exit(0);
    }
    raise(SIGSTOP);
    waitpid(helper, NULL, 0);
    unlink("/tmp/xproc sample dir/kept file.bin");
    unlink("/tmp/xproc sample dir/new\nline");
    rmdir("/tmp/xproc sample dir");
    printf("captured pid %d into %s\n", (int)self, argv[1]);
    return 0;
}
