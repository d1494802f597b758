/* bp_target: a program to set breakpoints and watchpoints in (tests/unit/breakpoints_test.cpp,
 * xpeek integration and damage tests).
 *
 * Usage: bp_target [--threads N] [--iterations N] [--busy] [--churn]
 *   --threads N     N worker threads (default 1), each looping over bp_work().
 *   --iterations N  iterations per worker; 0 (default) = forever. When all workers are done
 *                   it prints "done <bp_counter>" and exits 0.
 *   --busy          do not sleep between iterations (default: usleep(1000) per iteration).
 *   --churn         one more thread that keeps creating and joining short-lived threads,
 *                   each of which calls bp_churn_fn() (only they do) and bp_work() once:
 *                   threads appear and exit all the time.
 *
 * Every iteration calls `long bp_work(long x)` (noinline; increments bp_counter, calls
 * bp_leaf()) and checks its result against an independent computation in the caller. A
 * mismatch (a debugger corrupted registers, memory or the instruction stream) prints
 * "ARITHMETIC ERROR ..." on stderr and exits with status 42.
 *
 * Symbols for debuggers:
 *   bp_work, bp_leaf        functions run by every worker (breakpoint targets)
 *   bp_churn_fn             function run only by the short-lived --churn threads
 *   bp_counter              volatile long, incremented by every bp_work call (watch target)
 *   bp_read_me              volatile long, only read by the workers (rwatch target)
 *
 * Output (stdout, flushed): "ready" once all threads run; on SIGUSR1 "ok <bp_counter>"
 * (so a test can check the target still runs after a debugger detached); "done <n>". */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Under AddressSanitizer (the CI's second pass), LeakSanitizer cannot run in a process that is
 * being traced and makes its exit status 1: the tests expect "exited normally" while attached. */
const char* __asan_default_options(void);
const char* __asan_default_options(void) {
    return "detect_leaks=0";
}

volatile long bp_counter = 0;
volatile long bp_read_me = 12345;
volatile long bp_churn_calls = 0;

static long g_iterations = 0;
static int g_busy = 0;
static volatile int g_workers_done = 0;
static pthread_barrier_t g_started;

static void arithmetic_error(const char* who, long x, long got, long want) {
    fprintf(stderr, "ARITHMETIC ERROR in %s: x=%ld got=%ld expected=%ld\n", who, x, got, want);
    fflush(stderr);
    _exit(42);
}

/* Unsigned arithmetic: wraps (defined) whatever a debugger writes into bp_read_me. */
__attribute__((noinline)) long bp_leaf(long x) {
    unsigned long r = (unsigned long)x * 7u + 3u;
    r ^= (unsigned long)((long)r >> 5);
    return (long)r;
}

__attribute__((noinline)) long bp_work(long x) {
    __atomic_add_fetch(&bp_counter, 1, __ATOMIC_RELAXED);
    unsigned long a = (unsigned long)x * 31u + 17u;
    unsigned long b = (unsigned long)bp_leaf((long)a);
    unsigned long c = (a ^ b) + (unsigned long)x * 5u;
    return (long)(c - (unsigned long)((long)b >> 3));
}

/* The same computation written independently, inlined in the caller. Unsigned to keep the
 * overflow behaviour defined and identical. */
static inline long expected_work(long x) {
    unsigned long ux = (unsigned long)x;
    unsigned long a = ux * 31u + 17u;
    unsigned long leaf = a * 7u + 3u;
    leaf ^= (unsigned long)((long)leaf >> 5);
    unsigned long c = (a ^ leaf) + ux * 5u;
    return (long)(c - (unsigned long)((long)leaf >> 3));
}

__attribute__((noinline)) long bp_churn_fn(long x) {
    __atomic_add_fetch(&bp_churn_calls, 1, __ATOMIC_RELAXED);
    return x + 1;
}

static void on_usr1(int sig) {
    (void)sig;
    char buf[64];
    char digits[24];
    long v = bp_counter;
    int n = 0;
    unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0 && n < 22);
    int len = 0;
    memcpy(buf, "ok ", 3);
    len = 3;
    if (v < 0) {
        buf[len++] = '-';
    }
    while (n > 0) {
        buf[len++] = digits[--n];
    }
    buf[len++] = '\n';
    ssize_t w = write(STDOUT_FILENO, buf, (size_t)len);
    (void)w;
}

