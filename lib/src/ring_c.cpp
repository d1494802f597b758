// SPDX-License-Identifier: MIT
// The C API of xproc/ring.h over RingSegment, RingProducer and RingConsumer.
// Every entry point catches everything: no exception crosses into C. Library errors
// become an errno and a thread-local message (Error::message()).
#include "xproc/ring.h"

#include <sys/mman.h>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "xproc/ring.hpp"
#include "xproc/ring_segment.hpp"

struct xproc_ring {
    // Declared first, destroyed last: the producer and consumer point into its mapping.
    xproc::RingSegment segment;
    std::optional<xproc::RingProducer> producer;
    std::optional<xproc::RingConsumer> consumer;
};

namespace {

using xproc::Error;
using xproc::ErrorKind;
using xproc::ReadStatus;
using xproc::WriteStatus;

thread_local std::string t_last_error;

/// Where an Error came from: decides the errno of errors that carry none.
enum class Stage : std::uint8_t {
    segment,  ///< creating, opening or removing the named segment
    role,     ///< taking the producer/consumer role
    io,       ///< sending, receiving, the doorbell
};

/// Records a failure: the message for xproc_ring_last_error(), then errno (last, so that
/// nothing we call afterwards changes it). Returns -1 for the callers' convenience.
int failed(int err, std::string message) noexcept {
    t_last_error = std::move(message);  // a move assignment: does not allocate
    errno = err;
    return -1;
}

int errno_of(const Error& e, Stage stage) noexcept {
    if (e.errno_value != 0) {
        return e.errno_value;
    }
    switch (e.kind) {
        case ErrorKind::permission:
            return EACCES;
        case ErrorKind::invalid_argument:
            return EINVAL;
        case ErrorKind::corrupt:
            return stage == Stage::io ? EBADMSG : EPROTO;
        case ErrorKind::not_supported:
            return EOPNOTSUPP;
        case ErrorKind::no_such_process:
        case ErrorKind::zombie:
            return ESRCH;
        case ErrorKind::os:
            // RingProducer/RingConsumer::attach report a role held by a live process as
            // kind os without an errno (ring.hpp documents os/EBUSY).
            return stage == Stage::role ? EBUSY : EIO;
        default:
            return EIO;
    }
}

int failed(const Error& e, Stage stage) noexcept {
    const int err = errno_of(e, stage);
    std::string message;
    try {
        message = e.message();
    } catch (...) {
        // Out of memory while formatting: the errno still says what happened.
    }
    return failed(err, std::move(message));
}

/// Sets the last-error message without throwing (cleared when even that fails).
void set_message(const char* function, const char* what) noexcept {
    try {
        t_last_error = function;
        t_last_error += ": ";
        t_last_error += what;
    } catch (...) {
        t_last_error.clear();
    }
}

/// Runs `body`, turning any exception into an errno (ENOMEM for bad_alloc).
template <typename Body>
auto guarded(const char* function, Body&& body) noexcept -> decltype(body()) {
    using R = decltype(body());
    const auto on_error = []() -> R {
        if constexpr (std::is_pointer_v<R>) {
            return nullptr;
        } else {
            return R(-1);
        }
    };
    try {
        return body();
    } catch (const std::bad_alloc&) {
        set_message(function, "out of memory");
        errno = ENOMEM;
    } catch (const std::exception& e) {
        set_message(function, e.what());
        errno = EIO;
    } catch (...) {
        set_message(function, "unexpected exception");
        errno = EIO;
    }
    return on_error();
}

xproc::Timeout to_timeout(int timeout_ms) noexcept {
    if (timeout_ms < 0) {
        return xproc::WAIT_FOREVER;
    }
    return std::chrono::milliseconds(timeout_ms);
}

std::string context(const char* function, const xproc_ring* r) {
    return std::string(function) + "(" + (r != nullptr ? r->segment.name() : std::string("NULL")) + ")";
}

bool valid_role(int role) noexcept {
    return role == XPROC_RING_PRODUCER || role == XPROC_RING_CONSUMER;
}

/// Wraps a segment in a handle holding `role`. On failure the handle is freed and
/// errno set (the caller removes a name it created).
xproc_ring* take_role(xproc::RingSegment segment, int role) {
    if (segment.kind() == xproc::RingKind::broadcast) {
        failed(EOPNOTSUPP, "xproc_ring_open(" + segment.name() +
                               "): a broadcast ring; the C API speaks spsc and mpsc rings");
        return nullptr;
    }
    auto r = std::make_unique<xproc_ring>(std::move(segment), std::nullopt, std::nullopt);
    std::optional<Error> error;
    if (role == XPROC_RING_PRODUCER) {
        if (auto p = r->segment.producer()) {
            r->producer.emplace(std::move(*p));
        } else {
            error = std::move(p.error());
        }
    } else {
        if (auto c = r->segment.consumer()) {
            r->consumer.emplace(std::move(*c));
        } else {
            error = std::move(c.error());
        }
    }
    if (error) {
        r.reset();  // before setting errno: unmapping must not change it afterwards
        failed(*error, Stage::role);
        return nullptr;
    }
    return r.release();
}

int write_failed(const char* function, const xproc_ring* r, WriteStatus status, std::size_t len,
                 int timeout_ms) {
    switch (status) {
        case WriteStatus::ok:
            return 0;
        case WriteStatus::full:
            if (timeout_ms == 0) {
                return failed(EAGAIN, context(function, r) + ": the ring is full");
            }
            return failed(ETIMEDOUT, context(function, r) + ": the ring stayed full for " +
                                         std::to_string(timeout_ms) + " ms");
        case WriteStatus::too_large:
            return failed(EMSGSIZE, context(function, r) + ": a message of " + std::to_string(len) +
                                        " bytes is larger than the ring's max_record " +
                                        std::to_string(r->producer->max_record()));
        case WriteStatus::peer_gone:
            return failed(EPIPE, context(function, r) + ": the consumer died without closing the ring");
    }
    return failed(EIO, context(function, r) + ": unknown write status");
}

/// Checks the handle for a producer call; sets errno and returns false if unusable.
bool producer_ok(const char* function, xproc_ring* r) {
    if (r == nullptr) {
        failed(EINVAL, std::string(function) + ": the ring is NULL");
        return false;
    }
    if (!r->producer) {
        failed(EBADF, context(function, r) + ": the ring was opened as consumer, not producer");
        return false;
    }
    return true;
}

bool consumer_ok(const char* function, xproc_ring* r) {
    if (r == nullptr) {
        failed(EINVAL, std::string(function) + ": the ring is NULL");
        return false;
    }
    if (!r->consumer) {
        failed(EBADF, context(function, r) + ": the ring was opened as producer, not consumer");
        return false;
    }
    return true;
}

}  // namespace

