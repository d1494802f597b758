// SPDX-License-Identifier: MIT
#pragma once
/// A running tests/targets/mem_target.c and the addresses it reported: each line of its
/// `--info` file is `name 0xaddr size`. Used by the memory and scan tests.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "child.hpp"

namespace xproc::test {

struct MemTarget {
    Child child;
    std::map<std::string, std::pair<std::uint64_t, std::size_t>> info;

    std::uint64_t addr(const std::string& name) const { return info.at(name).first; }
    std::size_t size(const std::string& name) const { return info.at(name).second; }
    pid_t pid() const { return child.pid(); }
};

/// Starts mem_target with `extra` arguments, waits for "ready" and reads its addresses.
inline std::unique_ptr<MemTarget> start_mem_target(std::vector<std::string> extra = {}) {
    static int counter = 0;
    const std::string info_path =
        "/tmp/xproc-test-" + std::to_string(getpid()) + "-mem-" + std::to_string(counter++) + ".info";
    std::vector<std::string> argv = {target_path("mem_target"), "--info", info_path};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto t = std::make_unique<MemTarget>();
    t->child.start(argv);
    EXPECT_TRUE(t->child.wait_for_line("ready"));
    std::ifstream in(info_path);
    std::string name, addr;
    std::size_t size = 0;
    while (in >> name >> addr >> size) {
        t->info[name] = {std::stoull(addr, nullptr, 16), size};
    }
    std::remove(info_path.c_str());
    EXPECT_TRUE(t->info.count("value")) << "mem_target printed no addresses";
    return t;
}

}  // namespace xproc::test