static void* worker(void* arg) {
    long index = (long)arg;
    pthread_barrier_wait(&g_started);
    for (long i = 0; g_iterations == 0 || i < g_iterations; ++i) {
        long x = index * 1000003L + i + bp_read_me;
        long got = bp_work(x);
        long want = expected_work(x);
        if (got != want) {
            arithmetic_error("bp_work", x, got, want);
        }
        if (!g_busy) {
            usleep(1000);
        }
    }
    return NULL;
}

static void* churn_child(void* arg) {
    long x = (long)arg;
    if (bp_churn_fn(x) != x + 1) {
        arithmetic_error("bp_churn_fn", x, bp_churn_fn(x), x + 1);
    }
    long got = bp_work(x);
    long want = expected_work(x);
    if (got != want) {
        arithmetic_error("bp_work (churn)", x, got, want);
    }
    return NULL;
}

static void* churner(void* arg) {
    (void)arg;
    pthread_barrier_wait(&g_started);
    for (long i = 0; !g_workers_done; ++i) {
        pthread_t t;
        if (pthread_create(&t, NULL, churn_child, (void*)i) != 0) {
            perror("bp_target: pthread_create (churn)");
            _exit(1);
        }
        pthread_join(t, NULL);
        usleep(g_busy ? 100 : 2000);
    }
    return NULL;
}

static long parse_number(const char* option, const char* text) {
    char* end = NULL;
    long v = text != NULL ? strtol(text, &end, 10) : -1;
    if (text == NULL || *end != '\0' || v < 0) {
        fprintf(stderr, "bp_target: %s needs a number >= 0\n", option);
        exit(2);
    }
    return v;
}

int main(int argc, char** argv) {
    long threads = 1;
    int churn = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--threads") == 0) {
            threads = parse_number("--threads", i + 1 < argc ? argv[++i] : NULL);
        } else if (strcmp(argv[i], "--iterations") == 0) {
            g_iterations = parse_number("--iterations", i + 1 < argc ? argv[++i] : NULL);
        } else if (strcmp(argv[i], "--busy") == 0) {
            g_busy = 1;
        } else if (strcmp(argv[i], "--churn") == 0) {
            churn = 1;
        } else {
            fprintf(stderr,
                    "usage: bp_target [--threads N] [--iterations N (0 = forever)] [--busy] [--churn]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 1000) {
        fprintf(stderr, "bp_target: --threads must be 1..1000\n");
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);

    pthread_barrier_init(&g_started, NULL, (unsigned)(threads + churn + 1));
    pthread_t* workers = calloc((size_t)threads, sizeof(pthread_t));
    for (long i = 0; i < threads; ++i) {
        if (pthread_create(&workers[i], NULL, worker, (void*)i) != 0) {
            perror("bp_target: pthread_create");
            return 1;
        }
    }
    pthread_t churn_thread;
    if (churn && pthread_create(&churn_thread, NULL, churner, NULL) != 0) {
        perror("bp_target: pthread_create");
        return 1;
    }
    pthread_barrier_wait(&g_started);
    printf("ready\n");
    fflush(stdout);

    for (long i = 0; i < threads; ++i) {
        pthread_join(workers[i], NULL);
    }
    g_workers_done = 1;
    if (churn) {
        pthread_join(churn_thread, NULL);
    }
    printf("done %ld\n", bp_counter);
    fflush(stdout);
    free(workers);
    return 0;
}
