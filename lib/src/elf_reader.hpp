// SPDX-License-Identifier: MIT
#pragma once
// Internals of the ELF reader shared by elf_reader.cpp and symbols.cpp.

#include <sys/stat.h>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "xproc/error.hpp"

namespace xproc::detail {

/// A whole file mapped read-only (MAP_PRIVATE), unmapped by the destructor. Move-only.
/// A file of size 0 maps nothing (bytes() is empty).
///
/// Known limit: if another process truncates the file while it is mapped here, reading
/// the pages past the new end raises SIGBUS. Parsing is the only time the mapping is
/// read (ElfSymbols copies the names it keeps and the mapping is released right after),
/// which keeps that window short; a reader of files a hostile process can truncate at
/// will would have to pread them instead.
class MappedFile {
  public:
    static Result<MappedFile> map(int fd, std::string_view what);
    MappedFile(MappedFile&& o) noexcept
        : m_data(std::exchange(o.m_data, nullptr)), m_size(std::exchange(o.m_size, 0)), m_stat(o.m_stat) {}
    MappedFile& operator=(MappedFile&&) = delete;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();

    std::span<const std::byte> bytes() const noexcept {
        return {static_cast<const std::byte*>(m_data), m_size};
    }
    const struct stat& stat() const noexcept { return m_stat; }

  private:
    MappedFile() = default;
    void* m_data = nullptr;
    std::size_t m_size = 0;
    struct stat m_stat {};
};

/// The NT_GNU_BUILD_ID of an ELF image as lowercase hex, "" when absent or unreadable.
/// Reads only the headers and notes (cheap: what the cache keys on before parsing).
std::string elf_build_id(std::span<const std::byte> bytes);

}  // namespace xproc::detail
