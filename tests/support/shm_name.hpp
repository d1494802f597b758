// SPDX-License-Identifier: MIT
#pragma once
/// A shared-memory name unique to this test run, `/xproc-test-<pid>-<suffix>`, removed
/// on construction (a stale one from an earlier run) and on destruction (even when the
/// test failed).

#include <sys/mman.h>
#include <unistd.h>
#include <string>
#include <string_view>

namespace xproc::test {

class ShmName {
  public:
    explicit ShmName(const std::string& suffix)
        : m_name("/xproc-test-" + std::to_string(::getpid()) + "-" + suffix) {
        ::shm_unlink(m_name.c_str());
    }
    ~ShmName() { ::shm_unlink(m_name.c_str()); }
    ShmName(const ShmName&) = delete;
    ShmName& operator=(const ShmName&) = delete;

    const std::string& str() const { return m_name; }
    const char* c_str() const { return m_name.c_str(); }
    operator std::string_view() const { return m_name; }
    /// Without the leading '/' (the tools accept both).
    std::string bare() const { return m_name.substr(1); }
    /// Where glibc keeps it.
    std::string path() const { return "/dev/shm" + m_name; }
    bool exists() const { return ::access(path().c_str(), F_OK) == 0; }

  private:
    std::string m_name;
};

}  // namespace xproc::test
