/* A target for the unwinder (tests/unit/unwind_test.cpp) and xstack.
 *
 *   stack_target [--threads N] [--jit]
 *
 * Starts N threads (default 8). Thread i is of kind i % 5, and each kind sits in its own
 * recognizable call chain, blocked in a different libc call:
 *
 *   0  sleeper_main → sleeper_level_a → sleeper_level_b → nanosleep
 *   1  reader_main  → reader_level_a  → reader_level_b  → read (a pipe nobody writes)
 *   2  waiter_main  → waiter_level_a  → waiter_level_b  → pthread_cond_wait
 *   3  poller_main  → poller_level_a  → poller_level_b  → poll (no fds, no timeout)
 *   4  signal_main  → raise(SIGUSR1) → <signal handler> signal_handler → signal_level → nanosleep
 *
 * With --jit, one more thread runs through code without unwind information, as JIT code is:
 *
 *   5  jit_main → jit_caller → [a stub in an anonymous executable mapping, which keeps a
 *      frame-pointer frame: push %rbp; mov %rsp,%rbp; call *%rdi] → jit_level → nanosleep
 *
 * The main thread waits in main → main_idle → pause. "ready" is printed (flushed) once every
 * thread is asleep in the kernel (state S in /proc/self/task/TID/stat), so a backtrace taken
 * after it shows the blocking call. Runs until killed.
 *
 * Built several ways (stack_variants.cmake): frame pointers or not, PIE or not, .symtab or
 * only .dynsym. Every function of a chain is noinline and does something after its call,
 * so no call becomes a tail call and every frame stays on the stack.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHAIN __attribute__((noinline)) __attribute__((used))

static volatile long g_sink;
static int g_pipe[2];
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static pid_t* g_tids;

static void sleep_long(void) {
    struct timespec ts = {3600, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* kind 0: nanosleep */
CHAIN long sleeper_level_b(long x) {
    for (;;) {
        sleep_long();
        g_sink += x;
    }
    return x;
}
CHAIN long sleeper_level_a(long x) {
    long r = sleeper_level_b(x + 1);
    g_sink += r;
    return r;
}
CHAIN void* sleeper_main(void* arg) {
    g_sink += sleeper_level_a((long)arg);
    return NULL;
}

/* kind 1: read on a pipe */
CHAIN long reader_level_b(long x) {
    char c;
    for (;;) {
        ssize_t n = read(g_pipe[0], &c, 1);
        g_sink += n + x;
    }
    return x;
}
CHAIN long reader_level_a(long x) {
    long r = reader_level_b(x + 1);
    g_sink += r;
    return r;
}
CHAIN void* reader_main(void* arg) {
    g_sink += reader_level_a((long)arg);
    return NULL;
}

/* kind 2: pthread_cond_wait */
CHAIN long waiter_level_b(long x) {
    pthread_mutex_lock(&g_mutex);
    for (;;) {
        pthread_cond_wait(&g_cond, &g_mutex);
        g_sink += x;
    }
    pthread_mutex_unlock(&g_mutex);
    return x;
}
CHAIN long waiter_level_a(long x) {
    long r = waiter_level_b(x + 1);
    g_sink += r;
    return r;
}
CHAIN void* waiter_main(void* arg) {
    g_sink += waiter_level_a((long)arg);
    return NULL;
}

/* kind 3: poll */
CHAIN long poller_level_b(long x) {
    for (;;) {
        int n = poll(NULL, 0, -1);
        g_sink += n + x;
    }
    return x;
}
CHAIN long poller_level_a(long x) {
    long r = poller_level_b(x + 1);
    g_sink += r;
    return r;
}
CHAIN void* poller_main(void* arg) {
    g_sink += poller_level_a((long)arg);
    return NULL;
}

/* kind 4: blocked inside a signal handler */
CHAIN long signal_level(long x) {
    for (;;) {
        sleep_long();
        g_sink += x;
    }
    return x;
}
CHAIN void signal_handler(int sig) {
    g_sink += signal_level(sig);
}
CHAIN void* signal_main(void* arg) {
    raise(SIGUSR1);
    g_sink += (long)arg;
    return NULL;
}

/* kind 5 (--jit): a frame without CFI between two frames with CFI */
CHAIN long jit_level(void* self) {
    for (;;) {
        sleep_long();
        g_sink += (long)self;
    }
    return 0;
}
CHAIN long jit_caller(long x) {
    /* push %rbp; mov %rsp,%rbp; call *%rdi; pop %rbp; ret */
    static const unsigned char stub[] = {0x55, 0x48, 0x89, 0xe5, 0xff, 0xd7, 0x5d, 0xc3};
    void* code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    memcpy(code, stub, sizeof stub);
    long (*fn)(long (*)(void*)) = (long (*)(long (*)(void*)))code;
    long r = fn(jit_level);
    g_sink += r + x;
    return r;
}
CHAIN void* jit_main(void* arg) {
    g_sink += jit_caller((long)arg);
    return NULL;
}

CHAIN void main_idle(void) {
    for (;;) {
        pause();
        g_sink += 1;
    }
}

struct start {
    long index;
    void* (*fn)(void*);
};

static void* thread_start(void* p) {
    struct start* s = p;
    g_tids[s->index] = (pid_t)syscall(SYS_gettid);
    return s->fn((void*)s->index);
}

/* 1 when the thread sleeps in the kernel (state S). */
static int thread_sleeps(pid_t tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = 0;
    const char* close_paren = strrchr(buf, ')');
    return close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == 'S';
}

int main(int argc, char** argv) {
    long n = 8;
    int jit = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            n = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--jit") == 0) {
            jit = 1;
        } else {
            fprintf(stderr, "usage: stack_target [--threads N] [--jit]\n");
            return 2;
        }
    }
    if (n < 0 || n > 4096) {
        fprintf(stderr, "stack_target: bad thread count %ld\n", n);
        return 2;
    }
    if (pipe(g_pipe) != 0) {
        perror("pipe");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = signal_handler;
    sigaction(SIGUSR1, &sa, NULL);

    void* (*const kinds[])(void*) = {sleeper_main, reader_main, waiter_main, poller_main, signal_main};
    g_tids = calloc((size_t)n + 2, sizeof *g_tids);
    struct start* starts = calloc((size_t)n + 2, sizeof *starts);
    const long all = n + jit;
    for (long i = 0; i < all; ++i) {
        starts[i].index = i;
        starts[i].fn = i < n ? kinds[i % 5] : jit_main;
        pthread_t t;
        if (pthread_create(&t, NULL, thread_start, &starts[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    /* Wait (bounded: 10 s) until every thread sleeps in its blocking call. */
    for (int round = 0; round < 10000; ++round) {
        long asleep = 0;
        for (long i = 0; i < all; ++i) {
            if (g_tids[i] != 0 && thread_sleeps(g_tids[i])) {
                ++asleep;
            }
        }
        if (asleep == all) {
            break;
        }
        usleep(1000);
    }
    printf("ready\n");
    fflush(stdout);
    main_idle();
    return 0;
}
