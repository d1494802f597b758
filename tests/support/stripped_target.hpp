// SPDX-License-Identifier: MIT
#pragma once
// Test helper: run a target from tests/targets/ from a copy without debug information, so that
// gdb (and eu-stack) see what xpeek and xstack see: no source lines, no arguments, no inlined
// frames. The copy lives in a fresh directory, removed with the target.

#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "child.hpp"

namespace xproc::test {

class StrippedTarget {
  public:
    /// Makes the stripped copy of tests/targets/`name`; start() runs it.
    explicit StrippedTarget(const std::string& name) {
        m_dir = std::filesystem::temp_directory_path() /
                ("xproc-stripped-" + std::to_string(getpid()) + "-" + std::to_string(s_serial++));
        std::filesystem::create_directories(m_dir);
        m_exe = (m_dir / name).string();
        const RunResult strip = run({"objcopy", "--strip-debug", target_path(name), m_exe});
        EXPECT_EQ(strip.exit_code, 0) << strip.err;
    }
    /// The copy of `name`, started with `args` and waited for until it prints "ready".
    StrippedTarget(const std::string& name, const std::vector<std::string>& args) : StrippedTarget(name) {
        start(args);
    }
    ~StrippedTarget() {
        m_child.kill_and_reap();
        std::error_code ec;
        std::filesystem::remove_all(m_dir, ec);
    }
    StrippedTarget(const StrippedTarget&) = delete;
    StrippedTarget& operator=(const StrippedTarget&) = delete;

    /// Starts the copy with `args`; ready() says whether it printed "ready".
    void start(const std::vector<std::string>& args) {
        std::vector<std::string> argv{m_exe};
        argv.insert(argv.end(), args.begin(), args.end());
        m_child.start(argv);
        m_ready = m_child.wait_for_line();
        EXPECT_TRUE(m_ready) << m_exe << " did not print ready";
    }

    pid_t pid() const { return m_child.pid(); }
    const std::string& exe() const { return m_exe; }
    /// The copy's directory (for files the target writes).
    const std::filesystem::path& dir() const { return m_dir; }
    Child& child() { return m_child; }
    bool ready() const { return m_ready; }

  private:
    static inline int s_serial = 0;
    std::filesystem::path m_dir;
    std::string m_exe;
    Child m_child;
    bool m_ready = false;
};

}  // namespace xproc::test
