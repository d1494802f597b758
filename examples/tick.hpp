// SPDX-License-Identifier: MIT
// The message type ring_producer and ring_consumer agree on: both include this header.
#pragma once
#include <cstdint>

struct Tick {
    std::uint64_t seq;   // 0, 1, 2, ...: the consumer checks that none is lost or reordered
    std::int64_t price;  // in 1/10000 of a currency unit
    std::uint32_t size;
    char symbol[8];
};
