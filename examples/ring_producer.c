/* SPDX-License-Identifier: MIT */
/* ring_producer_c: the C API of xproc's ring. Opens the ring that ring_consumer_c
 * created and sends COUNT text messages, then an end-of-stream mark.
 *
 *   ring_consumer_c /queue &
 *   ring_producer_c /queue 1000
 *
 * Build against an installed xproc:
 *   cc -std=c11 ring_producer.c $(pkg-config --cflags --libs xproc)
 */
#define _POSIX_C_SOURCE 200809L
#include <xproc/ring.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: ring_producer_c /NAME [COUNT]\n");
        return 2;
    }
    const char* name = argv[1];
    long count = argc > 2 ? strtol(argv[2], NULL, 10) : 10;

    /* The consumer may not have created the ring yet: retry for a while. */
    xproc_ring* ring = xproc_ring_open(name, XPROC_RING_PRODUCER);
    for (int i = 0; ring == NULL && errno == ENOENT && i < 100; ++i) {
        const struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
        ring = xproc_ring_open(name, XPROC_RING_PRODUCER);
    }
    if (ring == NULL) {
        /* EBUSY: another live process is the producer; EPROTO: not a ring. */
        fprintf(stderr, "ring_producer_c: %s\n", xproc_ring_last_error());
        return 1;
    }

    for (long i = 0; i < count; ++i) {
        char msg[64];
        int len = snprintf(msg, sizeof msg, "message %ld", i);
        /* Waits while the ring is full; EPIPE if the consumer died meanwhile. */
        if (xproc_ring_send(ring, msg, (size_t)len, -1) != 0) {
            fprintf(stderr, "ring_producer_c: %s (%s)\n", xproc_ring_last_error(), strerror(errno));
            xproc_ring_close(ring);
            return 1;
        }
    }
    if (xproc_ring_send_eos(ring, -1) != 0) {
        fprintf(stderr, "ring_producer_c: %s\n", xproc_ring_last_error());
        xproc_ring_close(ring);
        return 1;
    }
    printf("sent %ld messages\n", count);
    xproc_ring_close(ring);
    return 0;
}
