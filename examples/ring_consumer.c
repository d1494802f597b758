/* SPDX-License-Identifier: MIT */
/* ring_consumer_c: the C API of xproc's ring. Creates a ring and prints the messages
 * that ring_producer_c, another process, sends to it, until end of stream; then
 * removes the ring's name.
 *
 *   ring_consumer_c /queue &        # prints "ready" once the ring exists
 *   ring_producer_c /queue 1000
 *
 * Build against an installed xproc:
 *   cc -std=c11 ring_consumer.c $(pkg-config --cflags --libs xproc)
 */
#include <xproc/ring.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: ring_consumer_c /NAME\n");
        return 2;
    }
    const char* name = argv[1];

    /* 64 KiB of messages in flight; fails with EEXIST if the name exists. */
    xproc_ring* ring = xproc_ring_create(name, 64 * 1024, 0600, XPROC_RING_CONSUMER);
    if (ring == NULL) {
        fprintf(stderr, "ring_consumer_c: %s\n", xproc_ring_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    /* A buffer of max_record bytes holds any message (no EMSGSIZE). */
    size_t cap = xproc_ring_max_record(ring);
    char* buf = malloc(cap);
    if (buf == NULL) {
        perror("ring_consumer_c: malloc");
        xproc_ring_close(ring);
        xproc_ring_unlink(name);
        return 1;
    }
    long received = 0;
    int status = 0;
    for (;;) {
        ssize_t n = xproc_ring_recv(ring, buf, cap, -1); /* wait as long as it takes */
        if (n >= 0) {
            if (received < 3) {
                printf("got \"%.*s\"\n", (int)n, buf);
            }
            ++received;
            continue;
        }
        if (errno == ENODATA) { /* the producer's end-of-stream mark */
            break;
        }
        /* EPIPE: the producer died and everything it sent has been read. */
        fprintf(stderr, "ring_consumer_c: %s (%s)\n", xproc_ring_last_error(), strerror(errno));
        status = 1;
        break;
    }
    printf("received %ld messages\n", received);
    free(buf);
    xproc_ring_close(ring);
    xproc_ring_unlink(name);
    return status;
}
