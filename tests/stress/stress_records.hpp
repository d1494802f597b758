// SPDX-License-Identifier: MIT
#pragma once
// The records the ring stress tests move, shared by the test binaries (tests/stress/) and
// the peer program (tests/targets/ring_peer.cpp), and the scale of the runs.
//
// A record is identified by (producer, seq). Its length is a function of (seed, producer,
// seq), so the consumer knows what to expect before it looks: mostly 1..64 bytes, one in
// 64 anywhere in 1..max_record, one in 1024 exactly max_record. Its content:
//
//   length >= 12:  +0 u64 tag = seq | producer << 56
//                  +8 u32 checksum over the tag, the length and bytes [12, length)
//                 +12 random bytes (from the producer's own generator: not predictable)
//   length < 12:   +0 u8 producer, then bytes of a hash of (tag, length)
//
// So a lost, repeated, reordered, truncated or corrupted record is detected by the
// consumer: the length would differ, the tag would differ, or the checksum would not match.

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <vector>

// Sanitized builds run the same tests with smaller counts (ASan/UBSan Debug builds are
// 10-20x slower on these paths). GCC defines __SANITIZE_*; clang has __has_feature.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define XPROC_STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define XPROC_STRESS_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define XPROC_STRESS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XPROC_STRESS_TSAN 1
#endif
#endif

namespace xproc::stress {

inline constexpr std::size_t TAGGED_MIN = 12;  ///< records this long carry tag + checksum

inline std::uint64_t mix64(std::uint64_t x) noexcept {
    // splitmix64's finaliser.
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

inline std::uint64_t tag_of(std::uint32_t producer, std::uint64_t seq) noexcept {
    return seq | (std::uint64_t{producer} << 56);
}

/// Payload length of record (producer, seq): min_length..max_record. A broadcast stream
/// uses min_length TAGGED_MIN so that a reader that was lapped can tell where it resumed.
inline std::size_t record_length(std::uint64_t seed, std::uint32_t producer, std::uint64_t seq,
                                 std::uint32_t max_record, std::size_t min_length = 1) noexcept {
    const std::uint64_t h = mix64(seed ^ mix64(tag_of(producer, seq)));
    std::size_t length;
    if ((h & 1023) == 0) {
        length = max_record;
    } else if (((h >> 10) & 63) == 0) {
        length = 1 + static_cast<std::size_t>((h >> 32) % max_record);
    } else {
        length = 1 + static_cast<std::size_t>((h >> 32) % (max_record < 64 ? max_record : 64));
    }
    return length < min_length ? min_length : length;
}

/// Checksum of a tagged record: over its tag, its length and bytes [12, length).
inline std::uint32_t record_checksum(std::uint64_t tag, std::span<const std::byte> payload) noexcept {
    std::uint64_t h = mix64(tag ^ (payload.size() * 0x100000001b3ULL));
    std::size_t i = TAGGED_MIN;
    for (; i + 8 <= payload.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, payload.data() + i, 8);
        h = (h ^ w) * 0x9fb21c651e98df25ULL;
        h ^= h >> 29;
    }
    if (i < payload.size()) {
        std::uint64_t w = 0;
        std::memcpy(&w, payload.data() + i, payload.size() - i);
        h = (h ^ w ^ 0xa5) * 0x9fb21c651e98df25ULL;
        h ^= h >> 29;
    }
    return static_cast<std::uint32_t>(h ^ (h >> 32));
}

/// The bytes of a short (< 12 bytes) record: the producer, then a hash of (tag, length).
inline void short_record(std::uint64_t tag, std::span<std::byte> out) noexcept {
    const std::uint64_t a = mix64(tag ^ (out.size() << 48));
    const std::uint64_t b = mix64(a);
    std::byte bytes[16];
    std::memcpy(bytes, &a, 8);
    std::memcpy(bytes + 8, &b, 8);
    bytes[0] = static_cast<std::byte>(tag >> 56);
    std::memcpy(out.data(), bytes, out.size());
}

/// Which producer a record says it comes from (the consumer checks the rest).
inline std::uint32_t record_producer(std::span<const std::byte> got) noexcept {
    if (got.size() >= TAGGED_MIN) {
        std::uint64_t tag;
        std::memcpy(&tag, got.data(), 8);
        return static_cast<std::uint32_t>(tag >> 56);
    }
    return got.empty() ? 0xffffffffu : static_cast<std::uint32_t>(got[0]);
}

/// Writes record (producer, seq) into `out` (out.size() is its length); `rng` is the
/// producer's own generator for the random part.
inline void fill_record(std::uint32_t producer, std::uint64_t seq, std::span<std::byte> out,
                        std::uint64_t& rng) noexcept {
    const std::uint64_t tag = tag_of(producer, seq);
    if (out.size() < TAGGED_MIN) {
        short_record(tag, out);
        return;
    }
    std::size_t i = TAGGED_MIN;
    for (; i + 8 <= out.size(); i += 8) {
        rng = mix64(rng);
        std::memcpy(out.data() + i, &rng, 8);
    }
    if (i < out.size()) {
        rng = mix64(rng);
        std::memcpy(out.data() + i, &rng, out.size() - i);
    }
    std::memcpy(out.data(), &tag, 8);
    const std::uint32_t sum = record_checksum(tag, out);
    std::memcpy(out.data() + 8, &sum, 4);
}

/// What is wrong with a received record, or nullptr when it is record (producer, seq).
inline const char* check_record(std::uint64_t seed, std::uint32_t producer, std::uint64_t seq,
                                std::uint32_t max_record, std::span<const std::byte> got,
                                std::size_t min_length = 1) noexcept {
    if (got.size() != record_length(seed, producer, seq, max_record, min_length)) {
        return "wrong length (lost, reordered or truncated record)";
    }
    const std::uint64_t tag = tag_of(producer, seq);
    if (got.size() < TAGGED_MIN) {
        std::byte want[TAGGED_MIN];
        short_record(tag, std::span<std::byte>(want, got.size()));
        return std::memcmp(want, got.data(), got.size()) == 0 ? nullptr : "short record with wrong content";
    }
    std::uint64_t got_tag;
    std::memcpy(&got_tag, got.data(), 8);
    if (got_tag != tag) {
        return "wrong sequence number or producer (lost or reordered record)";
    }
    std::uint32_t sum;
    std::memcpy(&sum, got.data() + 8, 4);
    return sum == record_checksum(tag, got) ? nullptr : "checksum mismatch (corrupted payload)";
}

/// For a reader that may skip records (a lapped broadcast reader): the sequence number a
/// tagged record claims, if its checksum is valid. Short records carry no sequence number.
inline bool tagged_seq(std::span<const std::byte> got, std::uint32_t producer, std::uint64_t& seq) noexcept {
    if (got.size() < TAGGED_MIN) {
        return false;
    }
    std::uint64_t tag;
    std::memcpy(&tag, got.data(), 8);
    if ((tag >> 56) != producer) {
        return false;
    }
    std::uint32_t sum;
    std::memcpy(&sum, got.data() + 8, 4);
    if (sum != record_checksum(tag, got)) {
        return false;
    }
    seq = tag & ((std::uint64_t{1} << 56) - 1);
    return true;
}

/// Checks a stream of records from `producers` producers, each in its own sequence space
/// starting at 0: every record must be the next one of the producer it names.
class StreamChecker {
  public:
    StreamChecker(std::uint64_t seed, std::uint32_t producers, std::uint32_t max_record,
                  std::size_t min_length = 1)
        : m_next(producers, 0), m_seed(seed), m_max(max_record), m_min(min_length) {}