extern "C" {

xproc_ring* xproc_ring_create(const char* name, size_t capacity, mode_t mode, int role) {
    return guarded("xproc_ring_create", [&]() -> xproc_ring* {
        if (name == nullptr) {
            failed(EINVAL, "xproc_ring_create: the name is NULL");
            return nullptr;
        }
        if (!valid_role(role)) {
            failed(EINVAL, "xproc_ring_create(" + std::string(name) + "): role " + std::to_string(role) +
                               " is neither XPROC_RING_PRODUCER (1) nor XPROC_RING_CONSUMER (2)");
            return nullptr;
        }
        if (capacity == 0) {
            failed(EINVAL, "xproc_ring_create(" + std::string(name) + "): capacity 0");
            return nullptr;
        }
        xproc::RingConfig config;
        config.capacity = capacity;
        config.mode = mode;
        auto segment = xproc::RingSegment::create(name, config);
        if (!segment) {
            failed(segment.error(), Stage::segment);
            return nullptr;
        }
        // Nothing is left behind on failure, even when an exception unwinds from here.
        struct RemoveUnlessKept {
            const char* name;
            bool keep = false;
            ~RemoveUnlessKept() {
                if (!keep) {
                    const int err = errno;
                    try {
                        (void)xproc::RingSegment::remove(name);
                    } catch (...) {
                        ::shm_unlink(name);  // out of memory for the error text: remove it plainly
                    }
                    errno = err;
                }
            }
        } guard{name};
        xproc_ring* r = take_role(std::move(*segment), role);
        guard.keep = r != nullptr;
        return r;
    });
}

xproc_ring* xproc_ring_open(const char* name, int role) {
    return guarded("xproc_ring_open", [&]() -> xproc_ring* {
        if (name == nullptr) {
            failed(EINVAL, "xproc_ring_open: the name is NULL");
            return nullptr;
        }
        if (!valid_role(role)) {
            failed(EINVAL, "xproc_ring_open(" + std::string(name) + "): role " + std::to_string(role) +
                               " is neither XPROC_RING_PRODUCER (1) nor XPROC_RING_CONSUMER (2)");
            return nullptr;
        }
        auto segment = xproc::RingSegment::open(name);
        if (!segment) {
            failed(segment.error(), Stage::segment);
            return nullptr;
        }
        return take_role(std::move(*segment), role);
    });
}

int xproc_ring_send(xproc_ring* r, const void* msg, size_t len, int timeout_ms) {
    return guarded("xproc_ring_send", [&]() -> int {
        if (!producer_ok("xproc_ring_send", r)) {
            return -1;
        }
        if (msg == nullptr && len != 0) {
            return failed(EINVAL, context("xproc_ring_send", r) + ": the message is NULL");
        }
        const auto bytes = std::span<const std::byte>(static_cast<const std::byte*>(msg), len);
        const WriteStatus status = r->producer->write(bytes, to_timeout(timeout_ms));
        return write_failed("xproc_ring_send", r, status, len, timeout_ms);
    });
}

int xproc_ring_send_eos(xproc_ring* r, int timeout_ms) {
    return guarded("xproc_ring_send_eos", [&]() -> int {
        if (!producer_ok("xproc_ring_send_eos", r)) {
            return -1;
        }
        const WriteStatus status = r->producer->write_end_of_stream(to_timeout(timeout_ms));
        return write_failed("xproc_ring_send_eos", r, status, 0, timeout_ms);
    });
}

ssize_t xproc_ring_recv(xproc_ring* r, void* buf, size_t cap, int timeout_ms) {
    return guarded("xproc_ring_recv", [&]() -> ssize_t {
        const char* fn = "xproc_ring_recv";
        if (!consumer_ok(fn, r)) {
            return -1;
        }
        if (buf == nullptr && cap != 0) {
            return failed(EINVAL, context(fn, r) + ": the buffer is NULL");
        }
        const auto buffer = std::span<std::byte>(static_cast<std::byte*>(buf), cap);
        auto result = r->consumer->read(buffer, to_timeout(timeout_ms));
        if (!result) {
            return failed(result.error(), Stage::io);
        }
        switch (result->status) {
            case ReadStatus::ok:
                return static_cast<ssize_t>(result->length);
            case ReadStatus::empty:
                if (timeout_ms == 0) {
                    return failed(EAGAIN, context(fn, r) + ": no message waiting");
                }
                return failed(ETIMEDOUT,
                              context(fn, r) + ": no message within " + std::to_string(timeout_ms) + " ms");
            case ReadStatus::too_small:
                return failed(EMSGSIZE, context(fn, r) + ": the next message has " +
                                            std::to_string(result->length) + " bytes, the buffer " +
                                            std::to_string(cap) + " (the message stays in the ring)");
            case ReadStatus::end_of_stream:
                return failed(ENODATA, context(fn, r) + ": end of stream");
            case ReadStatus::peer_gone:
                return failed(EPIPE,
                              context(fn, r) + ": the producer died without closing and the ring is drained");
            case ReadStatus::lapped:
                break;  // broadcast only; such rings are refused at open
        }
        return failed(EIO, context(fn, r) + ": unexpected read status " +
                               std::string(xproc::to_string(result->status)));
    });
}

int xproc_ring_fd(xproc_ring* r) {
    return guarded("xproc_ring_fd", [&]() -> int {
        if (!consumer_ok("xproc_ring_fd", r)) {
            return -1;
        }
        auto fd = r->consumer->doorbell_fd();
        if (!fd) {
            return failed(fd.error(), Stage::io);
        }
        return *fd;
    });
}

int xproc_ring_arm(xproc_ring* r) {
    return guarded("xproc_ring_arm", [&]() -> int {
        if (!consumer_ok("xproc_ring_arm", r)) {
            return -1;
        }
        auto ready = r->consumer->arm_doorbell();
        if (!ready) {
            return failed(ready.error(), Stage::io);
        }
        return *ready ? 1 : 0;
    });
}

void xproc_ring_clear(xproc_ring* r) {
    if (r != nullptr && r->consumer) {
        r->consumer->clear_doorbell();  // noexcept
    }
}

size_t xproc_ring_capacity(const xproc_ring* r) {
    if (r == nullptr) {
        errno = EINVAL;
        return 0;
    }
    // The validated copies of the role, not the header (which the peer could change).
    return static_cast<size_t>(r->producer ? r->producer->capacity() : r->consumer->capacity());
}

size_t xproc_ring_max_record(const xproc_ring* r) {
    if (r == nullptr) {
        errno = EINVAL;
        return 0;
    }
    return r->producer ? r->producer->max_record() : r->consumer->max_record();
}

void xproc_ring_close(xproc_ring* r) {
    // Destructors of the role and the segment do not throw (close() and munmap are noexcept).
    delete r;
}

int xproc_ring_unlink(const char* name) {
    return guarded("xproc_ring_unlink", [&]() -> int {
        if (name == nullptr) {
            return failed(EINVAL, "xproc_ring_unlink: the name is NULL");
        }
        if (auto ok = xproc::RingSegment::remove(name); !ok) {
            return failed(ok.error(), Stage::segment);
        }
        return 0;
    });
}

const char* xproc_ring_last_error(void) {
    return t_last_error.c_str();
}

}  // extern "C"
