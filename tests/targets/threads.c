/* A multi-threaded target: starts N extra threads (argv[1], default 4) that
 * sleep, says "ready" on stdout once all of them run, then sleeps until killed.
 * /proc/PID/task then lists N + 1 threads. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_barrier_t started;

static void* sleep_forever(void* arg) {
    (void)arg;
    pthread_barrier_wait(&started);
    for (;;) {
        pause();
    }
    return NULL;
}

int main(int argc, char** argv) {
    const long n = argc > 1 ? strtol(argv[1], NULL, 10) : 4;
    if (n < 0 || n > 10000) {
        fprintf(stderr, "threads: bad thread count %ld\n", n);
        return 2;
    }
    pthread_barrier_init(&started, NULL, (unsigned)n + 1);
    for (long i = 0; i < n; ++i) {
        pthread_t t;
        if (pthread_create(&t, NULL, sleep_forever, NULL) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    pthread_barrier_wait(&started);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
    }
}