    /// True when `got` is the expected next record; otherwise false, and error() says why.
    bool check(std::span<const std::byte> got) noexcept {
        const std::uint32_t id = record_producer(got);
        if (id >= m_next.size()) {
            std::snprintf(m_error, sizeof m_error, "record %" PRIu64 " of %zu bytes names producer %u",
                          m_total, got.size(), id);
            return false;
        }
        const std::uint64_t seq = m_next[id];
        if (const char* why = check_record(m_seed, id, seq, m_max, got, m_min)) {
            std::snprintf(m_error, sizeof m_error,
                          "record %" PRIu64 " (producer %u, expected seq %" PRIu64 ", %zu bytes): %s",
                          m_total, id, seq, got.size(), why);
            return false;
        }
        ++m_next[id];
        ++m_total;
        m_bytes += got.size();
        return true;
    }
    const char* error() const noexcept { return m_error; }
    std::uint64_t total() const noexcept { return m_total; }
    std::uint64_t bytes() const noexcept { return m_bytes; }
    std::uint64_t next(std::uint32_t id) const noexcept { return m_next[id]; }

  private:
    std::vector<std::uint64_t> m_next;
    std::uint64_t m_seed;
    std::uint32_t m_max;
    std::size_t m_min;
    std::uint64_t m_total = 0;
    std::uint64_t m_bytes = 0;
    char m_error[200] = "";
};

}  // namespace xproc::stress
