/* Uses the installed C API as a C program would: only <xproc/ring.h> and -lxproc.
 * A producer and a consumer handle in one process pass a message through a ring. */
#include <xproc/ring.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    char name[64];
    snprintf(name, sizeof name, "/xproc-install-test-%ld", (long)getpid());
    xproc_ring* producer = xproc_ring_create(name, 4096, 0600, XPROC_RING_PRODUCER);
    xproc_ring* consumer = producer != NULL ? xproc_ring_open(name, XPROC_RING_CONSUMER) : NULL;
    xproc_ring_unlink(name);
    if (consumer == NULL) {
        fprintf(stderr, "ring_c: %s\n", xproc_ring_last_error());
        xproc_ring_close(producer);
        return 1;
    }
    char buf[16];
    ssize_t n = -1;
    if (xproc_ring_send(producer, "ping", 4, 0) == 0) {
        n = xproc_ring_recv(consumer, buf, sizeof buf, 0);
    }
    int eos = xproc_ring_send_eos(producer, 0) == 0 && xproc_ring_recv(consumer, buf, sizeof buf, 0) == -1 &&
              errno == ENODATA;
    size_t capacity = xproc_ring_capacity(consumer);
    xproc_ring_close(consumer);
    xproc_ring_close(producer);
    if (n != 4 || memcmp(buf, "ping", 4) != 0 || !eos) {
        fprintf(stderr, "ring_c: the message did not come through: %s\n", xproc_ring_last_error());
        return 1;
    }
    printf("C API ok: a message and end of stream through a %zu-byte ring\n", capacity);
    return 0;
}
