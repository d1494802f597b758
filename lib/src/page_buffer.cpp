// SPDX-License-Identifier: MIT
#include "xproc/detail/page_buffer.hpp"

#include <sys/mman.h>
#include <cstring>

namespace xproc::detail {

namespace {

constexpr std::size_t HUGE_PAGE = std::size_t{2} << 20;
constexpr std::size_t MIN_CAPACITY = 4096;

/// Transparent huge pages where the mapping covers whole 2 MiB pages (advice
/// only: with THP "never" this changes nothing).
void advise_huge(char* data, std::size_t bytes) noexcept {
    if (bytes >= HUGE_PAGE) {
        ::madvise(data, bytes, MADV_HUGEPAGE);
    }
}

}  // namespace

bool PageBuffer::reserve_spare(std::size_t spare) noexcept {
    if (m_capacity - m_size >= spare) {
        return true;
    }
    std::size_t want = m_capacity < MIN_CAPACITY ? MIN_CAPACITY : m_capacity;
    while (want - m_size < spare) {
        if (want > (SIZE_MAX >> 1)) {
            return false;
        }
        want *= 2;
    }
    void* p = m_data == nullptr
                  ? ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                  : ::mremap(m_data, m_capacity, want, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) {
        return false;
    }
    m_data = static_cast<char*>(p);
    m_capacity = want;
    advise_huge(m_data, m_capacity);
    return true;
}

bool PageBuffer::append(std::string_view bytes) noexcept {
    if (!reserve_spare(bytes.size())) {
        return false;
    }
    if (!bytes.empty()) {
        std::memcpy(m_data + m_size, bytes.data(), bytes.size());
    }
    m_size += bytes.size();
    return true;
}

void PageBuffer::release() noexcept {
    if (m_data != nullptr) {
        ::munmap(m_data, m_capacity);
        m_data = nullptr;
        m_size = 0;
        m_capacity = 0;
    }
}

}  // namespace xproc::detail
