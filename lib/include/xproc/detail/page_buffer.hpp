// SPDX-License-Identifier: MIT
#pragma once
/// @file detail/page_buffer.hpp
/// `PageBuffer`: a growable byte buffer in its own anonymous mapping, for the
/// large /proc texts (the smaps of a process with 50,000 mappings is ~40 MB).
///
/// A std::string grows by allocate-copy-free, faulting in every intermediate
/// copy; this buffer grows with mremap(2), which moves page tables and copies
/// nothing, and asks for transparent huge pages, so a 40 MB read costs tens of
/// page faults instead of tens of thousands. Pages never written are never
/// backed. Move-only; not thread safe.

#include <cstddef>
#include <string_view>
#include <utility>

namespace xproc::detail {

class PageBuffer {
  public:
    PageBuffer() noexcept = default;
    PageBuffer(PageBuffer&& other) noexcept
        : m_data(std::exchange(other.m_data, nullptr)),
          m_size(std::exchange(other.m_size, 0)),
          m_capacity(std::exchange(other.m_capacity, 0)) {}
    PageBuffer& operator=(PageBuffer&& other) noexcept {
        if (this != &other) {
            release();
            m_data = std::exchange(other.m_data, nullptr);
            m_size = std::exchange(other.m_size, 0);
            m_capacity = std::exchange(other.m_capacity, 0);
        }
        return *this;
    }
    PageBuffer(const PageBuffer&) = delete;
    PageBuffer& operator=(const PageBuffer&) = delete;
    ~PageBuffer() { release(); }

    char* data() noexcept { return m_data; }
    const char* data() const noexcept { return m_data; }
    std::size_t size() const noexcept { return m_size; }
    std::size_t capacity() const noexcept { return m_capacity; }
    std::string_view view() const noexcept { return {m_data, m_size}; }

    /// Makes room for at least `spare` more bytes after size(); may move data().
    /// False (buffer unchanged) when memory is exhausted.
    bool reserve_spare(std::size_t spare) noexcept;
    /// Marks `n` bytes written into the spare room as used.
    void commit(std::size_t n) noexcept { m_size += n; }
    /// Appends bytes; false when memory is exhausted.
    bool append(std::string_view bytes) noexcept;

  private:
    void release() noexcept;

    char* m_data = nullptr;
    std::size_t m_size = 0;
    std::size_t m_capacity = 0;
};

}  // namespace xproc::detail
