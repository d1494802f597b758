/* SPDX-License-Identifier: MIT */
#ifndef XPROC_RING_H
#define XPROC_RING_H
/**
 * @file ring.h
 * C API of the xproc ring: a lock-free single-producer, single-consumer queue of
 * variable-length messages in a named POSIX shared-memory segment, for passing
 * messages between processes. Plain C11 (also usable from C++); link with -lxproc.
 * The full description is in xproc_ring(3).
 *
 *   Producer                                   Consumer (another process)
 *   xproc_ring *r = xproc_ring_create("/q",    xproc_ring *r = xproc_ring_open("/q",
 *       1 << 20, 0600, XPROC_RING_PRODUCER);       XPROC_RING_CONSUMER);
 *   xproc_ring_send(r, "hi", 2, -1);           ssize_t n = xproc_ring_recv(r, buf,
 *   xproc_ring_send_eos(r, -1);                    sizeof buf, -1);
 *   xproc_ring_close(r);                       xproc_ring_close(r);
 *                                              xproc_ring_unlink("/q");
 *
 * Errors: a failing call returns NULL or -1 and sets errno; xproc_ring_last_error()
 * then explains it in one line (which segment, which process holds a role, what
 * would allow the call). A call that succeeds leaves errno and that message alone.
 *
 * Timeouts: `timeout_ms` 0 never blocks, a negative value (-1) waits forever, a
 * positive value waits at most that many milliseconds. Waiting spins briefly and
 * then sleeps in futex(2); it is not interrupted by signals (use finite timeouts,
 * or the descriptor of xproc_ring_fd() in poll/epoll, to stay responsive).
 *
 * Threads: a handle is used by one thread at a time; different handles (on the
 * same or other rings) are independent. A handle is not inherited usefully by
 * fork(2): the child opens its own. No function throws or raises a signal.
 */

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Roles, for xproc_ring_create() and xproc_ring_open(). */
enum { XPROC_RING_PRODUCER = 1, XPROC_RING_CONSUMER = 2 };

/** An open ring and the role this process holds in it. */
typedef struct xproc_ring xproc_ring;

/**
 * Creates ring `name` ("/NAME": one leading slash, no other) with O_EXCL and exactly
 * `mode` (not reduced by the umask), and takes `role` in it. `capacity` is the size of
 * the data area in bytes, rounded up to a power of two (at least 64); the largest
 * message is capacity / 2 - 8 bytes (see xproc_ring_max_record()).
 * Returns NULL with errno: EEXIST (the name exists), EINVAL (NULL or bad name, role
 * not one of XPROC_RING_PRODUCER / XPROC_RING_CONSUMER, capacity 0 or above 1 TiB),
 * EACCES, ENOMEM, ENOSPC, EMFILE. Nothing is left behind on failure.
 */
xproc_ring* xproc_ring_create(const char* name, size_t capacity, mode_t mode, int role);

/**
 * Opens existing ring `name` read-write and takes `role` in it. A segment owned by
 * another user is refused (EACCES). Returns NULL with errno: ENOENT, EACCES, EPROTO (not
 * an xproc ring, another layout version, or inconsistent geometry), EAGAIN (its creator
 * has not finished formatting it: retry), EBUSY (the role is held by a live process,
 * possibly this one; a dead holder's role is taken over), EOPNOTSUPP (a broadcast ring),
 * ENOSPC (an mpsc ring whose producer slots are all held), EINVAL (NULL or bad name,
 * invalid role), ENOMEM.
 */
xproc_ring* xproc_ring_open(const char* name, int role);

/**
 * Producer: copies `len` bytes (0 is a valid, empty message) into the ring as one
 * message, waiting up to `timeout_ms` for room. Returns 0, or -1 with errno: EAGAIN
 * (full, timeout 0), ETIMEDOUT (still full when the timeout passed), EMSGSIZE (`len`
 * is larger than xproc_ring_max_record(): it never fits), EPIPE (the consumer died
 * without closing; detected when the ring is full), EBADF (the handle is a consumer),
 * EINVAL (`r` NULL, or `msg` NULL with `len` > 0).
 */
int xproc_ring_send(xproc_ring* r, const void* msg, size_t len, int timeout_ms);

/**
 * Producer: sends an end-of-stream mark; the consumer's xproc_ring_recv() returns -1
 * with ENODATA for it. Errors as xproc_ring_send() (never EMSGSIZE).
 */
int xproc_ring_send_eos(xproc_ring* r, int timeout_ms);

/**
 * Consumer: copies the next message into `buf` (`cap` bytes), waiting up to
 * `timeout_ms` for one. Returns its length (0 for an empty message), or -1 with errno:
 * EAGAIN (none, timeout 0), ETIMEDOUT (none when the timeout passed), EMSGSIZE (the
 * message is larger than `cap`: it stays in the ring, read it with a larger buffer;
 * xproc_ring_max_record() always suffices), ENODATA (the producer sent end-of-stream;
 * the mark is consumed, messages sent after it follow), EPIPE (the producer died
 * without closing and every message it sent has been read), EBADMSG (the shared
 * segment is corrupt), EBADF (the handle is a producer), EINVAL (`r` NULL, or `buf`
 * NULL with `cap` > 0).
 * A producer that closed cleanly is not "gone": the consumer waits for the next one.
 */
ssize_t xproc_ring_recv(xproc_ring* r, void* buf, size_t cap, int timeout_ms);

/**
 * Consumer, for poll/epoll: a descriptor that becomes readable when a message arrives
 * while the ring is armed (xproc_ring_arm()). Owned by the handle: do not close it.
 * Returns it, or -1 with errno EBADF (a producer handle), EINVAL, EMFILE.
 * Loop: drain with xproc_ring_recv(..., 0) until EAGAIN; if xproc_ring_arm() returns
 * 0, wait for the descriptor; then xproc_ring_clear() and drain again. A producer that
 * dies does not make it readable: also wake up now and then (a timerfd) and call
 * xproc_ring_recv(..., 0), which reports EPIPE.
 */
int xproc_ring_fd(xproc_ring* r);

/**
 * Consumer: arms the descriptor of xproc_ring_fd(). Returns 1 when a message (or an
 * end-of-stream mark) is already waiting (do not sleep: drain first), 0 when armed,
 * -1 with errno as xproc_ring_fd(), or EBADMSG.
 */
int xproc_ring_arm(xproc_ring* r);

/** Consumer: empties the descriptor of xproc_ring_fd() and disarms it. NULL is ignored. */
void xproc_ring_clear(xproc_ring* r);

/** Bytes in the data area (a power of two); 0 with EINVAL for NULL. */
size_t xproc_ring_capacity(const xproc_ring* r);

/** The largest message the ring accepts, in bytes; 0 with EINVAL for NULL. */
size_t xproc_ring_max_record(const xproc_ring* r);

/**
 * Gives up the role (a producer that closes is not reported as gone: a consumer then
 * waits for a new producer; send an end-of-stream mark first to say "done") and frees
 * the handle. The ring itself stays until xproc_ring_unlink(). NULL is ignored.
 */
void xproc_ring_close(xproc_ring* r);

/**
 * Removes the name `name`; processes that have the ring open keep using it. Returns 0,
 * or -1 with errno: ENOENT, EACCES, EINVAL (NULL or bad name).
 */
int xproc_ring_unlink(const char* name);

/**
 * One line explaining the last failure of an xproc_ring_* call in this thread (errno
 * alone loses the explanation), e.g. "ring attach as consumer [pid 42]: the consumer
 * role is held by pid 42; ...". "" when none failed yet. Valid until the next failing
 * xproc_ring_* call in the same thread.
 */
const char* xproc_ring_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* XPROC_RING_H */
